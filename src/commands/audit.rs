//! `ecr-promote audit`: every recorded release checked against the registries, as a table for people or JSON
//! for scripts. Drift is exit 3, once the report is printed.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::audit::{AuditReport, Production, Staging};
use crate::cli::AuditArgs;
use crate::history::{columns, short, unreadable_row};
use crate::ledger::Ledger;

/// Releases checked at once. Each check is two small HEAD requests, so the time goes on waiting for answers:
/// 16 in flight keep a ledger of hundreds of releases to seconds without a burst that ECR would throttle.
const CHECKS_AT_ONCE: usize = 16;

pub async fn audit(args: AuditArgs, stall: Duration) -> Result<()> {
    let table = args.ledger.table()?;
    let aws = args.registries.aws(stall).await?;
    let connector = args.registries.connector(Some(aws.clone()), stall);
    let ledger = Ledger::new(&aws.config, &table);
    super::outcome::settle_first(&aws.config, &ledger, &args.settling, &args.events, stall).await?;
    let started = Instant::now();
    let releases = ledger.releases().await?;
    let report = crate::audit::audit(&releases, &connector, CHECKS_AT_ONCE).await?;
    super::announce_drift(&aws.config, &args.events, "audit", None, &report.drift).await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report, started.elapsed()));
    }
    Ok(crate::status::Drift::in_findings(&report.drift)?)
}

fn render(report: &AuditReport, took: Duration) -> String {
    let header = [
        "TAG",
        "STATE",
        "COMMIT",
        "CONTAINERS",
        "DIGEST",
        "PRODUCTION",
        "STAGING",
        "PROMOTED_AT",
    ]
    .map(String::from);
    let mut rows = vec![header];
    for release in &report.releases {
        for image in &release.images {
            rows.push([
                release.tag.clone(),
                release.state.as_str().to_owned(),
                short(&release.commit, 7).to_owned(),
                match image.containers.as_slice() {
                    [] => "-".to_owned(),
                    containers => containers.join(","),
                },
                image.recorded_digest.short().to_owned(),
                match &image.production {
                    Production::Holds => "ok".to_owned(),
                    Production::Moved { digest } => format!("MOVED to {}", digest.short()),
                    Production::Gone => "GONE".to_owned(),
                },
                match &image.staging {
                    Staging::Present { .. } => "ok".to_owned(),
                    Staging::Moved { digest, .. } => format!("rebuilt as {}", digest.short()),
                    Staging::Expired => "expired".to_owned(),
                    Staging::Ambiguous { .. } => "ambiguous".to_owned(),
                },
                release.promoted_at.clone().unwrap_or_else(|| "-".into()),
            ]);
        }
    }
    rows.extend(report.unreadable.iter().map(unreadable_row));
    let mut out = columns(&rows);
    for warning in &report.warnings {
        let _ = writeln!(out, "warning: {warning}");
    }
    for finding in &report.drift {
        let _ = writeln!(out, "drift: {finding}");
    }
    let _ = writeln!(
        out,
        "audited {} releases ({} unreadable items) in {:.2}s: {} drift, {} warnings",
        report.releases.len(),
        report.unreadable.len(),
        took.as_secs_f64(),
        report.drift.len(),
        report.warnings.len()
    );
    out
}
