//! A whole payload gathered in memory, up to a limit: both transports' `collect_payload`

use bytes::{Bytes, BytesMut};
use invoke_proto::{Event, InvokeComplete};

use crate::client_error::ClientError;

/// The most `collect_payload` keeps unless told otherwise: the largest response the service
/// streams (200 MB, `protocol.md` §7), so that a collect with the default never cuts a
/// response the service can send
pub const COLLECT_LIMIT: usize = 200_000_000;

/// An invocation's whole payload and its `InvokeComplete`, from a transport's
/// `collect_payload`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collected {
    /// The payload bytes, in order (a single `PayloadChunk` is not copied)
    pub payload: Bytes,
    /// How the invocation ended: a success, with the log tail when one was asked for
    /// ([`InvokeComplete::decoded_log`])
    pub complete: InvokeComplete,
}

/// Gathers the events of one response into a [`Collected`], refusing a payload over its
/// limit before holding it
///
/// A transport hands it every item of the response's events with [`take`](Self::take);
/// it answers `Ok(None)` while more are needed.
///
/// ```
/// use invoke_config::{ClientError, Collector};
/// use invoke_proto::bytes::Bytes;
/// use invoke_proto::{Event, InvokeComplete};
///
/// let mut collector = Collector::new(16);
/// for part in ["hello, ", "world"] {
///     let chunk = Event::PayloadChunk(Bytes::from_static(part.as_bytes()));
///     assert!(collector.take(Some(Ok(chunk)))?.is_none()); // more to come
/// }
/// let complete = Event::InvokeComplete(InvokeComplete::default());
/// assert!(collector.take(Some(Ok(complete)))?.is_none());
/// let collected = collector.take(None)?.expect("the events ended");
/// assert_eq!(collected.payload, "hello, world");
///
/// // one byte over the limit is refused, without holding it
/// let mut small = Collector::new(4);
/// let chunk = Event::PayloadChunk(Bytes::from_static(b"12345"));
/// let over = small.take(Some(Ok(chunk)));
/// assert!(matches!(over, Err(ClientError::PayloadTooLarge { limit: 4 })));
/// # Ok::<(), ClientError>(())
/// ```
#[derive(Debug)]
pub struct Collector {
    limit: usize,
    /// The first chunk, kept as it came while it is the only one
    first: Bytes,
    /// The chunks copied together once a second one came
    joined: BytesMut,
    /// The successful `InvokeComplete`, once it came
    complete: Option<InvokeComplete>,
}

