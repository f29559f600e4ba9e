//! Credentials sealed at rest (DESIGN §8): AES-256-GCM under one daemon-wide [`SecretKey`].
//!
//! The store keeps a connection's credentials as opaque bytes; this module turns
//! [`Credentials`] into those bytes ([`seal`]) and back ([`open`]). A sealed blob is
//!
//! ```text
//! [version: 1 byte = 1][nonce: 12 bytes][AES-256-GCM ciphertext of the JSON object + 16-byte tag]
//! ```
//!
//! with the version byte also authenticated (as associated data), so a blob cannot be relabelled
//! to another format. The key comes from `TIDEMARK_SECRET_KEY` or from `<data_dir>/secret.key`,
//! created with mode 0600 on first run ([`SecretKey::load_or_create`]).

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rand::TryRngCore as _;
use rand::rngs::OsRng;
use thiserror::Error;

use crate::settings::{Credentials, SettingsError};

/// Name of the key file inside the data directory.
pub const KEY_FILE_NAME: &str = "secret.key";

/// The format version this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Version byte, nonce and tag: the size of a sealed empty message.
const MIN_SEALED_LEN: usize = 1 + NONCE_LEN + TAG_LEN;

/// The 256-bit key credentials are sealed under. Its `Debug` shows no key material.
pub struct SecretKey([u8; KEY_LEN]);

impl SecretKey {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Result<Self, SealError> {
        let mut bytes = [0u8; KEY_LEN];
        OsRng
            .try_fill_bytes(&mut bytes)
            .map_err(SealError::Random)?;
        Ok(Self(bytes))
    }

    /// Parses 32 bytes written as standard base64 (44 characters) or hex (64 characters).
    /// Surrounding whitespace is ignored. Errors never include the text itself.
    pub fn from_text(text: &str) -> Result<Self, SealError> {
        parse_key_text(text).map(Self).map_err(SealError::KeyText)
    }

    /// The key the daemon runs with: `env_value` (what `TIDEMARK_SECRET_KEY` or the config's
    /// `secret_key` held) wins; else `<data_dir>/secret.key` is read; else that file is created
    /// with mode 0600 holding a fresh random key (and `data_dir` with mode 0700 if missing).
    ///
    /// A key file that group or others can read is refused rather than used: whoever can read
    /// it can open every connection's credentials.
    pub fn load_or_create(
        env_value: Option<&str>,
        data_dir: &Path,
    ) -> Result<(SecretKey, KeySource), SealError> {
        if let Some(text) = env_value {
            let bytes = parse_key_text(text).map_err(SealError::EnvKey)?;
            return Ok((Self(bytes), KeySource::Env));
        }
        let path = data_dir.join(KEY_FILE_NAME);
        match read_key_file(&path) {
            Ok(key) => return Ok((key, KeySource::File(path))),
            Err(ReadError::Missing) => {}
            Err(ReadError::Failed(e)) => return Err(e),
        }
        match create_key_file(data_dir, &path) {
            Ok(key) => Ok((key, KeySource::Created(path))),
            // Another process (a worker started alongside `serve`) created it first: use theirs,
            // so both seal under the same key.
            Err(CreateError::Exists) => match read_key_file(&path) {
                Ok(key) => Ok((key, KeySource::File(path))),
                Err(ReadError::Missing) => Err(SealError::ReadKeyFile {
                    path,
                    source: io::Error::from(io::ErrorKind::NotFound),
                }),
                Err(ReadError::Failed(e)) => Err(e),
            },
            Err(CreateError::Failed(e)) => Err(e),
        }
    }

    fn to_base64(&self) -> String {
        BASE64.encode(self.0)
    }

    fn cipher(&self) -> Aes256Gcm {
        // Cannot fail: the key is exactly 32 bytes by construction.
        Aes256Gcm::new(&self.0.into())
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey([REDACTED])")
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        // Best effort without `unsafe` volatile writes: `black_box` keeps the optimiser from
        // discarding stores to memory that is about to be freed.
        self.0.fill(0);
        std::hint::black_box(&mut self.0);
    }
}

