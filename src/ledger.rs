//! The ledger: one DynamoDB item per release (partition key `tag_name`).
//!
//! A promotion first **claims** its release tag: a conditional write of the tag with its commit and digests
//! in state `pending`, accepted only when the tag is new or already holds the same commit and digests. Only
//! the holder of a claim writes the tag in production, so two runs with different commits can never both
//! move it; once the images are there the claim is **completed** (`done`). The item is the trace: release →
//! commit → staging digest → production tag → build, and every later deploy of the release.
//!
//! Items are read strictly: an item that is not a record this tool wrote is an error naming the table, the
//! key and the field, never a release silently read with blanks.

use std::collections::HashMap;

use anyhow::{Context, Result, anyhow, bail};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;

use crate::registry::Digest;
use crate::timestamp::Timestamp;

/// Keys of items that are not releases: the webhook function's delivery claims (`delivery#<id>`). `#` can
/// never be in a release tag, which must be a valid image tag.
pub const DELIVERY_CLAIM_PREFIX: &str = "delivery#";

/// The key of the item that numbers deploys ([`Deploy::sequence`]): not a release, like the delivery claims.
const DEPLOY_SEQUENCE_KEY: &str = "sequence#deploys";

/// Whether an item's key names a release: the table's other items (delivery claims, the deploy sequence) carry
/// a `#`, which no image tag can.
fn is_release_key(key: &str) -> bool {
    !key.contains('#')
}

/// One image of a release.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Image {
    pub containers: Vec<String>,
    /// `staging-repo@sha256:…`: exactly what was copied.
    pub source_image: String,
    /// `production-repo:tag`: where it went.
    pub target_image: String,
    pub digest: Digest,
}

/// How a release came to be deployed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeployKind {
    Promote,
    Redeploy,
}

impl DeployKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DeployKind::Promote => "promote",
            DeployKind::Redeploy => "redeploy",
        }
    }
}

/// One deploy of a release: its promotion, or a later redeploy.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Deploy {
    /// The table's count of deploys when this one was recorded, taken by an atomic increment: the order deploys
    /// happened in, which never ties (two deploys in one second do). `None` for deploys recorded before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    /// RFC 3339 UTC, whole seconds: for people; order comes from `sequence`.
    pub deployed_at: String,
    pub kind: DeployKind,
    pub build_arn: Option<String>,
    /// Who started it (CodeBuild's initiator, or the user at a terminal).
    pub initiator: Option<String>,
}

impl Deploy {
    /// How this deploy orders against every other in the table: by sequence; deploys recorded before there
    /// was one come before all that have one (they happened earlier), ordered among themselves by time.
    pub fn order(&self) -> (Option<u64>, Option<Timestamp>) {
        (self.sequence, self.deployed_at.parse().ok())
    }
}

/// Where a release's promotion stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReleaseState {
    /// Claimed: a run holds the tag and may be copying it (or was stopped while it did; a rerun with the same
    /// commit resumes).
    Pending,
    /// In production and recorded.
    Done,
}

impl ReleaseState {
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseState::Pending => "pending",
            ReleaseState::Done => "done",
        }
    }
}

/// What the ledger holds for one release. `digest`, `source_image` and `target_image` are the first
/// image's, so that single-image releases read simply; `images` lists every image.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Record {
    pub tag_name: String,
    pub state: ReleaseState,
    pub commit: String,
    pub digest: Digest,
    pub source_image: String,
    pub target_image: String,
    pub containers: Vec<String>,
    pub images: Vec<Image>,
    /// RFC 3339 UTC, set when the promotion completes; the first promotion's time is kept on reruns.
    pub promoted_at: Option<String>,
    pub release_name: Option<String>,
    pub html_url: Option<String>,
    pub author: Option<String>,
    pub prerelease: bool,
    pub published_at: Option<Timestamp>,
    /// GitHub's release id, which breaks ties between releases published in the same second.
    pub release_id: Option<u64>,
    pub build_arn: Option<String>,
    /// GitHub `X-GitHub-Delivery` ids that promoted this release.
    pub deliveries: Vec<String>,
    pub deploys: Vec<Deploy>,
}

