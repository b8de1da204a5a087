//! Reading records: one by its tag, or every release item of the table.

use anyhow::{Context, Result};
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;

use super::item::{Item, from_item, string};
use super::order::newest_first;
use super::record::{Record, ReleaseState};
use super::{Ledger, is_release_key};

/// An item under a release's key that is not a record this tool wrote (hand-written, or damaged). As JSON, its
/// tag and problem (the table is the command's own).
#[derive(Clone, Debug, PartialEq, Serialize, thiserror::Error)]
#[error(
    "the item for release {tag} in table {table} is unreadable: {problem}; it is not a record ecr-promote \
     wrote: fix or delete it by hand"
)]
pub struct Unreadable {
    #[serde(skip)]
    pub table: String,
    pub tag: String,
    pub problem: String,
}

/// Every item of the table that names a release: the records, and those that could not be read.
#[derive(Debug, Default)]
pub struct Releases {
    /// Newest promotion first (claims not yet completed first of all).
    pub records: Vec<Record>,
    pub unreadable: Vec<Unreadable>,
}

impl Releases {
    /// The releases whose promotion completed: what may be deployed.
    pub fn done(self) -> Vec<Record> {
        self.records
            .into_iter()
            .filter(|r| r.state == ReleaseState::Done)
            .collect()
    }
}

impl Ledger {
    /// The record of `tag`; an item that is not a valid record is an [`Unreadable`] error.
    pub async fn get(&self, tag: &str) -> Result<Option<Record>> {
        Ok(self.read(tag).await?.map(|(record, _)| record))
    }

    /// The record of `tag`, which must exist: a tag never recorded is an error that says where to look.
    pub async fn recorded(&self, tag: &str) -> Result<Record> {
        self.get(tag).await?.with_context(|| {
            format!(
                "release {tag} is not recorded in table {}: `ecr-promote history` lists the releases",
                self.table
            )
        })
    }

    /// One consistent GetItem.
    async fn read_item(&self, tag: &str) -> Result<Option<Item>> {
        let answer = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("tag_name", string(tag))
            .consistent_read(true)
            .send()
            .await
            .map_err(crate::aws::sdk_error)
            .with_context(|| self.context(&format!("reading release {tag}"), "dynamodb:GetItem"))?;
        Ok(answer.item().cloned())
    }

    /// The record under `tag`, with the item it was read from. An item that does not read as a record is read
    /// once more before it is called unreadable: DynamoDB never shows an item half-written, but moto (the
    /// local world's stand-in) applies an update attribute by attribute, and a read racing a claim can see
    /// the tag with only some of its fields.
    pub(super) async fn read(&self, tag: &str) -> Result<Option<(Record, Item)>> {
        let mut item = self.read_item(tag).await?;
        let mut second_look = false;
        loop {
            let Some(found) = item else {
                return Ok(None);
            };
            match from_item(&found) {
                Ok(record) => return Ok(Some((record, found))),
                Err(problem) if second_look => return Err(self.unreadable(tag, problem).into()),
                Err(_) => {
                    second_look = true;
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    item = self.read_item(tag).await?;
                }
            }
        }
    }

    /// Every release item (a paginated scan), newest promotion first; items that are not valid records are
    /// listed apart, and the webhook's delivery claims are left out.
    pub async fn releases(&self) -> Result<Releases> {
        let mut releases = Releases::default();
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
            for item in page.items() {
                let key = match item.get("tag_name") {
                    Some(AttributeValue::S(key)) => key.as_str(),
                    _ => "(no tag_name)",
                };
                if !is_release_key(key) {
                    continue;
                }
                match from_item(item) {
                    Ok(record) => releases.records.push(record),
                    Err(problem) => releases.unreadable.push(self.unreadable(key, problem)),
                }
            }
        }
        releases.records.sort_by(newest_first);
        releases.unreadable.sort_by(|a, b| a.tag.cmp(&b.tag));
        Ok(releases)
    }
}
