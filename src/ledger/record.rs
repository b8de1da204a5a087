//! A release's record: what the ledger holds for it, its images and deploys, and when another record may not
//! be written where it is.

use anyhow::{Context, Result};
use serde::Serialize;

use crate::gates::GateRecord;
use crate::registry::Digest;
use crate::timestamp::Timestamp;

/// One image of a release.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Image {
    pub containers: Vec<String>,
    /// `staging-repo@sha256:…`: exactly what was copied.
    pub source_image: String,
    /// `production-repo:tag`: where it went.
    pub target_image: String,
    pub digest: Digest,
}

/// How a release came to be deployed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeployKind {
    Promote,
    Redeploy,
}

impl DeployKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DeployKind::Promote => "promote",
            DeployKind::Redeploy => "redeploy",
        }
    }
}

/// One deploy of a release: its promotion, or a later redeploy.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Deploy {
    /// The table's count of deploys when this one was recorded, taken by an atomic increment: the order deploys
    /// happened in, which never ties (two deploys in one second do). `None` for deploys recorded before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    /// RFC 3339 UTC, whole seconds: for people; order comes from `sequence`.
    pub deployed_at: String,
    pub kind: DeployKind,
    pub build_arn: Option<String>,
    /// Who started it (CodeBuild's initiator, or the user at a terminal).
    pub initiator: Option<String>,
    /// How ECS rolled it out, once `settle` (or `status`) learned it; `None` until then, and for deploys
    /// recorded before outcomes were.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// What GitHub was told of it, when GitHub deployments are reported (PROMOTE_GITHUB_TOKEN_SECRET_ARN).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub github: Option<GithubMark>,
}

/// A deploy as GitHub knows it: its GitHub deployment, the last status GitHub accepted, and the status still
/// owed because GitHub could not be reached or refused; the next report retries what is owed. States are
/// GitHub's words (`in_progress`, `success`, `failure`, `inactive`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct GithubMark {
    /// `owner/name` the deployment is in.
    pub repository: String,
    /// GitHub's deployment id; `None` until GitHub has accepted the deployment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub posted: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owed: Option<String>,
}

impl Deploy {
    /// How this deploy orders against every other in the table: by sequence; deploys recorded before there
    /// was one come before all that have one (they happened earlier), ordered among themselves by time.
    pub fn order(&self) -> (Option<u64>, Option<Timestamp>) {
        (self.sequence, self.deployed_at.parse().ok())
    }

    /// ECS failed to roll it out (and may have rolled back): a release whose last deploy this is is not
    /// one to deploy again unasked.
    pub fn failed(&self) -> bool {
        self.outcome.as_ref().is_some_and(|o| o.state.failed())
    }
}

/// How ECS rolled out a deploy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeState {
    /// ECS started the deployment; how it ends is not known yet.
    InProgress,
    /// Every task of the deployment runs and is healthy.
    Completed,
    /// The deployment failed (the circuit breaker tripped, or it was stopped).
    Failed,
    /// The deployment failed and ECS went back to the release named in [`Outcome::rolled_back_to`].
    RolledBack,
    /// A later deploy's rollout completed while this one's was still in progress: ECS replaced it, and
    /// production no longer runs it. ECS says nothing more of a deployment it replaced, so without this the
    /// deploy would read "in progress" for good.
    Superseded,
}

impl OutcomeState {
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeState::InProgress => "in_progress",
            OutcomeState::Completed => "completed",
            OutcomeState::Failed => "failed",
            OutcomeState::RolledBack => "rolled_back",
            OutcomeState::Superseded => "superseded",
        }
    }

    pub fn failed(self) -> bool {
        matches!(self, OutcomeState::Failed | OutcomeState::RolledBack)
    }

    /// Whether the rollout has ended: an ended outcome is final.
    pub fn ended(self) -> bool {
        self != OutcomeState::InProgress
    }
}

impl std::str::FromStr for OutcomeState {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        [
            OutcomeState::InProgress,
            OutcomeState::Completed,
            OutcomeState::Failed,
            OutcomeState::RolledBack,
            OutcomeState::Superseded,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
        .ok_or_else(|| {
            format!("{text:?} is not in_progress, completed, failed, rolled_back or superseded")
        })
    }
}

