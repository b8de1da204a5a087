//! Promotion gates against the local world: the vulnerability gate reads the staging image's scan
//! from moto's ECR in the staging account (through the source role, as in AWS), where each test
//! registers the image and sets the findings moto answers with (moto's own API for it). A refusal
//! writes nothing; a pass and an override are recorded with their evidence; a redeploy is never
//! gated.
//!
//! moto answers one fixed result per image and query, so a scan that is in progress and then
//! completes is tested in src/gates over recorded answers; here an in-progress scan is waited for
//! (briefly) and the release left for a later run.

use serde_json::{Value, json};

use crate::support::{
    COMMIT, Image, Outcome, Pipeline, RELEASE, REPOSITORY, STAGING_ACCOUNT, StagingScans, run,
};

/// The role in the staging account the production build assumes to read staging.
fn staging_role() -> String {
    format!("arn:aws:iam::{STAGING_ACCOUNT}:role/staging-read")
}

/// ECR's findings object: each (id, severity, package) finding, and its counts by severity.
fn findings(found: &[(&str, &str, &str)]) -> Value {
    let mut counts = serde_json::Map::new();
    for (_, severity, _) in found {
        let count = counts.entry(severity.to_string()).or_insert(json!(0));
        *count = json!(count.as_u64().unwrap() + 1);
    }
    json!({
        "findings": found.iter().map(|(id, severity, package)| json!({
            "name": id,
            "severity": severity,
            "uri": format!("https://cve.example/{id}"),
            "attributes": [{"key": "package_name", "value": package}],
        })).collect::<Vec<_>>(),
        "findingSeverityCounts": counts,
    })
}

/// A pipeline with COMMIT staged and scanned by ECR with `found`, in status `status`.
async fn scanned(status: &str, found: &[(&str, &str, &str)]) -> (Pipeline, Image) {
    let pipeline = Pipeline::start().await;
    let image = pipeline.stage(COMMIT).await;
    StagingScans::open(&pipeline.world.moto, &staging_role())
        .await
        .scanned(REPOSITORY, COMMIT, &image, status, findings(found))
        .await;
    (pipeline, image)
}

/// `ecr-promote promote` of RELEASE with the vulnerability gate at HIGH, and `settings`.
async fn promote_gated(pipeline: &Pipeline, settings: &[(&str, &str)]) -> Outcome {
    let mut command = pipeline.promote_command();
    command
        .args(["--tag", RELEASE, "--commit", COMMIT])
        .env("PROMOTE_SOURCE_ROLE_ARN", staging_role())
        .env("PROMOTE_GATE_VULNERABILITIES", "HIGH");
    for (name, value) in settings {
        command.env(name, value);
    }
    run(&mut command).await
}

/// The gate evidence recorded with RELEASE.
async fn recorded_gates(pipeline: &Pipeline) -> Vec<Value> {
    let item = pipeline.recorded(RELEASE).await;
    let text = item["gates"]
        .as_str()
        .unwrap_or_else(|| panic!("no gate evidence recorded: {item}"));
    serde_json::from_str(text).expect("the evidence is JSON")
}

#[tokio::test]
async fn a_finding_at_the_threshold_refuses_the_release_naming_it_and_writes_nothing() {
    let (pipeline, _) = scanned(
        "COMPLETE",
        &[
            ("CVE-2026-1111", "HIGH", "openssl"),
            ("CVE-2026-2222", "LOW", "zlib"),
        ],
    )
    .await;

    let dry = promote_gated(&pipeline, &[("PROMOTE_DRY_RUN", "true")]).await;
    let outcome = promote_gated(&pipeline, &[]).await;

    for outcome in [&dry, &outcome] {
        outcome.assert_failed_naming(
            3,
            &[
                RELEASE,
                "vulnerabilities gate",
                "HIGH CVE-2026-1111 in openssl",
                "--override-gate vulnerabilities",
            ],
        );
        assert!(!outcome.error_line().contains("CVE-2026-2222"));
    }
    pipeline.assert_nothing_promoted(RELEASE).await;
}

