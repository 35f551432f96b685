//! Faults the emulator injects, so that clients can be tested against a misbehaving service
//!
//! Select them per function ([`FunctionConfig::faults`](crate::FunctionConfig)) or per
//! request with the header `x-emulator-fault`, a comma-separated list of:
//!
//! | fault | what the emulator does | what a correct client reports |
//! |---|---|---|
//! | `throttle` | answers 429 (kind [`TooManyRequests`](invoke_proto::ServiceErrorKind::TooManyRequests)), `Retry-After: 1` | a retryable throttling error with `retry_after` = 1 s |
//! | `throttle=N` | per function ([`FunctionConfig::faults`](crate::FunctionConfig)): throttles its next N requests; in the header: throttles this request and the next N-1 requests of the function (at least; a larger count already pending stays); then serves normally | as `throttle`, N times, then success |
//! | `close-after=K` | closes the connection after K body bytes | a truncated stream (`Truncated`, or a transport error), never a clean end |
//! | `corrupt-crc` | flips the message CRC of the first chunk event | `MessageCrc` at offset 0 |
//! | `delay-ms=D` | waits D ms after each write of the function (D at most 900,000: 15 minutes; a write over 64 KiB is several chunk events, and the built-in `count` writes at most 64 KiB at a time) | nothing: every chunk must still arrive as it is sent |
//! | `stall` | after the first write, sends half a frame and holds the connection open (at most 15 minutes, Lambda's longest run; then closes it) | nothing until the client's own idle timeout; then a truncated stream |
//! | `oversize` | after the first write, sends a prelude announcing a 25 MiB message and holds (as `stall`) | `LimitExceeded` (message length) at once, without waiting for the bytes |
//! | `exception` | after the first write, sends an `exception` message of kind [`Service`](invoke_proto::ServiceErrorKind::Service) and ends | a terminal in-stream service error of that kind |
//! | `end-early` | after the first write, ends the body cleanly (its last HTTP chunk sent), without `InvokeComplete` | a stream that ended before its end ([`MissingInvokeComplete`](invoke_proto::StreamError::MissingInvokeComplete)), never a clean end |

use std::time::Duration;

/// A set of faults to inject into one response
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)] // independent switches, combined freely
pub struct Faults {
    /// Answer 429 instead of running the function
    pub throttle: bool,
    /// Throttle this many requests of the function, then serve normally (from the header:
    /// counting the request that carries it)
    pub throttle_next: Option<u32>,
    /// Close the connection after this many body bytes
    pub close_after: Option<u64>,
    /// Corrupt the message CRC of the first chunk event
    pub corrupt_crc: bool,
    /// Wait this long after each write of the function (a write over 64 KiB is several chunk
    /// events)
    pub chunk_delay: Option<Duration>,
    /// Send half a frame after the first write and hold the connection
    pub stall_mid_frame: bool,
    /// Announce a 25 MiB message, over the clients' default limit (24 MiB + 128 KiB), after the
    /// first write and hold
    pub oversize: bool,
    /// Send an `exception` message after the first write
    pub exception: bool,
    /// End the body cleanly after the first write, without `InvokeComplete`
    pub end_early: bool,
}

