//! Copying an image (or an index of images) between registries, digest for digest.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{StreamExt, TryStreamExt, stream};
use tokio::sync::Semaphore;

use super::blob::copy_blob;
use super::digest::Digest;
use super::error::RegistryError;
use super::manifest::{Content, Descriptor, Manifest};
use super::progress::Progress;
use super::reference::{Pointer, Reference};
use super::transport::Registry;

/// Blob existence checks in flight at once.
const EXISTENCE_CHECKS: usize = 16;

#[derive(Clone, Debug)]
pub struct CopyOptions {
    /// Move the target tag even when it is on another digest.
    pub force: bool,
    /// Slots for blobs whose bytes move at once, shared by every copy made with these options (the images
    /// of one release copy at the same time, within one budget).
    pub transfers: Arc<Semaphore>,
}

impl CopyOptions {
    pub fn new(force: bool, jobs: usize) -> CopyOptions {
        CopyOptions {
            force,
            transfers: Arc::new(Semaphore::new(jobs.max(1))),
        }
    }
}

#[derive(Debug)]
pub struct CopyReport {
    pub digest: Digest,
    /// The target tag was already on this digest: nothing was read or written.
    pub already_there: bool,
    pub blobs_copied: usize,
    /// Blobs the target registry mounted from the source repository: no bytes moved.
    pub blobs_mounted: usize,
    pub blobs_skipped: usize,
    pub bytes_copied: u64,
    pub manifests: usize,
    pub elapsed: Duration,
}

/// What a copy would start from: the source's root manifest and what the target reference holds now.
#[derive(Debug)]
pub struct Inspection {
    pub root: Manifest,
    pub existing: Option<Digest>,
}

impl Inspection {
    /// The guard that keeps a tag from moving: whether the target already holds the source digest (`true`:
    /// nothing to copy) or may be written (`false`); a target tag holding something else is refused unless
    /// `force`, and a target digest that is not the source's can never be written.
    pub fn refuse_moving(
        &self,
        target_ref: &Reference,
        force: bool,
    ) -> Result<bool, RegistryError> {
        let refused = |existing: &Digest| RegistryError::TagMoved {
            target: target_ref.to_string(),
            existing: existing.clone(),
            incoming: self.root.digest.clone(),
        };
        if let Pointer::Digest(wanted) = &target_ref.pointer
            && *wanted != self.root.digest
        {
            return Err(RegistryError::DigestMismatch {
                target: target_ref.to_string(),
                wanted: wanted.clone(),
                incoming: self.root.digest.clone(),
            });
        }
        match &self.existing {
            Some(digest) if *digest == self.root.digest => Ok(true),
            Some(digest) if !force => Err(refused(digest)),
            Some(digest) => {
                tracing::warn!(target = %target_ref, from = %digest, to = %self.root.digest, "--force: moving the tag");
                Ok(false)
            }
            None => Ok(false),
        }
    }
}

/// Reads, without changing anything, the manifest `source_ref` resolves to and what `target_ref` holds.
pub async fn inspect(
    source: &Registry,
    source_ref: &Reference,
    target: &Registry,
    target_ref: &Reference,
) -> Result<Inspection, RegistryError> {
    let (root, existing) = tokio::join!(
        source.get_manifest(source_ref),
        target.manifest_digest(target_ref)
    );
    let root = root?;
    root.content(&source_ref.to_string())?;
    Ok(Inspection {
        root,
        existing: existing?,
    })
}

/// Copies the image at `source_ref` to `target_ref`. The manifest bytes are copied verbatim, so the target
/// digest equals the source digest. Blobs go first and manifests last, children before their index, so a
/// failure at any point leaves no tag pointing at an incomplete image and a rerun finishes the job.
pub async fn copy_image(
    source: &Registry,
    source_ref: &Reference,
    target: &Registry,
    target_ref: &Reference,
    options: &CopyOptions,
    progress: &Arc<Progress>,
) -> Result<CopyReport, RegistryError> {
    let inspection = inspect(source, source_ref, target, target_ref).await?;
    copy_inspected(
        source, source_ref, target, target_ref, inspection, options, progress,
    )
    .await
}

