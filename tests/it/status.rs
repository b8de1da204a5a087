//! `status` and `audit` against the local world: moto's ECS runs the production service, the ledger
//! and both registries hold what `promote` left there, and each test changes one thing behind the
//! binary's back (a rollback, a staging image deployed, a tag pushed over, an expired staging image).
//!
//! moto reports no running tasks with an `imageDigest` (its services start no tasks), so the
//! comparison of running digests with the recorded ones is tested in src/status.rs over recorded
//! DescribeTasks answers; here the image each task definition names is what is checked.

use std::time::{Duration, Instant};

use crate::support::{CONTAINER, Ecs, Flavour, Image, Outcome, Pipeline, REPOSITORY, run};
use serde_json::Value;

const COMMIT: &str = "3f2a9c1e5b7d4c8a9f0e1d2c3b4a5f6e7d8c9b0a";
const OTHER_COMMIT: &str = "0b9c8d7e6f5a4b3c2d1e0f9a8c4d7b5e1c9a2f3e";
const THIRD_COMMIT: &str = "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d";
const CLUSTER: &str = "production";
const SERVICE: &str = "shop-api";
const FAMILY: &str = "shop-api";

async fn promote(pipeline: &Pipeline, tag: &str, commit: &str) {
    let outcome = run(pipeline
        .promote_command()
        .args(["--tag", tag, "--commit", commit]))
    .await;
    assert_eq!(outcome.code, 0, "promote {tag}: {}", outcome.stderr);
}

/// The image URI the binary's imagedefinitions.json hands the ECS deploy stage.
fn deployed_image(pipeline: &Pipeline) -> String {
    let definitions = pipeline
        .deploy_file("imagedefinitions.json")
        .expect("imagedefinitions.json");
    definitions[0]["imageUri"]
        .as_str()
        .expect("an imageUri")
        .to_string()
}

/// The production service, running one revision whose container api runs `image`.
async fn service_running(pipeline: &Pipeline, image: &str) -> Ecs {
    let ecs = Ecs::create(&pipeline.world.moto, CLUSTER).await;
    let revision = ecs.register(FAMILY, &[(CONTAINER, image)]).await;
    ecs.create_service(SERVICE, &revision).await;
    ecs
}

fn status(pipeline: &Pipeline) -> tokio::process::Command {
    let mut command = pipeline.ledger_command("status");
    command
        .env("PROMOTE_CLUSTER", CLUSTER)
        .env("PROMOTE_SERVICE", SERVICE);
    command
}

/// The table row of the primary deployment's container api.
fn primary_row(outcome: &Outcome) -> &str {
    outcome
        .stdout
        .lines()
        .find(|line| line.contains(" PRIMARY ") && line.contains(&format!(" {CONTAINER} ")))
        .unwrap_or_else(|| panic!("no row for the primary deployment: {}", outcome.stdout))
}

fn parse_json(outcome: &Outcome) -> Value {
    serde_json::from_str(&outcome.stdout)
        .unwrap_or_else(|error| panic!("--json is not JSON ({error}): {}", outcome.stdout))
}

/// `sha256:<64 hex>` → the 12 hex characters tables show.
fn short(digest: &str) -> &str {
    &digest["sha256:".len()..][..12]
}

/// Someone pushes another image over production `api:<tag>` by hand.
async fn push_over(pipeline: &Pipeline, tag: &str) -> Image {
    let intruder = Image::random(&[40_000], Flavour::Oci);
    pipeline
        .world
        .production
        .push_image(REPOSITORY, tag, &intruder)
        .await;
    intruder
}

/// A pipeline that promoted release v1.0.0 of COMMIT (whose image is returned), and the production
/// service running what it deployed.
async fn serving_v1() -> (Pipeline, Image) {
    let pipeline = Pipeline::start().await;
    let image = pipeline.stage(COMMIT).await;
    promote(&pipeline, "v1.0.0", COMMIT).await;
    service_running(&pipeline, &deployed_image(&pipeline)).await;
    (pipeline, image)
}