impl Faults {
    /// Parses the `x-emulator-fault` header syntax
    ///
    /// # Errors
    ///
    /// The first item that is not a known fault.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut f = Self::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, value) = item
                .split_once('=')
                .map_or((item, None), |(k, v)| (k.trim(), Some(v.trim())));
            let number = || {
                value
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or_else(|| format!("fault {key} needs =N"))
            };
            match key {
                "throttle" if value.is_none() => f.throttle = true,
                "throttle" => {
                    let n = number()?;
                    f.throttle_next =
                        Some(u32::try_from(n).map_err(|_| format!("throttle={n} is too large"))?);
                }
                "close-after" => f.close_after = Some(number()?),
                "corrupt-crc" => f.corrupt_crc = true,
                "delay-ms" => {
                    // no longer than Lambda's longest run
                    let ms = number()?;
                    let longest = crate::FunctionConfig::MAX_TIMEOUT;
                    if Duration::from_millis(ms) > longest {
                        return Err(format!(
                            "delay-ms={ms} is over {} (15 minutes, Lambda's longest run)",
                            longest.as_millis()
                        ));
                    }
                    f.chunk_delay = Some(Duration::from_millis(ms));
                }
                "stall" => f.stall_mid_frame = true,
                "oversize" => f.oversize = true,
                "exception" => f.exception = true,
                "end-early" => f.end_early = true,
                other => return Err(format!("unknown fault {other:?}")),
            }
        }
        Ok(f)
    }

    /// Both sets combined
    #[must_use]
    pub fn merge(&self, other: &Self) -> Self {
        Self {
            throttle: self.throttle || other.throttle,
            throttle_next: other.throttle_next.or(self.throttle_next),
            close_after: other.close_after.or(self.close_after),
            corrupt_crc: self.corrupt_crc || other.corrupt_crc,
            chunk_delay: other.chunk_delay.or(self.chunk_delay),
            stall_mid_frame: self.stall_mid_frame || other.stall_mid_frame,
            oversize: self.oversize || other.oversize,
            exception: self.exception || other.exception,
            end_early: self.end_early || other.end_early,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_all() {
        let f = Faults::parse(
            "throttle, close-after=100,corrupt-crc,delay-ms=5,stall,oversize,exception,end-early",
        )
        .unwrap();
        assert!(f.throttle && f.corrupt_crc && f.stall_mid_frame && f.oversize && f.exception);
        assert!(f.end_early);
        assert_eq!(f.close_after, Some(100));
        assert_eq!(f.chunk_delay, Some(Duration::from_millis(5)));
        assert!(Faults::parse("close-after").is_err());
        assert!(Faults::parse("explode").is_err());
        assert_eq!(Faults::parse("").unwrap(), Faults::default());
        assert_eq!(Faults::parse("throttle=3").unwrap().throttle_next, Some(3));
        assert!(!Faults::parse("throttle=3").unwrap().throttle);
        // a delay longer than any run would hold a connection for nothing
        assert_eq!(
            Faults::parse("delay-ms=900000").unwrap().chunk_delay,
            Some(Duration::from_secs(900))
        );
        assert!(Faults::parse("delay-ms=900001").is_err());
        assert!(Faults::parse("delay-ms=18446744073709551615").is_err());
    }

    /// A function's faults merged with a request's: every switch set on either side is on;
    /// a value the request gives wins over the function's, which stays when it gives none
    #[test]
    fn merge_keeps_either_sides_switches_and_prefers_the_requests_values() {
        let switches = [
            "throttle",
            "corrupt-crc",
            "stall",
            "oversize",
            "exception",
            "end-early",
        ];
        let on = |f: &Faults| {
            [
                f.throttle,
                f.corrupt_crc,
                f.stall_mid_frame,
                f.oversize,
                f.exception,
                f.end_early,
            ]
        };
        let none = Faults::default();
        for (i, s) in switches.iter().enumerate() {
            let one = Faults::parse(s).unwrap();
            let want: Vec<bool> = (0..switches.len()).map(|j| j == i).collect();
            assert_eq!(
                on(&one.merge(&none)).to_vec(),
                want,
                "{s} from the function"
            );
            assert_eq!(on(&none.merge(&one)).to_vec(), want, "{s} from the request");
        }
        let function = Faults::parse("throttle=5,close-after=10,delay-ms=1").unwrap();
        let request = Faults::parse("throttle=2,close-after=20,delay-ms=3").unwrap();
        let merged = function.merge(&request);
        assert_eq!(
            (merged.throttle_next, merged.close_after, merged.chunk_delay),
            (Some(2), Some(20), Some(Duration::from_millis(3)))
        );
        assert_eq!(function.merge(&none), function);
    }
}
