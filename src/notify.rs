//! A chat or HTTP notification after a run: what synced, what failed and
//! why, sent to the [`Webhook`] the settings name.
//!
//! Bodies (all plain text, so no format's markup can be broken by a docker
//! message): Feishu/Lark `{"msg_type":"text","content":{"text":T}}`, DingTalk
//! and WeCom `{"msgtype":"text","text":{"content":T}}`, Slack `{"text":T}`
//! (with `&<>` escaped as Slack requires), Discord `{"content":T,
//! "allowed_mentions":{"parse":[]}}` (no @everyone from an error text), and
//! generic `{"source":"imgsync",...}` with every synced and failed target plus
//! the same text (so Mattermost-style `{"text":..}` receivers work too).
//! Texts are cut to each service's limit (WeCom 2048 bytes, Discord 2000
//! characters), failures first, ending with "… and N more".
//!
//! DingTalk: use the "custom keywords" security setting with the keyword
//! `imgsync` (every message starts with it); signed ("加签") robots are not
//! supported. Feishu/Lark: signature verification is not supported either.
//!
//! A webhook never fails the sync: `Webhook::notify` returns an `Outcome`
//! for the caller to log.

use std::fmt;
use std::time::Duration;

use serde_json::{json, Value};

use crate::report::{EntryReport, Report, Status};
use crate::sanitize::clip;
use crate::webhook::{check_url, origin, Format, On, Webhook};

impl Webhook {
    /// Sends the run's summary when `on` asks for it.
    pub fn notify(&self, report: &Report) -> Outcome {
        if !should_send(self.on, report) {
            return Outcome::Skipped;
        }
        let body = body_with_link(self.format, report, self.link.as_deref());
        match send(self.secret().expose(), &body, self.timeout) {
            Ok(()) => Outcome::Sent { to: self.origin(), format: self.format },
            Err(e) => Outcome::Failed(e),
        }
    }
}

pub fn should_send(on: On, report: &Report) -> bool {
    match on {
        On::Always => true,
        On::Change => report.summary.synced > 0 || report.failed(),
        On::Failure => report.failed(),
    }
}

/// One synced or failed target (or an entry that failed before any target).
struct Item<'a> {
    entry: &'a EntryReport,
    reference: Option<&'a str>,
    error: Option<&'a str>,
    hint: Option<&'a str>,
}

fn items(report: &Report) -> (Vec<Item<'_>>, Vec<Item<'_>>) {
    let (mut synced, mut failed) = (Vec::new(), Vec::new());
    for e in &report.entries {
        if e.error.is_some() && !e.interrupted() {
            failed.push(Item { entry: e, reference: None, error: e.error.as_deref(), hint: e.hint.as_deref() });
        }
        for t in &e.targets {
            let item = Item { entry: e, reference: Some(&t.reference), error: t.error.as_deref(), hint: t.hint.as_deref() };
            match t.status {
                _ if t.failed() => failed.push(item),
                Status::Synced | Status::Pulled => synced.push(item),
                Status::Failed => failed.push(item),
                Status::UpToDate | Status::WouldSync | Status::Present | Status::Interrupted => {}
            }
        }
    }
    (synced, failed)
}

/// The request body for `format`.
pub fn body(format: Format, report: &Report) -> Value {
    body_with_link(format, report, None)
}

/// As `body`, with a link to the run (e.g. the Actions run page) at the end.
pub fn body_with_link(format: Format, report: &Report, link: Option<&str>) -> Value {
    let text = text(report, link, format.limit());
    match format {
        Format::Feishu => json!({"msg_type": "text", "content": {"text": text}}),
        Format::DingTalk | Format::WeCom => json!({"msgtype": "text", "text": {"content": text}}),
        Format::Slack => json!({"text": slack_escape(&text)}),
        Format::Discord => json!({"content": text, "allowed_mentions": {"parse": []}}),
        Format::Generic => {
            let (synced, failed) = items(report);
            let s = &report.summary;
            let mut v = json!({
                "source": "imgsync",
                "engine": report.engine,
                "summary": {"synced": s.synced, "up_to_date": s.up_to_date, "would_sync": s.would_sync, "failed": s.failed},
                "synced": synced.iter().map(|i| json!({"line": i.entry.line, "source": i.entry.source, "ref": i.reference})).collect::<Vec<_>>(),
                "failed": failed.iter().map(|i| json!({"line": i.entry.line, "source": i.entry.source, "ref": i.reference, "error": i.error, "hint": i.hint})).collect::<Vec<_>>(),
                "text": text,
            });
            if let Some(l) = link {
                v["run_url"] = json!(l);
            }
            v
        }
    }
}

