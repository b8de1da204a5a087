//! The command line: every flag defined once, with its environment variable and its documentation.
//! Buildspecs and templates set the variables; the flags are for people at a terminal.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::aws::Aws;
use crate::deploy_files::DeployFiles;
use crate::gates::vulnerabilities::{self, Severity};
use crate::gates::{Gate, GateSettings, Override, SoakGate, VulnerabilityGate};
use crate::intake::secrets::SecretSource;
use crate::intake::{ReleaseSource, Secret};
use crate::logging::LogFormat;
use crate::promote::{Route, Settings, routes};
use crate::registry::{Connector, CopyOptions, Endpoints, Reference, Repository};
use crate::usage::Usage;

#[derive(Debug, Parser)]
#[command(name = "ecr-promote", version, about, after_help = crate::exit::TABLE)]
pub struct Cli {
    /// Log line format on stderr: text for people, json for CloudWatch Logs Insights.
    #[arg(
        long,
        global = true,
        env = "PROMOTE_LOG_FORMAT",
        value_enum,
        default_value_t
    )]
    pub log_format: LogFormat,

    /// Give up a registry request that moves no data for this many seconds (no answer, or no bytes either
    /// way during a blob copy), or an AWS API call attempt with no answer (for SQS's long poll, this plus its
    /// wait); it is then tried again. A long transfer that keeps moving is never cut off.
    #[arg(long, global = true, env = "PROMOTE_STALL_SECONDS", default_value_t = DEFAULT_STALL_SECONDS, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub stall_seconds: u64,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    pub fn stall(&self) -> Duration {
        Duration::from_secs(self.stall_seconds)
    }
}

impl Cli {
    /// Parses the command line and environment. A bad value that came from an environment variable is
    /// reported under the variable's name: buildspecs set variables, and a flag the user never typed would
    /// send them looking in the wrong place.
    pub fn parse_or_exit() -> Cli {
        let error = match Cli::try_parse() {
            Ok(cli) => return cli,
            Err(error) => error,
        };
        match variable_behind(&error) {
            Some((flag, variable)) => {
                let rendered = error.render().to_string();
                let first = rendered.lines().next().unwrap_or_default();
                let message = first
                    .replace(&format!("'{flag}'"), &variable)
                    .replacen(&flag, &variable, 1);
                eprintln!("{message}");
                std::process::exit(i32::from(crate::exit::USAGE));
            }
            None => error.exit(),
        }
    }
}

/// The flag and environment variable of an invalid value that came from the environment, not the command
/// line.
fn variable_behind(error: &clap::Error) -> Option<(String, String)> {
    use clap::CommandFactory;
    use clap::error::{ContextKind, ContextValue};
    let Some(ContextValue::String(flag)) = error.get(ContextKind::InvalidArg) else {
        return None;
    };
    let long = flag.split_whitespace().next()?.strip_prefix("--")?;
    let command = Cli::command();
    let variable = std::iter::once(&command)
        .chain(command.get_subcommands())
        .flat_map(|c| c.get_arguments())
        .find(|a| a.get_long() == Some(long))?
        .get_env()?
        .to_string_lossy()
        .into_owned();
    let typed =
        std::env::args().any(|a| a == format!("--{long}") || a.starts_with(&format!("--{long}=")));
    (!typed && std::env::var_os(&variable).is_some()).then(|| (flag.clone(), variable))
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The production CodeBuild step: promote every pending release on the queue, oldest first, record each,
    /// and write imagedefinitions.json for the newest.
    #[command(after_help = crate::exit::TABLE)]
    Run(Box<RunArgs>),

    /// Promote one release without a queue: for manual runs and for CodePipeline V2 variables.
    #[command(after_help = crate::exit::TABLE)]
    Promote(Box<PromoteArgs>),

    /// Deploy an earlier release again, without copying anything: checks that production still holds the
    /// recorded digests, records the redeploy and writes the deploy files as `run` does.
    #[command(after_help = crate::exit::TABLE)]
    Redeploy(Box<RedeployArgs>),

    /// List the recorded releases, newest first.
    History(HistoryArgs),

    /// Show one recorded release with its deploy history.
    Show(ShowArgs),

    /// Copy an image, or an index of images, from one registry to another with the same digest.
    ///
    /// SOURCE and TARGET are host/repository:tag or host/repository@sha256:<digest>. Blobs the target
    /// already has are skipped; if TARGET's tag is already on the source digest nothing is copied.
    #[command(after_help = crate::exit::TABLE)]
    Copy(CopyArgs),

    /// Which recorded release each container of the ECS service runs, from which commit, promoted and
    /// deployed when, checked against the ledger and the production registry (exit 3 on drift).
    #[command(after_help = crate::exit::TABLE)]
    Status(StatusArgs),

    /// Record how ECS rolled out each deploy (completed, failed, rolled back): drain the outcomes queue of ECS
    /// deployment events, reconcile them with the production service's deployments, and write each outcome onto
    /// its deploy in the ledger.
    #[command(after_help = crate::exit::TABLE)]
    Settle(SettleArgs),

    /// Check every recorded release against the registries: its production tag still on the recorded digest
    /// (exit 3 if not), the staging image of its commit still there; pending and unreadable items listed.
    #[command(after_help = crate::exit::TABLE)]
    Audit(AuditArgs),
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The image to copy, e.g. 111111111111.dkr.ecr.us-east-1.amazonaws.com/api:3f2a9c1
    #[arg(value_parser = clap::value_parser!(Reference))]
    pub source: Reference,

    /// Where to copy it, e.g. 222222222222.dkr.ecr.us-east-1.amazonaws.com/api:v1.2.0
    #[arg(value_parser = clap::value_parser!(Reference))]
    pub target: Reference,

    /// Move TARGET's tag even if it is on another digest. Release tags should never move: use this only to
    /// repair a tag you know is wrong.
    #[arg(long)]
    pub force: bool,

    #[command(flatten)]
    pub transfer: TransferArgs,

    #[command(flatten)]
    pub registries: RegistryArgs,
}

