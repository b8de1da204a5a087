//! Releases of several images, from a release config in TOML or JSON: both images ship and are
//! recorded, a second image that would move a tag stops the whole release before any copy, and a
//! second copy that fails leaves the release pending for the rerun that finishes it. The images of a
//! release copy at the same time.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::{
    COMMIT, Counts, Envelope, FaultyFront, Flavour, Image, OTHER_COMMIT, Pipeline, REPOSITORY,
    ReleaseEvent, VISIBILITY_SECONDS, World, run,
};
use serde_json::{Value, json};

/// The second image of a multi-image release, in both registries and in the task definition.
const WORKER: &str = "worker";

/// A TOML release config shipping `api` and `worker`, each from its staging repository to its
/// production repository.
fn two_image_config(pipeline: &Pipeline) -> String {
    let (staging, production) = (&pipeline.world.staging, &pipeline.world.production);
    [REPOSITORY, WORKER]
        .map(|name| {
            format!(
                "[[container]]\nname = \"{name}\"\nsource = \"{}\"\ntarget = \"{}\"\n",
                staging.reference(name),
                production.reference(name)
            )
        })
        .join("\n")
}

/// The same config as JSON.
fn two_image_config_json(pipeline: &Pipeline) -> String {
    let (staging, production) = (&pipeline.world.staging, &pipeline.world.production);
    let containers: Vec<Value> = [REPOSITORY, WORKER]
        .iter()
        .map(|name| {
            json!({
                "name": name,
                "source": staging.reference(name),
                "target": production.reference(name),
            })
        })
        .collect();
    json!({ "container": containers }).to_string()
}

/// Writes a release config into the world's folder and returns its path.
fn write_config(pipeline: &Pipeline, name: &str, text: &str) -> PathBuf {
    let path = pipeline.world.dir().join(name);
    std::fs::write(&path, text).unwrap_or_else(|error| panic!("write {path:?}: {error}"));
    path
}

/// A promotion command that knows the release's images only from the config at `config`.
fn with_config(mut command: tokio::process::Command, config: &Path) -> tokio::process::Command {
    command
        .env_remove("PROMOTE_SOURCE_REPOSITORY")
        .env_remove("PROMOTE_TARGET_REPOSITORY")
        .env_remove("PROMOTE_CONTAINER_NAME")
        .env("PROMOTE_CONFIG", config);
    command
}

/// Production holds release `tag` of both images.
async fn assert_release_in_production(pipeline: &Pipeline, tag: &str, api: &Image, worker: &Image) {
    pipeline.assert_in_production(REPOSITORY, tag, api).await;
    pipeline.assert_in_production(WORKER, tag, worker).await;
}

/// The ledger's entry for one image of a release.
fn image_entry(pipeline: &Pipeline, name: &str, tag: &str, image: &Image) -> Value {
    json!({
        "containers": [name],
        "source_image": format!("{}@{}", pipeline.world.staging.reference(name), image.digest()),
        "target_image": format!("{}:{tag}", pipeline.world.production.reference(name)),
        "digest": image.digest(),
    })
}

#[tokio::test]
async fn a_release_of_two_images_from_a_config_ships_and_records_both() {
    let pipeline = Pipeline::start().await;
    let configs = [
        (
            "promote.toml",
            two_image_config(&pipeline),
            "v2.0.0",
            COMMIT,
        ),
        (
            "promote.json",
            two_image_config_json(&pipeline),
            "v2.1.0",
            OTHER_COMMIT,
        ),
    ];
    for (name, text, tag, commit) in configs {
        let config = write_config(&pipeline, name, &text);
        let api = pipeline.stage_in(REPOSITORY, commit).await;
        let worker = pipeline.stage_in(WORKER, commit).await;
        let release = ReleaseEvent::published(tag, commit);
        pipeline.queue.send(&release.message(Envelope::Raw)).await;

        let outcome = run(&mut with_config(pipeline.run_command(), &config)).await;

        assert_eq!(outcome.code, 0, "{name}: {}", outcome.stderr);
        pipeline.assert_in_production(REPOSITORY, tag, &api).await;
        pipeline.assert_in_production(WORKER, tag, &worker).await;
        let production = &pipeline.world.production;
        assert_eq!(
            pipeline.deploy_file("imagedefinitions.json"),
            Some(json!([
                { "name": REPOSITORY, "imageUri": format!("{}:{tag}", production.reference(REPOSITORY)) },
                { "name": WORKER, "imageUri": format!("{}:{tag}", production.reference(WORKER)) },
            ])),
            "{name}"
        );
        let recorded = pipeline.recorded(tag).await;
        assert_eq!(
            recorded["images"],
            json!([
                image_entry(&pipeline, REPOSITORY, tag, &api),
                image_entry(&pipeline, WORKER, tag, &worker),
            ]),
            "{name}"
        );
        assert_eq!(recorded["containers"], json!([REPOSITORY, WORKER]));
        assert_eq!(recorded["commit"], commit);
        assert_eq!(recorded["digest"], api.digest(), "the first image's");
        pipeline.assert_queue_empty().await;
    }
    assert_eq!(pipeline.table.items().await.len(), 2);
}

