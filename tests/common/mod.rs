#![allow(dead_code)]
//! Shared harness for the end-to-end tests.
//!
//! - [`Registry`]: a throw-away CNCF distribution registry (`docker-registry serve`)
//!   on a free loopback port, optionally behind htpasswd Basic auth.
//! - [`ImageSpec`] + [`Registry::push_image`]: synthetic images (real gzip'ed tar
//!   layers, one or several platforms, Docker or OCI media types, optional
//!   BuildKit-style attestations) pushed through the registry HTTP API.
//! - Read helpers ([`Registry::manifest`], [`Registry::platform_configs`],
//!   [`Registry::catalog`], …) and [`skopeo_raw`] / [`skopeo_config_digest`] as an
//!   independent witness.
//! - [`Docker`]: the engine the tests run against (`DOCKER_HOST`, set by
//!   `scripts/test.sh`).
//! - [`Workspace`]: a temp dir with images.txt, config.env and its own HOME, and
//!   [`Workspace::run`] to execute the imgsync binary there.

pub mod netns;
pub mod cred_helper;
pub mod docker_wrapper;
pub mod pki;
pub mod proxy;
pub mod referrers_api;
pub mod runtimes;
pub mod secure_registry;
pub mod signing;
pub mod tag_pager;
pub mod token_server;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------
// Media types
// ---------------------------------------------------------------------------

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const IN_TOTO: &str = "application/vnd.in-toto+json";

pub const ALL_MANIFEST_TYPES: &str = "application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

pub fn is_index_type(media_type: &str) -> bool {
    media_type == DOCKER_LIST || media_type == OCI_INDEX
}

// ---------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------

pub fn sha256_digest(data: &[u8]) -> String {
    imgsync::inspect::parse::sha256_digest(data)
}

/// A name unique to this process and call: `prefix-<pid>-<nanos>-<n>`.
/// Seeds derived from it keep parallel tests (and repeated runs against a
/// long-lived engine) from sharing image content.
pub fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() % 1_000_000_000_000;
    format!("{prefix}-{}-{nanos}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
}

fn base64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0").local_addr().unwrap().port()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// `linux/arm64` and `linux/arm64/v8` are the same platform; keys use the long form.
pub fn normalize_platform(p: &str) -> String {
    let parts: Vec<&str> = p.split('/').collect();
    match parts.as_slice() {
        [os, "arm64"] | [os, "aarch64"] => format!("{os}/arm64/v8"),
        [os, "aarch64", v] => format!("{os}/arm64/{v}"),
        _ => p.to_string(),
    }
}

fn platform_of(v: &Value) -> String {
    let os = v["os"].as_str().unwrap_or("");
    let arch = v["architecture"].as_str().unwrap_or("");
    match v["variant"].as_str() {
        Some(var) if !var.is_empty() => format!("{os}/{arch}/{var}"),
        _ => format!("{os}/{arch}"),
    }
}

// ---------------------------------------------------------------------------
// Registry
// ---------------------------------------------------------------------------

/// A private `docker-registry serve` on 127.0.0.1; killed and reaped on Drop.
pub struct Registry {
    child: Child,
    port: u16,
    debug_port: u16,
    dir: tempfile::TempDir,
    auth: Option<(String, String)>,
    agent: ureq::Agent,
    /// The address it listens on: 127.0.0.1, or another one inside a network
    /// namespace (`netns::NetnsRegistry`).
    ip: String,
}

/// A manifest (or index) as served by a registry.
#[derive(Clone, Debug)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    /// sha256 of `bytes`.
    pub digest: String,
    /// The `Content-Type` the registry answered with.
    pub media_type: String,
    pub json: Value,
}

impl Fetched {
    pub fn is_index(&self) -> bool {
        is_index_type(&self.media_type) || self.json["manifests"].is_array()
    }
}

impl Registry {
    pub fn start() -> Registry {
        Self::launch(None)
    }

    pub fn start_with_auth(user: &str, pass: &str) -> Registry {
        Self::launch(Some((user.to_string(), pass.to_string())))
    }

    fn launch(auth: Option<(String, String)>) -> Registry {
        Self::launch_at(auth, "127.0.0.1", None)
    }