/// Seconds without an answer (or, mid-blob, without a byte moving) before a request is given up.
const DEFAULT_STALL_SECONDS: u64 = 60;

/// Where registry hosts are reached: every command that talks to a registry.
#[derive(Debug, Args)]
pub struct EndpointArgs {
    /// Send a registry host's traffic to another base URL: "host=url,host=url" (http allowed). The local
    /// world and the tests use it to stand in for ECR; in AWS leave it unset.
    #[arg(long, env = "PROMOTE_REGISTRY_ENDPOINTS", value_parser = clap::value_parser!(Endpoints))]
    pub registry_endpoints: Option<Endpoints>,
}

impl EndpointArgs {
    pub fn connector(&self, aws: Option<Aws>, stall: Duration) -> Connector {
        Connector::new(
            self.registry_endpoints.clone().unwrap_or_default(),
            aws,
            stall,
        )
    }
}

/// How the source and target registries are reached: every command that touches the source (staging)
/// registry. `status` reads production only, so it takes just the endpoints.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    #[command(flatten)]
    pub endpoints: EndpointArgs,

    /// An IAM role to assume (STS) for every call that touches the source registry, e.g. a role in the
    /// staging account that may pull its images.
    #[arg(long, env = "PROMOTE_SOURCE_ROLE_ARN")]
    pub source_role_arn: Option<String>,
}

impl RegistryArgs {
    /// The run's AWS configuration, with the source role when one is set.
    pub async fn aws(&self, stall: Duration) -> Result<Aws, Usage> {
        Aws::load(stall, self.source_role_arn.as_deref()).await
    }

    pub fn connector(&self, aws: Option<Aws>, stall: Duration) -> Connector {
        self.endpoints.connector(aws, stall)
    }
}

/// How a copy moves bytes: only the commands that copy.
#[derive(Debug, Args)]
pub struct TransferArgs {
    /// Blobs whose bytes move at once, across all the images of a release (they copy at the same time); a
    /// blob whose bytes are all sent frees its slot while the registry finishes it.
    #[arg(long, env = "PROMOTE_JOBS", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,

    /// While a copy moves bytes and stderr is not a terminal, log how far each image has got this often
    /// (seconds): bytes done of total, percentage, rate, in either log format; a copy shorter than this says
    /// nothing. At a terminal, `copy` shows a progress bar.
    #[arg(long, env = "PROMOTE_PROGRESS_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub progress_seconds: u64,
}

impl TransferArgs {
    pub fn progress_every(&self) -> Duration {
        Duration::from_secs(self.progress_seconds)
    }
}

/// The ledger table.
#[derive(Debug, Args)]
pub struct LedgerArgs {
    /// DynamoDB table that records releases (string partition key `tag_name`). Required.
    #[arg(long, env = "PROMOTE_TABLE")]
    pub table: Option<String>,
}

impl LedgerArgs {
    pub fn table(&self) -> Result<String, Usage> {
        required_text(
            self.table.clone(),
            "PROMOTE_TABLE",
            "--table",
            "the DynamoDB table that records releases",
        )
    }
}

/// What every promotion needs: where images come from and go, the ledger, the deploy files.
#[derive(Debug, Args)]
pub struct PromotionArgs {
    /// Staging repository URI without tag, e.g. 111111111111.dkr.ecr.us-east-1.amazonaws.com/api. Required
    /// unless PROMOTE_CONFIG names the images.
    #[arg(long, env = "PROMOTE_SOURCE_REPOSITORY", value_parser = clap::value_parser!(Repository))]
    pub source_repository: Option<Repository>,

    /// Production repository URI without tag, e.g. 222222222222.dkr.ecr.us-east-1.amazonaws.com/api.
    /// Required unless PROMOTE_CONFIG names the images.
    #[arg(long, env = "PROMOTE_TARGET_REPOSITORY", value_parser = clap::value_parser!(Repository))]
    pub target_repository: Option<Repository>,

    /// A release of several images: a TOML or JSON file listing each container's source and target
    /// repository ([[container]] name, source, target). Replaces the three short-form settings.
    #[arg(long, env = "PROMOTE_CONFIG")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub ledger: LedgerArgs,

    /// ECS container name(s) in the task definition, comma-separated, for imagedefinitions.json. Required
    /// unless PROMOTE_CONFIG names the images.
    #[arg(long, env = "PROMOTE_CONTAINER_NAME", value_delimiter = ',')]
    pub container_name: Vec<String>,

