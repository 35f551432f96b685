//! Where the shared files are and which profile is active, from the environment

use std::path::PathBuf;

use crate::env::Env;

/// The path rules to apply: where the home folder comes from and the path separator
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    /// Linux, macOS and other Unix systems: home is `HOME`, separator `/`
    Unix,
    /// Windows: home is `HOME`, else `USERPROFILE`, else `HOMEDRIVE` + `HOMEPATH`; separator `\`
    Windows,
}

impl Platform {
    /// The platform this program was built for
    pub const fn current() -> Self {
        if cfg!(windows) {
            Self::Windows
        } else {
            Self::Unix
        }
    }

    const fn separator(self) -> char {
        match self {
            Self::Unix => '/',
            Self::Windows => '\\',
        }
    }
}

/// The shared files to read and the profile to use
///
/// ```
/// use invoke_config::{Env, location::{FileLocations, Platform}};
///
/// let env = Env::from_pairs([("HOME", "/home/me"), ("AWS_PROFILE", "dev")]);
/// let loc = FileLocations::from_env(&env, Platform::Unix);
/// assert_eq!(loc.config.as_deref(), Some(std::path::Path::new("/home/me/.aws/config")));
/// assert_eq!(loc.profile, "dev");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLocations {
    /// The config file: `AWS_CONFIG_FILE`, else `~/.aws/config`; `None` without a home folder
    pub config: Option<PathBuf>,
    /// The credentials file: `AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`
    pub credentials: Option<PathBuf>,
    /// The active profile: `AWS_PROFILE`, else `default`
    pub profile: String,
    /// The home folder, if the environment names one
    pub home: Option<String>,
}

impl FileLocations {
    /// The locations the AWS SDKs use for this environment and platform
    pub fn from_env(env: &Env, platform: Platform) -> Self {
        let home = home_dir(env, platform);
        let file = |var: &str, name: &str| -> Option<PathBuf> {
            if let Some(path) = env.get(var) {
                Some(PathBuf::from(expand_home(path, home.as_deref(), platform)))
            } else {
                let sep = platform.separator();
                let home = home.as_deref()?;
                let home = home.strip_suffix(sep).unwrap_or(home);
                Some(PathBuf::from(format!("{home}{sep}.aws{sep}{name}")))
            }
        };
        Self {
            config: file("AWS_CONFIG_FILE", "config"),
            credentials: file("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
            profile: env.get("AWS_PROFILE").unwrap_or("default").to_owned(),
            home,
        }
    }

    /// `path` below the home folder (`.aws/sso/cache/...`), joined with the platform's separator
    pub(crate) fn in_home(&self, platform: Platform, parts: &[&str]) -> Option<PathBuf> {
        let sep = platform.separator();
        let home = self.home.as_deref()?;
        let mut out = home.strip_suffix(sep).unwrap_or(home).to_owned();
        for p in parts {
            out.push(sep);
            out.push_str(p);
        }
        Some(PathBuf::from(out))
    }
}

fn home_dir(env: &Env, platform: Platform) -> Option<String> {
    if let Some(home) = env.get("HOME") {
        return Some(home.to_owned());
    }
    if platform == Platform::Windows {
        if let Some(p) = env.get("USERPROFILE") {
            return Some(p.to_owned());
        }
        if let (Some(drive), Some(path)) = (env.get("HOMEDRIVE"), env.get("HOMEPATH")) {
            return Some(format!("{drive}{path}"));
        }
    }
    None
}

/// `~` or `~/...` (also `~\...` on Windows) with the home folder in front; anything else as is
fn expand_home(path: &str, home: Option<&str>, platform: Platform) -> String {
    let Some(home) = home else {
        return path.to_owned();
    };
    let rest = match path.strip_prefix('~') {
        Some("") => "",
        Some(rest)
            if rest.starts_with('/')
                || (platform == Platform::Windows && rest.starts_with('\\')) =>
        {
            rest
        }
        _ => return path.to_owned(),
    };
    format!("{home}{rest}")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{FileLocations, Platform};
    use crate::env::Env;

    fn config(pairs: &[(&str, &str)], platform: Platform) -> Option<String> {
        let env = Env::from_pairs(pairs.iter().copied());
        FileLocations::from_env(&env, platform)
            .config
            .map(|p| p.to_string_lossy().into_owned())
    }

    /// The shared file-location suite has no `~` in a variable: these are the rules the
    /// SDKs follow for it
    #[test]
    fn a_leading_tilde_is_the_home_folder() {
        let home = ("HOME", "/home/me");
        let cases = [
            ("~/cfg", "/home/me/cfg"),
            ("~", "/home/me"),
            ("~other/cfg", "~other/cfg"),
            ("~\\cfg", "~\\cfg"),
            ("/etc/~/cfg", "/etc/~/cfg"),
        ];
        for (set, want) in cases {
            let got = config(&[home, ("AWS_CONFIG_FILE", set)], Platform::Unix);
            assert_eq!(got.as_deref(), Some(want), "{set}");
        }
        // without a home folder, the path is taken as written
        let got = config(&[("AWS_CONFIG_FILE", "~/cfg")], Platform::Unix);
        assert_eq!(got.as_deref(), Some("~/cfg"));
        // on Windows a backslash follows the tilde too, and home may come from elsewhere
        for (env, want) in [
            (
                &[("USERPROFILE", "C:\\Users\\me")][..],
                "C:\\Users\\me\\cfg",
            ),
            (
                &[("HOMEDRIVE", "D:"), ("HOMEPATH", "\\me")][..],
                "D:\\me\\cfg",
            ),
        ] {
            let mut pairs = env.to_vec();
            pairs.push(("AWS_CONFIG_FILE", "~\\cfg"));
            assert_eq!(config(&pairs, Platform::Windows).as_deref(), Some(want));
            // those variables mean nothing on Unix
            assert_eq!(config(&pairs, Platform::Unix).as_deref(), Some("~\\cfg"));
        }
        let loc = FileLocations::from_env(&Env::from_pairs([home]), Platform::Unix);
        assert_eq!(
            loc.in_home(Platform::Unix, &[".aws", "sso", "cache"])
                .as_deref(),
            Some(Path::new("/home/me/.aws/sso/cache"))
        );
    }
}
