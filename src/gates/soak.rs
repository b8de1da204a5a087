//! The staging soak gate: the release's staging digest must be what staging's ECS service ran as its primary
//! deployment, its rollout completed and no task failed, for at least the soak time; and every named CloudWatch
//! alarm in staging must be OK.
//!
//! [`judge`] decides from what was read and the instant it is given, so that every case (a soak half through,
//! a rollback, a service that moved on) is tested without a clock; staging.rs beside it reads staging.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// One deployment of the staging service that ran the release's digest, current or from the service's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ran {
    /// ECS's deployment id (`ecs-svc/…`) or service deployment ARN.
    pub id: String,
    /// Where it was seen: `DescribeServices` (current) or `ListServiceDeployments` (history).
    pub origin: Origin,
    /// For a current deployment, its rollout state (`COMPLETED`, `IN_PROGRESS`, `FAILED`); for one from the
    /// history, its status (`SUCCESSFUL`, `ROLLBACK_SUCCESSFUL`, `STOPPED`, …).
    pub state: String,
    pub created_at: OffsetDateTime,
    /// `updatedAt` (current) or `finishedAt` (history), as ECS gives it.
    pub updated_at: Option<OffsetDateTime>,
    /// When it stopped being the service's primary deployment; none while it still is.
    pub replaced_at: Option<OffsetDateTime>,
    pub running_tasks: i64,
    pub failed_tasks: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Current,
    History,
}

impl Ran {
    /// How long it was (or is, at `now`) the primary deployment.
    fn ran_for(&self, now: OffsetDateTime) -> Duration {
        let end = self.replaced_at.unwrap_or(now);
        Duration::try_from(end - self.created_at).unwrap_or(Duration::ZERO)
    }

    /// Failed for good: its rollout failed or was rolled back, or tasks failed.
    fn failure(&self) -> Option<String> {
        if self.failed_tasks > 0 {
            return Some(format!(
                "{} task(s) failed in deployment {}",
                self.failed_tasks, self.id
            ));
        }
        match self.state.as_str() {
            "COMPLETED" | "IN_PROGRESS" | "SUCCESSFUL" | "PENDING" => None,
            // ECS stops a deployment that a newer one replaces before it finished: not the image's fault, but it
            // never completed either, so it cannot vouch for the image.
            state => Some(format!("deployment {} is {state}", self.id)),
        }
    }

    fn completed(&self) -> bool {
        matches!(self.state.as_str(), "COMPLETED" | "SUCCESSFUL")
    }
}

/// What was read of staging for one image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    /// `cluster/service`.
    pub service: String,
    /// The deployments that ran the digest, newest first.
    pub ran: Vec<Ran>,
    /// Each named alarm's state (`OK`, `ALARM`, `INSUFFICIENT_DATA`; `MISSING` when staging has none by that
    /// name).
    pub alarms: BTreeMap<String, String>,
}

/// What the gate saw, as recorded with the release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoakEvidence {
    /// The staging image, `repo@sha256:…`.
    pub image: String,
    /// `cluster/service`.
    pub service: String,
    /// The soak time asked for (`30m`).
    pub soak: String,
    /// The deployment judged: the one that passed, else the newest that ran the image. None when none did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<DeploymentEvidence>,
    /// Each named alarm's state.
    #[serde(default)]
    pub alarms: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentEvidence {
    pub id: String,
    pub origin: Origin,
    /// Rollout state (current) or status (history).
    pub state: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_at: Option<String>,
    pub running_tasks: i64,
    pub failed_tasks: i64,
    /// How long it ran as primary when judged (`1h 2m`).
    pub ran_for: String,
}

impl SoakEvidence {
    /// One line for people.
    pub fn summary(&self) -> String {
        let alarms = if self.alarms.is_empty() {
            String::new()
        } else {
            let states: Vec<String> = self
                .alarms
                .iter()
                .map(|(name, state)| format!("{name} {state}"))
                .collect();
            format!(", alarms {}", states.join(", "))
        };
        match &self.deployment {
            Some(d) => format!(
                "{} on {} deployment {} ({}) {} since {}, ran {} of {} soak, tasks {} running {} failed{alarms}",
                self.image,
                self.service,
                d.id,
                match d.origin {
                    Origin::Current => "current",
                    Origin::History => "history",
                },
                d.state,
                d.created_at,
                d.ran_for,
                self.soak,
                d.running_tasks,
                d.failed_tasks
            ),
            None => format!("{} never ran on {}{alarms}", self.image, self.service),
        }
    }
}

/// The gate's decision on one image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Judgement {
    Pass(SoakEvidence),
    /// Failed: the reason names the evidence.
    Refuse {
        evidence: SoakEvidence,
        reason: String,
    },
    /// Healthy so far, not for long enough yet: judge again at `until`.
    Wait {
        evidence: SoakEvidence,
        until: OffsetDateTime,
    },
}

