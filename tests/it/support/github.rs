//! GitHub `release` webhook deliveries, written from GitHub's documented payload, and the envelopes
//! the AWS routes (API Gateway REST and HTTP APIs, SNS, EventBridge) wrap them in on the way to the
//! queue.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

pub const GITHUB_REPOSITORY: &str = "acme/shop";
pub const AUTHOR: &str = "octocat";
const API: &str = "https://api.github.com";

/// One `release` event.
#[derive(Clone, Debug)]
pub struct ReleaseEvent {
    pub action: String,
    pub tag: String,
    /// A branch name or a commit SHA.
    pub target_commitish: String,
    pub published_at: String,
    /// GitHub's release id, which grows with each release created.
    pub id: u64,
    pub draft: bool,
    pub prerelease: bool,
}

impl ReleaseEvent {
    /// A published release of `tag` whose target is `target_commitish`.
    pub fn published(tag: &str, target_commitish: &str) -> ReleaseEvent {
        ReleaseEvent {
            action: "published".to_string(),
            tag: tag.to_string(),
            target_commitish: target_commitish.to_string(),
            published_at: "2026-03-02T10:15:00Z".to_string(),
            id: 1,
            draft: false,
            prerelease: false,
        }
    }

    pub fn action(mut self, action: &str) -> ReleaseEvent {
        self.action = action.to_string();
        self
    }

    pub fn published_at(mut self, published_at: &str) -> ReleaseEvent {
        self.published_at = published_at.to_string();
        self
    }

    pub fn id(mut self, id: u64) -> ReleaseEvent {
        self.id = id;
        self
    }

    pub fn draft(mut self) -> ReleaseEvent {
        self.draft = true;
        self
    }

    pub fn prerelease(mut self) -> ReleaseEvent {
        self.prerelease = true;
        self
    }

    pub fn name(&self) -> String {
        format!("Shop {}", self.tag)
    }

    pub fn html_url(&self) -> String {
        format!(
            "https://github.com/{GITHUB_REPOSITORY}/releases/tag/{}",
            self.tag
        )
    }

    /// The `release` object.
    pub fn release(&self) -> Value {
        json!({
            "url": format!("{API}/repos/{GITHUB_REPOSITORY}/releases/1"),
            "html_url": self.html_url(),
            "id": self.id,
            "author": { "login": AUTHOR, "id": 583231, "type": "User", "site_admin": false },
            "node_id": "RE_kwDOAAAAAM4AAAAB",
            "tag_name": self.tag,
            "target_commitish": self.target_commitish,
            "name": self.name(),
            "draft": self.draft,
            "prerelease": self.prerelease,
            "created_at": "2026-03-02T10:00:00Z",
            "published_at": if self.draft { Value::Null } else { json!(self.published_at) },
            "assets": [],
            "tarball_url": format!("{API}/repos/{GITHUB_REPOSITORY}/tarball/{}", self.tag),
            "zipball_url": format!("{API}/repos/{GITHUB_REPOSITORY}/zipball/{}", self.tag),
            "body": "What changed.",
        })
    }

    /// The webhook payload: action, release, repository and sender.
    pub fn payload(&self) -> Value {
        json!({
            "action": self.action,
            "release": self.release(),
            "repository": { "id": 1296269, "full_name": GITHUB_REPOSITORY, "private": true },
            "sender": { "login": AUTHOR, "id": 583231, "type": "User" },
        })
    }

    /// The queue message delivering this event in `envelope`.
    pub fn message(&self, envelope: Envelope) -> String {
        match envelope {
            Envelope::BareRelease => self.release().to_string(),
            envelope => envelope.wrap("release", &self.payload().to_string()),
        }
    }
}

/// The payload GitHub sends when a webhook is created.
pub fn ping() -> Value {
    json!({
        "zen": "Design for failure.",
        "hook_id": 109948940,
        "hook": { "type": "Repository", "id": 109948940, "active": true, "events": ["release"] },
        "repository": { "id": 1296269, "full_name": GITHUB_REPOSITORY },
        "sender": { "login": AUTHOR },
    })
}

