//! The run's concurrency helpers: an ordered map on a bounded number of
//! threads (with or without a cancel check), a shared count of extra readers,
//! and a set of image digests held by one entry at a time.
//!
//! Poisoned locks are recovered, here as everywhere in imgsync: each guarded
//! update is one step (a slot, a set, a map entry), so a thread that panicked
//! leaves nothing half-done, and one failed entry must not stop the others.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

/// Runs `f` over `items` on up to `jobs` threads; results keep the input order.
/// Items not started when `cancel` is set get `skipped(item)` instead.
pub fn parallel_map<T: Sync, R: Send>(items: &[T], jobs: usize, cancel: &AtomicBool, f: impl Fn(&T) -> R + Sync, skipped: impl Fn(&T) -> R + Sync) -> Vec<R> {
    bounded_map(items, jobs, |item| if cancel.load(Ordering::SeqCst) { skipped(item) } else { f(item) })
}

/// `f` over `items` on at most `jobs` threads (at least one, never more than
/// there are items), the calling thread one of them; results in the order of `items`.
pub fn bounded_map<T: Sync, R: Send>(items: &[T], jobs: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    let work = || loop {
        let i = next.fetch_add(1, Ordering::SeqCst);
        let Some(item) = items.get(i) else { break };
        let r = f(item);
        *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
    };
    std::thread::scope(|s| {
        for _ in 1..jobs.clamp(1, items.len().max(1)) {
            s.spawn(work);
        }
        work();
    });
    results.into_iter().map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()).expect("every item was mapped")).collect()
}

/// Extra threads the whole run may add to its readers (an index's children):
/// shared, so the run never holds more than `size` of them at once, however
/// many entries read at the same time.
pub struct Helpers {
    free: AtomicUsize,
}

/// Helpers taken from [`Helpers`]; given back when dropped.
pub struct Taken<'a> {
    from: &'a Helpers,
    count: usize,
}

impl Helpers {
    pub fn new(size: usize) -> Self {
        Helpers { free: AtomicUsize::new(size) }
    }

    /// Up to `want` helpers, without waiting: none when all are busy.
    pub fn take(&self, want: usize) -> Taken<'_> {
        let mut got = 0;
        let _ = self.free.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |free| {
            got = free.min(want);
            Some(free - got)
        });
        Taken { from: self, count: got }
    }
}

impl Taken<'_> {
    pub fn count(&self) -> usize {
        self.count
    }
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        self.from.free.fetch_add(self.count, Ordering::SeqCst);
    }
}

/// Image digests some daemon-engine entry is working with. Two entries with
/// the same source image must not overlap: one's clean-up would remove the
/// image the other is about to push.
#[derive(Default)]
pub struct InUse {
    held: Mutex<HashSet<String>>,
    freed: Condvar,
}

pub struct Held<'a> {
    owner: &'a InUse,
    keys: Vec<String>,
}

impl InUse {
    /// Waits until none of `keys` is held, then holds them all.
    pub fn hold(&self, keys: Vec<String>) -> Held<'_> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        while keys.iter().any(|k| held.contains(k)) {
            held = self.freed.wait(held).unwrap_or_else(|e| e.into_inner());
        }
        held.extend(keys.iter().cloned());
        Held { owner: self, keys }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let mut held = self.owner.held.lock().unwrap_or_else(|e| e.into_inner());
        for k in &self.keys {
            held.remove(k);
        }
        self.owner.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_are_shared_and_given_back() {
        let h = Helpers::new(3);
        let a = h.take(2);
        let b = h.take(5);
        assert_eq!((a.count(), b.count()), (2, 1));
        assert_eq!(h.take(1).count(), 0, "all busy: no wait, no helper");
        drop(a);
        assert_eq!(h.take(9).count(), 2);
    }

    #[test]
    fn in_use_serialises_shared_images_only() {
        let in_use = InUse::default();
        let order = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            let a = in_use.hold(vec!["d1".into(), "d2".into()]);
            s.spawn(|| {
                let _b = in_use.hold(vec!["d2".into()]);
                order.lock().unwrap().push("b");
            });
            let _c = in_use.hold(vec!["d3".into()]); // unrelated: no wait
            std::thread::sleep(std::time::Duration::from_millis(50));
            order.lock().unwrap().push("a");
            drop(a);
        });
        assert_eq!(*order.lock().unwrap(), ["a", "b"]);
    }

    #[test]
    fn parallel_map_keeps_order() {
        let cancel = AtomicBool::new(false);
        let v: Vec<usize> = (0..50).collect();
        let out = parallel_map(&v, 8, &cancel, |x| x * 2, |_| 0);
        assert_eq!(out, v.iter().map(|x| x * 2).collect::<Vec<_>>());
    }

    #[test]
    fn bounded_map_keeps_order() {
        assert_eq!(bounded_map(&[1, 2, 3, 4, 5], 2, |x| x * 10), [10, 20, 30, 40, 50]);
        assert!(bounded_map(&[] as &[i32], 4, |x| *x).is_empty());
    }
}
