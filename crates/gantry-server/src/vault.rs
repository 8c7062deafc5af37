//! Secret values at rest: sealed with XChaCha20-Poly1305 under a master key that has an id, so
//! keys can be rotated (new values sealed with the newest key, old ones still opened with theirs).
//!
//! The master keys come from `GANTRY_MASTER_KEY` or from `master.key` in the data directory,
//! generated on first start with mode 0600. Each sealed value is bound to where it belongs (its
//! scope and name, as associated data), so a ciphertext copied to another secret does not open.
//! Nothing here logs, and no error message carries a key or a value. Plain functions; a `Vault`
//! is immutable and can be shared between threads.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

/// The file in the data directory that holds the master keys: one `id hex-key` per line, the
/// last line being the key new values are sealed with.
pub const MASTER_KEY_FILE: &str = "master.key";
/// The environment variable that, when set, replaces the file: `id:hex-key[,id:hex-key…]`.
pub const MASTER_KEY_ENV: &str = "GANTRY_MASTER_KEY";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VaultError {
    #[error("the master key is malformed: {0}")]
    MalformedKey(String),
    #[error("cannot read or create the master key file {path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error("the master key file {0} is readable by other users; run chmod 600 on it")]
    KeyFileOpen(String),
    #[error("the value was sealed with master key `{0}`, which is not configured")]
    UnknownKey(String),
    #[error("the value cannot be opened: it was changed, or belongs to another secret")]
    Tampered,
    #[error("no randomness available from the operating system")]
    NoRandomness,
}

/// A sealed value, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

pub struct Vault {
    keys: BTreeMap<String, XChaCha20Poly1305>,
    current: String,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Key ids only, never key material.
        f.debug_struct("Vault")
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .field("current", &self.current)
            .finish()
    }
}

fn random<const N: usize>() -> Result<[u8; N], VaultError> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).map_err(|_| VaultError::NoRandomness)?;
    Ok(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

/// Parses `id hex` lines (or `id:hex` items); the last is current.
fn parse_keys<'a>(items: impl Iterator<Item = &'a str>) -> Result<Vault, VaultError> {
    let mut keys = BTreeMap::new();
    let mut current = None;
    for (n, item) in items.enumerate() {
        let item = item.trim();
        if item.is_empty() || item.starts_with('#') {
            continue;
        }
        let Some((id, key)) = item.split_once([' ', ':']) else {
            return Err(VaultError::MalformedKey(format!(
                "entry {} has no key id",
                n + 1
            )));
        };
        let id = id.trim();
        let bytes = unhex(key.trim()).filter(|b| b.len() == 32).ok_or_else(|| {
            VaultError::MalformedKey(format!("key `{id}` is not 64 hexadecimal digits"))
        })?;
        let cipher = XChaCha20Poly1305::new_from_slice(&bytes)
            .map_err(|_| VaultError::MalformedKey(format!("key `{id}` has the wrong length")))?;
        keys.insert(id.to_owned(), cipher);
        current = Some(id.to_owned());
    }
    let current = current.ok_or_else(|| VaultError::MalformedKey("no key is given".into()))?;
    Ok(Vault { keys, current })
}

