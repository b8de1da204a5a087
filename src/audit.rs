//! Every recorded release checked against the registries: its production tag still on the recorded digest
//! (drift if not), the staging image of its commit still there with that digest (a warning if expired: the
//! release can still be redeployed from production, not promoted again), and the ledger items that are
//! pending or unreadable, listed as such.
//!
//! [`findings`] decides from the checks' outcomes; [`audit`] makes the checks, a bounded number at once.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use anyhow::{Context, Result};
use futures_util::{StreamExt, TryStreamExt};
use serde::Serialize;

use crate::gates::GateRecord;
use crate::ledger::{Record, ReleaseState, Releases, Unreadable};
use crate::registry::{
    Connector, Digest, Pointer, Reference, Registry, RegistryError, Repository, Side,
};

/// What a release's production tag holds now.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum Production {
    /// The recorded digest.
    Holds,
    Moved {
        digest: Digest,
    },
    Gone,
}

/// What staging holds for the release's commit now.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum Staging {
    /// The commit's tag, on the recorded digest.
    Present { tag: String },
    /// The commit's tag, on another digest (the commit was built again).
    Moved { tag: String, digest: Digest },
    /// No tag names the commit any more (a lifecycle policy expired it).
    Expired,
    /// Several tags abbreviate the commit.
    Ambiguous { tags: Vec<String> },
}

#[derive(Clone, Debug, Serialize)]
pub struct ImageAudit {
    pub containers: Vec<String>,
    pub target_image: String,
    pub staging_repository: String,
    pub recorded_digest: Digest,
    pub production: Production,
    pub staging: Staging,
}

#[derive(Clone, Debug, Serialize)]
pub struct ReleaseAudit {
    pub tag: String,
    pub state: ReleaseState,
    pub commit: String,
    pub promoted_at: Option<String>,
    pub images: Vec<ImageAudit>,
    /// The promotion gates' evidence, as recorded.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<GateRecord>,
}

#[derive(Clone, Debug, Serialize)]
pub struct AuditReport {
    /// Newest promotion first, as the ledger lists them.
    pub releases: Vec<ReleaseAudit>,
    pub unreadable: Vec<Unreadable>,
    /// Release tags not on their recorded digest: exit 3.
    pub drift: Vec<String>,
    /// Expired or rebuilt staging images, promotions never completed, unreadable items.
    pub warnings: Vec<String>,
}

/// The drift and the warnings in the checked releases and the unreadable items.
pub fn findings(
    releases: &[ReleaseAudit],
    unreadable: &[Unreadable],
) -> (Vec<String>, Vec<String>) {
    let (mut drift, mut warnings) = (Vec::new(), Vec::new());
    for release in releases {
        let tag = &release.tag;
        let pending = release.state == ReleaseState::Pending;
        for image in &release.images {
            let (target, recorded) = (&image.target_image, &image.recorded_digest);
            match (&image.production, pending) {
                (Production::Holds, false) => {}
                (Production::Moved { digest }, _) => drift.push(format!(
                    "release {tag}'s production tag {target} is on {digest}, not on the recorded {recorded}: \
                     someone pushed over it; push {recorded} back under the tag (ecr-promote copy --force)"
                )),
                (Production::Gone, false) => drift.push(format!(
                    "release {tag}'s production tag {target} is gone from the production registry (recorded \
                     {recorded}): promote it again (ecr-promote promote --tag {tag} --commit {})",
                    release.commit
                )),
                (Production::Holds, true) => warnings.push(format!(
                    "release {tag} is pending: its promotion never completed, though {target} holds the \
                     recorded {recorded}; promote it again to complete it"
                )),
                (Production::Gone, true) => warnings.push(format!(
                    "release {tag} is pending: claimed, never promoted ({target} does not exist); promote it \
                     again, or delete the claim if it was abandoned"
                )),
            }
            let staging = &image.staging_repository;
            match &image.staging {
                Staging::Present { .. } => {}
                Staging::Expired => warnings.push(format!(
                    "release {tag}: the staging image of commit {} is gone from {staging} (expired?); the \
                     release can still be redeployed from production, not promoted again",
                    release.commit
                )),
                Staging::Moved { tag: staged, digest } => warnings.push(format!(
                    "release {tag}: staging tag {staging}:{staged} of commit {} is now {digest}, not the \
                     recorded {recorded} (built again?)",
                    release.commit
                )),
                Staging::Ambiguous { tags } => warnings.push(format!(
                    "release {tag}: several staging tags in {staging} abbreviate commit {}: {}",
                    release.commit,
                    tags.join(", ")
                )),
            }
        }
    }
    for release in releases {
        warnings.extend(gate_findings(release));
    }
    for item in unreadable {
        warnings.push(format!(
            "ledger item {} is unreadable: {}",
            item.tag, item.problem
        ));
    }
    (drift, warnings)
}