impl Collector {
    /// A collector that refuses a payload longer than `limit` bytes
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            first: Bytes::new(),
            joined: BytesMut::new(),
            complete: None,
        }
    }

    /// Payload bytes held so far
    pub fn len(&self) -> usize {
        self.first.len() + self.joined.len()
    }

    /// Whether no payload byte came yet
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the next item of the events (`None` once they ended): the payload and the
    /// `InvokeComplete` once the events ended after one, `Ok(None)` while more are needed
    ///
    /// # Errors
    ///
    /// The events' error; [`ClientError::Function`] for an `InvokeComplete` with an
    /// `ErrorCode`; [`ClientError::PayloadTooLarge`] for a chunk that takes the payload over
    /// the limit; [`ClientError::EventsEnded`] when the events ended without one (a
    /// transport reports a stream cut short as an error of its own first, so these are
    /// events the caller had already taken to their end).
    pub fn take(
        &mut self,
        next: Option<Result<Event, ClientError>>,
    ) -> Result<Option<Collected>, ClientError> {
        match next {
            Some(Ok(Event::PayloadChunk(chunk))) => {
                if chunk.len() > self.limit - self.len() {
                    return Err(ClientError::PayloadTooLarge { limit: self.limit });
                }
                if self.is_empty() {
                    self.first = chunk;
                } else {
                    if self.joined.is_empty() {
                        self.joined.extend_from_slice(&self.first);
                        self.first = Bytes::new();
                    }
                    self.joined.extend_from_slice(&chunk);
                }
                Ok(None)
            }
            Some(Ok(Event::InvokeComplete(complete))) if complete.is_error() => {
                Err(ClientError::Function(complete))
            }
            Some(Ok(Event::InvokeComplete(complete))) => {
                self.complete = Some(complete);
                Ok(None)
            }
            // an event of a type `invoke-proto` does not know (`Event::Unknown`) carries no
            // payload
            Some(Ok(_)) => Ok(None),
            Some(Err(e)) => Err(e),
            None => match self.complete.take() {
                Some(complete) => Ok(Some(Collected {
                    payload: if self.joined.is_empty() {
                        std::mem::take(&mut self.first)
                    } else {
                        std::mem::take(&mut self.joined).freeze()
                    },
                    complete,
                })),
                None => Err(ClientError::EventsEnded),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use invoke_proto::{Headers, Message};

    use super::*;

    fn chunk(b: &'static [u8]) -> Event {
        Event::PayloadChunk(Bytes::from_static(b))
    }

    fn complete() -> Event {
        Event::InvokeComplete(InvokeComplete {
            log_result: Some("aGk=".into()),
            ..InvokeComplete::default()
        })
    }

    /// Hands `c` the next event
    fn take(c: &mut Collector, event: Event) -> Result<Option<Collected>, ClientError> {
        c.take(Some(Ok(event)))
    }

    #[test]
    fn chunks_are_joined_in_order_and_one_chunk_is_not_copied() {
        let mut c = Collector::new(100);
        let one = Bytes::from_static(b"only");
        assert!(
            c.take(Some(Ok(Event::PayloadChunk(one.clone()))))
                .unwrap()
                .is_none()
        );
        let unknown = Event::Unknown {
            event_type: "Future".into(),
            message: Message::new(Headers::new(), "ignored"),
        };
        assert!(c.take(Some(Ok(unknown))).unwrap().is_none());
        assert!(take(&mut c, complete()).unwrap().is_none());
        let got = c.take(None).unwrap().unwrap();
        assert_eq!(got.payload, "only");
        assert_eq!(got.payload.as_ptr(), one.as_ptr(), "the chunk itself");
        assert_eq!(got.complete.decoded_log().unwrap().unwrap(), b"hi");

        let mut c = Collector::new(100);
        for part in [&b"one "[..], b"", b"two ", b"three"] {
            c.take(Some(Ok(Event::PayloadChunk(Bytes::from_static(part)))))
                .unwrap();
        }
        assert_eq!(c.len(), 13);
        take(&mut c, complete()).unwrap();
        assert_eq!(c.take(None).unwrap().unwrap().payload, "one two three");

        // no payload at all
        let mut c = Collector::new(0);
        assert!(c.is_empty());
        take(&mut c, complete()).unwrap();
        assert!(c.take(None).unwrap().unwrap().payload.is_empty());
    }

    #[test]
    fn the_limit_holds_to_the_byte() {
        let mut c = Collector::new(8);
        take(&mut c, chunk(b"1234")).unwrap();
        take(&mut c, chunk(b"5678")).unwrap();
        take(&mut c, complete()).unwrap();
        assert_eq!(c.take(None).unwrap().unwrap().payload, "12345678");

        let mut c = Collector::new(8);
        take(&mut c, chunk(b"1234")).unwrap();
        let e = take(&mut c, chunk(b"56789")).unwrap_err();
        assert!(
            matches!(e, ClientError::PayloadTooLarge { limit: 8 }),
            "{e}"
        );
        assert_eq!(c.len(), 4, "the chunk over the limit is not held");
        assert_eq!(
            e.to_string(),
            "the payload is longer than the 8 bytes it may be collected up to"
        );
    }

    #[test]
    fn a_function_error_an_error_and_a_missing_end_fail() {
        let mut c = Collector::new(100);
        take(&mut c, chunk(b"partial")).unwrap();
        let failed = InvokeComplete {
            error_code: Some("Unhandled".into()),
            error_details: Some("boom".into()),
            ..InvokeComplete::default()
        };
        match c.take(Some(Ok(Event::InvokeComplete(failed.clone())))) {
            Err(ClientError::Function(got)) => assert_eq!(got, failed),
            other => panic!("not a function error: {other:?}"),
        }

        let mut c = Collector::new(100);
        let e = c
            .take(Some(Err(ClientError::Config("broken".into()))))
            .unwrap_err();
        assert_eq!(e.to_string(), "invalid client configuration: broken");

        // the events ended before an InvokeComplete (the transports report a cut stream
        // themselves; this is a response whose events were taken already)
        let mut c = Collector::new(100);
        take(&mut c, chunk(b"x")).unwrap();
        assert!(matches!(c.take(None), Err(ClientError::EventsEnded)));
    }
}