impl Record {
    /// A claim on `tag` for these images (at least one), to be completed once they are in production.
    pub fn pending(tag: &str, commit: &str, images: Vec<Image>) -> Result<Record> {
        let first = images
            .first()
            .context("no image to promote: set PROMOTE_SOURCE_REPOSITORY or PROMOTE_CONFIG")?;
        Ok(Record {
            tag_name: tag.to_owned(),
            state: ReleaseState::Pending,
            commit: commit.to_owned(),
            digest: first.digest.clone(),
            source_image: first.source_image.clone(),
            target_image: first.target_image.clone(),
            containers: images.iter().flat_map(|i| i.containers.clone()).collect(),
            images,
            promoted_at: None,
            release_name: None,
            html_url: None,
            author: None,
            prerelease: false,
            published_at: None,
            release_id: None,
            build_arn: None,
            deliveries: Vec::new(),
            deploys: Vec::new(),
        })
    }

    /// Every image's digest, in order: what a claim must match.
    fn digests(&self) -> String {
        let digests: Vec<String> = self.images.iter().map(|i| i.digest.to_string()).collect();
        digests.join(",")
    }

    /// The conflict, if `self` may not be written where `existing` is recorded (another commit or digest).
    pub fn conflict_with(&self, existing: &Record, table: &str) -> Option<Conflict> {
        (existing.commit != self.commit || existing.digests() != self.digests()).then(|| Conflict {
            table: table.to_owned(),
            tag: self.tag_name.clone(),
            state: existing.state,
            recorded_commit: existing.commit.clone(),
            recorded_digest: existing.digest.clone(),
            commit: self.commit.clone(),
            digest: self.digest.clone(),
        })
    }

    pub fn last_deployed_at(&self) -> Option<&str> {
        self.last_deploy().map(|d| d.deployed_at.as_str())
    }

    /// The latest of the release's deploys.
    pub fn last_deploy(&self) -> Option<&Deploy> {
        self.deploys.iter().max_by_key(|d| d.order())
    }

    /// How this release orders against others, as [`crate::intake::Release::precedence`] does.
    pub fn precedence(&self) -> crate::intake::github::Precedence {
        (self.published_at, self.release_id)
    }
}

/// The release tag is held with another commit or digest: tags never move, so the run stops.
#[derive(Debug, thiserror::Error)]
#[error(
    "release {tag} is {} in table {table} with commit {recorded_commit} ({recorded_digest}), not commit \
     {commit} ({digest}): a release tag never moves — publish a new release instead{}",
    match state { ReleaseState::Done => "already recorded", ReleaseState::Pending => "claimed by a promotion" },
    match state {
        ReleaseState::Done => "",
        ReleaseState::Pending => " (if that promotion was abandoned and its tag is not in production, delete \
                                   the pending item by hand)",
    }
)]
pub struct Conflict {
    pub table: String,
    pub tag: String,
    pub state: ReleaseState,
    pub recorded_commit: String,
    pub recorded_digest: Digest,
    pub commit: String,
    pub digest: Digest,
}

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

/// Of `records`, the completed release deployed last: what production runs unless someone changed it outside
/// ecr-promote. After a rollback that is the release rolled back to. A promotion that was never deployed (an
/// older release promoted in the same run as a newer one) is no deploy. Deploys recorded before they carried
/// a sequence tie only within a second; such a tie goes to the release published later.
pub fn last_shipped(records: &[Record]) -> Option<&Record> {
    records
        .iter()
        .filter(|r| r.state == ReleaseState::Done)
        .filter_map(|r| Some((r.last_deploy()?.order(), r.precedence(), r)))
        .max_by(|a, b| {
            (&a.0, &a.1)
                .cmp(&(&b.0, &b.1))
                // Nothing tells them apart: one answer whatever order the table listed them in.
                .then_with(|| a.2.tag_name.cmp(&b.2.tag_name))
        })
        .map(|(_, _, record)| record)
}

