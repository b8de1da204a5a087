//! Judging what the service runs against the ledger and the production registry, from answers already
//! fetched: each container matched to its release, drift named, rollbacks and sidecars told apart.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;

use super::ecs::{Service, Task};
use super::production::Production;
use crate::ledger::{Image, Outcome, Record, ReleaseState, Releases};
use crate::registry::{Digest, Pointer, Reference, Repository};

/// How a container's image was matched to its release.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchedBy {
    /// `repo:<release tag>`, as imagedefinitions.json names it.
    Tag,
    /// `repo@sha256:…`, as a PROMOTE_PIN_DIGEST deploy names it.
    Digest,
}

/// The recorded release a container runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReleaseFacts {
    pub tag: String,
    pub state: ReleaseState,
    pub matched_by: MatchedBy,
    pub commit: String,
    /// The production image the release was recorded under (`repo:tag`).
    pub target_image: String,
    pub recorded_digest: Digest,
    /// What the production tag holds now; `None` when it is gone.
    pub production_digest: Option<Digest>,
    pub promoted_at: Option<String>,
    pub last_deployed_at: Option<String>,
    /// The build that last deployed it (else the one that promoted it), and who started that deploy.
    pub build_arn: Option<String>,
    pub initiator: Option<String>,
    /// How ECS rolled out its last deploy, when known.
    pub last_outcome: Option<Outcome>,
}

/// The digest one running task reports for a container.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Running {
    pub task: String,
    /// `None`: ECS reported none (not pulled yet, or the local world's ECS, which never does).
    pub digest: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Check {
    Ok,
    Drift,
    /// A container ecr-promote does not deploy (a log router, a tracing agent): listed, never judged.
    Sidecar,
}

#[derive(Clone, Debug, Serialize)]
pub struct ContainerStatus {
    pub name: String,
    pub image: String,
    pub release: Option<ReleaseFacts>,
    pub running: Vec<Running>,
    pub check: Check,
}

#[derive(Clone, Debug, Serialize)]
pub struct DeploymentStatus {
    pub id: String,
    pub status: String,
    pub rollout_state: Option<String>,
    /// `family:revision`
    pub task_definition: String,
    pub desired_count: i32,
    pub running_count: i32,
    pub containers: Vec<ContainerStatus>,
}

/// Everything the service runs, each container matched to its release and checked.
#[derive(Clone, Debug, Serialize)]
pub struct StatusReport {
    pub cluster: String,
    pub service: String,
    pub deployments: Vec<DeploymentStatus>,
    /// Worth knowing, not drift: a rollback made outside ecr-promote, digests ECS did not report, a release
    /// whose promotion never completed, unreadable ledger items.
    pub notes: Vec<String>,
    /// What is not what was released, each naming the container and the image at fault.
    pub drift: Vec<String>,
}

/// `family:revision` of a task definition ARN (`arn:aws:ecs:…:task-definition/api:3`).
fn family_revision(arn: &str) -> &str {
    arn.rsplit_once("task-definition/")
        .map_or(arn, |(_, name)| name)
}

/// The last part of a task ARN: what the console and the CLI call the task id.
fn task_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// One image of a recorded release, with the references it was recorded under parsed.
struct Known<'a> {
    record: &'a Record,
    image: &'a Image,
    target: Reference,
    /// The staging repository it was copied from.
    staging: Option<Repository>,
}

fn repository_of(reference: &Reference) -> Repository {
    Repository {
        host: reference.host.clone(),
        name: reference.repository.clone(),
    }
}

/// Every image of the recorded releases, newest promotion first (as the ledger lists them), so that a
/// digest shipped under two tags matches the newer release.
fn known(records: &[Record]) -> Vec<Known<'_>> {
    records
        .iter()
        .flat_map(|record| record.images.iter().map(move |image| (record, image)))
        .filter_map(|(record, image)| {
            Some(Known {
                record,
                image,
                target: image.target_image.parse().ok()?,
                staging: image
                    .source_image
                    .parse::<Reference>()
                    .ok()
                    .map(|r| repository_of(&r)),
            })
        })
        .collect()
}

/// The release image `image` names: by its tag, or by its digest in the same production repository.
fn find<'k, 'a>(known: &'k [Known<'a>], image: &Reference) -> Option<(&'k Known<'a>, MatchedBy)> {
    let same_repository = |k: &&Known| repository_of(&k.target) == repository_of(image);
    match &image.pointer {
        Pointer::Tag(_) => known
            .iter()
            .find(|k| k.target == *image)
            .map(|k| (k, MatchedBy::Tag)),
        Pointer::Digest(digest) => known
            .iter()
            .filter(same_repository)
            .find(|k| k.image.digest == *digest)
            .map(|k| (k, MatchedBy::Digest)),
    }
}

