//! A record as a DynamoDB item, written whole and read strictly: a field of the wrong type is a problem named
//! with its place, never a blank.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::record::{Deploy, DeployKind, GithubMark, Image, Outcome, Record, ReleaseState};
use crate::timestamp::Timestamp;

pub(super) type Item = HashMap<String, AttributeValue>;

pub(super) fn string(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn strings(values: &[String]) -> AttributeValue {
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

pub(super) fn deploy_item(deploy: &Deploy) -> AttributeValue {
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
    if let Some(outcome) = &deploy.outcome {
        item.insert("outcome".to_owned(), outcome_item(outcome));
    }
    if let Some(github) = &deploy.github {
        item.insert("github".to_owned(), github_item(github));
    }
    AttributeValue::M(item)
}

pub(super) fn outcome_item(outcome: &Outcome) -> AttributeValue {
    let mut item = HashMap::from([
        ("state".to_owned(), string(outcome.state.as_str())),
        ("deployment_id".to_owned(), string(&outcome.deployment_id)),
        ("at".to_owned(), string(&outcome.at)),
    ]);
    optional(&mut item, "reason", outcome.reason.as_ref());
    optional(&mut item, "rolled_back_to", outcome.rolled_back_to.as_ref());
    AttributeValue::M(item)
}

pub(super) fn github_item(mark: &GithubMark) -> AttributeValue {
    let mut item = HashMap::from([("repository".to_owned(), string(&mark.repository))]);
    if let Some(id) = mark.deployment_id {
        item.insert(
            "deployment_id".to_owned(),
            AttributeValue::N(id.to_string()),
        );
    }
    optional(&mut item, "posted", mark.posted.as_ref());
    optional(&mut item, "owed", mark.owed.as_ref());
    AttributeValue::M(item)
}

fn github_of(fields: &Fields) -> Result<GithubMark, String> {
    Ok(GithubMark {
        repository: fields.required("repository")?.to_owned(),
        deployment_id: fields.number("deployment_id")?,
        posted: fields.owned("posted")?,
        owed: fields.owned("owed")?,
    })
}

/// The item for a record: every field written here, and read back by [`from_item`].
pub(super) fn to_item(record: &Record) -> Item {
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
    optional(&mut item, "repository", record.repository.as_ref());
    if !record.gates.is_empty() {
        // One JSON text: the evidence's shape is the gates' own, read back whole by serde.
        let gates = serde_json::to_string(&record.gates).expect("gate records serialise");
        item.insert("gates".to_owned(), string(gates));
    }
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

    fn map(&self, name: &str) -> Result<Option<Fields<'a>>, String> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::M(item)) => Ok(Some(Fields {
                item,
                at: format!("{}{name}.", self.at),
            })),
            Some(_) => Err(self.problem(name, "is not a map")),
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

fn outcome_of(fields: &Fields) -> Result<Outcome, String> {
    Ok(Outcome {
        state: fields
            .parsed("state")?
            .ok_or_else(|| fields.problem("state", "is missing"))?,
        deployment_id: fields.required("deployment_id")?.to_owned(),
        at: fields.required("at")?.to_owned(),
        reason: fields.owned("reason")?,
        rolled_back_to: fields.owned("rolled_back_to")?,
    })
}

/// The record an item holds. Items written before claims have no `state` (they were written only once the
/// images were in production, so they are done) and, before multi-image releases, no `images`.
pub(super) fn from_item(item: &Item) -> Result<Record, String> {
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
                outcome: deploy
                    .map("outcome")?
                    .as_ref()
                    .map(outcome_of)
                    .transpose()?,
                github: deploy.map("github")?.as_ref().map(github_of).transpose()?,
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
        repository: fields.owned("repository")?,
        deliveries: fields.texts("deliveries")?,
        deploys,
        gates: match fields.text("gates")? {
            None => Vec::new(),
            Some(text) => serde_json::from_str(text).map_err(|e| {
                fields.problem("gates", &format!("is not the gates' evidence: {e}"))
            })?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{example, full};

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
                broken(&|i| {
                    let mut deploys = i["deploys"].as_l().unwrap().clone();
                    let mut first = deploys[0].as_m().unwrap().clone();
                    let mut outcome = first["outcome"].as_m().unwrap().clone();
                    outcome.insert("state".into(), string("vanished"));
                    first.insert("outcome".into(), AttributeValue::M(outcome));
                    deploys[0] = AttributeValue::M(first);
                    i.insert("deploys".into(), AttributeValue::L(deploys));
                }),
                "field deploys[0].outcome.state is wrong",
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
}
