//! Crash anywhere: a CodeBuild step can be stopped at any instant (a timeout, a spot reclaim, a
//! person pressing Stop). `ecr-promote run` is killed with SIGKILL at points along a promotion, and
//! a fresh run on the same queue finishes the job: the tag on the staging digest, one ledger item,
//! the message gone and the deploy file naming the release.

use std::process::Stdio;
use std::time::Duration;

use crate::support::{
    COMMIT, Flavour, Image, Outcome, Pipeline, RELEASE, REPOSITORY, VISIBILITY_SECONDS, run,
    wait_until,
};

/// Large enough that the copy takes a while to kill in the middle of.
const LARGE_LAYERS: [usize; 3] = [20 << 20, 20 << 20, 20 << 20];
/// How long a point along the promotion may take to be reached.
const REACH_LIMIT: Duration = Duration::from_secs(120);

/// A pipeline with a large staged image and its release waiting on the queue.
async fn pending_large_release() -> (Pipeline, Image) {
    let pipeline = Pipeline::start().await;
    let image = Image::random(&LARGE_LAYERS, Flavour::Oci);
    pipeline
        .world
        .staging
        .push_image(REPOSITORY, COMMIT, &image)
        .await;
    pipeline.queue_release(RELEASE, COMMIT).await;
    (pipeline, image)
}

/// Starts `ecr-promote run`, waits until `reached` holds, and kills it with SIGKILL. Returns
/// whether the kill found it still running (false: it finished first).
async fn kill_when(
    pipeline: &Pipeline,
    point: &str,
    mut reached: impl AsyncFnMut() -> bool,
) -> bool {
    let log = pipeline.world.dir().join("killed-run.log");
    let out = std::fs::File::create(&log).expect("create the killed run's log");
    let err = out.try_clone().expect("share the log");
    let mut child = pipeline
        .run_command()
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .expect("start ecr-promote run");
    let mut exited = None;
    wait_until(point, REACH_LIMIT, async || {
        exited = child.try_wait().expect("poll the run");
        exited.is_some() || reached().await
    })
    .await;
    let running = exited.is_none() && child.try_wait().expect("poll the run").is_none();
    child.kill().await.expect("kill the run");
    println!(
        "killed run ({}): --- log ---\n{}------------",
        if running {
            format!("killed {point}")
        } else {
            format!("exited with {exited:?} before the kill")
        },
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    running
}

/// Runs again once the killed run's message is visible again (if the killed run had not deleted
/// it), and checks that the release ends promoted exactly once and deployed.
async fn assert_rerun_converges(pipeline: &Pipeline, image: &Image) {
    let left = pipeline
        .queue
        .counts_once_visible(Duration::from_secs(VISIBILITY_SECONDS + 10))
        .await;

    let rerun: Outcome = run(&mut pipeline.run_command()).await;

    match left.visible {
        1 => assert_eq!(rerun.code, 0, "the rerun promotes: {}", rerun.stderr),
        0 => assert_eq!(
            rerun.code, 4,
            "the killed run deleted the message: nothing left to promote: {}",
            rerun.stderr
        ),
        _ => panic!("the queue holds {left:?}"),
    }
    pipeline
        .assert_in_production(REPOSITORY, RELEASE, image)
        .await;
    let items = pipeline.table.items().await;
    assert_eq!(items.len(), 1, "one ledger item: {items:?}");
    assert_eq!(items[0]["tag_name"], RELEASE, "{items:?}");
    assert_eq!(items[0]["state"], "done", "the claim completed: {items:?}");
    assert_eq!(items[0]["digest"], image.digest().as_str(), "{items:?}");
    assert_eq!(items[0]["commit"], COMMIT, "{items:?}");
    pipeline.assert_queue_empty().await;
    let written = pipeline
        .deploy_file("imagedefinitions.json")
        .expect("imagedefinitions.json was written, by the killed run or the rerun");
    assert_eq!(
        written[0]["imageUri"],
        format!("{}:{RELEASE}", pipeline.target_repository()),
        "{written}"
    );
}

/// Killed after claiming the tag, mid-copy: the claim stays pending, keeps another commit out of the
/// tag (refused before any registry write), and the rerun with the same commit resumes it.
#[tokio::test(flavor = "multi_thread")]
async fn killed_mid_copy_a_rerun_finishes_the_promotion() {
    let (pipeline, image) = pending_large_release().await;
    let production = &pipeline.world.production;

    let killed = kill_when(&pipeline, "the first blob upload", async || {
        production
            .requests()
            .iter()
            .any(|request| request.is_blob_upload())
    })
    .await;

    assert!(killed, "the copy of 60 MiB was still going on");
    assert_eq!(
        production.manifest_digest(REPOSITORY, RELEASE).await,
        None,
        "killed mid-copy, no tag yet"
    );
    let claim = pipeline.table.item(RELEASE).await.expect("the claim");
    assert_eq!(
        (&claim["state"], &claim["commit"]),
        (&"pending".into(), &COMMIT.into()),
        "{claim}"
    );

    let shown = run(pipeline.ledger_command("show").arg(RELEASE)).await;
    assert!(
        shown.code == 0 && shown.stdout.contains("pending"),
        "show says the release is pending: {shown:?}"
    );
    let other = "0123456789abcdef0123456789abcdef01234567";
    pipeline.stage(other).await;
    let writes = production.writes().len();
    let refused = run(pipeline
        .promote_command()
        .args(["--tag", RELEASE, "--commit", other]))
    .await;
    refused.assert_failed_naming(3, &["claimed by a promotion"]);
    assert_eq!(
        production.writes().len(),
        writes,
        "refused before any registry write"
    );

    assert_rerun_converges(&pipeline, &image).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_after_the_manifest_put_a_rerun_records_the_release() {
    let (pipeline, image) = pending_large_release().await;
    let production = &pipeline.world.production;

    kill_when(&pipeline, "the release tag in production", async || {
        production
            .manifest_digest(REPOSITORY, RELEASE)
            .await
            .is_some()
    })
    .await;

    assert_rerun_converges(&pipeline, &image).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_after_the_ledger_write_a_rerun_deploys_without_a_second_record() {
    let (pipeline, image) = pending_large_release().await;
    let table = &pipeline.table;

    kill_when(&pipeline, "the release in the ledger", async || {
        table.item(RELEASE).await.is_some()
    })
    .await;

    assert_rerun_converges(&pipeline, &image).await;
}
