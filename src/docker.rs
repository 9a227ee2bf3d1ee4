//! The one place that starts processes: the `docker` CLI, through duct (and
//! `sudo rm` for clean-disk on a runner). Everything else talks to the
//! [`Docker`] trait, so plans and engines are tested without processes.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Secret;

/// One docker invocation. Secrets go to stdin, never to argv.
#[derive(Clone, Debug)]
pub struct Cmd {
    pub args: Vec<String>,
    pub stdin: Option<Secret>,
    pub timeout: Duration,
    /// Clean-up steps still run after Ctrl-C, so nothing of the run is left behind.
    pub survives_cancel: bool,
}

impl Cmd {
    pub fn new<I, S>(args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Cmd { args: args.into_iter().map(Into::into).collect(), stdin: None, timeout: Duration::from_secs(300), survives_cancel: false }
    }

    pub fn stdin(mut self, secret: Secret) -> Self {
        self.stdin = Some(secret);
        self
    }

    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    pub fn cleanup(mut self) -> Self {
        self.survives_cancel = true;
        self
    }

    /// `docker a b c`, as shown to users (secrets never reach argv).
    pub fn display(&self) -> String {
        let mut s = String::from("docker");
        for a in &self.args {
            s.push(' ');
            s.push_str(a);
        }
        s
    }
}

#[derive(Clone, Debug, Default)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Output {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// A failed docker call: the command line, exit status and stderr, all redacted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DockerError {
    pub command: String,
    pub status: Option<i32>,
    pub stderr: String,
    pub timed_out: bool,
    pub interrupted: bool,
}

impl DockerError {
    /// The last meaningful stderr line: what docker itself says went wrong.
    pub fn reason(&self) -> String {
        if self.interrupted {
            return "interrupted".into();
        }
        if self.timed_out {
            return "timed out".into();
        }
        let line = self
            .stderr
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with("See '") && !l.starts_with("------"))
            .unwrap_or("");
        let line = line.strip_prefix("ERROR: ").unwrap_or(line);
        // Some errors carry a Go dump of the whole response; the start says enough.
        let line = match line.char_indices().nth(240) {
            Some((cut, _)) => format!("{}…", &line[..cut]),
            None => line.to_string(),
        };
        if line.is_empty() {
            format!("exit status {}", self.status.map_or("unknown".into(), |s| s.to_string()))
        } else {
            line
        }
    }
}

impl fmt::Display for DockerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = match (self.interrupted, self.timed_out, self.status) {
            (true, _, _) => "interrupted".to_string(),
            (_, true, _) => "timed out".to_string(),
            (_, _, Some(s)) => format!("exit {s}"),
            _ => "killed".to_string(),
        };
        write!(f, "`{}` failed ({status}): {}", self.command, self.reason())
    }
}

impl std::error::Error for DockerError {}

pub trait Docker: Send + Sync {
    fn run(&self, cmd: &Cmd) -> Result<Output, DockerError>;
}

/// Replaces every secret value with `***`.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    pub fn new(secrets: &[Secret]) -> Self {
        let mut secrets: Vec<String> =
            secrets.iter().map(|s| s.expose().to_string()).filter(|s| !s.is_empty()).collect();
        // Longest first, so a secret that contains another is hidden whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Redactor { secrets }
    }

    pub fn apply(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            out = out.replace(s.as_str(), "***");
        }
        out
    }
}

/// The real docker CLI.
pub struct Cli {
    program: PathBuf,
    env: Vec<(OsString, OsString)>,
    hidden: Vec<OsString>,
    redactor: Redactor,
    cancel: Arc<AtomicBool>,
}

impl Cli {
    /// Finds `docker` on PATH.
    pub fn locate() -> anyhow::Result<PathBuf> {
        which::which("docker").map_err(|_| {
            anyhow::anyhow!("docker was not found on PATH. Install the Docker CLI (Debian: apt-get install docker.io)")
        })
    }

    pub fn new(program: PathBuf, redactor: Redactor, cancel: Arc<AtomicBool>) -> Self {
        // Secrets reach docker only on stdin: children do not inherit them
        // (a CLI plugin or credential helper sees the whole environment).
        let hidden = std::env::vars_os()
            .map(|(k, _)| k)
            .filter(|k| k.to_str().is_some_and(crate::config::is_secret_key))
            .collect();
        Cli { program, env: Vec::new(), hidden, redactor, cancel }
    }

    /// Extra environment for every child, e.g. a private DOCKER_CONFIG.
    pub fn with_env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

}

