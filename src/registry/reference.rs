//! Image references as users write them: `host/repository:tag` or `host/repository@sha256:…`.

use std::fmt;
use std::str::FromStr;

use super::digest::Digest;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub host: String,
    pub repository: String,
    pub pointer: Pointer,
}

/// What a reference points at within its repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pointer {
    Tag(String),
    Digest(Digest),
}

impl Pointer {
    /// The text the Distribution API takes in `/v2/<name>/manifests/<reference>`.
    pub fn as_path(&self) -> String {
        match self {
            Pointer::Tag(tag) => tag.clone(),
            Pointer::Digest(digest) => digest.to_string(),
        }
    }
}

impl Reference {
    /// The same repository, pointing at another manifest.
    pub fn with_pointer(&self, pointer: Pointer) -> Reference {
        Reference {
            pointer,
            ..self.clone()
        }
    }
}

/// A repository URI without tag or digest, as ECR prints it: `host/repository`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repository {
    pub host: String,
    pub name: String,
}

impl Repository {
    pub fn at(&self, pointer: Pointer) -> Reference {
        Reference {
            host: self.host.clone(),
            repository: self.name.clone(),
            pointer,
        }
    }
}

impl FromStr for Repository {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.contains('@')
            || text
                .rsplit('/')
                .next()
                .is_some_and(|last| last.contains(':'))
        {
            return Err(format!(
                "repository URI {text:?} must not carry a tag or digest (e.g. 111111111111.dkr.ecr.us-east-1.amazonaws.com/api)"
            ));
        }
        let reference: Reference = format!("{text}:latest").parse()?;
        Ok(Repository {
            host: reference.host,
            name: reference.repository,
        })
    }
}

impl fmt::Display for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.host, self.name)
    }
}

/// An ECR registry host, `<account>.dkr.ecr.<region>.amazonaws.com` (or `.com.cn`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EcrHost {
    pub account: String,
    pub region: String,
}

impl EcrHost {
    pub fn parse(host: &str) -> Option<EcrHost> {
        let rest = host
            .strip_suffix(".amazonaws.com")
            .or_else(|| host.strip_suffix(".amazonaws.com.cn"))?;
        let mut parts = rest.split('.');
        let (account, dkr, ecr, region) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let valid = parts.next().is_none()
            && dkr == "dkr"
            && ecr == "ecr"
            && account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && !region.is_empty();
        valid.then(|| EcrHost {
            account: account.to_owned(),
            region: region.to_owned(),
        })
    }
}

/// Whether `tag` may be an image tag (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`).
pub fn valid_tag(tag: &str) -> bool {
    let mut bytes = tag.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphanumeric() || b == b'_')
        && tag.len() <= 128
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn valid_repository(repository: &str) -> bool {
    !repository.is_empty()
        && repository.split('/').all(|component| {
            let bytes = component.as_bytes();
            !component.is_empty()
                && bytes[0].is_ascii_alphanumeric()
                && bytes[bytes.len() - 1].is_ascii_alphanumeric()
                && bytes.iter().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
        })
}

