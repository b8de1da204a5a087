//! Reading the production service from ECS: its deployments (or a blue/green service's task sets), their task
//! definitions' containers and the running tasks' digests. Reads only.

use std::collections::BTreeSet;

use anyhow::{Result, bail};
use serde::Deserialize;

use crate::ecs::EcsReads;

use crate::timestamp::Timestamp;

/// One deployment of the service, as `DescribeServices` gives it.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub id: String,
    /// PRIMARY (the newest), ACTIVE (older, its tasks still running), or INACTIVE.
    pub status: String,
    /// The task definition's ARN.
    pub task_definition: String,
    #[serde(default)]
    pub rollout_state: Option<String>,
    /// ECS's words on the rollout (why it failed, when it did).
    #[serde(default)]
    pub rollout_state_reason: Option<String>,
    /// When ECS created it: the deploy it rolls out is the one recorded last before then.
    #[serde(default, deserialize_with = "epoch_seconds")]
    pub created_at: Option<Timestamp>,
    /// When its state last changed (for a completed rollout, when it completed).
    #[serde(default, deserialize_with = "epoch_seconds")]
    pub updated_at: Option<Timestamp>,
    #[serde(default)]
    pub desired_count: i32,
    #[serde(default)]
    pub running_count: i32,
}

/// ECS's JSON times: seconds since the epoch.
fn epoch_seconds<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Timestamp>, D::Error> {
    Ok(Option::<f64>::deserialize(deserializer)?.and_then(Timestamp::from_epoch_seconds))
}

fn instant(time: Option<&aws_sdk_ecs::primitives::DateTime>) -> Option<Timestamp> {
    time.and_then(|t| Timestamp::from_epoch_seconds(t.as_secs_f64()))
}

/// A task definition's containers, as `DescribeTaskDefinition` gives them.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinition {
    pub task_definition_arn: String,
    pub container_definitions: Vec<ContainerDefinition>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ContainerDefinition {
    pub name: String,
    pub image: String,
}

/// A running task, as `DescribeTasks` gives it.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub task_arn: String,
    pub task_definition_arn: String,
    #[serde(default)]
    pub containers: Vec<TaskContainer>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskContainer {
    pub name: String,
    /// The digest the container was started from; ECS leaves it out until it has pulled the image.
    #[serde(default)]
    pub image_digest: Option<String>,
}

/// What ECS says about one service.
#[derive(Clone, Debug)]
pub struct Service {
    pub cluster: String,
    pub name: String,
    pub deployments: Vec<Deployment>,
    pub task_definitions: Vec<TaskDefinition>,
    pub tasks: Vec<Task>,
}

/// The service's deployments; a blue/green (CodeDeploy) service has task sets instead, read the same way
/// (PRIMARY, ACTIVE or DRAINING, its stability for the rollout).
fn deployments_of(service: &aws_sdk_ecs::types::Service) -> Vec<Deployment> {
    let deployments = service.deployments().iter().map(|d| Deployment {
        id: d.id().unwrap_or_default().to_owned(),
        status: d.status().unwrap_or_default().to_owned(),
        task_definition: d.task_definition().unwrap_or_default().to_owned(),
        rollout_state: d.rollout_state().map(|s| s.as_str().to_owned()),
        rollout_state_reason: d.rollout_state_reason().map(str::to_owned),
        created_at: instant(d.created_at()),
        updated_at: instant(d.updated_at()),
        desired_count: d.desired_count(),
        running_count: d.running_count(),
    });
    let task_sets = service.task_sets().iter().map(|s| Deployment {
        id: s.id().unwrap_or_default().to_owned(),
        status: s.status().unwrap_or_default().to_owned(),
        task_definition: s.task_definition().unwrap_or_default().to_owned(),
        rollout_state: s.stability_status().map(|s| s.as_str().to_owned()),
        rollout_state_reason: None,
        created_at: instant(s.created_at()),
        updated_at: instant(s.updated_at()),
        desired_count: s.computed_desired_count(),
        running_count: s.running_count(),
    });
    deployments.chain(task_sets).collect()
}

