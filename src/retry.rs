//! When and how long to retry a failed step (a docker call, an HTTP request):
//! by the failure's family, whatever carried the step out. The policy is pure;
//! the sleep is injected so tests record waits and production can wake on Ctrl-C.

use std::time::Duration;

use crate::diagnose::Classify;
use crate::family::Family;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Extra attempts after the first.
    pub retries: u32,
    pub base: Duration,
    /// No single wait is longer.
    pub max: Duration,
    /// First wait after a rate limit: those reset slowly, hammering only extends them.
    pub rate_limit_base: Duration,
}

impl Policy {
    /// 1 s base (`base_ms`; `IMGSYNC_RETRY_BASE_MS` in settings), 10 s after a rate limit,
    /// 60 s cap: the others scale with the base.
    pub fn with_base_ms(retries: u32, base_ms: u64) -> Self {
        let base = Duration::from_millis(base_ms);
        Policy { retries, base, max: base * 60, rate_limit_base: base * 10 }
    }

    /// Wait before retry number `attempt` (1 = the first retry): the base doubled per retry,
    /// capped, then scaled into [1/2, 1] of that by `jitter` in 0..=1 so parallel jobs spread out.
    pub fn delay(&self, attempt: u32, family: Family, jitter: f64) -> Duration {
        let (base, cap) = match family {
            Family::RateLimit => (self.rate_limit_base, self.max.max(self.rate_limit_base)),
            _ => (self.base, self.max),
        };
        let doublings = attempt.saturating_sub(1).min(30);
        let full = base.saturating_mul(1 << doublings).min(cap);
        let jitter = if jitter.is_nan() { 0.0 } else { jitter.clamp(0.0, 1.0) };
        full.mul_f64(0.5 + 0.5 * jitter)
    }

    /// The longest wait this policy sleeps, whatever the failure.
    pub fn longest(&self) -> Duration {
        self.max.max(self.rate_limit_base)
    }

    /// Wait before retry number `attempt` after `e`: the registry's own
    /// `Retry-After` when it sent one (capped at [`Policy::longest`]: a registry
    /// asking for an hour does not hold the run), else [`Policy::delay`].
    pub fn wait_after<E: Classify>(&self, attempt: u32, e: &E, jitter: f64) -> Duration {
        match e.retry_after() {
            Some(asked) => asked.min(self.longest()),
            None => self.delay(attempt, e.family(), jitter),
        }
    }
}

/// Production randomness for [`Policy::delay`].
pub fn jitter() -> f64 {
    fastrand::f64()
}

/// Runs `op` until success, a non-transient failure, or retries exhausted. `sleep` is injected
/// (tests pass a recorder; production passes a sleep that wakes early when `cancel` is set).
///
/// `op` gets the attempt number (1 = first try); `on_retry` gets the retry number (1 = first
/// retry), the error that caused it and the wait. The last error is returned as is, also as
/// soon as `stop` says so after a wait: a cancelled run sends no further request.
pub fn run<T, E: Classify>(
    policy: &Policy,
    op: impl FnMut(u32) -> Result<T, E>,
    sleep: &mut dyn FnMut(Duration),
    on_retry: &mut dyn FnMut(u32, &E, Duration),
    stop: &dyn Fn() -> bool,
) -> Result<T, E> {
    run_with_jitter(policy, op, sleep, on_retry, &mut jitter, stop)
}