/// Where [`SecretKey::load_or_create`] found the key, for the daemon's start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// From the environment (`TIDEMARK_SECRET_KEY`) or the configuration.
    Env,
    /// Read from an existing key file.
    File(PathBuf),
    /// A new key, written to this file on this run.
    Created(PathBuf),
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Env => f.write_str("TIDEMARK_SECRET_KEY"),
            KeySource::File(path) => write!(f, "key file {}", path.display()),
            KeySource::Created(path) => write!(f, "new key file {}", path.display()),
        }
    }
}

/// Why a key text was refused. Says which form was expected and never repeats the text.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyTextError {
    #[error(
        "expected 32 bytes as standard base64 (44 characters) or hex (64 characters), \
         got {0} characters"
    )]
    Length(usize),
    #[error("44 characters but not standard base64 of 32 bytes (A-Z a-z 0-9 + /, ending in `=`)")]
    Base64,
    #[error("64 characters but not hex of 32 bytes (0-9, a-f)")]
    Hex,
}

#[derive(Debug, Error)]
pub enum SealError {
    // The reason is part of the message rather than a `source`: it is the whole story.
    #[error("invalid secret key: {0}")]
    KeyText(KeyTextError),
    #[error("invalid secret key from TIDEMARK_SECRET_KEY (or the config's `secret_key`): {0}")]
    EnvKey(KeyTextError),
    #[error("invalid key file {}: {reason}", path.display())]
    KeyFileContent { path: PathBuf, reason: KeyTextError },
    #[error(
        "key file {} can be read by group or others (mode {mode:03o}); \
         run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    KeyFilePermissions { path: PathBuf, mode: u32 },
    #[error("cannot read key file {}", path.display())]
    ReadKeyFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot create data directory {}", path.display())]
    CreateDataDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write new key file {}", path.display())]
    WriteKeyFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the operating system's random number generator failed")]
    Random(#[source] rand::rand_core::OsError),
    #[error("sealed credentials are {len} bytes long, shorter than the minimum {MIN_SEALED_LEN}")]
    TooShort { len: usize },
    #[error(
        "sealed credentials have format version {0}; this build reads version {FORMAT_VERSION}"
    )]
    UnknownVersion(u8),
    #[error("cannot open sealed credentials: wrong key or corrupted ciphertext")]
    Decrypt,
    #[error("cannot seal credentials: encryption failed")]
    Encrypt,
    #[error("sealed credentials decrypt to invalid JSON")]
    Json(#[source] serde_json::Error),
    #[error(transparent)]
    Credentials(#[from] SettingsError),
}

/// Encrypts credentials under `key` with a fresh random nonce.
pub fn seal(key: &SecretKey, credentials: &Credentials) -> Result<Vec<u8>, SealError> {
    // `Secret` is deliberately not `Serialize`; exposing values to build the plaintext happens
    // here and nowhere else.
    let object: serde_json::Map<String, serde_json::Value> = credentials
        .keys()
        .filter_map(|k| {
            let value = credentials.get(k)?.expose().to_owned();
            Some((k.to_owned(), serde_json::Value::String(value)))
        })
        .collect();
    let plaintext = serde_json::to_vec(&object).map_err(SealError::Json)?;

    let mut nonce = [0u8; NONCE_LEN];
    OsRng
        .try_fill_bytes(&mut nonce)
        .map_err(SealError::Random)?;
    let ciphertext = key
        .cipher()
        .encrypt(
            &nonce.into(),
            Payload {
                msg: &plaintext,
                aad: &[FORMAT_VERSION],
            },
        )
        .map_err(|_| SealError::Encrypt)?;

    let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
    sealed.push(FORMAT_VERSION);
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&ciphertext);
    Ok(sealed)
}

/// Seals credentials held as a JSON object of strings (as the API receives them); anything
/// [`Credentials::from_json`] refuses is refused here.
pub fn seal_json(key: &SecretKey, credentials: &serde_json::Value) -> Result<Vec<u8>, SealError> {
    let credentials = Credentials::from_json(credentials.clone())?;
    seal(key, &credentials)
}

