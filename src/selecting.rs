//! Selecting lines in a run (issue 12): each source repository's tag list is
//! read once (lines on one repository share it), each line's selection is
//! applied (`tag_selection::select`) and the line becomes one entry per tag
//! (`naming::expand`), with its destinations. A line whose listing, selection
//! or destinations fail fails alone, with its line number; other lines go on.
//!
//! Tags from a registry are untrusted: `select` keeps only valid ones, and
//! everything said here goes out through the UI, which escapes it.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::config::Target;
use crate::failure::Failure;
use crate::images::Entry;
use crate::plan::{self, Destinations};
use crate::ctx::Ctx;
use crate::diagnose::Classify;
use crate::family::Family;
use crate::inspect::Inspector;
use crate::registry::{Counts, Repository, Tally};
use crate::report::{EntryReport, TagList};
use crate::step_error::{Cause, StepError};
use crate::tag_selection::{self, SelectError, Selected};

/// How many tags a note names before it says "and N more".
const NAMED: usize = 10;

/// The run's entries with selecting lines expanded.
#[derive(Debug, Default)]
pub struct Expanded {
    /// Plain entries and the entries selections expanded into, in line order.
    pub entries: Vec<Entry>,
    /// One per entry.
    pub dests: Vec<Destinations>,
    /// Selecting lines that failed (exit 1), as report entries without targets.
    pub failed: Vec<EntryReport>,
    pub tag_lists: Vec<TagList>,
    /// What to say once per line (info output): the selected tags, tags that
    /// are not versions, invalid tags dropped, tags an explicit line owns.
    pub notes: Vec<String>,
}

/// What the listing of one repository gave.
type Listing = (Result<Vec<String>, Failure>, Counts);

/// Lists every repository that `entries`' selecting lines read, each once,
/// through the run's reader (its retries, its 429 handling), `jobs` at a time.
pub fn list_all(entries: &[Entry], inspector: &dyn Inspector, ctx: &Ctx, jobs: usize) -> BTreeMap<Repository, Listing> {
    let mut repos: Vec<(Repository, &Entry)> = entries.iter().filter(|e| e.is_selecting()).map(|e| (Repository::of(&e.source), e)).collect();
    repos.sort_by(|a, b| a.0.cmp(&b.0));
    repos.dedup_by(|a, b| a.0 == b.0);
    let listings = crate::concurrency::parallel_map(
        &repos,
        jobs,
        ctx.cancel,
        |(repo, e)| {
            let tally = Tally::default();
            let tags = inspector.list_tags(&ctx.clone().requests(&tally), &e.source).map_err(|err| listing_failure(repo, &err));
            (tags, tally.snapshot())
        },
        |_| (Err(Failure::new("interrupted before the tag list was read", "run imgsync again")), Counts::default()),
    );
    repos.into_iter().map(|(r, _)| r).zip(listings).collect()
}

/// A listing error in user terms: what failed, and the fix (the read path's
/// hint, said for a tag list where that is clearer).
fn listing_failure(repo: &Repository, e: &StepError) -> Failure {
    let f = Failure::from_step(e);
    let hint = match (&e.cause, e.family()) {
        (Cause::TooLong(_), _) => {
            "a partial list could pick the wrong tags (the wrong latest): list the tags you need on their own lines instead".to_string()
        }
        (Cause::Setup(_), _) => "fix the docker config named above".to_string(),
        (_, Family::NotFound) => "check that the repository exists at the source; for a private source, log in to it".to_string(),
        (_, Family::Network | Family::TokenEndpoint | Family::Other) => {
            "check that the registry is reachable from here (`imgsync doctor` checks each selecting line)".to_string()
        }
        _ => f.hint,
    };
    let error = match &e.cause {
        Cause::Setup(m) => m.clone(),
        _ => format!("listing the tags of {repo}: {e}"),
    };
    Failure::new(error, hint)
}