/// How one deploy ended in production ECS: the ECS deployment that rolled it out and what became of it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Outcome {
    pub state: OutcomeState,
    /// The ECS deployment (`ecs-svc/…`) that rolled the deploy out.
    pub deployment_id: String,
    /// RFC 3339 UTC: when ECS reported this state (for `completed`, when the rollout completed).
    pub at: String,
    /// ECS's reason, when it gave one (a failure's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The release ECS rolled back to (`rolled_back` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rolled_back_to: Option<String>,
}

impl Outcome {
    /// Whether this outcome may replace `recorded` on the same deploy. Events come at least once and out of
    /// order, so an outcome only moves forward: nothing → in progress → ended, and failed → rolled back (the
    /// rollback is learned after the failure); an ended outcome is never replaced by another, nor is one
    /// deploy ever given a second ECS deployment.
    pub fn replaces(&self, recorded: Option<&Outcome>) -> bool {
        let Some(recorded) = recorded else {
            return true;
        };
        self.deployment_id == recorded.deployment_id
            && match recorded.state {
                OutcomeState::InProgress => self.state.ended(),
                OutcomeState::Failed => self.state == OutcomeState::RolledBack,
                OutcomeState::Completed | OutcomeState::RolledBack | OutcomeState::Superseded => {
                    false
                }
            }
    }

    /// One line for people: `completed 2026-… (ecs-svc/1)`, `rolled back to v1.0.0 …: reason`.
    pub fn summary(&self) -> String {
        let state = match (&self.state, &self.rolled_back_to) {
            (OutcomeState::RolledBack, Some(to)) => format!("rolled back to {to}"),
            (state, _) => state.as_str().replace('_', " "),
        };
        let reason = self
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        format!("{state} {} ({}){reason}", self.at, self.deployment_id)
    }
}

/// Where a release's promotion stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReleaseState {
    /// Claimed: a run holds the tag and may be copying it (or was stopped while it did; a rerun with the same
    /// commit resumes).
    Pending,
    /// In production and recorded.
    Done,
}

impl ReleaseState {
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseState::Pending => "pending",
            ReleaseState::Done => "done",
        }
    }
}

/// What the ledger holds for one release. `digest`, `source_image` and `target_image` are the first
/// image's, so that single-image releases read simply; `images` lists every image.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Record {
    pub tag_name: String,
    pub state: ReleaseState,
    pub commit: String,
    pub digest: Digest,
    pub source_image: String,
    pub target_image: String,
    pub containers: Vec<String>,
    pub images: Vec<Image>,
    /// RFC 3339 UTC, set when the promotion completes; the first promotion's time is kept on reruns.
    pub promoted_at: Option<String>,
    pub release_name: Option<String>,
    pub html_url: Option<String>,
    pub author: Option<String>,
    pub prerelease: bool,
    pub published_at: Option<Timestamp>,
    /// GitHub's release id, which breaks ties between releases published in the same second.
    pub release_id: Option<u64>,
    pub build_arn: Option<String>,
    /// `owner/name` of the GitHub repository released, when the release came from a webhook.
    pub repository: Option<String>,
    /// GitHub `X-GitHub-Delivery` ids that promoted this release.
    pub deliveries: Vec<String>,
    pub deploys: Vec<Deploy>,
    /// What each promotion gate saw and decided when the release was claimed (empty with no gate on).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<GateRecord>,
}

impl Record {
    /// A claim on `tag` for these images (at least one), to be completed once they are in production.
    pub fn pending(tag: &str, commit: &str, images: Vec<Image>) -> Result<Record> {
        let first = images
            .first()
            .context("no image to promote: set PROMOTE_SOURCE_REPOSITORY or PROMOTE_CONFIG")?;
        Ok(Record {
            tag_name: tag.to_owned(),
            state: ReleaseState::Pending,
            commit: commit.to_owned(),
            digest: first.digest.clone(),
            source_image: first.source_image.clone(),
            target_image: first.target_image.clone(),
            containers: images.iter().flat_map(|i| i.containers.clone()).collect(),
            images,
            promoted_at: None,
            release_name: None,
            html_url: None,
            author: None,
            prerelease: false,
            published_at: None,
            release_id: None,
            build_arn: None,
            repository: None,
            deliveries: Vec::new(),
            deploys: Vec::new(),
            gates: Vec::new(),
        })
    }

    /// Every image's digest, in order: what a claim must match.
    pub(super) fn digests(&self) -> String {
        let digests: Vec<String> = self.images.iter().map(|i| i.digest.to_string()).collect();
        digests.join(",")
    }

