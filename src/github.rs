//! GitHub Actions: workflow commands, the job summary and step outputs.
//!
//! Everything here returns text or writes to a path it is given; the caller
//! prints and decides where. `GithubEnv::from_env` reads `GITHUB_ACTIONS`,
//! `GITHUB_STEP_SUMMARY`, `GITHUB_OUTPUT` and `RUNNER_ENVIRONMENT` through the
//! closure it is handed.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::report::{Report, Status};

/// What the Actions runner tells a step through its environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GithubEnv {
    /// `GITHUB_ACTIONS=true`: workflow commands (`::error::`...) are understood.
    pub actions: bool,
    /// `GITHUB_STEP_SUMMARY`: markdown appended here shows on the run's page.
    pub step_summary: Option<PathBuf>,
    /// `GITHUB_OUTPUT`: `key=value` lines appended here become step outputs.
    pub output: Option<PathBuf>,
    /// `RUNNER_ENVIRONMENT=github-hosted`: a throwaway VM (clean-disk may run).
    pub hosted_runner: bool,
}

impl GithubEnv {
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> GithubEnv {
        let path = |k: &str| env(k).filter(|v| !v.trim().is_empty()).map(PathBuf::from);
        GithubEnv {
            actions: env("GITHUB_ACTIONS").as_deref() == Some("true"),
            step_summary: path("GITHUB_STEP_SUMMARY"),
            output: path("GITHUB_OUTPUT"),
            hosted_runner: env("RUNNER_ENVIRONMENT").as_deref() == Some("github-hosted"),
        }
    }

