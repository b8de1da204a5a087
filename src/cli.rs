//! The command line: every flag defined once, with its environment variable and its documentation.
//! Buildspecs and templates set the variables; the flags are for people at a terminal.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::deploy_files::DeployFiles;
use crate::exit::Usage;
use crate::intake::{Policy, Queue, Release, Secret};
use crate::ledger::Ledger;
use crate::logging::LogFormat;
use crate::promote::run::{self, RunSettings};
use crate::promote::{DeployKind, Promoter, Route, Settings, routes};
use crate::registry::{self, Connector, CopyOptions, Endpoints, Reference, Repository, Side};

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

    #[command(subcommand)]
    pub command: Command,
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
    Run(RunArgs),

    /// Promote one release without a queue: for manual runs and for CodePipeline V2 variables.
    #[command(after_help = crate::exit::TABLE)]
    Promote(PromoteArgs),

    /// Deploy an earlier release again, without copying anything: checks that production still holds the
    /// recorded digests, records the redeploy and writes the deploy files as `run` does.
    #[command(after_help = crate::exit::TABLE)]
    Redeploy(RedeployArgs),

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
    pub registries: RegistryArgs,
}

/// Seconds without an answer (or, mid-blob, without a byte moving) before a request is given up.
const DEFAULT_STALL_SECONDS: u64 = 60;

/// How registries are reached: shared by every command that talks to them.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Blobs whose bytes move at once; a blob whose bytes are all sent frees its slot while the registry
    /// finishes it.
    #[arg(long, env = "PROMOTE_JOBS", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,

    /// Send a registry host's traffic to another base URL: "host=url,host=url" (http allowed). The local
    /// world and the tests use it to stand in for ECR; in AWS leave it unset.
    #[arg(long, env = "PROMOTE_REGISTRY_ENDPOINTS", value_parser = clap::value_parser!(Endpoints))]
    pub registry_endpoints: Option<Endpoints>,

    /// An IAM role to assume (STS) for every call that touches the source registry, e.g. a role in the
    /// staging account that may pull its images.
    #[arg(long, env = "PROMOTE_SOURCE_ROLE_ARN")]
    pub source_role_arn: Option<String>,

    /// Give up a registry request that moves no data for this many seconds (no answer, or no bytes either
    /// way during a blob copy), or an AWS API call attempt with no answer; it is then tried again. A long
    /// transfer that keeps moving is never cut off.
    #[arg(long, env = "PROMOTE_STALL_SECONDS", default_value_t = DEFAULT_STALL_SECONDS, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub stall_seconds: u64,
}

impl RegistryArgs {
    pub fn connector(&self) -> Connector {
        Connector::new(
            self.registry_endpoints.clone().unwrap_or_default(),
            self.source_role_arn.clone(),
            Duration::from_secs(self.stall_seconds),
        )
    }
}

/// The ledger table.
#[derive(Debug, Args)]
pub struct LedgerArgs {
    /// DynamoDB table that records releases (string partition key `tag_name`).
    #[arg(long, env = "PROMOTE_TABLE")]
    pub table: Option<String>,
}

impl LedgerArgs {
    pub(crate) fn table(&self) -> Result<String, Usage> {
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
    /// Staging repository URI without tag, e.g. 111111111111.dkr.ecr.us-east-1.amazonaws.com/api
    #[arg(long, env = "PROMOTE_SOURCE_REPOSITORY", value_parser = clap::value_parser!(Repository))]
    pub source_repository: Option<Repository>,

    /// Production repository URI without tag, e.g. 222222222222.dkr.ecr.us-east-1.amazonaws.com/api
    #[arg(long, env = "PROMOTE_TARGET_REPOSITORY", value_parser = clap::value_parser!(Repository))]
    pub target_repository: Option<Repository>,

    /// A release of several images: a TOML or JSON file listing each container's source and target
    /// repository ([[container]] name, source, target). Replaces the three short-form settings.
    #[arg(long, env = "PROMOTE_CONFIG")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub ledger: LedgerArgs,

    /// ECS container name(s) in the task definition, comma-separated, for imagedefinitions.json.
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

    /// The CodeBuild build recorded with each release (set by CodeBuild).
    #[arg(long, env = "CODEBUILD_BUILD_ARN")]
    pub build_arn: Option<String>,

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
    pub registries: RegistryArgs,
}

fn required<T>(value: Option<T>, variable: &str, flag: &str, what: &str) -> Result<T, Usage> {
    value.ok_or_else(|| {
        Usage(format!(
            "{variable} is not set or empty (or pass {flag}): {what}"
        ))
    })
}

/// A text setting that must be given, and not blank: an empty variable in a buildspec is a mistake, not a
/// choice (an empty PROMOTE_TABLE would otherwise fail only after messages were received).
pub(crate) fn required_text(
    value: Option<String>,
    variable: &str,
    flag: &str,
    what: &str,
) -> Result<String, Usage> {
    required(value.filter(|v| !v.trim().is_empty()), variable, flag, what)
}

/// A comma-separated setting: its items trimmed; an empty or all-blank list is refused, since it would match
/// nothing (an empty PROMOTE_RELEASE_ACTIONS would skip, and so delete, every release).
fn list(values: &[String], variable: &str, what: &str) -> Result<Vec<String>, Usage> {
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
    fn settings(&self, needs_routes: bool) -> Result<(Settings, String), Usage> {
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
            build_arn: self.build_arn.clone(),
            initiator: self
                .initiator
                .clone()
                .or_else(|| std::env::var("USER").ok()),
            dry_run: self.dry_run,
            copy: CopyOptions {
                force: false,
                jobs: self.registries.jobs.into(),
            },
            with_referrers: self.with_referrers,
        };
        Ok((settings, table))
    }