    /// Where to write imagedefinitions.json (ECS standard deploy action).
    #[arg(
        long,
        env = "PROMOTE_IMAGEDEFINITIONS",
        default_value = "imagedefinitions.json"
    )]
    pub imagedefinitions: PathBuf,

    /// Where to write imageDetail.json (ECS blue/green deploy action); not written when unset.
    #[arg(long, env = "PROMOTE_IMAGE_DETAIL")]
    pub image_detail: Option<PathBuf>,

    /// Deploy repo@sha256:… instead of repo:tag in the deploy files.
    #[arg(long, env = "PROMOTE_PIN_DIGEST")]
    pub pin_digest: bool,

    /// Git checkout in which a release tag is resolved to its commit when the release names a branch.
    #[arg(long, env = "CODEBUILD_SRC_DIR")]
    pub source_dir: Option<PathBuf>,

    /// Who started the run, recorded with each deploy (set by CodeBuild; USER otherwise).
    #[arg(long, env = "CODEBUILD_INITIATOR")]
    pub initiator: Option<String>,

    /// Read only: resolve, check and print what would be copied, recorded and written; change nothing.
    #[arg(long, env = "PROMOTE_DRY_RUN")]
    pub dry_run: bool,

    /// Copy the signatures, attestations and SBOMs that refer to each image too (OCI 1.1 referrers and
    /// cosign's sha256-<digest>.sig/.att/.sbom tags).
    #[arg(long, env = "PROMOTE_WITH_REFERRERS")]
    pub with_referrers: bool,

    #[command(flatten)]
    pub events: EventArgs,

    #[command(flatten)]
    pub github: GithubArgs,

    #[command(flatten)]
    pub transfer: TransferArgs,

    #[command(flatten)]
    pub registries: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct EventArgs {
    /// Publish an event to this EventBridge bus (name or ARN), source "ecr-promote" (docs/events.md), for
    /// each release promoted, refused or deployed, and for drift found by status or audit; off when unset,
    /// empty, "-" or "off". A failure to publish is logged and never fails the command.
    #[arg(long, env = "PROMOTE_EVENT_BUS")]
    pub event_bus: Option<String>,

    /// The CodeBuild build running the command (set by CodeBuild): recorded with each release and deploy, and
    /// named in each event published.
    #[arg(long, env = "CODEBUILD_BUILD_ARN")]
    pub build_arn: Option<String>,
}

impl EventArgs {
    /// The EventBridge bus events go to, if any.
    pub fn bus(&self) -> Option<String> {
        given(&self.event_bus)
    }
}

/// GitHub deployments (docs/github.md): off until a token's secret is named.
#[derive(Debug, Args)]
pub struct GithubArgs {
    /// Show each deploy on GitHub as a deployment of the release's commit, with its statuses: the Secrets
    /// Manager secret (ARN or name) holding a fine-grained token with "Deployments: read and write" on the
    /// repository (or, with PROMOTE_GITHUB_APP_ID, the App's private key). Off when unset, empty, "-" or
    /// "off". GitHub unreachable or refusing never fails a command: it is logged and told on the next report.
    #[arg(long, env = "PROMOTE_GITHUB_TOKEN_SECRET_ARN")]
    pub github_token_secret_arn: Option<String>,

    /// GitHub's REST API: https://api.github.com, or a GitHub Enterprise Server's https://HOST/api/v3.
    #[arg(long, env = "PROMOTE_GITHUB_API_URL", default_value = "https://api.github.com", value_parser = clap::value_parser!(url::Url))]
    pub github_api_url: url::Url,

    /// The GitHub environment deployments are made in; always marked a production environment.
    #[arg(long, env = "PROMOTE_GITHUB_ENVIRONMENT", default_value = "production")]
    pub github_environment: String,

    /// The address GitHub shows for the environment (e.g. https://shop.example.com); none when unset.
    #[arg(long, env = "PROMOTE_GITHUB_ENVIRONMENT_URL")]
    pub github_environment_url: Option<String>,

    /// owner/name of the repository, for releases that do not come from a GitHub webhook (promote --tag,
    /// pipeline variables, CodeBuild tag webhooks); a webhook's release names its own.
    #[arg(long, env = "PROMOTE_GITHUB_REPOSITORY")]
    pub github_repository: Option<String>,

    /// Report as this GitHub App (its App ID) instead of with a token: the secret then holds the App's
    /// private key (the .pem GitHub generated), and each run takes an installation token limited to the
    /// repository and to writing deployments. "-", empty or "off": a token.
    #[arg(long, env = "PROMOTE_GITHUB_APP_ID")]
    pub github_app_id: Option<String>,

    /// The App's installation on the repository's account; asked of GitHub when unset.
    #[arg(long, env = "PROMOTE_GITHUB_APP_INSTALLATION_ID")]
    pub github_app_installation_id: Option<String>,
}

