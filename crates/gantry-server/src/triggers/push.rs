//! Push tokens: JWTs (HS256) naming a workflow, one of its push triggers and a token id, as
//! Relay issued them for `POST /api/events`. The token is shown once; the store keeps only its
//! id, so tokens can be listed and revoked but never read back.
//!
//! The signing key is 256 random bits made on first use, sealed by the vault and kept in the
//! store, so every server sharing a database verifies the same tokens. Only this module sees
//! `jsonwebtoken`.

use std::sync::Arc;

use chrono::Utc;
use gantry_store::{PushToken, SealedKind, SealedValue, Store, StoreError};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::vault::{Sealed, Vault};

/// Where the signing key is kept (a scope no workflow name can take: names have no `:`).
const KEY_SCOPE: &str = "gantry:system";
const KEY_NAME: &str = "push-token-signing-key";
const ISSUER: &str = "gantry";
const AUDIENCE: &str = "gantry:push";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The token's id in the store.
    jti: String,
    /// Workflow name.
    wf: String,
    /// Trigger name.
    tr: String,
    iat: i64,
    iss: String,
    aud: String,
}

/// Who a verified token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushIdentity {
    pub token_id: String,
    pub workflow: String,
    pub trigger: String,
}

/// The keys that sign and verify push tokens.
#[derive(Clone)]
pub struct PushKeys {
    encoding: Arc<EncodingKey>,
    decoding: Arc<DecodingKey>,
}

impl std::fmt::Debug for PushKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PushKeys(..)")
    }
}

impl PushKeys {
    /// Loads the signing key from the store, creating it on first use.
    pub async fn load(store: &dyn Store, vault: &Vault) -> Result<PushKeys, StoreError> {
        let binding = format!("{KEY_SCOPE}/{KEY_NAME}");
        let secret = match store
            .get_sealed(SealedKind::Secret, KEY_SCOPE, KEY_NAME)
            .await
        {
            Ok(sealed) => vault
                .open(
                    &binding,
                    &Sealed {
                        key_id: sealed.key_id,
                        nonce: sealed.nonce,
                        ciphertext: sealed.ciphertext,
                    },
                )
                .map_err(|e| StoreError::Database(format!("push signing key: {e}")))?,
            Err(StoreError::NotFound(_)) => {
                let mut secret = vec![0u8; 32];
                getrandom::getrandom(&mut secret)
                    .map_err(|e| StoreError::Database(format!("no randomness: {e}")))?;
                let sealed = vault
                    .seal(&binding, &secret)
                    .map_err(|e| StoreError::Database(format!("push signing key: {e}")))?;
                store
                    .put_sealed(
                        &SealedValue {
                            kind: SealedKind::Secret,
                            scope: KEY_SCOPE.into(),
                            name: KEY_NAME.into(),
                            key_id: sealed.key_id,
                            nonce: sealed.nonce,
                            ciphertext: sealed.ciphertext,
                            updated_at: Utc::now(),
                        },
                        &gantry_store::Audit::system("push signing key", Utc::now()),
                    )
                    .await?;
                secret
            }
            Err(e) => return Err(e),
        };
        Ok(PushKeys::from_secret(&secret))
    }

    pub fn from_secret(secret: &[u8]) -> PushKeys {
        PushKeys {
            encoding: Arc::new(EncodingKey::from_secret(secret)),
            decoding: Arc::new(DecodingKey::from_secret(secret)),
        }
    }

    /// Stores a new token's record and returns the token (to show once).
    pub async fn issue(
        &self,
        store: &dyn Store,
        workflow: &str,
        trigger: &str,
        audit: &gantry_store::Audit,
    ) -> Result<(PushToken, String), StoreError> {
        let now = audit.at;
        let record = PushToken {
            id: gantry_store::new_id()?,
            workflow: workflow.to_owned(),
            trigger: trigger.to_owned(),
            created_at: now,
            revoked_at: None,
        };
        let claims = Claims {
            jti: record.id.clone(),
            wf: workflow.to_owned(),
            tr: trigger.to_owned(),
            iat: now.timestamp(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| StoreError::Database(format!("signing a push token: {e}")))?;
        store.create_push_token(&record, audit).await?;
        Ok((record, token))
    }

    /// Checks the signature and the claims; `None` for anything that is not a token this
    /// server signed. Revocation is checked by the caller against the store.
    pub fn verify(&self, token: &str) -> Option<PushIdentity> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).ok()?;
        Some(PushIdentity {
            token_id: data.claims.jti,
            workflow: data.claims.wf,
            trigger: data.claims.tr,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(aud: &str) -> Claims {
        Claims {
            jti: "t1".into(),
            wf: "deploy".into(),
            tr: "push".into(),
            iat: 0,
            iss: ISSUER.into(),
            aud: aud.into(),
        }
    }

    #[test]
    fn verifies_its_own_tokens_only() {
        let keys = PushKeys::from_secret(&[7; 32]);
        let other = PushKeys::from_secret(&[8; 32]);
        let token =
            jsonwebtoken::encode(&Header::default(), &claims(AUDIENCE), &keys.encoding).unwrap();
        assert_eq!(
            keys.verify(&token),
            Some(PushIdentity {
                token_id: "t1".into(),
                workflow: "deploy".into(),
                trigger: "push".into()
            })
        );
        assert_eq!(other.verify(&token), None, "another server's key");
        let mut tampered = token.clone();
        tampered.insert(tampered.len() - 3, 'x');
        assert_eq!(keys.verify(&tampered), None);
        let wrong_audience =
            jsonwebtoken::encode(&Header::default(), &claims("other"), &keys.encoding).unwrap();
        assert_eq!(keys.verify(&wrong_audience), None);
        assert_eq!(keys.verify("not a token"), None);
        // `alg: none` is never accepted.
        let none = format!(
            "eyJhbGciOiJub25lIn0.{}.",
            token.split('.').nth(1).unwrap_or_default()
        );
        assert_eq!(keys.verify(&none), None);
    }
}
