//! Faults injected: registries answer 503 and 429, drop a connection half way through a blob, or
//! stall — stop answering, stop sending, stop taking data — as ECR and the network between
//! accounts sometimes do. A passing fault is retried and the copy keeps its digest; a lasting one
//! fails with a line naming the registry, and a rerun once it clears succeeds. A transfer that is
//! slow but keeps moving is never cut off, however long it takes.

use crate::support::{
    COMMIT, FaultyFront, Flavour, Image, Outcome, Pipeline, RELEASE, REPOSITORY, Registry, World,
    run,
};

/// A world whose `registry` (staging or production) is reached through a faulty front.
async fn world_with_faulty(production: bool) -> (World, FaultyFront) {
    let mut world = World::start().await;
    let registry = if production {
        &world.production
    } else {
        &world.staging
    };
    let front = FaultyFront::start(&registry.url()).await;
    let host = registry.ecr_host();
    world.route(&host, &front.url());
    (world, front)
}

/// Stages an image of a few layers under COMMIT.
async fn stage(world: &World) -> Image {
    let image = Image::random(&[2 << 20, 300_000, 1_000], Flavour::Oci);
    world.staging.push_image(REPOSITORY, COMMIT, &image).await;
    image
}

/// `ecr-promote copy` of staging `api:COMMIT` to production `api:RELEASE`.
async fn promote(world: &World) -> Outcome {
    promote_with(world, &[]).await
}

/// [`promote`] with extra environment variables.
async fn promote_with(world: &World, env: &[(&str, &str)]) -> Outcome {
    run(world
        .command()
        .envs(env.iter().copied())
        .arg("copy")
        .arg(world.staging.reference(&format!("{REPOSITORY}:{COMMIT}")))
        .arg(
            world
                .production
                .reference(&format!("{REPOSITORY}:{RELEASE}")),
        ))
    .await
}

