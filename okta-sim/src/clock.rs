//! Wall-clock helpers: the simulator keeps times as Unix milliseconds and renders them the way
//! Okta does (RFC 3339, milliseconds, `Z`).

use std::fmt::Write;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub(crate) fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

pub(crate) fn write_timestamp(buf: &mut String, ms: i64) {
    let t = OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let _ = write!(
        buf,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    );
}

pub(crate) fn format_timestamp(ms: i64) -> String {
    let mut s = String::with_capacity(24);
    write_timestamp(&mut s, ms);
    s
}

/// Parses an RFC 3339 timestamp (as accepted by `since`/`until` and found in `published`).
pub(crate) fn parse_timestamp(s: &str) -> Option<i64> {
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_render_with_milliseconds_and_z_and_parse_back() {
        let s = format_timestamp(1_700_000_000_123);
        assert_eq!(s, "2023-11-14T22:13:20.123Z");
        assert_eq!(parse_timestamp(&s), Some(1_700_000_000_123));
        assert_eq!(
            parse_timestamp("2023-11-14T23:13:20+01:00"),
            Some(1_700_000_000_000)
        );
        assert_eq!(parse_timestamp("yesterday"), None);
    }
}
