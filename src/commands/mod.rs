//! The commands' bodies: each builds what it needs once (AWS configuration, registry connections, the ledger,
//! the queue), hands it to the library, and prints what comes back. Only this layer prints.

pub mod audit;
pub mod copy;
pub mod ledger;
pub mod release;
pub mod status;
