//! Unwrapping the envelopes a GitHub webhook delivery may arrive in on the queue: raw, an API Gateway proxy
//! event (REST v1 or HTTP API v2, base64 bodies included), an SNS notification, an EventBridge event — nested
//! in any order, a few levels deep.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;

/// A webhook delivery with its envelopes taken off.
#[derive(Debug, Default)]
pub struct Delivery {
    /// HTTP headers of the webhook request, names in lower case; empty when no envelope carried them.
    pub headers: BTreeMap<String, String>,
    /// The webhook request's body exactly as GitHub sent it, when an API Gateway envelope carried it: the
    /// bytes a signature is computed over.
    pub raw_body: Option<Vec<u8>>,
    pub payload: Value,
}

impl Delivery {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// Deeper nesting than this is not something any AWS route produces.
const MAX_DEPTH: usize = 5;

pub fn unwrap(body: &str) -> Result<Delivery, String> {
    let mut delivery = Delivery {
        payload: serde_json::from_str(body)
            .map_err(|e| format!("the message body is not JSON: {e}"))?,
        ..Delivery::default()
    };
    // One pass per envelope, and one more to find the payload.
    for _ in 0..=MAX_DEPTH {
        let Some(object) = delivery.payload.as_object() else {
            return Err("the message body is JSON but not an object".into());
        };
        if object.get("Type").and_then(Value::as_str) == Some("Notification") {
            let message = object
                .get("Message")
                .and_then(Value::as_str)
                .ok_or("SNS notification without a Message string")?;
            delivery.payload = serde_json::from_str(message)
                .map_err(|e| format!("the SNS Message is not JSON: {e}"))?;
        } else if object.contains_key("detail-type") && object.contains_key("detail") {
            delivery.payload = match &object["detail"] {
                Value::String(text) => serde_json::from_str(text)
                    .map_err(|e| format!("the EventBridge detail is not JSON: {e}"))?,
                detail => detail.clone(),
            };
        } else if object.contains_key("body")
            && (object.contains_key("httpMethod")
                || object.contains_key("requestContext")
                || object.contains_key("headers"))
        {
            let (headers, raw) = api_gateway(object)?;
            delivery = request(headers, raw)
                .map_err(|e| format!("the API Gateway event's request: {e}"))?;
        } else {
            return Ok(delivery);
        }
    }
    Err(format!("envelopes nested more than {MAX_DEPTH} deep"))
}

/// The delivery GitHub made as an HTTP request: `headers` (names in lower case) and the body as sent, JSON or
/// the `application/x-www-form-urlencoded` form whose `payload` field holds the JSON (GitHub's two content
/// types). Reading the body does not check its signature: that is the caller's to do, over `raw`.
pub fn request(headers: BTreeMap<String, String>, raw: Vec<u8>) -> Result<Delivery, String> {
    let form = headers.get("content-type").is_some_and(|kind| {
        kind.split(';').next().is_some_and(|kind| {
            kind.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
    });
    let payload = if form {
        let (_, json) = url::form_urlencoded::parse(&raw)
            .find(|(name, _)| name == "payload")
            .ok_or("the form-encoded body has no payload field")?;
        serde_json::from_str(&json)
            .map_err(|e| format!("the body's payload field is not JSON: {e}"))?
    } else {
        serde_json::from_slice(&raw).map_err(|e| format!("the body is not JSON: {e}"))?
    };
    Ok(Delivery {
        headers,
        raw_body: Some(raw),
        payload,
    })
}

fn api_gateway(
    event: &serde_json::Map<String, Value>,
) -> Result<(BTreeMap<String, String>, Vec<u8>), String> {
    let headers = event
        .get("headers")
        .and_then(Value::as_object)
        .map(|headers| {
            headers
                .iter()
                .filter_map(|(name, value)| {
                    Some((name.to_ascii_lowercase(), value.as_str()?.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default();
    let body = event
        .get("body")
        .and_then(Value::as_str)
        .ok_or("API Gateway event whose body is not a string")?;
    let raw = if event.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        BASE64
            .decode(body)
            .map_err(|e| format!("API Gateway body marked base64 is not base64: {e}"))?
    } else {
        body.as_bytes().to_vec()
    };
    Ok((headers, raw))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PAYLOAD: &str = r#"{"action":"published","release":{"tag_name":"v1.0.0"}}"#;

    fn tag_of(delivery: &Delivery) -> &str {
        delivery.payload["release"]["tag_name"].as_str().unwrap()
    }

    #[test]
    fn takes_the_raw_payload_as_it_is() {
        let delivery = unwrap(PAYLOAD).unwrap();
        assert_eq!(tag_of(&delivery), "v1.0.0");
        assert!(delivery.headers.is_empty() && delivery.raw_body.is_none());
    }

    #[test]
    fn opens_api_gateway_v1_with_headers_and_raw_body() {
        let event = json!({"httpMethod": "POST", "headers": {"X-GitHub-Event": "release", "X-GitHub-Delivery": "abc"},
            "body": PAYLOAD, "isBase64Encoded": false});
        let delivery = unwrap(&event.to_string()).unwrap();
        assert_eq!(tag_of(&delivery), "v1.0.0");
        assert_eq!(delivery.header("x-github-event"), Some("release"));
        assert_eq!(delivery.header("x-github-delivery"), Some("abc"));
        assert_eq!(delivery.raw_body.as_deref(), Some(PAYLOAD.as_bytes()));
    }

    #[test]
    fn opens_api_gateway_v2_with_a_base64_body() {
        let event = json!({"version": "2.0", "requestContext": {}, "headers": {"x-github-event": "release"},
            "body": BASE64.encode(PAYLOAD), "isBase64Encoded": true});
        let delivery = unwrap(&event.to_string()).unwrap();
        assert_eq!(tag_of(&delivery), "v1.0.0");
        assert_eq!(delivery.raw_body.as_deref(), Some(PAYLOAD.as_bytes()));
    }

    #[test]
    fn reads_form_encoded_bodies_keeping_the_raw_bytes() {
        let form: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", PAYLOAD)
            .finish();
        let event = json!({"httpMethod": "POST",
            "headers": {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, "body": form});
        let delivery = unwrap(&event.to_string()).unwrap();
        assert_eq!(tag_of(&delivery), "v1.0.0");
        assert_eq!(delivery.raw_body.as_deref(), Some(form.as_bytes()));
        let error = request(
            BTreeMap::from([(
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            )]),
            b"other=1".to_vec(),
        )
        .unwrap_err();
        assert!(error.contains("no payload field"), "{error}");
    }

    #[test]
    fn opens_sns_around_eventbridge_around_api_gateway() {
        let gateway = json!({"httpMethod": "POST", "headers": {}, "body": PAYLOAD});
        let bridge =
            json!({"detail-type": "GitHub webhook", "source": "github", "detail": gateway});
        let sns = json!({"Type": "Notification", "MessageId": "m", "Message": bridge.to_string()});
        assert_eq!(tag_of(&unwrap(&sns.to_string()).unwrap()), "v1.0.0");
    }

    #[test]
    fn says_what_is_wrong_with_broken_envelopes() {
        for (body, says) in [
            ("not json", "not JSON"),
            ("[1]", "not an object"),
            (
                r#"{"Type":"Notification","Message":"{"}"#,
                "SNS Message is not JSON",
            ),
            (
                r#"{"httpMethod":"POST","body":"x","isBase64Encoded":true}"#,
                "not base64",
            ),
            (r#"{"httpMethod":"POST","body":7}"#, "body is not a string"),
        ] {
            let error = unwrap(body).unwrap_err();
            assert!(error.contains(says), "{body}: {error}");
        }
    }
}
