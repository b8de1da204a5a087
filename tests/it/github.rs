//! GitHub deployments: each deploy shown on GitHub as a deployment of the release's commit, with its status.
//!
//! No GitHub server runs here, so GitHub is the stand-in of `support::GithubApi`
//! (tests/it/support/github_standin.py): it answers as GitHub does, records every request, and checks each
//! one against GitHub's published REST description (npm @octokit/openapi), so a wrong path, field or enum
//! value fails these tests instead of passing against their own idea of the API. The token lives in a
//! Secrets Manager secret in moto, as in production.

use std::time::Duration;

use ecr_promote::github::{Deployments, Settings, State};
use ecr_promote::ledger::Ledger;
use serde_json::{Value, json};

use crate::support::{
    COMMIT, Envelope, GITHUB_REPOSITORY, GithubApi, OTHER_COMMIT, Outcome, PROMOTE_BUILD_ARN,
    Pipeline, RELEASE, ROLLBACK_BUILD_ARN, ReleaseEvent, TABLE, WebhookSecret, app_private_key,
    free_port, run,
};

const TOKEN: &str = "github_pat_11ABCDEFG0123456789_standin";
const ENVIRONMENT_URL: &str = "https://shop.example.com";

/// PROMOTE_BUILD_ARN's page in the CodeBuild console.
const PROMOTE_BUILD_LOG: &str = "https://us-east-1.console.aws.amazon.com/codesuite/codebuild/222222222222/projects/\
     promote/build/promote%3A0f3a8e5c-6b1d-4f2a-9c7e-5d4b3a2f1e0d/?region=us-east-1";

/// A pipeline, the GitHub stand-in, and the token's secret.
struct Stand {
    pipeline: Pipeline,
    github: GithubApi,
    secret: WebhookSecret,
}

impl Stand {
    async fn start() -> Stand {
        Stand::around(GithubApi::start(TOKEN), TOKEN).await
    }

    /// A pipeline, GitHub as `github` starts it, and `secret` in the secret.
    async fn around(github: impl Future<Output = GithubApi>, secret: &str) -> Stand {
        let (pipeline, github) = tokio::join!(Pipeline::start(), github);
        let secret =
            WebhookSecret::create(&pipeline.world.moto, "github-deployments-token", secret).await;
        Stand {
            pipeline,
            github,
            secret,
        }
    }

    /// `command` with GitHub deployments on, reaching GitHub at `api`.
    fn reporting_to<'c>(
        &self,
        command: &'c mut tokio::process::Command,
        api: &str,
    ) -> &'c mut tokio::process::Command {
        command
            .env("PROMOTE_GITHUB_TOKEN_SECRET_ARN", &self.secret.arn)
            .env("PROMOTE_GITHUB_API_URL", api)
            .env("PROMOTE_GITHUB_ENVIRONMENT_URL", ENVIRONMENT_URL)
    }

    /// The ledger, and what a command that learns an outcome reports it through, as the promotion build.
    async fn reporter(&self) -> (Ledger, Deployments) {
        let config = self.pipeline.world.moto.sdk_config();
        let settings = Settings {
            token_secret_arn: self.secret.arn.clone(),
            api_url: self.github.url().parse().expect("a URL"),
            environment: "production".into(),
            environment_url: None,
            repository: None,
            build_arn: Some(PROMOTE_BUILD_ARN.into()),
            app: None,
        };
        (
            Ledger::new(&config, TABLE),
            Deployments::new(&config, Some(settings), Duration::from_secs(10)),
        )
    }

    /// `ecr-promote promote` of RELEASE (COMMIT) by the pipeline's build, reporting to the stand-in.
    async fn promote(&self) -> Outcome {
        self.promote_release(RELEASE, COMMIT).await
    }

    /// `ecr-promote promote` of `tag` (`commit`) by the pipeline's build, reporting to the stand-in; the
    /// repository named by setting, as a release that did not come from a webhook needs.
    async fn promote_release(&self, tag: &str, commit: &str) -> Outcome {
        let mut command = self.pipeline.promote_command();
        command
            .args(["--tag", tag, "--commit", commit])
            .env("CODEBUILD_BUILD_ARN", PROMOTE_BUILD_ARN)
            .env("PROMOTE_GITHUB_REPOSITORY", GITHUB_REPOSITORY);
        run(self.reporting_to(&mut command, &self.github.url())).await
    }

    /// `ecr-promote redeploy RELEASE` by the rollback build, reporting to GitHub at `api`; the repository set
    /// as for [`Stand::promote`] (a release from a webhook records its own, which comes first).
    async fn redeploy(&self, api: &str) -> Outcome {
        let mut command = self.pipeline.redeploy_command(RELEASE);
        command
            .env("CODEBUILD_BUILD_ARN", ROLLBACK_BUILD_ARN)
            .env("PROMOTE_GITHUB_REPOSITORY", GITHUB_REPOSITORY);
        run(self.reporting_to(&mut command, api)).await
    }
}