/// Why an image that is no recorded release might be running, for the person who must fix it.
fn unknown_image_hint(known: &[Known], image: &Reference) -> String {
    let repository = repository_of(image);
    let staged = known
        .iter()
        .filter(|k| k.staging.as_ref() == Some(&repository))
        .find(|k| match &image.pointer {
            Pointer::Tag(tag) => {
                crate::resolve::commit_tag(std::slice::from_ref(tag), &k.record.commit)
                    .is_ok_and(|t| t.is_some())
            }
            Pointer::Digest(digest) => k.image.digest == *digest,
        });
    if let Some(k) = staged {
        return format!(
            "it is the staging image of commit {} (release {}): deploy {} instead",
            k.record.commit, k.record.tag_name, k.image.target_image
        );
    }
    if known
        .iter()
        .any(|k| k.staging.as_ref() == Some(&repository))
    {
        "it is a staging image: production runs only promoted releases".into()
    } else if known.iter().any(|k| repository_of(&k.target) == repository) {
        "the production repository holds it, but no release recorded it".into()
    } else {
        "it is from no repository that ecr-promote promotes to".into()
    }
}

/// The production reference (`repo:tag`) and recorded digest of each release image the service runs: what
/// [`report`] needs the production registry's word on.
pub fn release_images(service: &Service, records: &[Record]) -> Vec<(Reference, Digest)> {
    let known = known(records);
    let mut images: Vec<(Reference, Digest)> = Vec::new();
    for definition in &service.task_definitions {
        for container in &definition.container_definitions {
            if let Ok(image) = Reference::from_container_image(&container.image)
                && let Some((k, _)) = find(&known, &image)
                && !images.iter().any(|(tag, _)| *tag == k.target)
            {
                images.push((k.target.clone(), k.image.digest.clone()));
            }
        }
    }
    images
}

/// The recorded releases whose images the containers of task definition `arn` run (by tag or digest): what a
/// deployment of it rolls out. Sidecars and images of no release add none.
pub fn releases_in<'a>(service: &Service, arn: &str, records: &'a [Record]) -> Vec<&'a Record> {
    let known = known(records);
    let mut releases: Vec<&'a Record> = Vec::new();
    let containers = service
        .task_definitions
        .iter()
        .filter(|t| t.task_definition_arn == arn)
        .flat_map(|t| &t.container_definitions);
    for container in containers {
        if let Ok(image) = Reference::from_container_image(&container.image)
            && let Some((k, _)) = find(&known, &image)
            && !releases.iter().any(|r| r.tag_name == k.record.tag_name)
        {
            releases.push(k.record);
        }
    }
    releases
}

