//! `ecr-promote settle`: how ECS rolled out each deploy, learned and recorded, one line per outcome.

use std::time::Duration;

use anyhow::Result;

use crate::cli::{EventArgs, SettleArgs, SettlingArgs};
use crate::events::Publisher;
use crate::github::Deployments;
use crate::intake::Queue;
use crate::ledger::Ledger;
use crate::outcome::Settled;
use crate::status::Ecs;

pub async fn settle(args: SettleArgs, stall: Duration) -> Result<()> {
    let (cluster, service) = args.settling.service.names()?;
    let table = args.ledger.table()?;
    let aws = crate::aws::Aws::load(stall, None).await?;
    let settled = record(
        &aws.config,
        &Ledger::new(&aws.config, &table),
        &args.settling,
        &args.events,
        (cluster.clone(), service.clone()),
        stall,
    )
    .await?;
    if settled.is_empty() {
        println!("no new deploy outcome for service {service} in cluster {cluster}");
    }
    for Settled { release, deploy } in &settled {
        if let Some(outcome) = &deploy.outcome {
            println!(
                "release {} deploy {} ({}): {}",
                release.tag_name,
                deploy.sequence.unwrap_or_default(),
                deploy.kind.as_str(),
                outcome.summary()
            );
        }
    }
    Ok(())
}

/// Learns, records and announces the outcomes of the service's deploys ([`crate::outcome::settle`]): what
/// `settle` does, and `status` and `audit` with an outcomes queue set.
pub(super) async fn record(
    config: &aws_config::SdkConfig,
    ledger: &Ledger,
    settling: &SettlingArgs,
    events: &EventArgs,
    (cluster, service): (String, String),
    stall: Duration,
) -> Result<Vec<Settled>> {
    let queue = settling
        .outcomes
        .queue_url()
        .map(|url| Queue::new(config, &url, "PROMOTE_OUTCOMES_QUEUE_URL"));
    let publisher = Publisher::new(config, events.bus(), events.build_arn.clone());
    let github = Deployments::new(
        config,
        settling.github.settings(events.build_arn.clone())?,
        stall,
    );
    crate::outcome::settle(
        &Ecs::new(config),
        ledger,
        queue.as_ref(),
        (&publisher, &github),
        (&cluster, &service),
    )
    .await
}

/// What `status` and `audit` do first with outcomes on: settle the service's deploys, so that a lost event is
/// made good and their report shows it. With outcomes off, nothing: they then only read.
pub(super) async fn settle_first(
    config: &aws_config::SdkConfig,
    ledger: &Ledger,
    settling: &SettlingArgs,
    events: &EventArgs,
    stall: Duration,
) -> Result<()> {
    if settling.outcomes.queue_url().is_none() {
        return Ok(());
    }
    let service = settling.service.names()?;
    record(config, ledger, settling, events, service, stall).await?;
    Ok(())
}