/// The GitHub mark recorded with each deploy of `tag`, in order.
async fn marks(pipeline: &Pipeline, tag: &str) -> Vec<Value> {
    pipeline
        .deploys(tag)
        .await
        .iter()
        .map(|deploy| deploy["github"].clone())
        .collect()
}

fn path(request: &Value) -> &str {
    request["path"].as_str().expect("a path")
}

#[tokio::test]
async fn a_promotion_creates_a_production_deployment_of_the_commit_in_progress_and_a_redeploy_another()
 {
    let stand = Stand::start().await;
    let image = stand.pipeline.stage(COMMIT).await;
    let release = ReleaseEvent::published(RELEASE, COMMIT);
    stand
        .pipeline
        .queue
        .send(&release.message(Envelope::Raw))
        .await;

    // From the queue: the repository is the webhook payload's.
    let mut command = stand.pipeline.run_command();
    command.env("CODEBUILD_BUILD_ARN", PROMOTE_BUILD_ARN);
    let outcome = run(stand.reporting_to(&mut command, &stand.github.url())).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let requests = stand.github.valid_requests().await;
    assert_eq!(requests.len(), 2, "{requests:?}");
    let deployments = format!("/repos/{GITHUB_REPOSITORY}/deployments");
    assert_eq!(path(&requests[0]), deployments);
    let deployment = &requests[0]["body"];
    assert_eq!(
        deployment["ref"], COMMIT,
        "the commit, not the tag: {deployment}"
    );
    assert_eq!(deployment["environment"], "production");
    assert_eq!(deployment["production_environment"], true);
    assert_eq!(deployment["auto_merge"], false);
    assert_eq!(deployment["required_contexts"], json!([]));
    assert_eq!(deployment["task"], "deploy");
    assert_eq!(deployment["payload"]["tag"], RELEASE);
    assert_eq!(
        deployment["payload"]["images"],
        json!([{"image": stand.pipeline.production_image(RELEASE), "digest": image.digest()}])
    );
    let mark = &marks(&stand.pipeline, RELEASE).await[0];
    let id = mark["deployment_id"]
        .as_u64()
        .expect("the deployment id is recorded");
    assert_eq!(path(&requests[1]), format!("{deployments}/{id}/statuses"));
    let status = &requests[1]["body"];
    assert_eq!(status["state"], "in_progress");
    assert_eq!(status["log_url"], PROMOTE_BUILD_LOG);
    assert_eq!(status["environment_url"], ENVIRONMENT_URL);
    assert_eq!(status["auto_inactive"], false);
    assert_eq!(mark["repository"], GITHUB_REPOSITORY);
    assert_eq!(mark["posted"], "in_progress");
    assert_eq!(mark.get("owed"), None, "{mark}");

    let outcome = stand.redeploy(&stand.github.url()).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let requests = stand.github.valid_requests().await;
    assert_eq!(requests.len(), 4, "{requests:?}");
    assert_eq!(path(&requests[2]), deployments);
    assert_eq!(requests[2]["body"]["ref"], COMMIT);
    let marks = marks(&stand.pipeline, RELEASE).await;
    let second = marks[1]["deployment_id"].as_u64().expect("recorded");
    assert_ne!(second, id, "a redeploy is a deployment of its own");
    assert_eq!(
        path(&requests[3]),
        format!("{deployments}/{second}/statuses")
    );
    assert_eq!(requests[3]["body"]["state"], "in_progress");
    assert!(
        requests[3]["body"]["log_url"]
            .as_str()
            .is_some_and(|url| url.contains("build/promote%3A7c1d2e3f")),
        "the rollback build's log: {}",
        requests[3]
    );
}