#[tokio::test]
async fn an_allowlisted_finding_passes_and_the_evidence_is_recorded_and_shown() {
    let (pipeline, image) = scanned("COMPLETE", &[("CVE-2026-1111", "CRITICAL", "openssl")]).await;
    let allowlist = pipeline.world.dir().join("allowlist.toml");
    std::fs::write(
        &allowlist,
        "[[allow]]\nid = \"CVE-2026-1111\"\nexpires = \"2999-12-31\"\nreason = \"openssl is not linked by the API\"\n",
    )
    .expect("write the allowlist");
    let allowlist = allowlist.to_string_lossy().into_owned();

    let dry = promote_gated(
        &pipeline,
        &[
            ("PROMOTE_GATE_ALLOWLIST", &allowlist),
            ("PROMOTE_DRY_RUN", "true"),
        ],
    )
    .await;

    assert_eq!(dry.code, 0, "{}", dry.stderr);
    let verdict = dry
        .stdout
        .lines()
        .find(|l| l.starts_with("dry run: gate vulnerabilities pass"))
        .unwrap_or_else(|| panic!("the dry run shows no verdict: {}", dry.stdout));
    assert!(verdict.contains("allowlisted CVE-2026-1111"), "{verdict}");
    pipeline.assert_nothing_recorded_or_written().await;

    let outcome = promote_gated(&pipeline, &[("PROMOTE_GATE_ALLOWLIST", &allowlist)]).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    pipeline
        .assert_in_production(REPOSITORY, RELEASE, &image)
        .await;
    let gates = recorded_gates(&pipeline).await;
    assert_eq!(gates.len(), 1, "{gates:?}");
    let gate = &gates[0];
    assert_eq!(gate["gate"], "vulnerabilities");
    assert_eq!(gate["verdict"], "pass");
    let evidence = &gate["vulnerabilities"];
    assert_eq!(
        evidence["image"],
        format!("{}@{}", pipeline.source_repository(), image.digest())
    );
    assert_eq!(evidence["threshold"], "HIGH");
    assert_eq!(evidence["scan_status"], "COMPLETE");
    assert_eq!(evidence["counts"], json!({"CRITICAL": 1}));
    assert_eq!(
        evidence["allowlisted"],
        json!(["CVE-2026-1111 (until 2999-12-31)"])
    );

    let shown = run(pipeline.ledger_command("show").arg(RELEASE)).await;

    assert_eq!(shown.code, 0, "{}", shown.stderr);
    assert!(
        shown
            .stdout
            .lines()
            .any(|l| l.starts_with("gate") && l.contains("vulnerabilities pass")),
        "show prints the gate: {}",
        shown.stdout
    );
    let listed = run(pipeline.ledger_command("history").arg("--json")).await;
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let history: Value = serde_json::from_str(&listed.stdout).expect("history --json is JSON");
    assert_eq!(
        history[0]["gates"][0]["verdict"], "pass",
        "history --json carries the evidence: {history}"
    );
}

#[tokio::test]
async fn an_override_promotes_past_a_refusal_and_records_who_why_and_what_was_refused() {
    let (pipeline, image) = scanned("COMPLETE", &[("CVE-2026-1111", "CRITICAL", "openssl")]).await;

    let without_reason =
        promote_gated(&pipeline, &[("PROMOTE_OVERRIDE_GATE", "vulnerabilities")]).await;
    without_reason.assert_failed_naming(2, &["PROMOTE_OVERRIDE_REASON"]);

    let outcome = promote_gated(
        &pipeline,
        &[
            ("PROMOTE_OVERRIDE_GATE", "vulnerabilities"),
            ("PROMOTE_OVERRIDE_REASON", "INC-42: the fix is this release"),
        ],
    )
    .await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    pipeline
        .assert_in_production(REPOSITORY, RELEASE, &image)
        .await;
    let gates = recorded_gates(&pipeline).await;
    let gate = &gates[0];
    assert_eq!(gate["verdict"], "overridden", "{gate}");
    let overridden = &gate["overridden"];
    assert_eq!(overridden["reason"], "INC-42: the fix is this release");
    // moto's GetCallerIdentity for the tests' credentials.
    assert!(
        overridden["by"]
            .as_str()
            .is_some_and(|by| by.starts_with("arn:aws:")),
        "{overridden}"
    );
    assert!(
        overridden["refusal"]
            .as_str()
            .is_some_and(|r| r.contains("CRITICAL CVE-2026-1111")),
        "{overridden}"
    );
    assert!(gate["checked_at"].is_string(), "{gate}");
}

#[tokio::test]
async fn an_unfinished_scan_leaves_the_release_for_a_later_run_and_a_redeploy_is_never_gated() {
    let (pipeline, _) = scanned("IN_PROGRESS", &[]).await;

    let outcome = promote_gated(&pipeline, &[("PROMOTE_GATE_SCAN_WAIT", "1s")]).await;

    outcome.assert_failed_naming(1, &["still in progress", "PROMOTE_GATE_SCAN_WAIT"]);
    pipeline.assert_nothing_promoted(RELEASE).await;

    // Promoted without the gate, then redeployed with it set: the redeploy reads no scan.
    let promoted = pipeline.promote(RELEASE, COMMIT).await;
    assert_eq!(promoted.code, 0, "{}", promoted.stderr);
    let redeploy = run(pipeline
        .redeploy_command(RELEASE)
        .env("PROMOTE_SOURCE_ROLE_ARN", staging_role())
        .env("PROMOTE_GATE_VULNERABILITIES", "HIGH"))
    .await;
    assert_eq!(redeploy.code, 0, "{}", redeploy.stderr);
    assert_eq!(pipeline.deploys(RELEASE).await.len(), 2);
}
