//! End-to-end: naming modes and the runtime configuration `imgsync map
//! --emit` writes (issue 21). A path-mode sync (namespace `team/mirror`),
//! then real podman and real containerd pull the ORIGINAL name through the
//! emitted configuration while the original registry is stopped, and get the
//! source's digest; a flat-mode sync, whose k3s rewrite rules (applied as k3s
//! documents them) and podman drop-in serve the originals too. Registries
//! that do not nest refuse path naming (exit 2); a digest-only line syncs to
//! `sha256_<hex>`, and a mirror made under the old `sha256-<hex>` is still found.
//!
//! The copies use the imagetools engine (digests preserved), so these tests
//! need the buildx plugin scripts/test.sh installs, as the imagetools suite does.


use crate::common::runtimes::{have, Containerd, Podman};
use crate::common::*;

/// A workspace that sees the buildx plugin and a Docker engine, or None (and says so).
fn buildx_workspace(test: &str) -> Option<Workspace> {
    Docker::get_or_skip()?;
    crate::common::buildx_workspace(test)
}

/// Both platforms, so the host's (amd64 or arm64) is there for podman and ctr.
fn two_platform(seed: &str) -> ImageSpec {
    ImageSpec::new(&unique(seed)).platforms(&["linux/amd64", "linux/arm64"])
}

fn sync(ws: &Workspace) -> Run {
    let run = ws.run(&["sync", "--engine", "imagetools", "--report", "report.json"]);
    assert_eq!(run.code, 0, "sync failed:\n{}", run.dump());
    run
}

fn map(ws: &Workspace, args: &[&str]) -> Run {
    let mut all = vec!["map"];
    all.extend_from_slice(args);
    let run = ws.run(&all);
    assert_eq!(run.code, 0, "map failed:\n{}", run.dump());
    run
}

/// A path-mode target at `dst`, namespace `team/mirror`, with images.txt `lines`.
fn path_mode(ws: &mut Workspace, dst: &Registry, lines: &str) {
    ws.custom_target(dst, "team/mirror", None);
    let config = ws.read("config.env").unwrap();
    ws.config(&format!("{config}NAMING=path\n"));
    ws.images(lines);
}

#[test]
fn podman_pulls_an_original_name_through_a_path_mirror() {
    let Some(mut ws) = buildx_workspace("naming::podman_pulls_an_original_name_through_a_path_mirror") else { return };
    if !have("podman") {
        return;
    }
    let src = Registry::start();
    let dst = Registry::start();
    let web = src.push_image("lib/web:1.0", &two_platform("naming-podman"));
    path_mode(&mut ws, &dst, &format!("{}\n", web.reference()));
    sync(&ws);
    let mirrored = format!("team/mirror/127.0.0.1-{}/lib/web", src.port());
    assert_eq!(dst.manifest(&mirrored, "1.0").map(|m| m.digest), Some(web.digest.clone()), "path mode keeps the source's path");
    // The server: only the mirror's address (no config.env targets needed).
    map(&ws, &["--mirror", &format!("{}/team/mirror", dst.host()), "--naming", "path", "--emit", "podman", "--out", "podman.d"]);
    let conf = ws.path().join("podman.d/50-imgsync.conf");
    let original = web.reference();
    drop(src); // the original registry is gone
    let podman = Podman::new();
    let out = podman.pull(&conf, &original);
    assert!(out.ok, "podman pull {original}: {}\n--- {} ---\n{}", out.stderr, conf.display(), std::fs::read_to_string(&conf).unwrap());
    let digests = podman.repo_digests(&conf, &original);
    assert!(digests.contains(&web.digest), "podman has {digests:?}, the source's digest is {}", web.digest);
}

#[test]
fn containerd_pulls_an_original_name_through_a_path_mirror() {
    let Some(mut ws) = buildx_workspace("naming::containerd_pulls_an_original_name_through_a_path_mirror") else { return };
    if !have("containerd") || !have("ctr") {
        return;
    }
    let src = Registry::start();
    let dst = Registry::start();
    let web = src.push_image("lib/ctr:2.0", &two_platform("naming-ctr"));
    path_mode(&mut ws, &dst, &format!("{}\n", web.reference()));
    sync(&ws);
    // From config.env this time (NAMING=path there).
    map(&ws, &["--emit", "containerd", "--out", "certs.d"]);
    let hosts = ws.path().join("certs.d");
    let file = hosts.join(format!("{}/hosts.toml", src.host()));
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    assert!(text.contains("override_path = true") && text.contains(&format!("http://{}/v2/team/mirror/", dst.host())), "{text}");
    let original = web.reference();
    drop(src);
    let containerd = Containerd::start();
    let out = containerd.pull(&hosts, &original);
    assert!(out.ok, "ctr images pull {original}: {}{}\n--- {} ---\n{text}\n--- containerd log ---\n{}", out.stdout, out.stderr, file.display(), containerd.log());
    assert_eq!(containerd.image_digest(&original), Some(web.digest.clone()), "the image record points at the source's digest");
}