#[tokio::test]
async fn status_names_the_release_a_clean_service_runs() {
    let (pipeline, image) = serving_v1().await;

    let outcome = run(&mut status(&pipeline)).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let row = primary_row(&outcome);
    for cell in [
        "shop-api:1",
        "v1.0.0",
        &COMMIT[..7],
        short(&image.digest()),
        " ok",
    ] {
        assert!(row.contains(cell), "shows {cell}: {row}");
    }
    assert!(!outcome.stdout.contains("drift:"), "{}", outcome.stdout);

    let outcome = run(status(&pipeline).arg("--json")).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let report = parse_json(&outcome);
    let container = &report["deployments"][0]["containers"][0];
    assert_eq!(container["image"], pipeline.production_image("v1.0.0"));
    assert_eq!(container["check"], "ok");
    let release = &container["release"];
    for (field, value) in [
        ("tag", "v1.0.0"),
        ("commit", COMMIT),
        ("matched_by", "tag"),
        ("recorded_digest", &image.digest()),
        ("production_digest", &image.digest()),
    ] {
        assert_eq!(release[field], value, "{field}: {release}");
    }
    assert!(release["promoted_at"].is_string(), "{release}");
    assert!(release["last_deployed_at"].is_string(), "{release}");
    assert_eq!(report["drift"], serde_json::json!([]));
}

#[tokio::test]
async fn a_pinned_digest_deploy_is_matched_to_its_release_by_digest() {
    let pipeline = Pipeline::start().await;
    let image = pipeline.stage(COMMIT).await;
    let outcome = run(pipeline
        .promote_command()
        .args(["--tag", "v1.0.0", "--commit", COMMIT])
        .env("PROMOTE_PIN_DIGEST", "true"))
    .await;
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let pinned = deployed_image(&pipeline);
    assert_eq!(
        pinned,
        format!("{}@{}", pipeline.target_repository(), image.digest())
    );
    service_running(&pipeline, &pinned).await;

    let outcome = run(status(&pipeline).arg("--json")).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let release = &parse_json(&outcome)["deployments"][0]["containers"][0]["release"];
    assert_eq!(release["tag"], "v1.0.0", "{release}");
    assert_eq!(release["matched_by"], "digest", "{release}");
    assert_eq!(release["production_digest"], image.digest(), "{release}");
}

#[tokio::test]
async fn a_rollback_to_an_earlier_revision_names_its_release_and_is_not_drift() {
    let pipeline = Pipeline::start().await;
    pipeline.stage(OTHER_COMMIT).await;
    pipeline.stage(COMMIT).await;
    promote(&pipeline, "v1.0.0", OTHER_COMMIT).await;
    let earlier = deployed_image(&pipeline);
    // Deploy times have whole seconds: v1.1.0 must be the later one.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    promote(&pipeline, "v1.1.0", COMMIT).await;
    let ecs = Ecs::create(&pipeline.world.moto, CLUSTER).await;
    let first = ecs.register(FAMILY, &[(CONTAINER, &earlier)]).await;
    ecs.register(FAMILY, &[(CONTAINER, &deployed_image(&pipeline))])
        .await;
    // Someone pointed the service back at revision 1 in the console.
    ecs.create_service(SERVICE, &first).await;

    let outcome = run(&mut status(&pipeline)).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let row = primary_row(&outcome);
    assert!(
        row.contains("shop-api:1") && row.contains("v1.0.0") && row.contains(&OTHER_COMMIT[..7]),
        "{row}"
    );
    let note = outcome
        .stdout
        .lines()
        .find(|line| line.starts_with("note: rolled back outside ecr-promote"))
        .unwrap_or_else(|| panic!("no rollback note: {}", outcome.stdout));
    for named in ["release v1.0.0", "not v1.1.0", "shop-api:1"] {
        assert!(note.contains(named), "names {named}: {note}");
    }
}

