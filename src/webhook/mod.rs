//! The webhook function: GitHub's release webhook, checked at the edge, put on the release queue, and the
//! production pipeline started. `src/bin/ecr-promote-webhook.rs` runs it under the Lambda runtime.
//!
//! `decide` rules on a request with no AWS call (signature, event, policy, size); `act` hands a promotion
//! on (queue, pipeline) and `claims` remembers how far each delivery got; `intake::secrets` keeps the
//! webhook secret's current and previous values.

pub mod act;
pub mod claims;
pub mod decide;
pub mod event;
pub mod settings;

use std::time::Duration;

use lambda_http::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::intake::Policy;
use crate::intake::secrets::{Secrets, WEBHOOK_SECRET};
use act::{Dispatcher, Handed};
use decide::Verdict;
pub use settings::Settings;

/// GitHub waits 10 s for an answer. Past this, the delivery is answered as failed (redelivering completes
/// it) rather than left for GitHub to time out with no word of what happened.
pub const DEADLINE: Duration = Duration::from_secs(8);
/// An AWS call attempt with no answer for this long is abandoned and retried, well within [`DEADLINE`].
pub const STALL: Duration = Duration::from_secs(2);

pub struct Webhook {
    policy: Policy,
    secrets: Secrets,
    dispatcher: Dispatcher,
}

/// The function's answer to one delivery: the HTTP status GitHub records, and a line saying why.
#[derive(Debug, PartialEq)]
pub struct Answer {
    pub status: StatusCode,
    /// One word or two: `queued`, `already received`, `ignored`, `unauthorized`, `malformed`, `too large`,
    /// `failed`.
    pub outcome: &'static str,
    pub detail: String,
    pub release: Option<String>,
}

impl Answer {
    fn new(status: StatusCode, outcome: &'static str, detail: impl Into<String>) -> Answer {
        Answer {
            status,
            outcome,
            detail: detail.into(),
            release: None,
        }
    }

    fn about(mut self, release: &str) -> Answer {
        self.release = Some(release.to_owned());
        self
    }
}

impl Webhook {
    /// The clients, built once for every invocation of this instance.
    pub fn new(config: &aws_config::SdkConfig, settings: Settings) -> Webhook {
        Webhook {
            secrets: Secrets::new(config, &settings.secret_arn, WEBHOOK_SECRET),
            dispatcher: Dispatcher::new(
                config,
                &settings.queue_url,
                &settings.pipeline_name,
                settings.table.as_deref(),
            ),
            policy: settings.policy,
        }
    }

    /// The answer to one Lambda event (API Gateway REST or HTTP API, or function URL), with one log line,
    /// whatever the event holds.
    pub async fn invoke(&self, event: &Value) -> Value {
        let (headers, answer) = match event::open(event) {
            Err(reason) => (
                HeaderMap::new(),
                Answer::new(StatusCode::BAD_REQUEST, "malformed", reason),
            ),
            Ok(request) => {
                let answer = match &request.body {
                    Ok(body) => self.answer(&request.headers, body).await,
                    Err(reason) => Answer::new(StatusCode::BAD_REQUEST, "malformed", reason),
                };
                (request.headers, answer)
            }
        };
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("-")
                .to_owned()
        };
        let (delivery, event) = (header("x-github-delivery"), header("x-github-event"));
        let release = answer.release.as_deref().unwrap_or("-");
        // Nothing here can carry the secret: the detail lines are built from the payload and AWS errors.
        if answer.status.is_server_error() {
            tracing::error!(status = answer.status.as_u16(), outcome = answer.outcome, %delivery, %event, %release, "{}", answer.detail);
        } else if answer.status.is_client_error() {
            tracing::warn!(status = answer.status.as_u16(), outcome = answer.outcome, %delivery, %event, %release, "{}", answer.detail);
        } else {
            tracing::info!(status = answer.status.as_u16(), outcome = answer.outcome, %delivery, %event, %release, "{}", answer.detail);
        }
        event::answer(
            answer.status,
            &json!({"outcome": answer.outcome, "detail": answer.detail, "release": answer.release}),
        )
    }

    /// What GitHub is told about the delivery of `body` with `headers`, within [`DEADLINE`].
    pub async fn answer(&self, headers: &HeaderMap, body: &[u8]) -> Answer {
        match tokio::time::timeout(DEADLINE, self.answer_unbounded(headers, body)).await {
            Ok(answer) => answer,
            Err(_) => Answer::new(
                StatusCode::GATEWAY_TIMEOUT,
                "failed",
                format!(
                    "not done within {DEADLINE:?} (GitHub waits 10 s): redeliver from GitHub to complete it"
                ),
            ),
        }
    }

    async fn answer_unbounded(&self, headers: &HeaderMap, body: &[u8]) -> Answer {
        let secrets = match self.secrets.values().await {
            Ok(secrets) => secrets,
            Err(error) => return failed(&error),
        };
        let mut verdict = decide::decide(headers, body, &self.policy, &secrets);
        if matches!(verdict, Verdict::Unauthorized(_)) {
            // Perhaps signed with a value set after the cache was filled.
            match self.secrets.reread().await {
                Ok(secrets) => verdict = decide::decide(headers, body, &self.policy, &secrets),
                Err(error) => return failed(&error),
            }
        }
        match verdict {
            Verdict::Unauthorized(reason) => Answer::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                format!(
                    "{reason}: check the webhook's secret on GitHub against PROMOTE_WEBHOOK_SECRET_ARN"
                ),
            ),
            Verdict::Ignore(reason) => Answer::new(StatusCode::OK, "ignored", reason),
            Verdict::Malformed(reason) => Answer::new(StatusCode::BAD_REQUEST, "malformed", reason),
            Verdict::TooLarge(reason) => {
                Answer::new(StatusCode::PAYLOAD_TOO_LARGE, "too large", reason)
            }
            Verdict::Promote(promotion) => match self.dispatcher.hand_on(&promotion).await {
                Ok(Handed::Started { execution, resumed }) => Answer::new(
                    StatusCode::ACCEPTED,
                    "queued",
                    format!(
                        "release {} queued{}; pipeline execution {execution} started",
                        promotion.tag,
                        if resumed {
                            " by an earlier attempt"
                        } else {
                            ""
                        }
                    ),
                ),
                Ok(Handed::AlreadyReceived) => Answer::new(
                    StatusCode::OK,
                    "already received",
                    format!(
                        "delivery {} already queued release {} and started the pipeline",
                        promotion.delivery, promotion.tag
                    ),
                ),
                Err(error) => failed(&error),
            }
            .about(&promotion.tag),
        }
    }
}

/// An AWS service the function needs did not answer as it should: 502, so that GitHub shows the delivery
/// as failed and someone redelivers it once the cause is fixed.
fn failed(error: &anyhow::Error) -> Answer {
    Answer::new(StatusCode::BAD_GATEWAY, "failed", format!("{error:#}"))
}
