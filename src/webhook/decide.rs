//! What a delivery gets, decided from the request alone: no AWS call is made here.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use lambda_http::http::HeaderMap;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::intake::{self, Policy, Reading, Secret, envelope, signature};

/// What to do with one delivery.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// 401: the signature is missing, malformed or matches no current secret. Nothing else was read.
    Unauthorized(String),
    /// 200: signed and well formed, but not a release to promote (a ping, another event, a draft…).
    Ignore(String),
    /// 400: signed, but not something `run` could read either.
    Malformed(String),
    /// 413: the queue message would be over SQS's limit.
    TooLarge(String),
    /// Queue it and start the pipeline.
    Promote(Promotion),
}

#[derive(Debug, PartialEq)]
pub struct Promotion {
    pub tag: String,
    /// `X-GitHub-Delivery`: the same on every redelivery of this delivery.
    pub delivery: String,
    /// The queue message: the request as an API Gateway (REST) proxy event, which `run` opens and whose
    /// signature it checks again.
    pub message: String,
}

/// The request headers a queued delivery keeps: what `run` reads (event, delivery id, signature, content
/// type) and what says where it came from. The rest (API Gateway's, the client's) is no one's business.
fn kept(name: &str) -> bool {
    name.starts_with("x-github-")
        || name.starts_with("x-hub-signature")
        || name == "content-type"
        || name == "user-agent"
}

/// `headers` and `body` as the function got them (`body` decoded if it came base64-encoded). `secrets`:
/// the values a signature may be made with, current first.
pub fn decide(headers: &HeaderMap, body: &[u8], policy: &Policy, secrets: &[Secret]) -> Verdict {
    // HeaderMap names are lower case whatever case the event used, so one lookup serves v1 and v2.
    let signature_header = headers
        .get("x-hub-signature-256")
        .and_then(|value| value.to_str().ok());
    let matched = match signature::verify_any(signature_header, body, secrets) {
        Ok(matched) => matched,
        Err(reason) => return Verdict::Unauthorized(reason),
    };
    let mut headers: BTreeMap<String, String> = headers
        .iter()
        .filter(|(name, _)| kept(name.as_str()))
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    if matched > 0 {
        // Signed with the previous value while the secret rotates. A `run` given the value itself
        // (PROMOTE_WEBHOOK_SECRET) knows the current one only, and one reading the secret by its ARN may
        // read it after a second rotation, so the body is signed again with the current value: the function
        // has just proven the delivery genuine, and holding the current value is all a signature proves.
        headers.insert(
            "x-hub-signature-256".into(),
            signature::sign(body, &secrets[0]),
        );
    }
    let delivery = match envelope::request(headers, body.to_vec()) {
        Ok(delivery) => delivery,
        Err(reason) => return Verdict::Malformed(reason),
    };
    let (release, delivery_id) = match intake::judge(&delivery, policy) {
        Reading::Promote { release, delivery } => (release, delivery),
        Reading::Skip(reason) => return Verdict::Ignore(reason),
        Reading::Malformed(reason) => return Verdict::Malformed(reason),
        Reading::Rejected(reason) => return Verdict::Unauthorized(reason),
    };
    let Some(delivery_id) = delivery_id.filter(|id| !id.trim().is_empty()) else {
        return Verdict::Malformed(
            "no X-GitHub-Delivery header: GitHub sends one with every delivery, and redeliveries are told apart by it"
                .into(),
        );
    };
    if let Err(reason) = release.check_image_tag() {
        // `run` would refuse it after the pipeline started; said here, it shows in GitHub's delivery log.
        return Verdict::Malformed(reason);
    }
    let message = queue_message(&delivery.headers, body);
    if message.len() > intake::MAX_MESSAGE_BYTES {
        return Verdict::TooLarge(format!(
            "the delivery makes a {}-byte queue message, over SQS's {}-byte limit",
            message.len(),
            intake::MAX_MESSAGE_BYTES
        ));
    }
    Verdict::Promote(Promotion {
        tag: release.tag_name,
        delivery: delivery_id,
        message,
    })
}

