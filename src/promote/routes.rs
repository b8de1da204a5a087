//! Which images a release ships: each container's staging repository and production repository.
//!
//! The short form is one image for one or more containers (`PROMOTE_SOURCE_REPOSITORY`,
//! `PROMOTE_TARGET_REPOSITORY`, `PROMOTE_CONTAINER_NAME`); a release of several images (API, worker,
//! sidecar) lists them in a config file named by `PROMOTE_CONFIG`, TOML or JSON:
//!
//! ```toml
//! [[container]]
//! name = "api"
//! source = "111111111111.dkr.ecr.us-east-1.amazonaws.com/api"
//! target = "222222222222.dkr.ecr.us-east-1.amazonaws.com/api"
//! ```

use std::path::Path;

use serde::Deserialize;

use crate::registry::Repository;

/// One image of a release and the containers that run it.
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    pub containers: Vec<String>,
    pub source: Repository,
    pub target: Repository,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    container: Vec<ContainerEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContainerEntry {
    name: String,
    source: String,
    target: String,
}

/// Reads a config file. Containers that share a source and target share one route, so the image is copied
/// once however many containers run it.
pub fn from_config(path: &Path) -> Result<Vec<Route>, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("reading PROMOTE_CONFIG {shown}: {e}"))?;
    let config: Config = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text)
            .map_err(|e| format!("PROMOTE_CONFIG {shown} is not valid: {e}"))?
    } else {
        toml::from_str(&text).map_err(|e| format!("PROMOTE_CONFIG {shown} is not valid: {e}"))?
    };
    if config.container.is_empty() {
        return Err(format!("PROMOTE_CONFIG {shown} lists no [[container]]"));
    }
    let mut routes: Vec<Route> = Vec::new();
    let mut names = std::collections::HashSet::new();
    for entry in config.container {
        let name = entry.name.trim().to_owned();
        if name.is_empty() || !names.insert(name.clone()) {
            return Err(format!(
                "PROMOTE_CONFIG {shown}: container name {name:?} is empty or listed twice"
            ));
        }
        let parse = |uri: &str| {
            uri.parse::<Repository>()
                .map_err(|e| format!("PROMOTE_CONFIG {shown}, container {name}: {e}"))
        };
        let (source, target) = (parse(&entry.source)?, parse(&entry.target)?);
        // Two images into one production repository would write one release tag twice, the second copy
        // moving the tag the first wrote.
        if let Some(other) = routes
            .iter()
            .find(|r| r.target == target && r.source != source)
        {
            return Err(format!(
                "PROMOTE_CONFIG {shown}: containers {} ({}) and {name} ({source}) both go to {target} from different \
                 sources: one release tag can hold one image, so give each its own target repository",
                other.containers.join(", "),
                other.source,
            ));
        }
        match routes
            .iter_mut()
            .find(|r| r.source == source && r.target == target)
        {
            Some(route) => route.containers.push(name),
            None => routes.push(Route {
                containers: vec![name],
                source,
                target,
            }),
        }
    }
    Ok(routes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAGING: &str = "111111111111.dkr.ecr.us-east-1.amazonaws.com";
    const PRODUCTION: &str = "222222222222.dkr.ecr.us-east-1.amazonaws.com";

    fn write(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn reads_toml_and_groups_containers_of_one_image() {
        let (_dir, path) = write(
            "promote.toml",
            &format!(
                r#"
                [[container]]
                name = "api"
                source = "{STAGING}/api"
                target = "{PRODUCTION}/api"
                [[container]]
                name = "worker"
                source = "{STAGING}/worker"
                target = "{PRODUCTION}/worker"
                [[container]]
                name = "api-migrate"
                source = "{STAGING}/api"
                target = "{PRODUCTION}/api"
                "#
            ),
        );
        let routes = from_config(&path).unwrap();
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[0].containers, ["api", "api-migrate"]);
        assert_eq!(routes[1].containers, ["worker"]);
        assert_eq!(routes[1].target.to_string(), format!("{PRODUCTION}/worker"));
    }

    #[test]
    fn reads_json() {
        let json = format!(
            r#"{{"container":[{{"name":"api","source":"{STAGING}/api","target":"{PRODUCTION}/api"}}]}}"#
        );
        let (_dir, path) = write("promote.json", &json);
        assert_eq!(from_config(&path).unwrap()[0].containers, ["api"]);
    }

    #[test]
    fn says_what_is_wrong_with_a_config() {
        for (text, says) in [
            ("container = []", "lists no"),
            (
                "[[container]]\nname = \"api\"\nsource = \"x\"\ntarget = \"y\"",
                "container api",
            ),
            ("[[container]]\nname = \"api\"", "not valid"),
            (
                &format!(
                    "[[container]]\nname=\"a\"\nsource=\"{STAGING}/a\"\ntarget=\"{PRODUCTION}/a\"\n[[container]]\nname=\"a\"\nsource=\"{STAGING}/b\"\ntarget=\"{PRODUCTION}/b\""
                ),
                "listed twice",
            ),
            (
                &format!(
                    "[[container]]\nname=\"api\"\nsource=\"{STAGING}/api\"\ntarget=\"{PRODUCTION}/shared\"\n[[container]]\nname=\"worker\"\nsource=\"{STAGING}/worker\"\ntarget=\"{PRODUCTION}/shared\""
                ),
                "containers api (111111111111.dkr.ecr.us-east-1.amazonaws.com/api) and worker",
            ),
            (
                // One production repository spelled twice: a host is the same whatever its case.
                &format!(
                    "[[container]]\nname=\"api\"\nsource=\"{STAGING}/api\"\ntarget=\"{PRODUCTION}/shared\"\n[[container]]\nname=\"worker\"\nsource=\"{STAGING}/worker\"\ntarget=\"{}/shared\"",
                    PRODUCTION.to_uppercase()
                ),
                "both go to",
            ),
        ] {
            let (_dir, path) = write("promote.toml", text);
            let error = from_config(&path).unwrap_err();
            assert!(
                error.contains(says) && error.contains("PROMOTE_CONFIG"),
                "{text}: {error}"
            );
        }
    }
}