impl GithubArgs {
    /// The GitHub deployments' settings, checked; `None` when off. `build_arn`: the build whose console page
    /// the statuses link to.
    pub fn settings(
        &self,
        build_arn: Option<String>,
    ) -> Result<Option<crate::github::Settings>, Usage> {
        let Some(token_secret_arn) = given(&self.github_token_secret_arn) else {
            return Ok(None);
        };
        let environment = self.github_environment.trim();
        if environment.is_empty() {
            return Err(Usage(
                "PROMOTE_GITHUB_ENVIRONMENT is empty: name the GitHub environment deployments go to, e.g. production"
                    .into(),
            ));
        }
        let repository = given(&self.github_repository);
        if let Some(repository) = &repository
            && !matches!(repository.split('/').collect::<Vec<_>>()[..], [owner, name] if !owner.is_empty() && !name.is_empty())
        {
            return Err(Usage(format!(
                "PROMOTE_GITHUB_REPOSITORY is {repository:?}, not owner/name (e.g. acme/shop)"
            )));
        }
        let number = |value: &Option<String>, variable: &str| {
            given(value)
                .map(|v| {
                    v.parse::<u64>().map_err(|_| {
                        Usage(format!(
                            "{variable} is {v:?}, not a number: GitHub shows it on the App's page"
                        ))
                    })
                })
                .transpose()
        };
        let installation_id = number(
            &self.github_app_installation_id,
            "PROMOTE_GITHUB_APP_INSTALLATION_ID",
        )?;
        let app = match number(&self.github_app_id, "PROMOTE_GITHUB_APP_ID")? {
            Some(id) => Some(crate::github::App {
                id,
                installation_id,
            }),
            None if installation_id.is_some() => {
                return Err(Usage(
                    "PROMOTE_GITHUB_APP_INSTALLATION_ID is set but PROMOTE_GITHUB_APP_ID is not: set the App's \
                     ID too, or drop the installation"
                        .into(),
                ));
            }
            None => None,
        };
        Ok(Some(crate::github::Settings {
            app,
            token_secret_arn,
            api_url: self.github_api_url.clone(),
            environment: environment.to_owned(),
            environment_url: given(&self.github_environment_url),
            repository,
            build_arn,
        }))
    }
}

/// A setting templates always pass, given a value: "off", "-" and empty mean unset.
fn given(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty() && *v != "-" && !v.eq_ignore_ascii_case("off"))
        .map(str::to_owned)
}

pub fn required<T>(value: Option<T>, variable: &str, flag: &str, what: &str) -> Result<T, Usage> {
    value.ok_or_else(|| {
        Usage(format!(
            "{variable} is not set or empty (or pass {flag}): {what}"
        ))
    })
}

/// A text setting that must be given, and not blank: an empty variable in a buildspec is a mistake, not a
/// choice (an empty PROMOTE_TABLE would otherwise fail only after messages were received).
pub fn required_text(
    value: Option<String>,
    variable: &str,
    flag: &str,
    what: &str,
) -> Result<String, Usage> {
    required(value.filter(|v| !v.trim().is_empty()), variable, flag, what)
}

/// A comma-separated setting: its items trimmed; an empty or all-blank list is refused, since it would match
/// nothing (an empty PROMOTE_RELEASE_ACTIONS would skip, and so delete, every release).
pub fn list(values: &[String], variable: &str, what: &str) -> Result<Vec<String>, Usage> {
    let items: Vec<String> = values
        .iter()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect();
    if items.is_empty() {
        return Err(Usage(format!("{variable} is empty: {what}")));
    }
    Ok(items)
}

impl PromotionArgs {
    /// The images a release ships: the config file, or the short form.
    fn routes(&self) -> Result<Vec<Route>, Usage> {
        if let Some(path) = &self.config {
            return routes::from_config(path).map_err(Usage);
        }
        let source = required(
            self.source_repository.clone(),
            "PROMOTE_SOURCE_REPOSITORY",
            "--source-repository",
            "the staging repository URI, e.g. 111111111111.dkr.ecr.us-east-1.amazonaws.com/api (or PROMOTE_CONFIG)",
        )?;
        let target = required(
            self.target_repository.clone(),
            "PROMOTE_TARGET_REPOSITORY",
            "--target-repository",
            "the production repository URI, e.g. 222222222222.dkr.ecr.us-east-1.amazonaws.com/api",
        )?;
        let containers = list(
            &self.container_name,
            "PROMOTE_CONTAINER_NAME",
            "set it (or pass --container-name) to the ECS container name(s) for imagedefinitions.json",
        )?;
        Ok(vec![Route {
            containers,
            source,
            target,
        }])
    }

    /// Every setting checked, before anything is touched. Redeploys ship what the ledger recorded, so they
    /// need no routes.
    pub fn settings(&self, needs_routes: bool) -> Result<(Settings, String), Usage> {
        let routes = if needs_routes {
            self.routes()?
        } else {
            Vec::new()
        };
        let table = self.ledger.table()?;
        let settings = Settings {
            routes,
            deploy: DeployFiles {
                imagedefinitions: self.imagedefinitions.clone(),
                image_detail: self.image_detail.clone(),
            },
            pin_digest: self.pin_digest,
            checkout: self.source_dir.clone(),
            build_arn: self.events.build_arn.clone(),
            initiator: self
                .initiator
                .clone()
                .or_else(|| std::env::var("USER").ok()),
            copy: CopyOptions::new(false, self.transfer.jobs.into()),
            with_referrers: self.with_referrers,
            progress_every: self.transfer.progress_every(),
        };
        Ok((settings, table))
    }
}

/// Promotion gates: each off unless set. A redeploy is never gated.
#[derive(Debug, Args)]
pub struct GateArgs {
    /// Refuse a release whose staging image's ECR scan has a finding at or above this severity (CRITICAL,
    /// HIGH, MEDIUM, LOW or INFORMATIONAL), basic or enhanced scanning; off when unset, empty or "off".
    /// Findings are read where staging scanned the image (ecr:DescribeImageScanFindings, with
    /// PROMOTE_SOURCE_ROLE_ARN when set).
    #[arg(long, env = "PROMOTE_GATE_VULNERABILITIES")]
    pub gate_vulnerabilities: Option<String>,

