//! The webhook function as Lambda runs it: the built `ecr-promote-webhook` under the Lambda
//! Runtime API emulator (`cargo lambda watch --only-lambda-apis`), invoked with the events API
//! Gateway and function URLs send, against moto's SQS, DynamoDB, Secrets Manager and CodePipeline.

use crate::support::{
    Counts, DELIVERY, Delivery, Envelope, FrontDoor, REPOSITORY, ReleaseEvent, SHAPES, Shape,
    WEBHOOK_SECRET, free_port, ping, run,
};
use serde_json::json;

const COMMIT: &str = "9c0ffee5b7d4c8a9f0e1d2c3b4a5f6e7d8c9b0a1";
const TAG: &str = "v2.3.0";

fn published() -> Delivery {
    Delivery::release(&ReleaseEvent::published(TAG, COMMIT))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_malformed_or_wrong_signature_is_401_and_nothing_is_queued_or_started() {
    let front = FrontDoor::start().await;
    for shape in SHAPES {
        let signed = published().shape(shape).signed(WEBHOOK_SECRET);
        let mut tampered = signed.clone();
        tampered.body = tampered
            .body
            .replace(COMMIT, "0000000000000000000000000000000000000000");
        for (what, delivery) in [
            ("unsigned", published().shape(shape)),
            (
                "signed with another secret",
                published().shape(shape).signed("guess"),
            ),
            ("tampered after signing", tampered),
            ("malformed signature", {
                let mut delivery = published().shape(shape);
                delivery.signature = Some("sha1=d03c".into());
                delivery
            }),
        ] {
            let answer = front.deliver(&delivery).await;
            assert_eq!(answer.status, 401, "{shape:?} {what}: {answer:?}");
            assert_eq!(answer.outcome(), "unauthorized");
        }
    }
    front.assert_nothing_queued_or_started().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pings_other_events_and_releases_not_for_production_are_2xx_with_the_reason() {
    let front = FrontDoor::start().await;
    let release = ReleaseEvent::published(TAG, COMMIT);
    for (delivery, says) in [
        (Delivery::of("ping", &ping().to_string()), "ping"),
        (
            Delivery::of("push", &json!({"ref": "refs/heads/master"}).to_string()),
            "push",
        ),
        (Delivery::release(&release.clone().draft()), "draft"),
        (
            Delivery::release(&release.clone().action("created")),
            "\"created\"",
        ),
        (
            Delivery::release(&release.clone().prerelease()),
            "prerelease",
        ),
    ] {
        let answer = front.deliver(&delivery.signed(WEBHOOK_SECRET)).await;
        assert_eq!(answer.status, 200, "{says}: {answer:?}");
        assert_eq!(answer.outcome(), "ignored");
        assert!(answer.detail().contains(says), "{says}: {answer:?}");
    }
    front.assert_nothing_queued_or_started().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn prereleases_and_other_actions_promote_when_the_settings_say_so() {
    let front = FrontDoor::start_with(&[
        ("PROMOTE_PRERELEASES", "true"),
        ("PROMOTE_RELEASE_ACTIONS", "published,released"),
    ])
    .await;
    let release = ReleaseEvent::published(TAG, COMMIT)
        .prerelease()
        .action("released");
    let answer = front
        .deliver(&Delivery::release(&release).signed(WEBHOOK_SECRET))
        .await;
    assert_eq!(answer.status, 202, "{answer:?}");
    front.assert_queued_and_started_once(TAG).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_deliveries_that_cannot_be_read_are_400_and_oversized_ones_413() {
    let front = FrontDoor::start().await;
    for (delivery, status, says) in [
        (
            Delivery::of("release", "{\"action\": \"published\", "),
            400,
            "not JSON",
        ),
        (
            Delivery::of("release", &json!({"action": "published"}).to_string()),
            400,
            "no release object",
        ),
        (published().id(""), 400, "X-GitHub-Delivery"),
        (
            Delivery::of("release", &{
                let mut payload = ReleaseEvent::published(TAG, COMMIT).payload();
                payload["release"]["body"] = json!("notes ".repeat(200_000));
                payload.to_string()
            }),
            413,
            "over SQS's",
        ),
    ] {
        let answer = front.deliver(&delivery.signed(WEBHOOK_SECRET)).await;
        assert_eq!(answer.status, status, "{says}: {answer:?}");
        assert!(answer.detail().contains(says), "{says}: {answer:?}");
    }
    front.assert_nothing_queued_or_started().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_published_release_in_every_shape_and_content_type_is_queued_and_starts_the_pipeline() {
    let front = FrontDoor::start().await;
    let mut tags = Vec::new();
    for shape in SHAPES {
        for form in [false, true] {
            let tag = format!("v1.{}.{}", shape as u8, form as u8);
            let id = format!("{}-{}", &DELIVERY[..30], tags.len());
            let mut delivery = Delivery::release(&ReleaseEvent::published(&tag, COMMIT))
                .shape(shape)
                .id(&id);
            if form {
                delivery = delivery.form_encoded();
            }
            let answer = front.deliver(&delivery.signed(WEBHOOK_SECRET)).await;
            assert_eq!(answer.status, 202, "{shape:?} form={form}: {answer:?}");
            assert_eq!(answer.body["release"], json!(tag));
            tags.push((id, tag));
        }
    }
    let executions = front.executions().await;
    let started: Vec<&str> = executions
        .iter()
        .map(|execution| execution.variables[0].1.as_str())
        .collect();
    let expected: Vec<&str> = tags.iter().map(|(_, tag)| tag.as_str()).collect();
    assert_eq!(
        started, expected,
        "one execution per release, in order, with its release_tag"
    );
    assert_eq!(
        front.queued().await.len(),
        tags.len(),
        "one message per release"
    );
    for ((id, tag), execution) in tags.iter().zip(&executions) {
        let claim = front
            .pipeline
            .table
            .item(&format!("delivery#{id}"))
            .await
            .unwrap_or_else(|| panic!("no claim for delivery {id}"));
        assert_eq!(claim["state"], json!("started"));
        assert_eq!(claim["release"], json!(tag));
        assert_eq!(claim["pipeline_execution_id"], json!(execution.id));
        assert!(claim["expires_at"].is_u64(), "{claim}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn while_the_secret_rotates_both_values_are_accepted() {
    let front = FrontDoor::start().await;
    // Rotated before the function first reads it: the old value is only there as AWSPREVIOUS.
    front.secret.rotate("whsec-new-1").await;
    for (n, secret) in [WEBHOOK_SECRET, "whsec-new-1"].into_iter().enumerate() {
        let answer = front
            .deliver(&published().id(&format!("rotation-{n}")).signed(secret))
            .await;
        assert_eq!(answer.status, 202, "signed with {secret}: {answer:?}");
    }
    // Rotated again while the function holds the values in its cache: a signature with the new
    // value makes it read them again.
    front.secret.rotate("whsec-new-2").await;
    let answer = front
        .deliver(&published().id("rotation-2").signed("whsec-new-2"))
        .await;
    assert_eq!(
        answer.status, 202,
        "signed with the newest value: {answer:?}"
    );
    let answer = front
        .deliver(&published().id("rotation-3").signed(WEBHOOK_SECRET))
        .await;
    assert_eq!(answer.status, 401, "two rotations ago: {answer:?}");
    assert_eq!(front.executions().await.len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redelivery_of_a_delivery_done_queues_and_starts_nothing() {
    let front = FrontDoor::start().await;
    let delivery = published().signed(WEBHOOK_SECRET);
    assert_eq!(front.deliver(&delivery).await.status, 202);
    let again = front.deliver(&delivery.clone().shape(Shape::RestApi)).await;
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(again.outcome(), "already received");
    front.assert_queued_and_started_once(TAG).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redelivery_completes_a_delivery_whose_pipeline_did_not_start() {
    let closed = format!("http://127.0.0.1:{}", free_port());
    let mut front = FrontDoor::start_with(&[("AWS_ENDPOINT_URL_CODEPIPELINE", &closed)]).await;
    let delivery = published().signed(WEBHOOK_SECRET);
    let answer = front.deliver(&delivery).await;
    assert_eq!(answer.status, 502, "{answer:?}");
    assert!(answer.detail().contains("did not start"), "{answer:?}");
    assert_eq!(
        front.queued().await.len(),
        1,
        "queued before the pipeline failed"
    );
    assert_eq!(front.executions().await, Vec::new());

    front.restart_with(&[]).await;
    let answer = front.deliver(&delivery).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    assert!(
        answer.detail().contains("queued by an earlier attempt"),
        "{answer:?}"
    );
    front.assert_queued_and_started_once(TAG).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_queue_is_5xx_and_starts_no_pipeline() {
    let closed = format!("http://127.0.0.1:{}", free_port());
    let mut front = FrontDoor::start_with(&[("AWS_ENDPOINT_URL_SQS", &closed)]).await;
    let delivery = published().signed(WEBHOOK_SECRET);
    let answer = front.deliver(&delivery).await;
    assert_eq!(answer.status, 502, "{answer:?}");
    assert!(
        answer.detail().contains("nothing was started"),
        "{answer:?}"
    );
    front.assert_nothing_queued_or_started().await;

    // Redelivered once the queue is back: done in full.
    front.restart_with(&[]).await;
    assert_eq!(front.deliver(&delivery).await.status, 202);
    front.assert_queued_and_started_once(TAG).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn from_a_signed_delivery_to_the_deploy_files() {
    let front = FrontDoor::start().await;
    let pipeline = &front.pipeline;
    let image = pipeline.stage(COMMIT).await;

    let answer = front
        .deliver(
            &published()
                .shape(Shape::RestApi)
                .form_encoded()
                .signed(WEBHOOK_SECRET),
        )
        .await;
    assert_eq!(answer.status, 202, "{answer:?}");
    front.assert_queued_and_started_once(TAG).await;

    // The started execution's CodeBuild step: `run`, checking the signature again.
    let mut command = pipeline.run_command();
    command.env("PROMOTE_WEBHOOK_SECRET", WEBHOOK_SECRET);
    let outcome = run(&mut command).await;
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);

    pipeline.assert_in_production(REPOSITORY, TAG, &image).await;
    let record = pipeline
        .table
        .item(TAG)
        .await
        .expect("the release is recorded");
    assert_eq!(record["commit"], json!(COMMIT));
    assert_eq!(record["deliveries"], json!([DELIVERY]));
    assert_eq!(
        pipeline.deploy_file("imagedefinitions.json"),
        Some(
            json!([{"name": crate::support::CONTAINER, "imageUri": pipeline.production_image(TAG)}])
        )
    );
    assert_eq!(
        pipeline.queue.counts().await,
        Counts {
            visible: 0,
            not_visible: 0
        },
        "the message is done"
    );
    let lines = front.function.log_lines();
    assert!(!lines.is_empty(), "the function logs JSON lines");
    for line in &lines {
        assert!(
            !line.to_string().contains(WEBHOOK_SECRET),
            "a log line carries the secret: {line}"
        );
    }
}

/// Whether SQS takes `c` in a message body (its SendMessage reference): #x9, #xA, #xD, #x20–#xD7FF,
/// #xE000–#xFFFD, #x10000–#x10FFFF. moto's SQS takes any character, so the tests check for it.
fn sqs_takes(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

#[tokio::test(flavor = "multi_thread")]
async fn release_notes_with_characters_sqs_refuses_are_queued_as_sqs_takes_them_and_promoted() {
    let front = FrontDoor::start().await;
    let pipeline = &front.pipeline;
    let image = pipeline.stage(COMMIT).await;
    let mut payload = ReleaseEvent::published(TAG, COMMIT).payload();
    payload["release"]["body"] = json!("Fixed \u{FFFE}reading\u{FFFF} of notes \u{1F680}");
    let delivery = Delivery::of("release", &payload.to_string())
        .shape(Shape::RestApi)
        .signed(WEBHOOK_SECRET);
    let answer = front.deliver(&delivery).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let queued = front.queued().await;
    assert_eq!(queued.len(), 1, "messages on the queue");
    let refused: Vec<char> = queued[0].chars().filter(|c| !sqs_takes(*c)).collect();
    assert_eq!(
        refused,
        Vec::<char>::new(),
        "characters SQS refuses in {}",
        queued[0]
    );

    // `run` checks the signature over the body GitHub signed, characters SQS refuses included.
    let mut command = pipeline.run_command();
    command.env("PROMOTE_WEBHOOK_SECRET", WEBHOOK_SECRET);
    let outcome = run(&mut command).await;
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    pipeline.assert_in_production(REPOSITORY, TAG, &image).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_event_however_malformed_gets_a_json_answer_and_one_log_line() {
    let front = FrontDoor::start().await;
    let mut events = Vec::new();
    for shape in SHAPES {
        let mut event = published()
            .shape(shape)
            .signed(WEBHOOK_SECRET)
            .lambda_event();
        event["isBase64Encoded"] = json!(true);
        event["body"] = json!("{\"action\": not base64 %%%");
        events.push((event, "not base64"));
    }
    events.push((json!({"hello": "world"}), "not an API Gateway"));
    events.push((json!([1, 2]), "not an API Gateway"));
    for (event, says) in &events {
        let answer = front.function.invoke(event).await;
        assert_eq!(answer.status, 400, "{event}: {answer:?}");
        assert_eq!(answer.outcome(), "malformed", "{event}: {answer:?}");
        assert!(answer.detail().contains(says), "{event}: {answer:?}");
    }
    let answered: Vec<_> = front
        .function
        .log_lines()
        .into_iter()
        .filter(|line| line.get("outcome").is_some())
        .collect();
    assert_eq!(
        answered.len(),
        events.len(),
        "one line per event: {answered:?}"
    );
    assert!(
        answered.iter().all(|line| line["status"] == json!(400)),
        "{answered:?}"
    );
    let log = front.function.logs();
    assert!(!log.contains("panicked"), "{log}");
    front.assert_nothing_queued_or_started().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stored_secret_with_whitespace_around_it_is_named_in_the_refusal() {
    let front = FrontDoor::start().await;
    // Stored from a file, with the newline no one typed into GitHub; twice, so that the previous value
    // (the one without) is gone too.
    let stored = format!("{WEBHOOK_SECRET}\n");
    front.secret.rotate(&stored).await;
    front.secret.rotate(&stored).await;

    let answer = front.deliver(&published().signed(WEBHOOK_SECRET)).await;
    assert_eq!(answer.status, 401, "{answer:?}");
    for named in [front.secret.arn.as_str(), r#"ends with "\n""#] {
        assert!(answer.detail().contains(named), "{named}: {answer:?}");
    }
    // `run` says the same of a delivery signed without the newline, whichever way it is given the secret.
    let body = published().body;
    for (variable, value, named) in [
        (
            "PROMOTE_WEBHOOK_SECRET_ARN",
            front.secret.arn.as_str(),
            front.secret.arn.as_str(),
        ),
        (
            "PROMOTE_WEBHOOK_SECRET",
            stored.as_str(),
            "PROMOTE_WEBHOOK_SECRET",
        ),
    ] {
        // A message for each run: the one a run rejects stays invisible for a while.
        front
            .pipeline
            .queue
            .send(&Envelope::ApiGatewayV1.wrap_signed("release", &body, WEBHOOK_SECRET))
            .await;
        let mut command = front.pipeline.run_command();
        command.env(variable, value);
        let outcome = run(&mut command).await;
        let rejection = outcome
            .stderr
            .lines()
            .find(|line| line.contains("rejected: bad signature"))
            .unwrap_or_else(|| panic!("{variable}: no rejection in {}", outcome.stderr));
        for named in [named, "ends with", r"\n"] {
            assert!(
                rejection.contains(named),
                "{variable}: {named}: {rejection}"
            );
        }
    }

    // The value is used as stored, as GitHub uses the value as typed.
    let answer = front
        .deliver(&published().id("as-stored").signed(&stored))
        .await;
    assert_eq!(answer.status, 202, "{answer:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_value_rotated_just_after_the_function_read_the_secret_is_accepted() {
    let front = FrontDoor::start().await;
    let answer = front.deliver(&published().signed(WEBHOOK_SECRET)).await;
    assert_eq!(
        answer.status, 202,
        "the function reads the secret: {answer:?}"
    );
    // Rotated at once, well within a second of that read.
    front.secret.rotate("whsec-rotated").await;
    let answer = front
        .deliver(&published().id("rotated").signed("whsec-rotated"))
        .await;
    assert_eq!(answer.status, 202, "signed with the new value: {answer:?}");
}
