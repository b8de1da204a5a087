//! Redeploying a recorded release: a rollback copies nothing and adds to the deploy history, and is
//! refused when the production tag moved or the release was never recorded.

use crate::support::{
    COMMIT, Envelope, Flavour, Image, OTHER_COMMIT, Pipeline, REPOSITORY, ROLLBACK_BUILD_ARN,
    ROLLBACK_INITIATOR, ReleaseEvent, TABLE, assert_deploy, run,
};

#[tokio::test]
async fn redeploy_ships_a_recorded_release_again_without_copying_and_records_the_deploy() {
    let pipeline = Pipeline::start().await;
    pipeline.stage(OTHER_COMMIT).await;
    pipeline.stage(COMMIT).await;
    for (tag, commit) in [("v1.0.0", OTHER_COMMIT), ("v1.1.0", COMMIT)] {
        let outcome = pipeline.promote(tag, commit).await;
        assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    }
    let promoted = pipeline.recorded("v1.0.0").await;
    let newer = pipeline.recorded("v1.1.0").await;
    assert_eq!(pipeline.deploys("v1.0.0").await.len(), 1, "{promoted}");
    let writes = pipeline.world.production.writes();

    let dry = run(pipeline.redeploy_command("v1.0.0").arg("--dry-run")).await;

    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(
        dry.stdout.contains("would write") && dry.stdout.contains(":v1.0.0"),
        "says what it would deploy: {}",
        dry.stdout
    );
    assert_eq!(
        pipeline.deploy_file("imagedefinitions.json"),
        Some(pipeline.imagedefinitions("v1.1.0")),
        "a dry run writes nothing"
    );
    assert_eq!(
        pipeline.recorded("v1.0.0").await,
        promoted,
        "records nothing"
    );

    let outcome = pipeline.roll_back_to("v1.0.0").await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    pipeline.assert_deploy_file_for("v1.0.0");
    assert_eq!(pipeline.output_files(), ["imagedefinitions.json"]);
    assert_eq!(
        pipeline.world.production.writes(),
        writes,
        "a redeploy copies nothing"
    );
    let mut redeployed = pipeline.recorded("v1.0.0").await;
    let history = redeployed["deploys"].as_array().expect("deploys").clone();
    assert_eq!(history.len(), 2, "{redeployed}");
    assert_eq!(history[0], promoted["deploys"][0], "the promotion is kept");
    assert_deploy(
        &history[1],
        "redeploy",
        ROLLBACK_BUILD_ARN,
        ROLLBACK_INITIATOR,
    );
    redeployed["deploys"] = promoted["deploys"].clone();
    assert_eq!(redeployed, promoted, "only the deploy history grew");
    assert_eq!(pipeline.recorded("v1.1.0").await, newer);

    // A manual build of the pipeline with an environment override: the queue is not read.
    let waiting = ReleaseEvent::published("v9.9.9", COMMIT).message(Envelope::Raw);
    pipeline.queue.send(&waiting).await;
    pipeline.remove_imagedefinitions();

    let outcome = run(pipeline
        .run_command()
        .env("PROMOTE_REDEPLOY_TAG", "v1.0.0")
        .env("CODEBUILD_BUILD_ARN", ROLLBACK_BUILD_ARN)
        .env("CODEBUILD_INITIATOR", ROLLBACK_INITIATOR))
    .await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    pipeline.assert_deploy_file_for("v1.0.0");
    assert_eq!(pipeline.world.production.writes(), writes);
    let history = pipeline.deploys("v1.0.0").await;
    assert_eq!(history.len(), 3, "{history:?}");
    assert_deploy(
        &history[2],
        "redeploy",
        ROLLBACK_BUILD_ARN,
        ROLLBACK_INITIATOR,
    );
    let received = pipeline.queue.peek().await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].body, waiting);
    assert_eq!(received[0].receive_count, 1, "the queue is not read");
}

#[tokio::test]
async fn redeploy_refuses_a_release_whose_production_tag_moved() {
    let pipeline = Pipeline::start().await;
    let recorded = pipeline.stage(COMMIT).await;
    let outcome = pipeline.promote("v1.0.0", COMMIT).await;
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let promoted = pipeline.recorded("v1.0.0").await;
    // Someone pushed over the release tag by hand.
    let intruder = Image::random(&[40_000], Flavour::Oci);
    pipeline
        .world
        .production
        .push_image(REPOSITORY, "v1.0.0", &intruder)
        .await;
    pipeline.remove_imagedefinitions();

    let outcome = pipeline.roll_back_to("v1.0.0").await;

    outcome.assert_failed_naming(3, &[&recorded.digest(), &intruder.digest()]);
    assert_eq!(pipeline.output_files(), Vec::<String>::new());
    assert_eq!(
        pipeline.recorded("v1.0.0").await,
        promoted,
        "records nothing"
    );
    assert_eq!(
        pipeline.production_digest("v1.0.0").await,
        Some(intruder.digest()),
        "the tag is left for a person to repair"
    );
}

#[tokio::test]
async fn redeploy_of_an_unrecorded_release_names_the_tag_and_the_table() {
    let pipeline = Pipeline::start().await;
    pipeline.stage(COMMIT).await;
    let outcome = pipeline.promote("v1.0.0", COMMIT).await;
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    pipeline.remove_imagedefinitions();
    let promoted = pipeline.recorded("v1.0.0").await;

    let outcome = pipeline.roll_back_to("v0.9.0").await;

    outcome.assert_failed_naming(1, &["v0.9.0", TABLE]);
    assert_eq!(pipeline.output_files(), Vec::<String>::new());
    assert_eq!(pipeline.table.items().await, [promoted]);
}
