//! When to try a failed request again, how long to wait first, and the one loop that
//! does it.
//!
//! The *schedule* is full-jitter exponential backoff
//! (`delay = random(0, min(max_delay, base_delay · 2^(n−1)))`, the scheme AWS recommends
//! because it spreads a burst of failing clients out instead of having them retry in
//! lock-step), a cap on attempts, and a total time budget: the last delay is cut to end
//! with the budget, so that retrying stops only once it is spent. A server's
//! `Retry-After` wins over the computed delay when it asks for longer, as long as it
//! fits the budget. The computation itself ([`Backoff::next_delay_at`]) takes the
//! elapsed time and the random draw as arguments so that it is tested without clocks.
//!
//! The *loop* is [`run`]: it makes attempts of a [`Retried`] operation until one says
//! [`Outcome::Done`] or [`Outcome::Fail`], sleeping the schedule's delay after each
//! [`Outcome::Retry`]. Both the Twilio client and the object client go through it; what
//! differs between them is said by the attempt's outcome (an attempt that made progress,
//! moving a download forward at the policy's minimum rate ([`MinRate::is_progress`]),
//! starts the budget again; [`Outcome::Again`] repeats at once, outside the budget) and
//! by two hooks of the operation (what to log before a delay, which error to return
//! once the budget is spent).
//!
//! This module must not do network I/O or decide *what* is retryable: the callers
//! classify their own failures. Its only effect is the sleep between attempts.

use std::time::{Duration, Instant};

pub use crate::rate::MinRate;

/// How persistent to be with a failing request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included (1 means never retry).
    pub max_attempts: u32,
    /// The cap of the first delay; each later cap doubles.
    pub base_delay: Duration,
    /// The largest cap any one delay gets (before `Retry-After`).
    pub max_delay: Duration,
    /// No retry starts once this much time has passed since the first attempt.
    pub total_budget: Duration,
    /// What counts as progress, which starts the budget again: a download moving at
    /// least this fast ([`MinRate::is_progress`]); a body slower than it is cut.
    pub min_rate: MinRate,
}

impl Default for RetryPolicy {
    /// Time decides: retries go on for up to 30 s (a storage or API blip of a few
    /// seconds must not fail a read), with delays capped at 5 s. The attempt cap only
    /// guards against a tight loop; full jitter alone would let 6 attempts run out in
    /// about 1.5 s.
    fn default() -> Self {
        Self {
            max_attempts: 100,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            total_budget: Duration::from_secs(30),
            min_rate: MinRate::default(),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The cap of the delay after failed attempt number `attempt` (1-based):
    /// `min(max_delay, total_budget / 4, base_delay · 2^(attempt−1))`. A quarter of
    /// the budget at most, so that a short budget still makes a few attempts after the
    /// delays have grown: a storage back after 2 s of a 6 s budget is tried again soon,
    /// not 5 s later.
    pub fn cap(&self, attempt: u32) -> Duration {
        let shift = attempt.saturating_sub(1).min(31);
        let max = self.max_delay.min(self.total_budget / 4);
        self.base_delay
            .checked_mul(1u32 << shift)
            .unwrap_or(max)
            .min(max)
    }
}

/// The retry state of one logical request (which may span several HTTP requests).
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: RetryPolicy,
    failures: u32,
    started: Instant,
}

impl Backoff {
    /// Starts the clock: call it just before the first attempt.
    pub fn new(policy: RetryPolicy) -> Self {
        Self {
            policy,
            failures: 0,
            started: Instant::now(),
        }
    }

    /// How many attempts have failed so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Time since the first attempt.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Records one failed attempt and says how long to wait before the next, or `None`
    /// when the attempts or the time budget are used up. `retry_after` is the server's
    /// `Retry-After`, when it sent one.
    pub fn next_delay(&mut self, retry_after: Option<Duration>) -> Option<Duration> {
        let jitter: f64 = rand::random();
        self.next_delay_at(self.started.elapsed(), retry_after, jitter)
    }