#[tokio::test]
async fn github_failing_or_unreachable_never_fails_a_deploy_and_what_it_was_not_told_is_told_next_time()
 {
    let stand = Stand::start().await;
    let image = stand.pipeline.stage(COMMIT).await;
    stand.github.answer_with(Some(503)).await;

    let outcome = stand.promote().await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    stand
        .pipeline
        .assert_in_production(crate::support::REPOSITORY, RELEASE, &image)
        .await;
    stand.pipeline.assert_deploy_file_for(RELEASE);
    assert!(
        outcome.stderr.contains("GitHub not told") && outcome.stderr.contains("503"),
        "logged with GitHub's answer: {}",
        outcome.stderr
    );
    assert_eq!(
        marks(&stand.pipeline, RELEASE).await,
        [json!({"repository": GITHUB_REPOSITORY, "owed": "in_progress"})]
    );

    // GitHub unreachable: nothing listens on this port.
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let outcome = stand.redeploy(&nowhere).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert!(
        outcome.stderr.contains("cannot reach GitHub")
            && outcome.stderr.contains("PROMOTE_GITHUB_API_URL"),
        "says what to check: {}",
        outcome.stderr
    );
    assert!(
        outcome.stderr.contains("not tried again"),
        "the deploy's own status is not tried once the owed one found GitHub unreachable: {}",
        outcome.stderr
    );
    let before = stand.github.requests().await.len();

    // GitHub answers again: the next deploy tells it what the first two could not, then its own.
    stand.github.answer_with(None).await;
    let outcome = stand.redeploy(&stand.github.url()).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let requests = stand.github.valid_requests_after(before).await;
    let states: Vec<&str> = requests
        .iter()
        .filter_map(|r| r["body"]["state"].as_str())
        .collect();
    assert_eq!(states, ["in_progress"; 3], "{requests:?}");
    let marks = marks(&stand.pipeline, RELEASE).await;
    assert_eq!(marks.len(), 3);
    let mut ids = Vec::new();
    for mark in &marks {
        assert_eq!(mark["posted"], "in_progress", "{mark}");
        assert_eq!(mark.get("owed"), None, "nothing owed any more: {mark}");
        ids.push(mark["deployment_id"].as_u64().expect("a deployment"));
    }
    ids.dedup();
    assert_eq!(ids.len(), 3, "one deployment per deploy: {marks:?}");
}

#[tokio::test]
async fn without_a_token_secret_github_is_never_called() {
    let stand = Stand::start().await;
    stand.pipeline.stage(COMMIT).await;
    stand.pipeline.stage(OTHER_COMMIT).await;

    let outcome = run(stand
        .pipeline
        .promote_command()
        .args(["--tag", RELEASE, "--commit", COMMIT])
        .env("PROMOTE_GITHUB_API_URL", stand.github.url())
        .env("PROMOTE_GITHUB_REPOSITORY", GITHUB_REPOSITORY))
    .await;
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    // "off", as a template passes it when no secret is given.
    let outcome = run(stand
        .pipeline
        .promote_command()
        .args(["--tag", "v2.0.0", "--commit", OTHER_COMMIT])
        .env("PROMOTE_GITHUB_TOKEN_SECRET_ARN", "off")
        .env("PROMOTE_GITHUB_API_URL", stand.github.url())
        .env("PROMOTE_GITHUB_REPOSITORY", GITHUB_REPOSITORY))
    .await;
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);

    assert_eq!(stand.github.requests().await, Vec::<Value>::new());
    for tag in [RELEASE, "v2.0.0"] {
        assert_eq!(marks(&stand.pipeline, tag).await, [Value::Null], "{tag}");
    }
    assert!(!outcome.stderr.contains("GitHub"), "{}", outcome.stderr);
}

