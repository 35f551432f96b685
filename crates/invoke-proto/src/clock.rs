//! The service's clock against this host's: learned from the `Date` of an answer that refused
//! a signature for its time, applied to the signing of the attempts that follow

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::SignError;
use crate::sigv4::{format_amz_date, parse_amz_date};

/// The codes a service refuses a request with when its signing time is too far from the
/// service's clock, which the AWS SDKs correct their clock for and retry (Lambda answers
/// `InvalidSignatureException`, "Signature expired")
pub const CLOCK_SKEW_ERRORS: [&str; 6] = [
    "AuthFailure",
    "InvalidSignatureException",
    "RequestExpired",
    "RequestInTheFuture",
    "RequestTimeTooSkewed",
    "SignatureDoesNotMatch",
];

/// The least change of the offset that makes a refused attempt worth signing anew: a
/// signature the service refused for less is not refused for its time
pub const MIN_SKEW_CORRECTION: Duration = Duration::from_secs(60);

/// The largest offset taken from a service's `Date`: a clock a day off has not drifted,
/// and an answer claiming so (a proxy's, a hostile one's) is ignored
pub const MAX_CLOCK_OFFSET: Duration = Duration::from_secs(24 * 60 * 60);

/// The service's clock minus this host's, as the last refusal for time showed it; shared by
/// the invocations of a client (it is atomic: put it in an `Arc`)
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use invoke_proto::ClockSkew;
///
/// let skew = ClockSkew::new();
/// let local = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// let ten_minutes = Duration::from_secs(600);
/// // an attempt signed at `local` was refused; the service's `Date` was ten minutes ahead
/// assert!(skew.learn(local, local, local + ten_minutes));
/// assert_eq!(skew.apply(local), local + ten_minutes);
/// // another attempt signed before the offset was known, refused alike: worth signing anew
/// assert!(skew.learn(local, local, local + ten_minutes));
/// // one already signed on the service's clock and refused: not a matter of time
/// assert!(!skew.learn(local, local + ten_minutes, local + ten_minutes));
/// ```
#[derive(Debug, Default)]
pub struct ClockSkew {
    /// Milliseconds, the service's clock ahead when positive
    millis: AtomicI64,
}

impl ClockSkew {
    /// No offset: the service's clock is taken to be this host's
    pub const fn new() -> Self {
        Self {
            millis: AtomicI64::new(0),
        }
    }

    /// The offset in milliseconds: positive when the service's clock is ahead
    pub fn offset_millis(&self) -> i64 {
        self.millis.load(Ordering::Relaxed)
    }

    /// `local`, a time of this host's clock, on the service's clock
    pub fn apply(&self, local: SystemTime) -> SystemTime {
        let millis = self.offset_millis();
        let by = Duration::from_millis(millis.unsigned_abs());
        let moved = if millis >= 0 {
            local.checked_add(by)
        } else {
            local.checked_sub(by)
        };
        moved.unwrap_or(local)
    }

    /// Learns the offset from an attempt that the service refused for its time, answering at
    /// `service_date`: signed when this host's clock said `local`, with the time `signed`
    /// (`local` with the offset of that moment); whether `signed` was at least
    /// [`MIN_SKEW_CORRECTION`] from `service_date`, so that an attempt signed anew, on the
    /// offset learnt, differs. Attempts refused together (concurrent calls signed before
    /// the first refusal came) each find theirs worth signing anew. An offset beyond
    /// [`MAX_CLOCK_OFFSET`] is not taken (and nothing is worth signing anew).
    pub fn learn(&self, local: SystemTime, signed: SystemTime, service_date: SystemTime) -> bool {
        let Some(millis) = signed_millis(local, service_date) else {
            return false;
        };
        self.millis.store(millis, Ordering::Relaxed);
        signed_millis(signed, service_date)
            .is_none_or(|off| off.unsigned_abs() >= MIN_SKEW_CORRECTION.as_millis() as u64)
    }
}

/// `to` minus `from` in milliseconds, `None` beyond [`MAX_CLOCK_OFFSET`] either way
fn signed_millis(from: SystemTime, to: SystemTime) -> Option<i64> {
    let (ahead, by) = match to.duration_since(from) {
        Ok(d) => (true, d),
        Err(e) => (false, e.duration()),
    };
    if by > MAX_CLOCK_OFFSET {
        return None;
    }
    let millis = i64::try_from(by.as_millis()).ok()?;
    Some(if ahead { millis } else { -millis })
}

