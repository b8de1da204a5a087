//! `ecr-promote run` and `ecr-promote promote` against the local world: releases arrive on a real
//! queue, staging images sit in a real registry. Every test reads back the production registry, the
//! ledger table, the queue and the deploy files, through the support clients, not only what the
//! binary printed.

use std::process::Command;
use std::time::Duration;

use crate::support::{
    AUTHOR, COMMIT, CONTAINER, Counts, ENVELOPES, Envelope, FaultyFront, GITHUB_REPOSITORY, Image,
    MAX_RECEIVE_COUNT, Outcome, PRODUCTION_ACCOUNT, Pipeline, RELEASE, REPOSITORY, Registry,
    ReleaseEvent, Request, STAGING_ACCOUNT, TABLE, World, assert_recent, ping, run,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

const OTHER_COMMIT: &str = "0b9c8d7e6f5a4b3c2d1e0f9a8c4d7b5e1c9a2f3e";
const BUILD_ARN: &str =
    "arn:aws:codebuild:us-east-1:222222222222:build/promote:0f3a8e5c-6b1d-4f2a-9c7e-5d4b3a2f1e0d";

/// `ecr-promote run` with the pipeline's settings, and `env` on top.
async fn run_step(pipeline: &Pipeline, env: &[(&str, &str)]) -> Outcome {
    run(pipeline.run_command().envs(env.iter().copied())).await
}

/// `release` went all the way: `image` in production under the release tag, the release recorded
/// with `commit`, and the deploy file naming the production image.
async fn assert_shipped(pipeline: &Pipeline, release: &ReleaseEvent, commit: &str, image: &Image) {
    pipeline
        .assert_in_production(REPOSITORY, &release.tag, image)
        .await;
    assert_recorded(pipeline, release, commit, image, None).await;
    assert_eq!(
        pipeline.deploy_file("imagedefinitions.json"),
        Some(imagedefinitions(&pipeline.production_image(&release.tag)))
    );
}

/// imagedefinitions.json deploying `image_uri` to the one container.
fn imagedefinitions(image_uri: &str) -> Value {
    json!([{ "name": CONTAINER, "imageUri": image_uri }])
}

fn blob_uploads_and_manifest_puts(registry: &Registry) -> Vec<Request> {
    registry
        .requests()
        .into_iter()
        .filter(|request| request.is_blob_upload() || request.is_manifest_put())
        .collect()
}

/// The ledger item of a release promoted by a `run` from the queue, field by field.
async fn assert_recorded(
    pipeline: &Pipeline,
    release: &ReleaseEvent,
    commit: &str,
    image: &Image,
    build_arn: Option<&str>,
) {
    let mut item = pipeline
        .table
        .item(&release.tag)
        .await
        .unwrap_or_else(|| panic!("no ledger item for {}", release.tag));
    let promoted_at = item
        .as_object_mut()
        .and_then(|item| item.remove("promoted_at"))
        .unwrap_or_else(|| panic!("no promoted_at in {item}"));
    // The deploy history and the webhook deliveries are release operations, checked in release_ops.rs.
    // No claim token: completing the claim removes it.
    if let Some(item) = item.as_object_mut() {
        item.remove("deploys");
        item.remove("deliveries");
    }

    assert_recent(&promoted_at);
    let mut expected = json!({
        "tag_name": release.tag,
        "state": "done",
        "commit": commit,
        "digest": image.digest(),
        "digests": image.digest(),
        "release_id": "1",
        "source_image": format!("{}@{}", pipeline.source_repository(), image.digest()),
        "target_image": pipeline.production_image(&release.tag),
        "containers": [CONTAINER],
        "release_name": release.name(),
        "html_url": release.html_url(),
        "author": AUTHOR,
        "prerelease": release.prerelease,
        "published_at": release.published_at,
        "images": [{
            "containers": [CONTAINER],
            "source_image": format!("{}@{}", pipeline.source_repository(), image.digest()),
            "target_image": pipeline.production_image(&release.tag),
            "digest": image.digest(),
        }],
    });
    if let Some(build_arn) = build_arn {
        expected["build_arn"] = json!(build_arn);
    }
    assert_eq!(item, expected, "ledger item of {}", release.tag);
}

/// Nothing reached production or the ledger, and no deploy file was written.
async fn assert_nothing_promoted(pipeline: &Pipeline, tag: &str) {
    assert_eq!(
        pipeline
            .world
            .production
            .manifest_digest(REPOSITORY, tag)
            .await,
        None,
        "production has no {tag}"
    );
    assert_eq!(
        blob_uploads_and_manifest_puts(&pipeline.world.production),
        Vec::new(),
        "nothing was written to production"
    );
    assert_eq!(pipeline.table.items().await, Vec::<Value>::new(), "ledger");
    assert_eq!(
        pipeline.output_files(),
        Vec::<String>::new(),
        "deploy files"
    );
}

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
async fn promotes_a_release_from_every_envelope_and_records_it_with_the_build() {
    let pipeline = Pipeline::start().await;
    for (number, envelope) in ENVELOPES.into_iter().enumerate() {
        let commit = format!("{:x}{}", number + 1, &COMMIT[1..]);
        let image = pipeline.stage(&commit).await;
        let release = ReleaseEvent::published(&format!("v1.{number}.0"), &commit);
        pipeline.queue.send(&release.message(envelope)).await;

        let outcome = run_step(&pipeline, &[("CODEBUILD_BUILD_ARN", BUILD_ARN)]).await;

        assert_eq!(outcome.code, 0, "{envelope:?}: {}", outcome.stderr);
        pipeline
            .assert_in_production(REPOSITORY, &release.tag, &image)
            .await;
        assert_recorded(&pipeline, &release, &commit, &image, Some(BUILD_ARN)).await;
        assert_eq!(
            pipeline.deploy_file("imagedefinitions.json"),
            Some(imagedefinitions(&pipeline.production_image(&release.tag))),
            "{envelope:?}"
        );
        assert!(
            outcome.stdout.contains(&image.digest()),
            "{envelope:?}: stdout names the digest"
        );
        pipeline.assert_queue_empty().await;
    }
    assert_eq!(pipeline.table.items().await.len(), ENVELOPES.len());
}

#[tokio::test]
async fn finds_the_staging_image_under_an_abbreviated_commit() {
    let pipeline = Pipeline::start().await;
    let image = pipeline.stage(&COMMIT[..7]).await;
    let release = ReleaseEvent::published(RELEASE, COMMIT);
    pipeline.queue.send(&release.message(Envelope::Raw)).await;

    let outcome = run_step(&pipeline, &[]).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert_shipped(&pipeline, &release, COMMIT, &image).await;
    pipeline.assert_queue_empty().await;
}

#[tokio::test]
async fn two_abbreviations_of_the_commit_are_refused_and_the_message_kept() {
    let pipeline = Pipeline::start().await;
    pipeline.stage(&COMMIT[..7]).await;
    pipeline.stage(&COMMIT[..8]).await;
    let message = pipeline.queue_release(RELEASE, COMMIT).await;

    let outcome = run_step(&pipeline, &[]).await;

    assert_eq!(outcome.code, 1, "{}", outcome.stderr);
    let error = outcome.error_line();
    for named in [
        COMMIT,
        &pipeline.source_repository(),
        &COMMIT[..7],
        &COMMIT[..8],
    ] {
        assert!(error.contains(named), "names {named}: {error}");
    }
    assert_nothing_promoted(&pipeline, RELEASE).await;
    pipeline.assert_kept(&[&message]).await;
}

#[tokio::test]
async fn a_release_on_a_branch_is_resolved_through_its_tag_in_the_checkout() {
    let pipeline = Pipeline::start().await;
    let checkout = pipeline.world.dir().join("checkout");
    std::fs::create_dir(&checkout).expect("create the checkout");
    git(&checkout, &["init", "--quiet", "--initial-branch=master"]);
    git(
        &checkout,
        &["commit", "--quiet", "--allow-empty", "-m", "release me"],
    );
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

    let outcome = run_step(
        &pipeline,
        &[("CODEBUILD_SRC_DIR", checkout.to_str().expect("UTF-8 path"))],
    )
    .await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert_shipped(&pipeline, &release, &tagged, &image).await;
    pipeline.assert_queue_empty().await;
}

/// A release tag in the checkout that points at a blob names no commit: said so, and the message kept.
#[tokio::test]
async fn a_release_tag_on_a_blob_is_said_to_name_no_commit() {
    let pipeline = Pipeline::start().await;
    let checkout = pipeline.world.dir().join("checkout");
    std::fs::create_dir(&checkout).expect("create the checkout");
    git(&checkout, &["init", "--quiet", "--initial-branch=master"]);
    git(
        &checkout,
        &["commit", "--quiet", "--allow-empty", "-m", "base"],
    );
    std::fs::write(checkout.join("notes.txt"), "not a commit").expect("write a file");
    let blob = git(&checkout, &["hash-object", "-w", "notes.txt"]);
    git(&checkout, &["tag", RELEASE, &blob]);
    let message = pipeline.queue_release(RELEASE, "master").await;

    let outcome = run_step(
        &pipeline,
        &[("CODEBUILD_SRC_DIR", checkout.to_str().expect("UTF-8 path"))],
    )
    .await;

    assert_eq!(outcome.code, 1, "{}", outcome.stderr);
    assert!(
        outcome.error_line().contains("names no commit"),
        "{}",
        outcome.error_line()
    );
    pipeline.assert_kept(&[&message]).await;
}

#[tokio::test]
async fn a_release_on_a_branch_without_a_checkout_is_named_and_kept() {
    let pipeline = Pipeline::start().await;
    pipeline.stage(COMMIT).await;
    let message = ReleaseEvent::published(RELEASE, "master").message(Envelope::Raw);
    pipeline.queue.send(&message).await;

    let outcome = run_step(&pipeline, &[]).await;

    assert_eq!(outcome.code, 1, "{}", outcome.stderr);
    let error = outcome.error_line();
    assert!(
        error.contains(RELEASE) && error.contains("master") && error.contains("CODEBUILD_SRC_DIR"),
        "names the release, its branch and the setting: {error}"
    );
    assert_nothing_promoted(&pipeline, RELEASE).await;
    pipeline.assert_kept(&[&message]).await;
}

#[tokio::test]
async fn events_that_are_not_releases_to_ship_are_skipped_and_deleted() {
    let pipeline = Pipeline::start().await;
    let release = |tag: &str| ReleaseEvent::published(tag, COMMIT);
    let push = json!({
        "ref": "refs/heads/master",
        "after": COMMIT,
        "repository": { "full_name": GITHUB_REPOSITORY },
    });
    let skipped = [
        ("ping", ping().to_string(), "ping"),
        (
            "ping through API Gateway",
            Envelope::ApiGatewayV1.wrap("ping", &ping().to_string()),
            "ping",
        ),
        (
            "push through API Gateway",
            Envelope::ApiGatewayV1.wrap("push", &push.to_string()),
            "push",
        ),
        (
            "push with a release-like body",
            Envelope::ApiGatewayV2.wrap("push", &release("v9.0.0").payload().to_string()),
            "push",
        ),
        (
            "draft",
            release("v9.0.1").draft().message(Envelope::Raw),
            "draft",
        ),
        (
            "prerelease",
            release("v9.0.2").prerelease().message(Envelope::Sns),
            "prerelease",
        ),
        (
            "action created",
            release("v9.0.3").action("created").message(Envelope::Raw),
            "created",
        ),
    ];
    pipeline.stage(COMMIT).await;
    for (what, message, reason) in &skipped {
        pipeline.queue.send(message).await;

        let outcome = run_step(&pipeline, &[]).await;

        assert_eq!(outcome.code, 4, "{what}: {}", outcome.stderr);
        assert!(
            outcome.error_line().contains("1 message(s) skipped"),
            "{what}: {}",
            outcome.error_line()
        );
        assert!(
            outcome.stderr.contains("skipped message") && outcome.stderr.contains(reason),
            "{what}: the log says why: {}",
            outcome.stderr
        );
        pipeline.assert_queue_empty().await;
        assert_nothing_promoted(&pipeline, "v9.0.0").await;
    }
    for tag in ["v9.0.1", "v9.0.2", "v9.0.3"] {
        assert_eq!(
            pipeline
                .world
                .production
                .manifest_digest(REPOSITORY, tag)
                .await,
            None
        );
    }
}

#[tokio::test]
async fn prereleases_are_promoted_when_asked_for() {
    let pipeline = Pipeline::start().await;
    let image = pipeline.stage(COMMIT).await;
    let release = ReleaseEvent::published("v2.0.0-rc.1", COMMIT).prerelease();
    pipeline.queue.send(&release.message(Envelope::Raw)).await;

    let outcome = run_step(&pipeline, &[("PROMOTE_PRERELEASES", "true")]).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert_shipped(&pipeline, &release, COMMIT, &image).await;
    pipeline.assert_queue_empty().await;
}

#[tokio::test]
async fn malformed_messages_never_block_a_release_and_never_vanish() {
    let pipeline = Pipeline::start().await;
    let image = pipeline.stage(COMMIT).await;
    let not_json = "release v1.2.0 please";
    let not_a_release = r#"{"hello":"world"}"#;
    let not_json_id = pipeline.queue.send(not_json).await;
    let release = ReleaseEvent::published(RELEASE, COMMIT);
    pipeline.queue.send(&release.message(Envelope::Raw)).await;
    let not_a_release_id = pipeline.queue.send(not_a_release).await;

    let outcome = run_step(&pipeline, &[]).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert_shipped(&pipeline, &release, COMMIT, &image).await;
    for id in [&not_json_id, &not_a_release_id] {
        assert!(
            outcome.stderr.contains(id.as_str()),
            "stderr names malformed message {id}: {}",
            outcome.stderr
        );
    }
    pipeline.assert_kept(&[not_json, not_a_release]).await;

    // Received MAX_RECEIVE_COUNT times by now, the redrive policy moves them to the dead-letter
    // queue on the next receive: the binary never deleted them.
    assert_eq!(
        MAX_RECEIVE_COUNT, 2,
        "the run and the check above are the receives"
    );
    let again = run_step(&pipeline, &[]).await;

    assert_eq!(again.code, 4, "{}", again.stderr);
    let mut dead: Vec<String> = pipeline
        .queue
        .peek_dead_letters()
        .await
        .into_iter()
        .map(|message| message.body)
        .collect();
    dead.sort();
    let mut expected = [not_json, not_a_release];
    expected.sort();
    assert_eq!(
        dead, expected,
        "the dead-letter queue holds the malformed messages"
    );
}

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

    let outcome = run_step(&pipeline, &[]).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    pipeline
        .assert_in_production(REPOSITORY, "v1.0.0", &older_image)
        .await;
    pipeline
        .assert_in_production(REPOSITORY, "v1.1.0", &newer_image)
        .await;
    assert_recorded(&pipeline, &older, OTHER_COMMIT, &older_image, None).await;
    assert_recorded(&pipeline, &newer, COMMIT, &newer_image, None).await;
    assert_eq!(
        pipeline.deploy_file("imagedefinitions.json"),
        Some(imagedefinitions(&pipeline.production_image("v1.1.0")))
    );
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

    let outcome = run_step(&pipeline, &[]).await;

    assert_eq!(outcome.code, 1, "{}", outcome.stderr);
    let error = outcome.error_line();
    assert!(
        error.contains("v1.0.0") && error.contains(OTHER_COMMIT),
        "names the failed release and its commit: {error}"
    );
    pipeline
        .assert_in_production(REPOSITORY, "v1.1.0", &image)
        .await;
    assert_recorded(&pipeline, &good, COMMIT, &image, None).await;
    assert_eq!(pipeline.table.items().await.len(), 1);
    assert_eq!(
        pipeline.deploy_file("imagedefinitions.json"),
        Some(imagedefinitions(&pipeline.production_image("v1.1.0")))
    );
    pipeline.assert_kept(&[&unbuilt_message]).await;
}

