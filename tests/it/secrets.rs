//! Secrets stay secret: whatever the binary is asked to do, however verbose its logs, and however
//! it fails, its output never carries a registry password (plain, or as the base64 `AWS:<password>`
//! token ECR hands out) or the webhook secret. CodeBuild sends every line to CloudWatch Logs, where
//! far more people can read it than can read the secrets.

use crate::support::{
    COMMIT, Envelope, Outcome, PRODUCTION_ACCOUNT, Pipeline, RELEASE, Registry, ReleaseEvent,
    STAGING_ACCOUNT, World, run,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

const WEBHOOK_SECRET: &str = "whsec-7d1f0c9a5e3b";

/// Every form a secret of the local world could take in the output.
fn secrets() -> Vec<String> {
    let mut secrets = vec![WEBHOOK_SECRET.to_string()];
    for account in [STAGING_ACCOUNT, PRODUCTION_ACCOUNT] {
        let password = format!("{account}-auth-token");
        let credentials = format!("AWS:{password}");
        secrets.push(STANDARD.encode(&credentials));
        secrets.push(URL_SAFE_NO_PAD.encode(&credentials));
        secrets.push(password);
    }
    secrets
}

fn assert_no_secrets(what: &str, outcome: &Outcome) {
    for secret in secrets() {
        for (stream, text) in [("stdout", &outcome.stdout), ("stderr", &outcome.stderr)] {
            let line = text.lines().find(|line| line.contains(&secret));
            assert_eq!(line, None, "{what}: {stream} carries {secret}");
        }
    }
}

/// `ecr-promote run` that knows the webhook secret.
fn signed_run(pipeline: &Pipeline) -> tokio::process::Command {
    let mut command = pipeline.run_command();
    command.env("PROMOTE_WEBHOOK_SECRET", WEBHOOK_SECRET);
    command
}

/// The body of GitHub's delivery of RELEASE of COMMIT being published.
fn release_body() -> String {
    ReleaseEvent::published(RELEASE, COMMIT)
        .payload()
        .to_string()
}

/// The command at debug level, as an engineer chasing a failure would run it, in both log formats;
/// returns the outcomes.
async fn run_verbosely(what: &str, command: impl Fn() -> tokio::process::Command) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for (format, level) in [("text", "debug"), ("json", "debug")] {
        let mut command = command();
        command
            .env("PROMOTE_LOG_FORMAT", format)
            .env("RUST_LOG", level);
        let outcome = run(&mut command).await;
        assert_no_secrets(&format!("{what} ({format}, {level})"), &outcome);
        outcomes.push(outcome);
    }
    outcomes
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_promotion_logged_at_debug_shows_no_secret() {
    let pipeline = Pipeline::start().await;
    pipeline.stage(COMMIT).await;
    let body = release_body();
    for envelope in [Envelope::ApiGatewayV1, Envelope::ApiGatewayV2] {
        pipeline
            .queue
            .send(&envelope.wrap_signed("release", &body, WEBHOOK_SECRET))
            .await;
    }

    let outcomes = run_verbosely("a signed promotion", || {
        let mut command = signed_run(&pipeline);
        command
            // The second run finds nothing pending and redeploys the release it recorded.
            .env("PROMOTE_REDEPLOY_LATEST_WHEN_EMPTY", "true");
        command
    })
    .await;

    for outcome in &outcomes {
        assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    }
    assert!(
        pipeline.table.item(RELEASE).await.is_some(),
        "the signed release was promoted"
    );
}

/// At trace level every library logs what it sends and receives. An engineer may set
/// RUST_LOG=trace in a CodeBuild project to chase a failure; the ECR token must not reach the logs
/// even then.
#[tokio::test(flavor = "multi_thread")]
async fn a_promotion_logged_at_trace_shows_no_registry_token() {
    let pipeline = Pipeline::start().await;
    pipeline.stage(COMMIT).await;
    pipeline.queue_release(RELEASE, COMMIT).await;

    let outcome = run(pipeline.run_command().env("RUST_LOG", "trace")).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert_no_secrets("a promotion at trace level", &outcome);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_or_missing_webhook_signature_is_refused_without_showing_the_secret() {
    let pipeline = Pipeline::start().await;
    pipeline.stage(COMMIT).await;
    let body = release_body();
    pipeline
        .queue
        .send(&Envelope::ApiGatewayV1.wrap_signed("release", &body, "not-the-secret"))
        .await;
    pipeline
        .queue
        .send(&Envelope::ApiGatewayV2.wrap("release", &body))
        .await;

    let outcomes = run_verbosely("bad signatures", || signed_run(&pipeline)).await;

    for outcome in &outcomes {
        assert_eq!(outcome.code, 4, "{}", outcome.stderr);
    }
    assert_eq!(pipeline.table.items().await.len(), 0, "nothing promoted");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registry_refusing_the_token_is_named_without_the_token() {
    let (staging, production) = tokio::join!(
        Registry::start(STAGING_ACCOUNT),
        Registry::start_with_password(PRODUCTION_ACCOUNT, "not-what-moto-hands-out")
    );
    let pipeline = Pipeline::around(World::with_registries(staging, production).await).await;
    pipeline.stage(COMMIT).await;
    let body = release_body();
    pipeline
        .queue
        .send(&Envelope::ApiGatewayV1.wrap_signed("release", &body, WEBHOOK_SECRET))
        .await;

    let outcomes = run_verbosely("a refused token", || signed_run(&pipeline)).await;

    for outcome in &outcomes {
        assert_eq!(outcome.code, 1, "{}", outcome.stderr);
        assert!(
            outcome
                .stderr
                .contains(&pipeline.world.production.ecr_host()),
            "the failure names the production registry: {}",
            outcome.stderr
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_repository_is_named_without_a_secret() {
    let pipeline = Pipeline::start().await;
    pipeline.stage(COMMIT).await;
    pipeline.queue_release(RELEASE, COMMIT).await;
    let missing = pipeline.world.staging.reference("missing");

    let outcomes = run_verbosely("a missing source repository", || {
        let mut command = pipeline.run_command();
        command.env("PROMOTE_SOURCE_REPOSITORY", &missing);
        command
    })
    .await;
    for outcome in &outcomes {
        assert_eq!(outcome.code, 1, "{}", outcome.stderr);
        assert!(
            outcome.stderr.contains("missing"),
            "the failure names the repository: {}",
            outcome.stderr
        );
    }

    let copies = run_verbosely("copying from a missing repository", || {
        let mut command = pipeline.world.command();
        command.arg("copy").arg(format!("{missing}:{COMMIT}")).arg(
            pipeline
                .world
                .production
                .reference(&format!("api:{RELEASE}")),
        );
        command
    })
    .await;
    for outcome in &copies {
        assert_eq!(outcome.code, 1, "{}", outcome.stderr);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn help_and_usage_errors_do_not_echo_the_webhook_secret() {
    let world = World::start().await;
    for args in [
        &["run", "--help"][..],
        &["run", "--visibility-seconds", "1"][..],
    ] {
        let outcome = run(world
            .command()
            .args(args)
            .env("PROMOTE_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("RUST_LOG", "trace"))
        .await;
        assert_no_secrets(&format!("{args:?}"), &outcome);
    }
    let outcome = run(world
        .command()
        .args(["run"])
        .env("PROMOTE_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("PROMOTE_VISIBILITY_SECONDS", "1"))
    .await;
    assert_eq!(outcome.code, 2, "{}", outcome.stderr);
    assert_no_secrets("a bad setting", &outcome);
}
