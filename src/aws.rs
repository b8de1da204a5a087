//! AWS configuration, loaded the SDK's way so that `AWS_REGION`, `AWS_PROFILE`, SSO, container and instance
//! roles and `AWS_ENDPOINT_URL[_<SERVICE>]` all work unchanged.

use aws_config::{BehaviorVersion, SdkConfig};

pub async fn load() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
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
