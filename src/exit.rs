//! Exit codes, for scripts and buildspecs that branch on why a run stopped.

use crate::ledger::Conflict;
use crate::promote::run::NothingPending;
use crate::registry::RegistryError;

pub const OK: u8 = 0;
/// Any failure not listed below; the one-line error says what to fix.
pub const FAILURE: u8 = 1;
/// A missing or malformed setting (clap uses 2 for a bad command line as well).
pub const USAGE: u8 = 2;
/// Refused: the release tag already holds another digest or commit. A release tag never moves. For `status`
/// and `audit`: drift, production is not what was released.
pub const REFUSED: u8 = 3;
/// `run` found no pending release on the queue.
pub const NOTHING_PENDING: u8 = 4;

/// Shown under `--help`.
pub const TABLE: &str = "Exit codes:
  0  done (including \"already there\": the target tag was already on the same digest)
  1  failed: the error line names what to fix; queue messages not done stay for a retry
  2  bad command line or missing setting; nothing was touched
  3  refused: the release tag already holds another digest or commit (a release tag never moves);
     status, audit: drift — what runs or what a release tag holds is not what was released
  4  run: no pending release on the queue; nothing was deployed";

/// A setting that is missing or wrong, found before anything was touched.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// What runs in production, or what a release tag holds, is not what was released: each finding names the
/// container or release and the image at fault. The report with every finding has been printed already.
#[derive(Debug, thiserror::Error)]
#[error("drift: {}{}", findings.first().map(String::as_str).unwrap_or("(no finding)"),
        match findings.len() { 0 | 1 => String::new(), n => format!(" (and {} more above)", n - 1) })]
pub struct Drift {
    pub findings: Vec<String>,
}

impl Drift {
    /// The drift among `findings`, if there is any.
    pub fn in_findings(findings: &[String]) -> Result<(), Drift> {
        if findings.is_empty() {
            Ok(())
        } else {
            Err(Drift {
                findings: findings.to_vec(),
            })
        }
    }
}

pub fn code_for(error: &anyhow::Error) -> u8 {
    if error.downcast_ref::<Usage>().is_some() {
        USAGE
    } else if error.downcast_ref::<NothingPending>().is_some() {
        NOTHING_PENDING
    } else if error.downcast_ref::<Conflict>().is_some()
        || error.downcast_ref::<Drift>().is_some()
        || matches!(
            error.downcast_ref::<RegistryError>(),
            Some(RegistryError::TagMoved { .. })
        )
    {
        REFUSED
    } else {
        FAILURE
    }
}
