//! `ecr-promote run`: every pending release on the queue, oldest first, then the deploy files for the newest.

use std::time::Duration;

use anyhow::Result;

use super::{DeployKind, Promoter, Promotion};
use crate::intake::{self, Heartbeat, Pending, Policy, Queue, Reading, Release};

#[derive(Clone, Debug)]
pub struct RunSettings {
    /// How long the first receive waits for a message (SQS long poll, at most 20 s).
    pub wait: Duration,
    /// How long a received message stays hidden from other consumers; extended while work goes on.
    pub visibility: Duration,
    pub policy: Policy,
    /// With nothing pending, deploy the newest recorded release again instead of failing.
    pub redeploy_latest_when_empty: bool,
}

/// The queue held no release to promote.
#[derive(Debug, thiserror::Error)]
#[error(
    "no pending release on queue {queue}{skipped}: nothing to deploy (set PROMOTE_REDEPLOY_LATEST_WHEN_EMPTY=true \
     to redeploy the newest recorded release when a pipeline is re-run)"
)]
pub struct NothingPending {
    pub queue: String,
    pub skipped: String,
}

pub async fn run(promoter: &Promoter, queue: &Queue, settings: &RunSettings) -> Result<()> {
    let messages = queue
        .receive_all(settings.wait, settings.visibility)
        .await?;
    tracing::info!(
        queue = queue.url(),
        messages = messages.len(),
        "received messages"
    );
    let heartbeat = Heartbeat::start(queue.clone(), messages.clone(), settings.visibility);
    let outcome = promote_pending(promoter, queue, &heartbeat, &messages, settings).await;
    drop(heartbeat);
    if promoter.dry_run() {
        // A dry run changes nothing: every message it took is handed straight back.
        queue.set_visibility(&messages, Duration::ZERO).await?;
    }
    outcome
}

async fn promote_pending(
    promoter: &Promoter,
    queue: &Queue,
    heartbeat: &Heartbeat,
    messages: &[intake::Message],
    settings: &RunSettings,
) -> Result<()> {
    let mut pending = Vec::new();
    let (mut skipped, mut malformed) = (0, 0);
    for message in messages {
        match intake::read(&message.body, &settings.policy) {
            Reading::Promote { release, delivery } => {
                if let Some(id) = &delivery
                    && promoter.already_delivered(&release.tag_name, id).await?
                {
                    tracing::info!(message_id = %message.id, delivery = %id, release = %release.tag_name, "skipped message: this delivery already promoted its release");
                    heartbeat.release(&message.id);
                    if !promoter.dry_run() {
                        queue.delete(message).await?;
                    }
                    skipped += 1;
                    continue;
                }
                pending.push(Pending {
                    message: message.clone(),
                    release,
                    delivery,
                });
            }
            Reading::Rejected(reason) => {
                // Not deleted: a forged or broken delivery ends in the dead-letter queue for a person to see.
                tracing::error!(message_id = %message.id, %reason, "rejected: bad signature");
                heartbeat.release(&message.id);
                malformed += 1;
            }
            Reading::Skip(reason) => {
                tracing::info!(message_id = %message.id, %reason, "skipped message");
                heartbeat.release(&message.id);
                if !promoter.dry_run() {
                    queue.delete(message).await?;
                }
                skipped += 1;
            }
            Reading::Malformed(reason) => {
                // Never deleted here: the queue's redrive policy moves it to the dead-letter queue.
                tracing::error!(message_id = %message.id, %reason, "malformed message left on the queue");
                heartbeat.release(&message.id);
                malformed += 1;
            }
        }
    }
    intake::oldest_first(&mut pending);

    if pending.is_empty() {
        if settings.redeploy_latest_when_empty
            && let Some(latest) = promoter.latest_recorded().await?
        {
            tracing::info!(release = %latest.tag, "no pending release: redeploying the newest recorded release");
            return promoter.deploy(&latest, DeployKind::Redeploy).await;
        }
        let skipped = match (skipped, malformed) {
            (0, 0) => String::new(),
            (s, m) => {
                format!(" ({s} message(s) skipped, {m} malformed left for the dead-letter queue)")
            }
        };
        return Err(NothingPending {
            queue: queue.url().to_owned(),
            skipped,
        }
        .into());
    }

    let mut newest: Option<(Promotion, &Release)> = None;
    // Deleted only once the deploy files are written: a crash before that leaves the messages to reappear,
    // and promoting a release again is harmless, so the next run deploys what this one could not.
    let mut promoted = Vec::new();
    let mut failures = Vec::new();
    for Pending {
        message,
        release,
        delivery,
    } in &pending
    {
        match promoter.promote(release, delivery.as_deref()).await {
            Ok(promotion) => {
                promoted.push(message);
                newest = Some((promotion, release));
            }
            Err(error) => {
                // Handed back at once, so that the next run retries it; the queue's redrive policy ends the
                // retries in the dead-letter queue.
                tracing::error!(message_id = %message.id, release = %release.tag_name, error = format!("{error:#}"), "promotion failed");
                heartbeat.release(&message.id);
                if !promoter.dry_run() {
                    queue
                        .set_visibility(std::slice::from_ref(message), Duration::ZERO)
                        .await?;
                }
                failures.push((release.tag_name.clone(), error));
            }
        }
    }
    if let Some((promotion, release)) = &newest {
        // A retried older release must not take production backwards past a newer one already recorded.
        match promoter.newer_than(release).await? {
            Some(newer) => {
                tracing::warn!(release = %promotion.tag, newer = %newer.tag, "a newer release is recorded; deploying it rather than going back");
                // Not a promotion of the newer release: it is deployed again, as it was before.
                promoter.deploy(&newer, DeployKind::Redeploy).await?;
            }
            None => promoter.deploy(promotion, DeployKind::Promote).await?,
        }
    }
    for message in promoted {
        if !promoter.dry_run() {
            queue.delete(message).await?;
        }
        heartbeat.release(&message.id);
    }
    match failures.len() {
        0 => Ok(()),
        count => {
            let tags: Vec<String> = failures.iter().map(|(tag, _)| tag.clone()).collect();
            let (tag, first) = failures.remove(0);
            Err(first.context(format!(
                "{count} of {} releases failed ({}); their messages stay on the queue for a retry; release {tag}",
                pending.len(),
                tags.join(", ")
            )))
        }
    }
}
