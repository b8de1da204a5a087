//! One registry as seen over HTTP: its base URL, its credentials, retries with backoff, and the mapping of
//! its answers onto [`RegistryError`].

use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::{Response, StatusCode, header};
use url::Url;

use super::auth::Credentials;
use super::error::{ErrorBody, RegistryError, is_transient_status};
use super::reference::EcrHost;
use crate::outside::error_chain;

/// ECR's manifest size limit is 4 MiB; anything larger is not a manifest we can store there. JSON answers
/// (tag lists, referrer indexes) are held to it too.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// How often an idempotent request is tried before its failure is final, and how long to wait between.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff with full jitter, so that concurrent blob copies do not retry in lock step.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(Duration::from_secs(30));
        }
        let ceiling = self
            .first_delay
            .saturating_mul(1 << attempt.min(16))
            .min(self.max_delay);
        let jitter = RandomState::new().hash_one(attempt) % 1000;
        ceiling / 2 + ceiling.mul_f64(jitter as f64 / 2000.0)
    }
}

/// Cheap to clone: the HTTP client inside is shared.
#[derive(Clone)]
pub struct Registry {
    pub host: String,
    base: Url,
    http: reqwest::Client,
    credentials: Option<Credentials>,
    /// Said in errors so that a person knows which account's policy or token to look at.
    account: Option<String>,
    /// Said when credentials are rejected: where they came from.
    credential_origin: String,
    pub retry: RetryPolicy,
    /// How long a request may move no data (no answer, no body bytes either way) before it is given up
    /// and, where idempotent, tried again.
    pub stall: Duration,
}

/// Longest error body read; the rest of a longer one is not looked at.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

