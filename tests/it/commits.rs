//! From a release to its staging image: the commit a release names, abbreviated in the staging tag,
//! a branch resolved through the release tag in the checkout, and the ways that fails — each named,
//! with the message kept for a rerun.

use std::process::Command;

use crate::support::{COMMIT, Envelope, OTHER_COMMIT, Pipeline, RELEASE, ReleaseEvent};

/// Runs git in `dir` with an identity, panicking on failure; returns its stdout.
fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=Release Bot",
            "-c",
            "user.email=bot@example.com",
        ])
        .args(args)
        .output()
        .expect("run git");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .trim()
        .to_string()
}

#[tokio::test]
async fn finds_the_staging_image_under_an_abbreviated_commit() {
    let pipeline = Pipeline::start().await;
    let image = pipeline.stage(&COMMIT[..7]).await;
    let release = ReleaseEvent::published(RELEASE, COMMIT);
    pipeline.queue.send(&release.message(Envelope::Raw)).await;

    let outcome = pipeline.run_with(&[]).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    pipeline.assert_shipped(&release, COMMIT, &image).await;
    pipeline.assert_queue_empty().await;
}

#[tokio::test]
async fn two_abbreviations_of_the_commit_are_refused_and_the_message_kept() {
    let pipeline = Pipeline::start().await;
    pipeline.stage(&COMMIT[..7]).await;
    pipeline.stage(&COMMIT[..8]).await;
    let message = pipeline.queue_release(RELEASE, COMMIT).await;

    let outcome = pipeline.run_with(&[]).await;

    outcome.assert_failed_naming(
        1,
        &[
            COMMIT,
            &pipeline.source_repository(),
            &COMMIT[..7],
            &COMMIT[..8],
        ],
    );
    pipeline.assert_nothing_promoted(RELEASE).await;
    pipeline.assert_kept(&[&message]).await;
}

/// A git checkout of master in the world's folder, as CodeBuild leaves its source, with one commit.
fn checkout(pipeline: &Pipeline) -> std::path::PathBuf {
    let checkout = pipeline.world.dir().join("checkout");
    std::fs::create_dir(&checkout).expect("create the checkout");
    git(&checkout, &["init", "--quiet", "--initial-branch=master"]);
    git(
        &checkout,
        &["commit", "--quiet", "--allow-empty", "-m", "first"],
    );
    checkout
}

#[tokio::test]
async fn a_release_on_a_branch_is_resolved_through_its_tag_in_the_checkout() {
    let pipeline = Pipeline::start().await;
    let checkout = checkout(&pipeline);
    git(&checkout, &["tag", "-a", RELEASE, "-m", "the release"]);
    let tagged = git(&checkout, &["rev-parse", "HEAD"]);
    git(
        &checkout,
        &[
            "commit",
            "--quiet",
            "--allow-empty",
            "-m",
            "master moved on",
        ],
    );
    let tip = git(&checkout, &["rev-parse", "HEAD"]);
    let image = pipeline.stage(&tagged).await;
    pipeline.stage(&tip).await;
    let release = ReleaseEvent::published(RELEASE, "master");
    pipeline.queue.send(&release.message(Envelope::Raw)).await;

    let outcome = pipeline
        .run_with(&[("CODEBUILD_SRC_DIR", checkout.to_str().expect("UTF-8 path"))])
        .await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    pipeline.assert_shipped(&release, &tagged, &image).await;
    pipeline.assert_queue_empty().await;
}

/// A release tag in the checkout that points at a blob names no commit: said so, and the message kept.
#[tokio::test]
async fn a_release_tag_on_a_blob_is_said_to_name_no_commit() {
    let pipeline = Pipeline::start().await;
    let checkout = checkout(&pipeline);
    std::fs::write(checkout.join("notes.txt"), "not a commit").expect("write a file");
    let blob = git(&checkout, &["hash-object", "-w", "notes.txt"]);
    git(&checkout, &["tag", RELEASE, &blob]);
    let message = pipeline.queue_release(RELEASE, "master").await;

    let outcome = pipeline
        .run_with(&[("CODEBUILD_SRC_DIR", checkout.to_str().expect("UTF-8 path"))])
        .await;

    outcome.assert_failed_naming(1, &["names no commit"]);
    pipeline.assert_kept(&[&message]).await;
}

#[tokio::test]
async fn a_release_on_a_branch_without_a_checkout_is_named_and_kept() {
    let pipeline = Pipeline::start().await;
    pipeline.stage(COMMIT).await;
    let message = ReleaseEvent::published(RELEASE, "master").message(Envelope::Raw);
    pipeline.queue.send(&message).await;

    let outcome = pipeline.run_with(&[]).await;

    // The release, its branch and the setting that would resolve it.
    outcome.assert_failed_naming(1, &[RELEASE, "master", "CODEBUILD_SRC_DIR"]);
    pipeline.assert_nothing_promoted(RELEASE).await;
    pipeline.assert_kept(&[&message]).await;
}

#[tokio::test]
async fn a_commit_without_a_staging_image_is_named_and_kept() {
    let pipeline = Pipeline::start().await;
    pipeline.stage(OTHER_COMMIT).await;
    let message = pipeline.queue_release(RELEASE, COMMIT).await;

    let outcome = pipeline.run_with(&[]).await;

    outcome.assert_failed_naming(1, &[COMMIT, &pipeline.source_repository()]);
    pipeline.assert_nothing_promoted(RELEASE).await;
    pipeline.assert_kept(&[&message]).await;
}
