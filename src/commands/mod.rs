//! The commands' bodies: each builds what it needs once (AWS configuration, registry connections, the ledger,
//! the queue), hands it to the library, and prints what comes back. Only this layer prints.

use anyhow::Result;

use crate::cli::{Cli, Command, EventArgs};
use crate::events::{Event, Publisher};

pub mod audit;
pub mod copy;
pub mod ledger;
pub mod outcome;
pub mod release;
pub mod status;

/// Runs the command the command line names.
pub async fn execute(cli: Cli) -> Result<()> {
    let stall = cli.stall();
    match cli.command {
        Command::Run(args) => release::run(*args, stall).await,
        Command::Promote(args) => release::promote(*args, stall).await,
        Command::Redeploy(args) => release::redeploy(&args.promotion, &args.tag, stall).await,
        Command::History(args) => ledger::history(args, stall).await,
        Command::Show(args) => ledger::show(args, stall).await,
        Command::Copy(args) => copy::copy(args, stall).await,
        Command::Status(args) => status::status(args, stall).await,
        Command::Settle(args) => outcome::settle(args, stall).await,
        Command::Audit(args) => audit::audit(args, stall).await,
    }
}

/// Publishes the drift `status` or `audit` found, if any, to the events bus when one is set.
async fn announce_drift(
    config: &aws_config::SdkConfig,
    events: &EventArgs,
    found_by: &str,
    service: Option<String>,
    drift: &[String],
) {
    if drift.is_empty() {
        return;
    }
    Publisher::new(config, events.bus(), events.build_arn.clone())
        .publish(&Event::DriftFound {
            found_by: found_by.to_owned(),
            service,
            findings: drift.to_vec(),
        })
        .await;
}
