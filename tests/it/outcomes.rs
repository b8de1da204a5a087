//! How each deploy ended in production ECS, learned by `settle` (and `status`) from ECS's deployment
//! events on the outcomes queue and from the service's deployments in moto's ECS.
//!
//! moto's ECS reports a deployment COMPLETED once its running count reaches the desired count (else
//! IN_PROGRESS), never FAILED, and sends no events: failures and rollbacks come as ECS-shaped events
//! put on EventBridge, delivered to the outcomes queue by the same rule the production stack makes.

use serde_json::Value;

use crate::support::{
    COMMIT, CONTAINER, Ecs, EventSubscription, GITHUB_REPOSITORY, GithubApi, OTHER_COMMIT,
    OutcomesQueue, Pipeline, WebhookSecret, next_second, run,
};

const CLUSTER: &str = "production";
const SERVICE: &str = "shop-api";
const FAMILY: &str = "shop-api";

/// The production world of these tests: the pipeline, its ECS cluster, the outcomes queue and a
/// subscription to ecr-promote's events.
struct Production {
    pipeline: Pipeline,
    ecs: Ecs,
    outcomes: OutcomesQueue,
    subscription: EventSubscription,
}

impl Production {
    async fn start() -> Production {
        let pipeline = Pipeline::start().await;
        let ecs = Ecs::create(&pipeline.world.moto, CLUSTER).await;
        let outcomes = OutcomesQueue::create(&pipeline.world.moto, CLUSTER, SERVICE).await;
        let subscription = EventSubscription::create(&pipeline.world.moto, "releases").await;
        Production {
            pipeline,
            ecs,
            outcomes,
            subscription,
        }
    }

    /// Promotes `tag` of `commit` (staged first) and returns the image its deploy file names.
    async fn promote(&self, tag: &str, commit: &str) -> String {
        self.pipeline.stage(commit).await;
        let outcome = self.pipeline.promote(tag, commit).await;
        assert_eq!(outcome.code, 0, "promote {tag}: {}", outcome.stderr);
        self.pipeline.imagedefinitions(tag)[0]["imageUri"]
            .as_str()
            .expect("an imageUri")
            .to_string()
    }

    /// ECS deploys `image`: a new deployment of the service on a new revision, which completes or
    /// stays in progress; returns its id.
    async fn ecs_deploys(&self, image: &str, completes: bool) -> String {
        let revision = self.ecs.register(FAMILY, &[(CONTAINER, image)]).await;
        if completes {
            self.ecs.create_completed_service(SERVICE, &revision).await;
        } else {
            self.ecs.create_service(SERVICE, &revision).await;
        }
        self.ecs.primary_deployment(SERVICE).await
    }

    /// `ecr-promote <subcommand>` for the production service, with outcomes and events on.
    fn command(&self, subcommand: &str) -> tokio::process::Command {
        let mut command = self.pipeline.ledger_command(subcommand);
        command
            .env("PROMOTE_CLUSTER", CLUSTER)
            .env("PROMOTE_SERVICE", SERVICE)
            .env("PROMOTE_OUTCOMES_QUEUE_URL", &self.outcomes.queue.url)
            .env("PROMOTE_EVENT_BUS", &self.subscription.bus);
        command
    }

    async fn settle(&self) -> String {
        let outcome = run(&mut self.command("settle")).await;
        assert_eq!(outcome.code, 0, "settle: {}", outcome.stderr);
        outcome.stdout
    }

    /// The outcome recorded on the last deploy of `tag`.
    async fn outcome(&self, tag: &str) -> Value {
        self.pipeline.deploys(tag).await.last().expect("a deploy")["outcome"].clone()
    }

    /// The events ecr-promote published about deploy outcomes.
    async fn outcome_events(&self) -> Vec<Value> {
        self.subscription
            .events()
            .await
            .into_iter()
            .filter(|e| {
                e["detail-type"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("Deploy ")
            })
            .collect()
    }
}

#[tokio::test]
async fn a_completed_rollout_is_recorded_on_its_deploy_with_the_deployment_id_and_announced_once() {
    let production = Production::start().await;
    let image = production.promote("v1.0.0", COMMIT).await;
    let deployment = production.ecs_deploys(&image, true).await;
    production
        .outcomes
        .ecs_says(
            "SERVICE_DEPLOYMENT_COMPLETED",
            &deployment,
            &format!("ECS deployment {deployment} completed."),
        )
        .await;

    let said = production.settle().await;

    assert!(
        said.contains("release v1.0.0 deploy") && said.contains("completed"),
        "{said}"
    );
    let outcome = production.outcome("v1.0.0").await;
    assert_eq!(outcome["state"], "completed", "{outcome}");
    assert_eq!(outcome["deployment_id"], deployment.as_str(), "{outcome}");
    assert!(outcome["at"].is_string(), "{outcome}");
    let counts = production.outcomes.queue.counts().await;
    assert_eq!(
        (counts.visible, counts.not_visible),
        (0, 0),
        "the event is used up"
    );
    let events = production.outcome_events().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["detail-type"], "Deploy Completed");
    let detail = &events[0]["detail"];
    assert_eq!(detail["schema"], "ecr-promote.event/1");
    assert_eq!(detail["kind"], "deploy_completed");
    assert_eq!(detail["release"]["tag"], "v1.0.0");
    assert_eq!(detail["release"]["commit"], COMMIT);
    assert_eq!(detail["deploy"], "promote");
    assert_eq!(detail["deployment_id"], deployment.as_str());
    assert_eq!(
        detail["sequence"],
        production.pipeline.deploys("v1.0.0").await[0]["sequence"]
    );

