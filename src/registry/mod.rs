//! A small OCI Distribution client: references, credentials, transport, manifests, blobs and the copy.
//!
//! Written for this tool rather than taken from `oci-client`, whose uploads take the whole blob in memory
//! (or split it into several PATCH requests, which ECR mishandles); a promotion must stream each blob from
//! one registry into the other with bounded memory. It knows nothing of releases.

mod auth;
mod blob;
mod copy;
mod digest;
mod endpoints;
mod error;
mod manifest;
mod reference;
mod referrers;
mod tags;
mod transport;

use anyhow::{Context, Result};
use aws_config::SdkConfig;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::sync::OnceCell;

pub use copy::{CopyOptions, CopyReport, Inspection, copy_image, copy_inspected, inspect};
pub use digest::Digest;
pub use endpoints::Endpoints;
pub use error::RegistryError;
pub use reference::{EcrHost, Pointer, Reference, Repository, valid_tag};
pub use referrers::copy_referrers;
pub use transport::{Registry, error_chain};

/// Which side of a copy a registry is on: the source may need the staging account's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    Source,
    Target,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Source => "source",
            Side::Target => "target",
        })
    }
}

/// Opens registries: picks the base URL and fetches the credentials, loading AWS configuration only when an
/// ECR host needs it (copies between other registries never touch AWS).
pub struct Connector {
    endpoints: Endpoints,
    /// HTTP clients, built on first use: one that verifies TLS with the system's roots, and one for
    /// registries reached over plain http (the local world), which skips loading those roots — a tenth of a
    /// copy that moves nothing. A plain-http registry that redirects to https would need the other; none
    /// of the local world's does.
    tls: OnceLock<reqwest::Client>,
    plain: OnceLock<reqwest::Client>,
    source_role: Option<String>,
    stall: Duration,
    aws: OnceCell<SdkConfig>,
    source_aws: OnceCell<SdkConfig>,
}

fn http_client(tls: bool) -> Result<reqwest::Client> {
    let builder = reqwest::Client::builder()
        .user_agent(concat!("ecr-promote/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        // No read_timeout: reqwest counts it from the start of a request, so it would cut off every upload
        // longer than the limit. Stalls are caught per request instead (`Registry::stall`).
        .connect_timeout(std::time::Duration::from_secs(10));
    let builder = if tls {
        builder
    } else {
        builder.tls_certs_only(Vec::<reqwest::Certificate>::new())
    };
    builder.build().context("building the HTTP client")
}

impl Connector {
    pub fn new(endpoints: Endpoints, source_role: Option<String>, stall: Duration) -> Connector {
        Connector {
            endpoints,
            tls: OnceLock::new(),
            plain: OnceLock::new(),
            source_role,
            stall,
            aws: OnceCell::new(),
            source_aws: OnceCell::new(),
        }
    }

    fn http(&self, tls: bool) -> Result<reqwest::Client> {
        let cell = if tls { &self.tls } else { &self.plain };
        if let Some(client) = cell.get() {
            return Ok(client.clone());
        }
        let client = http_client(tls)?;
        Ok(cell.get_or_init(|| client).clone())
    }

    /// AWS configuration as the SDK finds it (environment, profile, SSO, container or instance role).
    pub async fn aws(&self) -> Result<&SdkConfig> {
        Ok(self
            .aws
            .get_or_try_init(|| crate::aws::load(self.stall))
            .await?)
    }

    async fn aws_for(&self, side: Side) -> Result<&SdkConfig> {
        match (&self.source_role, side) {
            (Some(role), Side::Source) => {
                let base = self.aws().await?;
                Ok(self
                    .source_aws
                    .get_or_init(|| crate::aws::assume_role(base, role))
                    .await)
            }
            _ => self.aws().await,
        }
    }

    pub async fn connect(&self, host: &str, side: Side) -> Result<Registry> {
        let base = self.endpoints.base_url(host).map_err(anyhow::Error::msg)?;
        let (credentials, origin) = match EcrHost::parse(host) {
            Some(ecr) => {
                let role = match (&self.source_role, side) {
                    (Some(role), Side::Source) => format!(" as role {role}"),
                    _ => String::new(),
                };
                let token = auth::ecr_token(self.aws_for(side).await?, &ecr, host)
                    .await
                    .with_context(|| format!("opening the {side} registry {host}{role}"))?;
                (
                    Some(token),
                    format!("ECR token for account {}{role}", ecr.account),
                )
            }
            None => match auth::docker_config(host)? {
                Some(credentials) => (
                    Some(credentials),
                    "credentials from the Docker config".to_owned(),
                ),
                None => (
                    None,
                    "anonymous: no Docker config entry for this host".to_owned(),
                ),
            },
        };
        let http = self.http(base.scheme() == "https")?;
        let mut registry = Registry::new(host, base, http, credentials, origin);
        registry.stall = self.stall;
        Ok(registry)
    }
}