/// The status of every container of every deployment (INACTIVE ones left out) against the ledger's
/// `releases` and `production`, what the production registry holds for each of [`release_images`], by tag.
pub fn report(
    service: &Service,
    releases: &Releases,
    production: &HashMap<String, Production>,
) -> StatusReport {
    let known = known(&releases.records);
    // The containers ecr-promote deploys are those its releases were recorded for; any other (a sidecar) runs
    // what its own owner chose.
    let released: BTreeSet<&str> = releases
        .records
        .iter()
        .flat_map(|r| r.images.iter().flat_map(|i| &i.containers))
        .map(String::as_str)
        .collect();
    let mut notes = Vec::new();
    let mut drift = Vec::new();
    let mut deployments = Vec::new();
    for deployment in service
        .deployments
        .iter()
        .filter(|d| d.status != "INACTIVE")
    {
        let task_definition = family_revision(&deployment.task_definition).to_owned();
        let containers = match service
            .task_definitions
            .iter()
            .find(|t| t.task_definition_arn == deployment.task_definition)
        {
            Some(definition) => definition.container_definitions.as_slice(),
            None => {
                notes.push(format!(
                    "ECS did not describe task definition {task_definition} of deployment {}",
                    deployment.id
                ));
                &[]
            }
        };
        let tasks: Vec<&Task> = service
            .tasks
            .iter()
            .filter(|t| t.task_definition_arn == deployment.task_definition)
            .collect();
        let mut statuses = Vec::new();
        for container in containers {
            let running: Vec<Running> = tasks
                .iter()
                .filter_map(|task| {
                    let reported = task.containers.iter().find(|c| c.name == container.name)?;
                    Some(Running {
                        task: task_id(&task.task_arn).to_owned(),
                        digest: reported.image_digest.clone(),
                    })
                })
                .collect();
            if !released.contains(container.name.as_str()) {
                statuses.push(ContainerStatus {
                    name: container.name.clone(),
                    image: container.image.clone(),
                    release: None,
                    running,
                    check: Check::Sidecar,
                });
                continue;
            }
            let before = drift.len();
            let mut children: &[Digest] = &[];
            let release = match Reference::from_container_image(&container.image) {
                Err(problem) => {
                    drift.push(format!(
                        "container {} (task definition {task_definition}) runs {}, which is no recorded \
                         release: {problem}",
                        container.name, container.image
                    ));
                    None
                }
                Ok(image) => match find(&known, &image) {
                    None => {
                        drift.push(format!(
                            "container {} (task definition {task_definition}) runs {}, which is no recorded \
                             release: {}",
                            container.name,
                            container.image,
                            unknown_image_hint(&known, &image)
                        ));
                        if !releases.unreadable.is_empty() {
                            notes.push(format!(
                                "{} ledger item(s) could not be read and may be the release of {}: \
                                 `ecr-promote audit` lists them",
                                releases.unreadable.len(),
                                container.image
                            ));
                        }
                        None
                    }
                    Some((k, matched_by)) => {
                        let held = production.get(&k.target.to_string());
                        children = held.map_or(&[], |p| p.children.as_slice());
                        Some(facts(k, matched_by, held))
                    }
                },
            };
            if let Some(release) = &release {
                let recorded = &release.recorded_digest;
                match &release.production_digest {
                    Some(current) if current == recorded => {}
                    Some(current) => drift.push(format!(
                        "container {} runs {}: release {}'s production tag {} is now on {current}, not on the \
                         recorded {recorded}",
                        container.name, container.image, release.tag, release.target_image
                    )),
                    None => drift.push(format!(
                        "container {} runs {}: release {}'s production tag {} is gone from the production \
                         registry (recorded {recorded})",
                        container.name, container.image, release.tag, release.target_image
                    )),
                }
                // ECS documents a task container's imageDigest only as "the container image manifest digest"
                // (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Container.html), not whether
                // for a multi-platform image that is the index or the platform manifest the task pulled: both
                // are the recorded release.
                let released = |digest: &str| {
                    *digest == recorded.to_string()
                        || children.iter().any(|c| *digest == c.to_string())
                };
                for task in &running {
                    if let Some(digest) = &task.digest
                        && !released(digest)
                    {
                        let platforms = match children.len() {
                            0 => String::new(),
                            n => format!(" (an index) nor any of the {n} manifests it lists"),
                        };
                        drift.push(format!(
                            "container {} in task {} runs {digest}, not {recorded}{platforms}, the digest release \
                             {} recorded for {}",
                            container.name, task.task, release.tag, container.image
                        ));
                    }
                }
                if release.state == ReleaseState::Pending {
                    notes.push(format!(
                        "release {} (container {}) is claimed in the ledger but its promotion never completed",
                        release.tag, container.name
                    ));
                }
            }
            if !running.is_empty() && running.iter().all(|r| r.digest.is_none()) {
                notes.push(format!(
                    "ECS reported no image digest for container {}'s {} running task(s) of {task_definition}: \
                     the running digest is unchecked",
                    container.name,
                    running.len()
                ));
            }
            statuses.push(ContainerStatus {
                name: container.name.clone(),
                image: container.image.clone(),
                release,
                running,
                check: if drift.len() > before {
                    Check::Drift
                } else {
                    Check::Ok
                },
            });
        }
        deployments.push(DeploymentStatus {
            id: deployment.id.clone(),
            status: deployment.status.clone(),
            rollout_state: deployment.rollout_state.clone(),
            task_definition,
            desired_count: deployment.desired_count,
            running_count: deployment.running_count,
            containers: statuses,
        });
    }
    if released.is_empty() {
        notes.push(
            "the ledger records no release: no container is one ecr-promote deployed, so none is checked"
                .to_owned(),
        );
    }
    notes.extend(rollbacks(&deployments, &releases.records));
    notes.extend(failures(&releases.records));
    StatusReport {
        cluster: service.cluster.clone(),
        service: service.name.clone(),
        deployments,
        notes,
        drift,
    }
}