    // The same event again (ECS sends at least once): nothing new, nothing announced twice.
    production
        .outcomes
        .ecs_says("SERVICE_DEPLOYMENT_COMPLETED", &deployment, "again")
        .await;
    let said = production.settle().await;
    assert!(said.contains("no new deploy outcome"), "{said}");
    assert_eq!(production.outcome_events().await.len(), 1);

    // history and show say it, as text and as JSON.
    let history = run(&mut production.pipeline.ledger_command("history")).await;
    let row = history
        .stdout
        .lines()
        .find(|l| l.starts_with("v1.0.0"))
        .unwrap_or_else(|| panic!("{}", history.stdout));
    assert!(row.contains(" completed "), "{}", history.stdout);
    assert!(history.stdout.lines().next().unwrap().contains("OUTCOME"));
    let listed = run(production.pipeline.ledger_command("history").arg("--json")).await;
    let listed: Value = serde_json::from_str(&listed.stdout).expect("JSON");
    assert_eq!(
        listed[0]["deploys"][0]["outcome"]["deployment_id"],
        deployment.as_str()
    );
    let shown = run(production.pipeline.ledger_command("show").arg("v1.0.0")).await;
    assert!(
        shown.stdout.contains("outcome: completed") && shown.stdout.contains(&deployment),
        "{}",
        shown.stdout
    );
    let shown = run(production
        .pipeline
        .ledger_command("show")
        .args(["v1.0.0", "--json"]))
    .await;
    let shown: Value = serde_json::from_str(&shown.stdout).expect("JSON");
    assert_eq!(shown["deploys"][0]["outcome"]["state"], "completed");
}

#[tokio::test]
async fn a_rolled_back_release_is_recorded_named_by_status_and_skipped_by_the_empty_queue_redeploy()
{
    let production = Production::start().await;
    let earlier = production.promote("v1.0.0", OTHER_COMMIT).await;
    production.ecs_deploys(&earlier, true).await;
    production.settle().await;
    next_second().await;
    let failing = production.promote("v1.1.0", COMMIT).await;
    let failed = production.ecs_deploys(&failing, false).await;
    // Seen rolling out: the ECS deployment is tied to v1.1.0's deploy while ECS still lists it.
    production.settle().await;
    assert_eq!(production.outcome("v1.1.0").await["state"], "in_progress");
    // The circuit breaker trips: ECS rolls back to v1.0.0's revision and says the deployment failed.
    production.ecs_deploys(&earlier, true).await;
    let reason = "ECS deployment circuit breaker: task failed to start.";
    production
        .outcomes
        .ecs_says("SERVICE_DEPLOYMENT_FAILED", &failed, reason)
        .await;

    let said = production.settle().await;

    assert!(said.contains("rolled back to v1.0.0"), "{said}");
    let outcome = production.outcome("v1.1.0").await;
    assert_eq!(outcome["state"], "rolled_back", "{outcome}");
    assert_eq!(outcome["rolled_back_to"], "v1.0.0", "{outcome}");
    assert_eq!(outcome["deployment_id"], failed.as_str(), "{outcome}");
    assert_eq!(outcome["reason"], reason, "{outcome}");
    let events = production.outcome_events().await;
    let failure = events
        .iter()
        .find(|e| e["detail-type"] == "Deploy Failed")
        .unwrap_or_else(|| panic!("no Deploy Failed: {events:?}"));
    let detail = &failure["detail"];
    assert_eq!(detail["kind"], "deploy_failed");
    assert_eq!(detail["release"]["tag"], "v1.1.0");
    assert_eq!(detail["rolled_back_to"], "v1.0.0");
    assert_eq!(detail["reason"], reason);
    assert_eq!(detail["deployment_id"], failed.as_str());
    // The rollback deployment is no deploy of ecr-promote's: v1.0.0's own outcome is untouched.
    assert_eq!(production.outcome("v1.0.0").await["state"], "completed");

    let status = run(&mut production.command("status")).await;

    assert_eq!(status.code, 0, "{}\n{}", status.stdout, status.stderr);
    let note = status
        .stdout
        .lines()
        .find(|l| l.starts_with("note: release v1.1.0"))
        .unwrap_or_else(|| panic!("status does not name the failed release: {}", status.stdout));
    assert!(
        note.contains("rolled back to v1.0.0") && note.contains("passes it over"),
        "{note}"
    );
    assert!(
        !status.stdout.contains("rolled back outside"),
        "{}",
        status.stdout
    );

    let rerun = production
        .pipeline
        .run_with(&[("PROMOTE_REDEPLOY_LATEST_WHEN_EMPTY", "true")])
        .await;

    assert_eq!(rerun.code, 0, "{}", rerun.stderr);
    production.pipeline.assert_deploy_file_for("v1.0.0");
    assert_eq!(
        production.pipeline.deploys("v1.1.0").await.len(),
        1,
        "v1.1.0 is not deployed again"
    );
}