    /// The conflict, if `self` may not be written where `existing` is recorded (another commit or digest).
    pub fn conflict_with(&self, existing: &Record, table: &str) -> Option<Conflict> {
        (existing.commit != self.commit || existing.digests() != self.digests()).then(|| Conflict {
            table: table.to_owned(),
            tag: self.tag_name.clone(),
            state: existing.state,
            recorded_commit: existing.commit.clone(),
            recorded_digest: existing.digest.clone(),
            commit: self.commit.clone(),
            digest: self.digest.clone(),
        })
    }

    pub fn last_deployed_at(&self) -> Option<&str> {
        self.last_deploy().map(|d| d.deployed_at.as_str())
    }

    /// Whether the release's latest deploy failed in ECS (or was rolled back): not a release to deploy again
    /// unasked.
    pub fn last_deploy_failed(&self) -> bool {
        self.last_deploy().is_some_and(Deploy::failed)
    }

    /// The latest of the release's deploys.
    pub fn last_deploy(&self) -> Option<&Deploy> {
        self.deploys.iter().max_by_key(|d| d.order())
    }

    /// How this release orders against others, as [`crate::intake::Release::precedence`] does.
    pub fn precedence(&self) -> crate::intake::github::Precedence {
        (self.published_at, self.release_id)
    }
}

/// The release tag is held with another commit or digest: tags never move, so the run stops.
#[derive(Debug, thiserror::Error)]
#[error(
    "release {tag} is {} in table {table} with commit {recorded_commit} ({recorded_digest}), not commit \
     {commit} ({digest}): a release tag never moves — publish a new release instead{}",
    match state { ReleaseState::Done => "already recorded", ReleaseState::Pending => "claimed by a promotion" },
    match state {
        ReleaseState::Done => "",
        ReleaseState::Pending => " (if that promotion was abandoned and its tag is not in production, delete \
                                   the pending item by hand)",
    }
)]
pub struct Conflict {
    pub table: String,
    pub tag: String,
    pub state: ReleaseState,
    pub recorded_commit: String,
    pub recorded_digest: Digest,
    pub commit: String,
    pub digest: Digest,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::full;

    #[test]
    fn an_outcome_only_moves_forward_and_stays_with_its_ecs_deployment() {
        let outcome = |state, deployment: &str| Outcome {
            state,
            deployment_id: deployment.into(),
            at: "2026-01-01T00:00:00Z".into(),
            reason: None,
            rolled_back_to: None,
        };
        use OutcomeState::*;
        let started = outcome(InProgress, "ecs-svc/1");
        assert!(started.replaces(None));
        for ended in [Completed, Failed, RolledBack] {
            assert!(outcome(ended, "ecs-svc/1").replaces(Some(&started)));
            assert!(
                !started.replaces(Some(&outcome(ended, "ecs-svc/1"))),
                "a late in-progress event"
            );
            assert!(
                !outcome(ended, "ecs-svc/2").replaces(Some(&started)),
                "another ECS deployment"
            );
        }
        assert!(outcome(RolledBack, "ecs-svc/1").replaces(Some(&outcome(Failed, "ecs-svc/1"))));
        assert!(!outcome(Failed, "ecs-svc/1").replaces(Some(&outcome(Completed, "ecs-svc/1"))));
        assert!(!outcome(Completed, "ecs-svc/1").replaces(Some(&outcome(Completed, "ecs-svc/1"))));
    }

    #[test]
    fn a_different_commit_or_digest_conflicts_the_same_does_not() {
        let recorded = full();
        assert!(recorded.conflict_with(&recorded, "t").is_none());
        let mut other = recorded.clone();
        other.commit = "def".into();
        let conflict = other.conflict_with(&recorded, "t").unwrap().to_string();
        assert!(
            conflict.contains("already recorded")
                && conflict.contains("commit 3f2a9c1e")
                && conflict.contains("not commit def"),
            "{conflict}"
        );
        let mut other = recorded.clone();
        other.images[1].digest = format!("sha256:{}", "ef".repeat(32)).parse().unwrap();
        assert!(
            other.conflict_with(&recorded, "t").is_some(),
            "a second image's digest counts"
        );
        let mut claimed = recorded.clone();
        claimed.state = ReleaseState::Pending;
        let conflict = other.conflict_with(&claimed, "t").unwrap().to_string();
        assert!(conflict.contains("claimed by a promotion"), "{conflict}");
    }
}