/// The months as HTTP dates name them
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Parses an HTTP `Date` in its preferred format (RFC 9110's IMF-fixdate,
/// `Sun, 06 Nov 1994 08:49:37 GMT`); `None` for anything else
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use invoke_proto::parse_http_date;
///
/// assert_eq!(
///     parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
///     Some(SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777))
/// );
/// assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
/// ```
pub fn parse_http_date(text: &str) -> Option<SystemTime> {
    // `Sun, 06 Nov 1994 08:49:37 GMT`: fixed widths; the weekday is not checked
    let b = text.as_bytes();
    if b.len() != 29 || &b[3..5] != b", " || &b[25..] != b" GMT" {
        return None;
    }
    if b[7] != b' ' || b[11] != b' ' || b[16] != b' ' || b[19] != b':' || b[22] != b':' {
        return None;
    }
    let month = MONTHS.iter().position(|m| m.as_bytes() == &b[8..11])? + 1;
    // as an `X-Amz-Date`, whose parser checks every field
    let amz = format!(
        "{}{month:02}{}T{}{}{}Z",
        text.get(12..16)?,
        text.get(5..7)?,
        text.get(17..19)?,
        text.get(20..22)?,
        text.get(23..25)?,
    );
    parse_amz_date(&amz).filter(|t| *t >= UNIX_EPOCH)
}

/// `t` as an HTTP `Date` (IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`), whole seconds; the
/// reverse of [`parse_http_date`]
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use invoke_proto::format_http_date;
///
/// let t = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
/// assert_eq!(format_http_date(t).unwrap(), "Sun, 06 Nov 1994 08:49:37 GMT");
/// ```
///
/// # Errors
///
/// [`SignError::TimeOutOfRange`] for a time before 1970 or after year 9999.
pub fn format_http_date(t: SystemTime) -> Result<String, SignError> {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    let amz = format_amz_date(t)?;
    let days = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400);
    let month: usize = amz[4..6].parse().unwrap_or(1);
    Ok(format!(
        "{}, {} {} {} {}:{}:{} GMT",
        DAYS[(days % 7) as usize],
        &amz[6..8],
        MONTHS[month - 1],
        &amz[0..4],
        &amz[9..11],
        &amz[11..13],
        &amz[13..15],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn http_dates() {
        assert_eq!(
            parse_http_date("Mon, 15 Jan 2024 12:00:00 GMT"),
            Some(at(1_705_320_000))
        );
        assert_eq!(
            parse_http_date("Thu, 29 Feb 2024 23:59:59 GMT"),
            Some(at(1_709_251_199))
        );
        for bad in [
            "",
            "Mon, 15 Jan 2024 12:00:00 UTC",
            "Mon, 15 Foo 2024 12:00:00 GMT",
            "Mon, 30 Feb 2024 12:00:00 GMT",
            "Mon, 15 Jan 2024 24:00:00 GMT",
            "Mon, 15 Jan 2024 12:00:0x GMT",
            "Mon, +5 Jan 2024 12:00:00 GMT",
            "Mon,  15 Jan 2024 12:00:00 GMT",
            // each separator wrong alone
            "Mon, 15XJan 2024 12:00:00 GMT",
            "Mon, 15 JanX2024 12:00:00 GMT",
            "Mon, 15 Jan 2024X12:00:00 GMT",
            "Mon, 15 Jan 2024 12X00:00 GMT",
            "Mon, 15 Jan 2024 12:00X00 GMT",
            "Mon, 15 Jan 2024 12:00:00 GMT ",
            "Mon, 15 Jan 2024 12:00:00 GMTé",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn http_dates_round_trip() {
        for secs in [
            0,
            59,
            86_399,
            86_400,
            951_782_400,
            1_705_320_000,
            253_402_300_799,
        ] {
            let text = format_http_date(at(secs)).unwrap();
            assert_eq!(parse_http_date(&text), Some(at(secs)), "{text}");
        }
        assert_eq!(
            format_http_date(at(0)).unwrap(),
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );
        assert_eq!(
            format_http_date(at(951_782_400)).unwrap(),
            "Tue, 29 Feb 2000 00:00:00 GMT"
        );
        assert!(format_http_date(at(253_402_300_800)).is_err(), "year 10000");
    }

    #[test]
    fn skew_both_ways_and_bounded() {
        let skew = ClockSkew::new();
        assert_eq!(skew.apply(at(1000)), at(1000));
        // the service behind by 20 minutes
        assert!(skew.learn(at(10_000), at(10_000), at(10_000 - 1200)));
        assert_eq!(skew.offset_millis(), -1_200_000);
        assert_eq!(skew.apply(at(10_000)), at(8_800));
        // signed within a minute of the service's answer: no correction, the offset still
        // taken; a minute or more: a correction
        assert!(!skew.learn(at(10_000), at(8_800), at(8_800 + 59)));
        assert_eq!(skew.offset_millis(), -1_141_000);
        assert!(skew.learn(at(10_000), at(8_800), at(8_800 + 60)));
        assert!(skew.learn(at(10_000), at(8_800), at(11_200)));
        assert_eq!(skew.apply(at(10_000)), at(11_200));
        // a day and more is not taken, and the offset stays
        assert!(!skew.learn(at(0), at(0), at(24 * 3600 + 1)));
        assert_eq!(skew.offset_millis(), 1_200_000);
        assert!(skew.learn(at(24 * 3600), at(24 * 3600), at(0)));
        assert_eq!(skew.offset_millis(), -86_400_000);
        // a signing time a day from the answer (with an offset that later changed) is
        // worth signing anew
        assert!(skew.learn(at(24 * 3600), at(0), at(24 * 3600 + 1)));
        assert_eq!(skew.offset_millis(), 1000);
    }
}
