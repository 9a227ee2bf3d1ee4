//! The "last sync" badge in README.md.
//!
//! The marker is a shields.io static badge whose label is `last sync`:
//!
//! ```text
//! ![last sync](https://img.shields.io/badge/last%20sync-MESSAGE-COLOR)
//! ```
//!
//! It may carry a query (`...-COLOR?style=flat`) and sit inside a link
//! (`[![last sync](...)](URL)`). Only MESSAGE is replaced, by the time as
//! `YYYY-MM-DD HH:MM TZ` in shields' escaping (`-` → `--`, `_` → `__`,
//! space → `%20`); every other byte of the file stays as it was, CRLF included.
//! A README without the marker is left alone.
//!
//! Time zones (`BADGE_TZ`, default UTC): `UTC`, fixed offsets (`+08:00`,
//! `-0330`, `UTC+8`, `GMT+5:30`), and a few IANA names of places that keep one
//! offset all year (no daylight saving): Asia/Shanghai, Asia/Hong_Kong,
//! Asia/Macau, Asia/Taipei, Asia/Singapore, Asia/Tokyo, Asia/Seoul,
//! Asia/Kolkata. Zones with daylight saving need a database this crate does
//! not carry, so they are refused with a hint to use an offset.

use std::io;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// What precedes MESSAGE in the badge URL.
pub const MARKER: &str = "![last sync](https://img.shields.io/badge/last%20sync-";

/// A fixed offset from UTC and how it is shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tz {
    offset_minutes: i32,
    label: String,
}

/// Places with one offset all year, in minutes east of UTC.
const FIXED_ZONES: &[(&str, i32)] = &[
    ("Asia/Shanghai", 480),
    ("Asia/Hong_Kong", 480),
    ("Asia/Macau", 480),
    ("Asia/Taipei", 480),
    ("Asia/Singapore", 480),
    ("Asia/Tokyo", 540),
    ("Asia/Seoul", 540),
    ("Asia/Kolkata", 330),
    ("Asia/Calcutta", 330),
];

impl Tz {
    pub fn utc() -> Tz {
        Tz { offset_minutes: 0, label: "UTC".into() }
    }

    /// An offset in minutes east of UTC, at most ±14:00.
    pub fn fixed(offset_minutes: i32) -> Result<Tz, String> {
        if offset_minutes.abs() > 14 * 60 {
            return Err(format!("offset {offset_minutes} minutes is beyond ±14:00"));
        }
        if offset_minutes == 0 {
            return Ok(Tz::utc());
        }
        let sign = if offset_minutes < 0 { '-' } else { '+' };
        let m = offset_minutes.abs();
        Ok(Tz { offset_minutes, label: format!("UTC{sign}{:02}:{:02}", m / 60, m % 60) })
    }

    /// Parses a `BADGE_TZ` value; empty means UTC. The error does not name
    /// the key: the caller adds `BADGE_TZ=VALUE: `.
    pub fn parse(s: &str) -> Result<Tz, String> {
        let t = s.trim();
        let upper = t.to_ascii_uppercase();
        if matches!(upper.as_str(), "" | "UTC" | "GMT" | "Z" | "ETC/UTC" | "ETC/GMT") {
            return Ok(Tz::utc());
        }
        if let Some((_, m)) = FIXED_ZONES.iter().find(|(name, _)| name.eq_ignore_ascii_case(t)) {
            return Tz::fixed(*m);
        }
        let offset = upper.strip_prefix("UTC").or_else(|| upper.strip_prefix("GMT")).unwrap_or(&upper);
        parse_offset(offset).and_then(|m| Tz::fixed(m).ok()).ok_or_else(|| {
            format!(
                "expected UTC, an offset such as +08:00 or UTC+8, or one of {} \
                 (zones with daylight saving are not supported: use their current offset)",
                FIXED_ZONES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
            )
        })
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn offset_minutes(&self) -> i32 {
        self.offset_minutes
    }
}

/// `+8`, `+08`, `+0800`, `+08:00`, `-3:30` → minutes east of UTC.
fn parse_offset(s: &str) -> Option<i32> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = match rest.split_once(':') {
        Some((h, m)) => (h, m),
        None if rest.len() == 4 => rest.split_at(2),
        None => (rest, "0"),
    };
    let digits = |x: &str| !x.is_empty() && x.len() <= 2 && x.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || !digits(m) {
        return None;
    }
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    (m < 60).then_some(sign * (h * 60 + m))
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// `YYYY-MM-DD HH:MM TZ` for a Unix time.
pub fn format_time(unix_secs: i64, tz: &Tz) -> String {
    let local = unix_secs + i64::from(tz.offset_minutes) * 60;
    let (days, secs) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} {}", secs / 3600, secs % 3600 / 60, tz.label)
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Text as one part of a shields.io badge path.
pub fn shields_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '-' => out.push_str("--"),
            '_' => out.push_str("__"),
            c if c.is_ascii_alphanumeric() || matches!(c, '.' | '~' | ':') => out.push(c),
            c => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
        }
    }
    out
}