#[tokio::test]
async fn the_token_never_appears_in_any_output() {
    let stand = Stand::start().await;
    stand.pipeline.stage(COMMIT).await;
    let mut outcomes = Vec::new();
    for (format, answer) in [("text", None), ("json", Some(401)), ("text", Some(500))] {
        stand.github.answer_with(answer).await;
        let mut command = stand.pipeline.promote_command();
        command
            .args(["--tag", RELEASE, "--commit", COMMIT])
            .env("PROMOTE_GITHUB_REPOSITORY", GITHUB_REPOSITORY)
            .env("PROMOTE_LOG_FORMAT", format)
            .env("RUST_LOG", "debug");
        outcomes.push(run(stand.reporting_to(&mut command, &stand.github.url())).await);
    }

    let requests = stand.github.requests().await;
    assert!(
        requests.iter().all(|r| r["authorized"] == true),
        "the token was sent each time: {requests:?}"
    );
    for outcome in &outcomes {
        assert_eq!(outcome.code, 0, "{}", outcome.stderr);
        for text in [&outcome.stdout, &outcome.stderr] {
            assert!(!text.contains(TOKEN), "the token is in the output:\n{text}");
            assert!(
                !text.contains("11ABCDEFG"),
                "part of the token is in the output:\n{text}"
            );
        }
    }
    assert!(
        outcomes[1].stderr.contains("401") && outcomes[1].stderr.contains("fine-grained token"),
        "a refused token says what to fix: {}",
        outcomes[1].stderr
    );
}

/// What learns a deploy's outcome later calls `Deployments::report` with it: the outcome reaches the deploy's
/// own GitHub deployment; one GitHub could not be told is owed and told on the next report; and a success
/// marks the deployment that succeeded before it `inactive` (GitHub's `auto_inactive` leaves production
/// environments alone).
#[tokio::test]
async fn an_outcome_reported_later_reaches_its_deployment_and_a_success_retires_the_one_before() {
    let stand = Stand::start().await;
    stand.pipeline.stage(COMMIT).await;
    stand.pipeline.stage(OTHER_COMMIT).await;
    for (tag, commit) in [(RELEASE, COMMIT), ("v2.0.0", OTHER_COMMIT)] {
        let outcome = stand.promote_release(tag, commit).await;
        assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    }
    let (ledger, github) = stand.reporter().await;
    let report = async |tag: &str, state: State| {
        let record = ledger.recorded(tag).await.expect("recorded");
        github
            .report(&ledger, &record, &record.deploys[0], state)
            .await;
    };
    let first = marks(&stand.pipeline, RELEASE).await[0]["deployment_id"].clone();
    let second = marks(&stand.pipeline, "v2.0.0").await[0]["deployment_id"].clone();
    let before = stand.github.requests().await.len();

    report(RELEASE, State::Success).await;
    stand.github.answer_with(Some(502)).await;
    report("v2.0.0", State::Success).await;

    assert_eq!(
        marks(&stand.pipeline, RELEASE).await[0]["posted"],
        "success"
    );
    let owed = &marks(&stand.pipeline, "v2.0.0").await[0];
    assert_eq!(
        (&owed["posted"], &owed["owed"]),
        (&json!("in_progress"), &json!("success")),
        "{owed}"
    );

    stand.github.answer_with(None).await;
    report("v2.0.0", State::Success).await;

    let told: Vec<(String, Value)> = stand
        .github
        .valid_requests_after(before)
        .await
        .iter()
        .filter(|r| r["body"]["state"].is_string())
        .map(|r| {
            (
                r["body"]["state"].as_str().unwrap().to_owned(),
                json!(path(r)),
            )
        })
        .collect();
    let statuses = |id: &Value| {
        json!(format!(
            "/repos/{GITHUB_REPOSITORY}/deployments/{id}/statuses"
        ))
    };
    assert_eq!(
        told,
        [
            ("success".to_owned(), statuses(&first)),
            ("success".to_owned(), statuses(&second)),
            ("success".to_owned(), statuses(&second)),
            ("inactive".to_owned(), statuses(&first)),
        ],
        "the 502'd success, then the success told, then the one before retired"
    );
    assert_eq!(
        marks(&stand.pipeline, RELEASE).await[0]["posted"],
        "inactive"
    );
    let done = &marks(&stand.pipeline, "v2.0.0").await[0];
    assert_eq!(
        (&done["posted"], done.get("owed")),
        (&json!("success"), None),
        "{done}"
    );

    // The same outcome again, as an event delivered twice reports it: GitHub already shows it.
    let told = stand.github.requests().await.len();
    report("v2.0.0", State::Success).await;
    assert_eq!(stand.github.requests().await.len(), told);
}

