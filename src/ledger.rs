//! The ledger: one DynamoDB item per release (partition key `tag_name`), written only after the images are in
//! production. It is what makes a production deploy traceable: release → commit → staging digest →
//! production tag → build, and every later deploy of the release.

use std::collections::HashMap;

use anyhow::{Context, Result, anyhow};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;

/// One image of a release.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Image {
    pub containers: Vec<String>,
    /// `staging-repo@sha256:…`: exactly what was copied.
    pub source_image: String,
    /// `production-repo:tag`: where it went.
    pub target_image: String,
    pub digest: String,
}

/// One deploy of a release: its promotion, or a later redeploy.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Deploy {
    pub deployed_at: String,
    /// `promote` or `redeploy`.
    pub kind: String,
    pub build_arn: Option<String>,
    /// Who started it (CodeBuild's initiator, or the user at a terminal).
    pub initiator: Option<String>,
}

/// What the ledger holds for one release. `digest`, `source_image` and `target_image` are the first
/// image's, so that single-image releases read simply; `images` lists every image.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Record {
    pub tag_name: String,
    pub commit: String,
    pub digest: String,
    pub source_image: String,
    pub target_image: String,
    pub containers: Vec<String>,
    pub images: Vec<Image>,
    /// RFC 3339 UTC; the first promotion's time is kept when the same release is promoted again.
    pub promoted_at: String,
    pub release_name: Option<String>,
    pub html_url: Option<String>,
    pub author: Option<String>,
    pub prerelease: bool,
    pub published_at: Option<String>,
    pub build_arn: Option<String>,
    /// GitHub `X-GitHub-Delivery` ids that promoted this release.
    pub deliveries: Vec<String>,
    pub deploys: Vec<Deploy>,
}

impl Record {
    /// Whether `self` may be written where `existing` is recorded.
    pub fn conflict_with(&self, existing: &Record, table: &str) -> Option<Conflict> {
        let digests = |r: &Record| {
            r.images
                .iter()
                .map(|i| i.digest.clone())
                .collect::<Vec<_>>()
        };
        (existing.commit != self.commit
            || existing.digest != self.digest
            || digests(existing) != digests(self))
        .then(|| Conflict {
            table: table.to_owned(),
            tag: self.tag_name.clone(),
            recorded_commit: existing.commit.clone(),
            recorded_digest: existing.digest.clone(),
            commit: self.commit.clone(),
            digest: self.digest.clone(),
        })
    }

    pub fn last_deployed_at(&self) -> Option<&str> {
        self.deploys.iter().map(|d| d.deployed_at.as_str()).max()
    }
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

#[derive(Clone)]
pub struct Ledger {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

type Item = HashMap<String, AttributeValue>;

fn text(item: &Item, name: &str) -> Option<String> {
    item.get(name)?.as_s().ok().cloned()
}

fn texts(item: &Item, name: &str) -> Vec<String> {
    match item.get(name) {
        Some(AttributeValue::L(list)) => {
            list.iter().filter_map(|v| v.as_s().ok().cloned()).collect()
        }
        Some(AttributeValue::Ss(set)) => set.clone(),
        _ => Vec::new(),
    }
}

fn maps<'a>(item: &'a Item, name: &str) -> impl Iterator<Item = &'a Item> {
    item.get(name)
        .and_then(|v| v.as_l().ok())
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_m().ok())
}

fn strings(values: &[String]) -> AttributeValue {
    AttributeValue::L(values.iter().cloned().map(AttributeValue::S).collect())
}

fn optional(item: &mut Item, name: &str, value: &Option<String>) {
    if let Some(value) = value {
        item.insert(name.to_owned(), AttributeValue::S(value.clone()));
    }
}

fn image_item(image: &Image) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        ("containers".to_owned(), strings(&image.containers)),
        (
            "source_image".to_owned(),
            AttributeValue::S(image.source_image.clone()),
        ),
        (
            "target_image".to_owned(),
            AttributeValue::S(image.target_image.clone()),
        ),
        ("digest".to_owned(), AttributeValue::S(image.digest.clone())),
    ]))
}

fn deploy_item(deploy: &Deploy) -> AttributeValue {
    let mut item = HashMap::from([
        (
            "deployed_at".to_owned(),
            AttributeValue::S(deploy.deployed_at.clone()),
        ),
        ("kind".to_owned(), AttributeValue::S(deploy.kind.clone())),
    ]);
    optional(&mut item, "build_arn", &deploy.build_arn);
    optional(&mut item, "initiator", &deploy.initiator);
    AttributeValue::M(item)
}