/// The README with every marker's MESSAGE set to `unix_secs` in `tz`; `None`
/// when there is no marker.
pub fn rewrite_badge(readme: &str, unix_secs: i64, tz: &Tz) -> Option<String> {
    let message = shields_escape(&format_time(unix_secs, tz));
    let mut out = String::with_capacity(readme.len() + 32);
    let mut rest = readme;
    let mut found = false;
    while let Some(at) = rest.find(MARKER) {
        let start = at + MARKER.len();
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        if let Some(len) = message_len(rest) {
            out.push_str(&message);
            rest = &rest[len..];
            found = true;
        }
    }
    out.push_str(rest);
    found.then_some(out)
}

/// The length of MESSAGE in `MESSAGE-COLOR[?query])...`: up to the last `-`
/// that is not part of an escaped `--`. `None` when the badge is malformed.
fn message_len(s: &str) -> Option<usize> {
    let path_end = s.find(|c: char| matches!(c, ')' | '?' | '#') || c.is_whitespace())?;
    let after = &s[path_end..];
    let closed = after.find(')').is_some_and(|i| !after[..i].contains(['\n', '\r', '(']));
    if !closed {
        return None;
    }
    let path = &s.as_bytes()[..path_end];
    let mut sep = None;
    let mut i = 0;
    while i < path.len() {
        if path[i] == b'-' {
            if path.get(i + 1) == Some(&b'-') {
                i += 2;
                continue;
            }
            sep = Some(i);
        }
        i += 1;
    }
    // An empty COLOR would make shields read MESSAGE as the color.
    sep.filter(|&i| i + 1 < path.len())
}

