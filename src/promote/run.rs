//! `ecr-promote run`: every pending release on the queue, oldest first, then the deploy files for the newest.
//!
//! The run first decides, from the messages alone, what each one is ([`sort`]); then acts, promoting the
//! pending releases and settling each message exactly once through [`Messages`].

use std::time::Duration;

use anyhow::Result;

use super::wake::Wake;
use super::{DeployKind, Plan, Promoter, Promotion};
use crate::gates::NotYet;
use crate::intake::{self, Heartbeat, Message, Pending, Policy, Queue, Reading};

#[derive(Clone, Debug)]
pub struct RunSettings {
    /// How long the first receive waits for a message (SQS long poll, at most 20 s).
    pub wait: Duration,
    /// How long a received message stays hidden from other consumers; extended while work goes on.
    pub visibility: Duration,
    pub policy: Policy,
    /// With nothing pending, deploy the newest recorded release again instead of failing.
    pub redeploy_latest_when_empty: bool,
    /// Read only: plan every pending release, change nothing, hand every message back.
    pub dry_run: bool,
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

/// Every pending release waits for a gate (a soak not over yet), and none was promoted: nothing to deploy now.
#[derive(Debug, thiserror::Error)]
#[error("{}: each release's message is hidden until then{}", waits.join("; "), if *scheduled { " and the pipeline is scheduled to start again then" } else { ", and the next run after then promotes it (no schedule starts the pipeline then: PROMOTE_WAKE_PIPELINE and \
     PROMOTE_WAKE_ROLE_ARN unset, or CreateSchedule failed, as logged)" })]
pub struct Waiting {
    pub waits: Vec<String>,
    pub scheduled: bool,
}

/// SQS hides a message for at most 12 hours; a longer wait is hidden again when the message comes back.
const LONGEST_HIDE: Duration = Duration::from_secs(12 * 60 * 60);

/// How long to hide a message whose release may pass at `until`: to then, within SQS's bounds.
pub fn hide_for(until: std::time::SystemTime, now: std::time::SystemTime) -> Duration {
    let left = until.duration_since(now).unwrap_or(Duration::ZERO);
    // Whole seconds, rounded up: SQS counts in seconds, and a message back a moment early would wait again.
    let seconds = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    Duration::from_secs(seconds.max(1)).min(LONGEST_HIDE)
}

/// A release that waits for a gate: when it may pass, and the schedule that starts the pipeline then.
#[derive(Debug)]
pub struct Wait {
    pub tag: String,
    pub until: std::time::SystemTime,
    pub schedule: Option<String>,
}

/// The received messages, sorted by what is to be done with each.
#[derive(Debug, Default)]
pub struct Sorted {
    /// Releases to promote, oldest first.
    pub pending: Vec<Pending>,
    /// Well formed but not for production: deleted, each with its reason.
    pub skipped: Vec<(Message, String)>,
    /// Unsigned or badly signed while a webhook secret is set: never promoted, left on the queue.
    pub rejected: Vec<(Message, String)>,
    /// Broken or not understood: left on the queue for the dead-letter queue, each with its reason.
    pub kept: Vec<(Message, String)>,
}

/// Decides what each message is, reading nothing but the messages.
pub fn sort(messages: &[Message], policy: &Policy) -> Sorted {
    let mut sorted = Sorted::default();
    for message in messages {
        match intake::read(&message.body, policy) {
            Reading::Promote { release, delivery } => sorted.pending.push(Pending {
                message: message.clone(),
                release,
                delivery,
            }),
            Reading::Skip(reason) => sorted.skipped.push((message.clone(), reason)),
            Reading::Rejected(reason) => sorted.rejected.push((message.clone(), reason)),
            Reading::Malformed(reason) => sorted.kept.push((message.clone(), reason)),
        }
    }
    intake::oldest_first(&mut sorted.pending);
    sorted
}

