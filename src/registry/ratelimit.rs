//! Pull quotas announced by registries (Docker Hub): `ratelimit-limit: 100;w=21600`
//! and `ratelimit-remaining: 76;w=21600`. The window (`w`, seconds) is read from
//! the headers, never assumed; the headers are missing for unlimited accounts.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RateLimit {
    pub limit: u64,
    pub remaining: u64,
    /// The window in seconds, when a header named it.
    pub window_s: Option<u64>,
}

impl RateLimit {
    /// What is left, in words: `76 of 100 pulls left per 6 h`.
    pub fn left(&self) -> String {
        let window = self.window_s.map(|w| format!(" per {}", human_window(w))).unwrap_or_default();
        format!("{} of {} pulls left{window}", self.remaining, self.limit)
    }
}

fn human_window(secs: u64) -> String {
    match secs {
        s if s >= 3600 && s % 3600 == 0 => format!("{} h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// One header value: `N` or `N;w=SECONDS` (other parameters ignored).
fn parse_value(v: &str) -> Option<(u64, Option<u64>)> {
    let mut parts = v.split(';');
    let n = parts.next()?.trim().parse().ok()?;
    let w = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case("w").then(|| v.trim().parse().ok()).flatten()
    });
    Some((n, w))
}

/// From the two header values; `None` unless both parse.
pub fn parse(limit: Option<&str>, remaining: Option<&str>) -> Option<RateLimit> {
    let (limit, w1) = parse_value(limit?)?;
    let (remaining, w2) = parse_value(remaining?)?;
    Some(RateLimit { limit, remaining, window_s: w2.or(w1) })
}

/// `Retry-After` (RFC 9110): delay-seconds or an HTTP-date; `None` when absent,
/// unreadable or in the past. Capping it is the retry policy's business.
pub fn retry_after(value: Option<&str>) -> Option<std::time::Duration> {
    let v = value?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(std::time::Duration::from_secs(secs));
    }
    let at = jiff::fmt::rfc2822::parse(v).ok()?.timestamp();
    let left = at.duration_since(jiff::Timestamp::now());
    std::time::Duration::try_from(left).ok().filter(|d| !d.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_or_date() {
        use std::time::Duration;
        assert_eq!(retry_after(Some("120")), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(Some(" 0 ")), Some(Duration::ZERO));
        assert_eq!(retry_after(Some("Sun, 06 Nov 1994 08:49:37 GMT")), None, "in the past");
        let later = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(90);
        let date = jiff::fmt::rfc2822::DateTimePrinter::new().timestamp_to_rfc9110_string(&later).unwrap();
        let d = retry_after(Some(&date)).unwrap();
        assert!(d <= Duration::from_secs(90) && d >= Duration::from_secs(80), "{d:?} from {date}");
        assert_eq!(retry_after(Some("soon")), None);
        assert_eq!(retry_after(None), None);
    }

    #[test]
    fn docker_hub_headers() {
        assert_eq!(
            parse(Some("100;w=21600"), Some("76;w=21600")),
            Some(RateLimit { limit: 100, remaining: 76, window_s: Some(21600) })
        );
        // Another window: taken as sent.
        assert_eq!(
            parse(Some("200;w=3600"), Some("0;w=3600")),
            Some(RateLimit { limit: 200, remaining: 0, window_s: Some(3600) })
        );
    }

    #[test]
    fn no_window_is_not_guessed() {
        assert_eq!(parse(Some("100"), Some(" 5 ")), Some(RateLimit { limit: 100, remaining: 5, window_s: None }));
        assert_eq!(parse(Some("100;x=1;W=60"), Some("5")), Some(RateLimit { limit: 100, remaining: 5, window_s: Some(60) }));
    }

    #[test]
    fn missing_or_broken() {
        assert_eq!(parse(None, None), None);
        assert_eq!(parse(Some("100;w=21600"), None), None);
        assert_eq!(parse(Some("lots"), Some("5")), None);
        assert_eq!(parse(Some("-1"), Some("5")), None);
    }
}
