//! What the integration tests share

/// A multi-thread runtime of two workers, IO and time enabled
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A current-thread runtime, IO and time enabled
#[allow(dead_code)] // not every test binary that shares this module uses one
pub(crate) fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Reads from `socket` until the end of a request head has arrived; false when the peer
/// closed or failed first
#[allow(dead_code)] // not every test binary that shares this module plays a server
pub(crate) fn read_request_head(socket: &mut std::net::TcpStream) -> bool {
    use std::io::Read as _;
    let mut seen = Vec::new();
    let mut buf = [0; 4096];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    true
}
