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

/// Checks the delivery's signature over its raw body against each of `secrets` (the current value first,
/// then the previous one while a rotation is under way), comparing in constant time.
pub fn verify(delivery: &Delivery, secrets: &[Secret]) -> Result<(), String> {
    let body = delivery
        .raw_body
        .as_deref()
        .ok_or("the message carries no webhook request (headers and raw body) to check")?;
    verify_any(delivery.header("x-hub-signature-256"), body, secrets).map(|_| ())
}

/// Accepts `header`, the request's `X-Hub-Signature-256` if it had one, when it is `body`'s signature with any
/// of `secrets` (constant-time comparisons, each over the same bytes), and says which one matched.
pub fn verify_any(header: Option<&str>, body: &[u8], secrets: &[Secret]) -> Result<usize, String> {
    // The current value's refusal is the one to show: a missing or malformed header reads the same for all.
    let mut first_refusal = None;
    for (index, secret) in secrets.iter().enumerate() {
        match verify_body(header, body, secret) {
            Ok(()) => return Ok(index),
            Err(reason) => {
                first_refusal.get_or_insert(reason);
            }
        }
    }
    Err(first_refusal.unwrap_or_else(|| "no webhook secret to check the signature against".into()))
}

/// Checks `header` against `body` as received, with one secret.
fn verify_body(header: Option<&str>, body: &[u8], secret: &Secret) -> Result<(), String> {
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
            verify(&delivery(Some(signed(BODY, "s3cret")), BODY), &[secret]),
            Ok(())
        );
    }

    #[test]
    fn accepts_a_signature_made_with_any_of_the_values_and_says_which() {
        let values = [
            Secret::new("current".into()),
            Secret::new("previous".into()),
        ];
        let header = signed(BODY, "previous");
        assert_eq!(verify_any(Some(&header), BODY.as_bytes(), &values), Ok(1));
        let other = signed(BODY, "neither");
        let refusal = verify_any(Some(&other), BODY.as_bytes(), &values).unwrap_err();
        assert!(refusal.contains("does not match"), "{refusal}");
        assert!(verify_any(Some(&header), BODY.as_bytes(), &[]).is_err());
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
            let error = verify(&delivery, std::slice::from_ref(&secret)).unwrap_err();
            assert!(error.contains(says), "{error}");
        }
    }

    #[test]
    fn debug_hides_the_secret() {
        assert!(!format!("{:?}", Secret::new("s3cret".into())).contains("s3cret"));
    }
}