#[tokio::test]
async fn a_lost_event_is_made_good_by_status_which_only_reads_without_outcomes() {
    let production = Production::start().await;
    let image = production.promote("v1.0.0", COMMIT).await;
    let deployment = production.ecs_deploys(&image, true).await;

    let mut read_only = production.command("status");
    read_only.env_remove("PROMOTE_OUTCOMES_QUEUE_URL");
    let status = run(&mut read_only).await;

    assert_eq!(status.code, 0, "{}", status.stderr);
    assert_eq!(
        production.outcome("v1.0.0").await,
        Value::Null,
        "status without outcomes writes nothing"
    );

    // ECS's COMPLETED event never came; status sees the rollout completed and records it.
    let status = run(&mut production.command("status")).await;

    assert_eq!(status.code, 0, "{}", status.stderr);
    let outcome = production.outcome("v1.0.0").await;
    assert_eq!(outcome["state"], "completed", "{outcome}");
    assert_eq!(outcome["deployment_id"], deployment.as_str(), "{outcome}");
    assert!(
        status.stdout.contains("last deploy completed"),
        "{}",
        status.stdout
    );
    assert_eq!(
        production.outcome_events().await.len(),
        1,
        "announced as settle does"
    );
}

#[tokio::test]
async fn audit_makes_good_a_lost_event_as_status_does() {
    let production = Production::start().await;
    let image = production.promote("v1.0.0", COMMIT).await;
    let deployment = production.ecs_deploys(&image, true).await;

    let audit = run(&mut production.command("audit")).await;

    assert_eq!(audit.code, 0, "{}", audit.stderr);
    let outcome = production.outcome("v1.0.0").await;
    assert_eq!(outcome["state"], "completed", "{outcome}");
    assert_eq!(outcome["deployment_id"], deployment.as_str(), "{outcome}");
}

#[tokio::test]
async fn a_settle_that_fails_hands_its_events_back_for_the_next_run() {
    let production = Production::start().await;
    let image = production.promote("v1.0.0", COMMIT).await;
    let deployment = production.ecs_deploys(&image, false).await;
    production
        .outcomes
        .ecs_says(
            "SERVICE_DEPLOYMENT_FAILED",
            &deployment,
            "ECS deployment circuit breaker: task failed to start.",
        )
        .await;

    let failed = run(production
        .command("settle")
        .env("PROMOTE_SERVICE", "shop-web"))
    .await;

    failed.assert_failed_naming(1, &["shop-web", "PROMOTE_SERVICE"]);
    let elsewhere = format!("{}-gone", production.outcomes.queue.url);
    let unread = run(production
        .command("settle")
        .env("PROMOTE_OUTCOMES_QUEUE_URL", &elsewhere))
    .await;
    unread.assert_failed_naming(1, &[&elsewhere, "PROMOTE_OUTCOMES_QUEUE_URL"]);
    let counts = production.outcomes.queue.counts().await;
    assert_eq!(
        (counts.visible, counts.not_visible),
        (1, 0),
        "the event is back on the queue"
    );
    assert_eq!(production.outcome("v1.0.0").await, Value::Null);

    production.settle().await;

    assert_eq!(production.outcome("v1.0.0").await["state"], "failed");
    assert_eq!(production.outcomes.queue.counts().await.visible, 0);
}