/// The ECS calls `status` makes, all reads.
pub struct Ecs {
    reads: EcsReads,
}

impl Ecs {
    pub fn new(config: &aws_config::SdkConfig) -> Ecs {
        Ecs {
            reads: EcsReads::new(config),
        }
    }

    /// The service's deployments, their task definitions and its running tasks.
    pub async fn service(&self, cluster: &str, name: &str) -> Result<Service> {
        let fix = |action: &str| {
            format!(
                "describing service {name} in cluster {cluster}: check PROMOTE_CLUSTER, PROMOTE_SERVICE and \
                 {action}"
            )
        };
        let found = match self.reads.service(cluster, name, fix).await? {
            Ok(found) => found,
            Err(reasons) => bail!(
                "service {name} is not in cluster {cluster} (ECS: {}): check PROMOTE_SERVICE and PROMOTE_CLUSTER",
                if reasons.is_empty() {
                    "inactive".to_owned()
                } else {
                    reasons.join(", ")
                }
            ),
        };
        let deployments = deployments_of(&found);
        if deployments.is_empty() {
            bail!(
                "ECS reports no deployment or task set for service {name} in cluster {cluster}: nothing runs to \
                 check (is it the production service? check PROMOTE_SERVICE)"
            );
        }
        let arns: BTreeSet<&str> = deployments
            .iter()
            .map(|d| d.task_definition.as_str())
            .collect();
        let mut task_definitions = Vec::new();
        for arn in arns {
            let containers = self.reads.containers(arn, fix).await?;
            task_definitions.push(TaskDefinition {
                task_definition_arn: arn.to_owned(),
                container_definitions: containers
                    .iter()
                    .map(|c| ContainerDefinition {
                        name: c.name().unwrap_or_default().to_owned(),
                        image: c.image().unwrap_or_default().to_owned(),
                    })
                    .collect(),
            });
        }
        let tasks = self.reads.tasks(cluster, name, fix).await?;
        Ok(Service {
            cluster: cluster.to_owned(),
            name: name.to_owned(),
            tasks: tasks
                .iter()
                .map(|t| Task {
                    task_arn: t.task_arn().unwrap_or_default().to_owned(),
                    task_definition_arn: t.task_definition_arn().unwrap_or_default().to_owned(),
                    containers: t
                        .containers()
                        .iter()
                        .map(|c| TaskContainer {
                            name: c.name().unwrap_or_default().to_owned(),
                            image_digest: c.image_digest().map(str::to_owned),
                        })
                        .collect(),
                })
                .collect(),
            deployments,
            task_definitions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task_definition_arn(revision: u32) -> String {
        format!("arn:aws:ecs:us-east-1:222222222222:task-definition/shop-api:{revision}")
    }

    #[test]
    fn a_blue_green_service_s_task_sets_are_its_deployments() {
        use aws_sdk_ecs::types::{StabilityStatus, TaskSet};
        let task_set = |id: &str, status: &str, revision: u32| {
            TaskSet::builder()
                .id(id)
                .status(status)
                .task_definition(task_definition_arn(revision))
                .computed_desired_count(2)
                .running_count(1)
                .stability_status(StabilityStatus::Stabilizing)
                .build()
        };
        let service = aws_sdk_ecs::types::Service::builder()
            .service_name("shop-api")
            .task_sets(task_set("ecs-svc/green", "PRIMARY", 2))
            .task_sets(task_set("ecs-svc/blue", "ACTIVE", 1))
            .build();

        let deployments = deployments_of(&service);

        let seen: Vec<(&str, &str, &str)> = deployments
            .iter()
            .map(|d| {
                (
                    d.id.as_str(),
                    d.status.as_str(),
                    d.task_definition
                        .rsplit_once('/')
                        .map_or("", |(_, name)| name),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("ecs-svc/green", "PRIMARY", "shop-api:2"),
                ("ecs-svc/blue", "ACTIVE", "shop-api:1")
            ]
        );
        assert_eq!(deployments[0].rollout_state.as_deref(), Some("STABILIZING"));
        assert_eq!(
            (deployments[0].desired_count, deployments[0].running_count),
            (2, 1)
        );
    }
}
