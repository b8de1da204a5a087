//! The command line: every flag defined once, with its environment variable and its documentation.
//! Buildspecs and templates set the variables; the flags are for people at a terminal.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::deploy_files::DeployFiles;
use crate::exit::Usage;
use crate::intake::{Policy, Queue, Release};
use crate::ledger::Ledger;
use crate::logging::LogFormat;
use crate::promote::run::{self, RunSettings};
use crate::promote::{Promoter, Settings};
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

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The production CodeBuild step: promote every pending release on the queue, oldest first, record each,
    /// and write imagedefinitions.json for the newest.
    #[command(after_help = crate::exit::TABLE)]
    Run(RunArgs),

    /// Promote one release without a queue: for manual runs and for CodePipeline V2 variables.
    #[command(after_help = crate::exit::TABLE)]
    Promote(PromoteArgs),

    /// Copy an image, or an index of images, from one registry to another with the same digest.
    ///
    /// SOURCE and TARGET are host/repository:tag or host/repository@sha256:<digest>. Blobs the target
    /// already has are skipped; if TARGET's tag is already on the source digest nothing is copied.
    #[command(after_help = crate::exit::TABLE)]
    Copy(CopyArgs),
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

/// How registries are reached: shared by every command that talks to them.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Blobs copied at once.
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
}

impl RegistryArgs {
    pub fn connector(&self) -> Result<Connector> {
        Connector::new(
            self.registry_endpoints.clone().unwrap_or_default(),
            self.source_role_arn.clone(),
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

    /// DynamoDB table that records releases (string partition key `tag_name`).
    #[arg(long, env = "PROMOTE_TABLE")]
    pub table: Option<String>,

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

    /// Read only: resolve, check and print what would be copied, recorded and written; change nothing.
    #[arg(long, env = "PROMOTE_DRY_RUN")]
    pub dry_run: bool,

    #[command(flatten)]
    pub registries: RegistryArgs,
}

fn required<T>(value: Option<T>, variable: &str, flag: &str, what: &str) -> Result<T, Usage> {
    value.ok_or_else(|| Usage(format!("{variable} is not set (or pass {flag}): {what}")))
}

impl PromotionArgs {
    /// Every setting checked, before anything is touched.
    fn settings(&self) -> Result<(Settings, String), Usage> {
        let source = required(
            self.source_repository.clone(),
            "PROMOTE_SOURCE_REPOSITORY",
            "--source-repository",
            "the staging repository URI, e.g. 111111111111.dkr.ecr.us-east-1.amazonaws.com/api",
        )?;
        let target = required(
            self.target_repository.clone(),
            "PROMOTE_TARGET_REPOSITORY",
            "--target-repository",
            "the production repository URI, e.g. 222222222222.dkr.ecr.us-east-1.amazonaws.com/api",
        )?;
        let table = required(
            self.table.clone(),
            "PROMOTE_TABLE",
            "--table",
            "the DynamoDB table that records releases",
        )?;
        let containers: Vec<String> = self
            .container_name
            .iter()
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .collect();
        if containers.is_empty() {
            return Err(Usage(
                "PROMOTE_CONTAINER_NAME is not set (or pass --container-name): the ECS container name(s) for \
                 imagedefinitions.json"
                    .into(),
            ));
        }
        let settings = Settings {
            source,
            target,
            deploy: DeployFiles {
                imagedefinitions: self.imagedefinitions.clone(),
                image_detail: self.image_detail.clone(),
                containers,
            },
            pin_digest: self.pin_digest,
            checkout: self.source_dir.clone(),
            build_arn: self.build_arn.clone(),
            dry_run: self.dry_run,
            copy: CopyOptions {
                force: false,
                jobs: self.registries.jobs.into(),
            },
        };
        Ok((settings, table))
    }

    async fn promoter(
        &self,
        settings: Settings,
        table: &str,
        connector: &Connector,
    ) -> Result<Promoter> {
        let ledger = Ledger::new(connector.aws().await, table);
        Promoter::open(settings, connector, ledger).await
    }
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

pub async fn execute(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run(args) => run_queue(args).await,
        Command::Promote(args) => promote_one(args).await,
        Command::Copy(args) => copy(args).await,
    }
}

async fn run_queue(args: RunArgs) -> Result<()> {
    let (settings, table) = args.promotion.settings()?;
    let queue_url = required(
        args.queue_url,
        "PROMOTE_QUEUE_URL",
        "--queue-url",
        "the SQS queue the release webhook feeds",
    )?;
    let run_settings = RunSettings {
        wait: Duration::from_secs(args.wait_seconds),
        visibility: Duration::from_secs(args.visibility_seconds),
        policy: Policy {
            actions: args
                .release_actions
                .iter()
                .map(|a| a.trim().to_owned())
                .collect(),
            prereleases: args.prereleases,
        },
        redeploy_latest_when_empty: args.redeploy_latest_when_empty,
    };
    let connector = args.promotion.registries.connector()?;
    let promoter = args
        .promotion
        .promoter(settings, &table, &connector)
        .await?;
    let queue = Queue::new(connector.aws().await, &queue_url);
    run::run(&promoter, &queue, &run_settings).await
}

async fn promote_one(args: PromoteArgs) -> Result<()> {
    let (settings, table) = args.promotion.settings()?;
    let tag = required(
        args.tag,
        "PROMOTE_RELEASE_TAG",
        "--tag",
        "the release tag to promote",
    )?;
    let release = Release {
        tag_name: tag,
        target_commitish: args.commit.unwrap_or_default(),
        name: None,
        html_url: None,
        draft: false,
        prerelease: false,
        created_at: None,
        published_at: None,
        author: None,
    };
    let connector = args.promotion.registries.connector()?;
    let promoter = args
        .promotion
        .promoter(settings, &table, &connector)
        .await?;
    let promotion = promoter.promote(&release).await?;
    promoter.deploy(&promotion)
}

async fn copy(args: CopyArgs) -> Result<()> {
    let connector = args.registries.connector()?;
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
