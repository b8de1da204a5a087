//! Release operations against the local world: redeploys and rollbacks, the history a person reads,
//! releases of several images, signed and duplicated webhook deliveries, signatures copied with
//! their image, and releases named by pipeline variables or a CodeBuild tag webhook. Every test
//! reads back the registries, the ledger table, the queue and the deploy files.

use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use crate::support::{
    COMMIT, CONTAINER, Counts, DELIVERY, Envelope, Image, Outcome, Pipeline, REPOSITORY,
    ReleaseEvent, TABLE, VISIBILITY_SECONDS, assert_recent, run, signature,
};
use futures_util::StreamExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const OTHER_COMMIT: &str = "0b9c8d7e6f5a4b3c2d1e0f9a8c4d7b5e1c9a2f3e";
const PROMOTE_BUILD_ARN: &str =
    "arn:aws:codebuild:us-east-1:222222222222:build/promote:0f3a8e5c-6b1d-4f2a-9c7e-5d4b3a2f1e0d";
const ROLLBACK_BUILD_ARN: &str =
    "arn:aws:codebuild:us-east-1:222222222222:build/promote:7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f";
const PIPELINE_INITIATOR: &str = "codepipeline/shop-production";
const ROLLBACK_INITIATOR: &str = "oncall-alice";
/// The second image of a multi-image release, in both registries and in the task definition.
const WORKER: &str = "worker";
const WEBHOOK_SECRET: &str = "whsec-5b2f9e1c-do-not-print";

/// `ecr-promote promote --tag <tag> --commit <commit>` as the pipeline's build runs it.
async fn promote(pipeline: &Pipeline, tag: &str, commit: &str) -> Outcome {
    run(pipeline
        .promote_command()
        .args(["--tag", tag, "--commit", commit])
        .env("CODEBUILD_BUILD_ARN", PROMOTE_BUILD_ARN)
        .env("CODEBUILD_INITIATOR", PIPELINE_INITIATOR))
    .await
}

/// `ecr-promote redeploy <tag>` as an on-call engineer's rollback build runs it.
async fn roll_back_to(pipeline: &Pipeline, tag: &str) -> Outcome {
    run(pipeline
        .redeploy_command(tag)
        .env("CODEBUILD_BUILD_ARN", ROLLBACK_BUILD_ARN)
        .env("CODEBUILD_INITIATOR", ROLLBACK_INITIATOR))
    .await
}

/// imagedefinitions.json deploying release `tag` of the one image to the one container.
fn imagedefinitions(pipeline: &Pipeline, tag: &str) -> Value {
    json!([{ "name": CONTAINER, "imageUri": pipeline.production_image(tag) }])
}

fn remove_imagedefinitions(pipeline: &Pipeline) {
    std::fs::remove_file(pipeline.imagedefinitions_path()).expect("remove imagedefinitions.json");
}

/// The ledger item of `tag`, which must exist.
async fn item(pipeline: &Pipeline, tag: &str) -> Value {
    pipeline
        .table
        .item(tag)
        .await
        .unwrap_or_else(|| panic!("no ledger item for {tag}"))
}

/// The deploy history of `tag`.
async fn deploys(pipeline: &Pipeline, tag: &str) -> Vec<Value> {
    item(pipeline, tag).await["deploys"]
        .as_array()
        .unwrap_or_else(|| panic!("no deploys list for {tag}"))
        .clone()
}

/// A deploy entry of `kind` made just now by the given build and person.
fn assert_deploy(deploy: &Value, kind: &str, build_arn: &str, initiator: &str) {
    assert_eq!(deploy["kind"], kind, "{deploy}");
    assert_eq!(deploy["build_arn"], build_arn, "{deploy}");
    assert_eq!(deploy["initiator"], initiator, "{deploy}");
    assert_recent(&deploy["deployed_at"]);
}

/// Deploy timestamps have whole seconds: two deploys that must be ordered are this far apart.
async fn next_second() {
    tokio::time::sleep(Duration::from_millis(1100)).await;
}

