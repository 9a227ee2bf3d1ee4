//! The run's signature steps (issue 23): find the attachments of each
//! mirrored digest at the source (one HEAD per kind: `.sig`, `.att`, `.sbom`
//! and the referrers fallback tag), decide per target (one HEAD per found
//! one; GETs only where a referrers index must be compared), then write what
//! differs through `imagetools create`, byte for byte. What the names mean
//! and the decisions themselves are in `src/signatures.rs`.

use std::sync::OnceLock;

use super::Run;
use crate::plan::{Decision, EntryPlan, TargetPlan};
use crate::ctx::Ctx;
use crate::engine::imagetools;
use crate::failure::Failure;
use crate::family::Family;
use crate::reference::ImageRef;
use crate::signatures::{self as sig, Action, Attachment, Counts, FallbackContent, Kind, NotCopied, Referrers};
use crate::state::PairKey;

/// One attachment the source has, shared by the entry's targets.
pub(super) struct Found {
    kind: Kind,
    subject: String,
    tag: String,
    digest: String,
    /// The source's referrers index, read once when a target needs it.
    index: OnceLock<Result<Option<Referrers>, Failure>>,
}

/// What the source holds for an entry's mirrored digests.
pub(super) type Sources = Result<Vec<Found>, Failure>;

impl Run<'_> {
    /// The attachments of each up-to-date target's image (the no-op path:
    /// 4 HEADs per mirrored digest at the source, one per found one at the target).
    /// `target_digests`: what the HEADs found, by target, when they differ from the source's.
    pub(super) fn plan_up_to_date_signatures(&self, ctx: &Ctx, p: &mut EntryPlan, source_digest: &str, target_digests: &[Option<String>]) {
        if !self.options.signatures {
            return;
        }
        let src = &p.entry.source;
        let mut found: Vec<(Vec<String>, Sources)> = Vec::new();
        for (t, seen) in p.targets.iter_mut().zip(target_digests) {
            if t.decision != Decision::UpToDate {
                continue;
            }
            if !self.inspector.head_first(src) || !self.inspector.head_first(&t.reference) {
                self.not_copied(NotCopied::DockerReadPath);
                continue;
            }
            let target_digest = seen.clone().or_else(|| t.verified.clone()).unwrap_or_else(|| source_digest.to_string());
            let subjects: Vec<String> = match sig::subject(p.entry.platforms.len(), source_digest, &target_digest) {
                Ok(s) => s.into_iter().collect(),
                Err(why) => {
                    self.not_copied(why);
                    Vec::new()
                }
            };
            if subjects.is_empty() {
                t.signatures = Some(sig::Plan::default());
                continue;
            }
            let i = found.iter().position(|(s, _)| *s == subjects).unwrap_or_else(|| {
                let sources = self.find_signatures(ctx, src, &subjects);
                found.push((subjects, sources));
                found.len() - 1
            });
            t.signatures = Some(self.plan_signatures(ctx, src, &t.reference, &found[i].1));
        }
    }

    /// After `t`'s image was copied as `pushed`: the attachments of the
    /// pushed digest (when it is the source's) and of every copied child.
    pub(super) fn signatures_after_copy(&self, ctx: &Ctx, p: &EntryPlan, t: &TargetPlan, pushed: &str) -> Option<(Counts, Option<Failure>)> {
        let insp = p.inspection.as_ref().filter(|_| self.options.signatures)?;
        let src = &p.entry.source;
        if !self.inspector.head_first(src) || !self.inspector.head_first(&t.reference) {
            self.not_copied(NotCopied::DockerReadPath);
            return None;
        }
        let mut subjects = Vec::new();
        if insp.digest.as_deref() == Some(pushed) || p.selected.iter().any(|i| i.digest == pushed) {
            subjects.push(pushed.to_string());
        } else {
            self.not_copied(NotCopied::DigestChanged);
        }
        if insp.index {
            subjects.extend(p.selected.iter().map(|i| i.digest.clone()).filter(|d| d != pushed));
        }
        let found = self.find_signatures(ctx, src, &subjects);
        let plan = self.plan_signatures(ctx, src, &t.reference, &found);
        let (mut counts, mut first) = self.copy_signatures(ctx, src, &t.reference, &plan);
        // Referrers the source lists through its referrers API (asked on copies only).
        for subject in &subjects {
            let (c, f) = self.carry_api_referrers(ctx, src, &t.reference, subject);
            counts += c;
            if let Some(f) = f {
                first.get_or_insert(signature_failure(&f));
            }
        }
        Some((counts, first))
    }

    /// The referrers the source's API lists for `subject` (one GET; none
    /// without the API), carried to `target`: each manifest by digest, then
    /// listed where the target finds them: its own referrers API, else its
    /// fallback tag (joined with what that lists). Counted as one attachment.
    fn carry_api_referrers(&self, ctx: &Ctx, source: &ImageRef, target: &ImageRef, subject: &str) -> (Counts, Option<Failure>) {
        let failed = |f: Failure| (Counts { found: 1, failed: 1, ..Counts::default() }, Some(f));
        let listed = match self.inspector.referrers(ctx, source, subject) {
            Ok(Some(bytes)) => match sig::read_fallback(&bytes) {
                Ok(FallbackContent::Referrers(r)) if !r.descriptors.is_empty() => r,
                Ok(_) => return (Counts::default(), None),
                Err(e) => return failed(Failure::new(format!("{}: its referrers API answered what is not an index ({e})", source.name()), "report this; meanwhile set SIGNATURES=off")),
            },
            Ok(None) => return (Counts::default(), None),
            Err(e) => return failed(Failure::from_step(&e)),
        };
        let Some(tag) = Kind::Referrers.tag(subject) else { return (Counts::default(), None) };
        // Where the target lists referrers now: its API, else its fallback tag.
        let (api, ours) = match self.inspector.referrers(ctx, target, subject) {
            Ok(Some(bytes)) => (true, sig::read_fallback(&bytes).ok()),
            Ok(None) => {
                let at = match target.with_tag(&tag) {
                    Ok(r) => r,
                    Err(m) => return failed(Failure::new(m, "report this")),
                };
                match self.inspector.raw_manifest(ctx, &at) {
                    Ok(m) => (false, m.map(|m| sig::read_fallback(&m.bytes).unwrap_or(FallbackContent::Image))),
                    Err(e) => return failed(Failure::from_step(&e)),
                }
            }
            Err(e) => return failed(Failure::from_step(&e)),
        };
        let action = sig::decide_fallback(&listed, ours.as_ref(), &tag, &target.name());
        let union = match action {
            Action::UpToDate => return (Counts { found: 1, up_to_date: 1, ..Counts::default() }, None),
            Action::Refused(f) => return failed(f),
            Action::Copy => listed.clone(),
            Action::Merge(u) => u,
        };
        if self.options.engine == crate::engine::EngineKind::Daemon {
            self.not_copied(NotCopied::DaemonEngine);
            return (Counts { found: 1, ..Counts::default() }, None);
        }
        let written = (|| {
            for d in listed.digests() {
                let at = ImageRef::parse(&target.at_digest(d)).map_err(|m| Failure::new(m, "report this"))?;
                if self.inspector.head_digest(ctx, &at).map_err(|e| Failure::from_step(&e))?.is_none() {
                    // By digest, no tag (buildx 0.36.1 pushes `-t REPO@DIGEST` untagged: SIGNATURES.md, e).
                    imagetools::copy_exact(ctx, self.options.caps, &source.at_digest(d), d, &target.at_digest(d))?;
                }
            }
            if !api {
                imagetools::write_index(ctx, self.options.caps, &union.descriptors, &tagged(target, &tag)?)?;
            }
            Ok::<bool, Failure>(!api)
        })();
        match written {
            Ok(joined) => (Counts { found: 1, copied: 1, joined: usize::from(joined), ..Counts::default() }, None),
            Err(f) => failed(f),
        }
    }

    /// Signatures need an engine that keeps digests: without one they are
    /// off for the run, and the summary says the daemon engine is why.
    pub(super) fn signatures_need(&mut self, engine_keeps_digests: bool) {
        if self.options.signatures && !engine_keeps_digests {
            self.options.signatures = false;
            self.not_copied(NotCopied::DaemonEngine);
        }
    }

    pub(super) fn not_copied(&self, why: NotCopied) {
        self.not_copied.lock().unwrap_or_else(|e| e.into_inner()).insert(why);
    }

    /// The attachments the source has for `subjects` (4 HEADs each, at once
    /// as far as the run's readers allow).
    pub(super) fn find_signatures(&self, ctx: &Ctx, source: &ImageRef, subjects: &[String]) -> Sources {
        let asked: Vec<(Kind, &String, String)> =
            subjects.iter().flat_map(|s| Kind::ALL.into_iter().filter_map(move |k| Some((k, s, k.tag(s)?)))).collect();
        let refs = asked.iter().map(|(_, _, tag)| source.with_tag(tag)).collect::<Result<Vec<_>, _>>().map_err(|m| Failure::new(m, "report this"))?;
        let heads = self.inspector.head_digests(ctx, &refs).map_err(|e| signature_failure(&Failure::from_step(&e)))?;
        let found = asked
            .into_iter()
            .zip(heads)
            .filter_map(|((kind, subject, tag), head)| Some(Found { kind, subject: subject.clone(), tag, digest: head?, index: OnceLock::new() }))
            .collect();
        Ok(found)
    }

    /// Per found attachment, what `target` needs: one HEAD each; a
    /// referrers index that differs is read on both sides and compared.
    pub(super) fn plan_signatures(&self, ctx: &Ctx, source: &ImageRef, target: &ImageRef, found: &Sources) -> sig::Plan {
        let found = match found {
            Ok(f) => f,
            Err(e) => return sig::Plan { items: Vec::new(), failure: Some(e.clone()) },
        };
        let at = match found.iter().map(|f| target.with_tag(&f.tag)).collect::<Result<Vec<_>, _>>() {
            Ok(at) => at,
            Err(m) => return sig::Plan { items: Vec::new(), failure: Some(signature_failure(&Failure::new(m, "report this"))) },
        };
        let heads = match self.inspector.head_digests(ctx, &at) {
            Ok(h) => h,
            Err(e) => return sig::Plan { items: Vec::new(), failure: Some(signature_failure(&Failure::from_step(&e))) },
        };
        let items = found.iter().zip(&at).zip(heads).filter_map(|((f, target_tag), have)| self.decide_one(ctx, source, target, f, target_tag, have)).collect();
        sig::Plan { items, failure: None }
    }

    /// `target_tag`: `f`'s tag in `target`; `have`: its digest there (its HEAD).
    fn decide_one(&self, ctx: &Ctx, source: &ImageRef, target: &ImageRef, f: &Found, target_tag: &ImageRef, have: Option<String>) -> Option<(Attachment, Action)> {
        let attachment = |t: Option<String>| Attachment { kind: f.kind, subject: f.subject.clone(), tag: f.tag.clone(), source: f.digest.clone(), target: t };
        let refused = |e: Failure| Some((attachment(None), Action::Refused(signature_failure(&e))));
        if f.kind != Kind::Referrers {
            let action = sig::decide_tag(&f.digest, have.as_deref());
            return Some((attachment(have), action));
        }
        if have.as_deref() == Some(f.digest.as_str()) || have.as_deref().is_some_and(|t| self.remembered(&pair(source, target, &f.tag), &f.digest, t)) {
            return Some((attachment(have), Action::UpToDate));
        }
        // The source's tag must hold an index of referrers to count as one.
        let theirs = f.index.get_or_init(|| self.read_referrers(ctx, &source.with_tag(&f.tag).map_err(|m| Failure::new(m, "report this"))?));
        let theirs = match theirs {
            Ok(Some(r)) => r,
            Ok(None) => return None,
            Err(e) => return refused(e.clone()),
        };
        let ours = match have {
            None => None,
            Some(_) => match self.inspector.raw_manifest(ctx, target_tag) {
                Ok(Some(m)) => Some(sig::read_fallback(&m.bytes).unwrap_or(FallbackContent::Image)),
                Ok(None) => None,
                Err(e) => return refused(Failure::from_step(&e)),
            },
        };
        let action = sig::decide_fallback(theirs, ours.as_ref(), &f.tag, &target.name());
        Some((attachment(have), action))
    }

    /// A fallback tag's referrers: `None` when it holds an image instead.
    fn read_referrers(&self, ctx: &Ctx, reference: &ImageRef) -> Result<Option<Referrers>, Failure> {
        let m = self.inspector.raw_manifest(ctx, reference).map_err(|e| Failure::from_step(&e))?;
        let Some(m) = m else { return Ok(None) };
        match sig::read_fallback(&m.bytes) {
            Ok(FallbackContent::Referrers(r)) => Ok(Some(r)),
            Ok(FallbackContent::Image) => Ok(None),
            Err(e) => Err(Failure::new(format!("{reference}: the referrers index cannot be read: {e}"), "check the source's referrers with `crane manifest` or `oras discover`")),
        }
    }

    /// Writes what `plan` says to `target`: the counts, and the first failure.
    pub(super) fn copy_signatures(&self, ctx: &Ctx, source: &ImageRef, target: &ImageRef, plan: &sig::Plan) -> (Counts, Option<Failure>) {
        let mut counts = plan.counts();
        let mut first = plan.first_failure().cloned();
        let caps = self.options.caps;
        for (a, action) in &plan.items {
            let written = match action {
                Action::UpToDate | Action::Refused(_) => continue,
                _ if self.options.engine == crate::engine::EngineKind::Daemon => {
                    self.not_copied(NotCopied::DaemonEngine);
                    continue;
                }
                _ if !caps.prefer_index => {
                    self.not_copied(NotCopied::OldBuildx);
                    continue;
                }
                Action::Copy => self.copy_one(ctx, source, target, a),
                Action::Merge(union) => self.copy_one(ctx, source, target, a).and_then(|()| {
                    let to = tagged(target, &a.tag)?;
                    let joined = imagetools::write_index(ctx, caps, &union.descriptors, &to)?;
                    self.remember(pair(source, target, &a.tag), &a.source, &joined);
                    counts.joined += 1;
                    Ok(())
                }),
            };
            match written {
                Ok(()) => counts.copied += 1,
                Err(f) => {
                    counts.failed += 1;
                    first.get_or_insert(signature_failure(&f));
                }
            }
        }
        (counts, first)
    }

    fn copy_one(&self, ctx: &Ctx, source: &ImageRef, target: &ImageRef, a: &Attachment) -> Result<(), Failure> {
        imagetools::copy_exact(ctx, self.options.caps, &source.at_digest(&a.source), &a.source, &tagged(target, &a.tag)?)
    }
}

