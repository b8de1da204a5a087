//! ecr-promote: ship the image staging ran to production under the release tag, digest for digest.

pub mod aws;
pub mod cli;
pub mod exit;
pub mod logging;
pub mod registry;
