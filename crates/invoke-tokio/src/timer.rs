//! Timers handed on from one invocation to the next
//!
//! An invocation guards its wait for the response head with one timer and its body with
//! another. A new tokio timer costs more than its allocation: registered as the runtime's
//! earliest, it wakes the runtime's driver (a write to its eventfd, and one more event for
//! the next `epoll_wait`), and dropped while registered it takes the timer wheel's lock to
//! be removed. A timer handed on instead stays registered, and moving a registered timer to
//! a later deadline only updates its entry: the wheel finds out when the old deadline
//! comes, once per timeout rather than once per invocation.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use atomic_waker::AtomicWaker;
use tokio::runtime::Id;
use tokio::time::{Instant, Sleep};

use crate::kept::{Kept, current_runtime};

/// A timer as [`Timers`] hands it out
pub(crate) struct Timer {
    sleep: Pin<Box<Sleep>>,
    /// What the timer wakes, whatever task polls it: [`Forward`]
    forward: Arc<Forward>,
    /// `forward` as a waker, made once
    waker: Waker,
    /// The runtime whose driver it belongs to (one polled after its runtime shut down
    /// panics); `None` outside a runtime
    runtime: Option<Id>,
}

/// The waker a timer is polled with: it wakes the task that polled the timer last, and no
/// task once the timer is kept (dropping that task's waker needs no poll of the timer,
/// which would panic were its runtime shutting down)
struct Forward(AtomicWaker);

impl Wake for Forward {
    fn wake(self: Arc<Self>) {
        self.0.wake();
    }
}

impl Timer {
    /// A new timer due at `at`, of the current runtime (`runtime`)
    fn new(at: Instant, runtime: Option<Id>) -> Self {
        let forward = Arc::new(Forward(AtomicWaker::new()));
        Self {
            sleep: Box::pin(tokio::time::sleep_until(at)),
            waker: Waker::from(Arc::clone(&forward)),
            forward,
            runtime,
        }
    }

    /// Polls the timer, which then wakes `cx`'s task when it fires
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        // the task first, so that a timer firing meanwhile finds it
        self.forward.0.register(cx.waker());
        self.sleep
            .as_mut()
            .poll(&mut Context::from_waker(&self.waker))
    }

    /// Moves the timer to fire at `at`
    pub(crate) fn reset(&mut self, at: Instant) {
        self.sleep.as_mut().reset(at);
    }

    /// When the timer fires
    pub(crate) fn deadline(&self) -> Instant {
        self.sleep.deadline()
    }
}

/// The timers invocations finished with, each for a later invocation on its runtime
pub(crate) struct Timers {
    kept: Kept<Timer>,
}

impl Timers {
    /// Keeps at most `max` timers
    pub(crate) fn new(max: usize) -> Self {
        Self {
            kept: Kept::new(max),
        }
    }

    /// A timer due at `at`: the last one kept of the current runtime, else a new one
    pub(crate) fn take(&self, at: Instant) -> Timer {
        let runtime = current_runtime();
        match runtime.and_then(|id| self.kept.take(id)) {
            Some(mut timer) => {
                timer.reset(at);
                timer
            }
            None => Timer::new(at, runtime),
        }
    }

    /// Keeps `timer` for a later invocation, if there is room
    pub(crate) fn put(&self, timer: Timer) {
        let Some(runtime) = timer.runtime else {
            return;
        };
        // forget the task that polled it: the timer would wake that task when it fires, and
        // keep it in memory until then
        drop(timer.forward.0.take());
        self.kept.put(timer, runtime);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll, Wake, Waker};
    use std::time::Duration;

    use tokio::time::Instant;

    use super::{Timer, Timers};
    use crate::kept::KEPT_FOR;

