//! images.txt: one entry per line,
//! `[OPTION...] SOURCE [OPTION...] [=> NAME[:TAG]]`, `#` comments.
//!
//! Options are `--platform=P[,P...]` (also `--platform P`) and, on a line whose
//! source is written without a tag, the tag selection `--tags=REGEX`,
//! `--exclude=REGEX`, `--semver=RANGE`, `--latest=N`, `--max=N`. Values may be
//! quoted with '…' or "…" (no escapes inside); quotes hide `#` and `=>`.
//! Nothing here reaches a shell.

use std::fmt;
use std::io::Read;
use std::path::Path;

use crate::platform::Platform;
use crate::reference::{self, ImageRef};
use crate::tag_selection::{Pattern, Range, TagSelection, DEFAULT_MAX};

/// An images.txt larger than this is refused (a real list is a few KiB).
pub const MAX_FILE_BYTES: usize = 1 << 20;
/// Input errors shown at most; `limit_errors` says how many more there were.
pub const MAX_ERRORS_SHOWN: usize = 50;

/// Options of the project imgsync replaces (docker pull options) that mean
/// nothing for a mirror: accepted with a warning.
const IGNORED_OPTIONS: [&str; 4] = ["--disable-content-trust", "-q", "--quiet", "--pull-always"];
/// The options images.txt knows, for "did you mean".
const OPTIONS: [&str; 6] = ["platform", "tags", "exclude", "semver", "latest", "max"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// 1-based line in the file, for messages and the report.
    pub line: usize,
    /// Empty means every platform of the source.
    pub platforms: Vec<Platform>,
    /// On a selecting line, the source as parsed (its tag reads `latest`):
    /// only its name counts.
    pub source: ImageRef,
    pub rename: Option<Rename>,
    /// A selecting line (written without a tag, with tag-selection options):
    /// what it selects. `naming::expand` turns it into one entry per tag.
    pub selection: Option<TagSelection>,
    /// An entry expanded from a selecting line: that line's options as
    /// written (`--semver='~1.27'`), for the plan and the report.
    pub selected_by: Option<String>,
}

impl Entry {
    pub fn is_selecting(&self) -> bool {
        self.selection.is_some()
    }

    /// What progress, events and Actions groups are keyed by: the line, and
    /// for an entry expanded from a selection the line and its tag (`12:1.27.1`).
    pub fn key(&self) -> String {
        match (&self.selected_by, self.source.tag()) {
            (Some(_), Some(tag)) => format!("{}:{tag}", self.line),
            _ => self.line.to_string(),
        }
    }