#[tokio::test]
async fn redeploy_ships_a_recorded_release_again_without_copying_and_records_the_deploy() {
    let pipeline = Pipeline::start().await;
    pipeline.stage(OTHER_COMMIT).await;
    pipeline.stage(COMMIT).await;
    for (tag, commit) in [("v1.0.0", OTHER_COMMIT), ("v1.1.0", COMMIT)] {
        let outcome = promote(&pipeline, tag, commit).await;
        assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    }
    let promoted = item(&pipeline, "v1.0.0").await;
    let newer = item(&pipeline, "v1.1.0").await;
    assert_eq!(deploys(&pipeline, "v1.0.0").await.len(), 1, "{promoted}");
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
        Some(imagedefinitions(&pipeline, "v1.1.0")),
        "a dry run writes nothing"
    );
    assert_eq!(item(&pipeline, "v1.0.0").await, promoted, "records nothing");

    let outcome = roll_back_to(&pipeline, "v1.0.0").await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert_eq!(
        pipeline.deploy_file("imagedefinitions.json"),
        Some(imagedefinitions(&pipeline, "v1.0.0"))
    );
    assert_eq!(pipeline.output_files(), ["imagedefinitions.json"]);
    assert_eq!(
        pipeline.world.production.writes(),
        writes,
        "a redeploy copies nothing"
    );
    let mut redeployed = item(&pipeline, "v1.0.0").await;
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
    assert_eq!(item(&pipeline, "v1.1.0").await, newer);

    // A manual build of the pipeline with an environment override: the queue is not read.
    let waiting = ReleaseEvent::published("v9.9.9", COMMIT).message(Envelope::Raw);
    pipeline.queue.send(&waiting).await;
    remove_imagedefinitions(&pipeline);

    let outcome = run(pipeline
        .run_command()
        .env("PROMOTE_REDEPLOY_TAG", "v1.0.0")
        .env("CODEBUILD_BUILD_ARN", ROLLBACK_BUILD_ARN)
        .env("CODEBUILD_INITIATOR", ROLLBACK_INITIATOR))
    .await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert_eq!(
        pipeline.deploy_file("imagedefinitions.json"),
        Some(imagedefinitions(&pipeline, "v1.0.0"))
    );
    assert_eq!(pipeline.world.production.writes(), writes);
    let history = deploys(&pipeline, "v1.0.0").await;
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
    let outcome = promote(&pipeline, "v1.0.0", COMMIT).await;
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let promoted = item(&pipeline, "v1.0.0").await;
    // Someone pushed over the release tag by hand.
    let intruder = Image::random(&[40_000], crate::support::Flavour::Oci);
    pipeline
        .world
        .production
        .push_image(REPOSITORY, "v1.0.0", &intruder)
        .await;
    remove_imagedefinitions(&pipeline);

    let outcome = roll_back_to(&pipeline, "v1.0.0").await;

    assert_eq!(outcome.code, 3, "{}", outcome.stderr);
    let error = outcome.error_line();
    for digest in [recorded.digest(), intruder.digest()] {
        assert!(error.contains(&digest), "names {digest}: {error}");
    }
    assert_eq!(pipeline.output_files(), Vec::<String>::new());
    assert_eq!(item(&pipeline, "v1.0.0").await, promoted, "records nothing");
    assert_eq!(
        pipeline
            .world
            .production
            .manifest_digest(REPOSITORY, "v1.0.0")
            .await,
        Some(intruder.digest()),
        "the tag is left for a person to repair"
    );
}

#[tokio::test]
async fn redeploy_of_an_unrecorded_release_names_the_tag_and_the_table() {
    let pipeline = Pipeline::start().await;
    pipeline.stage(COMMIT).await;
    let outcome = promote(&pipeline, "v1.0.0", COMMIT).await;
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    remove_imagedefinitions(&pipeline);
    let promoted = item(&pipeline, "v1.0.0").await;

    let outcome = roll_back_to(&pipeline, "v0.9.0").await;

    assert_eq!(outcome.code, 1, "{}", outcome.stderr);
    let error = outcome.error_line();
    for named in ["v0.9.0", TABLE] {
        assert!(error.contains(named), "names {named}: {error}");
    }
    assert_eq!(pipeline.output_files(), Vec::<String>::new());
    assert_eq!(pipeline.table.items().await, [promoted]);
}