/// Decrypts what [`seal`] produced.
pub fn open(key: &SecretKey, sealed: &[u8]) -> Result<Credentials, SealError> {
    // The version decides the layout, so it is checked before the length.
    let Some(&version) = sealed.first() else {
        return Err(SealError::TooShort { len: 0 });
    };
    if version != FORMAT_VERSION {
        return Err(SealError::UnknownVersion(version));
    }
    if sealed.len() < MIN_SEALED_LEN {
        return Err(SealError::TooShort { len: sealed.len() });
    }
    let (nonce, ciphertext) = sealed[1..].split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce
        .try_into()
        .map_err(|_| SealError::TooShort { len: sealed.len() })?;
    let plaintext = key
        .cipher()
        .decrypt(
            &nonce.into(),
            Payload {
                msg: ciphertext,
                aad: &[FORMAT_VERSION],
            },
        )
        .map_err(|_| SealError::Decrypt)?;
    let value: serde_json::Value = serde_json::from_slice(&plaintext).map_err(SealError::Json)?;
    Ok(Credentials::from_json(value)?)
}

fn parse_key_text(text: &str) -> Result<[u8; KEY_LEN], KeyTextError> {
    let text = text.trim();
    match text.len() {
        44 => {
            let bytes = BASE64.decode(text).map_err(|_| KeyTextError::Base64)?;
            bytes.try_into().map_err(|_| KeyTextError::Base64)
        }
        64 => parse_hex(text).ok_or(KeyTextError::Hex),
        _ => Err(KeyTextError::Length(text.chars().count())),
    }
}

fn parse_hex(text: &str) -> Option<[u8; KEY_LEN]> {
    let digits = text.as_bytes();
    let mut out = [0u8; KEY_LEN];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let high = char::from(pair[0]).to_digit(16)?;
        let low = char::from(pair[1]).to_digit(16)?;
        *byte = u8::try_from(high << 4 | low).ok()?;
    }
    Some(out)
}

enum ReadError {
    Missing,
    Failed(SealError),
}

fn read_key_file(path: &Path) -> Result<SecretKey, ReadError> {
    let read_error = |source| {
        ReadError::Failed(SealError::ReadKeyFile {
            path: path.to_owned(),
            source,
        })
    };
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(ReadError::Missing),
        Err(e) => return Err(read_error(e)),
    };
    // The mode of the opened file, not of the path, so a swap between check and read
    // cannot slip a readable file past the check.
    let mode = file.metadata().map_err(read_error)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(ReadError::Failed(SealError::KeyFilePermissions {
            path: path.to_owned(),
            mode,
        }));
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(read_error)?;
    let key = parse_key_text(&text).map_err(|reason| {
        ReadError::Failed(SealError::KeyFileContent {
            path: path.to_owned(),
            reason,
        })
    });
    // Best effort, as for the key itself.
    let mut bytes = text.into_bytes();
    bytes.fill(0);
    std::hint::black_box(&mut bytes);
    key.map(SecretKey)
}

enum CreateError {
    Exists,
    Failed(SealError),
}

