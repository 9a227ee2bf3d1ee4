//! Everything the user sees: progress on stderr, results on stdout.
//! On a terminal, indicatif bars; otherwise whole plain lines.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::Verbosity;
use crate::secret::Secret;
use crate::failure::Event;
use crate::report::Report;
use crate::sanitize;

pub struct Ui {
    bars: Option<Bars>,
    github: bool,
    /// Under GitHub Actions, each entry's lines are held back and shown as one
    /// `::group::` when it finishes, so parallel entries never interleave.
    groups: Option<Mutex<HashMap<String, Vec<String>>>>,
    verbosity: Verbosity,
    /// Per entry: when its first step began, its last step's text (a step
    /// said again is not printed again) and the bytes its copy moved.
    progress: Mutex<HashMap<String, Progress>>,
    /// `--report -`: stdout carries only the JSON report.
    json_stdout: std::sync::atomic::AtomicBool,
}

struct Progress {
    since: Instant,
    last: String,
    moved: Option<u64>,
    outcome: Option<String>,
}

impl Progress {
    fn new() -> Progress {
        Progress { since: Instant::now(), last: String::new(), moved: None, outcome: None }
    }
}

/// `-v`: the log records of docker commands and registry requests (targets
/// `imgsync::docker` and `imgsync::http`), one sanitised line each on stderr.
struct Trace {
    multi: Option<MultiProgress>,
}

impl log::Log for Trace {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.target().starts_with("imgsync")
    }

    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            let text = sanitize::line(&r.args().to_string());
            match &self.multi {
                Some(m) => m.println(&text).unwrap_or(()),
                None => eprintln!("{text}"),
            }
        }
    }

    fn flush(&self) {}
}

