//! The ECS reads that `status` and `settle` (the production service) and the soak gate (the staging service)
//! share: a service, a task definition's containers, a service's running tasks. They return the SDK's types;
//! each caller keeps its own view of them and words its own errors, `fix` naming the settings and the
//! permission to check.

use anyhow::{Context, Result};
use aws_sdk_ecs::types::{ContainerDefinition, Service, Task};

/// `DescribeTasks` takes at most this many tasks a call.
const TASKS_PER_CALL: usize = 100;

pub struct EcsReads {
    client: aws_sdk_ecs::Client,
}

impl EcsReads {
    pub fn new(config: &aws_config::SdkConfig) -> EcsReads {
        EcsReads {
            client: aws_sdk_ecs::Client::new(config),
        }
    }

    /// Service `name` of `cluster` unless ECS knows it only as INACTIVE (deleted); else ECS's reasons for
    /// not finding it (none for an inactive one).
    pub async fn service(
        &self,
        cluster: &str,
        name: &str,
        fix: impl Fn(&str) -> String,
    ) -> Result<Result<Service, Vec<String>>> {
        let answer = self
            .client
            .describe_services()
            .cluster(cluster)
            .services(name)
            .send()
            .await
            .map_err(crate::aws::sdk_error)
            .with_context(|| fix("ecs:DescribeServices"))?;
        Ok(answer
            .services()
            .iter()
            .find(|s| s.status() != Some("INACTIVE"))
            .cloned()
            .ok_or_else(|| {
                answer
                    .failures()
                    .iter()
                    .filter_map(|f| f.reason().map(str::to_owned))
                    .collect()
            }))
    }

    /// The containers task definition `arn` defines.
    pub async fn containers(
        &self,
        arn: &str,
        fix: impl Fn(&str) -> String,
    ) -> Result<Vec<ContainerDefinition>> {
        let answer = self
            .client
            .describe_task_definition()
            .task_definition(arn)
            .send()
            .await
            .map_err(crate::aws::sdk_error)
            .with_context(|| fix("ecs:DescribeTaskDefinition"))?;
        Ok(answer
            .task_definition()
            .map(|t| t.container_definitions().to_vec())
            .unwrap_or_default())
    }

    /// Every running task of service `name` of `cluster`.
    pub async fn tasks(
        &self,
        cluster: &str,
        name: &str,
        fix: impl Fn(&str) -> String,
    ) -> Result<Vec<Task>> {
        let mut arns = Vec::new();
        let mut pages = self
            .client
            .list_tasks()
            .cluster(cluster)
            .service_name(name)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page
                .map_err(crate::aws::sdk_error)
                .with_context(|| fix("ecs:ListTasks"))?;
            arns.extend(page.task_arns().iter().cloned());
        }
        let mut tasks = Vec::new();
        for chunk in arns.chunks(TASKS_PER_CALL) {
            let answer = self
                .client
                .describe_tasks()
                .cluster(cluster)
                .set_tasks(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(crate::aws::sdk_error)
                .with_context(|| fix("ecs:DescribeTasks"))?;
            tasks.extend(answer.tasks().iter().cloned());
        }
        Ok(tasks)
    }
}
