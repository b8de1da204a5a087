//! AWS configuration, loaded the SDK's way so that `AWS_REGION`, `AWS_PROFILE`, SSO, container and instance
//! roles and `AWS_ENDPOINT_URL[_<SERVICE>]` all work unchanged. Built once, by the command layer, and handed
//! to the queue, the ledger and the registry connector.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::usage::Usage;

/// The AWS configuration of one run: the caller's own, and the source role's when one is set.
#[derive(Clone, Debug)]
pub struct Aws {
    pub config: SdkConfig,
    /// The configuration acting as `PROMOTE_SOURCE_ROLE_ARN`, for every call touching the source registry.
    pub source: Option<SdkConfig>,
}

impl Aws {
    /// `stall`: an API call attempt with no answer for this long is abandoned, and the SDK's retry policy
    /// tries it again, rather than the run hanging on it until CodeBuild's build timeout (the SDK sets no
    /// such limit). Without a region every call would fail with the SDK's account of its search; say what to
    /// set instead.
    pub async fn load(stall: Duration, source_role: Option<&str>) -> Result<Aws, Usage> {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_attempt_timeout(stall)
                    .build(),
            )
            .load()
            .await;
        if config.region().is_none() {
            return Err(Usage(
                "no AWS region: set AWS_REGION (or a region for the AWS_PROFILE in ~/.aws/config)"
                    .into(),
            ));
        }
        let source = match source_role {
            Some(role) => Some(assume_role(&config, role).await),
            None => None,
        };
        Ok(Aws { config, source })
    }

    /// The configuration for calls about the source registry.
    pub fn for_source(&self) -> &SdkConfig {
        self.source.as_ref().unwrap_or(&self.config)
    }
}

/// The same configuration acting as `role_arn` (e.g. a role in the staging account that may pull its images).
/// Credentials are fetched when first used, so a role that cannot be assumed fails the first call made with it.
pub async fn assume_role(base: &SdkConfig, role_arn: &str) -> SdkConfig {
    let provider = aws_config::sts::AssumeRoleProvider::builder(role_arn)
        .session_name("ecr-promote")
        .configure(base)
        .build()
        .await;
    base.to_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(provider),
        )
        .build()
}

/// An SDK error of any service in one line: the service's error code and message, or the chain of causes (the
/// SDK's own rendering ends in a multi-line debug dump, which is no use in a log line).
pub fn sdk_error<E, R>(error: SdkError<E, R>) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    anyhow::Error::msg(describe(&error))
}

fn describe<E, R>(error: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match error.as_service_error() {
        Some(service) => format!(
            "{}: {}",
            service.code().unwrap_or("service error"),
            service.message().unwrap_or("no message")
        ),
        None => crate::outside::one_line(&crate::outside::error_chain(error)),
    }
}
