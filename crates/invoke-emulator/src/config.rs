//! How a hosted function runs: [`FunctionConfig`]

use std::time::Duration;

use crate::fault::Faults;

/// How a hosted function runs
#[derive(Debug, Clone)]
pub struct FunctionConfig {
    /// Concurrent invocations allowed; more get a 429 throttling error. Values above
    /// [`MAX_CONCURRENCY`](Self::MAX_CONCURRENCY) count as that maximum
    pub concurrency: Option<usize>,
    /// Invocation timeout (the function is failed with `Sandbox.Timedout`; a process
    /// function's process is killed); default [`DEFAULT_TIMEOUT`](Self::DEFAULT_TIMEOUT).
    /// The service allows at most [`MAX_TIMEOUT`](Self::MAX_TIMEOUT), which `serve` enforces
    pub timeout: Duration,
    /// Faults injected into every invocation
    pub faults: Faults,
    /// Throttle this many requests before serving normally
    pub throttle_next: u32,
    /// Qualifiers (versions, aliases) accepted besides `$LATEST`
    pub qualifiers: Vec<String>,
}

impl FunctionConfig {
    /// The largest [`concurrency`](Self::concurrency) limit that can be enforced
    pub const MAX_CONCURRENCY: usize = tokio::sync::Semaphore::MAX_PERMITS;
    /// The default [`timeout`](Self::timeout): 5 minutes, so that an abandoned or stuck
    /// invocation does not hold its slot for the service's maximum
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
    /// The longest timeout the service allows: 15 minutes
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(900);
}

impl Default for FunctionConfig {
    fn default() -> Self {
        Self {
            concurrency: None,
            timeout: Self::DEFAULT_TIMEOUT,
            faults: Faults::default(),
            throttle_next: 0,
            qualifiers: Vec::new(),
        }
    }
}
