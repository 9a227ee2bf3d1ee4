//! Tag selection on an images.txt line written without a tag: which of the
//! tags a registry lists a line copies. Pure: the tag list comes from the caller.
//!
//! A tag's version is its leading `v?MAJOR[.MINOR[.PATCH]]` (missing parts are
//! 0), then either nothing or a suffix starting with `-` (`2.0.0-rc.1`,
//! `1.27.1-alpine`). Ranges compare the numeric version only.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fmt;

use regex::{Regex, RegexBuilder};
use semver::{Version, VersionReq};

use crate::reference::is_valid_tag;

/// Default of `--max`: a line selecting more tags fails.
pub const DEFAULT_MAX: usize = 100;
/// How many of the source's tags a "matches nothing" failure shows.
const EXAMPLES: usize = 8;

/// A regex that must match a whole tag (`--tags=latest` is exactly `latest`).
#[derive(Clone, Debug)]
pub struct Pattern {
    text: String,
    re: Regex,
}

impl Pattern {
    pub fn new(option: &str, text: &str) -> Result<Pattern, String> {
        if text.is_empty() {
            return Err(format!("--{option} needs a regex, e.g. --{option}='1\\.27\\..*'"));
        }
        let re = RegexBuilder::new(&format!("^(?:{text})$")).size_limit(1 << 20).build().map_err(|e| {
            // regex's message spans lines (the pattern, a caret, the error): keep the error.
            let why = e.to_string().lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string();
            format!("invalid --{option} regex {text:?}: {}", why.trim_start_matches("error: "))
        })?;
        Ok(Pattern { text: text.to_string(), re })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn matches(&self, tag: &str) -> bool {
        self.re.is_match(tag)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Pattern {}

/// A `--semver` range in Rust `semver` requirement syntax (`>=1.25, <2`, `~1.27`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Range {
    text: String,
    req: VersionReq,
}

impl Range {
    pub fn parse(text: &str) -> Result<Range, String> {
        if text.trim().is_empty() {
            return Err("--semver needs a range, e.g. --semver='>=1.25, <2' or --semver='~1.27'".into());
        }
        let req = VersionReq::parse(text.trim())
            .map_err(|e| format!("invalid --semver range {text:?}: {e}; e.g. --semver='>=1.25, <2' or --semver='~1.27'"))?;
        // Ranges compare MAJOR.MINOR.PATCH only (a tag's suffix never
        // counts), so a pre-release comparator could not mean what it says.
        if let Some(c) = req.comparators.iter().find(|c| !c.pre.is_empty()) {
            return Err(format!(
                "invalid --semver range {text:?}: the pre-release `-{}` cannot be compared: --semver compares MAJOR.MINOR.PATCH only and a tag's suffix never counts; select suffixes with --tags (e.g. --semver='>=2.1' --tags='.*-rc.*', or --tags='2\\.1\\.1-really\\.0' for one tag)",
                c.pre
            ));
        }
        Ok(Range { text: text.to_string(), req })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether the numeric version is in the range (a suffix never excludes it).
    pub fn matches(&self, v: &TagVersion) -> bool {
        self.req.matches(&Version::new(v.major, v.minor, v.patch))
    }
}

/// What a selecting line asks for; the options combine as AND.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagSelection {
    /// `--tags`: keep tags any of them matches in whole (none: every tag).
    pub tags: Vec<Pattern>,
    /// `--exclude`: drop tags any of them matches in whole.
    pub exclude: Vec<Pattern>,
    pub semver: Option<Range>,
    /// `--latest`: after the other filters, the N highest versions (N >= 1).
    pub latest: Option<usize>,
    /// `--max`: more selected tags than this fail the line.
    pub max: usize,
}

impl Default for TagSelection {
    fn default() -> Self {
        TagSelection { tags: Vec::new(), exclude: Vec::new(), semver: None, latest: None, max: DEFAULT_MAX }
    }
}

impl TagSelection {
    /// Whether `--semver` or `--latest` look at versions (and so ignore other tags).
    pub fn by_version(&self) -> bool {
        self.semver.is_some() || self.latest.is_some()
    }
}

/// The options as they would be written on the line, values quoted: what the
/// plan and the report show as "selected by".
impl fmt::Display for TagSelection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        for p in &self.tags {
            parts.push(format!("--tags={}", quote(p.text())));
        }
        for p in &self.exclude {
            parts.push(format!("--exclude={}", quote(p.text())));
        }
        if let Some(r) = &self.semver {
            parts.push(format!("--semver={}", quote(r.text())));
        }
        if let Some(n) = self.latest {
            parts.push(format!("--latest={n}"));
        }
        if self.max != DEFAULT_MAX {
            parts.push(format!("--max={}", self.max));
        }
        f.write_str(&parts.join(" "))
    }
}