fn facts(k: &Known, matched_by: MatchedBy, production: Option<&Production>) -> ReleaseFacts {
    let last = k.record.last_deploy();
    ReleaseFacts {
        tag: k.record.tag_name.clone(),
        state: k.record.state,
        matched_by,
        commit: k.record.commit.clone(),
        target_image: k.image.target_image.clone(),
        recorded_digest: k.image.digest.clone(),
        production_digest: production.and_then(|p| p.tagged.clone()),
        promoted_at: k.record.promoted_at.clone(),
        last_deployed_at: last.map(|d| d.deployed_at.clone()),
        build_arn: last
            .and_then(|d| d.build_arn.clone())
            .or_else(|| k.record.build_arn.clone()),
        initiator: last.and_then(|d| d.initiator.clone()),
        last_outcome: last.and_then(|d| d.outcome.clone()),
    }
}

/// Releases whose deploy failed in ECS (or was rolled back) after the release production last shipped was
/// deployed: named, so that no one takes them for what runs.
fn failures(records: &[Record]) -> Vec<String> {
    let since = crate::ledger::last_shipped(records)
        .and_then(Record::last_deploy)
        .map(|d| d.order());
    records
        .iter()
        .filter(|r| r.last_deploy_failed())
        .filter_map(|r| Some((r, r.last_deploy()?)))
        .filter(|(_, d)| since.as_ref().is_none_or(|s| d.order() > *s))
        .filter_map(|(r, d)| {
            Some(format!(
                "release {}'s deploy {} ({}) did not roll out: {}; the empty-queue redeploy passes it over",
                r.tag_name,
                d.sequence.map_or("-".to_owned(), |s| s.to_string()),
                d.kind.as_str(),
                d.outcome.as_ref()?.summary()
            ))
        })
        .collect()
}

