//! From a release to the staging image: the release's commit, then the staging tag named after it.

use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::registry::{Pointer, Reference, Registry, Repository};

fn is_hex(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A full commit id: 40 hex characters (SHA-1) or 64 (SHA-256 repositories).
fn is_commit_id(text: &str) -> bool {
    (text.len() == 40 || text.len() == 64) && is_hex(text)
}

/// The commit a release points at. `target_commitish` is used when it is a commit id; a branch name is never
/// trusted (the branch has moved on since the tag was made), so the tag is resolved in the git checkout.
pub async fn commit_of(tag: &str, commitish: &str, checkout: Option<&Path>) -> Result<String> {
    if is_commit_id(commitish) {
        return Ok(commitish.to_ascii_lowercase());
    }
    if commitish.trim().is_empty() && checkout.is_none() {
        bail!(
            "release {tag} names no commit and there is no git checkout to look tag {tag} up in \
             (CODEBUILD_SRC_DIR / --source-dir unset): give the full 40-character commit SHA (--commit / PROMOTE_COMMIT)"
        );
    }
    let Some(dir) = checkout else {
        bail!(
            "release {tag} targets {commitish:?}, a branch rather than a commit, and there is no git checkout to \
             look tag {tag} up in (CODEBUILD_SRC_DIR / --source-dir unset): run in the CodeBuild source checkout \
             or use `ecr-promote promote --tag {tag} --commit <full 40-character sha>`"
        );
    };
    if let Some(commit) = git_tag_commit(dir, tag).await? {
        return Ok(commit);
    }
    // CodeBuild checkouts are often shallow and without tags: fetch just this one.
    let fetched = tokio::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["fetch", "--quiet", "--depth=1", "origin"])
        .arg(format!("+refs/tags/{tag}:refs/tags/{tag}"))
        .output()
        .await
        .context("running git: is git installed?")?;
    match git_tag_commit(dir, tag).await? {
        Some(commit) => Ok(commit),
        None if git_has_tag(dir, tag).await? => bail!(
            "release {tag} targets {commitish:?}, a branch rather than a commit, and tag {tag} in the git checkout \
             at {} names no commit (it points to a blob or tree): tag the release's commit",
            dir.display()
        ),
        None => bail!(
            "release {tag} targets {commitish:?}, a branch rather than a commit, and tag {tag} is not in the git \
             checkout at {} (fetching it from origin failed: {}): check that the tag exists and the checkout's \
             origin is the release's repository",
            dir.display(),
            String::from_utf8_lossy(&fetched.stderr).trim()
        ),
    }
}

/// What `git rev-parse --verify` makes of `revision` in the checkout, if anything.
async fn rev_parse(dir: &Path, revision: &str) -> Result<Option<String>> {
    let output = tokio::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--verify", "--quiet", revision])
        .output()
        .await
        .context("running git: is git installed?")?;
    let object = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    Ok(output.status.success().then_some(object))
}

async fn git_has_tag(dir: &Path, tag: &str) -> Result<bool> {
    Ok(rev_parse(dir, &format!("refs/tags/{tag}")).await?.is_some())
}

async fn git_tag_commit(dir: &Path, tag: &str) -> Result<Option<String>> {
    let commit = rev_parse(dir, &format!("refs/tags/{tag}^{{commit}}")).await?;
    Ok(commit.filter(|c| is_commit_id(c)))
}

/// Whether a staging tag names `commit`: equal to it, or an abbreviation of 7 or more hex characters (either
/// way round, so that an abbreviated commit given by hand finds a full-length tag).
fn names_commit(tag: &str, commit: &str) -> bool {
    let tag = tag.to_ascii_lowercase();
    tag.len() >= 7 && is_hex(&tag) && (commit.starts_with(&tag) || tag.starts_with(commit))
}

/// Which of `tags` names `commit`: the commit itself, else the one tag that abbreviates it. Several
/// abbreviations are ambiguous: they are returned as the error, for the caller to name.
pub fn commit_tag<'a>(tags: &'a [String], commit: &str) -> Result<Option<&'a str>, Vec<&'a str>> {
    if let Some(exact) = tags.iter().find(|tag| *tag == commit) {
        return Ok(Some(exact));
    }
    let matching: Vec<&str> = tags
        .iter()
        .filter(|tag| names_commit(tag, commit))
        .map(String::as_str)
        .collect();
    match matching.as_slice() {
        [] => Ok(None),
        [tag] => Ok(Some(tag)),
        _ => Err(matching),
    }
}