    /// A TOML file of findings the vulnerability gate lets through: [[allow]] entries with id (e.g. a CVE),
    /// expires (YYYY-MM-DD, the last day it holds) and reason. Relative to the working directory (in
    /// CodeBuild, the checkout of the application repository).
    #[arg(long, env = "PROMOTE_GATE_ALLOWLIST")]
    pub gate_allowlist: Option<String>,

    /// How long a run waits for a scan still in progress before leaving the release for a later run (e.g.
    /// 2m, 30s).
    #[arg(long, env = "PROMOTE_GATE_SCAN_WAIT", default_value = "2m", value_parser = humantime::parse_duration)]
    pub gate_scan_wait: Duration,

    /// Refuse a release whose staging digest staging's ECS service (PROMOTE_STAGING_CLUSTER,
    /// PROMOTE_STAGING_SERVICE) has not run as its primary deployment, rollout completed and no task failed,
    /// for at least this long (e.g. 30m, 2h); a release not there yet waits. Off when unset, empty or "off".
    #[arg(long, env = "PROMOTE_GATE_STAGING_SOAK")]
    pub gate_staging_soak: Option<String>,

    /// The staging ECS cluster the soak gate reads.
    #[arg(long, env = "PROMOTE_STAGING_CLUSTER")]
    pub staging_cluster: Option<String>,

    /// The staging ECS service the soak gate reads.
    #[arg(long, env = "PROMOTE_STAGING_SERVICE")]
    pub staging_service: Option<String>,

    /// CloudWatch alarms in staging (comma-separated names) that must be OK for the soak gate to pass.
    #[arg(long, env = "PROMOTE_GATE_STAGING_ALARMS")]
    pub gate_staging_alarms: Option<String>,

    /// A role in the staging account the soak gate assumes to describe the staging service and its alarms
    /// (the staging stack's read role); unset: the caller's own credentials.
    #[arg(long, env = "PROMOTE_STAGING_READ_ROLE_ARN")]
    pub staging_read_role_arn: Option<String>,

    /// Promote past this failing gate (vulnerabilities or soak), recording who (the caller's AWS identity), when,
    /// what the gate refused and --override-reason. "-" or empty: none (the pipeline variable's default).
    #[arg(long, env = "PROMOTE_OVERRIDE_GATE")]
    pub override_gate: Option<String>,

    /// Why the gate is overridden: required with --override-gate, recorded with the release.
    #[arg(long, env = "PROMOTE_OVERRIDE_REASON")]
    pub override_reason: Option<String>,
}

impl GateArgs {
    /// The gates' settings, checked: an allowlist that does not read, or an override without a reason, is
    /// refused before anything is touched.
    pub fn settings(&self) -> Result<GateSettings, Usage> {
        let allowlist = given(&self.gate_allowlist);
        let vulnerabilities = match given(&self.gate_vulnerabilities) {
            None => None,
            Some(threshold) => Some(VulnerabilityGate {
                threshold: threshold.parse::<Severity>().map_err(|e| {
                    Usage(format!(
                        "PROMOTE_GATE_VULNERABILITIES (--gate-vulnerabilities): {e}"
                    ))
                })?,
                allowlist: match &allowlist {
                    Some(path) => vulnerabilities::read_allowlist(Path::new(path))
                        .map_err(|e| Usage(format!("{e:#}")))?,
                    None => Vec::new(),
                },
                scan_wait: self.gate_scan_wait,
            }),
        };
        if vulnerabilities.is_none() && allowlist.is_some() {
            return Err(Usage(
                "PROMOTE_GATE_ALLOWLIST is set but PROMOTE_GATE_VULNERABILITIES is not: set the severity that \
                 blocks (e.g. HIGH), or drop the allowlist"
                    .into(),
            ));
        }
        let override_gate = match given(&self.override_gate) {
            None => None,
            Some(gate) => Some(Override {
                gate: gate
                    .parse::<Gate>()
                    .map_err(|e| Usage(format!("PROMOTE_OVERRIDE_GATE (--override-gate): {e}")))?,
                reason: required_text(
                    given(&self.override_reason),
                    "PROMOTE_OVERRIDE_REASON",
                    "--override-reason",
                    "say why the gate is overridden; it is recorded with the release",
                )?,
            }),
        };
        Ok(GateSettings {
            vulnerabilities,
            soak: self.soak()?,
            override_gate,
        })
    }

