//! End-to-end: tag selection (issue 12) against the distribution registry
//! with a repository of more than 1,000 tags, read through a paging proxy
//! (`common::tag_pager`) that serves pages of 100 with a relative `Link`
//! (distribution 2.8 sends the whole list whatever `n` says), so the tags a
//! line wants sit on later pages. One listing per repository per run; a line
//! that matches nothing, or whose list is longer than the page cap, fails
//! alone; a selecting line syncs, then no-ops.

use crate::common::tag_pager::TagPager;
use crate::common::*;
use serde_json::Value;

/// The big repository's tags: 1,000 plain versions 2.0.0..2.9.99, a floating
/// 10.0.0 that sorts first as text but last as a version, flavours, a
/// pre-release and tags that are not versions.
fn big_tags() -> Vec<String> {
    let mut tags: Vec<String> = (0..10).flat_map(|minor| (0..100).map(move |patch| format!("2.{minor}.{patch}"))).collect();
    for t in ["10.0.0", "2.3.1-alpine", "2.9.98-alpine", "2.9.99-alpine", "3.0.0-rc.1", "latest", "edge"] {
        tags.push(t.to_string());
    }
    tags
}

/// PUTs the manifest of `repo:seed` under every tag, from a few threads.
fn tag_many(reg: &Registry, repo: &str, tags: &[String]) {
    let m = reg.manifest(repo, "seed").expect("the seed manifest");
    std::thread::scope(|s| {
        for chunk in tags.chunks(tags.len().div_ceil(8)) {
            let m = &m;
            s.spawn(move || {
                for t in chunk {
                    reg.put_manifest(repo, t, &m.media_type, &m.bytes);
                }
            });
        }
    });
}

/// `(source, status)` of every report entry of `line`, in report order.
fn rows(run: &Run, line: u64) -> Vec<(String, String)> {
    entries(run, line)
        .iter()
        .map(|e| {
            let status = e["targets"][0]["status"].as_str().unwrap_or("failed").to_string();
            (e["source"].as_str().unwrap().rsplit_once(':').unwrap().1.to_string(), status)
        })
        .collect()
}

fn entries(run: &Run, line: u64) -> Vec<Value> {
    run.report()["entries"].as_array().unwrap().iter().filter(|e| e["line"].as_u64() == Some(line)).cloned().collect()
}

