//! The outcome of a run, in images.txt order: the JSON report and the table.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Synced,
    UpToDate,
    WouldSync,
    Failed,
    /// `imgsync pull`: pulled from the mirror and tagged with the original name.
    Pulled,
    /// `imgsync pull`: the local image already is the mirror's.
    Present,
    /// The run was cancelled (Ctrl-C) before this finished: not a failure of its own.
    Interrupted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Synced => "synced",
            Status::UpToDate => "up-to-date",
            Status::WouldSync => "would-sync",
            Status::Failed => "failed",
            Status::Pulled => "pulled",
            Status::Present => "present",
            Status::Interrupted => "interrupted",
        }
    }

    /// `Failed`, or `Interrupted` when the failure is the run's cancellation.
    pub fn of_failure(hint: &str) -> Status {
        if is_interruption(hint) {
            Status::Interrupted
        } else {
            Status::Failed
        }
    }
}

/// Whether a failure is the run's cancellation (its hint says so).
pub fn is_interruption(hint: &str) -> bool {
    hint == crate::family::Family::Interrupted.hint()
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TargetReport {
    /// The target's kind: aliyun, ghcr, dockerhub or custom.
    pub target: String,
    #[serde(rename = "ref")]
    pub reference: String,
    pub status: Status,
    pub error: Option<String>,
    pub hint: Option<String>,
    /// Why it synced (or would), and the digests compared.
    #[serde(flatten)]
    pub why: Why,
    /// The source's signatures, attestations, SBOMs and referrers for the
    /// mirrored digests, and what became of them (absent when not looked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signatures: Option<crate::signatures::Counts>,
}

/// Why a target was (or would be) copied, and what was compared: the
/// answer to "why does it re-sync every night?".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Why {
    /// `missing at the target`, `digest differs`, `platform missing: linux/arm64`, `--force`.
    pub reason: Option<String>,
    /// The source's manifest (or index) digest, when the run read it.
    pub source_digest: Option<String>,
    /// What the target's reference pointed at before the run, when it existed.
    pub target_digest: Option<String>,
}

