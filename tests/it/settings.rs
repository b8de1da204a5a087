//! How the binary is told what to do and how it answers: missing, empty and bad settings are named
//! before anything is received, a dry run says what it would do and changes nothing, and JSON logs
//! are JSON.

use crate::support::{COMMIT, Counts, Image, OTHER_COMMIT, Outcome, Pipeline, RELEASE, TABLE, run};
use serde_json::Value;

#[tokio::test]
async fn a_missing_setting_is_named_and_nothing_is_touched() {
    let pipeline = Pipeline::start().await;
    pipeline.stage(COMMIT).await;
    pipeline.queue_release(RELEASE, COMMIT).await;
    let before = pipeline.registry_requests();

    let outcome = run(pipeline.run_command().env_remove("PROMOTE_TABLE")).await;

    outcome.assert_failed_naming(2, &["PROMOTE_TABLE"]);
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
        ("PROMOTE_WEBHOOK_SECRET_ARN", " "),
    ] {
        let outcome = run(pipeline.run_command().env(variable, value)).await;

        outcome.assert_failed_naming(2, &[variable]);
    }
    // Two places for one secret: which one is meant is not guessed.
    let outcome = run(pipeline
        .run_command()
        .env("PROMOTE_WEBHOOK_SECRET", "whsec-value")
        .env(
            "PROMOTE_WEBHOOK_SECRET_ARN",
            "ecr-promote/github-webhook-secret",
        ))
    .await;

    outcome.assert_failed_naming(2, &["PROMOTE_WEBHOOK_SECRET", "PROMOTE_WEBHOOK_SECRET_ARN"]);
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

    outcome.assert_failed_naming(2, &["PROMOTE_SOURCE_REPOSITORY"]);
    pipeline.assert_refused_before_starting(&before).await;
}

#[tokio::test]
async fn a_codebuild_webhook_on_a_branch_is_refused_naming_the_trigger() {
    let pipeline = Pipeline::start().await;
    pipeline.stage(COMMIT).await;
    let before = pipeline.registry_requests();

    let outcome = run(pipeline
        .run_command()
        .env_remove("PROMOTE_QUEUE_URL")
        .env("PROMOTE_RELEASE_SOURCE", "codebuild-webhook")
        .env("CODEBUILD_WEBHOOK_TRIGGER", "branch/main")
        .env("CODEBUILD_RESOLVED_SOURCE_VERSION", COMMIT))
    .await;

    outcome.assert_failed_naming(2, &["CODEBUILD_WEBHOOK_TRIGGER", "branch/main"]);
    assert_eq!(
        pipeline.registry_requests(),
        before,
        "no registry contacted"
    );
    pipeline.assert_nothing_recorded_or_written().await;
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
    let variable = pipeline.run_with(&[("PROMOTE_DRY_RUN", "true")]).await;

    assert_says_what_it_would_do(&pipeline, &variable, &image);
    assert_eq!(pipeline.queue.counts().await, handed_back);

    let promote =
        run(pipeline
            .promote_command()
            .args(["--tag", RELEASE, "--commit", COMMIT, "--dry-run"]))
        .await;

    assert_says_what_it_would_do(&pipeline, &promote, &image);
    pipeline.assert_nothing_promoted(RELEASE).await;
    assert_eq!(pipeline.queue.counts().await, handed_back);
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

/// Logs in JSON are JSON on every line, whether the run succeeds or fails (that no log line carries a
/// secret, in either format, is secrets.rs's).
#[tokio::test]
async fn json_logs_are_json_whether_the_run_succeeds_or_fails() {
    let pipeline = Pipeline::start().await;
    pipeline.stage(COMMIT).await;
    pipeline.queue_release(RELEASE, COMMIT).await;

    let shipped = run(pipeline.run_command().args(["--log-format", "json"])).await;

    assert_eq!(shipped.code, 0, "{}", shipped.stderr);
    assert_json_lines(&shipped.stderr);

    // Nothing staged for this commit: the promotion fails.
    pipeline.queue_release("v1.3.0", OTHER_COMMIT).await;

    let failed = run(pipeline.run_command().args(["--log-format", "json"])).await;

    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert_json_lines(&failed.stderr);
}
