//! What a client keeps from one invocation for the next (idle connections, armed timers),
//! each for the runtime it belongs to

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::runtime::{Handle, Id};
use tokio::time::Instant;

/// How long anything is kept unused before it is dropped: a connection a peer or a NAT on
/// the way may have forgotten by then, or a timer or connection of a runtime that is no
/// longer used (which keeps that runtime's drivers in memory)
pub(crate) const KEPT_FOR: Duration = Duration::from_secs(60);

/// The id of the runtime this runs on, if any: the runtime whose drivers a timer or a
/// connection made now belongs to
pub(crate) fn current_runtime() -> Option<Id> {
    Handle::try_current().ok().map(|handle| handle.id())
}

/// Items kept for later invocations on their own runtime: at most `max`, none for longer
/// than [`KEPT_FOR`]; the one kept last of a runtime is taken first, and the one kept
/// longest makes room. Those that go are dropped once the lock is released.
pub(crate) struct Kept<T> {
    /// In the order they were kept, with their runtime and when they were kept
    items: Mutex<Vec<(T, Id, Instant)>>,
    max: usize,
}

impl<T> Kept<T> {
    /// Keeps at most `max` items
    pub(crate) fn new(max: usize) -> Self {
        Self {
            items: Mutex::new(Vec::new()),
            max,
        }
    }

    /// The item kept last for `runtime`, if any (those kept too long are dropped first)
    pub(crate) fn take(&self, runtime: Id) -> Option<T> {
        let mut stale = Vec::new();
        let mut items = self.items.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let old = items.partition_point(|(_, _, since)| now - *since >= KEPT_FOR);
        stale.extend(items.drain(..old));
        let taken = items
            .iter()
            .rposition(|(_, id, _)| *id == runtime)
            .map(|i| items.remove(i).0);
        drop(items);
        drop(stale);
        taken
    }

    /// Keeps `item` of `runtime`, the one kept longest making room if need be
    pub(crate) fn put(&self, item: T, runtime: Id) {
        if self.max == 0 {
            return;
        }
        let mut items = self.items.lock().unwrap_or_else(PoisonError::into_inner);
        let evicted = (items.len() >= self.max).then(|| items.remove(0));
        items.push((item, runtime, Instant::now()));
        drop(items);
        drop(evicted);
    }

    /// `f` of each item kept, in the order they were kept
    #[cfg(test)]
    pub(crate) fn map<R>(&self, f: impl Fn(&T) -> R) -> Vec<R> {
        let items = self.items.lock().unwrap_or_else(PoisonError::into_inner);
        items.iter().map(|(item, _, _)| f(item)).collect()
    }
}
