//! Deciding outcomes from answers already fetched: which deploy each ECS deployment rolls out, and how it
//! ended, from the service's deployments (`DescribeServices`) and the state-change events received.

use std::collections::BTreeMap;

use super::event::DeploymentEvent;
use crate::ledger::{Deploy, Outcome, OutcomeState, Record};
use crate::status::{Deployment, Service, releases_in};
use crate::timestamp::Timestamp;

/// An outcome to record on the deploy numbered `sequence` of release `tag`.
#[derive(Clone, Debug, PartialEq)]
pub struct Settlement {
    pub tag: String,
    pub sequence: u64,
    pub outcome: Outcome,
}

/// What was seen of one ECS deployment.
struct Seen {
    state: OutcomeState,
    at: Option<Timestamp>,
    reason: Option<String>,
}

fn rollout_state(deployment: &Deployment) -> Option<OutcomeState> {
    match deployment.rollout_state.as_deref()? {
        "IN_PROGRESS" => Some(OutcomeState::InProgress),
        "COMPLETED" => Some(OutcomeState::Completed),
        "FAILED" => Some(OutcomeState::Failed),
        _ => None,
    }
}

/// Every deployment's furthest state, from the service's description and the events: events come out of
/// order, so a later IN_PROGRESS never hides a COMPLETED.
fn seen(service: &Service, events: &[DeploymentEvent]) -> BTreeMap<String, Seen> {
    let described = service.deployments.iter().filter_map(|d| {
        let state = rollout_state(d)?;
        let reason = state
            .failed()
            .then(|| d.rollout_state_reason.clone())
            .flatten();
        Some((
            d.id.clone(),
            Seen {
                state,
                at: d.updated_at,
                reason,
            },
        ))
    });
    let received = events.iter().map(|e| {
        let reason = e.state.failed().then(|| e.reason.clone()).flatten();
        (
            e.deployment_id.clone(),
            Seen {
                state: e.state,
                at: e.updated_at,
                reason,
            },
        )
    });
    let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
    for (id, this) in described.chain(received) {
        match seen.get(&id) {
            Some(known) if known.state.ended() || !this.state.ended() => {}
            _ => {
                seen.insert(id, this);
            }
        }
    }
    seen
}

/// The deploy an ECS deployment rolls out: the one already tied to it in the ledger; else, for a deployment
/// `DescribeServices` still lists, the deploy recorded last before ECS created the deployment, if the
/// deployment runs that deploy's release and no other ECS deployment was tied to it. So an ECS deployment
/// from before a redeploy never lands on the redeploy, and a rollback to an earlier release (whose deploy came
/// before the failed one) lands on no deploy.
fn deploy_of<'a>(
    id: &str,
    service: &Service,
    records: &'a [Record],
) -> Option<(&'a Record, &'a Deploy)> {
    let deploys = || {
        records
            .iter()
            .flat_map(|r| r.deploys.iter().map(move |d| (r, d)))
    };
    if let Some(tied) =
        deploys().find(|(_, d)| d.outcome.as_ref().is_some_and(|o| o.deployment_id == id))
    {
        return Some(tied);
    }
    let deployment = service.deployments.iter().find(|d| d.id == id)?;
    let created = deployment.created_at?;
    let (record, deploy) = deploys()
        .filter(|(_, d)| d.sequence.is_some())
        .filter(|(_, d)| {
            d.deployed_at
                .parse::<Timestamp>()
                .is_ok_and(|at| at <= created)
        })
        .max_by_key(|(_, d)| d.sequence)?;
    let runs = releases_in(service, &deployment.task_definition, records);
    (deploy.outcome.is_none() && runs.iter().any(|r| r.tag_name == record.tag_name))
        .then_some((record, deploy))
}

/// The release a failed deploy of `record` (numbered `sequence`) was rolled back to: the one the service's
/// primary deployment runs, when that is another ECS deployment running one earlier recorded release.
fn rolled_back_to(
    failed: &str,
    record: &Record,
    sequence: u64,
    service: &Service,
    records: &[Record],
) -> Option<String> {
    let primary = service
        .deployments
        .iter()
        .find(|d| d.status == "PRIMARY" && d.id != failed)?;
    match releases_in(service, &primary.task_definition, records).as_slice() {
        [earlier]
            if earlier.tag_name != record.tag_name
                && earlier
                    .deploys
                    .iter()
                    .all(|d| d.sequence.is_some_and(|s| s < sequence)) =>
        {
            Some(earlier.tag_name.clone())
        }
        _ => None,
    }
}