/// k3s's rewrite, as its documentation describes it: the mirror entry of the
/// image's registry, the rule whose regular expression matches the repository,
/// its replacement (with `$1`), at the entry's endpoint.
fn k3s_rewrite(yaml: &str, original: &str) -> Option<String> {
    use saphyr::{LoadableYamlNode, Yaml};
    let r = imgsync::reference::ImageRef::parse(original).unwrap();
    let docs = Yaml::load_from_str(yaml).unwrap();
    let entry = docs[0].as_mapping_get("mirrors")?.as_mapping_get(r.registry())?;
    let endpoint = entry.as_mapping_get("endpoint")?.as_sequence()?[0].as_str()?.to_string();
    let host = endpoint.split_once("://").map_or(endpoint.as_str(), |(_, h)| h).to_string();
    for (pattern, replacement) in entry.as_mapping_get("rewrite")?.as_mapping()? {
        let re = regex::Regex::new(pattern.as_str()?).unwrap();
        if re.is_match(r.repository()) {
            let repo = re.replace(r.repository(), replacement.as_str()?).to_string();
            return Some(format!("{host}/{repo}:{}", r.tag().unwrap()));
        }
    }
    None
}

#[test]
fn flat_mode_k3s_rewrites_and_podman_tables_serve_the_originals() {
    let Some(mut ws) = buildx_workspace("naming::flat_mode_k3s_rewrites_and_podman_tables_serve_the_originals") else { return };
    let src = Registry::start();
    let dst = Registry::start();
    let web = src.push_image("lib/web:1.0", &two_platform("naming-flat-web"));
    let db = src.push_image("lib/db:2", &two_platform("naming-flat-db"));
    let cli = src.push_image("tools/cli:3", &two_platform("naming-flat-cli"));
    let other = src.push_image("tools/x:4", &two_platform("naming-flat-x"));
    ws.custom_target(&dst, "team/mirror", None);
    ws.images(&format!("{}\n{}\n{} => cli\n{} => x:stable\n", web.reference(), db.reference(), cli.reference(), other.reference()));
    sync(&ws);
    let run = map(&ws, &["--emit", "k3s"]);
    let yaml = run.stdout.clone();
    for img in [&web, &db, &cli] {
        let mirror = k3s_rewrite(&yaml, &img.reference()).unwrap_or_else(|| panic!("no rewrite for {}:\n{yaml}", img.reference()));
        let repo_tag = mirror.strip_prefix(&format!("{}/", dst.host())).unwrap();
        let (repo, tag) = repo_tag.rsplit_once(':').unwrap();
        assert_eq!(dst.manifest(repo, tag).map(|m| m.digest), Some(img.digest.clone()), "{} -> {mirror}", img.reference());
    }
    // A rename to another tag cannot be a rewrite: a comment, no rule.
    assert_eq!(k3s_rewrite(&yaml, &other.reference()), None, "{yaml}");
    assert!(yaml.contains("x:stable") && yaml.contains("a rewrite changes the repository only"), "{yaml}");
    // podman, flat: one table per image; the original registry stopped.
    if !have("podman") {
        return;
    }
    map(&ws, &["--emit", "podman", "--out", "podman.d"]);
    let conf = ws.path().join("podman.d/50-imgsync.conf");
    drop(src);
    let podman = Podman::new();
    for img in [&db, &cli] {
        let original = img.reference();
        let out = podman.pull(&conf, &original);
        assert!(
            out.ok,
            "podman pull {original}: {}\n{}\n--- debug ---\n{}",
            out.stderr,
            std::fs::read_to_string(&conf).unwrap(),
            podman.pull_debug(&conf, &original)
        );
        assert!(podman.repo_digests(&conf, &original).contains(&img.digest), "{original}");
    }
}