/// The staging image of `commit`: the tag equal to it, or the one tag that abbreviates it. `replica`: the
/// staging repository is in the production registry — a replica ECR fills asynchronously — so a missing image
/// may simply not have arrived yet.
pub async fn staging_image(
    source: &Registry,
    repository: &Repository,
    commit: &str,
    replica: bool,
) -> Result<Reference> {
    let exact = repository.at(Pointer::Tag(commit.to_owned()));
    if source.manifest_digest(&exact).await?.is_some() {
        return Ok(exact);
    }
    let tags = source.tags(&repository.name).await?;
    match commit_tag(&tags, commit) {
        Ok(Some(tag)) => Ok(repository.at(Pointer::Tag(tag.to_owned()))),
        Ok(None) if replica => bail!(
            "no staging image for commit {commit} in {repository} yet: it is in the production registry, so if it \
             is a replica of the staging repository, replication may not have copied the image yet (it is \
             asynchronous) — run the pipeline again in a few minutes; the release stays on the queue. If it has \
             not arrived after that, did the staging build push it?"
        ),
        Ok(None) => bail!(
            "no staging image for commit {commit} in {repository}: no tag equals the commit or abbreviates it \
             (7+ hex characters); did the staging build push it?"
        ),
        Err(several) => bail!(
            "several staging images could be commit {commit} in {repository}: tags {}; delete the wrong ones \
             or give the full commit",
            several.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMIT: &str = "3f2a9c1e5b7d4c8a9f0e1d2c3b4a5f6e7d8c9b0a";

    #[tokio::test]
    async fn a_commit_id_is_taken_as_it_is() {
        assert_eq!(
            commit_of("v1", &COMMIT.to_uppercase(), None).await.unwrap(),
            COMMIT
        );
    }

    #[tokio::test]
    async fn a_branch_without_checkout_is_refused_naming_the_release() {
        let error = commit_of("v1.2.0", "master", None)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("v1.2.0")
                && error.contains("\"master\"")
                && error.contains("CODEBUILD_SRC_DIR"),
            "{error}"
        );
        // An abbreviation could just as well be a branch called "deadbee": not trusted either.
        assert!(commit_of("v1", "3f2a9c1", None).await.is_err());
    }

    #[tokio::test]
    async fn a_branch_is_resolved_through_the_tag_in_the_checkout() {
        let dir = tempfile::tempdir().unwrap();
        let git = |args: &[&str]| {
            let status = std::process::Command::new("git")
                .arg("-C")
                .arg(dir.path())
                .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
                .args(args)
                .output()
                .unwrap();
            assert!(
                status.status.success(),
                "git {args:?}: {}",
                String::from_utf8_lossy(&status.stderr)
            );
            String::from_utf8(status.stdout).unwrap().trim().to_owned()
        };
        git(&["init", "--quiet"]);
        git(&["commit", "--quiet", "--allow-empty", "-m", "released"]);
        git(&[
            "tag",
            "-a",
            "v1.2.0",
            "-m",
            "annotated tags resolve to their commit",
        ]);
        let released = git(&["rev-parse", "HEAD"]);
        git(&[
            "commit",
            "--quiet",
            "--allow-empty",
            "-m",
            "the branch moved on",
        ]);

        assert_eq!(
            commit_of("v1.2.0", "master", Some(dir.path()))
                .await
                .unwrap(),
            released
        );
        let error = commit_of("v9.9.9", "master", Some(dir.path()))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("tag v9.9.9 is not in the git checkout"),
            "{error}"
        );
    }

    #[test]
    fn staging_tags_match_the_commit_or_an_abbreviation() {
        assert!(names_commit(COMMIT, COMMIT));
        assert!(names_commit("3f2a9c1", COMMIT));
        assert!(names_commit(COMMIT, "3f2a9c1e"));
        assert!(
            !names_commit("3f2a9c", COMMIT),
            "six characters are too few"
        );
        assert!(!names_commit("3f2a9c2", COMMIT));
        assert!(!names_commit("latest", COMMIT));
    }

    #[test]
    fn the_commit_tag_is_the_commit_else_its_one_abbreviation() {
        let tags = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let exact = tags(&["latest", "3f2a9c1", COMMIT]);
        assert_eq!(commit_tag(&exact, COMMIT), Ok(Some(COMMIT)));
        let short = tags(&["latest", "3f2a9c1", "0b9c8d7"]);
        assert_eq!(commit_tag(&short, COMMIT), Ok(Some("3f2a9c1")));
        assert_eq!(commit_tag(&tags(&["latest"]), COMMIT), Ok(None));
        let several = tags(&["3f2a9c1", "3f2a9c1e"]);
        assert_eq!(
            commit_tag(&several, COMMIT),
            Err(vec!["3f2a9c1", "3f2a9c1e"])
        );
    }
}
