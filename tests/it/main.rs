//! The integration tests, one binary: each module a topic, all sharing `support`, which starts the local
//! world (moto_server and two Distribution registries) on loopback.

mod commits;
mod concurrency;
mod copy;
mod crash;
mod events;
mod faults;
mod gates;
mod github;
mod guards;
mod history;
mod messages;
mod multi_image;
mod ordering;
mod outcomes;
mod parsers;
mod queue;
mod redeploy;
mod secrets;
mod settings;
mod signatures;
mod sources;
mod status;
mod support;
mod webhook;
mod world;
