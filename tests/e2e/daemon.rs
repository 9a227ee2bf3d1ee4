//! End-to-end: `imgsync sync --engine daemon` against a real Docker engine and
//! real registries (see scripts/test.sh). Each test starts its own source and
//! target registries and uses unique image content, so tests run in parallel
//! on one shared engine.

use std::collections::BTreeSet;

use crate::common::*;
use serde_json::Value;

struct Env {
    docker: Docker,
    src: Registry,
    dst: Registry,
    ws: Workspace,
}

/// An engine, a source registry, a target registry and a workspace whose
/// config.env mirrors into `<dst>/mirror`; `None` (the test is skipped) without an engine.
fn setup() -> Option<Env> {
    let docker = Docker::get_or_skip()?;
    let src = Registry::start();
    let dst = Registry::start();
    let mut ws = Workspace::new();
    ws.custom_target(&dst, "mirror", None);
    Some(Env { docker, src, dst, ws })
}

/// The `_`-joined form of the source registry in default target names.
fn slug(reg: &Registry) -> String {
    format!("127-0-0-1-{}", reg.port())
}

fn platforms_of(entry: &Value) -> BTreeSet<String> {
    entry["platforms"]
        .as_array()
        .unwrap_or_else(|| panic!("entry has no platforms array: {entry}"))
        .iter()
        .map(|p| normalize_platform(p.as_str().unwrap()))
        .collect()
}

fn keys(img: &PushedImage) -> BTreeSet<String> {
    img.configs().keys().cloned().collect()
}

/// Nothing the run pulled is left in the engine.
#[track_caller]
fn assert_no_local_images(docker: &Docker, ids: &BTreeSet<String>, run: &Run) {
    let left = docker.images_with_ids(ids);
    assert!(left.is_empty(), "images pulled by the run are still in the engine: {left:?}\n{}", run.dump());
}

#[track_caller]
fn assert_target_error_mentions_nothing_secret(run: &Run, secret: &str) {
    assert!(!run.all_output().contains(secret), "the password appears in the output\n{}", run.dump());
}

#[test]
fn single_platform_image_lands_under_the_default_name() {
    let Some(e) = setup() else { return };
    let img = e.src.push_image("lib/app:v1", &ImageSpec::new(&unique("single")));
    let _cleanup = ImageCleanup { docker: e.docker.clone(), ids: img.config_digests() };
    e.ws.images(&format!("# mirrored by the e2e test\n\n{}\n", img.reference()));

    let run = e.ws.sync(&[]);
    run.expect_code(0);
    let name = format!("mirror/{}_lib_app", slug(&e.src));
    let target = format!("{}/{name}:v1", e.dst.host());
    assert_eq!(run.report()["engine"], "daemon", "{}", run.dump());
    assert_eq!(run.summary("synced"), 1);
    assert_eq!(run.summary("failed"), 0);
    let entry = run.entry(3);
    assert!(entry["source"].as_str().unwrap_or("").contains("lib/app:v1"), "{entry}");
    assert_eq!(platforms_of(entry), BTreeSet::from(["linux/amd64".to_string()]));
    assert_eq!(entry["targets"][0]["target"], "custom");
    assert!(entry["targets"][0]["error"].is_null(), "{entry}");
    assert_eq!(run.targets(3), vec![(target.clone(), "synced".to_string())]);

    assert_eq!(e.dst.catalog(), vec![name.clone()]);
    assert_eq!(e.dst.platform_configs(&format!("{name}:v1")), Some(img.configs()));
    // skopeo as an independent witness.
    let raw = skopeo_raw(&e.dst, &format!("{name}:v1"));
    assert_eq!(raw["config"]["digest"], img.platforms[0].config.as_str(), "{raw}");
    assert_eq!(skopeo_config_digest(&e.dst, &format!("{name}:v1"), "linux/amd64"), img.platforms[0].config);
    assert_no_local_images(&e.docker, &img.config_digests(), &run);
}

