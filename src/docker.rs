//! The one place that starts processes: the `docker` CLI (and
//! `sudo rm` for clean-disk on a runner). Everything else talks to the
//! [`Docker`] trait, so plans and engines are tested without processes.

use std::ffi::OsString;
use std::fmt;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use crate::secret::Secret;

/// One docker invocation. Secrets go to stdin, never to argv.
#[derive(Clone, Debug)]
pub struct Cmd {
    /// The program as shown to users: `docker` unless [`Cmd::shown_as`] says otherwise.
    pub shown: &'static str,
    pub args: Vec<String>,
    pub stdin: Option<Secret>,
    pub timeout: Duration,
    /// Clean-up steps still run after Ctrl-C, so nothing of the run is left behind.
    pub survives_cancel: bool,
    /// The child's stdout is the terminal's (docker's own progress); not captured.
    pub show_output: bool,
}

impl Cmd {
    pub fn new<I, S>(args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Cmd { shown: "docker", args: args.into_iter().map(Into::into).collect(), stdin: None, timeout: Duration::from_secs(300), survives_cancel: false, show_output: false }
    }

    /// Names the program in messages (e.g. a credential helper run through a [`Cli`] of its own).
    pub fn shown_as(mut self, program: &'static str) -> Self {
        self.shown = program;
        self
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

    /// Lets docker draw its progress on our stdout (a terminal); its answer is then not read.
    pub fn show_output(mut self) -> Self {
        self.show_output = true;
        self
    }

    /// `docker a b c`, as shown to users (secrets never reach argv).
    pub fn display(&self) -> String {
        let mut s = String::from(self.shown);
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
        let line = crate::sanitize::clip(line, 240);
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

/// Finds `name` on the search path `path` (as PATH), in absolute entries
/// only, as docker's own CLI does (Go's `exec.ErrDot`): an empty or relative
/// entry would run a program planted in the current directory.
pub fn program_on_path(name: &str, path: &std::ffi::OsStr) -> Option<PathBuf> {
    let absolute: Vec<PathBuf> = std::env::split_paths(path).filter(|p| p.is_absolute()).collect();
    let joined = std::env::join_paths(absolute).ok()?;
    which::which_in_global(name, Some(joined)).ok()?.find(|p| p.is_absolute())
}

/// [`program_on_path`] on this process's PATH.
fn find_program(name: &str) -> Option<PathBuf> {
    program_on_path(name, &std::env::var_os("PATH").unwrap_or_default())
}

impl Cli {
    /// Finds `docker` on PATH.
    pub fn locate() -> anyhow::Result<PathBuf> {
        find_program("docker").ok_or_else(|| {
            anyhow::anyhow!("docker was not found on PATH (absolute entries only). Install the Docker CLI (Debian: apt-get install docker.io)")
        })
    }

    pub fn new(program: PathBuf, redactor: Redactor, cancel: Arc<AtomicBool>) -> Self {
        // Secrets reach docker only on stdin: children do not inherit them
        // (a CLI plugin or credential helper sees the whole environment).
        let hidden = std::env::vars_os()
            .map(|(k, _)| k)
            .filter(|k| k.to_str().is_some_and(crate::secret::is_secret_key))
            .collect();
        Cli { program, env: Vec::new(), hidden, redactor, cancel }
    }

    /// Extra environment for every child, e.g. a private DOCKER_CONFIG.
    pub fn with_env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

}

/// Most bytes of stdout kept from one call; more fails the step. Registries
/// cap manifests at 4 MiB, and no docker answer imgsync reads comes near this.
pub const MAX_STDOUT: usize = 64 << 20;
/// Bytes of stderr kept: the tail, where docker says what went wrong.
pub const MAX_STDERR: usize = 64 << 10;
/// After SIGTERM to a child's process group, how long before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(2);

/// Reads a pipe to its end on a thread: the first `cap` bytes (`keep_tail`:
/// the last `cap` bytes), and whether there was more.
fn read_pipe<R: Read + Send + 'static>(mut pipe: R, cap: usize, keep_tail: bool, over: Arc<AtomicBool>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut kept: Vec<u8> = Vec::new();
        let mut buf = [0u8; 64 * 1024];
        loop {
            let n = match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            if keep_tail {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 2 * cap {
                    kept.drain(..kept.len() - cap);
                }
            } else if kept.len() + n <= cap {
                kept.extend_from_slice(&buf[..n]);
            } else {
                // Past the cap: the step fails; keep draining so the child never blocks.
                over.store(true, Ordering::SeqCst);
            }
        }
        if keep_tail && kept.len() > cap {
            kept.drain(..kept.len() - cap);
        }
        let _ = tx.send(kept);
    });
    rx
}