impl TargetReport {
    /// Its image failed, or a signature did (the image's status then stands:
    /// the failure is the target's error and hint).
    pub fn failed(&self) -> bool {
        self.status == Status::Failed || self.signatures.is_some_and(|s| s.failed > 0)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EntryReport {
    pub line: usize,
    pub source: String,
    /// An entry a selecting line expanded into (or that line, when its listing
    /// or selection failed): the line's selection as written, e.g. `--semver='~1.27'`.
    pub selected_by: Option<String>,
    pub platforms: Vec<String>,
    pub targets: Vec<TargetReport>,
    /// Set when the entry failed before any target was tried (e.g. the source is missing).
    pub error: Option<String>,
    pub hint: Option<String>,
    pub docker_calls: usize,
    /// HTTP requests the registry read path sent for this entry, by kind.
    pub requests: crate::registry::Counts,
}

impl EntryReport {
    pub fn failed(&self) -> bool {
        (self.error.is_some() && !self.interrupted()) || self.targets.iter().any(TargetReport::failed)
    }

    /// The entry as a whole stopped because the run was cancelled.
    pub fn interrupted(&self) -> bool {
        self.error.is_some() && self.hint.as_deref().is_some_and(is_interruption)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub synced: usize,
    pub up_to_date: usize,
    pub would_sync: usize,
    pub failed: usize,
    /// HTTP requests of all entries, by kind.
    pub requests: crate::registry::Counts,
    /// `imgsync pull` only (zero, and left out of the JSON, otherwise).
    #[serde(skip_serializing_if = "is_zero")]
    pub pulled: usize,
    #[serde(skip_serializing_if = "is_zero")]
    pub present: usize,
    /// Cut short by Ctrl-C (left out of the JSON when zero).
    #[serde(skip_serializing_if = "is_zero")]
    pub interrupted: usize,
    /// The targets' signature counts, summed (absent when none were looked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signatures: Option<crate::signatures::Counts>,
    /// Why signatures were not copied, when some were not (once per run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signatures_not_copied: Option<&'static str>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One repository's tag list as the run read it, for the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TagList {
    /// `registry/repository`, e.g. `docker.io/library/nginx`.
    pub repository: String,
    /// The selecting lines that used it.
    pub lines: Vec<usize>,
    /// Tags listed (as the registry sent them, before validation).
    pub tags: usize,
    /// Requests the listing took: pages (`get`) and tokens.
    pub requests: crate::registry::Counts,
    pub error: Option<String>,
}

/// Which command made a report: the table's summary line says what it counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `sync`, `plan` or `copy`.
    #[default]
    Sync,
    /// `pull` (its `engine` is `"pull"` too, as before `kind` existed).
    Pull,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    pub kind: Kind,
    /// The engine given by flag or config; under `auto`, the one detected when
    /// something had to be copied, or null when nothing was (no docker asked).
    pub engine: Option<String>,
    pub summary: Summary,
    /// The tag lists read to expand selecting lines, each repository once,
    /// with the requests it took.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tag_lists: Vec<TagList>,
    pub entries: Vec<EntryReport>,
    /// Pull quotas the registries announced (`ratelimit-*` headers), by host.
    pub rate_limits: std::collections::BTreeMap<String, crate::registry::RateLimit>,
    /// No target is configured (SYNC_MODE=none): the run only planned.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub plan_only: bool,
    /// Warnings about the run's result as a whole (issue 22: a GHCR package a
    /// server cannot pull anonymously), each once.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Report {
    pub fn new(engine: &str, mut entries: Vec<EntryReport>) -> Self {
        entries.sort_by_key(|e| e.line);
        let summary = summarize(&entries);
        Report { kind: Kind::Sync, engine: Some(engine.to_string()), summary, tag_lists: Vec::new(), entries, rate_limits: Default::default(), plan_only: false, warnings: Vec::new() }
    }

    pub fn failed(&self) -> bool {
        self.entries.iter().any(EntryReport::failed)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serialises")
    }

    /// Adds the selecting lines that failed before the run (listing,
    /// selection or collision) and the tag lists read.
    pub fn with_selections(mut self, failed: Vec<EntryReport>, tag_lists: Vec<TagList>) -> Self {
        self.entries.extend(failed);
        self.entries.sort_by_key(|e| e.line);
        self.summary = summarize(&self.entries);
        self.tag_lists = tag_lists;
        self
    }
}

/// Counts target outcomes; an entry that failed before any target counts once.
pub fn summarize(entries: &[EntryReport]) -> Summary {
    let mut s = Summary::default();
    for c in entries.iter().flat_map(|e| &e.targets).filter_map(|t| t.signatures) {
        *s.signatures.get_or_insert_with(Default::default) += c;
    }
    for e in entries {
        s.requests += e.requests;
        if e.error.is_some() && e.targets.iter().all(|t| t.status != Status::Failed && t.status != Status::Interrupted) {
            if e.interrupted() {
                s.interrupted += 1;
            } else {
                s.failed += 1;
            }
        }
        for t in &e.targets {
            match t.status {
                Status::Synced => s.synced += 1,
                Status::UpToDate => s.up_to_date += 1,
                Status::WouldSync => s.would_sync += 1,
                Status::Failed => s.failed += 1,
                Status::Pulled => s.pulled += 1,
                Status::Present => s.present += 1,
                Status::Interrupted => s.interrupted += 1,
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(status: Status) -> TargetReport {
        TargetReport { target: "custom".into(), reference: "r/n/x:1".into(), status, error: None, hint: None, why: Default::default(), signatures: None }
    }

    fn entry(line: usize, targets: Vec<TargetReport>, error: Option<&str>) -> EntryReport {
        EntryReport {
            line,
            source: "docker.io/library/x:1".into(),
            selected_by: None,
            platforms: vec!["linux/amd64".into()],
            targets,
            error: error.map(str::to_string),
            hint: None,
            docker_calls: 2,
            requests: Default::default(),
        }
    }

    #[test]
    fn summary_and_order() {
        let r = Report::new(
            "daemon",
            vec![
                entry(5, vec![target(Status::Failed)], Some("boom")),
                entry(2, vec![target(Status::Synced), target(Status::UpToDate)], None),
                entry(9, vec![], Some("missing")),
                entry(7, vec![target(Status::WouldSync)], None),
            ],
        );
        assert_eq!(r.entries.iter().map(|e| e.line).collect::<Vec<_>>(), [2, 5, 7, 9]);
        assert_eq!(r.summary, Summary { synced: 1, up_to_date: 1, would_sync: 1, failed: 2, ..Default::default() });
        assert!(r.failed());
    }

    #[test]
    fn interrupted_is_not_failed() {
        let hint = crate::family::Family::Interrupted.hint();
        let mut cut = entry(4, vec![target(Status::Interrupted)], Some("interrupted before this entry started"));
        cut.hint = Some(hint.into());
        let mut copy = target(Status::Interrupted);
        copy.hint = Some(hint.into());
        let r = Report::new("daemon", vec![entry(2, vec![target(Status::Synced)], None), cut, entry(6, vec![copy], None)]);
        assert_eq!((r.summary.synced, r.summary.failed, r.summary.interrupted), (1, 0, 2));
        assert!(!r.failed());
        assert_eq!(Status::of_failure(hint), Status::Interrupted);
        assert_eq!(Status::of_failure("check the name"), Status::Failed);
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["entries"][2]["targets"][0]["status"], "interrupted");
        assert_eq!(v["summary"]["interrupted"], 2);
    }

    #[test]
    fn json_shape() {
        let r = Report::new("imagetools", vec![entry(3, vec![target(Status::UpToDate)], None)]);
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["engine"], "imagetools");
        assert_eq!(v["kind"], "sync");
        assert_eq!(v["summary"]["up_to_date"], 1);
        assert_eq!(v["entries"][0]["targets"][0]["status"], "up-to-date");
        assert_eq!(v["entries"][0]["targets"][0]["ref"], "r/n/x:1");
        assert!(v["entries"][0]["targets"][0]["error"].is_null());
        assert_eq!(v["entries"][0]["docker_calls"], 2);
    }
}
