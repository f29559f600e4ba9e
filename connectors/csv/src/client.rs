//! The file itself: reading it with a fingerprint, and replacing it atomically.
//!
//! A CSV connection's "API" is one file on the daemon's host. Reads take the whole file and
//! its content fingerprint (a scan cursor carries it, so a file changed between pages restarts
//! the scan). Writes never modify the file in place: the new text goes to a temporary file in
//! the same folder, is flushed to disk, and is renamed over the old one, so a crash leaves
//! either the old file or the new one, never half of either.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use xxhash_rust::xxh3::xxh3_128;

use crate::error::CsvError;

/// The content fingerprint of a file's bytes (hex in cursors).
pub fn fingerprint(bytes: &[u8]) -> u128 {
    xxh3_128(bytes)
}

/// The file's bytes, or `None` when it does not exist.
pub fn read(path: &Path) -> Result<Option<Vec<u8>>, CsvError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CsvError::Read {
            path: path.to_owned(),
            message: e.to_string(),
        }),
    }
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
        assert_eq!(read(&path).unwrap(), None);
    }
}