    async fn promoter(&self, settings: Settings, table: &str) -> Result<Promoter> {
        let connector = self.registries.connector();
        let ledger = Ledger::new(connector.aws().await?, table);
        Promoter::open(settings, connector, ledger).await
    }
}

/// Where `run` takes the release from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReleaseSource {
    /// The SQS queue the webhook Lambda feeds (PROMOTE_QUEUE_URL).
    Queue,
    /// CodePipeline V2 variables passed as PROMOTE_RELEASE_TAG and PROMOTE_COMMIT.
    Variables,
    /// A CodeBuild webhook on a Git tag: CODEBUILD_WEBHOOK_TRIGGER=tag/<tag>,
    /// CODEBUILD_RESOLVED_SOURCE_VERSION = its commit.
    CodebuildWebhook,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// SQS queue URL the release webhook feeds.
    #[arg(long, env = "PROMOTE_QUEUE_URL")]
    pub queue_url: Option<String>,

    /// Seconds the first receive waits for a message (SQS long poll, 0-20).
    #[arg(long, env = "PROMOTE_WAIT_SECONDS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=20))]
    pub wait_seconds: u64,

    /// Seconds a message in work stays hidden from other consumers; extended while a long copy runs.
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

    /// With --release-source variables: the release tag.
    #[arg(long, env = "PROMOTE_RELEASE_TAG")]
    pub release_tag: Option<String>,

    /// With --release-source variables: the release's commit (full SHA; else resolved in the checkout).
    #[arg(long, env = "PROMOTE_COMMIT")]
    pub commit: Option<String>,

    /// Set by CodeBuild for webhook builds, e.g. tag/v1.2.0.
    #[arg(long, env = "CODEBUILD_WEBHOOK_TRIGGER")]
    pub webhook_trigger: Option<String>,

    /// Set by CodeBuild: the commit it checked out.
    #[arg(long, env = "CODEBUILD_RESOLVED_SOURCE_VERSION")]
    pub resolved_source_version: Option<String>,

    #[command(flatten)]
    pub promotion: PromotionArgs,
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The release tag, e.g. v1.2.0.
    #[arg(long, env = "PROMOTE_RELEASE_TAG")]
    pub tag: Option<String>,

    /// The release's commit (full SHA). Without it the tag is resolved in the git checkout.
    #[arg(long, env = "PROMOTE_COMMIT")]
    pub commit: Option<String>,

    #[command(flatten)]
    pub promotion: PromotionArgs,
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

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The ECS cluster of the production service (name or ARN).
    #[arg(long, env = "PROMOTE_CLUSTER")]
    pub cluster: Option<String>,

    /// The production ECS service (name or ARN).
    #[arg(long, env = "PROMOTE_SERVICE")]
    pub service: Option<String>,

    /// Print JSON for scripts instead of a table.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub ledger: LedgerArgs,

    #[command(flatten)]
    pub registries: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Print JSON for scripts instead of a table.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub ledger: LedgerArgs,

    #[command(flatten)]
    pub registries: RegistryArgs,
}

pub async fn execute(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run(args) => run_release(args).await,
        Command::Promote(args) => promote_one(args).await,
        Command::Redeploy(args) => redeploy(&args.promotion, &args.tag).await,
        Command::History(args) => history(args).await,
        Command::Show(args) => show(args).await,
        Command::Copy(args) => copy(args).await,
        Command::Status(args) => crate::commands::status::status(args).await,
        Command::Audit(args) => crate::commands::audit::audit(args).await,
    }
}

/// A release given by tag and commit, as variables and the command line give it.
fn release_named(tag: String, commit: Option<String>) -> Release {
    Release {
        id: None,
        tag_name: tag,
        target_commitish: commit.unwrap_or_default(),
        name: None,
        html_url: None,
        draft: false,
        prerelease: false,
        created_at: None,
        published_at: None,
        author: None,
    }
}

async fn promote_and_deploy(promotion: &PromotionArgs, release: Release) -> Result<()> {
    let (settings, table) = promotion.settings(true)?;
    let promoter = promotion.promoter(settings, &table).await?;
    let promoted = promoter.promote(&release, None).await?;
    promoter.deploy(&promoted, DeployKind::Promote).await
}

async fn redeploy(promotion: &PromotionArgs, tag: &str) -> Result<()> {
    let (settings, table) = promotion.settings(false)?;
    let promoter = promotion.promoter(settings, &table).await?;
    let recorded = promoter.recorded(tag).await?;
    promoter.deploy(&recorded, DeployKind::Redeploy).await
}

