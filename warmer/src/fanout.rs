//! The fan-out: N `Invoke` calls at once, each with its own ping, counted into a [`Report`].

use std::time::{Duration, Instant};

use aws_sdk_lambda::config::retry::RetryConfig;
use aws_sdk_lambda::config::timeout::TimeoutConfig;
use aws_sdk_lambda::error::{DisplayErrorContext, SdkError};
use aws_sdk_lambda::operation::invoke::{InvokeError, InvokeOutput};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use tokio::task::JoinSet;

use crate::error::PingError;
use crate::ping::{self, Ping};
use crate::report::{Outcome, Report};
use crate::target::Target;

/// How warm Invokes are sent.
#[derive(Debug, Clone)]
pub struct Options {
    /// Longest wait for a connection to the Lambda endpoint.
    pub connect_timeout: Duration,
    /// Longest wait for an Invoke's answer once sent (the hold included).
    pub read_timeout: Duration,
    /// Retries per Invoke. 0 by default: a retried ping lands on an environment that is
    /// already warm and inflates the count.
    pub retries: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            connect_timeout: Duration::from_secs(3),
            read_timeout: Duration::from_secs(30),
            retries: 0,
        }
    }
}

/// A Lambda client for warming: `sdk`'s settings (region, credentials, endpoint) plus
/// `options`' timeouts and retry count. When `sdk` has no HTTP client, the client uses
/// rustls with the *ring* provider and the OS trust roots.
pub fn client(sdk: &aws_config::SdkConfig, options: &Options) -> aws_sdk_lambda::Client {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(options.connect_timeout)
        .read_timeout(options.read_timeout)
        .build();
    let retry = match options.retries {
        0 => RetryConfig::disabled(),
        n => RetryConfig::standard().with_max_attempts(n.saturating_add(1)),
    };
    let mut config = aws_sdk_lambda::config::Builder::from(sdk)
        .timeout_config(timeouts)
        .retry_config(retry);
    if sdk.http_client().is_none() {
        config = config.http_client(https_client());
    }
    aws_sdk_lambda::Client::from_conf(config.build())
}

/// The SDK's HTTP client: hyper + rustls with *ring*, trusting the OS roots; plain http
/// (a local emulator) works too.
pub(crate) fn https_client() -> aws_sdk_lambda::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// Sends `target.concurrency` Invoke calls (RequestResponse) at once with the ping
/// `{"up_warm": {"run", "index", "of", "hold_ms"}}` and counts the replies.
///
/// Never fails: an invalid target (see [`Target::validate`]) is reported as one error
/// without sending anything; each failed Invoke is counted as throttled or as an error.
pub async fn warm(client: &aws_sdk_lambda::Client, target: &Target) -> Report {
    let run = uuid::Uuid::new_v4().to_string();
    if let Err(err) = target.validate() {
        return Report::refused(target, run, err);
    }
    let of = target.concurrency;
    let started = Instant::now();
    let mut pings = JoinSet::new();
    for index in 0..of {
        let ping = Ping::new(&run, index, of, target.hold_ms);
        let request = client
            .invoke()
            .function_name(&target.function)
            .qualifier(&target.qualifier)
            .invocation_type(InvocationType::RequestResponse)
            .payload(Blob::new(ping.to_bytes()));
        pings.spawn(async move {
            let result = request.send().await;
            outcome(&ping, result)
        });
    }
    let mut outcomes = Vec::with_capacity(pings.len());
    while let Some(joined) = pings.join_next().await {
        outcomes
            .push(joined.unwrap_or_else(|err| Outcome::Failed(PingError::Task(err.to_string()))));
    }
    Report::count(target, run, outcomes, started.elapsed())
}

