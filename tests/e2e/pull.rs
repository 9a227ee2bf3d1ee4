//! End-to-end: the server side. Sync a list to a target registry, clear the
//! engine, then `imgsync pull` from images.txt and from a compose file (an
//! interpolated image, a rename, an unmirrored image, a build-only service)
//! and check what `docker images` holds: the original names, with the source's
//! config digests as IDs (this engine is the classic image store). A second
//! pull makes no `docker pull` (a `docker` wrapper first on PATH records every
//! call); an image the user had survives; a mirror without the wanted
//! platform fails naming the ones it has. `imgsync map` in its three formats.

use std::collections::BTreeSet;

use crate::common::docker_wrapper::RecordingDocker;
use crate::common::*;
use serde_json::Value;

struct Env {
    docker: Docker,
    src: Registry,
    dst: Registry,
    ws: Workspace,
    calls: RecordingDocker,
}

/// A workspace whose PATH starts with a `docker` that logs its arguments.
fn setup() -> Option<Env> {
    let docker = Docker::get_or_skip()?;
    let src = Registry::start();
    let dst = Registry::start();
    let mut ws = Workspace::new();
    ws.custom_target(&dst, "mirror", None);
    let calls = RecordingDocker::new();
    ws.set_env("PATH", &calls.path_with(&[]));
    Some(Env { docker, src, dst, ws, calls })
}

fn pulls(calls: &RecordingDocker) -> Vec<String> {
    calls.calls().into_iter().filter(|c| c.starts_with("pull")).collect()
}

fn engine_platform(docker: &Docker) -> String {
    docker.ok(&["version", "--format", "{{.Server.Os}}/{{.Server.Arch}}"]).trim().to_string()
}

/// `(source, status)` of every row of a pull report.
fn statuses(run: &Run) -> Vec<(String, String)> {
    run.report()["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let status = e["targets"].get(0).map(|t| t["status"].as_str().unwrap().to_string()).unwrap_or_else(|| "failed".into());
            (e["source"].as_str().unwrap().to_string(), status)
        })
        .collect()
}

fn error_of<'a>(run: &'a Run, source: &str) -> &'a str {
    let e = run.report()["entries"].as_array().unwrap().iter().find(|e| e["source"] == source).unwrap_or_else(|| panic!("no row {source}\n{}", run.dump()));
    e["targets"].get(0).map(|t| &t["error"]).unwrap_or(&e["error"]).as_str().unwrap_or("")
}

fn id_of(docker: &Docker, reference: &str) -> Option<String> {
    docker.inspect(reference).map(|v| v["Id"].as_str().unwrap().to_string())
}

