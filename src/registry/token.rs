//! Bearer tokens (the distribution token protocol, as docker speaks it):
//! - realm and service come from the registry's challenge, never from the host;
//! - the scope is built: `repository:<name>:pull`, also when the challenge
//!   has none (Harbor);
//! - known user/password go along as Basic on a GET (with `account=`); an
//!   identity token is exchanged by a POST with `grant_type=refresh_token`;
//! - tokens are cached per host and repository until shortly before expiry,
//!   and concurrent askers of one key wait for one request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;

use super::credentials::Credential;

/// Tokens without `expires_in` live 60 s (the spec's default); docker treats
/// shorter lifetimes as 60 s too.
const MIN_LIFETIME: u64 = 60;

/// What to send to the realm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    pub post: bool,
    pub realm: String,
    /// Query parameters (GET) or form fields (POST), in order, unencoded.
    pub params: Vec<(String, String)>,
    /// `Authorization` header value (`Basic ...`), for a GET with user/password.
    pub authorization: Option<String>,
}

pub fn basic_header(username: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}")))
}

/// The token request for `scope`, as docker builds it.
pub fn request(realm: &str, service: Option<&str>, scope: &str, credential: Option<&Credential>) -> TokenRequest {
    request_scopes(realm, service, &[scope.to_string()], credential)
}

/// One token for several scopes: repeated `scope=` on a GET, one
/// space-separated `scope` on the OAuth POST (as distribution's client does).
pub fn request_scopes(realm: &str, service: Option<&str>, scopes: &[String], credential: Option<&Credential>) -> TokenRequest {
    let mut params = Vec::new();
    let scope_params = |params: &mut Vec<(String, String)>| {
        for s in scopes {
            params.push(("scope".to_string(), s.clone()));
        }
    };
    match credential {
        Some(Credential::IdentityToken { token, .. }) => {
            params.push(("grant_type".into(), "refresh_token".into()));
            params.push(("refresh_token".into(), token.clone()));
            if let Some(s) = service {
                params.push(("service".into(), s.into()));
            }
            params.push(("scope".into(), scopes.join(" ")));
            params.push(("client_id".into(), "imgsync".into()));
            TokenRequest { post: true, realm: realm.into(), params, authorization: None }
        }
        Some(Credential::Basic { username, password }) => {
            if let Some(s) = service {
                params.push(("service".into(), s.into()));
            }
            scope_params(&mut params);
            params.push(("account".into(), username.clone()));
            TokenRequest { post: false, realm: realm.into(), params, authorization: Some(basic_header(username, password)) }
        }
        None => {
            if let Some(s) = service {
                params.push(("service".into(), s.into()));
            }
            scope_params(&mut params);
            TokenRequest { post: false, realm: realm.into(), params, authorization: None }
        }
    }
}

/// A bearer token and when to stop using it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub value: String,
    pub refresh_at: Instant,
}

impl Token {
    pub fn fresh(&self, now: Instant) -> bool {
        now < self.refresh_at
    }
}

/// Reads `{"token": ..., "access_token": ..., "expires_in": N}`.
pub fn parse_response(body: &[u8], now: Instant) -> Result<Token, String> {
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(default)]
        token: Option<String>,
        #[serde(default)]
        access_token: Option<String>,
        #[serde(default)]
        expires_in: Option<u64>,
    }
    let a: Answer = serde_json::from_slice(body).map_err(|e| format!("token response is not JSON: {e}"))?;
    let value = a
        .token
        .filter(|t| !t.is_empty())
        .or(a.access_token.filter(|t| !t.is_empty()))
        .ok_or("token response has neither token nor access_token")?;
    let life = a.expires_in.unwrap_or(MIN_LIFETIME).max(MIN_LIFETIME);
    // Stop using it a little early: a tenth of its life, at most 30 s.
    let margin = (life / 10).min(30);
    Ok(Token { value, refresh_at: now + Duration::from_secs(life - margin) })
}

type Slot = Arc<Mutex<Option<Token>>>;

/// Tokens per (host, repository).
#[derive(Default)]
pub struct TokenCache {
    slots: Mutex<HashMap<(String, String), Slot>>,
}

