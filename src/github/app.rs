//! A GitHub App's credential: a JSON Web Token signed with the App's private key (RS256), which GitHub
//! exchanges for an installation token.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde_json::json;

/// The App, by the id GitHub gave it, and where it is installed if the setting says so.
#[derive(Clone, Copy, Debug)]
pub struct App {
    /// PROMOTE_GITHUB_APP_ID.
    pub id: u64,
    /// PROMOTE_GITHUB_APP_INSTALLATION_ID; asked of GitHub for the repository when unset.
    pub installation_id: Option<u64>,
}

/// GitHub refuses a JWT that lives longer than ten minutes.
const LIFETIME_SECONDS: u64 = 540;
/// Issued a minute in the past, as GitHub advises, so that a clock a little ahead of GitHub's still works.
const CLOCK_SKEW_SECONDS: u64 = 60;

/// The App's JWT at `now` (seconds since the epoch), signed with `pem`, the private key GitHub generated
/// (`BEGIN RSA PRIVATE KEY`, or PKCS #8's `BEGIN PRIVATE KEY`).
pub fn jwt(app: u64, pem: &str, now: u64) -> Result<String, String> {
    let key = private_key(pem)?;
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "typ": "JWT"}).to_string());
    let claims = json!({
        "iat": now.saturating_sub(CLOCK_SKEW_SECONDS),
        "exp": now + LIFETIME_SECONDS,
        "iss": app.to_string(),
    });
    let signed = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        signed.as_bytes(),
        &mut signature,
    )
    .map_err(|_| "cannot sign the GitHub App's JWT with its key".to_owned())?;
    Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

fn private_key(pem: &str) -> Result<RsaKeyPair, String> {
    let body = |label: &str| {
        let begin = format!("-----BEGIN {label}-----");
        let end = format!("-----END {label}-----");
        let start = pem.find(&begin)? + begin.len();
        let stop = start + pem[start..].find(&end)?;
        Some(pem[start..stop].split_whitespace().collect::<String>())
    };
    let unreadable = || {
        "the secret does not hold a GitHub App's private key (a PEM file starting -----BEGIN RSA PRIVATE KEY-----): \
         store the .pem GitHub generated, whole"
            .to_owned()
    };
    let (der, pkcs8) = match (body("RSA PRIVATE KEY"), body("PRIVATE KEY")) {
        (Some(pkcs1), _) => (pkcs1, false),
        (None, Some(pkcs8)) => (pkcs8, true),
        (None, None) => return Err(unreadable()),
    };
    let der = STANDARD.decode(der).map_err(|_| unreadable())?;
    let key = if pkcs8 {
        RsaKeyPair::from_pkcs8(&der)
    } else {
        RsaKeyPair::from_der(&der)
    };
    key.map_err(|e| {
        format!(
            "the GitHub App's private key is not a usable RSA key ({e}): {}",
            unreadable()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anything_but_a_pem_rsa_key_is_refused_naming_what_to_store() {
        for pem in [
            "",
            "github_pat_11ABC",
            "-----BEGIN RSA PRIVATE KEY-----\nnot base64!\n-----END RSA PRIVATE KEY-----",
            "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----",
        ] {
            let refused = jwt(1, pem, 1_700_000_000).unwrap_err();
            assert!(refused.contains("BEGIN RSA PRIVATE KEY"), "{refused}");
            assert!(!refused.contains("github_pat"), "{refused}");
        }
    }
}
