//! `copy`: one image or index between registries, digest for digest, with a progress bar at a terminal.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::CopyArgs;
use crate::registry::{self, CopyOptions, EcrHost, Progress, Side};

pub async fn copy(args: CopyArgs, stall: Duration) -> Result<()> {
    // AWS is needed only for ECR hosts: a copy between other registries never loads it (nor needs a region).
    let needs_aws = [&args.source.host, &args.target.host]
        .iter()
        .any(|host| EcrHost::parse(host).is_some());
    let aws = match needs_aws {
        true => Some(args.registries.aws(stall).await?),
        false => None,
    };
    let connector = args.registries.connector(aws, stall);
    let source = connector.connect(&args.source.host, Side::Source).await?;
    let target = connector.connect(&args.target.host, Side::Target).await?;
    let options = CopyOptions::new(args.force, args.transfer.jobs.into());
    let progress = Arc::new(Progress::default());
    let copy = registry::copy_image(
        &source,
        &args.source,
        &target,
        &args.target,
        &options,
        &progress,
    );
    let report = if std::io::stderr().is_terminal() {
        // A spinner until the bytes to move are known: a bar of 0 B out of 0 B would read as done.
        let bar = ProgressBar::new(0)
            .with_style(ProgressStyle::with_template("{spinner} {msg}").expect("a valid template"))
            .with_message("comparing the source with the target");
        let report = tokio::select! {
            report = copy => report,
            () = follow(&bar, &progress) => unreachable!("follows until the copy ends"),
        };
        bar.finish_and_clear();
        report?
    } else {
        let every = args.transfer.progress_every();
        let label = args.target.to_string();
        tokio::select! {
            report = copy => report?,
            () = progress.log_every(&label, every) => unreachable!("logs until the copy ends"),
        }
    };
    if report.already_there {
        println!(
            "already there: {} is {}; nothing copied",
            args.target, report.digest
        );
    } else {
        println!(
            "copied {} to {} ({}): {} blobs copied, {} skipped (target had them), {} mounted, {} bytes, {} \
             manifests in {:.2}s",
            args.source,
            args.target,
            report.digest,
            report.blobs_copied,
            report.blobs_skipped,
            report.blobs_mounted,
            report.bytes_copied,
            report.manifests,
            report.elapsed.as_secs_f64()
        );
    }
    Ok(())
}

/// Keeps the bar on the copy's figures, turning the spinner into a byte bar once there are bytes to move;
/// never returns.
async fn follow(bar: &ProgressBar, progress: &Progress) {
    let mut counting = false;
    loop {
        let total = progress.total();
        if total > 0 && !counting {
            counting = true;
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {bytes}/{total_bytes} {bar:30} {bytes_per_sec}, {eta} left",
                )
                .expect("a valid template"),
            );
        }
        bar.set_length(total);
        bar.set_position(progress.done());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
