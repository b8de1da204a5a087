//! One promotion, start to end: release → commit → staging image → copy → ledger → deploy files.

pub mod run;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::deploy_files::DeployFiles;
use crate::intake::Release;
use crate::ledger::{Ledger, Record};
use crate::registry::{
    self, Connector, CopyOptions, Digest, Pointer, Reference, Registry, RegistryError, Repository,
    Side, valid_tag,
};
use crate::resolve;

/// Everything a promotion needs to know, checked before anything is touched.
#[derive(Clone, Debug)]
pub struct Settings {
    pub source: Repository,
    pub target: Repository,
    pub deploy: DeployFiles,
    /// Deploy `repo@sha256:…` instead of `repo:tag`.
    pub pin_digest: bool,
    /// The git checkout in which release tags are resolved when the release names a branch.
    pub checkout: Option<PathBuf>,
    pub build_arn: Option<String>,
    /// Read only: say what would be done.
    pub dry_run: bool,
    pub copy: CopyOptions,
}

/// A release that is in production (or, in a dry run, would be).
#[derive(Clone, Debug)]
pub struct Promotion {
    pub tag: String,
    pub commit: String,
    pub digest: Digest,
    pub target: Reference,
}

pub struct Promoter {
    settings: Settings,
    source: Registry,
    /// `None` when the target is the source registry itself.
    target: Option<Registry>,
    ledger: Ledger,
}

impl Promoter {
    pub async fn open(
        settings: Settings,
        connector: &Connector,
        ledger: Ledger,
    ) -> Result<Promoter> {
        let source = connector
            .connect(&settings.source.host, Side::Source)
            .await?;
        let target = if settings.target.host == settings.source.host {
            None
        } else {
            Some(
                connector
                    .connect(&settings.target.host, Side::Target)
                    .await?,
            )
        };
        Ok(Promoter {
            settings,
            source,
            target,
            ledger,
        })
    }

    fn target(&self) -> &Registry {
        self.target.as_ref().unwrap_or(&self.source)
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub fn dry_run(&self) -> bool {
        self.settings.dry_run
    }

    /// Copies the release's staging image to production under the release tag and records it.
    pub async fn promote(&self, release: &Release) -> Result<Promotion> {
        let tag = &release.tag_name;
        if !valid_tag(tag) {
            bail!(
                "release tag {tag:?} cannot be an image tag (letters, digits, '_', '.', '-', at most 128, not \
                 starting with '.' or '-'): rename the release"
            );
        }
        let started = Instant::now();
        let commit = resolve::commit_of(
            tag,
            &release.target_commitish,
            self.settings.checkout.as_deref(),
        )
        .await?;
        let staging = resolve::staging_image(&self.source, &self.settings.source, &commit).await?;
        tracing::info!(release = %tag, %commit, staging = %staging, ms = started.elapsed().as_millis() as u64, "resolved staging image");

        let target = self.settings.target.at(Pointer::Tag(tag.clone()));
        let inspection = registry::inspect(&self.source, &staging, self.target(), &target).await?;
        let digest = inspection.root.digest.clone();
        let record = Record {
            tag_name: tag.clone(),
            commit: commit.clone(),
            digest: digest.to_string(),
            source_image: format!("{}@{digest}", self.settings.source),
            target_image: target.to_string(),
            containers: self.settings.deploy.containers.clone(),
            promoted_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now())
                .to_string(),
            release_name: release.name.clone(),
            html_url: release.html_url.clone(),
            author: release.author.clone(),
            prerelease: release.prerelease,
            published_at: release.published_at.clone(),
            build_arn: self.settings.build_arn.clone(),
        };
        // Checked before the copy so that a release the ledger would refuse leaves the registry untouched.
        if let Some(recorded) = self.ledger.get(tag).await?
            && let Some(conflict) = record.conflict_with(&recorded, self.ledger.table())
        {
            return Err(conflict.into());
        }

        let started = Instant::now();
        if self.settings.dry_run {
            if inspection.already_there(&target, false)? {
                println!("dry run: {target} is already {digest}; nothing to copy");
            } else {
                println!("dry run: would copy {staging} ({digest}) to {target}");
            }
        } else {
            let report = registry::copy_inspected(
                &self.source,
                &staging,
                self.target(),
                &target,
                inspection,
                self.settings.copy,
            )
            .await?;
            tracing::info!(
                release = %tag, target = %target, digest = %report.digest, already_there = report.already_there,
                blobs_copied = report.blobs_copied, blobs_skipped = report.blobs_skipped, bytes = report.bytes_copied,
                ms = started.elapsed().as_millis() as u64, "copied image"
            );
        }

        let started = Instant::now();
        if self.settings.dry_run {
            println!(
                "dry run: would record release {tag} (commit {commit}, {digest}) in table {}",
                self.ledger.table()
            );
        } else {
            self.ledger.record(&record).await?;
            tracing::info!(release = %tag, table = self.ledger.table(), ms = started.elapsed().as_millis() as u64, "recorded release");
        }
        Ok(Promotion {
            tag: tag.clone(),
            commit,
            digest,
            target,
        })
    }

    /// Writes the deploy files for a promotion (in a dry run, prints them).
    pub fn deploy(&self, promotion: &Promotion) -> Result<()> {
        let image_uri = if self.settings.pin_digest {
            format!("{}@{}", self.settings.target, promotion.digest)
        } else {
            promotion.target.to_string()
        };
        if self.settings.dry_run {
            for (path, contents) in self.settings.deploy.render(&image_uri) {
                println!("dry run: would write {}:\n{contents}", path.display());
            }
            return Ok(());
        }
        self.settings.deploy.write(&image_uri)?;
        tracing::info!(release = %promotion.tag, image = %image_uri, file = %self.settings.deploy.imagedefinitions.display(), "wrote deploy files");
        println!(
            "deploying {} ({}) from commit {}",
            image_uri, promotion.digest, promotion.commit
        );
        Ok(())
    }

    /// The newest recorded release, checked to still be in production on its recorded digest.
    pub async fn latest_recorded(&self) -> Result<Option<Promotion>> {
        let Some(record) = self.ledger.latest().await? else {
            return Ok(None);
        };
        let target: Reference = record
            .target_image
            .parse()
            .map_err(anyhow::Error::msg)
            .with_context(|| {
                format!(
                    "release {} in table {} has a bad target_image",
                    record.tag_name,
                    self.ledger.table()
                )
            })?;
        let recorded: Digest = record.digest.parse().map_err(anyhow::Error::msg)?;
        match self.target().manifest_digest(&target).await? {
            Some(current) if current == recorded => Ok(Some(Promotion {
                tag: record.tag_name,
                commit: record.commit,
                digest: recorded,
                target,
            })),
            Some(current) => Err(RegistryError::TagMoved {
                target: target.to_string(),
                existing: current,
                incoming: recorded,
            }
            .into()),
            None => bail!(
                "release {} is recorded but {target} is gone from the production registry",
                record.tag_name
            ),
        }
    }
}
