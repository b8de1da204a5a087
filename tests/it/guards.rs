//! A release tag never moves and nothing is lost: a rerun of a shipped release changes nothing, and
//! a tag already on another digest, a release recorded with another commit or an unreadable ledger
//! item stops the promotion before any registry write, with the message kept.

use crate::support::{
    COMMIT, Envelope, Flavour, Image, OTHER_COMMIT, Pipeline, RELEASE, REPOSITORY, ReleaseEvent,
    TABLE, next_second, run,
};
use serde_json::Value;

#[tokio::test]
async fn running_the_same_release_again_is_harmless() {
    let pipeline = Pipeline::start().await;
    let image = pipeline.stage(COMMIT).await;
    let release = ReleaseEvent::published(RELEASE, COMMIT);
    let message = release.message(Envelope::Raw);
    pipeline.queue.send(&message).await;
    let first = pipeline.run_with(&[]).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let recorded = pipeline.table.item(RELEASE).await.expect("recorded");
    let writes_before = pipeline.world.production.writes();
    // promoted_at has whole seconds: a rewrite would show.
    next_second().await;
    pipeline.queue.send(&message).await;

    let outcome = pipeline.run_with(&[]).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    pipeline
        .assert_in_production(REPOSITORY, RELEASE, &image)
        .await;
    let without_deploys = |mut item: Value| {
        item.as_object_mut().map(|item| item.remove("deploys"));
        item
    };
    let items = pipeline.table.items().await;
    assert_eq!(items.len(), 1, "one item: {items:?}");
    assert_eq!(
        without_deploys(items[0].clone()),
        without_deploys(recorded),
        "the record, promoted_at included, is unchanged"
    );
    assert_eq!(
        items[0]["deploys"].as_array().map(Vec::len),
        Some(2),
        "the rerun's deploy is in the history"
    );
    assert_eq!(
        pipeline.world.production.writes(),
        writes_before,
        "nothing copied again"
    );
    assert_eq!(
        pipeline.deploy_file("imagedefinitions.json"),
        Some(pipeline.imagedefinitions(RELEASE))
    );
    pipeline.assert_queue_empty().await;
}

#[tokio::test]
async fn a_release_tag_on_another_digest_is_refused_and_left_alone() {
    let pipeline = Pipeline::start().await;
    let wanted = pipeline.stage(COMMIT).await;
    let existing = Image::random(&[50_000], Flavour::Oci);
    pipeline
        .world
        .production
        .push_image(REPOSITORY, RELEASE, &existing)
        .await;
    let writes_before = pipeline.world.production.writes();
    let message = pipeline.queue_release(RELEASE, COMMIT).await;

    let outcome = pipeline.run_with(&[]).await;

    outcome.assert_failed_naming(3, &[&wanted.digest(), &existing.digest()]);
    assert_eq!(
        pipeline.production_digest(RELEASE).await,
        Some(existing.digest())
    );
    assert_eq!(
        pipeline.world.production.writes(),
        writes_before,
        "nothing written to production"
    );
    pipeline.assert_nothing_recorded_or_written().await;
    pipeline.assert_kept(&[&message]).await;
}

#[tokio::test]
async fn a_release_recorded_with_another_commit_is_refused_before_any_copy() {
    let pipeline = Pipeline::start().await;
    pipeline.stage(COMMIT).await;
    pipeline
        .put_release_item(
            RELEASE,
            &[
                ("commit", OTHER_COMMIT),
                ("promoted_at", "2026-01-05T08:00:00Z"),
            ],
        )
        .await;
    let recorded = pipeline.table.item(RELEASE).await;
    let message = pipeline.queue_release(RELEASE, COMMIT).await;

    let outcome = pipeline.run_with(&[]).await;

    outcome.assert_failed_naming(3, &[RELEASE, COMMIT, OTHER_COMMIT, TABLE]);
    assert_eq!(pipeline.production_digest(RELEASE).await, None);
    assert_eq!(
        pipeline.world.production.writes(),
        Vec::new(),
        "production untouched"
    );
    assert_eq!(
        pipeline.table.item(RELEASE).await,
        recorded,
        "ledger untouched"
    );
    assert_eq!(pipeline.output_files(), Vec::<String>::new());
    pipeline.assert_kept(&[&message]).await;
}

/// An item under the release's tag that is not a record ecr-promote wrote stops the promotion before
/// any registry write, naming the table, the key and the field; `history` lists it as unreadable and
/// `show` says so.
#[tokio::test]
async fn an_unreadable_ledger_item_is_named_and_nothing_is_copied() {
    let pipeline = Pipeline::start().await;
    pipeline.stage(COMMIT).await;
    // Everything a record has but its commit.
    pipeline.put_release_item(RELEASE, &[]).await;
    let message = pipeline.queue_release(RELEASE, COMMIT).await;

    let outcome = pipeline.run_with(&[]).await;

    outcome.assert_failed_naming(1, &[RELEASE, TABLE, "commit is missing"]);
    assert_eq!(
        pipeline.world.production.writes(),
        Vec::new(),
        "production untouched"
    );
    pipeline.assert_kept(&[&message]).await;

    let history = run(&mut pipeline.ledger_command("history")).await;
    assert_eq!(history.code, 0, "{}", history.stderr);
    assert!(
        history
            .stdout
            .contains(&format!("unreadable {RELEASE}: field commit is missing")),
        "{}",
        history.stdout
    );
    let history = run(pipeline.ledger_command("history").arg("--json")).await;
    let listed: Value = serde_json::from_str(&history.stdout).expect("history --json is JSON");
    assert_eq!(listed[0]["state"], "unreadable", "{listed}");
    let shown = run(pipeline.ledger_command("show").arg(RELEASE)).await;
    assert!(
        shown.code == 1 && shown.error_line().contains("unreadable"),
        "{shown:?}"
    );
}
