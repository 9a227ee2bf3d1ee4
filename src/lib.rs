//! imgsync: mirror container images between registries by driving the docker CLI.
//!
//! Flow: `images` + `config` are parsed, `engine::inspector` asks registries
//! what they hold, `plan` decides (pure), an engine acts, `report` records.

pub mod config;
pub mod docker;
pub mod images;
pub mod inspect;
pub mod naming;
pub mod platform;
pub mod reference;