#[tokio::test]
async fn an_empty_queue_after_a_rollback_redeploys_the_release_rolled_back_to() {
    let pipeline = Pipeline::start().await;
    let rolled_back_to = pipeline.stage(OTHER_COMMIT).await;
    pipeline.stage(COMMIT).await;
    for (tag, commit) in [("v1.0.0", OTHER_COMMIT), ("v1.1.0", COMMIT)] {
        let outcome = promote(&pipeline, tag, commit).await;
        assert_eq!(outcome.code, 0, "{}", outcome.stderr);
        next_second().await;
    }
    let outcome = roll_back_to(&pipeline, "v1.0.0").await;
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    remove_imagedefinitions(&pipeline);
    let newer = item(&pipeline, "v1.1.0").await;
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
    assert_eq!(
        pipeline.deploy_file("imagedefinitions.json"),
        Some(imagedefinitions(&pipeline, "v1.0.0"))
    );
    assert_eq!(pipeline.world.production.writes(), writes, "copies nothing");
    assert_eq!(
        pipeline
            .world
            .production
            .manifest_digest(REPOSITORY, "v1.0.0")
            .await,
        Some(rolled_back_to.digest())
    );
    let history = deploys(&pipeline, "v1.0.0").await;
    assert_eq!(history.len(), 3, "promote, rollback, re-run: {history:?}");
    assert_deploy(
        &history[2],
        "redeploy",
        PROMOTE_BUILD_ARN,
        PIPELINE_INITIATOR,
    );
    assert_eq!(
        item(&pipeline, "v1.1.0").await,
        newer,
        "v1.1.0 not deployed"
    );
}

/// One release of the history test: what is written to the table for it.
struct Recorded {
    tag: String,
    commit: String,
    digest: String,
    promoted_at: String,
}

/// `count` releases promoted over a couple of years, numbered in another order than their times,
/// with tags of several lengths.
fn releases(count: u64) -> Vec<Recorded> {
    let start = UNIX_EPOCH + Duration::from_secs(1_704_067_200); // 2024-01-01T00:00:00Z
    (0..count)
        .map(|number| {
            // 7919 is prime to count, so every release gets a slot of its own.
            let slot = number * 7919 % count;
            let promoted_at = start + Duration::from_secs(slot * 53_117);
            let tag = if number % 7 == 0 {
                format!("v{}.{}.0-rc.{}", number / 100, number % 100, number % 3)
            } else {
                format!("v{}.{}.0", number / 100, number % 100)
            };
            Recorded {
                tag,
                commit: hex::encode(Sha256::digest(format!("commit {number}")))[..40].to_string(),
                digest: format!(
                    "sha256:{}",
                    hex::encode(Sha256::digest(format!("image {number}")))
                ),
                promoted_at: humantime::format_rfc3339_seconds(promoted_at).to_string(),
            }
        })
        .collect()
}

