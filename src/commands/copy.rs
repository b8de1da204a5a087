//! `copy`: one image or index between registries, digest for digest.

use std::time::Duration;

use anyhow::Result;

use crate::cli::CopyArgs;
use crate::registry::{self, CopyOptions, EcrHost, Side};

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
    let options = CopyOptions {
        force: args.force,
        jobs: args.registries.jobs.into(),
    };
    let report =
        registry::copy_image(&source, &args.source, &target, &args.target, options).await?;
    if report.already_there {
        println!(
            "already there: {} is {}; nothing copied",
            args.target, report.digest
        );
    } else {
        println!(
            "copied {} to {} ({}): {} blobs copied, {} skipped (target had them), {} bytes, {} manifests in {:.2}s",
            args.source,
            args.target,
            report.digest,
            report.blobs_copied,
            report.blobs_skipped,
            report.bytes_copied,
            report.manifests,
            report.elapsed.as_secs_f64()
        );
    }
    Ok(())
}
