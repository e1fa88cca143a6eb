//! Okta's X-Rate-Limit-* headers and the pacing decisions made from them.

use std::time::Duration;

use reqwest::header::HeaderMap;
use time::OffsetDateTime;

use super::RateLimitStatus;

/// Added to waits computed from X-Rate-Limit-Reset: it is whole seconds by Okta's clock, so
/// waiting exactly until it can land the next request just before the window rolls (clock skew).
pub(crate) const RESET_MARGIN: Duration = Duration::from_secs(1);

/// Wait after a 429 whose reset already passed (by our clock) and that gives no Retry-After:
/// the window is about to roll, so a short pause beats burning retries on exponential backoff.
pub(crate) const STALE_RESET_WAIT: Duration = Duration::from_secs(1);

/// Longest Retry-After taken at face value; a hostile or garbled value must not overflow time math.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Okta's rate-limit windows last a minute or less: a reset further ahead than this is
/// garbled (a broken proxy, a clock gone wrong) and is not waited for; the next request
/// probes where the window really is.
pub(crate) const MAX_RESET_AHEAD: Duration = Duration::from_secs(3600);

/// Whether `reset` lies so far ahead that no Okta window could end there.
fn garbled(reset: OffsetDateTime, now: OffsetDateTime) -> bool {
    Duration::try_from(reset - now).is_ok_and(|ahead| ahead > MAX_RESET_AHEAD)
}

/// Reads X-Rate-Limit-Limit/-Remaining/-Reset. Missing or garbled headers give `None`:
/// pacing then simply does not hold requests back.
pub(crate) fn parse_rate_limit(headers: &HeaderMap) -> Option<RateLimitStatus> {
    let number =
        |name: &str| -> Option<i64> { headers.get(name)?.to_str().ok()?.trim().parse().ok() };
    let limit = u32::try_from(number("x-rate-limit-limit")?).ok()?;
    let remaining = u32::try_from(number("x-rate-limit-remaining")?).ok()?;
    let reset = OffsetDateTime::from_unix_timestamp(number("x-rate-limit-reset")?).ok()?;
    Some(RateLimitStatus {
        limit,
        remaining,
        reset,
    })
}

/// What to do before the next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pace {
    Go,
    /// This connector used its share of the current window: wait for the window to reset.
    WaitFor(Duration),
}

/// Decides whether the next request fits in this connector's share of the bucket.
/// The share is the fraction of `limit` this app may use (Okta gives an app 50% by default and
/// logs a violation when it takes all of it); `reserve` keeps a few more requests untouched.
pub(crate) fn pace(
    last: Option<&RateLimitStatus>,
    share: f64,
    reserve: u32,
    now: OffsetDateTime,
) -> Pace {
    let Some(status) = last else {
        return Pace::Go;
    };
    if status.reset <= now || garbled(status.reset, now) {
        return Pace::Go;
    }
    let others = (f64::from(status.limit) * (1.0 - share.clamp(0.0, 1.0))).ceil() as u32;
    if status.remaining <= others.saturating_add(reserve) {
        Pace::WaitFor(until(status.reset, now))
    } else {
        Pace::Go
    }
}

