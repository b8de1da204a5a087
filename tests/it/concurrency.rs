//! Two at once: two CodeBuild steps (a pipeline re-run, two releases close together) run
//! `ecr-promote run` on the same queue at the same moment. Between them every release is promoted
//! exactly once, nothing is left on the queue, and production holds the staging digests.

use std::time::Duration;

use crate::support::{
    Envelope, Flavour, Image, Outcome, Pipeline, REPOSITORY, ReleaseEvent, run, wait_until,
};
use serde_json::Value;

/// Large enough that a copy is still going on when the second run starts.
const LARGE_LAYERS: [usize; 3] = [20 << 20, 20 << 20, 20 << 20];

/// `ecr-promote run` twice, started together.
async fn run_two_at_once(pipeline: &Pipeline) -> [Outcome; 2] {
    let (mut first, mut second) = (pipeline.run_command(), pipeline.run_command());
    let (first, second) = tokio::join!(run(&mut first), run(&mut second));
    [first, second]
}

/// Each run promoted something (exit 0) or found nothing left for it (exit 4), and at least one
/// promoted.
fn assert_shared_out(outcomes: &[Outcome; 2]) {
    for outcome in outcomes {
        assert!(
            outcome.code == 0 || outcome.code == 4,
            "exit code {}: {}",
            outcome.code,
            outcome.stderr
        );
        if outcome.code == 4 {
            assert!(
                outcome.error_line().contains("no pending release"),
                "{}",
                outcome.error_line()
            );
        }
    }
    assert!(
        outcomes.iter().any(|outcome| outcome.code == 0),
        "neither run promoted anything: {outcomes:?}"
    );
}

/// Production holds each release on its staging digest, and the ledger one item per release, on
/// that digest.
async fn assert_each_promoted_once(pipeline: &Pipeline, releases: &[(&str, &Image)]) {
    for (tag, image) in releases {
        assert_eq!(
            pipeline
                .world
                .production
                .manifest_digest(REPOSITORY, tag)
                .await,
            Some(image.digest()),
            "production {REPOSITORY}:{tag} is the staging digest"
        );
        assert!(
            pipeline
                .world
                .production
                .has_blobs_of(REPOSITORY, image)
                .await,
            "production has every blob of {tag}"
        );
    }
    let items = pipeline.table.items().await;
    let mut recorded: Vec<(String, String)> = items
        .iter()
        .map(|item| {
            let field = |name: &str| {
                item[name]
                    .as_str()
                    .unwrap_or_else(|| panic!("no {name} in {item}"))
                    .to_string()
            };
            (field("tag_name"), field("digest"))
        })
        .collect();
    recorded.sort();
    let mut expected: Vec<(String, String)> = releases
        .iter()
        .map(|(tag, image)| (tag.to_string(), image.digest()))
        .collect();
    expected.sort();
    assert_eq!(recorded, expected, "one ledger item per release: {items:?}");
}

/// imagedefinitions.json deploys one of `tags` (each run deploys the newest it promoted).
fn assert_deploys_one_of(pipeline: &Pipeline, tags: &[&str]) {
    let written = pipeline
        .deploy_file("imagedefinitions.json")
        .expect("imagedefinitions.json was written");
    let image_uri = written[0]["imageUri"].as_str().unwrap_or_default();
    assert!(
        tags.iter()
            .any(|tag| image_uri == format!("{}:{tag}", pipeline.target_repository())),
        "imagedefinitions.json deploys a promoted release: {written}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_runs_on_one_queue_promote_each_release_exactly_once() {
    let pipeline = Pipeline::start().await;
    let releases = [
        ("v1.0.0", "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"),
        ("v1.1.0", "2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e"),
        ("v1.2.0", "3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f"),
    ];
    let mut staged = Vec::new();
    for (number, (tag, commit)) in releases.iter().enumerate() {
        staged.push(pipeline.stage(commit).await);
        let release = ReleaseEvent::published(tag, commit)
            .published_at(&format!("2026-03-0{}T10:00:00Z", number + 1));
        pipeline.queue.send(&release.message(Envelope::Raw)).await;
    }

    let outcomes = run_two_at_once(&pipeline).await;

    assert_shared_out(&outcomes);
    let promoted: Vec<(&str, &Image)> = releases
        .iter()
        .zip(&staged)
        .map(|((tag, _), image)| (*tag, image))
        .collect();
    assert_each_promoted_once(&pipeline, &promoted).await;
    pipeline.assert_queue_empty().await;
    assert_deploys_one_of(&pipeline, &releases.map(|(tag, _)| tag));
}

/// GitHub redelivers a release (or the webhook fires twice) and each run takes one copy: both
/// promote the same tag at the same moment. One ledger item, one digest, both messages gone.
#[tokio::test(flavor = "multi_thread")]
async fn two_runs_given_the_same_release_twice_record_it_once() {
    let pipeline = Pipeline::start().await;
    let commit = "4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70";
    let image = pipeline.stage(commit).await;
    let message = ReleaseEvent::published("v2.0.0", commit).message(Envelope::Sns);
    pipeline.queue.send(&message).await;
    pipeline.queue.send(&message).await;

    let outcomes = run_two_at_once(&pipeline).await;

    assert_shared_out(&outcomes);
    assert_each_promoted_once(&pipeline, &[("v2.0.0", &image)]).await;
    pipeline.assert_queue_empty().await;
    assert_deploys_one_of(&pipeline, &["v2.0.0"]);
    let item: Value = pipeline.table.item("v2.0.0").await.expect("recorded");
    assert_eq!(item["commit"], commit, "{item}");
}

/// The second delivery arrives while the first run is mid-copy: both runs copy the same release
/// into the same tag at once. The tag ends on the staging digest, the ledger holds one item, and
/// both runs succeed.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_run_promoting_the_same_release_mid_copy_records_it_once() {
    let pipeline = Pipeline::start().await;
    let commit = "5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7081";
    let image = Image::random(&LARGE_LAYERS, Flavour::Oci);
    pipeline
        .world
        .staging
        .push_image(REPOSITORY, commit, &image)
        .await;
    let message = ReleaseEvent::published("v3.0.0", commit).message(Envelope::ApiGatewayV1);
    pipeline.queue.send(&message).await;
    let (mut first, mut second) = (pipeline.run_command(), pipeline.run_command());

    let (first, second) = tokio::join!(run(&mut first), async {
        let production = &pipeline.world.production;
        wait_until(
            "the first run's first blob upload",
            Duration::from_secs(60),
            async || {
                production
                    .requests()
                    .iter()
                    .any(|request| request.is_blob_upload())
            },
        )
        .await;
        pipeline.queue.send(&message).await;
        run(&mut second).await
    });

    for outcome in [&first, &second] {
        assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    }
    assert_each_promoted_once(&pipeline, &[("v3.0.0", &image)]).await;
    pipeline.assert_queue_empty().await;
    assert_deploys_one_of(&pipeline, &["v3.0.0"]);
}