#[tokio::test]
async fn an_empty_queue_deploys_nothing_and_says_so() {
    let pipeline = Pipeline::start().await;

    let outcome = run_step(&pipeline, &[]).await;

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
    assert_nothing_promoted(&pipeline, RELEASE).await;
}

#[tokio::test]
async fn an_empty_queue_can_redeploy_the_latest_recorded_release() {
    let pipeline = Pipeline::start().await;
    pipeline.stage(OTHER_COMMIT).await;
    let latest_image = pipeline.stage(COMMIT).await;
    for (tag, commit) in [("v1.0.0", OTHER_COMMIT), ("v1.1.0", COMMIT)] {
        let message = ReleaseEvent::published(tag, commit).message(Envelope::Raw);
        pipeline.queue.send(&message).await;
        let outcome = run_step(&pipeline, &[]).await;
        assert_eq!(outcome.code, 0, "{}", outcome.stderr);
        // promoted_at has whole seconds: the two promotions must not share one.
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    std::fs::remove_file(pipeline.imagedefinitions_path()).expect("remove imagedefinitions.json");
    let writes_before = blob_uploads_and_manifest_puts(&pipeline.world.production);

    let outcome = run_step(&pipeline, &[("PROMOTE_REDEPLOY_LATEST_WHEN_EMPTY", "true")]).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert_eq!(
        pipeline.deploy_file("imagedefinitions.json"),
        Some(imagedefinitions(&pipeline.production_image("v1.1.0")))
    );
    assert!(
        outcome.stdout.contains(&latest_image.digest()),
        "stdout names the digest: {}",
        outcome.stdout
    );
    assert_eq!(
        blob_uploads_and_manifest_puts(&pipeline.world.production),
        writes_before,
        "a redeploy copies nothing"
    );
    assert_eq!(pipeline.table.items().await.len(), 2);
}

#[tokio::test]
async fn running_the_same_release_again_is_harmless() {
    let pipeline = Pipeline::start().await;
    let image = pipeline.stage(COMMIT).await;
    let release = ReleaseEvent::published(RELEASE, COMMIT);
    let message = release.message(Envelope::Raw);
    pipeline.queue.send(&message).await;
    let first = run_step(&pipeline, &[]).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let recorded = pipeline.table.item(RELEASE).await.expect("recorded");
    let writes_before = blob_uploads_and_manifest_puts(&pipeline.world.production);
    // promoted_at has whole seconds: a rewrite would show.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    pipeline.queue.send(&message).await;

    let outcome = run_step(&pipeline, &[]).await;

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
        blob_uploads_and_manifest_puts(&pipeline.world.production),
        writes_before,
        "nothing copied again"
    );
    assert_eq!(
        pipeline.deploy_file("imagedefinitions.json"),
        Some(imagedefinitions(&pipeline.production_image(RELEASE)))
    );
    pipeline.assert_queue_empty().await;
}

