//! GitHub's REST API, stood in for by tests/it/support/github_standin.py: no GitHub server runs here, so a
//! small server answers as GitHub does and checks every request against GitHub's published REST description
//! (npm @octokit/openapi, which scripts/setup.sh world installs), so that a wrong path, field or enum value
//! fails the test rather than passing against the test's own idea of the API.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;

use super::process::{Launch, Process, log_file};

/// The version of @octokit/openapi scripts/setup.sh installs.
const OCTOKIT_OPENAPI_VERSION: &str = "23.0.2";

pub struct GithubApi {
    process: Process,
    client: reqwest::Client,
    _dir: TempDir,
}

impl GithubApi {
    /// Starts the stand-in, which accepts `token` as the Bearer credential and no other.
    pub async fn start(token: &str) -> GithubApi {
        GithubApi::start_with(token, None).await
    }

    /// As [`GithubApi::start`], and GitHub App `app` with private key `pem` (PKCS #1, as GitHub generates
    /// it), whose installation token is `token`.
    pub async fn start_for_app(token: &str, app: u64, pem: &str) -> GithubApi {
        GithubApi::start_with(token, Some((app, pem))).await
    }

    async fn start_with(token: &str, app: Option<(u64, &str)>) -> GithubApi {
        let repo = env!("CARGO_MANIFEST_DIR");
        let description =
            format!("{repo}/.local/octokit-openapi/{OCTOKIT_OPENAPI_VERSION}/api.github.com.json");
        assert!(
            std::path::Path::new(&description).exists(),
            "{description} is missing: run scripts/setup.sh world"
        );
        let dir = tempfile::Builder::new()
            .prefix("github-standin-")
            .tempdir()
            .expect("create the stand-in's temp dir");
        let log = dir.path().join("standin.log");
        let app = app.map(|(id, pem)| {
            let key = dir.path().join("app.pem");
            std::fs::write(&key, pem).expect("write the App's key");
            (id.to_string(), key)
        });
        let script = format!("{repo}/tests/it/support/github_standin.py");
        let token = token.to_owned();
        let command = |port: u16| {
            let out = log_file(&log);
            let err = out.try_clone().expect("share the stand-in's log");
            let mut command = Command::new("python3");
            command
                .args([
                    &script,
                    "--port",
                    &port.to_string(),
                    "--description",
                    &description,
                ])
                .args(["--token", &token]);
            if let Some((id, key)) = &app {
                command.arg("--app-id").arg(id).arg("--app-key").arg(key);
            }
            command.stdin(Stdio::null()).stdout(out).stderr(err);
            command
        };
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("build an HTTP client");
        let process = Launch {
            name: "the GitHub stand-in (python3 with openapi-schema-validator)",
            install_hint: "run scripts/setup.sh world and put .local/venv/bin on PATH (scripts/test.sh does both)",
            log: log.clone(),
            command: &command,
        }
        .start(async |port| {
            client
                .get(format!("http://127.0.0.1:{port}/_standin/requests"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        GithubApi {
            process,
            client,
            _dir: dir,
        }
    }

    /// What PROMOTE_GITHUB_API_URL is set to.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.process.port)
    }

    /// Every request GitHub would have received, in order, each with the problems GitHub's description finds
    /// in it.
    pub async fn requests(&self) -> Vec<Value> {
        let answer = self
            .client
            .get(format!("{}/_standin/requests", self.url()))
            .send()
            .await
            .expect("ask the stand-in for its requests");
        let text = answer.text().await.expect("the stand-in's requests");
        serde_json::from_str(&text).expect("the stand-in's requests are JSON")
    }

    /// Every request so far, checked to be one GitHub's description defines, authorised with the token.
    pub async fn valid_requests(&self) -> Vec<Value> {
        self.valid_requests_after(0).await
    }

    /// As [`GithubApi::valid_requests`], the requests after the first `before`.
    pub async fn valid_requests_after(&self, before: usize) -> Vec<Value> {
        let requests = self.requests().await.split_off(before);
        for request in &requests {
            assert_eq!(request["problems"], json!([]), "{request}");
            assert_eq!(request["authorized"], true, "{request}");
        }
        requests
    }

    /// From now on, answers every GitHub request with `status` (e.g. 503); `None` answers normally again.
    pub async fn answer_with(&self, status: Option<u16>) {
        self.client
            .post(format!("{}/_standin/answer", self.url()))
            .body(json!({ "status": status }).to_string())
            .send()
            .await
            .expect("tell the stand-in how to answer")
            .error_for_status()
            .expect("the stand-in takes the answer");
    }
}

/// A fresh 2048-bit RSA private key in the PEM form GitHub hands an App's owner (`BEGIN RSA PRIVATE KEY`),
/// made by the stand-in's Python.
pub fn app_private_key() -> String {
    let script = "from cryptography.hazmat.primitives.asymmetric import rsa\n\
        from cryptography.hazmat.primitives import serialization as s\n\
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)\n\
        print(key.private_bytes(s.Encoding.PEM, s.PrivateFormat.TraditionalOpenSSL, s.NoEncryption()).decode())";
    let output = Command::new("python3")
        .args(["-c", script])
        .output()
        .expect("run python3 (scripts/setup.sh world)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("a PEM key")
}