#[test]
fn pull_from_images_txt_and_compose_restores_original_names() {
    let Some(e) = setup() else { return };
    let host = engine_platform(&e.docker);
    let other = if normalize_platform(&host) == normalize_platform("linux/amd64") { "linux/arm64" } else { "linux/amd64" };
    let web = e.src.push_image("lib/web:1.0", &ImageSpec::new(&unique("pull-web")).platforms(&[&host, other]));
    let db = e.src.push_image("lib/db:2", &ImageSpec::new(&unique("pull-db")).platforms(&[&host]));
    let only_other = e.src.push_image("lib/other:1", &ImageSpec::new(&unique("pull-other")).platforms(&[other]));
    let extra = e.src.push_image("lib/extra:3", &ImageSpec::new(&unique("pull-extra")).platforms(&[&host]));
    let kept = e.src.push_image("lib/kept:1", &ImageSpec::new(&unique("pull-kept")).platforms(&[&host]));
    let mut ids: BTreeSet<String> = BTreeSet::new();
    for i in [&web, &db, &only_other, &extra, &kept] {
        ids.extend(i.config_digests());
    }
    let _cleanup = ImageCleanup { docker: e.docker.clone(), ids: ids.clone() };
    let s = e.src.host();
    e.ws.images(&format!("{s}/lib/web:1.0\n{s}/lib/db:2 => database\n--platform={other} {s}/lib/other:1\n"));
    e.ws.sync(&[]).expect_code(0);
    e.docker.remove_ids(&ids);
    e.calls.clear();

    let d = e.dst.host();
    let slug = format!("127-0-0-1-{}", e.src.port());
    let web_mirror = format!("{d}/mirror/{slug}_lib_web:1.0");
    let db_mirror = format!("{d}/mirror/database:2");
    // What the user had before: the web mirror's tag, and an unrelated image.
    e.docker.pull(&web_mirror);
    e.docker.pull(&kept.reference());
    let kept_id = id_of(&e.docker, &kept.reference()).unwrap();

    // 1. From images.txt: the line for the other platform fails alone.
    let run = e.ws.run(&["pull", "--report", "r1.json"]);
    run.expect_code(1);
    let st = statuses(&run);
    assert_eq!(
        st,
        [
            (format!("{s}/lib/web:1.0"), "pulled".to_string()),
            (format!("{s}/lib/db:2"), "pulled".to_string()),
            (format!("{s}/lib/other:1"), "failed".to_string()),
        ],
        "{}",
        run.dump()
    );
    let err = error_of(&run, &format!("{s}/lib/other:1"));
    assert!(err.contains(&format!("has no {host} image; it has {other}")) && err.contains("--platform"), "{}", run.dump());
    assert_eq!(run.summary("pulled"), 2);
    assert!(run.stdout.contains("pull: 2 pulled, 0 present, 1 failed"), "{}", run.dump());
    // IDs are the source's config digests for this platform, under the original names.
    assert_eq!(id_of(&e.docker, &format!("{s}/lib/web:1.0")), Some(web.platform(&host).config.clone()));
    assert_eq!(id_of(&e.docker, &format!("{s}/lib/db:2")), Some(db.platform(&host).config.clone()));
    let names: BTreeSet<String> = e.docker.images().into_iter().map(|i| format!("{}:{}", i.repository, i.tag)).collect();
    assert!(names.contains(&format!("{s}/lib/web:1.0")) && names.contains(&format!("{s}/lib/db:2")), "{names:?}");
    // The mirror tag this run created is gone; the one the user had stays, as does their image.
    assert!(!names.contains(&db_mirror), "{names:?}");
    assert!(names.contains(&web_mirror), "{names:?}");
    assert_eq!(id_of(&e.docker, &kept.reference()), Some(kept_id.clone()));
    assert!(!e.calls.calls().iter().any(|c| c.contains("--force") || c.starts_with("rmi")), "{:?}", e.calls.calls());
    assert!(pulls(&e.calls).iter().all(|c| c.starts_with(&format!("pull --quiet --platform {host}"))), "{:?}", pulls(&e.calls));

    // 2. A compose file: an interpolated tag (.env and a default), a rename, an unmirrored image, a build-only service.
    std::fs::write(e.ws.path().join(".env"), format!("REG={s}\n")).unwrap();
    e.ws.write(
        "docker-compose.yml",
        &format!(
            "services:\n  web:\n    image: ${{REG}}/lib/web:${{WEB_TAG:-1.0}}\n  db:\n    image: {s}/lib/db:2\n  extra:\n    image: {s}/lib/extra:3\n  app:\n    build: .\n"
        ),
    );
    e.calls.clear();
    let run = e.ws.run(&["pull", "--compose", "docker-compose.yml", "--report", "r2.json"]);
    run.expect_code(1);
    assert_eq!(
        statuses(&run),
        [
            (format!("{s}/lib/web:1.0"), "present".to_string()),
            (format!("{s}/lib/db:2"), "present".to_string()),
            (format!("{s}/lib/extra:3"), "failed".to_string()),
        ],
        "{}",
        run.dump()
    );
    let err = error_of(&run, &format!("{s}/lib/extra:3"));
    assert!(err.ends_with(&format!("add this line to images.txt and run sync: {s}/lib/extra:3")), "{}", run.dump());
    assert!(pulls(&e.calls).is_empty(), "a no-op pull ran docker pull: {:?}", e.calls.calls());
    assert!(run.stderr.contains("service app is built locally"), "{}", run.dump());

    // 3. Clear the originals: the compose pull brings them back.
    e.docker.rmi(&[&format!("{s}/lib/web:1.0"), &format!("{s}/lib/db:2")]);
    e.calls.clear();
    let run = e.ws.run(&["pull", "--compose", "docker-compose.yml", "--report", "r3.json"]);
    run.expect_code(1);
    assert_eq!(statuses(&run)[..2], [(format!("{s}/lib/web:1.0"), "pulled".to_string()), (format!("{s}/lib/db:2"), "pulled".to_string())], "{}", run.dump());
    assert_eq!(id_of(&e.docker, &format!("{s}/lib/web:1.0")), Some(web.platform(&host).config.clone()));
    assert_eq!(id_of(&e.docker, &format!("{s}/lib/db:2")), Some(db.platform(&host).config.clone()));
    assert_eq!(pulls(&e.calls).len(), 2, "{:?}", e.calls.calls());
    // For people reading the test log (`--nocapture`): the run and what the engine shows.
    eprintln!(
        "--- transcript ---\n$ cat docker-compose.yml\n{}$ imgsync pull --compose docker-compose.yml\n{}{}$ docker images\n{}",
        e.ws.read("docker-compose.yml").unwrap_or_default(),
        run.stderr,
        run.stdout,
        e.docker.ok(&["images"])
    );

    // 4. Another platform, asked for: that platform's config digest.
    let run = e.ws.run(&["pull", "--platform", other, &format!("{s}/lib/web:1.0"), "--report", "r4.json"]);
    run.expect_code(0);
    assert_eq!(statuses(&run), [(format!("{s}/lib/web:1.0"), "pulled".to_string())], "{}", run.dump());
    assert_eq!(id_of(&e.docker, &format!("{s}/lib/web:1.0")), Some(web.platform(other).config.clone()));
    let run = e.ws.run(&["pull", "--platform", other, &format!("{s}/lib/web:1.0"), "--report", "r5.json"]);
    run.expect_code(0);
    assert_eq!(statuses(&run), [(format!("{s}/lib/web:1.0"), "present".to_string())], "{}", run.dump());
    // What the user had is still there.
    assert_eq!(id_of(&e.docker, &kept.reference()), Some(kept_id));
    assert!(e.docker.inspect(&web_mirror).is_some());

    // 5. map, in its three formats.
    let run = e.ws.run(&["map"]);
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        format!("{s}/lib/web:1.0 -> {web_mirror}\n{s}/lib/db:2 -> {db_mirror}\n{s}/lib/other:1 -> {d}/mirror/{}_{slug}_lib_other:1\n", other.replace('/', "_")),
        "{}",
        run.dump()
    );
    let run = e.ws.run(&["map", "--compose", "docker-compose.yml", "--format", "json"]);
    run.expect_code(1);
    let v: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|err| panic!("{err}\n{}", run.dump()));
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 3, "{v}");
    assert_eq!(rows[0]["source"], format!("{s}/lib/web:1.0"));
    assert_eq!(rows[0]["mirror"], web_mirror.as_str());
    assert_eq!(rows[1]["mirror"], db_mirror.as_str());
    assert_eq!(rows[2]["listing"]["status"], "unlisted");
    assert!(run.stderr.contains(&format!("add the line: {s}/lib/extra:3")), "{}", run.dump());
    let run = e.ws.run(&["map", "--format", "markdown"]);
    run.expect_code(0);
    let md: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(md[0], "| Original | Mirror | Platforms | Pull |");
    assert_eq!(md[2], format!("| `{s}/lib/web:1.0` | `{web_mirror}` | all | `docker pull {web_mirror}` |"));
    assert!(md[4].contains(&format!("`docker pull --platform {other} ")), "{}", run.stdout);
    assert_eq!(md.len(), 5);
}

