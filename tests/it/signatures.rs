//! Signatures travel with their image when asked for: a cosign signature of the image, and every
//! platform's signature of a signed index.

use crate::support::{
    COMMIT, Envelope, Flavour, Image, Index, Pipeline, REPOSITORY, ReleaseEvent, run,
};

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
    let amd64 = Image::random(&[20_000], Flavour::Oci);
    let arm64 = Image::random(&[20_000], Flavour::Oci);
    let index = Index::of(&[(&amd64, "linux/amd64"), (&arm64, "linux/arm64")]);
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