    /// A registry listening on `ip`, run inside network namespace `netns` when given.
    fn launch_at(auth: Option<(String, String)>, ip: &str, netns: Option<&str>) -> Registry {
        let bin = which("docker-registry").unwrap_or_else(|| {
            panic!("docker-registry not found on PATH: run scripts/test.sh (it installs it on Debian/Ubuntu)")
        });
        let mut last_err = String::new();
        // A port picked by binding :0 can be taken by someone else before the
        // registry binds it: try a few times.
        for _ in 0..5 {
            let dir = tempfile::Builder::new().prefix("imgsync-reg-").tempdir().expect("tempdir");
            let port = free_port();
            let debug_port = free_port();
            let mut auth_yaml = String::new();
            if let Some((u, p)) = &auth {
                let hash = bcrypt::hash(p, 5).expect("bcrypt");
                std::fs::write(dir.path().join("htpasswd"), format!("{u}:{hash}\n")).unwrap();
                auth_yaml = format!(
                    "auth:\n  htpasswd:\n    realm: imgsync-test\n    path: {}\n",
                    dir.path().join("htpasswd").display()
                );
            }
            let config = format!(
                "version: 0.1\n\
                 log:\n  level: error\n  accesslog:\n    disabled: false\n\
                 storage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\n\
                 http:\n  addr: {ip}:{port}\n  debug:\n    addr: {ip}:{debug_port}\n    prometheus:\n      enabled: true\n      path: /metrics\n\
                 {auth_yaml}",
                data = dir.path().join("data").display(),
            );
            let config_path = dir.path().join("config.yml");
            std::fs::write(&config_path, config).unwrap();
            let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
            let mut cmd = match netns {
                Some(ns) => {
                    let mut c = Command::new("ip");
                    // `ip netns exec` execs the registry: the child's pid is the registry's.
                    c.args(["netns", "exec", ns]).arg(&bin);
                    c
                }
                None => Command::new(&bin),
            };
            let child = cmd
                .arg("serve")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("spawn docker-registry");
            let mut reg = Registry { child, port, debug_port, dir, auth: auth.clone(), agent: agent(), ip: ip.to_string() };
            match reg.wait_ready(Duration::from_secs(20)) {
                Ok(()) => return reg,
                Err(e) => {
                    last_err = format!("{e}\n--- registry.log ---\n{}", reg.log());
                    // Drop kills it; try again on other ports.
                }
            }
        }
        panic!("docker-registry did not start: {last_err}");
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<(), String> {
        let start = Instant::now();
        let url = format!("http://{}/v2/", self.host());
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("docker-registry exited early: {status}"));
            }
            if let Ok(resp) = self.agent.get(&url).call() {
                let code = resp.status().as_u16();
                if code == 200 || code == 401 {
                    // Someone else may answer on a port we failed to bind: make
                    // sure our registry is still alive a moment later.
                    std::thread::sleep(Duration::from_millis(100));
                    if let Ok(Some(status)) = self.child.try_wait() {
                        return Err(format!("docker-registry exited early: {status}"));
                    }
                    return Ok(());
                }
            }
            if start.elapsed() > limit {
                return Err(format!("GET {url} did not answer 200/401 within {limit:?}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `127.0.0.1:PORT` (or the namespace's address)
    pub fn host(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn auth(&self) -> Option<(&str, &str)> {
        self.auth.as_ref().map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// The registry's own log (stdout+stderr), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// `HOST/REFERENCE`, e.g. `r.reference("lib/app:v1")` -> `127.0.0.1:PORT/lib/app:v1`.
    pub fn reference(&self, repo_ref: &str) -> String {
        format!("{}/{}", self.host(), repo_ref)
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.host(), path)
    }

    fn authorize<B>(&self, req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.auth {
            Some((u, p)) => req.header("Authorization", format!("Basic {}", base64(format!("{u}:{p}").as_bytes()))),
            None => req,
        }
    }

    fn read_body(resp: &mut ureq::http::Response<ureq::Body>) -> Vec<u8> {
        resp.body_mut().with_config().limit(1 << 30).read_to_vec().expect("read response body")
    }

    // -- writing -------------------------------------------------------------

    /// Uploads a blob (monolithic POST + PUT) unless the repository has it already.
    pub fn put_blob(&self, repo: &str, data: &[u8]) -> String {
        let digest = sha256_digest(data);
        let head = self.authorize(self.agent.head(self.url(&format!("/v2/{repo}/blobs/{digest}")))).call();
        if matches!(&head, Ok(r) if r.status().as_u16() == 200) {
            return digest;
        }
        let mut resp = self
            .authorize(self.agent.post(self.url(&format!("/v2/{repo}/blobs/uploads/"))))
            .send_empty()
            .expect("POST blob upload");
        let code = resp.status().as_u16();
        assert_eq!(code, 202, "POST /v2/{repo}/blobs/uploads/: {code} {}", String::from_utf8_lossy(&Self::read_body(&mut resp)));
        let location = resp.headers().get("Location").expect("Location header").to_str().unwrap().to_string();
        let location = if location.starts_with("http://") || location.starts_with("https://") {
            location
        } else {
            self.url(&location)
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let mut resp = self
            .authorize(self.agent.put(format!("{location}{sep}digest={digest}")))
            .header("Content-Type", "application/octet-stream")
            .send(data)
            .expect("PUT blob");
        let code = resp.status().as_u16();
        assert_eq!(code, 201, "PUT blob {digest} to {repo}: {code} {}", String::from_utf8_lossy(&Self::read_body(&mut resp)));
        digest
    }

    /// PUTs a manifest or index under `reference` (a tag or a digest); returns its digest.
    pub fn put_manifest(&self, repo: &str, reference: &str, media_type: &str, bytes: &[u8]) -> String {
        let digest = sha256_digest(bytes);
        let mut resp = self
            .authorize(self.agent.put(self.url(&format!("/v2/{repo}/manifests/{reference}"))))
            .header("Content-Type", media_type)
            .send(bytes)
            .expect("PUT manifest");
        let code = resp.status().as_u16();
        assert_eq!(
            code,
            201,
            "PUT manifest {repo}:{reference}: {code} {}",
            String::from_utf8_lossy(&Self::read_body(&mut resp))
        );
        digest
    }

    /// Builds `spec` and pushes it as `repo_tag` (`"lib/app:v1"`).
    pub fn push_image(&self, repo_tag: &str, spec: &ImageSpec) -> PushedImage {
        let (repo, tag) = split_repo_tag(repo_tag);
        let mut platforms = Vec::new();
        let mut descriptors = Vec::new();
        for p in &spec.platforms {
            let built = spec.build_platform(p);
            let layer_digest = self.put_blob(repo, &built.layer_gz);
            let config_digest = self.put_blob(repo, &built.config);
            let (manifest_type, config_type, layer_type) =
                if spec.oci { (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER) } else { (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER) };
            let manifest = json!({
                "schemaVersion": 2,
                "mediaType": manifest_type,
                "config": {"mediaType": config_type, "size": built.config.len(), "digest": config_digest},
                "layers": [{"mediaType": layer_type, "size": built.layer_gz.len(), "digest": layer_digest}],
            });
            let bytes = serde_json::to_vec_pretty(&manifest).unwrap();
            let manifest_digest = sha256_digest(&bytes);
            let single = spec.platforms.len() == 1 && !spec.force_index && !spec.attestations;
            let reference = if single { tag.to_string() } else { manifest_digest.clone() };
            self.put_manifest(repo, &reference, manifest_type, &bytes);
            descriptors.push(json!({
                "mediaType": manifest_type,
                "size": bytes.len(),
                "digest": manifest_digest,
                "platform": platform_json(p),
            }));
            platforms.push(PlatformImage {
                platform: p.clone(),
                manifest: manifest_digest,
                config: config_digest,
                layers: vec![layer_digest],
                diff_ids: vec![built.diff_id],
            });
        }
        if spec.platforms.len() == 1 && !spec.force_index && !spec.attestations {
            let only = &platforms[0];
            return PushedImage {
                host: self.host(),
                repo: repo.to_string(),
                tag: tag.to_string(),
                digest: only.manifest.clone(),
                media_type: if spec.oci { OCI_MANIFEST } else { DOCKER_MANIFEST }.to_string(),
                platforms,
                attestations: Vec::new(),
            };
        }
        let mut attestations = Vec::new();
        if spec.attestations {
            assert!(spec.oci, "attestations need OCI media types (BuildKit only writes them into OCI indexes)");
            for img in platforms.clone() {
                let statement = serde_json::to_vec(&json!({
                    "_type": "https://in-toto.io/Statement/v0.1",
                    "predicateType": "https://slsa.dev/provenance/v0.2",
                    "subject": [{"name": format!("pkg:docker/{repo}@{tag}"), "digest": {"sha256": img.manifest.trim_start_matches("sha256:")}}],
                    "predicate": {"builder": {"id": "imgsync-test"}, "seed": spec.seed},
                }))
                .unwrap();
                let layer = self.put_blob(repo, &statement);
                let config_bytes = serde_json::to_vec(&json!({
                    "architecture": "unknown",
                    "os": "unknown",
                    "config": {},
                    "rootfs": {"type": "layers", "diff_ids": [layer]},
                }))
                .unwrap();
                let config = self.put_blob(repo, &config_bytes);
                let manifest = serde_json::to_vec_pretty(&json!({
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": OCI_CONFIG, "size": config_bytes.len(), "digest": config},
                    "layers": [{
                        "mediaType": IN_TOTO,
                        "size": statement.len(),
                        "digest": layer,
                        "annotations": {"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"},
                    }],
                }))
                .unwrap();
                let digest = self.put_manifest(repo, &sha256_digest(&manifest), OCI_MANIFEST, &manifest);
                descriptors.push(json!({
                    "mediaType": OCI_MANIFEST,
                    "size": manifest.len(),
                    "digest": digest,
                    "platform": {"architecture": "unknown", "os": "unknown"},
                    "annotations": {
                        "vnd.docker.reference.type": "attestation-manifest",
                        "vnd.docker.reference.digest": img.manifest,
                    },
                }));
                attestations.push(digest);
            }
        }
        let index_type = if spec.oci { OCI_INDEX } else { DOCKER_LIST };
        let index = serde_json::to_vec_pretty(&json!({
            "schemaVersion": 2,
            "mediaType": index_type,
            "manifests": descriptors,
        }))
        .unwrap();
        let digest = self.put_manifest(repo, tag, index_type, &index);
        PushedImage {
            host: self.host(),
            repo: repo.to_string(),
            tag: tag.to_string(),
            digest,
            media_type: index_type.to_string(),
            platforms,
            attestations,
        }
    }

    // -- reading -------------------------------------------------------------

    /// GET /v2/<repo>/manifests/<reference> with every manifest media type accepted.
    /// `None` on 404; panics on other errors.
    pub fn manifest(&self, repo: &str, reference: &str) -> Option<Fetched> {
        let mut resp = self
            .authorize(self.agent.get(self.url(&format!("/v2/{repo}/manifests/{reference}"))))
            .header("Accept", ALL_MANIFEST_TYPES)
            .call()
            .expect("GET manifest");
        let code = resp.status().as_u16();
        let body = Self::read_body(&mut resp);
        if code == 404 {
            return None;
        }
        assert_eq!(code, 200, "GET manifest {repo}:{reference}: {code} {}", String::from_utf8_lossy(&body));
        let media_type = resp
            .headers()
            .get("Content-Type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap()
            .trim()
            .to_string();
        let digest = sha256_digest(&body);
        if let Some(h) = resp.headers().get("Docker-Content-Digest").and_then(|v| v.to_str().ok()) {
            assert_eq!(h, digest, "Docker-Content-Digest of {repo}:{reference}");
        }
        let json: Value = serde_json::from_slice(&body).expect("manifest is JSON");
        Some(Fetched { bytes: body, digest, media_type, json })
    }

    /// A manifest by `repo:tag` or `repo@digest`.
    pub fn manifest_ref(&self, repo_ref: &str) -> Option<Fetched> {
        let (repo, reference) = split_reference(repo_ref);
        self.manifest(repo, reference)
    }

    pub fn blob(&self, repo: &str, digest: &str) -> Vec<u8> {
        let mut resp = self
            .authorize(self.agent.get(self.url(&format!("/v2/{repo}/blobs/{digest}"))))
            .call()
            .expect("GET blob");
        let code = resp.status().as_u16();
        let body = Self::read_body(&mut resp);
        assert_eq!(code, 200, "GET blob {repo}@{digest}: {code}");
        assert_eq!(sha256_digest(&body), digest, "blob content matches its digest");
        body
    }

    /// Platform -> config digest of `repo:tag` (or `repo@digest`), following an index.
    /// Platforms are normalised (`linux/arm64` -> `linux/arm64/v8`). Index entries
    /// that are not images (attestations, `unknown/unknown`) are included under
    /// `unknown/unknown`, `unknown/unknown#2`, … so that a test can see them.
    /// `None` when the reference does not exist.
    pub fn platform_configs(&self, repo_ref: &str) -> Option<BTreeMap<String, String>> {
        let (repo, _) = split_reference(repo_ref);
        let top = self.manifest_ref(repo_ref)?;
        let mut out = BTreeMap::new();
        if top.is_index() {
            for d in top.json["manifests"].as_array().unwrap() {
                let digest = d["digest"].as_str().unwrap();
                let child = self.manifest(repo, digest).unwrap_or_else(|| panic!("{repo_ref}: child {digest} missing"));
                let config = child.json["config"]["digest"].as_str().unwrap().to_string();
                let mut key = normalize_platform(&platform_of(&d["platform"]));
                if out.contains_key(&key) {
                    let mut n = 2;
                    while out.contains_key(&format!("{key}#{n}")) {
                        n += 1;
                    }
                    key = format!("{key}#{n}");
                }
                out.insert(key, config);
            }
        } else {
            let config = top.json["config"]["digest"].as_str().unwrap().to_string();
            let cfg: Value = serde_json::from_slice(&self.blob(repo, &config)).unwrap();
            out.insert(normalize_platform(&platform_of(&cfg)), config);
        }
        Some(out)
    }

    /// Repositories in the registry (GET /v2/_catalog).
    pub fn catalog(&self) -> Vec<String> {
        let mut resp = self.authorize(self.agent.get(self.url("/v2/_catalog?n=1000"))).call().expect("GET catalog");
        let code = resp.status().as_u16();
        let body = Self::read_body(&mut resp);
        assert_eq!(code, 200, "GET /v2/_catalog: {code} {}", String::from_utf8_lossy(&body));
        let v: Value = serde_json::from_slice(&body).unwrap();
        let mut repos: Vec<String> =
            v["repositories"].as_array().map(|a| a.iter().filter_map(|r| r.as_str().map(String::from)).collect()).unwrap_or_default();
        repos.sort();
        repos
    }

    /// Tags of a repository; empty when it does not exist.
    pub fn tags(&self, repo: &str) -> Vec<String> {
        let mut resp = self.authorize(self.agent.get(self.url(&format!("/v2/{repo}/tags/list")))).call().expect("GET tags");
        let code = resp.status().as_u16();
        let body = Self::read_body(&mut resp);
        if code == 404 {
            return Vec::new();
        }
        assert_eq!(code, 200, "GET tags of {repo}: {code}");
        let v: Value = serde_json::from_slice(&body).unwrap();
        let mut tags: Vec<String> =
            v["tags"].as_array().map(|a| a.iter().filter_map(|r| r.as_str().map(String::from)).collect()).unwrap_or_default();
        tags.sort();
        tags
    }

    /// Deletes a manifest by digest (the registry runs with delete enabled).
    pub fn delete_manifest(&self, repo: &str, digest: &str) {
        let resp = self
            .authorize(self.agent.delete(self.url(&format!("/v2/{repo}/manifests/{digest}"))))
            .call()
            .expect("DELETE manifest");
        assert_eq!(resp.status().as_u16(), 202, "DELETE {repo}@{digest}");
    }

    /// A counter from the registry's Prometheus metrics, labelled by `handler`
    /// (base, blob, blob_upload, blob_upload_chunk, catalog, manifest, tags) and
    /// `method` (get, head, put, post, patch, delete); 0 when not seen yet.
    fn metric(&self, name: &str, handler: &str, method: &str) -> u64 {
        let url = format!("http://{}:{}/metrics", self.ip, self.debug_port);
        let mut resp = self.agent.get(&url).call().expect("GET metrics");
        let text = String::from_utf8(Self::read_body(&mut resp)).unwrap();
        let want = format!("{name}{{handler=\"{handler}\",method=\"{method}\"}}");
        text.lines()
            .find_map(|l| l.strip_prefix(&want))
            .map(|n| n.trim().parse::<f64>().unwrap() as u64)
            .unwrap_or(0)
    }

    /// Requests the registry has served so far, e.g. `request_count("blob", "get")`.
    pub fn request_count(&self, handler: &str, method: &str) -> u64 {
        self.metric("registry_http_request_duration_seconds_count", handler, method)
    }

    /// GETs of blobs (layers and configs) served so far.
    pub fn blob_gets(&self) -> u64 {
        self.request_count("blob", "get")
    }

    /// Digests of the blobs served by `GET /v2/<repo>/blobs/<digest>` so far,
    /// in order, from the registry's access log. (The Prometheus response-size
    /// metric stays 0 for blobs: they are sent with sendfile.) The log line is
    /// written after the response, so this first makes a marker request and
    /// waits until the marker is in the log.
    pub fn blob_get_log(&self) -> Vec<String> {
        let marker = unique("marker");
        let _ = self.agent.get(self.url(&format!("/v2/?{marker}"))).call();
        let start = Instant::now();
        let mut text = self.log();
        while !text.contains(&marker) && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
            text = self.log();
        }
        std::thread::sleep(Duration::from_millis(100));
        let text = self.log();
        text.lines()
            .filter_map(|l| {
                let rest = &l[l.find("\"GET /v2/")? + 5..];
                let path = rest.split(' ').next()?;
                let (_, digest) = path.split_once("/blobs/")?;
                digest.starts_with("sha256:").then(|| digest.to_string())
            })
            .collect()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn split_repo_tag(repo_tag: &str) -> (&str, &str) {
    repo_tag.rsplit_once(':').filter(|(_, t)| !t.contains('/')).unwrap_or((repo_tag, "latest"))
}

fn split_reference(repo_ref: &str) -> (&str, &str) {
    match repo_ref.split_once('@') {
        Some((repo, digest)) => (repo.rsplit_once(':').filter(|(_, t)| !t.contains('/')).map_or(repo, |(r, _)| r), digest),
        None => split_repo_tag(repo_ref),
    }
}

fn which(bin: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(bin)).find(|p| p.is_file())
}

// ---------------------------------------------------------------------------
// Synthetic images
// ---------------------------------------------------------------------------

/// What to build. `ImageSpec::new("seed").platforms(&["linux/amd64", "linux/arm64/v8"]).oci()`.
#[derive(Clone, Debug)]
pub struct ImageSpec {
    pub seed: String,
    pub platforms: Vec<String>,
    pub oci: bool,
    pub created: String,
    pub attestations: bool,
    /// Bytes of pseudo-random content per layer (on top of a small seed file).
    pub layer_size: usize,
    /// Push an index even for one platform.
    pub force_index: bool,
}

pub const DEFAULT_CREATED: &str = "2024-01-02T03:04:05Z";

impl ImageSpec {
    pub fn new(seed: &str) -> ImageSpec {
        ImageSpec {
            seed: seed.to_string(),
            platforms: vec!["linux/amd64".to_string()],
            oci: false,
            created: DEFAULT_CREATED.to_string(),
            attestations: false,
            layer_size: 0,
            force_index: false,
        }
    }
    pub fn platforms(mut self, p: &[&str]) -> Self {
        self.platforms = p.iter().map(|s| s.to_string()).collect();
        self
    }
    pub fn oci(mut self) -> Self {
        self.oci = true;
        self
    }
    pub fn created(mut self, c: &str) -> Self {
        self.created = c.to_string();
        self
    }
    /// BuildKit-style attestation manifests, one per platform (implies OCI).
    pub fn attestations(mut self) -> Self {
        self.attestations = true;
        self.oci = true;
        self
    }
    pub fn layer_size(mut self, n: usize) -> Self {
        self.layer_size = n;
        self
    }
    pub fn force_index(mut self) -> Self {
        self.force_index = true;
        self
    }

    fn build_platform(&self, platform: &str) -> BuiltPlatform {
        let layer_tar = layer_tar(&format!("{}|{platform}", self.seed), self.layer_size);
        let diff_id = sha256_digest(&layer_tar);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&layer_tar).unwrap();
        let layer_gz = gz.finish().unwrap();
        let mut cfg = json!({
            "created": self.created,
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "Cmd": ["/imgsync-seed"],
                "Labels": {"imgsync.test.seed": self.seed},
            },
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": self.created, "created_by": format!("imgsync test image {}", self.seed)}],
        });
        let p = platform_json(platform);
        for k in ["os", "architecture", "variant"] {
            if let Some(v) = p.get(k) {
                cfg[k] = v.clone();
            }
        }
        BuiltPlatform { layer_gz, diff_id, config: serde_json::to_vec(&cfg).unwrap() }
    }
}

struct BuiltPlatform {
    layer_gz: Vec<u8>,
    diff_id: String,
    config: Vec<u8>,
}

fn platform_json(p: &str) -> Value {
    let parts: Vec<&str> = p.split('/').collect();
    match parts.as_slice() {
        [os, arch] => json!({"os": os, "architecture": arch}),
        [os, arch, variant] => json!({"os": os, "architecture": arch, "variant": variant}),
        _ => panic!("bad platform {p:?}"),
    }
}

/// An uncompressed tar with `/imgsync-seed` (the seed text) and, when `size > 0`,
/// `/imgsync-data` with `size` pseudo-random bytes derived from the seed.
fn layer_tar(seed: &str, size: usize) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let add = |b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, data).unwrap();
    };
    add(&mut b, "imgsync-seed", format!("{seed}\n").as_bytes());
    if size > 0 {
        let h = Sha256::digest(seed.as_bytes());
        let mut x = u64::from_le_bytes(h[..8].try_into().unwrap()) | 1;
        let mut data = Vec::with_capacity(size + 8);
        while data.len() < size {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            data.extend_from_slice(&x.to_le_bytes());
        }
        data.truncate(size);
        add(&mut b, "imgsync-data", &data);
    }
    b.into_inner().unwrap()
}

#[derive(Clone, Debug)]
pub struct PlatformImage {
    /// As given in the spec, e.g. `linux/arm64/v8`.
    pub platform: String,
    pub manifest: String,
    pub config: String,
    pub layers: Vec<String>,
    pub diff_ids: Vec<String>,
}

/// What [`Registry::push_image`] pushed.
#[derive(Clone, Debug)]
pub struct PushedImage {
    pub host: String,
    pub repo: String,
    pub tag: String,
    /// The top-level digest: the index, or the manifest for one platform.
    pub digest: String,
    pub media_type: String,
    pub platforms: Vec<PlatformImage>,
    /// Digests of the attestation manifests in the index.
    pub attestations: Vec<String>,
}

impl PushedImage {
    /// `HOST/REPO:TAG`, for images.txt.
    pub fn reference(&self) -> String {
        format!("{}/{}:{}", self.host, self.repo, self.tag)
    }
    /// Platform (normalised) -> config digest, comparable with [`Registry::platform_configs`].
    pub fn configs(&self) -> BTreeMap<String, String> {
        self.platforms.iter().map(|p| (normalize_platform(&p.platform), p.config.clone())).collect()
    }
    pub fn config_digests(&self) -> BTreeSet<String> {
        self.platforms.iter().map(|p| p.config.clone()).collect()
    }
    pub fn platform(&self, platform: &str) -> &PlatformImage {
        let want = normalize_platform(platform);
        self.platforms
            .iter()
            .find(|p| normalize_platform(&p.platform) == want)
            .unwrap_or_else(|| panic!("{} has no platform {platform}", self.reference()))
    }
}

// ---------------------------------------------------------------------------
// skopeo: an independent witness
// ---------------------------------------------------------------------------

fn skopeo(reg: &Registry, args: &[&str], repo_ref: &str) -> Vec<u8> {
    let mut cmd = Command::new("skopeo");
    cmd.arg("inspect").arg("--tls-verify=false").args(args);
    if let Some((u, p)) = reg.auth() {
        cmd.arg("--creds").arg(format!("{u}:{p}"));
    } else {
        cmd.arg("--no-creds");
    }
    cmd.arg(format!("docker://{}/{}", reg.host(), repo_ref));
    // A HOME of its own: no auth.json or registries.conf from the host.
    let home = tempfile::tempdir().unwrap();
    cmd.env("HOME", home.path()).env_remove("REGISTRY_AUTH_FILE").env_remove("XDG_RUNTIME_DIR");
    let out = cmd.stdin(Stdio::null()).output().expect("run skopeo (run scripts/test.sh: it installs skopeo)");
    assert!(
        out.status.success(),
        "skopeo inspect {args:?} {repo_ref} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `skopeo inspect --raw`: the top-level manifest or index exactly as stored.
pub fn skopeo_raw(reg: &Registry, repo_ref: &str) -> Value {
    serde_json::from_slice(&skopeo(reg, &["--raw"], repo_ref)).expect("skopeo --raw prints JSON")
}

/// The digest of the raw config blob of one platform, as skopeo resolves it.
pub fn skopeo_config_digest(reg: &Registry, repo_ref: &str, platform: &str) -> String {
    let parts: Vec<&str> = platform.split('/').collect();
    let mut args = vec!["--config", "--raw", "--override-os", parts[0], "--override-arch", parts[1]];
    if let Some(v) = parts.get(2) {
        args.push("--override-variant");
        args.push(v);
    }
    sha256_digest(&skopeo(reg, &args, repo_ref))
}

/// Whether `docker buildx` answers (scripts/test.sh exports IMGSYNC_TEST_BUILDX=1):
/// imagetools end-to-end tests return early without it.
pub fn buildx_enabled() -> bool {
    std::env::var("IMGSYNC_TEST_BUILDX").is_ok_and(|v| v == "1")
}

// ---------------------------------------------------------------------------
// Docker engine
// ---------------------------------------------------------------------------

/// The engine the tests run against: `DOCKER_HOST`, or /var/run/docker.sock.
#[derive(Clone, Debug)]
pub struct Docker {
    host: Option<String>,
    /// DOCKER_CONFIG for the harness's own docker calls (nothing from the host's ~/.docker).
    config_dir: std::sync::Arc<tempfile::TempDir>,
}

/// One row of `docker image ls`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalImage {
    /// `sha256:…`: the config digest.
    pub id: String,
    pub repository: String,
    pub tag: String,
    pub digest: String,
}

pub struct Output {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Docker {
    /// The engine, or `None` after printing `SKIPPED <test>: why` when none answers
    /// outside CI. Under CI (`CI=true`) a missing engine fails the test: CI must
    /// never pass by skipping.
    pub fn get_or_skip() -> Option<Docker> {
        match Self::try_get() {
            Ok(d) => Some(d),
            Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("{why}"),
            Err(why) => {
                let test = std::thread::current().name().unwrap_or("test").to_string();
                let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
                None
            }
        }
    }

    /// Panics with advice when no engine answers.
    pub fn get() -> Docker {
        Self::try_get().unwrap_or_else(|why| panic!("{why}"))
    }

    /// The engine, or why there is none (with the advice to run scripts/test.sh).
    pub fn try_get() -> Result<Docker, String> {
        let host = std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty());
        if host.is_none() && !Path::new("/var/run/docker.sock").exists() {
            return Err("no Docker engine: DOCKER_HOST is unset and /var/run/docker.sock does not exist; run scripts/test.sh (it starts a private Docker engine)".into());
        }
        let config_dir = std::sync::Arc::new(tempfile::Builder::new().prefix("imgsync-dockercfg-").tempdir().unwrap());
        let d = Docker { host, config_dir };
        let out = d.run(&["version", "--format", "{{.Server.Version}}"]);
        if !out.ok {
            return Err(format!(
                "the Docker engine at {} does not answer ({}); run scripts/test.sh (it starts a private Docker engine)",
                d.host.as_deref().unwrap_or("unix:///var/run/docker.sock"),
                out.stderr.trim()
            ));
        }
        Ok(d)
    }

    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    pub fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("docker");
        cmd.args(args).stdin(Stdio::null()).env("DOCKER_CONFIG", self.config_dir.path());
        match &self.host {
            Some(h) => cmd.env("DOCKER_HOST", h),
            None => cmd.env_remove("DOCKER_HOST"),
        };
        let out = cmd.output().expect("run the docker CLI");
        Output {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs and panics on failure; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.ok, "docker {} failed: {}", args.join(" "), out.stderr);
        out.stdout
    }

    pub fn images(&self) -> Vec<LocalImage> {
        let out = self.ok(&["image", "ls", "--all", "--no-trunc", "--format", "{{.ID}}\t{{.Repository}}\t{{.Tag}}\t{{.Digest}}"]);
        out.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                LocalImage {
                    id: f[0].to_string(),
                    repository: f.get(1).unwrap_or(&"").to_string(),
                    tag: f.get(2).unwrap_or(&"").to_string(),
                    digest: f.get(3).unwrap_or(&"").to_string(),
                }
            })
            .collect()
    }

    pub fn image_ids(&self) -> BTreeSet<String> {
        self.images().into_iter().map(|i| i.id).collect()
    }

    /// Local images whose ID (= config digest) is one of `configs`.
    pub fn images_with_ids(&self, configs: &BTreeSet<String>) -> Vec<LocalImage> {
        self.images().into_iter().filter(|i| configs.contains(&i.id)).collect()
    }

    /// `docker image inspect` of a reference; `None` when absent.
    pub fn inspect(&self, reference: &str) -> Option<Value> {
        let out = self.run(&["image", "inspect", reference]);
        if !out.ok {
            return None;
        }
        let v: Value = serde_json::from_str(&out.stdout).unwrap();
        Some(v[0].clone())
    }

    pub fn pull(&self, reference: &str) {
        self.ok(&["pull", "--quiet", reference]);
    }

    pub fn tag(&self, source: &str, target: &str) {
        self.ok(&["tag", source, target]);
    }

    /// Removes references; errors (already gone) are ignored.
    pub fn rmi(&self, references: &[&str]) {
        if references.is_empty() {
            return;
        }
        let mut args = vec!["rmi", "--force"];
        args.extend_from_slice(references);
        let _ = self.run(&args);
    }

    /// Removes every local image whose ID is in `ids` (test clean-up).
    pub fn remove_ids(&self, ids: &BTreeSet<String>) {
        for img in self.images_with_ids(ids) {
            let _ = self.run(&["rmi", "--force", &img.id]);
        }
    }
}

