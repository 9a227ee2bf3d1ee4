//! A credential value that never shows itself in Debug output or logs, and
//! which variables hold one.

use std::fmt;

/// A credential. Its Debug never shows the value; only `expose` does.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Variables that hold credentials: never read from config.env, never passed to children.
pub fn is_secret_key(k: &str) -> bool {
    // A webhook URL carries its token in the path.
    k.ends_with("_PASSWORD") || k.ends_with("_TOKEN") || k == "WEBHOOK_URL"
}