impl Docker for Cli {
    fn run(&self, cmd: &Cmd) -> Result<Output, DockerError> {
        let fail = |status, stderr: &str, timed_out, interrupted| DockerError {
            command: self.redactor.apply(&cmd.display()),
            status,
            stderr: self.redactor.apply(stderr),
            timed_out,
            interrupted,
        };
        let cancelled = || !cmd.survives_cancel && self.cancel.load(Ordering::SeqCst);
        if cancelled() {
            return Err(fail(None, "", false, true));
        }
        let mut expr = duct::cmd(&self.program, &cmd.args).stdout_capture().stderr_capture().unchecked();
        expr = match &cmd.stdin {
            Some(secret) => expr.stdin_bytes(secret.expose().as_bytes().to_vec()),
            None => expr.stdin_null(),
        };
        for k in &self.hidden {
            expr = expr.env_remove(k);
        }
        for (k, v) in &self.env {
            expr = expr.env(k, v);
        }
        let handle = expr.start().map_err(|e| fail(None, &format!("could not start docker: {e}"), false, false))?;
        let deadline = Instant::now() + cmd.timeout;
        loop {
            let step = Duration::from_millis(50).min(deadline.saturating_duration_since(Instant::now()));
            match handle.wait_timeout(step) {
                Ok(Some(out)) => {
                    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
                    if out.status.success() {
                        return Ok(Output { stdout: out.stdout.clone(), stderr: self.redactor.apply(&stderr) });
                    }
                    return Err(fail(out.status.code(), &stderr, false, false));
                }
                Ok(None) => {}
                Err(e) => return Err(fail(None, &format!("waiting for docker failed: {e}"), false, false)),
            }
            let interrupted = cancelled();
            if interrupted || Instant::now() >= deadline {
                let _ = handle.kill();
                return Err(fail(None, "", !interrupted, interrupted));
            }
        }
    }
}

/// `sudo -n rm -rf --one-file-system -- PATH`: clean-disk on a hosted runner,
/// whose toolchains belong to root. `-n`: never wait for a password.
pub fn sudo_remove(path: &std::path::Path) -> Result<(), String> {
    let mut args: Vec<std::ffi::OsString> = ["-n", "rm", "-rf", "--one-file-system", "--"].iter().map(Into::into).collect();
    args.push(path.as_os_str().to_owned());
    let out = duct::cmd("sudo", args)
        .unchecked()
        .stdout_null()
        .stderr_capture()
        .stdin_null()
        .run()
        .map_err(|e| format!("sudo rm could not start: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("sudo rm failed: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Counts the calls made through it; one per entry gives `docker_calls`.
pub struct Counting<'a> {
    inner: &'a dyn Docker,
    count: AtomicUsize,
}

impl<'a> Counting<'a> {
    pub fn new(inner: &'a dyn Docker) -> Self {
        Counting { inner, count: AtomicUsize::new(0) }
    }
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }
}

impl Docker for Counting<'_> {
    fn run(&self, cmd: &Cmd) -> Result<Output, DockerError> {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.inner.run(cmd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_every_secret() {
        let r = Redactor::new(&[Secret::new("hunter2"), Secret::new("hunter2-long"), Secret::new("")]);
        assert_eq!(r.apply("a hunter2-long b hunter2 c"), "a *** b *** c");
    }

    #[test]
    fn reason_is_last_meaningful_line() {
        let e = DockerError {
            command: "docker x".into(),
            status: Some(125),
            stderr: "unknown flag: --prefer-index\nSee 'docker buildx imagetools create --help'.\n".into(),
            timed_out: false,
            interrupted: false,
        };
        assert_eq!(e.reason(), "unknown flag: --prefer-index");
        assert_eq!(e.to_string(), "`docker x` failed (exit 125): unknown flag: --prefer-index");
        let e = DockerError { stderr: "------\nERROR: unexpected status: 401 Unauthorized\n".into(), ..e };
        assert_eq!(e.reason(), "unexpected status: 401 Unauthorized");
    }

    #[test]
    fn long_go_dumps_are_cut() {
        let e = DockerError {
            command: "docker manifest inspect x".into(),
            status: Some(1),
            stderr: format!("unsupported manifest format: &{{{}}}", "123 10 ".repeat(500)),
            timed_out: false,
            interrupted: false,
        };
        let r = e.reason();
        assert!(r.starts_with("unsupported manifest format: &{123 10"));
        assert!(r.chars().count() <= 241 && r.ends_with('…'), "{r}");
    }

    #[test]
    fn secrets_go_to_stdin_not_argv() {
        let c = Cmd::new(["login", "r", "-u", "me", "--password-stdin"]).stdin(Secret::new("pw"));
        assert!(!c.display().contains("pw "));
        assert!(!c.args.iter().any(|a| a == "pw"));
    }
}
