//! moto_server: SQS, DynamoDB, ECR's API, STS, Secrets Manager and CodePipeline on loopback.

use std::process::{Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use super::process::{Launch, Process, log_file};

/// The version scripts/setup.sh installs; its GetAuthorizationToken answers `AWS:<account>-auth-token`.
pub const MOTO_VERSION: &str = "5.2.5";

pub struct Moto {
    process: Process,
    /// Holds moto's log; removed after the process is killed.
    /// Kept for its Drop: moto's log and state live there until the server stops.
    _dir: TempDir,
}

impl Moto {
    /// Starts `moto_server` (found on PATH) and waits until it answers HTTP.
    pub async fn start() -> Moto {
        Moto::start_with(&[]).await
    }

    /// Starts `moto_server` with `env` set: moto reads some settings from its environment (e.g.
    /// `MOTO_ECS_SERVICE_RUNNING`, the running count it gives each ECS service it creates).
    pub async fn start_with(env: &[(&str, &str)]) -> Moto {
        let dir = tempfile::Builder::new()
            .prefix("moto-")
            .tempdir()
            .expect("create moto's temp dir");
        let log = dir.path().join("moto.log");
        let command = |port: u16| {
            let out = log_file(&log);
            let err = out.try_clone().expect("share moto's log");
            let mut command = Command::new("moto_server");
            command
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .envs(env.iter().copied())
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err);
            command
        };
        let hint = format!(
            "run scripts/setup.sh world and put .local/venv/bin on PATH (scripts/test.sh does both), \
             or pip install 'moto[server]=={MOTO_VERSION}'"
        );
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("build an HTTP client");
        let process = Launch {
            name: "moto_server",
            install_hint: &hint,
            log: log.clone(),
            command: &command,
        }
        .start(async |port| {
            client
                .get(format!("http://127.0.0.1:{port}/"))
                .send()
                .await
                .is_ok()
        })
        .await;
        Moto { process, _dir: dir }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.process.port)
    }
}
