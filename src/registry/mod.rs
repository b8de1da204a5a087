//! A small OCI Distribution client: references, credentials, transport, manifests, blobs and the copy.
//!
//! Written for this tool rather than taken from `oci-client`. Judged first against its early releases, whose
//! uploads took the whole blob in memory or split it into several PATCH requests (which ECR mishandles), and
//! again against 0.18.0, which can stream one monolithic upload (`push_blob_stream` with
//! `use_monolithic_push`): what still needs this client is the copy's own contract — each blob streamed
//! from one registry into the other with the source's digest proven before its last byte is released, a
//! stall limit per request rather than per connection, and a transfer slot freed when the bytes are sent.
//! It knows nothing of releases.

mod auth;
mod blob;
mod copy;
mod digest;
mod endpoints;
mod error;
mod manifest;
mod progress;
mod reference;
mod referrers;
mod tags;
mod transport;

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::sync::Mutex;

use crate::aws::Aws;

pub use copy::{CopyOptions, CopyReport, Inspection, copy_image, copy_inspected, inspect};
pub use digest::Digest;
pub use endpoints::Endpoints;
pub use error::RegistryError;
pub use progress::Progress;
pub use reference::{EcrHost, Pointer, Reference, Repository, valid_tag};
pub use referrers::copy_referrers;
pub use transport::Registry;

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

/// Opens registries and keeps them open: one connection (one ECR token) per registry and credentials for the
/// whole run, whoever asks. Its AWS configuration is handed in; copies between registries that are not ECR
/// need none.
pub struct Connector {
    endpoints: Endpoints,
    aws: Option<Aws>,
    stall: Duration,
    /// HTTP clients, built on first use: one that verifies TLS with the system's roots, and one for
    /// registries reached over plain http (the local world), which skips loading those roots — a tenth of a
    /// copy that moves nothing. A plain-http registry that redirects to https would need the other; none
    /// of the local world's does.
    tls: OnceLock<reqwest::Client>,
    plain: OnceLock<reqwest::Client>,
    open: Mutex<HashMap<(String, Side), Registry>>,
}

fn http_client(tls: bool) -> Result<reqwest::Client, String> {
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
    builder
        .build()
        .map_err(|e| format!("building the HTTP client: {e}"))
}

impl Connector {
    pub fn new(endpoints: Endpoints, aws: Option<Aws>, stall: Duration) -> Connector {
        Connector {
            endpoints,
            aws,
            stall,
            tls: OnceLock::new(),
            plain: OnceLock::new(),
            open: Mutex::new(HashMap::new()),
        }
    }

    fn http(&self, tls: bool) -> Result<reqwest::Client, String> {
        let cell = if tls { &self.tls } else { &self.plain };
        if let Some(client) = cell.get() {
            return Ok(client.clone());
        }
        let client = http_client(tls)?;
        Ok(cell.get_or_init(|| client).clone())
    }

    /// The registry at `host`, as seen from `side`: opened on first use, then shared. Both sides share one
    /// connection unless the source has a role of its own.
    pub async fn connect(&self, host: &str, side: Side) -> Result<Registry, RegistryError> {
        let has_role = self.aws.as_ref().is_some_and(|aws| aws.source.is_some());
        let side = if has_role { side } else { Side::Target };
        let mut open = self.open.lock().await;
        if let Some(registry) = open.get(&(host.to_owned(), side)) {
            return Ok(registry.clone());
        }
        let registry =
            self.open_registry(host, side)
                .await
                .map_err(|detail| RegistryError::Open {
                    host: host.to_owned(),
                    detail,
                })?;
        open.insert((host.to_owned(), side), registry.clone());
        Ok(registry)
    }

    async fn open_registry(&self, host: &str, side: Side) -> Result<Registry, String> {
        let base = self.endpoints.base_url(host)?;
        let (credentials, origin) = match EcrHost::parse(host) {
            Some(ecr) => {
                let aws = self
                    .aws
                    .as_ref()
                    .ok_or("an ECR registry needs AWS credentials and a region")?;
                // `connect` asks for the source side only when there is a source role.
                let (config, role) = match side {
                    Side::Source => (
                        aws.for_source(),
                        " as the source role (PROMOTE_SOURCE_ROLE_ARN)",
                    ),
                    Side::Target => (&aws.config, ""),
                };
                let token = auth::ecr_token(config, &ecr, host).await?;
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
        Ok(Registry::new(
            host,
            base,
            http,
            credentials,
            origin,
            self.stall,
        ))
    }
}