#[tokio::test]
async fn history_lists_every_release_newest_first_in_aligned_columns() {
    let pipeline = Pipeline::start().await;
    let mut recorded = releases(300);
    futures_util::stream::iter(&recorded)
        .for_each_concurrent(16, |release| async {
            pipeline
                .table
                .put(&[
                    ("tag_name", &release.tag),
                    ("commit", &release.commit),
                    ("digest", &release.digest),
                    ("source_image", &format!("staging/api@{}", release.digest)),
                    ("target_image", &format!("production/api:{}", release.tag)),
                    ("promoted_at", &release.promoted_at),
                ])
                .await
        })
        .await;
    recorded.sort_by(|a, b| b.promoted_at.cmp(&a.promoted_at));

    let outcome = run(&mut pipeline.ledger_command("history")).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let lines: Vec<&str> = outcome.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1 + recorded.len(),
        "a header and every release"
    );
    let header = lines[0];
    let column = |name: &str| {
        header
            .find(name)
            .unwrap_or_else(|| panic!("no {name} column: {header}"))
    };
    for (line, release) in lines[1..].iter().zip(&recorded) {
        let starts_with = |name: &str, cell: &str| {
            let at = column(name);
            assert!(
                line.get(at..).is_some_and(|rest| rest.starts_with(cell))
                    && line.as_bytes()[at - 1] == b' ',
                "{name} {cell} under its header:\n{header}\n{line}"
            );
        };
        assert!(
            line.starts_with(&format!("{} ", release.tag)),
            "newest first: expected {} ({}):\n{line}",
            release.tag,
            release.promoted_at
        );
        starts_with("COMMIT", &release.commit[..7]);
        starts_with("DIGEST", &release.digest["sha256:".len()..][..12]);
        starts_with("PROMOTED_AT", &release.promoted_at);
        starts_with("LAST_DEPLOYED_AT", "-");
        starts_with("PRERELEASE", "no");
    }

    let outcome = run(pipeline.ledger_command("history").arg("--json")).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let listed: Value = serde_json::from_str(&outcome.stdout)
        .unwrap_or_else(|error| panic!("history --json is not JSON: {error}"));
    let listed = listed.as_array().expect("an array of releases");
    assert_eq!(listed.len(), recorded.len());
    for (entry, release) in listed.iter().zip(&recorded) {
        assert_eq!(
            (&entry["tag_name"], &entry["commit"], &entry["digest"]),
            (
                &json!(release.tag),
                &json!(release.commit),
                &json!(release.digest)
            ),
            "newest first, promoted at {}",
            release.promoted_at
        );
    }
}

#[tokio::test]
async fn show_prints_a_release_with_its_deploys() {
    let pipeline = Pipeline::start().await;
    let image = pipeline.stage(COMMIT).await;
    let outcome = promote(&pipeline, "v1.0.0", COMMIT).await;
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    next_second().await;
    let outcome = roll_back_to(&pipeline, "v1.0.0").await;
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let recorded = item(&pipeline, "v1.0.0").await;
    let history = recorded["deploys"].as_array().expect("deploys").clone();
    assert_eq!(history.len(), 2, "{recorded}");

    let outcome = run(pipeline.ledger_command("show").arg("v1.0.0")).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let source_image = format!("{}@{}", pipeline.source_repository(), image.digest());
    for shown in [
        "v1.0.0",
        COMMIT,
        &image.digest(),
        &pipeline.production_image("v1.0.0"),
        &source_image,
    ] {
        assert!(
            outcome.stdout.contains(shown),
            "shows {shown}: {}",
            outcome.stdout
        );
    }
    let (_, deploy_lines) = outcome
        .stdout
        .split_once("deploys:")
        .unwrap_or_else(|| panic!("no deploys section: {}", outcome.stdout));
    let deploy_lines: Vec<&str> = deploy_lines.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(deploy_lines.len(), 2, "{}", outcome.stdout);
    for (line, (deploy, kind, initiator, build)) in deploy_lines.iter().zip([
        (
            &history[0],
            "promote",
            PIPELINE_INITIATOR,
            PROMOTE_BUILD_ARN,
        ),
        (
            &history[1],
            "redeploy",
            ROLLBACK_INITIATOR,
            ROLLBACK_BUILD_ARN,
        ),
    ]) {
        let deployed_at = deploy["deployed_at"].as_str().expect("deployed_at");
        for said in [deployed_at, kind, initiator, build] {
            assert!(line.contains(said), "deploy line names {said}: {line}");
        }
    }

    let outcome = run(pipeline.ledger_command("show").args(["v1.0.0", "--json"])).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let shown: Value = serde_json::from_str(&outcome.stdout)
        .unwrap_or_else(|error| panic!("show --json is not JSON: {error}"));
    for field in [
        "tag_name",
        "commit",
        "digest",
        "source_image",
        "target_image",
        "promoted_at",
        "build_arn",
        "deploys",
    ] {
        assert_eq!(shown[field], recorded[field], "{field}");
    }
}

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
        let recorded = item(&pipeline, tag).await;
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
    let squatter = Image::random(&[30_000], crate::support::Flavour::Oci);
    pipeline
        .world
        .production
        .push_image(WORKER, "v2.0.0", &squatter)
        .await;
    let writes = pipeline.world.production.writes();
    let message = ReleaseEvent::published("v2.0.0", COMMIT).message(Envelope::Raw);
    pipeline.queue.send(&message).await;

    let outcome = run(&mut with_config(pipeline.run_command(), &config)).await;

    assert_eq!(outcome.code, 3, "{}", outcome.stderr);
    let error = outcome.error_line();
    for digest in [worker.digest(), squatter.digest()] {
        assert!(error.contains(&digest), "names {digest}: {error}");
    }
    assert_eq!(
        pipeline
            .world
            .production
            .manifest_digest(REPOSITORY, "v2.0.0")
            .await,
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
    let claim = item(&pipeline, "v2.0.0").await;
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
    pipeline
        .assert_in_production(REPOSITORY, "v2.0.0", &api)
        .await;
    pipeline
        .assert_in_production(WORKER, "v2.0.0", &worker)
        .await;
    assert_eq!(
        item(&pipeline, "v2.0.0").await["images"],
        json!([
            image_entry(&pipeline, REPOSITORY, "v2.0.0", &api),
            image_entry(&pipeline, WORKER, "v2.0.0", &worker),
        ])
    );
    pipeline.assert_queue_empty().await;
}

