//! `ecr-promote copy SOURCE TARGET` against the local world. Every test checks the registries
//! themselves, through the support client, not only what the binary printed.

use crate::support::{
    COMMIT, Flavour, Image, Index, Outcome, PRODUCTION_ACCOUNT, RELEASE, RedirectingFront,
    Registry, Request, STAGING_ACCOUNT, World, run,
};

async fn copy(world: &World, source: &str, target: &str, flags: &[&str]) -> Outcome {
    run(world
        .command()
        .arg("copy")
        .arg(source)
        .arg(target)
        .args(flags))
    .await
}

/// Copies staging `api:<COMMIT>` to production `api:<tag>`.
async fn promote(world: &World, tag: &str, flags: &[&str]) -> Outcome {
    copy_to_release(world, &format!("api:{COMMIT}"), tag, flags).await
}

/// Copies staging `<source>` (a repository with a tag or a digest) to production `api:<tag>`.
async fn copy_to_release(world: &World, source: &str, tag: &str, flags: &[&str]) -> Outcome {
    copy(
        world,
        &world.staging.reference(source),
        &world.production.reference(&format!("api:{tag}")),
        flags,
    )
    .await
}

/// The requests `registry` answered after the first `since`.
fn requests_since(registry: &Registry, since: usize) -> Vec<Request> {
    registry.requests().split_off(since)
}

fn blob_uploads(requests: &[Request]) -> Vec<&Request> {
    requests
        .iter()
        .filter(|request| request.is_blob_upload())
        .collect()
}

/// `tag` in `repo` holds exactly `image`'s manifest and the repository has all its blobs.
async fn assert_holds(registry: &Registry, repo: &str, tag: &str, image: &Image) {
    let (media_type, manifest) = registry
        .manifest(repo, tag)
        .await
        .unwrap_or_else(|| panic!("{repo}:{tag} is missing"));
    assert_eq!(manifest, image.manifest, "{repo}:{tag} manifest bytes");
    assert_eq!(media_type, image.media_type(), "{repo}:{tag} media type");
    for digest in image.blob_digests() {
        assert!(
            registry.blob_exists(repo, &digest).await,
            "blob {digest} of {repo}:{tag} is missing"
        );
    }
}

async fn assert_copied_image(flavour: Flavour) {
    let world = World::start().await;
    let image = Image::random(&[1 << 20, 300_000, 1_000], flavour);
    let digest = world.staging.push_image("api", COMMIT, &image).await;

    let outcome = promote(&world, RELEASE, &[]).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert!(outcome.stdout.contains(&digest), "stdout names {digest}");
    assert_eq!(
        world.production.manifest_digest("api", RELEASE).await,
        world.staging.manifest_digest("api", COMMIT).await
    );
    assert_holds(&world.production, "api", RELEASE, &image).await;
}

#[tokio::test]
async fn copies_an_oci_image_with_its_digest() {
    assert_copied_image(Flavour::Oci).await;
}

#[tokio::test]
async fn copies_a_docker_schema2_image_with_its_digest() {
    assert_copied_image(Flavour::Docker).await;
}

#[tokio::test]
async fn copies_an_image_index_with_every_platform() {
    let world = World::start().await;
    let amd64 = Image::random(&[200_000, 50_000], Flavour::Oci);
    let arm64 = Image::random(&[180_000], Flavour::Oci);
    let index = Index::of(&[(&amd64, "linux/amd64"), (&arm64, "linux/arm64")]);
    let digest = world.staging.push_index("api", COMMIT, &index).await;

    let outcome = promote(&world, RELEASE, &[]).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert!(outcome.stdout.contains(&digest), "stdout names {digest}");
    assert_eq!(
        world.production.manifest_digest("api", RELEASE).await,
        Some(digest)
    );
    for image in [&amd64, &arm64] {
        assert_holds(&world.production, "api", &image.digest(), image).await;
    }
}

#[tokio::test]
async fn copies_a_source_named_by_digest() {
    let world = World::start().await;
    let image = Image::random(&[100_000], Flavour::Oci);
    let digest = world.staging.push_image("api", COMMIT, &image).await;

    let outcome = copy_to_release(&world, &format!("api@{digest}"), RELEASE, &[]).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert_holds(&world.production, "api", RELEASE, &image).await;
}

#[tokio::test]
async fn a_second_copy_of_the_same_release_moves_nothing() {
    let world = World::start().await;
    let image = Image::random(&[500_000, 1_000], Flavour::Oci);
    let digest = world.staging.push_image("api", COMMIT, &image).await;
    assert_eq!(promote(&world, RELEASE, &[]).await.code, 0);
    let before = world.production.requests().len();

    let outcome = promote(&world, RELEASE, &[]).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert!(
        outcome.stdout.contains("already there"),
        "{}",
        outcome.stdout
    );
    assert!(outcome.stdout.contains(&digest), "stdout names {digest}");
    let requests = requests_since(&world.production, before);
    assert_eq!(blob_uploads(&requests), Vec::<&Request>::new());
    assert!(
        !requests.iter().any(Request::is_manifest_put),
        "no manifest put: {requests:#?}"
    );
    assert_holds(&world.production, "api", RELEASE, &image).await;
}

