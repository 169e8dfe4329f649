//! The AWS SDK configuration every command's clients are built from.
//!
//! The standard chain decides credentials and endpoint (`AWS_ENDPOINT_URL`, `AWS_PROFILE`,
//! `~/.aws/config`, ...); `up.json`'s `profile` selects a profile and its first `regions` entry
//! the region, unless `AWS_REGION` says otherwise. TLS is rustls with *ring* (see tests/Cargo.toml).

use aws_config::{BehaviorVersion, Region, SdkConfig};
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
    if std::env::var_os("AWS_REGION").is_none() && std::env::var_os("AWS_DEFAULT_REGION").is_none()
    {
        if let Some(region) = config.regions.first() {
            loader = loader.region(Region::new(region.clone()));
        }
    }
    loader.load().await
}