fn quote(v: &str) -> String {
    if v.contains('\'') {
        format!("\"{v}\"")
    } else {
        format!("'{v}'")
    }
}

/// A tag's version: numeric parts and whether a `-suffix` follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TagVersion {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    pub has_suffix: bool,
}

/// `v?MAJOR[.MINOR[.PATCH]]` then nothing or `-SUFFIX`; anything else is not a version.
pub fn parse_version(tag: &str) -> Option<TagVersion> {
    let rest = tag.strip_prefix('v').unwrap_or(tag);
    let (numbers, has_suffix) = match rest.split_once('-') {
        Some((n, _)) => (n, true),
        None => (rest, false),
    };
    let mut parts = [0u64; 3];
    for (i, part) in numbers.split('.').enumerate() {
        if i == 3 || part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        parts[i] = part.parse().ok()?;
    }
    Some(TagVersion { major: parts[0], minor: parts[1], patch: parts[2], has_suffix })
}

/// Version order, then tag text, so that equal versions (`17.0` and `17.0.0`)
/// still come out in one stable order. Tags that are not versions sort first.
pub fn compare_tags(a: &str, b: &str) -> Ordering {
    let key = |t: &str| parse_version(t).map(|v| (v.major, v.minor, v.patch));
    key(a).cmp(&key(b)).then_with(|| a.cmp(b))
}

/// What a selection kept, and what it had to leave aside (for verbose output).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selected {
    /// The selected tags in ascending version order (`compare_tags`).
    pub tags: Vec<String>,
    /// Tags that passed `--tags`/`--exclude` but are not versions, so
    /// `--semver`/`--latest` ignored them (say so once, not as an error).
    pub not_versions: Vec<String>,
    /// Tags from the registry that break the tag grammar: dropped, and only
    /// counted because their text is untrusted.
    pub invalid: usize,
}

/// Why a selection failed its line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SelectError {
    /// Nothing matched; `examples` are a few of the source's tags (highest versions first).
    NoMatch { total: usize, examples: Vec<String>, not_versions: usize },
    /// More than `--max` tags matched.
    TooMany { count: usize, max: usize },
}

impl fmt::Display for SelectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SelectError::NoMatch { total: 0, .. } => write!(f, "the source has no tags"),
            SelectError::NoMatch { total, examples, not_versions } => {
                write!(f, "no tag matches the selection; the source has {total} tags, e.g. {}", examples.join(", "))?;
                if *not_versions > 0 {
                    write!(f, " ({not_versions} matching tags are not versions, which --semver and --latest ignore)")?;
                }
                Ok(())
            }
            SelectError::TooMany { count, max } => write!(
                f,
                "the selection matches {count} tags, more than --max={max}: narrow it with --tags, --exclude, --semver or --latest, or raise --max"
            ),
        }
    }
}

