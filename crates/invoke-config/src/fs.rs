//! Files as an input: a reader the caller can replace

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

/// The largest file any reader hands back (config files, token files, the SSO cache)
pub const MAX_FILE_SIZE: u64 = 1024 * 1024;

/// Reads whole files for the resolver
///
/// The default, [`StdFs`], reads the real file system; tests and embedders pass a
/// [`MemFs`] or their own reader so that nothing touches the real home directory. A
/// missing file must be reported as [`io::ErrorKind::NotFound`].
pub trait FileReader: Send + Sync {
    /// The contents of the file at `path`
    ///
    /// # Errors
    ///
    /// Any IO error; `NotFound` for a file that does not exist.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
}

/// The real file system through `std::fs`, refusing files over [`MAX_FILE_SIZE`]
#[derive(Debug, Clone, Copy, Default)]
pub struct StdFs;

impl FileReader for StdFs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        use std::io::Read;
        let file = std::fs::File::open(path)?;
        let mut out = Vec::new();
        file.take(MAX_FILE_SIZE + 1).read_to_end(&mut out)?;
        if out.len() as u64 > MAX_FILE_SIZE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("file is larger than {MAX_FILE_SIZE} bytes"),
            ));
        }
        Ok(out)
    }
}

/// An in-memory file system: paths mapped to contents
///
/// A path that is not in the map reads as "No such file or directory", like a missing file.
///
/// ```
/// use std::path::Path;
/// use invoke_config::{FileReader, MemFs};
///
/// let fs = MemFs::new().with("/home/.aws/config", "[default]\nregion = eu-west-1\n");
/// assert!(fs.read(Path::new("/home/.aws/config")).is_ok());
/// assert_eq!(
///     fs.read(Path::new("/nope")).unwrap_err().kind(),
///     std::io::ErrorKind::NotFound
/// );
/// ```
#[derive(Clone, Default)]
pub struct MemFs {
    files: BTreeMap<PathBuf, Vec<u8>>,
}

impl MemFs {
    /// An empty file system
    pub fn new() -> Self {
        Self::default()
    }

    /// This file system with a file at `path`
    #[must_use]
    pub fn with(mut self, path: impl Into<PathBuf>, contents: impl Into<Vec<u8>>) -> Self {
        self.insert(path, contents);
        self
    }

    /// Adds or replaces the file at `path`
    pub fn insert(&mut self, path: impl Into<PathBuf>, contents: impl Into<Vec<u8>>) {
        self.files.insert(path.into(), contents.into());
    }
}

/// Only the paths are shown: files may hold secrets
impl std::fmt::Debug for MemFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.files.keys()).finish()
    }
}

impl FileReader for MemFs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.files
            .get(path)
            .cloned()
            // ENOENT, so the message reads exactly like a real missing file
            .ok_or_else(|| io::Error::from_raw_os_error(2))
    }
}
