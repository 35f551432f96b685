//! Internals the fuzz targets check against; built only with `--cfg fuzzing`

/// Strips an error code as restJson1 asks: cut at the first `:`, keep what follows a `#`
pub fn sanitize_code(code: &str) -> &str {
    crate::service_error::sanitize_code(code)
}
