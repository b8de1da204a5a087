//! The integration tests, one binary: each module a topic, all sharing `support`, which starts the local
//! world (moto_server and two Distribution registries) on loopback.

mod concurrency;
mod copy;
mod crash;
mod faults;
mod parsers;
mod queue;
mod release_ops;
mod run;
mod secrets;
mod status;
mod support;
mod webhook;
mod world;
