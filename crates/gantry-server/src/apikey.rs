//! API keys: 256 random bits, shown once as `gantry_<prefix>_<secret>`, stored only as a hash.
//!
//! The prefix finds the stored key without scanning; the secret's SHA-256 is compared in
//! constant time. Plain functions over data, no I/O.

use sha2::{Digest, Sha256};

const SCHEME: &str = "gantry_";

/// A key just made: `presented` is shown to its owner once, the rest is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    pub prefix: String,
    pub presented: String,
    pub hash: String,
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

pub(crate) fn digest(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// Makes a new key; `None` only if the operating system has no randomness to give.
pub fn generate() -> Option<NewApiKey> {
    let mut prefix = [0u8; 4];
    let mut secret = [0u8; 32];
    getrandom::getrandom(&mut prefix).ok()?;
    getrandom::getrandom(&mut secret).ok()?;
    let (prefix, secret) = (hex(&prefix), hex(&secret));
    Some(NewApiKey {
        presented: format!("{SCHEME}{prefix}_{secret}"),
        hash: digest(&secret),
        prefix,
    })
}

/// Splits a presented key into its prefix and secret; `None` when it is not a Gantry key.
pub fn parse(presented: &str) -> Option<(&str, &str)> {
    let rest = presented.trim().strip_prefix(SCHEME)?;
    let (prefix, secret) = rest.split_once('_')?;
    let hexish = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hexish(prefix, 8) && hexish(secret, 64)).then_some((prefix, secret))
}

/// A stored hash decoded once, so that checking a presented secret allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredHash([u8; 32]);

impl StoredHash {
    /// `None` when `stored` is not a SHA-256 in hex.
    pub fn parse(stored: &str) -> Option<StoredHash> {
        let bytes = stored.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let nibble = |c: u8| {
            char::from(c)
                .to_digit(16)
                .and_then(|d| u8::try_from(d).ok())
        };
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
        }
        Some(StoredHash(out))
    }

    /// Whether `secret` hashes to this, in time independent of where they differ.
    pub fn verify(&self, secret: &str) -> bool {
        equal_in_constant_time(&Sha256::digest(secret.as_bytes()), &self.0)
    }
}

/// Whether `a` and `b` are equal, in time that depends on their lengths only.
pub(crate) fn equal_in_constant_time(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verify(secret: &str, stored_hash: &str) -> bool {
        StoredHash::parse(stored_hash).is_some_and(|h| h.verify(secret))
    }

    #[test]
    fn a_key_verifies_and_a_changed_one_does_not() {
        let key = generate().unwrap();
        assert!(key.presented.starts_with("gantry_"));
        assert_eq!(key.presented.len(), "gantry_".len() + 8 + 1 + 64);
        let (prefix, secret) = parse(&key.presented).unwrap();
        assert_eq!(prefix, key.prefix);
        assert!(verify(secret, &key.hash));
        assert!(!key.hash.contains(secret));
        let mut other = secret.to_owned();
        other.replace_range(0..1, if secret.starts_with('0') { "1" } else { "0" });
        assert!(!verify(&other, &key.hash));
        assert_ne!(generate().unwrap().presented, key.presented);
    }

    #[test]
    fn other_strings_are_not_keys() {
        for s in [
            "",
            "gantry_",
            "gantry_abc_def",
            "token",
            "gantry_zzzzzzzz_00",
            "Bearer x",
        ] {
            assert_eq!(parse(s), None, "{s}");
        }
    }
}