#[tokio::test]
async fn a_release_whose_second_image_would_move_a_tag_is_refused_before_any_copy() {
    let pipeline = Pipeline::start().await;
    let config = write_config(&pipeline, "promote.toml", &two_image_config(&pipeline));
    pipeline.stage_in(REPOSITORY, COMMIT).await;
    let worker = pipeline.stage_in(WORKER, COMMIT).await;
    let squatter = Image::random(&[30_000], Flavour::Oci);
    pipeline
        .world
        .production
        .push_image(WORKER, "v2.0.0", &squatter)
        .await;
    let writes = pipeline.world.production.writes();
    let message = ReleaseEvent::published("v2.0.0", COMMIT).message(Envelope::Raw);
    pipeline.queue.send(&message).await;

    let outcome = run(&mut with_config(pipeline.run_command(), &config)).await;

    outcome.assert_failed_naming(3, &[&worker.digest(), &squatter.digest()]);
    assert_eq!(
        pipeline.production_digest("v2.0.0").await,
        None,
        "the first image is not copied either"
    );
    assert_eq!(
        pipeline.world.production.writes(),
        writes,
        "nothing written to production"
    );
    pipeline.assert_nothing_recorded_or_written().await;
    pipeline.assert_kept(&[&message]).await;
}

#[tokio::test]
async fn a_release_whose_second_copy_fails_stays_pending_and_is_retried() {
    let pipeline = Pipeline::start().await;
    let config = write_config(&pipeline, "promote.toml", &two_image_config(&pipeline));
    let api = pipeline.stage_in(REPOSITORY, COMMIT).await;
    let worker = pipeline.stage_in(WORKER, COMMIT).await;
    let lost = &worker.layers[0];
    let lost_digest = worker.blob_digests()[1].clone();
    pipeline.world.staging.lose_blob(&lost_digest);
    let message = ReleaseEvent::published("v2.0.0", COMMIT).message(Envelope::Raw);
    pipeline.queue.send(&message).await;

    let outcome = run(&mut with_config(pipeline.run_command(), &config)).await;

    assert_eq!(outcome.code, 1, "{}", outcome.stderr);
    let error = outcome.error_line();
    assert!(
        error.contains("v2.0.0") && error.contains(&lost_digest),
        "names the release and the blob that failed: {error}"
    );
    assert_eq!(
        pipeline
            .world
            .production
            .manifest_digest(WORKER, "v2.0.0")
            .await,
        None,
        "no tag on an incomplete image"
    );
    let claim = pipeline.recorded("v2.0.0").await;
    assert_eq!(
        claim["state"], "pending",
        "claimed, never completed: {claim}"
    );
    assert_eq!(
        pipeline.output_files(),
        Vec::<String>::new(),
        "no deploy file"
    );
    // Counted, not read: a read is a receive, and a third would send it to the dead-letter queue.
    assert_eq!(
        pipeline
            .queue
            .counts_once_visible(Duration::from_secs(VISIBILITY_SECONDS + 5))
            .await,
        Counts {
            visible: 1,
            not_visible: 0
        },
        "the message is kept"
    );

    // The storage is repaired: the kept message finishes the release.
    pipeline.world.staging.push_blob(WORKER, lost).await;

    let outcome = run(&mut with_config(pipeline.run_command(), &config)).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert_release_in_production(&pipeline, "v2.0.0", &api, &worker).await;
    assert_eq!(
        pipeline.recorded("v2.0.0").await["images"],
        json!([
            image_entry(&pipeline, REPOSITORY, "v2.0.0", &api),
            image_entry(&pipeline, WORKER, "v2.0.0", &worker),
        ])
    );
    pipeline.assert_queue_empty().await;
}

/// The images of a release copy at the same time: while production leaves the first image's tag put
/// unanswered (until the stall limit gives it up and the put is retried), the second image is copied and
/// tagged. Copies one after the other, in the config's order, would tag `api` before `worker` starts.
#[tokio::test(flavor = "multi_thread")]
async fn the_images_of_a_release_copy_at_the_same_time() {
    let mut world = World::start().await;
    let front = FaultyFront::start(&world.production.url()).await;
    world.route(&world.production.ecr_host(), &front.url());
    let pipeline = Pipeline::around(world).await;
    let config = write_config(&pipeline, "promote.toml", &two_image_config(&pipeline));
    let api = pipeline.stage_in(REPOSITORY, COMMIT).await;
    let worker = pipeline.stage_in(WORKER, COMMIT).await;
    let api_tag = format!("/v2/{REPOSITORY}/manifests/v2.0.0");
    front.hang("PUT", &api_tag, 1);
    pipeline.queue_release("v2.0.0", COMMIT).await;

    let outcome = run(with_config(pipeline.run_command(), &config)
        .env("PROMOTE_STALL_SECONDS", "2")
        .env("PROMOTE_JOBS", "4"))
    .await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert_eq!(front.faults_served(), 1, "the api tag put was held");
    assert_release_in_production(&pipeline, "v2.0.0", &api, &worker).await;
    let tag_puts: Vec<String> = pipeline
        .world
        .production
        .requests()
        .into_iter()
        .filter(|request| request.is_manifest_put() && request.uri.ends_with("/manifests/v2.0.0"))
        .map(|request| request.uri)
        .collect();
    assert_eq!(
        tag_puts,
        [format!("/v2/{WORKER}/manifests/v2.0.0"), api_tag],
        "worker was tagged while api's tag put was held"
    );
}