/// Applies a selection to the tags a registry listed (untrusted: invalid tags
/// are dropped, duplicates folded).
pub fn select(sel: &TagSelection, listed: &[String]) -> Result<Selected, SelectError> {
    let mut invalid = 0;
    let mut all = BTreeSet::new();
    for t in listed {
        // A signature's or referrers index's tag (`sha256-<hex>[.sig|.att|.sbom]`)
        // is never an image to select, whatever the pattern says.
        if crate::signatures::is_attachment_tag(t) {
            continue;
        }
        if is_valid_tag(t) {
            all.insert(t.as_str());
        } else {
            invalid += 1;
        }
    }
    let mut not_versions = Vec::new();
    let mut kept: Vec<&str> = Vec::new();
    for &t in &all {
        if !sel.tags.is_empty() && !sel.tags.iter().any(|p| p.matches(t)) {
            continue;
        }
        if sel.exclude.iter().any(|p| p.matches(t)) {
            continue;
        }
        if sel.by_version() {
            let Some(v) = parse_version(t) else {
                not_versions.push(t.to_string());
                continue;
            };
            // Without --tags only plain versions count; with it, the regex chose the suffix.
            if v.has_suffix && sel.tags.is_empty() {
                continue;
            }
            if sel.semver.as_ref().is_some_and(|r| !r.matches(&v)) {
                continue;
            }
        }
        kept.push(t);
    }
    kept.sort_by(|a, b| compare_tags(a, b));
    if let Some(n) = sel.latest {
        kept.drain(..kept.len().saturating_sub(n));
    }
    if kept.is_empty() {
        let mut examples: Vec<&str> = all.iter().copied().collect();
        examples.sort_by(|a, b| compare_tags(b, a));
        examples.truncate(EXAMPLES);
        return Err(SelectError::NoMatch {
            total: all.len(),
            examples: examples.into_iter().map(str::to_string).collect(),
            not_versions: not_versions.len(),
        });
    }
    if kept.len() > sel.max {
        return Err(SelectError::TooMany { count: kept.len(), max: sel.max });
    }
    Ok(Selected { tags: kept.into_iter().map(str::to_string).collect(), not_versions, invalid })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(t: &str) -> Option<(u64, u64, u64, bool)> {
        parse_version(t).map(|v| (v.major, v.minor, v.patch, v.has_suffix))
    }

    fn sel(tags: &[&str], exclude: &[&str], semver: Option<&str>, latest: Option<usize>) -> TagSelection {
        TagSelection {
            tags: tags.iter().map(|t| Pattern::new("tags", t).unwrap()).collect(),
            exclude: exclude.iter().map(|t| Pattern::new("exclude", t).unwrap()).collect(),
            semver: semver.map(|r| Range::parse(r).unwrap()),
            latest,
            max: DEFAULT_MAX,
        }
    }

    fn list(tags: &str) -> Vec<String> {
        tags.split_whitespace().map(str::to_string).collect()
    }

    fn pick(s: &TagSelection, tags: &str) -> Vec<String> {
        select(s, &list(tags)).unwrap().tags
    }

    const NGINX: &str = "latest stable alpine mainline 1 1.26 1.26.2 1.26.2-alpine 1.27 1.27.0 1.27.1 1.27.1-alpine \
                         1.27.1-alpine-slim 1.27.2 1.27.2-alpine 1.28.0-rc.1 1.25.5 1.25.5-perl 2.0.0-rc.1";

    #[test]
    fn signature_and_referrers_tags_are_never_selected() {
        let hex = "ab".repeat(32);
        let tags = format!("v1 v2 sha256-{hex} sha256-{hex}.sig sha256-{hex}.att sha256-{hex}.sbom sha256_{hex}");
        assert_eq!(pick(&sel(&[".*"], &[], None, None), &tags), list(&format!("sha256_{hex} v1 v2")));
        assert!(matches!(select(&sel(&["^sha256-.*"], &[], None, None), &list(&tags)), Err(SelectError::NoMatch { total: 3, .. })), "only the three image tags count");
    }

    #[test]
    fn versions() {
        assert_eq!(v("1.27"), Some((1, 27, 0, false)));
        assert_eq!(v("1.27.0"), Some((1, 27, 0, false)));
        assert_eq!(v("17"), Some((17, 0, 0, false)));
        assert_eq!(v("v1.2.3"), Some((1, 2, 3, false)));
        assert_eq!(v("v2"), Some((2, 0, 0, false)));
        assert_eq!(v("2.0.0-rc.1"), Some((2, 0, 0, true)));
        assert_eq!(v("1.27.1-alpine"), Some((1, 27, 1, true)));
        assert_eq!(v("1.2-"), Some((1, 2, 0, true)));
        assert_eq!(v("007"), Some((7, 0, 0, false)));
        for not in ["latest", "alpine", "v", "1.", ".1", "1..2", "1.2.3.4", "1.27.1_alpine", "1a", "vv1", "V1", "-1",
            "1.x", "99999999999999999999999", "", "stable-1.2"]
        {
            assert_eq!(v(not), None, "{not}");
        }
    }

    #[test]
    fn ordering_is_by_version_then_text() {
        let mut tags = list("17.1 17 1.27.0 v1.27.1 1.27 10 9 17.0.0 2 1.3");
        tags.sort_by(|a, b| compare_tags(a, b));
        assert_eq!(tags, list("1.3 1.27 1.27.0 v1.27.1 2 9 10 17 17.0.0 17.1"));
        assert_eq!(compare_tags("latest", "1"), Ordering::Less, "not versions first");
        assert_eq!(compare_tags("1.27", "1.27.0"), Ordering::Less, "equal versions: tag text decides");
    }

    #[test]
    fn semver_without_tags_is_plain_versions_only() {
        let s = sel(&[], &[], Some("~1.27"), None);
        assert_eq!(pick(&s, NGINX), list("1.27 1.27.0 1.27.1 1.27.2"));
        let r = select(&s, &list(NGINX)).unwrap();
        assert_eq!(r.not_versions, list("alpine latest mainline stable"));
        let s = sel(&[], &[], Some(">=1.25, <2"), None);
        assert_eq!(pick(&s, NGINX), list("1.25.5 1.26 1.26.2 1.27 1.27.0 1.27.1 1.27.2"));
        // A bare version means ^: every 1.x from 1.27 on.
        assert_eq!(pick(&sel(&[], &[], Some("1.27"), None), NGINX), list("1.27 1.27.0 1.27.1 1.27.2"));
    }

    #[test]
    fn tags_choose_the_suffix_and_ranges_compare_numbers() {
        let s = sel(&[".*-alpine"], &[], Some(">=1.25"), None);
        assert_eq!(pick(&s, NGINX), list("1.26.2-alpine 1.27.1-alpine 1.27.2-alpine"));
        let s = sel(&[".*-alpine"], &[], None, Some(2));
        assert_eq!(pick(&s, NGINX), list("1.27.1-alpine 1.27.2-alpine"));
        // Pre-releases count only when --tags lets them in.
        let s = sel(&[".*-rc.*"], &[], Some(">=1.28"), None);
        assert_eq!(pick(&s, NGINX), list("1.28.0-rc.1 2.0.0-rc.1"));
        let e = select(&sel(&[], &[], Some(">=1.28"), None), &list("1.27 1.28.0-rc.1 2.0.0-rc.1"));
        assert!(matches!(e, Err(SelectError::NoMatch { total: 3, .. })), "{e:?}");
    }

    #[test]
    fn latest_n() {
        let pg = "latest 17 17.1 17.2 16 16.6 15.10 15.9 17-alpine 18beta1 18-rc1 bookworm";
        assert_eq!(pick(&sel(&[], &[], None, Some(3)), pg), list("17 17.1 17.2"));
        assert_eq!(pick(&sel(&[], &[], None, Some(1)), pg), list("17.2"));
        assert_eq!(pick(&sel(&[], &[], Some("<17"), Some(2)), pg), list("16 16.6"));
        assert_eq!(pick(&sel(&[], &[], None, Some(50)), "1 2"), list("1 2"), "fewer than N: all");
        // A floating major ranks as MAJOR.0.0: below its minors, above the previous major.
        assert_eq!(pick(&sel(&[], &[], None, Some(2)), "17 16.9 17.1"), list("17 17.1"));
        // Equal versions: tag text breaks the tie, the same way every run.
        assert_eq!(pick(&sel(&[], &[], None, Some(1)), "1.27.0 1.27 v1.27"), list("v1.27"));
        assert_eq!(pick(&sel(&[], &[], None, Some(1)), "v1.27 1.27 1.27.0"), list("v1.27"));
    }

    #[test]
    fn regex_is_whole_match_or_and_exclude() {
        assert_eq!(pick(&sel(&["latest"], &[], None, None), "latest latest-alpine my-latest"), list("latest"));
        let s = sel(&["1\\.27\\..*", "stable"], &[".*-(perl|slim)", ".*alpine.*"], None, None);
        assert_eq!(pick(&s, "1.27.1 1.27.1-perl 1.27.1-alpine stable stable-perl 1.26.0 1.27.2-slim"), list("stable 1.27.1"));
        // --exclude alone: everything else, versions or not.
        assert_eq!(pick(&sel(&[], &[".*alpine.*"], None, None), "b a 1 alpine 1-alpine"), list("a b 1"));
    }

    #[test]
    fn untrusted_tags_are_validated_and_folded() {
        let listed = vec!["1.0".to_string(), "1.0".into(), "-x".into(), "café".into(), "a\nb".into(), "x".repeat(129), "2.0".into()];
        let r = select(&sel(&[], &[], None, Some(5)), &listed).unwrap();
        assert_eq!(r.tags, list("1.0 2.0"));
        assert_eq!(r.invalid, 4);
    }

    #[test]
    fn failures() {
        let s = sel(&[], &[], Some(">=3"), None);
        let e = select(&s, &list("latest 1.0 2.0 2.1 alpine")).unwrap_err();
        assert_eq!(e, SelectError::NoMatch { total: 5, examples: list("2.1 2.0 1.0 latest alpine"), not_versions: 2 });
        let msg = e.to_string();
        assert!(msg.starts_with("no tag matches the selection; the source has 5 tags, e.g. 2.1, 2.0, 1.0, latest, alpine"), "{msg}");
        assert_eq!(select(&s, &[]).unwrap_err().to_string(), "the source has no tags");
        let many: Vec<String> = (0..150).map(|i| format!("1.{i}")).collect();
        let e = select(&sel(&[], &[".*-rc"], None, None), &many).unwrap_err();
        assert_eq!(e, SelectError::TooMany { count: 150, max: 100 });
        assert!(e.to_string().contains("narrow it"), "{e}");
        let mut s = sel(&[], &[".*-rc"], None, None);
        s.max = 150;
        assert_eq!(select(&s, &many).unwrap().tags.len(), 150);
        // --latest counts before the cap.
        assert_eq!(select(&sel(&[], &[], None, Some(3)), &many).unwrap().tags, list("1.147 1.148 1.149"));
    }

    #[test]
    fn bad_options() {
        assert!(Pattern::new("tags", "(").unwrap_err().starts_with("invalid --tags regex \"(\": "));
        assert!(Pattern::new("tags", "").is_err());
        assert!(!Pattern::new("tags", "(").unwrap_err().contains('\n'));
        assert!(Range::parse(">=x").unwrap_err().starts_with("invalid --semver range \">=x\""));
        assert!(Range::parse(" ").is_err());
        assert!(Range::parse(">=1.25, <2").is_ok());
    }

    #[test]
    fn a_pre_release_comparator_is_refused_with_a_hint() {
        // A tag's suffix never takes part in the comparison, so `=2.1.1-really.0`
        // could only ever mean `=2.1.1`: refused, not silently widened.
        for text in ["=2.1.1-really.0", ">=2.1.0-alpha2", ">=1, <2.0.0-rc.1"] {
            let e = Range::parse(text).unwrap_err();
            assert!(e.contains("pre-release") && e.contains("--tags"), "{text}: {e}");
        }
        assert!(Range::parse(">=2.1.0, <3").is_ok());
    }

    #[test]
    fn display_is_the_written_options() {
        let mut s = sel(&[".*-alpine"], &["x'y"], Some(">=1.25, <2"), Some(2));
        s.max = 5;
        assert_eq!(s.to_string(), "--tags='.*-alpine' --exclude=\"x'y\" --semver='>=1.25, <2' --latest=2 --max=5");
    }
}
