//! The local world the integration tests run against: moto_server for the AWS APIs and two CNCF
//! Distribution registries standing in for the staging and production ECR registries. Every
//! server listens on a free loopback port and stops when its handle is dropped.
//!
//! This module talks to the registries with its own small client, never the crate's, and to the
//! queue and the table with its own SDK clients, so that what a test reads back is an independent
//! check of what the binary did.

mod aws;
mod faults;
mod front;
mod github;
mod github_api;
mod image;
mod lambda;
mod moto;
mod pipeline;
mod process;
mod registry;
mod wait;
mod webhook;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tempfile::TempDir;

pub use aws::{
    Counts, Ecs, EventSubscription, MAX_RECEIVE_COUNT, OutcomesQueue, StagingScans, StagingService,
    WebhookSecret, schedules,
};
pub use faults::FaultyFront;
pub use front::RedirectingFront;
pub use github::{DELIVERY, ENVELOPES, Envelope, GITHUB_REPOSITORY, ReleaseEvent, ping, signature};
pub use github_api::{GithubApi, app_private_key};
pub use image::{Flavour, Image, Index};
pub use moto::Moto;
pub use pipeline::{CONTAINER, ONE_SECOND, Pipeline, REPOSITORY, TABLE, VISIBILITY_SECONDS};
pub use process::free_port;
pub use registry::{Registry, Request};
pub use wait::wait_until;
pub use webhook::{Delivery, FrontDoor, SHAPES, Shape, WEBHOOK_SECRET};

/// The commit most tests release, as `target_commitish` carries it when GitHub is given a SHA.
pub const COMMIT: &str = "3f2a9c1e5b7d4c8a9f0e1d2c3b4a5f6e7d8c9b0a";
/// The release most tests ship.
pub const RELEASE: &str = "v1.2.0";
/// A second commit, for a second release or a commit the release does not name.
pub const OTHER_COMMIT: &str = "0b9c8d7e6f5a4b3c2d1e0f9a8c4d7b5e1c9a2f3e";

/// The production pipeline's promotion build, and who started it, as CodeBuild sets them.
pub const PROMOTE_BUILD_ARN: &str =
    "arn:aws:codebuild:us-east-1:222222222222:build/promote:0f3a8e5c-6b1d-4f2a-9c7e-5d4b3a2f1e0d";
pub const PIPELINE_INITIATOR: &str = "codepipeline/shop-production";
/// An on-call engineer's rollback build, and the engineer.
pub const ROLLBACK_BUILD_ARN: &str =
    "arn:aws:codebuild:us-east-1:222222222222:build/promote:7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f";
pub const ROLLBACK_INITIATOR: &str = "oncall-alice";

/// An RFC 3339 time within the last few minutes.
pub fn assert_recent(time: &serde_json::Value) {
    let text = time
        .as_str()
        .unwrap_or_else(|| panic!("{time} is not a string"));
    let parsed = humantime::parse_rfc3339(text)
        .unwrap_or_else(|error| panic!("{text:?} is not RFC 3339: {error}"));
    let age = std::time::SystemTime::now()
        .duration_since(parsed)
        .unwrap_or_else(|_| panic!("{text} is in the future"));
    assert!(age < Duration::from_secs(300), "{text} is {age:?} old");
}

/// A deploy entry of the ledger: `kind`, made just now by the given build and person.
pub fn assert_deploy(deploy: &serde_json::Value, kind: &str, build_arn: &str, initiator: &str) {
    assert_eq!(deploy["kind"], kind, "{deploy}");
    assert_eq!(deploy["build_arn"], build_arn, "{deploy}");
    assert_eq!(deploy["initiator"], initiator, "{deploy}");
    assert_recent(&deploy["deployed_at"]);
}

/// The ledger's times have whole seconds: two records or deploys that must be ordered, or a rewrite
/// that must show, are this far apart.
pub async fn next_second() {
    tokio::time::sleep(Duration::from_millis(1100)).await;
}

pub const STAGING_ACCOUNT: &str = "111111111111";
pub const PRODUCTION_ACCOUNT: &str = "222222222222";
pub const REGION: &str = "us-east-1";

/// A run of the binary longer than this is a hang, not a slow copy.
const RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// Variables of the calling environment that could point the binary somewhere else.
const LEAKY_VARIABLE_PREFIXES: &[&str] = &["AWS_", "PROMOTE_", "CODEBUILD_", "DOCKER_"];

/// moto plus a staging and a production registry, and the environment that sends the binary to
/// them.
pub struct World {
    pub moto: Moto,
    pub staging: Registry,
    pub production: Registry,
    /// ECR host → URL the binary is sent to instead (PROMOTE_REGISTRY_ENDPOINTS).
    routes: Vec<(String, String)>,
    dir: TempDir,
}