/// Removes the given image IDs from the engine when dropped: a test that fails
/// half-way still leaves the shared engine clean.
pub struct ImageCleanup {
    pub docker: Docker,
    pub ids: BTreeSet<String>,
}

impl Drop for ImageCleanup {
    fn drop(&mut self) {
        self.docker.remove_ids(&self.ids);
    }
}

// ---------------------------------------------------------------------------
// Workspace: where imgsync runs
// ---------------------------------------------------------------------------

pub struct Workspace {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    pub timeout: Duration,
}

/// The outcome of one imgsync run.
#[derive(Clone, Debug)]
pub struct Run {
    pub args: Vec<String>,
    /// Exit code; -1 when killed by a signal or the timeout.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The parsed `--report` file, when one was asked for and written.
    pub report: Option<Value>,
    /// The report file's text (for secret scans).
    pub report_text: String,
    /// Most threads and peak resident memory (KiB) seen in /proc every 20 ms (Linux; 0 elsewhere).
    pub peak_threads: u64,
    pub peak_rss_kib: u64,
}

/// `Threads` and `VmHWM` (peak resident KiB) of a live process, from /proc.
fn proc_status(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        text.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.split_whitespace().next()).and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    (field("Threads:"), field("VmHWM:"))
}

impl Run {
    /// Panics with the whole output unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "imgsync {} exited {} (expected {code})\n{}", self.args.join(" "), self.code, self.dump());
        self
    }

    pub fn dump(&self) -> String {
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}\n--- report ---\n{}",
            self.stdout,
            self.stderr,
            self.report.as_ref().map(|r| serde_json::to_string_pretty(r).unwrap()).unwrap_or_else(|| "(none)".into())
        )
    }

    #[track_caller]
    pub fn report(&self) -> &Value {
        self.report.as_ref().unwrap_or_else(|| panic!("no report was written\n{}", self.dump()))
    }

    /// The report entry for images.txt line `line`.
    #[track_caller]
    pub fn entry(&self, line: u64) -> &Value {
        self.report()["entries"]
            .as_array()
            .unwrap_or_else(|| panic!("report has no entries array\n{}", self.dump()))
            .iter()
            .find(|e| e["line"].as_u64() == Some(line))
            .unwrap_or_else(|| panic!("report has no entry for line {line}\n{}", self.dump()))
    }

    /// (ref, status) of every target of the entry at `line`.
    #[track_caller]
    pub fn targets(&self, line: u64) -> Vec<(String, String)> {
        self.entry(line)["targets"]
            .as_array()
            .unwrap_or_else(|| panic!("entry {line} has no targets\n{}", self.dump()))
            .iter()
            .map(|t| (t["ref"].as_str().unwrap_or("").to_string(), t["status"].as_str().unwrap_or("").to_string()))
            .collect()
    }

    /// The status of the entry at `line`'s only target.
    #[track_caller]
    pub fn status(&self, line: u64) -> String {
        let t = self.targets(line);
        assert_eq!(t.len(), 1, "entry {line} should have one target\n{}", self.dump());
        t[0].1.clone()
    }

    #[track_caller]
    pub fn summary(&self, key: &str) -> u64 {
        self.report()["summary"][key].as_u64().unwrap_or_else(|| panic!("summary.{key} missing\n{}", self.dump()))
    }

    /// stdout + stderr + report text.
    pub fn all_output(&self) -> String {
        format!("{}\n{}\n{}", self.stdout, self.stderr, self.report_text)
    }
}

