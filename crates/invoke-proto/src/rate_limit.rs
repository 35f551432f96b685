//! The client-side rate limiter of the AWS SDKs' `adaptive` retry mode

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The lowest send rate, in attempts per second
const MIN_FILL_RATE: f64 = 0.5;
/// The smallest bucket
const MIN_CAPACITY: f64 = 1.0;
/// Weight of the newest half second in the measured rate
const SMOOTH: f64 = 0.8;
/// What a throttle leaves of the rate
const BETA: f64 = 0.7;
/// How fast the rate grows back after a throttle
const SCALE_CONSTANT: f64 = 0.4;

/// The client-side rate limiter of the AWS SDKs' `adaptive` retry mode (sans-IO: the caller
/// passes the time)
///
/// Off until the first throttling error. From then on, every attempt takes a token from a
/// bucket refilled at the *send rate*: a throttle sets that rate to 0.7 x the rate the
/// client's attempts were measured being answered at, and answers let it grow back along a
/// cubic curve (CUBIC congestion control), never above twice the measured rate nor below 0.5
/// attempts per second. The SDKs' algorithm (botocore's `retries/adaptive.py`, smithy-rs's
/// `ClientRateLimiter`). An attempt without a token waits and asks again, as botocore's
/// blocking `acquire` does: a wait is at most the time one token takes at the rate of the
/// moment, so a rate raised meanwhile serves the waiting attempts at once.
///
/// Share one limiter between all invocations of a client (`Arc`);
/// [`InvokeDriver`](crate::InvokeDriver) calls it when given one with
/// [`with_rate_limiter`](crate::InvokeDriver::with_rate_limiter).
///
/// ```
/// use std::time::{Duration, Instant};
/// use invoke_proto::RateLimiter;
///
/// let start = Instant::now();
/// let limiter = RateLimiter::new(start);
/// assert_eq!(limiter.try_acquire(start), Ok(()), "off until a throttle");
/// // ten attempts answered within a second, the last one throttled
/// for k in 1..=10 {
///     let at = start + Duration::from_millis(100 * k);
///     limiter.update(at, k == 10);
/// }
/// assert!(limiter.is_enabled());
/// let rate = limiter.send_rate();
/// assert!(rate > 0.5 && rate < 10.0, "{rate}");
/// ```
#[derive(Debug)]
pub struct RateLimiter {
    /// Time zero of the limiter's clock
    start: Instant,
    state: Mutex<State>,
}

#[derive(Debug, Clone, Copy)]
struct State {
    /// Whether a throttle was seen: until then, attempts are not limited
    enabled: bool,
    /// Tokens per second, the send rate allowed
    fill_rate: f64,
    /// The most tokens the bucket holds
    max_capacity: f64,
    /// Tokens in the bucket, from 0 to `max_capacity`
    capacity: f64,
    /// When the bucket was last refilled (seconds on the limiter's clock)
    refilled_at: f64,
    /// The smoothed rate of answered attempts, per second
    measured_rate: f64,
    /// The half second whose answered attempts are being counted
    bucket: f64,
    /// Attempts answered within `bucket`
    count: u32,
    /// The rate when the last throttle came
    last_max_rate: f64,
    /// When the last throttle came
    last_throttle: f64,
}