#[test]
fn multi_platform_docker_manifest_list() {
    let Some(e) = setup() else { return };
    let img = e.src.push_image(
        "lib/multi:1.0",
        &ImageSpec::new(&unique("list")).platforms(&["linux/amd64", "linux/arm64/v8", "linux/arm/v7"]),
    );
    assert_eq!(img.media_type, DOCKER_LIST);
    let _cleanup = ImageCleanup { docker: e.docker.clone(), ids: img.config_digests() };
    e.ws.images(&format!("{} => multi:v1\n", img.reference()));

    let run = e.ws.sync(&[]);
    run.expect_code(0);
    assert_eq!(run.targets(1), vec![(format!("{}/mirror/multi:v1", e.dst.host()), "synced".to_string())]);
    assert_eq!(platforms_of(run.entry(1)), keys(&img));
    assert_eq!(run.summary("synced"), 1);

    let top = e.dst.manifest("mirror/multi", "v1").expect("target tag exists");
    assert!(top.is_index(), "several platforms land as a manifest list: {}", top.media_type);
    // Config digests equal the source's, platform by platform (manifest digests
    // differ: the engine re-compresses layers).
    assert_eq!(e.dst.platform_configs("mirror/multi:v1"), Some(img.configs()));
    let raw = skopeo_raw(&e.dst, "mirror/multi:v1");
    assert_eq!(raw["manifests"].as_array().map(Vec::len), Some(3), "{raw}");
    for p in &img.platforms {
        assert_eq!(skopeo_config_digest(&e.dst, "mirror/multi:v1", &p.platform), p.config, "{}", p.platform);
    }
    assert_no_local_images(&e.docker, &img.config_digests(), &run);
}

#[test]
fn oci_index_with_attestations_copies_only_the_platforms() {
    let Some(e) = setup() else { return };
    let img = e.src.push_image(
        "team/tool:2.0",
        &ImageSpec::new(&unique("oci-att")).platforms(&["linux/amd64", "linux/arm64/v8"]).attestations(),
    );
    assert_eq!(img.media_type, OCI_INDEX);
    let _cleanup = ImageCleanup { docker: e.docker.clone(), ids: img.config_digests() };
    e.ws.images(&format!("{} => tool\n", img.reference()));

    let run = e.ws.sync(&[]);
    run.expect_code(0);
    assert_eq!(run.targets(1), vec![(format!("{}/mirror/tool:2.0", e.dst.host()), "synced".to_string())]);
    assert_eq!(platforms_of(run.entry(1)), keys(&img), "attestations are not platforms");

    let configs = e.dst.platform_configs("mirror/tool:2.0").expect("target tag exists");
    assert_eq!(configs, img.configs(), "exactly the two platforms, no attestation manifest");
    let raw = skopeo_raw(&e.dst, "mirror/tool:2.0");
    let entries = raw["manifests"].as_array().expect("an index");
    assert_eq!(entries.len(), 2, "{raw}");
    assert!(entries.iter().all(|m| m["platform"]["os"] == "linux"), "{raw}");
    assert_no_local_images(&e.docker, &img.config_digests(), &run);
}

