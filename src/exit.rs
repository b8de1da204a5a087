//! Exit codes, for scripts and buildspecs that branch on why a run stopped. Decided here, at the top, from
//! the typed errors the lower floors define; nothing below the command layer imports this module.

use crate::gates::NotYet;
use crate::promote::refused_by;
use crate::promote::run::{NothingPending, Waiting};
use crate::status::Drift;
use crate::usage::Usage;

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
/// A gate waits (staging has not run the release for the soak time yet): nothing was written; the release is
/// judged again when it may pass.
pub const WAITING: u8 = 5;

/// Shown under `--help`.
pub const TABLE: &str = "Exit codes:
  0  done (including \"already there\": the target tag was already on the same digest)
  1  failed: the error line names what to fix; queue messages not done stay for a retry
  2  bad command line or missing setting; nothing was touched
  3  refused: the release tag already holds another digest or commit (a release tag never moves), or a
     promotion gate refused the release;
     status, audit: drift — what runs or what a release tag holds is not what was released
  4  run: no pending release on the queue; nothing was deployed
  5  a gate waits: staging has not run the release for the soak time yet; nothing was written (run: its
     message is hidden until then, and the pipeline scheduled to start again)";

/// The exit code for an error that ended a command.
pub fn code_for(error: &anyhow::Error) -> u8 {
    if error.downcast_ref::<Usage>().is_some() {
        USAGE
    } else if error.downcast_ref::<NothingPending>().is_some() {
        NOTHING_PENDING
    } else if error.downcast_ref::<NotYet>().is_some() || error.downcast_ref::<Waiting>().is_some()
    {
        WAITING
    } else if refused_by(error).is_some() || error.downcast_ref::<Drift>().is_some() {
        REFUSED
    } else {
        FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_typed_error_has_its_code_whatever_context_wraps_it() {
        let drift = Drift::in_findings(&["container api runs x".to_owned()]).unwrap_err();
        for (error, code) in [
            (
                anyhow::Error::from(Usage("set PROMOTE_TABLE".into())),
                USAGE,
            ),
            (anyhow::Error::from(drift), REFUSED),
            (anyhow::anyhow!("anything else"), FAILURE),
        ] {
            assert_eq!(code_for(&error.context("while checking")), code);
        }
    }
}
