//! One message per root cause: the run's failures grouped by the registry
//! they met and the fix they need (the hint, which follows from the failure's
//! family), so one wrong password reads as "5 entries: login to R refused"
//! and not as five copies of the same 300 characters. The table, the step
//! summary, the annotations and the webhook show these groups; the JSON
//! report keeps every entry's full text.

use crate::reference::ImageRef;
use crate::report::Report;

/// Lines named for one root cause; the report lists them all.
const MAX_LINES: usize = 12;

/// One failed entry or target, as the report has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failed<'a> {
    pub line: usize,
    pub source: &'a str,
    /// The target's reference; `None` when the entry failed before any target.
    pub reference: Option<&'a str>,
    pub error: &'a str,
    pub hint: Option<&'a str>,
}

/// Failures that share a registry and a hint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootCause<'a> {
    pub registry: String,
    /// What the members' errors have in common (the whole error for one member).
    pub message: String,
    pub hint: Option<&'a str>,
    pub members: Vec<Failed<'a>>,
}

impl RootCause<'_> {
    /// `5 entries: login to R refused` or, for one, its error.
    pub fn summary(&self) -> String {
        match self.members.len() {
            1 => self.message.clone(),
            n => format!("{n} entries: {}", self.message),
        }
    }

    /// The lines of images.txt it covers, e.g. `lines 1, 2, 5`.
    pub fn lines(&self) -> String {
        let mut lines: Vec<usize> = self.members.iter().map(|m| m.line).filter(|l| *l > 0).collect();
        lines.dedup();
        match lines.as_slice() {
            [] => String::new(),
            [one] => format!("line {one}"),
            many if many.len() > MAX_LINES => {
                let shown: Vec<String> = many[..MAX_LINES].iter().map(|l| l.to_string()).collect();
                format!("lines {}, … ({} more)", shown.join(", "), many.len() - MAX_LINES)
            }
            many => format!("lines {}", many.iter().map(|l| l.to_string()).collect::<Vec<_>>().join(", ")),
        }
    }
}

/// Every failure once: an entry that failed as a whole is one failure (its
/// targets only repeat it), else each failed target.
pub fn failures(report: &Report) -> Vec<Failed<'_>> {
    let mut out = Vec::new();
    for e in &report.entries {
        if e.interrupted() {
            continue;
        }
        if let Some(error) = &e.error {
            out.push(Failed { line: e.line, source: &e.source, reference: None, error, hint: e.hint.as_deref() });
            continue;
        }
        for t in e.targets.iter().filter(|t| t.failed()) {
            let error = t.error.as_deref().unwrap_or("failed");
            out.push(Failed { line: e.line, source: &e.source, reference: Some(&t.reference), error, hint: t.hint.as_deref() });
        }
    }
    out
}

fn registry_of(f: &Failed) -> String {
    let reference = f.reference.unwrap_or(f.source);
    ImageRef::parse(reference).map(|r| r.registry().to_string()).unwrap_or_default()
}

/// The failures grouped, in the order their first member appears.
pub fn root_causes(report: &Report) -> Vec<RootCause<'_>> {
    let mut groups: Vec<RootCause> = Vec::new();
    for f in failures(report) {
        let registry = registry_of(&f);
        match groups.iter_mut().find(|g| g.registry == registry && g.hint == f.hint) {
            Some(g) => {
                g.message = common_prefix(&g.message, f.error);
                g.members.push(f);
            }
            None => groups.push(RootCause { registry, message: f.error.to_string(), hint: f.hint, members: vec![f] }),
        }
    }
    for g in &mut groups {
        if g.message.is_empty() {
            // Each names its own request: say the registry and the first one's reason.
            let first = g.members[0].error;
            let why = first.split_once("` failed: ").map_or(first, |(_, why)| why);
            g.message = if g.registry.is_empty() { why.to_string() } else { format!("{}: {why}", g.registry) };
        }
    }
    groups
}

/// The longest common start of `a` and `b` that ends before a `: ` (the
/// errors' own separator between what failed and the details), trimmed.
fn common_prefix(a: &str, b: &str) -> String {
    let same = a.char_indices().zip(b.chars()).take_while(|((_, x), y)| x == y).last().map_or(0, |((i, c), _)| i + c.len_utf8());
    if same == a.len() && same == b.len() {
        return a.to_string();
    }
    let head = &a[..same];
    let boundary = |s: &str| s.len() == same || s[same..].starts_with(": ") || s[same..].starts_with("`: ");
    if boundary(a) && boundary(b) {
        return head.trim_end_matches([' ', ':', '`']).to_string();
    }
    match head.rfind(": ") {
        Some(i) => head[..i].trim_end_matches([' ', ':', '`']).to_string(),
        None => String::new(),
    }
}

