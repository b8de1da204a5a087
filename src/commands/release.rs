//! `run`, `promote` and `redeploy`: the commands that ship a release, and what they print.

use std::time::Duration;

use anyhow::Result;

use crate::cli::{GateArgs, PromoteArgs, PromotionArgs, RunArgs, list, required_text};
use crate::events::Publisher;
use crate::gates::{GateSettings, Gatekeeper};
use crate::github::Deployments;
use crate::intake::{self, Named, Policy, Queue, Release};
use crate::ledger::Ledger;
use crate::promote::run::{self, RunSettings};
use crate::promote::wake::Wake;
use crate::promote::{DeployKind, Plan, Promoter, Promotion, Settings};
use crate::registry::Connector;
use crate::usage::Usage;

/// What a promotion command works with, built once here and lent to the library.
struct Parts {
    aws: crate::aws::Aws,
    connector: Connector,
    ledger: Ledger,
    gatekeeper: Gatekeeper,
    events: Publisher,
    github: Deployments,
}

impl Parts {
    /// `gates`: none for a redeploy, which is never gated.
    async fn open(
        args: &PromotionArgs,
        table: &str,
        gates: GateSettings,
        stall: Duration,
    ) -> Result<Parts> {
        let aws = args.registries.aws(stall).await?;
        let connector = args.registries.connector(Some(aws.clone()), stall);
        let ledger = Ledger::new(&aws.config, table);
        let gatekeeper = Gatekeeper::new(gates, &aws).await;
        let events = Publisher::new(
            &aws.config,
            args.events.bus(),
            args.events.build_arn.clone(),
        );
        let github = Deployments::new(
            &aws.config,
            args.github.settings(args.events.build_arn.clone())?,
            stall,
        );
        Ok(Parts {
            aws,
            connector,
            ledger,
            gatekeeper,
            events,
            github,
        })
    }

    async fn promoter(&self, settings: Settings) -> Result<Promoter<'_>> {
        Promoter::open(
            settings,
            &self.connector,
            &self.ledger,
            &self.gatekeeper,
            &self.events,
            &self.github,
        )
        .await
    }
}

fn print_plan(plan: &Plan, table: &str) {
    for image in &plan.images {
        let digest = &image.inspection.root.digest;
        match image.inspection.existing {
            Some(_) => println!(
                "dry run: {} is already {digest}; nothing to copy",
                image.production
            ),
            None => println!(
                "dry run: would copy {} ({digest}) to {}",
                image.staging, image.production
            ),
        }
    }
    for gate in &plan.record.gates {
        println!("dry run: gate {}", gate.summary());
    }
    println!(
        "dry run: would record release {} (commit {}) in table {table}, claiming its tag before the copy",
        plan.record.tag_name, plan.record.commit
    );
}

fn print_deploy(promoter: &Promoter<'_>, promotion: &Promotion, dry_run: bool) {
    if dry_run {
        for (path, contents) in promoter.deploy_files(promotion) {
            println!("dry run: would write {}:\n{contents}", path.display());
        }
        return;
    }
    for image in &promotion.images {
        println!(
            "deploying release {} (commit {}): {} ({}) to container {}",
            promotion.tag,
            promotion.commit,
            image.target,
            image.digest,
            image.containers.join(", ")
        );
    }
}

async fn promote_and_deploy(
    args: &PromotionArgs,
    gates: &GateArgs,
    release: Release,
    stall: Duration,
) -> Result<()> {
    let (settings, table) = args.settings(true)?;
    let parts = Parts::open(args, &table, gates.settings()?, stall).await?;
    let promoter = parts.promoter(settings).await?;
    let promoted = match promoter.plan(&release).await {
        Ok(plan) if args.dry_run => {
            print_plan(&plan, promoter.table());
            print_deploy(&promoter, &plan.promotion(), true);
            return Ok(());
        }
        Ok(plan) => promoter.apply(plan, None).await,
        Err(error) => Err(error),
    };
    let promotion = match promoted {
        Ok(promotion) => promotion,
        Err(error) => {
            if !args.dry_run {
                promoter.announce_refusal(&release, &error).await;
            }
            return Err(error);
        }
    };
    promoter.deploy(&promotion, DeployKind::Promote).await?;
    print_deploy(&promoter, &promotion, false);
    Ok(())
}

