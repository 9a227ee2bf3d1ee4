//! imgsync: mirror container images between registries by driving the docker CLI.
//!
//! Flow (README, "Architecture"): `inputs` reads images.txt into entries and
//! config.env into `Settings`; `session` opens the run (docker CLI, private
//! config, logins); `sync` reads registries through an `inspect::Inspector`
//! into a `plan::Plan`, then an engine carries it out; `report` records and
//! `publish` hands the report out.


pub mod app;
pub mod badge;
pub mod check;
pub mod clean_disk;
pub mod compose;
pub mod cli;
pub mod concurrency;
pub mod completions;
pub mod config;
pub mod ctx;
pub mod credentials;
pub mod diagnose;
pub mod disk;
pub mod docker;
pub mod doctor;
pub mod engine;
pub mod failure;
pub mod github;
pub mod images;
pub mod inputs;
pub mod inspect;
pub mod line_error;
pub mod mirror_map;
pub mod naming;
pub mod plan;
pub mod platform;
pub mod publish;
pub mod pull;
pub mod reference;
pub mod registry;
pub mod report;
pub mod retry;
pub mod secret;
pub mod selecting;
pub mod session;
pub mod sanitize;
pub mod shard;
pub mod signals;
pub mod step_error;
pub mod tag_selection;
pub mod state;
pub mod sync;
pub mod ui;
pub mod webhook;
