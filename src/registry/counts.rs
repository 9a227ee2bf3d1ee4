//! Requests sent, by kind. A [`Tally`] is shared by the threads that work on
//! one entry (or one run); [`Counts`] is a snapshot of it, as the report shows it.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// What kind of request was sent: a manifest HEAD, a GET (manifest or tag
/// page), or a token request to an auth realm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Head,
    Get,
    Token,
}

/// Requests sent, by kind: `{"head": N, "get": N, "token": N}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Counts {
    pub head: u64,
    pub get: u64,
    pub token: u64,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.head + self.get + self.token
    }
}

impl std::ops::Add for Counts {
    type Output = Counts;
    fn add(self, o: Counts) -> Counts {
        Counts { head: self.head + o.head, get: self.get + o.get, token: self.token + o.token }
    }
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        *self = *self + o;
    }
}

/// Thread-safe counters; every request the client sends is added to the
/// caller's tally and to the client's own totals.
#[derive(Debug, Default)]
pub struct Tally {
    head: AtomicU64,
    get: AtomicU64,
    token: AtomicU64,
}

impl Tally {
    pub fn add(&self, kind: Kind) {
        let c = match kind {
            Kind::Head => &self.head,
            Kind::Get => &self.get,
            Kind::Token => &self.token,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Counts {
        Counts {
            head: self.head.load(Ordering::Relaxed),
            get: self.get.load(Ordering::Relaxed),
            token: self.token.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_counts_by_kind_and_sums() {
        let t = Tally::default();
        t.add(Kind::Head);
        t.add(Kind::Head);
        t.add(Kind::Token);
        let c = t.snapshot();
        assert_eq!(c, Counts { head: 2, get: 0, token: 1 });
        assert_eq!((c + Counts { head: 0, get: 5, token: 0 }).total(), 8);
        assert_eq!(serde_json::to_string(&c).unwrap(), r#"{"head":2,"get":0,"token":1}"#);
    }
}
