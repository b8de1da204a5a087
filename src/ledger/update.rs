//! Update expressions for the ledger's conditional writes.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;

use super::Ledger;
use super::item::string;
use super::record::Record;

/// An update expression built from named values, every name escaped (`commit` is a DynamoDB reserved word).
#[derive(Default)]
pub(super) struct Update {
    pub(super) sets: Vec<String>,
    pub(super) adds: Vec<String>,
    pub(super) removes: Vec<String>,
    pub(super) names: HashMap<String, String>,
    pub(super) values: HashMap<String, AttributeValue>,
}

impl Update {
    pub(super) fn name(&mut self, name: &str) -> String {
        self.names.insert(format!("#{name}"), name.to_owned());
        format!("#{name}")
    }

    pub(super) fn value(&mut self, name: &str, value: AttributeValue) -> String {
        self.values.insert(format!(":{name}"), value);
        format!(":{name}")
    }

    pub(super) fn set(&mut self, name: &str, value: AttributeValue) {
        let (key, value) = (self.name(name), self.value(name, value));
        self.sets.push(format!("{key} = {value}"));
    }

    /// Set only where the item has no value yet.
    pub(super) fn keep(&mut self, name: &str, value: AttributeValue) {
        let (key, value) = (self.name(name), self.value(name, value));
        self.sets
            .push(format!("{key} = if_not_exists({key}, {value})"));
    }

    /// Sets `field` of the deploy at `index` in the item's `deploys` to `value`. Returns the field's path, and
    /// the condition that the deploy at that place is still the one numbered `sequence` (deploys are only ever
    /// appended, so the write can never land on another deploy).
    pub(super) fn set_on_deploy(
        &mut self,
        (index, sequence): (usize, u64),
        field: &str,
        value: AttributeValue,
    ) -> (String, String) {
        let (deploys, numbered, key) = (
            self.name("deploys"),
            self.name("sequence"),
            self.name(field),
        );
        let path = format!("{deploys}[{index}].{key}");
        let value = self.value(field, value);
        self.sets.push(format!("{path} = {value}"));
        let expected = self.value("sequence", AttributeValue::N(sequence.to_string()));
        (path, format!("{deploys}[{index}].{numbered} = {expected}"))
    }

    pub(super) fn add_delivery(&mut self, delivery: Option<&str>) {
        if let Some(delivery) = delivery {
            let key = self.name("deliveries");
            let value = self.value("delivery", AttributeValue::Ss(vec![delivery.to_owned()]));
            self.adds.push(format!("{key} {value}"));
        }
    }

    /// The same commit and digests as `record`: the condition under which a claim is ours.
    pub(super) fn same_release(&mut self, record: &Record) -> String {
        let (commit, digest, digests) = (
            self.name("commit"),
            self.name("digest"),
            self.name("digests"),
        );
        let values = (
            self.value("commit", string(&record.commit)),
            self.value("digest", string(record.digest.to_string())),
            self.value("digests", string(record.digests())),
        );
        format!(
            "({commit} = {} AND {digest} = {} AND (attribute_not_exists({digests}) OR {digests} = {}))",
            values.0, values.1, values.2
        )
    }

    pub(super) fn expression(&self) -> String {
        let mut expression = String::new();
        if !self.sets.is_empty() {
            expression.push_str(&format!("SET {}", self.sets.join(", ")));
        }
        if !self.adds.is_empty() {
            expression.push_str(&format!(" ADD {}", self.adds.join(", ")));
        }
        if !self.removes.is_empty() {
            expression.push_str(&format!(" REMOVE {}", self.removes.join(", ")));
        }
        expression
    }
}

impl Ledger {
    /// Applies `update` to the item of `tag` if `condition` holds.
    pub(super) async fn update(
        &self,
        tag: &str,
        update: Update,
        condition: String,
    ) -> Result<(), SdkError<UpdateItemError>> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("tag_name", string(tag))
            .update_expression(update.expression())
            .condition_expression(condition)
            .set_expression_attribute_names(Some(update.names))
            .set_expression_attribute_values(Some(update.values))
            .send()
            .await
            .map(|_| ())
    }
}
