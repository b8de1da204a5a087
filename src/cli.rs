//! The command line: every flag defined once, with its environment variable and its documentation.

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::logging::LogFormat;
use crate::registry::{self, Connector, CopyOptions, Endpoints, Reference, Side};

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

pub async fn execute(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Copy(args) => copy(args).await,
    }
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
            "copied {} to {} ({}): {} blobs copied, {} already there, {} bytes, {} manifests in {:.2}s",
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
