//! A small registry token server for `docker-registry serve` configured with
//! `auth: token:` (realm, service, issuer, rootcertbundle), behaving like
//! Docker Hub's and GHCR's: anonymous requests get pull tokens for public
//! repositories, Basic credentials get pull and push, identity (refresh)
//! tokens are exchanged by POST `grant_type=refresh_token`. Tokens are RS256
//! JWTs signed with a key from [`Pki::token_signer`], carrying the
//! certificate in `x5c` so the registry can verify it against its bundle.
//!
//! Every request is logged, so tests can assert the exact token requests.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::json;

use super::pki::Pki;

pub const SERVICE: &str = "imgsync-test-registry";
pub const ISSUER: &str = "imgsync-test-issuer";

/// One token request as the server saw it.
#[derive(Clone, Debug)]
pub struct Logged {
    pub method: String,
    /// `None`: anonymous. `Some(user)`: authenticated (Basic, password or refresh grant).
    pub user: Option<String>,
    pub scopes: Vec<String>,
    /// `repository:name:actions` actually granted.
    pub granted: Vec<String>,
    /// The HTTP status answered.
    pub status: u16,
}

#[derive(Clone, Default)]
pub struct TokenConfig {
    /// user -> password (Basic, or `grant_type=password`).
    pub users: BTreeMap<String, String>,
    /// refresh token -> user (`grant_type=refresh_token`).
    pub refresh_tokens: BTreeMap<String, String>,
    /// Repositories anonymous users cannot pull (like a private GHCR package).
    pub private: BTreeSet<String>,
    /// Users granted `pull` only, whatever they ask (a Docker Hub token left
    /// at "Public Repo Read-only").
    pub pull_only: BTreeSet<String>,
}

struct Shared {
    config: TokenConfig,
    key: ring::rsa::KeyPair,
    cert_der_b64: String,
    log: Mutex<Vec<Logged>>,
    next: AtomicU64,
    stop: AtomicBool,
}

pub struct TokenServer {
    port: u16,
    shared: Arc<Shared>,
    cert: PathBuf,
}

impl TokenServer {
    /// Listens on 127.0.0.1 (a free port); makes its signing key in `pki`.
    pub fn start(pki: &Pki, config: TokenConfig) -> TokenServer {
        let (cert, key) = pki.token_signer();
        let key_der = pem_der(&key, "PRIVATE KEY");
        let cert_der = pem_der(&cert, "CERTIFICATE");
        let key = ring::rsa::KeyPair::from_pkcs8(&key_der).expect("token key: PKCS#8 RSA");
        let shared = Arc::new(Shared {
            config,
            key,
            cert_der_b64: base64::engine::general_purpose::STANDARD.encode(cert_der),
            log: Mutex::new(Vec::new()),
            next: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let listener = TcpListener::bind("127.0.0.1:0").expect("token server: bind");
        let port = listener.local_addr().unwrap().port();
        let s = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let s = s.clone();
                std::thread::spawn(move || serve(stream, &s));
            }
        });
        TokenServer { port, shared, cert }
    }

    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// The certificate the registry must trust (`rootcertbundle`).
    pub fn cert(&self) -> &Path {
        &self.cert
    }

    /// The `auth:` section of a registry config using this server.
    pub fn registry_auth_yaml(&self) -> String {
        format!(
            "auth:\n  token:\n    realm: {}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
            self.realm(),
            self.cert.display()
        )
    }

    pub fn log(&self) -> Vec<Logged> {
        self.shared.log.lock().unwrap().clone()
    }

    pub fn requests(&self) -> usize {
        self.shared.log.lock().unwrap().len()
    }

    /// A pull+push token for `repo` as `user`, for test setup (not logged).
    pub fn token_for(&self, user: &str, repo: &str) -> String {
        sign(&self.shared, Some(user), &[format!("repository:{repo}:pull,push")])
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn pem_der(path: &Path, label: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap();
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let b64: String = text.split(&begin).nth(1).and_then(|r| r.split(&end).next()).expect(label).split_whitespace().collect();
    base64::engine::general_purpose::STANDARD.decode(b64).unwrap()
}

fn b64url(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// `repository:name:a,b` scopes -> granted access entries and their text.
fn grant(shared: &Shared, user: Option<&str>, scopes: &[String]) -> (Vec<serde_json::Value>, Vec<String>) {
    let mut access = Vec::new();
    let mut text = Vec::new();
    for scope in scopes {
        let mut parts = scope.splitn(3, ':');
        let (Some("repository"), Some(name), Some(actions)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let allowed: Vec<&str> = actions
            .split(',')
            .filter(|a| match (*a, user) {
                ("push", Some(u)) => !shared.config.pull_only.contains(u),
                ("pull", Some(_)) => true,
                ("pull", None) => !shared.config.private.contains(name),
                _ => false,
            })
            .collect();
        if !allowed.is_empty() {
            access.push(json!({"type": "repository", "name": name, "actions": allowed}));
            text.push(format!("repository:{name}:{}", allowed.join(",")));
        }
    }
    (access, text)
}

fn sign(shared: &Shared, user: Option<&str>, scopes: &[String]) -> String {
    let (access, _) = grant(shared, user, scopes);
    let t = now();
    let header = json!({"typ": "JWT", "alg": "RS256", "x5c": [shared.cert_der_b64]});
    let claims = json!({
        "iss": ISSUER,
        "sub": user.unwrap_or(""),
        "aud": SERVICE,
        "exp": t + 300,
        "nbf": t - 10,
        "iat": t,
        "jti": format!("jti-{}", shared.next.fetch_add(1, Ordering::SeqCst)),
        "access": access,
    });
    let signing_input = format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()));
    let mut sig = vec![0; shared.key.public().modulus_len()];
    shared
        .key
        .sign(&ring::signature::RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), signing_input.as_bytes(), &mut sig)
        .expect("RS256 signing");
    format!("{signing_input}.{}", b64url(&sig))
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn pairs(q: &str) -> Vec<(String, String)> {
    q.split('&').filter(|kv| !kv.is_empty()).map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (decode(k), decode(v))
    }).collect()
}