    /// The soak gate's settings, if it is on: the service named, the soak a duration.
    fn soak(&self) -> Result<Option<SoakGate>, Usage> {
        let alarms: Vec<String> = given(&self.gate_staging_alarms)
            .map(|names| {
                names
                    .split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let Some(soak) = given(&self.gate_staging_soak) else {
            if !alarms.is_empty() {
                return Err(Usage(
                    "PROMOTE_GATE_STAGING_ALARMS is set but PROMOTE_GATE_STAGING_SOAK is not: set how long staging \
                     must run the image (e.g. 30m), or drop the alarms"
                        .into(),
                ));
            }
            return Ok(None);
        };
        let soak = humantime::parse_duration(&soak).map_err(|e| {
            Usage(format!(
                "PROMOTE_GATE_STAGING_SOAK (--gate-staging-soak): {soak:?} is no duration ({e}); write e.g. 30m or 2h"
            ))
        })?;
        let named = |value: &Option<String>, variable: &str, flag: &str| {
            required_text(
                given(value),
                variable,
                flag,
                "the soak gate (PROMOTE_GATE_STAGING_SOAK) reads staging's ECS service by cluster and name",
            )
        };
        Ok(Some(SoakGate {
            soak,
            cluster: named(
                &self.staging_cluster,
                "PROMOTE_STAGING_CLUSTER",
                "--staging-cluster",
            )?,
            service: named(
                &self.staging_service,
                "PROMOTE_STAGING_SERVICE",
                "--staging-service",
            )?,
            alarms,
            read_role: given(&self.staging_read_role_arn),
        }))
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// SQS queue URL the release webhook feeds. Required when the release comes from the queue (the
    /// default).
    #[arg(long, env = "PROMOTE_QUEUE_URL")]
    pub queue_url: Option<String>,

    /// Seconds the first receive waits for a message (SQS long poll, 0-20).
    #[arg(long, env = "PROMOTE_WAIT_SECONDS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=20))]
    pub wait_seconds: u64,

    /// Seconds a message in work stays hidden from other consumers; extended every third of that while a
    /// long copy runs.
    #[arg(long, env = "PROMOTE_VISIBILITY_SECONDS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(3..=43_200))]
    pub visibility_seconds: u64,

    /// Release actions that promote, comma-separated (GitHub sends created, published, released, …).
    #[arg(
        long,
        env = "PROMOTE_RELEASE_ACTIONS",
        value_delimiter = ',',
        default_value = "published"
    )]
    pub release_actions: Vec<String>,

    /// Promote releases marked as prereleases too (by default they are skipped and deleted).
    #[arg(long, env = "PROMOTE_PRERELEASES")]
    pub prereleases: bool,

    /// With no pending release, redeploy the newest recorded one instead of exiting 4 (for re-run pipelines).
    #[arg(long, env = "PROMOTE_REDEPLOY_LATEST_WHEN_EMPTY")]
    pub redeploy_latest_when_empty: bool,

    /// Redeploy this recorded release instead of reading the queue (a manual build with an environment
    /// override).
    #[arg(long, env = "PROMOTE_REDEPLOY_TAG")]
    pub redeploy_tag: Option<String>,

    /// Where the release comes from.
    #[arg(long, env = "PROMOTE_RELEASE_SOURCE", value_enum, default_value_t = ReleaseSource::Queue)]
    pub release_source: ReleaseSource,

    /// The GitHub webhook secret: every delivery must then carry a valid X-Hub-Signature-256. Without it,
    /// anyone who can reach the webhook can trigger a deploy.
    #[arg(long, env = "PROMOTE_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,

    /// The Secrets Manager secret (ARN or name) holding the GitHub webhook secret, instead of its value: its
    /// current value and, while a rotation is under way, its previous one are accepted. Not together with
    /// PROMOTE_WEBHOOK_SECRET.
    #[arg(long, env = "PROMOTE_WEBHOOK_SECRET_ARN")]
    pub webhook_secret_arn: Option<String>,

    #[command(flatten)]
    pub release: ReleaseArgs,

    /// Set by CodeBuild for webhook builds, e.g. tag/v1.2.0.
    #[arg(long, env = "CODEBUILD_WEBHOOK_TRIGGER")]
    pub webhook_trigger: Option<String>,

    /// Set by CodeBuild: the commit it checked out.
    #[arg(long, env = "CODEBUILD_RESOLVED_SOURCE_VERSION")]
    pub resolved_source_version: Option<String>,

    #[command(flatten)]
    pub promotion: PromotionArgs,

    #[command(flatten)]
    pub gates: GateArgs,

    /// The production pipeline to start again when a release waits for a gate (the soak): a one-time
    /// EventBridge Scheduler schedule starts it when the release may pass. With PROMOTE_WAKE_ROLE_ARN.
    #[arg(long, env = "PROMOTE_WAKE_PIPELINE")]
    pub wake_pipeline: Option<String>,

    /// The role EventBridge Scheduler assumes to start PROMOTE_WAKE_PIPELINE (codepipeline:StartPipelineExecution).
    #[arg(long, env = "PROMOTE_WAKE_ROLE_ARN")]
    pub wake_role_arn: Option<String>,
}

impl RunArgs {
    /// The pipeline and role that start a waiting release's run again, if both are set.
    pub fn wake(&self) -> Result<Option<(String, String)>, Usage> {
        match (given(&self.wake_pipeline), given(&self.wake_role_arn)) {
            (Some(pipeline), Some(role)) => Ok(Some((pipeline, role))),
            (None, None) => Ok(None),
            (Some(_), None) => Err(Usage(
                "PROMOTE_WAKE_PIPELINE is set but PROMOTE_WAKE_ROLE_ARN is not: name the role EventBridge \
                 Scheduler assumes to start the pipeline"
                    .into(),
            )),
            (None, Some(_)) => Err(Usage(
                "PROMOTE_WAKE_ROLE_ARN is set but PROMOTE_WAKE_PIPELINE is not: name the production pipeline \
                 to start again when a release's soak ends"
                    .into(),
            )),
        }
    }