    /// Appends the job summary and the step outputs where the runner asks for
    /// them. An error names the file; the caller warns and carries on.
    pub fn publish(&self, report: &Report) -> Result<(), String> {
        let mut errors = Vec::new();
        if let Some(p) = &self.step_summary {
            if let Err(e) = append_step_summary(p, report) {
                errors.push(format!("writing the job summary to {}: {e}", p.display()));
            }
        }
        if let Some(p) = &self.output {
            if let Err(e) = write_outputs(p, report) {
                errors.push(format!("writing step outputs to {}: {e}", p.display()));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

/// The run as a markdown table, one row per target, in images.txt order.
pub fn step_summary_markdown(report: &Report) -> String {
    let s = &report.summary;
    let mut counts = vec![format!("{} synced", s.synced), format!("{} up-to-date", s.up_to_date)];
    if s.would_sync > 0 {
        counts.push(format!("{} would sync", s.would_sync));
    }
    counts.push(format!("{} failed", s.failed));
    if s.interrupted > 0 {
        counts.push(format!("{} interrupted", s.interrupted));
    }
    let mut md = String::from("### imgsync\n\n");
    md.push_str(&format!(
        "{} **{}** (engine: {})\n\n",
        if report.failed() { "❌" } else if report.plan_only { "⚠️" } else { "✅" },
        counts.join(" · "),
        cell(report.engine.as_deref().unwrap_or("none (nothing copied)"))
    ));
    if report.plan_only {
        md.push_str(&format!("⚠️ **{}**\n\n", cell(PLAN_ONLY)));
    }
    if report.entries.is_empty() {
        md.push_str("No entries.\n");
        return md;
    }
    let causes = crate::root_cause::root_causes(report);
    let cause_of = |line: usize, reference: Option<&str>| {
        causes.iter().position(|c| c.members.iter().any(|m| m.line == line && m.reference == reference))
    };
    md.push_str("| line | source | target | status | reason |\n|---:|---|---|---|---|\n");
    for e in &report.entries {
        let cause_cell = |cause: Option<usize>| {
            cause.map(|n| format!("\\[{}\\] {}", n + 1, cell(&crate::root_cause::short(&causes[n].message, 80)))).unwrap_or_default()
        };
        let mut row = |target: &str, status: &str, why: String| {
            md.push_str(&format!("| {} | {} | {} | {} | {} |\n", e.line, code(&e.source), target, status, why));
        };
        // An entry that failed as a whole is one row: its targets only repeat it.
        if e.error.is_some() || e.targets.is_empty() {
            let status = if e.interrupted() { status_cell(Status::Interrupted) } else if e.error.is_some() { "❌ failed" } else { "—" };
            let target = if e.targets.len() == 1 { code(&e.targets[0].reference) } else { "—".to_string() };
            row(&target, status, cause_cell(cause_of(e.line, None)));
            continue;
        }
        for t in &e.targets {
            match (t.failed(), &t.why.reason) {
                (true, _) => row(&code(&t.reference), status_cell(t.status), cause_cell(cause_of(e.line, Some(&t.reference)))),
                (false, why) => row(&code(&t.reference), status_cell(t.status), why.as_deref().map(cell).unwrap_or_default()),
            }
        }
    }
    if !causes.is_empty() {
        md.push_str("\n**Failures, by cause**\n\n");
        for (n, c) in causes.iter().enumerate() {
            let lines = if c.members.len() > 1 { format!(" ({})", c.lines()) } else { String::new() };
            let hint = c.hint.filter(|h| !h.trim().is_empty()).map(|h| format!(" — **{}**", cell(h))).unwrap_or_default();
            md.push_str(&format!("{}. {}{}{hint}\n", n + 1, cell(&crate::root_cause::short(&c.summary(), ERROR_CHARS)), cell(&lines)));
        }
    }
    md
}

/// What a run without targets says, in the log and the summary.
pub const PLAN_ONLY: &str =
    "plan only: SYNC_MODE=none, no target is configured and nothing was copied; set SYNC_MODE (aliyun, ghcr, dockerhub, custom or double) in config.env";

fn status_cell(s: Status) -> &'static str {
    match s {
        Status::Synced => "✅ synced",
        Status::UpToDate => "✔️ up-to-date",
        Status::WouldSync => "📝 would sync",
        Status::Failed => "❌ failed",
        Status::Pulled => "⬇️ pulled",
        Status::Present => "✔️ present",
        Status::Interrupted => "⏹️ interrupted",
    }
}

/// Longest error text in a cell: the log has the rest.
const ERROR_CHARS: usize = 300;

/// Plain text made safe for one table cell: markdown punctuation is escaped
/// (so `|` cannot split the row), line breaks (`\r\n`, `\n` or a lone `\r`,
/// which CommonMark also ends a line at) become `<br>`, and other control
/// characters are shown as escapes (`crate::sanitize`).
pub fn cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        for c in crate::sanitize::line(line).chars() {
            if matches!(c, '\\' | '|' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '~' | '&' | '!') {
                out.push('\\');
            }
            out.push(c);
        }
        if lines.peek().is_some() {
            out.push_str("<br>");
        }
    }
    out
}

/// An image reference as inline code; `|` is still escaped, as GFM tables require.
fn code(text: &str) -> String {
    if text.contains('`') || text.chars().any(crate::sanitize::is_unsafe) {
        return cell(text);
    }
    format!("`{}`", text.replace('|', "\\|"))
}

/// Appends the markdown summary to the `GITHUB_STEP_SUMMARY` file.
pub fn append_step_summary(path: &Path, report: &Report) -> io::Result<()> {
    append(path, &step_summary_markdown(report))
}

/// Appends `synced=N`, `up_to_date=N` and `failed=N` to the `GITHUB_OUTPUT` file.
pub fn write_outputs(path: &Path, report: &Report) -> io::Result<()> {
    append(path, &outputs_text(report))
}

pub fn outputs_text(report: &Report) -> String {
    let s = &report.summary;
    format!("synced={}\nup_to_date={}\nfailed={}\n", s.synced, s.up_to_date, s.failed)
}

fn append(path: &Path, text: &str) -> io::Result<()> {
    let mut f = OpenOptions::new().create(true).append(true).open(path)?;
    f.write_all(text.as_bytes())
}

/// A workflow-command message: `%`, CR and LF encoded as the runner expects.
/// For imgsync's own values (secrets to mask); text from outside goes
/// through `sanitize::command_data`, which also escapes other controls.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// A workflow-command property value: as `escape_data`, plus `:` and `,`.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// `::error file=images.txt,line=3::message`: shown on the run's page and
/// against that line of the file.
pub fn error_annotation(file: &str, line: usize, message: &str) -> String {
    annotation("error", file, line, message)
}

pub fn warning_annotation(file: &str, line: usize, message: &str) -> String {
    annotation("warning", file, line, message)
}

fn annotation(level: &str, file: &str, line: usize, message: &str) -> String {
    format!("::{level} file={},line={line}::{}", escape_property(file), crate::sanitize::command_data(message))
}

/// One error annotation per root cause, at its first line; a cause shared by
/// several entries names how many and their lines.
pub fn failure_annotations(images_file: &str, report: &Report) -> Vec<String> {
    let mut out = Vec::new();
    for c in crate::root_cause::root_causes(report) {
        let first = &c.members[0];
        let what = match (c.members.len(), first.reference) {
            (1, Some(r)) => format!("{} -> {}: {}", first.source, r, c.message),
            (1, None) => format!("{}: {}", first.source, c.message),
            _ => format!("{} ({})", c.summary(), c.lines()),
        };
        let text = match c.hint {
            Some(h) => format!("{what}\nhint: {h}"),
            None => what,
        };
        out.push(error_annotation(images_file, first.line, &text));
    }
    out
}

/// Starts a collapsible group in the log.
pub fn group_start(title: &str) -> String {
    format!("::group::{}", crate::sanitize::command_data(title))
}

pub fn group_end() -> String {
    "::endgroup::".to_string()
}

/// Lines that register a secret with the runner so the log shows `***`.
/// The runner masks line by line, so a multi-line secret gets one command per
/// line; an empty secret gets none (the runner rejects an empty mask). Print
/// the result only when it is not empty.
pub fn add_mask(secret: &str) -> String {
    secret
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("::add-mask::{}", escape_data(l)))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{EntryReport, TargetReport};

