//! Artifacts that refer to an image — signatures, attestations, SBOMs — copied along with it, so that
//! verification in production keeps working.
//!
//! Two conventions are followed: OCI 1.1 referrers (the registry's referrers API, or, where the registry has
//! none, the fallback index tagged `sha256-<hex>`), and cosign's tags `sha256-<hex>.sig`, `.att` and `.sbom`.

use reqwest::{Method, StatusCode, header};
use serde::Deserialize;

use std::sync::Arc;

use super::copy::{CopyOptions, copy_image};
use super::digest::Digest;
use super::error::RegistryError;
use super::manifest::Manifest;
use super::progress::Progress;
use super::reference::{Pointer, Reference};
use super::transport::Registry;

const COSIGN_SUFFIXES: [&str; 3] = ["sig", "att", "sbom"];

#[derive(Deserialize)]
struct ReferrerIndex {
    #[serde(default)]
    manifests: Vec<ReferrerEntry>,
}

#[derive(Deserialize)]
struct ReferrerEntry {
    digest: Digest,
}

impl Registry {
    /// The digests of the manifests that name `digest` as their subject, by the referrers API; `None` when
    /// the registry does not offer it.
    async fn referrers(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<Option<Vec<Digest>>, RegistryError> {
        let what = format!("listing the referrers of {digest} in {repository}");
        let url = self.url(repository, &format!("referrers/{digest}"));
        let response = self
            .send(&what, || {
                self.request(Method::GET, url.clone())
                    .header(header::ACCEPT, "application/vnd.oci.image.index.v1+json")
            })
            .await?;
        match response.status() {
            StatusCode::NOT_FOUND
            | StatusCode::METHOD_NOT_ALLOWED
            | StatusCode::NOT_IMPLEMENTED => Ok(None),
            s if s.is_success() => {
                let index: ReferrerIndex = self.json(&what, response).await?;
                Ok(Some(
                    index.manifests.into_iter().map(|m| m.digest).collect(),
                ))
            }
            _ => Err(self.failure(&what, repository, response).await),
        }
    }
}

/// Copies every artifact that refers to `root` (the image's manifest, as the copy read it) — or, for an index,
/// to any manifest in it (a recursively
/// signed multi-platform image signs each platform too) — from the source repository to the target
/// repository, and returns how many it found. Referrers go by digest; convention tags keep their names (they
/// are not release tags, and cosign rewrites them as signatures are added, so they may move): an artifact
/// added under such a tag in production alone is replaced by staging's on the next promotion.
pub async fn copy_referrers(
    source: &Registry,
    source_ref: &Reference,
    target: &Registry,
    target_ref: &Reference,
    root: &Manifest,
    options: &CopyOptions,
) -> Result<usize, RegistryError> {
    let mut subjects = vec![root.digest.clone()];
    subjects.extend(root.listed_manifests(&source_ref.to_string())?);
    let between = Between {
        source,
        source_ref,
        target,
        target_ref,
        // Artifacts are small; their bytes are not part of the image's progress.
        progress: Arc::new(Progress::default()),
    };
    let mut copied = 0;
    for subject in &subjects {
        copied += between.referrers_of(subject, options).await?;
    }
    Ok(copied)
}

/// The source and target repositories the artifacts travel between.
struct Between<'a> {
    source: &'a Registry,
    source_ref: &'a Reference,
    target: &'a Registry,
    target_ref: &'a Reference,
    progress: Arc<Progress>,
}

impl Between<'_> {
    /// Copies the artifacts that refer to `digest`, by the referrers API and by convention tags; returns
    /// how many.
    async fn referrers_of(
        &self,
        digest: &Digest,
        options: &CopyOptions,
    ) -> Result<usize, RegistryError> {
        let mut copied = 0;
        let listed = self
            .source
            .referrers(&self.source_ref.repository, digest)
            .await?;
        for referrer in listed.into_iter().flatten() {
            self.copy(Pointer::Digest(referrer), options).await?;
            copied += 1;
        }
        let fallback = format!("sha256-{}", digest.hex());
        let tags = std::iter::once(fallback.clone())
            .chain(COSIGN_SUFFIXES.iter().map(|s| format!("{fallback}.{s}")));
        let moving = CopyOptions {
            force: true,
            ..options.clone()
        };
        for tag in tags {
            let pointer = Pointer::Tag(tag);
            let from = self.source_ref.with_pointer(pointer.clone());
            if self.source.manifest_digest(&from).await?.is_none() {
                continue;
            }
            self.copy(pointer, &moving).await?;
            copied += 1;
        }
        Ok(copied)
    }

    /// Copies the artifact at `pointer` in the source repository to the same pointer in the target's.
    async fn copy(&self, pointer: Pointer, options: &CopyOptions) -> Result<(), RegistryError> {
        copy_image(
            self.source,
            &self.source_ref.with_pointer(pointer.clone()),
            self.target,
            &self.target_ref.with_pointer(pointer),
            options,
            &self.progress,
        )
        .await?;
        Ok(())
    }
}
