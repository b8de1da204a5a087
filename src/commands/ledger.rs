//! `history` and `show`: the ledger as people and scripts read it.

use std::time::Duration;

use anyhow::Result;

use crate::aws::Aws;
use crate::cli::{HistoryArgs, LedgerArgs, ShowArgs};
use crate::ledger::Ledger;

async fn open(args: &LedgerArgs, stall: Duration) -> Result<Ledger> {
    let table = args.table()?;
    let aws = Aws::load(stall, None).await?;
    Ok(Ledger::new(&aws.config, &table))
}

pub async fn history(args: HistoryArgs, stall: Duration) -> Result<()> {
    let releases = open(&args.ledger, stall).await?.releases().await?;
    if args.json {
        println!("{}", crate::history::json(&releases)?);
    } else {
        print!("{}", crate::history::table(&releases));
    }
    Ok(())
}

pub async fn show(args: ShowArgs, stall: Duration) -> Result<()> {
    let ledger = open(&args.ledger, stall).await?;
    let record = ledger.recorded(&args.tag).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&record)?);
    } else {
        print!("{}", crate::history::release(&record));
    }
    Ok(())
}
