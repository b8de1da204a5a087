//! The claim protocol: a release tag is claimed (pending) before anything is written to a registry, and
//! completed (done) once its images are in production.

use anyhow::{Context, Result, anyhow, bail};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;

use super::item::{string, to_item};
use super::record::{Record, ReleaseState};
use super::update::Update;
use super::{Ledger, now};

/// Attributes a rerun must not overwrite: what describes the release is kept from its first promotion (a
/// `promote` by hand knows only tag and commit), and a completed release is not set back to pending.
const KEPT: [&str; 10] = [
    "state",
    "promoted_at",
    "release_name",
    "html_url",
    "author",
    "prerelease",
    "published_at",
    "release_id",
    "build_arn",
    // The gates' evidence is of the promotion that happened: a rerun does not replace it.
    "gates",
];

/// A value no other run's claim will carry.
fn claim_token() -> String {
    use std::hash::BuildHasher;
    let seed = (std::time::SystemTime::now(), std::process::id());
    format!(
        "{:016x}",
        std::collections::hash_map::RandomState::new().hash_one(seed)
    )
}

impl Ledger {
    /// Claims `record.tag_name` for its commit and digests, before anything is written to a registry: a new
    /// item in state pending, or the item already there with the same commit and digests (a rerun, which
    /// resumes). Another commit or digest under the tag is refused by the table itself ([`Conflict`]), so two
    /// runs racing cannot both write the tag. Describing fields and a completed state are kept.
    ///
    /// The claim carries a token of this run, read back before the claim counts: DynamoDB serialises
    /// conditional writes to one item, but a store that does not (moto, the local world's stand-in, checks
    /// and writes without a lock, so two claims arriving together can both pass) would otherwise let the
    /// overwritten claimant go on to write the tag.
    pub async fn claim(&self, record: &Record) -> Result<()> {
        let token = claim_token();
        let mut update = Update::default();
        update.set("claim_token", string(&token));
        for (name, value) in to_item(record) {
            match name.as_str() {
                "tag_name" | "deploys" | "deliveries" => {}
                name if KEPT.contains(&name) => update.keep(name, value),
                name => update.set(name, value),
            }
        }
        let tag_name = update.name("tag_name");
        let condition = format!(
            "attribute_not_exists({tag_name}) OR {}",
            update.same_release(record)
        );
        let result = self.update(&record.tag_name, update, condition).await;
        self.refused_or(record, result, "claiming").await?;
        let existing = match self.read(&record.tag_name).await? {
            Some((_, item)) if item.get("claim_token") == Some(&string(&token)) => return Ok(()),
            Some((existing, _)) => existing,
            None => bail!(
                "claiming release {} in table {}: the claim was deleted at once; run again",
                record.tag_name,
                self.table
            ),
        };
        match record.conflict_with(&existing, &self.table) {
            Some(conflict) => Err(conflict.into()),
            // Another run of the same commit claimed it too: both write the same digests.
            None => Ok(()),
        }
    }

    /// Marks a claimed release done, once its images are in production, with the delivery that promoted it.
    pub async fn complete(&self, record: &Record, delivery: Option<&str>) -> Result<()> {
        let mut update = Update::default();
        update.set("state", string(ReleaseState::Done.as_str()));
        update.keep("promoted_at", string(now()));
        // The claim has done its work; a completed release keeps no trace of which run held it.
        let token = update.name("claim_token");
        update.removes.push(token);
        update.add_delivery(delivery);
        let condition = update.same_release(record);
        let result = self.update(&record.tag_name, update, condition).await;
        self.refused_or(record, result, "recording").await
    }

    /// A refused conditional write explained: the conflicting record, or the unreadable item.
    async fn refused_or(
        &self,
        record: &Record,
        result: Result<(), SdkError<UpdateItemError>>,
        action: &str,
    ) -> Result<()> {
        match result {
            Ok(()) => Ok(()),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
            {
                match self.get(&record.tag_name).await? {
                    Some(existing) => match record.conflict_with(&existing, &self.table) {
                        Some(conflict) => Err(conflict.into()),
                        None => Err(anyhow!(
                            "{action} release {} in table {}: the item changed while it was written; run again",
                            record.tag_name,
                            self.table
                        )),
                    },
                    // Only a completion can find no item: someone deleted the claim mid-promotion.
                    None => Err(anyhow!(
                        "{action} release {} in table {}: its claim was deleted while the images were copied; \
                         run again to claim it anew",
                        record.tag_name,
                        self.table
                    )),
                }
            }
            Err(e) => Err(crate::aws::sdk_error(e)).with_context(|| {
                self.context(
                    &format!("{action} release {}", record.tag_name),
                    "dynamodb:UpdateItem",
                )
            }),
        }
    }
}
