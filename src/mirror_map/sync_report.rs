//! What a sync's own JSON report (`imgsync sync --report FILE`) says about
//! its tag-selecting lines, for `imgsync map --report FILE`: the tags each
//! line chose in that run (so MIRRORS.md lists them, nothing guessed), and
//! the lines whose listing or selection failed (their previous rows stay).

use std::collections::{BTreeSet, HashMap};

use serde::Deserialize;

use crate::reference::ImageRef;

#[derive(Deserialize)]
struct Report {
    entries: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    line: usize,
    source: String,
    selected_by: Option<String>,
    #[serde(default)]
    targets: Vec<Target>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct Target {
    status: String,
}

/// The selecting lines of one sync run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selections {
    /// Line -> the tags it chose, in report order; a tag whose copy failed at
    /// every target is left out (the mirror may not hold it).
    pub chosen: HashMap<usize, Vec<String>>,
    /// Lines whose listing or selection failed in that run.
    pub failed: BTreeSet<usize>,
}

impl Selections {
    /// Reads a report's text; `file` names it in the error.
    pub fn read(file: &str, text: &str) -> Result<Selections, String> {
        let report: Report = serde_json::from_str(text).map_err(|e| format!("{file}: not a sync report ({e}); pass the file `imgsync sync --report FILE` wrote"))?;
        let mut out = Selections::default();
        for e in report.entries.iter().filter(|e| e.selected_by.is_some()) {
            if e.error.is_some() && e.targets.is_empty() {
                out.failed.insert(e.line);
                continue;
            }
            if !e.targets.is_empty() && e.targets.iter().all(|t| t.status == "failed") {
                continue;
            }
            let Some(tag) = ImageRef::parse(&e.source).ok().and_then(|r| r.tag().map(str::to_string)) else { continue };
            let tags = out.chosen.entry(e.line).or_default();
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
        Ok(out)
    }

    /// Whether this run says nothing good about a selecting line: its listing
    /// failed, or it is not in the report (another shard's, or a failed run).
    pub fn keeps_previous_rows(&self, line: usize) -> bool {
        !self.chosen.contains_key(&line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chosen_tags_and_failed_lines() {
        let text = r#"{"engine":"imagetools","summary":{},"entries":[
            {"line":1,"source":"docker.io/library/redis:7","selected_by":null,"targets":[{"target":"custom","ref":"r/ns/redis:7","status":"synced"}],"error":null},
            {"line":2,"source":"docker.io/library/nginx:1.27.1","selected_by":"--semver='~1.27'","targets":[{"status":"synced"},{"status":"up-to-date"}],"error":null},
            {"line":2,"source":"docker.io/library/nginx:1.27.2","selected_by":"--semver='~1.27'","targets":[{"status":"failed"},{"status":"failed"}],"error":null},
            {"line":2,"source":"docker.io/library/nginx:1.27.3","selected_by":"--semver='~1.27'","targets":[{"status":"failed"},{"status":"synced"}],"error":null},
            {"line":3,"source":"quay.io/a/b","selected_by":"--latest=2","targets":[],"error":"listing failed"}
        ]}"#;
        let s = Selections::read("report.json", text).unwrap();
        assert_eq!(s.chosen[&2], ["1.27.1", "1.27.3"]);
        assert_eq!(s.chosen.len(), 1);
        assert_eq!(s.failed.iter().copied().collect::<Vec<_>>(), [3]);
        assert!(s.keeps_previous_rows(3) && s.keeps_previous_rows(9) && !s.keeps_previous_rows(2));
        assert!(Selections::read("r.json", "[]").unwrap_err().starts_with("r.json: not a sync report"));
    }
}