#[tokio::test]
async fn a_service_pointed_at_a_staging_image_is_drift_naming_container_and_image() {
    let pipeline = Pipeline::start().await;
    pipeline.stage(COMMIT).await;
    promote(&pipeline, "v1.0.0", COMMIT).await;
    let staging_image = format!("{}:{COMMIT}", pipeline.source_repository());
    service_running(&pipeline, &staging_image).await;

    let outcome = run(&mut status(&pipeline)).await;

    assert_eq!(outcome.code, 3, "{}", outcome.stderr);
    let error = outcome.error_line();
    for named in [
        "container api",
        &staging_image,
        "no recorded release",
        "release v1.0.0",
    ] {
        assert!(error.contains(named), "names {named}: {error}");
    }
    assert!(
        primary_row(&outcome).ends_with("DRIFT"),
        "{}",
        outcome.stdout
    );
}

#[tokio::test]
async fn a_production_tag_moved_by_hand_is_drift_naming_both_digests() {
    let (pipeline, recorded) = serving_v1().await;
    let intruder = push_over(&pipeline, "v1.0.0").await;

    let outcome = run(status(&pipeline).arg("--json")).await;

    assert_eq!(outcome.code, 3, "{}", outcome.stderr);
    let error = outcome.error_line();
    for named in [
        "container api".to_string(),
        pipeline.production_image("v1.0.0"),
        recorded.digest(),
        intruder.digest(),
    ] {
        assert!(error.contains(&named), "names {named}: {error}");
    }
    let report = parse_json(&outcome);
    let release = &report["deployments"][0]["containers"][0]["release"];
    assert_eq!(release["recorded_digest"], recorded.digest());
    assert_eq!(release["production_digest"], intruder.digest());
}

/// A FireLens log router and an X-Ray daemon from public registries, as most production task
/// definitions carry them beside the released container.
const SIDECARS: [(&str, &str); 2] = [
    (
        "log_router",
        "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable",
    ),
    ("xray-daemon", "amazon/aws-xray-daemon"),
];

/// The production service, one revision: container api runs `image`, beside the sidecars.
async fn service_with_sidecars(pipeline: &Pipeline, image: &str) {
    let ecs = Ecs::create(&pipeline.world.moto, CLUSTER).await;
    let mut containers = vec![(CONTAINER, image)];
    containers.extend(SIDECARS);
    let revision = ecs.register(FAMILY, &containers).await;
    ecs.create_service(SERVICE, &revision).await;
}