/// Process groups of the docker children running now, so a forced exit (a
/// second Ctrl-C) can end them: in their own groups, they no longer get the
/// terminal's SIGINT.
static LIVE_GROUPS: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

/// Registers a child's group while it runs; unregisters on drop.
struct LiveGroup(u32);

impl LiveGroup {
    fn new(pid: u32) -> LiveGroup {
        LIVE_GROUPS.lock().unwrap_or_else(|e| e.into_inner()).push(pid);
        LiveGroup(pid)
    }
}

impl Drop for LiveGroup {
    fn drop(&mut self) {
        LIVE_GROUPS.lock().unwrap_or_else(|e| e.into_inner()).retain(|p| *p != self.0);
    }
}

/// SIGKILL to every running docker child's process group; for an exit that
/// cannot wait for them (a second Ctrl-C). A no-op on systems without groups.
pub fn kill_running_children() {
    #[cfg(unix)]
    for pid in LIVE_GROUPS.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        signal_group(*pid, rustix::process::Signal::KILL);
    }
}

/// Sends `signal` to the process group a child leads (`process_group(0)`).
/// A group that is gone already is no error worth reporting.
#[cfg(unix)]
fn signal_group(leader: u32, signal: rustix::process::Signal) {
    if let Some(group) = i32::try_from(leader).ok().and_then(rustix::process::Pid::from_raw) {
        let _ = rustix::process::kill_process_group(group, signal);
    }
}

/// SIGKILL to what is left of an exited child's process group.
fn kill_group(child: &Child) {
    #[cfg(unix)]
    signal_group(child.id(), rustix::process::Signal::KILL);
    #[cfg(not(unix))]
    let _ = child;
}

/// Ends a child and everything it started: on Unix the child leads its own
/// process group, which gets SIGTERM, then SIGKILL after a grace period;
/// then the child is reaped.
fn terminate(child: &mut Child) {
    #[cfg(unix)]
    {
        signal_group(child.id(), rustix::process::Signal::TERM);
        let until = Instant::now() + TERM_GRACE;
        while Instant::now() < until {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Also the group's other members (plugins) that outlived the child.
        signal_group(child.id(), rustix::process::Signal::KILL);
    }
    #[cfg(not(unix))]
    {
        let _ = child.kill();
    }
    let _ = child.wait();
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
        // `-v`: what runs, as shown in errors (secrets redacted).
        log::debug!(target: "imgsync::docker", "$ {}", self.redactor.apply(&cmd.display()));
        let mut command = Command::new(&self.program);
        command.args(&cmd.args).stdout(if cmd.show_output { Stdio::inherit() } else { Stdio::piped() }).stderr(Stdio::piped());
        command.stdin(if cmd.stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        for k in &self.hidden {
            command.env_remove(k);
        }
        for (k, v) in &self.env {
            command.env(k, v);
        }
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            // Its own process group: a timeout or cancel ends buildx and any
            // other plugin with it, and a terminal's Ctrl-C reaches imgsync only.
            command.process_group(0);
        }
        let mut child = command.spawn().map_err(|e| fail(None, &format!("could not start docker: {e}"), false, false))?;
        let _live = LiveGroup::new(child.id());
        if let (Some(secret), Some(mut pipe)) = (&cmd.stdin, child.stdin.take()) {
            let bytes = secret.expose().as_bytes().to_vec();
            // A thread: a child that never reads stdin must not block us.
            std::thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            });
        }
        let over = Arc::new(AtomicBool::new(false));
        let stdout_rx = child.stdout.take().map(|p| read_pipe(p, MAX_STDOUT, false, over.clone()));
        let stderr_rx = child.stderr.take().map(|p| read_pipe(p, MAX_STDERR, true, Arc::new(AtomicBool::new(false))));
        let deadline = Instant::now() + cmd.timeout;
        let mut exited_at: Option<Instant> = None;
        let mut status = None;
        let (mut stdout, mut stderr) = (None, None);
        loop {
            if status.is_none() {
                match child.try_wait() {
                    Ok(s) => status = s,
                    Err(e) => {
                        terminate(&mut child);
                        return Err(fail(None, &format!("waiting for docker failed: {e}"), false, false));
                    }
                }
            }
            if stdout.is_none() {
                stdout = stdout_rx.as_ref().map_or(Some(Vec::new()), |rx| rx.try_recv().ok());
            }
            if stderr.is_none() {
                stderr = stderr_rx.as_ref().map_or(Some(Vec::new()), |rx| rx.try_recv().ok());
            }
            if over.load(Ordering::SeqCst) {
                terminate(&mut child);
                let why = format!("docker printed more than {} MiB on stdout; stopped it (not an answer imgsync expects)", MAX_STDOUT >> 20);
                return Err(fail(None, &why, false, false));
            }
            if let (Some(st), Some(out), Some(err)) = (status, &stdout, &stderr) {
                let err = String::from_utf8_lossy(err).into_owned();
                if st.success() {
                    return Ok(Output { stdout: out.clone(), stderr: self.redactor.apply(&err) });
                }
                // Credential helpers (and a few tools) say why on stdout: keep its tail then.
                let err = if err.trim().is_empty() {
                    let out = String::from_utf8_lossy(out);
                    let mut cut = out.len().saturating_sub(MAX_STDERR);
                    while !out.is_char_boundary(cut) {
                        cut += 1;
                    }
                    out[cut..].to_string()
                } else {
                    err
                };
                return Err(fail(st.code(), &err, false, false));
            }
            if status.is_some() {
                // docker exited but something it started still holds its
                // output open: after a moment, end the rest of its group.
                let at = *exited_at.get_or_insert_with(Instant::now);
                if at.elapsed() > TERM_GRACE {
                    kill_group(&child);
                }
            }
            let interrupted = cancelled();
            if interrupted || Instant::now() >= deadline {
                terminate(&mut child);
                return Err(fail(None, "", !interrupted, interrupted));
            }
            std::thread::sleep(Duration::from_millis(20).min(deadline.saturating_duration_since(Instant::now())));
        }
    }
}