/// How one Invoke of `ping` ended.
fn outcome<R>(ping: &Ping, result: Result<InvokeOutput, SdkError<InvokeError, R>>) -> Outcome
where
    R: std::fmt::Debug,
{
    match result {
        Ok(output) => {
            let payload = output.payload().map(Blob::as_ref).unwrap_or_default();
            match ping::read_reply(&ping.up_warm, output.function_error(), payload) {
                Ok(reply) => Outcome::Answered(reply),
                Err(err) => Outcome::Failed(err),
            }
        }
        Err(err)
            if err
                .as_service_error()
                .is_some_and(InvokeError::is_too_many_requests_exception) =>
        {
            Outcome::Throttled
        }
        Err(err) => Outcome::Failed(PingError::Invoke(ping::shorten(
            &DisplayErrorContext(&err).to_string(),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_lambda::types::error::{ResourceNotFoundException, TooManyRequestsException};
    use serde_json::json;

    type Raw = ();

    fn ping() -> Ping {
        Ping::new("run-1", 0, 2, 75)
    }

    fn answered(payload: serde_json::Value, function_error: Option<&str>) -> Outcome {
        let output = InvokeOutput::builder()
            .status_code(200)
            .payload(Blob::new(serde_json::to_vec(&payload).unwrap()))
            .set_function_error(function_error.map(str::to_owned))
            .build();
        outcome::<Raw>(&ping(), Ok(output))
    }

    #[test]
    fn a_warm_reply_is_answered() {
        let outcome = answered(
            json!({"up_warm": {"instance": "i", "cold": true, "run": "run-1", "index": 0,
                "uptime_ms": 5, "invocations": 1, "app_restarts": 0}}),
            None,
        );
        assert!(matches!(outcome, Outcome::Answered(reply) if reply.instance == "i"));
    }

    #[test]
    fn a_function_error_is_an_error() {
        let outcome = answered(
            json!({"errorType": "Up.UnsupportedEvent", "errorMessage": "no known shape"}),
            Some("Unhandled"),
        );
        assert_eq!(
            outcome,
            Outcome::Failed(PingError::Function {
                error_type: "Up.UnsupportedEvent".into(),
                message: "no known shape".into()
            })
        );
    }

    #[test]
    fn too_many_requests_is_throttled_not_an_error() {
        let err = InvokeError::TooManyRequestsException(
            TooManyRequestsException::builder()
                .message("Rate Exceeded")
                .build(),
        );
        let outcome = outcome::<Raw>(&ping(), Err(SdkError::service_error(err, ())));
        assert_eq!(outcome, Outcome::Throttled);
    }

    #[test]
    fn other_service_errors_are_errors_with_their_message() {
        let err = InvokeError::ResourceNotFoundException(
            ResourceNotFoundException::builder()
                .message("Function not found: nope:staging")
                .build(),
        );
        let outcome = outcome::<Raw>(&ping(), Err(SdkError::service_error(err, ())));
        let Outcome::Failed(PingError::Invoke(text)) = outcome else {
            panic!("{outcome:?}")
        };
        assert!(text.contains("Function not found: nope:staging"), "{text}");
    }

    #[test]
    fn default_options_do_not_retry() {
        let options = Options::default();
        assert_eq!(options.retries, 0);
        assert_eq!(options.connect_timeout, Duration::from_secs(3));
        assert_eq!(options.read_timeout, Duration::from_secs(30));
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let client = client(&sdk, &options);
        let config = client.config();
        assert_eq!(config.retry_config().map(|r| r.max_attempts()), Some(1));
        let timeouts = config.timeout_config().unwrap();
        assert_eq!(timeouts.read_timeout(), Some(Duration::from_secs(30)));
        assert_eq!(timeouts.connect_timeout(), Some(Duration::from_secs(3)));
        assert!(config.http_client().is_some());
    }

    #[tokio::test]
    async fn an_invalid_target_sends_nothing() {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let client = client(&sdk, &Options::default());
        let report = warm(&client, &Target::new("f", "staging", 0)).await;
        assert_eq!((report.requested, report.errors), (0, 1));
    }
}