/// The body goes as text when it is UTF-8 (GitHub's always is), so that the message stays within the
/// queue's limit for the largest payloads; base64 otherwise, which `run` decodes the same way.
///
/// SQS refuses a message holding a character outside its set (see [`sqs_takes`]), and a UTF-8 body may hold
/// one, e.g. U+FFFF in release notes. Such characters are written as JSON `\uXXXX` escapes in the message:
/// the message's `body` string decodes to the very characters, and so to the very bytes, GitHub signed,
/// which `run` checks the signature over. Chosen over always sending base64 because it costs nothing for
/// the usual body (base64 makes every body a third longer, against the queue's limit), and because the
/// message keeps the form `run` has always read: messages queued before read the same.
fn queue_message(headers: &BTreeMap<String, String>, body: &[u8]) -> String {
    let (body, base64) = match std::str::from_utf8(body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (BASE64.encode(body), true),
    };
    let message = json!({
        "httpMethod": "POST",
        "headers": headers,
        "body": body,
        "isBase64Encoded": base64,
    })
    .to_string();
    escape_for_sqs(message)
}

/// Whether SQS takes `c` in a message body: #x9, #xA, #xD, #x20–#xD7FF, #xE000–#xFFFD, #x10000–#x10FFFF.
fn sqs_takes(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// `json` with every character SQS refuses as a `\uXXXX` escape. Outside strings JSON text is ASCII, and
/// serde_json already escapes control characters inside them, so what is left (U+FFFE, U+FFFF) is inside a
/// string, where the escape means the same character. Each is in the Basic Multilingual Plane: one escape.
fn escape_for_sqs(json: String) -> String {
    let mut escaped = String::with_capacity(json.len());
    for c in json.chars() {
        if sqs_takes(c) {
            escaped.push(c);
        } else {
            escaped.push_str(&format!("\\u{:04x}", u32::from(c)));
        }
    }
    escaped
}

/// StartPipelineExecution's `clientRequestToken` for a delivery: the delivery id itself when it is a valid
/// token (GitHub's are GUIDs), else its SHA-256 in hex. The same delivery always gets the same token.
pub fn request_token(delivery: &str) -> String {
    let valid = (1..=128).contains(&delivery.len())
        && delivery
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-');
    if valid {
        delivery.to_owned()
    } else {
        hex::encode(Sha256::digest(delivery.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const CURRENT: &str = "current-secret";
    const PREVIOUS: &str = "previous-secret";
    const DELIVERY: &str = "72d3162e-cc78-11e3-81ab-4c9367dc0958";

    fn policy() -> Policy {
        Policy {
            actions: vec!["published".into()],
            prereleases: false,
            webhook_secrets: Vec::new(),
        }
    }

    fn secrets() -> Vec<Secret> {
        vec![
            Secret::new(CURRENT.into(), "PROMOTE_WEBHOOK_SECRET"),
            Secret::new(PREVIOUS.into(), "PROMOTE_WEBHOOK_SECRET"),
        ]
    }

    fn sign(body: &str, secret: &str) -> String {
        signature::sign(
            body.as_bytes(),
            &Secret::new(secret.into(), "PROMOTE_WEBHOOK_SECRET"),
        )
    }

    fn payload(action: &str, draft: bool, prerelease: bool) -> String {
        json!({"action": action, "release": {"tag_name": "v1.2.0", "target_commitish": "main",
               "published_at": "2026-03-01T10:00:00Z",
            "draft": draft, "prerelease": prerelease}, "repository": {"full_name": "acme/shop"}})
        .to_string()
    }

    fn form(json: &str) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", json)
            .finish()
    }

    /// How API Gateway and function URLs hand a request to Lambda.
    #[derive(Clone, Copy, Debug)]
    enum Shape {
        /// REST API proxy event: GitHub's header case, text body.
        RestV1,
        /// REST API with binary media types: the body base64-encoded.
        RestV1Base64,
        /// HTTP API (payload 2.0): lower-case headers, base64 body.
        HttpV2,
        /// Function URL: the 2.0 shape, from a lambda-url domain.
        FunctionUrl,
    }

    const SHAPES: [Shape; 4] = [
        Shape::RestV1,
        Shape::RestV1Base64,
        Shape::HttpV2,
        Shape::FunctionUrl,
    ];

    fn event(shape: Shape, headers: &[(&str, &str)], body: &str) -> String {
        let map = |lower: bool| -> Value {
            headers
                .iter()
                .map(|(name, value)| {
                    let name = if lower {
                        name.to_ascii_lowercase()
                    } else {
                        name.to_string()
                    };
                    (name, json!(value))
                })
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
        match shape {
            Shape::RestV1 | Shape::RestV1Base64 => {
                let base64 = matches!(shape, Shape::RestV1Base64);
                json!({"resource": "/webhook", "path": "/webhook", "httpMethod": "POST", "headers": map(false),
                    "multiValueHeaders": {}, "requestContext": {"httpMethod": "POST", "resourcePath": "/webhook",
                    "stage": "prod", "requestId": "r-1", "accountId": "222222222222"},
                    "body": if base64 { BASE64.encode(body) } else { body.to_owned() }, "isBase64Encoded": base64})
            }
            Shape::HttpV2 | Shape::FunctionUrl => {
                let domain = if matches!(shape, Shape::FunctionUrl) {
                    "abcdefg.lambda-url.us-east-1.on.aws"
                } else {
                    "abc123.execute-api.us-east-1.amazonaws.com"
                };
                json!({"version": "2.0", "routeKey": if matches!(shape, Shape::FunctionUrl) { "$default" } else { "POST /webhook" },
                    "rawPath": "/webhook", "rawQueryString": "", "headers": map(true),
                    "requestContext": {"accountId": "222222222222", "apiId": "abc", "domainName": domain,
                        "http": {"method": "POST", "path": "/webhook", "protocol": "HTTP/1.1", "sourceIp": "192.30.252.1",
                            "userAgent": "GitHub-Hookshot/1"}, "requestId": "r-2", "routeKey": "$default", "stage": "$default",
                        "time": "02/Mar/2026:10:15:00 +0000", "timeEpoch": 1772446500000_i64},
                    "body": BASE64.encode(body), "isBase64Encoded": true})
            }
        }
        .to_string()
    }

    fn github_headers<'a>(
        event: &'a str,
        signature: &'a str,
        content_type: &'a str,
    ) -> Vec<(&'a str, &'a str)> {
        vec![
            ("Content-Type", content_type),
            ("User-Agent", "GitHub-Hookshot/1a2b3c4"),
            ("X-GitHub-Delivery", DELIVERY),
            ("X-GitHub-Event", event),
            ("X-GitHub-Hook-ID", "109948940"),
            ("X-Hub-Signature-256", signature),
            ("X-Forwarded-For", "192.30.252.1"),
        ]
    }

    /// The verdict on `event` as the Lambda runtime hands it over.
    fn verdict_on(event: &str) -> Verdict {
        let event = serde_json::from_str(event).expect("the event is JSON");
        let request = super::super::event::open(&event).expect("an API Gateway event");
        let body = request.body.expect("the body decodes");
        decide(&request.headers, &body, &policy(), &secrets())
    }

    fn signed(shape: Shape, event: &str, body: &str, secret: &str, content_type: &str) -> Verdict {
        let signature = sign(body, secret);
        verdict_on(&self::event(
            shape,
            &github_headers(event, &signature, content_type),
            body,
        ))
    }

    /// The queued message as `run` reads it, with the current secret to check.
    fn read_as_run(message: &str) -> Reading {
        let policy = Policy {
            webhook_secrets: vec![Secret::new(CURRENT.into(), "PROMOTE_WEBHOOK_SECRET")],
            ..policy()
        };
        intake::read(message, &policy)
    }

    /// The promotion of `json`, signed with the current value, in every shape and content type, with what
    /// made it.
    fn promotions(json: &str) -> Vec<(String, String, Promotion)> {
        let mut promotions = Vec::new();
        for shape in SHAPES {
            for (content_type, body) in [
                ("application/json", json.to_owned()),
                ("application/x-www-form-urlencoded", form(json)),
            ] {
                let what = format!("{shape:?} {content_type}");
                let Verdict::Promote(promotion) =
                    signed(shape, "release", &body, CURRENT, content_type)
                else {
                    panic!("{what}: not promoted")
                };
                promotions.push((what, body, promotion));
            }
        }
        promotions
    }

    #[test]
    fn a_published_release_in_any_shape_and_content_type_is_queued_as_run_reads_it() {
        for (what, _, promotion) in promotions(&payload("published", false, false)) {
            assert_eq!(
                (promotion.tag.as_str(), promotion.delivery.as_str()),
                ("v1.2.0", DELIVERY),
                "{what}"
            );
            match read_as_run(&promotion.message) {
                Reading::Promote { release, delivery } => {
                    assert_eq!(release.tag_name, "v1.2.0", "{what}");
                    assert_eq!(delivery.as_deref(), Some(DELIVERY), "{what}");
                }
                other => panic!("{what}: run reads {other:?}"),
            }
        }
    }

    #[test]
    fn the_message_keeps_githubs_headers_and_drops_the_rest() {
        let body = payload("published", false, false);
        let Verdict::Promote(promotion) =
            signed(Shape::RestV1, "release", &body, CURRENT, "application/json")
        else {
            panic!("not promoted")
        };
        let message: Value = serde_json::from_str(&promotion.message).unwrap();
        let mut names: Vec<&str> = message["headers"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "content-type",
                "user-agent",
                "x-github-delivery",
                "x-github-event",
                "x-github-hook-id",
                "x-hub-signature-256"
            ]
        );
        assert_eq!(message["body"], json!(body), "the body exactly as sent");
    }

    #[test]
    fn a_signature_made_with_the_previous_secret_is_accepted_and_signed_again_with_the_current() {
        let body = payload("published", false, false);
        for shape in SHAPES {
            let Verdict::Promote(promotion) =
                signed(shape, "release", &body, PREVIOUS, "application/json")
            else {
                panic!("{shape:?}: not promoted")
            };
            assert!(
                matches!(read_as_run(&promotion.message), Reading::Promote { .. }),
                "{shape:?}: a run that knows the current value only reads it"
            );
        }
    }

    #[test]
    fn characters_sqs_refuses_are_escaped_and_the_signature_still_holds() {
        let mut json: Value = serde_json::from_str(&payload("published", false, false)).unwrap();
        json["release"]["body"] = json!("notes \u{FFFE}\u{FFFF} end \u{1F680}\u{7}");
        for (what, body, promotion) in promotions(&json.to_string()) {
            let refused: Vec<char> = promotion
                .message
                .chars()
                .filter(|c| !sqs_takes(*c))
                .collect();
            assert_eq!(refused, Vec::<char>::new(), "{what}");
            let message: Value = serde_json::from_str(&promotion.message).unwrap();
            assert_eq!(message["body"], json!(body), "{what}: the body as signed");
            assert!(
                matches!(read_as_run(&promotion.message), Reading::Promote { .. }),
                "{what}"
            );
        }
        for (c, takes) in [
            ('\u{8}', false),
            ('\t', true),
            ('\u{D7FF}', true),
            ('\u{FFFD}', true),
            ('\u{FFFE}', false),
            ('\u{FFFF}', false),
            ('\u{10000}', true),
        ] {
            assert_eq!(sqs_takes(c), takes, "{c:?}");
        }
    }

    #[test]
    fn missing_malformed_wrong_or_stale_signatures_are_unauthorized() {
        let body = payload("published", false, false);
        let tampered = body.replace("v1.2.0", "v6.6.6");
        for shape in SHAPES {
            for (headers, body, says) in [
                (
                    github_headers("release", &sign(&body, "guess"), "application/json"),
                    body.clone(),
                    "does not match",
                ),
                (
                    github_headers("release", &sign(&body, CURRENT), "application/json"),
                    tampered.clone(),
                    "does not match",
                ),
                (
                    github_headers("release", "sha1=0123", "application/json"),
                    body.clone(),
                    "not sha256=",
                ),
                (
                    github_headers("release", "", "application/json")
                        .into_iter()
                        .filter(|(name, _)| *name != "X-Hub-Signature-256")
                        .collect(),
                    body.clone(),
                    "no X-Hub-Signature-256",
                ),
            ] {
                match verdict_on(&event(shape, &headers, &body)) {
                    Verdict::Unauthorized(reason) => {
                        assert!(reason.contains(says), "{shape:?}: {reason}")
                    }
                    other => panic!("{shape:?} {says}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn a_bad_signature_is_refused_before_the_body_is_read() {
        // Not JSON, and no event header: an unsigned request learns nothing of how it would be read.
        match verdict_on(&event(
            Shape::RestV1,
            &[("X-Hub-Signature-256", "sha256=00")],
            "{not json",
        )) {
            Verdict::Unauthorized(_) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pings_other_events_and_releases_not_for_production_are_ignored_with_the_reason() {
        let ping = json!({"zen": "Design for failure.", "hook_id": 1}).to_string();
        for (event, body, says) in [
            ("ping", ping, "ping"),
            (
                "push",
                json!({"ref": "refs/heads/main"}).to_string(),
                "push",
            ),
            (
                "release",
                payload("created", false, false),
                "action \"created\"",
            ),
            ("release", payload("published", true, false), "draft"),
            ("release", payload("published", false, true), "prerelease"),
        ] {
            match signed(Shape::HttpV2, event, &body, CURRENT, "application/json") {
                Verdict::Ignore(reason) => assert!(reason.contains(says), "{reason}"),
                other => panic!("{event} {says}: {other:?}"),
            }
        }
    }

    #[test]
    fn signed_but_unreadable_deliveries_are_malformed() {
        for (body, content_type, says) in [
            ("{not json", "application/json", "not JSON"),
            (
                "other=1",
                "application/x-www-form-urlencoded",
                "no payload field",
            ),
            (
                r#"{"action":"published"}"#,
                "application/json",
                "no release object",
            ),
            (
                r#"{"action":"published","release":{"tag_name":"v1 final","target_commitish":"main","published_at":"2026-03-01T10:00:00Z"}}"#,
                "application/json",
                "cannot be an image tag",
            ),
        ] {
            match signed(Shape::RestV1, "release", body, CURRENT, content_type) {
                Verdict::Malformed(reason) => assert!(reason.contains(says), "{reason}"),
                other => panic!("{body}: {other:?}"),
            }
        }
        let body = payload("published", false, false);
        let signature = sign(&body, CURRENT);
        let headers: Vec<_> = github_headers("release", &signature, "application/json")
            .into_iter()
            .filter(|(name, _)| *name != "X-GitHub-Delivery")
            .collect();
        match verdict_on(&event(Shape::RestV1, &headers, &body)) {
            Verdict::Malformed(reason) => assert!(reason.contains("X-GitHub-Delivery"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_delivery_over_the_queues_limit_is_too_large() {
        let mut payload: Value = serde_json::from_str(&payload("published", false, false)).unwrap();
        payload["release"]["body"] = json!("x".repeat(intake::MAX_MESSAGE_BYTES));
        match signed(
            Shape::RestV1,
            "release",
            &payload.to_string(),
            CURRENT,
            "application/json",
        ) {
            Verdict::TooLarge(reason) => assert!(reason.contains("over SQS's"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn request_tokens_are_the_delivery_id_or_its_hash() {
        assert_eq!(request_token(DELIVERY), DELIVERY);
        for odd in ["", "a b", "d#1", &"x".repeat(129)] {
            let token = request_token(odd);
            assert_eq!(token.len(), 64, "{odd:?}");
            assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
            assert_eq!(token, request_token(odd), "stable");
        }
    }
}