impl FromStr for Reference {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let form = "expected host/repository:tag or host/repository@sha256:<digest>";
        let (host, rest) = text
            .split_once('/')
            .ok_or_else(|| format!("image reference {text:?} has no registry host; {form}"))?;
        if !(host.contains('.') || host.contains(':') || host == "localhost") {
            return Err(format!(
                "image reference {text:?} does not start with a registry host (such as \
                 111111111111.dkr.ecr.us-east-1.amazonaws.com); {form}"
            ));
        }
        let (repository, pointer) = if let Some((repository, digest)) = rest.split_once('@') {
            if repository.contains(':') {
                return Err(format!(
                    "image reference {text:?} has both a tag and a digest: give one, host/repository:tag or \
                     host/repository@sha256:<digest>"
                ));
            }
            let digest = digest
                .parse()
                .map_err(|e| format!("image reference {text:?}: {e}"))?;
            (repository, Pointer::Digest(digest))
        } else if let Some((repository, tag)) = rest.rsplit_once(':') {
            if !valid_tag(tag) {
                return Err(format!(
                    "image reference {text:?}: tag {tag:?} may hold only letters, digits, '_', '.' and '-' \
                     (at most 128, not starting with '.' or '-')"
                ));
            }
            (repository, Pointer::Tag(tag.to_owned()))
        } else {
            return Err(format!(
                "image reference {text:?} names no tag or digest; {form}"
            ));
        };
        if !valid_repository(repository) {
            return Err(format!(
                "image reference {text:?}: repository {repository:?} must be lower-case path components \
                 of letters, digits, '.', '_' and '-'"
            ));
        }
        Ok(Reference {
            // Host names are case-insensitive: one spelling, so that one registry is one host when references
            // are compared (two routes into one repository) and connections are cached.
            host: host.to_ascii_lowercase(),
            repository: repository.to_owned(),
            pointer,
        })
    }
}