#[test]
fn registries_that_do_not_nest_refuse_path_naming() {
    let ws = Workspace::new();
    ws.config("SYNC_MODE=aliyun\nALIYUN_REGISTRY=registry.cn-hangzhou.aliyuncs.com\nALIYUN_NAMESPACE=ns\nNAMING=path\n");
    ws.images("nginx:1.27\n");
    let run = ws.run(&["sync", "--dry-run"]);
    assert_eq!(run.code, 2, "{}", run.dump());
    assert!(run.stderr.contains("Aliyun ACR Personal accepts only NAMESPACE/NAME"), "{}", run.dump());
    assert!(run.stderr.contains("set ALIYUN_NAMING=flat"), "{}", run.dump());
    // The per-target setting fixes it.
    let run = ws.run(&["map", "--images", "images.txt"]);
    assert_eq!(run.code, 2, "map refuses the same settings:\n{}", run.dump());
    let ws2 = Workspace::new();
    ws2.config("SYNC_MODE=aliyun\nALIYUN_REGISTRY=registry.cn-hangzhou.aliyuncs.com\nALIYUN_NAMESPACE=ns\nNAMING=path\nALIYUN_NAMING=flat\n");
    ws2.images("nginx:1.27\n");
    let run = ws2.run(&["map"]);
    assert_eq!(run.code, 0, "{}", run.dump());
    assert_eq!(run.stdout, "nginx:1.27 -> registry.cn-hangzhou.aliyuncs.com/ns/nginx:1.27\n");
    // containerd cannot serve a flat mirror: refused with the reason, nothing written.
    let run = ws2.run(&["map", "--emit", "containerd", "--out", "certs.d"]);
    assert_eq!(run.code, 2, "{}", run.dump());
    assert!(run.stderr.contains("containerd cannot pull the original names from a flat mirror") && run.stderr.contains("NAMING=path"), "{}", run.dump());
    assert!(!ws2.path().join("certs.d").exists());
    // A namespace with '/' on a registry that does not nest.
    ws2.config("SYNC_MODE=dockerhub\nDOCKERHUB_NAMESPACE=me/mirror\n");
    let run = ws2.run(&["map"]);
    assert_eq!(run.code, 2, "{}", run.dump());
    assert!(run.stderr.contains("Docker Hub accepts only NAMESPACE/NAME"), "{}", run.dump());
}

#[test]
fn digest_lines_get_a_tag_that_is_not_the_referrers_fallback_and_old_mirrors_are_found() {
    let Some(mut ws) = buildx_workspace("naming::digest_lines_get_a_tag_that_is_not_the_referrers_fallback_and_old_mirrors_are_found") else { return };
    let src = Registry::start();
    let dst = Registry::start();
    let new = src.push_image("lib/d:1", &two_platform("naming-digest-new"));
    let old_spec = two_platform("naming-digest-old");
    let old = src.push_image("lib/old:1", &old_spec);
    ws.custom_target(&dst, "ns", None);
    let port = src.port();
    let new_line = format!("{}/lib/d@{}", src.host(), new.digest);
    ws.images(&format!("{new_line}\n"));
    sync(&ws);
    let hex = new.digest.strip_prefix("sha256:").unwrap();
    let repo = format!("ns/127-0-0-1-{port}_lib_d");
    let tags = dst.tags(&repo);
    assert!(tags.contains(&format!("sha256_{hex}")), "{tags:?}");
    assert!(!tags.contains(&format!("sha256-{hex}")), "the referrers fallback tag stays free: {tags:?}");
    assert_eq!(dst.manifest(&repo, &format!("sha256_{hex}")).map(|m| m.digest), Some(new.digest.clone()));
    // A mirror an older imgsync made: the same image under `sha256-<hex>`.
    let old_hex = old.digest.strip_prefix("sha256:").unwrap();
    let old_repo = format!("ns/127-0-0-1-{port}_lib_old");
    let legacy = dst.push_image(&format!("{old_repo}:sha256-{old_hex}"), &old_spec);
    assert_eq!(legacy.digest, old.digest, "same content, same digest");
    let old_line = format!("{}/lib/old@{}", src.host(), old.digest);
    ws.images(&format!("{new_line}\n{old_line}\n"));
    let legacy_ref = format!("{}/{old_repo}:sha256-{old_hex}", dst.host());
    // map knows the old name as that line's mirror.
    let run = map(&ws, &["--format", "json", &legacy_ref]);
    let rows: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(rows[0]["line"], 2, "{}", run.stdout);
    // pull reads the mirror under the old name (docker cannot tag a digest name,
    // so the row fails saying so, and names the mirror it found).
    let run = ws.run(&["pull", "--report", "pull.json"]);
    let rows = run.report()["entries"].as_array().unwrap().clone();
    let row = rows.iter().find(|r| r["line"] == 2).unwrap_or_else(|| panic!("{}", run.dump()));
    assert_eq!(row["targets"][0]["ref"], legacy_ref.as_str(), "{}", run.dump());
    assert!(row["targets"][0]["error"].as_str().unwrap().contains("names a digest"), "{}", run.dump());
    assert!(run.stderr.contains("mirrored under its old name"), "{}", run.dump());
}