/// `sha256=<hex HMAC-SHA256 of body>` with the pipeline's webhook secret, as GitHub signs a delivery.
fn signature_of(body: &str) -> String {
    signature(body, WEBHOOK_SECRET)
}

/// An API Gateway event delivering `body`, with an `X-Hub-Signature-256` header when `signature`
/// is given.
fn delivered(envelope: Envelope, body: &str, signature: Option<&str>) -> String {
    let mut event: Value =
        serde_json::from_str(&envelope.wrap("release", body)).expect("the envelope is JSON");
    if let Some(signature) = signature {
        let name = match envelope {
            Envelope::ApiGatewayV2 => "x-hub-signature-256",
            _ => "X-Hub-Signature-256",
        };
        event["headers"][name] = json!(signature);
    }
    event.to_string()
}

fn assert_secret_not_printed(outcome: &Outcome) {
    assert!(
        !outcome.stdout.contains(WEBHOOK_SECRET) && !outcome.stderr.contains(WEBHOOK_SECRET),
        "the webhook secret appears in the output"
    );
}

#[tokio::test]
async fn with_a_webhook_secret_only_correctly_signed_deliveries_are_promoted() {
    let pipeline = Pipeline::start().await;
    let image = pipeline.stage(COMMIT).await;
    let signed = [
        ("v3.0.0", Envelope::ApiGatewayV1),
        ("v3.0.1", Envelope::ApiGatewayV2),
    ];
    for (tag, envelope) in signed {
        let body = ReleaseEvent::published(tag, COMMIT).payload().to_string();
        let message = delivered(envelope, &body, Some(&signature_of(&body)));
        pipeline.queue.send(&message).await;

        let outcome = run(pipeline
            .run_command()
            .env("PROMOTE_WEBHOOK_SECRET", WEBHOOK_SECRET))
        .await;

        assert_eq!(outcome.code, 0, "{envelope:?}: {}", outcome.stderr);
        assert_secret_not_printed(&outcome);
        pipeline.assert_in_production(REPOSITORY, tag, &image).await;
        assert_eq!(item(&pipeline, tag).await["digest"], image.digest());
        assert_eq!(
            pipeline.deploy_file("imagedefinitions.json"),
            Some(imagedefinitions(&pipeline, tag))
        );
        pipeline.assert_queue_empty().await;
    }
    let writes = pipeline.world.production.writes();
    let tampered_body = ReleaseEvent::published("v6.6.6", COMMIT)
        .payload()
        .to_string();
    let signed_body = ReleaseEvent::published("v3.0.2", COMMIT)
        .payload()
        .to_string();
    let tampered = delivered(
        Envelope::ApiGatewayV1,
        &tampered_body,
        Some(&signature_of(&signed_body)),
    );
    let unsigned_body = ReleaseEvent::published("v7.7.7", COMMIT)
        .payload()
        .to_string();
    let unsigned = delivered(Envelope::ApiGatewayV2, &unsigned_body, None);
    let tampered_id = pipeline.queue.send(&tampered).await;
    let unsigned_id = pipeline.queue.send(&unsigned).await;
    remove_imagedefinitions(&pipeline);

    let outcome = run(pipeline
        .run_command()
        .env("PROMOTE_WEBHOOK_SECRET", WEBHOOK_SECRET)
        // As verbose as an engineer chasing a rejection would make it.
        .env("RUST_LOG", "debug"))
    .await;

    assert_eq!(outcome.code, 4, "nothing to promote: {}", outcome.stderr);
    assert_secret_not_printed(&outcome);
    for id in [&tampered_id, &unsigned_id] {
        assert!(
            outcome
                .stderr
                .lines()
                .any(|line| line.contains("rejected: bad signature") && line.contains(id.as_str())),
            "a rejection names message {id}: {}",
            outcome.stderr
        );
    }
    for tag in ["v6.6.6", "v7.7.7"] {
        assert_eq!(
            pipeline
                .world
                .production
                .manifest_digest(REPOSITORY, tag)
                .await,
            None,
            "{tag} not promoted"
        );
        assert_eq!(pipeline.table.item(tag).await, None, "{tag} not recorded");
    }
    assert_eq!(pipeline.world.production.writes(), writes);
    assert_eq!(pipeline.output_files(), Vec::<String>::new());
    pipeline.assert_kept(&[&tampered, &unsigned]).await;
}