    /// The concrete entry for one tag a selecting entry selected: same line,
    /// platforms and rename, the source at `tag`.
    pub fn with_selected_tag(&self, tag: &str) -> Result<Entry, String> {
        let selection = self.selection.as_ref().ok_or_else(|| format!("line {}: not a selecting line", self.line))?;
        Ok(Entry {
            line: self.line,
            platforms: self.platforms.clone(),
            source: self.source.with_tag(tag)?,
            rename: self.rename.clone(),
            selection: None,
            selected_by: Some(selection.to_string()),
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rename {
    pub name: String,
    pub tag: Option<String>,
}

use crate::line_error::LineError;

/// Something accepted but worth saying, e.g. an ignored legacy option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    pub entries: Vec<Entry>,
    /// At most one per line; to be printed before the run starts.
    pub warnings: Vec<Warning>,
}

/// A UTF-8 byte order mark at the start of a file, as some Windows editors
/// write it, is not part of the first line.
pub fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// Reads an images.txt without holding more than `MAX_FILE_BYTES` (+1) of it.
pub fn read_capped(path: &Path) -> std::io::Result<String> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.take(MAX_FILE_BYTES as u64 + 1).read_to_end(&mut bytes)?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(std::io::Error::other(too_big()));
    }
    String::from_utf8(bytes).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

fn too_big() -> String {
    format!("larger than {} KiB; an image list is a few KiB: is this the right file?", MAX_FILE_BYTES >> 10)
}

/// The first `MAX_ERRORS_SHOWN` messages, then one saying how many more there were.
pub fn limit_errors(mut errors: Vec<String>) -> Vec<String> {
    if errors.len() > MAX_ERRORS_SHOWN {
        let more = errors.len() - MAX_ERRORS_SHOWN;
        errors.truncate(MAX_ERRORS_SHOWN);
        errors.push(format!("… and {more} more error{}", if more == 1 { "" } else { "s" }));
    }
    errors
}

/// Parses the whole file for a caller that cannot expand tag selections (it
/// does not read the registry's tag lists): a selecting line is an error
/// here rather than a silent copy of `latest`, and warnings are dropped.
/// The run uses `parse_with_warnings` and `naming::expand`.
pub fn parse(file: &str, text: &str) -> Result<Vec<Entry>, Vec<LineError>> {
    let parsed = parse_with_warnings(file, text)?;
    let errors = refuse_selections(file, &parsed.entries);
    if errors.is_empty() {
        Ok(parsed.entries)
    } else {
        Err(errors)
    }
}

/// One error per selecting line, for a command that cannot list tags.
pub fn refuse_selections(file: &str, entries: &[Entry]) -> Vec<LineError> {
    entries
        .iter()
        .filter_map(|e| {
            let sel = e.selection.as_ref()?;
            Some(LineError {
                file: file.to_string(),
                line: e.line,
                message: format!("tag selection ({sel}) needs the registry's tag list, which this command does not read"),
            })
        })
        .collect()
}

/// Parses the whole file: the entries and warnings, or every line's error.
pub fn parse_with_warnings(file: &str, text: &str) -> Result<Parsed, Vec<LineError>> {
    let text = strip_bom(text);
    if text.len() > MAX_FILE_BYTES {
        return Err(vec![LineError { file: file.to_string(), line: 0, message: too_big() }]);
    }
    let mut parsed = Parsed::default();
    let mut errors = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        match parse_line(line, raw) {
            Ok(Some((entry, warning))) => {
                parsed.entries.push(entry);
                if let Some(message) = warning {
                    parsed.warnings.push(Warning { file: file.to_string(), line, message });
                }
            }
            Ok(None) => {}
            Err(message) => errors.push(LineError { file: file.to_string(), line, message }),
        }
    }
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(errors)
    }
}

/// A line's words, quotes removed, split at an unquoted `=>`.
#[derive(Debug, Default, PartialEq, Eq)]
struct Words {
    left: Vec<String>,
    right: Option<Vec<String>>,
}

/// Splits at whitespace outside quotes. `#` outside quotes, at the start or
/// after whitespace, starts a comment; `'…'` and `"…"` group and are removed
/// (`--semver='>=1, <2'` is one word); an unquoted `=>` ends the left side.
fn words(raw: &str) -> Result<Words, String> {
    fn flush(w: &mut Words, cur: &mut String, started: &mut bool) {
        if *started {
            let side = match &mut w.right {
                Some(r) => r,
                None => &mut w.left,
            };
            side.push(std::mem::take(cur));
            *started = false;
        }
    }
    let mut w = Words::default();
    let mut cur = String::new();
    let mut started = false;
    let mut quote: Option<char> = None;
    let mut prev_space = true;
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            } else {
                cur.push(c);
            }
            prev_space = false;
            continue;
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                started = true;
            }
            '#' if prev_space => break,
            '=' if chars.peek() == Some(&'>') => {
                chars.next();
                flush(&mut w, &mut cur, &mut started);
                if w.right.is_some() {
                    return Err("only one `=>` per line".into());
                }
                w.right = Some(Vec::new());
            }
            c if c.is_whitespace() => flush(&mut w, &mut cur, &mut started),
            c => {
                cur.push(c);
                started = true;
            }
        }
        prev_space = c.is_whitespace();
    }
    if let Some(q) = quote {
        return Err(format!("unclosed {q} quote: close it on the same line"));
    }
    flush(&mut w, &mut cur, &mut started);
    Ok(w)
}

/// Tag-selection options as they come, before they are checked together.
#[derive(Default)]
struct SelectionOptions {
    tags: Vec<Pattern>,
    exclude: Vec<Pattern>,
    semver: Option<Range>,
    latest: Option<usize>,
    max: Option<usize>,
    /// The first selection option as written, for messages.
    first: Option<String>,
}

