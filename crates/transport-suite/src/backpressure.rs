//! A server that streams one long response as fast as the socket takes it and reports when
//! the client stops taking bytes: for the backpressure case

use std::io::{ErrorKind, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

use invoke_proto::bytes::BytesMut;
use invoke_proto::{Event, InvokeComplete, encode_payload_chunk};

use crate::metadata::read_request;

/// Payload messages of the stream: 128 MiB in all
pub(crate) const MESSAGES: usize = 2048;
/// Payload bytes of one message, each `b'x'`
pub(crate) const MESSAGE: usize = 64 * 1024;
/// How long a write must find no room before the server calls the client stalled
const STALL: Duration = Duration::from_millis(500);

/// What the server saw of its writes
#[derive(Debug)]
pub(crate) enum Writes {
    /// A write found no room for [`STALL`] after this many bytes: the client stopped taking
    /// them
    Stalled(usize),
    /// The whole stream went out without a stall, this many bytes
    Done(usize),
}

/// Serves one invocation on its own thread: a 200 head, [`MESSAGES`] payload messages and
/// `InvokeComplete`. After its first stall it reports how far it got and waits for
/// [`resume`](Self::resume) before it writes the rest.
pub(crate) struct StreamServer {
    addr: SocketAddr,
    writes: Receiver<Writes>,
    resume: Sender<()>,
}

impl StreamServer {
    pub(crate) fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (report, writes) = channel();
        let (resume, resumed) = channel();
        std::thread::spawn(move || {
            if let Ok((socket, _)) = listener.accept() {
                // a client that went away ends the thread; the case reports what it lacks
                let _ = serve(socket, &report, &resumed);
            }
        });
        Self {
            addr,
            writes,
            resume,
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The server's word on its writes, `None` if none came within `wait`
    pub(crate) fn writes(&self, wait: Duration) -> Option<Writes> {
        self.writes.recv_timeout(wait).ok()
    }

    /// Lets a stalled server go on
    pub(crate) fn resume(&self) {
        let _ = self.resume.send(());
    }
}

fn serve(
    mut socket: TcpStream,
    report: &Sender<Writes>,
    resume: &Receiver<()>,
) -> std::io::Result<()> {
    if read_request(&socket).is_err() {
        return Ok(()); // no invocation to answer
    }
    let payload = vec![b'x'; MESSAGE];
    let chunk = http_chunk(|out| encode_payload_chunk(&payload, out).expect("frame"));
    let mut tail = http_chunk(|out| {
        Event::InvokeComplete(InvokeComplete::success())
            .encode(out)
            .expect("frame");
    });
    tail.extend_from_slice(b"0\r\n\r\n");
    socket.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")?;
    socket.set_write_timeout(Some(STALL))?;
    let mut written = 0;
    let mut stalled = false;
    for _ in 0..MESSAGES {
        let mut at = 0;
        while at < chunk.len() {
            match socket.write(&chunk[at..]) {
                Ok(n) => {
                    at += n;
                    written += n;
                }
                Err(e)
                    if !stalled
                        && matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    stalled = true;
                    let _ = report.send(Writes::Stalled(written));
                    let _ = resume.recv();
                    socket.set_write_timeout(None)?;
                }
                Err(e) => return Err(e),
            }
        }
    }
    socket.write_all(&tail)?;
    if !stalled {
        let _ = report.send(Writes::Done(written));
    }
    Ok(())
}

/// One HTTP/1.1 chunk holding what `frame` encodes
fn http_chunk(frame: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
    let mut bytes = BytesMut::new();
    frame(&mut bytes);
    let mut chunk = format!("{:x}\r\n", bytes.len()).into_bytes();
    chunk.extend_from_slice(&bytes);
    chunk.extend_from_slice(b"\r\n");
    chunk
}
