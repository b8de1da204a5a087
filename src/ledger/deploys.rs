//! Deploys: each appended to its release's history, numbered by the table's deploy sequence.

use anyhow::{Context, Result};
use aws_sdk_dynamodb::types::AttributeValue;

use super::item::{deploy_item, string};
use super::record::Deploy;
use super::update::Update;
use super::{DEPLOY_SEQUENCE_KEY, Ledger};

impl Ledger {
    /// The next number of the table's deploy sequence: an atomic increment of one item, which DynamoDB
    /// serialises, so no two deploys share a number however close together they are.
    async fn next_deploy_sequence(&self) -> Result<u64> {
        let answer = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("tag_name", string(DEPLOY_SEQUENCE_KEY))
            .update_expression("ADD #last :one")
            .expression_attribute_names("#last", "last")
            .expression_attribute_values(":one", AttributeValue::N("1".to_owned()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(crate::aws::sdk_error)
            .with_context(|| self.context("numbering a deploy", "dynamodb:UpdateItem"))?;
        let last = answer.attributes().and_then(|a| a.get("last"));
        match last {
            Some(AttributeValue::N(number)) => number.parse().ok(),
            _ => None,
        }
        .with_context(|| {
            format!(
                "numbering a deploy in table {}: item {DEPLOY_SEQUENCE_KEY} holds {last:?}, not a count; \
                 delete it by hand (numbering starts again at 1, after every deploy recorded before)",
                self.table
            )
        })
    }

    /// Appends a deploy to a recorded release's history, numbered after every deploy recorded before it.
    pub async fn record_deploy(&self, tag: &str, deploy: Deploy) -> Result<Deploy> {
        let deploy = Deploy {
            sequence: Some(self.next_deploy_sequence().await?),
            ..deploy
        };
        let mut update = Update::default();
        let deploys = update.name("deploys");
        let (none, appended) = (
            update.value("none", AttributeValue::L(Vec::new())),
            update.value("deploy", AttributeValue::L(vec![deploy_item(&deploy)])),
        );
        update.sets.push(format!(
            "{deploys} = list_append(if_not_exists({deploys}, {none}), {appended})"
        ));
        let tag_name = update.name("tag_name");
        self.update(tag, update, format!("attribute_exists({tag_name})"))
            .await
            .map_err(crate::aws::sdk_error)
            .with_context(|| {
                self.context(
                    &format!("recording a deploy of release {tag}"),
                    "dynamodb:UpdateItem",
                )
            })?;
        Ok(deploy)
    }
}

impl Ledger {
    /// Records what GitHub was told of deploy `sequence` of release `tag`, replacing what was recorded before.
    pub async fn mark_github(
        &self,
        tag: &str,
        sequence: u64,
        mark: &super::GithubMark,
    ) -> Result<()> {
        let context = || {
            self.context(
                &format!("recording GitHub's deployment of release {tag}"),
                "dynamodb:UpdateItem",
            )
        };
        let record = self.recorded(tag).await.with_context(context)?;
        let index = record
            .deploys
            .iter()
            .position(|d| d.sequence == Some(sequence))
            .with_context(|| format!("release {tag} has no deploy numbered {sequence}"))
            .with_context(context)?;
        let mut update = Update::default();
        let (_, same_deploy) =
            update.set_on_deploy((index, sequence), "github", super::item::github_item(mark));
        self.update(tag, update, same_deploy)
            .await
            .map_err(crate::aws::sdk_error)
            .with_context(context)
    }
}
