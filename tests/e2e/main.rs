//! The one integration test binary (`autotests = false` in Cargo.toml): the
//! harness in tests/common compiles once for every suite. Select a suite or a
//! test by its path, e.g. `scripts/test.sh --test e2e daemon::` or
//! `cargo test --test e2e webhook::`.
//!
//! Tests that need a Docker engine print `SKIPPED <test>: why` when none
//! answers, except under CI (`CI=true`), where that fails them.

#[path = "../common/mod.rs"]
mod common;

mod action_origin;
mod clean_disk;
mod daemon;
mod docs;
mod first_hour;
mod github;
mod harness;
mod hardening;
mod hostile_servers;
mod imagetools;
mod install_script;
mod manifest_store;
mod naming;
mod parallel;
mod presets;
mod proxy_selftest;
mod pull;
mod read_path;
mod registry_client;
mod resilience;
mod settings;
mod signatures;
mod tag_selection;
mod webhook;