/// `4.2 s`, `3 min 12 s`.
fn human_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s:.1} s")
    } else {
        format!("{} min {} s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

/// What an entry's lines are shown under: `line 3`, `line 3:1.27.1` for an
/// entry a selection expanded into, `setup` for run-level steps.
fn label(key: &str) -> String {
    if key.is_empty() || key == "0" {
        "setup".to_string()
    } else {
        format!("line {}", sanitize::line(key))
    }
}

/// Entry keys in file order: by line, then tag (`3` < `3:1.27.0` < `10`).
fn key_order(key: &str) -> (usize, String) {
    let (line, tag) = key.split_once(':').unwrap_or((key, ""));
    (line.parse().unwrap_or(0), tag.to_string())
}

struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    lines: Mutex<HashMap<String, ProgressBar>>,
}

impl Ui {
    pub fn new(github: bool) -> Self {
        let bars = std::io::stderr().is_terminal().then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let overall = multi.add(ProgressBar::new(0));
            overall.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} entries {elapsed}").expect("static template"),
            );
            Bars { multi, overall, lines: Mutex::new(HashMap::new()) }
        });
        let groups = (github && bars.is_none()).then(|| Mutex::new(HashMap::new()));
        Ui { bars, github, groups, verbosity: Verbosity::Normal, progress: Mutex::new(HashMap::new()), json_stdout: Default::default() }
    }

    /// `-q` or `-v`; `-v` installs the log printer (once per process).
    pub fn with_verbosity(mut self, v: Verbosity) -> Self {
        self.verbosity = v;
        if v == Verbosity::Verbose {
            let trace = Trace { multi: self.bars.as_ref().map(|b| b.multi.clone()) };
            // Leaked: the logger lives as long as the process, as log requires.
            if log::set_logger(Box::leak(Box::new(trace))).is_ok() {
                log::set_max_level(log::LevelFilter::Debug);
            }
        }
        self
    }

    fn quiet(&self) -> bool {
        self.verbosity == Verbosity::Quiet
    }

    /// Whether docker may draw its own progress (`pull`): both outputs are a
    /// terminal (stdout carries no report) and `-q` is not given.
    pub fn docker_progress(&self) -> bool {
        self.bars.is_some() && std::io::stdout().is_terminal() && !self.quiet()
    }

    /// Runs `f` with the bars hidden, for a child that draws on the terminal.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.bars {
            Some(b) => b.multi.suspend(f),
            None => f(),
        }
    }

    /// A log line about one entry: grouped under Actions, else printed now.
    fn entry_line(&self, key: &str, text: String) {
        match &self.groups {
            Some(g) if label(key) != "setup" => g.lock().unwrap_or_else(|e| e.into_inner()).entry(key.to_string()).or_default().push(text),
            _ => self.line(&text),
        }
    }

    pub fn start(&self, entries: usize) {
        if let Some(b) = &self.bars {
            b.overall.set_length(entries as u64);
        }
    }

    /// Registers secrets with GitHub Actions so its log hides them.
    pub fn mask(&self, secrets: &[Secret]) {
        if self.github {
            for s in secrets {
                let line = crate::github::add_mask(s.expose());
                if !line.is_empty() {
                    // The runner reads commands on stderr too; stdout may be the JSON report.
                    if self.json_stdout.load(std::sync::atomic::Ordering::Relaxed) {
                        eprintln!("{line}");
                    } else {
                        println!("{line}");
                    }
                }
            }
        }
    }

    /// `--report -`: stdout is the JSON report's, nothing else goes there.
    pub fn keep_stdout_for_json(&self) {
        self.json_stdout.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn info(&self, message: &str) {
        if !self.quiet() {
            self.line(message);
        }
    }

    pub fn warn(&self, message: &str) {
        if self.quiet() {
            return;
        }
        if self.github {
            self.command(&format!("::warning::{}", sanitize::command_data(message)));
        } else {
            self.line(&format!("warning: {message}"));
        }
    }

    /// A warning about the settings. Under GitHub Actions one that names a
    /// settings file's line (`config.env:3: …`) is an annotation on that line.
    pub fn setting_warning(&self, message: &str) {
        if self.quiet() {
            return;
        }
        let at_line = message.split_once(": ").and_then(|(place, rest)| {
            let (file, line) = place.rsplit_once(':')?;
            let settings_file = file.ends_with(".env") || file.ends_with(".env.local");
            Some((file, line.parse::<usize>().ok()?, rest)).filter(|_| settings_file)
        });
        match (self.github, at_line) {
            (true, Some((file, line, rest))) => self.command(&crate::github::warning_annotation(file, line, rest)),
            _ => self.warn(message),
        }
    }

    /// A plain line: anything in it may come from outside, so it is sanitised.
    fn line(&self, text: &str) {
        self.command(&sanitize::lines(text));
    }

    /// A line imgsync built itself (a workflow command with its data already escaped).
    fn command(&self, text: &str) {
        match &self.bars {
            Some(b) => b.multi.println(text).unwrap_or(()),
            None => eprintln!("{text}"),
        }
    }

    pub fn event(&self, e: Event) {
        match e {
            Event::Step { key, message } => {
                // An entry's clock starts at its first step; a step said again is not repeated.
                let mut progress = self.progress.lock().unwrap_or_else(|p| p.into_inner());
                let p = progress.entry(key.clone()).or_insert_with(Progress::new);
                let again = p.last == message;
                p.last = message.clone();
                drop(progress);
                if self.quiet() || (again && self.bars.is_none()) {
                    return;
                }
                self.step(key, message)
            }
            Event::Retry { .. } | Event::Warning { .. } if self.quiet() => {}
            Event::Moved { key, bytes } => {
                let mut progress = self.progress.lock().unwrap_or_else(|p| p.into_inner());
                let p = progress.entry(key).or_insert_with(Progress::new);
                p.moved = Some(p.moved.unwrap_or(0) + bytes);
            }
            Event::Outcome { key, status } => {
                let mut progress = self.progress.lock().unwrap_or_else(|p| p.into_inner());
                let p = progress.entry(key).or_insert_with(Progress::new);
                p.outcome = Some(status);
            }
            other => self.event_line(other),
        }
    }

    fn step(&self, key: String, message: String) {
        match &self.bars {
                Some(b) => {
                    let mut lines = b.lines.lock().unwrap_or_else(|e| e.into_inner());
                    let bar = lines.entry(key.clone()).or_insert_with(|| {
                        let pb = b.multi.insert_before(&b.overall, ProgressBar::new_spinner());
                        pb.set_style(ProgressStyle::with_template("{spinner} {prefix} {wide_msg}").expect("static template"));
                        pb.set_prefix(format!("{}:", label(&key)));
                        pb.enable_steady_tick(Duration::from_millis(120));
                        pb
                    });
                    bar.set_message(sanitize::line(&message));
                }
                None => self.entry_line(&key, format!("{}: {}", label(&key), sanitize::line(&message))),
        }
    }

    fn event_line(&self, e: Event) {
        match e {
            Event::Step { key, message } => self.step(key, message),
            Event::Moved { .. } | Event::Outcome { .. } => {}
            Event::Retry { key, command, attempt, wait, reason } => self.entry_line(
                &key,
                format!(
                    "{}: retry {attempt} of `{}` in {:.1}s: {}",
                    label(&key),
                    sanitize::line(&command),
                    wait.as_secs_f64(),
                    sanitize::line(&reason)
                ),
            ),
            Event::Warning { key, message } => {
                let text = format!("{}: {message}", label(&key));
                if self.groups.is_some() && label(&key) != "setup" {
                    self.entry_line(&key, format!("::warning::{}", sanitize::command_data(&text)));
                } else {
                    self.warn(&text);
                }
            }
            Event::Info { message } => self.info(&message),
            Event::RunWarning { message } => self.warn(&message),
            Event::Start { entries } => self.start(entries),
            Event::Done => self.finish(),
            Event::Finished { key } => {
                // Without a terminal: one line per finished entry, with its time (and bytes).
                let done = self.progress.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
                if let (None, false, Some(p)) = (&self.bars, self.quiet(), done) {
                    let moved = p.moved.map(|b| format!(", {} of layers copied", bytesize::ByteSize(b).display().si())).unwrap_or_default();
                    let done = p.outcome.clone().unwrap_or_else(|| "finished".to_string());
                    self.entry_line(&key, format!("{}: {} in {}{moved}", label(&key), sanitize::line(&done), human_duration(p.since.elapsed())));
                }
                if let Some(g) = &self.groups {
                    let lines = g.lock().unwrap_or_else(|e| e.into_inner()).remove(&key).unwrap_or_default();
                    let mut block = format!("{}\n", crate::github::group_start(&label(&key)));
                    for l in lines {
                        block.push_str(&l);
                        block.push('\n');
                    }
                    block.push_str(&crate::github::group_end());
                    self.command(&block);
                }
                if let Some(b) = &self.bars {
                    if let Some(pb) = b.lines.lock().unwrap_or_else(|e| e.into_inner()).remove(&key) {
                        pb.finish_and_clear();
                    }
                    b.overall.inc(1);
                }
            }
        }
    }

    pub fn finish(&self) {
        // Entries cut short (Ctrl-C) still show what they did.
        if let Some(g) = &self.groups {
            let mut rest: Vec<(String, Vec<String>)> = g.lock().unwrap_or_else(|e| e.into_inner()).drain().collect();
            rest.sort_by_key(|(key, _)| key_order(key));
            for (key, lines) in rest {
                self.command(&format!("{}\n{}\n{}", crate::github::group_start(&label(&key)), lines.join("\n"), crate::github::group_end()));
            }
        }
        if let Some(b) = &self.bars {
            for (_, pb) in b.lines.lock().unwrap_or_else(|e| e.into_inner()).drain() {
                pb.finish_and_clear();
            }
            b.overall.finish_and_clear();
        }
    }

    /// One doctor line on stdout: ✓, ✗, or ! for an optional check that failed.
    pub fn check(&self, c: &crate::check::Check) {
        // `-q`: only what needs fixing.
        if self.quiet() && c.ok {
            return;
        }
        let mark = match (c.ok, c.required) {
            (true, _) => "✓",
            (false, true) => "✗",
            (false, false) => "!",
        };
        println!("{mark} {}: {}", sanitize::line(&c.what), sanitize::line(&c.detail));
    }

    /// Something in images.txt accepted but worth fixing, on stderr. Under
    /// GitHub Actions, an annotation on that line of the file.
    pub fn input_warning(&self, w: &crate::images::Warning) {
        if self.github {
            // Built and escaped by github.rs (its data sanitised there).
            self.command(&crate::github::warning_annotation(&w.file, w.line, &w.message));
        } else {
            self.line(&format!("warning: {w}"));
        }
    }

    /// Input or configuration errors: each on its own line (at most
    /// `images::MAX_ERRORS_SHOWN`, then how many more), then what to do.
    pub fn input_errors(&self, errors: &[String]) {
        for e in crate::images::limit_errors(errors.to_vec()) {
            eprintln!("error: {}", sanitize::line(&e));
        }
        eprintln!("nothing was pulled or pushed; fix the lines above and run again");
    }

    /// A result for stdout, e.g. the clean-disk table.
    pub fn output(&self, text: &str) {
        print!("{}", sanitize::lines(text));
    }

    pub fn error(&self, message: &str) {
        eprintln!("error: {}", sanitize::lines(message));
    }

    pub fn fatal(&self, e: &anyhow::Error) {
        eprintln!("error: {}", sanitize::lines(&format!("{e:#}")));
    }

    /// The results table on stdout, and `::error::` annotations under Actions.
    /// `to_stderr`: stdout carries the JSON report (`--report -`).
    pub fn report(&self, report: &Report, images_file: &str, to_stderr: bool) {
        let mut out = if self.quiet() { table_tail(report) } else { table(report) };
        if self.github {
            for a in crate::github::failure_annotations(images_file, report) {
                out.push_str(&a);
                out.push('\n');
            }
        }
        if to_stderr {
            eprint!("{out}");
        } else {
            print!("{out}");
        }
    }
}