fn parse_line(line: usize, raw: &str) -> Result<Option<(Entry, Option<String>)>, String> {
    let w = words(raw.strip_suffix('\r').unwrap_or(raw))?;
    if w.left.is_empty() && w.right.is_none() {
        return Ok(None);
    }
    let mut platforms: Vec<Platform> = Vec::new();
    let mut source: Option<(String, ImageRef)> = None;
    let mut sel = SelectionOptions::default();
    let mut ignored: Vec<String> = Vec::new();
    let mut tokens = w.left.into_iter();
    while let Some(tok) = tokens.next() {
        if !(tok.starts_with('-') && tok.len() > 1) {
            if source.is_some() {
                return Err(format!("unexpected {tok:?}: one image per line; rename with `SOURCE => NAME[:TAG]`"));
            }
            let r = ImageRef::parse(&tok)?;
            source = Some((tok, r));
            continue;
        }
        let (name, value) = match tok.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (tok.as_str(), None),
        };
        match name {
            "--platform" => {
                let value = match value {
                    Some(v) => v.to_string(),
                    None => tokens.next().ok_or("--platform needs a value, e.g. --platform=linux/arm64")?,
                };
                for p in value.split(',') {
                    let p: Platform = p.trim().parse()?;
                    if !platforms.iter().any(|q| q.matches(&p)) {
                        platforms.push(p);
                    }
                }
            }
            "--tags" | "--exclude" | "--semver" | "--latest" | "--max" => {
                let option = &name[2..];
                let value = value.ok_or_else(|| {
                    let example = match option {
                        "tags" | "exclude" => "REGEX",
                        "semver" => "RANGE",
                        _ => "N",
                    };
                    format!("--{option} needs a value: write --{option}={example}")
                })?;
                sel.first.get_or_insert_with(|| tok.clone());
                match option {
                    "tags" => sel.tags.push(Pattern::new(option, value)?),
                    "exclude" => sel.exclude.push(Pattern::new(option, value)?),
                    "semver" if sel.semver.is_some() => {
                        return Err("--semver given twice: one range per line; join requirements with a comma (AND)".into())
                    }
                    "semver" => sel.semver = Some(Range::parse(value)?),
                    _ => {
                        let n: usize = value
                            .parse()
                            .ok()
                            .filter(|n| *n > 0)
                            .ok_or_else(|| format!("--{option}={value}: needs a whole number of at least 1"))?;
                        let slot = if option == "latest" { &mut sel.latest } else { &mut sel.max };
                        if slot.replace(n).is_some() {
                            return Err(format!("--{option} given twice"));
                        }
                    }
                }
            }
            "-a" | "--all-tags" => {
                return Err(format!(
                    "{name} is not supported: copying every tag has no bound; select tags on a line without a tag, \
                     e.g. `nginx --semver='~1.27'`, `postgres --latest=3` or `nginx --tags='1\\.27\\..*'`"
                ))
            }
            n if IGNORED_OPTIONS.contains(&n) => {
                let takes_value = n == "--disable-content-trust";
                if let Some(v) = value.filter(|v| !takes_value || !matches!(*v, "true" | "false")) {
                    return Err(format!("{n} takes no value {v:?}"));
                }
                ignored.push(tok.clone());
            }
            _ => return Err(unknown_option(&tok, name)),
        }
    }
    if w.right.as_ref().is_some_and(|r| r.is_empty()) {
        return Err("`=>` needs a target NAME[:TAG]".into());
    }
    let rename = w.right.map(|r| parse_rename(&r)).transpose()?;
    let (written, source) = source.ok_or("no image on this line")?;
    let selection = selection(sel, &written, rename.as_ref())?;
    let warning = (!ignored.is_empty()).then(|| {
        format!(
            "ignoring {}: a docker pull option that means nothing for a mirror (remove it to silence this warning)",
            ignored.join(" ")
        )
    });
    Ok(Some((Entry { line, platforms, source, rename, selection, selected_by: None }, warning)))
}

