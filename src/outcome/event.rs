//! ECS's deployment state-change events, as the stack's EventBridge rule delivers them to the outcomes queue.
//!
//! ECS publishes one `ECS Deployment State Change` event (source `aws.ecs`) each time a deployment of a service
//! using the rolling-update (ECS) deployment controller changes state, at least once and possibly out of
//! order. The event, as AWS documents it ("Amazon ECS service deployment state change events"):
//!
//! ```json
//! {"version": "0", "id": "…", "detail-type": "ECS Deployment State Change", "source": "aws.ecs",
//!  "account": "222222222222", "time": "2026-12-04T10:02:14Z", "region": "us-east-1",
//!  "resources": ["arn:aws:ecs:us-east-1:222222222222:service/production/shop-api"],
//!  "detail": {"eventType": "ERROR", "eventName": "SERVICE_DEPLOYMENT_FAILED",
//!             "deploymentId": "ecs-svc/1234567890123456789", "updatedAt": "2026-12-04T10:02:11Z",
//!             "reason": "ECS deployment circuit breaker: task failed to start."}}
//! ```
//!
//! `eventName` is `SERVICE_DEPLOYMENT_IN_PROGRESS` (`eventType` INFO; also sent when the circuit breaker
//! starts a rollback, whose deployment is a new one), `SERVICE_DEPLOYMENT_COMPLETED` (INFO: the deployment
//! reached steady state) or `SERVICE_DEPLOYMENT_FAILED` (ERROR: the circuit breaker tripped, with or without
//! rollback). The event names no task definition: which release it is about comes from the ledger (a
//! deployment already tied to a deploy) or from `DescribeServices`.

use serde::Deserialize;

use crate::ledger::OutcomeState;
use crate::timestamp::Timestamp;

/// One deployment's state change, as far as an outcome needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct DeploymentEvent {
    /// The service's ARN (`resources[0]`).
    pub service_arn: String,
    pub deployment_id: String,
    pub state: OutcomeState,
    pub updated_at: Option<Timestamp>,
    pub reason: Option<String>,
}

#[derive(Deserialize)]
struct Envelope {
    source: String,
    #[serde(rename = "detail-type")]
    detail_type: String,
    #[serde(default)]
    resources: Vec<String>,
    detail: Detail,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Detail {
    event_name: String,
    deployment_id: String,
    #[serde(default)]
    updated_at: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

impl DeploymentEvent {
    /// The deployment state change a queue message holds, or why it is not one.
    pub fn parse(body: &str) -> Result<DeploymentEvent, String> {
        let event: Envelope = serde_json::from_str(body)
            .map_err(|e| format!("not an ECS Deployment State Change event ({e})"))?;
        if event.source != "aws.ecs" || event.detail_type != "ECS Deployment State Change" {
            return Err(format!(
                "an event of source {:?} and detail-type {:?}, not aws.ecs's ECS Deployment State Change",
                event.source, event.detail_type
            ));
        }
        let detail = event.detail;
        let state = match detail.event_name.as_str() {
            "SERVICE_DEPLOYMENT_IN_PROGRESS" => OutcomeState::InProgress,
            "SERVICE_DEPLOYMENT_COMPLETED" => OutcomeState::Completed,
            "SERVICE_DEPLOYMENT_FAILED" => OutcomeState::Failed,
            other => {
                return Err(format!(
                    "eventName {other:?} is no deployment state ecr-promote knows"
                ));
            }
        };
        Ok(DeploymentEvent {
            service_arn: event
                .resources
                .into_iter()
                .next()
                .ok_or("the event names no service in resources")?,
            deployment_id: detail.deployment_id,
            state,
            updated_at: detail.updated_at.and_then(|t| t.parse().ok()),
            reason: detail.reason,
        })
    }

    /// Whether the event is about service `service` of cluster `cluster` (each a name or an ARN). Service ARNs
    /// are `…:service/<cluster>/<service>`, or `…:service/<service>` in the format before 2021.
    pub fn concerns(&self, cluster: &str, service: &str) -> bool {
        let last = |text: &str| text.rsplit('/').next().unwrap_or(text).to_owned();
        let (cluster, service) = (last(cluster), last(service));
        self.service_arn
            .ends_with(&format!(":service/{cluster}/{service}"))
            || self.service_arn.ends_with(&format!(":service/{service}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str) -> String {
        serde_json::json!({
            "version": "0", "id": "ddca6449-b258-46c0-8653-e0e3a0000000",
            "detail-type": "ECS Deployment State Change", "source": "aws.ecs",
            "account": "222222222222", "time": "2026-12-04T10:02:14Z", "region": "us-east-1",
            "resources": ["arn:aws:ecs:us-east-1:222222222222:service/production/shop-api"],
            "detail": {"eventType": "ERROR", "eventName": name, "deploymentId": "ecs-svc/123",
                       "updatedAt": "2026-12-04T10:02:11Z",
                       "reason": "ECS deployment circuit breaker: task failed to start."}
        })
        .to_string()
    }

    #[test]
    fn reads_each_deployment_state_and_the_service_it_is_about() {
        for (name, state) in [
            ("SERVICE_DEPLOYMENT_IN_PROGRESS", OutcomeState::InProgress),
            ("SERVICE_DEPLOYMENT_COMPLETED", OutcomeState::Completed),
            ("SERVICE_DEPLOYMENT_FAILED", OutcomeState::Failed),
        ] {
            let read = DeploymentEvent::parse(&event(name)).unwrap();
            assert_eq!(read.state, state);
            assert_eq!(read.deployment_id, "ecs-svc/123");
            assert_eq!(read.updated_at.unwrap().to_string(), "2026-12-04T10:02:11Z");
            assert!(read.concerns("production", "shop-api"));
            assert!(read.concerns(
                "arn:aws:ecs:us-east-1:222222222222:cluster/production",
                "arn:aws:ecs:us-east-1:222222222222:service/production/shop-api"
            ));
            assert!(!read.concerns("production", "shop-web"));
            assert!(!read.concerns("staging", "shop-api"));
        }
    }

    #[test]
    fn anything_else_is_named() {
        let problem = DeploymentEvent::parse(&event("SERVICE_TASK_START_IMPAIRED")).unwrap_err();
        assert!(problem.contains("SERVICE_TASK_START_IMPAIRED"), "{problem}");
        let other = event("SERVICE_DEPLOYMENT_COMPLETED").replace("aws.ecs", "ecr-promote");
        assert!(
            DeploymentEvent::parse(&other)
                .unwrap_err()
                .contains("ecr-promote")
        );
        assert!(DeploymentEvent::parse("{}").is_err());
    }
}
