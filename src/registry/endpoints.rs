//! `PROMOTE_REGISTRY_ENDPOINTS`: where a registry host's traffic really goes.
//!
//! In AWS every registry is reached at `https://<host>`. The local world (tests, demo, benchmarks) has no ECR,
//! so it maps each ECR host name to a Distribution registry on loopback, e.g.
//! `111111111111.dkr.ecr.us-east-1.amazonaws.com=http://127.0.0.1:5001`. The host name stays what users
//! write and what decides authentication; only the base URL changes.

use std::collections::HashMap;
use std::str::FromStr;

use url::Url;

#[derive(Clone, Debug, Default)]
pub struct Endpoints {
    by_host: HashMap<String, Url>,
}

impl Endpoints {
    /// The base URL for a registry host: the mapped one, or `https://<host>`.
    pub fn base_url(&self, host: &str) -> Result<Url, String> {
        match self.by_host.get(host) {
            Some(url) => Ok(url.clone()),
            None => Url::parse(&format!("https://{host}/"))
                .map_err(|e| format!("registry host {host:?} does not make a URL: {e}")),
        }
    }
}

impl FromStr for Endpoints {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut by_host = HashMap::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (host, url) = entry.split_once('=').ok_or_else(|| {
                format!("PROMOTE_REGISTRY_ENDPOINTS entry {entry:?} is not host=url")
            })?;
            let mut url = Url::parse(url.trim()).map_err(|e| {
                format!("PROMOTE_REGISTRY_ENDPOINTS entry {entry:?}: {url:?} is not a URL: {e}")
            })?;
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                return Err(format!(
                    "PROMOTE_REGISTRY_ENDPOINTS entry {entry:?}: the URL must be http:// or https:// with a host"
                ));
            }
            // Paths are joined onto the base, so it must end with '/'.
            if !url.path().ends_with('/') {
                url.set_path(&format!("{}/", url.path()));
            }
            by_host.insert(host.trim().to_owned(), url);
        }
        Ok(Endpoints { by_host })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_listed_hosts_and_leaves_others_on_https() {
        let endpoints: Endpoints =
            "111111111111.dkr.ecr.us-east-1.amazonaws.com=http://127.0.0.1:5001, other.example=https://mirror.example/prefix"
                .parse()
                .unwrap();
        assert_eq!(
            endpoints
                .base_url("111111111111.dkr.ecr.us-east-1.amazonaws.com")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:5001/"
        );
        assert_eq!(
            endpoints.base_url("other.example").unwrap().as_str(),
            "https://mirror.example/prefix/"
        );
        assert_eq!(
            endpoints.base_url("registry.example.com").unwrap().as_str(),
            "https://registry.example.com/"
        );
    }

    #[test]
    fn refuses_entries_without_url_or_with_other_schemes() {
        for bad in ["host", "host=", "host=ftp://x", "host=not a url"] {
            let err = bad.parse::<Endpoints>().unwrap_err();
            assert!(err.contains("PROMOTE_REGISTRY_ENDPOINTS"), "{err}");
        }
    }
}
