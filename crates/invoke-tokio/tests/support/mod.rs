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
    read_request_head_and_length(socket).is_some()
}

/// As [`read_request_head`]: the head's `Content-Length` (0 without one) and how many
/// payload bytes came with the head, `None` when the peer closed or failed first
#[allow(dead_code)] // not every test binary that shares this module plays a server
pub(crate) fn read_request_head_and_length(
    socket: &mut std::net::TcpStream,
) -> Option<(usize, usize)> {
    use std::io::Read as _;
    let mut seen = Vec::new();
    let mut buf = [0; 4096];
    let end = loop {
        if let Some(at) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match socket.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&seen[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0);
    Some((length, seen.len() - end))
}
