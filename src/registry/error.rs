//! The registry failures a caller branches on: whether to retry, and which exit code to give.

use reqwest::StatusCode;
use serde::Deserialize;

use super::digest::Digest;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry cannot be opened: no credentials could be had, or its address is wrong.
    #[error("opening registry {host}: {detail}")]
    Open { host: String, detail: String },

    #[error(
        "registry {host} rejected the credentials{source_hint}: check the ECR authorization token \
         (ecr:GetAuthorizationToken for the registry's account) or the Docker config's entry for this host"
    )]
    Unauthorized { host: String, source_hint: String },

    #[error(
        "registry {host} denied access to repository {repository}{account}: the caller needs pull (source) \
         or push (target) permission in the repository policy"
    )]
    Denied {
        host: String,
        repository: String,
        account: String,
    },

    #[error(
        "repository {repository} does not exist in registry {host}{account}: create it (aws ecr \
         create-repository --repository-name {repository}) or correct the name"
    )]
    NameUnknown {
        host: String,
        repository: String,
        account: String,
    },

    #[error("{reference} not found: the repository has no {what}")]
    ManifestUnknown { reference: String, what: String },

    #[error(
        "refusing to move tag {target}: it is on {existing}, not on {incoming} — a release tag never moves \
         (pass --force only to repair a tag you know is wrong)"
    )]
    TagMoved {
        target: String,
        existing: Digest,
        incoming: Digest,
    },

    #[error(
        "{target} names digest {wanted}, but the image copied is {incoming}: a digest reference must name the \
         source's own digest (or use a tag)"
    )]
    DigestMismatch {
        target: String,
        wanted: Digest,
        incoming: Digest,
    },

    #[error(
        "{reference} is a Docker schema 1 manifest, which ECR and ecr-promote do not copy: rebuild and push it \
         with a current Docker or BuildKit (schema 2 / OCI)"
    )]
    Schema1 { reference: String },

    #[error(
        "{what}: content from {host} does not match its digest ({detail}); nothing was written"
    )]
    Corrupt {
        what: String,
        host: String,
        detail: String,
    },

    #[error("{what}: registry {host} answered HTTP {status}{detail}")]
    Status {
        what: String,
        host: String,
        status: StatusCode,
        detail: String,
    },

    #[error("{what}: could not talk to registry {host}: {detail}")]
    Network {
        what: String,
        host: String,
        detail: String,
    },
}

impl RegistryError {
    /// Failures that a later attempt of the same idempotent step can cure.
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Status { status, .. } => is_transient_status(*status),
            RegistryError::Network { .. } => true,
            _ => false,
        }
    }
}

pub fn is_transient_status(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || (status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED)
}

/// The `{"errors": [{"code": …, "message": …}]}` body of the Distribution API.
#[derive(Debug, Default, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub errors: Vec<ErrorEntry>,
}

#[derive(Debug, Deserialize)]
pub struct ErrorEntry {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

impl ErrorBody {
    pub fn parse(body: &[u8]) -> ErrorBody {
        serde_json::from_slice(body).unwrap_or_default()
    }

    pub fn has_code(&self, code: &str) -> bool {
        self.errors.iter().any(|e| e.code == code)
    }

    /// `: CODE: message; …`, or nothing when the body said nothing useful.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.code, e.message))
            .collect();
        if parts.is_empty() {
            String::new()
        } else {
            format!(": {}", parts.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_distribution_error_bodies() {
        let body = ErrorBody::parse(
            br#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry","detail":{"name":"x"}}]}"#,
        );
        assert!(body.has_code("NAME_UNKNOWN"));
        assert_eq!(
            body.summary(),
            ": NAME_UNKNOWN: repository name not known to registry"
        );
        assert_eq!(ErrorBody::parse(b"<html>").summary(), "");
    }

    #[test]
    fn retries_throttling_and_server_errors_only() {
        assert!(is_transient_status(StatusCode::TOO_MANY_REQUESTS));
        assert!(is_transient_status(StatusCode::SERVICE_UNAVAILABLE));
        assert!(is_transient_status(StatusCode::INTERNAL_SERVER_ERROR));
        assert!(!is_transient_status(StatusCode::NOT_IMPLEMENTED));
        assert!(!is_transient_status(StatusCode::NOT_FOUND));
        assert!(!is_transient_status(StatusCode::UNAUTHORIZED));
    }
}