/// The order `history` lists records in, newest first: claims not yet completed (no promotion time) first of
/// all, then by promotion time as an instant, then, within one second, the release published later first (a
/// run promotes the releases it reads oldest first, so that is the one promoted later).
fn newest_first(a: &Record, b: &Record) -> std::cmp::Ordering {
    let when = |r: &Record| {
        (
            r.promoted_at.is_none(),
            r.promoted_at
                .as_deref()
                .and_then(|t| t.parse::<Timestamp>().ok()),
            r.precedence(),
        )
    };
    when(b)
        .cmp(&when(a))
        .then_with(|| b.tag_name.cmp(&a.tag_name))
}

type Item = HashMap<String, AttributeValue>;

/// Attributes a rerun must not overwrite: what describes the release is kept from its first promotion (a
/// `promote` by hand knows only tag and commit), and a completed release is not set back to pending.
const KEPT: [&str; 9] = [
    "state",
    "promoted_at",
    "release_name",
    "html_url",
    "author",
    "prerelease",
    "published_at",
    "release_id",
    "build_arn",
];

fn string(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn strings(values: &[String]) -> AttributeValue {
    AttributeValue::L(values.iter().cloned().map(AttributeValue::S).collect())
}

fn optional(item: &mut Item, name: &str, value: Option<impl ToString>) {
    if let Some(value) = value {
        item.insert(name.to_owned(), string(value.to_string()));
    }
}

fn image_item(image: &Image) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        ("containers".to_owned(), strings(&image.containers)),
        ("source_image".to_owned(), string(&image.source_image)),
        ("target_image".to_owned(), string(&image.target_image)),
        ("digest".to_owned(), string(image.digest.to_string())),
    ]))
}

fn deploy_item(deploy: &Deploy) -> AttributeValue {
    let mut item = HashMap::from([
        ("deployed_at".to_owned(), string(&deploy.deployed_at)),
        ("kind".to_owned(), string(deploy.kind.as_str())),
    ]);
    if let Some(sequence) = deploy.sequence {
        item.insert(
            "sequence".to_owned(),
            AttributeValue::N(sequence.to_string()),
        );
    }
    optional(&mut item, "build_arn", deploy.build_arn.as_ref());
    optional(&mut item, "initiator", deploy.initiator.as_ref());
    AttributeValue::M(item)
}

/// The item for a record: every field written here, and read back by [`from_item`].
fn to_item(record: &Record) -> Item {
    let mut item = HashMap::from([
        ("tag_name".to_owned(), string(&record.tag_name)),
        ("state".to_owned(), string(record.state.as_str())),
        ("commit".to_owned(), string(&record.commit)),
        ("digest".to_owned(), string(record.digest.to_string())),
        ("digests".to_owned(), string(record.digests())),
        ("source_image".to_owned(), string(&record.source_image)),
        ("target_image".to_owned(), string(&record.target_image)),
        ("containers".to_owned(), strings(&record.containers)),
        (
            "images".to_owned(),
            AttributeValue::L(record.images.iter().map(image_item).collect()),
        ),
        (
            "prerelease".to_owned(),
            AttributeValue::Bool(record.prerelease),
        ),
        (
            "deploys".to_owned(),
            AttributeValue::L(record.deploys.iter().map(deploy_item).collect()),
        ),
    ]);
    if !record.deliveries.is_empty() {
        item.insert(
            "deliveries".to_owned(),
            AttributeValue::Ss(record.deliveries.clone()),
        );
    }
    optional(&mut item, "promoted_at", record.promoted_at.as_ref());
    optional(&mut item, "release_name", record.release_name.as_ref());
    optional(&mut item, "html_url", record.html_url.as_ref());
    optional(&mut item, "author", record.author.as_ref());
    optional(&mut item, "published_at", record.published_at);
    optional(&mut item, "build_arn", record.build_arn.as_ref());
    if let Some(id) = record.release_id {
        item.insert("release_id".to_owned(), AttributeValue::N(id.to_string()));
    }
    item
}

/// One map's fields, read strictly: a field of the wrong type is a problem, not a blank.
struct Fields<'a> {
    item: &'a Item,
    /// Where the map is, for messages (`images[1].`).
    at: String,
}

impl<'a> Fields<'a> {
    fn problem(&self, name: &str, what: &str) -> String {
        format!("field {}{name} {what}", self.at)
    }