/// The selection of one selecting entry over its repository's listing.
pub fn select_line(entry: &Entry, listing: Option<&Listing>) -> Result<Selected, Failure> {
    let sel = entry.selection.as_ref().expect("a selecting entry");
    let tags = match listing {
        Some((Ok(tags), _)) => tags,
        Some((Err(f), _)) => return Err(f.clone()),
        None => return Err(Failure::new("the tag list was not read", "run imgsync again")),
    };
    tag_selection::select(sel, tags).map_err(|e| {
        let hint = match e {
            SelectError::NoMatch { .. } => {
                "check the selection against the tags above: --tags and --exclude match whole tags, and without \
                 --tags, --semver and --latest only count plain versions (no -suffix)"
            }
            SelectError::TooMany { .. } => "narrow the selection, or raise --max=N on the line",
        };
        Failure::new(format!("{} {sel}: {e}", entry.source.name()), hint)
    })
}

/// Expands the selecting lines among `entries` (the run's, after `--shard`).
/// `elsewhere` are the plain entries outside the shard: a selected tag that one
/// of them lists explicitly is theirs, in every shard.
pub fn expand(
    file: &str,
    entries: &[Entry],
    elsewhere: &[Entry],
    targets: &[Target],
    listings: &BTreeMap<Repository, Listing>,
) -> Expanded {
    let mut out = Expanded::default();
    let mut selected: HashMap<usize, Vec<String>> = HashMap::new();
    let mut failures: Vec<(&Entry, Failure)> = Vec::new();
    for e in entries.iter().filter(|e| e.is_selecting()) {
        let repo = Repository::of(&e.source);
        match select_line(e, listings.get(&repo)) {
            Ok(s) => {
                out.notes.extend(notes(file, e, &s));
                selected.insert(e.line, s.tags);
            }
            Err(f) => failures.push((e, f)),
        }
    }
    for (repo, (tags, requests)) in listings {
        let lines = entries.iter().filter(|e| e.is_selecting() && Repository::of(&e.source) == *repo).map(|e| e.line).collect();
        out.tag_lists.push(TagList {
            repository: repo.to_string(),
            lines,
            tags: tags.as_ref().map_or(0, Vec::len),
            requests: *requests,
            error: tags.as_ref().err().map(|f| f.error.clone()),
        });
    }
    // Explicit lines of other shards take part only in the explicit-wins rule.
    let outside: HashSet<usize> = elsewhere.iter().map(|e| e.line).collect();
    let all: Vec<Entry> = entries.iter().chain(elsewhere.iter().filter(|e| !e.is_selecting())).cloned().collect();
    let namings: Vec<crate::naming::Naming> = targets.iter().map(|t| t.naming).collect();
    let expansion = crate::naming::expand(&all, &selected, &namings);
    for d in &expansion.dropped {
        out.notes.push(format!(
            "{file}:{}: tag {} is left to line {}, which lists the same target explicitly",
            d.line, d.tag, d.explicit_line
        ));
    }
    let mut expanded: Vec<Entry> = expansion.entries.into_iter().filter(|e| !outside.contains(&e.line)).collect();
    // Destinations: a line in error (two selections on one target, a bad
    // name) fails alone; the others are checked again without it.
    loop {
        match plan::destinations(file, &expanded, targets) {
            Ok(d) => {
                out.dests = d;
                break;
            }
            Err(errors) => {
                let mut by_line: BTreeMap<usize, Vec<String>> = BTreeMap::new();
                for e in errors {
                    by_line.entry(e.line).or_default().push(e.message);
                }
                for (line, messages) in by_line {
                    if let Some(e) = entries.iter().find(|e| e.line == line) {
                        let f = Failure::new(messages.join("; "), "rename one of the lines with `=> NAME`, or narrow a selection");
                        failures.push((e, f));
                    }
                    expanded.retain(|e| e.line != line);
                }
            }
        }
    }
    out.entries = expanded;
    failures.sort_by_key(|(e, _)| e.line);
    out.failed = failures.into_iter().map(|(e, f)| failed_report(file, e, f)).collect();
    out
}