/// How long a rollout still in progress is given before it is looked at again, when its soak would end sooner.
const ROLLOUT_RECHECK: Duration = Duration::from_secs(5 * 60);

/// Judges what staging ran of `image` against a soak of `soak`, at `now`.
pub fn judge(image: &str, seen: &Observation, soak: Duration, now: OffsetDateTime) -> Judgement {
    let rfc3339 = |t: OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| t.to_string())
    };
    let evidence_of = |ran: Option<&Ran>| SoakEvidence {
        image: image.to_owned(),
        service: seen.service.clone(),
        soak: humantime::format_duration(soak).to_string(),
        deployment: ran.map(|r| DeploymentEvidence {
            id: r.id.clone(),
            origin: r.origin,
            state: r.state.clone(),
            created_at: rfc3339(r.created_at),
            updated_at: r.updated_at.map(rfc3339),
            replaced_at: r.replaced_at.map(rfc3339),
            running_tasks: r.running_tasks,
            failed_tasks: r.failed_tasks,
            // Whole seconds: the record reads as people write durations.
            ran_for: humantime::format_duration(Duration::from_secs(r.ran_for(now).as_secs()))
                .to_string(),
        }),
        alarms: seen.alarms.clone(),
    };
    let not_ok: Vec<String> = seen
        .alarms
        .iter()
        .filter(|(_, state)| state.as_str() != "OK")
        .map(|(name, state)| format!("{name} is {state}"))
        .collect();
    if !not_ok.is_empty() {
        return Judgement::Refuse {
            evidence: evidence_of(seen.ran.first()),
            reason: format!(
                "staging alarm(s) not OK: {} (PROMOTE_GATE_STAGING_ALARMS)",
                not_ok.join(", ")
            ),
        };
    }
    let soaked = seen
        .ran
        .iter()
        .find(|r| r.failure().is_none() && r.completed() && r.ran_for(now) >= soak);
    if let Some(ran) = soaked {
        return Judgement::Pass(evidence_of(Some(ran)));
    }
    let Some(newest) = seen.ran.first() else {
        return Judgement::Refuse {
            evidence: evidence_of(None),
            reason: format!(
                "{image} never ran on staging service {} (neither its current deployments nor its deployment \
                 history name that digest): deploy the release's commit to staging first",
                seen.service
            ),
        };
    };
    if let Some(failure) = newest.failure() {
        return Judgement::Refuse {
            evidence: evidence_of(Some(newest)),
            reason: format!(
                "{image} failed in staging service {}: {failure}",
                seen.service
            ),
        };
    }
    if newest.replaced_at.is_none() {
        let soaked_at = newest.created_at + soak;
        let until = if newest.completed() {
            soaked_at
        } else {
            soaked_at.max(now + ROLLOUT_RECHECK)
        };
        return Judgement::Wait {
            evidence: evidence_of(Some(newest)),
            until,
        };
    }
    Judgement::Refuse {
        evidence: evidence_of(Some(newest)),
        reason: format!(
            "{image} ran on staging service {} for {} (deployment {}, {}), less than the soak of {}, before \
             staging moved on",
            seen.service,
            humantime::format_duration(Duration::from_secs(newest.ran_for(now).as_secs())),
            newest.id,
            newest.state,
            humantime::format_duration(soak)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMAGE: &str = "111111111111.dkr.ecr.us-east-1.amazonaws.com/api@sha256:aa";

    fn at(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap()
    }

    fn current(state: &str, created: &str) -> Ran {
        Ran {
            id: "ecs-svc/1".into(),
            origin: Origin::Current,
            state: state.into(),
            created_at: at(created),
            updated_at: Some(at(created)),
            replaced_at: None,
            running_tasks: 2,
            failed_tasks: 0,
        }
    }

    fn seen(ran: Vec<Ran>, alarms: &[(&str, &str)]) -> Observation {
        Observation {
            service: "staging/api".into(),
            ran,
            alarms: alarms
                .iter()
                .map(|(n, s)| ((*n).to_owned(), (*s).to_owned()))
                .collect(),
        }
    }

    const SOAK: Duration = Duration::from_secs(30 * 60);

    #[test]
    fn a_completed_primary_deployment_passes_once_it_ran_for_the_soak() {
        let observed = seen(
            vec![current("COMPLETED", "2026-12-05T10:00:00Z")],
            &[("api-5xx", "OK")],
        );
        let Judgement::Pass(evidence) = judge(IMAGE, &observed, SOAK, at("2026-12-05T10:30:00Z"))
        else {
            panic!("not passed");
        };
        let deployment = evidence.deployment.unwrap();
        assert_eq!(deployment.ran_for, "30m");
        assert_eq!(deployment.state, "COMPLETED");
        assert_eq!(evidence.alarms["api-5xx"], "OK");
    }

    #[test]
    fn a_soak_half_through_waits_until_it_ends() {
        let observed = seen(vec![current("COMPLETED", "2026-12-05T10:00:00Z")], &[]);
        let Judgement::Wait { until, evidence } =
            judge(IMAGE, &observed, SOAK, at("2026-12-05T10:12:00Z"))
        else {
            panic!("not waiting");
        };
        assert_eq!(until, at("2026-12-05T10:30:00Z"));
        assert_eq!(evidence.deployment.unwrap().ran_for, "12m");
    }

    #[test]
    fn a_rollout_in_progress_waits_at_least_a_few_minutes() {
        let observed = seen(vec![current("IN_PROGRESS", "2026-12-05T10:00:00Z")], &[]);
        let Judgement::Wait { until, .. } =
            judge(IMAGE, &observed, SOAK, at("2026-12-05T11:00:00Z"))
        else {
            panic!("an unfinished rollout passed");
        };
        assert_eq!(until, at("2026-12-05T11:05:00Z"));
    }

    #[test]
    fn failed_tasks_or_a_failed_rollout_refuse_naming_them() {
        let mut failing = current("COMPLETED", "2026-12-05T10:00:00Z");
        failing.failed_tasks = 3;
        let rolled_back = Ran {
            origin: Origin::History,
            state: "ROLLBACK_SUCCESSFUL".into(),
            replaced_at: Some(at("2026-12-05T10:20:00Z")),
            ..current("", "2026-12-05T10:00:00Z")
        };
        for (ran, says) in [
            (failing, "3 task(s) failed in deployment ecs-svc/1"),
            (rolled_back, "deployment ecs-svc/1 is ROLLBACK_SUCCESSFUL"),
        ] {
            let Judgement::Refuse { reason, .. } = judge(
                IMAGE,
                &seen(vec![ran], &[]),
                SOAK,
                at("2026-12-05T12:00:00Z"),
            ) else {
                panic!("a failure passed");
            };
            assert!(reason.contains(says), "{reason}");
        }
    }

    #[test]
    fn an_alarm_not_ok_refuses_even_a_soaked_image() {
        let observed = seen(
            vec![current("COMPLETED", "2026-12-05T10:00:00Z")],
            &[("api-5xx", "ALARM"), ("latency", "OK"), ("gone", "MISSING")],
        );
        let Judgement::Refuse { reason, evidence } =
            judge(IMAGE, &observed, SOAK, at("2026-12-06T10:00:00Z"))
        else {
            panic!("passed with an alarm");
        };
        assert!(
            reason.contains("api-5xx is ALARM, gone is MISSING") && !reason.contains("latency"),
            "{reason}"
        );
        assert_eq!(evidence.alarms.len(), 3);
    }

    #[test]
    fn an_image_staging_moved_on_from_passes_on_its_history_if_it_ran_long_enough() {
        let history = |replaced: &str| Ran {
            origin: Origin::History,
            state: "SUCCESSFUL".into(),
            replaced_at: Some(at(replaced)),
            ..current("", "2026-12-01T10:00:00Z")
        };
        let now = at("2026-12-05T10:00:00Z");
        let long = seen(vec![history("2026-12-01T14:00:00Z")], &[]);
        let Judgement::Pass(evidence) = judge(IMAGE, &long, SOAK, now) else {
            panic!("refused");
        };
        assert_eq!(evidence.deployment.unwrap().ran_for, "4h");

        let short = seen(vec![history("2026-12-01T10:05:00Z")], &[]);
        let Judgement::Refuse { reason, .. } = judge(IMAGE, &short, SOAK, now) else {
            panic!("five minutes passed a thirty-minute soak");
        };
        assert!(
            reason.contains("for 5m") && reason.contains("staging moved on"),
            "{reason}"
        );
    }

    #[test]
    fn an_image_staging_never_ran_refuses() {
        let Judgement::Refuse { reason, evidence } = judge(
            IMAGE,
            &seen(Vec::new(), &[]),
            SOAK,
            at("2026-12-05T10:00:00Z"),
        ) else {
            panic!("passed");
        };
        assert!(
            reason.contains("never ran on staging service staging/api"),
            "{reason}"
        );
        assert!(evidence.deployment.is_none());
    }

    #[test]
    fn an_older_soaked_deployment_of_the_same_digest_passes_while_a_newer_one_rolls_out() {
        let older = Ran {
            id: "ecs-svc/0".into(),
            replaced_at: Some(at("2026-12-05T09:00:00Z")),
            ..current("COMPLETED", "2026-12-05T08:00:00Z")
        };
        let observed = seen(
            vec![current("IN_PROGRESS", "2026-12-05T09:00:00Z"), older],
            &[],
        );
        let Judgement::Pass(evidence) = judge(IMAGE, &observed, SOAK, at("2026-12-05T09:01:00Z"))
        else {
            panic!("not passed");
        };
        assert_eq!(evidence.deployment.unwrap().id, "ecs-svc/0");
    }
}
