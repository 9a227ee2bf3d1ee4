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
//!
//! # How an inspector uses it
//!
//! One [`Client`] per run (it is `Sync`; clone nothing, share a reference),
//! one [`Tally`] per entry (its `requests` in the report; the client keeps the
//! run's totals in [`Client::totals`]):
//!
//! ```no_run
//! use imgsync::reference::ImageRef;
//! use imgsync::registry::{Client, ClientConfig, Credentials, Repository, Tally};
//! use imgsync::state::{PairKey, State};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # struct Helper;
//! # impl imgsync::registry::CredentialHelper for Helper {
//! #     fn get(&self, _: &str, _: &str) -> imgsync::registry::credentials::HelperAnswer { Ok(None) }
//! # }
//! let private_config_dir = std::path::Path::new("/tmp/imgsync-docker-x");
//! let creds = Credentials::from_docker_config_dir(private_config_dir, Box::new(Helper))?;
//! let client = Client::new(ClientConfig::default(), creds);
//! let (state, _warning) = State::load(std::path::Path::new("/tmp/state.json"));
//!
//! let source = ImageRef::parse("nginx:1.27")?;
//! let target = ImageRef::parse("registry.lan:5000/mirror/nginx:1.27")?;
//! let tally = Tally::default();
//! // 1. HEAD both sides (from two threads if you like): all four Accept types.
//! let s = client.resolve_manifest(&Repository::of(&source), &Repository::reference_of(&source), &tally)?;
//! let t = client.resolve_manifest(&Repository::of(&target), &Repository::reference_of(&target), &tally)?;
//! match (s, t) {
//!     (None, _) => { /* the source is missing: an error for the entry */ }
//!     (Some(_), None) => { /* the target is missing: copy */ }
//!     (Some(s), Some(t)) if s.digest == t.digest => { /* up to date: no GET, no docker */ }
//!     (Some(s), Some(t)) => {
//!         let key = PairKey::new(&source.to_string(), &[], &target.to_string());
//!         if state.is_up_to_date(&key, &s.digest, &t.digest) {
//!             /* up to date by a remembered pair: no GET */
//!         } else {
//!             // 2. Only now GET, by digest (verified), and parse with
//!             //    `inspect::parse::parse_raw`: the index, then each selected
//!             //    platform's manifest for its config digest; compare, or copy.
//!             let index = client.get_manifest(&Repository::of(&source), &s.digest, &tally)?;
//!             let _raw = index.map(|m| imgsync::inspect::parse::parse_raw(&m.bytes));
//!         }
//!     }
//! }
//! let _per_entry = tally.snapshot(); // {"head": 2, "get": 0, "token": N}
//! let _quota = client.rate_limit("docker.io"); // limit, remaining, window_s
//! # Ok(()) }
//! ```
//!
//! Many entries: after the first request to a token-auth registry,
//! [`Client::prefetch_tokens`] gets the pull tokens of the other repositories
//! there in a few requests (one per 50, say) instead of one each.
//! [`Client::resolve_pair`] HEADs both sides of an entry at once.
//!
//! Errors: `Ok(None)` is "not there" (404). An [`Error`] with
//! [`ErrorKind::Tls`] (trust), [`ErrorKind::Transport`] (connection) after
//! retries, `PlainHttpRefused` or `InvalidResponse` means the HTTP path
//! cannot serve this registry: fall back to the docker inspection for it.
//! [`Error::is_retryable`] feeds the classified backoff. `Unauthorized`/`Denied` are answers
//! (the same credentials fail in docker too). `TooManyRequests`: see
//! [`Client::rate_limit`].

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
pub(crate) mod testserver;