fn failed_report(file: &str, e: &Entry, f: Failure) -> EntryReport {
    let selected_by = e.selection.as_ref().map(ToString::to_string).or_else(|| e.selected_by.clone());
    EntryReport {
        line: e.line,
        source: if e.is_selecting() { e.source.name() } else { e.source.to_string() },
        selected_by,
        platforms: e.platforms.iter().map(ToString::to_string).collect(),
        targets: Vec::new(),
        error: Some(format!("{file}:{}: {}", e.line, f.error)),
        hint: Some(f.hint),
        docker_calls: 0,
        requests: Default::default(),
    }
}

/// `a, b, c and 7 more`.
fn named(tags: &[String]) -> String {
    let mut s = tags.iter().take(NAMED).cloned().collect::<Vec<_>>().join(", ");
    if tags.len() > NAMED {
        s.push_str(&format!(" and {} more", tags.len() - NAMED));
    }
    s
}

/// What a line's selection did, said once.
fn notes(file: &str, e: &Entry, s: &Selected) -> Vec<String> {
    let sel = e.selection.as_ref().expect("a selecting entry");
    let at = format!("{file}:{}", e.line);
    let mut out = vec![format!("{at}: {} {sel} selects {} tag{}: {}", e.source.name(), s.tags.len(), if s.tags.len() == 1 { "" } else { "s" }, named(&s.tags))];
    if !s.not_versions.is_empty() {
        out.push(format!(
            "{at}: {} tag{} not version{}, so --semver/--latest ignored {}: {}",
            s.not_versions.len(),
            if s.not_versions.len() == 1 { " is" } else { "s are" },
            if s.not_versions.len() == 1 { "" } else { "s" },
            if s.not_versions.len() == 1 { "it" } else { "them" },
            named(&s.not_versions)
        ));
    }
    if s.invalid > 0 {
        out.push(format!("{at}: dropped {} tag{} the registry listed that break the tag grammar", s.invalid, if s.invalid == 1 { "" } else { "s" }));
    }
    out
}

