//! The ledger: one DynamoDB item per release (partition key `tag_name`), written only after the image is in
//! production. It is what makes a production deploy traceable: release → commit → staging digest →
//! production tag → build.

use std::collections::HashMap;

use anyhow::{Context, Result, anyhow};
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;

/// What the ledger holds for one release.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub tag_name: String,
    pub commit: String,
    pub digest: String,
    /// `staging-repo@sha256:…`: exactly what was copied.
    pub source_image: String,
    /// `production-repo:tag`: where it went.
    pub target_image: String,
    pub containers: Vec<String>,
    /// RFC 3339 UTC; the first promotion's time is kept when the same release is promoted again.
    pub promoted_at: String,
    pub release_name: Option<String>,
    pub html_url: Option<String>,
    pub author: Option<String>,
    pub prerelease: bool,
    pub published_at: Option<String>,
    pub build_arn: Option<String>,
}

/// The release tag is recorded with another commit or digest: tags never move, so the run stops.
#[derive(Debug, thiserror::Error)]
#[error(
    "release {tag} is already recorded in table {table} with commit {recorded_commit} ({recorded_digest}), \
     not commit {commit} ({digest}): a release tag never moves — publish a new release instead"
)]
pub struct Conflict {
    pub table: String,
    pub tag: String,
    pub recorded_commit: String,
    pub recorded_digest: String,
    pub commit: String,
    pub digest: String,
}

impl Record {
    /// Whether `self` may be written where `existing` is recorded.
    pub fn conflict_with(&self, existing: &Record, table: &str) -> Option<Conflict> {
        (existing.commit != self.commit || existing.digest != self.digest).then(|| Conflict {
            table: table.to_owned(),
            tag: self.tag_name.clone(),
            recorded_commit: existing.commit.clone(),
            recorded_digest: existing.digest.clone(),
            commit: self.commit.clone(),
            digest: self.digest.clone(),
        })
    }
}

#[derive(Clone)]
pub struct Ledger {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

fn text(item: &HashMap<String, AttributeValue>, name: &str) -> Option<String> {
    item.get(name)?.as_s().ok().cloned()
}

fn record_of(item: &HashMap<String, AttributeValue>) -> Option<Record> {
    Some(Record {
        tag_name: text(item, "tag_name")?,
        commit: text(item, "commit")?,
        digest: text(item, "digest")?,
        source_image: text(item, "source_image").unwrap_or_default(),
        target_image: text(item, "target_image").unwrap_or_default(),
        containers: item
            .get("containers")
            .and_then(|v| v.as_l().ok())
            .map(|l| l.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
            .unwrap_or_default(),
        promoted_at: text(item, "promoted_at").unwrap_or_default(),
        release_name: text(item, "release_name"),
        html_url: text(item, "html_url"),
        author: text(item, "author"),
        prerelease: item
            .get("prerelease")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
        published_at: text(item, "published_at"),
        build_arn: text(item, "build_arn"),
    })
}

impl Ledger {
    pub fn new(config: &aws_config::SdkConfig, table: &str) -> Ledger {
        Ledger {
            client: aws_sdk_dynamodb::Client::new(config),
            table: table.to_owned(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub async fn get(&self, tag: &str) -> Result<Option<Record>> {
        let answer = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("tag_name", AttributeValue::S(tag.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| anyhow!("{}", DisplayErrorContext(&e)))
            .with_context(|| {
                format!(
                    "reading release {tag} from table {}: check PROMOTE_TABLE and dynamodb:GetItem",
                    self.table
                )
            })?;
        Ok(answer.item().and_then(record_of))
    }

    /// Records a promotion: a first write, or the same commit and digest again (a rerun). Another commit or
    /// digest under the same tag is refused by the table itself, so two runs racing cannot both win.
    pub async fn record(&self, record: &Record) -> Result<()> {
        let mut values: HashMap<String, AttributeValue> = HashMap::new();
        let mut sets = Vec::new();
        let mut set = |name: &str, value: AttributeValue| {
            sets.push(format!("#{name} = :{name}"));
            values.insert(format!(":{name}"), value);
        };
        set("commit", AttributeValue::S(record.commit.clone()));
        set("digest", AttributeValue::S(record.digest.clone()));
        set(
            "source_image",
            AttributeValue::S(record.source_image.clone()),
        );
        set(
            "target_image",
            AttributeValue::S(record.target_image.clone()),
        );
        set(
            "containers",
            AttributeValue::L(
                record
                    .containers
                    .iter()
                    .cloned()
                    .map(AttributeValue::S)
                    .collect(),
            ),
        );
        set("prerelease", AttributeValue::Bool(record.prerelease));
        for (name, value) in [
            ("release_name", &record.release_name),
            ("html_url", &record.html_url),
            ("author", &record.author),
            ("published_at", &record.published_at),
            ("build_arn", &record.build_arn),
        ] {
            if let Some(value) = value {
                set(name, AttributeValue::S(value.clone()));
            }
        }
        sets.push("#promoted_at = if_not_exists(#promoted_at, :promoted_at)".into());
        values.insert(
            ":promoted_at".into(),
            AttributeValue::S(record.promoted_at.clone()),
        );
        let names: HashMap<String, String> = sets
            .iter()
            .filter_map(|s| s.split_whitespace().next())
            .chain(["#tag_name"])
            .map(|n| (n.to_owned(), n.trim_start_matches('#').to_owned()))
            .collect();

        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("tag_name", AttributeValue::S(record.tag_name.clone()))
            .update_expression(format!("SET {}", sets.join(", ")))
            .condition_expression(
                "attribute_not_exists(#tag_name) OR (#commit = :commit AND #digest = :digest)",
            )
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
            {
                let existing = self.get(&record.tag_name).await?;
                match existing.and_then(|existing| record.conflict_with(&existing, &self.table)) {
                    Some(conflict) => Err(conflict.into()),
                    None => Err(anyhow!(
                        "recording release {} in table {}: the conditional write failed, but the item now matches; run again",
                        record.tag_name,
                        self.table
                    )),
                }
            }
            Err(e) => Err(anyhow!("{}", DisplayErrorContext(&e))).with_context(|| {
                format!(
                    "recording release {} in table {}: check PROMOTE_TABLE and dynamodb:UpdateItem",
                    record.tag_name, self.table
                )
            }),
        }
    }

    /// The most recently promoted release (a full, paginated scan: the table holds one item per release).
    pub async fn latest(&self) -> Result<Option<Record>> {
        let mut latest: Option<Record> = None;
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page
                .map_err(|e| anyhow!("{}", DisplayErrorContext(&e)))
                .with_context(|| {
                    format!(
                        "scanning table {}: check PROMOTE_TABLE and dynamodb:Scan",
                        self.table
                    )
                })?;
            for record in page.items().iter().filter_map(record_of) {
                if latest
                    .as_ref()
                    .is_none_or(|l| record.promoted_at > l.promoted_at)
                {
                    latest = Some(record);
                }
            }
        }
        Ok(latest)
    }
}
