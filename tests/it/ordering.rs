//! Which release production ends on: several releases in one run or across runs are ordered by
//! when GitHub published them (ties broken by the release id), a failing one holds back none of the
//! others, and an empty queue deploys nothing unless asked to redeploy the release production last
//! ran.

use crate::support::{
    COMMIT, Envelope, ONE_SECOND, OTHER_COMMIT, PIPELINE_INITIATOR, PROMOTE_BUILD_ARN, Pipeline,
    RELEASE, REPOSITORY, ReleaseEvent, assert_deploy, next_second, run,
};

#[tokio::test]
async fn several_releases_are_promoted_oldest_first_and_the_newest_deployed() {
    let pipeline = Pipeline::start().await;
    let older =
        ReleaseEvent::published("v1.0.0", OTHER_COMMIT).published_at("2026-01-01T09:00:00Z");
    let newer = ReleaseEvent::published("v1.1.0", COMMIT).published_at("2026-02-01T09:00:00Z");
    let older_image = pipeline.stage(OTHER_COMMIT).await;
    let newer_image = pipeline.stage(COMMIT).await;
    pipeline.queue.send(&newer.message(Envelope::Raw)).await;
    pipeline
        .queue
        .send(&older.message(Envelope::ApiGatewayV1))
        .await;

    let outcome = pipeline.run_with(&[]).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    pipeline
        .assert_in_production(REPOSITORY, "v1.0.0", &older_image)
        .await;
    pipeline
        .assert_in_production(REPOSITORY, "v1.1.0", &newer_image)
        .await;
    pipeline
        .assert_recorded(&older, OTHER_COMMIT, &older_image, None)
        .await;
    pipeline
        .assert_recorded(&newer, COMMIT, &newer_image, None)
        .await;
    pipeline.assert_deploy_file_for("v1.1.0");
    pipeline.assert_queue_empty().await;
}

#[tokio::test]
async fn a_failing_release_does_not_hold_back_the_others() {
    let pipeline = Pipeline::start().await;
    let image = pipeline.stage(COMMIT).await;
    let good = ReleaseEvent::published("v1.1.0", COMMIT).published_at("2026-02-01T09:00:00Z");
    let unbuilt =
        ReleaseEvent::published("v1.0.0", OTHER_COMMIT).published_at("2026-01-01T09:00:00Z");
    let unbuilt_message = unbuilt.message(Envelope::Raw);
    pipeline.queue.send(&unbuilt_message).await;
    pipeline.queue.send(&good.message(Envelope::Raw)).await;

    let outcome = pipeline.run_with(&[]).await;

    assert_eq!(outcome.code, 1, "{}", outcome.stderr);
    let error = outcome.error_line();
    assert!(
        error.contains("v1.0.0") && error.contains(OTHER_COMMIT),
        "names the failed release and its commit: {error}"
    );
    pipeline
        .assert_in_production(REPOSITORY, "v1.1.0", &image)
        .await;
    pipeline.assert_recorded(&good, COMMIT, &image, None).await;
    assert_eq!(pipeline.table.items().await.len(), 1);
    pipeline.assert_deploy_file_for("v1.1.0");
    pipeline.assert_kept(&[&unbuilt_message]).await;
}