/// The imgsync binary: Cargo's for integration tests; `IMGSYNC_BIN` when this
/// module is used elsewhere (e.g. an example including it by `#[path]`).
pub fn imgsync_bin() -> PathBuf {
    match option_env!("CARGO_BIN_EXE_imgsync") {
        Some(p) => PathBuf::from(p),
        None => std::env::var_os("IMGSYNC_BIN")
            .map(PathBuf::from)
            .expect("set IMGSYNC_BIN to the imgsync binary (CARGO_BIN_EXE_imgsync exists only in integration tests)"),
    }
}

impl Default for Workspace {
    fn default() -> Self {
        Self::new()
    }
}

impl Workspace {
    pub fn new() -> Workspace {
        let dir = tempfile::Builder::new().prefix("imgsync-ws-").tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
        Workspace { dir, env: Vec::new(), timeout: Duration::from_secs(600) }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The HOME imgsync and the docker CLI see (`~/.docker` lives here).
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// Links the buildx plugin scripts/test.sh installed into this workspace's
    /// own docker config (docker finds plugins in cli-plugins dirs, not on PATH).
    pub fn link_buildx(&self) {
        let plugin = std::env::var("IMGSYNC_TEST_BUILDX_PLUGIN").expect("scripts/test.sh exports the plugin's path");
        let dir = self.home().join(".docker/cli-plugins");
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(plugin, dir.join("docker-buildx")).unwrap();
    }

    pub fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.path().join(name), text).unwrap();
    }

    pub fn read(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.path().join(name)).ok()
    }

    /// Writes `images.txt`.
    pub fn images(&self, text: &str) {
        self.write("images.txt", text);
    }

    /// Writes `config.env`.
    pub fn config(&self, text: &str) {
        self.write("config.env", text);
    }

    /// config.env for a `custom` target at `reg` under `namespace`; for an auth
    /// registry the username goes into config.env and `CUSTOM_PASSWORD` into
    /// the environment (pass `password` to override the registry's real one).
    pub fn custom_target(&mut self, reg: &Registry, namespace: &str, password: Option<&str>) {
        let mut text = format!("SYNC_MODE=custom\nCUSTOM_REGISTRY={}\nCUSTOM_NAMESPACE={namespace}\n", reg.host());
        if let Some((u, p)) = reg.auth() {
            text.push_str(&format!("CUSTOM_USERNAME={u}\n"));
            let p = password.unwrap_or(p).to_string();
            self.set_env("CUSTOM_PASSWORD", &p);
        } else if let Some(p) = password {
            self.set_env("CUSTOM_PASSWORD", p);
        }
        self.config(&text);
    }

    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    /// Runs `imgsync ARGS` in the workspace with a clean environment: PATH,
    /// DOCKER_HOST, HOME (inside the workspace), TMPDIR (inside the workspace)
    /// and what the test set.
    pub fn run(&self, args: &[&str]) -> Run {
        let report_path = args.iter().position(|a| *a == "--report").and_then(|i| args.get(i + 1)).map(|p| self.path().join(p));
        let report_path = report_path.or_else(|| {
            args.iter().find_map(|a| a.strip_prefix("--report=")).map(|p| self.path().join(p))
        });
        // A stale report must not pass for this run's; `map --report FILE` reads one instead.
        let report_path = report_path.filter(|_| args.first() != Some(&"map"));
        if let Some(p) = &report_path {
            let _ = std::fs::remove_file(p);
        }
        let out_path = self.path().join(".stdout");
        let err_path = self.path().join(".stderr");
        let mut cmd = Command::new(imgsync_bin());
        cmd.args(args)
            .current_dir(self.path())
            .env_clear()
            .env("HOME", self.home())
            .env("TMPDIR", self.path().join("tmp"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap());
        for key in ["PATH", "DOCKER_HOST"] {
            if let Some(v) = std::env::var_os(key) {
                cmd.env(key, v);
            }
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn imgsync");
        let start = Instant::now();
        let (mut peak_threads, mut peak_rss_kib) = (0, 0);
        let status = loop {
            let (threads, rss) = proc_status(child.id());
            (peak_threads, peak_rss_kib) = (peak_threads.max(threads), peak_rss_kib.max(rss));
            if let Some(s) = child.try_wait().unwrap() {
                break Some(s);
            }
            if start.elapsed() > self.timeout {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
        let mut stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
        if status.is_none() {
            stderr.push_str(&format!("\n[harness] killed after {:?}", self.timeout));
        }
        let report_text = report_path.as_ref().and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default();
        let report = if report_text.is_empty() {
            None
        } else {
            Some(serde_json::from_str(&report_text).unwrap_or_else(|e| {
                panic!("--report is not JSON ({e}):\n{report_text}\n--- stderr ---\n{stderr}")
            }))
        };
        Run {
            args: args.iter().map(|s| s.to_string()).collect(),
            code: status.and_then(|s| s.code()).unwrap_or(-1),
            stdout,
            stderr,
            report,
            report_text,
            peak_threads,
            peak_rss_kib,
        }
    }

    /// `imgsync sync --engine daemon --report report.json EXTRA…`
    pub fn sync(&self, extra: &[&str]) -> Run {
        let mut args = vec!["sync", "--engine", "daemon", "--report", "report.json"];
        args.extend_from_slice(extra);
        self.run(&args)
    }
}

/// Whether the docker CLI finds a buildx without any cli-plugins of ours (a
/// system-wide install, e.g. /usr/libexec/docker/cli-plugins).
pub fn system_buildx() -> bool {
    let ws = Workspace::new();
    std::process::Command::new("docker")
        .args(["buildx", "version"])
        .env("HOME", ws.home())
        .env("DOCKER_CONFIG", ws.home().join(".docker"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A workspace that sees the buildx plugin, or None (said on stderr) without
/// buildx; under CI (or IMGSYNC_TEST_REQUIRE_BUILDX=1) no plugin is a failure.
pub fn buildx_workspace(test: &str) -> Option<Workspace> {
    if !buildx_enabled() {
        if std::env::var("IMGSYNC_TEST_REQUIRE_BUILDX").is_ok_and(|v| v == "1") || std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{test}: under CI the imagetools tests must run, but no buildx plugin was installed for them (IMGSYNC_TEST_BUILDX is not 1); run them through scripts/test.sh");
        }
        // Written to the raw handle: libtest does not capture it, so the skip is visible.
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "SKIPPED {test}: docker buildx plugin not installed");
        return None;
    }
    let ws = Workspace::new();
    ws.link_buildx();
    Some(ws)
}

/// Whether the workspace's buildx has `imagetools create --prefer-index` (0.11+).
pub fn buildx_has_prefer_index(ws: &Workspace) -> bool {
    let out = std::process::Command::new("docker")
        .args(["buildx", "imagetools", "create", "--help"])
        .env("HOME", ws.home())
        .env("DOCKER_CONFIG", ws.home().join(".docker"))
        .output()
        .expect("docker buildx imagetools create --help");
    String::from_utf8_lossy(&out.stdout).contains("--prefer-index")
}