/// Checks the selection options of a line against its source and rename.
fn selection(sel: SelectionOptions, written: &str, rename: Option<&Rename>) -> Result<Option<TagSelection>, String> {
    let Some(first) = sel.first else { return Ok(None) };
    if sel.tags.is_empty() && sel.exclude.is_empty() && sel.semver.is_none() && sel.latest.is_none() {
        return Err("--max caps a tag selection: add --tags, --exclude, --semver or --latest".into());
    }
    let (tag, digest) = reference::names_tag_or_digest(written);
    if tag || digest {
        let bare = written.split('@').next().unwrap_or(written);
        let bare = reference::without_tag(bare);
        let what = if digest { "digest" } else { "tag" };
        return Err(format!(
            "{first} selects tags, so the source names no {what}: write `{bare} {first}`, or drop {first} to copy {written} alone"
        ));
    }
    if let Some(Rename { name, tag: Some(tag) }) = rename {
        return Err(format!(
            "`=> {name}:{tag}` names one tag, but this line selects tags ({first}): write `=> {name}`; each selected tag keeps its name"
        ));
    }
    Ok(Some(TagSelection {
        tags: sel.tags,
        exclude: sel.exclude,
        semver: sel.semver,
        latest: sel.latest,
        max: sel.max.unwrap_or(DEFAULT_MAX),
    }))
}

fn unknown_option(tok: &str, name: &str) -> String {
    let bare = name.trim_start_matches('-').to_ascii_lowercase();
    let near = OPTIONS
        .iter()
        .map(|o| (strsim::osa_distance(&bare, o), *o))
        .filter(|(d, o)| *d <= if o.len() >= 6 { 2 } else { 1 })
        .min();
    match near {
        Some((_, o)) => format!("unknown option {tok:?}: did you mean --{o}?"),
        None => format!(
            "unknown option {tok:?}: images.txt knows --platform=os/arch[/variant] and, on a line without a tag, \
             --tags=REGEX, --exclude=REGEX, --semver=RANGE, --latest=N and --max=N"
        ),
    }
}