/// The human message, at most `limit` bytes: failures first, each with its hint.
fn text(report: &Report, link: Option<&str>, limit: usize) -> String {
    let s = &report.summary;
    let mut head = format!("imgsync: {} synced, {} failed, {} up-to-date", s.synced, s.failed, s.up_to_date);
    if s.would_sync > 0 {
        head.push_str(&format!(", {} would sync", s.would_sync));
    }
    let (synced, failed) = items(report);
    let arrow = |i: &Item| match i.reference {
        Some(r) => format!("- {} → {}", i.entry.source, r),
        None => format!("- {}", i.entry.source),
    };
    // One line per root cause: a wrong password is one message, not one per entry.
    let causes = crate::root_cause::root_causes(report);
    let mut failed_lines = causes.iter().map(|c| {
        let first = &c.members[0];
        let head = match c.members.len() {
            1 => failed.iter().find(|i| i.entry.line == first.line && i.reference == first.reference).map(&arrow).unwrap_or_default(),
            _ => format!("- {} ({})", c.summary(), c.lines()),
        };
        let why = c.hint.or_else(|| first.error.lines().next()).unwrap_or("failed");
        format!("{head}\n  {}", clip(why, 200))
    });
    let mut synced_lines = synced.iter().map(arrow);
    // A section's title travels with its first item, so no title stands alone.
    let mut blocks: Vec<String> = Vec::new();
    if let Some(first) = failed_lines.next() {
        blocks.push(format!("Failed ({}):\n{first}", failed.len()));
        blocks.extend(failed_lines);
    }
    if let Some(first) = synced_lines.next() {
        blocks.push(format!("Synced ({}):\n{first}", synced.len()));
        blocks.extend(synced_lines);
    }
    let tail = link.map(|l| format!("\n{l}")).unwrap_or_default();
    // Room for the head, the tail and a "… and N more" line.
    let mut used = head.len() + tail.len() + 40;
    let mut out = head;
    let mut shown = 0;
    for b in &blocks {
        if used + b.len() + 1 > limit {
            break;
        }
        used += b.len() + 1;
        out.push('\n');
        out.push_str(b);
        shown += 1;
    }
    if shown < blocks.len() {
        out.push_str(&format!("\n… and {} more in the run log", blocks.len() - shown));
    }
    out.push_str(&tail);
    out
}

/// Slack's three control characters in message text.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Removes from `msg` every part of `url` that may hold a token: the URL
/// itself (shown as its origin), the user info, and every path segment,
/// query value and the fragment, as written and percent-decoded. Those of
/// three or more characters go wherever they appear; shorter ones, and the
/// query's keys (names such as `key` or `access_token`), where they stand
/// alone (not inside a longer word), so the message stays readable.
fn redact(msg: &str, url: &str) -> String {
    let url = url.trim();
    let mut out = msg.replace(url, &origin(url));
    let Ok(u) = url::Url::parse(url) else { return out };
    // (piece, anywhere): `anywhere` false means whole words only.
    let mut pieces: Vec<(String, bool)> = Vec::new();
    pieces.push((u.username().to_string(), true));
    pieces.extend(u.password().map(|p| (p.to_string(), true)));
    pieces.extend(u.path().split('/').map(|p| (p.to_string(), true)));
    if let Some(q) = u.query() {
        for part in q.split(['&', ';']) {
            match part.split_once('=') {
                Some((k, v)) => pieces.extend([(k.to_string(), false), (v.to_string(), true)]),
                None => pieces.push((part.to_string(), true)),
            }
        }
    }
    pieces.extend(u.fragment().map(|f| (f.to_string(), true)));
    let decoded: Vec<(String, bool)> = pieces
        .iter()
        .map(|(p, any)| (percent_encoding::percent_decode_str(p).decode_utf8_lossy().into_owned(), *any))
        .collect();
    pieces.extend(decoded);
    pieces.retain(|(p, _)| !p.is_empty());
    pieces.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
    pieces.dedup();
    // Whole remainders first, e.g. "/robot/send?access_token=..." → "/…".
    if let Some(i) = url.find("://").and_then(|i| url[i + 3..].find(['/', '?', '#']).map(|j| i + 3 + j)) {
        if url.len() - i > 1 {
            out = out.replace(&url[i..], "/…");
        }
    }
    for (p, anywhere) in &pieces {
        out = if *anywhere && p.chars().count() >= 3 { out.replace(p.as_str(), "…") } else { replace_word(&out, p) };
    }
    out
}

