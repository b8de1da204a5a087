//! The queue side of a run: what happens to a message whose hand-back SQS refuses.

use std::time::Duration;

use crate::support::{
    COMMIT, Counts, Envelope, FaultyFront, Pipeline, RELEASE, REPOSITORY, ReleaseEvent,
    VISIBILITY_SECONDS, run,
};

/// A hand-back that SQS refuses for a message (`ChangeMessageVisibilityBatch` succeeds as a call but
/// fails the message's entry) is logged as a warning naming the message, and loses nothing: the
/// message reappears once its visibility timeout runs out, and the next run promotes its release.
///
/// The refusal comes from a stand-in, `FaultyFront` answering the call itself: moto fails an entry
/// only for a message no longer on the queue (it accepts every receipt handle a message ever had,
/// so a stale one succeeds), and a deleted message cannot show that nothing is lost.
#[tokio::test(flavor = "multi_thread")]
async fn a_message_whose_hand_back_is_refused_is_named_and_promoted_by_the_next_run() {
    let pipeline = Pipeline::start().await;
    let image = pipeline.stage(COMMIT).await;
    let message_id = pipeline
        .queue
        .send(&ReleaseEvent::published(RELEASE, COMMIT).message(Envelope::Raw))
        .await;
    let front = FaultyFront::start(&pipeline.world.moto.url()).await;
    front.fail_visibility_changes_once();

    // A dry run hands every message it took back at its end.
    let dry = run(pipeline
        .run_command()
        .arg("--dry-run")
        .env("AWS_ENDPOINT_URL_SQS", front.url()))
    .await;

    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert_eq!(front.faults_served(), 1, "the hand-back was refused");
    let warned = dry.stderr.lines().any(|line| {
        line.contains("could not change a message's visibility")
            && line.contains(&message_id)
            && line.contains("ReceiptHandleIsInvalid")
    });
    assert!(warned, "a warning names the message:\n{}", dry.stderr);
    // Counted without receiving it: a receive here would bring it nearer the dead-letter queue.
    let counts = pipeline
        .queue
        .counts_once_visible(Duration::from_secs(VISIBILITY_SECONDS + 5))
        .await;
    assert_eq!(
        counts,
        Counts {
            visible: 1,
            not_visible: 0
        },
        "the message is back once its visibility timeout ran out"
    );

    let rerun = run(&mut pipeline.run_command()).await;

    assert_eq!(rerun.code, 0, "{}", rerun.stderr);
    pipeline
        .assert_in_production(REPOSITORY, RELEASE, &image)
        .await;
    pipeline.assert_queue_empty().await;
}
