//! Starting the production pipeline again when a waiting release may pass its gate: a one-time EventBridge
//! Scheduler schedule (`at(…)`, deleted once it has run) whose target is CodePipeline's StartPipelineExecution.
//! The release's message is hidden on the queue until then, so that the run the schedule starts finds it; if
//! the schedule cannot be made, the message still reappears then for whichever run comes next.

use std::time::SystemTime;

use anyhow::{Context, Result};

/// Where and as whom the pipeline is started again.
pub struct Wake {
    scheduler: aws_sdk_scheduler::Client,
    /// The production pipeline's name.
    pipeline: String,
    /// The role EventBridge Scheduler assumes to start it (codepipeline:StartPipelineExecution).
    role: String,
}

/// EventBridge Scheduler's universal target for an SDK call.
const START_PIPELINE: &str = "arn:aws:scheduler:::aws-sdk:codepipeline:startPipelineExecution";

/// The schedule's name: the release tag and the minute, so that two runs waiting on the same release for the
/// same instant make one schedule (the second is told it exists). At most 64 of `[0-9A-Za-z-_.]`.
pub fn schedule_name(tag: &str, at: SystemTime) -> String {
    let minute = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 60);
    let tag: String = tag
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    format!("ecr-promote-{tag}-{minute}")
}

/// `at(yyyy-mm-ddThh:mm:ss)`, UTC, rounded up to the next whole second.
fn at_expression(at: SystemTime) -> String {
    let rounded = at + std::time::Duration::from_millis(999);
    let text = humantime::format_rfc3339_seconds(rounded).to_string();
    format!("at({})", text.trim_end_matches('Z'))
}

impl Wake {
    pub fn new(config: &aws_config::SdkConfig, pipeline: &str, role: &str) -> Wake {
        Wake {
            scheduler: aws_sdk_scheduler::Client::new(config),
            pipeline: pipeline.to_owned(),
            role: role.to_owned(),
        }
    }

    /// Schedules one start of the pipeline at `at` for release `tag`; returns the schedule's name.
    pub async fn at(&self, tag: &str, at: SystemTime) -> Result<String> {
        use aws_sdk_scheduler::types::{
            ActionAfterCompletion, FlexibleTimeWindow, FlexibleTimeWindowMode, Target,
        };
        let name = schedule_name(tag, at);
        let input = serde_json::json!({ "Name": self.pipeline }).to_string();
        let created = self
            .scheduler
            .create_schedule()
            .name(&name)
            .description(format!(
                "ecr-promote: release {tag} may pass its soak gate now"
            ))
            .schedule_expression(at_expression(at))
            .schedule_expression_timezone("UTC")
            .flexible_time_window(
                FlexibleTimeWindow::builder()
                    .mode(FlexibleTimeWindowMode::Off)
                    .build()
                    .context("a flexible time window")?,
            )
            .action_after_completion(ActionAfterCompletion::Delete)
            .target(
                Target::builder()
                    .arn(START_PIPELINE)
                    .role_arn(&self.role)
                    .input(input)
                    .build()
                    .context("a schedule target")?,
            )
            .send()
            .await;
        match created {
            Ok(_) => Ok(name),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conflict_exception()) =>
            {
                Ok(name)
            }
            Err(error) => Err(crate::aws::sdk_error(error)).with_context(|| {
                format!(
                    "scheduling pipeline {} to start again for release {tag}: check scheduler:CreateSchedule and \
                     iam:PassRole on PROMOTE_WAKE_ROLE_ARN ({})",
                    self.pipeline, self.role
                )
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_schedule_is_named_by_release_and_minute_and_runs_at_the_next_whole_second() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_000_000_500);
        let name = schedule_name("v1.2.0+build/7", at);
        assert_eq!(name, "ecr-promote-v1.2.0_build_7-29933333");
        assert!(name.len() <= 64);
        assert_eq!(at_expression(at), "at(2026-11-30T00:53:21)");
    }
}
