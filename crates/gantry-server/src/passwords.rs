//! Passwords: argon2id with the crate's default (OWASP) cost, stored as a PHC string that
//! carries its own salt and parameters, so a later change of cost still verifies old hashes.
//!
//! The only module that touches the `argon2` crate. Hashing is deliberately slow (tens of
//! milliseconds, 19 MiB): callers run it on the blocking pool, never on a request's task.
//! Verifying a login for an email that has no password runs the same work against a fixed hash,
//! so the answer's timing does not tell which emails exist.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// The shortest password accepted, in characters.
pub const MIN_LENGTH: usize = 12;
/// The longest, in bytes: bounds the work one request can ask for.
pub const MAX_LENGTH: usize = 1024;

/// Why a new password is refused (never containing the password).
pub fn check(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_LENGTH {
        return Err(format!("a password has at least {MIN_LENGTH} characters"));
    }
    if password.len() > MAX_LENGTH {
        return Err(format!("a password has at most {MAX_LENGTH} bytes"));
    }
    Ok(())
}

/// A PHC string for `password`; `None` when the system has no randomness for a salt.
pub fn hash(password: &str) -> Option<String> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).ok()?;
    let salt = SaltString::encode_b64(&salt).ok()?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .ok()
        .map(|h| h.to_string())
}

/// A hash of a password nobody knows, to spend the same time on logins that cannot succeed.
const DECOY: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$Z2FudHJ5LWRlY295LXNhbHQ$0p5mvyMjSDU0qTTpVT8PTuXVMBDFqkZ5o9Pq5ZXjT0o";

/// Whether `password` matches `stored` (a PHC string). With no stored hash the answer is
/// `false`, after the same work as a real check.
pub fn verify(password: &str, stored: Option<&str>) -> bool {
    if password.len() > MAX_LENGTH {
        return false;
    }
    let parsed = stored.and_then(|s| PasswordHash::new(s).ok());
    match parsed {
        Some(hash) => Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok(),
        None => {
            if let Ok(decoy) = PasswordHash::new(DECOY) {
                let _ = Argon2::default().verify_password(password.as_bytes(), &decoy);
            }
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let stored = hash("correct horse battery").unwrap();
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert!(!stored.contains("correct horse"));
        assert!(verify("correct horse battery", Some(&stored)));
        assert!(!verify("correct horse batterY", Some(&stored)));
        assert!(!verify("correct horse battery", None));
        assert!(!verify("correct horse battery", Some("not a phc string")));
        // Two hashes of one password differ (a salt each) and both verify.
        let again = hash("correct horse battery").unwrap();
        assert_ne!(stored, again);
        assert!(verify("correct horse battery", Some(&again)));
    }

    #[test]
    fn the_decoy_parses_so_unknown_users_cost_the_same() {
        assert!(PasswordHash::new(DECOY).is_ok());
    }

    #[test]
    fn short_and_huge_passwords_are_refused() {
        assert!(check("short").unwrap_err().contains("12"));
        assert!(check(&"x".repeat(MAX_LENGTH + 1)).is_err());
        assert!(check("twelve chars").is_ok());
    }
}
