//! The webhook function as Lambda runs it: the built `ecr-promote-webhook` binary polling the
//! Lambda Runtime API of `cargo lambda watch --only-lambda-apis`, invoked through the emulator's
//! Invoke API with API Gateway and function URL events.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use super::World;
use super::process::{Launch, Process, log_file, read_log};

/// The name the function runs under, and so the Invoke API path.
const FUNCTION_NAME: &str = "_";
/// GitHub's limit: an answer later than this is a failed delivery.
const GITHUB_TIMEOUT: Duration = Duration::from_secs(10);

/// `cargo lambda watch --only-lambda-apis`: the Runtime API the function polls and the Invoke API
/// the tests call.
pub struct Emulator {
    process: Process,
    dir: TempDir,
}

impl Emulator {
    pub async fn start() -> Emulator {
        let dir = tempfile::Builder::new()
            .prefix("lambda-emulator-")
            .tempdir()
            .expect("create the emulator's temp dir");
        let log = dir.path().join("emulator.log");
        let command = |port: u16| {
            let out = log_file(&log);
            let err = out.try_clone().expect("share the emulator's log");
            // The binary as cargo would run it, so that a missing install is a NotFound.
            let mut command = Command::new("cargo-lambda");
            command
                .args([
                    "lambda",
                    "watch",
                    "--only-lambda-apis",
                    "-A",
                    "127.0.0.1",
                    "-P",
                ])
                .arg(port.to_string())
                // It reads the package's metadata, so it runs in the project root.
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err);
            command
        };
        let process = Launch {
            name: "cargo-lambda",
            install_hint: "run scripts/setup.sh world and put .local/venv/bin on PATH (scripts/test.sh does both), \
                           or pip install cargo-lambda==1.9.2",
            log: log.clone(),
            command: &command,
        }
        .start(async |port| {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await;
        Emulator { process, dir }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.process.port)
    }

    pub fn log(&self) -> String {
        read_log(&self.dir.path().join("emulator.log"))
    }
}

/// The function running under the emulator; killed when dropped.
pub struct Function {
    /// Killed on drop (`kill_on_drop`, set by `World::command_of`).
    _child: tokio::process::Child,
    emulator: Emulator,
    log: PathBuf,
    client: reqwest::Client,
}

/// The function's answer to one invocation, as API Gateway would turn it into an HTTP response.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// The `detail` line the function wrote for GitHub's delivery log.
    pub fn detail(&self) -> &str {
        self.body["detail"].as_str().unwrap_or_default()
    }

    pub fn outcome(&self) -> &str {
        self.body["outcome"].as_str().unwrap_or_default()
    }
}

impl Function {
    /// Starts the function with `world`'s AWS endpoint and `settings` (PROMOTE_* variables).
    pub async fn start(world: &World, settings: &[(&str, &str)]) -> Function {
        let emulator = Emulator::start().await;
        let log = emulator.dir.path().join("function.log");
        let out = log_file(&log);
        let mut command = world.command_of(env!("CARGO_BIN_EXE_ecr-promote-webhook"));
        command
            .env("AWS_LAMBDA_RUNTIME_API", format!("{}/.rt", emulator.url()))
            .env("AWS_LAMBDA_FUNCTION_NAME", FUNCTION_NAME)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .stdout(out.try_clone().expect("share the function's log"))
            .stderr(out);
        for (name, value) in settings {
            command.env(name, value);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|error| panic!("start ecr-promote-webhook: {error}"));
        Function {
            _child: child,
            emulator,
            log,
            client: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("an HTTP client"),
        }
    }

    /// Invokes the function with `event`, as API Gateway or a function URL does for an HTTP request.
    pub async fn invoke(&self, event: &Value) -> Answer {
        let url = format!(
            "{}/2015-03-31/functions/{FUNCTION_NAME}/invocations",
            self.emulator.url()
        );
        let response = tokio::time::timeout(
            GITHUB_TIMEOUT,
            self.client.post(&url).body(event.to_string()).send(),
        )
        .await
        .unwrap_or_else(|_| {
            panic!(
                "no answer within GitHub's {GITHUB_TIMEOUT:?}\n{}",
                self.logs()
            )
        })
        .unwrap_or_else(|error| panic!("invoke the function: {error}\n{}", self.logs()));
        let invocation_status = response.status();
        let text = response.text().await.expect("read the invocation's answer");
        let answer: Value = serde_json::from_str(&text).unwrap_or_else(|error| {
            panic!(
                "the invocation answered {invocation_status} {text:?} ({error})\n{}",
                self.logs()
            )
        });
        let status = answer["statusCode"].as_u64().unwrap_or_else(|| {
            panic!(
                "no statusCode in the function's answer {answer}\n{}",
                self.logs()
            )
        }) as u16;
        let body = answer["body"].as_str().unwrap_or_default();
        let answer = Answer {
            status,
            body: serde_json::from_str(body).unwrap_or(Value::String(body.to_string())),
        };
        println!("invoked: {answer:?}");
        answer
    }

    /// What the function and the emulator wrote, for a failing test's report.
    pub fn logs(&self) -> String {
        format!(
            "--- function ---\n{}--- emulator ---\n{}",
            read_log(&self.log),
            self.emulator.log()
        )
    }

    /// The function's log lines, each a JSON object.
    pub fn log_lines(&self) -> Vec<Value> {
        read_log(&self.log)
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }
}