fn tagged(target: &ImageRef, tag: &str) -> Result<String, Failure> {
    target.with_tag(tag).map(|r| r.to_string()).map_err(|m| Failure::new(m, "report this"))
}

/// The state file's key for a joined referrers index: the source's tag and the target's.
fn pair(source: &ImageRef, target: &ImageRef, tag: &str) -> PairKey {
    PairKey::new(&format!("{}:{tag}", source.name()), &[], &format!("{}:{tag}", target.name()))
}

/// What to do when a registry refuses a signature for no reason docker names.
const REFUSED_HINT: &str =
    "the image itself is mirrored; if this registry does not accept signatures or referrers, set SIGNATURES=off (see the docker error above)";

/// A failure of the signature step names it, so the image's own outcome
/// stays apart, and gets a hint of its own where docker's says nothing more.
fn signature_failure(f: &Failure) -> Failure {
    if f.error.starts_with("signatures: ") {
        return f.clone();
    }
    let hint = if f.hint == Family::Other.hint() { REFUSED_HINT.to_string() } else { f.hint.clone() };
    Failure::new(format!("signatures: {}", f.error), hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_failure_is_named_and_a_bare_refusal_gets_its_own_hint() {
        let refused = signature_failure(&Failure::new("manifest invalid", Family::Other.hint()));
        assert_eq!((refused.error.as_str(), refused.hint.as_str()), ("signatures: manifest invalid", REFUSED_HINT));
        let denied = signature_failure(&Failure::new("denied", Family::Permission.hint()));
        assert_eq!(denied.hint, Family::Permission.hint(), "a hint that names the fix is kept");
        assert_eq!(signature_failure(&refused).error, refused.error, "named once");
    }
}
