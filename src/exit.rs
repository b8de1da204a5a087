//! Exit codes, for scripts and buildspecs that branch on why a run stopped.

use crate::registry::RegistryError;

pub const OK: u8 = 0;
/// Any failure not listed below; the one-line error says what to fix.
pub const FAILURE: u8 = 1;
/// The target tag already holds another digest: a release tag never moves.
pub const TAG_MOVED: u8 = 3;

/// Shown under `--help`.
pub const TABLE: &str = "Exit codes:
  0  done (including \"already there\": the target tag was already on the same digest)
  1  failed: the error line names what to fix
  2  bad command line or setting
  3  refused: the target tag holds another digest (a release tag never moves)";

pub fn code_for(error: &anyhow::Error) -> u8 {
    match error.downcast_ref::<RegistryError>() {
        Some(RegistryError::TagMoved { .. }) => TAG_MOVED,
        _ => FAILURE,
    }
}