/// What the recorded gate evidence says that a person should know: a gate overridden, and evidence that is
/// not of the digests the release recorded (written by hand, or for another image).
fn gate_findings(release: &ReleaseAudit) -> Vec<String> {
    let mut found = Vec::new();
    for gate in &release.gates {
        let name = gate.gate.as_str();
        if let Some(o) = &gate.overridden {
            found.push(format!(
                "release {} was promoted past the {name} gate by {} at {}: {} (it refused: {})",
                release.tag, o.by, gate.checked_at, o.reason, o.refusal
            ));
        }
        let image = gate.image();
        let of_release = release
            .images
            .iter()
            .any(|i| image.ends_with(&format!("@{}", i.recorded_digest)));
        if !of_release {
            found.push(format!(
                "release {}: the {name} gate's evidence is of {image}, which is none of the release's recorded \
                 digests",
                release.tag
            ));
        }
    }
    found
}

/// One image to check, its references parsed.
struct Job<'a> {
    record: &'a Record,
    index: usize,
    target: Reference,
    staging: Repository,
}

fn parsed(record: &Record, what: &str, text: &str) -> Result<Reference> {
    text.parse::<Reference>()
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("release {} has a bad {what} in the ledger", record.tag_name))
}

/// Every release in `releases` checked against its production and staging registries, `concurrency` checks
/// at once. Each registry is opened once; each staging repository's tags are listed once.
pub async fn audit(
    releases: &Releases,
    connector: &Connector,
    concurrency: usize,
) -> Result<AuditReport> {
    let mut jobs = Vec::new();
    for record in &releases.records {
        for (index, image) in record.images.iter().enumerate() {
            let source = parsed(record, "source_image", &image.source_image)?;
            jobs.push(Job {
                record,
                index,
                target: parsed(record, "target_image", &image.target_image)?,
                staging: Repository {
                    host: source.host,
                    name: source.repository,
                },
            });
        }
    }
    // The connector opens each registry once and shares it; the tag lists are what is worth keeping here.
    let mut staging_tags: HashMap<String, Vec<String>> = HashMap::new();
    for job in &jobs {
        if let Entry::Vacant(slot) = staging_tags.entry(job.staging.to_string()) {
            let source = connector.connect(&job.staging.host, Side::Source).await?;
            slot.insert(match source.tags(&job.staging.name).await {
                Ok(tags) => tags,
                // The whole repository is gone: every staging image in it has expired.
                Err(RegistryError::NameUnknown { .. }) => Vec::new(),
                Err(e) => return Err(e.into()),
            });
        }
    }
    let checked: Vec<(Production, Staging)> = futures_util::stream::iter(&jobs)
        .map(|job| {
            let tags = &staging_tags[&job.staging.to_string()];
            async move {
                let target = connector.connect(&job.target.host, Side::Target).await?;
                let source = connector.connect(&job.staging.host, Side::Source).await?;
                check(job, &target, &source, tags).await
            }
        })
        .buffered(concurrency.max(1))
        .try_collect()
        .await?;

    let mut outcomes = jobs.iter().zip(checked).peekable();
    let mut audited = Vec::new();
    for record in &releases.records {
        let mut images = Vec::new();
        while let Some((job, (production, staging))) =
            outcomes.next_if(|(job, _)| std::ptr::eq(job.record, record))
        {
            let image = &record.images[job.index];
            images.push(ImageAudit {
                containers: image.containers.clone(),
                target_image: image.target_image.clone(),
                staging_repository: job.staging.to_string(),
                recorded_digest: image.digest.clone(),
                production,
                staging,
            });
        }
        audited.push(ReleaseAudit {
            tag: record.tag_name.clone(),
            state: record.state,
            commit: record.commit.clone(),
            promoted_at: record.promoted_at.clone(),
            images,
            gates: record.gates.clone(),
        });
    }
    let unreadable = releases.unreadable.clone();
    let (drift, warnings) = findings(&audited, &unreadable);
    Ok(AuditReport {
        releases: audited,
        unreadable,
        drift,
        warnings,
    })
}

