//! A CNCF Distribution registry (Debian's `docker-registry`) standing in for one account's ECR
//! registry, and the test side's own client for it.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use tempfile::TempDir;

use super::REGION;
use super::image::{INDEX_MEDIA_TYPE, Image, Index, sha256_digest};
use super::process::{Launch, Process, log_file, read_log};

/// ECR's user name for the password GetAuthorizationToken hands out.
pub const USERNAME: &str = "AWS";

/// What `manifest` asks for: every manifest format the tests write.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
    application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.docker.distribution.manifest.list.v2+json";

pub struct Registry {
    process: Process,
    dir: TempDir,
    pub account: String,
    /// The password of user `AWS`; `None` for a registry that asks for no credentials.
    pub password: Option<String>,
    client: reqwest::Client,
}

/// One line of the registry's access log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// Path and query, as the client sent them.
    pub uri: String,
    pub status: u16,
}

impl Request {
    /// Any step of a blob upload: starting, sending a chunk, or completing it.
    pub fn is_blob_upload(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PATCH" | "PUT")
            && self.uri.contains("/blobs/uploads/")
    }

    pub fn is_manifest_put(&self) -> bool {
        self.method == "PUT" && self.uri.contains("/manifests/")
    }
}

impl Registry {
    /// A registry accepting the password moto's GetAuthorizationToken hands out for `account`.
    pub async fn start(account: &str) -> Registry {
        Registry::launch(account, Some(format!("{account}-auth-token"))).await
    }

    /// A registry of `account` whose password is `password`, e.g. one that rejects moto's token.
    pub async fn start_with_password(account: &str, password: &str) -> Registry {
        Registry::launch(account, Some(password.to_string())).await
    }

    /// A registry that asks for no credentials.
    pub async fn start_anonymous(account: &str) -> Registry {
        Registry::launch(account, None).await
    }