/// `published_at` is compared as an instant: 12:00+05:00 is 07:00Z, before a release published at
/// 08:00Z. Promoting the earlier one after the later keeps production on the later one, recorded as
/// a redeploy of it — not as a promotion.
#[tokio::test]
async fn a_release_published_earlier_in_another_offset_does_not_take_production_back() {
    let pipeline = Pipeline::start().await;
    pipeline.stage(COMMIT).await;
    pipeline.stage(OTHER_COMMIT).await;
    let later = ReleaseEvent::published("v2.0.0", COMMIT).published_at("2026-11-22T08:00:00Z");
    let earlier =
        ReleaseEvent::published("v1.9.0", OTHER_COMMIT).published_at("2026-11-22T12:00:00+05:00");
    pipeline.queue.send(&later.message(Envelope::Raw)).await;
    assert_eq!(pipeline.run_with(&[]).await.code, 0);
    pipeline.queue.send(&earlier.message(Envelope::Raw)).await;

    let outcome = pipeline.run_with(&[]).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let recorded = pipeline
        .table
        .item("v1.9.0")
        .await
        .expect("v1.9.0 recorded");
    assert_eq!(
        recorded["published_at"], "2026-11-22T07:00:00Z",
        "{recorded}"
    );
    assert_eq!(
        pipeline.deploy_file("imagedefinitions.json"),
        Some(pipeline.imagedefinitions("v2.0.0")),
        "production stays on the later release"
    );
    let kept = pipeline
        .table
        .item("v2.0.0")
        .await
        .expect("v2.0.0 recorded");
    let kinds: Vec<&str> = kept["deploys"]
        .as_array()
        .expect("deploys")
        .iter()
        .map(|d| d["kind"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(kinds, ["promote", "redeploy"], "{kept}");
}

/// Two releases published in the same second: the one GitHub created later (the larger release id)
/// is the newer, whichever run handles it — promoting the other afterwards does not take production
/// back to it.
#[tokio::test]
async fn releases_published_in_one_second_are_ordered_by_release_id_across_runs() {
    let pipeline = Pipeline::start().await;
    pipeline.stage(COMMIT).await;
    pipeline.stage(OTHER_COMMIT).await;
    let second = "2026-11-22T10:00:00Z";
    let later = ReleaseEvent::published("v2.1.0", COMMIT)
        .published_at(second)
        .id(20);
    let earlier = ReleaseEvent::published("v2.0.9", OTHER_COMMIT)
        .published_at(second)
        .id(10);
    pipeline.queue.send(&later.message(Envelope::Raw)).await;
    assert_eq!(pipeline.run_with(&[]).await.code, 0);
    pipeline.queue.send(&earlier.message(Envelope::Raw)).await;

    let outcome = pipeline.run_with(&[]).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let recorded = pipeline.table.item("v2.0.9").await.expect("recorded");
    assert_eq!(recorded["release_id"], 10, "{recorded}");
    assert_eq!(
        pipeline.deploy_file("imagedefinitions.json"),
        Some(pipeline.imagedefinitions("v2.1.0")),
        "production stays on the release created later"
    );
}

#[tokio::test]
async fn an_empty_queue_deploys_nothing_and_says_so() {
    let pipeline = Pipeline::start().await;

    let outcome = pipeline.run_with(&[]).await;

    assert_eq!(outcome.code, 4, "{}", outcome.stderr);
    let errors: Vec<&str> = outcome
        .stderr
        .lines()
        .filter(|line| line.starts_with("error:"))
        .collect();
    assert_eq!(errors.len(), 1, "one explanatory line: {}", outcome.stderr);
    assert!(
        errors[0].contains(&pipeline.queue.url)
            && errors[0].contains("PROMOTE_REDEPLOY_LATEST_WHEN_EMPTY"),
        "names the queue and the way to redeploy: {}",
        errors[0]
    );
    pipeline.assert_nothing_promoted(RELEASE).await;
}

#[tokio::test]
async fn an_empty_queue_can_redeploy_the_latest_recorded_release() {
    let pipeline = Pipeline::start().await;
    pipeline.stage(OTHER_COMMIT).await;
    let latest_image = pipeline.stage(COMMIT).await;
    for (tag, commit) in [("v1.0.0", OTHER_COMMIT), ("v1.1.0", COMMIT)] {
        let message = ReleaseEvent::published(tag, commit).message(Envelope::Raw);
        pipeline.queue.send(&message).await;
        let outcome = pipeline.run_with(&[]).await;
        assert_eq!(outcome.code, 0, "{}", outcome.stderr);
        // promoted_at has whole seconds: the two promotions must not share one.
        next_second().await;
    }
    pipeline.remove_imagedefinitions();
    let writes_before = pipeline.world.production.writes();

    let outcome = pipeline
        .run_with(&[("PROMOTE_REDEPLOY_LATEST_WHEN_EMPTY", "true")])
        .await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    pipeline.assert_deploy_file_for("v1.1.0");
    assert!(
        outcome.stdout.contains(&latest_image.digest()),
        "stdout names the digest: {}",
        outcome.stdout
    );
    assert_eq!(
        pipeline.world.production.writes(),
        writes_before,
        "a redeploy copies nothing"
    );
    assert_eq!(pipeline.table.items().await.len(), 2);
}

#[tokio::test]
async fn an_empty_queue_after_a_rollback_redeploys_the_release_rolled_back_to() {
    let pipeline = Pipeline::start().await;
    let rolled_back_to = pipeline.stage(OTHER_COMMIT).await;
    pipeline.stage(COMMIT).await;
    for (tag, commit) in [("v1.0.0", OTHER_COMMIT), ("v1.1.0", COMMIT)] {
        let outcome = pipeline.promote(tag, commit).await;
        assert_eq!(outcome.code, 0, "{}", outcome.stderr);
        next_second().await;
    }
    let outcome = pipeline.roll_back_to("v1.0.0").await;
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    pipeline.remove_imagedefinitions();
    let newer = pipeline.recorded("v1.1.0").await;
    let writes = pipeline.world.production.writes();
    next_second().await;

    // The pipeline is re-run with nothing on the queue: it must not undo the rollback.
    let outcome = run(pipeline
        .run_command()
        .env("PROMOTE_REDEPLOY_LATEST_WHEN_EMPTY", "true")
        .env("CODEBUILD_BUILD_ARN", PROMOTE_BUILD_ARN)
        .env("CODEBUILD_INITIATOR", PIPELINE_INITIATOR))
    .await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    pipeline.assert_deploy_file_for("v1.0.0");
    assert_eq!(pipeline.world.production.writes(), writes, "copies nothing");
    assert_eq!(
        pipeline.production_digest("v1.0.0").await,
        Some(rolled_back_to.digest())
    );
    let history = pipeline.deploys("v1.0.0").await;
    assert_eq!(history.len(), 3, "promote, rollback, re-run: {history:?}");
    assert_deploy(
        &history[2],
        "redeploy",
        PROMOTE_BUILD_ARN,
        PIPELINE_INITIATOR,
    );
    assert_eq!(
        pipeline.recorded("v1.1.0").await,
        newer,
        "v1.1.0 not deployed"
    );
}

#[tokio::test]
async fn an_empty_queue_redeploys_the_release_deployed_last_not_one_promoted_in_the_same_second() {
    let pipeline = Pipeline::two_releases_promoted_in_one_second().await;
    let older = pipeline.recorded("v1.0.0").await;

    let outcome = pipeline
        .run_with(&[("PROMOTE_REDEPLOY_LATEST_WHEN_EMPTY", "true")])
        .await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert_eq!(
        pipeline.deploy_file("imagedefinitions.json"),
        Some(pipeline.imagedefinitions("v1.1.0")),
        "production does not go back to v1.0.0"
    );
    assert_eq!(
        pipeline.recorded("v1.0.0").await,
        older,
        "v1.0.0 is not recorded as redeployed"
    );
    let deploys = pipeline.deploys("v1.1.0").await;
    assert_eq!(deploys.len(), 2, "{deploys:?}");
    assert_eq!(deploys[1]["kind"], "redeploy");
}

#[tokio::test]
async fn deploys_recorded_in_one_second_before_they_were_numbered_go_to_the_release_published_later()
 {
    let pipeline = Pipeline::two_releases_promoted_in_one_second().await;
    // Both deployed in one second by an ecr-promote that numbered no deploy: only publication tells.
    let outcome = pipeline.roll_back_to("v1.0.0").await;
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    for tag in ["v1.0.0", "v1.1.0"] {
        pipeline.recorded_in_one_second(tag, ONE_SECOND).await;
        pipeline.unnumbered(tag).await;
    }
    pipeline.remove_imagedefinitions();

    let outcome = pipeline
        .run_with(&[("PROMOTE_REDEPLOY_LATEST_WHEN_EMPTY", "true")])
        .await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    pipeline.assert_deploy_file_for("v1.1.0");
}
