//! Test support shared by tidemark's crates. Only tests depend on this crate, so its helpers
//! fail the calling test (panic) where a library would return an error.

use std::path::PathBuf;

#[cfg(feature = "store")]
pub mod store;

/// Names the shared folder that holds `data/` (`../shared` in CI).
pub const SHARED_DATA_VAR: &str = "TIDEMARK_SHARED_DATA";

/// The path of `$TIDEMARK_SHARED_DATA/data/<relative>`: third-party fixtures whose licence
/// (GPL, or none) forbids copying them into this repository are read from there.
///
/// - Variable unset: prints why the test skips and returns `None`; the caller returns early.
/// - Variable set and the file there: `Some(path)`.
/// - Variable set but the file missing: panics, failing the test, because a configured
///   environment that lacks a fixture must not pass silently.
pub fn shared_data_file(relative: &str) -> Option<PathBuf> {
    let Some(shared) = std::env::var_os(SHARED_DATA_VAR) else {
        println!(
            "skipped: {SHARED_DATA_VAR} is not set, so data/{relative} is not read (point it at \
             the shared folder holding data/; it is not copied here because of its licence)"
        );
        return None;
    };
    let path = PathBuf::from(shared).join("data").join(relative);
    assert!(
        path.is_file(),
        "{SHARED_DATA_VAR} is set but {} does not exist",
        path.display()
    );
    Some(path)
}

/// Like [`shared_data_file`], returning the file's text.
pub fn shared_data_text(relative: &str) -> Option<String> {
    let path = shared_data_file(relative)?;
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(error) => panic!("{} is unreadable: {error}", path.display()),
    }
}

#[cfg(feature = "redis")]
pub mod redis_queue;