#[test]
fn bad_inputs_exit_2_before_any_docker_call() {
    let Some(e) = setup() else { return };
    e.ws.images("nginx:alpine => x\nredis:alpine => x\n");
    let run = e.ws.run(&["pull"]);
    run.expect_code(2);
    assert!(run.stderr.contains("both sync to"), "{}", run.dump());
    e.ws.images("nginx:alpine\n");
    let run = e.ws.run(&["pull", "--compose", "missing.yml"]);
    run.expect_code(2);
    let run = e.ws.run(&["pull", "--from", "ghcr", "nginx:alpine"]);
    run.expect_code(2);
    assert!(run.stderr.contains("--from ghcr") && run.stderr.contains("custom"), "{}", run.dump());
    e.ws.write("docker-compose.yml", "services:\n  a:\n    image: ${UNSET_IMAGE}\n");
    let run = e.ws.run(&["map", "--compose", "docker-compose.yml"]);
    run.expect_code(2);
    assert!(run.stderr.contains("\"a\"") || run.stderr.contains("service a"), "{}", run.dump());
    assert!(e.calls.calls().is_empty(), "{:?}", e.calls.calls());
    drop(e.src);
    drop(e.dst);
}

/// A tag-selecting line: the server lists the mirror's tags (the source,
/// here a Docker Hub name, is never contacted) and pulls each selected one
/// under its original name.
#[test]
fn tag_selecting_lines_select_from_the_mirror() {
    let Some(e) = setup() else { return };
    let host = engine_platform(&e.docker);
    let seed = unique("pull-sel");
    // What a sync of `example/sel --semver='~1.2'` would have left in the mirror (plus a tag outside it).
    let pushed: Vec<PushedImage> = ["1.2.0", "1.2.1", "2.0.0"]
        .iter()
        .map(|t| e.dst.push_image(&format!("mirror/example_sel:{t}"), &ImageSpec::new(&format!("{seed}-{t}")).platforms(&[&host])))
        .collect();
    let ids: BTreeSet<String> = pushed.iter().flat_map(|p| p.config_digests()).collect();
    let _cleanup = ImageCleanup { docker: e.docker.clone(), ids };
    e.ws.images("example/sel --semver='~1.2'\n");
    let run = e.ws.run(&["pull", "--report", "r.json"]);
    run.expect_code(0);
    assert_eq!(
        statuses(&run),
        [("example/sel:1.2.0".to_string(), "pulled".to_string()), ("example/sel:1.2.1".to_string(), "pulled".to_string())],
        "{}",
        run.dump()
    );
    assert_eq!(id_of(&e.docker, "example/sel:1.2.0"), Some(pushed[0].platforms[0].config.clone()));
    assert_eq!(id_of(&e.docker, "example/sel:1.2.1"), Some(pushed[1].platforms[0].config.clone()));
    assert_eq!(id_of(&e.docker, "example/sel:2.0.0"), None);
    e.docker.rmi(&["example/sel:1.2.0", "example/sel:1.2.1"]);
}

