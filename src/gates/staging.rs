//! Reading what staging ran, for the soak gate: the staging service's current deployments (`DescribeServices`,
//! their task definitions, the running tasks' digests), its deployment history when the image is no longer
//! among them (`ListServiceDeployments`, `DescribeServiceRevisions`), and the named CloudWatch alarms. Reads
//! only, with the staging read role when one is set. One read of the service serves every image of a release.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, bail};
use time::OffsetDateTime;

use super::soak::{Observation, Origin, Ran};
use crate::ecs::EcsReads;

/// The staging service as read once for a release: each current deployment with the digests it ran.
pub struct Service {
    name: String,
    current: Vec<(Ran, BTreeSet<String>)>,
    alarms: BTreeMap<String, String>,
}

/// `DescribeServiceRevisions` takes at most this many ARNs a call.
const REVISIONS_PER_CALL: usize = 20;
/// How far back ECS keeps a service's deployments.
const HISTORY_DAYS: i64 = 90;

pub struct Staging {
    reads: EcsReads,
    /// The service's history (ListServiceDeployments, DescribeServiceRevisions), read only here.
    ecs: aws_sdk_ecs::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
    cluster: String,
    service: String,
}

fn instant(t: Option<&aws_smithy_types::DateTime>) -> Option<OffsetDateTime> {
    t.and_then(|t| OffsetDateTime::from_unix_timestamp_nanos(t.as_nanos()).ok())
}