#[test]
fn platform_subset_lands_as_one_single_platform_image() {
    let Some(e) = setup() else { return };
    let img = e.src.push_image("lib/app:v1", &ImageSpec::new(&unique("subset")).platforms(&["linux/amd64", "linux/arm64/v8"]));
    let _cleanup = ImageCleanup { docker: e.docker.clone(), ids: img.config_digests() };
    e.ws.images(&format!("--platform=linux/arm64 {}\n", img.reference()));

    let run = e.ws.sync(&[]);
    run.expect_code(0);
    let name = format!("mirror/linux_arm64_{}_lib_app", slug(&e.src));
    assert_eq!(run.targets(1), vec![(format!("{}/{name}:v1", e.dst.host()), "synced".to_string())]);
    assert_eq!(platforms_of(run.entry(1)), BTreeSet::from(["linux/arm64/v8".to_string()]));

    assert_eq!(e.dst.catalog(), vec![name.clone()]);
    let top = e.dst.manifest(&name, "v1").unwrap();
    assert!(!top.is_index(), "one platform lands as a plain image manifest, got {}", top.media_type);
    let arm = img.platform("linux/arm64/v8");
    assert_eq!(top.json["config"]["digest"], arm.config.as_str());
    assert_eq!(e.dst.platform_configs(&format!("{name}:v1")).unwrap().into_iter().collect::<Vec<_>>(), vec![(
        "linux/arm64/v8".to_string(),
        arm.config.clone()
    )]);
    assert_eq!(skopeo_config_digest(&e.dst, &format!("{name}:v1"), "linux/arm64/v8"), arm.config);
    assert_no_local_images(&e.docker, &img.config_digests(), &run);
}

#[test]
fn rename_with_and_without_tag() {
    let Some(e) = setup() else { return };
    let img = e.src.push_image("lib/app:v1", &ImageSpec::new(&unique("rename")).platforms(&["linux/amd64", "linux/arm64/v8"]));
    let _cleanup = ImageCleanup { docker: e.docker.clone(), ids: img.config_digests() };
    e.ws.images(&format!("{r} => web:stable\n{r} => web # keeps the source tag\n", r = img.reference()));

    let run = e.ws.sync(&[]);
    run.expect_code(0);
    let host = e.dst.host();
    assert_eq!(run.targets(1), vec![(format!("{host}/mirror/web:stable"), "synced".to_string())]);
    assert_eq!(run.targets(2), vec![(format!("{host}/mirror/web:v1"), "synced".to_string())]);
    assert_eq!(run.summary("synced"), 2);
    assert_eq!(e.dst.catalog(), vec!["mirror/web".to_string()]);
    assert_eq!(e.dst.tags("mirror/web"), vec!["stable".to_string(), "v1".to_string()]);
    assert_eq!(e.dst.platform_configs("mirror/web:stable"), Some(img.configs()));
    assert_eq!(e.dst.platform_configs("mirror/web:v1"), Some(img.configs()));
    assert_no_local_images(&e.docker, &img.config_digests(), &run);
}