/// Plain text table: entry, target reference, status, short reason. Every
/// cell is one line of sanitised text (registries and docker fill most of them).
pub fn table(report: &Report) -> String {
    // Each failure's REASON is short and points at its root cause, said once below the table.
    let causes = crate::root_cause::root_causes(report);
    let reason = |line: usize, reference: Option<&str>, error: Option<&str>| -> String {
        let n = causes.iter().position(|c| c.members.iter().any(|m| m.line == line && m.reference == reference));
        match (n, error) {
            (Some(n), _) => sanitize::line(&format!("[{}] {}", n + 1, crate::root_cause::short(&causes[n].message, REASON_CHARS))),
            (None, Some(e)) => sanitize::line(&crate::root_cause::short(e, REASON_CHARS)),
            (None, None) => String::new(),
        }
    };
    let mut rows: Vec<[String; 4]> = Vec::new();
    for e in &report.entries {
        // `imgsync pull` rows of images no images.txt line names have line 0.
        let entry = sanitize::line(&if e.line == 0 { e.source.clone() } else { format!("{}:{}", e.line, e.source) });
        if e.targets.is_empty() || e.error.is_some() {
            let status = if e.interrupted() { "interrupted" } else if e.error.is_some() { "failed" } else { "inspected" };
            let target = if e.targets.len() == 1 { sanitize::line(&e.targets[0].reference) } else { "-".into() };
            rows.push([entry, target, status.into(), reason(e.line, None, e.error.as_deref())]);
            continue;
        }
        for t in &e.targets {
            // A failure points at its cause; a copy (done or planned) says why it was needed.
            let why = if t.failed() {
                reason(e.line, Some(&t.reference), t.error.as_deref())
            } else {
                sanitize::line(t.why.reason.as_deref().unwrap_or(""))
            };
            rows.push([entry.clone(), sanitize::line(&t.reference), t.status.as_str().into(), why]);
        }
    }
    let head = ["ENTRY".to_string(), "TARGET".into(), "STATUS".into(), "REASON".into()];
    let widths: Vec<usize> = (0..3).map(|i| rows.iter().chain([&head]).map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in std::iter::once(&head).chain(rows.iter()) {
        let line = format!("{:w0$}  {:w1$}  {:w2$}  {}", r[0], r[1], r[2], r[3], w0 = widths[0], w1 = widths[1], w2 = widths[2]);
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push_str(&table_tail(report));
    out
}

/// Below the table, and all `-q` shows: each root cause of failure once, with
/// its hint, and the summary lines.
pub fn table_tail(report: &Report) -> String {
    let causes = crate::root_cause::root_causes(report);
    let mut out = String::new();
    for (n, c) in causes.iter().enumerate() {
        let lines = if c.members.len() > 1 { format!(" ({})", c.lines()) } else { String::new() };
        out.push_str(&sanitize::line(&format!("[{}] {}{lines}", n + 1, c.summary())));
        out.push('\n');
        if let Some(h) = c.hint.filter(|h| !h.trim().is_empty()) {
            out.push_str(&format!("    hint: {}\n", sanitize::line(h)));
        }
    }
    let s = report.summary;
    if report.kind == crate::report::Kind::Pull {
        let interrupted = if s.interrupted > 0 { format!(", {} interrupted", s.interrupted) } else { String::new() };
        out.push_str(&format!("pull: {} pulled, {} present, {} failed{interrupted}\n", s.pulled, s.present, s.failed));
        return out;
    }
    let interrupted = if s.interrupted > 0 { format!(", {} interrupted", s.interrupted) } else { String::new() };
    out.push_str(&format!(
        "engine {}: {} synced, {} up-to-date, {} would sync, {} failed{interrupted}\n",
        sanitize::line(report.engine.as_deref().unwrap_or("none (nothing copied)")), s.synced, s.up_to_date, s.would_sync, s.failed
    ));
    if s.requests.total() > 0 {
        out.push_str(&format!("registry requests: {} HEAD, {} GET, {} token\n", s.requests.head, s.requests.get, s.requests.token));
    }
    if let Some(c) = s.signatures {
        out.push_str(&format!("signatures: {} found, {} copied, {} up-to-date, {} failed\n", c.found, c.copied, c.up_to_date, c.failed));
    }
    if let Some(why) = s.signatures_not_copied {
        out.push_str(&format!("note: {why}\n"));
    }
    out.push_str(&rate_limits(&report.rate_limits));
    for w in &report.warnings {
        out.push_str(&sanitize::line(&format!("warning: {w}")));
        out.push('\n');
    }
    out
}

/// One line per registry that announced a pull quota: what is left of it.
/// Hosts come from the registries' answers: escaped like any external text.
pub fn rate_limits(limits: &std::collections::BTreeMap<String, crate::registry::RateLimit>) -> String {
    limits.iter().map(|(host, rl)| format!("rate limit {}: {}\n", sanitize::line(host), rl.left())).collect()
}

/// Longest REASON cell: the root cause below the table says the rest (the report all of it).
const REASON_CHARS: usize = 80;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{EntryReport, Status, TargetReport};

    #[test]
    fn table_rows_and_summary() {
        let r = Report::new(
            "daemon",
            vec![EntryReport {
                line: 3,
                source: "docker.io/library/nginx:alpine".into(),
                selected_by: None,
                platforms: vec![],
                targets: vec![TargetReport {
                    target: "custom".into(),
                    reference: "r/ns/nginx:alpine".into(),
                    status: Status::Failed,
                    error: Some("denied".into()),
                    hint: Some("give the token write access".into()),
                    why: Default::default(),
                    signatures: None,
                }],
                error: None,
                hint: None,
                docker_calls: 3, requests: Default::default(),
            }],
        );
        let t = table(&r);
        assert!(t.contains("3:docker.io/library/nginx:alpine  r/ns/nginx:alpine  failed  [1] denied\n"), "{t}");
        assert!(t.contains("\n[1] denied\n    hint: give the token write access\n"), "{t}");
        assert!(t.ends_with("engine daemon: 0 synced, 0 up-to-date, 0 would sync, 1 failed\n"));
    }

    #[test]
    fn the_report_kind_picks_the_summary_line() {
        let pull = Report { kind: crate::report::Kind::Pull, ..Report::new("pull", vec![]) };
        assert!(table(&pull).ends_with("pull: 0 pulled, 0 present, 0 failed\n"), "{}", table(&pull));
        // An engine named like pull's is still a sync's engine: the kind decides, not the name.
        let sync = Report::new("pull", vec![]);
        assert!(table(&sync).ends_with("engine pull: 0 synced, 0 up-to-date, 0 would sync, 0 failed\n"), "{}", table(&sync));
    }

    #[test]
    fn table_cells_are_sanitised() {
        let r = Report::new(
            "daemon",
            vec![EntryReport {
                line: 1,
                source: "docker.io/library/busybox:1".into(),
                selected_by: None,
                platforms: vec![],
                targets: vec![TargetReport {
                    target: "custom".into(),
                    reference: "r/ns/busybox:1".into(),
                    status: Status::Failed,
                    error: Some("denied: nope\r::error title=INJ::x\r::add-mask::synced\n::warning::\u{1b}[2J".into()),
                    hint: None,
                    why: Default::default(),
                    signatures: None,
                }],
                error: None,
                hint: None,
                docker_calls: 1, requests: Default::default(),
            }],
        );
        let t = table(&r);
        for l in t.split(['\n', '\r']) {
            assert!(!l.trim_start().starts_with("::"), "{l:?}");
        }
        assert!(!t.contains('\u{1b}'));
        assert_eq!(t.lines().count(), 4, "header, row, root cause, summary: {t}");
        assert!(t.contains("denied: nope\\r::error title=INJ::x\\r::add-mask::synced\\n::warning::\\e[2J"), "{t}");
    }

    #[test]
    fn rate_limits_are_one_escaped_line_per_registry() {
        let mut m = std::collections::BTreeMap::new();
        m.insert("docker.io".to_string(), crate::registry::RateLimit { limit: 100, remaining: 76, window_s: Some(21600) });
        m.insert("evil\u{1b}[31m.io".to_string(), crate::registry::RateLimit { limit: 10, remaining: 1, window_s: None });
        let text = rate_limits(&m);
        assert!(text.contains("rate limit docker.io: 76 of 100 pulls left per 6 h\n"), "{text}");
        assert!(!text.contains('\u{1b}'), "{text:?}");
        assert_eq!(text.lines().count(), 2);
    }
}