/// Replaces `word` where it is not part of a longer alphanumeric run.
fn replace_word(text: &str, word: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let alnum_at_end = |s: &str| s.chars().next_back().is_some_and(char::is_alphanumeric);
    while let Some(i) = rest.find(word) {
        let (before, after) = (&rest[..i], &rest[i + word.len()..]);
        let joined_before = if before.is_empty() { alnum_at_end(&out) } else { alnum_at_end(before) };
        let joined_after = after.chars().next().is_some_and(char::is_alphanumeric);
        let standalone = !joined_before && !joined_after;
        out.push_str(before);
        out.push_str(if standalone { "…" } else { word });
        rest = after;
    }
    out.push_str(rest);
    out
}

/// POSTs `body` as JSON. Any answer but 2xx, and a 2xx whose JSON carries a
/// non-zero `errcode` (DingTalk, WeCom) or `code` (Feishu), is an error. The
/// error never contains more of the URL than `origin(url)`.
pub fn send(url: &str, body: &Value, timeout: Duration) -> Result<(), String> {
    let url = url.trim();
    let to = origin(url);
    check_url(url).map_err(|e| format!("webhook: {e}"))?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(concat!("imgsync/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let fail = |why: String| format!("webhook to {to} failed: {}", redact(&why, url));
    let mut resp = agent.post(url).send_json(body).map_err(|e| match e {
        ureq::Error::Timeout(_) => fail(format!("no answer within {:.1}s", timeout.as_secs_f64())),
        e => fail(e.to_string()),
    })?;
    let status = resp.status().as_u16();
    let text = resp.body_mut().with_config().limit(64 * 1024).read_to_string().unwrap_or_default();
    if !(200..300).contains(&status) {
        let detail = clip(text.lines().next().unwrap_or(""), 200);
        return Err(fail(if detail.is_empty() { format!("HTTP {status}") } else { format!("HTTP {status}: {detail}") }));
    }
    if let Ok(v) = serde_json::from_str::<Value>(&text) {
        let nonzero = |k: &str| v.get(k).and_then(Value::as_i64).filter(|c| *c != 0);
        let code = nonzero("errcode").or_else(|| (Format::from_url(url) == Format::Feishu).then(|| nonzero("code")).flatten());
        if let Some(code) = code {
            let msg = ["errmsg", "msg"].iter().find_map(|k| v.get(*k).and_then(Value::as_str)).unwrap_or("");
            return Err(fail(format!("the service answered error {code}: {}", clip(msg, 200))));
        }
    }
    Ok(())
}

/// What became of a notification. Logged by the caller, never fatal.
#[must_use]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `WEBHOOK_ON` did not ask for a message for this run.
    Skipped,
    Sent { to: String, format: Format },
    Failed(String),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Skipped => f.write_str("webhook: nothing to report (WEBHOOK_ON)"),
            Outcome::Sent { to, format } => write!(f, "webhook: sent a {} message to {to}", format.as_str()),
            Outcome::Failed(e) => write!(f, "{e} (the sync itself is unaffected)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::TargetReport;

    fn target(reference: &str, status: Status, error: Option<&str>, hint: Option<&str>) -> TargetReport {
        TargetReport { target: "ghcr".into(), reference: reference.into(), status, error: error.map(Into::into), hint: hint.map(Into::into), why: Default::default(), signatures: None }
    }

    fn entry(line: usize, source: &str, targets: Vec<TargetReport>, error: Option<&str>, hint: Option<&str>) -> EntryReport {
        EntryReport { line, source: source.into(), selected_by: None, platforms: vec![], targets, error: error.map(Into::into), hint: hint.map(Into::into), docker_calls: 1, requests: Default::default() }
    }

    fn report() -> Report {
        Report::new(
            "daemon",
            vec![
                entry(
                    3,
                    "docker.io/library/nginx:alpine",
                    vec![target("ghcr.io/o/nginx:alpine", Status::Synced, None, None), target("r.example/n/nginx:alpine", Status::UpToDate, None, None)],
                    None,
                    None,
                ),
                entry(
                    5,
                    "docker.io/library/busybox:1.36",
                    vec![target("ghcr.io/o/busybox:1.36", Status::Failed, Some("denied: <write_package>\nmore"), Some("give the token write access & retry"))],
                    None,
                    None,
                ),
                entry(9, "docker.io/library/gone:1", vec![], Some("manifest unknown"), None),
            ],
        )
    }

    const TEXT: &str = "imgsync: 1 synced, 2 failed, 1 up-to-date
Failed (2):
- docker.io/library/busybox:1.36 → ghcr.io/o/busybox:1.36
  give the token write access & retry
- docker.io/library/gone:1
  manifest unknown
Synced (1):
- docker.io/library/nginx:alpine → ghcr.io/o/nginx:alpine";

    #[test]
    fn bodies() {
        let r = report();
        assert_eq!(body(Format::Feishu, &r), json!({"msg_type": "text", "content": {"text": TEXT}}));
        assert_eq!(body(Format::DingTalk, &r), json!({"msgtype": "text", "text": {"content": TEXT}}));
        assert_eq!(body(Format::WeCom, &r), json!({"msgtype": "text", "text": {"content": TEXT}}));
        assert_eq!(body(Format::Slack, &r), json!({"text": TEXT.replace('&', "&amp;")}));
        assert_eq!(body(Format::Discord, &r), json!({"content": TEXT, "allowed_mentions": {"parse": []}}));
        assert_eq!(
            body(Format::Generic, &r),
            json!({
                "source": "imgsync",
                "engine": "daemon",
                "summary": {"synced": 1, "up_to_date": 1, "would_sync": 0, "failed": 2},
                "synced": [{"line": 3, "source": "docker.io/library/nginx:alpine", "ref": "ghcr.io/o/nginx:alpine"}],
                "failed": [
                    {"line": 5, "source": "docker.io/library/busybox:1.36", "ref": "ghcr.io/o/busybox:1.36", "error": "denied: <write_package>\nmore", "hint": "give the token write access & retry"},
                    {"line": 9, "source": "docker.io/library/gone:1", "ref": null, "error": "manifest unknown", "hint": null},
                ],
                "text": TEXT,
            })
        );
        let linked = body_with_link(Format::Generic, &r, Some("https://github.com/o/r/actions/runs/1"));
        assert_eq!(linked["run_url"], "https://github.com/o/r/actions/runs/1");
        assert!(linked["text"].as_str().unwrap().ends_with("\nhttps://github.com/o/r/actions/runs/1"));
    }

    #[test]
    fn long_runs_are_cut_to_the_limit() {
        let entries: Vec<EntryReport> = (0..300)
            .map(|i| {
                let status = if i % 3 == 0 { Status::Failed } else { Status::Synced };
                // A hint each: 100 root causes, not one.
                let hint = format!("hint {i}");
                entry(i + 1, &format!("docker.io/library/image{i}:1.0"), vec![target(&format!("ghcr.io/o/image{i}:1.0"), status, Some("boom"), Some(&hint))], None, None)
            })
            .collect();
        let r = Report::new("daemon", entries);
        let link = "https://github.com/o/r/actions/runs/7";
        for (format, limit) in [(Format::Discord, 2000), (Format::WeCom, 2048)] {
            let b = body_with_link(format, &r, Some(link));
            let t = b.pointer("/content").or_else(|| b.pointer("/text/content")).and_then(Value::as_str).unwrap();
            assert!(t.len() <= limit, "{} bytes", t.len());
            assert!(t.starts_with("imgsync: 200 synced, 100 failed"));
            assert!(t.contains("Failed (100):\n- docker.io/library/image0:1.0"));
            assert!(t.contains(" more in the run log\n"), "{t}");
            assert!(t.ends_with(link));
        }
        // Generic keeps every item in the structured part.
        let g = body(Format::Generic, &r);
        assert_eq!(g["synced"].as_array().unwrap().len(), 200);
        assert_eq!(g["failed"].as_array().unwrap().len(), 100);
    }

    #[test]
    fn one_root_cause_is_one_message() {
        let entries: Vec<EntryReport> = (1..=5)
            .map(|i| {
                let error = format!("login to r.example as bot refused: `HEAD https://r.example/v2/ns/i{i}/manifests/1` failed: HTTP 401");
                entry(i, &format!("docker.io/library/i{i}:1"), vec![target(&format!("r.example/ns/i{i}:1"), Status::Failed, Some(&error), Some("set CUSTOM_PASSWORD"))], None, None)
            })
            .collect();
        let t = text(&Report::new("daemon", entries), None, 4000);
        assert_eq!(t, "imgsync: 0 synced, 5 failed, 0 up-to-date\nFailed (5):\n- 5 entries: login to r.example as bot refused (lines 1, 2, 3, 4, 5)\n  set CUSTOM_PASSWORD");
    }

    #[test]
    fn when_to_send() {
        let failed = report();
        let synced = Report::new("d", vec![entry(1, "a", vec![target("r/a:1", Status::Synced, None, None)], None, None)]);
        let quiet = Report::new("d", vec![entry(1, "a", vec![target("r/a:1", Status::UpToDate, None, None)], None, None)]);
        let planned = Report::new("d", vec![entry(1, "a", vec![target("r/a:1", Status::WouldSync, None, None)], None, None)]);
        let empty = Report::new("d", vec![]);
        let table = [
            (On::Always, [true, true, true, true, true]),
            (On::Change, [true, true, false, false, false]),
            (On::Failure, [true, false, false, false, false]),
        ];
        for (on, expect) in table {
            let got = [&failed, &synced, &quiet, &planned, &empty].map(|r| should_send(on, r));
            assert_eq!(got, expect, "{on:?}");
        }
        assert_eq!(On::parse(" Failure ").unwrap(), On::Failure);
        assert_eq!(On::default(), On::Change);
        assert!(On::parse("sometimes").is_err());
    }

    #[test]
    fn sends_only_to_https_except_on_loopback() {
        assert!(send("http://hooks.slack.com/x", &json!({}), Duration::from_secs(1)).unwrap_err().contains("https"));
    }

    #[test]
    fn redaction() {
        let url = "https://oapi.dingtalk.com/robot/send?access_token=abcdef123456";
        let m = redact(&format!("error for {url}: and token abcdef123456 and path /robot/send?access_token=abcdef123456"), url);
        assert!(!m.contains("abcdef123456"), "{m}");
        assert!(m.starts_with("error for https://oapi.dingtalk.com:"), "{m}");
        // Short secrets too: every path and query segment is redacted.
        let url = "https://hook.example/h/abc12?k=xy&sig=Q9z";
        let m = redact("400: bad token abc12 (xy) sig Q9z; k=xy; the key is fine", url);
        for secret in ["abc12", "xy", "Q9z"] {
            assert!(!m.contains(secret), "{secret} in {m}");
        }
        assert!(m.contains("the key is fine"), "{m}");
        let m = redact("echo: a%2Fb c/d", "https://h.example/x/a%2Fb");
        assert!(!m.contains("a%2Fb") && !m.contains("a/b"), "{m}");
    }
}