#[test]
fn second_run_is_up_to_date_and_downloads_no_layer() {
    let Some(e) = setup() else { return };
    const LAYER: usize = 16 * 1024;
    let two = ["linux/amd64", "linux/arm64/v8"];
    let list = e.src.push_image("lib/list:1", &ImageSpec::new(&unique("utd-list")).platforms(&two).layer_size(LAYER));
    let oci = e.src.push_image(
        "lib/oci:1",
        &ImageSpec::new(&unique("utd-oci")).platforms(&two).attestations().layer_size(LAYER),
    );
    let single = e.src.push_image("lib/single:1", &ImageSpec::new(&unique("utd-single")).layer_size(LAYER));
    let ids: BTreeSet<String> =
        list.config_digests().into_iter().chain(oci.config_digests()).chain(single.config_digests()).collect();
    let _cleanup = ImageCleanup { docker: e.docker.clone(), ids: ids.clone() };
    e.ws.images(&format!(
        "{} => list\n{} => oci\n--platform=linux/arm64 {} => arm\n{} => single\n",
        list.reference(),
        oci.reference(),
        list.reference(),
        single.reference()
    ));

    let first = e.ws.sync(&[]);
    first.expect_code(0);
    assert_eq!(first.summary("synced"), 4, "{}", first.dump());
    let tags = ["list:1", "oci:1", "arm:1", "single:1"];
    let pushed: Vec<_> = tags.iter().map(|t| e.dst.manifest_ref(&format!("mirror/{t}")).expect("synced").digest).collect();

    let layers: BTreeSet<String> =
        [&list, &oci, &single].iter().flat_map(|i| i.platforms.iter().flat_map(|p| p.layers.clone())).collect();
    let gets = e.src.blob_get_log();
    assert!(gets.iter().any(|d| layers.contains(d)), "the first run pulled layers (the measurement works): {gets:?}");
    let blob_gets_before = gets.len();
    let writes = |r: &Registry| r.request_count("manifest", "put") + r.request_count("blob_upload", "post");
    let target_writes_before = writes(&e.dst);
    let second = e.ws.sync(&[]);
    second.expect_code(0);
    for line in 1..=4 {
        assert_eq!(second.status(line), "up-to-date", "line {line}\n{}", second.dump());
    }
    assert_eq!(second.summary("up_to_date"), 4);
    assert_eq!(second.summary("synced"), 0);
    assert_eq!(second.summary("failed"), 0);
    // Nothing re-pushed, no layer pulled (reading small config blobs is fine:
    // `docker manifest inspect -v` does that).
    let after: Vec<_> = tags.iter().map(|t| e.dst.manifest_ref(&format!("mirror/{t}")).unwrap().digest).collect();
    assert_eq!(after, pushed, "target manifests unchanged");
    assert_eq!(writes(&e.dst), target_writes_before, "an up-to-date run wrote to the target");
    let gets = e.src.blob_get_log();
    let pulled: Vec<_> = gets[blob_gets_before..].iter().filter(|d| layers.contains(*d)).collect();
    assert!(pulled.is_empty(), "an up-to-date run downloaded layers from the source: {pulled:?}\n{}", second.dump());
    assert_no_local_images(&e.docker, &ids, &second);
}

#[test]
fn changed_source_with_the_same_created_time_is_synced_again() {
    let Some(e) = setup() else { return };
    let created = "2023-05-06T07:08:09Z";
    let spec = |seed: &str| ImageSpec::new(seed).platforms(&["linux/amd64", "linux/arm64/v8"]).created(created);
    let old = e.src.push_image("lib/app:v1", &spec(&unique("changed-old")));
    e.ws.images(&format!("{} => app\n", old.reference()));
    let first = e.ws.sync(&[]);
    first.expect_code(0);
    assert_eq!(e.dst.platform_configs("mirror/app:v1"), Some(old.configs()));

    let new = e.src.push_image("lib/app:v1", &spec(&unique("changed-new")));
    let ids: BTreeSet<String> = old.config_digests().into_iter().chain(new.config_digests()).collect();
    let _cleanup = ImageCleanup { docker: e.docker.clone(), ids: ids.clone() };
    for p in &new.platforms {
        assert_ne!(p.config, old.platform(&p.platform).config);
    }
    let second = e.ws.sync(&[]);
    second.expect_code(0);
    assert_eq!(second.status(1), "synced", "same Created but different content is not up to date\n{}", second.dump());
    assert_eq!(e.dst.platform_configs("mirror/app:v1"), Some(new.configs()));
    assert_no_local_images(&e.docker, &ids, &second);
}

#[test]
fn missing_source_fails_its_entry_and_the_others_still_sync() {
    let Some(e) = setup() else { return };
    let img = e.src.push_image("lib/app:v1", &ImageSpec::new(&unique("missing")));
    let _cleanup = ImageCleanup { docker: e.docker.clone(), ids: img.config_digests() };
    e.ws.images(&format!("{}/lib/nope:v1 => nope\n{} => app\n", e.src.host(), img.reference()));

    let run = e.ws.sync(&[]);
    run.expect_code(1);
    let failed = run.entry(1);
    let target_failed = failed["targets"].as_array().is_some_and(|t| t.iter().any(|t| t["status"] == "failed"));
    assert!(!failed["error"].is_null() || target_failed, "line 1 is reported failed\n{}", run.dump());
    assert_eq!(run.status(2), "synced");
    assert_eq!(run.summary("failed"), 1);
    assert_eq!(run.summary("synced"), 1);
    assert_eq!(e.dst.catalog(), vec!["mirror/app".to_string()]);
    assert_eq!(e.dst.platform_configs("mirror/app:v1"), Some(img.configs()));
    assert_no_local_images(&e.docker, &img.config_digests(), &run);
}