fn parse_rename(words: &[String]) -> Result<Rename, String> {
    let r = &words[0];
    if words.len() > 1 {
        return Err(format!("unexpected text after `=> {r}`"));
    }
    if r.is_empty() {
        return Err("`=>` needs a target NAME[:TAG]".into());
    }
    let (name, tag) = match r.split_once(':') {
        Some((n, t)) => (n, Some(t.to_string())),
        None => (r.as_str(), None),
    };
    let name = name.to_ascii_lowercase();
    reference::check_name(&name)?;
    if let Some(t) = &tag {
        reference::check_tag(t)?;
    }
    Ok(Rename { name, tag })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> Entry {
        let mut v = parse_with_warnings("images.txt", line).unwrap().entries;
        assert_eq!(v.len(), 1);
        v.remove(0)
    }

    fn err(text: &str) -> Vec<String> {
        parse_with_warnings("images.txt", text).unwrap_err().iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn plain_lines_comments_and_crlf() {
        let v = parse("images.txt", "# header\n\nnginx:alpine # web\r\n  bitnami/redis:latest\r\nbusybox").unwrap();
        let srcs: Vec<_> = v.iter().map(|e| (e.line, e.source.to_string())).collect();
        assert_eq!(
            srcs,
            [
                (3, "docker.io/library/nginx:alpine".to_string()),
                (4, "docker.io/bitnami/redis:latest".to_string()),
                (5, "docker.io/library/busybox:latest".to_string()),
            ]
        );
    }

    #[test]
    fn platforms_both_forms() {
        let e = one("--platform=linux/arm64 mysql:8.0");
        assert_eq!(e.platforms, vec!["linux/arm64".parse().unwrap()]);
        let e = one("--platform linux/amd64,linux/arm64 mysql:8.0");
        assert_eq!(e.platforms.len(), 2);
        let e = one("--platform=linux/arm64,linux/arm64/v8 x");
        assert_eq!(e.platforms.len(), 1, "duplicates fold");
    }

    #[test]
    fn rename_lowercases_name_keeps_tag() {
        let e = one("nginx:alpine => MyNginx:Stable");
        assert_eq!(e.rename, Some(Rename { name: "mynginx".into(), tag: Some("Stable".into()) }));
        let e = one("nginx:alpine=>web");
        assert_eq!(e.rename, Some(Rename { name: "web".into(), tag: None }));
    }

    #[test]
    fn all_errors_at_once_with_lines() {
        let errs = err("nginx\n--arch=arm64 nginx\nnginx;touch /tmp/x\n$(id)\n`id`\nnginx => \nnginx redis\n--platform=linux nginx\n--platform\nnginx => a/b");
        assert_eq!(errs.len(), 9, "{errs:#?}");
        assert!(errs[0].starts_with("images.txt:2: unknown option"), "{}", errs[0]);
        assert!(errs[1].starts_with("images.txt:3: invalid image reference"));
        assert!(errs[2].starts_with("images.txt:4: invalid image reference"));
        assert!(errs[3].starts_with("images.txt:5: invalid image reference"));
        assert!(errs[4].starts_with("images.txt:6: `=>` needs"));
        assert!(errs[5].starts_with("images.txt:7: unexpected"));
        assert!(errs[6].starts_with("images.txt:8: invalid platform"));
        assert!(errs[7].starts_with("images.txt:9: --platform needs a value"));
        assert!(errs[8].starts_with("images.txt:10: "), "{}", errs[8]);
    }

    #[test]
    fn hash_inside_a_token_is_not_a_comment() {
        // `#` only starts a comment at line start or after whitespace.
        assert!(parse("images.txt", "nginx#x").is_err());
    }

    fn warnings(text: &str) -> Vec<String> {
        parse_with_warnings("images.txt", text).unwrap().warnings.iter().map(|w| w.to_string()).collect()
    }

    fn first_err(line: &str) -> String {
        err(line).remove(0)
    }

    #[test]
    fn quotes_group_words_and_hide_comments_and_arrows() {
        assert_eq!(words("a 'b c' \"d e\"").unwrap().left, ["a", "b c", "d e"]);
        assert_eq!(words("--semver='>=1, <2' x").unwrap().left, ["--semver=>=1, <2", "x"]);
        assert_eq!(words("x --tags='a#b' # c").unwrap().left, ["x", "--tags=a#b"]);
        let w = words("x --tags='a=>b' => web").unwrap();
        assert_eq!((w.left, w.right), (vec!["x".to_string(), "--tags=a=>b".into()], Some(vec!["web".to_string()])));
        assert_eq!(words("x=>y").unwrap().right, Some(vec!["y".to_string()]));
        assert_eq!(words("''").unwrap().left, [""], "an empty quoted word is a word");
        assert_eq!(words("  # only a comment").unwrap(), Words::default());
        assert!(words("x --tags='a").unwrap_err().contains("unclosed ' quote"));
        assert!(words("a => b => c").unwrap_err().contains("one `=>`"));
        let e = one("nginx --semver='>=1.25, <2' # every 1.x from 1.25");
        assert_eq!(e.selection.unwrap().semver.unwrap().text(), ">=1.25, <2");
        let e = one(r#"nginx --tags="1\.27\..*" --tags='.*#x' => web # => not this"#);
        let s = e.selection.unwrap();
        assert_eq!(s.tags.iter().map(|p| p.text()).collect::<Vec<_>>(), ["1\\.27\\..*", ".*#x"]);
        assert_eq!(e.rename.unwrap().name, "web");
    }

    #[test]
    fn selecting_lines() {
        let e = one("nginx --semver=~1.27");
        assert_eq!(e.source.to_string(), "docker.io/library/nginx:latest", "the parser fills in latest");
        let s = e.selection.clone().unwrap();
        assert_eq!((s.latest, s.max, s.semver.unwrap().text()), (None, 100, "~1.27"));
        assert!(e.is_selecting());
        let e = one("--platform=linux/arm64 postgres --latest=3 --max=5 => pg");
        let s = e.selection.unwrap();
        assert_eq!((s.latest, s.max), (Some(3), 5));
        assert_eq!(e.platforms.len(), 1);
        let e = one("localhost:5000/team/app --exclude='.*-rc.*' --exclude=dev");
        assert_eq!(e.selection.unwrap().exclude.len(), 2);
        // Plain lines are untouched.
        let e = one("nginx:1.27 --platform=linux/arm64");
        assert_eq!((&e.selection, &e.selected_by, e.key()), (&None, &None, "1".to_string()));
    }

    #[test]
    fn selection_errors_all_at_once() {
        let d = "a".repeat(64);
        let text = format!(
            "nginx:1.27 --latest=2\nnginx@sha256:{d} --semver=1\nnginx --latest=2 => web:stable\nnginx --latest=0\n\
             nginx --tags='('\nnginx --semver='>=x'\nnginx --max=5\nnginx --latest=two\nnginx --semver=1 --semver=2\n\
             nginx --tags 1.27\nlocalhost:5000/nginx:1 --tags=x\nnginx --latest=-1"
        );
        let errs = err(&text);
        assert_eq!(errs.len(), 12, "{errs:#?}");
        let expect = [
            "images.txt:1: --latest=2 selects tags, so the source names no tag: write `nginx --latest=2`",
            "images.txt:2: --semver=1 selects tags, so the source names no digest: write `nginx --semver=1`",
            "images.txt:3: `=> web:stable` names one tag, but this line selects tags (--latest=2): write `=> web`",
            "images.txt:4: --latest=0: needs a whole number of at least 1",
            "images.txt:5: invalid --tags regex \"(\": ",
            "images.txt:6: invalid --semver range \">=x\": ",
            "images.txt:7: --max caps a tag selection",
            "images.txt:8: --latest=two: needs a whole number",
            "images.txt:9: --semver given twice",
            "images.txt:10: --tags needs a value: write --tags=REGEX",
            "images.txt:11: --tags=x selects tags, so the source names no tag: write `localhost:5000/nginx --tags=x`",
            "images.txt:12: --latest=-1: needs a whole number",
        ];
        for (e, want) in errs.iter().zip(expect) {
            assert!(e.starts_with(want), "{e}\n  wanted {want}");
        }
    }

    #[test]
    fn readme_examples_parse() {
        let readme = include_str!("../README.md");
        let section = &readme[readme.find("### Selecting tags").unwrap()..];
        let block = section.split("```").nth(1).unwrap();
        let p = parse_with_warnings("README", block).unwrap();
        assert_eq!(p.entries.len(), 6);
        assert!(p.entries.iter().all(Entry::is_selecting) && p.warnings.is_empty());
        assert_eq!(p.entries[0].selection.as_ref().unwrap().to_string(), "--semver='~1.27'");
    }

    #[test]
    fn plain_parse_refuses_selections() {
        let e: Vec<String> = parse("arguments", "nginx:1\nnginx --latest=3").unwrap_err().iter().map(|e| e.to_string()).collect();
        assert_eq!(e, ["arguments:2: tag selection (--latest=3) needs the registry's tag list, which this command does not read"]);
    }

    #[test]
    fn expanded_entries() {
        let e = one("--platform=linux/arm64 ghcr.io/a/b --tags='v.*' => web");
        let c = e.with_selected_tag("v1.2").unwrap();
        assert_eq!(c.source.to_string(), "ghcr.io/a/b:v1.2");
        assert_eq!((c.line, &c.platforms, &c.rename), (1, &e.platforms, &e.rename));
        assert_eq!(c.selection, None);
        assert_eq!(c.selected_by.as_deref(), Some("--tags='v.*'"));
        assert_eq!(c.key(), "1:v1.2");
        assert!(e.with_selected_tag("café").is_err());
        assert!(c.with_selected_tag("v1.3").is_err(), "only a selecting entry expands");
    }

    #[test]
    fn legacy_options_warn_once_per_line() {
        let w = warnings("nginx:latest --disable-content-trust\n-q --quiet redis --pull-always\nbusybox\n--disable-content-trust=false x");
        assert_eq!(w.len(), 3, "{w:#?}");
        assert!(w[0].starts_with("images.txt:1: ignoring --disable-content-trust: a docker pull option"), "{}", w[0]);
        assert!(w[1].starts_with("images.txt:2: ignoring -q --quiet --pull-always: "), "{}", w[1]);
        assert!(w[2].starts_with("images.txt:4: ignoring --disable-content-trust=false"), "{}", w[2]);
        assert!(first_err("x --pull-always=yes").contains("takes no value"));
        assert!(first_err("x --disable-content-trust=maybe").contains("takes no value"));
        // The plain parse keeps the entries.
        assert_eq!(parse("f", "nginx -q").unwrap()[0].source.to_string(), "docker.io/library/nginx:latest");
    }

    #[test]
    fn all_tags_points_to_selection() {
        for line in ["nginx -a", "--all-tags nginx"] {
            let e = first_err(line);
            assert!(e.contains("is not supported") && e.contains("--latest=3"), "{e}");
        }
    }

    #[test]
    fn near_misses_get_a_suggestion() {
        for (line, want) in [
            ("--platfrom=linux/arm64 x", "--platform"),
            ("x --tag=1.27", "--tags"),
            ("x --semvar=1", "--semver"),
            ("x --lastest=3", "--latest"),
            ("x --exlude=a", "--exclude"),
            ("x -platform=linux/amd64", "--platform"),
            ("x --Platform=linux/amd64", "--platform"),
            ("x --maxx=3", "--max"),
        ] {
            let e = first_err(line);
            assert!(e.ends_with(&format!("did you mean {want}?")), "{line}: {e}");
        }
        for line in ["x --arch=arm64", "x --pull=always", "x -p", "x --help"] {
            let e = first_err(line);
            assert!(e.contains("unknown option") && !e.contains("did you mean"), "{line}: {e}");
            assert!(e.contains("--platform=os/arch"), "{e}");
        }
        assert_eq!(strsim::osa_distance("platfrom", "platform"), 1);
        assert_eq!(strsim::osa_distance("", "max"), 3);
        assert_eq!(strsim::osa_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn old_example_file_runs_as_it_is() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/seed/images.example.txt")).unwrap();
        let p = parse_with_warnings("images.example.txt", &text).unwrap();
        let w: Vec<String> = p.warnings.iter().map(|w| w.to_string()).collect();
        assert_eq!(w.len(), 2, "{w:#?}");
        assert!(w[0].contains("--disable-content-trust") && w[1].contains("--pull-always"), "{w:#?}");
        assert!(p.entries.len() >= 8);
        let mysql = p.entries.iter().find(|e| e.source.repository() == "library/mysql").unwrap();
        assert_eq!(mysql.platforms, vec!["linux/arm64".parse().unwrap()]);
        // No two lines land on one target.
        let names: std::collections::HashSet<_> = p.entries.iter().map(|e| crate::naming::target_name(e, crate::naming::Naming::Flat)).collect();
        assert_eq!(names.len(), p.entries.len());
    }

    #[test]
    fn bom_non_ascii_and_caps() {
        let v = parse("images.txt", "\u{feff}nginx:alpine\n").unwrap();
        assert_eq!(v[0].source.to_string(), "docker.io/library/nginx:alpine");
        assert_eq!(strip_bom("\u{feff}A=1"), "A=1");
        assert_eq!(strip_bom("A=1\u{feff}"), "A=1\u{feff}");
        let e = first_err("nginx:alpine\nnginx:café");
        assert!(e.starts_with("images.txt:2: invalid image reference \"nginx:café\": only ASCII"), "{e}");
        assert!(first_err("nginx => web:café").starts_with("images.txt:1: invalid tag"));
        // Non-ASCII in comments is fine.
        assert_eq!(parse("images.txt", "# 镜像\nnginx # 注释").unwrap().len(), 1);

        let big = "nginx:alpine\n".repeat(MAX_FILE_BYTES / 13 + 1);
        let e = err(&big);
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("images.txt: larger than 1024 KiB"), "{}", e[0]);
        let just = format!("#{}\n", "x".repeat(MAX_FILE_BYTES - 2));
        assert_eq!(parse("images.txt", &just), Ok(vec![]), "at the cap: parsed");
        let e = first_err(&"x".repeat(5000));
        assert!(e.contains("longer than any valid reference"), "{e}");

        let many: Vec<String> = (0..120).map(|i| format!("e{i}")).collect();
        let shown = limit_errors(many);
        assert_eq!(shown.len(), 51);
        assert_eq!(shown[49], "e49");
        assert_eq!(shown[50], "… and 70 more errors");
        assert_eq!(limit_errors(vec!["a".into(); 50]).len(), 50);
        assert_eq!(limit_errors(vec!["a".into(); 51])[50], "… and 1 more error");
    }

    #[test]
    fn capped_read() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("ok.txt");
        std::fs::write(&ok, "\u{feff}nginx\n").unwrap();
        assert_eq!(parse("f", &read_capped(&ok).unwrap()).unwrap().len(), 1);
        let big = dir.path().join("big.txt");
        std::fs::write(&big, vec![b'a'; MAX_FILE_BYTES + 10]).unwrap();
        assert!(read_capped(&big).unwrap_err().to_string().starts_with("larger than 1024 KiB"));
        let bin = dir.path().join("bin.txt");
        std::fs::write(&bin, [0xff, 0xfe, 0]).unwrap();
        assert!(read_capped(&bin).unwrap_err().to_string().contains("UTF-8"));
    }
}