    async fn launch(account: &str, password: Option<String>) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix(&format!("registry-{account}-"))
            .tempdir()
            .expect("create the registry's temp dir");
        let root = dir.path().join("storage");
        std::fs::create_dir(&root).expect("create the storage root");
        let auth = match &password {
            Some(password) => {
                let htpasswd = dir.path().join("htpasswd");
                // Distribution checks bcrypt on every request: the lowest cost keeps tests fast.
                let hash = bcrypt::hash_with_result(password, 4)
                    .expect("hash the password")
                    .format_for_version(bcrypt::Version::TwoY);
                std::fs::write(&htpasswd, format!("{USERNAME}:{hash}\n")).expect("write htpasswd");
                format!(
                    "auth:\n  htpasswd:\n    realm: ecr-promote-tests\n    path: {}\n",
                    htpasswd.display()
                )
            }
            None => String::new(),
        };
        let access_log = dir.path().join("access.log");
        let registry_log = dir.path().join("registry.log");
        let command = |port: u16| {
            let config = dir.path().join("config.yml");
            // Access log lines (one per request) go to stdout, everything else to stderr.
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\n\
                     log:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: false\n\
                     storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                     http:\n  addr: 127.0.0.1:{port}\n  secret: ecr-promote-tests\n\
                     {auth}",
                    root.display()
                ),
            )
            .expect("write the registry's config");
            let mut command = Command::new("docker-registry");
            command
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log_file(&access_log))
                .stderr(log_file(&registry_log));
            command
        };
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(120))
            .build()
            .expect("build an HTTP client");
        let serving = if password.is_some() {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        };
        let process = Launch {
            name: "docker-registry",
            install_hint: "run scripts/setup.sh world or apt-get install docker-registry",
            log: registry_log.clone(),
            command: &command,
        }
        .start(async |port| {
            let response = client
                .get(format!("http://127.0.0.1:{port}/v2/"))
                .send()
                .await;
            response.is_ok_and(|response| response.status() == serving)
        })
        .await;
        Registry {
            process,
            dir,
            account: account.to_string(),
            password,
            client,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.process.port)
    }

    /// The ECR host this registry stands in for.
    pub fn ecr_host(&self) -> String {
        format!("{}.dkr.ecr.{REGION}.amazonaws.com", self.account)
    }

    /// `<ecr host>/<name>`, e.g. `reference("app:v1")` or `reference("app@sha256:…")`.
    pub fn reference(&self, name: &str) -> String {
        format!("{}/{name}", self.ecr_host())
    }

    pub fn storage_root(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// Every request the registry has answered so far, oldest first.
    pub fn requests(&self) -> Vec<Request> {
        read_log(&self.dir.path().join("access.log"))
            .lines()
            .filter_map(parse_access_log_line)
            .collect()
    }

    /// Every request so far that wrote: blob upload steps and manifest puts.
    pub fn writes(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|request| request.is_blob_upload() || request.is_manifest_put())
            .collect()
    }

    /// Deletes a blob's bytes from storage behind the registry's back, as a storage fault would:
    /// the repository still links it, but reading it fails.
    pub fn lose_blob(&self, digest: &str) {
        let hex = digest
            .strip_prefix("sha256:")
            .unwrap_or_else(|| panic!("{digest} is not a sha256 digest"));
        let data = self
            .storage_root()
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data");
        std::fs::remove_file(&data).unwrap_or_else(|error| panic!("remove {data:?}: {error}"));
    }

    /// A request to this registry with its credentials.
    pub fn request(&self, method: Method, url: &str) -> reqwest::RequestBuilder {
        let url = if url.starts_with("http") {
            url.to_string()
        } else {
            format!("{}{url}", self.url())
        };
        let request = self.client.request(method, url);
        match &self.password {
            Some(password) => request.basic_auth(USERNAME, Some(password)),
            None => request,
        }
    }

    /// Uploads `bytes` in one monolithic PUT and returns the blob's digest.
    pub async fn push_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = sha256_digest(bytes);
        let started = self
            .request(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
            .send()
            .await
            .expect("start a blob upload");
        assert_eq!(
            started.status(),
            StatusCode::ACCEPTED,
            "start a blob upload in {repo}"
        );
        let location = started
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|location| location.to_str().ok())
            .expect("upload Location");
        let mut upload = url::Url::parse(&self.url())
            .and_then(|base| base.join(location))
            .expect("upload URL");
        upload.query_pairs_mut().append_pair("digest", &digest);
        let completed = self
            .request(Method::PUT, upload.as_str())
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .await
            .expect("complete a blob upload");
        assert_eq!(
            completed.status(),
            StatusCode::CREATED,
            "complete the upload of {digest}"
        );
        digest
    }

    /// Puts a manifest under `reference` (a tag or digest) and returns its digest.
    pub async fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> String {
        let response = self
            .request(Method::PUT, &format!("/v2/{repo}/manifests/{reference}"))
            .header(reqwest::header::CONTENT_TYPE, media_type)
            .body(bytes.to_vec())
            .send()
            .await
            .expect("put a manifest");
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        assert_eq!(
            status,
            StatusCode::CREATED,
            "put manifest {repo}:{reference}: {body}"
        );
        sha256_digest(bytes)
    }

    /// The manifest under `reference` as stored: its media type and bytes, or `None` if unknown.
    pub async fn manifest(&self, repo: &str, reference: &str) -> Option<(String, Vec<u8>)> {
        let response = self
            .request(Method::GET, &format!("/v2/{repo}/manifests/{reference}"))
            .header(reqwest::header::ACCEPT, MANIFEST_ACCEPT)
            .send()
            .await
            .expect("get a manifest");
        if response.status() == StatusCode::NOT_FOUND {
            return None;
        }
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "get manifest {repo}:{reference}"
        );
        let media_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let bytes = response.bytes().await.expect("read a manifest").to_vec();
        Some((media_type, bytes))
    }

    /// The sha256 of the manifest bytes under `reference`, or `None` if unknown.
    pub async fn manifest_digest(&self, repo: &str, reference: &str) -> Option<String> {
        self.manifest(repo, reference)
            .await
            .map(|(_, bytes)| sha256_digest(&bytes))
    }

    pub async fn blob_exists(&self, repo: &str, digest: &str) -> bool {
        let response = self
            .request(Method::HEAD, &format!("/v2/{repo}/blobs/{digest}"))
            .send()
            .await
            .expect("check a blob");
        match response.status() {
            StatusCode::OK => true,
            StatusCode::NOT_FOUND => false,
            status => panic!("HEAD blob {repo}@{digest} answered {status}"),
        }
    }

    pub async fn blob(&self, repo: &str, digest: &str) -> Vec<u8> {
        let response = self
            .request(Method::GET, &format!("/v2/{repo}/blobs/{digest}"))
            .send()
            .await
            .expect("get a blob");
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "get blob {repo}@{digest}"
        );
        response.bytes().await.expect("read a blob").to_vec()
    }

    /// Pushes the image's blobs, then its manifest under `tag`; returns the manifest digest.
    pub async fn push_image(&self, repo: &str, tag: &str, image: &Image) -> String {
        for blob in image.blobs() {
            self.push_blob(repo, blob).await;
        }
        self.push_manifest(repo, tag, image.media_type(), &image.manifest)
            .await
    }

    /// Pushes every child image by digest, then the index under `tag`; returns the index digest.
    pub async fn push_index(&self, repo: &str, tag: &str, index: &Index) -> String {
        for image in &index.images {
            self.push_image(repo, &image.digest(), image).await;
        }
        self.push_manifest(repo, tag, INDEX_MEDIA_TYPE, &index.manifest)
            .await
    }

    /// Deletes the manifest under `tag` and every tag on it, as an ECR lifecycle policy expiring
    /// the image would.
    pub async fn delete_image(&self, repo: &str, tag: &str) {
        let digest = self
            .manifest_digest(repo, tag)
            .await
            .unwrap_or_else(|| panic!("no {repo}:{tag} to delete"));
        let response = self
            .request(Method::DELETE, &format!("/v2/{repo}/manifests/{digest}"))
            .send()
            .await
            .expect("delete a manifest");
        assert_eq!(
            response.status(),
            StatusCode::ACCEPTED,
            "delete {repo}@{digest}"
        );
    }

    /// True when every blob of `image` is in `repo`.
    pub async fn has_blobs_of(&self, repo: &str, image: &Image) -> bool {
        for digest in image.blob_digests() {
            if !self.blob_exists(repo, &digest).await {
                return false;
            }
        }
        true
    }
}

/// Parses a combined-log-format line: `… "GET /v2/ HTTP/1.1" 401 87 "" "agent"`.
fn parse_access_log_line(line: &str) -> Option<Request> {
    let (_, rest) = line.split_once('"')?;
    let (request_line, rest) = rest.split_once('"')?;
    let mut request_line = request_line.split(' ');
    let method = request_line.next()?.to_string();
    let uri = request_line.next()?.to_string();
    let status = rest.split_whitespace().next()?.parse().ok()?;
    Some(Request {
        method,
        uri,
        status,
    })
}
