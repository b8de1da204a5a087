//! Promotion gates against the local world: the soak gate reads staging's ECS service and alarms
//! from moto in the staging account (below); the vulnerability gate reads the staging image's scan
//! from moto's ECR in the staging account (through the source role, as in AWS), where each test
//! registers the image and sets the findings moto answers with (moto's own API for it). A refusal
//! writes nothing; a pass and an override are recorded with their evidence; a redeploy is never
//! gated.
//!
//! moto answers one fixed result per image and query, so a scan that is in progress and then
//! completes is tested in src/gates over recorded answers; here an in-progress scan is waited for
//! (briefly) and the release left for a later run.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{
    COMMIT, Counts, Envelope, FaultyFront, Image, OTHER_COMMIT, Outcome, Pipeline, RELEASE,
    REPOSITORY, ReleaseEvent, STAGING_ACCOUNT, StagingScans, StagingService, World, run, schedules,
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

    let audit = run(pipeline.ledger_command("audit").arg("--json")).await;

    assert_eq!(audit.code, 0, "{}", audit.stderr);
    let report: Value = serde_json::from_str(&audit.stdout).expect("audit --json is JSON");
    assert_eq!(report["releases"][0]["gates"][0]["verdict"], "overridden");
    assert!(
        report["warnings"]
            .as_array()
            .is_some_and(|w| w.iter().any(|w| w
                .as_str()
                .is_some_and(|w| w.contains("promoted past the vulnerabilities gate")
                    && w.contains("INC-42")))),
        "audit re-reads the override: {report}"
    );
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

// The soak gate. moto 5.2.5 has DescribeServices and DescribeTasks, not ListServiceDeployments or
// DescribeServiceRevisions: where a test needs staging's deployment history, a FaultyFront in front
// of moto answers those two operations (and only those) with the history the test writes, and the
// binary's ECS calls go through it (AWS_ENDPOINT_URL_ECS). moto gives a new service one deployment
// created now, so a test that needs a deployment older than its soak sets a soak of a second or
// two and lets it pass; the arithmetic of long soaks is tested in src/gates/soak.rs with the
// instant passed in.

const STAGING_CLUSTER: &str = "staging";
const STAGING_SERVICE: &str = "shop-api";
/// The production pipeline the schedule starts, and the role EventBridge Scheduler uses to.
const WAKE_PIPELINE: &str = "shop-production";
const WAKE_ROLE: &str = "arn:aws:iam::222222222222:role/promote-wake";

/// moto's ECS with every service's rollout completed (2 tasks running, its desired count), and
/// `failed` failed tasks.
async fn soak_world(failed: &str) -> Pipeline {
    Pipeline::around(
        World::with_moto_env(&[
            ("MOTO_ECS_SERVICE_RUNNING", "2"),
            ("MOTO_ECS_SERVICE_FAILED_TASKS", failed),
        ])
        .await,
    )
    .await
}

/// COMMIT staged, and staging's service running `image` (or COMMIT's image) from now on.
async fn staged_and_running(pipeline: &Pipeline, image: Option<&str>) -> (Image, StagingService) {
    let staged = pipeline.stage(COMMIT).await;
    let running = match image {
        Some(image) => image.to_string(),
        None => format!("{}@{}", pipeline.source_repository(), staged.digest()),
    };
    let service = StagingService::create(
        &pipeline.world.moto,
        &staging_role(),
        STAGING_CLUSTER,
        STAGING_SERVICE,
        &[("api", &running)],
    )
    .await;
    (staged, service)
}

/// The soak gate's settings: `soak`, the staging service, read through the staging role.
fn soak_gate(soak: &str) -> Vec<(&'static str, String)> {
    vec![
        ("PROMOTE_GATE_STAGING_SOAK", soak.to_string()),
        ("PROMOTE_STAGING_CLUSTER", STAGING_CLUSTER.to_string()),
        ("PROMOTE_STAGING_SERVICE", STAGING_SERVICE.to_string()),
        ("PROMOTE_STAGING_READ_ROLE_ARN", staging_role()),
    ]
}

