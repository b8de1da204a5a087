//! Outcomes: how ECS rolled out each deploy, written onto the deploy it belongs to, found by its sequence.

use anyhow::{Context, Result};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;

use super::Ledger;
use super::item::{outcome_item, string};
use super::record::Outcome;
use super::update::Update;

/// Tries of one outcome's write when the release's item changed between the read and the write (another
/// deploy appended, another outcome recorded): each try reads it again.
const TRIES: usize = 3;

impl Ledger {
    /// Records `outcome` on the deploy of release `tag` numbered `sequence`, if it moves that deploy's outcome
    /// forward ([`Outcome::replaces`]). Returns whether it was written: an outcome already known, or a deploy
    /// no longer there, is not an error. The write is conditional on the deploy at that place in the list
    /// still being the one numbered `sequence`, with the outcome read, so it can never land on another deploy.
    pub async fn record_outcome(
        &self,
        tag: &str,
        sequence: u64,
        outcome: &Outcome,
    ) -> Result<bool> {
        let action = || {
            self.context(
                &format!("recording the outcome of deploy {sequence} of release {tag}"),
                "dynamodb:GetItem and dynamodb:UpdateItem",
            )
        };
        for _ in 0..TRIES {
            let record = self.recorded(tag).await.with_context(action)?;
            let Some(index) = record
                .deploys
                .iter()
                .position(|d| d.sequence == Some(sequence))
            else {
                return Ok(false);
            };
            let recorded = record.deploys[index].outcome.as_ref();
            if !outcome.replaces(recorded) {
                return Ok(false);
            }
            let mut update = Update::default();
            let (path, same_deploy) =
                update.set_on_deploy((index, sequence), "outcome", outcome_item(outcome));
            let unchanged = match recorded {
                None => format!("attribute_not_exists({path})"),
                Some(was) => {
                    // DynamoDB refuses a name the expressions do not use: named only here.
                    let state = update.name("state");
                    let was = update.value("was", string(was.state.as_str()));
                    format!("{path}.{state} = {was}")
                }
            };
            let condition = format!("{same_deploy} AND {unchanged}");
            match self.update(tag, update, condition).await {
                Ok(()) => return Ok(true),
                Err(SdkError::ServiceError(e))
                    if matches!(e.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
                {
                    continue;
                }
                Err(e) => return Err(crate::aws::sdk_error(e)).with_context(action),
            }
        }
        anyhow::bail!(
            "recording the outcome of deploy {sequence} of release {tag} in table {}: the item kept changing \
             while it was written; run `ecr-promote settle` again",
            self.table
        )
    }
}
