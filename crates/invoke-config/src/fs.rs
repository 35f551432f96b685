//! Files as an input: a reader the caller can replace (and the one file written back: a
//! refreshed SSO token)

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

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

    /// Replaces the file at `path` with `contents`: the SSO provider writes a token it
    /// refreshed back to the AWS CLI's token cache, as the SDKs do. A reader that cannot
    /// write keeps this default (the refreshed token then serves this process only).
    ///
    /// # Errors
    ///
    /// Any IO error; [`io::ErrorKind::Unsupported`] by default.
    fn write(&self, path: &Path, contents: &[u8]) -> io::Result<()> {
        let _ = (path, contents);
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// Writes [`StdFs`] made in this process, to name their temporary files
static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

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

    /// Writes a new file beside `path` (readable by its owner only, on Unix: it holds
    /// tokens), then renames it over `path`, so that a reader never sees half a file; a
    /// `path` that is a symbolic link is written through (its target is replaced)
    ///
    /// On Unix the new file keeps the owner and group of the file it replaces where this
    /// process may give them (as root: a program run with `sudo` that refreshes a user's SSO
    /// token leaves the user able to refresh it again, as the AWS CLI's writes in place
    /// do); else it is this process's, as a new file is.
    fn write(&self, path: &Path, contents: &[u8]) -> io::Result<()> {
        use std::io::Write;
        let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        #[cfg(unix)]
        let owner = {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(&target).ok().map(|m| (m.uid(), m.gid()))
        };
        let name = target
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?
            .to_os_string();
        let mut options = std::fs::OpenOptions::new();
        // only a file made here: never one another writer has open, never old permissions
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let (temp, mut file) = 'made: {
            for _ in 0..64 {
                let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos());
                let mut temp_name = name.clone();
                temp_name.push(format!(".{}-{n}-{nanos}.tmp", std::process::id()));
                let temp = target.with_file_name(temp_name);
                match options.open(&temp) {
                    Ok(file) => break 'made (temp, file),
                    // another process's file of the same name: try another name
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(e),
                }
            }
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "no free temporary file name",
            ));
        };
        #[cfg(unix)]
        if let Some((uid, gid)) = owner {
            // refused unless root (or already so): the file stays this process's
            let _ = std::os::unix::fs::fchown(&file, Some(uid), Some(gid));
        }
        let written = file
            .write_all(contents)
            .and_then(|()| file.sync_all())
            .and_then(|()| std::fs::rename(&temp, &target));
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        written
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
///
/// [`FileReader::write`] replaces a file in memory, so a test can see what was written
/// ([`MemFs::contents`]); a clone is a copy, not a view.
#[derive(Default)]
pub struct MemFs {
    files: Mutex<BTreeMap<PathBuf, Vec<u8>>>,
}

impl Clone for MemFs {
    fn clone(&self) -> Self {
        Self {
            files: Mutex::new(self.files().clone()),
        }
    }
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
        self.files
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(path.into(), contents.into());
    }

    /// The contents of the file at `path`, if there is one
    pub fn contents(&self, path: impl AsRef<Path>) -> Option<Vec<u8>> {
        self.files().get(path.as_ref()).cloned()
    }

    fn files(&self) -> std::sync::MutexGuard<'_, BTreeMap<PathBuf, Vec<u8>>> {
        self.files.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Only the paths are shown: files may hold secrets
impl std::fmt::Debug for MemFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.files().keys()).finish()
    }
}