#[tokio::test]
async fn blobs_already_in_production_are_not_uploaded_again() {
    let world = World::start().await;
    let image = Image::random(&[500_000, 1_000], Flavour::Docker);
    world.staging.push_image("api", COMMIT, &image).await;
    world.production.push_image("api", "v1.1.9", &image).await;
    let before = world.production.requests().len();

    let outcome = promote(&world, RELEASE, &[]).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert!(
        !outcome.stdout.contains("already there")
            && outcome.stdout.contains("0 blobs copied, 3 skipped"),
        "{}",
        outcome.stdout
    );
    let requests = requests_since(&world.production, before);
    let writes: Vec<&Request> = requests
        .iter()
        .filter(|request| request.method != "GET" && request.method != "HEAD")
        .collect();
    assert!(
        writes.iter().all(|request| request.is_manifest_put()),
        "only manifest puts: {writes:#?}"
    );
    assert!(
        writes
            .iter()
            .any(|request| request.uri == format!("/v2/api/manifests/{RELEASE}")),
        "the release tag is put: {writes:#?}"
    );
    assert_holds(&world.production, "api", RELEASE, &image).await;
}

#[tokio::test]
async fn a_release_tag_on_another_digest_is_not_moved_without_force() {
    let world = World::start().await;
    let wanted = Image::random(&[300_000, 2_000], Flavour::Oci);
    let existing = Image::random(&[100_000], Flavour::Oci);
    world.staging.push_image("api", COMMIT, &wanted).await;
    world.production.push_image("api", RELEASE, &existing).await;
    let before = world.production.requests().len();

    let outcome = promote(&world, RELEASE, &[]).await;

    assert_eq!(outcome.code, 3, "{}", outcome.stderr);
    let error = outcome.error_line();
    assert!(
        error.contains(&wanted.digest()),
        "names the source digest: {error}"
    );
    assert!(
        error.contains(&existing.digest()),
        "names the target digest: {error}"
    );
    assert_eq!(
        world.production.manifest_digest("api", RELEASE).await,
        Some(existing.digest())
    );
    let requests = requests_since(&world.production, before);
    assert_eq!(blob_uploads(&requests), Vec::<&Request>::new());
    for digest in wanted.blob_digests() {
        assert!(!world.production.blob_exists("api", &digest).await);
    }

    let forced = promote(&world, RELEASE, &["--force"]).await;

    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert_holds(&world.production, "api", RELEASE, &wanted).await;
}

#[tokio::test]
async fn rejected_credentials_name_the_registry_and_write_nothing() {
    let (staging, production) = tokio::join!(
        Registry::start(STAGING_ACCOUNT),
        Registry::start_with_password(PRODUCTION_ACCOUNT, "not-what-moto-hands-out")
    );
    let world = World::with_registries(staging, production).await;
    let image = Image::random(&[100_000], Flavour::Oci);
    world.staging.push_image("api", COMMIT, &image).await;

    let outcome = promote(&world, RELEASE, &[]).await;

    assert_eq!(outcome.code, 1, "{}", outcome.stderr);
    let error = outcome.error_line();
    assert!(
        error.contains(&world.production.ecr_host()),
        "names the production registry: {error}"
    );
    assert_eq!(world.production.manifest("api", RELEASE).await, None);
    for digest in image.blob_digests() {
        assert!(!world.production.blob_exists("api", &digest).await);
    }
    let accepted_writes: Vec<Request> = world
        .production
        .requests()
        .into_iter()
        .filter(|request| {
            request.method != "GET" && request.method != "HEAD" && request.status < 400
        })
        .collect();
    assert_eq!(accepted_writes, Vec::new());
}

#[tokio::test]
async fn a_missing_repository_is_named_with_its_account() {
    let world = World::start().await;
    world
        .staging
        .push_image("api", COMMIT, &Image::random(&[1_000], Flavour::Oci))
        .await;

    let outcome = copy_to_release(&world, &format!("no-such-repo:{COMMIT}"), RELEASE, &[]).await;

    outcome.assert_failed_naming(1, &["no-such-repo", STAGING_ACCOUNT]);
    assert_eq!(world.production.manifest("api", RELEASE).await, None);
}

