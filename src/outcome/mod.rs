//! After the deploy: how ECS rolled out each deploy ecr-promote recorded — completed, failed, or rolled back —
//! learned and written onto the deploy in the ledger.
//!
//! It is learned two ways, which meet in one decision ([`decide`]):
//! - **events**: the production stack's EventBridge rule sends ECS's `ECS Deployment State Change` events for
//!   the production service to the outcomes queue; [`settle`] drains it. Prompt, but at least once, out of
//!   order, and an event can be lost;
//! - **reconciling**: the service's deployments as `DescribeServices` lists them now (rollout state, task
//!   definition → images → the release). This makes good a lost event, and ties each ECS deployment to its
//!   deploy while it still is listed, so that its failure is recognised even once ECS no longer lists it.
//!
//! Each newly recorded outcome is a [`Settled`]; [`settle`] hands every one, as soon as it is recorded and
//! even when a later step fails, to [`announce`]: the one place that tells the world about outcomes (the
//! events bus, and GitHub's deployment statuses), and returns them.

mod decide;
mod event;

use std::time::Duration;

use anyhow::Result;

pub use decide::{Settlement, decide};
pub use event::DeploymentEvent;

use crate::events::{Event, Publisher, ReleaseRef};
use crate::github::{Deployments, State};
use crate::intake::Queue;
use crate::ledger::{Deploy, Ledger, OutcomeState, Record};
use crate::status::Ecs;

/// A deploy whose outcome was just recorded: the release (as read before the outcome was written: its commit,
/// GitHub release page, build), and the deploy with its new outcome.
#[derive(Clone, Debug)]
pub struct Settled {
    pub release: Record,
    pub deploy: Deploy,
}

/// How long received events stay hidden from another `settle` while this one works: long enough for a
/// DescribeServices and a few writes.
const VISIBILITY: Duration = Duration::from_secs(120);

/// Drains the outcomes `queue` (if there is one) of the service's deployment events, reconciles them with what
/// ECS lists for service `service` of `cluster`, records every outcome that moves a deploy forward, and
/// [`announce`]s each one recorded through `publisher` and `github`. Events are deleted only once every outcome is
/// recorded, so a failure leaves them for the next run; events about other services, or that are no
/// deployment state change, are deleted with a warning (there is nothing to retry). Outcomes recorded before
/// a failure are announced all the same: the next run finds them recorded and would not tell of them again.
pub async fn settle(
    ecs: &Ecs,
    ledger: &Ledger,
    queue: Option<&Queue>,
    (publisher, github): (&Publisher, &Deployments),
    (cluster, service): (&str, &str),
) -> Result<Vec<Settled>> {
    let received = match queue {
        Some(queue) => queue.receive_all(Duration::ZERO, VISIBILITY).await?,
        None => Vec::new(),
    };
    let mut events = Vec::new();
    for message in &received {
        match DeploymentEvent::parse(&message.body) {
            Ok(event) if event.concerns(cluster, service) => events.push(event),
            Ok(event) => {
                tracing::warn!(message_id = %message.id, service = %event.service_arn, "deployment event of another service: deleted (the stack's rule should match only the production service)");
            }
            Err(problem) => {
                tracing::warn!(message_id = %message.id, %problem, "not a deployment event: deleted");
            }
        }
    }
    let mut settled = Vec::new();
    let recorded = record(ecs, ledger, &events, (cluster, service), &mut settled).await;
    announce(publisher, github, ledger, &settled).await;
    if let Some(queue) = queue {
        if let Err(error) = recorded {
            // Handed back at once, so that the next run reads them without waiting out their visibility.
            if let Err(error) = queue.set_visibility(&received, Duration::ZERO).await {
                tracing::warn!(error = %format!("{error:#}"), "could not hand the events back; they reappear once their visibility ends");
            }
            return Err(error);
        }
        for message in &received {
            queue.delete(message).await?;
        }
    }
    recorded.map(|()| settled)
}

/// Decides and records the outcomes of the service's deploys from what ECS lists and `events`, adding each
/// recorded to `settled` as it is.
async fn record(
    ecs: &Ecs,
    ledger: &Ledger,
    events: &[DeploymentEvent],
    (cluster, service): (&str, &str),
    settled: &mut Vec<Settled>,
) -> Result<()> {
    let (described, releases) = tokio::try_join!(ecs.service(cluster, service), ledger.releases())?;
    let now = crate::timestamp::now()
        .parse()
        .expect("now is an RFC 3339 instant");
    for settlement in decide(&described, &releases.records, events, now) {
        if !ledger
            .record_outcome(&settlement.tag, settlement.sequence, &settlement.outcome)
            .await?
        {
            continue;
        }
        tracing::info!(release = %settlement.tag, sequence = settlement.sequence, outcome = %settlement.outcome.summary(), "recorded deploy outcome");
        let Some(release) = releases
            .records
            .iter()
            .find(|r| r.tag_name == settlement.tag)
        else {
            continue;
        };
        let Some(deploy) = release
            .deploys
            .iter()
            .find(|d| d.sequence == Some(settlement.sequence))
        else {
            continue;
        };
        settled.push(Settled {
            deploy: Deploy {
                outcome: Some(settlement.outcome),
                ..deploy.clone()
            },
            release: release.clone(),
        });
    }
    Ok(())
}

/// Tells the world of each outcome just recorded: a `Deploy Completed` or `Deploy Failed` event on the bus,
/// and the deploy's GitHub deployment moved to `success` or `failure` (a deploy rolled back is a failure; the
/// deploy it rolled back to keeps the status it has). The one place every newly recorded outcome passes
/// through ([`settle`] calls it), whichever command learned it. Never fails: telling is best effort, and the
/// outcome is recorded whether or not anyone hears of it (GitHub is told what it missed on the next report).
pub async fn announce(
    events: &Publisher,
    github: &Deployments,
    ledger: &Ledger,
    settled: &[Settled],
) {
    for Settled { release, deploy } in settled {
        let (Some(outcome), Some(sequence)) = (&deploy.outcome, deploy.sequence) else {
            continue;
        };
        match outcome.state {
            // GitHub was told `in_progress` when the deploy files were written.
            OutcomeState::InProgress => {}
            // The later deploy's success retired it on GitHub already; told again, nothing is posted.
            OutcomeState::Superseded => {
                github
                    .report(ledger, release, deploy, State::Inactive)
                    .await;
            }
            OutcomeState::Completed => {
                github.report(ledger, release, deploy, State::Success).await;
            }
            OutcomeState::Failed | OutcomeState::RolledBack => {
                github.report(ledger, release, deploy, State::Failure).await;
            }
        }
        let release_ref = ReleaseRef {
            tag: release.tag_name.clone(),
            commit: Some(release.commit.clone()),
            url: release.html_url.clone(),
        };
        let event = match outcome.state {
            // Not something to tell: the completion that replaced it is announced.
            OutcomeState::InProgress | OutcomeState::Superseded => continue,
            OutcomeState::Completed => Event::DeployCompleted {
                release: release_ref,
                deploy: deploy.kind.as_str().to_owned(),
                sequence,
                deployment_id: outcome.deployment_id.clone(),
                completed_at: outcome.at.clone(),
            },
            OutcomeState::Failed | OutcomeState::RolledBack => Event::DeployFailed {
                release: release_ref,
                deploy: deploy.kind.as_str().to_owned(),
                sequence,
                deployment_id: outcome.deployment_id.clone(),
                failed_at: outcome.at.clone(),
                reason: outcome.reason.clone(),
                rolled_back_to: outcome.rolled_back_to.clone(),
            },
        };
        events.publish(&event).await;
    }
}