/// Production holds `image` under RELEASE, manifest bytes and every blob.
async fn assert_promoted(production: &Registry, image: &Image) {
    let (_, manifest) = production
        .manifest(REPOSITORY, RELEASE)
        .await
        .unwrap_or_else(|| panic!("production has no {REPOSITORY}:{RELEASE}"));
    assert_eq!(
        manifest, image.manifest,
        "the manifest bytes, so the digest"
    );
    for (digest, bytes) in image.blob_digests().iter().zip(image.blobs()) {
        assert_eq!(
            production.blob(REPOSITORY, digest).await,
            bytes,
            "blob {digest}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn passing_503s_and_429s_from_production_are_retried() {
    let (world, front) = world_with_faulty(true).await;
    let image = stage(&world).await;
    front.answer("POST", "/blobs/uploads/", 503, 2);
    front.answer("PUT", "/blobs/uploads/", 503, 1);
    front.answer("HEAD", "/blobs/", 429, 2);
    front.answer("PUT", "/manifests/", 429, 1);

    let outcome = promote(&world).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert_eq!(front.faults_served(), 6, "every fault was met");
    assert_promoted(&world.production, &image).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn passing_503s_from_staging_are_retried() {
    let (world, front) = world_with_faulty(false).await;
    let image = stage(&world).await;
    front.answer("GET", "/manifests/", 503, 2);
    front.answer("GET", "/blobs/", 503, 2);

    let outcome = promote(&world).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert_eq!(front.faults_served(), 4, "every fault was met");
    assert_promoted(&world.production, &image).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blob_download_cut_half_way_is_fetched_again() {
    let (world, front) = world_with_faulty(false).await;
    let image = stage(&world).await;
    let largest = image.blob_digests()[1].clone();
    front.cut_body_once("GET", &format!("/blobs/{largest}"));

    let outcome = promote(&world).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert_eq!(front.faults_served(), 1, "the download was cut");
    assert_promoted(&world.production, &image).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lasting_503_fails_naming_the_registry_and_a_rerun_after_it_clears_succeeds() {
    let (world, front) = world_with_faulty(true).await;
    let image = stage(&world).await;
    front.answer("POST", "/blobs/uploads/", 503, usize::MAX);

    assert_fails_then_rerun_succeeds(&world, &front, &[], "503", &image).await;
    // Each blob copy is tried 5 times, its upload start once per try: not 5 × 5 requests per blob.
    let blobs = image.blob_digests().len();
    let served = front.faults_served();
    assert!(
        (5..=5 * blobs).contains(&served),
        "{served} refused upload starts for {blobs} blobs"
    );
}

/// With a lasting fault in production the copy fails with a line naming the registry and `says`,
/// and leaves no tag; once the fault clears, a rerun promotes `image`.
async fn assert_fails_then_rerun_succeeds(
    world: &World,
    front: &FaultyFront,
    env: &[(&str, &str)],
    says: &str,
    image: &Image,
) {
    let failed = promote_with(world, env).await;

    assert_eq!(failed.code, 1, "{}", failed.stderr);
    let error = failed.error_line();
    assert!(
        error.contains(&world.production.ecr_host()) && error.contains(says),
        "names the registry and `{says}`: {error}"
    );
    assert_eq!(
        world.production.manifest_digest(REPOSITORY, RELEASE).await,
        None,
        "no tag from a failed copy"
    );

    front.clear();
    let rerun = promote_with(world, env).await;

    assert_eq!(rerun.code, 0, "{}", rerun.stderr);
    assert_promoted(&world.production, image).await;
}

/// The copy succeeded after meeting `faults` faults, and its retries said `why`.
fn assert_recovered(outcome: &Outcome, front: &FaultyFront, faults: usize, why: &str) {
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert_eq!(front.faults_served(), faults, "every fault was met");
    assert!(
        outcome.stderr.contains(why),
        "the retries say `{why}`: {}",
        outcome.stderr
    );
}

/// Stall limit for the stall tests: short, so that a test waits seconds rather than minutes.
const STALL: (&str, &str) = ("PROMOTE_STALL_SECONDS", "1");

#[tokio::test(flavor = "multi_thread")]
async fn requests_production_never_answers_are_given_up_and_retried() {
    let (world, front) = world_with_faulty(true).await;
    let image = stage(&world).await;
    front.hang("HEAD", "/blobs/", 1);
    front.hang("PUT", "/blobs/uploads/", 1);

    let outcome = promote_with(&world, &[STALL]).await;

    assert_recovered(&outcome, &front, 2, "PROMOTE_STALL_SECONDS");
    assert_promoted(&world.production, &image).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blob_download_that_stops_half_way_is_given_up_and_fetched_again() {
    let (world, front) = world_with_faulty(false).await;
    let image = stage(&world).await;
    let largest = image.blob_digests()[1].clone();
    front.stall_body_once("GET", &format!("/blobs/{largest}"));

    let outcome = promote_with(&world, &[STALL]).await;

    assert_recovered(&outcome, &front, 1, "(reading the source)");
    assert_promoted(&world.production, &image).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_slower_than_the_stall_limit_but_moving_is_not_cut_off() {
    let (world, front) = world_with_faulty(true).await;
    // 16 MiB taken at 4 MiB/s: four seconds of upload against a two-second stall limit. Whatever
    // the socket buffers hold when the last byte is sent drains within the limit.
    let image = Image::random(&[16 << 20, 1_000], Flavour::Oci);
    world.staging.push_image(REPOSITORY, COMMIT, &image).await;
    let largest = image.blob_digests()[1].clone();
    // The upload's PUT names its digest in the query (`digest=sha256%3A<hex>`), and only it does.
    front.throttle_once("PUT", largest.trim_start_matches("sha256:"), 4 << 20);

    let started = std::time::Instant::now();
    let outcome = promote_with(&world, &[("PROMOTE_STALL_SECONDS", "2")]).await;
    let took = started.elapsed();

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert_eq!(
        front.faults_served(),
        1,
        "the upload of {largest} was slowed"
    );
    assert!(
        took > std::time::Duration::from_secs(3),
        "the upload really outlasted the stall limit (took {took:?})"
    );
    assert!(
        !outcome.stderr.contains("retrying") && !outcome.stderr.contains("starting it again"),
        "the slow upload was never abandoned: {}",
        outcome.stderr
    );
    assert_promoted(&world.production, &image).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lasting_stall_fails_naming_the_registry_and_the_setting_and_a_rerun_succeeds() {
    let (world, front) = world_with_faulty(true).await;
    let image = stage(&world).await;
    front.hang("HEAD", "/blobs/", usize::MAX);

    assert_fails_then_rerun_succeeds(&world, &front, &[STALL], "PROMOTE_STALL_SECONDS", &image)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endless_manifest_is_refused_past_4_mib_and_nothing_is_written() {
    let (world, front) = world_with_faulty(false).await;
    stage(&world).await;
    // Without end: a reader that takes the whole body before looking at its size never returns.
    front.pad_once("GET", &format!("/manifests/{COMMIT}"), usize::MAX);

    let outcome = promote(&world).await;

    assert_eq!(outcome.code, 1, "{}", outcome.stderr);
    assert_eq!(front.faults_served(), 1, "the manifest came padded");
    let error = outcome.error_line();
    assert!(
        error.contains("over the 4 MiB limit") && error.contains(&world.staging.ecr_host()),
        "names the limit and the registry: {error}"
    );
    assert_eq!(
        world.production.manifest_digest(REPOSITORY, RELEASE).await,
        None,
        "nothing tagged"
    );
}

/// A manifest fetched by tag whose bytes do not hash to the digest the registry announced is not the
/// image the tag names: the copy is refused, both digests named, and production is left untouched.
#[tokio::test(flavor = "multi_thread")]
async fn a_manifest_unlike_its_announced_digest_is_refused_and_nothing_is_written() {
    let (world, front) = world_with_faulty(false).await;
    let image = stage(&world).await;
    front.pad_once("GET", &format!("/manifests/{COMMIT}"), 1);

    let outcome = promote(&world).await;

    assert_eq!(outcome.code, 1, "{}", outcome.stderr);
    let error = outcome.error_line();
    assert!(
        error.contains("Docker-Content-Digest") && error.contains(&image.digest()),
        "{error}"
    );
    assert_eq!(world.production.writes(), Vec::new(), "nothing written");
}

/// A registry that quotes the request's Authorization header in an error: the error line, in text
/// and in JSON, names the failure without the ECR password or its Basic form.
#[tokio::test(flavor = "multi_thread")]
async fn a_registry_echoing_the_credentials_never_gets_them_printed() {
    use base64::Engine;
    let (world, front) = world_with_faulty(true).await;
    stage(&world).await;
    let password = format!("{}-auth-token", crate::support::PRODUCTION_ACCOUNT);
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("AWS:{password}"));
    for format in ["text", "json"] {
        front.echo_authorization_once("PUT", &format!("/manifests/{RELEASE}"));

        let outcome = promote_with(&world, &[("PROMOTE_LOG_FORMAT", format)]).await;

        assert_eq!(outcome.code, 1, "{}", outcome.stderr);
        assert!(outcome.stderr.contains("400"), "{}", outcome.stderr);
        for secret in [&password, &basic] {
            assert!(
                !outcome.stderr.contains(secret.as_str())
                    && !outcome.stdout.contains(secret.as_str()),
                "{format}: the registry's echo leaked {secret}: {}",
                outcome.stderr
            );
        }
        assert_eq!(front.faults_served(), if format == "text" { 1 } else { 2 });
    }
}

/// A registry that declines mounts (ECR without BLOB_MOUNTING answers with an upload session): a copy
/// within it still completes, the bytes sent as usual, digest for digest.
#[tokio::test(flavor = "multi_thread")]
async fn a_declined_mount_is_copied_instead() {
    let (world, front) = world_with_faulty(true).await;
    let image = Image::random(&[300_000, 1_000], Flavour::Oci);
    world
        .production
        .push_image("replica/api", COMMIT, &image)
        .await;
    front.decline_mounts();

    let outcome = run(world
        .command()
        .arg("copy")
        .arg(world.production.reference(&format!("replica/api:{COMMIT}")))
        .arg(
            world
                .production
                .reference(&format!("{REPOSITORY}:{RELEASE}")),
        ))
    .await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert_eq!(
        front.faults_served(),
        image.blob_digests().len(),
        "every mount was declined"
    );
    let copied = format!(
        "{} blobs copied, 0 skipped (target had them), 0 mounted",
        image.blob_digests().len()
    );
    assert!(outcome.stdout.contains(&copied), "{}", outcome.stdout);
    assert_promoted(&world.production, &image).await;
}

/// A copy that takes several seconds says how far it has got, every PROMOTE_PROGRESS_SECONDS, in text
/// and in JSON, while stderr is not a terminal.
#[tokio::test(flavor = "multi_thread")]
async fn a_long_copy_logs_its_progress_in_both_formats() {
    for format in ["text", "json"] {
        let (world, front) = world_with_faulty(true).await;
        let image = Image::random(&[2 << 20, 1_000], Flavour::Oci);
        world.staging.push_image(REPOSITORY, COMMIT, &image).await;
        // About four seconds for the large layer. The upload's PUT names its digest in the query, and only
        // it does.
        let largest = image.blob_digests()[1].clone();
        front.throttle_once("PUT", largest.trim_start_matches("sha256:"), 512 << 10);

        let outcome = promote_with(
            &world,
            &[
                ("PROMOTE_PROGRESS_SECONDS", "1"),
                ("PROMOTE_LOG_FORMAT", format),
            ],
        )
        .await;

        assert_eq!(outcome.code, 0, "{}", outcome.stderr);
        let lines: Vec<&str> = outcome
            .stderr
            .lines()
            .filter(|line| line.contains("copying:"))
            .collect();
        assert_eq!(front.faults_served(), 1, "the large upload was slowed");
        assert!(lines.len() >= 3, "{format}: {}", outcome.stderr);
        for line in &lines {
            match format {
                "json" => {
                    let event: serde_json::Value =
                        serde_json::from_str(line).expect("a JSON log line");
                    let total: usize = image.blobs().map(<[u8]>::len).sum();
                    assert_eq!(event["bytes_total"], total as u64, "{line}");
                    assert!(
                        event["percent"].as_u64().is_some_and(|p| p <= 100),
                        "{line}"
                    );
                }
                _ => assert!(
                    line.contains("MiB") && line.contains('%') && line.contains("/s"),
                    "{line}"
                ),
            }
        }
        assert_promoted(&world.production, &image).await;
    }
}

/// A short copy says nothing of its progress.
#[tokio::test(flavor = "multi_thread")]
async fn a_short_copy_logs_no_progress() {
    let (world, _front) = world_with_faulty(true).await;
    stage(&world).await;

    let outcome = promote(&world).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert!(!outcome.stderr.contains("copying:"), "{}", outcome.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_aws_call_never_answered_is_given_up_and_retried() {
    let pipeline = Pipeline::start().await;
    let image = pipeline.stage(COMMIT).await;
    pipeline.queue_release(RELEASE, COMMIT).await;
    let front = FaultyFront::start(&pipeline.world.moto.url()).await;
    // Every AWS call is a POST to `/`: the run's first one (SQS, ECR or DynamoDB) is never answered.
    front.hang("POST", "/", 1);

    let outcome = pipeline
        .run_with(&[
            ("AWS_ENDPOINT_URL", &front.url()),
            ("PROMOTE_STALL_SECONDS", "1"),
        ])
        .await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert_eq!(front.faults_served(), 1, "one call was left unanswered");
    pipeline
        .assert_in_production(REPOSITORY, RELEASE, &image)
        .await;
    pipeline.assert_queue_empty().await;
}
