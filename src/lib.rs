//! ecr-promote: ship the image staging ran to production under the release tag, digest for digest.
//!
//! The modules follow a release's path: `intake` (queue message → release), `resolve` (release → commit →
//! staging image), `registry` (the copy), `ledger` (the record), `deploy_files` (what ECS deploys), and
//! `promote`, which runs them in order. `status` and `audit` check what production runs and holds against
//! the ledger.

pub mod audit;
pub mod aws;
pub mod cli;
pub mod commands;
pub mod deploy_files;
pub mod ecs;
pub mod events;
pub mod exit;
pub mod gates;
pub mod github;
pub mod history;
pub mod intake;
pub mod ledger;
pub mod logging;
pub mod outcome;
pub mod outside;
pub mod promote;
pub mod registry;
pub mod resolve;
pub mod status;
pub mod timestamp;
pub mod usage;
pub mod webhook;