/// The outcomes to record: one per ECS deployment seen that rolls out a recorded deploy, where it moves that
/// deploy's outcome forward. `now` stands in for a time ECS did not give.
pub fn decide(
    service: &Service,
    records: &[Record],
    events: &[DeploymentEvent],
    now: Timestamp,
) -> Vec<Settlement> {
    let mut settlements = Vec::new();
    for (id, seen) in seen(service, events) {
        let Some((record, deploy)) = deploy_of(&id, service, records) else {
            continue;
        };
        let Some(sequence) = deploy.sequence else {
            continue;
        };
        let rolled_back_to = (seen.state == OutcomeState::Failed)
            .then(|| rolled_back_to(&id, record, sequence, service, records))
            .flatten();
        let outcome = Outcome {
            state: match rolled_back_to {
                Some(_) => OutcomeState::RolledBack,
                None => seen.state,
            },
            deployment_id: id,
            at: seen.at.unwrap_or(now).whole_seconds(),
            reason: seen.reason,
            rolled_back_to,
        };
        if outcome.replaces(deploy.outcome.as_ref()) {
            settlements.push(Settlement {
                tag: record.tag_name.clone(),
                sequence,
                outcome,
            });
        }
    }
    let superseded = superseded(records, &settlements);
    settlements.extend(superseded);
    settlements
}