#[tokio::test]
async fn a_delivery_received_twice_is_promoted_once() {
    let pipeline = Pipeline::start().await;
    let image = pipeline.stage(COMMIT).await;
    let message = ReleaseEvent::published("v1.2.0", COMMIT).message(Envelope::ApiGatewayV1);
    pipeline.queue.send(&message).await;

    let outcome = run(&mut pipeline.run_command()).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    pipeline
        .assert_in_production(REPOSITORY, "v1.2.0", &image)
        .await;
    let promoted = item(&pipeline, "v1.2.0").await;
    assert_eq!(promoted["deliveries"], json!([DELIVERY]), "{promoted}");
    assert_eq!(promoted["deploys"].as_array().map(Vec::len), Some(1));
    pipeline.assert_queue_empty().await;
    remove_imagedefinitions(&pipeline);
    let writes = pipeline.world.production.writes();

    // GitHub redelivers, or the webhook Lambda retries: the same delivery arrives again.
    pipeline.queue.send(&message).await;

    let outcome = run(&mut pipeline.run_command()).await;

    assert_eq!(
        outcome.code, 4,
        "nothing left to promote: {}",
        outcome.stderr
    );
    assert!(
        outcome
            .stderr
            .lines()
            .any(|line| line.contains("already promoted") && line.contains(DELIVERY)),
        "says the delivery was skipped: {}",
        outcome.stderr
    );
    pipeline.assert_queue_empty().await;
    assert_eq!(
        item(&pipeline, "v1.2.0").await,
        promoted,
        "no second deploy"
    );
    assert_eq!(pipeline.world.production.writes(), writes);
    assert_eq!(pipeline.output_files(), Vec::<String>::new());
}

