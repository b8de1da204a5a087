//! GitHub webhook signatures: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::envelope::Delivery;

/// The webhook secret. Its Debug never shows it, so settings that hold it can be logged.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(secret: String) -> Secret {
        Secret(secret)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Checks the delivery's signature over its raw body, comparing in constant time.
pub fn verify(delivery: &Delivery, secret: &Secret) -> Result<(), String> {
    let body = delivery
        .raw_body
        .as_deref()
        .ok_or("the message carries no webhook request (headers and raw body) to check")?;
    verify_body(delivery.header("x-hub-signature-256"), body, secret)
}

/// Checks `header`, the request's `X-Hub-Signature-256` if it had one, against `body` as received.
pub fn verify_body(header: Option<&str>, body: &[u8], secret: &Secret) -> Result<(), String> {
    let header = header.ok_or("no X-Hub-Signature-256 header")?;
    let claimed = header
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or("X-Hub-Signature-256 is not sha256=<hex>")?;
    mac(body, secret)
        .verify_slice(&claimed)
        .map_err(|_| "the signature does not match the body".to_owned())
}

/// `X-Hub-Signature-256` for `body` as GitHub computes it with `secret`.
pub fn sign(body: &[u8], secret: &Secret) -> String {
    format!(
        "sha256={}",
        hex::encode(mac(body, secret).finalize().into_bytes())
    )
}

fn mac(body: &[u8], secret: &Secret) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.0.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::envelope::unwrap;
    use serde_json::json;

    const BODY: &str =
        r#"{"action":"published","release":{"tag_name":"v1","target_commitish":"main"}}"#;

    fn signed(body: &str, secret: &str) -> String {
        sign(body.as_bytes(), &Secret::new(secret.into()))
    }

    fn delivery(signature: Option<String>, body: &str) -> Delivery {
        let mut headers = json!({"X-GitHub-Event": "release"});
        if let Some(signature) = signature {
            headers["X-Hub-Signature-256"] = json!(signature);
        }
        unwrap(&json!({"httpMethod": "POST", "headers": headers, "body": body}).to_string())
            .unwrap()
    }

    #[test]
    fn accepts_the_signature_of_the_raw_body() {
        let secret = Secret::new("s3cret".into());
        assert_eq!(
            verify(&delivery(Some(signed(BODY, "s3cret")), BODY), &secret),
            Ok(())
        );
    }

    #[test]
    fn refuses_tampered_bodies_wrong_secrets_and_missing_signatures() {
        let secret = Secret::new("s3cret".into());
        let tampered = BODY.replace("v1", "v2");
        for (delivery, says) in [
            (
                delivery(Some(signed(BODY, "s3cret")), &tampered),
                "does not match",
            ),
            (
                delivery(Some(signed(BODY, "other")), BODY),
                "does not match",
            ),
            (delivery(None, BODY), "no X-Hub-Signature-256"),
            (delivery(Some("sha1=abc".into()), BODY), "not sha256="),
            (unwrap(BODY).unwrap(), "no webhook request"),
        ] {
            let error = verify(&delivery, &secret).unwrap_err();
            assert!(error.contains(says), "{error}");
        }
    }

    #[test]
    fn debug_hides_the_secret() {
        assert!(!format!("{:?}", Secret::new("s3cret".into())).contains("s3cret"));
    }
}