/// `settings` and what `run` needs to start the pipeline again for a release that waits.
fn waking(mut settings: Vec<(&'static str, String)>) -> Vec<(&'static str, String)> {
    settings.push(("PROMOTE_WAKE_PIPELINE", WAKE_PIPELINE.to_string()));
    settings.push(("PROMOTE_WAKE_ROLE_ARN", WAKE_ROLE.to_string()));
    settings
}

/// `ecr-promote run` with `settings`.
async fn run_with(pipeline: &Pipeline, settings: &[(&str, String)]) -> Outcome {
    let env: Vec<(&str, &str)> = settings.iter().map(|(n, v)| (*n, v.as_str())).collect();
    pipeline.run_with(&env).await
}

/// `ecr-promote promote` of RELEASE with `settings`.
async fn promote_with(pipeline: &Pipeline, settings: &[(&str, String)]) -> Outcome {
    let mut command = pipeline.promote_command();
    command.args(["--tag", RELEASE, "--commit", COMMIT]);
    for (name, value) in settings {
        command.env(name, value);
    }
    run(&mut command).await
}

/// Lets a deployment created just now pass a soak of `seconds`.
async fn soak_through(seconds: u64) {
    tokio::time::sleep(Duration::from_millis(seconds * 1000 + 200)).await;
}

#[tokio::test]
async fn a_release_staging_ran_for_its_soak_with_its_alarms_ok_is_promoted_and_the_evidence_shown()
{
    let pipeline = soak_world("0").await;
    let (image, service) = staged_and_running(&pipeline, None).await;
    service.alarm("api-5xx", "OK").await;
    let (deployment, rollout) = service.deployments().await.remove(0);
    assert_eq!(rollout, "COMPLETED", "moto completes the rollout");
    soak_through(1).await;
    let mut settings = soak_gate("1s");
    settings.push(("PROMOTE_GATE_STAGING_ALARMS", "api-5xx".to_string()));

    let mut dry_settings = settings.clone();
    dry_settings.push(("PROMOTE_DRY_RUN", "true".to_string()));
    let dry = promote_with(&pipeline, &dry_settings).await;

    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(
        dry.stdout
            .lines()
            .any(|l| l.starts_with("dry run: gate soak pass") && l.contains(&deployment)),
        "the dry run shows the verdict: {}",
        dry.stdout
    );
    pipeline.assert_nothing_recorded_or_written().await;

    let outcome = promote_with(&pipeline, &settings).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    pipeline
        .assert_in_production(REPOSITORY, RELEASE, &image)
        .await;
    let gates = recorded_gates(&pipeline).await;
    assert_eq!(gates.len(), 1, "{gates:?}");
    let gate = &gates[0];
    assert_eq!(
        (&gate["gate"], &gate["verdict"]),
        (&json!("soak"), &json!("pass"))
    );
    let evidence = &gate["soak"];
    assert_eq!(
        evidence["image"],
        format!("{}@{}", pipeline.source_repository(), image.digest())
    );
    assert_eq!(evidence["service"], "staging/shop-api");
    assert_eq!(evidence["soak"], "1s");
    assert_eq!(evidence["alarms"], json!({"api-5xx": "OK"}));
    let ran = &evidence["deployment"];
    assert_eq!(ran["id"], deployment.as_str());
    assert_eq!(ran["origin"], "current");
    assert_eq!(ran["state"], "COMPLETED");
    assert_eq!(
        (&ran["running_tasks"], &ran["failed_tasks"]),
        (&json!(2), &json!(0))
    );
    assert!(
        ran["created_at"].is_string() && ran["ran_for"].is_string(),
        "{ran}"
    );

    let shown = run(pipeline.ledger_command("show").arg(RELEASE)).await;

    assert_eq!(shown.code, 0, "{}", shown.stderr);
    assert!(
        shown.stdout.lines().any(|l| l.starts_with("gate")
            && l.contains("soak pass")
            && l.contains(&deployment)
            && l.contains("api-5xx OK")),
        "show prints the gate: {}",
        shown.stdout
    );
    let listed = run(pipeline.ledger_command("history").arg("--json")).await;
    let history: Value = serde_json::from_str(&listed.stdout).expect("history --json is JSON");
    assert_eq!(
        history[0]["gates"][0]["soak"]["deployment"]["id"],
        deployment.as_str()
    );
}

#[tokio::test]
async fn failed_tasks_in_staging_refuse_the_release_naming_them_and_write_nothing() {
    let pipeline = soak_world("1").await;
    let (_, service) = staged_and_running(&pipeline, None).await;
    let (deployment, _) = service.deployments().await.remove(0);

    let outcome = promote_with(&pipeline, &soak_gate("1s")).await;

    outcome.assert_failed_naming(
        3,
        &[
            RELEASE,
            "soak gate",
            &format!("1 task(s) failed in deployment {deployment}"),
            "--override-gate soak",
        ],
    );
    pipeline.assert_nothing_promoted(RELEASE).await;
}

#[tokio::test]
async fn an_alarm_in_alarm_refuses_and_an_override_promotes_recording_who_why_and_what() {
    let pipeline = soak_world("0").await;
    let (image, service) = staged_and_running(&pipeline, None).await;
    service.alarm("api-5xx", "ALARM").await;
    service.alarm("latency", "OK").await;
    let mut settings = soak_gate("0s");
    settings.push(("PROMOTE_GATE_STAGING_ALARMS", "api-5xx,latency".to_string()));

    let refused = promote_with(&pipeline, &settings).await;

    refused.assert_failed_naming(3, &["soak gate", "api-5xx is ALARM"]);
    assert!(
        !refused.error_line().contains("latency"),
        "{}",
        refused.stderr
    );
    pipeline.assert_nothing_promoted(RELEASE).await;

    settings.push(("PROMOTE_OVERRIDE_GATE", "soak".to_string()));
    settings.push((
        "PROMOTE_OVERRIDE_REASON",
        "INC-9: the alarm is the old release's".to_string(),
    ));
    let outcome = promote_with(&pipeline, &settings).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    pipeline
        .assert_in_production(REPOSITORY, RELEASE, &image)
        .await;
    let gate = recorded_gates(&pipeline).await.remove(0);
    assert_eq!(gate["verdict"], "overridden", "{gate}");
    assert_eq!(
        gate["soak"]["alarms"],
        json!({"api-5xx": "ALARM", "latency": "OK"})
    );
    let overridden = &gate["overridden"];
    assert_eq!(
        overridden["reason"],
        "INC-9: the alarm is the old release's"
    );
    assert!(
        overridden["refusal"]
            .as_str()
            .is_some_and(|r| r.contains("api-5xx is ALARM")),
        "{overridden}"
    );
    let audit = run(pipeline.ledger_command("audit").arg("--json")).await;
    let report: Value = serde_json::from_str(&audit.stdout).expect("audit --json is JSON");
    assert!(
        report["warnings"]
            .as_array()
            .is_some_and(|w| w.iter().any(|w| {
                w.as_str().is_some_and(|w| {
                    w.contains("promoted past the soak gate") && w.contains("INC-9")
                })
            })),
        "audit re-reads the override: {report}"
    );
}

#[tokio::test]
async fn a_release_not_soaked_yet_waits_hidden_with_a_schedule_and_a_later_run_promotes_it() {
    let pipeline = soak_world("0").await;
    let (image, _) = staged_and_running(&pipeline, None).await;
    pipeline
        .queue
        .send(&ReleaseEvent::published(RELEASE, COMMIT).message(Envelope::Raw))
        .await;
    let settings = soak_gate("8s");
    // `promote` of the release says when to try again, and writes nothing.
    let early = promote_with(&pipeline, &settings).await;
    early.assert_failed_naming(5, &[RELEASE, "waits for the soak gate until", "of 8s soak"]);
    let settings = waking(settings);

    let waiting = run_with(&pipeline, &settings).await;

    waiting.assert_failed_naming(
        5,
        &[
            RELEASE,
            "waits for its gates until",
            "scheduled to start again",
        ],
    );
    pipeline.assert_nothing_promoted(RELEASE).await;
    assert_eq!(
        pipeline.queue.counts().await,
        Counts {
            visible: 0,
            not_visible: 1
        },
        "the message is hidden, not handed back"
    );
    let schedules = schedules(&pipeline.world.moto).await;
    assert_eq!(schedules.len(), 1, "{schedules:?}");
    let (name, schedule) = &schedules[0];
    assert!(name.starts_with("ecr-promote-v1.2.0-"), "{name}");
    assert!(
        schedule["expression"]
            .as_str()
            .is_some_and(|e| e.starts_with("at(")),
        "{schedule}"
    );
    assert_eq!(schedule["timezone"], "UTC");
    assert_eq!(schedule["after"], "DELETE");
    assert_eq!(
        schedule["target"],
        "arn:aws:scheduler:::aws-sdk:codepipeline:startPipelineExecution"
    );
    assert_eq!(schedule["role"], WAKE_ROLE);
    assert_eq!(
        schedule["input"],
        json!({"Name": WAKE_PIPELINE}).to_string()
    );

    // The run the schedule starts: the message is back when the soak has ended.
    let back = pipeline
        .queue
        .counts_once_visible(Duration::from_secs(15))
        .await;
    assert_eq!(back.visible, 1, "the message came back");
    let promoted = run_with(&pipeline, &settings).await;

    assert_eq!(promoted.code, 0, "{}", promoted.stderr);
    pipeline
        .assert_in_production(REPOSITORY, RELEASE, &image)
        .await;
    pipeline.assert_deploy_file_for(RELEASE);
    assert_eq!(recorded_gates(&pipeline).await[0]["verdict"], "pass");
}

#[tokio::test]
async fn a_schedule_that_cannot_be_made_still_leaves_the_waiting_release_hidden_for_a_later_run() {
    let pipeline = soak_world("0").await;
    staged_and_running(&pipeline, None).await;
    pipeline
        .queue
        .send(&ReleaseEvent::published(RELEASE, COMMIT).message(Envelope::Raw))
        .await;
    // EventBridge Scheduler refuses the schedule (a role it may not pass, say).
    let front = FaultyFront::start(&pipeline.world.moto.url()).await;
    front.answer("POST", "/schedules/", 400, usize::MAX);
    let mut settings = waking(soak_gate("1h"));
    settings.push(("AWS_ENDPOINT_URL_SCHEDULER", front.url()));

    let waiting = run_with(&pipeline, &settings).await;

    waiting.assert_failed_naming(
        5,
        &[
            RELEASE,
            "waits for its gates until",
            "no schedule starts the pipeline",
        ],
    );
    assert!(front.faults_served() > 0, "CreateSchedule was tried");
    assert_eq!(schedules(&pipeline.world.moto).await, Vec::new());
    assert_eq!(
        pipeline.queue.counts().await,
        Counts {
            visible: 0,
            not_visible: 1
        },
        "the message is hidden for the run after the soak"
    );
    pipeline.assert_nothing_promoted(RELEASE).await;
}

/// A stand-in in front of moto answering ListServiceDeployments and DescribeServiceRevisions with
/// the staging service's history: each deployment (created this many hours ago, its status) of a
/// revision running `digest`; and the soak gate's settings (30m) with ECS's calls sent through it.
async fn with_history(
    pipeline: &Pipeline,
    deployments: &[(i64, &str, &str)],
) -> (FaultyFront, Vec<(&'static str, String)>) {
    let front = FaultyFront::start(&pipeline.world.moto.url()).await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let service = format!(
        "arn:aws:ecs:us-east-1:{STAGING_ACCOUNT}:service/{STAGING_CLUSTER}/{STAGING_SERVICE}"
    );
    let revision = |i: usize| format!("{service}/revision/{i}");
    let listed: Vec<Value> = deployments
        .iter()
        .enumerate()
        .map(|(i, (hours_ago, status, _))| {
            json!({
                "serviceDeploymentArn": format!("{service}/deployment/{i}"),
                "serviceArn": service,
                "createdAt": now - hours_ago * 3600,
                "startedAt": now - hours_ago * 3600,
                "finishedAt": now - hours_ago * 3600 + 300,
                "targetServiceRevisionArn": revision(i),
                "status": status,
            })
        })
        .collect();
    let revisions: Vec<Value> = deployments
        .iter()
        .enumerate()
        .map(|(i, (_, _, digest))| {
            json!({
                "serviceRevisionArn": revision(i),
                "containerImages": [{
                    "containerName": "api",
                    "imageDigest": digest,
                    "image": format!("{}:{}", pipeline.source_repository(), &digest[7..19]),
                }],
            })
        })
        .collect();
    front.answer_operation(
        "AmazonEC2ContainerServiceV20141113.ListServiceDeployments",
        json!({"serviceDeployments": listed}),
    );
    front.answer_operation(
        "AmazonEC2ContainerServiceV20141113.DescribeServiceRevisions",
        json!({"serviceRevisions": revisions, "failures": []}),
    );
    let mut settings = soak_gate("30m");
    settings.push(("AWS_ENDPOINT_URL_ECS", front.url()));
    (front, settings)
}

#[tokio::test]
async fn a_release_staging_has_moved_on_from_is_judged_on_the_service_s_history() {
    let pipeline = soak_world("0").await;
    let newer = Image::random(&[1_000], crate::support::Flavour::Oci);
    let (image, _) = staged_and_running(
        &pipeline,
        Some(&format!(
            "{}@{}",
            pipeline.source_repository(),
            newer.digest()
        )),
    )
    .await;
    // Rolled back 50 hours ago: refused, naming the rollback.
    let (_front, settings) = with_history(
        &pipeline,
        &[
            (50, "ROLLBACK_SUCCESSFUL", &image.digest()),
            (49, "SUCCESSFUL", &newer.digest()),
        ],
    )
    .await;
    let refused = promote_with(&pipeline, &settings).await;
    refused.assert_failed_naming(3, &["soak gate", "is ROLLBACK_SUCCESSFUL"]);
    pipeline.assert_nothing_promoted(RELEASE).await;

    // Ran 2 hours before the next deployment replaced it: passed on the history.
    let (_front, settings) = with_history(
        &pipeline,
        &[
            (50, "SUCCESSFUL", &image.digest()),
            (48, "SUCCESSFUL", &newer.digest()),
        ],
    )
    .await;
    let outcome = promote_with(&pipeline, &settings).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    pipeline
        .assert_in_production(REPOSITORY, RELEASE, &image)
        .await;
    let ran = &recorded_gates(&pipeline).await[0]["soak"]["deployment"];
    assert_eq!(ran["origin"], "history", "{ran}");
    assert_eq!(ran["state"], "SUCCESSFUL");
    assert_eq!(ran["ran_for"], "2h");
    assert!(
        ran["id"]
            .as_str()
            .is_some_and(|id| id.ends_with("/deployment/0")),
        "{ran}"
    );
}

#[tokio::test]
async fn a_redeploy_ignores_the_soak_gate_and_bad_soak_settings_name_their_variable() {
    let pipeline = Pipeline::start().await;
    pipeline.stage(COMMIT).await;

    let unnamed = promote_with(
        &pipeline,
        &[("PROMOTE_GATE_STAGING_SOAK", "30m".to_string())],
    )
    .await;
    unnamed.assert_failed_naming(2, &["PROMOTE_STAGING_CLUSTER"]);
    let mut bad = soak_gate("half an hour");
    bad.truncate(1);
    let malformed = promote_with(&pipeline, &bad).await;
    malformed.assert_failed_naming(2, &["PROMOTE_GATE_STAGING_SOAK", "half an hour"]);
    pipeline.assert_nothing_promoted(RELEASE).await;

    let promoted = pipeline.promote(RELEASE, COMMIT).await;
    assert_eq!(promoted.code, 0, "{}", promoted.stderr);
    // No staging service exists: a gated redeploy would fail on reading it.
    let mut redeploy = pipeline.redeploy_command(RELEASE);
    for (name, value) in soak_gate("30m") {
        redeploy.env(name, value);
    }
    let redeployed = run(&mut redeploy).await;
    assert_eq!(redeployed.code, 0, "{}", redeployed.stderr);
    assert_eq!(pipeline.deploys(RELEASE).await.len(), 2);
}

#[tokio::test]
async fn a_release_staging_rolled_back_is_refused_and_the_release_behind_it_is_promoted() {
    let pipeline = soak_world("0").await;
    let rolled_back = pipeline.stage(OTHER_COMMIT).await;
    let (image, _) = staged_and_running(&pipeline, None).await;
    let (_front, mut settings) = with_history(
        &pipeline,
        &[
            (30, "ROLLBACK_SUCCESSFUL", &rolled_back.digest()),
            (29, "SUCCESSFUL", &image.digest()),
        ],
    )
    .await;
    settings.retain(|(name, _)| *name != "PROMOTE_GATE_STAGING_SOAK");
    settings.push(("PROMOTE_GATE_STAGING_SOAK", "1s".to_string()));
    for (tag, commit, published) in [
        ("v1.1.0", OTHER_COMMIT, "2026-01-01T09:00:00Z"),
        (RELEASE, COMMIT, "2026-02-01T09:00:00Z"),
    ] {
        let release = ReleaseEvent::published(tag, commit).published_at(published);
        pipeline.queue.send(&release.message(Envelope::Raw)).await;
    }
    soak_through(1).await;

    let outcome = run_with(&pipeline, &settings).await;

    outcome.assert_failed_naming(3, &["v1.1.0", "soak gate", "is ROLLBACK_SUCCESSFUL"]);
    pipeline
        .assert_in_production(REPOSITORY, RELEASE, &image)
        .await;
    pipeline.assert_deploy_file_for(RELEASE);
    assert_eq!(pipeline.production_digest("v1.1.0").await, None);
    assert_eq!(
        pipeline
            .queue
            .counts_once_visible(Duration::from_secs(10))
            .await
            .visible,
        1,
        "the refused release's message is handed back for the next run"
    );
}

/// What `ecr-promote promote` of a release of `images` images asks of AWS, by service, with no gate
/// or with both gates on (the soak gate with one alarm): every AWS call goes through a FaultyFront
/// that counts them.
async fn calls_of_a_promotion(images: usize, gated: bool) -> String {
    let pipeline = soak_world("0").await;
    let names = ["api", "worker", "cron"];
    let names = &names[..images];
    let scans = StagingScans::open(&pipeline.world.moto, &staging_role()).await;
    let mut containers = Vec::new();
    let mut config = String::new();
    for name in names {
        let image = pipeline.stage_in(name, COMMIT).await;
        scans
            .scanned(name, COMMIT, &image, "COMPLETE", findings(&[]))
            .await;
        let source = pipeline.world.staging.reference(name);
        containers.push((*name, format!("{source}@{}", image.digest())));
        config.push_str(&format!(
            "[[container]]\nname = \"{name}\"\nsource = \"{source}\"\ntarget = \"{}\"\n",
            pipeline.world.production.reference(name)
        ));
    }
    let pinned: Vec<(&str, &str)> = containers.iter().map(|(n, i)| (*n, i.as_str())).collect();
    let service = StagingService::create(
        &pipeline.world.moto,
        &staging_role(),
        STAGING_CLUSTER,
        STAGING_SERVICE,
        &pinned,
    )
    .await;
    service.alarm("api-5xx", "OK").await;
    let path = pipeline.world.dir().join("release.toml");
    std::fs::write(&path, config).expect("write the release config");
    let front = FaultyFront::start(&pipeline.world.moto.url()).await;
    let mut command = pipeline.promote_command();
    command
        .args(["--tag", RELEASE, "--commit", COMMIT])
        .env_remove("PROMOTE_SOURCE_REPOSITORY")
        .env_remove("PROMOTE_TARGET_REPOSITORY")
        .env_remove("PROMOTE_CONTAINER_NAME")
        .env("PROMOTE_CONFIG", &path)
        .env("AWS_ENDPOINT_URL", front.url())
        .env("PROMOTE_SOURCE_ROLE_ARN", staging_role());
    if gated {
        command.env("PROMOTE_GATE_VULNERABILITIES", "HIGH");
        command.env("PROMOTE_GATE_STAGING_ALARMS", "api-5xx");
        for (name, value) in soak_gate("0s") {
            command.env(name, value);
        }
    }
    let outcome = run(&mut command).await;
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let mut by_service = std::collections::BTreeMap::<String, usize>::new();
    for call in front.aws_calls() {
        *by_service.entry(call).or_default() += 1;
    }
    by_service
        .iter()
        .map(|(call, n)| format!("{call} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// bench/gates.sh: the calls each gate adds to a promotion, for a release of one image and of
/// three. Not a test of time: the figures are counts of calls.
#[tokio::test]
#[ignore = "a measurement, run by bench/gates.sh"]
async fn calls_the_gates_add_to_a_promotion() {
    for images in [1, 3] {
        for gated in [false, true] {
            println!(
                "calls: {images} image(s), {}: {}",
                if gated {
                    "soak and vulnerability gates"
                } else {
                    "no gate"
                },
                calls_of_a_promotion(images, gated).await
            );
        }
    }
}