/// `text` cut to `max` characters, with `…` when cut.
pub fn short(text: &str, max: usize) -> String {
    let first = text.lines().next().unwrap_or("");
    let cut = crate::sanitize::clip(first, max);
    // More lines follow: say so, unless the cut already did.
    if !cut.ends_with('…') && first.trim().len() < text.trim().len() {
        format!("{cut}…")
    } else {
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{EntryReport, TargetReport};

    fn entry(line: usize, target: Option<(&str, &str, &str)>, error: Option<&str>) -> EntryReport {
        EntryReport {
            line,
            source: format!("127.0.0.1:5000/lib/img{line}:1"),
            selected_by: None,
            platforms: vec![],
            targets: target
                .map(|(r, e, h)| TargetReport {
                    target: "custom".into(),
                    reference: r.into(),
                    status: crate::report::Status::Failed,
                    error: Some(e.into()),
                    hint: Some(h.into()),
                    why: Default::default(),
                    signatures: None,
                })
                .into_iter()
                .collect(),
            error: error.map(str::to_string),
            hint: error.map(|_| "check the source".to_string()),
            docker_calls: 0,
            requests: Default::default(),
        }
    }

    #[test]
    fn a_failed_signature_is_a_root_cause_while_the_image_keeps_its_status() {
        let mut e = entry(1, Some(("r.example/ns/img1:1", "signatures: r.example/ns/img1:sha256-ab holds an image", "delete the tag sha256-ab")), None);
        e.targets[0].status = crate::report::Status::Synced;
        e.targets[0].signatures = Some(crate::signatures::Counts { found: 2, copied: 1, failed: 1, ..Default::default() });
        let report = crate::report::Report::new("imagetools", vec![e]);
        assert!(report.failed(), "exit 1");
        let causes = root_causes(&report);
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].hint, Some("delete the tag sha256-ab"));
        let table = crate::ui::table(&report);
        assert!(table.contains("synced  [1] signatures: r.example/ns/img1:sha256-ab holds an image"), "{table}");
        assert!(table.contains("signatures: 2 found, 1 copied, 0 up-to-date, 1 failed"), "{table}");
    }

    #[test]
    fn one_wrong_password_is_one_root_cause() {
        let refused = |n: usize| {
            entry(
                n,
                Some((
                    &format!("127.0.0.1:7402/ns/img{n}:1"),
                    &format!("login to 127.0.0.1:7402 as bot refused: `HEAD http://127.0.0.1:7402/v2/ns/img{n}/manifests/1` failed: HTTP 401: UNAUTHORIZED"),
                    "set CUSTOM_PASSWORD",
                )),
                None,
            )
        };
        let mut entries: Vec<EntryReport> = (1..=5).map(refused).collect();
        entries.push(entry(6, None, Some("127.0.0.1:5000/lib/img6:1 was not found in its registry")));
        // An entry that failed as a whole is one failure, not one per target.
        let mut whole = entry(7, Some(("127.0.0.1:7402/ns/img7:1", "source gone", "check the source")), Some("source gone"));
        whole.hint = Some("check the source".into());
        entries.push(whole);
        let r = Report::new("daemon", entries);
        assert_eq!(failures(&r).len(), 7);
        let groups = root_causes(&r);
        assert_eq!(groups.len(), 2, "{groups:#?}");
        assert_eq!(groups[0].summary(), "5 entries: login to 127.0.0.1:7402 as bot refused");
        assert_eq!(groups[0].hint, Some("set CUSTOM_PASSWORD"));
        assert_eq!(groups[0].lines(), "lines 1, 2, 3, 4, 5");
        assert_eq!(groups[1].members.len(), 2, "same source registry, same hint");
        assert_eq!(groups[1].registry, "127.0.0.1:5000");
        assert_eq!(groups[1].summary(), "2 entries: 127.0.0.1:5000: 127.0.0.1:5000/lib/img6:1 was not found in its registry");
    }

    #[test]
    fn prefixes_and_cuts() {
        assert_eq!(common_prefix("a: b: c", "a: b: d"), "a: b");
        assert_eq!(common_prefix("same", "same"), "same");
        assert_eq!(common_prefix("x", "y"), "");
        assert_eq!(common_prefix("a b", "a b: c"), "a b");
        assert_eq!(short("abcdef", 3), "abc…");
        assert_eq!(short("ab\ncd", 10), "ab…");
        assert_eq!(short("ab", 10), "ab");
    }
}
