//! End-to-end: hostile registries and docker output under GitHub Actions.
//!
//! - a `docker` wrapper first on PATH whose `manifest inspect` fails with
//!   `denied: nope\r::error title=INJ::x\r::add-mask::synced` on stderr: the
//!   run fails that entry, and no line of stdout, stderr or the job summary
//!   (split as the Actions runner splits, on `\r` and `\n`) starts with a
//!   workflow command imgsync did not write itself;
//! - an index whose platform `os` holds line breaks and workflow commands:
//!   refused at parse time, with the same guarantee on every output.

#![cfg(unix)]

use std::path::{Path, PathBuf};

use crate::common::docker_wrapper::real_docker;
use crate::common::*;

/// The lines the Actions runner would see: split on `\n` and on `\r`.
fn runner_lines(text: &str) -> impl Iterator<Item = &str> {
    text.split(['\n', '\r']).map(str::trim_start)
}

/// Panics when a line starts with a workflow command imgsync would not write.
#[track_caller]
fn assert_no_injected_commands(run: &Run, summary: &str) {
    for (what, text) in [("stdout", run.stdout.as_str()), ("stderr", run.stderr.as_str()), ("summary", summary)] {
        for line in runner_lines(text) {
            let ours = ["::add-mask::", "::group::line ", "::group::setup", "::endgroup::", "::error file=images.txt,line=", "::warning::"]
                .iter()
                .any(|p| line.starts_with(p));
            assert!(!line.starts_with("::") || ours, "{what} has a forged workflow command line: {line:?}\n{}", run.dump());
            assert!(!line.starts_with("::add-mask::synced"), "{what} masks a word from the registry\n{}", run.dump());
            assert!(!line.contains("##["), "{what} has an old-style command: {line:?}");
            assert!(!line.contains('\u{1b}'), "{what} has an ESC: {line:?}");
        }
    }
}


/// A directory holding a `docker` that fails `manifest inspect` with hostile
/// stderr and passes everything else to the real CLI.
fn hostile_wrapper(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("hostile-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = format!(
        "#!/bin/sh\ncase \"$1 $2\" in\n  \"manifest inspect\") printf 'denied: nope\\r::error title=INJ::x\\r::add-mask::synced\\n' >&2; exit 1 ;;\nesac\nexec '{}' \"$@\"\n",
        real_docker().display()
    );
    std::fs::write(bin.join("docker"), script).unwrap();
    std::fs::set_permissions(bin.join("docker"), std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

fn actions_env(ws: &mut Workspace) {
    let summary = ws.path().join("summary.md").display().to_string();
    let output = ws.path().join("output.txt").display().to_string();
    ws.set_env("GITHUB_ACTIONS", "true");
    ws.set_env("GITHUB_STEP_SUMMARY", &summary);
    ws.set_env("GITHUB_OUTPUT", &output);
    ws.set_env("IMGSYNC_RETRY_BASE_MS", "20");
}

#[test]
fn hostile_docker_stderr_cannot_forge_workflow_commands() {
    let _docker = Docker::get();
    let (src, dst) = (Registry::start(), Registry::start());
    let mut ws = Workspace::new();
    ws.custom_target(&dst, "mirror", None);
    actions_env(&mut ws);
    let bin = hostile_wrapper(ws.path());
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    ws.set_env("PATH", &path);
    let img = src.push_image("lib/app:v1", &ImageSpec::new(&unique("hostile-stderr")));
    ws.images(&format!("{} => app\n", img.reference()));

    // Docker's stderr is what is under test: read registries with docker
    // (the default HTTP read path starts no `docker manifest inspect`).
    let run = ws.sync(&["--inspect", "docker"]);
    run.expect_code(1);
    let summary = ws.read("summary.md").expect("job summary written");
    assert_no_injected_commands(&run, &summary);
    // The text is still there, made visible.
    assert!(run.all_output().contains("denied: nope\\r::error title=INJ::x\\r::add-mask::synced"), "{}", run.dump());
    assert!(run.stdout.contains("::error file=images.txt,line=1::"), "{}", run.dump());
    // The summary row stays one row of five cells.
    let row = summary.lines().find(|l| l.starts_with("| 1 |")).unwrap_or_else(|| panic!("{summary}"));
    assert_eq!(row.replace("\\|", "").matches('|').count(), 6, "{row}");
    assert!(!summary.contains('\r'), "{summary:?}");
}

#[test]
fn a_hostile_platform_os_is_refused_and_never_printed_raw() {
    let _docker = Docker::get();
    let (src, dst) = (Registry::start(), Registry::start());
    let mut ws = Workspace::new();
    ws.custom_target(&dst, "mirror", None);
    actions_env(&mut ws);
    let img = src.push_image("lib/app:v1", &ImageSpec::new(&unique("hostile-os")));
    let child = src.manifest_ref("lib/app:v1").expect("the pushed manifest");
    assert!(!child.is_index());
    let os = "linux\n::warning title=INJ::INJECTED-NL\r::notice::INJECTED-CR\u{1b}[2J";
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": child.media_type,
            "digest": child.digest,
            "size": child.bytes.len(),
            "platform": {"os": os, "architecture": "s390x"}
        }]
    });
    src.put_manifest("lib/app", "hostile", "application/vnd.oci.image.index.v1+json", index.to_string().as_bytes());
    ws.images(&format!("{}/lib/app:hostile => app\n", img.host));

    let run = ws.sync(&[]);
    run.expect_code(1);
    let summary = ws.read("summary.md").expect("job summary written");
    assert_no_injected_commands(&run, &summary);
    let out = run.all_output();
    assert!(out.contains("platform os"), "refused at parse time, saying why\n{}", run.dump());
    assert!(!out.contains("INJECTED-NL\r") && !out.contains("\n::notice::"), "{}", run.dump());
    assert!(dst.catalog().is_empty(), "nothing was copied");
}

#[test]
fn hostile_settings_are_errors_not_panics() {
    // Checked before any docker call: no engine or registry is needed.
    for (key, value, extra) in [
        ("BADGE_TZ", "+1é1", None),
        ("WEBHOOK_TIMEOUT", "18446744073709551615", Some(("WEBHOOK_URL", "https://hooks.example/h/t0ken"))),
        ("WEBHOOK_URL", "http://hooks.example/h/t0ken", None),
    ] {
        let mut ws = Workspace::new();
        ws.config("SYNC_MODE=custom\nCUSTOM_REGISTRY=127.0.0.1:9\nCUSTOM_NAMESPACE=mirror\n");
        ws.images("127.0.0.1:9/lib/app:v1 => app\n");
        ws.set_env(key, value);
        if let Some((k, v)) = extra {
            ws.set_env(k, v);
        }
        let run = ws.run(&["plan"]);
        run.expect_code(2);
        assert!(run.stderr.contains(key), "{key}={value}\n{}", run.dump());
        assert!(!run.stderr.contains("panicked") && !run.all_output().contains("t0ken"), "{}", run.dump());
    }
}