/// How long a 429 asks us to wait: until X-Rate-Limit-Reset (plus a margin), else Retry-After
/// seconds (clamped), else a short pause when the reset already passed.
/// `None` when neither says anything usable, a garbled reset included (the caller then backs
/// off exponentially, probing again within its retry budget).
pub(crate) fn throttle_wait(headers: &HeaderMap, now: OffsetDateTime) -> Option<Duration> {
    let reset = headers
        .get("x-rate-limit-reset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .and_then(|v| OffsetDateTime::from_unix_timestamp(v).ok());
    if let Some(reset) = reset.filter(|r| *r > now && !garbled(*r, now)) {
        return Some(until(reset, now));
    }
    let retry_after = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|secs| *secs > 0)
        .map(|secs| Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    retry_after.or(reset.filter(|r| *r <= now).map(|_| STALE_RESET_WAIT))
}

/// Time until `reset`, plus the skew margin.
fn until(reset: OffsetDateTime, now: OffsetDateTime) -> Duration {
    Duration::try_from(reset - now)
        .unwrap_or(Duration::ZERO)
        .saturating_add(RESET_MARGIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(secs).unwrap()
    }

    #[test]
    fn complete_headers_parse_into_a_status() {
        let parsed = parse_rate_limit(&headers(&[
            ("x-rate-limit-limit", "120"),
            ("x-rate-limit-remaining", " 77 "),
            ("x-rate-limit-reset", "1700000060"),
        ]));
        assert_eq!(
            parsed,
            Some(RateLimitStatus {
                limit: 120,
                remaining: 77,
                reset: at(1_700_000_060)
            })
        );
    }

    #[test]
    fn missing_or_garbled_headers_give_none() {
        let cases: [&[(&'static str, &str)]; 4] = [
            &[],
            &[
                ("x-rate-limit-limit", "120"),
                ("x-rate-limit-remaining", "5"),
            ],
            &[
                ("x-rate-limit-limit", "lots"),
                ("x-rate-limit-remaining", "5"),
                ("x-rate-limit-reset", "1700000060"),
            ],
            &[
                ("x-rate-limit-limit", "120"),
                ("x-rate-limit-remaining", "-1"),
                ("x-rate-limit-reset", "1700000060"),
            ],
        ];
        for case in cases {
            assert_eq!(parse_rate_limit(&headers(case)), None, "{case:?}");
        }
    }

    #[test]
    fn pacing_goes_while_within_share_and_waits_for_reset_once_used() {
        let now = at(1_000);
        let status = |remaining| RateLimitStatus {
            limit: 100,
            remaining,
            reset: at(1_030),
        };
        assert_eq!(pace(None, 0.5, 0, now), Pace::Go);
        assert_eq!(pace(Some(&status(51)), 0.5, 0, now), Pace::Go);
        assert_eq!(
            pace(Some(&status(50)), 0.5, 0, now),
            Pace::WaitFor(Duration::from_secs(31))
        );
        // The reserve holds a few more requests back.
        assert_eq!(
            pace(Some(&status(52)), 0.5, 2, now),
            Pace::WaitFor(Duration::from_secs(31))
        );
        // A full share may use the whole bucket.
        assert_eq!(pace(Some(&status(1)), 1.0, 0, now), Pace::Go);
    }

    #[test]
    fn pacing_ignores_a_window_that_already_reset() {
        let status = RateLimitStatus {
            limit: 100,
            remaining: 0,
            reset: at(990),
        };
        assert_eq!(pace(Some(&status), 0.5, 0, at(1_000)), Pace::Go);
    }

    #[test]
    fn throttle_waits_for_reset_plus_margin_then_retry_after() {
        let now = at(1_000);
        let with_reset = headers(&[
            ("x-rate-limit-limit", "100"),
            ("x-rate-limit-remaining", "0"),
            ("x-rate-limit-reset", "1007"),
            ("retry-after", "2"),
        ]);
        assert_eq!(
            throttle_wait(&with_reset, now),
            Some(Duration::from_secs(8))
        );
        let reset_only = headers(&[("x-rate-limit-reset", "1003")]);
        assert_eq!(
            throttle_wait(&reset_only, now),
            Some(Duration::from_secs(4))
        );
        let stale_reset = headers(&[("x-rate-limit-reset", "990"), ("retry-after", "4")]);
        assert_eq!(
            throttle_wait(&stale_reset, now),
            Some(Duration::from_secs(4))
        );
        assert_eq!(
            throttle_wait(&headers(&[("retry-after", "soon")]), now),
            None
        );
    }

    #[test]
    fn pacing_waits_a_margin_past_the_reset_for_clock_skew() {
        let status = RateLimitStatus {
            limit: 100,
            remaining: 0,
            reset: at(1_001),
        };
        assert_eq!(
            pace(Some(&status), 0.5, 0, at(1_000)),
            Pace::WaitFor(Duration::from_secs(1) + RESET_MARGIN)
        );
    }

    #[test]
    fn stale_reset_without_retry_after_waits_a_short_minimum_instead_of_backing_off() {
        let stale = headers(&[
            ("x-rate-limit-limit", "100"),
            ("x-rate-limit-remaining", "0"),
            ("x-rate-limit-reset", "999"),
        ]);
        assert_eq!(throttle_wait(&stale, at(1_000)), Some(STALE_RESET_WAIT));
    }

    #[test]
    fn a_reset_more_than_an_hour_ahead_is_garbled_and_not_waited_for() {
        let now = at(1_000_000);
        let status = |reset: i64| RateLimitStatus {
            limit: 100,
            remaining: 0,
            reset: at(reset),
        };
        // An hour ahead is still believed (waited for, then the deadline decides).
        assert_eq!(
            pace(Some(&status(1_003_600)), 0.5, 0, now),
            Pace::WaitFor(Duration::from_secs(3600) + RESET_MARGIN)
        );
        // Beyond it, pacing probes instead of refusing every run until the connector pauses.
        assert_eq!(pace(Some(&status(1_003_601)), 0.5, 0, now), Pace::Go);
        assert_eq!(
            pace(Some(&status(i64::from(i32::MAX))), 0.5, 0, now),
            Pace::Go
        );

        let garbled_429 = headers(&[
            ("x-rate-limit-limit", "100"),
            ("x-rate-limit-remaining", "0"),
            ("x-rate-limit-reset", "99999999999"),
        ]);
        assert_eq!(
            throttle_wait(&garbled_429, now),
            None,
            "backs off and probes"
        );
        let with_retry_after =
            headers(&[("x-rate-limit-reset", "99999999999"), ("retry-after", "3")]);
        assert_eq!(
            throttle_wait(&with_retry_after, now),
            Some(Duration::from_secs(3))
        );
    }

    #[test]
    fn huge_retry_after_is_clamped() {
        let hostile = headers(&[("retry-after", "18446744073709551615")]);
        assert_eq!(throttle_wait(&hostile, at(1_000)), Some(MAX_RETRY_AFTER));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_rate_limit_headers_parse_or_give_none(
            limit in "[ -~]{0,24}",
            remaining in "[ -~]{0,24}",
            reset in "[ -~]{0,24}",
        ) {
            let mut map = HeaderMap::new();
            for (name, value) in [
                ("x-rate-limit-limit", &limit),
                ("x-rate-limit-remaining", &remaining),
                ("x-rate-limit-reset", &reset),
            ] {
                if let Ok(value) = HeaderValue::from_str(value) {
                    map.insert(name, value);
                }
            }
            if let Some(status) = parse_rate_limit(&map) {
                proptest::prop_assert_eq!(Ok(i64::from(status.limit)), limit.trim().parse::<i64>());
                proptest::prop_assert_eq!(Ok(i64::from(status.remaining)), remaining.trim().parse::<i64>());
            }
            // Whatever the headers say, deciding the wait must not panic (time arithmetic).
            let now = at(1_700_000_000);
            let _ = throttle_wait(&map, now);
            let _ = pace(parse_rate_limit(&map).as_ref(), 0.5, 1, now);
        }

        #[test]
        fn numeric_rate_limit_headers_round_trip(limit: u32, remaining: u32, reset in 0i64..4_000_000_000) {
            let parsed = parse_rate_limit(&headers(&[
                ("x-rate-limit-limit", &limit.to_string()),
                ("x-rate-limit-remaining", &remaining.to_string()),
                ("x-rate-limit-reset", &reset.to_string()),
            ]));
            proptest::prop_assert_eq!(parsed, Some(RateLimitStatus { limit, remaining, reset: at(reset) }));
        }
    }
}