    /// Counts its wake-ups
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counting() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        (Arc::clone(&count), Waker::from(count))
    }

    /// The address of the timer's `Sleep` (the same one handed out again, or not)
    fn id(timer: &Timer) -> *const tokio::time::Sleep {
        &raw const *timer.sleep
    }

    fn paused() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("runtime")
    }

    /// Lets the runtime's driver fire what is due
    async fn turn() {
        tokio::task::yield_now().await;
    }

    #[test]
    fn a_timer_put_back_is_handed_out_again_and_fires_at_its_new_deadline() {
        paused().block_on(async {
            let timers = Timers::new(4);
            let start = Instant::now();
            let (_, waker) = counting();
            let mut cx = Context::from_waker(&waker);
            let mut first = timers.take(start + Duration::from_secs(1));
            assert!(first.poll(&mut cx).is_pending());
            let address = id(&first);
            timers.put(first);

            let mut again = timers.take(start + Duration::from_secs(5));
            assert_eq!(id(&again), address, "the kept timer, not a new one");
            assert_eq!(again.deadline(), start + Duration::from_secs(5));
            tokio::time::advance(Duration::from_secs(2)).await;
            turn().await;
            assert!(again.poll(&mut cx).is_pending(), "not at the old deadline");
            tokio::time::advance(Duration::from_secs(3)).await;
            turn().await;
            assert_eq!(again.poll(&mut cx), Poll::Ready(()));

            // fired, it is handed out again too, and made to wait anew
            timers.put(again);
            let mut third = timers.take(Instant::now() + Duration::from_secs(10));
            assert_eq!(id(&third), address);
            assert!(third.poll(&mut cx).is_pending());

            // registered for later than the next call needs: moved earlier, not left late
            timers.put(third);
            let mut sooner = timers.take(Instant::now() + Duration::from_secs(1));
            assert_eq!(id(&sooner), address);
            assert!(sooner.poll(&mut cx).is_pending());
            tokio::time::advance(Duration::from_secs(1)).await;
            turn().await;
            assert_eq!(sooner.poll(&mut cx), Poll::Ready(()));
        });
    }

    #[test]
    fn a_timer_put_back_no_longer_wakes_the_task_that_polled_it() {
        paused().block_on(async {
            let timers = Timers::new(4);
            let (count, waker) = counting();
            let mut timer = timers.take(Instant::now() + Duration::from_secs(1));
            assert!(timer.poll(&mut Context::from_waker(&waker)).is_pending());
            timers.put(timer);
            tokio::time::advance(Duration::from_secs(2)).await;
            turn().await;
            assert_eq!(count.0.load(Ordering::SeqCst), 0);

            // while it is out, it does wake its task
            let mut timer = timers.take(Instant::now() + Duration::from_secs(1));
            assert!(timer.poll(&mut Context::from_waker(&waker)).is_pending());
            tokio::time::advance(Duration::from_secs(2)).await;
            turn().await;
            assert_eq!(count.0.load(Ordering::SeqCst), 1);
        });
    }

    #[test]
    fn timers_are_handed_out_only_on_their_own_runtime() {
        let timers = Timers::new(4);
        let first = paused();
        let (_, waker) = counting();
        let address = first.block_on(async {
            let mut timer = timers.take(Instant::now() + Duration::from_secs(1));
            assert!(timer.poll(&mut Context::from_waker(&waker)).is_pending());
            let address = id(&timer);
            timers.put(timer);
            address
        });
        // the first runtime is gone: its timer (which would panic if polled) is not
        // handed out on another
        drop(first);
        paused().block_on(async {
            let mut timer = timers.take(Instant::now() + Duration::from_secs(1));
            assert_ne!(id(&timer), address);
            assert!(timer.poll(&mut Context::from_waker(&waker)).is_pending());
        });
        // one polled, then put back after its runtime shut down and outside any runtime
        // (as a response dropped late), is neither polled nor handed out again
        let third = paused();
        let mut late =
            third.block_on(async { timers.take(Instant::now() + Duration::from_secs(1)) });
        let address = id(&late);
        third.block_on(async {
            assert!(late.poll(&mut Context::from_waker(&waker)).is_pending());
        });
        drop(third);
        timers.put(late);
        paused().block_on(async {
            let timer = timers.take(Instant::now() + Duration::from_secs(1));
            assert_ne!(id(&timer), address);
        });
    }

    #[test]
    fn at_most_max_are_kept_and_none_longer_than_a_minute() {
        paused().block_on(async {
            let timers = Timers::new(2);
            let at = Instant::now() + Duration::from_secs(1);
            let three = [timers.take(at), timers.take(at), timers.take(at)];
            let addresses: Vec<_> = three.iter().map(id).collect();
            for timer in three {
                timers.put(timer);
            }
            let kept = timers.kept.map(id);
            assert_eq!(kept, addresses[1..], "the oldest made room");

            // one kept a minute is dropped, one kept half a minute handed out
            let timers = Timers::new(2);
            let (older, younger) = (timers.take(at), timers.take(at));
            let address = id(&younger);
            timers.put(older);
            tokio::time::advance(KEPT_FOR / 2).await;
            timers.put(younger);
            tokio::time::advance(KEPT_FOR / 2).await;
            let timer = timers.take(Instant::now() + Duration::from_secs(1));
            assert_eq!(id(&timer), address);
            assert!(timers.kept.map(id).is_empty());

            let none = Timers::new(0);
            none.put(timers.take(at));
            assert!(none.kept.map(id).is_empty());
        });
    }
}