    /// Where the webhook secret deliveries must be signed with comes from, if anywhere. Set but empty is a
    /// mistake, not a choice (every delivery would fail its signature check and stay on the queue), and so
    /// are both settings at once.
    pub fn webhook_secret(&self) -> Result<SecretSource, Usage> {
        let arn = self.webhook_secret_arn.as_deref().map(str::trim);
        match (&self.webhook_secret, arn) {
            (Some(_), Some(_)) => Err(Usage(
                "both PROMOTE_WEBHOOK_SECRET and PROMOTE_WEBHOOK_SECRET_ARN are set: keep the ARN, which also \
                 accepts the previous value while the secret rotates"
                    .into(),
            )),
            (Some(secret), None) if secret.is_empty() => Err(Usage(
                "PROMOTE_WEBHOOK_SECRET is set but empty: set the GitHub webhook secret, or unset the \
                 variable to accept unsigned deliveries"
                    .into(),
            )),
            (None, Some("")) => Err(Usage(
                "PROMOTE_WEBHOOK_SECRET_ARN is set but empty: name the Secrets Manager secret holding the \
                 GitHub webhook secret, or unset the variable to accept unsigned deliveries"
                    .into(),
            )),
            (Some(secret), None) => Ok(SecretSource::Value(Secret::new(
                secret.clone(),
                "PROMOTE_WEBHOOK_SECRET",
            ))),
            (None, Some(arn)) => Ok(SecretSource::SecretsManager(arn.to_owned())),
            (None, None) => Ok(SecretSource::Unsigned),
        }
    }
}

/// A release named by tag and commit: `promote`, and `run` with `--release-source variables` (CodePipeline V2
/// variables).
#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// The release tag, e.g. v1.2.0.
    #[arg(long, alias = "release-tag", env = "PROMOTE_RELEASE_TAG")]
    pub tag: Option<String>,

    /// The release's commit (full SHA). Without it the tag is resolved in the git checkout.
    #[arg(long, env = "PROMOTE_COMMIT")]
    pub commit: Option<String>,
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    #[command(flatten)]
    pub release: ReleaseArgs,

    #[command(flatten)]
    pub promotion: PromotionArgs,

    #[command(flatten)]
    pub gates: GateArgs,
}

#[derive(Debug, Args)]
pub struct RedeployArgs {
    /// The recorded release to deploy again, e.g. v1.1.0.
    pub tag: String,

    #[command(flatten)]
    pub promotion: PromotionArgs,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Print JSON for scripts instead of a table.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub ledger: LedgerArgs,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The release tag.
    pub tag: String,

    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub ledger: LedgerArgs,
}

/// The production ECS service.
#[derive(Debug, Args)]
pub struct ServiceArgs {
    /// The ECS cluster of the production service (name or ARN). Required by status and settle, and by audit
    /// with PROMOTE_OUTCOMES_QUEUE_URL set.
    #[arg(long, env = "PROMOTE_CLUSTER")]
    pub cluster: Option<String>,

    /// The production ECS service (name or ARN). Required by status and settle, and by audit with
    /// PROMOTE_OUTCOMES_QUEUE_URL set.
    #[arg(long, env = "PROMOTE_SERVICE")]
    pub service: Option<String>,
}

impl ServiceArgs {
    /// The cluster and the service.
    pub fn names(&self) -> Result<(String, String), Usage> {
        let cluster = required_text(
            self.cluster.clone(),
            "PROMOTE_CLUSTER",
            "--cluster",
            "the ECS cluster of the production service",
        )?;
        let service = required_text(
            self.service.clone(),
            "PROMOTE_SERVICE",
            "--service",
            "the production ECS service",
        )?;
        Ok((cluster, service))
    }
}

/// Where deploy outcomes are learned from.
#[derive(Debug, Args)]
pub struct OutcomeArgs {
    /// Record how ECS rolled out each deploy (completed, failed, rolled back): the SQS queue the production
    /// stack's ECS deployment rule feeds (docs/operating.md). `settle` drains it; `status` and `audit` drain it
    /// too and record what the service shows, making good a lost event. Off when unset, empty, "-" or "off":
    /// `status` and `audit` then only read, and `settle` only reconciles.
    #[arg(long, env = "PROMOTE_OUTCOMES_QUEUE_URL")]
    pub outcomes_queue_url: Option<String>,
}

impl OutcomeArgs {
    pub fn queue_url(&self) -> Option<String> {
        given(&self.outcomes_queue_url)
    }
}

/// The production service and where its deploys' outcomes are learned from: what `settle` works on, and what
/// `status` and `audit` settle first with outcomes on.
#[derive(Debug, Args)]
pub struct SettlingArgs {
    #[command(flatten)]
    pub service: ServiceArgs,

    #[command(flatten)]
    pub outcomes: OutcomeArgs,

    /// An outcome learned is told to GitHub too, when GitHub deployments are on.
    #[command(flatten)]
    pub github: GithubArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub settling: SettlingArgs,

    /// Print JSON for scripts instead of a table.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub ledger: LedgerArgs,

    #[command(flatten)]
    pub endpoints: EndpointArgs,

    #[command(flatten)]
    pub events: EventArgs,
}

#[derive(Debug, Args)]
pub struct SettleArgs {
    #[command(flatten)]
    pub settling: SettlingArgs,

    #[command(flatten)]
    pub ledger: LedgerArgs,

