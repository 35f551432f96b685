//! The shared `config` and `credentials` files: parsing and merging

use std::collections::BTreeMap;
use std::fmt;

/// Which of the two shared files a text comes from; they name sections differently
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// `~/.aws/config`: `[default]`, `[profile NAME]`, `[sso-session NAME]`, `[services NAME]`
    Config,
    /// `~/.aws/credentials`: `[NAME]`
    Credentials,
}

/// A section of a shared file: a profile, an `sso-session` or a `services` section
///
/// Keys are lowercase; values keep their case. A value that holds sub-properties (a key
/// followed by indented `name = value` lines) is kept as raw text starting with a newline;
/// [`Section::sub_properties`] splits it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Section {
    name: String,
    properties: BTreeMap<String, String>,
}

impl Section {
    /// The section's name (`default`, `dev`, ...)
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value of `key` (any case), `None` when absent
    pub fn get(&self, key: &str) -> Option<&str> {
        self.properties
            .get(&key.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The value of `key` when present and not blank
    pub fn get_nonempty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.trim().is_empty())
    }

    /// Every key and value, keys in order
    pub fn properties(&self) -> impl Iterator<Item = (&str, &str)> {
        self.properties
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The sub-properties of `key`: `lambda =\n  endpoint_url = ...` gives
    /// `{"endpoint_url": "..."}`; keys lowercase; empty when `key` has none
    pub fn sub_properties(&self, key: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let Some(raw) = self.get(key) else {
            return out;
        };
        for line in raw.lines().skip(1) {
            if let Some((k, v)) = line.split_once('=') {
                let k = k.trim();
                if !k.is_empty() {
                    out.insert(k.to_ascii_lowercase(), v.trim().to_owned());
                }
            }
        }
        out
    }
}

/// Keys whose values are never shown
pub(crate) fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("secret") || key.ends_with("session_token") || key.ends_with("security_token")
}

/// A command line shown with its program only: its arguments may hold a secret (`--token
/// s3cret`), as the Rust SDK's `CommandWithSensitiveArgs` assumes
pub(crate) struct CommandLine<'a>(pub(crate) &'a str);

impl fmt::Debug for CommandLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut words = self.0.split_whitespace();
        let program = words.next().unwrap_or_default();
        if words.next().is_some() {
            write!(f, "{program:?} ** arguments redacted **")
        } else {
            write!(f, "{program:?}")
        }
    }
}

/// Values of secret keys (`aws_secret_access_key`, `aws_session_token`, ...) are redacted,
/// and `credential_process` arguments
impl fmt::Debug for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in &self.properties {
            if is_secret_key(k) {
                m.entry(k, &format_args!("<redacted>"));
            } else if k.eq_ignore_ascii_case("credential_process") {
                m.entry(k, &CommandLine(v));
            } else {
                m.entry(k, v);
            }
        }
        m.finish()
    }
}

/// The profiles, `sso-session` and `services` sections of both shared files, merged
///
/// ```
/// use invoke_config::profile::{FileKind, ProfileSet};
///
/// let set = ProfileSet::parse(&[
///     (FileKind::Config, "config", "[profile dev]\nregion = eu-west-1\n"),
///     (FileKind::Credentials, "credentials", "[dev]\naws_access_key_id = AKID\n"),
/// ])?;
/// let dev = set.profile("dev").unwrap();
/// assert_eq!(dev.get("region"), Some("eu-west-1"));
/// assert_eq!(dev.get("AWS_ACCESS_KEY_ID"), Some("AKID"));
/// # Ok::<(), invoke_config::profile::ProfileParseError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileSet {
    profiles: BTreeMap<String, Section>,
    sso_sessions: BTreeMap<String, Section>,
    services: BTreeMap<String, Section>,
}

/// A shared file that cannot be parsed
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileParseError {
    /// The file, as given to the parser
    pub path: String,
    /// The line, counting from 1
    pub line: usize,
    /// What is wrong, in the words of the cross-SDK parser tests
    pub message: &'static str,
}

impl fmt::Display for ProfileParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "could not parse profile file `{}`: {} (line {})",
            self.path, self.message, self.line
        )
    }
}

impl std::error::Error for ProfileParseError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Profile,
    SsoSession,
    Services,
}

/// One section header as read, before merging
struct RawSection {
    kind: Kind,
    name: String,
    /// `[default]` without the `profile` prefix in the config file
    bare_default: bool,
    properties: Vec<(String, String)>,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-/.%@_:+".contains(c))
}

