//! RFC 3339 timestamps, as in credential answers (`2021-09-21T04:16:53Z`, `...+00:00`)

use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[allow(clippy::many_single_char_names)]
/// Days from 1970-01-01 to the given civil date (proleptic Gregorian)
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days in month `m` (1 to 12) of year `y`
fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn digits(s: &[u8]) -> Option<i64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
}

#[allow(clippy::many_single_char_names)]
/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` (`t`/`z` and a space for `T` accepted)
pub(crate) fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let b = text.trim().as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let (h, mi, s) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    if !(1..=12).contains(&mo)
        || !(1..=days_in_month(y, mo)).contains(&d)
        || h > 23
        || mi > 59
        || s > 60
    {
        return None;
    }
    let mut rest = &b[19..];
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        for (i, c) in frac[..n.min(9)].iter().enumerate() {
            nanos += u32::from(c - b'0') * 10u32.pow(8 - i as u32);
        }
        rest = &frac[n..];
    }
    let offset = match rest {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), hh @ .., b':', m1, m2] if hh.len() == 2 => {
            let secs = digits(hh)? * 3600 + digits(&[*m1, *m2])? * 60;
            if *sign == b'+' { secs } else { -secs }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset;
    let secs = u64::try_from(secs).ok()?;
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

/// `t` as `YYYY-MM-DDTHH:MM:SSZ` (whole seconds), the form the AWS CLI writes in its SSO
/// token cache; `None` before 1970 or after year 9999
pub(crate) fn format_rfc3339(t: SystemTime) -> Option<String> {
    // `YYYYMMDD'T'HHMMSS'Z'`, punctuated
    let d = invoke_proto::format_amz_date(t).ok()?;
    Some(format!(
        "{}-{}-{}T{}:{}:{}Z",
        &d[0..4],
        &d[4..6],
        &d[6..8],
        &d[9..11],
        &d[11..13],
        &d[13..15]
    ))
}

/// Whole seconds since the Unix epoch (0 before it)
pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Milliseconds since the Unix epoch (0 before it)
pub(crate) fn unix_millis(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_what_it_parses() {
        for text in [
            "1970-01-01T00:00:00Z",
            "2000-02-29T12:34:56Z",
            "2023-12-31T23:59:59Z",
            "2024-03-01T00:00:00Z",
            "2099-01-01T00:00:00Z",
        ] {
            assert_eq!(format_rfc3339(parse_rfc3339(text).unwrap()).unwrap(), text);
        }
        // every day of four years, leap days included
        let start = parse_rfc3339("2023-01-01T06:07:08Z").unwrap();
        for day in 0..4 * 366 {
            let t = start + Duration::from_secs(day * 86_400);
            assert_eq!(parse_rfc3339(&format_rfc3339(t).unwrap()), Some(t));
        }
    }

    #[test]
    fn parses_the_forms_credential_answers_use() {
        let at = |s| parse_rfc3339(s).map(unix_secs);
        assert_eq!(at("2009-02-13T23:31:30Z"), Some(1_234_567_890));
        assert_eq!(at("2021-09-21T04:16:53Z"), Some(1_632_197_813));
        assert_eq!(at("2022-05-02T18:36:00+00:00"), Some(1_651_516_560));
        assert_eq!(at("2022-05-02T20:36:00+02:00"), Some(1_651_516_560));
        assert_eq!(at("2022-05-02T18:36:00.123Z"), Some(1_651_516_560));
        assert_eq!(at("1970-01-01T00:00:00Z"), Some(0));
        // the last day of each kind of month
        assert_eq!(at("2024-02-29T00:00:00Z"), Some(1_709_164_800));
        assert_eq!(at("2000-02-29T00:00:00Z"), Some(951_782_400));
        assert_eq!(at("2023-04-30T00:00:00Z"), Some(1_682_812_800));
        assert_eq!(at("2023-12-31T00:00:00Z"), Some(1_703_980_800));
        for bad in [
            // days past the month's end: not another date
            "2023-02-29T00:00:00Z",
            "2100-02-29T00:00:00Z",
            "2024-02-30T00:00:00Z",
            "2023-04-31T00:00:00Z",
            "2023-11-31T00:00:00Z",
            "2023-01-32T00:00:00Z",
            "",
            "2022-05-02",
            "2022-13-02T18:36:00Z",
            "2022-05-02T18:36:00",
            "2022-05-02T18:36:00+0000",
            "x022-05-02T18:36:00Z",
            "1969-12-31T23:59:59Z",
        ] {
            assert_eq!(at(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_field_is_checked_and_counted() {
        let at = |s| parse_rfc3339(s);
        let base = at("2022-05-02T18:36:00Z").unwrap();
        // each separator in its place; `t`, a space and `z` too
        for bad in [
            "2022/05-02T18:36:00Z",
            "2022-05/02T18:36:00Z",
            "2022-05-02X18:36:00Z",
            "2022-05-02T18.36:00Z",
            "2022-05-02T18:36.00Z",
        ] {
            assert_eq!(at(bad), None, "{bad}");
        }
        for good in ["2022-05-02t18:36:00z", "2022-05-02 18:36:00Z"] {
            assert_eq!(at(good), Some(base), "{good}");
        }
        // the time of day: a leap second is taken, nothing past it
        assert_eq!(
            at("2022-05-02T23:59:60Z"),
            Some(base + Duration::from_secs(5 * 3600 + 23 * 60 + 60))
        );
        for bad in [
            "2022-05-02T24:00:00Z",
            "2022-05-02T23:60:00Z",
            "2022-05-02T23:59:61Z",
        ] {
            assert_eq!(at(bad), None, "{bad}");
        }
        // fractions to the nanosecond; digits past nine are dropped; a dot needs a digit
        let nanos = |s| at(s).map(|t| t.duration_since(base).unwrap().subsec_nanos());
        assert_eq!(nanos("2022-05-02T18:36:00.5Z"), Some(500_000_000));
        assert_eq!(nanos("2022-05-02T18:36:00.123456789Z"), Some(123_456_789));
        assert_eq!(nanos("2022-05-02T18:36:00.0000000019Z"), Some(1));
        assert_eq!(at("2022-05-02T18:36:00.Z"), None);
        // offsets east and west, minutes included; hours take two digits
        assert_eq!(at("2022-05-03T00:06:00+05:30"), Some(base));
        assert_eq!(at("2022-05-02T13:06:00-05:30"), Some(base));
        assert_eq!(
            at("2022-05-03T00:06:00.25+05:30"),
            Some(base + Duration::from_millis(250))
        );
        for bad in ["2022-05-02T18:36:00+5:30", "2022-05-02T18:36:00+005:30"] {
            assert_eq!(at(bad), None, "{bad}");
        }
        assert_eq!(
            unix_millis(base + Duration::from_millis(7)),
            1_651_516_560_007
        );
        assert_eq!(unix_millis(UNIX_EPOCH - Duration::from_secs(1)), 0);
        assert_eq!(unix_secs(UNIX_EPOCH - Duration::from_secs(1)), 0);
    }
}
