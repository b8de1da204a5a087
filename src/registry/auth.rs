//! Credentials for a registry: an ECR authorization token for ECR hosts, the Docker config file for others.

use std::fmt;
use std::path::PathBuf;

use aws_config::SdkConfig;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;

use super::reference::EcrHost;

/// HTTP Basic credentials. Debug never shows the password, so they can travel in logged structs.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({}:<redacted>)", self.username)
    }
}

impl Credentials {
    /// Every form in which these credentials could come back in a registry's answer: the password, and the
    /// Basic `Authorization` value.
    pub fn secrets(&self) -> [String; 2] {
        [
            self.password.clone(),
            BASE64.encode(format!("{}:{}", self.username, self.password)),
        ]
    }

    /// Decodes `base64("user:password")`, the form of both ECR tokens and Docker config `auth` entries.
    fn from_basic_token(token: &str) -> Option<Credentials> {
        let decoded = String::from_utf8(BASE64.decode(token.trim()).ok()?).ok()?;
        let (username, password) = decoded.split_once(':')?;
        Some(Credentials {
            username: username.to_owned(),
            password: password.to_owned(),
        })
    }
}

/// Asks ECR for the registry's token (valid 12 hours, so one per registry per run is enough).
pub async fn ecr_token(
    config: &SdkConfig,
    ecr: &EcrHost,
    host: &str,
) -> Result<Credentials, String> {
    let ecr_config = aws_sdk_ecr::config::Builder::from(config)
        .region(aws_config::Region::new(ecr.region.clone()))
        .build();
    // registryIds is deprecated because a token now opens every registry the caller may use, but naming the
    // account keeps the request explicit and is what stand-ins such as moto key their tokens on.
    #[allow(deprecated)]
    let answer = aws_sdk_ecr::Client::from_conf(ecr_config)
        .get_authorization_token()
        .registry_ids(&ecr.account)
        .send()
        .await
        .map_err(|e| {
            format!(
                "ecr:GetAuthorizationToken for registry {host} (account {}) failed: check the AWS credentials \
                 and that they allow ecr:GetAuthorizationToken: {}",
                ecr.account,
                crate::aws::sdk_error(e)
            )
        })?;
    answer
        .authorization_data()
        .first()
        .and_then(|data| data.authorization_token())
        .and_then(Credentials::from_basic_token)
        .ok_or_else(|| {
            format!("ecr:GetAuthorizationToken for registry {host} returned no usable token")
        })
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: std::collections::HashMap<String, DockerAuth>,
}

#[derive(Deserialize)]
struct DockerAuth {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

fn docker_config_path() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => Some(PathBuf::from(dir).join("config.json")),
        None => {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker/config.json"))
        }
    }
}

/// Basic credentials for a non-ECR host from `$DOCKER_CONFIG/config.json` (or `~/.docker/config.json`);
/// `None` means anonymous access.
pub fn docker_config(host: &str) -> Result<Option<Credentials>, String> {
    let Some(path) = docker_config_path() else {
        return Ok(None);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("reading Docker config {}: {e}", path.display())),
    };
    let config: DockerConfig = serde_json::from_str(&text)
        .map_err(|e| format!("Docker config {} is not valid JSON: {e}", path.display()))?;
    let entry = config.auths.iter().find(|(key, _)| {
        let key = key
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        key == host || key.strip_suffix("/v1/").or(key.strip_suffix('/')) == Some(host)
    });
    Ok(entry.and_then(
        |(_, auth)| match (&auth.auth, &auth.username, &auth.password) {
            (Some(token), _, _) => Credentials::from_basic_token(token),
            (None, Some(username), Some(password)) => Some(Credentials {
                username: username.clone(),
                password: password.clone(),
            }),
            _ => None,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_basic_tokens_and_hides_the_password_in_debug() {
        let credentials =
            Credentials::from_basic_token(&BASE64.encode("AWS:secret-token")).unwrap();
        assert_eq!(credentials.username, "AWS");
        assert_eq!(credentials.password, "secret-token");
        let shown = format!("{credentials:?}");
        assert!(!shown.contains("secret-token"), "{shown}");
        assert!(Credentials::from_basic_token("not base64!").is_none());
    }
}
