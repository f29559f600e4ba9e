//! The file itself: reading it with a fingerprint, and replacing it atomically.
//!
//! A CSV connection's "API" is one file on the daemon's host. Reads take the whole file and
//! its content fingerprint (a scan cursor carries it, so a file changed between pages restarts
//! the scan). Writes never modify the file in place: the new text goes to a temporary file in
//! the same folder, is flushed to disk, and is renamed over the old one, so a crash leaves
//! either the old file or the new one, never half of either.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use xxhash_rust::xxh3::xxh3_128;

use crate::error::CsvError;

/// The content fingerprint of a file's bytes (hex in cursors).
pub fn fingerprint(bytes: &[u8]) -> u128 {
    xxh3_128(bytes)
}

/// The file's bytes, or `None` when it does not exist.
///
/// At most `limit` bytes are read: a larger file is [`CsvError::TooLarge`], told from its
/// size before anything is read, and again while reading (the file may grow meanwhile, or be
/// a device or pipe with no size), so a wrong path such as a multi-gigabyte log or
/// `/dev/zero` is refused instead of filling memory.
pub fn read(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, CsvError> {
    let read_error = |e: io::Error| CsvError::Read {
        path: path.to_owned(),
        message: e.to_string(),
    };
    let too_large = |size: Option<u64>| CsvError::TooLarge {
        path: path.to_owned(),
        size,
        limit,
    };
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_error(e)),
    };
    let meta = file.metadata().map_err(read_error)?;
    if meta.is_file() && meta.len() > limit {
        return Err(too_large(Some(meta.len())));
    }
    let expected = if meta.is_file() { meta.len() } else { 0 };
    // Never trust the size for the allocation beyond the limit.
    let mut bytes = Vec::with_capacity(usize::try_from(expected.min(limit)).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if u64::try_from(bytes.len()).map_or(true, |len| len > limit) {
        return Err(too_large(None));
    }
    Ok(Some(bytes))
}

/// Where an atomic write may be told to stop, for tests of what a crash leaves behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailPoint {
    #[default]
    None,
    /// After the temporary file is written and flushed, before the rename: the moment a crash
    /// would hurt most if the file were written in place.
    BeforeRename,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map_or_else(
        || "tidemark.csv".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    let unique = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(
        ".{name}.tidemark-{}-{unique}.tmp",
        std::process::id()
    ))
}

/// Replaces `path` with `bytes` atomically (see the module docs). On any failure the temporary
/// file is removed and `path` is as it was.
pub fn write_atomically(path: &Path, bytes: &[u8], fail: FailPoint) -> Result<(), CsvError> {
    let temp = temp_path(path);
    let result = write_then_rename(path, &temp, bytes, fail);
    if result.is_err() {
        // Best effort: the temp file is ours and hidden; a leftover one harms nothing.
        let _ = fs::remove_file(&temp);
    }
    result.map_err(|e| CsvError::Write {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

fn write_then_rename(path: &Path, temp: &Path, bytes: &[u8], fail: FailPoint) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).open(temp)?;
    // Keep the old file's permissions: a merchant's tools may need to read it.
    if let Ok(meta) = fs::metadata(path) {
        file.set_permissions(meta.permissions())?;
    }
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    if fail == FailPoint::BeforeRename {
        return Err(io::Error::other(
            "interrupted before the rename (fail point)",
        ));
    }
    fs::rename(temp, path)?;
    // Make the rename itself durable where the platform lets a directory be synced.
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(handle) = File::open(dir) {
            let _ = handle.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        fs::write(&path, "old").unwrap();
        write_atomically(&path, b"new", FailPoint::None).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failure_before_the_rename_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        fs::write(&path, "old").unwrap();
        let err = write_atomically(&path, b"new", FailPoint::BeforeRename).unwrap_err();
        assert!(err.to_string().contains("out.csv"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "temp removed");
    }

    #[test]
    fn a_missing_folder_is_a_write_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no/such/out.csv");
        assert!(matches!(
            write_atomically(&path, b"x", FailPoint::None),
            Err(CsvError::Write { .. })
        ));
        assert_eq!(read(&path, 1024).unwrap(), None);
    }

    #[test]
    fn reads_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.csv");
        fs::write(&path, vec![b'x'; 100]).unwrap();
        assert_eq!(read(&path, 100).unwrap().unwrap().len(), 100);
        let err = read(&path, 99).unwrap_err();
        assert_eq!(
            err,
            CsvError::TooLarge {
                path: path.clone(),
                size: Some(100),
                limit: 99
            }
        );
        assert!(err.to_string().contains("max_file_bytes"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn an_endless_device_is_refused_not_read_forever() {
        let err = read(Path::new("/dev/zero"), 4096).unwrap_err();
        assert!(
            matches!(
                err,
                CsvError::TooLarge {
                    size: None,
                    limit: 4096,
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