#[tokio::test]
async fn a_release_tag_on_another_digest_is_refused_and_left_alone() {
    let pipeline = Pipeline::start().await;
    let wanted = pipeline.stage(COMMIT).await;
    let existing = Image::random(&[50_000], crate::support::Flavour::Oci);
    pipeline
        .world
        .production
        .push_image(REPOSITORY, RELEASE, &existing)
        .await;
    let writes_before = blob_uploads_and_manifest_puts(&pipeline.world.production);
    let message = pipeline.queue_release(RELEASE, COMMIT).await;

    let outcome = run_step(&pipeline, &[]).await;

    assert_eq!(outcome.code, 3, "{}", outcome.stderr);
    let error = outcome.error_line();
    for digest in [wanted.digest(), existing.digest()] {
        assert!(error.contains(&digest), "names {digest}: {error}");
    }
    assert_eq!(
        pipeline
            .world
            .production
            .manifest_digest(REPOSITORY, RELEASE)
            .await,
        Some(existing.digest())
    );
    assert_eq!(
        blob_uploads_and_manifest_puts(&pipeline.world.production),
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

    let outcome = run_step(&pipeline, &[]).await;

    assert_eq!(outcome.code, 3, "{}", outcome.stderr);
    let error = outcome.error_line();
    for named in [RELEASE, COMMIT, OTHER_COMMIT, TABLE] {
        assert!(error.contains(named), "names {named}: {error}");
    }
    assert_eq!(
        pipeline
            .world
            .production
            .manifest_digest(REPOSITORY, RELEASE)
            .await,
        None
    );
    assert_eq!(
        blob_uploads_and_manifest_puts(&pipeline.world.production),
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

#[tokio::test]
async fn a_missing_setting_is_named_and_nothing_is_touched() {
    let pipeline = Pipeline::start().await;
    pipeline.stage(COMMIT).await;
    pipeline.queue_release(RELEASE, COMMIT).await;
    let before = pipeline.registry_requests();

    let outcome = run(pipeline.run_command().env_remove("PROMOTE_TABLE")).await;

    assert_eq!(outcome.code, 2, "{}", outcome.stderr);
    assert!(
        outcome.error_line().contains("PROMOTE_TABLE"),
        "{}",
        outcome.error_line()
    );
    pipeline.assert_refused_before_starting(&before).await;
}

/// An empty list would match nothing (an empty PROMOTE_RELEASE_ACTIONS skipped, and so deleted, every
/// release); an empty table or secret is a mistake, not a choice; a missing region is named as such.
/// Each is refused before anything is received.
#[tokio::test]
async fn an_empty_setting_or_no_region_is_named_and_nothing_is_touched() {
    let pipeline = Pipeline::start().await;
    pipeline.stage(COMMIT).await;
    pipeline.queue_release(RELEASE, COMMIT).await;
    let before = pipeline.registry_requests();
    for (variable, value) in [
        ("PROMOTE_RELEASE_ACTIONS", ""),
        ("PROMOTE_RELEASE_ACTIONS", " , "),
        ("PROMOTE_CONTAINER_NAME", " , "),
        ("PROMOTE_TABLE", ""),
        ("PROMOTE_QUEUE_URL", " "),
        ("PROMOTE_WEBHOOK_SECRET", ""),
    ] {
        let outcome = run(pipeline.run_command().env(variable, value)).await;

        assert_eq!(outcome.code, 2, "{variable}={value:?}: {}", outcome.stderr);
        assert!(
            outcome.error_line().contains(variable),
            "{variable}={value:?}: {}",
            outcome.error_line()
        );
    }
    let outcome = run(pipeline
        .run_command()
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION"))
    .await;

    assert_eq!(outcome.code, 2, "{}", outcome.stderr);
    assert!(
        outcome.error_line().contains("AWS_REGION") && !outcome.stderr.contains("IMDS"),
        "{}",
        outcome.stderr
    );
    // Looked at once, after every run: the look is itself a receive.
    pipeline.assert_refused_before_starting(&before).await;
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
    assert_eq!(run_step(&pipeline, &[]).await.code, 0);
    pipeline.queue.send(&earlier.message(Envelope::Raw)).await;

    let outcome = run_step(&pipeline, &[]).await;

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
        Some(imagedefinitions(&pipeline.production_image("v2.0.0"))),
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
    assert_eq!(run_step(&pipeline, &[]).await.code, 0);
    pipeline.queue.send(&earlier.message(Envelope::Raw)).await;

    let outcome = run_step(&pipeline, &[]).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let recorded = pipeline.table.item("v2.0.9").await.expect("recorded");
    assert_eq!(recorded["release_id"], "10", "{recorded}");
    assert_eq!(
        pipeline.deploy_file("imagedefinitions.json"),
        Some(imagedefinitions(&pipeline.production_image("v2.1.0"))),
        "production stays on the release created later"
    );
}

/// A release whose `published_at` is not a date cannot be ordered against the others: it is kept
/// for the dead-letter queue, and a valid release beside it ships.
#[tokio::test]
async fn a_release_with_a_bad_publication_time_is_kept_and_does_not_block_others() {
    let pipeline = Pipeline::start().await;
    let image = pipeline.stage(COMMIT).await;
    let garbage = ReleaseEvent::published("v9.9.9", COMMIT)
        .published_at("garbage")
        .message(Envelope::Raw);
    pipeline.queue.send(&garbage).await;
    let good = ReleaseEvent::published(RELEASE, COMMIT);
    pipeline.queue.send(&good.message(Envelope::Raw)).await;

    let outcome = run_step(&pipeline, &[]).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert!(
        outcome.stderr.contains("published_at"),
        "{}",
        outcome.stderr
    );
    assert_shipped(&pipeline, &good, COMMIT, &image).await;
    assert_eq!(pipeline.table.item("v9.9.9").await, None);
    pipeline.assert_kept(&[&garbage]).await;
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

    let outcome = run_step(&pipeline, &[]).await;

    assert_eq!(outcome.code, 1, "{}", outcome.stderr);
    let error = outcome.error_line();
    for named in [RELEASE, TABLE, "commit is missing"] {
        assert!(error.contains(named), "names {named}: {error}");
    }
    assert_eq!(
        blob_uploads_and_manifest_puts(&pipeline.world.production),
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

#[tokio::test]
async fn a_bad_setting_from_the_environment_names_the_variable() {
    let pipeline = Pipeline::start().await;
    pipeline.queue_release(RELEASE, COMMIT).await;
    let before = pipeline.registry_requests();
    let tagged = format!("{}:latest", pipeline.source_repository());

    let outcome = run(pipeline
        .run_command()
        .env("PROMOTE_SOURCE_REPOSITORY", &tagged))
    .await;

    assert_eq!(outcome.code, 2, "{}", outcome.stderr);
    assert!(
        outcome.error_line().contains("PROMOTE_SOURCE_REPOSITORY"),
        "a buildspec sets the variable, not the flag: {}",
        outcome.error_line()
    );
    pipeline.assert_refused_before_starting(&before).await;
}

/// A dry run of RELEASE names the copy, the record and the deploy file it would make.
fn assert_says_what_it_would_do(pipeline: &Pipeline, outcome: &Outcome, image: &Image) {
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let target = pipeline.production_image(RELEASE);
    for (what, said) in [
        ("the copy", "would copy".to_string()),
        (
            "the staging image",
            format!("{}:{COMMIT}", pipeline.source_repository()),
        ),
        ("the target", target.clone()),
        ("the digest", image.digest()),
        ("the record", format!("would record release {RELEASE}")),
        ("the table", TABLE.to_string()),
        (
            "the deploy file",
            format!("would write {}", pipeline.imagedefinitions_path().display()),
        ),
        ("its contents", format!("\"imageUri\": \"{target}\"")),
    ] {
        assert!(
            outcome.stdout.contains(&said),
            "stdout names {what} ({said}): {}",
            outcome.stdout
        );
    }
}

#[tokio::test]
async fn a_dry_run_says_what_it_would_do_and_changes_nothing() {
    let pipeline = Pipeline::start().await;
    let image = pipeline.stage(COMMIT).await;
    pipeline.queue_release(RELEASE, COMMIT).await;
    let handed_back = Counts {
        visible: 1,
        not_visible: 0,
    };

    let flag = run(pipeline.run_command().arg("--dry-run")).await;

    assert_says_what_it_would_do(&pipeline, &flag, &image);
    assert_eq!(
        pipeline.queue.counts().await,
        handed_back,
        "the message is handed back at once"
    );

    // As a buildspec sets it; the message is received a second time.
    let variable = run_step(&pipeline, &[("PROMOTE_DRY_RUN", "true")]).await;

    assert_says_what_it_would_do(&pipeline, &variable, &image);
    assert_eq!(pipeline.queue.counts().await, handed_back);

    let promote =
        run(pipeline
            .promote_command()
            .args(["--tag", RELEASE, "--commit", COMMIT, "--dry-run"]))
        .await;

    assert_says_what_it_would_do(&pipeline, &promote, &image);
    assert_nothing_promoted(&pipeline, RELEASE).await;
    assert_eq!(pipeline.queue.counts().await, handed_back);
}

#[tokio::test]
async fn a_commit_without_a_staging_image_is_named_and_kept() {
    let pipeline = Pipeline::start().await;
    pipeline.stage(OTHER_COMMIT).await;
    let message = pipeline.queue_release(RELEASE, COMMIT).await;

    let outcome = run_step(&pipeline, &[]).await;

    assert_eq!(outcome.code, 1, "{}", outcome.stderr);
    let error = outcome.error_line();
    for named in [COMMIT, &pipeline.source_repository()] {
        assert!(error.contains(named), "names {named}: {error}");
    }
    assert_nothing_promoted(&pipeline, RELEASE).await;
    pipeline.assert_kept(&[&message]).await;
}

#[tokio::test]
async fn promote_ships_one_release_without_a_queue() {
    let pipeline = Pipeline::start().await;
    let image = pipeline.stage(COMMIT).await;
    let unrelated = ReleaseEvent::published("v9.9.9", COMMIT).message(Envelope::Raw);
    pipeline.queue.send(&unrelated).await;

    let outcome = run(pipeline
        .promote_command()
        .args(["--tag", "v2.0.0", "--commit", COMMIT])
        .env("CODEBUILD_BUILD_ARN", BUILD_ARN))
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
    assert_eq!(item["build_arn"], BUILD_ARN);
    assert_eq!(item["prerelease"], false);
    assert_recent(&item["promoted_at"]);
    assert_eq!(
        pipeline.deploy_file("imagedefinitions.json"),
        Some(imagedefinitions(&pipeline.production_image("v2.0.0")))
    );
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

/// Every line on stderr is a JSON object with a level and a message.
fn assert_json_lines(stderr: &str) {
    assert!(!stderr.trim().is_empty(), "something was logged");
    for line in stderr.lines() {
        let parsed: Value =
            serde_json::from_str(line).unwrap_or_else(|error| panic!("not JSON ({error}): {line}"));
        assert!(
            parsed["level"].is_string() && parsed.get("message").is_some(),
            "a log record: {line}"
        );
    }
}

/// No output of the binary carries a password moto hands out, plain or as the token it came in.
fn assert_no_secrets(outcome: &Outcome) {
    for account in [STAGING_ACCOUNT, PRODUCTION_ACCOUNT] {
        let password = format!("{account}-auth-token");
        let token = STANDARD.encode(format!("AWS:{password}"));
        for secret in [&password, &token] {
            assert!(
                !outcome.stdout.contains(secret.as_str())
                    && !outcome.stderr.contains(secret.as_str()),
                "{secret} appears in the output"
            );
        }
    }
}

#[tokio::test]
async fn json_logs_are_json_and_no_output_carries_a_registry_password() {
    let pipeline = Pipeline::start().await;
    pipeline.stage(COMMIT).await;
    pipeline.queue_release(RELEASE, COMMIT).await;

    let outcome = run(pipeline.run_command().args(["--log-format", "json"])).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert_json_lines(&outcome.stderr);
    assert_no_secrets(&outcome);

    // A registry that rejects moto's token: the failure is explained without the token.
    let (staging, production) = tokio::join!(
        Registry::start(STAGING_ACCOUNT),
        Registry::start_with_password(PRODUCTION_ACCOUNT, "not-what-moto-hands-out")
    );
    let rejecting = Pipeline::around(World::with_registries(staging, production).await).await;
    rejecting.stage(COMMIT).await;
    let message = rejecting.queue_release(RELEASE, COMMIT).await;

    let failed = run(rejecting
        .run_command()
        .args(["--log-format", "json"])
        // As verbose as an engineer chasing a failure would make it.
        .env("RUST_LOG", "debug"))
    .await;

    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert_no_secrets(&failed);
    assert!(
        failed
            .stderr
            .contains(&rejecting.world.production.ecr_host()),
        "the failure names the production registry: {}",
        failed.stderr
    );
    rejecting.assert_kept(&[&message]).await;
}

#[tokio::test]
async fn json_logs_stay_json_when_the_run_fails() {
    // Nothing staged: the promotion fails.
    let pipeline = Pipeline::start().await;
    pipeline.queue_release(RELEASE, COMMIT).await;

    let outcome = run(pipeline.run_command().args(["--log-format", "json"])).await;

    assert_eq!(outcome.code, 1, "{}", outcome.stderr);
    assert_json_lines(&outcome.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_aws_call_never_answered_is_given_up_and_retried() {
    let pipeline = Pipeline::start().await;
    let image = pipeline.stage(COMMIT).await;
    pipeline.queue_release(RELEASE, COMMIT).await;
    let front = FaultyFront::start(&pipeline.world.moto.url()).await;
    // Every AWS call is a POST to `/`: the run's first one (SQS, ECR or DynamoDB) is never answered.
    front.hang("POST", "/", 1);

    let outcome = run_step(
        &pipeline,
        &[
            ("AWS_ENDPOINT_URL", &front.url()),
            ("PROMOTE_STALL_SECONDS", "1"),
        ],
    )
    .await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert_eq!(front.faults_served(), 1, "one call was left unanswered");
    pipeline
        .assert_in_production(REPOSITORY, RELEASE, &image)
        .await;
    pipeline.assert_queue_empty().await;
}
