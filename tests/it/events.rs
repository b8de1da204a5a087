//! Events people subscribe to, read back from a real subscription: an EventBridge bus in moto with
//! a rule on the source `ecr-promote` whose target is a queue. One event per thing that happened,
//! nothing published without a bus, and a bus that cannot be reached never fails a promotion.

use serde_json::Value;

use crate::support::{
    COMMIT, CONTAINER, Ecs, EventSubscription, OTHER_COMMIT, Pipeline, RELEASE, run,
};

/// The kinds of `events`, in order.
fn kinds(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["detail"]["kind"].as_str().expect("a kind"))
        .collect()
}

#[tokio::test]
async fn a_promotion_publishes_promoted_then_deployed_and_a_refusal_names_its_check() {
    let pipeline = Pipeline::start().await;
    let subscription = EventSubscription::create(&pipeline.world.moto, "releases").await;
    let image = pipeline.stage(COMMIT).await;
    pipeline.stage(OTHER_COMMIT).await;

    let outcome = run(pipeline
        .promote_command()
        .args(["--tag", RELEASE, "--commit", COMMIT])
        .env("PROMOTE_EVENT_BUS", &subscription.bus))
    .await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert!(
        outcome.stderr.contains("published event"),
        "{}",
        outcome.stderr
    );
    let events = subscription.events().await;
    assert_eq!(
        kinds(&events),
        ["release_promoted", "release_deployed"],
        "{events:?}"
    );
    for event in &events {
        assert_eq!(event["source"], "ecr-promote", "{event}");
        let detail = &event["detail"];
        assert_eq!(detail["schema"], "ecr-promote.event/1", "{event}");
        assert_eq!(detail["release"]["tag"], RELEASE, "{event}");
        assert_eq!(detail["release"]["commit"], COMMIT, "{event}");
        let images = detail["images"].as_array().expect("images");
        assert_eq!(images[0]["digest"], image.digest(), "{event}");
        assert_eq!(
            images[0]["image"],
            pipeline.production_image(RELEASE),
            "{event}"
        );
    }
    assert_eq!(events[0]["detail-type"], "Release Promoted");
    assert_eq!(
        events[0]["detail"]["images"][0]["source"],
        format!("{}@{}", pipeline.source_repository(), image.digest())
    );
    assert_eq!(events[1]["detail-type"], "Release Deployed");
    assert_eq!(events[1]["detail"]["deploy"], "promote");
    assert_eq!(
        events[1]["detail"]["sequence"],
        pipeline.deploys(RELEASE).await[0]["sequence"]
    );

    // The same tag for another commit: refused, and said so.
    let refused = run(pipeline
        .promote_command()
        .args(["--tag", RELEASE, "--commit", OTHER_COMMIT])
        .env("PROMOTE_EVENT_BUS", &subscription.bus))
    .await;

    assert_eq!(refused.code, 3, "{}", refused.stderr);
    let events = subscription.events().await;
    assert_eq!(events.len(), 3, "{events:?}");
    let refusal = &events[2];
    assert_eq!(refusal["detail-type"], "Release Refused");
    assert_eq!(refusal["detail"]["check"], "tag");
    assert!(
        refusal["detail"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("never moves")),
        "{refusal}"
    );
}

#[tokio::test]
async fn without_a_bus_nothing_is_published_and_a_bus_that_fails_never_fails_the_promotion() {
    let pipeline = Pipeline::start().await;
    let subscription = EventSubscription::create(&pipeline.world.moto, "releases").await;
    let image = pipeline.stage(COMMIT).await;

    let outcome = run(pipeline
        .promote_command()
        .args(["--tag", RELEASE, "--commit", COMMIT])
        .env("PROMOTE_EVENT_BUS", "no-such-bus"))
    .await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    pipeline
        .assert_in_production(crate::support::REPOSITORY, RELEASE, &image)
        .await;
    assert!(
        outcome.stderr.contains("event not published") && outcome.stderr.contains("no-such-bus"),
        "the failure is logged, naming the bus: {}",
        outcome.stderr
    );

    let outcome = run(pipeline
        .redeploy_command(RELEASE)
        .env("PROMOTE_EVENT_BUS", "off"))
    .await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert!(
        !outcome.stderr.contains("published event")
            && !outcome.stderr.contains("event not published"),
        "\"off\" is no bus: no event is even tried: {}",
        outcome.stderr
    );
    assert_eq!(subscription.events().await, Vec::<Value>::new());
}

#[tokio::test]
async fn drift_found_by_status_is_published_with_its_findings() {
    let pipeline = Pipeline::start().await;
    let subscription = EventSubscription::create(&pipeline.world.moto, "releases").await;
    pipeline.stage(COMMIT).await;
    let promoted = pipeline.promote(RELEASE, COMMIT).await;
    assert_eq!(promoted.code, 0, "{}", promoted.stderr);
    // The service runs the staging image, not the release.
    let staging_image = format!("{}:{COMMIT}", pipeline.source_repository());
    let ecs = Ecs::create(&pipeline.world.moto, "production").await;
    let revision = ecs
        .register("shop-api", &[(CONTAINER, &staging_image)])
        .await;
    ecs.create_service("shop-api", &revision).await;

    let outcome = run(pipeline
        .ledger_command("status")
        .env("PROMOTE_CLUSTER", "production")
        .env("PROMOTE_SERVICE", "shop-api")
        .env("PROMOTE_EVENT_BUS", &subscription.bus))
    .await;

    assert_eq!(outcome.code, 3, "{}", outcome.stderr);
    let events = subscription.events().await;
    assert_eq!(kinds(&events), ["drift_found"], "{events:?}");
    let detail = &events[0]["detail"];
    assert_eq!(events[0]["detail-type"], "Drift Found");
    assert_eq!(detail["found_by"], "status");
    assert_eq!(detail["service"], "production/shop-api");
    assert!(
        detail["findings"][0]
            .as_str()
            .is_some_and(|f| f.contains(&staging_image)),
        "{detail}"
    );
}