#[test]
fn a_local_image_that_was_there_before_survives() {
    let Some(e) = setup() else { return };
    let img = e.src.push_image("lib/app:v1", &ImageSpec::new(&unique("keep")).platforms(&["linux/amd64", "linux/arm64/v8"]));
    let _cleanup = ImageCleanup { docker: e.docker.clone(), ids: img.config_digests() };
    // The user's own copy: pulled by tag (the engine's platform) and tagged.
    let amd = img.platform("linux/amd64");
    let mine = format!("{}:mine", unique("imgsync-keep"));
    e.docker.pull(&img.reference());
    e.docker.tag(&img.reference(), &mine);
    let before = e.docker.inspect(&mine).expect("pre-existing image");
    assert_eq!(before["Id"], amd.config.as_str());
    let tags_before: BTreeSet<String> =
        before["RepoTags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect();

    e.ws.images(&format!("{} => app\n", img.reference()));
    let run = e.ws.sync(&[]);
    run.expect_code(0);
    assert_eq!(run.status(1), "synced");
    assert_eq!(e.dst.platform_configs("mirror/app:v1"), Some(img.configs()));

    let after = e.docker.inspect(&amd.config).unwrap_or_else(|| panic!("the pre-existing image was deleted\n{}", run.dump()));
    let tags_after: BTreeSet<String> =
        after["RepoTags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect();
    assert_eq!(tags_after, tags_before, "the user's image keeps exactly its tags\n{}", run.dump());
    // What the run pulled itself (the arm64 image) is gone.
    let arm = BTreeSet::from([img.platform("linux/arm64/v8").config.clone()]);
    assert_no_local_images(&e.docker, &arm, &run);
}

#[test]
fn two_lines_with_the_same_target_exit_2_and_push_nothing() {
    let Some(e) = setup() else { return };
    let a = e.src.push_image("lib/a:v1", &ImageSpec::new(&unique("coll-a")));
    let b = e.src.push_image("lib/b:v1", &ImageSpec::new(&unique("coll-b")));
    let ids: BTreeSet<String> = a.config_digests().into_iter().chain(b.config_digests()).collect();
    let _cleanup = ImageCleanup { docker: e.docker.clone(), ids: ids.clone() };
    e.ws.images(&format!("{} => same:v1\n{} => same:v1\n", a.reference(), b.reference()));

    let run = e.ws.sync(&[]);
    run.expect_code(2);
    assert!(run.stderr.contains("images.txt:2"), "stderr names the line\n{}", run.dump());
    assert!(e.dst.catalog().is_empty(), "nothing pushed: {:?}", e.dst.catalog());
    assert_no_local_images(&e.docker, &ids, &run);
}

#[test]
fn a_bad_line_exits_2_and_pushes_nothing() {
    let Some(e) = setup() else { return };
    let img = e.src.push_image("lib/a:v1", &ImageSpec::new(&unique("badline")));
    let _cleanup = ImageCleanup { docker: e.docker.clone(), ids: img.config_digests() };
    e.ws.images(&format!("{r} => a\n# a comment\n--arch=arm64 {r}\n", r = img.reference()));

    let run = e.ws.sync(&[]);
    run.expect_code(2);
    assert!(run.stderr.contains("images.txt:3"), "stderr names the line\n{}", run.dump());
    assert!(e.dst.catalog().is_empty(), "nothing pushed: {:?}", e.dst.catalog());
    assert_no_local_images(&e.docker, &img.config_digests(), &run);
}

#[test]
fn auth_target_with_a_wrong_password_fails_without_showing_it() {
    let Some(docker) = Docker::get_or_skip() else { return };
    let src = Registry::start();
    let dst = Registry::start_with_auth("mirror-bot", &unique("pw-real"));
    let wrong = unique("pw-wrong");
    let mut ws = Workspace::new();
    ws.custom_target(&dst, "mirror", Some(&wrong));
    let img = src.push_image("lib/app:v1", &ImageSpec::new(&unique("auth-bad")));
    let _cleanup = ImageCleanup { docker: docker.clone(), ids: img.config_digests() };
    ws.images(&format!("{} => app\n", img.reference()));

    let run = ws.sync(&[]);
    run.expect_code(1);
    assert_eq!(run.summary("failed"), 1, "{}", run.dump());
    let entry = run.entry(1);
    let target_failed = entry["targets"].as_array().is_some_and(|t| t.iter().any(|t| t["status"] == "failed"));
    assert!(target_failed || !entry["error"].is_null(), "{}", run.dump());
    assert_target_error_mentions_nothing_secret(&run, &wrong);
    assert!(dst.catalog().is_empty(), "nothing pushed: {:?}", dst.catalog());
    assert_no_local_images(&docker, &img.config_digests(), &run);
}

#[test]
fn plan_and_dry_run_report_would_sync_and_push_nothing() {
    let Some(e) = setup() else { return };
    let img = e.src.push_image("lib/app:v1", &ImageSpec::new(&unique("plan")).platforms(&["linux/amd64", "linux/arm64/v8"]));
    let _cleanup = ImageCleanup { docker: e.docker.clone(), ids: img.config_digests() };
    e.ws.images(&format!("{} => app\n", img.reference()));
    let target = format!("{}/mirror/app:v1", e.dst.host());

    let plan = e.ws.run(&["plan", "--engine", "daemon", "--report", "plan.json"]);
    plan.expect_code(0);
    assert_eq!(plan.targets(1), vec![(target.clone(), "would-sync".to_string())]);
    assert_eq!(plan.summary("would_sync"), 1);
    assert_eq!(plan.summary("synced"), 0);

    let dry = e.ws.sync(&["--dry-run"]);
    dry.expect_code(0);
    assert_eq!(dry.targets(1), vec![(target.clone(), "would-sync".to_string())]);
    assert!(e.dst.catalog().is_empty(), "a dry run pushed: {:?}", e.dst.catalog());
    assert_no_local_images(&e.docker, &img.config_digests(), &dry);

    // After a real run, the plan says up to date.
    e.ws.sync(&[]).expect_code(0);
    let plan = e.ws.run(&["plan", "--engine", "daemon", "--report", "plan.json"]);
    plan.expect_code(0);
    assert_eq!(plan.targets(1), vec![(target, "up-to-date".to_string())]);
}

/// Bad settings are all reported before anything runs, each with its place,
/// and none panics: a registry that docker would read as a flag, a timeout
/// that would overflow the clock, a zero job count.
#[test]
fn bad_settings_exit_2_together_with_their_lines() {
    let mut ws = Workspace::new();
    ws.config("SYNC_MODE=custom\nCUSTOM_REGISTRY=--debug\nCUSTOM_NAMESPACE=mirror\nJOBS=0\n");
    ws.images("nginx:alpine\n");
    ws.set_env("WEBHOOK_TIMEOUT", "18446744073709551615");
    for cmd in ["plan", "sync", "doctor"] {
        let run = ws.run(&[cmd]);
        if cmd == "doctor" {
            // doctor lists them as failed checks instead (and still runs the others).
            run.expect_code(1);
        } else {
            run.expect_code(2);
        }
        for want in ["config.env:2: CUSTOM_REGISTRY=\"--debug\"", "config.env:4: JOBS=\"0\"", "WEBHOOK_TIMEOUT=\"18446744073709551615\""] {
            assert!(run.all_output().contains(want), "{cmd}: the output names {want}\n{}", run.dump());
        }
    }
}