pub async fn redeploy(args: &PromotionArgs, tag: &str, stall: Duration) -> Result<()> {
    let (settings, table) = args.settings(false)?;
    let parts = Parts::open(args, &table, GateSettings::default(), stall).await?;
    let promoter = parts.promoter(settings).await?;
    let recorded = promoter.recorded(tag).await?;
    if !args.dry_run {
        promoter.deploy(&recorded, DeployKind::Redeploy).await?;
    }
    print_deploy(&promoter, &recorded, args.dry_run);
    Ok(())
}

pub async fn promote(args: PromoteArgs, stall: Duration) -> Result<()> {
    let tag = required_text(
        args.release.tag,
        "PROMOTE_RELEASE_TAG",
        "--tag",
        "the release tag to promote",
    )?;
    promote_and_deploy(
        &args.promotion,
        &args.gates,
        Release::named(tag, args.release.commit),
        stall,
    )
    .await
}

pub async fn run(args: RunArgs, stall: Duration) -> Result<()> {
    if let Some(tag) = &args.redeploy_tag {
        return redeploy(&args.promotion, tag, stall).await;
    }
    // Read before `args` is taken apart; refused only when the queue is read.
    let webhook_secret = args.webhook_secret();
    let wake = args.wake();
    let named = Named {
        tag: args.release.tag,
        commit: args.release.commit,
        webhook_trigger: args.webhook_trigger,
        resolved_source_version: args.resolved_source_version,
    };
    if let Some(release) = intake::named_release(args.release_source, named).map_err(Usage)? {
        return promote_and_deploy(&args.promotion, &args.gates, release, stall).await;
    }
    let (settings, table) = args.promotion.settings(true)?;
    let gates = args.gates.settings()?;
    let queue_url = required_text(
        args.queue_url,
        "PROMOTE_QUEUE_URL",
        "--queue-url",
        "the SQS queue the release webhook feeds",
    )?;
    let actions = list(
        &args.release_actions,
        "PROMOTE_RELEASE_ACTIONS",
        "name the release actions that promote, e.g. published",
    )?;
    let webhook_secret = webhook_secret?;
    let wake = wake?;
    let parts = Parts::open(&args.promotion, &table, gates, stall).await?;
    // Read before the queue is: a secret that cannot be read keeps every message where it is.
    let webhook_secrets = webhook_secret.values(&parts.aws.config).await?;
    let run_settings = RunSettings {
        wait: Duration::from_secs(args.wait_seconds),
        visibility: Duration::from_secs(args.visibility_seconds),
        policy: Policy {
            actions,
            prereleases: args.prereleases,
            webhook_secrets,
        },
        redeploy_latest_when_empty: args.redeploy_latest_when_empty,
        dry_run: args.promotion.dry_run,
    };
    let promoter = parts.promoter(settings).await?;
    let queue = Queue::new(&parts.aws.config, &queue_url, "PROMOTE_QUEUE_URL");
    let wake = wake.map(|(pipeline, role)| Wake::new(&parts.aws.config, &pipeline, &role));
    let report = run::run(&promoter, &queue, &run_settings, wake.as_ref()).await?;
    for plan in &report.planned {
        print_plan(plan, promoter.table());
    }
    if let Some((promotion, _)) = &report.deployed {
        print_deploy(&promoter, promotion, run_settings.dry_run);
    }
    for wait in &report.waiting {
        println!(
            "release {} waits for its gates until {}; its message is hidden until then{}",
            wait.tag,
            crate::timestamp::time_text(wait.until),
            match &wait.schedule {
                Some(name) => format!(" and schedule {name} starts the pipeline again"),
                None => String::new(),
            }
        );
    }
    let attempted = report.attempted();
    report.into_result(attempted)
}