fn valid_key(key: &str) -> bool {
    key.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `value # comment` → `value`; a comment starts at `#` or `;` after whitespace
fn strip_comment(value: &str) -> &str {
    let b = value.as_bytes();
    for i in 1..b.len() {
        if (b[i] == b'#' || b[i] == b';') && (b[i - 1] == b' ' || b[i - 1] == b'\t') {
            return &value[..i];
        }
    }
    value
}

/// `prefix NAME` with at least one space or tab after the prefix
fn after_prefix<'a>(inner: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = inner.strip_prefix(prefix)?;
    rest.starts_with([' ', '\t']).then(|| rest.trim())
}

fn classify(kind: FileKind, inner: &str) -> Option<(Kind, String, bool)> {
    let named = |k, name: &str| valid_name(name).then(|| (k, name.to_owned(), false));
    match kind {
        FileKind::Credentials => named(Kind::Profile, inner),
        FileKind::Config if inner == "default" => Some((Kind::Profile, inner.to_owned(), true)),
        FileKind::Config => {
            if let Some(name) = after_prefix(inner, "profile") {
                named(Kind::Profile, name)
            } else if let Some(name) = after_prefix(inner, "sso-session") {
                named(Kind::SsoSession, name)
            } else if let Some(name) = after_prefix(inner, "services") {
                named(Kind::Services, name)
            } else {
                None
            }
        }
    }
}

/// Where a continuation line goes
enum Current {
    None,
    /// A property of a kept section: its index and whether it holds sub-properties
    Property(usize, bool),
    /// A property that is dropped (bad key or ignored section)
    Ignored(bool),
}

fn parse_file(
    kind: FileKind,
    path: &str,
    text: &str,
) -> Result<Vec<RawSection>, ProfileParseError> {
    let mut sections: Vec<RawSection> = Vec::new();
    // None: before any section; Some(None): inside an ignored section
    let mut section: Option<Option<usize>> = None;
    let mut current = Current::None;
    for (i, line) in text.split('\n').enumerate() {
        let err = |message| ProfileParseError {
            path: path.to_owned(),
            line: i + 1,
            message,
        };
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if section.is_none() {
                return Err(err("Expected a profile definition, found continuation"));
            }
            let text = line.trim();
            let sub = match current {
                Current::None => {
                    return Err(err("Expected a property definition, found continuation"));
                }
                Current::Property(_, sub) | Current::Ignored(sub) => sub,
            };
            if sub {
                let Some((name, _)) = text.split_once('=') else {
                    return Err(err("Expected an '=' sign defining a sub-property"));
                };
                if name.trim().is_empty() {
                    return Err(err("Sub-property did not have a name"));
                }
            }
            if let (Current::Property(idx, _), Some(Some(s))) = (&current, section) {
                let value = &mut sections[s].properties[*idx].1;
                value.push('\n');
                value.push_str(text);
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let Some(end) = rest.find(']') else {
                return Err(err("Profile definition must end with ']'"));
            };
            let after = rest[end + 1..].trim();
            if !after.is_empty() && !after.starts_with(['#', ';']) {
                return Err(err("Expected a comment or the end of the line after ']'"));
            }
            current = Current::None;
            section = Some(
                classify(kind, rest[..end].trim()).map(|(k, name, bare_default)| {
                    sections.push(RawSection {
                        kind: k,
                        name,
                        bare_default,
                        properties: Vec::new(),
                    });
                    sections.len() - 1
                }),
            );
            continue;
        }
        let Some(section) = section else {
            return Err(err("Expected a profile definition"));
        };
        let Some((key, value)) = line.split_once('=') else {
            return Err(err("Expected an '=' sign defining a property"));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(err("Property did not have a name"));
        }
        let value = strip_comment(value).trim();
        let sub = value.is_empty();
        current = match section {
            Some(s) if valid_key(key) => {
                let props = &mut sections[s].properties;
                props.push((key.to_ascii_lowercase(), value.to_owned()));
                Current::Property(props.len() - 1, sub)
            }
            _ => Current::Ignored(sub),
        };
    }
    Ok(sections)
}