    #[command(flatten)]
    pub events: EventArgs,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Print JSON for scripts instead of a table.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub ledger: LedgerArgs,

    #[command(flatten)]
    pub settling: SettlingArgs,

    #[command(flatten)]
    pub registries: RegistryArgs,

    #[command(flatten)]
    pub events: EventArgs,
}

#[cfg(test)]
mod reference;

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::Cli;

    /// A subcommand's `--help`, as a person reads it.
    fn help(name: &str) -> String {
        Cli::command()
            .find_subcommand_mut(name)
            .expect("a subcommand")
            .render_long_help()
            .to_string()
    }

    const TRANSFER: [&str; 4] = [
        "--jobs",
        "PROMOTE_JOBS",
        "--progress-seconds",
        "PROMOTE_PROGRESS_SECONDS",
    ];

    #[test]
    fn only_the_copying_commands_take_the_copy_settings() {
        for name in ["copy", "promote", "run", "redeploy"] {
            let help = help(name);
            for setting in TRANSFER {
                assert!(help.contains(setting), "{name} lacks {setting}:\n{help}");
            }
        }
        for name in ["status", "audit"] {
            let help = help(name);
            for setting in TRANSFER {
                assert!(!help.contains(setting), "{name} offers {setting}:\n{help}");
            }
            assert!(help.contains("--registry-endpoints"), "{name}:\n{help}");
        }
    }

    /// `status` never touches the staging registry, so it offers no role for it; `audit` checks staging.
    #[test]
    fn only_the_commands_that_read_staging_take_the_source_role() {
        assert!(!help("status").contains("--source-role-arn"));
        for name in ["audit", "copy", "promote", "run", "redeploy"] {
            assert!(help(name).contains("--source-role-arn"), "{name}");
        }
    }

    fn gates(args: &[&str]) -> Result<crate::gates::GateSettings, crate::usage::Usage> {
        let cli = Cli::try_parse_from(
            ["ecr-promote", "promote"]
                .into_iter()
                .chain(args.iter().copied()),
        )
        .expect("parses");
        match cli.command {
            super::Command::Promote(promote) => promote.gates.settings(),
            _ => unreachable!("promote"),
        }
    }

    #[test]
    fn gates_are_off_unless_set_and_off_dash_or_empty_mean_unset() {
        for off in [
            &[][..],
            &["--gate-vulnerabilities", "off"],
            &["--gate-vulnerabilities", ""],
        ] {
            let settings = gates(off).unwrap();
            assert!(settings.vulnerabilities.is_none() && settings.override_gate.is_none());
        }
        let on = gates(&["--gate-vulnerabilities", "high", "--override-gate", "-"]).unwrap();
        assert_eq!(
            on.vulnerabilities.map(|g| g.threshold),
            Some(crate::gates::vulnerabilities::Severity::High)
        );
        assert!(on.override_gate.is_none() && on.soak.is_none());
        let soak = gates(&[
            "--gate-staging-soak",
            "30m",
            "--staging-cluster",
            "staging",
            "--staging-service",
            "api",
            "--gate-staging-alarms",
            " api-5xx, ,latency ",
            "--override-gate",
            "soak",
            "--override-reason",
            "INC-7",
        ])
        .unwrap();
        let gate = soak.soak.expect("the soak gate is on");
        assert_eq!(gate.soak, std::time::Duration::from_secs(1800));
        assert_eq!(gate.alarms, ["api-5xx", "latency"]);
        assert_eq!(
            soak.override_gate.map(|o| o.gate),
            Some(crate::gates::Gate::Soak)
        );
    }

    #[test]
    fn a_bad_gate_setting_names_its_variable() {
        for (args, says) in [
            (
                &["--gate-vulnerabilities", "severe"][..],
                "PROMOTE_GATE_VULNERABILITIES",
            ),
            (&["--override-gate", "speed"], "PROMOTE_OVERRIDE_GATE"),
            (
                &["--override-gate", "vulnerabilities"],
                "PROMOTE_OVERRIDE_REASON",
            ),
            (
                &[
                    "--override-gate",
                    "vulnerabilities",
                    "--override-reason",
                    "-",
                ],
                "PROMOTE_OVERRIDE_REASON",
            ),
            (
                &["--gate-allowlist", "allow.toml"],
                "PROMOTE_GATE_VULNERABILITIES is not",
            ),
            (
                &[
                    "--gate-vulnerabilities",
                    "HIGH",
                    "--gate-allowlist",
                    "/nonexistent/allow.toml",
                ],
                "PROMOTE_GATE_ALLOWLIST",
            ),
            (
                &["--gate-staging-soak", "half an hour"],
                "PROMOTE_GATE_STAGING_SOAK (--gate-staging-soak): \"half an hour\" is no duration",
            ),
            (
                &["--gate-staging-soak", "30m", "--staging-service", "api"],
                "PROMOTE_STAGING_CLUSTER is not set",
            ),
            (
                &["--gate-staging-soak", "30m", "--staging-cluster", "staging"],
                "PROMOTE_STAGING_SERVICE is not set",
            ),
            (
                &["--gate-staging-alarms", "api-5xx"],
                "PROMOTE_GATE_STAGING_SOAK is not",
            ),
        ] {
            let error = gates(args).unwrap_err().to_string();
            assert!(error.contains(says), "{args:?}: {error}");
        }
    }
}
