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
    /// The base URL for a registry host: the mapped one, `http://<host>` for a registry on this machine
    /// (loopback registries speak plain HTTP, and Docker treats 127.0.0.0/8 as insecure by default too), or
    /// `https://<host>`.
    pub fn base_url(&self, host: &str) -> Result<Url, String> {
        if let Some(url) = self.by_host.get(host) {
            return Ok(url.clone());
        }
        let scheme = if is_loopback(host) { "http" } else { "https" };
        Url::parse(&format!("{scheme}://{host}/"))
            .map_err(|e| format!("registry host {host:?} does not make a URL: {e}"))
    }
}

/// `localhost`, `127.x.y.z` or `[::1]`, with or without a port.
fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
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
            // As references spell hosts: in lower case.
            by_host.insert(host.trim().to_ascii_lowercase(), url);
        }
        Ok(Endpoints { by_host })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_on_this_machine_speak_plain_http_others_https() {
        let endpoints = Endpoints::default();
        for host in [
            "127.0.0.1:5000",
            "localhost:5000",
            "localhost",
            "[::1]:5000",
            "127.1.2.3",
        ] {
            assert_eq!(endpoints.base_url(host).unwrap().scheme(), "http", "{host}");
        }
        for host in [
            "111111111111.dkr.ecr.us-east-1.amazonaws.com",
            "registry.example:5000",
            "10.0.0.1",
        ] {
            assert_eq!(
                endpoints.base_url(host).unwrap().scheme(),
                "https",
                "{host}"
            );
        }
    }

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
        let upper: Endpoints = "Other.Example=http://127.0.0.1:5002".parse().unwrap();
        assert_eq!(
            upper.base_url("other.example").unwrap().as_str(),
            "http://127.0.0.1:5002/",
            "a host mapped in another case is the host references name"
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