fn record_of(item: &Item) -> Option<Record> {
    let digest = text(item, "digest")?;
    let source_image = text(item, "source_image").unwrap_or_default();
    let target_image = text(item, "target_image").unwrap_or_default();
    let containers = texts(item, "containers");
    let mut images: Vec<Image> = maps(item, "images")
        .filter_map(|m| {
            Some(Image {
                containers: texts(m, "containers"),
                source_image: text(m, "source_image")?,
                target_image: text(m, "target_image")?,
                digest: text(m, "digest")?,
            })
        })
        .collect();
    if images.is_empty() {
        // Items written before multi-image releases hold their one image at the top level.
        images.push(Image {
            containers: containers.clone(),
            source_image: source_image.clone(),
            target_image: target_image.clone(),
            digest: digest.clone(),
        });
    }
    Some(Record {
        tag_name: text(item, "tag_name")?,
        commit: text(item, "commit")?,
        digest,
        source_image,
        target_image,
        containers,
        images,
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
        deliveries: texts(item, "deliveries"),
        deploys: maps(item, "deploys")
            .filter_map(|m| {
                Some(Deploy {
                    deployed_at: text(m, "deployed_at")?,
                    kind: text(m, "kind").unwrap_or_default(),
                    build_arn: text(m, "build_arn"),
                    initiator: text(m, "initiator"),
                })
            })
            .collect(),
    })
}

/// An update expression built from named values, every name escaped (`commit` is a DynamoDB reserved word).
#[derive(Default)]
struct Update {
    sets: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Update {
    fn name(&mut self, name: &str) -> String {
        self.names.insert(format!("#{name}"), name.to_owned());
        format!("#{name}")
    }

    fn set(&mut self, name: &str, value: AttributeValue) {
        let key = self.name(name);
        self.sets.push(format!("{key} = :{name}"));
        self.values.insert(format!(":{name}"), value);
    }

    fn set_expression(
        &mut self,
        expression: String,
        values: impl IntoIterator<Item = (&'static str, AttributeValue)>,
    ) {
        self.sets.push(expression);
        self.values
            .extend(values.into_iter().map(|(k, v)| (k.to_owned(), v)));
    }
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

    fn context(&self, action: &str, permission: &str) -> String {
        format!(
            "{action} in table {}: check PROMOTE_TABLE and {permission}",
            self.table
        )
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
            .map_err(crate::aws::sdk_error)
            .with_context(|| self.context(&format!("reading release {tag}"), "dynamodb:GetItem"))?;
        Ok(answer.item().and_then(record_of))
    }

    /// Records a promotion: a first write, or the same commit and digest again (a rerun). Another commit or
    /// digest under the same tag is refused by the table itself, so two runs racing cannot both win.
    pub async fn record(&self, record: &Record, delivery: Option<&str>) -> Result<()> {
        let mut update = Update::default();
        update.set("commit", AttributeValue::S(record.commit.clone()));
        update.set("digest", AttributeValue::S(record.digest.clone()));
        update.set(
            "source_image",
            AttributeValue::S(record.source_image.clone()),
        );
        update.set(
            "target_image",
            AttributeValue::S(record.target_image.clone()),
        );
        update.set("containers", strings(&record.containers));
        update.set(
            "images",
            AttributeValue::L(record.images.iter().map(image_item).collect()),
        );
        // What describes the release is kept from its first promotion: a rerun, or a `promote` by hand that
        // knows only tag and commit, must not blank it. Later deploys go to the deploy history instead.
        let mut keep = |name: &str, value: AttributeValue| {
            let key = update.name(name);
            update
                .sets
                .push(format!("{key} = if_not_exists({key}, :{name})"));
            update.values.insert(format!(":{name}"), value);
        };
        keep("prerelease", AttributeValue::Bool(record.prerelease));
        for (name, value) in [
            ("release_name", &record.release_name),
            ("html_url", &record.html_url),
            ("author", &record.author),
            ("published_at", &record.published_at),
            ("build_arn", &record.build_arn),
        ] {
            if let Some(value) = value {
                keep(name, AttributeValue::S(value.clone()));
            }
        }
        keep("promoted_at", AttributeValue::S(record.promoted_at.clone()));
        let mut expression = format!("SET {}", update.sets.join(", "));
        if let Some(delivery) = delivery {
            let deliveries = update.name("deliveries");
            expression.push_str(&format!(" ADD {deliveries} :delivery"));
            update.values.insert(
                ":delivery".into(),
                AttributeValue::Ss(vec![delivery.to_owned()]),
            );
        }
        let (tag_name, commit, digest) = (
            update.name("tag_name"),
            update.name("commit"),
            update.name("digest"),
        );
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("tag_name", AttributeValue::S(record.tag_name.clone()))
            .update_expression(expression)
            .condition_expression(format!(
                "attribute_not_exists({tag_name}) OR ({commit} = :commit AND {digest} = :digest)"
            ))
            .set_expression_attribute_names(Some(update.names))
            .set_expression_attribute_values(Some(update.values))
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
            Err(e) => Err(crate::aws::sdk_error(e)).with_context(|| {
                self.context(
                    &format!("recording release {}", record.tag_name),
                    "dynamodb:UpdateItem",
                )
            }),
        }
    }

    /// Appends a deploy to a recorded release's history.
    pub async fn record_deploy(&self, tag: &str, deploy: &Deploy) -> Result<()> {
        let mut update = Update::default();
        let deploys = update.name("deploys");
        update.set_expression(
            format!("{deploys} = list_append(if_not_exists({deploys}, :none), :deploy)"),
            [
                (":none", AttributeValue::L(Vec::new())),
                (":deploy", AttributeValue::L(vec![deploy_item(deploy)])),
            ],
        );
        let tag_name = update.name("tag_name");
        self.client
            .update_item()
            .table_name(&self.table)
            .key("tag_name", AttributeValue::S(tag.to_owned()))
            .update_expression(format!("SET {}", update.sets.join(", ")))
            .condition_expression(format!("attribute_exists({tag_name})"))
            .set_expression_attribute_names(Some(update.names))
            .set_expression_attribute_values(Some(update.values))
            .send()
            .await
            .map_err(crate::aws::sdk_error)
            .with_context(|| {
                self.context(
                    &format!("recording a deploy of release {tag}"),
                    "dynamodb:UpdateItem",
                )
            })?;
        Ok(())
    }

    /// Every recorded release, newest promotion first (a paginated scan: one item per release).
    pub async fn releases(&self) -> Result<Vec<Record>> {
        let mut records = Vec::new();
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page
                .map_err(crate::aws::sdk_error)
                .with_context(|| self.context("listing releases", "dynamodb:Scan"))?;
            records.extend(page.items().iter().filter_map(record_of));
        }
        records.sort_by(|a, b| {
            b.promoted_at
                .cmp(&a.promoted_at)
                .then_with(|| b.tag_name.cmp(&a.tag_name))
        });
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        let image = Image {
            containers: vec!["api".into()],
            source_image: "s/api@sha256:1".into(),
            target_image: "p/api:v1".into(),
            digest: "sha256:1".into(),
        };
        Record {
            tag_name: "v1".into(),
            commit: "abc".into(),
            digest: image.digest.clone(),
            source_image: image.source_image.clone(),
            target_image: image.target_image.clone(),
            containers: vec!["api".into()],
            images: vec![image],
            promoted_at: "2026-01-01T00:00:00Z".into(),
            release_name: Some("One".into()),
            html_url: None,
            author: Some("octocat".into()),
            prerelease: false,
            published_at: None,
            build_arn: None,
            deliveries: vec![],
            deploys: vec![Deploy {
                deployed_at: "2026-01-02T00:00:00Z".into(),
                kind: "redeploy".into(),
                build_arn: Some("arn:b".into()),
                initiator: None,
            }],
        }
    }