/// A primary deployment running another recorded release than the one ecr-promote sent to production last
/// is a rollback made outside ecr-promote (an earlier task definition revision): not drift, but said, with
/// the release it runs.
fn rollbacks(deployments: &[DeploymentStatus], records: &[Record]) -> Vec<String> {
    let Some(latest) = crate::ledger::last_shipped(records) else {
        return Vec::new();
    };
    let mut notes = Vec::new();
    for deployment in deployments.iter().filter(|d| d.status == "PRIMARY") {
        let running: BTreeSet<&str> = deployment
            .containers
            .iter()
            .filter(|c| latest.containers.contains(&c.name))
            .filter_map(|c| c.release.as_ref().map(|r| r.tag.as_str()))
            .filter(|tag| *tag != latest.tag_name)
            .collect();
        for tag in running {
            notes.push(format!(
                "rolled back outside ecr-promote: task definition {} runs release {tag}, not {}, the release \
                 ecr-promote deployed last ({}); `ecr-promote redeploy {tag}` records it",
                deployment.task_definition,
                latest.tag_name,
                latest.last_deployed_at().unwrap_or("-")
            ));
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Deploy, DeployKind};
    use crate::status::{ContainerDefinition, Deployment, Drift, TaskDefinition};

    const PRODUCTION: &str = "222222222222.dkr.ecr.us-east-1.amazonaws.com";
    const STAGING: &str = "111111111111.dkr.ecr.us-east-1.amazonaws.com";
    const OLD: &str = "0b9c8d7e6f5a4b3c2d1e0f9a8c4d7b5e1c9a2f3e";
    const NEW: &str = "3f2a9c1e5b7d4c8a9f0e1d2c3b4a5f6e7d8c9b0a";
    const BUILD: &str = "arn:aws:codebuild:us-east-1:222222222222:build/promote:0f3a8e5c-6b1d-4f2a-9c7e-5d4b3a2f1e0d";

    fn digest(byte: &str) -> Digest {
        format!("sha256:{}", byte.repeat(32)).parse().unwrap()
    }

    /// A done release of the `api` image, last sent to production at `shipped_at`.
    fn release(tag: &str, commit: &str, byte: &str, shipped_at: &str) -> Record {
        let mut record = crate::ledger::example(tag);
        let image = &mut record.images[0];
        image.digest = digest(byte);
        image.source_image = format!("{STAGING}/api@{}", image.digest);
        image.target_image = format!("{PRODUCTION}/api:{tag}");
        record.digest = image.digest.clone();
        record.commit = commit.into();
        record.promoted_at = Some(shipped_at.into());
        record.deploys = vec![Deploy {
            sequence: None,
            deployed_at: shipped_at.into(),
            kind: DeployKind::Promote,
            build_arn: Some(BUILD.into()),
            initiator: Some("codepipeline/shop-production".into()),
            outcome: None,
            github: None,
        }];
        record
    }

    /// v1.0.0 (digest aa…) then v1.1.0 (digest bb…), newest first as the ledger lists them.
    fn ledger() -> Releases {
        Releases {
            records: vec![
                release("v1.1.0", NEW, "bb", "2026-11-20T10:00:00Z"),
                release("v1.0.0", OLD, "aa", "2026-11-01T10:00:00Z"),
            ],
            unreadable: Vec::new(),
        }
    }

    fn task_definition_arn(revision: u32) -> String {
        format!("arn:aws:ecs:us-east-1:222222222222:task-definition/shop-api:{revision}")
    }

    /// A `DescribeServices` answer for service shop-api with these (status, revision) deployments, as ECS
    /// sends it (fields status does not read included).
    fn describe_services(deployments: &[(&str, u32)]) -> Vec<Deployment> {
        let deployments: Vec<serde_json::Value> = deployments
            .iter()
            .enumerate()
            .map(|(i, (status, revision))| {
                serde_json::json!({
                    "id": format!("ecs-svc/89163782417612{i}"),
                    "status": status,
                    "taskDefinition": task_definition_arn(*revision),
                    "desiredCount": 2,
                    "pendingCount": 0,
                    "runningCount": 2,
                    "failedTasks": 0,
                    "createdAt": 1.764237602123E9,
                    "updatedAt": 1.764237689456E9,
                    "launchType": "FARGATE",
                    "platformVersion": "1.4.0",
                    "rolloutState": if *status == "PRIMARY" { "COMPLETED" } else { "IN_PROGRESS" },
                    "rolloutStateReason": "ECS deployment ecs-svc/891637824176120 completed."
                })
            })
            .collect();
        let answer = serde_json::json!({
            "failures": [],
            "services": [{
                "serviceArn": "arn:aws:ecs:us-east-1:222222222222:service/production/shop-api",
                "serviceName": "shop-api",
                "clusterArn": "arn:aws:ecs:us-east-1:222222222222:cluster/production",
                "status": "ACTIVE",
                "desiredCount": 2,
                "runningCount": 2,
                "deployments": deployments
            }]
        });
        serde_json::from_value(answer["services"][0]["deployments"].clone()).unwrap()
    }

    /// A `DescribeTaskDefinition` answer: container api running `image`.
    fn describe_task_definition(revision: u32, image: &str) -> TaskDefinition {
        let answer = serde_json::json!({
            "taskDefinition": {
                "taskDefinitionArn": task_definition_arn(revision),
                "family": "shop-api",
                "revision": revision,
                "status": "ACTIVE",
                "networkMode": "awsvpc",
                "requiresCompatibilities": ["FARGATE"],
                "cpu": "256",
                "memory": "512",
                "containerDefinitions": [{
                    "name": "api",
                    "image": image,
                    "cpu": 0,
                    "essential": true,
                    "portMappings": [{"containerPort": 3000, "hostPort": 3000, "protocol": "tcp"}],
                    "environment": [],
                    "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/shop-api"}}
                }]
            }
        });
        serde_json::from_value(answer["taskDefinition"].clone()).unwrap()
    }

    /// A `DescribeTasks` answer: one running task of `revision` whose container api reports `digest`.
    fn describe_tasks(task: &str, revision: u32, digest: Option<&str>) -> Vec<Task> {
        let mut container = serde_json::json!({
            "containerArn": format!("arn:aws:ecs:us-east-1:222222222222:container/production/{task}/5f2c"),
            "taskArn": format!("arn:aws:ecs:us-east-1:222222222222:task/production/{task}"),
            "name": "api",
            "image": "ignored: the task definition's image is the one checked",
            "runtimeId": format!("{task}-2531612879"),
            "lastStatus": "RUNNING",
            "healthStatus": "HEALTHY",
            "cpu": "0"
        });
        if let Some(digest) = digest {
            container["imageDigest"] = digest.into();
        }
        let answer = serde_json::json!({
            "failures": [],
            "tasks": [{
                "taskArn": format!("arn:aws:ecs:us-east-1:222222222222:task/production/{task}"),
                "clusterArn": "arn:aws:ecs:us-east-1:222222222222:cluster/production",
                "taskDefinitionArn": task_definition_arn(revision),
                "group": "service:shop-api",
                "startedBy": "ecs-svc/891637824176120",
                "lastStatus": "RUNNING",
                "desiredStatus": "RUNNING",
                "launchType": "FARGATE",
                "containers": [container]
            }]
        });
        serde_json::from_value(answer["tasks"].clone()).unwrap()
    }

    fn service(deployments: &[(&str, u32)], images: &[(u32, &str)], tasks: Vec<Task>) -> Service {
        Service {
            cluster: "production".into(),
            name: "shop-api".into(),
            deployments: describe_services(deployments),
            task_definitions: images
                .iter()
                .map(|(revision, image)| describe_task_definition(*revision, image))
                .collect(),
            tasks,
        }
    }

    /// The production registry as it should be: every release tag on its recorded digest, each an image.
    fn production_as_recorded(
        service: &Service,
        releases: &Releases,
    ) -> HashMap<String, Production> {
        release_images(service, &releases.records)
            .into_iter()
            .map(|(tag, recorded)| {
                let held = Production {
                    tagged: Some(recorded),
                    children: Vec::new(),
                };
                (tag.to_string(), held)
            })
            .collect()
    }

    fn tagged(tag: &str) -> String {
        format!("{PRODUCTION}/api:{tag}")
    }

    /// A task definition whose container api runs `image`, beside a FireLens log router and an X-Ray daemon
    /// from public registries, named as task definitions name them.
    fn with_sidecars(revision: u32, image: &str) -> TaskDefinition {
        let mut definition = describe_task_definition(revision, image);
        for (name, image) in [
            (
                "log_router",
                "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable",
            ),
            ("xray-daemon", "amazon/aws-xray-daemon"),
        ] {
            definition.container_definitions.push(ContainerDefinition {
                name: name.into(),
                image: image.into(),
            });
        }
        definition
    }

    #[test]
    fn sidecars_are_listed_never_judged_and_a_released_container_is_still() {
        let releases = ledger();
        let mut service = service(&[("PRIMARY", 2)], &[], Vec::new());
        service.task_definitions = vec![with_sidecars(2, &tagged("v1.1.0"))];
        let production = production_as_recorded(&service, &releases);

        let clean = report(&service, &releases, &production);

        assert_eq!(clean.drift, Vec::<String>::new());
        let checks: Vec<(&str, Check)> = clean.deployments[0]
            .containers
            .iter()
            .map(|c| (c.name.as_str(), c.check))
            .collect();
        assert_eq!(
            checks,
            [
                ("api", Check::Ok),
                ("log_router", Check::Sidecar),
                ("xray-daemon", Check::Sidecar)
            ]
        );

        service.task_definitions = vec![with_sidecars(2, "amazon/aws-xray-daemon")];
        let drifted = report(&service, &releases, &production);

        assert_eq!(drifted.drift.len(), 1, "{:?}", drifted.drift);
        assert!(
            drifted.drift[0].contains("container api")
                && drifted.drift[0].contains("amazon/aws-xray-daemon"),
            "{:?}",
            drifted.drift
        );
    }

    #[test]
    fn a_release_only_promoted_in_the_second_of_another_s_deploy_is_no_rollback() {
        let mut releases = ledger();
        // One run promoted v1.0.0 and v1.1.0 in the second it deployed v1.1.0; only v1.1.0 was deployed.
        releases.records[1].promoted_at = Some("2026-11-20T10:00:00Z".into());
        releases.records[1].deploys.clear();
        let service = service(&[("PRIMARY", 2)], &[(2, &tagged("v1.1.0"))], Vec::new());
        let production = production_as_recorded(&service, &releases);

        let report = report(&service, &releases, &production);

        assert_eq!(report.notes, Vec::<String>::new());
        assert_eq!(report.drift, Vec::<String>::new());
    }

    #[test]
    fn a_service_running_its_latest_release_with_the_recorded_digest_is_clean() {
        let releases = ledger();
        let service = service(
            &[("PRIMARY", 2)],
            &[(2, &tagged("v1.1.0"))],
            describe_tasks("a1b2c3", 2, Some(&digest("bb").to_string())),
        );
        let production = production_as_recorded(&service, &releases);

        let report = report(&service, &releases, &production);

        assert_eq!(report.drift, Vec::<String>::new());
        assert_eq!(report.notes, Vec::<String>::new());
        assert!(Drift::in_findings(&report.drift).is_ok());
        let deployment = &report.deployments[0];
        assert_eq!(
            (
                deployment.status.as_str(),
                deployment.task_definition.as_str()
            ),
            ("PRIMARY", "shop-api:2")
        );
        let container = &deployment.containers[0];
        assert_eq!(container.check, Check::Ok);
        assert_eq!(
            container.running,
            [Running {
                task: "a1b2c3".into(),
                digest: Some(digest("bb").to_string())
            }]
        );
        let release = container.release.as_ref().unwrap();
        assert_eq!(
            (
                release.tag.as_str(),
                release.commit.as_str(),
                release.matched_by
            ),
            ("v1.1.0", NEW, MatchedBy::Tag)
        );
        assert_eq!(release.production_digest, Some(digest("bb")));
        assert_eq!(
            release.last_deployed_at.as_deref(),
            Some("2026-11-20T10:00:00Z")
        );
        assert_eq!(release.build_arn.as_deref(), Some(BUILD));
    }

    /// v1.1.0 recorded as an index (bb…) of two platform manifests (b1…, b2…), its tag still on it.
    fn multi_platform(service: &Service, releases: &Releases) -> HashMap<String, Production> {
        let mut production = production_as_recorded(service, releases);
        production.get_mut(&tagged("v1.1.0")).unwrap().children = vec![digest("b1"), digest("b2")];
        production
    }

    #[test]
    fn a_running_digest_other_than_the_recorded_one_is_drift_naming_container_task_and_digests() {
        let releases = ledger();
        let intruder = digest("cc").to_string();
        let service = service(
            &[("PRIMARY", 2)],
            &[(2, &tagged("v1.1.0"))],
            describe_tasks("a1b2c3", 2, Some(&intruder)),
        );
        for (production, says) in [
            (production_as_recorded(&service, &releases), "v1.1.0"),
            (
                multi_platform(&service, &releases),
                "nor any of the 2 manifests it lists",
            ),
        ] {
            let report = report(&service, &releases, &production);

            assert_eq!(report.drift.len(), 1, "{:?}", report.drift);
            let finding = &report.drift[0];
            for named in [
                "container api",
                "task a1b2c3",
                &intruder,
                &digest("bb").to_string(),
                "v1.1.0",
                says,
            ] {
                assert!(finding.contains(named), "names {named}: {finding}");
            }
            assert_eq!(report.deployments[0].containers[0].check, Check::Drift);
            assert!(Drift::in_findings(&report.drift).is_err());
        }
    }

    #[test]
    fn a_multi_platform_release_whose_tasks_report_the_index_or_a_platform_manifest_is_clean() {
        let releases = ledger();
        let mut tasks = describe_tasks("a1b2c3", 2, Some(&digest("b2").to_string()));
        tasks.extend(describe_tasks("d4e5f6", 2, Some(&digest("bb").to_string())));
        let service = service(&[("PRIMARY", 2)], &[(2, &tagged("v1.1.0"))], tasks);
        let production = multi_platform(&service, &releases);

        let report = report(&service, &releases, &production);

        assert_eq!(report.drift, Vec::<String>::new());
        assert_eq!(report.notes, Vec::<String>::new());
        let container = &report.deployments[0].containers[0];
        assert_eq!(container.check, Check::Ok);
        assert_eq!(container.running.len(), 2);
    }

    #[test]
    fn tasks_that_report_no_digest_leave_it_unchecked_and_say_so() {
        let releases = ledger();
        let service = service(
            &[("PRIMARY", 2)],
            &[(2, &tagged("v1.1.0"))],
            describe_tasks("a1b2c3", 2, None),
        );
        let production = production_as_recorded(&service, &releases);

        let report = report(&service, &releases, &production);

        assert_eq!(report.drift, Vec::<String>::new());
        assert_eq!(report.notes.len(), 1, "{:?}", report.notes);
        assert!(report.notes[0].contains("unchecked"), "{:?}", report.notes);
    }

    #[test]
    fn a_pinned_digest_deploy_maps_to_its_release_by_digest() {
        let releases = ledger();
        let pinned = format!("{PRODUCTION}/api@{}", digest("aa"));
        let service = service(
            &[("PRIMARY", 1)],
            &[(1, &pinned)],
            describe_tasks("a1b2c3", 1, Some(&digest("aa").to_string())),
        );
        let production = production_as_recorded(&service, &releases);
        assert_eq!(
            production.keys().collect::<Vec<_>>(),
            [&tagged("v1.0.0")],
            "the release's tag is checked too"
        );

        let report = report(&service, &releases, &production);

        let release = report.deployments[0].containers[0]
            .release
            .as_ref()
            .unwrap();
        assert_eq!(
            (release.tag.as_str(), release.matched_by),
            ("v1.0.0", MatchedBy::Digest)
        );
        assert_eq!(report.drift, Vec::<String>::new());
        // Pinned to the older release while v1.1.0 shipped last: a rollback, named.
        assert_eq!(report.notes.len(), 1, "{:?}", report.notes);
    }

    #[test]
    fn an_earlier_revision_running_a_recorded_release_is_a_rollback_not_drift() {
        let releases = ledger();
        let service = service(
            &[("PRIMARY", 1), ("ACTIVE", 2)],
            &[(1, &tagged("v1.0.0")), (2, &tagged("v1.1.0"))],
            Vec::new(),
        );
        let production = production_as_recorded(&service, &releases);

        let report = report(&service, &releases, &production);

        assert_eq!(report.drift, Vec::<String>::new());
        let tags: Vec<(&str, &str)> = report
            .deployments
            .iter()
            .map(|d| {
                (
                    d.status.as_str(),
                    d.containers[0].release.as_ref().unwrap().tag.as_str(),
                )
            })
            .collect();
        assert_eq!(
            tags,
            [("PRIMARY", "v1.0.0"), ("ACTIVE", "v1.1.0")],
            "both deployments shown"
        );
        assert_eq!(report.notes.len(), 1, "{:?}", report.notes);
        let note = &report.notes[0];
        for named in [
            "rolled back outside ecr-promote",
            "shop-api:1",
            "release v1.0.0",
            "v1.1.0",
        ] {
            assert!(note.contains(named), "names {named}: {note}");
        }
    }

    #[test]
    fn a_staging_image_is_drift_naming_the_commit_and_the_release_to_deploy() {
        let releases = ledger();
        let staging_image = format!("{STAGING}/api:{NEW}");
        let pointed = service(&[("PRIMARY", 3)], &[(3, &staging_image)], Vec::new());
        let production = production_as_recorded(&pointed, &releases);
        assert!(production.is_empty());

        let report = report(&pointed, &releases, &production);

        assert_eq!(report.drift.len(), 1, "{:?}", report.drift);
        let finding = &report.drift[0];
        for named in [
            "container api",
            &staging_image,
            "no recorded release",
            "staging image of commit",
            "v1.1.0",
        ] {
            assert!(finding.contains(named), "names {named}: {finding}");
        }
        assert!(report.deployments[0].containers[0].release.is_none());
        assert_eq!(report.notes, Vec::<String>::new());

        // An unreadable ledger item might have been its release: said, for `audit` to list.
        let mut damaged = ledger();
        damaged.unreadable.push(crate::ledger::Unreadable {
            table: "releases".into(),
            tag: "v0.9.0".into(),
            problem: "field commit is missing".into(),
        });
        let notes = super::report(&pointed, &damaged, &production).notes;
        assert!(
            notes.len() == 1 && notes[0].contains("ecr-promote audit"),
            "{notes:?}"
        );

        for (image, says) in [
            (format!("{STAGING}/api:latest"), "it is a staging image"),
            (tagged("hotfix"), "no release recorded it"),
            (
                "nginx:1.27".to_owned(),
                "no repository that ecr-promote promotes to",
            ),
            (
                "public.ecr.aws/nginx/nginx:1.27".to_owned(),
                "no repository that ecr-promote promotes to",
            ),
        ] {
            let other = service(&[("PRIMARY", 3)], &[(3, &image)], Vec::new());
            let drift = super::report(&other, &releases, &HashMap::new()).drift;
            assert_eq!(drift.len(), 1, "{drift:?}");
            assert!(
                drift[0].contains(&image) && drift[0].contains(says),
                "{image}: {drift:?}"
            );
        }
    }

    #[test]
    fn a_release_tag_moved_or_gone_in_production_is_drift() {
        let releases = ledger();
        let service = service(&[("PRIMARY", 2)], &[(2, &tagged("v1.1.0"))], Vec::new());
        for (now, says) in [(Some(digest("cc")), "is now on"), (None, "is gone")] {
            let production = HashMap::from([(
                tagged("v1.1.0"),
                Production {
                    tagged: now,
                    children: Vec::new(),
                },
            )]);

            let report = report(&service, &releases, &production);

            assert_eq!(report.drift.len(), 1, "{:?}", report.drift);
            let finding = &report.drift[0];
            for named in [
                "container api",
                &tagged("v1.1.0"),
                says,
                &digest("bb").to_string(),
            ] {
                assert!(finding.contains(named), "names {named}: {finding}");
            }
        }
    }
}