impl FileReader for MemFs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.contents(path)
            // ENOENT, so the message reads exactly like a real missing file
            .ok_or_else(|| io::Error::from_raw_os_error(2))
    }

    fn write(&self, path: &Path, contents: &[u8]) -> io::Result<()> {
        self.files().insert(path.to_owned(), contents.to_vec());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn std_fs_replaces_a_file_whole_and_for_its_owner_only() {
        let dir = std::env::temp_dir().join(format!("invoke-config-fs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token.json");
        std::fs::write(&path, b"old and longer").unwrap();
        StdFs.write(&path, b"new").unwrap();
        assert_eq!(StdFs.read(&path).unwrap(), b"new");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // nothing left beside it
        let names = || -> Vec<_> {
            let mut names: Vec<_> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort();
            names
        };
        assert_eq!(names(), ["token.json"]);
        // a folder that does not exist: an error, nothing written
        let e = StdFs.write(&dir.join("none/token.json"), b"x").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
        // through a symbolic link: its target is replaced, the link stays
        #[cfg(unix)]
        {
            let link = dir.join("link.json");
            std::os::unix::fs::symlink(&path, &link).unwrap();
            StdFs.write(&link, b"through").unwrap();
            assert_eq!(StdFs.read(&path).unwrap(), b"through");
            assert!(
                std::fs::symlink_metadata(&link)
                    .unwrap()
                    .file_type()
                    .is_symlink()
            );
        }
        // writers of one file at once: every result is one whole write
        let writers: Vec<_> = (0..8)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        let text = vec![b'a' + i; 100 + usize::from(i) * 37];
                        StdFs.write(&path, &text).unwrap();
                        let got = StdFs.read(&path).unwrap();
                        assert!(got.iter().all(|b| *b == got[0]));
                        assert_eq!(got.len(), 100 + usize::from(got[0] - b'a') * 37);
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        #[cfg(unix)]
        assert_eq!(names(), ["link.json", "token.json"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn std_fs_keeps_the_owner_of_the_file_it_replaces() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        const NOBODY: u32 = 65534;
        let dir = std::env::temp_dir().join(format!("invoke-config-own-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token.json");
        std::fs::write(&path, b"old").unwrap();
        // another user's file, as a token cache is to a program run with sudo
        if let Err(e) = std::os::unix::fs::chown(&path, Some(NOBODY), Some(NOBODY)) {
            println!("skipped: this test needs root to give a file away ({e})");
            std::fs::remove_dir_all(&dir).unwrap();
            return;
        }
        StdFs.write(&path, b"new").unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (NOBODY, NOBODY));
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(StdFs.read(&path).unwrap(), b"new");
        // a new file is this process's
        let fresh = dir.join("fresh.json");
        StdFs.write(&fresh, b"x").unwrap();
        let mine = std::fs::metadata(&dir).unwrap().uid();
        assert_eq!(std::fs::metadata(&fresh).unwrap().uid(), mine);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn std_fs_reads_files_up_to_the_limit() {
        let dir = std::env::temp_dir().join(format!("invoke-config-big-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config");
        let limit = usize::try_from(MAX_FILE_SIZE).unwrap();
        std::fs::write(&path, vec![b'#'; limit]).unwrap();
        assert_eq!(StdFs.read(&path).unwrap().len(), limit);
        std::fs::write(&path, vec![b'#'; limit + 1]).unwrap();
        let e = StdFs.read(&path).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("1048576 bytes"), "{e}");
        let e = StdFs.read(&dir.join("missing")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_reader_that_cannot_write_says_so() {
        struct ReadOnly;
        impl FileReader for ReadOnly {
            fn read(&self, _: &Path) -> io::Result<Vec<u8>> {
                Ok(Vec::new())
            }
        }
        let e = ReadOnly.write(Path::new("/token.json"), b"x").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
    }

    #[test]
    fn mem_fs_debug_shows_paths_not_contents() {
        let fs = MemFs::new().with("/home/.aws/credentials", "aws_secret_access_key = SECRET");
        assert_eq!(format!("{fs:?}"), "{\"/home/.aws/credentials\"}");
    }

    #[test]
    fn mem_fs_writes_in_memory_and_clones_copy() {
        let fs = MemFs::new().with("/a", "1");
        let copy = fs.clone();
        fs.write(Path::new("/a"), b"2").unwrap();
        fs.write(Path::new("/b"), b"3").unwrap();
        assert_eq!(fs.read(Path::new("/a")).unwrap(), b"2");
        assert_eq!(fs.contents("/b").as_deref(), Some(&b"3"[..]));
        assert_eq!(copy.read(Path::new("/a")).unwrap(), b"1");
        assert!(copy.contents("/b").is_none());
    }
}