    /// [`Self::next_delay`] with the clock and the random draw (in `[0, 1)`) given.
    pub fn next_delay_at(
        &mut self,
        elapsed: Duration,
        retry_after: Option<Duration>,
        jitter: f64,
    ) -> Option<Duration> {
        self.failures = self.failures.saturating_add(1);
        if self.failures >= self.policy.max_attempts {
            return None;
        }
        let remaining = self.policy.total_budget.saturating_sub(elapsed);
        if remaining.is_zero() {
            return None;
        }
        let cap = self.policy.cap(self.failures);
        let delay = cap.mul_f64(jitter.clamp(0.0, 1.0));
        match retry_after {
            // The server asked for a wait that does not fit: give up rather than
            // come back earlier than asked.
            Some(asked) if asked > delay && asked > remaining => None,
            Some(asked) if asked > delay => Some(asked),
            // A computed delay is shortened to end with the budget: the last attempt
            // comes at its very end, so a failure is reported only once it is spent.
            _ => Some(delay.min(remaining)),
        }
    }
}

/// What one attempt of a [`Retried`] operation came to.
#[derive(Debug)]
pub enum Outcome<T, E, W> {
    /// It worked: [`run`] returns `Ok`.
    Done(T),
    /// A failure that another attempt would not fix: [`run`] returns `Err` at once.
    Fail(E),
    /// A failure worth another attempt, after a backoff delay, while the budget lasts.
    Retry {
        /// Why: handed to [`Retried::retrying`] and [`Retried::exhausted`].
        why: W,
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
        /// The attempt got somewhere before it failed (it moved a download forward at
        /// the policy's minimum rate, [`MinRate::is_progress`]; the caller decides):
        /// the budget bounds time without progress, so it starts again.
        progressed: bool,
    },
    /// Try again at once, without a delay and without spending the budget: the
    /// attempt fixed what failed (a new URL for an expired one). The caller bounds how
    /// often it answers this.
    Again,
}

/// One operation that [`run`] repeats: an attempt, and what to do between attempts.
///
/// A type, not closures, so that the attempt and the hooks share the operation's state
/// (a read's progress, a flag that a warning was given) without a lock, and so that the
/// attempt's future is declared `Send` for the multi-threaded runtime.
pub trait Retried: Send {
    /// What a successful attempt gives.
    type Output;
    /// What a failed operation gives.
    type Error;
    /// Why an attempt is retried: the cause to log, and to report once retries end.
    type Why: Send;

    /// Makes one attempt.
    fn attempt(
        &mut self,
    ) -> impl Future<Output = Outcome<Self::Output, Self::Error, Self::Why>> + Send;

    /// Called before waiting `delay` after a failure, to log it. `backoff` tells how
    /// long retries have gone on ([`Backoff::elapsed`]).
    fn retrying(&mut self, why: &Self::Why, delay: Duration, backoff: &Backoff);