#[tokio::test]
async fn sidecars_are_listed_as_such_never_drift() {
    let pipeline = Pipeline::start().await;
    pipeline.stage(COMMIT).await;
    promote(&pipeline, "v1.0.0", COMMIT).await;
    service_with_sidecars(&pipeline, &deployed_image(&pipeline)).await;

    let outcome = run(status(&pipeline).arg("--json")).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let report = parse_json(&outcome);
    let checks: Vec<(&str, &str)> = report["deployments"][0]["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["check"].as_str().unwrap()))
        .collect();
    assert_eq!(
        checks,
        [
            (CONTAINER, "ok"),
            ("log_router", "sidecar"),
            ("xray-daemon", "sidecar")
        ]
    );
    assert_eq!(report["drift"], serde_json::json!([]));

    let table = run(&mut status(&pipeline)).await;

    assert_eq!(table.code, 0, "{}", table.stderr);
    for (name, image) in SIDECARS {
        let row = table
            .stdout
            .lines()
            .find(|line| line.contains(&format!(" {name} ")))
            .unwrap_or_else(|| panic!("no row for {name}: {}", table.stdout));
        assert!(row.ends_with("sidecar"), "{row}");
        assert!(
            table.stdout.contains(image),
            "lists {image}: {}",
            table.stdout
        );
    }
}

#[tokio::test]
async fn a_released_container_beside_sidecars_running_another_image_is_drift() {
    let pipeline = Pipeline::start().await;
    pipeline.stage(COMMIT).await;
    promote(&pipeline, "v1.0.0", COMMIT).await;
    service_with_sidecars(&pipeline, "amazon/aws-xray-daemon:latest").await;

    let outcome = run(&mut status(&pipeline)).await;

    assert_eq!(outcome.code, 3, "{}", outcome.stderr);
    let error = outcome.error_line();
    for named in ["container api", "amazon/aws-xray-daemon:latest"] {
        assert!(error.contains(named), "names {named}: {error}");
    }
    assert!(!error.contains("log_router"), "{error}");
}

#[tokio::test]
async fn a_release_promoted_in_the_second_of_another_s_deploy_is_no_rollback() {
    let pipeline = Pipeline::two_releases_promoted_in_one_second().await;
    service_running(&pipeline, &pipeline.production_image("v1.1.0")).await;

    let outcome = run(&mut status(&pipeline)).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert!(
        primary_row(&outcome).contains("v1.1.0"),
        "{}",
        outcome.stdout
    );
    assert!(
        !outcome.stdout.contains("rolled back"),
        "no rollback invented: {}",
        outcome.stdout
    );
}

#[tokio::test]
async fn status_without_cluster_or_service_names_the_variable() {
    let pipeline = Pipeline::start().await;
    for (missing, other) in [
        ("PROMOTE_CLUSTER", "PROMOTE_SERVICE"),
        ("PROMOTE_SERVICE", "PROMOTE_CLUSTER"),
    ] {
        let mut command = pipeline.ledger_command("status");
        command.env(other, "set");

        let outcome = run(&mut command).await;

        assert_eq!(outcome.code, 2, "{}", outcome.stderr);
        assert!(
            outcome.error_line().contains(missing),
            "names {missing}: {}",
            outcome.stderr
        );
    }
}

/// The audit table's row of `tag`.
fn audit_row<'a>(outcome: &'a Outcome, tag: &str) -> &'a str {
    outcome
        .stdout
        .lines()
        .find(|line| line.starts_with(&format!("{tag} ")))
        .unwrap_or_else(|| panic!("no row for {tag}: {}", outcome.stdout))
}