#[tokio::test]
async fn signatures_are_copied_with_their_image_when_asked_for() {
    let pipeline = Pipeline::start().await;
    let image = pipeline.stage(COMMIT).await;
    let signature = image.cosign_signature(&pipeline.source_repository());
    let signature_tag = image.cosign_signature_tag();
    pipeline
        .world
        .staging
        .push_image(REPOSITORY, &signature_tag, &signature)
        .await;
    let production = &pipeline.world.production;

    pipeline
        .queue
        .send(&ReleaseEvent::published("v1.0.0", COMMIT).message(Envelope::Raw))
        .await;
    let outcome = run(&mut pipeline.run_command()).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    pipeline
        .assert_in_production(REPOSITORY, "v1.0.0", &image)
        .await;
    assert_eq!(
        production.manifest_digest(REPOSITORY, &signature_tag).await,
        None,
        "not copied unless asked for"
    );

    pipeline
        .queue
        .send(&ReleaseEvent::published("v1.0.1", COMMIT).message(Envelope::Raw))
        .await;
    let outcome = run(pipeline.run_command().env("PROMOTE_WITH_REFERRERS", "true")).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    pipeline
        .assert_in_production(REPOSITORY, "v1.0.1", &image)
        .await;
    pipeline
        .assert_in_production(REPOSITORY, &signature_tag, &signature)
        .await;
    pipeline.assert_queue_empty().await;
}

/// A multi-platform image signed recursively: the index and each platform's manifest carry their own
/// signatures, and every one of them travels to production with the release.
#[tokio::test]
async fn every_platform_of_a_signed_index_keeps_its_signature() {
    let pipeline = Pipeline::start().await;
    let amd64 = Image::random(&[20_000], crate::support::Flavour::Oci);
    let arm64 = Image::random(&[20_000], crate::support::Flavour::Oci);
    let index = crate::support::Index::of(&[(&amd64, "linux/amd64"), (&arm64, "linux/arm64")]);
    let staging = &pipeline.world.staging;
    staging.push_index(REPOSITORY, COMMIT, &index).await;
    let signer = pipeline.source_repository();
    let mut signatures = Vec::new();
    for (digest, tag) in [
        (
            index.digest(),
            format!("{}.sig", index.digest().replace(':', "-")),
        ),
        (amd64.digest(), amd64.cosign_signature_tag()),
        (arm64.digest(), arm64.cosign_signature_tag()),
    ] {
        let signed = if digest == amd64.digest() {
            &amd64
        } else {
            &arm64
        };
        let signature = signed.cosign_signature(&signer);
        staging.push_image(REPOSITORY, &tag, &signature).await;
        signatures.push((tag, signature));
    }

    let outcome = run(pipeline
        .promote_command()
        .args(["--tag", "v3.0.0", "--commit", COMMIT])
        .env("PROMOTE_WITH_REFERRERS", "true"))
    .await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    for (tag, signature) in &signatures {
        pipeline
            .assert_in_production(REPOSITORY, tag, signature)
            .await;
    }
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
        let recorded = item(&pipeline, tag).await;
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
            Some(imagedefinitions(&pipeline, tag)),
            "{source}"
        );
    }
    assert_eq!(pipeline.table.items().await.len(), 2);
}

#[tokio::test]
async fn a_codebuild_webhook_on_a_branch_is_refused_naming_the_trigger() {
    let pipeline = Pipeline::start().await;
    pipeline.stage(COMMIT).await;
    let staging = pipeline.world.staging.requests();
    let production = pipeline.world.production.requests();

    let outcome = run(pipeline
        .run_command()
        .env_remove("PROMOTE_QUEUE_URL")
        .env("PROMOTE_RELEASE_SOURCE", "codebuild-webhook")
        .env("CODEBUILD_WEBHOOK_TRIGGER", "branch/main")
        .env("CODEBUILD_RESOLVED_SOURCE_VERSION", COMMIT))
    .await;

    assert_eq!(outcome.code, 2, "{}", outcome.stderr);
    let error = outcome.error_line();
    assert!(
        error.contains("CODEBUILD_WEBHOOK_TRIGGER") && error.contains("branch/main"),
        "names the variable and its value: {error}"
    );
    assert_eq!(
        pipeline.world.staging.requests(),
        staging,
        "staging untouched"
    );
    assert_eq!(
        pipeline.world.production.requests(),
        production,
        "production untouched"
    );
    pipeline.assert_nothing_recorded_or_written().await;
}