impl ProfileSet {
    /// Parses and merges shared files given as `(kind, path for messages, text)`, in order
    ///
    /// Later files win for the same profile and key, so pass the config file before the
    /// credentials file (the credentials file wins, as in the SDKs). In the config file a
    /// `[profile default]` section makes every `[default]` section be ignored.
    ///
    /// # Errors
    ///
    /// [`ProfileParseError`] with the line and the reason, for text that is not a shared file.
    pub fn parse(files: &[(FileKind, &str, &str)]) -> Result<Self, ProfileParseError> {
        let mut set = Self::default();
        for &(kind, path, text) in files {
            let raw = parse_file(kind, path, text)?;
            let has_prefixed_default = raw
                .iter()
                .any(|s| s.kind == Kind::Profile && s.name == "default" && !s.bare_default);
            for s in raw {
                if s.bare_default && has_prefixed_default {
                    continue;
                }
                let map = match s.kind {
                    Kind::Profile => &mut set.profiles,
                    Kind::SsoSession => &mut set.sso_sessions,
                    Kind::Services => &mut set.services,
                };
                let entry = map.entry(s.name.clone()).or_insert_with(|| Section {
                    name: s.name,
                    properties: BTreeMap::new(),
                });
                entry.properties.extend(s.properties);
            }
        }
        Ok(set)
    }

    /// The profile called `name`
    pub fn profile(&self, name: &str) -> Option<&Section> {
        self.profiles.get(name)
    }

    /// The `[sso-session NAME]` section called `name`
    pub fn sso_session(&self, name: &str) -> Option<&Section> {
        self.sso_sessions.get(name)
    }

    /// The `[services NAME]` section called `name`
    pub fn services(&self, name: &str) -> Option<&Section> {
        self.services.get(name)
    }

    /// Every profile, by name
    pub fn profiles(&self) -> impl Iterator<Item = &Section> {
        self.profiles.values()
    }

    /// Every `sso-session` section, by name
    pub fn sso_sessions(&self) -> impl Iterator<Item = &Section> {
        self.sso_sessions.values()
    }

    /// Whether no file defined any section
    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty() && self.sso_sessions.is_empty() && self.services.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(config: &str) -> ProfileSet {
        ProfileSet::parse(&[(FileKind::Config, "config", config)]).unwrap()
    }

    #[test]
    fn debug_redacts_secrets_and_process_arguments_only() {
        let set = parse(
            "[default]\nregion = eu-west-1\naws_secret_access_key = SECRETKEY\n\
             aws_session_token = SESSIONTOKEN\nAWS_SECURITY_TOKEN = OLDTOKEN\n\
             credential_process = /bin/creds --token PROCESSARG\n",
        );
        let shown = format!("{:?}", set.profile("default").unwrap());
        for secret in ["SECRETKEY", "SESSIONTOKEN", "OLDTOKEN", "PROCESSARG"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        for seen in [
            "\"region\": \"eu-west-1\"",
            "\"aws_secret_access_key\": <redacted>",
            "\"aws_session_token\": <redacted>",
            "\"aws_security_token\": <redacted>",
            "\"credential_process\": \"/bin/creds\" ** arguments redacted **",
        ] {
            assert!(shown.contains(seen), "{seen} not in {shown}");
        }
        // a program without arguments is shown whole
        let set = parse("[default]\ncredential_process = /bin/creds\n");
        let shown = format!("{:?}", set.profile("default").unwrap());
        assert!(
            shown.contains("\"credential_process\": \"/bin/creds\"}"),
            "{shown}"
        );
    }

    #[test]
    fn a_comment_starts_after_a_space_or_a_tab() {
        assert_eq!(strip_comment(" value\t# note"), " value\t");
        assert_eq!(strip_comment(" value ;note"), " value ");
        assert_eq!(
            strip_comment(" value#not;a comment"),
            " value#not;a comment"
        );
        // the first character has nothing before it
        assert_eq!(strip_comment("#x"), "#x");
        let set = parse("[default]\nregion = us-west-2\t; where\n");
        assert_eq!(
            set.profile("default").unwrap().get("region"),
            Some("us-west-2")
        );
    }

    #[test]
    fn a_set_is_empty_until_a_file_defines_any_section() {
        assert!(ProfileSet::default().is_empty());
        assert!(parse("# nothing here\n").is_empty());
        for text in [
            "[default]\n",
            "[sso-session corp]\nsso_region = us-east-1\n",
            "[services emu]\nlambda =\n  endpoint_url = http://127.0.0.1:9001\n",
        ] {
            assert!(!parse(text).is_empty(), "{text}");
        }
    }
}
