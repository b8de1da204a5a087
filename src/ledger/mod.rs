//! The ledger: one DynamoDB item per release (partition key `tag_name`).
//!
//! A promotion first **claims** its release tag: a conditional write of the tag with its commit and digests
//! in state `pending`, accepted only when the tag is new or already holds the same commit and digests. Only
//! the holder of a claim writes the tag in production, so two runs with different commits can never both
//! move it; once the images are there the claim is **completed** (`done`). The item is the trace: release →
//! commit → staging digest → production tag → build, and every later deploy of the release.
//!
//! Items are read strictly: an item that is not a record this tool wrote is an error naming the table, the
//! key and the field, never a release silently read with blanks.
//!
//! Rooms: `record` (what a release's record holds), `item` (its DynamoDB form), `update` (conditional
//! writes), `claim` (the claim protocol), `deploys` (the deploy history and its sequence), `listing`
//! (reading one record or all), `order` (which release came last), `outcomes` (how ECS rolled each deploy
//! out).

mod claim;
mod deploys;
mod item;
mod listing;
mod order;
mod outcomes;
mod record;
mod update;

pub use listing::{Releases, Unreadable};
pub use order::last_shipped;
pub use record::{
    Conflict, Deploy, DeployKind, GithubMark, Image, Outcome, OutcomeState, Record, ReleaseState,
};

/// Keys of items that are not releases: the webhook function's delivery claims (`delivery#<id>`). `#` can
/// never be in a release tag, which must be a valid image tag.
pub const DELIVERY_CLAIM_PREFIX: &str = "delivery#";

/// The key of the item that numbers deploys ([`Deploy::sequence`]): not a release, like the delivery claims.
const DEPLOY_SEQUENCE_KEY: &str = "sequence#deploys";

/// Whether an item's key names a release: the table's other items (delivery claims, the deploy sequence) carry
/// a `#`, which no image tag can.
fn is_release_key(key: &str) -> bool {
    !key.contains('#')
}

#[derive(Clone)]
pub struct Ledger {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

pub use crate::timestamp::{now, time_text};

impl Ledger {
    pub fn new(config: &aws_config::SdkConfig, table: &str) -> Ledger {
        Ledger {
            client: aws_sdk_dynamodb::Client::new(config),
            table: table.to_owned(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn context(&self, action: &str, permission: &str) -> String {
        format!(
            "{action} in table {}: check PROMOTE_TABLE and {permission}",
            self.table
        )
    }

    fn unreadable(&self, tag: &str, problem: String) -> Unreadable {
        Unreadable {
            table: self.table.clone(),
            tag: tag.to_owned(),
            problem,
        }
    }
}

#[cfg(test)]
use crate::registry::Digest;

/// A done single-image release, for tests here and in the modules that show records.
#[cfg(test)]
pub(crate) fn example(tag: &str) -> Record {
    let digest: Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
    let image = Image {
        containers: vec!["api".into()],
        source_image: format!("s/api@{digest}"),
        target_image: format!("p/api:{tag}"),
        digest,
    };
    let mut record =
        Record::pending(tag, "3f2a9c1e5b7d4c8a9f0e1d2c3b4a5f6e7d8c9b0a", vec![image]).unwrap();
    record.state = ReleaseState::Done;
    record.promoted_at = Some("2026-01-01T00:00:00Z".into());
    record
}
#[cfg(test)]
pub(crate) fn full() -> Record {
    let mut record = example("v1");
    let second = Image {
        containers: vec!["worker".into(), "cron".into()],
        source_image: "s/worker@sha256:1".into(),
        target_image: "p/worker:v1".into(),
        digest: format!("sha256:{}", "cd".repeat(32)).parse().unwrap(),
    };
    record.images.push(second);
    record.containers = vec!["api".into(), "worker".into(), "cron".into()];
    record.release_name = Some("One".into());
    record.html_url = Some("https://github.com/o/r/releases/tag/v1".into());
    record.author = Some("octocat".into());
    record.prerelease = true;
    record.published_at = Some("2026-01-01T00:00:00.5+01:00".parse().unwrap());
    record.release_id = Some(1234);
    record.build_arn = Some("arn:b".into());
    record.repository = Some("o/r".into());
    record.deliveries = vec!["d-1".into()];
    record.deploys = vec![Deploy {
        sequence: Some(7),
        deployed_at: "2026-01-02T00:00:00Z".into(),
        kind: DeployKind::Redeploy,
        build_arn: Some("arn:b".into()),
        initiator: Some("alice".into()),
        outcome: Some(Outcome {
            state: OutcomeState::RolledBack,
            deployment_id: "ecs-svc/1234567890".into(),
            at: "2026-01-02T00:05:00Z".into(),
            reason: Some("ECS deployment circuit breaker: tasks failed to start.".into()),
            rolled_back_to: Some("v0".into()),
        }),
        github: Some(GithubMark {
            repository: "o/r".into(),
            deployment_id: Some(42),
            posted: Some("in_progress".into()),
            owed: Some("success".into()),
        }),
    }];
    record.gates = vec![crate::gates::GateRecord {
        gate: crate::gates::Gate::Vulnerabilities,
        verdict: crate::gates::Verdict::Overridden,
        checked_at: "2026-01-01T23:59:00Z".into(),
        vulnerabilities: Some(crate::gates::vulnerabilities::VulnerabilityEvidence {
            image: "s/api@sha256:1".into(),
            threshold: crate::gates::vulnerabilities::Severity::High,
            scan_status: "COMPLETE".into(),
            counts: [("CRITICAL".to_owned(), 1), ("LOW".to_owned(), 3)].into(),
            allowlisted: vec!["CVE-2026-0002 (until 2027-01-31)".into()],
            blocking: vec![crate::gates::vulnerabilities::Finding {
                id: "CVE-2026-0001".into(),
                severity: "CRITICAL".into(),
                package: Some("openssl".into()),
            }],
            blocking_count: 1,
        }),
        soak: None,
        overridden: Some(crate::gates::OverrideRecord {
            by: "arn:aws:sts::222222222222:assumed-role/oncall/alice".into(),
            reason: "hotfix; the finding is in an unused package".into(),
            refusal: "1 finding(s) at or above HIGH".into(),
        }),
    }];
    record
}