fn run_with_jitter<T, E: Classify>(
    policy: &Policy,
    mut op: impl FnMut(u32) -> Result<T, E>,
    sleep: &mut dyn FnMut(Duration),
    on_retry: &mut dyn FnMut(u32, &E, Duration),
    jitter: &mut dyn FnMut() -> f64,
    stop: &dyn Fn() -> bool,
) -> Result<T, E> {
    let mut attempt = 1;
    loop {
        let e = match op(attempt) {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        if !e.family().transient() || attempt > policy.retries || stop() {
            return Err(e);
        }
        let wait = policy.wait_after(attempt, &e, jitter());
        on_retry(attempt, &e, wait);
        sleep(wait);
        if stop() {
            return Err(e);
        }
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::DockerError;
    use crate::step_error::StepError;

    fn err(stderr: &str) -> DockerError {
        DockerError { command: "docker pull x".into(), status: Some(1), stderr: stderr.into(), timed_out: false, interrupted: false }
    }

    const RESET: &str = "read: connection reset by peer";
    const RATE: &str = "toomanyrequests: You have reached your pull rate limit";

    /// Runs with fixed jitter; returns the result, attempts made, waits slept and retries announced.
    fn drive(policy: &Policy, mut outcome: impl FnMut(u32) -> Result<u32, DockerError>) -> (Result<u32, DockerError>, u32, Vec<Duration>, Vec<u32>) {
        let mut attempts = 0;
        let mut slept = Vec::new();
        let mut announced = Vec::new();
        let r = run_with_jitter(
            policy,
            |n| {
                attempts += 1;
                assert_eq!(n, attempts, "attempt numbers count from 1");
                outcome(n)
            },
            &mut |d| slept.push(d),
            &mut |n, _, d| announced.push((n, d)),
            &mut || 1.0,
            &|| false,
        );
        assert_eq!(slept, announced.iter().map(|a| a.1).collect::<Vec<_>>(), "each announced wait is slept");
        (r, attempts, slept, announced.into_iter().map(|a| a.0).collect())
    }

    #[test]
    fn success_after_transient_failures() {
        let p = Policy::with_base_ms(3, 1000);
        let (r, attempts, slept, retries) = drive(&p, |n| if n < 3 { Err(err(RESET)) } else { Ok(n) });
        assert_eq!(r, Ok(3));
        assert_eq!(attempts, 3);
        assert_eq!(retries, [1, 2]);
        assert_eq!(slept, [Duration::from_secs(1), Duration::from_secs(2)]);
    }

    #[test]
    fn transient_failures_exhaust_retries() {
        let p = Policy::with_base_ms(3, 1000);
        let (r, attempts, slept, _) = drive(&p, |_| Err(err(RESET)));
        assert_eq!(r.unwrap_err().stderr, RESET);
        assert_eq!(attempts, 4, "one try plus three retries");
        assert_eq!(slept.len(), 3);

        let (_, attempts, slept, _) = drive(&Policy::with_base_ms(0, 1000), |_| Err(err(RESET)));
        assert_eq!((attempts, slept.len()), (1, 0));
    }

    #[test]
    fn non_transient_is_attempted_once() {
        let p = Policy::with_base_ms(5, 1000);
        for stderr in ["unauthorized: authentication required", "manifest unknown", "http: server gave HTTP response to HTTPS client"] {
            let (r, attempts, slept, _) = drive(&p, |_| Err(err(stderr)));
            assert!(r.is_err());
            assert_eq!((attempts, slept.len()), (1, 0), "{stderr}");
        }
        let interrupted = DockerError { interrupted: true, status: None, ..err(RESET) };
        let (_, attempts, _, _) = drive(&p, |_| Err(interrupted.clone()));
        assert_eq!(attempts, 1);
    }

    #[test]
    fn stops_when_failure_turns_permanent() {
        // A cancel during the wait shows up as an interrupted attempt: no further retries.
        let p = Policy::with_base_ms(5, 1000);
        let (r, attempts, _, _) =
            drive(&p, |n| Err(if n == 1 { err(RESET) } else { DockerError { interrupted: true, ..err("") } }));
        assert!(r.unwrap_err().interrupted);
        assert_eq!(attempts, 2);
    }

    #[test]
    fn any_step_error_is_retried_by_family() {
        let p = Policy::with_base_ms(2, 1);
        let mut attempts = 0;
        let r: Result<(), StepError> = run(&p, |_| { attempts += 1; Err(StepError::http("GET u", 503, "")) }, &mut |_| {}, &mut |_, _, _| {}, &|| false);
        assert!(r.is_err());
        assert_eq!(attempts, 3, "a 503 is transient");
        attempts = 0;
        let _: Result<(), StepError> = run(&p, |_| { attempts += 1; Err(StepError::parse("inspect x", "bad JSON")) }, &mut |_| {}, &mut |_, _, _| {}, &|| false);
        assert_eq!(attempts, 1, "a parse error is not");
    }

    #[test]
    fn timeouts_are_retried() {
        let p = Policy::with_base_ms(1, 1000);
        let (_, attempts, _, _) = drive(&p, |_| Err(DockerError { timed_out: true, status: None, ..err("") }));
        assert_eq!(attempts, 2);
    }

    #[test]
    fn delays_grow_and_are_capped() {
        let p = Policy::with_base_ms(10, 1000);
        let full: Vec<u64> = (1..=9).map(|n| p.delay(n, Family::Network, 1.0).as_secs()).collect();
        assert_eq!(full, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(p.delay(1, Family::Network, 0.0), Duration::from_millis(500));
        assert_eq!(p.delay(u32::MAX, Family::Network, 1.0), p.max);
        for n in 1..40 {
            for j in [0.0, 0.3, 1.0, -1.0, 2.0, f64::NAN] {
                assert!(p.delay(n, Family::Network, j) <= p.max);
                assert!(p.delay(n, Family::RateLimit, j) <= p.max);
            }
        }
    }

    #[test]
    fn rate_limits_wait_longer() {
        let p = Policy::with_base_ms(3, 1000);
        for n in 1..=3 {
            for j in [0.0, 0.5, 1.0] {
                assert!(p.delay(n, Family::RateLimit, j) > p.delay(n, Family::Network, j), "retry {n}, jitter {j}");
            }
        }
        assert_eq!(p.delay(1, Family::RateLimit, 1.0), Duration::from_secs(10));
        let (_, _, slept, _) = drive(&p, |n| if n == 1 { Err(err(RATE)) } else { Ok(n) });
        assert_eq!(slept, [Duration::from_secs(10)]);
    }

    /// A registry error that names its own wait, as a 429 with `Retry-After` does.
    struct Asked(Option<Duration>);

    impl Classify for Asked {
        fn family(&self) -> Family {
            Family::RateLimit
        }
        fn what(&self) -> String {
            "GET https://r.example/v2/a/tags/list".into()
        }
        fn reason(&self) -> String {
            "HTTP 429".into()
        }
        fn retry_after(&self) -> Option<Duration> {
            self.0
        }
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        let p = Policy::with_base_ms(3, 1000);
        let mut slept = Vec::new();
        let waits = [Some(Duration::from_secs(3)), Some(Duration::from_secs(3600)), None];
        let r: Result<(), Asked> = run_with_jitter(&p, |n| Err(Asked(waits.get(n as usize - 1).copied().flatten())), &mut |d| slept.push(d), &mut |_, _, _| {}, &mut || 1.0, &|| false);
        assert!(r.is_err());
        // 3 s as asked (shorter than the 10 s rate-limit wait); an hour is cut to
        // the longest wait (60 s); no header: the policy's own 429 wait (40 s).
        // Three retries, three waits: the fourth failure is returned.
        assert_eq!(slept, [Duration::from_secs(3), Duration::from_secs(60), Duration::from_secs(40)]);
        assert_eq!(p.longest(), Duration::from_secs(60));
    }

    #[test]
    fn base_ms_scales_every_delay() {
        let p = Policy::with_base_ms(2, 10);
        assert_eq!(p.base, Duration::from_millis(10));
        assert_eq!(p.rate_limit_base, Duration::from_millis(100));
        assert_eq!(p.max, Duration::from_millis(600));
        assert_eq!(Policy::with_base_ms(2, 1000), Policy { retries: 2, base: Duration::from_secs(1), max: Duration::from_secs(60), rate_limit_base: Duration::from_secs(10) });
    }

    #[test]
    fn production_jitter_is_in_range() {
        for _ in 0..100 {
            assert!((0.0..=1.0).contains(&jitter()));
        }
    }
}
