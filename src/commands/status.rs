//! `ecr-promote status`: the release each container of the production service runs, checked, as a table for
//! people or JSON for scripts. Drift is exit 3, once the report is printed.

use std::fmt::Write as _;

use anyhow::Result;

use crate::cli::StatusArgs;
use crate::history::{columns, short};
use crate::ledger::Ledger;
use crate::status::{Check, Ecs, MatchedBy, StatusReport};

pub async fn status(args: StatusArgs, stall: std::time::Duration) -> Result<()> {
    let (cluster, service) = args.settling.service.names()?;
    let table = args.ledger.table()?;
    // Status reads production only: no source role.
    let aws = crate::aws::Aws::load(stall, None).await?;
    let connector = args.endpoints.connector(Some(aws.clone()), stall);
    let ledger = Ledger::new(&aws.config, &table);
    super::outcome::settle_first(&aws.config, &ledger, &args.settling, &args.events, stall).await?;
    let report = crate::status::check(
        &Ecs::new(&aws.config),
        &ledger,
        &connector,
        &cluster,
        &service,
    )
    .await?;
    super::announce_drift(
        &aws.config,
        &args.events,
        "status",
        Some(format!("{cluster}/{service}")),
        &report.drift,
    )
    .await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(crate::status::Drift::in_findings(&report.drift)?)
}

/// One line per container of each deployment, then each container's full image, commit and build, then the
/// notes and the drift.
fn render(report: &StatusReport) -> String {
    let header = [
        "DEPLOYMENT",
        "STATUS",
        "ROLLOUT",
        "TASKS",
        "TASK_DEFINITION",
        "CONTAINER",
        "RELEASE",
        "COMMIT",
        "DIGEST",
        "PROMOTED_AT",
        "LAST_DEPLOYED_AT",
        "CHECK",
    ]
    .map(String::from);
    let mut rows = vec![header];
    let mut details = String::new();
    for deployment in &report.deployments {
        for container in &deployment.containers {
            let release = container.release.as_ref();
            let cell = |value: Option<&str>| value.unwrap_or("-").to_owned();
            rows.push([
                deployment.id.clone(),
                deployment.status.clone(),
                cell(deployment.rollout_state.as_deref()),
                format!("{}/{}", deployment.running_count, deployment.desired_count),
                deployment.task_definition.clone(),
                container.name.clone(),
                cell(release.map(|r| r.tag.as_str())),
                cell(release.map(|r| short(&r.commit, 7))),
                cell(release.map(|r| r.recorded_digest.short())),
                cell(release.and_then(|r| r.promoted_at.as_deref())),
                cell(release.and_then(|r| r.last_deployed_at.as_deref())),
                match container.check {
                    Check::Ok => "ok",
                    Check::Drift => "DRIFT",
                    Check::Sidecar => "sidecar",
                }
                .to_owned(),
            ]);
            let _ = writeln!(
                details,
                "{} {} ({}): {}{}",
                deployment.status,
                container.name,
                deployment.task_definition,
                container.image,
                if container.check == Check::Sidecar {
                    " (no release of ecr-promote's: not checked)"
                } else {
                    ""
                }
            );
            if let Some(r) = release {
                let by = match r.matched_by {
                    MatchedBy::Tag => "its tag",
                    MatchedBy::Digest => "its digest",
                };
                let production = match &r.production_digest {
                    Some(now) if *now == r.recorded_digest => "holds it".to_owned(),
                    Some(now) => format!("now holds {now}"),
                    None => "is gone".to_owned(),
                };
                let _ = writeln!(
                    details,
                    "  release {} ({}, found by {by}), commit {}\n  recorded {}; production tag {} {production}\n  \
                     last deployed by {}, build {}",
                    r.tag,
                    r.state.as_str().to_owned(),
                    r.commit,
                    r.recorded_digest,
                    r.target_image,
                    r.initiator.as_deref().unwrap_or("-"),
                    r.build_arn.as_deref().unwrap_or("-"),
                );
                if let Some(outcome) = &r.last_outcome {
                    let _ = writeln!(details, "  last deploy {}", outcome.summary());
                }
            }
            for task in &container.running {
                let _ = writeln!(
                    details,
                    "  task {} runs {}",
                    task.task,
                    task.digest
                        .as_deref()
                        .unwrap_or("(digest not reported by ECS)")
                );
            }
        }
    }
    let mut out = format!("service {} in cluster {}\n", report.service, report.cluster);
    out.push_str(&columns(&rows));
    out.push('\n');
    out.push_str(&details);
    for note in &report.notes {
        let _ = writeln!(out, "note: {note}");
    }
    for finding in &report.drift {
        let _ = writeln!(out, "drift: {finding}");
    }
    out
}
