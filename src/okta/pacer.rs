//! Spending this connector's share of Okta's rate-limit window, all of it and no more.
//!
//! Okta's bucket holds `X-Rate-Limit-Limit` requests per window for every client of the org.
//! This connector may use `floor(limit × share) − reserve` of them per window. It counts its
//! own answered requests in the current window (told apart by `X-Rate-Limit-Reset`), so what
//! other clients use does not shrink its share; when they leave less than that, it stops at
//! what is left (`X-Rate-Limit-Remaining` 0) and so never meets a 429 of its own making.
//!
//! The reset is in Okta's clock. Waiting for it, the pacer adds a margin from the measured
//! clock offset (the `Date` header against the local clock) instead of a fixed second.

use std::collections::VecDeque;
use std::time::Duration;

use time::OffsetDateTime;

use super::ratelimit::garbled;
use super::RateLimitStatus;

/// Margin past a reset when no `Date` header has told the clock offset yet.
pub(crate) const UNMEASURED_MARGIN: Duration = Duration::from_secs(1);

/// Added to the measured margin: the request travels a little while, and Okta rounds.
const MARGIN_FLOOR: Duration = Duration::from_millis(25);

/// Clock samples kept: enough for one to fall just after a whole second of Okta's clock
/// (which makes the bound tight), few enough to follow a drifting clock.
const SKEW_SAMPLES: usize = 32;

/// A previous window that ended at most this long before the current one's first answer was
/// seen through: this client was draining across the boundary (or waiting for it), so no
/// other invocation of the connector used the new window before it.
const ADJACENT: Duration = Duration::from_secs(5);

/// What to do before the next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pace {
    Go,
    /// This connector used its share of the current window: wait for the window to reset.
    WaitFor(Duration),
}

/// This connector's use of the current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    /// The latest answer's headers in this window.
    status: RateLimitStatus,
    /// Requests of this connector the window has counted.
    ours: u32,
    /// Requests other clients made between our last two answers: about as many will be
    /// gone again by the time our next request arrives.
    others_gap: u32,
}

/// The pacing state of one client (kept across warm invocations).
#[derive(Debug, Default)]
pub(crate) struct Pacer {
    window: Option<Window>,
    /// `Date` minus the local receive time, in ms, of recent answers: each is a lower bound
    /// of Okta's clock minus ours (`Date` is Okta's time rounded down, taken before we read it).
    offsets_ms: VecDeque<i64>,
}

impl Pacer {
    /// Records an answer that the bucket counted (any status but 429), received at `now`.
    pub(crate) fn observe(&mut self, status: RateLimitStatus, now: OffsetDateTime) {
        match &mut self.window {
            Some(window) if window.status.reset == status.reset => {
                window.others_gap = window
                    .status
                    .remaining
                    .saturating_sub(1)
                    .saturating_sub(status.remaining);
                window.ours = window.ours.saturating_add(1);
                window.status = status;
            }
            previous => {
                let seen_through = previous.is_some_and(|p| {
                    let gap = now - p.status.reset;
                    gap.abs() <= ADJACENT
                });
                // Joined mid-window after a pause: what was used before may have been another
                // invocation of this connector, so it counts as ours (it can only under-use).
                let ours = if seen_through {
                    1
                } else {
                    status.limit.saturating_sub(status.remaining).max(1)
                };
                *previous = Some(Window {
                    status,
                    ours,
                    others_gap: 0,
                });
            }
        }
    }

    /// Records the `Date` header of an answer received at `now` (local clock).
    pub(crate) fn observe_date(&mut self, date: OffsetDateTime, now: OffsetDateTime) {
        let offset = (date - now).whole_milliseconds();
        let Ok(offset) = i64::try_from(offset) else {
            return;
        };
        if self.offsets_ms.len() == SKEW_SAMPLES {
            self.offsets_ms.pop_front();
        }
        self.offsets_ms.push_back(offset);
    }

    /// How long after a reset (by the local clock) Okta's window has surely rolled: the
    /// amount by which Okta's clock may be behind ours, plus a small floor.
    pub(crate) fn reset_margin(&self) -> Duration {
        match self.offsets_ms.iter().max() {
            None => UNMEASURED_MARGIN,
            Some(&offset) => {
                // offset ≤ true offset; Okta behind us by up to -offset.
                let behind = Duration::from_millis(offset.min(0).unsigned_abs());
                behind.min(Duration::from_secs(60)) + MARGIN_FLOOR
            }
        }
    }