/// The queue side of a run: each message taken is settled once — deleted when done, handed back for a retry, or
/// left for its redrive policy — and let go by the heartbeat then. A dry run settles nothing and hands every
/// message back at the end.
struct Messages<'q> {
    queue: &'q Queue,
    heartbeat: Heartbeat,
    all: Vec<Message>,
    dry_run: bool,
}

impl Messages<'_> {
    async fn delete(&self, message: &Message) -> Result<()> {
        self.heartbeat.release(&message.id);
        if !self.dry_run {
            self.queue.delete(message).await?;
        }
        Ok(())
    }

    async fn retry(&self, message: &Message) -> Result<()> {
        self.heartbeat.release(&message.id);
        if !self.dry_run {
            self.queue
                .set_visibility(std::slice::from_ref(message), Duration::ZERO)
                .await?;
        }
        Ok(())
    }

    /// Hidden until its release may pass a gate: not a failure, so not handed back at once.
    async fn hide(&self, message: &Message, hidden: Duration) -> Result<()> {
        self.heartbeat.release(&message.id);
        if !self.dry_run {
            self.queue
                .set_visibility(std::slice::from_ref(message), hidden)
                .await?;
        }
        Ok(())
    }

    fn leave(&self, message: &Message) {
        self.heartbeat.release(&message.id);
    }

    async fn finish(self) -> Result<()> {
        drop(self.heartbeat);
        if self.dry_run {
            self.queue.set_visibility(&self.all, Duration::ZERO).await?;
        }
        Ok(())
    }
}

/// What a run did (or, dry, would do), for the command line to show.
#[derive(Debug, Default)]
pub struct Report {
    /// Releases promoted, oldest first.
    pub promoted: Vec<Promotion>,
    /// In a dry run: what each pending release would do.
    pub planned: Vec<Plan>,
    /// What the deploy files name, and why (a promotion; or a redeploy of a newer or the latest release).
    pub deployed: Option<(Promotion, DeployKind)>,
    /// Releases that failed, with their errors; their messages stay for a retry.
    pub failures: Vec<(String, anyhow::Error)>,
    /// Releases waiting for a gate; their messages hidden until then.
    pub waiting: Vec<Wait>,
}

/// `wake`: what starts the pipeline again for a release that waits for a gate; none, and the release's message
/// reappears for whichever run comes next.
pub async fn run(
    promoter: &Promoter<'_>,
    queue: &Queue,
    settings: &RunSettings,
    wake: Option<&Wake>,
) -> Result<Report> {
    let received = queue
        .receive_all(settings.wait, settings.visibility)
        .await?;
    tracing::info!(
        queue = queue.url(),
        messages = received.len(),
        "received messages"
    );
    let messages = Messages {
        queue,
        heartbeat: Heartbeat::start(queue.clone(), received.clone(), settings.visibility),
        all: received.clone(),
        dry_run: settings.dry_run,
    };
    let outcome = act(
        promoter,
        &messages,
        sort(&received, &settings.policy),
        settings,
        wake,
    )
    .await;
    messages.finish().await?;
    outcome
}

