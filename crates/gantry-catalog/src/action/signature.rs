//! The signature of a webhook invocation, so its receiver knows the request came from Gantry
//! and was not replayed later.
//!
//! The header value is `t=<unix seconds>,v1=<hex HMAC-SHA256>` where the MAC, keyed with the
//! webhook's secret, is over `"<t>.<body>"` (the timestamp in decimal, a dot, the raw body).
//! A receiver checks the MAC (in constant time) and that `t` is close to its own clock.
//! Several `v1=` parts may be given (one per secret while a secret is rotated): one matching is
//! enough. Parts with other names are ignored, so a later scheme can be added beside `v1`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(m) => m,
        // HMAC pads or hashes a key of any length; this cannot fail.
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The signature header value of `body` sent at `timestamp` (unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(tag))
}

/// Checks a signature header of `body` received at `now` (unix seconds): a `v1` MAC made with
/// `secret`, and a timestamp at most `tolerance_secs` from `now` either way. The error says
/// what is wrong, never what the right signature would be.
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), String> {
    if header.trim().is_empty() {
        return Err("the signature header is empty: it is `t=<unix seconds>,v1=<hex>`".into());
    }
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let Some((key, value)) = part.trim().split_once('=') else {
            return Err(format!(
                "`{part}` is not `name=value`: the header is `t=<unix seconds>,v1=<hex>`"
            ));
        };
        match key {
            "t" => {
                let t: i64 = value
                    .parse()
                    .map_err(|_| format!("the timestamp `{value}` is not unix seconds"))?;
                timestamp = Some(t);
            }
            "v1" => signatures.push(value),
            _ => {}
        }
    }
    let Some(timestamp) = timestamp else {
        return Err("the header has no timestamp (`t=`)".into());
    };
    if signatures.is_empty() {
        return Err("the header has no signature (`v1=`)".into());
    }
    let age = now.saturating_sub(timestamp);
    if age.saturating_abs() > tolerance_secs {
        return Err(if age > 0 {
            format!("the signature is {age} seconds old, more than the {tolerance_secs} allowed")
        } else {
            format!(
                "the signature is dated {} seconds ahead, more than the {tolerance_secs} allowed",
                -age
            )
        });
    }
    let expected = mac(secret, timestamp, body);
    let matched = signatures
        .iter()
        .any(|s| hex::decode(s).is_ok_and(|tag| expected.clone().verify_slice(&tag).is_ok()));
    if matched {
        Ok(())
    } else {
        Err("the signature does not match the body".into())
    }
}
