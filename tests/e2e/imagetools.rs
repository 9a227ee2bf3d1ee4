//! End-to-end: the imagetools engine (`docker buildx imagetools create`)
//! against real registries. scripts/test.sh installs the pinned buildx into
//! the run's own plugins dir and exports IMGSYNC_TEST_BUILDX=1 and
//! IMGSYNC_TEST_BUILDX_PLUGIN; each workspace links that plugin into its own
//! ~/.docker/cli-plugins. Without it each test says on stderr that it was
//! skipped, unless IMGSYNC_TEST_REQUIRE_BUILDX=1 or CI=true: then it fails.
//!
//! Every run names its engine (`--engine imagetools` or `daemon`), except the
//! `auto` tests, which check what auto picks with and without the plugin.

use std::io::Write;

use crate::common::*;

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

    // `auto`, with the plugin in the workspace's cli-plugins: imagetools.
    let run = ws.run(&["sync", "--engine", "auto", "--report", "report.json"]);
    run.expect_code(0);
    assert_eq!(run.report()["engine"], "imagetools", "{}", run.dump());
    assert!(run.all_output().contains("engine: imagetools (auto: docker buildx found)"), "{}", run.dump());
    assert_eq!(top_digest(&dst, "mirror/multi:v1"), docker_list.digest, "a Docker list keeps its digest");
    assert_eq!(top_digest(&dst, "mirror/oci:v1"), oci.digest, "an OCI index with attestations keeps its digest");
    assert_eq!(skopeo_raw(&dst, "mirror/oci:v1")["manifests"].as_array().unwrap().len(), 4, "attestations copied with the index");

    let again = ws.run(&["sync", "--engine", "imagetools", "--report", "report.json"]);
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
    // buildx without --prefer-index (0.10.5) wraps a single manifest in a one-entry list; the manifest itself is the source's.
    assert_eq!(child_digests(&dst, "mirror/single:v1"), vec![single.digest.clone()], "{}", run.dump());
    assert_eq!(child_digests(&dst, "mirror/arm:v1"), vec![multi.platform("linux/arm64/v8").manifest.clone()]);
    if buildx_has_prefer_index(&ws) {
        // With --prefer-index=false (0.11+, e.g. 0.36.1): a carbon copy, the very manifest.
        assert_eq!(top_digest(&dst, "mirror/single:v1"), single.digest, "{}", run.dump());
        assert_eq!(top_digest(&dst, "mirror/arm:v1"), multi.platform("linux/arm64/v8").manifest, "{}", run.dump());
    }

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

#[test]
fn auto_picks_daemon_without_the_plugin() {
    // Needs no buildx: a workspace with no cli-plugins dir at all.
    if system_buildx() {
        let _ = writeln!(std::io::stderr(), "SKIPPED auto_picks_daemon_without_the_plugin: a system-wide buildx plugin is installed");
        return;
    }
    let mut ws = Workspace::new();
    assert!(!ws.home().join(".docker/cli-plugins").exists());
    let (src, dst) = (Registry::start(), Registry::start());
    ws.custom_target(&dst, "mirror", None);
    let img = src.push_image("lib/plain:v1", &ImageSpec::new(&unique("it-noplugin")));
    let _cleanup = ImageCleanup { docker: Docker::get(), ids: img.config_digests() };
    ws.images(&format!("{} => plain\n", img.reference()));
    let run = ws.run(&["sync", "--engine", "auto", "--report", "report.json"]);
    run.expect_code(0);
    assert_eq!(run.report()["engine"], "daemon", "{}", run.dump());
    assert!(run.all_output().contains("engine: daemon (auto: docker buildx not found)"), "{}", run.dump());
    assert_eq!(run.status(1), "synced", "{}", run.dump());
    assert!(dst.manifest("mirror/plain", "v1").is_some());

    // --engine imagetools without the plugin says what to do, once something
    // must be copied (the engine is asked for only then: --force copies).
    let run = ws.run(&["sync", "--engine", "imagetools", "--force", "--report", "report.json"]);
    assert_ne!(run.code, 0, "{}", run.dump());
    assert!(run.all_output().contains("needs the docker buildx plugin"), "{}", run.dump());
}

#[test]
fn pushed_digest_comes_from_the_metadata_file() {
    let Some(mut ws) = buildx_workspace("pushed_digest_comes_from_the_metadata_file") else { return };
    let (src, dst) = (Registry::start(), Registry::start());
    ws.custom_target(&dst, "mirror", None);
    let multi = src.push_image("lib/md:v1", &ImageSpec::new(&unique("it-md")).platforms(&["linux/amd64", "linux/arm64/v8"]));
    ws.images(&format!("{} => md\n", multi.reference()));
    let run = ws.run(&["sync", "--engine", "imagetools", "--report", "report.json"]);
    run.expect_code(0);
    assert_eq!(top_digest(&dst, "mirror/md:v1"), multi.digest);
    assert!(!run.all_output().contains("reported no pushed digest"), "{}", run.dump());
    assert!(!run.all_output().contains("not the source's"), "{}", run.dump());
}