async fn act(
    promoter: &Promoter<'_>,
    messages: &Messages<'_>,
    sorted: Sorted,
    settings: &RunSettings,
    wake: Option<&Wake>,
) -> Result<Report> {
    for (message, reason) in &sorted.skipped {
        tracing::info!(message_id = %message.id, %reason, "skipped message");
        messages.delete(message).await?;
    }
    // Never deleted here: a forged or broken delivery ends in the dead-letter queue for a person to see.
    for (message, reason) in &sorted.rejected {
        tracing::error!(message_id = %message.id, %reason, "rejected: bad signature");
        messages.leave(message);
    }
    for (message, reason) in &sorted.kept {
        tracing::error!(message_id = %message.id, %reason, "malformed message left on the queue");
        messages.leave(message);
    }
    let mut pending = Vec::new();
    let mut skipped = sorted.skipped.len();
    for item in sorted.pending {
        if let Some(id) = &item.delivery
            && promoter
                .already_delivered(&item.release.tag_name, id)
                .await?
        {
            tracing::info!(message_id = %item.message.id, delivery = %id, release = %item.release.tag_name, "skipped message: this delivery already promoted its release");
            messages.delete(&item.message).await?;
            skipped += 1;
            continue;
        }
        pending.push(item);
    }

    let mut report = Report::default();
    if pending.is_empty() {
        if settings.redeploy_latest_when_empty
            && let Some(latest) = promoter.latest_recorded().await?
        {
            tracing::info!(release = %latest.tag, "no pending release: redeploying the newest recorded release");
            if !settings.dry_run {
                promoter.deploy(&latest, DeployKind::Redeploy).await?;
            }
            report.deployed = Some((latest, DeployKind::Redeploy));
            return Ok(report);
        }
        let skipped = match (skipped, sorted.kept.len() + sorted.rejected.len()) {
            (0, 0) => String::new(),
            (s, m) => {
                format!(" ({s} message(s) skipped, {m} malformed left for the dead-letter queue)")
            }
        };
        return Err(NothingPending {
            queue: messages.queue.url().to_owned(),
            skipped,
        }
        .into());
    }

    // Deleted only once the deploy files are written: a crash before that leaves the messages to reappear,
    // and promoting a release again is harmless, so the next run deploys what this one could not.
    let mut done = Vec::new();
    let mut newest = None;
    for Pending {
        message,
        release,
        delivery,
    } in &pending
    {
        let promoted = match promoter.plan(release).await {
            Ok(plan) if settings.dry_run => {
                let promotion = plan.promotion();
                report.planned.push(plan);
                Ok(promotion)
            }
            Ok(plan) => promoter.apply(plan, delivery.as_deref()).await,
            Err(error) => Err(error),
        };
        match promoted {
            Ok(promotion) => {
                done.push(message);
                report.promoted.push(promotion.clone());
                newest = Some((promotion, release));
            }
            Err(error) if error.downcast_ref::<NotYet>().is_some() => {
                let until = error
                    .downcast_ref::<NotYet>()
                    .map(|w| w.until)
                    .expect("checked");
                // A schedule that cannot be made loses nothing: the hidden message comes back then on its own,
                // for whichever run comes next.
                let schedule = match wake {
                    Some(wake) if !settings.dry_run => {
                        match wake.at(&release.tag_name, until).await {
                            Ok(name) => Some(name),
                            Err(error) => {
                                tracing::warn!(release = %release.tag_name, error = format!("{error:#}"), "no schedule starts the pipeline again for the waiting release");
                                None
                            }
                        }
                    }
                    _ => None,
                };
                let hidden = hide_for(until, std::time::SystemTime::now());
                tracing::info!(message_id = %message.id, release = %release.tag_name, until = %crate::timestamp::time_text(until), hidden_s = hidden.as_secs(), schedule = schedule.as_deref().unwrap_or(""), reason = format!("{error:#}"), "release waits for a gate");
                messages.hide(message, hidden).await?;
                report.waiting.push(Wait {
                    tag: release.tag_name.clone(),
                    until,
                    schedule,
                });
            }
            Err(error) => {
                if !settings.dry_run {
                    promoter.announce_refusal(release, &error).await;
                }
                // Handed back at once, so that the next run retries it; the queue's redrive policy ends the
                // retries in the dead-letter queue.
                tracing::error!(message_id = %message.id, release = %release.tag_name, error = format!("{error:#}"), "promotion failed");
                messages.retry(message).await?;
                report.failures.push((release.tag_name.clone(), error));
            }
        }
    }
    if let Some((promotion, release)) = newest {
        // A retried older release must not take production backwards past a newer one already recorded: the
        // newer one is deployed again, as it was before.
        let deployed = match promoter.newer_than(release).await? {
            Some(newer) => {
                tracing::warn!(release = %promotion.tag, newer = %newer.tag, "a newer release is recorded; deploying it rather than going back");
                (newer, DeployKind::Redeploy)
            }
            None => (promotion, DeployKind::Promote),
        };
        if !settings.dry_run {
            promoter.deploy(&deployed.0, deployed.1).await?;
        }
        report.deployed = Some(deployed);
    }
    for message in done {
        messages.delete(message).await?;
    }
    if report.deployed.is_none() && report.failures.is_empty() && !report.waiting.is_empty() {
        return Err(Waiting {
            waits: report
                .waiting
                .iter()
                .map(|w| {
                    format!(
                        "release {} waits for its gates until {}",
                        w.tag,
                        crate::timestamp::time_text(w.until)
                    )
                })
                .collect(),
            scheduled: report.waiting.iter().all(|w| w.schedule.is_some()),
        }
        .into());
    }
    Ok(report)
}

