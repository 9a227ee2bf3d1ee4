//! A read-only registry client (issue 11): HEAD and GET manifests, list tags,
//! with docker's authentication (anonymous, Basic, Bearer tokens, identity
//! tokens) and docker's trust rules. Every write stays on docker.
//!
//! One noun per file:
//! - [`client`]: [`Client`] (blocking, `Sync`, shared by many threads), its
//!   [`ClientConfig`], manifest HEAD/GET and tag listing;
//! - [`repository`]: [`Repository`], a registry host plus repository name as the
//!   HTTP API wants them (Docker Hub -> `registry-1.docker.io`, `library/`);
//! - [`manifest`]: media types, [`Descriptor`] and [`Manifest`] (digest verified);
//! - [`challenge`]: `WWW-Authenticate` parsing;
//! - [`token`]: Bearer token requests and the per host+repository token cache;
//! - [`credentials`]: docker config lookup in docker's order, and the
//!   [`CredentialHelper`] seam for `docker-credential-*` processes;
//! - [`ratelimit`]: `ratelimit-limit` / `ratelimit-remaining`;
//! - [`tls`]: trust roots (system + `certs.d`) and the plain-HTTP rule;
//! - [`counts`]: requests sent, by kind;
//! - [`link`]: `Link: <...>; rel="next"` paging;
//! - [`error`]: [`Error`], what was asked and what the registry answered.

pub mod challenge;
pub mod client;
pub mod counts;
pub mod credentials;
pub mod error;
pub mod link;
pub mod manifest;
pub mod ratelimit;
pub mod repository;
pub mod tls;
pub mod token;

pub use client::{Client, ClientConfig};
pub use counts::{Counts, Tally};
pub use credentials::{Credential, CredentialHelper, Credentials, DockerConfig};
pub use error::{Error, ErrorKind};
pub use manifest::{Descriptor, Manifest};
pub use ratelimit::RateLimit;
pub use repository::Repository;

#[cfg(test)]
mod client_tests;
#[cfg(test)]
mod testserver;