    fn target(reference: &str, status: Status, error: Option<&str>, hint: Option<&str>) -> TargetReport {
        TargetReport {
            target: "ghcr".into(),
            reference: reference.into(),
            status,
            error: error.map(Into::into),
            hint: hint.map(Into::into),
            why: Default::default(),
            signatures: None,
        }
    }

    fn report() -> Report {
        Report::new(
            "daemon",
            vec![
                EntryReport {
                    line: 7,
                    source: "docker.io/library/busybox:1.36".into(),
                    selected_by: None,
                    platforms: vec![],
                    targets: vec![target(
                        "ghcr.io/o/busybox:1.36",
                        Status::Failed,
                        Some("docker push: denied | exit 1\nsecond line"),
                        Some("give the token write access"),
                    )],
                    error: None,
                    hint: None,
                    docker_calls: 3, requests: Default::default(),
                },
                EntryReport {
                    line: 3,
                    source: "docker.io/library/nginx:alpine".into(),
                    selected_by: None,
                    platforms: vec![],
                    targets: vec![
                        target("ghcr.io/o/nginx:alpine", Status::Synced, None, None),
                        target("r.example/ns/nginx:alpine", Status::UpToDate, None, None),
                    ],
                    error: None,
                    hint: None,
                    docker_calls: 4, requests: Default::default(),
                },
                EntryReport {
                    line: 9,
                    source: "docker.io/library/gone:1".into(),
                    selected_by: None,
                    platforms: vec![],
                    targets: vec![],
                    error: Some("manifest unknown".into()),
                    hint: Some("check the image name and tag".into()),
                    docker_calls: 1, requests: Default::default(),
                },
            ],
        )
    }

    #[test]
    fn summary_table() {
        let md = step_summary_markdown(&report());
        let expected = "\
### imgsync

❌ **1 synced · 1 up-to-date · 2 failed** (engine: daemon)

| line | source | target | status | reason |
|---:|---|---|---|---|
| 3 | `docker.io/library/nginx:alpine` | `ghcr.io/o/nginx:alpine` | ✅ synced |  |
| 3 | `docker.io/library/nginx:alpine` | `r.example/ns/nginx:alpine` | ✔️ up-to-date |  |
| 7 | `docker.io/library/busybox:1.36` | `ghcr.io/o/busybox:1.36` | ❌ failed | \\[1\\] docker push: denied \\| exit 1… |
| 9 | `docker.io/library/gone:1` | — | ❌ failed | \\[2\\] manifest unknown |

**Failures, by cause**

1. docker push: denied \\| exit 1… — **give the token write access**
2. manifest unknown — **check the image name and tag**
";
        assert_eq!(md, expected);
        // Every row has exactly the six unescaped pipes of five cells.
        for row in md.lines().filter(|l| l.starts_with("| ")) {
            let pipes = row.replace("\\|", "").matches('|').count();
            assert_eq!(pipes, 6, "{row}");
        }
    }

    #[test]
    fn summary_of_nothing_and_long_errors() {
        let empty = step_summary_markdown(&Report::new("imagetools", vec![]));
        assert!(empty.contains("✅ **0 synced · 0 up-to-date · 0 failed**"), "{empty}");
        assert!(empty.ends_with("No entries.\n"));
        let long = "x".repeat(1000);
        let r = crate::root_cause::short(&long, ERROR_CHARS);
        assert_eq!(r.chars().count(), ERROR_CHARS + 1);
        assert!(r.ends_with('…'));
    }