#[test]
fn mirrors_md_lists_each_selected_tag_for_every_target_and_is_stable() {
    let Some(ws) = buildx_workspace("naming::mirrors_md_lists_each_selected_tag_for_every_target_and_is_stable") else { return };
    let src = Registry::start();
    let flat = Registry::start();
    let path = Registry::start();
    for tag in ["1.0.0", "1.1.0", "2.0.0"] {
        src.push_image(&format!("lib/app:{tag}"), &ImageSpec::new(&unique(&format!("naming-md-{tag}"))));
    }
    let web = src.push_image("lib/web:1", &ImageSpec::new(&unique("naming-md-web")));
    ws.config(&format!(
        "SYNC_MODE=aliyun,custom\nALIYUN_REGISTRY={}\nALIYUN_NAMESPACE=ns\nCUSTOM_REGISTRY={}\nCUSTOM_NAMESPACE=team/mirror\nCUSTOM_NAMING=path\n",
        flat.host(),
        path.host()
    ));
    ws.images(&format!("{}/lib/app --semver='^1'\n{}\n", src.host(), web.reference()));
    let write_mirrors = |ws: &Workspace| -> String {
        let run = ws.run(&["map", "--format", "markdown", "--report", "report.json", "--previous", "MIRRORS.md"]);
        assert_eq!(run.code, 0, "{}", run.dump());
        ws.write("MIRRORS.md", &run.stdout);
        run.stdout
    };
    sync(&ws);
    let first = write_mirrors(&ws);
    let port = src.port();
    for tag in ["1.0.0", "1.1.0"] {
        let flat_row = format!("| `{}/lib/app:{tag}` | `{}/ns/127-0-0-1-{port}_lib_app:{tag}` |", src.host(), flat.host());
        let path_row = format!("| `{}/lib/app:{tag}` | `{}/team/mirror/127.0.0.1-{port}/lib/app:{tag}` |", src.host(), path.host());
        assert!(first.contains(&flat_row), "no {flat_row}:\n{first}");
        assert!(first.contains(&path_row), "no {path_row}:\n{first}");
    }
    assert!(!first.contains("lib/app:2.0.0"), "2.0.0 is not selected:\n{first}");
    assert!(first.contains(&format!("### aliyun: `{}/ns`", flat.host())) && first.contains(&format!("### custom: `{}/team/mirror`", path.host())), "{first}");
    assert!(first.contains("#### Runtime configuration") && first.contains("override_path = true"), "path-mode snippets:\n{first}");
    // Every row's mirror exists at its target.
    assert!(flat.manifest(&format!("ns/127-0-0-1-{port}_lib_app"), "1.1.0").is_some());
    assert!(path.manifest(&format!("team/mirror/127.0.0.1-{port}/lib/app"), "1.0.0").is_some());
    // An unchanged run: byte-identical.
    sync(&ws);
    assert_eq!(write_mirrors(&ws), first, "an unchanged run changed MIRRORS.md");
    // The source unreachable: the line's listing fails, its rows stay as they were.
    drop(src);
    let run = ws.run(&["sync", "--engine", "imagetools", "--report", "report.json", "--retries", "0"]);
    assert_ne!(run.code, 0, "{}", run.dump());
    assert_eq!(write_mirrors(&ws), first, "a failed listing dropped rows");
}

#[test]
fn a_server_pulls_with_only_the_mirrors_address() {
    let Some(mut ws) = buildx_workspace("naming::a_server_pulls_with_only_the_mirrors_address") else { return };
    let docker = Docker::get();
    let src = Registry::start();
    let dst = Registry::start();
    let web = src.push_image("lib/srv:1.0", &two_platform("naming-server"));
    let _cleanup = ImageCleanup { docker: docker.clone(), ids: web.config_digests() };
    path_mode(&mut ws, &dst, &format!("{}\n", web.reference()));
    sync(&ws);
    drop(src);
    // The server: no config.env, no images.txt; docker's own login (none needed here).
    let server = Workspace::new();
    let mirror = format!("{}/team/mirror", dst.host());
    let original = web.reference();
    let run = server.run(&["pull", "--mirror", &mirror, "--naming", "path", &original, "--report", "pull.json"]);
    assert_eq!(run.code, 0, "{}", run.dump());
    let row = &run.report()["entries"][0]["targets"][0];
    assert_eq!(row["status"], "pulled", "{}", run.dump());
    assert_eq!(row["ref"], format!("{mirror}/127.0.0.1-{}/lib/srv:1.0", web.host.rsplit(':').next().unwrap()).as_str());
    assert!(docker.inspect(&original).is_some(), "the original name is there after the pull");
    // --naming needs --mirror; --mirror and --from exclude each other.
    assert_eq!(server.run(&["pull", "--naming", "path", &original]).code, 2);
    assert_eq!(server.run(&["map", "--mirror", &mirror, "--from", "ghcr", &original]).code, 2);
}
