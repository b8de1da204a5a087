//! One promotion, start to end: release → commit → staging images → copies → ledger → deploy files; and the
//! way back: redeploying a recorded release.

pub mod routes;
pub mod run;
pub mod wake;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::deploy_files::{DeployFiles, ImageDefinition};
use crate::events::{Event, ImageRef, Publisher, ReleaseRef};
use crate::gates::Gatekeeper;
use crate::github::{Deployments, Shipped};
use crate::intake::Release;
pub use crate::ledger::DeployKind;
use crate::ledger::{Deploy, Image, Ledger, Record, ReleaseState, now};
use crate::registry::{
    self, Connector, CopyOptions, Digest, Inspection, Pointer, Progress, Reference, Registry,
    RegistryError, Side,
};
use crate::resolve;
pub use routes::Route;

/// Everything a promotion needs to know, checked before anything is touched.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The images a release ships; empty for commands that only read the ledger or redeploy.
    pub routes: Vec<Route>,
    pub deploy: DeployFiles,
    /// Deploy `repo@sha256:…` instead of `repo:tag`.
    pub pin_digest: bool,
    /// The git checkout in which release tags are resolved when the release names a branch.
    pub checkout: Option<PathBuf>,
    pub build_arn: Option<String>,
    /// Who started the run, recorded with each deploy.
    pub initiator: Option<String>,
    pub copy: CopyOptions,
    /// Copy signatures, attestations and SBOMs that refer to each image too.
    pub with_referrers: bool,
    /// How often a copy still moving logs how far it has got.
    pub progress_every: std::time::Duration,
}

/// One image of a release, in production (or, in a dry run, about to be).
#[derive(Clone, Debug)]
pub struct PromotedImage {
    pub containers: Vec<String>,
    pub target: Reference,
    pub digest: Digest,
}

/// A release that is in production (or, in a dry run, would be).
#[derive(Clone, Debug)]
pub struct Promotion {
    pub tag: String,
    pub commit: String,
    pub images: Vec<PromotedImage>,
    /// `owner/name` of the GitHub repository released, when known: where the deploy is reported.
    pub repository: Option<String>,
}

/// The check that refused a promotion, if `error` is a refusal: a gate (`gate:<name>`), or the release tag held
/// by another commit or digest (`tag`). Other errors are failures, retried. The exit code and the Release
/// Refused event both ask this.
pub fn refused_by(error: &anyhow::Error) -> Option<String> {
    if let Some(refused) = error.downcast_ref::<crate::gates::Refused>() {
        Some(format!("gate:{}", refused.gate.as_str()))
    } else if error.downcast_ref::<crate::ledger::Conflict>().is_some()
        || matches!(
            error.downcast_ref::<RegistryError>(),
            Some(RegistryError::TagMoved { .. })
        )
    {
        Some("tag".to_owned())
    } else {
        None
    }
}

impl Promotion {
    fn release_ref(&self, url: Option<String>) -> ReleaseRef {
        ReleaseRef {
            tag: self.tag.clone(),
            commit: Some(self.commit.clone()),
            url,
        }
    }

    /// Each image as events name it, with the staging image it came from where `sources` (in image order)
    /// says.
    fn image_refs(&self, sources: &[String]) -> Vec<ImageRef> {
        self.images
            .iter()
            .enumerate()
            .map(|(i, image)| ImageRef {
                containers: image.containers.clone(),
                image: image.target.to_string(),
                digest: image.digest.to_string(),
                source: sources.get(i).cloned(),
            })
            .collect()
    }

    fn definitions(&self, pin_digest: bool) -> Vec<ImageDefinition> {
        self.images
            .iter()
            .flat_map(|image| {
                let image_uri = if pin_digest {
                    image
                        .target
                        .with_pointer(Pointer::Digest(image.digest.clone()))
                        .to_string()
                } else {
                    image.target.to_string()
                };
                image.containers.iter().map(move |name| ImageDefinition {
                    name: name.clone(),
                    image_uri: image_uri.clone(),
                })
            })
            .collect()
    }
}

/// Promotes and redeploys releases with the registries and the ledger its caller owns.
pub struct Promoter<'a> {
    settings: Settings,
    connector: &'a Connector,
    ledger: &'a Ledger,
    gatekeeper: &'a Gatekeeper,
    events: &'a Publisher,
    github: &'a Deployments,
}

/// One image of a planned promotion: where it comes from, where it goes, and what both hold now.
#[derive(Debug)]
pub struct PlannedImage {
    pub route: Route,
    pub staging: Reference,
    pub production: Reference,
    pub inspection: Inspection,
}

