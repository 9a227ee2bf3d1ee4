//! imgsync: mirror container images between registries by driving the docker CLI.
//!
//! Flow (README, "Architecture"): `inputs` reads images.txt into entries and
//! config.env into `Settings`; `session` opens the run (docker CLI, private
//! config, logins); `sync` reads registries through an `inspect::Inspector`
//! into a `plan::Plan`, then an engine carries it out; `report` records and
//! `publish` hands the report out.

// Process signals go through rustix; nothing here needs `unsafe`.
#![forbid(unsafe_code)]

pub mod app;
pub(crate) mod badge;
pub(crate) mod check;
pub mod clean_disk;
pub(crate) mod compose;
pub mod cli;
pub(crate) mod concurrency;
pub(crate) mod completions;
pub(crate) mod config;
pub(crate) mod ctx;
pub(crate) mod credentials;
pub(crate) mod diagnose;
pub(crate) mod disk;
pub(crate) mod docker;
pub(crate) mod doctor;
pub(crate) mod engine;
pub mod exit;
pub(crate) mod failure;
pub(crate) mod family;
pub(crate) mod github;
pub(crate) mod images;
pub(crate) mod inputs;
pub mod inspect;
pub(crate) mod line_error;
pub(crate) mod mirror_map;
pub(crate) mod naming;
pub mod notify;
pub(crate) mod plan;
pub(crate) mod platform;
pub(crate) mod preset;
pub(crate) mod preset_check;
pub(crate) mod publish;
pub(crate) mod pull;
pub mod reference;
pub(crate) mod registry_rules;
pub mod registry;
pub mod report;
pub(crate) mod retry;
pub(crate) mod root_cause;
pub(crate) mod secret;
pub(crate) mod selecting;
pub(crate) mod session;
pub(crate) mod sanitize;
pub(crate) mod shard;
pub(crate) mod signals;
pub(crate) mod signatures;
pub(crate) mod step_error;
pub(crate) mod tag_selection;
pub(crate) mod state;
pub(crate) mod sync;
pub(crate) mod ui;
pub mod webhook;
