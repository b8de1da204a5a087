//! Events people can subscribe to: one JSON event on an EventBridge bus for each thing that happened to a
//! release (promoted, refused, deployed, its deploy completed or failed in ECS), to be routed by rules (to SNS, Slack through AWS Chatbot, a queue).
//! Off unless PROMOTE_EVENT_BUS names a bus; a failure to publish is logged and never fails a promotion.
//!
//! The schema is versioned: `detail.schema` is [`SCHEMA`]; a field is only ever added within a version. Every
//! event's `source` is [`SOURCE`] and its `detail-type` one of [`Event::detail_type`]'s. docs/events.md
//! describes each field.

use serde::Serialize;

/// EventBridge's `source` of every event: what a rule's pattern matches on.
pub const SOURCE: &str = "ecr-promote";

/// The version of the events' `detail`.
pub const SCHEMA: &str = "ecr-promote.event/1";

/// The release an event is about.
#[derive(Clone, Debug, Serialize)]
pub struct ReleaseRef {
    pub tag: String,
    /// The commit, once resolved (a refusal may come before).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The GitHub release page, when the release came from a webhook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// One image of a release in production.
#[derive(Clone, Debug, Serialize)]
pub struct ImageRef {
    pub containers: Vec<String>,
    /// `production-repo:tag`.
    pub image: String,
    pub digest: String,
    /// The staging image it was copied from (`staging-repo@sha256:…`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// What happened.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// The release's images are in production and it is recorded.
    ReleasePromoted {
        release: ReleaseRef,
        images: Vec<ImageRef>,
    },
    /// A check refused the release; nothing was written. `check` names it: `gate:<name>`, or `tag` (the
    /// release tag holds another commit or digest).
    ReleaseRefused {
        release: ReleaseRef,
        check: String,
        reason: String,
    },
    /// The deploy files for the release were written and the deploy recorded: ECS deploys it next.
    ReleaseDeployed {
        release: ReleaseRef,
        /// `promote` or `redeploy`.
        deploy: String,
        /// The deploy's number in the table's deploy sequence.
        #[serde(skip_serializing_if = "Option::is_none")]
        sequence: Option<u64>,
        images: Vec<ImageRef>,
    },
    /// ECS completed the rollout of a deploy: every task of it runs.
    DeployCompleted {
        release: ReleaseRef,
        /// `promote` or `redeploy`.
        deploy: String,
        /// The deploy's number in the table's deploy sequence.
        sequence: u64,
        /// The ECS deployment (`ecs-svc/…`) that rolled it out.
        deployment_id: String,
        completed_at: String,
    },
    /// ECS failed to roll out a deploy, and rolled back to `rolled_back_to` when it did.
    DeployFailed {
        release: ReleaseRef,
        deploy: String,
        sequence: u64,
        deployment_id: String,
        failed_at: String,
        /// ECS's reason (the circuit breaker's), when it gave one.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// The release ECS went back to, when it rolled back to a recorded one.
        #[serde(skip_serializing_if = "Option::is_none")]
        rolled_back_to: Option<String>,
    },
    /// What runs in production, or what a release tag holds, is not what was released.
    DriftFound {
        /// `status` (what the service runs) or `audit` (what the release tags hold).
        found_by: String,
        /// The service status checked.
        #[serde(skip_serializing_if = "Option::is_none")]
        service: Option<String>,
        findings: Vec<String>,
    },
}

impl Event {
    /// EventBridge's `detail-type`.
    pub fn detail_type(&self) -> &'static str {
        match self {
            Event::ReleasePromoted { .. } => "Release Promoted",
            Event::ReleaseRefused { .. } => "Release Refused",
            Event::ReleaseDeployed { .. } => "Release Deployed",
            Event::DeployCompleted { .. } => "Deploy Completed",
            Event::DeployFailed { .. } => "Deploy Failed",
            Event::DriftFound { .. } => "Drift Found",
        }
    }

    /// The event's `detail`: the schema version, the kind and its fields, and the build that did it.
    pub fn detail(&self, build_arn: Option<&str>) -> serde_json::Value {
        let mut detail = serde_json::to_value(self).expect("events serialise");
        if let serde_json::Value::Object(fields) = &mut detail {
            fields.insert("schema".into(), SCHEMA.into());
            fields.insert("time".into(), crate::timestamp::now().into());
            if let Some(build) = build_arn {
                fields.insert("build_arn".into(), build.into());
            }
        }
        detail
    }
}

/// Publishes events to one bus, or nowhere.
pub struct Publisher {
    bus: Option<Bus>,
    build_arn: Option<String>,
}

struct Bus {
    client: aws_sdk_eventbridge::Client,
    name: String,
}

impl Publisher {
    /// `bus`: a bus name or ARN; `None` publishes nothing and makes no call.
    pub fn new(
        config: &aws_config::SdkConfig,
        bus: Option<String>,
        build_arn: Option<String>,
    ) -> Publisher {
        Publisher {
            bus: bus.map(|name| Bus {
                client: aws_sdk_eventbridge::Client::new(config),
                name,
            }),
            build_arn,
        }
    }

    /// Publishes `event`. A failure is logged, naming the bus and what to fix, and otherwise ignored: the
    /// promotion it tells of has happened whether or not anyone hears of it.
    pub async fn publish(&self, event: &Event) {
        let Some(Bus { client, name: bus }) = &self.bus else {
            return;
        };
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(bus)
            .source(SOURCE)
            .detail_type(event.detail_type())
            .detail(event.detail(self.build_arn.as_deref()).to_string())
            .build();
        let refused = match client.put_events().entries(entry).send().await {
            Ok(answer) if answer.failed_entry_count() == 0 => None,
            Ok(answer) => Some(
                answer
                    .entries()
                    .iter()
                    .filter_map(|e| e.error_message().or(e.error_code()))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            Err(error) => Some(format!("{:#}", crate::aws::sdk_error(error))),
        };
        match refused {
            None => {
                tracing::info!(bus = %bus, detail_type = event.detail_type(), "published event")
            }
            Some(reason) => tracing::warn!(
                bus = %bus, detail_type = event.detail_type(), %reason,
                "event not published (check PROMOTE_EVENT_BUS and events:PutEvents); the promotion is unaffected"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_detail_carries_the_schema_the_kind_and_the_build() {
        let event = Event::ReleaseRefused {
            release: ReleaseRef {
                tag: "v1.2.0".into(),
                commit: None,
                url: Some("https://github.com/o/r/releases/tag/v1.2.0".into()),
            },
            check: "gate:vulnerabilities".into(),
            reason: "1 finding(s) at or above HIGH".into(),
        };
        let detail = event.detail(Some("arn:aws:codebuild:b"));
        assert_eq!(detail["schema"], SCHEMA);
        assert_eq!(detail["kind"], "release_refused");
        assert_eq!(detail["release"]["tag"], "v1.2.0");
        assert!(detail["release"].get("commit").is_none(), "{detail}");
        assert_eq!(detail["check"], "gate:vulnerabilities");
        assert_eq!(detail["build_arn"], "arn:aws:codebuild:b");
        assert!(detail["time"].is_string());
        assert_eq!(event.detail_type(), "Release Refused");
    }
}
