//! What a person reads back: `history` lists every release newest first in aligned columns (and as
//! JSON), and `show` prints one release with its deploys.

use std::time::{Duration, UNIX_EPOCH};

use crate::support::{
    COMMIT, PIPELINE_INITIATOR, PROMOTE_BUILD_ARN, Pipeline, ROLLBACK_BUILD_ARN,
    ROLLBACK_INITIATOR, next_second, run,
};
use futures_util::StreamExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// One release of the history test: what is written to the table for it.
struct Recorded {
    tag: String,
    commit: String,
    digest: String,
    promoted_at: String,
}

/// `count` releases promoted over a couple of years, numbered in another order than their times,
/// with tags of several lengths.
fn releases(count: u64) -> Vec<Recorded> {
    let start = UNIX_EPOCH + Duration::from_secs(1_704_067_200); // 2024-01-01T00:00:00Z
    (0..count)
        .map(|number| {
            // 7919 is prime to count, so every release gets a slot of its own.
            let slot = number * 7919 % count;
            let promoted_at = start + Duration::from_secs(slot * 53_117);
            let tag = if number % 7 == 0 {
                format!("v{}.{}.0-rc.{}", number / 100, number % 100, number % 3)
            } else {
                format!("v{}.{}.0", number / 100, number % 100)
            };
            Recorded {
                tag,
                commit: hex::encode(Sha256::digest(format!("commit {number}")))[..40].to_string(),
                digest: format!(
                    "sha256:{}",
                    hex::encode(Sha256::digest(format!("image {number}")))
                ),
                promoted_at: humantime::format_rfc3339_seconds(promoted_at).to_string(),
            }
        })
        .collect()
}

#[tokio::test]
async fn history_lists_every_release_newest_first_in_aligned_columns() {
    let pipeline = Pipeline::start().await;
    let mut recorded = releases(300);
    futures_util::stream::iter(&recorded)
        .for_each_concurrent(16, |release| async {
            pipeline
                .table
                .put(&[
                    ("tag_name", &release.tag),
                    ("commit", &release.commit),
                    ("digest", &release.digest),
                    ("source_image", &format!("staging/api@{}", release.digest)),
                    ("target_image", &format!("production/api:{}", release.tag)),
                    ("promoted_at", &release.promoted_at),
                ])
                .await
        })
        .await;
    recorded.sort_by(|a, b| b.promoted_at.cmp(&a.promoted_at));

    let outcome = run(&mut pipeline.ledger_command("history")).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let lines: Vec<&str> = outcome.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1 + recorded.len(),
        "a header and every release"
    );
    let header = lines[0];
    let column = |name: &str| {
        header
            .find(name)
            .unwrap_or_else(|| panic!("no {name} column: {header}"))
    };
    for (line, release) in lines[1..].iter().zip(&recorded) {
        let starts_with = |name: &str, cell: &str| {
            let at = column(name);
            assert!(
                line.get(at..).is_some_and(|rest| rest.starts_with(cell))
                    && line.as_bytes()[at - 1] == b' ',
                "{name} {cell} under its header:\n{header}\n{line}"
            );
        };
        assert!(
            line.starts_with(&format!("{} ", release.tag)),
            "newest first: expected {} ({}):\n{line}",
            release.tag,
            release.promoted_at
        );
        starts_with("COMMIT", &release.commit[..7]);
        starts_with("DIGEST", &release.digest["sha256:".len()..][..12]);
        starts_with("PROMOTED_AT", &release.promoted_at);
        starts_with("LAST_DEPLOYED_AT", "-");
        starts_with("PRERELEASE", "no");
    }

    let outcome = run(pipeline.ledger_command("history").arg("--json")).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let listed: Value = serde_json::from_str(&outcome.stdout)
        .unwrap_or_else(|error| panic!("history --json is not JSON: {error}"));
    let listed = listed.as_array().expect("an array of releases");
    assert_eq!(listed.len(), recorded.len());
    for (entry, release) in listed.iter().zip(&recorded) {
        assert_eq!(
            (&entry["tag_name"], &entry["commit"], &entry["digest"]),
            (
                &json!(release.tag),
                &json!(release.commit),
                &json!(release.digest)
            ),
            "newest first, promoted at {}",
            release.promoted_at
        );
    }
}

#[tokio::test]
async fn show_prints_a_release_with_its_deploys() {
    let pipeline = Pipeline::start().await;
    let image = pipeline.stage(COMMIT).await;
    let outcome = pipeline.promote("v1.0.0", COMMIT).await;
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    next_second().await;
    let outcome = pipeline.roll_back_to("v1.0.0").await;
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let recorded = pipeline.recorded("v1.0.0").await;
    let history = recorded["deploys"].as_array().expect("deploys").clone();
    assert_eq!(history.len(), 2, "{recorded}");

    let outcome = run(pipeline.ledger_command("show").arg("v1.0.0")).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let source_image = format!("{}@{}", pipeline.source_repository(), image.digest());
    for shown in [
        "v1.0.0",
        COMMIT,
        &image.digest(),
        &pipeline.production_image("v1.0.0"),
        &source_image,
    ] {
        assert!(
            outcome.stdout.contains(shown),
            "shows {shown}: {}",
            outcome.stdout
        );
    }
    let (_, deploy_lines) = outcome
        .stdout
        .split_once("deploys:")
        .unwrap_or_else(|| panic!("no deploys section: {}", outcome.stdout));
    let deploy_lines: Vec<&str> = deploy_lines.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(deploy_lines.len(), 2, "{}", outcome.stdout);
    for (line, (deploy, kind, initiator, build)) in deploy_lines.iter().zip([
        (
            &history[0],
            "promote",
            PIPELINE_INITIATOR,
            PROMOTE_BUILD_ARN,
        ),
        (
            &history[1],
            "redeploy",
            ROLLBACK_INITIATOR,
            ROLLBACK_BUILD_ARN,
        ),
    ]) {
        let deployed_at = deploy["deployed_at"].as_str().expect("deployed_at");
        for said in [deployed_at, kind, initiator, build] {
            assert!(line.contains(said), "deploy line names {said}: {line}");
        }
    }

    let outcome = run(pipeline.ledger_command("show").args(["v1.0.0", "--json"])).await;

    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let shown: Value = serde_json::from_str(&outcome.stdout)
        .unwrap_or_else(|error| panic!("show --json is not JSON: {error}"));
    for field in [
        "tag_name",
        "commit",
        "digest",
        "source_image",
        "target_image",
        "promoted_at",
        "build_arn",
        "deploys",
    ] {
        assert_eq!(shown[field], recorded[field], "{field}");
    }
}
