//! What can go wrong talking to AWS, classified by the SDK error's type and code (never its
//! message text), each variant a line that says what to do.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Error codes AWS services answer when the caller's identity lacks a permission.
const ACCESS_DENIED: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnauthorizedAccess",
    "AuthorizationError",
    "Forbidden",
    "ForbiddenException",
];

/// Error codes AWS services answer when the credentials themselves are wrong or expired.
const BAD_CREDENTIALS: &[&str] = &[
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "InvalidSignatureException",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidAccessKeyId",
];

/// A failed AWS call, as the user should read it.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// No region anywhere in the chain.
    #[error("no AWS region: set AWS_REGION or \"regions\" in up.json")]
    NoRegion,
    /// The credential chain found nothing.
    #[error(
        "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or \"profile\" in up.json ({cause})"
    )]
    NoCredentials {
        /// What the chain said.
        cause: String,
    },
    /// AWS refused the credentials.
    #[error(
        "AWS rejected the credentials ({code}) calling {action}: check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the profile"
    )]
    BadCredentials {
        /// The IAM action that was called.
        action: String,
        /// The service's error code.
        code: String,
    },
    /// The identity lacks an IAM permission.
    #[error("missing permission {action} on {resource}: grant it to your AWS identity")]
    MissingPermission {
        /// The IAM action, e.g. `lambda:CreateFunction`.
        action: String,
        /// What it was called on.
        resource: String,
    },
    /// The endpoint did not answer.
    #[error("cannot reach {endpoint}: {cause}; check AWS_ENDPOINT_URL and the network")]
    Unreachable {
        /// `AWS_ENDPOINT_URL` or a description of AWS's endpoints.
        endpoint: String,
        /// The connection failure.
        cause: String,
    },
    /// The service answered with an error.
    #[error("{action} on {resource} failed: {code}: {message}")]
    Service {
        /// The IAM action.
        action: String,
        /// What it was called on.
        resource: String,
        /// The service's error code.
        code: String,
        /// The service's message.
        message: String,
    },
    /// Anything else the SDK reported (a malformed answer, a bad request built locally).
    #[error("{action} on {resource} failed: {cause}")]
    Other {
        /// The IAM action.
        action: String,
        /// What it was called on.
        resource: String,
        /// The SDK's full error chain.
        cause: String,
    },
}

impl AwsError {
    /// Classifies `err`, the failure of calling `action` on `resource` through `endpoint`.
    pub fn from_sdk<E>(
        action: &str,
        resource: &str,
        endpoint: &str,
        err: SdkError<E, HttpResponse>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        if let Some(cause) = credentials_failure(&err) {
            return Self::NoCredentials { cause };
        }
        match &err {
            SdkError::DispatchFailure(failure) if failure.is_io() || failure.is_timeout() => {
                Self::Unreachable {
                    endpoint: endpoint.to_owned(),
                    cause: innermost(&err),
                }
            }
            SdkError::TimeoutError(_) => Self::Unreachable {
                endpoint: endpoint.to_owned(),
                cause: "timed out".to_owned(),
            },
            SdkError::ServiceError(service) => {
                let e = service.err();
                let code = e.code().unwrap_or("Unknown").to_owned();
                // An answer without a code the SDK can read (some emulators) still says 403.
                let forbidden = e.code().is_none() && service.raw().status().as_u16() == 403;
                if ACCESS_DENIED.contains(&code.as_str()) || forbidden {
                    Self::MissingPermission {
                        action: action.to_owned(),
                        resource: resource.to_owned(),
                    }
                } else if BAD_CREDENTIALS.contains(&code.as_str()) {
                    Self::BadCredentials {
                        action: action.to_owned(),
                        code,
                    }
                } else {
                    Self::Service {
                        action: action.to_owned(),
                        resource: resource.to_owned(),
                        code,
                        message: e.message().unwrap_or_default().to_owned(),
                    }
                }
            }
            _ => Self::Other {
                action: action.to_owned(),
                resource: resource.to_owned(),
                cause: DisplayErrorContext(&err).to_string(),
            },
        }
    }
}

/// The credential chain's complaint, when that is why the request was never sent.
fn credentials_failure<E, R>(err: &SdkError<E, R>) -> Option<String>
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(creds) =
            e.downcast_ref::<aws_credential_types::provider::error::CredentialsError>()
        {
            return Some(creds.to_string());
        }
        source = e.source();
    }
    None
}

/// The last error in `err`'s source chain (for connection failures: "Connection refused").
fn innermost(err: &(dyn std::error::Error + 'static)) -> String {
    let mut last = err;
    while let Some(next) = last.source() {
        last = next;
    }
    let text = last.to_string();
    if text.is_empty() {
        DisplayErrorContext(err).to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    #[derive(Debug)]
    struct FakeError(ErrorMetadata);

    impl std::fmt::Display for FakeError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "fake")
        }
    }

    impl std::error::Error for FakeError {}

    impl ProvideErrorMetadata for FakeError {
        fn meta(&self) -> &ErrorMetadata {
            &self.0
        }
    }

    fn service_error(code: &str) -> SdkError<FakeError, HttpResponse> {
        let meta = ErrorMetadata::builder()
            .code(code)
            .message("User: x is not authorized")
            .build();
        SdkError::service_error(
            FakeError(meta),
            HttpResponse::new(StatusCode::try_from(403).unwrap(), SdkBody::empty()),
        )
    }

    #[test]
    fn access_denied_names_the_action_and_resource() {
        let err = AwsError::from_sdk(
            "lambda:CreateFunction",
            "function demo",
            "http://x",
            service_error("AccessDeniedException"),
        );
        assert_eq!(
            err.to_string(),
            "missing permission lambda:CreateFunction on function demo: grant it to your AWS identity"
        );
    }

    #[test]
    fn other_codes_keep_the_service_message() {
        let err = AwsError::from_sdk(
            "iam:CreateRole",
            "role demo-function",
            "http://x",
            service_error("MalformedPolicyDocument"),
        );
        assert!(
            matches!(err, AwsError::Service { ref code, .. } if code == "MalformedPolicyDocument")
        );
    }

    #[test]
    fn rejected_credentials_are_told_apart() {
        let err = AwsError::from_sdk(
            "iam:GetRole",
            "role demo-function",
            "http://x",
            service_error("InvalidClientTokenId"),
        );
        assert!(matches!(err, AwsError::BadCredentials { .. }));
    }
}