#[tokio::test]
async fn a_missing_tag_is_named() {
    let world = World::start().await;
    world
        .staging
        .push_image("api", COMMIT, &Image::random(&[1_000], Flavour::Oci))
        .await;

    let outcome = copy_to_release(&world, "api:0000000", RELEASE, &[]).await;

    outcome.assert_failed_naming(1, &["0000000"]);
    assert_eq!(world.production.manifest("api", RELEASE).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_downloads_follow_redirects_without_leaking_credentials() {
    let mut world = World::start().await;
    let image = Image::random(&[1 << 20, 4_096], Flavour::Docker);
    let digest = world.staging.push_image("api", COMMIT, &image).await;
    let front = RedirectingFront::start(&world.staging).await;
    let staging_host = world.staging.ecr_host();
    world.route(&staging_host, &front.url());

    let outcome = promote(&world, RELEASE, &[]).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert_eq!(
        world.production.manifest_digest("api", RELEASE).await,
        Some(digest)
    );
    assert_holds(&world.production, "api", RELEASE, &image).await;
    assert!(
        front.redirects_served() > 0,
        "blobs were fetched through the redirect"
    );
    assert_eq!(
        front.authorization_leaks(),
        0,
        "Authorization sent to the presigned URL"
    );
}

#[tokio::test]
async fn a_large_layer_arrives_byte_for_byte() {
    let world = World::start().await;
    let image = Image::random(&[20 << 20, 1_000], Flavour::Oci);
    world.staging.push_image("api", COMMIT, &image).await;

    let outcome = promote(&world, RELEASE, &[]).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert_holds(&world.production, "api", RELEASE, &image).await;
    for digest in image.blob_digests() {
        let copied = world.production.blob("api", &digest).await;
        assert!(
            copied == world.staging.blob("api", &digest).await,
            "blob {digest} differs"
        );
    }
}

#[tokio::test]
async fn the_source_role_is_assumed_for_the_source_registry() {
    let world = World::start().await;
    let image = Image::random(&[100_000], Flavour::Oci);
    world.staging.push_image("api", COMMIT, &image).await;
    let role = format!("arn:aws:iam::{STAGING_ACCOUNT}:role/staging-image-pull");

    let outcome = run(world
        .command()
        .env("PROMOTE_SOURCE_ROLE_ARN", &role)
        .arg("copy")
        .arg(world.staging.reference(&format!("api:{COMMIT}")))
        .arg(world.production.reference(&format!("api:{RELEASE}"))))
    .await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert_holds(&world.production, "api", RELEASE, &image).await;
    // moto keeps every role it handed credentials for: the run must have asked STS for this one.
    let body = reqwest::get(format!("{}/moto-api/data.json", world.moto.url()))
        .await
        .expect("read moto's state")
        .bytes()
        .await
        .expect("read moto's state");
    let state: serde_json::Value = serde_json::from_slice(&body).expect("moto's state is JSON");
    let assumed: Vec<&str> = state["sts"]["AssumedRole"]
        .as_array()
        .map(|roles| {
            roles
                .iter()
                .filter_map(|r| r["role_arn"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(assumed, [role.as_str()], "roles assumed: {state}");
}

/// Within one registry every blob is mounted from the source repository: the copy moves no blob bytes
/// (no upload request), and the target holds the image digest for digest.
#[tokio::test]
async fn a_copy_within_one_registry_mounts_every_blob_and_moves_no_bytes() {
    let world = World::start().await;
    let image = Image::random(&[300_000, 200_000, 1_000], Flavour::Oci);
    world
        .production
        .push_image("replica/api", COMMIT, &image)
        .await;
    let since = world.production.requests().len();

    let outcome = copy(
        &world,
        &world.production.reference(&format!("replica/api:{COMMIT}")),
        &world.production.reference(&format!("api:{RELEASE}")),
        &[],
    )
    .await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert!(
        outcome.stdout.contains(&format!(
            "0 blobs copied, 0 skipped (target had them), {} mounted",
            image.blob_digests().len()
        )),
        "{}",
        outcome.stdout
    );
    let requests = requests_since(&world.production, since);
    let mounts = requests
        .iter()
        .filter(|r| r.method == "POST" && r.uri.contains("mount=") && r.status == 201)
        .count();
    assert_eq!(mounts, image.blob_digests().len(), "{requests:#?}");
    assert!(
        !requests
            .iter()
            .any(|r| matches!(r.method.as_str(), "PUT" | "PATCH")
                && r.uri.contains("/blobs/uploads/")),
        "no blob bytes moved: {requests:#?}"
    );
    assert_holds(&world.production, "api", RELEASE, &image).await;
}

/// A target named by a digest that is not the source's: said to be a digest mismatch, not a tag that
/// would move, and nothing is written.
#[tokio::test]
async fn a_target_digest_that_is_not_the_sources_is_named_as_such() {
    let world = World::start().await;
    let image = Image::random(&[10_000], Flavour::Oci);
    world.staging.push_image("api", COMMIT, &image).await;
    let wrong = format!("sha256:{}", "0".repeat(64));

    let outcome = copy(
        &world,
        &world.staging.reference(&format!("api:{COMMIT}")),
        &world.production.reference(&format!("api@{wrong}")),
        &[],
    )
    .await;

    assert_eq!(outcome.code, 1, "{}", outcome.stderr);
    let error = outcome.error_line();
    assert!(
        error.contains(&format!("names digest {wrong}")) && error.contains(&image.digest()),
        "{error}"
    );
    assert!(!error.contains("refusing to move tag"), "{error}");
    assert_eq!(world.production.writes(), Vec::new());
}