    #[test]
    fn an_item_reads_back_as_the_record_written() {
        let record = record();
        let mut item: Item = HashMap::from([
            (
                "tag_name".into(),
                AttributeValue::S(record.tag_name.clone()),
            ),
            ("commit".into(), AttributeValue::S(record.commit.clone())),
            ("digest".into(), AttributeValue::S(record.digest.clone())),
            (
                "source_image".into(),
                AttributeValue::S(record.source_image.clone()),
            ),
            (
                "target_image".into(),
                AttributeValue::S(record.target_image.clone()),
            ),
            ("containers".into(), strings(&record.containers)),
            (
                "images".into(),
                AttributeValue::L(record.images.iter().map(image_item).collect()),
            ),
            (
                "promoted_at".into(),
                AttributeValue::S(record.promoted_at.clone()),
            ),
            ("prerelease".into(), AttributeValue::Bool(false)),
            (
                "deploys".into(),
                AttributeValue::L(record.deploys.iter().map(deploy_item).collect()),
            ),
        ]);
        optional(&mut item, "release_name", &record.release_name);
        optional(&mut item, "author", &record.author);
        assert_eq!(record_of(&item), Some(record.clone()));
        assert_eq!(record.last_deployed_at(), Some("2026-01-02T00:00:00Z"));
    }

    #[test]
    fn a_different_commit_or_digest_conflicts_the_same_does_not() {
        let recorded = record();
        assert!(recorded.conflict_with(&recorded, "t").is_none());
        let mut other = recorded.clone();
        other.commit = "def".into();
        let conflict = other.conflict_with(&recorded, "t").unwrap().to_string();
        assert!(
            conflict.contains("commit abc") && conflict.contains("not commit def"),
            "{conflict}"
        );
        let mut other = recorded.clone();
        other.images[0].digest = "sha256:2".into();
        assert!(other.conflict_with(&recorded, "t").is_some());
    }
}