    /// Whether the next request fits this connector's share of the current window.
    pub(crate) fn decide(&self, share: f64, reserve: u32, now: OffsetDateTime) -> Pace {
        let Some(window) = self.window else {
            return Pace::Go;
        };
        let status = window.status;
        if garbled(status.reset, now) {
            // Not a real window: the next answer says where the window is.
            return Pace::Go;
        }
        let margin = self.reset_margin();
        let rolled_at = status.reset + margin;
        if now >= rolled_at {
            return Pace::Go;
        }
        let allowed = share_of(status.limit, share).saturating_sub(reserve);
        // What others will have taken by the time this request lands must still leave one.
        if window.ours < allowed && status.remaining > window.others_gap {
            Pace::Go
        } else {
            Pace::WaitFor(Duration::try_from(rolled_at - now).unwrap_or(Duration::ZERO))
        }
    }
}

/// Requests per window `share` of a bucket of `limit` allows (Okta gives an app 50% by
/// default and logs a violation when it takes more).
pub fn share_of(limit: u32, share: f64) -> u32 {
    (f64::from(limit) * share.clamp(0.0, 1.0)).floor() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_ms(ms: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap()
    }

    fn at(secs: i64) -> OffsetDateTime {
        at_ms(secs * 1000)
    }

    fn status(limit: u32, remaining: u32, reset: i64) -> RateLimitStatus {
        RateLimitStatus {
            limit,
            remaining,
            reset: at(reset),
        }
    }

    /// A pacer whose clock offset is measured as exact (a sample right at a whole second).
    fn measured() -> Pacer {
        let mut pacer = Pacer::default();
        pacer.observe_date(at(999), at(999));
        pacer
    }

    /// What one window of the bucket sees: the drain, and other clients taking
    /// `others_per_request` requests after each of ours.
    struct Drained {
        made: u32,
        throttled: u32,
        pace: Pace,
    }

    /// Asks the pacer and, on Go, makes a request (a 429 if the bucket is empty), until it says wait.
    #[allow(clippy::too_many_arguments)]
    fn drain_window(
        pacer: &mut Pacer,
        limit: u32,
        mut used: u32,
        others_per_request: u32,
        share: f64,
        reserve: u32,
        reset: i64,
        now: OffsetDateTime,
    ) -> Drained {
        let mut made = 0;
        loop {
            match pacer.decide(share, reserve, now) {
                Pace::Go if used >= limit => {
                    return Drained {
                        made,
                        throttled: 1,
                        pace: Pace::Go,
                    }
                }
                Pace::Go => {
                    used += 1;
                    made += 1;
                    pacer.observe(status(limit, limit - used, reset), now);
                    used = (used + others_per_request).min(limit);
                }
                pace => {
                    return Drained {
                        made,
                        throttled: 0,
                        pace,
                    }
                }
            }
        }
    }

    #[test]
    fn alone_in_the_bucket_the_whole_share_is_used_then_the_pacer_waits_for_the_reset() {
        let mut pacer = measured();
        let run = drain_window(&mut pacer, 100, 0, 0, 0.5, 0, 1_030, at(1_000));
        assert_eq!((run.made, run.throttled), (50, 0));
        assert_eq!(
            run.pace,
            Pace::WaitFor(Duration::from_secs(30) + MARGIN_FLOOR)
        );
    }

    #[test]
    fn a_short_window_and_a_full_share_are_used_entirely() {
        let mut pacer = measured();
        let run = drain_window(&mut pacer, 10, 0, 0, 1.0, 0, 1_002, at(1_000));
        assert_eq!((run.made, run.throttled), (10, 0));
        let run = drain_window(&mut pacer, 10, 10, 0, 0.5, 0, 1_002, at(1_000));
        assert_eq!(run.made, 0, "the same window is spent");
    }

    #[test]
    fn other_clients_within_their_part_do_not_shrink_the_share() {
        // Another client takes a request for each of ours: 50 + 50 fills the bucket exactly.
        let mut pacer = measured();
        let run = drain_window(&mut pacer, 100, 0, 1, 0.5, 0, 1_060, at(1_000));
        assert_eq!((run.made, run.throttled), (50, 0));
    }

    #[test]
    fn other_clients_taking_more_leave_us_what_is_left_without_a_429() {
        // Three of theirs for each of ours: the bucket is empty after 25 of ours.
        let mut pacer = measured();
        let run = drain_window(&mut pacer, 100, 0, 3, 0.5, 0, 1_060, at(1_000));
        assert_eq!((run.made, run.throttled), (25, 0));
        assert!(matches!(run.pace, Pace::WaitFor(_)));
    }

    #[test]
    fn the_reserve_is_explicit_and_off_by_default() {
        let mut pacer = measured();
        let run = drain_window(&mut pacer, 100, 0, 0, 0.5, 2, 1_030, at(1_000));
        assert_eq!(run.made, 48);
    }

    #[test]
    fn each_window_is_counted_afresh_when_drained_across_the_boundary() {
        let mut pacer = measured();
        let run = drain_window(&mut pacer, 20, 0, 0, 0.5, 0, 1_010, at(1_005));
        assert_eq!(run.made, 10);
        let Pace::WaitFor(wait) = run.pace else {
            panic!("expected a wait");
        };
        // After the wait, the next window: counted from our first request, others' early
        // requests (5 before ours) included in `remaining` only.
        let later = at(1_005) + wait;
        assert_eq!(pacer.decide(0.5, 0, later), Pace::Go);
        pacer.observe(status(20, 14, 1_020), later);
        let run = drain_window(&mut pacer, 20, 6, 0, 0.5, 0, 1_020, later);
        // 5 of theirs + 1 of ours were used; 9 more of ours fit (remaining 14 → 5).
        assert_eq!((run.made, run.throttled), (9, 0));
    }

    #[test]
    fn joining_a_window_midway_counts_what_was_used_before_as_ours() {
        // Another invocation of this connector may have used the window before this client.
        let mut pacer = measured();
        pacer.observe(status(100, 70, 1_060), at(1_030));
        let run = drain_window(&mut pacer, 100, 30, 0, 0.5, 0, 1_060, at(1_030));
        assert_eq!(run.made, 20, "30 used before + 20 = the share");
    }

    #[test]
    fn the_reset_margin_follows_the_measured_clock_offset() {
        assert_eq!(Pacer::default().reset_margin(), UNMEASURED_MARGIN);
        // Okta's clock 2.5 s behind ours: waits 2.5 s past the reset (plus the floor).
        let mut behind = Pacer::default();
        for ms in [0, 300, 700] {
            behind.observe_date(at(997), at_ms(999_500 + ms));
        }
        assert_eq!(
            behind.reset_margin(),
            Duration::from_millis(2500) + MARGIN_FLOOR
        );
        // Okta ahead of ours: no extra wait beyond the floor.
        let mut ahead = Pacer::default();
        ahead.observe_date(at(1_003), at(1_000));
        assert_eq!(ahead.reset_margin(), MARGIN_FLOOR);
        // A sample taken late in Okta's second bounds the offset loosely; a tighter one wins.
        let mut pacer = Pacer::default();
        pacer.observe_date(at(1_000), at_ms(1_000_900));
        pacer.observe_date(at(1_001), at_ms(1_001_050));
        assert_eq!(
            pacer.reset_margin(),
            Duration::from_millis(50) + MARGIN_FLOOR
        );
    }

    #[test]
    fn old_clock_samples_give_way_to_recent_ones() {
        let mut pacer = Pacer::default();
        pacer.observe_date(at(1_000), at(1_000));
        for _ in 0..SKEW_SAMPLES {
            pacer.observe_date(at(1_000), at(1_003));
        }
        assert_eq!(pacer.reset_margin(), Duration::from_secs(3) + MARGIN_FLOOR);
    }

    #[test]
    fn a_window_that_rolled_goes_and_a_garbled_reset_probes() {
        let mut pacer = measured();
        pacer.observe(status(100, 0, 990), at(989));
        assert_eq!(pacer.decide(0.5, 0, at(1_000)), Pace::Go);
        let mut garbled = measured();
        garbled.observe(status(100, 0, 99_999_999), at(1_000));
        assert_eq!(garbled.decide(0.5, 0, at(1_000)), Pace::Go);
        // An hour ahead is still a window (the deadline decides whether to wait).
        let mut hour = measured();
        hour.observe(status(100, 0, 4_600), at(1_000));
        assert!(matches!(hour.decide(0.5, 0, at(1_000)), Pace::WaitFor(_)));
    }

    #[test]
    fn nothing_known_goes() {
        assert_eq!(Pacer::default().decide(0.5, 0, at(1_000)), Pace::Go);
    }

    proptest::proptest! {
        #[test]
        fn decisions_never_panic_and_never_exceed_the_share(
            limit in 1u32..5_000,
            share in 0.0f64..=1.0,
            reserve in 0u32..10,
            others in 0u32..5,
            reset in 1i64..3_600,
            offset_ms in -100_000i64..100_000,
        ) {
            let mut pacer = Pacer::default();
            pacer.observe_date(at(1_000) + time::Duration::milliseconds(offset_ms), at(1_000));
            let run = drain_window(&mut pacer, limit, 0, others, share, reserve, 1_000 + reset, at(1_000));
            // The first request knows nothing of the window, so it may go past a zero share.
            proptest::prop_assert!(run.made <= share_of(limit, share).saturating_sub(reserve).max(1));
        }
    }
}