impl RateLimiter {
    /// A limiter whose clock starts at `now`, off until the first throttle
    pub fn new(now: Instant) -> Self {
        Self {
            start: now,
            state: Mutex::new(State {
                enabled: false,
                // botocore's first rate (until the first answer sets one)
                fill_rate: 1.0,
                max_capacity: MIN_CAPACITY,
                capacity: 0.0,
                refilled_at: 0.0,
                measured_rate: 0.0,
                bucket: 0.0,
                count: 0,
                last_max_rate: 0.0,
                last_throttle: 0.0,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // the state stays consistent whatever panicked while holding it: plain numbers
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Seconds from the limiter's start to `at` (0 for an earlier `at`)
    fn seconds(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.start).as_secs_f64()
    }

    /// Takes the token of an attempt about to be sent at `at`: `Ok` when the bucket held
    /// one (or the limiter is off); else `Err(wait)`, taking nothing: ask again after
    /// `wait`, when the bucket will hold one at the current rate (at least a microsecond)
    ///
    /// # Errors
    ///
    /// The wait, when the bucket holds less than a token.
    pub fn try_acquire(&self, at: Instant) -> Result<(), Duration> {
        let t = self.seconds(at);
        let mut s = self.state();
        if !s.enabled {
            return Ok(());
        }
        s.refill(t);
        if s.capacity >= 1.0 {
            s.capacity -= 1.0;
            return Ok(());
        }
        // less than a token short, at MIN_FILL_RATE or more: at most two seconds
        let wait = Duration::try_from_secs_f64((1.0 - s.capacity) / s.fill_rate)
            .unwrap_or(Duration::from_secs(2));
        Err(wait.max(Duration::from_micros(1)))
    }

    /// Takes in an attempt's outcome at `at`: whether the service throttled it (any other
    /// answer or failure is `false`)
    pub fn update(&self, at: Instant, throttled: bool) {
        let t = self.seconds(at);
        let mut s = self.state();
        s.measure(t);
        let rate = if throttled {
            let rate = if s.enabled {
                s.measured_rate.min(s.fill_rate)
            } else {
                s.measured_rate
            };
            s.last_max_rate = rate;
            s.last_throttle = t;
            s.enabled = true;
            rate * BETA
        } else {
            s.cubic_success(t)
        };
        let rate = rate.min(2.0 * s.measured_rate);
        s.refill(t);
        s.fill_rate = rate.max(MIN_FILL_RATE);
        s.max_capacity = rate.max(MIN_CAPACITY);
        s.capacity = s.capacity.min(s.max_capacity);
    }

    /// Whether a throttle turned the limiter on
    pub fn is_enabled(&self) -> bool {
        self.state().enabled
    }

    /// The send rate allowed, in attempts per second (not enforced while
    /// [`is_enabled`](Self::is_enabled) is false)
    pub fn send_rate(&self) -> f64 {
        self.state().fill_rate
    }
}

impl State {
    /// Adds the tokens earned since the last refill (none for a time before it)
    fn refill(&mut self, t: f64) {
        let elapsed = (t - self.refilled_at).max(0.0);
        self.capacity = (self.capacity + elapsed * self.fill_rate).min(self.max_capacity);
        self.refilled_at = self.refilled_at.max(t);
    }

    /// Counts an answered attempt into the measured rate, by half seconds
    fn measure(&mut self, t: f64) {
        let bucket = (t * 2.0).floor() / 2.0;
        self.count = self.count.saturating_add(1);
        if bucket > self.bucket {
            let rate = f64::from(self.count) / (bucket - self.bucket);
            self.measured_rate = rate * SMOOTH + self.measured_rate * (1.0 - SMOOTH);
            self.count = 0;
            self.bucket = bucket;
        }
    }

    /// The rate a success allows: the cubic curve through the last throttle's rate
    fn cubic_success(&self, t: f64) -> f64 {
        let window = (self.last_max_rate * (1.0 - BETA) / SCALE_CONSTANT).cbrt();
        let dt = t - self.last_throttle - window;
        SCALE_CONSTANT * dt.powi(3) + self.last_max_rate
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn at(start: Instant, secs: f64) -> Instant {
        start + Duration::from_secs_f64(secs)
    }

    /// A limiter that saw 20 answers a second for two seconds from `start`, none throttled
    pub(crate) fn answering_20_a_second(start: Instant) -> RateLimiter {
        let l = RateLimiter::new(start);
        for k in 0..40 {
            l.update(start + Duration::from_millis(50 * k), false);
        }
        l
    }

    /// Off until a throttle: no wait, no token taken, whatever the pace
    #[test]
    fn off_until_the_first_throttle() {
        let start = Instant::now();
        let l = RateLimiter::new(start);
        for k in 0..100 {
            let now = at(start, f64::from(k) * 0.001);
            assert_eq!(l.try_acquire(now), Ok(()));
            l.update(now, false);
        }
        assert!(!l.is_enabled());
        l.update(at(start, 0.2), true);
        assert!(l.is_enabled());
    }

    /// The measured rate: answers counted per half second, the newest weighing 0.8
    #[test]
    fn the_measured_rate_is_smoothed_by_half_seconds() {
        let start = Instant::now();
        let l = RateLimiter::new(start);
        // 10 answers in the first half second, the 11th opens the next one
        for k in 0..10 {
            l.update(at(start, 0.04 * f64::from(k)), false);
        }
        assert!(
            l.state().measured_rate.abs() < f64::EPSILON,
            "not measured yet"
        );
        l.update(at(start, 0.5), false);
        // 11 answers counted over 0.5 s: 22/s, weighted 0.8
        assert!((l.state().measured_rate - 17.6).abs() < 1e-9);
        l.update(at(start, 1.0), false);
        // one answer over 0.5 s: 2/s; 0.8 x 2 + 0.2 x 17.6
        assert!((l.state().measured_rate - 5.12).abs() < 1e-9);
    }

    /// A throttle sets the rate to 0.7 x the measured one (or the allowed one when lower),
    /// and the curve grows it back to the throttle's rate after its window, then past it
    #[test]
    fn a_throttle_cuts_the_rate_and_successes_grow_it_back_along_the_cubic() {
        let start = Instant::now();
        let l = answering_20_a_second(start);
        let measured = l.state().measured_rate;
        assert!((measured - 20.0).abs() < 1.0, "{measured}");
        l.update(at(start, 2.0), true);
        let s = *l.state();
        assert!(s.enabled);
        assert!((s.last_max_rate - s.measured_rate).abs() < 1e-9);
        assert!((s.fill_rate - 0.7 * s.last_max_rate).abs() < 1e-9, "{s:?}");
        assert!((s.max_capacity - s.fill_rate).abs() < 1e-9);
        // the window: cbrt(rate x 0.3 / 0.4); at its end the curve is back at the rate
        let window = (s.last_max_rate * 0.3 / 0.4).cbrt();
        assert!((s.cubic_success(2.0 + window) - s.last_max_rate).abs() < 1e-9);
        assert!(s.cubic_success(2.0 + window / 2.0) < s.last_max_rate);
        assert!(s.cubic_success(2.0 + 2.0 * window) > s.last_max_rate);
        // a success just after the throttle allows the curve's value, not more
        l.update(at(start, 2.01), false);
        let after = l.send_rate();
        assert!((after - s.cubic_success(2.01)).abs() < 1e-9, "{after}");
        // and never more than twice the measured rate
        l.update(at(start, 60.0), false);
        let s = *l.state();
        assert!((s.fill_rate - 2.0 * s.measured_rate).abs() < 1e-9, "{s:?}");
    }

    /// A second throttle starts from the lower of the measured and the allowed rate
    #[test]
    fn a_throttle_while_on_starts_from_the_allowed_rate_when_lower() {
        let start = Instant::now();
        let l = answering_20_a_second(start);
        l.update(at(start, 2.0), true);
        let allowed = l.send_rate();
        // the measured rate stays near 20/s; the allowed one is 0.7 x that
        for k in 1..=10 {
            l.update(at(start, 2.0 + 0.05 * f64::from(k)), false);
        }
        let s = *l.state();
        assert!(s.fill_rate < s.measured_rate, "{s:?}");
        let allowed_now = s.fill_rate;
        l.update(at(start, 2.55), true);
        let s2 = *l.state();
        assert!((s2.last_max_rate - allowed_now).abs() < 1e-9, "{s2:?}");
        assert!(s2.fill_rate < allowed, "{s2:?}");
    }

    /// No rate below 0.5 a second, no bucket below one token
    #[test]
    fn the_rate_and_the_bucket_have_floors() {
        let start = Instant::now();
        let l = RateLimiter::new(start);
        l.update(at(start, 10.0), true);
        let s = *l.state();
        assert!((s.fill_rate - MIN_FILL_RATE).abs() < f64::EPSILON, "{s:?}");
        assert!(
            (s.max_capacity - MIN_CAPACITY).abs() < f64::EPSILON,
            "{s:?}"
        );
    }

    /// Once on, every attempt takes a token; one that finds none is told the time a token
    /// takes at the rate of the moment, takes nothing, and asks again
    #[test]
    fn attempts_take_tokens_or_wait_for_the_next_one() {
        let start = Instant::now();
        let l = RateLimiter::new(start);
        l.update(start, true);
        let secs = Duration::from_secs;
        // 0.5 tokens a second, one at most, none yet
        assert_eq!(l.try_acquire(start), Err(secs(2)));
        assert_eq!(l.try_acquire(start), Err(secs(2)), "nothing taken");
        assert_eq!(
            l.try_acquire(at(start, 1.0)),
            Err(secs(1)),
            "half a token earned"
        );
        assert_eq!(l.try_acquire(at(start, 2.0)), Ok(()));
        assert_eq!(l.try_acquire(at(start, 2.0)), Err(secs(2)));
        // half a token earned in the second since the last refill
        assert_eq!(l.try_acquire(at(start, 3.0)), Err(secs(1)));
        // a full bucket holds no more than its capacity, however long the pause
        let much_later = at(start, 1000.0);
        assert_eq!(l.try_acquire(much_later), Ok(()));
        assert_eq!(l.try_acquire(much_later), Err(secs(2)));
    }

    /// A rate raised while attempts wait serves them at once: the next ask finds the tokens
    /// the new rate earned
    #[test]
    fn a_rate_raised_while_waiting_serves_the_waiting() {
        let start = Instant::now();
        let l = answering_20_a_second(start);
        l.update(at(start, 2.0), true);
        let cut = l.send_rate();
        assert!(cut > 10.0, "{cut}");
        // the bucket's tokens are taken; the next one comes within a token's time at the
        // cut rate
        let taken = (0..100)
            .take_while(|_| l.try_acquire(at(start, 2.0)).is_ok())
            .count();
        assert!((1..100).contains(&taken), "{taken} tokens");
        let Err(wait) = l.try_acquire(at(start, 2.0)) else {
            panic!("a token left")
        };
        assert!(wait.as_secs_f64() <= 1.0 / cut, "{wait:?}");
        // answers at 20 a second while it waits raise the rate past the cut
        for k in 1..=20 {
            l.update(at(start, 2.0 + 0.05 * f64::from(k)), false);
        }
        assert!(l.send_rate() > cut);
        let served = (0..100)
            .take_while(|_| l.try_acquire(at(start, 3.0)).is_ok())
            .count();
        assert!((10..100).contains(&served), "{served}");
    }

    /// Times before the limiter's start or going backwards earn nothing and panic nowhere
    #[test]
    fn times_out_of_order_earn_nothing() {
        let start = Instant::now() + Duration::from_secs(5);
        let l = RateLimiter::new(start);
        l.update(at(start, 0.0), true);
        assert_eq!(l.try_acquire(at(start, 4.0)), Ok(()));
        let early = start.checked_sub(Duration::from_secs(5)).unwrap();
        assert_eq!(l.try_acquire(early), Err(Duration::from_secs(2)));
        l.update(early, false);
        l.update(early, true);
        assert!(l.send_rate() >= MIN_FILL_RATE);
    }
}