impl Report {
    /// The run's result once it has been shown: an error naming the releases that failed, if any did.
    pub fn into_result(self, pending: usize) -> Result<()> {
        let mut failures = self.failures;
        if failures.is_empty() {
            return Ok(());
        }
        let tags: Vec<String> = failures.iter().map(|(tag, _)| tag.clone()).collect();
        let count = failures.len();
        let (tag, first) = failures.remove(0);
        Err(first.context(format!(
            "{count} of {pending} releases failed ({}); their messages stay on the queue for a retry; release {tag}",
            tags.join(", ")
        )))
    }

    /// How many releases the run tried.
    pub fn attempted(&self) -> usize {
        self.promoted.len() + self.failures.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(id: &str, body: serde_json::Value, sent_at: u64) -> Message {
        Message {
            id: id.into(),
            receipt: String::new(),
            body: body.to_string(),
            sent_at,
        }
    }

    fn release(tag: &str, published: &str) -> serde_json::Value {
        json!({"action": "published", "release": {"tag_name": tag, "target_commitish": "main",
            "published_at": published}})
    }

    #[test]
    fn a_waiting_message_is_hidden_to_the_second_after_its_release_may_pass_at_most_12_hours() {
        let now = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let hide = |after: Duration| hide_for(now + after, now);
        assert_eq!(hide(Duration::from_millis(2_100)), Duration::from_secs(3));
        assert_eq!(hide(Duration::ZERO), Duration::from_secs(1));
        assert_eq!(hide(Duration::from_secs(2 * 86_400)), LONGEST_HIDE);
        assert_eq!(
            hide_for(now, now + Duration::from_secs(60)),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn sorts_messages_into_releases_oldest_first_skips_and_kept() {
        let policy = Policy {
            actions: vec!["published".into()],
            prereleases: false,
            webhook_secrets: Vec::new(),
        };
        let messages = [
            message("new", release("v2", "2026-03-02T00:00:00Z"), 0),
            message("ping", json!({"zen": "z", "hook_id": 1}), 1),
            message("garbage", json!({"hello": "world"}), 2),
            message("old", release("v1", "2026-03-01T00:00:00Z"), 3),
            message(
                "draft",
                json!({"action": "published", "release": {"tag_name": "v3", "target_commitish": "main",
                    "draft": true}}),
                4,
            ),
        ];

        let sorted = sort(&messages, &policy);

        let ids = |list: &[(Message, String)]| -> Vec<String> {
            list.iter().map(|(m, _)| m.id.clone()).collect()
        };
        let pending: Vec<&str> = sorted
            .pending
            .iter()
            .map(|p| p.message.id.as_str())
            .collect();
        assert_eq!(pending, ["old", "new"]);
        assert_eq!(ids(&sorted.skipped), ["ping", "draft"]);
        assert_eq!(ids(&sorted.kept), ["garbage"]);
    }
}
