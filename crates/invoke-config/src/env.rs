//! The environment as an input: a snapshot of variables

use std::collections::BTreeMap;

/// A snapshot of environment variables
///
/// Resolution never reads the process environment itself: build an `Env` from pairs (tests,
/// embedders) or take one snapshot with [`Env::from_process`] at the edge of the program.
///
/// ```
/// use invoke_config::Env;
///
/// let env = Env::from_pairs([("AWS_REGION", "eu-west-1"), ("AWS_PROFILE", " ")]);
/// assert_eq!(env.get("AWS_REGION"), Some("eu-west-1"));
/// assert_eq!(env.get("AWS_PROFILE"), None); // blank counts as unset
/// assert_eq!(env.get_raw("AWS_PROFILE"), Some(" "));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// An empty environment
    pub fn new() -> Self {
        Self::default()
    }

    /// An environment holding `pairs`
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// A snapshot of the process environment (variables that are not valid UTF-8 are left out)
    pub fn from_process() -> Self {
        Self {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        }
    }

    /// Sets `name` to `value`
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.vars.insert(name.into(), value.into());
        self
    }

    /// The value of `name`, trimmed; `None` when unset or blank, as the AWS SDKs treat it
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The value of `name` exactly as it was set
    pub fn get_raw(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }
}

/// Only the names are shown: values may be secrets
impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.vars.keys()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::Env;

    #[test]
    fn set_get_and_debug_without_values() {
        let mut env = Env::from_pairs([("AWS_REGION", " eu-west-1 ")]);
        env.set("AWS_SECRET_ACCESS_KEY", "a-secret")
            .set("AWS_PROFILE", "  ");
        assert_eq!(env.get("AWS_REGION"), Some("eu-west-1"));
        assert_eq!(env.get_raw("AWS_REGION"), Some(" eu-west-1 "));
        assert_eq!(env.get("AWS_SECRET_ACCESS_KEY"), Some("a-secret"));
        assert_eq!(env.get("AWS_PROFILE"), None, "blank is unset");
        assert_eq!(env.get_raw("AWS_PROFILE"), Some("  "));
        assert_eq!(
            format!("{env:?}"),
            r#"{"AWS_PROFILE", "AWS_REGION", "AWS_SECRET_ACCESS_KEY"}"#
        );
    }

    #[test]
    fn the_process_environment_is_read() {
        // PATH is set for any test process that runs cargo
        let path = std::env::var("PATH").unwrap();
        assert_eq!(Env::from_process().get_raw("PATH"), Some(path.as_str()));
    }
}
