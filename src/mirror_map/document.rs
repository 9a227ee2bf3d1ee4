//! `imgsync map` for every configured target at once (MIRRORS.md): one
//! section per target, in `SYNC_MODE` order, each with its table, rows kept
//! from the previous MIRRORS.md for selecting lines this run has no tags for,
//! and for a path-mode target the runtime snippets. Deterministic: the same
//! inputs give the same bytes, so the committed file changes only when the
//! mapping does.

use super::{render, Mapping};
use crate::config::Target;

/// One target's part of the output.
#[derive(Clone, Debug)]
pub struct Section<'a> {
    pub target: &'a Target,
    pub mappings: Vec<Mapping>,
    /// (line, rows): a selecting line's rows from the previous MIRRORS.md,
    /// placed among the mappings in line order.
    pub kept: Vec<(usize, Vec<String>)>,
    /// (title, code block language, text): runtime configuration to show.
    pub snippets: Vec<(String, &'static str, String)>,
}

/// The heading of a target's section (with several targets).
pub fn heading(t: &Target) -> String {
    format!("{}: `{}/{}`", t.kind.as_str(), t.registry, t.namespace)
}

/// `original -> mirror` lines, target after target.
pub fn text(sections: &[Section]) -> String {
    sections.iter().map(|s| render::text(&s.mappings)).collect()
}

/// One JSON array; with several targets each row says which (`target`: its kind).
pub fn json(sections: &[Section]) -> String {
    let mut rows: Vec<serde_json::Value> = Vec::new();
    for s in sections {
        let part: serde_json::Value = serde_json::from_str(&render::json(&s.mappings)).expect("render::json is JSON");
        for mut row in part.as_array().cloned().unwrap_or_default() {
            if sections.len() > 1 {
                row["target"] = serde_json::Value::String(s.target.kind.as_str().to_string());
            }
            rows.push(row);
        }
    }
    let mut out = serde_json::to_string_pretty(&rows).expect("plain data serialises");
    out.push('\n');
    out
}

/// The tables (a `### ` heading per target when there are several), then
/// each section's runtime snippets.
pub fn markdown(sections: &[Section]) -> String {
    let several = sections.len() > 1;
    let mut out = String::new();
    for (i, s) in sections.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if several {
            out.push_str(&format!("### {}\n\n", heading(s.target)));
        }
        let mut rows: Vec<String> = Vec::new();
        let mut kept = s.kept.iter().peekable();
        for m in &s.mappings {
            let line = m.line().unwrap_or(usize::MAX);
            while let Some((_, k)) = kept.next_if(|(l, _)| *l < line) {
                rows.extend(k.iter().cloned());
            }
            rows.push(render::markdown_row(m));
        }
        for (_, k) in kept {
            rows.extend(k.iter().cloned());
        }
        out.push_str(&render::markdown_table(&rows));
        if !s.snippets.is_empty() {
            out.push_str(&format!(
                "\n#### Runtime configuration for `{}/{}` (path naming)\n\nWith these, the runtime pulls the original names from the mirror (`imgsync map --emit`).\n",
                s.target.registry, s.target.namespace
            ));
            for (title, lang, text) in &s.snippets {
                out.push_str(&format!("\n{title}:\n\n```{lang}\n{text}```\n"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::entries;
    use super::super::{map, Original};
    use super::*;
    use crate::mirror_map::emit::tests::target;
    use crate::naming::Naming;

    #[test]
    fn kept_rows_sit_at_their_line_and_several_targets_get_headings() {
        let es = entries("nginx:1.27\nredis:7");
        let origs: Vec<Original> = es.iter().map(Original::from_entry).collect();
        let a = target("r1.example", "ns", Naming::Flat);
        let b = target("r2.example", "team/mirror", Naming::Path);
        let row = "| `quay.io/a/b:2` | `r1.example/ns/quay-io_a_b:2` | all | x |".to_string();
        let sections = vec![
            Section { target: &a, mappings: map("images.txt", &es, &a, &origs).unwrap(), kept: vec![(1, vec![row.clone()])], snippets: vec![] },
            Section { target: &b, mappings: map("images.txt", &es, &b, &origs).unwrap(), kept: vec![], snippets: vec![("podman".into(), "toml", "x = 1\n".into())] },
        ];
        let md = markdown(&sections);
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(lines[0], "### custom: `r1.example/ns`");
        assert!(lines[4].starts_with("| `nginx:1.27` | `r1.example/ns/nginx:1.27`"), "{md}");
        assert_eq!(lines[5], row, "a kept row of line 1 comes before line 2's rows");
        assert!(lines[6].starts_with("| `redis:7`"), "{md}");
        assert!(md.contains("### custom: `r2.example/team/mirror`\n"), "{md}");
        assert!(md.contains("| `redis:7` | `r2.example/team/mirror/docker.io/library/redis:7` |"), "{md}");
        assert!(md.ends_with("podman:\n\n```toml\nx = 1\n```\n"), "{md}");
        // The same inputs, the same bytes.
        assert_eq!(markdown(&sections), md);
        let v: serde_json::Value = serde_json::from_str(&json(&sections)).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 4);
        assert_eq!(v[3]["target"], "custom");
        assert_eq!(text(&sections).lines().count(), 4);
    }
}