/// `sudo -n rm -rf --one-file-system -- PATH`: clean-disk on a hosted runner,
/// whose toolchains belong to root. `-n`: never wait for a password.
pub fn sudo_remove(path: &std::path::Path) -> Result<(), String> {
    let out = Command::new("sudo")
        .args(["-n", "rm", "-rf", "--one-file-system", "--"])
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("sudo rm could not start: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: String = err.trim().chars().rev().take(2000).collect::<Vec<_>>().into_iter().rev().collect();
        Err(format!("sudo rm failed: {tail}"))
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

/// `docker-credential-<name> get`: the registry read path asks docker's
/// credential helpers through this, so helpers are processes of this module
/// like every other. Spawned only for registries whose credentials are asked.
pub struct CredentialHelpers {
    cancel: Arc<AtomicBool>,
}

impl CredentialHelpers {
    pub fn new(cancel: Arc<AtomicBool>) -> Self {
        CredentialHelpers { cancel }
    }
}

impl crate::registry::CredentialHelper for CredentialHelpers {
    fn get(&self, helper: &str, server: &str) -> crate::registry::credentials::HelperAnswer {
        if !helper.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.') {
            return Err(format!("credential helper name {helper:?} is not a plain word"));
        }
        let name = format!("docker-credential-{helper}");
        let program = find_program(&name).ok_or_else(|| format!("{name} was not found on PATH (absolute entries only; your docker config names it)"))?;
        let cli = Cli::new(program, Redactor::new(&[]), Arc::clone(&self.cancel));
        let cmd = Cmd::new(["get"]).shown_as("docker-credential-helper").stdin(Secret::new(server)).timeout(Duration::from_secs(30));
        match cli.run(&cmd) {
            Ok(out) => {
                #[derive(serde::Deserialize)]
                struct Answer {
                    #[serde(rename = "Username", default)]
                    username: String,
                    #[serde(rename = "Secret", default)]
                    secret: String,
                }
                let a: Answer = serde_json::from_slice(&out.stdout).map_err(|_| format!("{name} get: its answer is not the JSON docker expects"))?;
                Ok(Some((a.username, a.secret)))
            }
            // docker's credential-helper protocol: this text means "anonymous".
            Err(e) if e.stderr.contains("credentials not found") => Ok(None),
            Err(e) => Err(format!("{name} get failed: {}", e.reason())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(unix)]
    fn relative_path_entries_never_run_programs() {
        // Audit 2 #7: an empty or relative PATH entry found a helper in the
        // current directory (docker's CLI refuses those: Go's exec.ErrDot).
        use std::os::unix::fs::PermissionsExt;
        let here = tempfile::tempdir_in(".").unwrap();
        let name = "docker-credential-imgsync-planted";
        let prog = here.path().join(name);
        std::fs::write(&prog, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
        let rel = here.path().file_name().unwrap().to_str().unwrap().to_string();
        for path in [format!("/nonexistent-dir:{rel}"), format!("./{rel}:/usr/bin")] {
            assert_eq!(program_on_path(name, std::ffi::OsStr::new(&path)), None, "PATH={path}");
        }
        let abs = std::fs::canonicalize(here.path()).unwrap();
        let found = program_on_path(name, abs.as_os_str()).expect("an absolute entry is searched");
        assert!(found.is_absolute());
    }

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

    /// kill_running_children ends every child of this process: the tests
    /// that start children take turns.
    static CHILDREN: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
        CHILDREN.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(unix)]
    fn fake_docker(script: &str) -> (tempfile::TempDir, Cli) {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("docker");
        std::fs::write(&p, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        let cli = Cli::new(p, Redactor::default(), Arc::new(AtomicBool::new(false)));
        (dir, cli)
    }

    #[cfg(unix)]
    fn alive(pid: i32) -> bool {
        rustix::process::Pid::from_raw(pid).is_some_and(|p| rustix::process::test_kill_process(p).is_ok())
    }

    #[cfg(unix)]
    #[test]
    fn timeout_ends_the_whole_process_group() {
        let _turn = one_at_a_time();
        let (dir, cli) = fake_docker("sleep 1000 &\necho $! > \"$(dirname \"$0\")/pid\"\nsleep 1000");
        let start = Instant::now();
        let e = cli.run(&Cmd::new(["pull", "x"]).timeout(Duration::from_millis(500))).unwrap_err();
        assert!(e.timed_out, "{e}");
        assert!(start.elapsed() < Duration::from_secs(10));
        let pid: i32 = std::fs::read_to_string(dir.path().join("pid")).unwrap().trim().parse().unwrap();
        // The grandchild (a plugin, say) is gone too, and reaped by init.
        let gone = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            !alive(pid)
        });
        assert!(gone, "grandchild {pid} outlived the timeout");
    }

    #[cfg(unix)]
    #[test]
    fn a_forced_exit_can_end_running_children() {
        let _turn = one_at_a_time();
        let (dir, cli) = fake_docker("sleep 1000 &\necho $! > \"$(dirname \"$0\")/pid\"\nsleep 1000");
        let pidfile = dir.path().join("pid");
        let t = std::thread::spawn(move || cli.run(&Cmd::new(["pull", "x"]).timeout(Duration::from_secs(60))));
        while std::fs::read_to_string(&pidfile).map_or(true, |s| s.trim().is_empty()) {
            std::thread::sleep(Duration::from_millis(20));
        }
        kill_running_children();
        let e = t.join().unwrap().unwrap_err();
        assert_eq!(e.status, None, "{e}");
        let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        assert!((0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            !alive(pid)
        }));
    }

    #[cfg(unix)]
    #[test]
    fn cancel_ends_the_process_group() {
        let _turn = one_at_a_time();
        let (dir, cli) = fake_docker("sleep 1000 &\necho $! > \"$(dirname \"$0\")/pid\"\nsleep 1000");
        let cancel = cli.cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            cancel.store(true, Ordering::SeqCst);
        });
        let e = cli.run(&Cmd::new(["pull", "x"])).unwrap_err();
        assert!(e.interrupted, "{e}");
        let pid: i32 = std::fs::read_to_string(dir.path().join("pid")).unwrap().trim().parse().unwrap();
        assert!((0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            !alive(pid)
        }));
    }

    #[cfg(unix)]
    #[test]
    fn stdout_is_capped_and_stderr_keeps_its_tail() {
        let _turn = one_at_a_time();
        let (_dir, cli) = fake_docker(&format!("head -c {} /dev/zero", MAX_STDOUT + 1));
        let e = cli.run(&Cmd::new(["manifest", "inspect", "x"])).unwrap_err();
        assert!(e.reason().contains("more than 64 MiB"), "{e}");
        let (_dir, cli) = fake_docker(&format!("head -c {} /dev/zero", MAX_STDOUT));
        assert_eq!(cli.run(&Cmd::new(["x"])).unwrap().stdout.len(), MAX_STDOUT);
        let (_dir, cli) = fake_docker("head -c 3000000 /dev/zero | tr '\\0' x >&2; echo >&2; echo 'denied: the last line' >&2; exit 1");
        let e = cli.run(&Cmd::new(["push", "x"])).unwrap_err();
        assert!(e.stderr.len() <= MAX_STDERR, "{}", e.stderr.len());
        assert_eq!(e.reason(), "denied: the last line");
        assert_eq!(e.status, Some(1));
    }

    #[cfg(unix)]
    #[test]
    fn secret_on_stdin_and_leftover_children_do_not_hang() {
        let _turn = one_at_a_time();
        let (_dir, cli) = fake_docker("cat; echo; (sleep 1000 &) ; exit 0");
        let start = Instant::now();
        let out = cli.run(&Cmd::new(["login"]).stdin(Secret::new("pw")).timeout(Duration::from_secs(30))).unwrap();
        assert_eq!(out.stdout_text(), "pw\n");
        assert!(start.elapsed() < Duration::from_secs(10), "{:?}", start.elapsed());
    }
}