    #[test]
    fn cell_escaping() {
        assert_eq!(cell("a|b"), "a\\|b");
        assert_eq!(cell("<none> *x* a_b"), "\\<none\\> \\*x\\* a\\_b");
        assert_eq!(cell("one\r\ntwo\nthree"), "one<br>two<br>three");
        // A lone CR ends a line in CommonMark: it must not split the row.
        assert_eq!(cell("denied: nope\r::error::x\r| y"), "denied: nope<br>\\\\::error::x<br>\\| y");
        assert_eq!(cell("a\u{1b}[31mb\u{202e}c"), "a\\\\e\\[31mb\\\\u{202e}c");
        assert_eq!(code("r/x\r:1"), "r/x<br>:1");
        assert_eq!(code("r/x:1"), "`r/x:1`");
        assert_eq!(code("a`b"), "a\\`b");
    }

    #[test]
    fn outputs_append() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("output");
        std::fs::write(&out, "earlier=1\n").unwrap();
        write_outputs(&out, &report()).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "earlier=1\nsynced=1\nup_to_date=1\nfailed=2\n");
        let summary = dir.path().join("summary.md");
        append_step_summary(&summary, &report()).unwrap();
        append_step_summary(&summary, &report()).unwrap();
        let text = std::fs::read_to_string(&summary).unwrap();
        assert_eq!(text.matches("### imgsync").count(), 2);
    }

    #[test]
    fn env_and_publish() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("o").display().to_string();
        let env = |k: &str| match k {
            "GITHUB_ACTIONS" => Some("true".to_string()),
            "GITHUB_OUTPUT" => Some(out.clone()),
            "GITHUB_STEP_SUMMARY" => Some(String::new()),
            "RUNNER_ENVIRONMENT" => Some("github-hosted".to_string()),
            _ => None,
        };
        let gh = GithubEnv::from_env(&env);
        assert!(gh.actions && gh.hosted_runner);
        assert_eq!(gh.step_summary, None);
        gh.publish(&report()).unwrap();
        assert!(std::fs::read_to_string(&out).unwrap().contains("failed=2"));
        assert_eq!(GithubEnv::from_env(&|_| None), GithubEnv::default());
        let bad = GithubEnv { output: Some(dir.path().join("missing/dir/o")), ..Default::default() };
        assert!(bad.publish(&report()).unwrap_err().contains("missing/dir/o"));
    }

    #[test]
    fn annotations() {
        assert_eq!(error_annotation("images.txt", 3, "bad ref"), "::error file=images.txt,line=3::bad ref");
        assert_eq!(
            error_annotation("dir,x:y/images.txt", 1, "100% wrong\r\nnext: a,b"),
            "::error file=dir%2Cx%3Ay/images.txt,line=1::100%25 wrong%0Anext: a,b"
        );
        assert_eq!(warning_annotation("c.env", 2, "w"), "::warning file=c.env,line=2::w");
        let a = failure_annotations("images.txt", &report());
        assert_eq!(a.len(), 2);
        assert_eq!(
            a[0],
            "::error file=images.txt,line=7::docker.io/library/busybox:1.36 -> ghcr.io/o/busybox:1.36: docker push: denied | exit 1%0Asecond line%0Ahint: give the token write access"
        );
        assert!(a[1].starts_with("::error file=images.txt,line=9::docker.io/library/gone:1: manifest unknown%0Ahint: "));
        // Registry text cannot end the command line or start a new one.
        let hostile = error_annotation("images.txt", 2, "denied: nope\r::error title=INJ::x\r::add-mask::synced\n::warning::y");
        assert_eq!(hostile, "::error file=images.txt,line=2::denied: nope\\r::error title=INJ::x\\r::add-mask::synced%0A\\::warning::y");
    }

    #[test]
    fn groups_and_masks() {
        assert_eq!(group_start("Sync 3 images"), "::group::Sync 3 images");
        assert_eq!(group_start("a\nb"), "::group::a%0Ab");
        assert_eq!(group_end(), "::endgroup::");
        assert_eq!(add_mask("s3cr%t"), "::add-mask::s3cr%25t");
        assert_eq!(add_mask("line1\r\nline2\n"), "::add-mask::line1\n::add-mask::line2");
        assert_eq!(add_mask(""), "");
        assert_eq!(add_mask(" \n"), "");
    }
}
