//! An OCI 1.1 referrers API in front of a registry that has none (Debian's
//! distribution 2.8), std threads only: a [`FaultProxy`] that answers
//! `GET|HEAD /v2/<name>/referrers/<digest>` itself and forwards every other
//! request unchanged (it frames requests, so keep-alive connections work).
//!
//! The answer is what the distribution spec asks of a registry with the API:
//! `200`, `Content-Type: application/vnd.oci.image.index.v1+json`, an OCI
//! index whose `manifests` are the descriptors registered for that name and
//! digest (mediaType, digest, size, artifactType, annotations), and the empty
//! index `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`
//! for any other digest. `?artifactType=T` keeps the descriptors of that
//! artifactType and says so with `OCI-Filters-Applied: artifactType`.
//!
//! The referrer manifests themselves stay in the upstream registry (pushed by
//! digest, e.g. with `signing::push_referrer_manifest`); the front only lists them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::proxy::FaultProxy;
use super::{Registry, OCI_INDEX};

pub struct ReferrersApi {
    proxy: FaultProxy,
    shared: Arc<Mutex<Listed>>,
}

#[derive(Default)]
struct Listed {
    /// (repository name, subject digest) -> the descriptors listed for it.
    by_subject: HashMap<(String, String), Vec<Value>>,
    /// The request target (path and query) of every referrers request, in order.
    asked: Vec<String>,
}

impl ReferrersApi {
    /// Listens on 127.0.0.1 at a free port, in front of `upstream`.
    pub fn start(upstream: &Registry) -> ReferrersApi {
        let addr: SocketAddr = upstream.host().parse().expect("the registry listens on an IP:port");
        let shared = Arc::new(Mutex::new(Listed::default()));
        let s = shared.clone();
        let proxy = FaultProxy::intercepting(addr, Arc::new(move |line: &str| answer(&s, line)));
        ReferrersApi { proxy, shared }
    }

    /// `127.0.0.1:PORT`: the front's registry host, for image references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.proxy.addr().port())
    }

    /// `HOST/REFERENCE` through the front, e.g. `127.0.0.1:PORT/lib/app:v1`.
    pub fn reference(&self, repo_ref: &str) -> String {
        format!("{}/{repo_ref}", self.host())
    }

    /// Lists `descriptor` (mediaType, digest, size, artifactType, annotations)
    /// among the referrers of `repo@subject`.
    pub fn register(&self, repo: &str, subject: &str, descriptor: Value) {
        lock(&self.shared).by_subject.entry((repo.to_string(), subject.to_string())).or_default().push(descriptor);
    }

    /// The request target of every referrers request answered so far.
    pub fn asked(&self) -> Vec<String> {
        lock(&self.shared).asked.clone()
    }

    /// Every HTTP request seen, answered here or forwarded.
    pub fn requests(&self) -> usize {
        self.proxy.requests()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The whole response to a referrers request, or None to forward the request.
fn answer(listed: &Mutex<Listed>, line: &str) -> Option<String> {
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?, parts.next()?);
    if method != "GET" && method != "HEAD" {
        return None;
    }
    let rest = target.strip_prefix("/v2/")?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (name, digest) = path.rsplit_once("/referrers/")?;
    if name.is_empty() || digest.is_empty() || digest.contains('/') {
        return None;
    }
    let filter = query.split('&').find_map(|kv| kv.strip_prefix("artifactType=")).map(percent_decode);
    let mut l = lock(listed);
    l.asked.push(target.to_string());
    let all = l.by_subject.get(&(name.to_string(), digest.to_string())).cloned().unwrap_or_default();
    drop(l);
    let kept: Vec<String> = all
        .iter()
        .filter(|d| filter.as_deref().is_none_or(|t| d["artifactType"].as_str() == Some(t)))
        .map(|d| serde_json::to_string(d).expect("a descriptor serializes"))
        .collect();
    let body = format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#, kept.join(","));
    let filtered = if filter.is_some() { "OCI-Filters-Applied: artifactType\r\n" } else { "" };
    Some(format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {OCI_INDEX}\r\nContent-Length: {}\r\nDocker-Distribution-Api-Version: registry/2.0\r\n{filtered}\r\n{}",
        body.len(),
        if method == "HEAD" { "" } else { body.as_str() }
    ))
}

/// `%2F` -> `/`, `%2B` -> `+`, …; `+` stays (a media type's `+json`).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = if b[i] == b'%' { b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()) } else { None };
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
