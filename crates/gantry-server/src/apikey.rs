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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn digest(secret: &str) -> String {
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

/// Whether `secret` matches the stored hash, in time independent of where they differ.
pub fn verify(secret: &str, stored_hash: &str) -> bool {
    let computed = digest(secret);
    computed.len() == stored_hash.len()
        && computed
            .bytes()
            .zip(stored_hash.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

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