fn basic_user(shared: &Shared, auth: Option<&str>) -> Result<Option<String>, ()> {
    let Some(a) = auth else { return Ok(None) };
    let b64 = a.strip_prefix("Basic ").ok_or(())?;
    let text = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64.trim()).map_err(|_| ())?).map_err(|_| ())?;
    let (u, p) = text.split_once(':').ok_or(())?;
    match shared.config.users.get(u) {
        Some(pw) if pw == p => Ok(Some(u.to_string())),
        _ => Err(()),
    }
}

/// (status, body) for one request.
fn answer(shared: &Shared, method: &str, target: &str, auth: Option<&str>, body: &str) -> (u16, String, Logged) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut logged = Logged { method: method.to_string(), user: None, scopes: Vec::new(), granted: Vec::new(), status: 200 };
    let fail = |status: u16, mut logged: Logged, msg: &str| {
        logged.status = status;
        (status, json!({"errors": [{"code": "UNAUTHORIZED", "message": msg}]}).to_string(), logged)
    };
    if path != "/token" {
        return fail(404, logged, "not found");
    }
    let params = if method == "POST" { pairs(body) } else { pairs(query) };
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    logged.scopes = params.iter().filter(|(k, _)| k == "scope").flat_map(|(_, v)| v.split(' ').map(str::to_string)).collect();
    if get("service").as_deref() != Some(SERVICE) {
        return fail(400, logged, "unknown service");
    }
    let user = match (method, get("grant_type").as_deref()) {
        ("GET", _) => match basic_user(shared, auth) {
            Ok(u) => u,
            Err(()) => return fail(401, logged, "bad credentials"),
        },
        ("POST", Some("refresh_token")) => match get("refresh_token").and_then(|t| shared.config.refresh_tokens.get(&t).cloned()) {
            Some(u) => Some(u),
            None => return fail(401, logged, "bad refresh token"),
        },
        ("POST", Some("password")) => {
            let (u, p) = (get("username").unwrap_or_default(), get("password").unwrap_or_default());
            match shared.config.users.get(&u) {
                Some(pw) if *pw == p => Some(u),
                _ => return fail(401, logged, "bad credentials"),
            }
        }
        _ => return fail(400, logged, "unsupported request"),
    };
    logged.user = user.clone();
    logged.granted = grant(shared, user.as_deref(), &logged.scopes).1;
    let token = sign(shared, user.as_deref(), &logged.scopes);
    let body = json!({"token": token, "access_token": token, "expires_in": 300, "issued_at": "2026-01-01T00:00:00Z"});
    (200, body.to_string(), logged)
}

fn serve(stream: TcpStream, shared: &Shared) {
    let Ok(mut out) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
        let mut auth = None;
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                match k.trim().to_ascii_lowercase().as_str() {
                    "authorization" => auth = Some(v.trim().to_string()),
                    "content-length" => len = v.trim().parse().unwrap_or(0),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; len.min(1 << 20)];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (status, text, logged) = answer(shared, &method, &target, auth.as_deref(), &String::from_utf8_lossy(&body));
        shared.log.lock().unwrap().push(logged);
        let resp = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{text}",
            text.len()
        );
        if out.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}