/// A private mirror: the login sync would make (CUSTOM_USERNAME in
/// config.env, CUSTOM_PASSWORD in the environment), secrets nowhere in the output.
#[test]
fn a_private_mirror_is_read_with_the_targets_login() {
    let Some(docker) = Docker::get_or_skip() else { return };
    let password = "pull-s3cret-Pw";
    let dst = Registry::start_with_auth("puller", password);
    let mut ws = Workspace::new();
    ws.custom_target(&dst, "mirror", None);
    let host = engine_platform(&docker);
    let img = dst.push_image("mirror/example_priv:1", &ImageSpec::new(&unique("pull-priv")).platforms(&[&host]));
    let _cleanup = ImageCleanup { docker: docker.clone(), ids: img.config_digests() };
    ws.images("example/priv:1\n");
    let run = ws.run(&["pull", "--report", "r.json"]);
    run.expect_code(0);
    assert_eq!(statuses(&run), [("example/priv:1".to_string(), "pulled".to_string())], "{}", run.dump());
    assert_eq!(id_of(&docker, "example/priv:1"), Some(img.platforms[0].config.clone()));
    assert!(!run.all_output().contains(password), "{}", run.dump());
    // Without the password, the mirror's refusal fails the image with a hint, exit 1.
    docker.rmi(&["example/priv:1"]);
    let ws2 = Workspace::new();
    ws2.config(&format!("SYNC_MODE=custom\nCUSTOM_REGISTRY={}\nCUSTOM_NAMESPACE=mirror\n", dst.host()));
    ws2.images("example/priv:1\n");
    let run = ws2.run(&["pull", "--report", "r.json"]);
    run.expect_code(1);
    assert!(run.stdout.contains("docker login"), "{}", run.dump());
}
