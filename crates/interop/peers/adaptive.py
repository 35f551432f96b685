"""botocore's client-side rate limiter of the adaptive retry mode, on a given timeline.

For the differential test of invoke-proto's RateLimiter (tests/rate_limiter.rs). botocore's
own pieces, put together as botocore.retries.adaptive.register_retry_handler does, with a
clock the timeline sets and a throttling detector that says what the timeline says.

Usage: python3 adaptive.py < EVENTS, one per line: `MS send|ok|throttle`, MS the time in
milliseconds since the limiter was made. Writes one JSON line per event:

  {"acquired": BOOL, "wait": SECS}   `send`: a token taken without waiting (always while the
                                     limiter is off, as on_sending_request does nothing then);
                                     else how long acquire() would sleep before looking again
  {"rate": RATE, "enabled": BOOL}    `ok`, `throttle`: the send rate after the answer
"""

import json
import sys

from botocore.exceptions import CapacityNotAvailableError
from botocore.retries import adaptive, bucket, throttling


class TimelineClock(bucket.Clock):
    def __init__(self):
        super().__init__()
        self.now = 0.0

    def current_time(self):
        return self.now

    def sleep(self, amount):
        raise AssertionError("the timeline never waits")


class TimelineDetector:
    def is_throttling_error(self, throttled=False, **kwargs):
        return throttled


def main():
    clock = TimelineClock()
    token_bucket = bucket.TokenBucket(max_rate=1, clock=clock)
    limiter = adaptive.ClientRateLimiter(
        rate_adjustor=throttling.CubicCalculator(
            starting_max_rate=0, start_time=clock.current_time()
        ),
        rate_clocker=adaptive.RateClocker(clock),
        token_bucket=token_bucket,
        throttling_detector=TimelineDetector(),
        clock=clock,
    )
    out = []
    for line in sys.stdin:
        ms, kind = line.split()
        clock.now = int(ms) / 1000.0
        if kind == "send":
            acquired, wait = True, 0.0
            if limiter._enabled:
                try:
                    token_bucket.acquire(block=False)
                except CapacityNotAvailableError:
                    acquired, wait = False, token_bucket._sleep_amount(1)
            out.append({"acquired": acquired, "wait": wait})
        else:
            limiter.on_receiving_response(throttled=(kind == "throttle"))
            out.append({"rate": token_bucket.max_rate, "enabled": limiter._enabled})
    sys.stdout.write("".join(json.dumps(o) + "\n" for o in out))


main()