async fn history(args: HistoryArgs) -> Result<()> {
    let table = args.ledger.table()?;
    let ledger = Ledger::new(
        &crate::aws::load(Duration::from_secs(DEFAULT_STALL_SECONDS)).await?,
        &table,
    );
    let releases = ledger.releases().await?;
    if args.json {
        println!("{}", crate::history::json(&releases)?);
    } else {
        print!("{}", crate::history::table(&releases));
    }
    Ok(())
}

async fn show(args: ShowArgs) -> Result<()> {
    let table = args.ledger.table()?;
    let ledger = Ledger::new(
        &crate::aws::load(Duration::from_secs(DEFAULT_STALL_SECONDS)).await?,
        &table,
    );
    let record = ledger.get(&args.tag).await?.ok_or_else(|| {
        anyhow::anyhow!(
            "release {} is not recorded in table {table}: `ecr-promote history` lists the releases",
            args.tag
        )
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&record)?);
    } else {
        print!("{}", crate::history::release(&record));
    }
    Ok(())
}

async fn run_release(args: RunArgs) -> Result<()> {
    if let Some(tag) = &args.redeploy_tag {
        return redeploy(&args.promotion, tag).await;
    }
    match args.release_source {
        ReleaseSource::Queue => {}
        ReleaseSource::Variables => {
            let tag = required_text(
                args.release_tag,
                "PROMOTE_RELEASE_TAG",
                "--release-tag",
                "the release tag to promote",
            )?;
            return promote_and_deploy(&args.promotion, release_named(tag, args.commit)).await;
        }
        ReleaseSource::CodebuildWebhook => {
            let trigger = required_text(
                args.webhook_trigger,
                "CODEBUILD_WEBHOOK_TRIGGER",
                "--webhook-trigger",
                "set by CodeBuild for webhook builds",
            )?;
            let tag = trigger.strip_prefix("tag/").ok_or_else(|| {
                Usage(format!(
                    "CODEBUILD_WEBHOOK_TRIGGER is {trigger:?}, not tag/<tag>: the CodeBuild webhook must filter on tag pushes"
                ))
            })?;
            let release = release_named(tag.to_owned(), args.resolved_source_version);
            return promote_and_deploy(&args.promotion, release).await;
        }
    }
    let (settings, table) = args.promotion.settings(true)?;
    let queue_url = required_text(
        args.queue_url,
        "PROMOTE_QUEUE_URL",
        "--queue-url",
        "the SQS queue the release webhook feeds",
    )?;
    let run_settings = RunSettings {
        wait: Duration::from_secs(args.wait_seconds),
        visibility: Duration::from_secs(args.visibility_seconds),
        policy: Policy {
            actions: list(
                &args.release_actions,
                "PROMOTE_RELEASE_ACTIONS",
                "name the release actions that promote, e.g. published",
            )?,
            prereleases: args.prereleases,
            webhook_secret: match args.webhook_secret {
                Some(secret) if secret.is_empty() => {
                    return Err(Usage(
                        "PROMOTE_WEBHOOK_SECRET is set but empty: set the GitHub webhook secret, or unset the \
                         variable to accept unsigned deliveries"
                            .into(),
                    )
                    .into());
                }
                secret => secret.map(Secret::new),
            },
        },
        redeploy_latest_when_empty: args.redeploy_latest_when_empty,
    };
    let promoter = args.promotion.promoter(settings, &table).await?;
    let queue = Queue::new(promoter.aws().await?, &queue_url);
    run::run(&promoter, &queue, &run_settings).await
}

async fn promote_one(args: PromoteArgs) -> Result<()> {
    let tag = required_text(
        args.tag,
        "PROMOTE_RELEASE_TAG",
        "--tag",
        "the release tag to promote",
    )?;
    promote_and_deploy(&args.promotion, release_named(tag, args.commit)).await
}

async fn copy(args: CopyArgs) -> Result<()> {
    let connector = args.registries.connector();
    let source = connector.connect(&args.source.host, Side::Source).await?;
    let target =
        if args.target.host == args.source.host && args.registries.source_role_arn.is_none() {
            None
        } else {
            Some(connector.connect(&args.target.host, Side::Target).await?)
        };
    let target = target.as_ref().unwrap_or(&source);
    let options = CopyOptions {
        force: args.force,
        jobs: args.registries.jobs.into(),
    };
    let report = registry::copy_image(&source, &args.source, target, &args.target, options).await?;
    if report.already_there {
        println!(
            "already there: {} is {}; nothing copied",
            args.target, report.digest
        );
    } else {
        println!(
            "copied {} to {} ({}): {} blobs copied, {} skipped (target had them), {} bytes, {} manifests in {:.2}s",
            args.source,
            args.target,
            report.digest,
            report.blobs_copied,
            report.blobs_skipped,
            report.bytes_copied,
            report.manifests,
            report.elapsed.as_secs_f64()
        );
    }
    Ok(())
}
