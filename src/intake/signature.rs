//! GitHub webhook signatures: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::envelope::Delivery;

/// The webhook secret. Its Debug never shows it, so settings that hold it can be logged.
///
/// The value is used exactly as stored, surrounding whitespace included: GitHub signs with the value exactly
/// as typed into the hook, and nothing here can know what was typed there. When a signature matches none of
/// the values, the refusal names each value with surrounding whitespace, the likeliest cause (a value
/// stored from a file ends with a newline no one typed).
#[derive(Clone)]
pub struct Secret {
    value: String,
    /// Where the value is set, as the one who fixes it looks for it: `PROMOTE_WEBHOOK_SECRET`, or a
    /// Secrets Manager secret and stage.
    source: String,
}

impl Secret {
    pub fn new(value: String, source: impl Into<String>) -> Secret {
        Secret {
            value,
            source: source.into(),
        }
    }

    /// The value itself, for the one place it is sent (a request's Authorization header). Never log it.
    pub fn reveal(&self) -> &str {
        &self.value
    }

    /// "<source> starts with " "" and the like, when the value has whitespace around it.
    fn whitespace(&self) -> Option<String> {
        let leading = &self.value[..self.value.len() - self.value.trim_start().len()];
        let trailing = &self.value[self.value.trim_end().len()..];
        match (leading.is_empty(), trailing.is_empty()) {
            (true, true) => None,
            (false, true) => Some(format!("{} starts with {leading:?}", self.source)),
            (true, false) => Some(format!("{} ends with {trailing:?}", self.source)),
            (false, false) => Some(format!(
                "{} starts with {leading:?} and ends with {trailing:?}",
                self.source
            )),
        }
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
    if secrets.is_empty() {
        return Err("no webhook secret to check the signature against".into());
    }
    let header = header.ok_or("no X-Hub-Signature-256 header")?;
    let claimed = header
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or("X-Hub-Signature-256 is not sha256=<hex>")?;
    if let Some(index) = secrets
        .iter()
        .position(|secret| mac(body, secret).verify_slice(&claimed).is_ok())
    {
        return Ok(index);
    }
    let whitespace: Vec<String> = secrets.iter().filter_map(Secret::whitespace).collect();
    if whitespace.is_empty() {
        return Err("the signature does not match the body".into());
    }
    Err(format!(
        "the signature does not match the body, and {}: GitHub signs with the value exactly as typed into \
         the hook, so unless that whitespace was typed there, store the value without it",
        whitespace.join(", and ")
    ))
}

/// `X-Hub-Signature-256` for `body` as GitHub computes it with `secret`.
pub fn sign(body: &[u8], secret: &Secret) -> String {
    format!(
        "sha256={}",
        hex::encode(mac(body, secret).finalize().into_bytes())
    )
}

fn mac(body: &[u8], secret: &Secret) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.value.as_bytes())
        .expect("HMAC takes keys of any length");
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
        sign(
            body.as_bytes(),
            &Secret::new(secret.into(), "PROMOTE_WEBHOOK_SECRET"),
        )
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
        let secret = Secret::new("s3cret".into(), "PROMOTE_WEBHOOK_SECRET");
        assert_eq!(
            verify(&delivery(Some(signed(BODY, "s3cret")), BODY), &[secret]),
            Ok(())
        );
    }

    #[test]
    fn accepts_a_signature_made_with_any_of_the_values_and_says_which() {
        let values = [
            Secret::new("current".into(), "PROMOTE_WEBHOOK_SECRET"),
            Secret::new("previous".into(), "PROMOTE_WEBHOOK_SECRET"),
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
        let secret = Secret::new("s3cret".into(), "PROMOTE_WEBHOOK_SECRET");
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
    fn a_mismatch_names_the_values_with_whitespace_around_them() {
        let values = [
            Secret::new("current\n".into(), "AWSCURRENT"),
            Secret::new("previous".into(), "AWSPREVIOUS"),
        ];
        let as_typed = signed(BODY, "current\n");
        assert_eq!(verify_any(Some(&as_typed), BODY.as_bytes(), &values), Ok(0));
        let trimmed = signed(BODY, "current");
        let refusal = verify_any(Some(&trimmed), BODY.as_bytes(), &values).unwrap_err();
        assert!(
            refusal.contains(r#"AWSCURRENT ends with "\n""#) && !refusal.contains("AWSPREVIOUS"),
            "{refusal}"
        );
        let both = Secret::new(" \tx \r\n".into(), "PROMOTE_WEBHOOK_SECRET");
        let refusal = verify_any(Some(&trimmed), BODY.as_bytes(), &[both]).unwrap_err();
        assert!(
            refusal.contains(r#"PROMOTE_WEBHOOK_SECRET starts with " \t" and ends with " \r\n""#),
            "{refusal}"
        );
        let plain = verify_any(Some(&trimmed), BODY.as_bytes(), &values[1..]).unwrap_err();
        assert_eq!(plain, "the signature does not match the body");
    }

    #[test]
    fn debug_hides_the_secret() {
        assert!(
            !format!(
                "{:?}",
                Secret::new("s3cret".into(), "PROMOTE_WEBHOOK_SECRET")
            )
            .contains("s3cret")
        );
    }
}