fn tag_list<'a>(run: &'a Run, repo: &str) -> &'a Value {
    run.report()["tag_lists"]
        .as_array()
        .unwrap_or_else(|| panic!("no tag_lists in the report\n{}", run.dump()))
        .iter()
        .find(|l| l["repository"].as_str().unwrap_or("").ends_with(repo))
        .unwrap_or_else(|| panic!("no tag list of {repo}\n{}", run.dump()))
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[test]
fn a_thousand_tags_in_pages_select_sync_and_no_op() {
    let Some(docker) = Docker::get_or_skip() else { return };
    let src = Registry::start();
    let dst = Registry::start();
    let seed = unique("tagsel");
    let big = src.push_image("lib/big:seed", &ImageSpec::new(&seed));
    let small = src.push_image("lib/small:v1", &ImageSpec::new(&format!("{seed}-small")));
    src.push_image("lib/pages:seed", &ImageSpec::new(&seed));
    let _cleanup = ImageCleanup { docker: docker.clone(), ids: big.config_digests().into_iter().chain(small.config_digests()).collect() };
    let tags = big_tags();
    tag_many(&src, "lib/big", &tags);
    let page_tags: Vec<String> = (0..120).map(|i| format!("p{i}")).collect();
    tag_many(&src, "lib/pages", &page_tags);
    assert_eq!(src.tags("lib/big").len(), tags.len() + 1, "distribution sends the whole list at once");

    let pager = TagPager::start(&src.host(), 100);
    // One tag per page: 121 pages, past the client's cap of 100.
    pager.page_size("lib/pages", 1);
    let p = pager.host();
    let mut ws = Workspace::new();
    ws.custom_target(&dst, "mirror", None);
    let lines = [
        format!("{p}/lib/big --semver='>=2.9.97, <3' => big-semver"),
        format!("{p}/lib/big --latest=2 => big-latest"),
        format!("{p}/lib/big --tags='.*-alpine' --latest=2 => big-alpine # the two newest flavours"),
        format!("{p}/lib/big --semver='>=99'"),
        format!("{p}/lib/small:v1 => small"),
        format!("{p}/lib/pages --latest=1"),
    ];
    ws.images(&(lines.join("\n") + "\n"));

    // plan: the expansion, one row per selected tag.
    let plan = ws.run(&["plan", "--engine", "daemon", "--report", "plan.json"]);
    plan.expect_code(1);
    for (key, target) in [("1", "big-semver:2.9.97"), ("1", "big-semver:2.9.99"), ("2", "big-latest:10.0.0"), ("3", "big-alpine:2.9.98-alpine")] {
        let tag = target.split_once(':').unwrap().1;
        let row = plan.stdout.lines().find(|l| l.starts_with(&format!("{key}:{p}/lib/big:{tag} ")));
        let row = row.unwrap_or_else(|| panic!("no plan row for line {key} tag {tag}\n{}", plan.dump()));
        assert!(row.contains(&format!("mirror/{target}")) && row.contains("would-sync"), "{row}");
    }
    assert!(plan.stderr.contains("images.txt:1: ") && plan.stderr.contains("selects 3 tags: 2.9.97, 2.9.98, 2.9.99"), "{}", plan.dump());
    assert!(plan.stderr.contains("images.txt:2: 3 tags are not versions, so --semver/--latest ignored them: edge, latest, seed"), "{}", plan.dump());

    // sync: the selected tags land; the no-match and the capped line fail alone.
    let run = ws.sync(&[]);
    run.expect_code(1);
    assert_eq!(rows(&run, 1), pairs(&[("2.9.97", "synced"), ("2.9.98", "synced"), ("2.9.99", "synced")]), "{}", run.dump());
    assert_eq!(rows(&run, 2), pairs(&[("2.9.99", "synced"), ("10.0.0", "synced")]), "{}", run.dump());
    assert_eq!(rows(&run, 3), pairs(&[("2.9.98-alpine", "synced"), ("2.9.99-alpine", "synced")]), "{}", run.dump());
    assert_eq!(run.status(5), "synced");
    assert_eq!(entries(&run, 1)[0]["selected_by"], "--semver='>=2.9.97, <3'");
    let none = run.entry(4);
    let error = none["error"].as_str().unwrap();
    assert!(error.starts_with("images.txt:4: ") && error.contains("no tag matches the selection; the source has 1008 tags, e.g. 10.0.0"), "{}", run.dump());
    assert!(none["hint"].as_str().unwrap().contains("without --tags"), "{none}");
    assert!(run.entry(6)["error"].as_str().unwrap().contains("still a next page after 100 pages"), "{}", run.dump());
    assert!(run.entry(6)["hint"].as_str().unwrap().contains("partial list"), "{}", run.dump());
    assert_eq!((run.summary("synced"), run.summary("failed")), (8, 2), "{}", run.dump());
    assert_eq!(dst.tags("mirror/big-semver"), ["2.9.97", "2.9.98", "2.9.99"]);
    assert_eq!(dst.tags("mirror/big-latest"), ["10.0.0", "2.9.99"]);
    assert_eq!(dst.tags("mirror/big-alpine"), ["2.9.98-alpine", "2.9.99-alpine"]);

    // One listing of the big repository for its four lines: 11 pages of 100.
    let list = tag_list(&run, "lib/big");
    assert_eq!(list["lines"], serde_json::json!([1, 2, 3, 4]));
    assert_eq!(list["tags"], 1008);
    let requests = &list["requests"];
    eprintln!("expanding a {}-tag repository in pages of 100 took: {requests} (the proxy served {} pages)", list["tags"], pager.tag_list_requests("lib/big"));
    assert_eq!(requests["get"], 11, "{}", run.dump());
    assert_eq!(requests["token"], 0);
    assert_eq!(pager.tag_list_requests("lib/big"), 2 * 11, "one listing per run (plan, then sync)");
    assert!(tag_list(&run, "lib/pages")["error"].as_str().unwrap().contains("100 pages"));

    // A second run with the good lines: everything up to date, nothing copied;
    // Actions groups are keyed by line and tag.
    ws.images(&[&lines[0], &lines[1], &lines[2], &lines[4]].map(|l| format!("{l}\n")).concat());
    ws.set_env("GITHUB_ACTIONS", "true");
    let again = ws.sync(&[]);
    again.expect_code(0);
    assert_eq!((again.summary("synced"), again.summary("up_to_date")), (0, 8), "{}", again.dump());
    assert!(again.stderr.contains("::group::line 1:2.9.97\n"), "{}", again.dump());
    assert!(again.stderr.contains("::group::line 4\n"), "{}", again.dump());

    // doctor: each selecting line's source is listed, ✓ or ✗.
    ws.images(&(lines.join("\n") + "\n"));
    let doctor = ws.run(&["doctor"]);
    doctor.expect_code(1);
    let want = format!("✓ images.txt:1: {p}/lib/big --semver='>=2.9.97, <3': 1008 tags listed in 11 requests; selects 2.9.97, 2.9.98, 2.9.99");
    assert!(doctor.stdout.contains(&want), "{want}\n{}", doctor.dump());
    assert!(doctor.stdout.contains("✗ images.txt:4: 1008 tags listed in 11 requests; "), "{}", doctor.dump());
    assert!(doctor.stdout.contains("✗ images.txt:6: ") && doctor.stdout.contains("still a next page after 100 pages"), "{}", doctor.dump());
}