impl Vault {
    /// The keys from `env_value` (the content of `GANTRY_MASTER_KEY`) when given, otherwise from
    /// the data directory's key file, which is created with a new random key on first use.
    pub fn load(data_dir: &Path, env_value: Option<&str>) -> Result<Vault, VaultError> {
        if let Some(v) = env_value.filter(|v| !v.trim().is_empty()) {
            return parse_keys(v.split(','));
        }
        let path = data_dir.join(MASTER_KEY_FILE);
        let shown = path.display().to_string();
        let file_error = |e: std::io::Error| VaultError::KeyFile {
            path: shown.clone(),
            reason: e.to_string(),
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                check_private(&path)?;
                parse_keys(text.lines())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir).map_err(file_error)?;
                let line = format!("k1 {}\n", hex(&random::<32>()?));
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                let mut file = options.open(&path).map_err(file_error)?;
                file.write_all(line.as_bytes()).map_err(file_error)?;
                file.sync_all().map_err(file_error)?;
                parse_keys(line.lines())
            }
            Err(e) => Err(file_error(e)),
        }
    }

    /// The id new values are sealed with.
    pub fn current_key_id(&self) -> &str {
        &self.current
    }

    /// Seals `plaintext` for the place `binding` names (for example `workflow/deploy/secret/token`).
    pub fn seal(&self, binding: &str, plaintext: &[u8]) -> Result<Sealed, VaultError> {
        let cipher = self
            .keys
            .get(&self.current)
            .ok_or_else(|| VaultError::UnknownKey(self.current.clone()))?;
        let nonce = random::<24>()?;
        let ciphertext = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: binding.as_bytes(),
                },
            )
            .map_err(|_| VaultError::Tampered)?;
        Ok(Sealed {
            key_id: self.current.clone(),
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    /// Opens a value sealed for `binding`.
    pub fn open(&self, binding: &str, sealed: &Sealed) -> Result<Vec<u8>, VaultError> {
        let cipher = self
            .keys
            .get(&sealed.key_id)
            .ok_or_else(|| VaultError::UnknownKey(sealed.key_id.clone()))?;
        if sealed.nonce.len() != 24 {
            return Err(VaultError::Tampered);
        }
        cipher
            .decrypt(
                XNonce::from_slice(&sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad: binding.as_bytes(),
                },
            )
            .map_err(|_| VaultError::Tampered)
    }
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), VaultError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| VaultError::KeyFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(VaultError::KeyFileOpen(path.display().to_string()));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), VaultError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_data_dir_gets_a_private_key_that_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::load(dir.path(), None).unwrap();
        let sealed = vault.seal("wf/deploy/token", b"hunter2").unwrap();
        assert_ne!(sealed.ciphertext, b"hunter2");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(MASTER_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = Vault::load(dir.path(), None).unwrap();
        assert_eq!(again.open("wf/deploy/token", &sealed).unwrap(), b"hunter2");
    }

    #[test]
    fn a_value_opens_only_where_it_was_sealed_and_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::load(dir.path(), None).unwrap();
        let sealed = vault.seal("wf/a/token", b"v").unwrap();
        assert_eq!(vault.open("wf/b/token", &sealed), Err(VaultError::Tampered));
        let mut changed = sealed.clone();
        changed.ciphertext[0] ^= 1;
        assert_eq!(
            vault.open("wf/a/token", &changed),
            Err(VaultError::Tampered)
        );
        let mut short = sealed;
        short.nonce.pop();
        assert_eq!(vault.open("wf/a/token", &short), Err(VaultError::Tampered));
    }

    #[test]
    fn rotation_keeps_old_values_readable() {
        let k1 = format!("k1:{}", "11".repeat(32));
        let k2 = format!("k2:{}", "22".repeat(32));
        let dir = tempfile::tempdir().unwrap();
        let old = Vault::load(dir.path(), Some(&k1)).unwrap();
        let sealed = old.seal("s", b"old").unwrap();
        let rotated = Vault::load(dir.path(), Some(&format!("{k1},{k2}"))).unwrap();
        assert_eq!(rotated.current_key_id(), "k2");
        assert_eq!(rotated.open("s", &sealed).unwrap(), b"old");
        assert_eq!(rotated.seal("s", b"new").unwrap().key_id, "k2");
        let only_new = Vault::load(dir.path(), Some(&k2)).unwrap();
        assert_eq!(
            only_new.open("s", &sealed),
            Err(VaultError::UnknownKey("k1".into()))
        );
        // The environment replaced the file: none was created.
        assert!(!dir.path().join(MASTER_KEY_FILE).exists());
    }

    #[test]
    fn malformed_and_exposed_keys_are_refused_without_echoing_them() {
        let dir = tempfile::tempdir().unwrap();
        let err = Vault::load(dir.path(), Some("k1:abcd")).unwrap_err();
        assert!(!err.to_string().contains("abcd"), "{err}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let path = dir.path().join(MASTER_KEY_FILE);
            std::fs::write(&path, format!("k1 {}\n", "33".repeat(32))).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(
                Vault::load(dir.path(), None),
                Err(VaultError::KeyFileOpen(_))
            ));
        }
        assert!(!format!(
            "{:?}",
            Vault::load(dir.path(), Some(&format!("k9:{}", "44".repeat(32)))).unwrap()
        )
        .contains("44"));
    }
}