/// A deploy replaced before its outcome was known (the next release shipped while ECS still rolled it out):
/// the later deploy's success marks it `inactive` too, so GitHub never shows it in progress for good; a deploy
/// made after the one that succeeded, still in progress, is left as it is.
#[tokio::test]
async fn a_success_retires_a_deploy_it_superseded_in_progress_but_not_a_later_one() {
    let stand = Stand::start().await;
    let releases = [
        (RELEASE, COMMIT),
        ("v2.0.0", OTHER_COMMIT),
        ("v3.0.0", "5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d"),
    ];
    for (tag, commit) in releases {
        stand.pipeline.stage(commit).await;
        let outcome = stand.promote_release(tag, commit).await;
        assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    }
    let (ledger, github) = stand.reporter().await;
    let record = ledger.recorded("v2.0.0").await.expect("recorded");

    github
        .report(&ledger, &record, &record.deploys[0], State::Success)
        .await;

    let posted = async |tag: &str| marks(&stand.pipeline, tag).await[0]["posted"].clone();
    assert_eq!(posted(RELEASE).await, "inactive", "superseded in progress");
    assert_eq!(posted("v2.0.0").await, "success");
    assert_eq!(posted("v3.0.0").await, "in_progress", "deployed after it");
}

/// A GitHub App instead of a token: the secret holds the App's private key; the run signs a JWT with it, finds
/// the App's installation on the repository, and takes an installation token limited to that repository and
/// to writing deployments, which the deployment calls then carry. The stand-in checks the JWT's signature
/// against the key, its issuer and its lifetime.
#[tokio::test]
async fn a_github_app_s_key_is_exchanged_for_an_installation_token_limited_to_deployments() {
    const APP_ID: u64 = 1_234_567;
    let pem = app_private_key();
    let stand = Stand::around(GithubApi::start_for_app(TOKEN, APP_ID, &pem), &pem).await;
    stand.pipeline.stage(COMMIT).await;

    let mut command = stand.pipeline.promote_command();
    command
        .args(["--tag", RELEASE, "--commit", COMMIT])
        .env("PROMOTE_GITHUB_REPOSITORY", GITHUB_REPOSITORY)
        .env("PROMOTE_GITHUB_APP_ID", APP_ID.to_string())
        .env("RUST_LOG", "debug");
    let outcome = run(stand.reporting_to(&mut command, &stand.github.url())).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let requests = stand.github.valid_requests().await;
    let calls: Vec<String> = requests
        .iter()
        .map(|r| format!("{} {}", r["method"].as_str().unwrap(), path(r)))
        .collect();
    let id = marks(&stand.pipeline, RELEASE).await[0]["deployment_id"].clone();
    assert_eq!(
        calls,
        [
            format!("GET /repos/{GITHUB_REPOSITORY}/installation"),
            "POST /app/installations/4242/access_tokens".to_owned(),
            format!("POST /repos/{GITHUB_REPOSITORY}/deployments"),
            format!("POST /repos/{GITHUB_REPOSITORY}/deployments/{id}/statuses"),
        ]
    );
    assert_eq!(
        requests[1]["body"],
        json!({"repositories": ["shop"], "permissions": {"deployments": "write"}})
    );
    let key_line = pem.lines().nth(5).expect("a line of the key's body");
    for text in [&outcome.stdout, &outcome.stderr] {
        assert!(
            !text.contains(TOKEN),
            "the installation token is in the output:\n{text}"
        );
        assert!(
            !text.contains(key_line),
            "the App's key is in the output:\n{text}"
        );
    }
}
