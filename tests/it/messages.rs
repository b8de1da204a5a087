//! What arrives on the release queue: a release in every envelope it may come in, events that are
//! not releases to ship, prereleases, malformed and undatable messages, signed deliveries and a
//! delivery received twice. Every test reads back the production registry, the ledger table, the
//! queue and the deploy files, not only what the binary printed.

use crate::support::{
    COMMIT, DELIVERY, ENVELOPES, Envelope, GITHUB_REPOSITORY, MAX_RECEIVE_COUNT, Outcome,
    PROMOTE_BUILD_ARN, Pipeline, RELEASE, REPOSITORY, ReleaseEvent, WEBHOOK_SECRET, WebhookSecret,
    ping, run, signature,
};
use serde_json::{Value, json};

#[tokio::test]
async fn promotes_a_release_from_every_envelope_and_records_it_with_the_build() {
    let pipeline = Pipeline::start().await;
    for (number, envelope) in ENVELOPES.into_iter().enumerate() {
        let commit = format!("{:x}{}", number + 1, &COMMIT[1..]);
        let image = pipeline.stage(&commit).await;
        let release = ReleaseEvent::published(&format!("v1.{number}.0"), &commit);
        pipeline.queue.send(&release.message(envelope)).await;

        let outcome = pipeline
            .run_with(&[("CODEBUILD_BUILD_ARN", PROMOTE_BUILD_ARN)])
            .await;

        assert_eq!(outcome.code, 0, "{envelope:?}: {}", outcome.stderr);
        pipeline
            .assert_in_production(REPOSITORY, &release.tag, &image)
            .await;
        pipeline
            .assert_recorded(&release, &commit, &image, Some(PROMOTE_BUILD_ARN))
            .await;
        // The payload's repository, where GitHub deployments go; a bare release object has none.
        let repository = match envelope {
            Envelope::BareRelease => Value::Null,
            _ => json!(GITHUB_REPOSITORY),
        };
        assert_eq!(
            pipeline.recorded(&release.tag).await["repository"],
            repository,
            "{envelope:?}"
        );
        assert_eq!(
            pipeline.deploy_file("imagedefinitions.json"),
            Some(pipeline.imagedefinitions(&release.tag)),
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

        let outcome = pipeline.run_with(&[]).await;

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
        pipeline.assert_nothing_promoted("v9.0.0").await;
    }
    for tag in ["v9.0.1", "v9.0.2", "v9.0.3"] {
        assert_eq!(pipeline.production_digest(tag).await, None);
    }
}

#[tokio::test]
async fn prereleases_are_promoted_when_asked_for() {
    let pipeline = Pipeline::start().await;
    let image = pipeline.stage(COMMIT).await;
    let release = ReleaseEvent::published("v2.0.0-rc.1", COMMIT).prerelease();
    pipeline.queue.send(&release.message(Envelope::Raw)).await;

    let outcome = pipeline.run_with(&[("PROMOTE_PRERELEASES", "true")]).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    pipeline.assert_shipped(&release, COMMIT, &image).await;
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

    let outcome = pipeline.run_with(&[]).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    pipeline.assert_shipped(&release, COMMIT, &image).await;
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
    let again = pipeline.run_with(&[]).await;

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

    let outcome = pipeline.run_with(&[]).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert!(
        outcome.stderr.contains("published_at"),
        "{}",
        outcome.stderr
    );
    pipeline.assert_shipped(&good, COMMIT, &image).await;
    assert_eq!(pipeline.table.item("v9.9.9").await, None);
    pipeline.assert_kept(&[&garbage]).await;
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
        assert_eq!(pipeline.recorded(tag).await["digest"], image.digest());
        pipeline.assert_deploy_file_for(tag);
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
    pipeline.remove_imagedefinitions();

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
            pipeline.production_digest(tag).await,
            None,
            "{tag} not promoted"
        );
        assert_eq!(pipeline.table.item(tag).await, None, "{tag} not recorded");
    }
    assert_eq!(pipeline.world.production.writes(), writes);
    assert_eq!(pipeline.output_files(), Vec::<String>::new());
    pipeline.assert_kept(&[&tampered, &unsigned]).await;
}

/// With the secret named by its ARN, `run` reads it from Secrets Manager and accepts its current value and,
/// while a rotation is under way, its previous one: a delivery the webhook signed just before the rotation
/// and `run` reads just after is promoted. A value from two rotations ago is rejected and kept.
#[tokio::test]
async fn with_the_secret_in_secrets_manager_a_delivery_signed_before_a_rotation_is_promoted() {
    let pipeline = Pipeline::start().await;
    let image = pipeline.stage(COMMIT).await;
    let secret = WebhookSecret::create(&pipeline.world.moto, "github-webhook", "whsec-first").await;
    secret.rotate("whsec-second").await;
    secret.rotate("whsec-third").await;
    let signed_with = |tag: &str, value: &str| {
        let body = ReleaseEvent::published(tag, COMMIT).payload().to_string();
        delivered(
            Envelope::ApiGatewayV1,
            &body,
            Some(&signature(&body, value)),
        )
    };
    pipeline
        .queue
        .send(&signed_with("v3.1.0", "whsec-second"))
        .await;
    pipeline
        .queue
        .send(&signed_with("v3.1.1", "whsec-third"))
        .await;
    let stale = signed_with("v6.6.6", "whsec-first");
    let stale_id = pipeline.queue.send(&stale).await;

    let outcome = run(pipeline
        .run_command()
        .env("PROMOTE_WEBHOOK_SECRET_ARN", &secret.arn))
    .await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    for tag in ["v3.1.0", "v3.1.1"] {
        pipeline.assert_in_production(REPOSITORY, tag, &image).await;
    }
    assert_eq!(pipeline.production_digest("v6.6.6").await, None);
    assert!(
        outcome
            .stderr
            .lines()
            .any(|line| line.contains("rejected: bad signature") && line.contains(&stale_id)),
        "the stale signature is named: {}",
        outcome.stderr
    );
    for value in ["whsec-first", "whsec-second", "whsec-third"] {
        assert!(
            !outcome.stdout.contains(value) && !outcome.stderr.contains(value),
            "{value} appears in the output"
        );
    }
    pipeline.assert_kept(&[&stale]).await;
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
    let promoted = pipeline.recorded("v1.2.0").await;
    assert_eq!(promoted["deliveries"], json!([DELIVERY]), "{promoted}");
    assert_eq!(promoted["deploys"].as_array().map(Vec::len), Some(1));
    pipeline.assert_queue_empty().await;
    pipeline.remove_imagedefinitions();
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
        pipeline.recorded("v1.2.0").await,
        promoted,
        "no second deploy"
    );
    assert_eq!(pipeline.world.production.writes(), writes);
    assert_eq!(pipeline.output_files(), Vec::<String>::new());
}