/// One image: what its production tag and its commit's staging tag hold.
async fn check(
    job: &Job<'_>,
    target: &Registry,
    source: &Registry,
    staging_tags: &[String],
) -> Result<(Production, Staging)> {
    let recorded = &job.record.images[job.index].digest;
    let production = match target.manifest_digest(&job.target).await? {
        Some(digest) if digest == *recorded => Production::Holds,
        Some(digest) => Production::Moved { digest },
        None => Production::Gone,
    };
    let staging = match crate::resolve::commit_tag(staging_tags, &job.record.commit) {
        Err(several) => Staging::Ambiguous {
            tags: several.into_iter().map(str::to_owned).collect(),
        },
        Ok(None) => Staging::Expired,
        Ok(Some(tag)) => {
            let staged = job.staging.at(Pointer::Tag(tag.to_owned()));
            match source.manifest_digest(&staged).await? {
                Some(digest) if digest == *recorded => Staging::Present {
                    tag: tag.to_owned(),
                },
                Some(digest) => Staging::Moved {
                    tag: tag.to_owned(),
                    digest,
                },
                // Expired between the listing and now.
                None => Staging::Expired,
            }
        }
    };
    Ok((production, staging))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(byte: &str) -> Digest {
        format!("sha256:{}", byte.repeat(32)).parse().unwrap()
    }

    fn release(
        tag: &str,
        state: ReleaseState,
        production: Production,
        staging: Staging,
    ) -> ReleaseAudit {
        ReleaseAudit {
            tag: tag.into(),
            state,
            commit: "3f2a9c1e5b7d4c8a9f0e1d2c3b4a5f6e7d8c9b0a".into(),
            promoted_at: None,
            gates: Vec::new(),
            images: vec![ImageAudit {
                containers: vec!["api".into()],
                target_image: format!("p.example/api:{tag}"),
                staging_repository: "s.example/api".into(),
                recorded_digest: digest("aa"),
                production,
                staging,
            }],
        }
    }

    fn present() -> Staging {
        Staging::Present {
            tag: "3f2a9c1".into(),
        }
    }

    #[test]
    fn only_a_done_release_whose_tag_moved_or_went_is_drift() {
        use ReleaseState::{Done, Pending};
        let releases = [
            release("v1", Done, Production::Holds, present()),
            release(
                "v2",
                Done,
                Production::Moved {
                    digest: digest("bb"),
                },
                present(),
            ),
            release("v3", Done, Production::Gone, present()),
            release("v4", Pending, Production::Gone, present()),
            release("v5", Pending, Production::Holds, present()),
            release("v6", Done, Production::Holds, Staging::Expired),
            release(
                "v7",
                Done,
                Production::Holds,
                Staging::Moved {
                    tag: "3f2a9c1".into(),
                    digest: digest("cc"),
                },
            ),
        ];
        let unreadable = [Unreadable {
            table: "releases".into(),
            tag: "v0".into(),
            problem: "field commit is missing".into(),
        }];

        let (drift, warnings) = findings(&releases, &unreadable);

        assert_eq!(drift.len(), 2, "{drift:?}");
        assert!(
            drift[0].contains("release v2")
                && drift[0].contains("p.example/api:v2")
                && drift[0].contains(&digest("bb").to_string())
                && drift[0].contains(&digest("aa").to_string()),
            "{drift:?}"
        );
        assert!(
            drift[1].contains("release v3") && drift[1].contains("gone"),
            "{drift:?}"
        );
        let said: Vec<&str> = warnings
            .iter()
            .map(|w| w.split([' ', ':']).nth(1).unwrap_or_default())
            .collect();
        assert_eq!(said, ["v4", "v5", "v6", "v7", "item"], "{warnings:?}");
        assert!(
            warnings[2].contains("redeployed from production"),
            "{warnings:?}"
        );
        assert!(warnings[4].contains("v0") && warnings[4].contains("field commit is missing"));
    }

    #[test]
    fn an_overridden_gate_and_evidence_of_another_image_are_warned_of() {
        let mut audited = release("v1", ReleaseState::Done, Production::Holds, present());
        let mut gate = crate::ledger::full().gates.remove(0);
        gate.vulnerabilities.as_mut().unwrap().image = format!("s.example/api@{}", digest("aa"));
        audited.gates = vec![gate.clone()];

        let (drift, warnings) = findings(&[audited.clone()], &[]);

        assert!(drift.is_empty(), "{drift:?}");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        for said in [
            "promoted past the vulnerabilities gate",
            "arn:aws:sts::222222222222:assumed-role/oncall/alice",
            "hotfix",
        ] {
            assert!(warnings[0].contains(said), "says {said}: {warnings:?}");
        }

        gate.overridden = None;
        gate.vulnerabilities.as_mut().unwrap().image = format!("s.example/api@{}", digest("bb"));
        audited.gates = vec![gate];
        let (_, warnings) = findings(&[audited], &[]);
        assert!(
            warnings.len() == 1 && warnings[0].contains("none of the release's recorded digests"),
            "{warnings:?}"
        );
    }
}