impl World {
    /// moto, staging (STAGING_ACCOUNT) and production (PRODUCTION_ACCOUNT), each registry
    /// accepting the password moto hands out for its account.
    pub async fn start() -> World {
        let (staging, production) = tokio::join!(
            Registry::start(STAGING_ACCOUNT),
            Registry::start(PRODUCTION_ACCOUNT)
        );
        World::with_registries(staging, production).await
    }

    /// A world whose moto is started with `env` (see [`Moto::start_with`]).
    pub async fn with_moto_env(env: &[(&str, &str)]) -> World {
        let (staging, production) = tokio::join!(
            Registry::start(STAGING_ACCOUNT),
            Registry::start(PRODUCTION_ACCOUNT)
        );
        World::around(staging, production, Moto::start_with(env).await)
    }

    /// A world around registries the test started itself (e.g. one with a wrong password).
    pub async fn with_registries(staging: Registry, production: Registry) -> World {
        World::around(staging, production, Moto::start().await)
    }

    fn around(staging: Registry, production: Registry, moto: Moto) -> World {
        let dir = tempfile::Builder::new()
            .prefix("ecr-promote-world-")
            .tempdir()
            .expect("create the world's temp dir");
        std::fs::create_dir_all(dir.path().join("home/.docker")).expect("create HOME");
        let routes = [&staging, &production]
            .iter()
            .map(|registry| (registry.ecr_host(), registry.url()))
            .collect();
        World {
            moto,
            staging,
            production,
            routes,
            dir,
        }
    }

    /// Sends the binary's requests for `ecr_host` to `url` (e.g. a RedirectingFront).
    pub fn route(&mut self, ecr_host: &str, url: &str) {
        let route = self
            .routes
            .iter_mut()
            .find(|(host, _)| host == ecr_host)
            .unwrap_or_else(|| panic!("{ecr_host} is not a registry of this world"));
        route.1 = url.to_string();
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The binary, with an environment that reaches only this world.
    pub fn command(&self) -> tokio::process::Command {
        self.command_of(env!("CARGO_BIN_EXE_ecr-promote"))
    }

    /// `program` (one of the package's binaries), with an environment that reaches only this world.
    pub fn command_of(&self, program: &str) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(program);
        for (name, _) in std::env::vars_os() {
            let leaky = name.to_str().is_some_and(|name| {
                LEAKY_VARIABLE_PREFIXES
                    .iter()
                    .any(|prefix| name.starts_with(prefix))
            });
            if leaky {
                command.env_remove(&name);
            }
        }
        let home = self.dir().join("home");
        let endpoints = self
            .routes
            .iter()
            .map(|(host, url)| format!("{host}={url}"))
            .collect::<Vec<_>>()
            .join(",");
        command
            .env("AWS_ENDPOINT_URL", self.moto.url())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", REGION)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("HOME", &home)
            .env("DOCKER_CONFIG", home.join(".docker"))
            .env("PROMOTE_REGISTRY_ENDPOINTS", endpoints)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }
}

/// How a run of the binary ended.
#[derive(Debug)]
pub struct Outcome {
    /// The exit code, or -1 when a signal ended the process.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// The one line that explains a failure: the first on stderr starting `error:`.
    pub fn error_line(&self) -> &str {
        self.stderr
            .lines()
            .find(|line| line.starts_with("error:"))
            .unwrap_or_else(|| panic!("no line starting `error:` on stderr:\n{}", self.stderr))
    }

    /// The run failed with `code`, and its error line names each of `named`.
    pub fn assert_failed_naming(&self, code: i32, named: &[&str]) {
        assert_eq!(self.code, code, "{}", self.stderr);
        let error = self.error_line();
        for named in named {
            assert!(error.contains(named), "names {named}: {error}");
        }
    }
}

/// Runs the binary to the end and prints what it wrote, which the test harness shows only when
/// the test fails.
pub async fn run(command: &mut tokio::process::Command) -> Outcome {
    let described = format!("{:?}", command.as_std());
    let output = tokio::time::timeout(RUN_TIMEOUT, command.output())
        .await
        .unwrap_or_else(|_| panic!("{described} ran longer than {RUN_TIMEOUT:?}"))
        .unwrap_or_else(|error| panic!("cannot run {described}: {error}"));
    let outcome = Outcome {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    println!(
        "ran {described}\nexit code: {}\n--- stdout ---\n{}--- stderr ---\n{}--------------",
        outcome.code, outcome.stdout, outcome.stderr
    );
    outcome
}
