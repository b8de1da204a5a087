//! Releases named without a queue: `ecr-promote promote` with a tag and a commit (a digest pinned on
//! request), and `run` told the release by CodePipeline variables or a CodeBuild tag webhook.

use crate::support::{
    COMMIT, CONTAINER, Envelope, OTHER_COMMIT, PIPELINE_INITIATOR, PROMOTE_BUILD_ARN, Pipeline,
    REPOSITORY, ReleaseEvent, assert_deploy, assert_recent, run,
};
use serde_json::json;

#[tokio::test]
async fn promote_ships_one_release_without_a_queue() {
    let pipeline = Pipeline::start().await;
    let image = pipeline.stage(COMMIT).await;
    let unrelated = ReleaseEvent::published("v9.9.9", COMMIT).message(Envelope::Raw);
    pipeline.queue.send(&unrelated).await;

    let outcome = run(pipeline
        .promote_command()
        .args(["--tag", "v2.0.0", "--commit", COMMIT])
        .env("CODEBUILD_BUILD_ARN", PROMOTE_BUILD_ARN))
    .await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    pipeline
        .assert_in_production(REPOSITORY, "v2.0.0", &image)
        .await;
    let item = pipeline.table.item("v2.0.0").await.expect("recorded");
    assert_eq!(item["commit"], COMMIT);
    assert_eq!(item["digest"], image.digest());
    assert_eq!(
        item["source_image"],
        format!("{}@{}", pipeline.source_repository(), image.digest())
    );
    assert_eq!(item["target_image"], pipeline.production_image("v2.0.0"));
    assert_eq!(item["containers"], json!([CONTAINER]));
    assert_eq!(item["build_arn"], PROMOTE_BUILD_ARN);
    assert_eq!(item["prerelease"], false);
    assert_recent(&item["promoted_at"]);
    pipeline.assert_deploy_file_for("v2.0.0");
    assert_eq!(pipeline.output_files(), ["imagedefinitions.json"]);
    let received = pipeline.queue.peek().await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].receive_count, 1, "the queue is not read");
}

#[tokio::test]
async fn promote_can_pin_the_digest_for_every_container_and_write_the_image_detail() {
    let pipeline = Pipeline::start().await;
    let image = pipeline.stage(COMMIT).await;

    let outcome = run(pipeline
        .promote_command()
        .env("PROMOTE_CONTAINER_NAME", "api, worker")
        .env("PROMOTE_RELEASE_TAG", "v2.0.0")
        .env("PROMOTE_COMMIT", COMMIT)
        .env("PROMOTE_PIN_DIGEST", "true")
        .env(
            "PROMOTE_IMAGE_DETAIL",
            pipeline.output_dir().join("imageDetail.json"),
        ))
    .await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    pipeline
        .assert_in_production(REPOSITORY, "v2.0.0", &image)
        .await;
    let pinned = format!("{}@{}", pipeline.target_repository(), image.digest());
    assert_eq!(
        pipeline.deploy_file("imagedefinitions.json"),
        Some(json!([
            { "name": "api", "imageUri": pinned },
            { "name": "worker", "imageUri": pinned },
        ]))
    );
    assert_eq!(
        pipeline.deploy_file("imageDetail.json"),
        Some(json!({ "ImageURI": pinned }))
    );
    let item = pipeline.table.item("v2.0.0").await.expect("recorded");
    assert_eq!(item["digest"], image.digest());
    assert_eq!(item["containers"], json!(["api", "worker"]));
}

#[tokio::test]
async fn pipeline_variables_and_a_codebuild_tag_webhook_name_the_release_without_a_queue() {
    let pipeline = Pipeline::start().await;
    let first = pipeline.stage(COMMIT).await;
    let second = pipeline.stage(OTHER_COMMIT).await;
    let sources = [
        (
            "variables",
            "v2.0.0",
            COMMIT,
            &first,
            [
                ("PROMOTE_RELEASE_TAG", "v2.0.0"),
                ("PROMOTE_COMMIT", COMMIT),
            ],
        ),
        (
            "codebuild-webhook",
            "v3.0.0",
            OTHER_COMMIT,
            &second,
            [
                ("CODEBUILD_WEBHOOK_TRIGGER", "tag/v3.0.0"),
                ("CODEBUILD_RESOLVED_SOURCE_VERSION", OTHER_COMMIT),
            ],
        ),
    ];
    for (source, tag, commit, image, env) in sources {
        let outcome = run(pipeline
            .run_command()
            .env_remove("PROMOTE_QUEUE_URL")
            .env("PROMOTE_RELEASE_SOURCE", source)
            .env("CODEBUILD_BUILD_ARN", PROMOTE_BUILD_ARN)
            .env("CODEBUILD_INITIATOR", PIPELINE_INITIATOR)
            .envs(env))
        .await;

        assert_eq!(outcome.code, 0, "{source}: {}", outcome.stderr);
        pipeline.assert_in_production(REPOSITORY, tag, image).await;
        let recorded = pipeline.recorded(tag).await;
        assert_eq!(recorded["commit"], commit, "{source}");
        assert_eq!(recorded["digest"], image.digest(), "{source}");
        assert_eq!(recorded["build_arn"], PROMOTE_BUILD_ARN, "{source}");
        assert_eq!(recorded["target_image"], pipeline.production_image(tag));
        let history = recorded["deploys"].as_array().expect("deploys").clone();
        assert_eq!(history.len(), 1, "{source}: {recorded}");
        assert_deploy(
            &history[0],
            "promote",
            PROMOTE_BUILD_ARN,
            PIPELINE_INITIATOR,
        );
        assert_eq!(
            pipeline.deploy_file("imagedefinitions.json"),
            Some(pipeline.imagedefinitions(tag)),
            "{source}"
        );
    }
    assert_eq!(pipeline.table.items().await.len(), 2);
}
