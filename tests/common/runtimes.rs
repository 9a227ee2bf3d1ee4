//! Real container runtimes for the naming tests: podman (Debian's, as root,
//! with its own storage root and the `vfs` driver) and containerd (started
//! privately with its own root, state and socket, the CRI plugin disabled),
//! both pulling through the configuration `imgsync map --emit` wrote.
//! scripts/test.sh installs them; without them a test says it was skipped,
//! except under CI=true, where that fails it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether `tool` is on PATH; otherwise says `SKIPPED <test>` (or panics under CI).
pub fn have(tool: &str) -> bool {
    if super::which(tool).is_some() {
        return true;
    }
    let test = std::thread::current().name().unwrap_or("test").to_string();
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: CI=true and {tool} is not installed (scripts/test.sh installs it with apt-get)");
    }
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {tool} is not installed (scripts/test.sh installs it)");
    false
}

pub struct Out {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

fn run(mut cmd: Command) -> Out {
    let out = cmd.stdin(Stdio::null()).output().expect("spawn");
    Out { ok: out.status.success(), stdout: String::from_utf8_lossy(&out.stdout).into(), stderr: String::from_utf8_lossy(&out.stderr).into() }
}

/// podman with a storage root of its own (removed with it).
pub struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    pub fn new() -> Podman {
        // Short: podman refuses a runroot longer than 50 characters.
        Podman { dir: tempfile::Builder::new().prefix("p").tempdir().unwrap() }
    }

    fn cmd(&self, registries_conf: &Path) -> Command {
        let d = self.dir.path();
        for sub in ["root", "r", "home", "tmp"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        // An empty containers.conf: nothing from the host's.
        std::fs::write(d.join("containers.conf"), "").unwrap();
        let mut c = Command::new("podman");
        c.arg("--root").arg(d.join("root")).arg("--runroot").arg(d.join("r"));
        c.args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "file"]);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", d.join("home"))
            .env("TMPDIR", d.join("tmp"))
            .env("XDG_RUNTIME_DIR", d.join("r"))
            .env("CONTAINERS_CONF", d.join("containers.conf"))
            .env("CONTAINERS_REGISTRIES_CONF", registries_conf);
        c
    }

    /// `podman pull REF` with `CONTAINERS_REGISTRIES_CONF=registries_conf`.
    pub fn pull(&self, registries_conf: &Path, reference: &str) -> Out {
        let mut c = self.cmd(registries_conf);
        c.args(["pull", "--quiet", reference]);
        run(c)
    }

    /// The same pull at debug level, for a failure message: which locations podman tried.
    pub fn pull_debug(&self, registries_conf: &Path, reference: &str) -> String {
        let mut c = self.cmd(registries_conf);
        c.args(["--log-level", "debug", "pull", "--quiet", reference]);
        let out = run(c);
        out.stderr.lines().filter(|l| l.contains("registries.conf") || l.contains("ource") || l.contains("mirror") || l.contains("rying")).collect::<Vec<_>>().join("\n")
    }

    /// The digests podman recorded for a local image (`RepoDigests`, digest part).
    pub fn repo_digests(&self, registries_conf: &Path, reference: &str) -> Vec<String> {
        let mut c = self.cmd(registries_conf);
        c.args(["image", "inspect", "--format", "{{range .RepoDigests}}{{println .}}{{end}}", reference]);
        let out = run(c);
        assert!(out.ok, "podman image inspect {reference}: {}", out.stderr);
        out.stdout.lines().filter_map(|l| l.rsplit_once('@').map(|(_, d)| d.to_string())).collect()
    }
}

/// A private containerd: killed and reaped on Drop.
pub struct Containerd {
    child: Child,
    dir: tempfile::TempDir,
    pub socket: PathBuf,
}

impl Containerd {
    pub fn start() -> Containerd {
        let dir = tempfile::Builder::new().prefix("imgsync-ctrd-").tempdir().unwrap();
        let d = dir.path();
        let socket = d.join("c.sock");
        let config = format!(
            "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{sock}\"\n[ttrpc]\n  address = \"{sock}.ttrpc\"\n[debug]\n  address = \"\"\n[metrics]\n  address = \"\"\n\
             [plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{opt}\"\n",
            root = d.join("root").display(),
            state = d.join("state").display(),
            sock = socket.display(),
            opt = d.join("opt").display(),
        );
        std::fs::write(d.join("config.toml"), config).unwrap();
        let log = std::fs::File::create(d.join("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("-c")
            .arg(d.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn containerd");
        let c = Containerd { child, dir, socket };
        let start = Instant::now();
        loop {
            if c.ctr(&["version"]).ok {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "containerd did not come up:\n{}", c.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        c
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    pub fn ctr(&self, args: &[&str]) -> Out {
        let mut c = Command::new("ctr");
        c.arg("-a").arg(&self.socket).args(["-n", "imgsync"]).args(args);
        run(c)
    }

    /// `ctr images pull --hosts-dir DIR --snapshotter native REF`.
    pub fn pull(&self, hosts_dir: &Path, reference: &str) -> Out {
        let dir = hosts_dir.display().to_string();
        self.ctr(&["images", "pull", "--hosts-dir", &dir, "--snapshotter", "native", reference])
    }

    /// The digest the image record points to (`ctr images ls`).
    pub fn image_digest(&self, reference: &str) -> Option<String> {
        let out = self.ctr(&["images", "ls"]);
        out.stdout.lines().find_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols.first() == Some(&reference)).then(|| cols.get(2).map(|s| s.to_string())).flatten()
        })
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // SIGTERM first: containerd stops its plugins; then make sure.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