impl TokenCache {
    fn slot(&self, host: &str, repo: &str) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.entry((host.to_string(), repo.to_string())).or_default().clone()
    }

    /// The cached fresh token, if any.
    pub fn cached(&self, host: &str, repo: &str) -> Option<String> {
        let slot = self.slot(host, repo);
        let t = slot.lock().unwrap_or_else(|e| e.into_inner());
        t.as_ref().filter(|t| t.fresh(Instant::now())).map(|t| t.value.clone())
    }

    /// Stores a token obtained for several repositories at once.
    pub fn put(&self, host: &str, repo: &str, token: Token) {
        let slot = self.slot(host, repo);
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(token);
    }

    /// The cached token, or `fetch`'s; one fetch at a time per key. A token
    /// equal to `stale` (just refused by the registry) is fetched anew.
    pub fn get_or_fetch<E>(
        &self,
        host: &str,
        repo: &str,
        stale: Option<&str>,
        fetch: impl FnOnce() -> Result<Token, E>,
    ) -> Result<String, E> {
        let slot = self.slot(host, repo);
        let mut t = slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tok) = t.as_ref() {
            if tok.fresh(Instant::now()) && Some(tok.value.as_str()) != stale {
                return Ok(tok.value.clone());
            }
        }
        let tok = fetch()?;
        let value = tok.value.clone();
        *t = Some(tok);
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn anonymous_get_with_service_and_built_scope() {
        let r = request("https://auth.docker.io/token", Some("registry.docker.io"), "repository:library/nginx:pull", None);
        assert!(!r.post);
        assert_eq!(r.params, p(&[("service", "registry.docker.io"), ("scope", "repository:library/nginx:pull")]));
        assert_eq!(r.authorization, None);
        // Harbor: no service in some setups, no scope in the challenge; ours is sent.
        let r = request("https://h/service/token", None, "repository:p/app:pull", None);
        assert_eq!(r.params, p(&[("scope", "repository:p/app:pull")]));
    }

    #[test]
    fn basic_on_the_token_get() {
        let c = Credential::Basic { username: "octo".into(), password: "ghp_x".into() };
        let r = request("https://ghcr.io/token", Some("ghcr.io"), "repository:o/i:pull", Some(&c));
        assert!(!r.post);
        assert_eq!(r.params, p(&[("service", "ghcr.io"), ("scope", "repository:o/i:pull"), ("account", "octo")]));
        assert_eq!(r.authorization.as_deref(), Some("Basic b2N0bzpnaHBfeA=="));
    }

    #[test]
    fn identity_token_is_a_refresh_grant_post() {
        let c = Credential::IdentityToken { username: None, token: "rt".into() };
        let r = request("https://acr.example.io/oauth2/token", Some("acr.example.io"), "repository:a:pull", Some(&c));
        assert!(r.post);
        assert_eq!(
            r.params,
            p(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", "rt"),
                ("service", "acr.example.io"),
                ("scope", "repository:a:pull"),
                ("client_id", "imgsync")
            ])
        );
        assert_eq!(r.authorization, None);
    }

    #[test]
    fn several_scopes() {
        let scopes = vec!["repository:a:pull".to_string(), "repository:b:pull".to_string()];
        let r = request_scopes("https://auth.docker.io/token", Some("registry.docker.io"), &scopes, None);
        assert_eq!(r.params, p(&[("service", "registry.docker.io"), ("scope", "repository:a:pull"), ("scope", "repository:b:pull")]));
        let c = Credential::IdentityToken { username: None, token: "rt".into() };
        let r = request_scopes("https://r/oauth2/token", None, &scopes, Some(&c));
        assert!(r.params.contains(&("scope".into(), "repository:a:pull repository:b:pull".into())));
    }

    #[test]
    fn responses() {
        let now = Instant::now();
        // Recorded from auth.docker.io (token shortened).
        let t = parse_response(br#"{"token":"eyJ.a.b","access_token":"eyJ.a.b","expires_in":300,"issued_at":"2026-11-25T18:00:00Z"}"#, now).unwrap();
        assert_eq!(t.value, "eyJ.a.b");
        assert_eq!(t.refresh_at, now + Duration::from_secs(270));
        // ACR's OAuth answer: access_token only; no expires_in -> 60 s.
        let t = parse_response(br#"{"access_token":"x"}"#, now).unwrap();
        assert_eq!((t.value.as_str(), t.refresh_at), ("x", now + Duration::from_secs(54)));
        // Too short a life is taken as 60 s.
        assert_eq!(parse_response(br#"{"token":"x","expires_in":5}"#, now).unwrap().refresh_at, now + Duration::from_secs(54));
        assert!(parse_response(br#"{"token":""}"#, now).is_err());
        assert!(parse_response(b"<html>", now).is_err());
    }

    #[test]
    fn cache_per_host_and_repository_single_flight() {
        let cache = TokenCache::default();
        let fetches = std::sync::atomic::AtomicUsize::new(0);
        let fetch = |v: &str| {
            fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(20));
            Ok::<_, ()>(Token { value: v.to_string(), refresh_at: Instant::now() + Duration::from_secs(60) })
        };
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| assert_eq!(cache.get_or_fetch("h", "a", None, || fetch("t1")).unwrap(), "t1"));
            }
        });
        assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(cache.cached("h", "a").as_deref(), Some("t1"));
        assert_eq!(cache.cached("h", "b"), None);
        assert_eq!(cache.cached("other", "a"), None);
        // A refused token is replaced.
        assert_eq!(cache.get_or_fetch("h", "a", Some("t1"), || fetch("t2")).unwrap(), "t2");
        // An expired one too.
        cache.get_or_fetch("h", "c", None, || Ok::<_, ()>(Token { value: "old".into(), refresh_at: Instant::now() })).unwrap();
        assert_eq!(cache.get_or_fetch("h", "c", None, || fetch("new")).unwrap(), "new");
    }
}