/// `imgsync doctor`'s look at one selecting line: whether its source can be
/// listed (auth, existence) and what the selection picks today.
pub fn check_line(inspector: &dyn Inspector, ctx: &Ctx, entry: &Entry) -> Result<String, String> {
    let listings = list_all(std::slice::from_ref(entry), inspector, ctx, 1);
    let (listing, requests) = listings.values().next().expect("one selecting line lists one repository");
    let sel = entry.selection.as_ref().expect("a selecting entry");
    let what = format!("{} {sel}", entry.source.name());
    let listed = match listing {
        Ok(tags) => format!("{} tags listed in {} request{}", tags.len(), requests.total(), if requests.total() == 1 { "" } else { "s" }),
        Err(f) => return Err(format!("{what}: {} — {}", f.error, f.hint)),
    };
    match select_line(entry, listings.values().next()) {
        Ok(s) => Ok(format!("{what}: {listed}; selects {}", named(&s.tags))),
        Err(f) => Err(format!("{listed}; {} — {}", f.error, f.hint)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TargetKind;
    use crate::images;
    use crate::inspect::parse::Inspection;
    use crate::reference::ImageRef;
    use crate::registry::{self, ErrorKind};
    use std::sync::atomic::AtomicBool;
    use std::sync::Mutex;

    fn ctx<'a>(cancel: &'a AtomicBool, limits: &crate::config::Limits) -> Ctx<'a> {
        static NO_DOCKER: NoDocker = NoDocker;
        Ctx::new(&NO_DOCKER, limits, cancel, &|_| {})
    }

    /// Tag listing never spawns docker.
    struct NoDocker;

    impl crate::docker::Docker for NoDocker {
        fn run(&self, cmd: &crate::docker::Cmd) -> Result<crate::docker::Output, crate::docker::DockerError> {
            panic!("no docker call expected: {}", cmd.display())
        }
    }

    /// A reader with tag lists only (the seam a registry client sits behind).
    trait ListsOnly: Sync {
        fn list(&self, repo: &Repository, tally: &Tally) -> Result<Vec<String>, registry::Error>;
    }

    struct Reader<'l>(&'l dyn ListsOnly);

    impl Inspector for Reader<'_> {
        fn inspect(&self, _: &Ctx, r: &ImageRef, _: bool) -> Result<Option<Inspection>, StepError> {
            Err(StepError::setup(format!("inspect {r}"), "a tag lister reads no manifests"))
        }
        fn fill_configs(&self, _: &Ctx, r: &ImageRef, _: &mut Inspection, _: &[String]) -> Result<(), StepError> {
            Err(StepError::setup(format!("inspect {r}"), "a tag lister reads no manifests"))
        }
        fn list_tags(&self, ctx: &Ctx, repository: &ImageRef) -> Result<Vec<String>, StepError> {
            let own = Tally::default();
            self.0.list(&Repository::of(repository), ctx.requests.unwrap_or(&own)).map_err(|e| crate::inspect::http::step_error(&e))
        }
    }

    fn list_with(entries: &[Entry], lists: &dyn ListsOnly, jobs: usize) -> BTreeMap<Repository, Listing> {
        let cancel = AtomicBool::new(false);
        list_all(entries, &Reader(lists), &ctx(&cancel, &crate::config::Limits::default()), jobs)
    }

    /// Tag lists from memory; counts one request per listing.
    struct Lists {
        repos: HashMap<String, Result<Vec<String>, ErrorKind>>,
        asked: Mutex<Vec<String>>,
    }

    impl Lists {
        fn new(repos: &[(&str, Result<&str, ErrorKind>)]) -> Lists {
            let repos = repos
                .iter()
                .map(|(r, t)| (r.to_string(), t.clone().map(|t| t.split_whitespace().map(str::to_string).collect())))
                .collect();
            Lists { repos, asked: Mutex::new(Vec::new()) }
        }
    }

    impl ListsOnly for Lists {
        fn list(&self, repo: &Repository, tally: &Tally) -> Result<Vec<String>, registry::Error> {
            self.asked.lock().unwrap().push(repo.to_string());
            tally.add(registry::counts::Kind::Get);
            match self.repos.get(&repo.to_string()) {
                Some(Ok(t)) => Ok(t.clone()),
                Some(Err(k)) => {
                    // The status the client sets with each kind.
                    let status = match k {
                        ErrorKind::Unauthorized => Some(401),
                        ErrorKind::TooManyPages(_) => None,
                        _ => Some(404),
                    };
                    Err(registry::Error::new("GET", &format!("http://{}/v2/{}/tags/list", repo.host, repo.name), status, k.clone()))
                }
                None => Err(registry::Error::new("GET", "http://x/v2/x/tags/list", Some(404), ErrorKind::NotFound)),
            }
        }
    }

    fn target() -> Target {
        Target { kind: TargetKind::Custom, registry: "r:5000".into(), namespace: "ns".into(), username: None, password: None, naming: crate::naming::Naming::Flat }
    }

    fn run(text: &str, lists: &Lists) -> Expanded {
        let entries = images::parse_with_warnings("images.txt", text).unwrap().entries;
        let listings = list_with(&entries, lists, 4);
        expand("images.txt", &entries, &[], &[target()], &listings)
    }

    fn keys(x: &Expanded) -> Vec<String> {
        x.entries.iter().map(Entry::key).collect()
    }

    #[test]
    fn lines_on_one_repository_share_one_listing() {
        let lists = Lists::new(&[("docker.io/library/nginx", Ok("1.26.0 1.27.0 1.27.1 1.27.1-alpine latest 1.28.0"))]);
        let x = run("busybox:1\nnginx --semver=~1.27\nnginx --latest=1 => web\nnginx --tags='.*-alpine' --latest=1 => web", &lists);
        assert_eq!(keys(&x), ["1", "2:1.27.0", "2:1.27.1", "3:1.28.0", "4:1.27.1-alpine"]);
        assert_eq!(lists.asked.lock().unwrap().len(), 1);
        assert_eq!(x.dests.len(), 5);
        assert_eq!(x.dests[3].refs, ["r:5000/ns/web:1.28.0"]);
        assert!(x.failed.is_empty());
        assert_eq!(x.tag_lists, [TagList { repository: "docker.io/library/nginx".into(), lines: vec![2, 3, 4], tags: 6, requests: Counts { head: 0, get: 1, token: 0 }, error: None }]);
        assert!(x.notes.iter().any(|n| n == "images.txt:2: docker.io/library/nginx --semver='~1.27' selects 2 tags: 1.27.0, 1.27.1"), "{:#?}", x.notes);
        assert!(x.notes.iter().any(|n| n.starts_with("images.txt:2: 1 tag is not version") && n.ends_with("latest")), "{:#?}", x.notes);
        assert_eq!(x.entries[1].selected_by.as_deref(), Some("--semver='~1.27'"));
    }

    #[test]
    fn a_failing_line_fails_alone() {
        let lists = Lists::new(&[
            ("docker.io/library/nginx", Ok("1.27.0 1.27.1 latest")),
            ("docker.io/library/private", Err(ErrorKind::Unauthorized)),
            ("docker.io/library/huge", Err(ErrorKind::TooManyPages(100))),
        ]);
        let x = run("nginx --semver=~9\nnginx --latest=2\nprivate --latest=1\nhuge --latest=1\nnginx --tags='1\\..*' --max=1\nredis:7", &lists);
        assert_eq!(keys(&x), ["2:1.27.0", "2:1.27.1", "6"]);
        let failed: Vec<(usize, &str, &str)> = x.failed.iter().map(|f| (f.line, f.error.as_deref().unwrap(), f.hint.as_deref().unwrap())).collect();
        assert_eq!(failed.len(), 4, "{failed:#?}");
        assert!(failed[0].1.starts_with("images.txt:1: docker.io/library/nginx --semver='~9': no tag matches the selection; the source has 3 tags, e.g. 1.27.1, 1.27.0, latest"), "{}", failed[0].1);
        assert!(failed[1].1.contains("unauthorized") && failed[1].2.contains("username"), "{failed:?}");
        assert!(failed[2].1.contains("still a next page after 100 pages") && failed[2].2.contains("partial list"), "{failed:?}");
        assert!(failed[3].1.contains("more than --max=1"), "{failed:?}");
        assert_eq!(x.failed[0].source, "docker.io/library/nginx");
        assert_eq!(x.failed[0].selected_by.as_deref(), Some("--semver='~9'"));
        assert!(x.failed[0].targets.is_empty() && x.failed[0].failed());
    }

    #[test]
    fn explicit_lines_win_even_in_another_shard_and_collisions_fail_their_line() {
        let lists = Lists::new(&[("docker.io/library/nginx", Ok("1.27.0 1.27.1")), ("docker.io/library/httpd", Ok("1.27.1"))]);
        let all = images::parse_with_warnings("images.txt", "nginx --semver=~1.27\nnginx:1.27.1\nhttpd --latest=1 => nginx\nredis:7").unwrap().entries;
        let (mine, elsewhere): (Vec<Entry>, Vec<Entry>) = all.into_iter().partition(|e| e.line != 2);
        let listings = list_with(&mine, &lists, 2);
        let x = expand("images.txt", &mine, &elsewhere, &[target()], &listings);
        assert_eq!(keys(&x), ["1:1.27.0", "4"], "line 2 is another shard's and owns nginx:1.27.1");
        assert!(x.notes.iter().any(|n| n == "images.txt:1: tag 1.27.1 is left to line 2, which lists the same target explicitly"), "{:#?}", x.notes);
        // httpd 1.27.1 => nginx:1.27.1 is also line 2's target: dropped, so line 3 selects nothing left.
        assert!(x.failed.is_empty(), "{:#?}", x.failed);
        let x = run("nginx --semver=~1.27 => web\nhttpd --latest=1 => web\nredis:7", &lists);
        assert_eq!(keys(&x), ["1:1.27.0", "1:1.27.1", "3"]);
        assert_eq!(x.failed.len(), 1);
        assert!(x.failed[0].error.as_deref().unwrap().contains("line 1 and line 2 both sync to r:5000/ns/web:1.27.1"), "{:?}", x.failed[0]);
    }

    #[test]
    fn no_client_fails_every_selecting_line() {
        let entries = images::parse_with_warnings("images.txt", "nginx --latest=1\nredis:7").unwrap().entries;
        let cancel = AtomicBool::new(false);
        let none = crate::inspect::fallback::ReadPath::new(
            crate::inspect::fallback::Route::Docker { tags: Err("bad docker config".into()) },
            crate::inspect::docker::Reader::ManifestCli.boxed(),
            &|| {},
        );
        let listings = list_all(&entries, &none, &ctx(&cancel, &crate::config::Limits::default()), 1);
        let x = expand("images.txt", &entries, &[], &[target()], &listings);
        assert_eq!(keys(&x), ["2"]);
        assert!(x.failed[0].error.as_deref().unwrap().contains("bad docker config"));
    }

    #[test]
    fn failed_lines_join_the_report_in_line_order() {
        let lists = Lists::new(&[("docker.io/library/nginx", Ok("1.27.0 latest"))]);
        let x = run("nginx --semver=~9\nredis:7", &lists);
        let plain = EntryReport { line: 2, source: "docker.io/library/redis:7".into(), selected_by: None, platforms: vec![], targets: vec![], error: None, hint: None, docker_calls: 1, requests: Default::default() };
        let r = crate::report::Report::new("daemon", vec![plain]).with_selections(x.failed, x.tag_lists);
        assert_eq!(r.entries.iter().map(|e| e.line).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(r.summary.failed, 1);
        assert!(r.failed());
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["entries"][0]["selected_by"], "--semver='~9'");
        assert!(v["entries"][1]["selected_by"].is_null());
        assert_eq!(v["tag_lists"][0]["requests"]["get"], 1);
        let a = crate::github::failure_annotations("images.txt", &r);
        assert_eq!(a.len(), 1);
        assert!(a[0].starts_with("::error file=images.txt,line=1::docker.io/library/nginx: images.txt:1: "), "{}", a[0]);
        // No selecting line: no tag_lists key at all.
        let v: serde_json::Value = serde_json::from_str(&crate::report::Report::new("daemon", vec![]).to_json()).unwrap();
        assert!(v.get("tag_lists").is_none());
    }

    #[test]
    fn doctor_line() {
        let lists = Lists::new(&[("docker.io/library/nginx", Ok("1.27.0 1.27.1")), ("docker.io/library/gone", Err(ErrorKind::NotFound))]);
        let e = |t: &str| images::parse_with_warnings("f", t).unwrap().entries.remove(0);
        let cancel = AtomicBool::new(false);
        let limits = crate::config::Limits::default();
        let c = ctx(&cancel, &limits);
        assert_eq!(check_line(&Reader(&lists), &c, &e("nginx --latest=1")).unwrap(), "docker.io/library/nginx --latest=1: 2 tags listed in 1 request; selects 1.27.1");
        assert!(check_line(&Reader(&lists), &c, &e("gone --latest=1")).unwrap_err().contains("check that the repository exists"));
        assert!(check_line(&Reader(&lists), &c, &e("nginx --semver=~2")).unwrap_err().contains("no tag matches"));
    }
}