impl Registry {
    pub fn new(
        host: &str,
        base: Url,
        http: reqwest::Client,
        credentials: Option<Credentials>,
        credential_origin: String,
        stall: Duration,
    ) -> Registry {
        Registry {
            host: host.to_owned(),
            base,
            http,
            credentials,
            account: EcrHost::parse(host).map(|ecr| ecr.account),
            credential_origin,
            retry: RetryPolicy::default(),
            stall,
        }
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `/v2/<repository>/<rest>` on this registry.
    pub fn url(&self, repository: &str, rest: &str) -> Url {
        self.base
            .join(&format!("v2/{repository}/{rest}"))
            .expect("repository and path are URL-safe by construction")
    }

    /// A request carrying this registry's credentials. Only for URLs of the registry itself: redirect
    /// targets (presigned blob-storage URLs) must be fetched without them.
    pub fn request(&self, method: reqwest::Method, url: Url) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url);
        match &self.credentials {
            Some(c) => request.basic_auth(&c.username, Some(&c.password)),
            None => request,
        }
    }

    /// Sends an idempotent request, retrying throttling, server errors and dropped connections. The answer
    /// is returned whatever its status; callers turn unexpected ones into errors with [`Registry::failure`].
    pub async fn send(
        &self,
        what: &str,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Response, RegistryError> {
        self.send_tries(what, self.retry.attempts, build).await
    }

    /// [`Registry::send`] for a step inside something retried as a whole (a blob copy restarts from its
    /// first request): one try, so that the outer retries are not multiplied by these.
    pub async fn send_once(
        &self,
        what: &str,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Response, RegistryError> {
        self.send_tries(what, 1, build).await
    }

    async fn send_tries(
        &self,
        what: &str,
        attempts: u32,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Response, RegistryError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= attempts;
            let answer = match tokio::time::timeout(self.stall, build().send()).await {
                Ok(Ok(response)) => Ok(response),
                Ok(Err(e)) => Err(error_chain(&e)),
                Err(_) => Err(self.stalled("no answer")),
            };
            match answer {
                Ok(response) if is_transient_status(response.status()) && !last => {
                    let wait = self.retry.delay(attempt, retry_after(&response));
                    tracing::warn!(registry = %self.host, status = %response.status(), ?wait, "{what}: retrying");
                    tokio::time::sleep(wait).await;
                }
                Ok(response) => return Ok(response),
                Err(detail) if !last => {
                    let wait = self.retry.delay(attempt, None);
                    tracing::warn!(registry = %self.host, error = %detail, ?wait, "{what}: retrying");
                    tokio::time::sleep(wait).await;
                }
                Err(detail) => {
                    return Err(RegistryError::Network {
                        what: what.to_owned(),
                        host: self.host.clone(),
                        detail,
                    });
                }
            }
        }
    }

    /// What a stalled request is reported as: "`doing` for 1m (PROMOTE_STALL_SECONDS)".
    pub fn stalled(&self, doing: &str) -> String {
        format!(
            "{doing} for {} (PROMOTE_STALL_SECONDS)",
            humantime::format_duration(self.stall)
        )
    }

    /// Reads a whole answer body of at most `limit` bytes, giving up if it stalls. A longer body is refused
    /// as soon as it is known to be longer (from its Content-Length, or as it arrives), never held whole.
    pub async fn body(
        &self,
        what: &str,
        mut response: Response,
        limit: usize,
    ) -> Result<Bytes, RegistryError> {
        let too_long = || RegistryError::Corrupt {
            what: what.to_owned(),
            host: self.host.clone(),
            detail: format!("the answer is over the {} limit", size_text(limit)),
        };
        if response
            .content_length()
            .is_some_and(|length| length > limit as u64)
        {
            return Err(too_long());
        }
        let read = async {
            let mut body = BytesMut::new();
            while let Some(chunk) = response.chunk().await? {
                if body.len() + chunk.len() > limit {
                    return Ok(None);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Some(body.freeze()))
        };
        match tokio::time::timeout(self.stall, read).await {
            Ok(Ok(Some(bytes))) => Ok(bytes),
            Ok(Ok(None)) => Err(too_long()),
            Ok(Err(e)) => Err(self.network(what, &e)),
            Err(_) => Err(RegistryError::Network {
                what: what.to_owned(),
                host: self.host.clone(),
                detail: self.stalled("no data"),
            }),
        }
    }

    pub fn network(&self, what: &str, error: &reqwest::Error) -> RegistryError {
        RegistryError::Network {
            what: what.to_owned(),
            host: self.host.clone(),
            detail: error_chain(error),
        }
    }

    fn account_note(&self) -> String {
        self.account
            .as_ref()
            .map(|a| format!(" (account {a})"))
            .unwrap_or_default()
    }

    /// Turns an unexpected answer into the error that names what to fix.
    pub async fn failure(&self, what: &str, repository: &str, response: Response) -> RegistryError {
        let status = response.status();
        // Error bodies are a line or two; anything longer is not worth reading.
        let body = self.body(what, response, ERROR_BODY_LIMIT).await;
        let body = ErrorBody::parse(&body.unwrap_or_default());
        match status {
            StatusCode::UNAUTHORIZED => RegistryError::Unauthorized {
                host: self.host.clone(),
                source_hint: format!(" ({})", self.credential_origin),
            },
            StatusCode::FORBIDDEN => RegistryError::Denied {
                host: self.host.clone(),
                repository: repository.to_owned(),
                account: self.account_note(),
            },
            _ if body.has_code("NAME_UNKNOWN") => self.name_unknown(repository),
            _ => RegistryError::Status {
                what: what.to_owned(),
                host: self.host.clone(),
                status,
                detail: self.scrub(&body.summary()),
            },
        }
    }

    /// Whether `other` is this same registry (after `PROMOTE_REGISTRY_ENDPOINTS`): one may mount the other's
    /// blobs.
    pub fn same_registry(&self, other: &Registry) -> bool {
        self.base == other.base
    }

    /// A registry's own words, safe to print: a registry may echo the request's credentials back.
    pub fn scrub(&self, text: &str) -> String {
        let secrets = self.credentials.as_ref().map(|c| c.secrets());
        let secrets: Vec<&str> = secrets.iter().flatten().map(String::as_str).collect();
        crate::outside::scrub(text, &secrets)
    }

    pub fn name_unknown(&self, repository: &str) -> RegistryError {
        RegistryError::NameUnknown {
            host: self.host.clone(),
            repository: repository.to_owned(),
            account: self.account_note(),
        }
    }

    /// Reads a successful answer's JSON body.
    pub async fn json<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        response: Response,
    ) -> Result<T, RegistryError> {
        let status = response.status();
        let bytes = self.body(what, response, MAX_MANIFEST_BYTES).await?;
        serde_json::from_slice(&bytes).map_err(|e| RegistryError::Status {
            what: what.to_owned(),
            host: self.host.clone(),
            status,
            detail: format!(": the answer is not the JSON expected: {e}"),
        })
    }

    /// Whether the repository exists: asked only after a miss, to tell "no such tag" from "no such
    /// repository", which some registries (Distribution) answer alike.
    pub async fn repository_exists(&self, repository: &str) -> Result<bool, RegistryError> {
        let url = self.url(repository, "tags/list?n=1");
        let response = self
            .send("listing tags", || {
                self.request(reqwest::Method::GET, url.clone())
            })
            .await?;
        match response.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.failure("listing tags", repository, response).await),
        }
    }
}

fn retry_after(response: &Response) -> Option<Duration> {
    let seconds = response.headers().get(header::RETRY_AFTER)?.to_str().ok()?;
    seconds.trim().parse().ok().map(Duration::from_secs)
}

/// `4 MiB`, `64 KiB`, `100 bytes`.
fn size_text(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_stays_under_the_cap_and_honours_retry_after() {
        let policy = RetryPolicy::default();
        for attempt in 1..10 {
            let ceiling = policy
                .first_delay
                .saturating_mul(1 << attempt)
                .min(policy.max_delay);
            let delay = policy.delay(attempt, None);
            assert!(
                delay >= ceiling / 2 && delay <= ceiling,
                "attempt {attempt}: {delay:?}"
            );
        }
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(3600))),
            Duration::from_secs(30)
        );
    }
}