/// Sets the badge in the file at `path`; false when the file has no marker.
/// The file is written only when its text changes (not within the same minute).
pub fn rewrite_file(path: &Path, unix_secs: i64, tz: &Tz) -> io::Result<bool> {
    let text = std::fs::read_to_string(path)?;
    match rewrite_badge(&text, unix_secs, tz) {
        Some(new) if new != text => {
            std::fs::write(path, new)?;
            Ok(true)
        }
        Some(_) => Ok(true),
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2024-02-29 23:45:00 UTC, a leap day just before midnight.
    const T: i64 = 1_709_250_300;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(format_time(T, &Tz::utc()), "2024-02-29 23:45 UTC");
        assert_eq!(format_time(T, &Tz::parse("+08:00").unwrap()), "2024-03-01 07:45 UTC+08:00");
        assert_eq!(format_time(T, &Tz::parse("UTC-3:30").unwrap()), "2024-02-29 20:15 UTC-03:30");
        assert_eq!(format_time(0, &Tz::parse("-01:00").unwrap()), "1969-12-31 23:00 UTC-01:00");
        assert_eq!(format_time(1_767_225_599, &Tz::utc()), "2025-12-31 23:59 UTC");
    }

    #[test]
    fn zones() {
        for (s, m) in [("", 0), ("utc", 0), ("GMT", 0), ("+8", 480), ("UTC+8", 480), ("gmt+08", 480), ("+0530", 330), ("-03:30", -210), ("UTC+14:00", 840), ("Asia/Shanghai", 480), ("asia/kolkata", 330), ("UTC+0", 0)] {
            assert_eq!(Tz::parse(s).map(|t| t.offset_minutes()), Ok(m), "{s}");
        }
        assert_eq!(Tz::parse("Asia/Shanghai").unwrap().label(), "UTC+08:00");
        assert_eq!(Tz::parse("+00:00").unwrap().label(), "UTC");
        for bad in ["Europe/Berlin", "America/New_York", "+15:00", "+8:60", "8", "+", "UTC+", "+123", "CST"] {
            let e = Tz::parse(bad).unwrap_err();
            assert!(e.starts_with("expected UTC, an offset"), "{bad}: {e}");
        }
    }

    #[test]
    fn escaping() {
        assert_eq!(shields_escape("2024-02-29 23:45 UTC+08:00"), "2024--02--29%2023:45%20UTC%2B08:00");
        assert_eq!(shields_escape("a_b/c?"), "a__b%2Fc%3F");
    }

    #[test]
    fn rewrites_only_the_message() {
        let readme = "# x\n\n![last sync](https://img.shields.io/badge/last%20sync-never-blue)\n\ntext - with_dashes\n";
        let new = rewrite_badge(readme, T, &Tz::utc()).unwrap();
        assert_eq!(
            new,
            "# x\n\n![last sync](https://img.shields.io/badge/last%20sync-2024--02--29%2023:45%20UTC-blue)\n\ntext - with_dashes\n"
        );
        // Again, later: the previous date (with its `--`) is replaced whole.
        let again = rewrite_badge(&new, T + 3600, &Tz::parse("+08:00").unwrap()).unwrap();
        assert!(again.contains("last%20sync-2024--03--01%2008:45%20UTC%2B08:00-blue)"), "{again}");
        // Same minute: the same text.
        assert_eq!(rewrite_badge(&new, T + 10, &Tz::utc()).as_deref(), Some(new.as_str()));
    }

    #[test]
    fn keeps_query_link_and_crlf() {
        let readme = "a\r\n[![last sync](https://img.shields.io/badge/last%20sync-x---brightgreen?style=flat&logo=docker)](https://example.com/actions)\r\nb\r\n";
        let new = rewrite_badge(readme, T, &Tz::utc()).unwrap();
        assert_eq!(
            new,
            "a\r\n[![last sync](https://img.shields.io/badge/last%20sync-2024--02--29%2023:45%20UTC-brightgreen?style=flat&logo=docker)](https://example.com/actions)\r\nb\r\n"
        );
        let (old_lines, new_lines): (Vec<_>, Vec<_>) = (readme.split("\r\n").collect(), new.split("\r\n").collect());
        assert_eq!(old_lines.len(), new_lines.len());
        for (i, (o, n)) in old_lines.iter().zip(&new_lines).enumerate() {
            assert_eq!(o == n, i != 1, "line {i}");
        }
    }

    #[test]
    fn no_marker_or_malformed() {
        assert_eq!(rewrite_badge("# readme\n![build](https://img.shields.io/badge/build-ok-green)\n", T, &Tz::utc()), None);
        assert_eq!(rewrite_badge("", T, &Tz::utc()), None);
        // No color, or no closing parenthesis on the line: not touched.
        let odd = "![last sync](https://img.shields.io/badge/last%20sync-never)\n![last sync](https://img.shields.io/badge/last%20sync-never-blue\n)";
        assert_eq!(rewrite_badge(odd, T, &Tz::utc()), None);
        // A malformed marker next to a good one: only the good one changes.
        let mixed = format!("{odd}\n![last sync](https://img.shields.io/badge/last%20sync-never-blue)");
        let new = rewrite_badge(&mixed, T, &Tz::utc()).unwrap();
        assert_eq!(new.strip_suffix("2024--02--29%2023:45%20UTC-blue)").unwrap(), &mixed[..mixed.len() - "never-blue)".len()]);
    }

    #[test]
    fn file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("README.md");
        std::fs::write(&p, "![last sync](https://img.shields.io/badge/last%20sync-never-blue)").unwrap();
        assert!(rewrite_file(&p, T, &Tz::utc()).unwrap());
        assert!(rewrite_file(&p, T, &Tz::utc()).unwrap());
        assert!(std::fs::read_to_string(&p).unwrap().contains("2024--02--29"));
        let plain = dir.path().join("PLAIN.md");
        std::fs::write(&plain, "# no badge\n").unwrap();
        assert!(!rewrite_file(&plain, T, &Tz::utc()).unwrap());
        assert_eq!(std::fs::read_to_string(&plain).unwrap(), "# no badge\n");
        assert!(unix_now() > T);
    }
}