#[tokio::test]
async fn a_deploy_replaced_while_still_rolling_out_is_recorded_superseded_when_the_next_completes()
{
    let production = Production::start().await;
    let first = production.promote("v1.0.0", OTHER_COMMIT).await;
    let replaced = production.ecs_deploys(&first, false).await;
    production.settle().await;
    assert_eq!(production.outcome("v1.0.0").await["state"], "in_progress");
    // The next release ships before ECS finished v1.0.0's rollout, and completes.
    next_second().await;
    let second = production.promote("v1.1.0", COMMIT).await;
    production.ecs_deploys(&second, true).await;

    let said = production.settle().await;

    assert!(
        said.contains("release v1.0.0") && said.contains("superseded"),
        "{said}"
    );
    let outcome = production.outcome("v1.0.0").await;
    assert_eq!(outcome["state"], "superseded", "{outcome}");
    assert_eq!(outcome["deployment_id"], replaced.as_str(), "{outcome}");
    assert_eq!(production.outcome("v1.1.0").await["state"], "completed");
    let told: Vec<Value> = production.outcome_events().await;
    assert_eq!(
        told.iter()
            .map(|e| e["detail-type"].clone())
            .collect::<Vec<_>>(),
        ["Deploy Completed"],
        "a superseded deploy is not announced"
    );
}

/// GitHub deployments on, against the stand-in of tests/it/github.rs (which says what it is and why).
struct OnGithub {
    api: GithubApi,
    token: WebhookSecret,
}

impl OnGithub {
    const TOKEN: &str = "github_pat_11ABCDEFG0123456789_outcomes";

    async fn start(production: &Production) -> OnGithub {
        let token = WebhookSecret::create(
            &production.pipeline.world.moto,
            "github-deployments-token",
            Self::TOKEN,
        )
        .await;
        OnGithub {
            api: GithubApi::start(Self::TOKEN).await,
            token,
        }
    }

    fn reporting<'c>(
        &self,
        command: &'c mut tokio::process::Command,
    ) -> &'c mut tokio::process::Command {
        command
            .env("PROMOTE_GITHUB_TOKEN_SECRET_ARN", &self.token.arn)
            .env("PROMOTE_GITHUB_API_URL", self.api.url())
            .env("PROMOTE_GITHUB_REPOSITORY", GITHUB_REPOSITORY)
    }

    /// Promotes `tag` of `commit` with GitHub deployments on; returns the image its deploy file names.
    async fn promote(&self, production: &Production, tag: &str, commit: &str) -> String {
        production.pipeline.stage(commit).await;
        let mut command = production.pipeline.promote_command();
        command.args(["--tag", tag, "--commit", commit]);
        let outcome = run(self.reporting(&mut command)).await;
        assert_eq!(outcome.code, 0, "promote {tag}: {}", outcome.stderr);
        production.pipeline.imagedefinitions(tag)[0]["imageUri"]
            .as_str()
            .expect("an imageUri")
            .to_string()
    }

    /// The states GitHub was sent for the deployment of `tag`'s last deploy, in order.
    async fn states(&self, production: &Production, tag: &str) -> Vec<String> {
        let deploys = production.pipeline.deploys(tag).await;
        let id = deploys.last().expect("a deploy")["github"]["deployment_id"]
            .as_u64()
            .expect("GitHub's deployment id is recorded");
        let statuses = format!("/repos/{GITHUB_REPOSITORY}/deployments/{id}/statuses");
        self.api
            .valid_requests()
            .await
            .iter()
            .filter(|request| request["path"] == statuses.as_str())
            .map(|request| request["body"]["state"].as_str().unwrap_or("").to_owned())
            .collect()
    }
}

#[tokio::test]
async fn a_settled_outcome_moves_the_deploy_s_github_deployment_to_success_or_failure() {
    let production = Production::start().await;
    let github = OnGithub::start(&production).await;
    let image = github.promote(&production, "v1.0.0", COMMIT).await;
    let completed = production.ecs_deploys(&image, true).await;
    production
        .outcomes
        .ecs_says("SERVICE_DEPLOYMENT_COMPLETED", &completed, "completed.")
        .await;

    let settled = run(github.reporting(&mut production.command("settle"))).await;

    assert_eq!(settled.code, 0, "settle: {}", settled.stderr);
    assert_eq!(
        github.states(&production, "v1.0.0").await,
        ["in_progress", "success"]
    );
    let mark = &production.pipeline.deploys("v1.0.0").await[0]["github"];
    assert_eq!(mark["posted"], "success", "{mark}");

    // The next release's rollout fails and stays on its revision: a failure on GitHub.
    next_second().await;
    let image = github.promote(&production, "v1.1.0", OTHER_COMMIT).await;
    let failed = production.ecs_deploys(&image, false).await;
    production
        .outcomes
        .ecs_says(
            "SERVICE_DEPLOYMENT_FAILED",
            &failed,
            "ECS deployment circuit breaker: task failed to start.",
        )
        .await;

    let settled = run(github.reporting(&mut production.command("settle"))).await;

    assert_eq!(settled.code, 0, "settle: {}", settled.stderr);
    assert_eq!(production.outcome("v1.1.0").await["state"], "failed");
    assert_eq!(
        github.states(&production, "v1.1.0").await,
        ["in_progress", "failure"]
    );
}
