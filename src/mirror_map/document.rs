//! `imgsync map` for every configured target at once (MIRRORS.md): one
//! section per target, in `SYNC_MODE` order, each with its table, rows kept
//! from the previous MIRRORS.md for selecting lines this run has no tags for,
//! and for a path-mode target the runtime snippets. Deterministic: the same
//! inputs give the same bytes, so the committed file changes only when the
//! mapping does.

use super::emit;
use super::runtime_config::{Mirror, Pair, Runtime};
use super::previous::Previous;
use super::sync_report::Selections;
use super::{render, Mapping, Original};
use crate::config::Target;
use crate::images::Entry;
use crate::line_error::LineError;
use crate::naming::{self, Naming};

/// What `map` read, for [`sections`].
pub struct Request<'a, 't> {
    /// images.txt's name, for errors.
    pub label: &'a str,
    pub targets: Vec<&'t Target>,
    /// images.txt's plain lines, and its tag-selecting lines.
    pub entries: &'a [Entry],
    pub selecting: &'a [Entry],
    /// The images asked for.
    pub originals: &'a [Original],
    /// The originals are images.txt's lines (no IMAGE arguments, no compose file).
    pub from_lines: bool,
    /// From `--report`: the tags each selecting line chose.
    pub selections: Option<&'a Selections>,
    /// From `--previous`.
    pub previous: &'a Previous,
    /// Add runtime snippets for path-mode targets (markdown).
    pub snippets: bool,
    /// INSECURE_REGISTRIES, for the snippets.
    pub insecure: &'a [String],
}

/// One [`Section`] per target: its mappings (with `selections`, the lines
/// expanded into the tags the sync chose), rows kept from the previous file
/// for selecting lines the run has no tags for, and snippets.
pub fn sections<'t>(r: &Request<'_, 't>) -> Result<Vec<Section<'t>>, Vec<LineError>> {
    let mut out = Vec::new();
    for &target in &r.targets {
        let (entries, originals) = match r.selections {
            Some(sel) if r.from_lines => {
                let mut all: Vec<Entry> = r.entries.iter().chain(r.selecting).cloned().collect();
                all.sort_by_key(|e| e.line);
                let x = naming::expand(&all, &sel.chosen, &[target.naming]);
                let originals = x.entries.iter().map(Original::from_entry).collect();
                (x.entries, originals)
            }
            _ => (r.entries.to_vec(), r.originals.to_vec()),
        };
        let mappings = super::map(r.label, &entries, target, &originals)?;
        let name = (r.targets.len() > 1).then(|| heading(target));
        let kept = match r.selections {
            Some(sel) if r.from_lines => r
                .selecting
                .iter()
                .filter(|e| sel.keeps_previous_rows(e.line))
                .map(|e| (e.line, r.previous.rows_of(name.as_deref(), &e.source.name())))
                .filter(|(_, rows)| !rows.is_empty())
                .collect(),
            _ => Vec::new(),
        };
        let mut snippets = Vec::new();
        if r.snippets && target.naming == Naming::Path {
            // A selecting line counts once, as its repository (whatever tags this run chose).
            let mut pairs = Pair::from_mappings(&mappings);
            pairs.retain(|p| !r.selecting.iter().any(|e| Some(e.line) == p.line));
            pairs.extend(r.selecting.iter().filter_map(|e| Pair::from_selecting(e, target)));
            let mirror = Mirror::new(target, r.insecure);
            let runtimes = [
                (Runtime::Podman, "podman / CRI-O, `/etc/containers/registries.conf.d/50-imgsync.conf`", "toml"),
                (Runtime::Containerd, "containerd, `/etc/containerd/certs.d/`", "toml"),
                (Runtime::K3s, "k3s, `/etc/rancher/k3s/registries.yaml`", "yaml"),
            ];
            for (runtime, title, lang) in runtimes {
                if let Ok(e) = emit::emit(runtime, &mirror, &pairs) {
                    snippets.push((title.to_string(), lang, e.to_text()));
                }
            }
        }
        out.push(Section { target, mappings, kept, snippets });
    }
    Ok(out)
}

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
    let several = sections.len() > 1;
    let parts: Vec<(Option<&str>, &[Mapping])> =
        sections.iter().map(|s| (several.then(|| s.target.kind.as_str()), s.mappings.as_slice())).collect();
    render::json_of(&parts)
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
    use crate::mirror_map::runtime_config::tests::target;
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

    fn request<'a>(targets: Vec<&'a Target>, parsed: &'a (Vec<Entry>, Vec<Entry>), sel: &'a Selections, previous: &'a Previous) -> Request<'a, 'a> {
        Request {
            label: "images.txt",
            targets,
            entries: &parsed.1,
            selecting: &parsed.0,
            originals: &[],
            from_lines: true,
            selections: Some(sel),
            previous,
            snippets: true,
            insecure: &[],
        }
    }

    #[test]
    fn selected_tags_for_every_target_and_kept_rows_of_a_failed_line() {
        let es = crate::images::parse_with_warnings("images.txt", "nginx --semver='~1.27'\nredis:7\nquay.io/a/b --latest=1").unwrap().entries;
        let parsed: (Vec<Entry>, Vec<Entry>) = es.into_iter().partition(Entry::is_selecting);
        let a = target("r1.example", "ns", Naming::Flat);
        let b = target("r2.example", "team/mirror", Naming::Path);
        let sel = Selections { chosen: [(1, vec!["1.27.1".to_string(), "1.27.2".to_string()])].into(), failed: [3].into() };
        let previous = Previous::parse(
            "### custom: `r1.example/ns`\n| `quay.io/a/b:9` | `r1.example/ns/quay-io_a_b:9` | all | x |\n### custom: `r2.example/team/mirror`\n| `quay.io/a/b:9` | `r2.example/team/mirror/quay.io/a/b:9` | all | y |\n",
        );
        let r = request(vec![&a, &b], &parsed, &sel, &previous);
        let ss = sections(&r).unwrap();
        let mirrors: Vec<&str> = ss[0].mappings.iter().filter_map(|m| m.mirror.as_deref()).collect();
        assert_eq!(mirrors, ["r1.example/ns/nginx:1.27.1", "r1.example/ns/nginx:1.27.2", "r1.example/ns/redis:7"]);
        assert_eq!(ss[1].mappings[1].mirror.as_deref(), Some("r2.example/team/mirror/docker.io/library/nginx:1.27.2"));
        assert_eq!(ss[0].kept, [(3, vec!["| `quay.io/a/b:9` | `r1.example/ns/quay-io_a_b:9` | all | x |".to_string()])]);
        assert_eq!(ss[1].kept[0].1[0], "| `quay.io/a/b:9` | `r2.example/team/mirror/quay.io/a/b:9` | all | y |");
        assert!(ss[0].snippets.is_empty(), "flat: no runtime snippets");
        assert_eq!(ss[1].snippets.len(), 3, "path: podman, containerd, k3s");
        let md = markdown(&ss);
        assert!(md.ends_with("```\n"), "{md}");
        assert_eq!(markdown(&sections(&r).unwrap()), md, "deterministic");
    }
}