fn create_key_file(data_dir: &Path, path: &Path) -> Result<SecretKey, CreateError> {
    // 0700: the directory also holds the SQLite database with the sealed credentials.
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .map_err(|source| {
            CreateError::Failed(SealError::CreateDataDir {
                path: data_dir.to_owned(),
                source,
            })
        })?;
    let key = SecretKey::generate().map_err(CreateError::Failed)?;
    let write_error = |source| {
        CreateError::Failed(SealError::WriteKeyFile {
            path: path.to_owned(),
            source,
        })
    };
    // `create_new` with the mode set at creation: the file never exists with wider permissions
    // and an existing key is never overwritten.
    let mut file = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(CreateError::Exists),
        Err(e) => return Err(write_error(e)),
    };
    let written = (|| {
        file.write_all(format!("{}\n", key.to_base64()).as_bytes())?;
        file.sync_all()?;
        // Durable directory entry too: losing the key after credentials were sealed under it
        // would make them unreadable.
        File::open(data_dir)?.sync_all()
    })();
    if let Err(e) = written {
        // A half-written key file would stop every later start; better to leave none.
        let _ = fs::remove_file(path);
        return Err(write_error(e));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use serde_json::json;

    fn key(byte: u8) -> SecretKey {
        SecretKey::from_bytes([byte; KEY_LEN])
    }

    fn credentials() -> Credentials {
        Credentials::new()
            .with("consumer_key", "ck_live_123")
            .with("consumer_secret", "cs_live_456")
    }

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn round_trip() {
        let sealed = seal(&key(7), &credentials()).unwrap();
        assert_eq!(sealed[0], FORMAT_VERSION);
        assert_eq!(open(&key(7), &sealed).unwrap(), credentials());
        let text = String::from_utf8_lossy(&sealed);
        assert!(
            !text.contains("cs_live_456"),
            "plaintext in the sealed blob"
        );
    }

    #[test]
    fn round_trip_of_no_credentials() {
        let sealed = seal(&key(7), &Credentials::new()).unwrap();
        assert_eq!(open(&key(7), &sealed).unwrap(), Credentials::new());
    }

    #[test]
    fn each_seal_uses_a_fresh_nonce() {
        let a = seal(&key(7), &credentials()).unwrap();
        let b = seal(&key(7), &credentials()).unwrap();
        assert_ne!(a[1..1 + NONCE_LEN], b[1..1 + NONCE_LEN]);
        assert_ne!(a, b);
    }

    #[test]
    fn flipped_byte_fails_authentication() {
        let sealed = seal(&key(7), &credentials()).unwrap();
        // Every byte after the version: nonce, ciphertext and tag are all authenticated.
        for i in 1..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(
                matches!(open(&key(7), &bad), Err(SealError::Decrypt)),
                "byte {i}"
            );
        }
    }

    #[test]
    fn truncated_blob_fails() {
        let sealed = seal(&key(7), &credentials()).unwrap();
        let err = open(&key(7), &sealed[..20]).unwrap_err();
        assert!(matches!(err, SealError::TooShort { len: 20 }), "{err:?}");
        let err = open(&key(7), &[]).unwrap_err();
        assert!(matches!(err, SealError::TooShort { len: 0 }), "{err:?}");
        // Long enough to parse, but the tag no longer matches.
        let err = open(&key(7), &sealed[..sealed.len() - 1]).unwrap_err();
        assert!(matches!(err, SealError::Decrypt), "{err:?}");
    }

    #[test]
    fn wrong_key_fails() {
        let sealed = seal(&key(7), &credentials()).unwrap();
        let err = open(&key(8), &sealed).unwrap_err();
        assert!(matches!(err, SealError::Decrypt), "{err:?}");
        assert_eq!(
            err.to_string(),
            "cannot open sealed credentials: wrong key or corrupted ciphertext"
        );
    }

    #[test]
    fn unknown_version_fails() {
        let mut sealed = seal(&key(7), &credentials()).unwrap();
        sealed[0] = 2;
        let err = open(&key(7), &sealed).unwrap_err();
        assert!(matches!(err, SealError::UnknownVersion(2)), "{err:?}");
        assert!(err.to_string().contains("version 2"), "{err}");
    }

    #[test]
    fn seal_json_validates_through_credentials() {
        let sealed = seal_json(&key(7), &json!({"access_token": "shpat_x"})).unwrap();
        assert_eq!(
            open(&key(7), &sealed).unwrap(),
            Credentials::new().with("access_token", "shpat_x")
        );
        let err = seal_json(&key(7), &json!({"access_token": 5})).unwrap_err();
        assert!(matches!(err, SealError::Credentials(_)), "{err:?}");
        let err = seal_json(&key(7), &json!(["a"])).unwrap_err();
        assert!(matches!(err, SealError::Credentials(_)), "{err:?}");
    }

    #[test]
    fn key_text_in_base64_and_hex() {
        let base64 = BASE64.encode([0xab; KEY_LEN]);
        let hex = "ab".repeat(KEY_LEN);
        let sealed = seal(&SecretKey::from_text(&base64).unwrap(), &credentials()).unwrap();
        // The same bytes written in hex (either case, with a trailing newline) open it.
        for text in [hex.clone(), hex.to_uppercase(), format!("{hex}\n")] {
            let key = SecretKey::from_text(&text).unwrap();
            assert_eq!(open(&key, &sealed).unwrap(), credentials());
        }
    }

    #[test]
    fn bad_key_text_says_what_was_expected_without_echoing_it() {
        let cases = [
            (
                "tooshort-secret",
                "44 characters) or hex (64 characters), got 15",
            ),
            (&"#".repeat(44), "not standard base64"),
            // 44 characters of valid base64 without padding decode to 33 bytes.
            (&"A".repeat(44), "not standard base64"),
            (&"zz".repeat(32), "not hex"),
        ];
        for (text, expected) in cases {
            let err = SecretKey::from_text(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
            assert!(!err.contains(text), "{err}");
        }
        let err = SecretKey::from_text("").unwrap_err().to_string();
        assert!(err.contains("got 0 characters"), "{err}");
    }

    #[test]
    fn debug_shows_no_key_material() {
        let text = format!("{:?}", key(0xab));
        assert_eq!(text, "SecretKey([REDACTED])");
    }

    #[test]
    fn key_file_is_created_0600_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let (first, source) = SecretKey::load_or_create(None, &data_dir).unwrap();
        let path = data_dir.join(KEY_FILE_NAME);
        assert_eq!(source, KeySource::Created(path.clone()));
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(mode_of(&data_dir), 0o700);
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.len(), 45, "base64 and a newline");
        assert!(text.ends_with('\n'));

        let (second, source) = SecretKey::load_or_create(None, &data_dir).unwrap();
        assert_eq!(source, KeySource::File(path));
        assert_eq!(first.0, second.0);
        let sealed = seal(&first, &credentials()).unwrap();
        assert_eq!(open(&second, &sealed).unwrap(), credentials());
    }

    #[test]
    fn readable_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE_NAME);
        fs::write(&path, format!("{}\n", key(3).to_base64())).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = SecretKey::load_or_create(None, dir.path()).unwrap_err();
        assert!(
            matches!(err, SealError::KeyFilePermissions { mode: 0o644, .. }),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(
            message.contains(&format!("chmod 600 {}", path.display())),
            "{message}"
        );
        // Refused, not replaced.
        assert_eq!(mode_of(&path), 0o644);
    }

    #[test]
    fn invalid_key_file_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE_NAME);
        fs::write(&path, "not a key\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let err = SecretKey::load_or_create(None, dir.path()).unwrap_err();
        assert!(matches!(err, SealError::KeyFileContent { .. }), "{err:?}");
        assert!(err.to_string().contains(&path.display().to_string()));
    }

    #[test]
    fn env_key_wins_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (from_file, _) = SecretKey::load_or_create(None, dir.path()).unwrap();
        let env = "cd".repeat(KEY_LEN);
        let (from_env, source) = SecretKey::load_or_create(Some(&env), dir.path()).unwrap();
        assert_eq!(source, KeySource::Env);
        assert_eq!(from_env.0, [0xcd; KEY_LEN]);
        assert_ne!(from_env.0, from_file.0);
    }

    #[test]
    fn env_key_creates_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let env = BASE64.encode([1; KEY_LEN]);
        SecretKey::load_or_create(Some(&env), dir.path()).unwrap();
        assert!(!dir.path().join(KEY_FILE_NAME).exists());
    }

    #[test]
    fn bad_env_key_errors_without_echoing_it() {
        let dir = tempfile::tempdir().unwrap();
        let text = "hunter2-not-a-real-key";
        let err = SecretKey::load_or_create(Some(text), dir.path()).unwrap_err();
        assert!(matches!(err, SealError::EnvKey(_)), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("TIDEMARK_SECRET_KEY"), "{message}");
        assert!(message.contains("base64 (44 characters)"), "{message}");
        assert!(!message.contains(text), "{message}");
        assert!(!format!("{err:?}").contains(text));
        // A bad env key is an error, not a reason to fall back to a key file.
        assert!(!dir.path().join(KEY_FILE_NAME).exists());
    }
}