    /// The attempts or the time budget are spent: the error to return for the last
    /// failure ([`Backoff::failures`] and [`Backoff::elapsed`] describe the attempts).
    fn exhausted(&mut self, why: Self::Why, backoff: &Backoff) -> Self::Error;
}

/// Makes attempts of `op` until one is [`Outcome::Done`] or [`Outcome::Fail`], or
/// until a retryable failure finds the attempts or the time budget of `policy` spent.
/// Sleeps the schedule's delay after each [`Outcome::Retry`], none after
/// [`Outcome::Again`].
pub async fn run<R: Retried>(policy: RetryPolicy, op: &mut R) -> Result<R::Output, R::Error> {
    let mut backoff = Backoff::new(policy);
    loop {
        let (why, retry_after) = match op.attempt().await {
            Outcome::Done(value) => return Ok(value),
            Outcome::Fail(error) => return Err(error),
            Outcome::Again => continue,
            Outcome::Retry {
                why,
                retry_after,
                progressed,
            } => {
                if progressed {
                    // Each restart of the budget needs new progress: it ends.
                    backoff = Backoff::new(policy);
                }
                (why, retry_after)
            }
        };
        let Some(delay) = backoff.next_delay(retry_after) else {
            return Err(op.exhausted(why, &backoff));
        };
        op.retrying(&why, delay, &backoff);
        tokio::time::sleep(delay).await;
    }
}

/// Parses a `Retry-After` header given in seconds (the HTTP-date form is not used by
/// Twilio or S3 and is ignored).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn caps_double_up_to_the_maximum() {
        let p = RetryPolicy::default();
        assert_eq!(p.cap(1), 100 * MS);
        assert_eq!(p.cap(2), 200 * MS);
        assert_eq!(p.cap(3), 400 * MS);
        assert_eq!(p.cap(6), 3200 * MS);
        assert_eq!(p.cap(7), 5000 * MS);
        assert_eq!(p.cap(1000), 5000 * MS);
        let short = RetryPolicy {
            total_budget: Duration::from_secs(6),
            ..p
        };
        assert_eq!(short.cap(5), 1500 * MS);
        assert_eq!(short.cap(1), 100 * MS);
    }

    #[test]
    fn full_jitter_stays_under_the_cap() {
        let mut b = Backoff::new(RetryPolicy::default());
        assert_eq!(
            b.next_delay_at(Duration::ZERO, None, 0.0),
            Some(Duration::ZERO)
        );
        assert_eq!(b.next_delay_at(Duration::ZERO, None, 0.5), Some(100 * MS));
        assert_eq!(b.next_delay_at(Duration::ZERO, None, 1.0), Some(400 * MS));
        for _ in 0..50 {
            let mut b = Backoff::new(RetryPolicy::default());
            let d = b.next_delay(None).unwrap();
            assert!(d <= 100 * MS);
        }
    }

    #[test]
    fn stops_after_max_attempts() {
        let mut b = Backoff::new(RetryPolicy::default());
        let delays: Vec<_> = (0..110)
            .map(|_| b.next_delay_at(Duration::ZERO, None, 0.0))
            .collect();
        // 100 attempts = 99 retries.
        assert_eq!(delays.iter().filter(|d| d.is_some()).count(), 99);
        assert!(delays[99..].iter().all(Option::is_none));
        let mut b = Backoff::new(RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        });
        assert!(b.next_delay_at(Duration::ZERO, None, 0.0).is_some());
        assert!(b.next_delay_at(Duration::ZERO, None, 0.0).is_some());
        assert_eq!(b.next_delay_at(Duration::ZERO, None, 0.0), None);
        assert_eq!(Backoff::new(RetryPolicy::none()).next_delay(None), None);
    }

    #[test]
    fn retry_after_wins_when_longer_and_within_budget() {
        let mut b = Backoff::new(RetryPolicy::default());
        let got = b.next_delay_at(Duration::ZERO, Some(Duration::from_secs(2)), 0.5);
        assert_eq!(got, Some(Duration::from_secs(2)));
        let mut b = Backoff::new(RetryPolicy::default());
        let got = b.next_delay_at(Duration::ZERO, Some(Duration::ZERO), 1.0);
        assert_eq!(got, Some(100 * MS));
        // Beyond the budget: give up rather than sleep past it.
        let mut b = Backoff::new(RetryPolicy::default());
        let got = b.next_delay_at(Duration::from_secs(29), Some(Duration::from_secs(2)), 0.0);
        assert_eq!(got, None);
    }

    #[test]
    fn budget_exhausted() {
        let mut b = Backoff::new(RetryPolicy::default());
        assert_eq!(b.next_delay_at(Duration::from_secs(31), None, 0.0), None);
        assert_eq!(b.failures(), 1);
        let mut b = Backoff::new(RetryPolicy::default());
        assert_eq!(b.next_delay_at(Duration::from_secs(30), None, 0.0), None);
    }

    /// The last retry waits only until the budget ends: no failure is reported while
    /// some of the budget is left.
    #[test]
    fn the_last_delay_ends_with_the_budget() {
        let mut b = Backoff::new(RetryPolicy::default());
        for _ in 0..6 {
            b.next_delay_at(Duration::ZERO, None, 1.0);
        }
        // The cap is now 5 s, but only 0.3 s of the budget is left.
        let got = b.next_delay_at(Duration::from_millis(29_700), None, 1.0);
        assert_eq!(got, Some(300 * MS));
    }

    /// A policy whose delays are at most a millisecond, for driving [`run`] on the real
    /// clock: the tests check which attempts happen, not how long they wait.
    fn quick(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            base_delay: MS,
            max_delay: MS,
            total_budget: Duration::from_secs(30),
            min_rate: MinRate::default(),
        }
    }

    /// What the hooks of one [`run`] saw.
    #[derive(Debug, Default, PartialEq)]
    struct Seen {
        /// `(why, delay)` of each `on_retry`.
        retries: Vec<(&'static str, Duration)>,
        /// `(why, failures)` of `exhausted`.
        exhausted: Option<(&'static str, u32)>,
        /// Attempts made.
        attempts: usize,
    }

    type Step = Outcome<&'static str, String, &'static str>;

    fn retry(why: &'static str) -> Step {
        Outcome::Retry {
            why,
            retry_after: None,
            progressed: false,
        }
    }

    /// An operation that plays scripted outcomes in order, and records what [`run`]
    /// did with them.
    struct Script {
        steps: std::vec::IntoIter<Step>,
        seen: Seen,
    }

    impl Retried for Script {
        type Output = &'static str;
        type Error = String;
        type Why = &'static str;

        async fn attempt(&mut self) -> Step {
            self.seen.attempts += 1;
            self.steps.next().expect("the script ran out")
        }

        fn retrying(&mut self, why: &&'static str, delay: Duration, _: &Backoff) {
            self.seen.retries.push((why, delay));
        }

        fn exhausted(&mut self, why: &'static str, backoff: &Backoff) -> String {
            self.seen.exhausted = Some((why, backoff.failures()));
            format!("gave up: {why}")
        }
    }

    async fn drive(policy: RetryPolicy, steps: Vec<Step>) -> (Result<&'static str, String>, Seen) {
        let mut script = Script {
            steps: steps.into_iter(),
            seen: Seen::default(),
        };
        let result = run(policy, &mut script).await;
        (result, script.seen)
    }

    #[tokio::test]
    async fn run_returns_the_first_done_or_fail() {
        let (got, seen) = drive(quick(5), vec![Outcome::Done("ok")]).await;
        assert_eq!(got, Ok("ok"));
        assert_eq!(
            seen,
            Seen {
                attempts: 1,
                ..Seen::default()
            }
        );

        let (got, seen) = drive(quick(5), vec![retry("503"), Outcome::Fail("404".into())]).await;
        assert_eq!(got, Err("404".to_string()));
        assert_eq!(seen.attempts, 2);
        assert_eq!(seen.retries.len(), 1);
        assert_eq!(seen.exhausted, None);
    }

    #[tokio::test]
    async fn run_retries_until_done_with_delays_under_the_cap() {
        let (got, seen) = drive(quick(5), vec![retry("a"), retry("b"), Outcome::Done("ok")]).await;
        assert_eq!(got, Ok("ok"));
        assert_eq!(seen.attempts, 3);
        assert_eq!(
            seen.retries.iter().map(|r| r.0).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(seen.retries.iter().all(|r| r.1 <= MS));
    }

    #[tokio::test]
    async fn run_gives_up_with_the_last_failure() {
        let script = (0..3).map(|i| retry(["a", "b", "c"][i])).collect();
        let (got, seen) = drive(quick(3), script).await;
        assert_eq!(got, Err("gave up: c".to_string()));
        assert_eq!(seen.attempts, 3);
        assert_eq!(seen.retries.len(), 2);
        assert_eq!(seen.exhausted, Some(("c", 3)));
        // A policy without retries gives up after the first failure.
        let (got, seen) = drive(RetryPolicy::none(), vec![retry("a")]).await;
        assert_eq!(got, Err("gave up: a".to_string()));
        assert_eq!(seen.exhausted, Some(("a", 1)));
    }

    #[tokio::test]
    async fn run_gives_up_once_the_budget_is_spent() {
        let policy = RetryPolicy {
            total_budget: 40 * MS,
            ..quick(1000)
        };
        let started = Instant::now();
        let (got, seen) = drive(policy, (0..1000).map(|_| retry("down")).collect()).await;
        assert_eq!(got, Err("gave up: down".to_string()));
        assert!(started.elapsed() >= 40 * MS, "{:?}", started.elapsed());
        assert!(
            seen.attempts > 1 && seen.attempts < 1000,
            "{}",
            seen.attempts
        );
    }

    /// `Again` repeats at once and costs no attempt of the policy.
    #[tokio::test]
    async fn again_is_outside_the_budget() {
        let script = vec![
            Outcome::Again,
            Outcome::Again,
            retry("a"),
            Outcome::Again,
            retry("b"),
        ];
        let (got, seen) = drive(quick(2), script).await;
        assert_eq!(got, Err("gave up: b".to_string()));
        assert_eq!(seen.attempts, 5);
        assert_eq!(seen.retries.len(), 1);
        assert_eq!(seen.exhausted, Some(("b", 2)));
    }

    /// An attempt that made progress starts the budget again: a slow download that
    /// keeps moving is not cut off by the attempt cap.
    #[tokio::test]
    async fn progress_starts_the_budget_again() {
        let moving = || Outcome::Retry {
            why: "cut",
            retry_after: None,
            progressed: true,
        };
        let script = vec![moving(), moving(), moving(), Outcome::Done("ok")];
        let (got, seen) = drive(quick(2), script).await;
        assert_eq!(got, Ok("ok"));
        assert_eq!(seen.retries.len(), 3);
        // Without progress, the second failure is the last.
        let script = vec![moving(), retry("stuck"), retry("stuck")];
        let (got, seen) = drive(quick(2), script).await;
        assert_eq!(got, Err("gave up: stuck".to_string()));
        assert_eq!(seen.exhausted, Some(("stuck", 2)));
    }

    #[tokio::test]
    async fn run_waits_as_long_as_retry_after_asks() {
        let script = vec![
            Outcome::Retry {
                why: "429",
                retry_after: Some(20 * MS),
                progressed: false,
            },
            Outcome::Done("ok"),
        ];
        let started = Instant::now();
        let (got, seen) = drive(quick(5), script).await;
        assert_eq!(got, Ok("ok"));
        assert_eq!(seen.retries, [("429", 20 * MS)]);
        assert!(started.elapsed() >= 20 * MS);
    }

    #[test]
    fn retry_after_parsing() {
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }
}
