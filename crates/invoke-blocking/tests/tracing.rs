//! What the client logs through `tracing`: spans per invocation and attempt with the
//! function, request id, attempt, status and byte counts, and never a secret or a payload
//! byte

use std::fmt::{self, Write as _};
use std::io::Read as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use invoke_blocking::{Client, ProxyEnv};
use invoke_proto::{Credentials, InvokeParams};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};
use transport_suite::{Harness, KEY, SECRET};

/// Records every span and event, with its fields, as text lines
#[derive(Clone, Default)]
struct Recorder {
    lines: Arc<Mutex<String>>,
    next_id: Arc<AtomicU64>,
}

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
}

impl Recorder {
    fn push(&self, kind: &str, name: &str, fill: impl FnOnce(&mut Fields<'_>)) {
        let mut line = format!("{kind} {name}");
        fill(&mut Fields(&mut line));
        let mut lines = self.lines.lock().unwrap();
        lines.push_str(&line);
        lines.push('\n');
    }

    fn text(&self) -> String {
        self.lines.lock().unwrap().clone()
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        self.push("span", span.metadata().name(), |f| span.record(f));
        Id::from_u64(self.next_id.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn record(&self, _: &Id, values: &Record<'_>) {
        self.push("record", "", |f| values.record(f));
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        self.push("event", event.metadata().name(), |f| event.record(f));
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

#[test]
fn spans_carry_the_invocation_and_never_secrets_or_payloads() {
    let harness = Harness::start();
    let token = "SESSION-TOKEN-MUST-NOT-LEAK";
    let client = Client::builder(harness.endpoint())
        .credentials(Credentials::new(KEY, SECRET, Some(token.to_owned())))
        .proxy_env(ProxyEnv::none())
        .build()
        .unwrap();
    let marker = "PAYLOAD-MARKER-MUST-NOT-LEAK";
    let recorder = Recorder::default();
    let mut echoed = String::new();
    tracing::subscriber::with_default(recorder.clone(), || {
        let response = client
            .invoke(&InvokeParams::new("echo", format!(r#"{{"m":"{marker}"}}"#)))
            .unwrap();
        response.into_reader().read_to_string(&mut echoed).unwrap();
        // and an error response
        let e = client
            .invoke(&InvokeParams::new("no-such-function", "{}"))
            .unwrap_err();
        assert_eq!(e.attempts(), Some(1));
    });
    assert!(echoed.contains(marker), "the payload went through");
    let text = recorder.text();
    assert!(text.contains(r#"span invoke function="echo""#), "{text}");
    assert!(text.contains(r#"function="no-such-function""#), "{text}");
    assert!(text.contains("span attempt attempt=1"), "{text}");
    assert!(
        text.contains("status=200") && text.contains("status=404"),
        "{text}"
    );
    assert!(text.contains("request_id="), "{text}");
    assert!(text.contains("bytes="), "{text}");
    for secret in [SECRET, token, marker] {
        assert!(!text.contains(secret), "{secret} leaked into:\n{text}");
    }
}