impl Reference {
    /// An image reference as Docker and ECS read a task definition's `image`: the registry host may be left
    /// out (Docker Hub, `docker.io`, whose one-part names are under `library/`), and so may the tag
    /// (`latest`); given a tag and a digest, the digest is what runs. `amazon/aws-xray-daemon`,
    /// `nginx:1.27` and `host:5000/name@sha256:…` all read. What users configure is parsed strictly instead
    /// ([`Reference::from_str`]): there a missing host is a mistake worth naming.
    pub fn from_container_image(text: &str) -> Result<Reference, String> {
        let (named, digest) = match text.split_once('@') {
            Some((named, digest)) => (named, Some(digest)),
            None => (text, None),
        };
        let (name, tag) = match named.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => (name, Some(tag)),
            _ => (named, None),
        };
        let (host, path) = match name.split_once('/') {
            Some((host, path))
                if host.contains(['.', ':'])
                    || host == "localhost"
                    || host.bytes().any(|b| b.is_ascii_uppercase()) =>
            {
                (host, path.to_owned())
            }
            _ if name.contains('/') => ("docker.io", name.to_owned()),
            _ => ("docker.io", format!("library/{name}")),
        };
        let pointer = match (digest, tag) {
            (Some(digest), _) => format!("@{digest}"),
            (None, tag) => format!(":{}", tag.unwrap_or("latest")),
        };
        format!("{host}/{path}{pointer}")
            .parse()
            .map_err(|e| format!("image {text:?} is no image reference Docker reads: {e}"))
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pointer {
            Pointer::Tag(tag) => write!(f, "{}/{}:{tag}", self.host, self.repository),
            Pointer::Digest(digest) => write!(f, "{}/{}@{digest}", self.host, self.repository),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_is_one_host_whatever_its_case() {
        let upper: Reference = "222222222222.DKR.ECR.us-east-1.AMAZONAWS.com/api:v1"
            .parse()
            .unwrap();
        let lower: Reference = "222222222222.dkr.ecr.us-east-1.amazonaws.com/api:v1"
            .parse()
            .unwrap();
        assert_eq!(upper, lower);
        assert!(EcrHost::parse(&upper.host).is_some(), "{}", upper.host);
    }

    const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_tagged_ecr_reference() {
        let r: Reference = "111111111111.dkr.ecr.us-east-1.amazonaws.com/team/api:v1.2.0"
            .parse()
            .unwrap();
        assert_eq!(r.host, "111111111111.dkr.ecr.us-east-1.amazonaws.com");
        assert_eq!(r.repository, "team/api");
        assert_eq!(r.pointer, Pointer::Tag("v1.2.0".into()));
        assert_eq!(
            r.to_string(),
            "111111111111.dkr.ecr.us-east-1.amazonaws.com/team/api:v1.2.0"
        );
    }

    #[test]
    fn parses_digest_reference_and_host_with_port() {
        let r: Reference = format!("localhost:5000/api@{DIGEST}").parse().unwrap();
        assert_eq!(r.host, "localhost:5000");
        assert_eq!(r.repository, "api");
        assert_eq!(r.pointer, Pointer::Digest(DIGEST.parse().unwrap()));
        assert_eq!(r.to_string(), format!("localhost:5000/api@{DIGEST}"));
    }

    #[test]
    fn refuses_references_without_host_pointer_or_with_bad_names() {
        for bad in [
            "api:v1",
            "library/api:v1",
            "registry.example.com/api",
            "registry.example.com/API:v1",
            "registry.example.com/api:-v1",
            "registry.example.com/api@sha256:abc",
            "registry.example.com/:v1",
            "registry.example.com/api//x:v1",
        ] {
            assert!(bad.parse::<Reference>().is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn container_images_read_as_docker_reads_them() {
        for (image, read) in [
            (
                "amazon/aws-xray-daemon",
                "docker.io/amazon/aws-xray-daemon:latest",
            ),
            ("nginx:1.27", "docker.io/library/nginx:1.27"),
            (
                "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable",
                "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable",
            ),
            (
                &format!("localhost:5000/team/api@{DIGEST}"),
                &format!("localhost:5000/team/api@{DIGEST}"),
            ),
            ("localhost:5000/api", "localhost:5000/api:latest"),
            (
                &format!("registry.example.com/api:v1@{DIGEST}"),
                &format!("registry.example.com/api@{DIGEST}"),
            ),
            (
                "111111111111.dkr.ecr.us-east-1.amazonaws.com/api:v1",
                "111111111111.dkr.ecr.us-east-1.amazonaws.com/api:v1",
            ),
        ] {
            let reference =
                Reference::from_container_image(image).unwrap_or_else(|e| panic!("{image}: {e}"));
            assert_eq!(reference.to_string(), read, "{image}");
        }
        for bad in ["", "API:v1", "nginx:-x", "nginx@sha256:abc"] {
            assert!(
                Reference::from_container_image(bad).is_err(),
                "{bad} was accepted"
            );
        }
    }

    #[test]
    fn a_tag_and_a_digest_together_are_named_as_such() {
        let both = format!("registry.example.com/api:v1@sha256:{}", "ab".repeat(32));
        let error = both.parse::<Reference>().unwrap_err();
        assert!(error.contains("both a tag and a digest"), "{error}");
    }

    #[test]
    fn repository_uris_carry_no_tag() {
        let repository: Repository = "111111111111.dkr.ecr.us-east-1.amazonaws.com/team/api"
            .parse()
            .unwrap();
        assert_eq!(repository.name, "team/api");
        assert_eq!(
            repository.at(Pointer::Tag("v1".into())).to_string(),
            "111111111111.dkr.ecr.us-east-1.amazonaws.com/team/api:v1"
        );
        assert_eq!(
            repository.to_string(),
            "111111111111.dkr.ecr.us-east-1.amazonaws.com/team/api"
        );
        assert!("host.example/api:v1".parse::<Repository>().is_err());
        assert!("host.example:5000/api".parse::<Repository>().is_ok());
        assert!("api".parse::<Repository>().is_err());
    }

    #[test]
    fn recognises_ecr_hosts_only() {
        assert_eq!(
            EcrHost::parse("111111111111.dkr.ecr.eu-west-1.amazonaws.com"),
            Some(EcrHost {
                account: "111111111111".into(),
                region: "eu-west-1".into()
            })
        );
        assert!(EcrHost::parse("222222222222.dkr.ecr.cn-north-1.amazonaws.com.cn").is_some());
        assert_eq!(EcrHost::parse("public.ecr.aws"), None);
        assert_eq!(EcrHost::parse("1111.dkr.ecr.us-east-1.amazonaws.com"), None);
        assert_eq!(EcrHost::parse("localhost:5000"), None);
    }
}