    fn text(&self, name: &str) -> Result<Option<&'a str>, String> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::S(text)) => Ok(Some(text)),
            Some(_) => Err(self.problem(name, "is not a string")),
        }
    }

    fn required(&self, name: &str) -> Result<&'a str, String> {
        self.text(name)?
            .ok_or_else(|| self.problem(name, "is missing"))
    }

    fn owned(&self, name: &str) -> Result<Option<String>, String> {
        Ok(self.text(name)?.map(str::to_owned))
    }

    fn parsed<T: std::str::FromStr<Err = String>>(&self, name: &str) -> Result<Option<T>, String> {
        self.text(name)?
            .map(|text| {
                text.parse()
                    .map_err(|e| self.problem(name, &format!("is wrong: {e}")))
            })
            .transpose()
    }

    fn number(&self, name: &str) -> Result<Option<u64>, String> {
        match self.item.get(name) {
            None => Ok(None),
            Some(AttributeValue::N(number)) => number
                .parse()
                .map(Some)
                .map_err(|_| self.problem(name, "is not a whole number")),
            Some(_) => Err(self.problem(name, "is not a number")),
        }
    }

    fn texts(&self, name: &str) -> Result<Vec<String>, String> {
        match self.item.get(name) {
            None => Ok(Vec::new()),
            Some(AttributeValue::Ss(set)) => Ok(set.clone()),
            Some(AttributeValue::L(list)) => list
                .iter()
                .map(|v| {
                    v.as_s()
                        .cloned()
                        .map_err(|_| self.problem(name, "holds a non-string"))
                })
                .collect(),
            Some(_) => Err(self.problem(name, "is not a list of strings")),
        }
    }

    fn maps(&self, name: &str) -> Result<Vec<Fields<'a>>, String> {
        match self.item.get(name) {
            None => Ok(Vec::new()),
            Some(AttributeValue::L(list)) => list
                .iter()
                .enumerate()
                .map(|(index, v)| match v {
                    AttributeValue::M(item) => Ok(Fields {
                        item,
                        at: format!("{}{name}[{index}].", self.at),
                    }),
                    _ => Err(self.problem(name, "holds a non-map")),
                })
                .collect(),
            Some(_) => Err(self.problem(name, "is not a list")),
        }
    }
}

fn image_of(fields: &Fields) -> Result<Image, String> {
    Ok(Image {
        containers: fields.texts("containers")?,
        source_image: fields.required("source_image")?.to_owned(),
        target_image: fields.required("target_image")?.to_owned(),
        digest: fields
            .parsed("digest")?
            .ok_or_else(|| fields.problem("digest", "is missing"))?,
    })
}