/// A release deleted and re-created on another commit while a build of the first runs: two
/// `promote`s of one tag with different commits overlap, mid-copy, over and over. The ledger claims the
/// tag before any registry write, so exactly one wins (exit 0) and the other is refused (exit 3) before
/// it touches production; the production tag ends on the digest of the commit the ledger records, and
/// the deploy file names it.
#[tokio::test(flavor = "multi_thread")]
async fn two_promotions_of_one_tag_with_different_commits_never_move_it() {
    let pipeline = Pipeline::start().await;
    let commits = [
        "6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192",
        "708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3",
    ];
    let mut staged = Vec::new();
    for commit in commits {
        let image = Image::random(&[8 << 20, 8 << 20], Flavour::Oci);
        pipeline
            .world
            .staging
            .push_image(REPOSITORY, commit, &image)
            .await;
        staged.push(image);
    }
    for round in 0..4 {
        let tag = format!("v14.0.{round}");
        let promote = |commit: &str| {
            let mut command = pipeline.promote_command();
            command.args(["--tag", &tag, "--commit", commit]);
            command
        };
        let (mut first, mut second) = (promote(commits[0]), promote(commits[1]));
        let outcomes = tokio::join!(run(&mut first), run(&mut second));
        let outcomes = [outcomes.0, outcomes.1];

        let mut codes: Vec<i32> = outcomes.iter().map(|o| o.code).collect();
        codes.sort();
        assert_eq!(
            codes,
            [0, 3],
            "round {round}: one wins, one is refused: {outcomes:?}"
        );
        let loser = outcomes.iter().find(|o| o.code == 3).unwrap();
        assert!(
            loser.error_line().contains("a release tag never moves"),
            "{}",
            loser.error_line()
        );
        let item = pipeline
            .table
            .item(&tag)
            .await
            .expect("the winner recorded");
        assert_eq!(item["state"], "done", "{item}");
        let winner = commits
            .iter()
            .position(|c| item["commit"] == *c)
            .expect("the ledger records one of the two commits");
        let digest = staged[winner].digest();
        assert_eq!(item["digest"], digest.as_str(), "{item}");
        assert_eq!(
            pipeline
                .world
                .production
                .manifest_digest(REPOSITORY, &tag)
                .await,
            Some(digest.clone()),
            "round {round}: production {tag} is the recorded commit's image"
        );
        let puts = pipeline
            .world
            .production
            .requests()
            .iter()
            .filter(|r| r.is_manifest_put() && r.uri.ends_with(&format!("/manifests/{tag}")))
            .count();
        assert_eq!(
            puts, 1,
            "round {round}: only the claim's holder wrote {tag}"
        );
        let written = pipeline
            .deploy_file("imagedefinitions.json")
            .expect("written by the winner");
        assert_eq!(
            written[0]["imageUri"],
            format!("{}:{tag}", pipeline.target_repository()),
            "{written}"
        );
    }
}
