//! `invoke_proto::RateLimiter` against botocore's rate limiter of the adaptive retry mode
//!
//! The same timelines of sends and answers (throttles among them) go through both: botocore's
//! own classes, run by `peers/adaptive.py` with a clock the timeline sets, and ours. After
//! every answer the send rates must agree (and whether the limiter is on); at every send,
//! whether a token was there, and if not, how long to wait before asking again. botocore
//! comes from the pinned peers that `.ci/sdk-peers.sh` installs (`target/sdk-peers`, or
//! `INVOKE_SDK_PEERS`); without it the test says so and passes, except under `CI=true`,
//! where that is a failure.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use invoke_interop::{guarded, runs, sdk_peers_dir, skip};
use invoke_proto::RateLimiter;
use serde_json::Value;
use tokio::io::AsyncWriteExt as _;

/// One event of a timeline, at a time in milliseconds from the limiter's start
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// An attempt about to go: take a token if one is there
    Send,
    /// An answer
    Ok,
    /// A throttling error
    Throttle,
}

/// xorshift64: the timelines are the same every run
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Walks `phases` phases of about five seconds each, alternately dense (steps of 0 to 20 ms)
/// and sparse (0 to 400 ms), calling `step` at each time (ms) with whether its phase is dense
fn walk(rng: &mut Rng, phases: u32, mut step: impl FnMut(&mut Rng, u64, bool)) {
    let mut t = 0;
    for phase in 0..phases {
        let end = t + 5000;
        let dense = phase % 2 == 0;
        while t < end {
            t += if dense { rng.below(21) } else { rng.below(401) };
            step(rng, t, dense);
        }
    }
}

/// A timeline of [`walk`]'s phases, half sends, half answers, whatever the limiter says (a
/// client that sends regardless): one answer in ten a throttle in the dense phases, one in
/// forty in the sparse ones
fn unpaced_timeline(rng: &mut Rng, phases: u32) -> Vec<(u64, Kind)> {
    let mut events = Vec::new();
    walk(rng, phases, |rng, t, dense| {
        let kind = match rng.below(2) {
            0 => Kind::Send,
            _ if rng.below(if dense { 10 } else { 40 }) == 0 => Kind::Throttle,
            _ => Kind::Ok,
        };
        events.push((t, kind));
    });
    events
}

/// A timeline of [`walk`]'s phases, an attempt at each step: its send, then, when a limiter of
/// ours gave it a token, its answer; in the dense phases the service throttles what passes 10
/// answers in the last second, in the sparse ones one answer in forty
fn paced_timeline(rng: &mut Rng, phases: u32) -> Vec<(u64, Kind)> {
    let start = Instant::now();
    let pacing = RateLimiter::new(start);
    let mut events = Vec::new();
    let mut answered: VecDeque<u64> = VecDeque::new();
    walk(rng, phases, |rng, t, dense| {
        let at = start + Duration::from_millis(t);
        events.push((t, Kind::Send));
        if pacing.try_acquire(at).is_err() {
            return;
        }
        while answered.front().is_some_and(|a| a + 1000 <= t) {
            answered.pop_front();
        }
        let throttle = if dense {
            answered.len() >= 10
        } else {
            rng.below(40) == 0
        };
        if !throttle {
            answered.push_back(t);
        }
        pacing.update(at, throttle);
        events.push((t, if throttle { Kind::Throttle } else { Kind::Ok }));
    });
    events
}

/// Where botocore is installed, if it is and `python3` runs
fn installed() -> Option<PathBuf> {
    let python = sdk_peers_dir().join("python");
    if runs("python3") && python.join("botocore").is_dir() {
        return Some(python);
    }
    skip(&format!(
        "botocore is not installed in {} or python3 does not run: run .ci/sdk-peers.sh",
        python.display()
    ));
    None
}

/// What botocore's limiter said at each event of `events`
async fn botocore(python: &Path, events: &[(u64, Kind)]) -> Vec<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/adaptive.py");
    let mut child = tokio::process::Command::new("python3")
        .arg(script)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("PYTHONPATH", python)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs");
    let mut input = String::new();
    for (ms, kind) in events {
        let kind = match kind {
            Kind::Send => "send",
            Kind::Ok => "ok",
            Kind::Throttle => "throttle",
        };
        writeln!(input, "{ms} {kind}").unwrap();
    }
    let mut stdin = child.stdin.take().unwrap();
    // written while the output is read, so that neither pipe fills up and stalls the other
    let write = async move {
        stdin.write_all(input.as_bytes()).await.unwrap();
        drop(stdin);
    };
    let ((), output) = guarded("botocore's limiter", async {
        tokio::join!(write, child.wait_with_output())
    })
    .await;
    let output = output.unwrap();
    assert!(
        output.status.success(),
        "adaptive.py: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), events.len());
    lines
}

#[tokio::test]
async fn the_send_rate_and_the_tokens_agree_with_botocore() {
    let Some(python) = installed() else { return };
    let mut rng = Rng(0x853c_49e6_748f_ea9b);
    for case in 0..4 {
        let events = if case % 2 == 0 {
            unpaced_timeline(&mut rng, 6)
        } else {
            paced_timeline(&mut rng, 12)
        };
        let theirs = botocore(&python, &events).await;
        let start = Instant::now();
        let ours = RateLimiter::new(start);
        let (mut throttles, mut refused) = (0, 0);
        let mut top = 0f64;
        for (k, ((ms, kind), want)) in events.iter().zip(&theirs).enumerate() {
            let at = start + Duration::from_millis(*ms);
            let what = format!("case {case}, event {k} ({kind:?} at {ms} ms)");
            match kind {
                Kind::Send => {
                    let got = ours.try_acquire(at);
                    assert_eq!(got.is_ok(), want["acquired"].as_bool().unwrap(), "{what}");
                    if let Err(wait) = got {
                        // the same wait before looking again (ours at least a microsecond)
                        let theirs = want["wait"].as_f64().unwrap().max(1e-6);
                        assert!(
                            (wait.as_secs_f64() - theirs).abs() < 1e-6,
                            "{what}: wait {wait:?}, botocore {theirs} s"
                        );
                        refused += 1;
                    }
                }
                Kind::Ok | Kind::Throttle => {
                    ours.update(at, matches!(kind, Kind::Throttle));
                    throttles += usize::from(matches!(kind, Kind::Throttle));
                    let rate = want["rate"].as_f64().unwrap();
                    let got = ours.send_rate();
                    top = top.max(got);
                    assert!(
                        (got - rate).abs() <= 1e-9 * rate.abs().max(1.0),
                        "{what}: send rate {got}, botocore {rate}"
                    );
                    assert_eq!(
                        ours.is_enabled(),
                        want["enabled"].as_bool().unwrap(),
                        "{what}"
                    );
                }
            }
        }
        // the timelines do what they are for: throttles, sends refused a token, and a send
        // rate that grew well past its floor
        assert!(
            throttles > 5 && refused > 10 && top > 5.0,
            "case {case}: {throttles} throttles, {refused} refused, at most {top}/s"
        );
    }
}