/// [`copy_image`] from an [`Inspection`] already made, for callers that check more before writing.
pub async fn copy_inspected(
    source: &Registry,
    source_ref: &Reference,
    target: &Registry,
    target_ref: &Reference,
    inspection: Inspection,
    options: &CopyOptions,
    progress: &Arc<Progress>,
) -> Result<CopyReport, RegistryError> {
    let started = Instant::now();
    let mut report = CopyReport {
        digest: inspection.root.digest.clone(),
        already_there: inspection.refuse_moving(target_ref, options.force)?,
        blobs_copied: 0,
        blobs_mounted: 0,
        blobs_skipped: 0,
        bytes_copied: 0,
        manifests: 0,
        elapsed: Duration::ZERO,
    };
    if report.already_there {
        return Ok(report);
    }
    let root = inspection.root;
    let (children, blobs) = walk(source, source_ref, &root).await?;
    // Existence checks are small requests: many at once, so that a rerun that moves nothing is quick.
    let present: Vec<bool> = stream::iter(&blobs)
        .map(|blob| target.has_blob(&target_ref.repository, &blob.digest))
        .buffered(EXISTENCE_CHECKS)
        .try_collect()
        .await?;
    let mut missing: Vec<&Descriptor> = blobs
        .iter()
        .zip(&present)
        .filter(|(_, there)| !**there)
        .map(|(b, _)| b)
        .collect();
    // Within one registry the target can mount a blob from the source repository: no byte moves. A registry
    // that declines (ECR without BLOB_MOUNTING) is sent the bytes as usual.
    if source.same_registry(target) && source_ref.repository != target_ref.repository {
        let mounted: Vec<bool> = stream::iter(&missing)
            .map(|blob| {
                target.mount_blob(&target_ref.repository, &blob.digest, &source_ref.repository)
            })
            .buffered(EXISTENCE_CHECKS)
            .try_collect()
            .await?;
        report.blobs_mounted = mounted.iter().filter(|m| **m).count();
        missing = missing
            .into_iter()
            .zip(&mounted)
            .filter(|(_, mounted)| !**mounted)
            .map(|(blob, _)| blob)
            .collect();
    }
    progress.add_total(missing.iter().map(|blob| blob.size).sum());
    // Largest first, so that the last blob to finish is a small one. Every blob is under way at once, but only
    // `jobs` move bytes at a time (the semaphore is first come, first served, so the order holds); the others
    // wait for a transfer slot or for the target's answer to an upload already sent.
    missing.sort_by_key(|blob| std::cmp::Reverse(blob.size));
    let copied: Vec<u64> = stream::iter(&missing)
        .map(|blob| {
            copy_blob(
                source,
                &source_ref.repository,
                target,
                &target_ref.repository,
                blob,
                &options.transfers,
                progress,
            )
        })
        .buffer_unordered(missing.len().max(1))
        .try_collect()
        .await?;

    for child in &children {
        target
            .put_manifest(
                &target_ref.with_pointer(Pointer::Digest(child.digest.clone())),
                child,
            )
            .await?;
    }
    target.put_manifest(target_ref, &root).await?;

    report.blobs_copied = copied.len();
    report.blobs_skipped = blobs.len() - copied.len() - report.blobs_mounted;
    report.bytes_copied = copied.iter().sum();
    report.manifests = children.len() + 1;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Every manifest below the root (children before parents) and every distinct blob they refer to.
async fn walk(
    source: &Registry,
    source_ref: &Reference,
    root: &Manifest,
) -> Result<(Vec<Manifest>, Vec<Descriptor>), RegistryError> {
    let mut children = Vec::new();
    let mut blobs = Vec::new();
    let mut seen_blobs = HashSet::new();
    let mut seen_manifests = HashSet::from([root.digest.clone()]);
    // Depth-first; each index is expanded after its own children are listed, then reversed at the end.
    let mut pending: Vec<Descriptor> = Vec::new();
    let mut expand = |manifest: &Manifest, reference: String, pending: &mut Vec<Descriptor>| {
        match manifest.content(&reference)? {
            Content::Image(image_blobs) => {
                for blob in image_blobs {
                    if seen_blobs.insert(blob.digest.clone()) {
                        blobs.push(blob);
                    }
                }
            }
            Content::Index(entries) => pending.extend(entries),
        }
        Ok::<_, RegistryError>(())
    };
    expand(root, source_ref.to_string(), &mut pending)?;
    while let Some(entry) = pending.pop() {
        if !seen_manifests.insert(entry.digest.clone()) {
            continue;
        }
        let child_ref = source_ref.with_pointer(Pointer::Digest(entry.digest.clone()));
        let child = source.get_manifest(&child_ref).await?;
        expand(&child, child_ref.to_string(), &mut pending)?;
        children.push(child);
    }
    // Parents were pushed before the children they list; storing in reverse puts children first.
    children.reverse();
    Ok((children, blobs))
}