/// A promotion decided and checked, nothing written yet: the images to copy and the claim to make. A dry run
/// is this, shown.
#[derive(Debug)]
pub struct Plan {
    pub images: Vec<PlannedImage>,
    /// The ledger claim (state pending) this promotion makes before any registry write.
    pub record: Record,
}

impl Plan {
    /// The release as it will be in production once the plan is applied.
    pub fn promotion(&self) -> Promotion {
        Promotion {
            tag: self.record.tag_name.clone(),
            commit: self.record.commit.clone(),
            images: self
                .images
                .iter()
                .map(|image| PromotedImage {
                    containers: image.route.containers.clone(),
                    target: image.production.clone(),
                    digest: image.inspection.root.digest.clone(),
                })
                .collect(),
            repository: self.record.repository.clone(),
        }
    }
}

impl<'a> Promoter<'a> {
    /// Opens the registries of every route first, so that a credential or address problem stops the run
    /// before anything is read from the queue's releases or written.
    pub async fn open(
        settings: Settings,
        connector: &'a Connector,
        ledger: &'a Ledger,
        gatekeeper: &'a Gatekeeper,
        events: &'a Publisher,
        github: &'a Deployments,
    ) -> Result<Promoter<'a>> {
        for route in &settings.routes {
            connector.connect(&route.source.host, Side::Source).await?;
            connector.connect(&route.target.host, Side::Target).await?;
        }
        Ok(Promoter {
            settings,
            connector,
            ledger,
            gatekeeper,
            events,
            github,
        })
    }

    async fn route_registries(&self, route: &Route) -> Result<(Registry, Registry)> {
        Ok((
            self.connector
                .connect(&route.source.host, Side::Source)
                .await?,
            self.connector
                .connect(&route.target.host, Side::Target)
                .await?,
        ))
    }

    pub fn table(&self) -> &str {
        self.ledger.table()
    }

    /// Whether this GitHub delivery already promoted its release (a webhook delivered twice).
    pub async fn already_delivered(&self, tag: &str, delivery: &str) -> Result<bool> {
        Ok(self
            .ledger
            .get(tag)
            .await?
            .is_some_and(|record| record.deliveries.iter().any(|d| d == delivery)))
    }

    /// Resolves the release's commit and staging images and checks, reading only, that the promotion may go
    /// ahead: no production tag would move and the ledger holds no other commit under the tag.
    pub async fn plan(&self, release: &Release) -> Result<Plan> {
        let tag = &release.tag_name;
        release.check_image_tag().map_err(anyhow::Error::msg)?;
        let started = Instant::now();
        let commit = resolve::commit_of(
            tag,
            &release.target_commitish,
            self.settings.checkout.as_deref(),
        )
        .await?;

        let mut images: Vec<PlannedImage> = Vec::new();
        for route in &self.settings.routes {
            let (source, target) = self.route_registries(route).await?;
            let replica = source.same_registry(&target);
            let staging = resolve::staging_image(&source, &route.source, &commit, replica).await?;
            let production = route.target.at(Pointer::Tag(tag.clone()));
            let inspection = registry::inspect(&source, &staging, &target, &production).await?;
            // Refused here, before any image is copied, so that no route moves if one would have to.
            inspection.refuse_moving(&production, false)?;
            images.push(PlannedImage {
                route: route.clone(),
                staging,
                production,
                inspection,
            });
        }
        tracing::info!(release = %tag, %commit, images = images.len(), ms = started.elapsed().as_millis() as u64, "resolved staging images");

        let mut record = Record::pending(
            tag,
            &commit,
            images
                .iter()
                .map(|image| Image {
                    containers: image.route.containers.clone(),
                    source_image: format!(
                        "{}@{}",
                        image.route.source, image.inspection.root.digest
                    ),
                    target_image: image.production.to_string(),
                    digest: image.inspection.root.digest.clone(),
                })
                .collect(),
        )?;
        record.release_name = release.name.clone();
        record.html_url = release.html_url.clone();
        record.author = release.author.clone();
        record.prerelease = release.prerelease;
        record.published_at = release.published_at;
        record.release_id = release.id;
        record.build_arn = self.settings.build_arn.clone();
        record.repository = release.repository.clone();
        // Checked before the claim so that a refused release says why without a write; the claim itself is what
        // settles a race. An unreadable item stops the promotion here, before any registry write.
        if let Some(recorded) = self.ledger.get(tag).await?
            && let Some(conflict) = record.conflict_with(&recorded, self.ledger.table())
        {
            return Err(conflict.into());
        }
        // Last of the checks, all reads: the gates see exactly the staging digests the copy would ship.
        let staging: Vec<Reference> = images
            .iter()
            .map(|image| {
                image
                    .staging
                    .with_pointer(Pointer::Digest(image.inspection.root.digest.clone()))
            })
            .collect();
        record.gates = self.gatekeeper.check(tag, &staging).await?;
        Ok(Plan { images, record })
    }

    /// Claims the release tag in the ledger, copies every image, then completes the claim. Only the holder of
    /// the claim writes the production tag; a run stopped anywhere leaves a claim the same commit resumes.
    pub async fn apply(&self, plan: Plan, delivery: Option<&str>) -> Result<Promotion> {
        let sources: Vec<String> = plan
            .images
            .iter()
            .map(|image| format!("{}@{}", image.route.source, image.inspection.root.digest))
            .collect();
        let record = plan.record;
        let tag = &record.tag_name;
        self.ledger.claim(&record).await?;
        tracing::info!(release = %tag, commit = %record.commit, table = self.ledger.table(), "claimed release tag");

        // The images of a release copy at the same time, sharing one budget of transfers (PROMOTE_JOBS).
        let promoted = futures_util::future::try_join_all(
            plan.images
                .into_iter()
                .map(|image| self.copy_image(tag, image)),
        )
        .await?;

        let started = Instant::now();
        self.ledger.complete(&record, delivery).await?;
        tracing::info!(release = %tag, table = self.ledger.table(), ms = started.elapsed().as_millis() as u64, "recorded release");
        let promotion = Promotion {
            tag: tag.clone(),
            commit: record.commit,
            images: promoted,
            repository: record.repository,
        };
        self.events
            .publish(&Event::ReleasePromoted {
                release: promotion.release_ref(record.html_url),
                images: promotion.image_refs(&sources),
            })
            .await;
        Ok(promotion)
    }

    /// Copies one image of a release (and, if asked, what refers to it), logging how far it has got while
    /// it moves.
    async fn copy_image(&self, tag: &str, image: PlannedImage) -> Result<PromotedImage> {
        let PlannedImage {
            route,
            staging,
            production,
            inspection,
        } = image;
        let digest = inspection.root.digest.clone();
        // The root manifest the copy reads is what the referrers are looked up from: not fetched again.
        let root = self
            .settings
            .with_referrers
            .then(|| inspection.root.clone());
        let (source, target) = self.route_registries(&route).await?;
        let started = Instant::now();
        let progress = Arc::new(Progress::default());
        let copy = registry::copy_inspected(
            &source,
            &staging,
            &target,
            &production,
            inspection,
            &self.settings.copy,
            &progress,
        );
        let label = production.to_string();
        let report = tokio::select! {
            report = copy => report?,
            () = progress.log_every(&label, self.settings.progress_every) => unreachable!("logs until the copy ends"),
        };
        tracing::info!(
            release = %tag, target = %production, digest = %report.digest, already_there = report.already_there,
            blobs_copied = report.blobs_copied, blobs_mounted = report.blobs_mounted, blobs_skipped = report.blobs_skipped,
            bytes = report.bytes_copied, ms = started.elapsed().as_millis() as u64, "copied image"
        );
        if let Some(root) = &root {
            let copied = registry::copy_referrers(
                &source,
                &staging,
                &target,
                &production,
                root,
                &self.settings.copy,
            )
            .await?;
            tracing::info!(release = %tag, target = %production, referrers = copied, "copied referrers");
        }
        Ok(PromotedImage {
            containers: route.containers,
            target: production,
            digest,
        })
    }

    /// The deploy files a promotion would be deployed with, path by path: what a dry run shows.
    pub fn deploy_files(&self, promotion: &Promotion) -> Vec<(&Path, String)> {
        self.settings
            .deploy
            .render(&promotion.definitions(self.settings.pin_digest))
    }

    /// Writes the deploy files for a promotion and adds the deploy to the release's history.
    pub async fn deploy(&self, promotion: &Promotion, kind: DeployKind) -> Result<()> {
        let definitions = promotion.definitions(self.settings.pin_digest);
        self.settings.deploy.write(&definitions)?;
        let shipped = Shipped {
            tag: promotion.tag.clone(),
            commit: promotion.commit.clone(),
            images: promotion
                .images
                .iter()
                .map(|image| (image.target.to_string(), image.digest.to_string()))
                .collect(),
            kind,
        };
        // Before the deploy is recorded, so that its GitHub deployment is recorded with it in one write.
        let github = self
            .github
            .start(self.ledger, &shipped, promotion.repository.as_deref())
            .await;
        let deploy = Deploy {
            sequence: None,
            deployed_at: now(),
            kind,
            build_arn: self.settings.build_arn.clone(),
            initiator: self.settings.initiator.clone(),
            outcome: None,
            github,
        };
        let deploy = self.ledger.record_deploy(&promotion.tag, deploy).await?;
        tracing::info!(release = %promotion.tag, file = %self.settings.deploy.imagedefinitions.display(), ?kind, "wrote deploy files");
        self.events
            .publish(&Event::ReleaseDeployed {
                release: promotion.release_ref(None),
                deploy: kind.as_str().to_owned(),
                sequence: deploy.sequence,
                images: promotion.image_refs(&[]),
            })
            .await;
        Ok(())
    }

    /// Tells subscribers that a check refused `release`, if `error` is a refusal (a gate, or a tag held by
    /// another commit or digest); other failures are retried, not refusals. Not for dry runs.
    pub async fn announce_refusal(&self, release: &Release, error: &anyhow::Error) {
        let Some(check) = refused_by(error) else {
            return;
        };
        self.events
            .publish(&Event::ReleaseRefused {
                release: ReleaseRef {
                    tag: release.tag_name.clone(),
                    commit: None,
                    url: release.html_url.clone(),
                },
                check,
                reason: format!("{error:#}"),
            })
            .await;
    }

    /// A recorded release, checked to be in production still on its recorded digests: what a redeploy ships.
    pub async fn recorded(&self, tag: &str) -> Result<Promotion> {
        let record = self.ledger.recorded(tag).await?;
        if record.state == ReleaseState::Pending {
            bail!(
                "release {tag} is claimed in table {} but its promotion never completed: promote it again \
                 (ecr-promote promote --tag {tag} --commit {}) before deploying it",
                self.ledger.table(),
                record.commit
            );
        }
        self.verified(record).await
    }

    /// The newest recorded release, verified as [`Promoter::recorded`] does.
    /// "Newest" is the release deployed last: after a rollback that is the release rolled back to, so a
    /// re-run pipeline does not undo the rollback.
    pub async fn latest_recorded(&self) -> Result<Option<Promotion>> {
        let releases = self.ledger.releases().await?;
        match crate::ledger::last_shipped(&releases.records) {
            Some(record) => Ok(Some(self.verified(record.clone()).await?)),
            None => Ok(None),
        }
    }

    /// The newest recorded release that comes after `release` (published later, or in the same instant with a
    /// larger GitHub release id), if there is one (verified as [`Promoter::recorded`] does).
    pub async fn newer_than(&self, release: &Release) -> Result<Option<Promotion>> {
        if release.published_at.is_none() {
            return Ok(None);
        }
        let newest = self
            .ledger
            .releases()
            .await?
            .done()
            .into_iter()
            .filter(|r| {
                r.tag_name != release.tag_name
                    && r.published_at.is_some()
                    && r.precedence() > release.precedence()
            })
            .max_by_key(Record::precedence);
        match newest {
            Some(record) => Ok(Some(self.verified(record).await?)),
            None => Ok(None),
        }
    }

    async fn verified(&self, record: Record) -> Result<Promotion> {
        let mut images = Vec::new();
        for image in &record.images {
            let target: Reference = image
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
            let recorded: Digest = image.digest.clone();
            let registry = self.connector.connect(&target.host, Side::Target).await?;
            match registry.manifest_digest(&target).await? {
                Some(current) if current == recorded => images.push(PromotedImage {
                    containers: image.containers.clone(),
                    target,
                    digest: recorded,
                }),
                Some(current) => {
                    return Err(RegistryError::TagMoved {
                        target: target.to_string(),
                        existing: current,
                        incoming: recorded,
                    })
                    .with_context(|| {
                        format!(
                            "release {} is recorded with another digest: production moved",
                            record.tag_name
                        )
                    });
                }
                None => bail!(
                    "release {} is recorded but {target} is gone from the production registry: promote it again \
                     from staging (ecr-promote promote --tag {} --commit {})",
                    record.tag_name,
                    record.tag_name,
                    record.commit
                ),
            }
        }
        Ok(Promotion {
            tag: record.tag_name,
            commit: record.commit,
            images,
            repository: record.repository,
        })
    }
}