#[tokio::test]
async fn audit_checks_every_release_lists_pending_and_unreadable_items_and_fails_on_a_moved_tag() {
    let pipeline = Pipeline::start().await;
    for (tag, commit) in [
        ("v1.0.0", OTHER_COMMIT),
        ("v1.1.0", COMMIT),
        ("v1.2.0", THIRD_COMMIT),
    ] {
        pipeline.stage(commit).await;
        promote(&pipeline, tag, commit).await;
    }
    // A lifecycle policy expired v1.0.0's staging image.
    pipeline
        .world
        .staging
        .delete_image(REPOSITORY, OTHER_COMMIT)
        .await;
    // A promotion that claimed v1.3.0 and stopped before it copied anything.
    let claimed = Image::random(&[1_000], Flavour::Oci);
    let staged = pipeline
        .world
        .staging
        .push_image(
            REPOSITORY,
            "5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c",
            &claimed,
        )
        .await;
    pipeline
        .table
        .put(&[
            ("tag_name", "v1.3.0"),
            ("state", "pending"),
            ("commit", "5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c"),
            ("digest", &staged),
            (
                "source_image",
                &format!("{}@{staged}", pipeline.source_repository()),
            ),
            ("target_image", &pipeline.production_image("v1.3.0")),
        ])
        .await;
    // An item written by hand, with neither commit nor images.
    pipeline
        .table
        .put(&[("tag_name", "v0.9.0"), ("digest", &staged)])
        .await;

    let outcome = run(&mut pipeline.ledger_command("audit")).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let cells = |tag: &str| -> Vec<String> {
        audit_row(&outcome, tag)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    // TAG STATE COMMIT CONTAINERS DIGEST PRODUCTION STAGING PROMOTED_AT
    for tag in ["v1.1.0", "v1.2.0"] {
        assert_eq!(cells(tag)[1..2], ["done"], "{tag}");
        assert_eq!(cells(tag)[5..7], ["ok", "ok"], "{tag}");
    }
    assert_eq!(cells("v1.0.0")[5..7], ["ok", "expired"]);
    assert_eq!(cells("v1.3.0")[1], "pending");
    assert_eq!(cells("v1.3.0")[5..7], ["GONE", "ok"]);
    assert_eq!(cells("v0.9.0")[1], "unreadable");
    let warnings: Vec<&str> = outcome
        .stdout
        .lines()
        .filter(|line| line.starts_with("warning: "))
        .collect();
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    assert!(
        warnings[0].contains("release v1.3.0 is pending"),
        "{warnings:?}"
    );
    assert!(
        warnings[1].contains("v1.0.0")
            && warnings[1].contains(OTHER_COMMIT)
            && warnings[1].contains("redeployed from production"),
        "{warnings:?}"
    );
    assert!(
        warnings[2].contains("ledger item v0.9.0 is unreadable: field"),
        "{warnings:?}"
    );

    let intruder = push_over(&pipeline, "v1.1.0").await;

    let outcome = run(pipeline.ledger_command("audit").arg("--json")).await;

    assert_eq!(outcome.code, 3, "{}", outcome.stderr);
    let error = outcome.error_line();
    for named in [pipeline.production_image("v1.1.0"), intruder.digest()] {
        assert!(error.contains(&named), "names {named}: {error}");
    }
    let report = parse_json(&outcome);
    let state = |tag: &str, check: &str| {
        report["releases"]
            .as_array()
            .expect("releases")
            .iter()
            .find(|r| r["tag"] == tag)
            .unwrap_or_else(|| panic!("no {tag}: {report}"))["images"][0][check]["state"]
            .clone()
    };
    assert_eq!(state("v1.1.0", "production"), "moved");
    assert_eq!(state("v1.2.0", "production"), "holds");
    assert_eq!(state("v1.0.0", "staging"), "expired");
    assert_eq!(report["unreadable"][0]["tag"], "v0.9.0");
}

/// How long `audit` takes over 300 releases on the local world: printed, not asserted
/// (bench/audit.sh runs it).
#[tokio::test]
#[ignore = "a measurement, run on purpose by bench/audit.sh"]
async fn audit_of_300_releases() {
    const RELEASES: usize = 300;
    let pipeline = Pipeline::start().await;
    let image = Image::random(&[1_000], Flavour::Oci);
    let (staging, production) = (&pipeline.world.staging, &pipeline.world.production);
    staging.push_image(REPOSITORY, "base", &image).await;
    production.push_image(REPOSITORY, "base", &image).await;
    let digest = image.digest();
    for number in 0..RELEASES {
        let commit = format!("{number:0>40}");
        let tag = format!("v1.{number}.0");
        staging
            .push_manifest(REPOSITORY, &commit, image.media_type(), &image.manifest)
            .await;
        production
            .push_manifest(REPOSITORY, &tag, image.media_type(), &image.manifest)
            .await;
        pipeline
            .table
            .put(&[
                ("tag_name", &tag),
                ("commit", &commit),
                ("digest", &digest),
                (
                    "source_image",
                    &format!("{}@{digest}", pipeline.source_repository()),
                ),
                ("target_image", &pipeline.production_image(&tag)),
                ("promoted_at", "2026-11-27T11:00:00Z"),
            ])
            .await;
    }

    let started = Instant::now();
    let outcome = run(&mut pipeline.ledger_command("audit")).await;
    let took = started.elapsed();

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let summary = outcome
        .stdout
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    // The same ledger read alone, to tell the scan from the registry checks.
    let started = Instant::now();
    let history = run(&mut pipeline.ledger_command("history")).await;
    let scan = started.elapsed();
    assert_eq!(history.code, 0, "{}", history.stderr);
    eprintln!(
        "audit of {RELEASES} releases: {:.2}s wall ({summary}); `history` over the same ledger: {:.2}s",
        took.as_secs_f64(),
        scan.as_secs_f64()
    );
}
