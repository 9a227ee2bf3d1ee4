//! imgsync: mirror container images between registries by driving the docker CLI.
//!
//! Flow: `images` + `config` are parsed, `engine::inspector` asks registries
//! what they hold, `plan` decides (pure), an engine acts, `report` records.

pub mod app;
pub mod badge;
pub mod clean_disk;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod diagnose;
pub mod docker;
pub mod doctor;
pub mod engine;
pub mod github;
pub mod images;
pub mod inspect;
pub mod naming;
pub mod plan;
pub mod platform;
pub mod reference;
pub mod registry;
pub mod report;
pub mod retry;
pub mod shard;
pub mod state;
pub mod sync;
pub mod ui;
pub mod webhook;