/// The deploys still in progress that a later deploy's completed rollout replaced (recorded so, or among
/// `settlements`): each becomes `superseded`, at the time the later one completed. A deploy after the last
/// completed one is left in progress: it may still complete.
fn superseded(records: &[Record], settlements: &[Settlement]) -> Vec<Settlement> {
    let recorded = records.iter().flat_map(|r| {
        r.deploys.iter().filter_map(move |d| {
            let outcome = d.outcome.as_ref()?;
            Some((r.tag_name.as_str(), d.sequence?, outcome))
        })
    });
    let settled = settlements
        .iter()
        .map(|s| (s.tag.as_str(), s.sequence, &s.outcome));
    // Each deploy's outcome once this decision is recorded: a settlement overrides what was recorded.
    let mut latest: BTreeMap<u64, (&str, &Outcome)> = BTreeMap::new();
    for (tag, sequence, outcome) in recorded.chain(settled) {
        latest.insert(sequence, (tag, outcome));
    }
    let Some((&completed, &(by, replacing))) = latest
        .iter()
        .rev()
        .find(|(_, (_, o))| o.state == OutcomeState::Completed)
    else {
        return Vec::new();
    };
    latest
        .range(..completed)
        .filter(|(_, (_, o))| o.state == OutcomeState::InProgress)
        .map(|(&sequence, &(tag, outcome))| Settlement {
            tag: tag.to_owned(),
            sequence,
            outcome: Outcome {
                state: OutcomeState::Superseded,
                deployment_id: outcome.deployment_id.clone(),
                at: replacing.at.clone(),
                reason: Some(format!(
                    "replaced by deploy {completed} (release {by}), whose rollout completed first"
                )),
                rolled_back_to: None,
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::DeployKind;
    use crate::status::{ContainerDefinition, TaskDefinition};

    const PRODUCTION: &str = "222222222222.dkr.ecr.us-east-1.amazonaws.com";

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    /// Release `tag`, deployed as numbered: `(sequence, deployed_at)`.
    fn release(tag: &str, deploys: &[(u64, &str)]) -> Record {
        let mut record = crate::ledger::example(tag);
        record.target_image = format!("{PRODUCTION}/api:{tag}");
        record.images[0].target_image = record.target_image.clone();
        record.deploys = deploys
            .iter()
            .map(|&(sequence, deployed_at)| Deploy {
                sequence: Some(sequence),
                deployed_at: deployed_at.into(),
                kind: DeployKind::Promote,
                build_arn: None,
                initiator: None,
                outcome: None,
                github: None,
            })
            .collect();
        record
    }

    /// ECS deployment `id` of task definition revision `revision` (container api running `release`).
    fn deployment(
        id: &str,
        status: &str,
        revision: u32,
        rollout: &str,
        created: &str,
    ) -> Deployment {
        Deployment {
            id: id.into(),
            status: status.into(),
            task_definition: format!(
                "arn:aws:ecs:us-east-1:222222222222:task-definition/shop-api:{revision}"
            ),
            rollout_state: Some(rollout.into()),
            rollout_state_reason: None,
            created_at: Some(at(created)),
            updated_at: Some(at("2026-12-04T10:30:00Z")),
            desired_count: 2,
            running_count: 2,
        }
    }

    /// The service with these deployments; revision n runs release `v1.<n>.0`.
    fn service(deployments: Vec<Deployment>) -> Service {
        let task_definitions = deployments
            .iter()
            .map(|d| {
                let revision = d.task_definition.rsplit(':').next().unwrap();
                TaskDefinition {
                    task_definition_arn: d.task_definition.clone(),
                    container_definitions: vec![ContainerDefinition {
                        name: "api".into(),
                        image: format!("{PRODUCTION}/api:v1.{revision}.0"),
                    }],
                }
            })
            .collect();
        Service {
            cluster: "production".into(),
            name: "shop-api".into(),
            deployments,
            task_definitions,
            tasks: Vec::new(),
        }
    }

    fn failed_event(id: &str) -> DeploymentEvent {
        DeploymentEvent {
            service_arn: "arn:aws:ecs:us-east-1:222222222222:service/production/shop-api".into(),
            deployment_id: id.into(),
            state: OutcomeState::Failed,
            updated_at: Some(at("2026-12-04T10:20:00Z")),
            reason: Some("ECS deployment circuit breaker: task failed to start.".into()),
        }
    }

    const NOW: &str = "2026-12-04T11:00:00Z";

    #[test]
    fn a_completed_rollout_lands_on_the_deploy_recorded_last_before_it() {
        let records = [release(
            "v1.1.0",
            &[(1, "2026-12-04T09:00:00Z"), (4, "2026-12-04T10:00:00Z")],
        )];
        let service = service(vec![deployment(
            "ecs-svc/2",
            "PRIMARY",
            1,
            "COMPLETED",
            "2026-12-04T10:01:00Z",
        )]);

        let settled = decide(&service, &records, &[], at(NOW));

        assert_eq!(settled.len(), 1, "{settled:?}");
        assert_eq!(
            (settled[0].tag.as_str(), settled[0].sequence),
            ("v1.1.0", 4)
        );
        assert_eq!(settled[0].outcome.state, OutcomeState::Completed);
        assert_eq!(settled[0].outcome.deployment_id, "ecs-svc/2");
        assert_eq!(settled[0].outcome.at, "2026-12-04T10:30:00Z");
    }

    #[test]
    fn an_ecs_deployment_from_before_a_redeploy_never_lands_on_the_redeploy() {
        // v1.1.0 deployed (1), its ECS deployment created; then v1.1.0 redeployed (2) before the event came.
        let records = [release(
            "v1.1.0",
            &[(1, "2026-12-04T09:00:00Z"), (2, "2026-12-04T10:00:00Z")],
        )];
        let service = service(vec![deployment(
            "ecs-svc/1",
            "PRIMARY",
            1,
            "COMPLETED",
            "2026-12-04T09:01:00Z",
        )]);

        let settled = decide(&service, &records, &[], at(NOW));

        assert_eq!(settled.len(), 1, "{settled:?}");
        assert_eq!(settled[0].sequence, 1, "the deploy it was created after");
    }

    #[test]
    fn a_failure_with_the_primary_back_on_the_earlier_release_is_a_rollback_to_it() {
        let mut records = vec![
            release("v1.1.0", &[(1, "2026-12-04T09:00:00Z")]),
            release("v1.2.0", &[(2, "2026-12-04T10:00:00Z")]),
        ];
        let service = service(vec![
            deployment(
                "ecs-svc/3",
                "PRIMARY",
                1,
                "IN_PROGRESS",
                "2026-12-04T10:20:00Z",
            ),
            deployment(
                "ecs-svc/2",
                "ACTIVE",
                2,
                "IN_PROGRESS",
                "2026-12-04T10:01:00Z",
            ),
        ]);

        // First seen rolling out: tied to its deploy, not yet ended. The rollback deployment (ecs-svc/3) was
        // created after v1.2.0's deploy, so it lands on no deploy.
        let settled = decide(&service, &records, &[], at(NOW));
        assert_eq!(settled.len(), 1, "{settled:?}");
        assert_eq!(
            (settled[0].tag.as_str(), settled[0].outcome.state),
            ("v1.2.0", OutcomeState::InProgress)
        );
        records[1].deploys[0].outcome = Some(settled[0].outcome.clone());

        let settled = decide(&service, &records, &[failed_event("ecs-svc/2")], at(NOW));

        assert_eq!(settled.len(), 1, "{settled:?}");
        let outcome = &settled[0].outcome;
        assert_eq!(
            (settled[0].tag.as_str(), outcome.state),
            ("v1.2.0", OutcomeState::RolledBack)
        );
        assert_eq!(outcome.rolled_back_to.as_deref(), Some("v1.1.0"));
        assert_eq!(outcome.at, "2026-12-04T10:20:00Z");
        assert!(
            outcome
                .reason
                .as_deref()
                .unwrap()
                .contains("circuit breaker")
        );
    }

    #[test]
    fn a_failure_ecs_lists_no_more_is_found_by_the_deployment_tied_in_the_ledger() {
        let mut records = vec![release("v1.2.0", &[(2, "2026-12-04T10:00:00Z")])];
        records[0].deploys[0].outcome = Some(Outcome {
            state: OutcomeState::InProgress,
            deployment_id: "ecs-svc/2".into(),
            at: "2026-12-04T10:01:00Z".into(),
            reason: None,
            rolled_back_to: None,
        });
        let service = service(vec![deployment(
            "ecs-svc/9",
            "PRIMARY",
            7,
            "COMPLETED",
            "2026-12-04T10:20:00Z",
        )]);

        let settled = decide(&service, &records, &[failed_event("ecs-svc/2")], at(NOW));

        assert_eq!(settled.len(), 1, "{settled:?}");
        assert_eq!(
            settled[0].outcome.state,
            OutcomeState::Failed,
            "v1.7.0 is no recorded release"
        );
        // The same event again, once recorded: nothing more to write.
        records[0].deploys[0].outcome = Some(settled[0].outcome.clone());
        assert!(decide(&service, &records, &[failed_event("ecs-svc/2")], at(NOW)).is_empty());
    }

    fn in_progress(id: &str) -> Option<Outcome> {
        Some(Outcome {
            state: OutcomeState::InProgress,
            deployment_id: id.into(),
            at: "2026-12-04T09:01:00Z".into(),
            reason: None,
            rolled_back_to: None,
        })
    }

    #[test]
    fn a_deploy_still_in_progress_when_a_later_one_completes_is_superseded_and_one_after_it_is_not()
    {
        // v1.1.0 (1) rolling out when v1.2.0 (2) shipped; v1.2.0 completed; v1.3.0 (3) rolls out now.
        let mut records = vec![
            release("v1.1.0", &[(1, "2026-12-04T09:00:00Z")]),
            release("v1.2.0", &[(2, "2026-12-04T10:00:00Z")]),
            release("v1.3.0", &[(3, "2026-12-04T10:40:00Z")]),
        ];
        records[0].deploys[0].outcome = in_progress("ecs-svc/1");
        records[2].deploys[0].outcome = in_progress("ecs-svc/3");
        let service = service(vec![deployment(
            "ecs-svc/2",
            "ACTIVE",
            2,
            "COMPLETED",
            "2026-12-04T10:01:00Z",
        )]);

        let settled = decide(&service, &records, &[], at(NOW));

        let states: Vec<_> = settled
            .iter()
            .map(|s| (s.tag.as_str(), s.outcome.state))
            .collect();
        assert_eq!(
            states,
            [
                ("v1.2.0", OutcomeState::Completed),
                ("v1.1.0", OutcomeState::Superseded)
            ]
        );
        let superseded = &settled[1].outcome;
        assert_eq!(superseded.deployment_id, "ecs-svc/1", "its own deployment");
        assert_eq!(
            superseded.at, "2026-12-04T10:30:00Z",
            "when v1.2.0 completed"
        );
        assert!(
            superseded
                .reason
                .as_deref()
                .unwrap()
                .contains("release v1.2.0"),
            "{superseded:?}"
        );

        // Recorded, the next decision finds nothing more: superseded is final.
        records[1].deploys[0].outcome = Some(settled[0].outcome.clone());
        records[0].deploys[0].outcome = Some(settled[1].outcome.clone());
        assert!(decide(&service, &records, &[], at(NOW)).is_empty());
    }
}