impl Staging {
    /// `config`: acting in the staging account (the staging read role when one is set).
    pub fn new(config: &aws_config::SdkConfig, cluster: &str, service: &str) -> Staging {
        Staging {
            reads: EcsReads::new(config),
            ecs: aws_sdk_ecs::Client::new(config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(config),
            cluster: cluster.to_owned(),
            service: service.to_owned(),
        }
    }

    fn fix(&self, action: &str) -> String {
        format!(
            "reading staging service {} in cluster {} for the soak gate: check PROMOTE_STAGING_CLUSTER, \
             PROMOTE_STAGING_SERVICE and {action} for PROMOTE_STAGING_READ_ROLE_ARN",
            self.service, self.cluster
        )
    }

    /// The service's current deployments with the digests each ran, and the alarms' states.
    pub async fn read(&self, alarms: &[String]) -> Result<Service> {
        let fix = |action: &str| self.fix(action);
        let Ok(found) = self
            .reads
            .service(&self.cluster, &self.service, fix)
            .await?
        else {
            bail!(
                "staging service {} is not in cluster {}: check PROMOTE_STAGING_SERVICE and PROMOTE_STAGING_CLUSTER",
                self.service,
                self.cluster
            );
        };
        let primary_since = found
            .deployments()
            .iter()
            .find(|d| d.status() == Some("PRIMARY"))
            .and_then(|d| instant(d.created_at()));
        let digests = self.running_digests(fix).await?;
        let mut current = Vec::new();
        for d in found.deployments() {
            let id = d.id().unwrap_or_default().to_owned();
            let Some(created_at) = instant(d.created_at()) else {
                continue;
            };
            let mut ran: BTreeSet<String> = digests.get(&id).cloned().unwrap_or_default();
            if let Some(definition) = d.task_definition() {
                ran.extend(self.pinned_digests(definition, fix).await?);
            }
            let primary = d.status() == Some("PRIMARY");
            current.push((
                Ran {
                    id,
                    origin: Origin::Current,
                    state: d
                        .rollout_state()
                        .map_or("UNKNOWN", |s| s.as_str())
                        .to_owned(),
                    created_at,
                    updated_at: instant(d.updated_at()),
                    replaced_at: if primary { None } else { primary_since },
                    running_tasks: d.running_count().into(),
                    failed_tasks: d.failed_tasks().into(),
                },
                ran,
            ));
        }
        current.sort_by_key(|(ran, _)| std::cmp::Reverse(ran.created_at));
        Ok(Service {
            name: format!("{}/{}", self.cluster, self.service),
            current,
            alarms: self.alarm_states(alarms).await?,
        })
    }

    /// What staging ran of `digest`: its current deployments, else its deployment history.
    pub async fn observe(&self, service: &Service, digest: &str) -> Result<Observation> {
        let mut ran: Vec<Ran> = service
            .current
            .iter()
            .filter(|(_, digests)| digests.contains(digest))
            .map(|(ran, _)| ran.clone())
            .collect();
        if ran.is_empty() {
            ran = self.history(digest).await?;
        }
        Ok(Observation {
            service: service.name.clone(),
            ran,
            alarms: service.alarms.clone(),
        })
    }

    /// The running tasks' digests, by the deployment that started them (a service's task is `startedBy` its
    /// deployment's id).
    async fn running_digests(
        &self,
        fix: impl Fn(&str) -> String,
    ) -> Result<BTreeMap<String, BTreeSet<String>>> {
        let mut by_deployment: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for task in self.reads.tasks(&self.cluster, &self.service, fix).await? {
            let digests = by_deployment
                .entry(task.started_by().unwrap_or_default().to_owned())
                .or_default();
            digests.extend(
                task.containers()
                    .iter()
                    .filter_map(|c| c.image_digest().map(str::to_owned)),
            );
        }
        Ok(by_deployment)
    }

    /// The digests a task definition names its images by (`repo@sha256:…`); an image named by tag says nothing
    /// of its digest until a task has pulled it.
    async fn pinned_digests(
        &self,
        definition: &str,
        fix: impl Fn(&str) -> String,
    ) -> Result<Vec<String>> {
        Ok(self
            .reads
            .containers(definition, fix)
            .await?
            .iter()
            .filter_map(|c| c.image()?.split_once('@').map(|(_, d)| d.to_owned()))
            .collect())
    }

    /// The service's deployments of the last 90 days whose revision ran `digest`, newest first, each replaced
    /// when the next one was created.
    async fn history(&self, digest: &str) -> Result<Vec<Ran>> {
        let since = OffsetDateTime::now_utc() - time::Duration::days(HISTORY_DAYS);
        let mut deployments = Vec::new();
        let mut next_token = None;
        loop {
            let page = self
                .ecs
                .list_service_deployments()
                .cluster(&self.cluster)
                .service(&self.service)
                .created_at(
                    aws_sdk_ecs::types::CreatedAt::builder()
                        .after(aws_smithy_types::DateTime::from_secs(
                            since.unix_timestamp(),
                        ))
                        .build(),
                )
                .set_next_token(next_token)
                .send()
                .await
                .map_err(crate::aws::sdk_error)
                .with_context(|| self.fix("ecs:ListServiceDeployments"))?;
            deployments.extend(page.service_deployments().iter().cloned());
            next_token = page.next_token().map(str::to_owned);
            if next_token.is_none() {
                break;
            }
        }
        deployments.sort_by_key(|d| instant(d.created_at()));
        let revisions: Vec<String> = deployments
            .iter()
            .filter_map(|d| d.target_service_revision_arn().map(str::to_owned))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut with_digest = BTreeSet::new();
        for chunk in revisions.chunks(REVISIONS_PER_CALL) {
            let answer = self
                .ecs
                .describe_service_revisions()
                .set_service_revision_arns(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(crate::aws::sdk_error)
                .with_context(|| self.fix("ecs:DescribeServiceRevisions"))?;
            for revision in answer.service_revisions() {
                if revision
                    .container_images()
                    .iter()
                    .any(|c| c.image_digest() == Some(digest))
                {
                    with_digest.extend(revision.service_revision_arn().map(str::to_owned));
                }
            }
        }
        let mut ran = Vec::new();
        for (i, d) in deployments.iter().enumerate() {
            let Some(created_at) = instant(d.created_at()) else {
                continue;
            };
            if !d
                .target_service_revision_arn()
                .is_some_and(|r| with_digest.contains(r))
            {
                continue;
            }
            ran.push(Ran {
                id: d.service_deployment_arn().unwrap_or_default().to_owned(),
                origin: Origin::History,
                state: d.status().map_or("UNKNOWN", |s| s.as_str()).to_owned(),
                created_at,
                updated_at: instant(d.finished_at()),
                replaced_at: deployments
                    .get(i + 1)
                    .and_then(|next| instant(next.created_at())),
                running_tasks: 0,
                failed_tasks: 0,
            });
        }
        ran.reverse();
        Ok(ran)
    }

    /// Each named alarm's state; `MISSING` for a name staging has no alarm by.
    async fn alarm_states(&self, names: &[String]) -> Result<BTreeMap<String, String>> {
        let mut states: BTreeMap<String, String> = names
            .iter()
            .map(|n| (n.clone(), "MISSING".to_owned()))
            .collect();
        // DescribeAlarms takes at most 100 names a call.
        for chunk in names.chunks(100) {
            let answer = self
                .cloudwatch
                .describe_alarms()
                .set_alarm_names(Some(chunk.to_vec()))
                .alarm_types(aws_sdk_cloudwatch::types::AlarmType::MetricAlarm)
                .alarm_types(aws_sdk_cloudwatch::types::AlarmType::CompositeAlarm)
                .send()
                .await
                .map_err(crate::aws::sdk_error)
                .with_context(|| {
                    "reading staging's alarms (PROMOTE_GATE_STAGING_ALARMS): check cloudwatch:DescribeAlarms \
                     for PROMOTE_STAGING_READ_ROLE_ARN"
                })?;
            let metric = answer
                .metric_alarms()
                .iter()
                .map(|a| (a.alarm_name(), a.state_value()));
            let composite = answer
                .composite_alarms()
                .iter()
                .map(|a| (a.alarm_name(), a.state_value()));
            for (name, state) in metric.chain(composite) {
                if let (Some(name), Some(state)) = (name, state) {
                    states.insert(name.to_owned(), state.as_str().to_owned());
                }
            }
        }
        Ok(states)
    }
}