/// How a delivery reaches the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Envelope {
    /// The payload as GitHub sent it.
    Raw,
    /// Only the `release` object, as a Lambda may forward it.
    BareRelease,
    /// An API Gateway REST API (v1) proxy event.
    ApiGatewayV1,
    /// An API Gateway HTTP API (v2) event with a base64 body.
    ApiGatewayV2,
    /// An SNS notification whose Message is the payload.
    Sns,
    /// An EventBridge event whose detail is the payload.
    EventBridge,
}

pub const ENVELOPES: [Envelope; 6] = [
    Envelope::Raw,
    Envelope::BareRelease,
    Envelope::ApiGatewayV1,
    Envelope::ApiGatewayV2,
    Envelope::Sns,
    Envelope::EventBridge,
];

/// The `X-GitHub-Delivery` id every API Gateway envelope carries.
pub const DELIVERY: &str = "72d3162e-cc78-11e3-81ab-4c9367dc0958";

impl Envelope {
    /// The queue message for a delivery of GitHub event `event` (`release`, `ping`, `push`…)
    /// whose body is `body`. A bare release has no room for anything but the release: use
    /// [`ReleaseEvent::message`].
    pub fn wrap(self, event: &str, body: &str) -> String {
        let payload = || serde_json::from_str::<Value>(body).expect("the body is JSON");
        let message = match self {
            Envelope::Raw => return body.to_string(),
            Envelope::BareRelease => panic!("a bare release carries only a release object"),
            Envelope::ApiGatewayV1 => json!({
                "resource": "/github",
                "path": "/github",
                "httpMethod": "POST",
                "headers": {
                    "Accept": "*/*",
                    "Content-Type": "application/json",
                    "Host": "abc123.execute-api.us-east-1.amazonaws.com",
                    "User-Agent": "GitHub-Hookshot/1a2b3c4",
                    "X-GitHub-Delivery": DELIVERY,
                    "X-GitHub-Event": event,
                    "X-GitHub-Hook-ID": "109948940",
                },
                "multiValueHeaders": { "X-GitHub-Event": [event] },
                "queryStringParameters": null,
                "pathParameters": null,
                "requestContext": {
                    "resourcePath": "/github",
                    "httpMethod": "POST",
                    "stage": "prod",
                    "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
                },
                "body": body,
                "isBase64Encoded": false,
            }),
            Envelope::ApiGatewayV2 => json!({
                "version": "2.0",
                "routeKey": "POST /github",
                "rawPath": "/github",
                "rawQueryString": "",
                "headers": {
                    "accept": "*/*",
                    "content-type": "application/json",
                    "user-agent": "GitHub-Hookshot/1a2b3c4",
                    "x-github-delivery": DELIVERY,
                    "x-github-event": event,
                },
                "requestContext": {
                    "http": { "method": "POST", "path": "/github", "protocol": "HTTP/1.1" },
                    "routeKey": "POST /github",
                    "stage": "$default",
                },
                "body": STANDARD.encode(body),
                "isBase64Encoded": true,
            }),
            Envelope::Sns => json!({
                "Type": "Notification",
                "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
                "TopicArn": "arn:aws:sns:us-east-1:222222222222:github-releases",
                "Subject": null,
                "Message": body,
                "Timestamp": "2026-03-02T10:15:01.000Z",
                "SignatureVersion": "1",
            }),
            Envelope::EventBridge => json!({
                "version": "0",
                "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
                "detail-type": "GitHub webhook",
                "source": "github.com",
                "account": "222222222222",
                "time": "2026-03-02T10:15:01Z",
                "region": "us-east-1",
                "resources": [],
                "detail": payload(),
            }),
        };
        message.to_string()
    }
}

/// `X-Hub-Signature-256` as GitHub computes it: `sha256=<hex HMAC-SHA256 of the raw body>`.
pub fn signature(body: &str, secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("an HMAC key");
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl Envelope {
    /// As [`Envelope::wrap`], with the delivery signed with `secret`; only the API Gateway
    /// envelopes carry the headers a signature travels in.
    pub fn wrap_signed(self, event: &str, body: &str, secret: &str) -> String {
        let header = match self {
            Envelope::ApiGatewayV1 => "X-Hub-Signature-256",
            Envelope::ApiGatewayV2 => "x-hub-signature-256",
            other => panic!("{other:?} carries no webhook headers to sign"),
        };
        let mut message: Value =
            serde_json::from_str(&self.wrap(event, body)).expect("an envelope is JSON");
        message["headers"][header] = json!(signature(body, secret));
        message.to_string()
    }
}
