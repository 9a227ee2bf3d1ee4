//! End-to-end: a parallel run gives the same target contents and the same
//! report as a sequential one, in images.txt order.

use std::collections::BTreeMap;

use crate::common::*;
use serde_json::Value;

/// The report without what may differ between two runs into different registries.
fn normalised(report: &Value, dst: &Registry) -> String {
    report.to_string().replace(&dst.host(), "DST")
}

fn contents(dst: &Registry, names: &[String]) -> BTreeMap<String, BTreeMap<String, String>> {
    names.iter().map(|n| (n.clone(), dst.platform_configs(&format!("mirror/{n}")).unwrap_or_default())).collect()
}

#[test]
fn jobs_8_and_jobs_1_give_the_same_result() {
    let Some(_docker) = Docker::get_or_skip() else { return };
    let src = Registry::start();
    let mut lines = String::new();
    let mut names = Vec::new();
    for i in 0..20 {
        let platforms: &[&str] = if i % 3 == 0 { &["linux/amd64", "linux/arm64/v8"] } else { &["linux/amd64"] };
        let img = src.push_image(&format!("par/app{i}:v1"), &ImageSpec::new(&unique(&format!("par{i}"))).platforms(platforms));
        lines.push_str(&format!("{} => app{i}\n", img.reference()));
        names.push(format!("app{i}:v1"));
    }
    // The same source image twice: entries sharing an image must not trip over each other.
    lines.push_str(&format!("{}/par/app0:v1 => again\n", src.host()));
    names.push("again:v1".into());

    let mut results = Vec::new();
    for jobs in ["1", "8"] {
        let dst = Registry::start();
        let mut ws = Workspace::new();
        ws.custom_target(&dst, "mirror", None);
        ws.images(&lines);
        let run = ws.run(&["sync", "--engine", "daemon", "--jobs", jobs, "--report", "report.json"]);
        run.expect_code(0);
        let lines_in_order: Vec<u64> = run.report()["entries"].as_array().unwrap().iter().map(|e| e["line"].as_u64().unwrap()).collect();
        assert_eq!(lines_in_order, (1..=21).collect::<Vec<_>>(), "report in images.txt order\n{}", run.dump());
        results.push((normalised(run.report(), &dst), contents(&dst, &names)));
    }
    assert_eq!(results[0].1, results[1].1, "same configs per platform at every target");
    assert_eq!(results[0].0, results[1].0, "same report");
    assert!(results[0].1.values().all(|m| !m.is_empty()));
}
