//! What both transports report about an invocation's response before its events

use invoke_proto::ResponseMeta;

/// The head of an invocation's response as a transport saw it: metadata, status, attempts
///
/// Both transports' `Response` types dereference to it, so `response.request_id()` and the
/// other accessors read the same in blocking and async code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseInfo {
    meta: ResponseMeta,
    attempts: u32,
    status: u16,
}

impl ResponseInfo {
    /// The metadata of a response head, its HTTP status, and the attempts made until it came
    pub fn new(meta: ResponseMeta, status: u16, attempts: u32) -> Self {
        Self {
            meta,
            attempts,
            status,
        }
    }

    /// The response metadata (executed version, content type, request id)
    pub fn meta(&self) -> &ResponseMeta {
        &self.meta
    }

    /// `X-Amz-Executed-Version`: the function version that ran
    pub fn executed_version(&self) -> Option<&str> {
        self.meta.executed_version.as_deref()
    }

    /// The function's own content type of the stream
    pub fn content_type(&self) -> Option<&str> {
        self.meta.content_type.as_deref()
    }

    /// `x-amzn-RequestId`
    pub fn request_id(&self) -> Option<&str> {
        self.meta.request_id.as_deref()
    }

    /// Attempts made until this response arrived
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The HTTP status: 200 for a stream, 204 for a passed `DryRun` (no events follow)
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Whether this answers a `DryRun` invocation (no events follow)
    pub fn is_dry_run(&self) -> bool {
        self.status == 204
    }
}

#[cfg(test)]
mod tests {
    use invoke_proto::ResponseMeta;

    use super::ResponseInfo;

    #[test]
    fn accessors_read_the_head() {
        let meta = ResponseMeta {
            executed_version: Some("7".into()),
            content_type: Some("text/plain".into()),
            request_id: Some("req-1".into()),
        };
        let info = ResponseInfo::new(meta.clone(), 200, 3);
        assert_eq!(info.meta(), &meta);
        assert_eq!(info.executed_version(), Some("7"));
        assert_eq!(info.content_type(), Some("text/plain"));
        assert_eq!(info.request_id(), Some("req-1"));
        assert_eq!((info.status(), info.attempts()), (200, 3));
        assert!(!info.is_dry_run());
        let dry = ResponseInfo::new(ResponseMeta::default(), 204, 1);
        assert!(dry.is_dry_run());
        assert_eq!((dry.executed_version(), dry.request_id()), (None, None));
    }
}
