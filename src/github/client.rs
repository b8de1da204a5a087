//! The calls of GitHub's REST API that deployments need: create a deployment, add a status to it, and, for a
//! GitHub App, find its installation and take an installation token. Every request carries the headers GitHub
//! asks of API clients (its media type, the API version, a User-Agent, which GitHub requires, and the
//! credential as a Bearer token).

use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;
use url::Url;

use crate::intake::Secret;

/// The REST API version every request is written against.
pub const API_VERSION: &str = "2022-11-28";

/// GitHub's answer, when it is not the one asked for: what went wrong, and what to fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

pub struct Client {
    http: reqwest::Client,
    api: Url,
    token: Secret,
    /// Set once GitHub could not be reached: the run's other calls are not tried, so that a GitHub that
    /// swallows connections costs a deploy one connect timeout, not one per status owed.
    unreachable: AtomicBool,
}

impl Client {
    pub fn new(http: reqwest::Client, api: Url, token: Secret) -> Client {
        Client {
            http,
            api,
            token,
            unreachable: AtomicBool::new(false),
        }
    }

    /// Creates a deployment in `repository` (`owner/name`) and returns its id.
    pub async fn create_deployment(&self, repository: &str, body: &Value) -> Result<u64, Refused> {
        let answer = self
            .post(&format!("repos/{repository}/deployments"), repository, body)
            .await?;
        answer.get("id").and_then(Value::as_u64).ok_or_else(|| {
            Refused(format!(
                "GitHub created a deployment in {repository} but its answer has no id: {answer}"
            ))
        })
    }

    /// The id of the GitHub App's installation on `repository`; the client's credential is the App's JWT.
    pub async fn installation(&self, repository: &str) -> Result<u64, Refused> {
        let answer = self
            .send(
                reqwest::Method::GET,
                &format!("repos/{repository}/installation"),
                repository,
                None,
            )
            .await?;
        answer.get("id").and_then(Value::as_u64).ok_or_else(|| {
            Refused(format!(
                "GitHub's installation of the App on {repository} has no id"
            ))
        })
    }

    /// A token of installation `installation` limited to `body`'s repositories and permissions; the client's
    /// credential is the App's JWT.
    pub async fn installation_token(
        &self,
        installation: u64,
        repository: &str,
        body: &Value,
    ) -> Result<String, Refused> {
        let answer = self
            .send(
                reqwest::Method::POST,
                &format!("app/installations/{installation}/access_tokens"),
                repository,
                Some(body),
            )
            .await?;
        answer
            .get("token")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                Refused(format!(
                    "GitHub's installation token for {repository} has no token"
                ))
            })
    }

    /// Adds a status to deployment `id` of `repository`.
    pub async fn create_status(
        &self,
        repository: &str,
        id: u64,
        body: &Value,
    ) -> Result<(), Refused> {
        self.post(
            &format!("repos/{repository}/deployments/{id}/statuses"),
            repository,
            body,
        )
        .await
        .map(|_| ())
    }

    async fn post(&self, path: &str, repository: &str, body: &Value) -> Result<Value, Refused> {
        self.send(reqwest::Method::POST, path, repository, Some(body))
            .await
    }

    /// Sends one request; GitHub's answer to a request that worked (200 or 201), as JSON.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        repository: &str,
        body: Option<&Value>,
    ) -> Result<Value, Refused> {
        if self.unreachable.load(Ordering::Relaxed) {
            return Err(Refused(format!(
                "GitHub at {} (PROMOTE_GITHUB_API_URL) could not be reached earlier in this run; not tried again",
                self.api
            )));
        }
        // Joined onto a base that ends in '/', so that GitHub Enterprise's `https://host/api/v3` keeps its path.
        let mut base = self.api.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let url = base.join(path).map_err(|e| {
            Refused(format!(
                "cannot form the URL of {path} from {} (PROMOTE_GITHUB_API_URL): {e}",
                self.api
            ))
        })?;
        let mut request = self
            .http
            .request(method.clone(), url)
            .header(reqwest::header::ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", API_VERSION)
            .bearer_auth(self.token.reveal());
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let sent = request.send().await;
        let response = sent.map_err(|e| {
            self.unreachable.store(true, Ordering::Relaxed);
            Refused(format!(
                "cannot reach GitHub at {} (PROMOTE_GITHUB_API_URL): {}",
                self.api,
                crate::outside::scrub(&format!("{e:#}"), &[self.token.reveal()])
            ))
        })?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status == reqwest::StatusCode::CREATED || status == reqwest::StatusCode::OK {
            return serde_json::from_str(&text).map_err(|e| {
                Refused(format!(
                    "GitHub answered {path} with something not JSON: {e}"
                ))
            });
        }
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| crate::outside::one_line(&text).chars().take(200).collect());
        let message = crate::outside::scrub(&message, &[self.token.reveal()]);
        let fix = match status.as_u16() {
            401 => "the credential is not accepted: store a valid fine-grained token (or, with \
                    PROMOTE_GITHUB_APP_ID, the App's private key) in the secret PROMOTE_GITHUB_TOKEN_SECRET_ARN names"
                .to_owned(),
            403 | 404 => format!(
                "the token may not create deployments in {repository}: give it \"Deployments: read and write\" \
                 on {repository} (a GitHub App: install it there with that permission; and check the \
                 repository's name)"
            ),
            409 | 422 => format!("GitHub refused the request for {repository}"),
            _ if status.is_server_error() => {
                "GitHub failed; what is owed is retried on the next report".to_owned()
            }
            _ => "unexpected answer".to_owned(),
        };
        Err(Refused(format!(
            "GitHub answered {status} to {method} {path}: {message} ({fix})"
        )))
    }
}
