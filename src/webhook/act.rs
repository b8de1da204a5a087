//! Acting on a promotion: the message onto the queue, then the pipeline started, each step claimed in the
//! ledger table when there is one (see `claims`).

use anyhow::Context as _;
use aws_sdk_codepipeline::types::PipelineVariable;

use super::claims::{Claims, State};
use super::decide::{Promotion, request_token};

/// The pipeline variable naming the release an execution was started for (deploy/production.yml).
pub const RELEASE_TAG_VARIABLE: &str = "release_tag";

pub struct Dispatcher {
    queue: aws_sdk_sqs::Client,
    queue_url: String,
    pipelines: aws_sdk_codepipeline::Client,
    pipeline_name: String,
    claims: Option<Claims>,
}

/// A promotion handed on.
#[derive(Debug, PartialEq)]
pub enum Handed {
    /// Queued (now or by an earlier attempt) and the pipeline started now.
    Started { execution: String, resumed: bool },
    /// An earlier attempt at this delivery already queued it and started the pipeline.
    AlreadyReceived,
}

impl Dispatcher {
    pub fn new(
        config: &aws_config::SdkConfig,
        queue_url: &str,
        pipeline_name: &str,
        table: Option<&str>,
    ) -> Dispatcher {
        Dispatcher {
            queue: aws_sdk_sqs::Client::new(config),
            queue_url: queue_url.to_owned(),
            pipelines: aws_sdk_codepipeline::Client::new(config),
            pipeline_name: pipeline_name.to_owned(),
            claims: table.map(|table| Claims::new(config, table)),
        }
    }

    /// Queues the promotion and starts the pipeline, skipping what an earlier attempt at the same delivery
    /// did. Nothing is started unless the message is on the queue: a pipeline run with nothing to promote
    /// would fail, or worse, redeploy.
    pub async fn hand_on(&self, promotion: &Promotion) -> anyhow::Result<Handed> {
        let earlier = match &self.claims {
            Some(claims) => claims.state(&promotion.delivery).await?,
            None => None,
        };
        match earlier {
            Some(State::Started) => return Ok(Handed::AlreadyReceived),
            Some(State::Queued) => {}
            None => {
                self.send(promotion).await?;
                if let Some(claims) = &self.claims
                    && let Err(error) = claims.queued(&promotion.delivery, &promotion.tag).await
                {
                    // The message is on the queue all the same: start the pipeline for it. A redelivery
                    // would queue it again, which `run` skips as a delivery it already promoted.
                    tracing::warn!(delivery = %promotion.delivery, "{error:#}");
                }
            }
        }
        let execution = self.start(promotion).await?;
        if let Some(claims) = &self.claims
            && let Err(error) = claims
                .started(&promotion.delivery, &promotion.tag, &execution)
                .await
        {
            // Started all the same; a redelivery would start it again with the same request token.
            tracing::warn!(delivery = %promotion.delivery, "{error:#}");
        }
        Ok(Handed::Started {
            execution,
            resumed: earlier.is_some(),
        })
    }

    async fn send(&self, promotion: &Promotion) -> anyhow::Result<()> {
        self.queue
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(&promotion.message)
            .send()
            .await
            .map_err(crate::aws::sdk_error)
            .with_context(|| {
                format!(
                    "the release queue {} (PROMOTE_QUEUE_URL) did not take release {}; nothing was started: \
                     redeliver from GitHub once the queue is reachable",
                    self.queue_url, promotion.tag
                )
            })?;
        Ok(())
    }

    async fn start(&self, promotion: &Promotion) -> anyhow::Result<String> {
        let variable = PipelineVariable::builder()
            .name(RELEASE_TAG_VARIABLE)
            .value(&promotion.tag)
            .build()
            .context("build the release_tag pipeline variable")?;
        let started = self
            .pipelines
            .start_pipeline_execution()
            .name(&self.pipeline_name)
            .variables(variable)
            .client_request_token(request_token(&promotion.delivery))
            .send()
            .await
            .map_err(crate::aws::sdk_error)
            .with_context(|| {
                format!(
                    "release {} is on the queue, but pipeline {} (PROMOTE_PIPELINE_NAME) did not start: \
                     redeliver from GitHub to start it",
                    promotion.tag, self.pipeline_name
                )
            })?;
        Ok(started
            .pipeline_execution_id()
            .unwrap_or_default()
            .to_owned())
    }
}