/// The record an item holds. Items written before claims have no `state` (they were written only once the
/// images were in production, so they are done) and, before multi-image releases, no `images`.
fn from_item(item: &Item) -> Result<Record, String> {
    let fields = Fields {
        item,
        at: String::new(),
    };
    let top = image_of(&fields)?;
    let mut images = fields
        .maps("images")?
        .iter()
        .map(image_of)
        .collect::<Result<Vec<_>, _>>()?;
    if images.is_empty() {
        images.push(Image {
            containers: fields.texts("containers")?,
            ..top.clone()
        });
    }
    let state = match fields.text("state")? {
        None | Some("done") => ReleaseState::Done,
        Some("pending") => ReleaseState::Pending,
        Some(other) => {
            return Err(fields.problem("state", &format!("is {other:?}, not pending or done")));
        }
    };
    let deploys = fields
        .maps("deploys")?
        .iter()
        .map(|deploy| {
            // Checked as an instant, so that deploys order by time where they have no sequence.
            deploy
                .parsed::<Timestamp>("deployed_at")?
                .ok_or_else(|| deploy.problem("deployed_at", "is missing"))?;
            Ok(Deploy {
                sequence: deploy.number("sequence")?,
                deployed_at: deploy.required("deployed_at")?.to_owned(),
                kind: match deploy.required("kind")? {
                    "promote" => DeployKind::Promote,
                    "redeploy" => DeployKind::Redeploy,
                    other => {
                        return Err(deploy
                            .problem("kind", &format!("is {other:?}, not promote or redeploy")));
                    }
                },
                build_arn: deploy.owned("build_arn")?,
                initiator: deploy.owned("initiator")?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let prerelease = match item.get("prerelease") {
        None => false,
        Some(AttributeValue::Bool(value)) => *value,
        Some(_) => return Err(fields.problem("prerelease", "is not a boolean")),
    };
    let release_id = fields.number("release_id")?;
    Ok(Record {
        tag_name: fields.required("tag_name")?.to_owned(),
        state,
        commit: fields.required("commit")?.to_owned(),
        digest: top.digest,
        source_image: top.source_image,
        target_image: top.target_image,
        containers: fields.texts("containers")?,
        images,
        promoted_at: fields.owned("promoted_at")?,
        release_name: fields.owned("release_name")?,
        html_url: fields.owned("html_url")?,
        author: fields.owned("author")?,
        prerelease,
        published_at: fields.parsed("published_at")?,
        release_id,
        build_arn: fields.owned("build_arn")?,
        deliveries: fields.texts("deliveries")?,
        deploys,
    })
}

/// An update expression built from named values, every name escaped (`commit` is a DynamoDB reserved word).
#[derive(Default)]
struct Update {
    sets: Vec<String>,
    adds: Vec<String>,
    removes: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Update {
    fn name(&mut self, name: &str) -> String {
        self.names.insert(format!("#{name}"), name.to_owned());
        format!("#{name}")
    }

    fn value(&mut self, name: &str, value: AttributeValue) -> String {
        self.values.insert(format!(":{name}"), value);
        format!(":{name}")
    }

    fn set(&mut self, name: &str, value: AttributeValue) {
        let (key, value) = (self.name(name), self.value(name, value));
        self.sets.push(format!("{key} = {value}"));
    }

    /// Set only where the item has no value yet.
    fn keep(&mut self, name: &str, value: AttributeValue) {
        let (key, value) = (self.name(name), self.value(name, value));
        self.sets
            .push(format!("{key} = if_not_exists({key}, {value})"));
    }

    fn add_delivery(&mut self, delivery: Option<&str>) {
        if let Some(delivery) = delivery {
            let key = self.name("deliveries");
            let value = self.value("delivery", AttributeValue::Ss(vec![delivery.to_owned()]));
            self.adds.push(format!("{key} {value}"));
        }
    }

    /// The same commit and digests as `record`: the condition under which a claim is ours.
    fn same_release(&mut self, record: &Record) -> String {
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

    fn expression(&self) -> String {
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

#[derive(Clone)]
pub struct Ledger {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

/// A value no other run's claim will carry.
fn claim_token() -> String {
    use std::hash::BuildHasher;
    let seed = (std::time::SystemTime::now(), std::process::id());
    format!(
        "{:016x}",
        std::collections::hash_map::RandomState::new().hash_one(seed)
    )
}

/// Now, as the ledger writes times: RFC 3339 UTC, whole seconds.
pub fn now() -> String {
    time_text(std::time::SystemTime::now())
}

/// `at` as the ledger writes times: RFC 3339, whole seconds, UTC.
pub fn time_text(at: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
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

    fn unreadable(&self, tag: &str, problem: String) -> Unreadable {
        Unreadable {
            table: self.table.clone(),
            tag: tag.to_owned(),
            problem,
        }
    }

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
    async fn read(&self, tag: &str) -> Result<Option<(Record, Item)>> {
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

    async fn update(
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

/// A done single-image release, for tests here and in the modules that show records.
#[cfg(test)]
pub(crate) fn example(tag: &str) -> Record {
    let digest: Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
    let image = Image {
        containers: vec!["api".into()],
        source_image: format!("s/api@{digest}"),
        target_image: format!("p/api:{tag}"),
        digest,
    };
    let mut record =
        Record::pending(tag, "3f2a9c1e5b7d4c8a9f0e1d2c3b4a5f6e7d8c9b0a", vec![image]).unwrap();
    record.state = ReleaseState::Done;
    record.promoted_at = Some("2026-01-01T00:00:00Z".into());
    record
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy;

    fn full() -> Record {
        let mut record = example("v1");
        let second = Image {
            containers: vec!["worker".into(), "cron".into()],
            source_image: "s/worker@sha256:1".into(),
            target_image: "p/worker:v1".into(),
            digest: format!("sha256:{}", "cd".repeat(32)).parse().unwrap(),
        };
        record.images.push(second);
        record.containers = vec!["api".into(), "worker".into(), "cron".into()];
        record.release_name = Some("One".into());
        record.html_url = Some("https://github.com/o/r/releases/tag/v1".into());
        record.author = Some("octocat".into());
        record.prerelease = true;
        record.published_at = Some("2026-01-01T00:00:00.5+01:00".parse().unwrap());
        record.release_id = Some(1234);
        record.build_arn = Some("arn:b".into());
        record.deliveries = vec!["d-1".into()];
        record.deploys = vec![Deploy {
            sequence: Some(7),
            deployed_at: "2026-01-02T00:00:00Z".into(),
            kind: DeployKind::Redeploy,
            build_arn: Some("arn:b".into()),
            initiator: Some("alice".into()),
        }];
        record
    }

    #[test]
    fn every_field_survives_the_round_trip() {
        for record in [full(), example("v2")] {
            assert_eq!(from_item(&to_item(&record)), Ok(record));
        }
        assert_eq!(full().last_deployed_at(), Some("2026-01-02T00:00:00Z"));
    }

    #[test]
    fn a_missing_or_mistyped_field_is_named_not_read_as_blank() {
        let item = to_item(&full());
        let broken = |change: &dyn Fn(&mut Item)| {
            let mut item = item.clone();
            change(&mut item);
            from_item(&item).unwrap_err()
        };
        for (problem, says) in [
            (
                broken(&|i| drop(i.remove("commit"))),
                "field commit is missing",
            ),
            (
                broken(&|i| drop(i.remove("digest"))),
                "field digest is missing",
            ),
            (
                broken(&|i| drop(i.insert("commit".into(), AttributeValue::N("1".into())))),
                "field commit is not a string",
            ),
            (
                broken(&|i| drop(i.insert("digest".into(), string("sha256:1")))),
                "field digest is wrong",
            ),
            (
                broken(&|i| drop(i.insert("state".into(), string("half")))),
                "field state is \"half\"",
            ),
            (
                broken(&|i| drop(i.insert("published_at".into(), string("garbage")))),
                "field published_at is wrong",
            ),
            (
                broken(&|i| {
                    let mut images = i["images"].as_l().unwrap().clone();
                    let mut second = images[1].as_m().unwrap().clone();
                    second.remove("target_image");
                    images[1] = AttributeValue::M(second);
                    i.insert("images".into(), AttributeValue::L(images));
                }),
                "field images[1].target_image is missing",
            ),
        ] {
            assert!(problem.contains(says), "{problem}");
        }
    }

    #[test]
    fn items_written_before_claims_and_image_lists_read_as_done_single_images() {
        let mut item = to_item(&example("v1"));
        for name in ["state", "images", "digests"] {
            item.remove(name);
        }
        let record = from_item(&item).unwrap();
        assert_eq!(record.state, ReleaseState::Done);
        assert_eq!(record.images, example("v1").images);
    }

    /// A done release of `tag`, published at second `published` of a day, never deployed.
    fn published(tag: &str, published: u32) -> Record {
        let mut record = example(tag);
        record.published_at = Some(format!("2026-01-01T00:00:{published:02}Z").parse().unwrap());
        record
    }

    fn deploy(sequence: Option<u64>, at: &str) -> Deploy {
        Deploy {
            sequence,
            deployed_at: at.into(),
            kind: DeployKind::Promote,
            build_arn: None,
            initiator: None,
        }
    }

    proptest::proptest! {
        /// Whatever the deploy times (many in one second) and the order the table lists records in, the release
        /// chosen as deployed last is the one whose deploy was recorded last; a release only promoted, however
        /// late, is never chosen.
        #[test]
        fn the_release_deployed_last_is_chosen_whatever_the_times_and_list_order(
            deployed in proptest::collection::vec(0usize..4, 1..12),
            steps in proptest::collection::vec(0u64..2, 12),
            listed in proptest::strategy::Just((0..5).collect::<Vec<usize>>()).prop_shuffle(),
        ) {
            let mut records: Vec<Record> = (0..5).map(|i| published(&format!("v1.{i}.0"), i as u32)).collect();
            // Release 4 is promoted after every deploy but never deployed.
            records[4].promoted_at = Some("2026-01-02T00:00:00Z".into());
            let mut second = 0;
            for (index, (&release, step)) in deployed.iter().zip(&steps).enumerate() {
                second += step;
                records[release].deploys.push(deploy(
                    Some(index as u64 + 1),
                    &format!("2026-01-01T00:01:{second:02}Z"),
                ));
            }
            let listed: Vec<Record> = listed.iter().map(|&i| records[i].clone()).collect();
            let chosen = last_shipped(&listed).map(|r| r.tag_name.clone());
            proptest::prop_assert_eq!(chosen, Some(format!("v1.{}.0", deployed.last().unwrap())));
        }
    }

    #[test]
    fn deploys_recorded_before_sequences_order_by_time_then_by_publication() {
        let mut older = published("v1.0.0", 1);
        let mut newer = published("v1.1.0", 2);
        older.deploys = vec![deploy(None, "2026-01-01T00:01:00Z")];
        newer.deploys = vec![deploy(None, "2026-01-01T00:01:00Z")];
        for listed in [
            vec![older.clone(), newer.clone()],
            vec![newer.clone(), older.clone()],
        ] {
            assert_eq!(last_shipped(&listed).unwrap().tag_name, "v1.1.0");
        }
        // A later time wins over publication; a numbered deploy wins over any deploy recorded before numbering.
        older.deploys.push(deploy(None, "2026-01-01T00:01:01Z"));
        assert_eq!(
            last_shipped(&[newer.clone(), older.clone()])
                .unwrap()
                .tag_name,
            "v1.0.0"
        );
        newer.deploys.push(deploy(Some(1), "2026-01-01T00:00:59Z"));
        assert_eq!(last_shipped(&[older, newer]).unwrap().tag_name, "v1.1.0");
    }

    #[test]
    fn history_lists_promotions_of_one_second_published_later_first_and_fractions_as_instants() {
        let mut records = vec![
            published("v1.0.0", 1),
            published("v1.2.0", 3),
            published("v1.1.0", 2),
        ];
        for record in &mut records {
            record.promoted_at = Some("2026-01-01T00:05:00Z".into());
        }
        let mut later = published("v0.9.0", 0);
        later.promoted_at = Some("2026-01-01T00:05:00.5Z".into());
        records.push(later);
        records.sort_by(newest_first);
        let tags: Vec<&str> = records.iter().map(|r| r.tag_name.as_str()).collect();
        assert_eq!(tags, ["v0.9.0", "v1.2.0", "v1.1.0", "v1.0.0"]);
    }

    #[test]
    fn a_deploy_time_that_is_no_instant_is_named() {
        let mut record = full();
        record.deploys[0].deployed_at = "yesterday".into();
        let problem = from_item(&to_item(&record)).unwrap_err();
        assert!(
            problem.contains("field deploys[0].deployed_at is wrong"),
            "{problem}"
        );
    }

    #[test]
    fn a_different_commit_or_digest_conflicts_the_same_does_not() {
        let recorded = full();
        assert!(recorded.conflict_with(&recorded, "t").is_none());
        let mut other = recorded.clone();
        other.commit = "def".into();
        let conflict = other.conflict_with(&recorded, "t").unwrap().to_string();
        assert!(
            conflict.contains("already recorded")
                && conflict.contains("commit 3f2a9c1e")
                && conflict.contains("not commit def"),
            "{conflict}"
        );
        let mut other = recorded.clone();
        other.images[1].digest = format!("sha256:{}", "ef".repeat(32)).parse().unwrap();
        assert!(
            other.conflict_with(&recorded, "t").is_some(),
            "a second image's digest counts"
        );
        let mut claimed = recorded.clone();
        claimed.state = ReleaseState::Pending;
        let conflict = other.conflict_with(&claimed, "t").unwrap().to_string();
        assert!(conflict.contains("claimed by a promotion"), "{conflict}");
    }
}
