//! Delivery claims: one ledger item per GitHub delivery, saying how far its handling got, so that a
//! redelivery (same `X-GitHub-Delivery`) redoes only what was not done.
//!
//! Each state is written after the step it names succeeded, never before: a crash leaves a claim saying
//! less than was done, never more, and a redelivery then redoes at most one step. Redoing is harmless: a
//! second message for the same delivery is skipped by `run` (it records the deliveries it promoted), and
//! the pipeline is started with the same `clientRequestToken`.
//!
//! The items share the ledger table (no second table to deploy and grant) under keys that no release
//! can have, `delivery#<id>`: a release tag is an image tag, which has no `#`. `history` skips them, and
//! DynamoDB deletes them after [`KEEP`] through the table's TTL attribute `expires_at`.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::ledger::{self, DELIVERY_CLAIM_PREFIX};

/// GitHub offers to redeliver deliveries of the last three days; a week covers that with room to spare.
pub const KEEP: Duration = Duration::from_secs(7 * 24 * 3600);

/// How far a delivery's handling got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Its message is on the queue.
    Queued,
    /// Its message is on the queue and the pipeline was started.
    Started,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Started => "started",
        }
    }
}

pub struct Claims {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl Claims {
    pub fn new(config: &aws_config::SdkConfig, table: &str) -> Claims {
        Claims {
            client: aws_sdk_dynamodb::Client::new(config),
            table: table.to_owned(),
        }
    }

    /// Where an earlier attempt at `delivery` got; `None` if there was none (or its claim expired).
    pub async fn state(&self, delivery: &str) -> anyhow::Result<Option<State>> {
        let answer = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("tag_name", key(delivery))
            .consistent_read(true)
            .send()
            .await
            .map_err(crate::aws::sdk_error)
            .with_context(|| {
                format!(
                    "cannot read delivery {delivery}'s claim in table {} (PROMOTE_TABLE)",
                    self.table
                )
            })?;
        let state = answer
            .item()
            .and_then(|item| item.get("state"))
            .and_then(|state| state.as_s().ok());
        Ok(match state.map(String::as_str) {
            Some("started") => Some(State::Started),
            Some("queued") => Some(State::Queued),
            // An item in no state this code writes is not a claim to trust: act as if there were none.
            _ => None,
        })
    }

    /// Records that `delivery`'s message for release `tag` is on the queue — unless a claim exists, which a
    /// concurrent attempt that got as far or further wrote: this one must not move it back.
    pub async fn queued(&self, delivery: &str, tag: &str) -> anyhow::Result<()> {
        let written = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item(delivery, tag, State::Queued, None)))
            .condition_expression("attribute_not_exists(tag_name)")
            .send()
            .await;
        match written {
            Ok(_) => Ok(()),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(error) => Err(crate::aws::sdk_error(error)).with_context(|| {
                format!(
                    "cannot claim delivery {delivery} in table {} (PROMOTE_TABLE)",
                    self.table
                )
            }),
        }
    }

    /// Records that the pipeline was started for `delivery` (the last state: written unconditionally).
    pub async fn started(&self, delivery: &str, tag: &str, execution: &str) -> anyhow::Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item(delivery, tag, State::Started, Some(execution))))
            .send()
            .await
            .map_err(crate::aws::sdk_error)
            .with_context(|| {
                format!(
                    "cannot record delivery {delivery} as started in table {} (PROMOTE_TABLE)",
                    self.table
                )
            })?;
        Ok(())
    }
}

fn key(delivery: &str) -> AttributeValue {
    AttributeValue::S(format!("{DELIVERY_CLAIM_PREFIX}{delivery}"))
}

fn item(
    delivery: &str,
    tag: &str,
    state: State,
    execution: Option<&str>,
) -> HashMap<String, AttributeValue> {
    let now = SystemTime::now();
    let expires_at = (now + KEEP)
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_secs())
        .unwrap_or_default();
    let mut item = HashMap::from([
        ("tag_name".to_owned(), key(delivery)),
        (
            "state".to_owned(),
            AttributeValue::S(state.name().to_owned()),
        ),
        ("release".to_owned(), AttributeValue::S(tag.to_owned())),
        (
            "updated_at".to_owned(),
            AttributeValue::S(ledger::time_text(now)),
        ),
        (
            "expires_at".to_owned(),
            AttributeValue::N(expires_at.to_string()),
        ),
    ]);
    if let Some(execution) = execution {
        item.insert(
            "pipeline_execution_id".to_owned(),
            AttributeValue::S(execution.to_owned()),
        );
    }
    item
}
