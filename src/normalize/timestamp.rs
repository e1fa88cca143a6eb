//! The schema's timestamp form: RFC 3339, UTC, exactly three fractional digits, `Z`.

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// Parses an RFC 3339 timestamp (any offset) and moves it to UTC.
pub(crate) fn parse_rfc3339_utc(text: &str) -> Option<OffsetDateTime> {
    to_utc(OffsetDateTime::parse(text.trim(), &Rfc3339).ok()?)
}

/// Moves `at` to UTC; `None` when the result leaves years 0000-9999, which the schema's
/// fixed-width form cannot express.
pub(crate) fn to_utc(at: OffsetDateTime) -> Option<OffsetDateTime> {
    at.checked_to_offset(UtcOffset::UTC)
        .filter(|utc| (0..=9999).contains(&utc.year()))
}

/// Formats a UTC time as `YYYY-MM-DDTHH:MM:SS.mmmZ`, truncating to milliseconds.
/// Hand-rolled because it runs for every event twice and `time`'s formatter is slower.
pub(crate) fn format_millis(utc: OffsetDateTime) -> String {
    let fields = [
        (utc.year() as u32, 4),
        (u32::from(u8::from(utc.month())), 2),
        (u32::from(utc.day()), 2),
        (u32::from(utc.hour()), 2),
        (u32::from(utc.minute()), 2),
        (u32::from(utc.second()), 2),
        (u32::from(utc.millisecond()), 3),
    ];
    let separators = ['-', '-', 'T', ':', ':', '.', 'Z'];
    let mut out = String::with_capacity(24);
    for ((value, width), separator) in fields.into_iter().zip(separators) {
        for position in (0..width).rev() {
            let digit = (value / 10u32.pow(position)) % 10;
            out.push(char::from(b'0' + digit as u8));
        }
        out.push(separator);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn offsets_are_moved_to_utc_with_millisecond_precision() {
        let at = parse_rfc3339_utc("2024-03-01T01:30:05.123456+02:00").unwrap();
        assert_eq!(format_millis(at), "2024-02-29T23:30:05.123Z");
    }

    #[test]
    fn whole_seconds_get_three_zero_digits() {
        let at = parse_rfc3339_utc("2024-05-06T07:08:09Z").unwrap();
        assert_eq!(format_millis(at), "2024-05-06T07:08:09.000Z");
    }

    #[test]
    fn unparsable_or_out_of_range_timestamps_are_refused() {
        assert!(parse_rfc3339_utc("yesterday").is_none());
        assert!(parse_rfc3339_utc("2024-05-06 07:08:09").is_none());
        assert!(parse_rfc3339_utc("0000-01-01T00:00:00+01:00").is_none());
        assert!(to_utc(datetime!(-0001-06-01 0:00 UTC)).is_none());
        assert!(to_utc(datetime!(9999-12-31 23:59:59 -1)).is_none());
    }
}
