//! Okta's X-Rate-Limit-* headers, and how long a 429 asks us to wait.

use std::time::Duration;

use reqwest::header::HeaderMap;
use time::OffsetDateTime;

use super::RateLimitStatus;

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
pub(crate) fn garbled(reset: OffsetDateTime, now: OffsetDateTime) -> bool {
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

/// How long a 429 asks us to wait: until X-Rate-Limit-Reset (plus `margin` for clock skew), else Retry-After
/// seconds (clamped), else a short pause when the reset already passed.
/// `None` when neither says anything usable, a garbled reset included (the caller then backs
/// off exponentially, probing again within its retry budget).
pub(crate) fn throttle_wait(
    headers: &HeaderMap,
    now: OffsetDateTime,
    margin: Duration,
) -> Option<Duration> {
    let reset = headers
        .get("x-rate-limit-reset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .and_then(|v| OffsetDateTime::from_unix_timestamp(v).ok());
    if let Some(reset) = reset.filter(|r| *r > now && !garbled(*r, now)) {
        return Some(
            Duration::try_from(reset - now)
                .unwrap_or(Duration::ZERO)
                .saturating_add(margin),
        );
    }
    let retry_after = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|secs| *secs > 0)
        .map(|secs| Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    retry_after.or(reset.filter(|r| *r <= now).map(|_| STALE_RESET_WAIT))
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

    const MARGIN: Duration = Duration::from_secs(1);

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
    fn throttle_waits_for_reset_plus_margin_then_retry_after() {
        let now = at(1_000);
        let with_reset = headers(&[
            ("x-rate-limit-limit", "100"),
            ("x-rate-limit-remaining", "0"),
            ("x-rate-limit-reset", "1007"),
            ("retry-after", "2"),
        ]);
        assert_eq!(
            throttle_wait(&with_reset, now, MARGIN),
            Some(Duration::from_secs(8))
        );
        let reset_only = headers(&[("x-rate-limit-reset", "1003")]);
        assert_eq!(
            throttle_wait(&reset_only, now, MARGIN),
            Some(Duration::from_secs(4))
        );
        let stale_reset = headers(&[("x-rate-limit-reset", "990"), ("retry-after", "4")]);
        assert_eq!(
            throttle_wait(&stale_reset, now, MARGIN),
            Some(Duration::from_secs(4))
        );
        assert_eq!(
            throttle_wait(&headers(&[("retry-after", "soon")]), now, MARGIN),
            None
        );
    }

    #[test]
    fn stale_reset_without_retry_after_waits_a_short_minimum_instead_of_backing_off() {
        let stale = headers(&[
            ("x-rate-limit-limit", "100"),
            ("x-rate-limit-remaining", "0"),
            ("x-rate-limit-reset", "999"),
        ]);
        assert_eq!(
            throttle_wait(&stale, at(1_000), MARGIN),
            Some(STALE_RESET_WAIT)
        );
    }

    #[test]
    fn a_429_with_a_reset_more_than_an_hour_ahead_backs_off_instead() {
        let now = at(1_000_000);
        assert!(!garbled(at(1_003_600), now));
        assert!(garbled(at(1_003_601), now));
        let garbled_429 = headers(&[
            ("x-rate-limit-limit", "100"),
            ("x-rate-limit-remaining", "0"),
            ("x-rate-limit-reset", "99999999999"),
        ]);
        assert_eq!(
            throttle_wait(&garbled_429, now, MARGIN),
            None,
            "backs off and probes"
        );
        let with_retry_after =
            headers(&[("x-rate-limit-reset", "99999999999"), ("retry-after", "3")]);
        assert_eq!(
            throttle_wait(&with_retry_after, now, MARGIN),
            Some(Duration::from_secs(3))
        );
    }

    #[test]
    fn huge_retry_after_is_clamped() {
        let hostile = headers(&[("retry-after", "18446744073709551615")]);
        assert_eq!(
            throttle_wait(&hostile, at(1_000), MARGIN),
            Some(MAX_RETRY_AFTER)
        );
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
            let _ = throttle_wait(&map, now, MARGIN);
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
