//! End-to-end: the imagetools engine (`docker buildx imagetools create`)
//! against real registries. These run whenever `docker buildx version`
//! answers (scripts/test.sh exports IMGSYNC_TEST_BUILDX=1 and the plugin's
//! path); otherwise each test says on stderr that it was skipped.

use std::io::Write;

use crate::common::*;

/// Returns a workspace that sees the buildx plugin, or None (and says so) without buildx.
fn buildx_workspace(test: &str) -> Option<Workspace> {
    if !buildx_enabled() {
        // Written to the raw handle: libtest does not capture it, so the skip is visible.
        let _ = writeln!(std::io::stderr(), "SKIPPED {test}: docker buildx plugin not installed");
        return None;
    }
    let ws = Workspace::new();
    let plugin = std::env::var("IMGSYNC_TEST_BUILDX_PLUGIN").expect("scripts/test.sh exports the plugin's path");
    let dir = ws.home().join(".docker/cli-plugins");
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(plugin, dir.join("docker-buildx")).unwrap();
    Some(ws)
}

fn top_digest(reg: &Registry, repo_tag: &str) -> String {
    let (repo, tag) = repo_tag.rsplit_once(':').unwrap();
    reg.manifest(repo, tag).unwrap_or_else(|| panic!("{repo_tag} is not in the target")).digest
}

/// Child manifest digests of an index, or the manifest's own digest.
fn child_digests(reg: &Registry, repo_tag: &str) -> Vec<String> {
    let (repo, tag) = repo_tag.rsplit_once(':').unwrap();
    let m = reg.manifest(repo, tag).unwrap();
    match m.json["manifests"].as_array() {
        Some(list) => list.iter().map(|d| d["digest"].as_str().unwrap().to_string()).collect(),
        None => vec![m.digest],
    }
}

#[test]
fn auto_picks_imagetools_and_preserves_index_digests() {
    let Some(mut ws) = buildx_workspace("auto_picks_imagetools_and_preserves_index_digests") else { return };
    let (src, dst) = (Registry::start(), Registry::start());
    ws.custom_target(&dst, "mirror", None);
    let docker_list = src.push_image("lib/multi:v1", &ImageSpec::new(&unique("it-multi")).platforms(&["linux/amd64", "linux/arm64/v8"]));
    let oci = src.push_image("lib/oci:v1", &ImageSpec::new(&unique("it-oci")).platforms(&["linux/amd64", "linux/arm64"]).oci().attestations());
    ws.images(&format!("{} => multi\n{} => oci\n", docker_list.reference(), oci.reference()));

    let run = ws.run(&["sync", "--report", "report.json"]);
    run.expect_code(0);
    assert_eq!(run.report()["engine"], "imagetools", "{}", run.dump());
    assert_eq!(top_digest(&dst, "mirror/multi:v1"), docker_list.digest, "a Docker list keeps its digest");
    assert_eq!(top_digest(&dst, "mirror/oci:v1"), oci.digest, "an OCI index with attestations keeps its digest");
    assert_eq!(skopeo_raw(&dst, "mirror/oci:v1")["manifests"].as_array().unwrap().len(), 4, "attestations copied with the index");

    let again = ws.run(&["sync", "--report", "report.json"]);
    again.expect_code(0);
    assert_eq!(again.status(1), "up-to-date", "{}", again.dump());
    assert_eq!(again.status(2), "up-to-date", "{}", again.dump());
}

#[test]
fn single_manifest_and_platform_subset_keep_manifest_digests() {
    let Some(mut ws) = buildx_workspace("single_manifest_and_platform_subset_keep_manifest_digests") else { return };
    let (src, dst) = (Registry::start(), Registry::start());
    ws.custom_target(&dst, "mirror", None);
    let single = src.push_image("lib/single:v1", &ImageSpec::new(&unique("it-single")));
    let multi = src.push_image("lib/multi:v1", &ImageSpec::new(&unique("it-sub")).platforms(&["linux/amd64", "linux/arm64/v8"]));
    ws.images(&format!("{} => single\n--platform=linux/arm64 {} => arm\n", single.reference(), multi.reference()));

    let run = ws.run(&["sync", "--engine", "imagetools", "--report", "report.json"]);
    run.expect_code(0);
    // buildx without --prefer-index wraps a single manifest in a one-entry list; the manifest itself is the source's.
    assert_eq!(child_digests(&dst, "mirror/single:v1"), vec![single.digest.clone()], "{}", run.dump());
    assert_eq!(child_digests(&dst, "mirror/arm:v1"), vec![multi.platform("linux/arm64/v8").manifest.clone()]);

    let again = ws.run(&["sync", "--engine", "imagetools", "--report", "report.json"]);
    again.expect_code(0);
    assert_eq!((again.status(1), again.status(2)), ("up-to-date".to_string(), "up-to-date".to_string()), "{}", again.dump());
    assert!(!again.stderr.contains("copy to"), "nothing copied the second time\n{}", again.dump());
}

#[test]
fn a_daemon_engine_copy_is_up_to_date_for_imagetools() {
    let Some(mut ws) = buildx_workspace("a_daemon_engine_copy_is_up_to_date_for_imagetools") else { return };
    let (src, dst) = (Registry::start(), Registry::start());
    ws.custom_target(&dst, "mirror", None);
    let multi = src.push_image("lib/cross:v1", &ImageSpec::new(&unique("it-cross")).platforms(&["linux/amd64", "linux/arm64/v8"]));
    ws.images(&format!("{} => cross\n", multi.reference()));
    ws.run(&["sync", "--engine", "daemon", "--report", "report.json"]).expect_code(0);
    let before = top_digest(&dst, "mirror/cross:v1");
    assert_ne!(before, multi.digest, "the daemon engine re-pushes, so digests differ");

    let run = ws.run(&["sync", "--engine", "imagetools", "--report", "report.json"]);
    run.expect_code(0);
    assert_eq!(run.status(1), "up-to-date", "same configs, so not copied again\n{}", run.dump());
    assert_eq!(top_digest(&dst, "mirror/cross:v1"), before);
}
