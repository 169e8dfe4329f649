//! The AWS SDK configuration every command's clients are built from, and the clients.
//!
//! The standard chain decides credentials and endpoint (`AWS_ENDPOINT_URL`, `AWS_PROFILE`,
//! `~/.aws/config`, ...); `up.json`'s `profile` selects a profile and its first `regions` entry
//! the region, unless `AWS_REGION` says otherwise. TLS is rustls with *ring* (see tests/Cargo.toml).
//!
//! [`Clients`] holds one client per service `up deploy` talks to, all built from one
//! [`SdkConfig`] (so tests point them anywhere) and all sharing one [`CallLog`] interceptor that
//! records every request sent: `up deploy --output json` reports the count.

use crate::error::AwsError;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use std::sync::{Arc, Mutex};
use up_config::Config;

/// The SDK configuration for `config`'s app.
pub async fn sdk_config(config: &Config) -> SdkConfig {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http);
    if let Some(profile) = &config.profile {
        loader = loader.profile_name(profile);
    }
    if std::env::var_os("AWS_REGION").is_none()
        && std::env::var_os("AWS_DEFAULT_REGION").is_none()
        && let Some(region) = config.regions.first()
    {
        loader = loader.region(Region::new(region.clone()));
    }
    loader.load().await
}

/// Every AWS request the clients sent, as `Service.Operation`, in order (retries included).
#[derive(Debug, Clone, Default)]
pub struct CallLog {
    calls: Arc<Mutex<Vec<String>>>,
}

impl CallLog {
    /// How many requests were sent.
    pub fn count(&self) -> usize {
        self.calls.lock().map_or(0, |c| c.len())
    }

    /// The requests sent, as `Service.Operation`.
    pub fn operations(&self) -> Vec<String> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "up-call-log"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let name = cfg.load::<Metadata>().map_or_else(
            || "unknown".to_owned(),
            |m| format!("{}.{}", m.service(), m.name()),
        );
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(name);
        }
        Ok(())
    }
}

/// The AWS clients of one command run, and what they share.
#[derive(Debug, Clone)]
pub struct Clients {
    /// Lambda.
    pub lambda: aws_sdk_lambda::Client,
    /// IAM.
    pub iam: aws_sdk_iam::Client,
    /// API Gateway v1 (REST APIs).
    pub apigateway: aws_sdk_apigateway::Client,
    /// API Gateway v2 (HTTP APIs).
    pub apigatewayv2: aws_sdk_apigatewayv2::Client,
    /// CloudWatch Events (the warm schedule).
    pub events: aws_sdk_cloudwatchevents::Client,
    /// S3 (zips over Lambda's direct upload limit).
    pub s3: aws_sdk_s3::Client,
    /// CloudWatch Logs (the function's log groups).
    pub logs: aws_sdk_cloudwatchlogs::Client,
    /// STS (the account id when no ARN tells it).
    pub sts: aws_sdk_sts::Client,
    /// The region every client talks to.
    pub region: String,
    /// Where requests go: `AWS_ENDPOINT_URL` when set, else a description of AWS's endpoints.
    pub endpoint: String,
    /// Every request sent so far.
    pub calls: CallLog,
    /// The SDK configuration the clients were built from.
    pub sdk: SdkConfig,
}

impl Clients {
    /// Clients for `sdk`, or [`AwsError::NoRegion`] when it has no region.
    pub fn new(sdk: &SdkConfig) -> Result<Self, AwsError> {
        let region = sdk.region().ok_or(AwsError::NoRegion)?.to_string();
        let endpoint = sdk
            .endpoint_url()
            .map_or_else(|| format!("the AWS endpoints of {region}"), str::to_owned);
        let calls = CallLog::default();
        let lambda = aws_sdk_lambda::Client::from_conf(
            aws_sdk_lambda::config::Builder::from(sdk)
                .interceptor(calls.clone())
                .build(),
        );
        let iam = aws_sdk_iam::Client::from_conf(
            aws_sdk_iam::config::Builder::from(sdk)
                .interceptor(calls.clone())
                .build(),
        );
        let apigateway = aws_sdk_apigateway::Client::from_conf(
            aws_sdk_apigateway::config::Builder::from(sdk)
                .interceptor(calls.clone())
                .build(),
        );
        let apigatewayv2 = aws_sdk_apigatewayv2::Client::from_conf(
            aws_sdk_apigatewayv2::config::Builder::from(sdk)
                .interceptor(calls.clone())
                .build(),
        );
        let events = aws_sdk_cloudwatchevents::Client::from_conf(
            aws_sdk_cloudwatchevents::config::Builder::from(sdk)
                .interceptor(calls.clone())
                .build(),
        );
        // Path-style: emulators serve buckets under the endpoint's path, not as subdomains.
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(sdk)
                .force_path_style(sdk.endpoint_url().is_some())
                .interceptor(calls.clone())
                .build(),
        );
        let logs = aws_sdk_cloudwatchlogs::Client::from_conf(
            aws_sdk_cloudwatchlogs::config::Builder::from(sdk)
                .interceptor(calls.clone())
                .build(),
        );
        let sts = aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(sdk)
                .interceptor(calls.clone())
                .build(),
        );
        Ok(Self {
            lambda,
            iam,
            apigateway,
            apigatewayv2,
            events,
            s3,
            logs,
            sts,
            region,
            endpoint,
            calls,
            sdk: sdk.clone(),
        })
    }

    /// Clients for `config`'s app: [`sdk_config`] then [`Clients::new`].
    pub async fn for_config(config: &Config) -> Result<Self, AwsError> {
        Self::new(&sdk_config(config).await)
    }

    /// Classifies an SDK error of `action` on `resource` (see [`AwsError::from_sdk`]).
    pub fn error<E>(
        &self,
        action: &str,
        resource: &str,
        err: aws_smithy_runtime_api::client::result::SdkError<
            E,
            aws_smithy_runtime_api::client::orchestrator::HttpResponse,
        >,
    ) -> AwsError
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata
            + std::error::Error
            + Send
            + Sync
            + 'static,
    {
        AwsError::from_sdk(action, resource, &self.endpoint, err)
    }
}
