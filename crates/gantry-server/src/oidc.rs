//! Single sign-on with OpenID Connect: Gantry as a relying party of one provider.
//!
//! [`OidcClient::discover`] reads the provider's discovery document and signing keys once.
//! A login is then two calls: [`OidcClient::begin`] makes the authorization URL and a
//! [`PendingLogin`] (state, nonce, PKCE S256 verifier) that the caller keeps server-side, and
//! [`OidcClient::finish`] checks the state, exchanges the code and verifies the ID token
//! (signature, issuer, audience, expiry, nonce) into an [`OidcIdentity`]. [`map_groups`] turns
//! the identity's groups into Gantry teams and a role, as a pure function over configuration.
//!
//! This is the only module that touches the `openidconnect` crate; nothing of it leaks through
//! the public API. It must not know about HTTP routes, users or sessions (the caller owns those),
//! and it must never put a token, code, verifier or secret in an error message or a log line.
//!
//! Concurrency: an [`OidcClient`] is immutable after discovery and cheap to clone; share it
//! across tasks. The signing keys are those read at discovery: when the provider rotates its
//! keys, discover again.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType,
    CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, ClaimsVerificationError, Client, ClientId, ClientSecret,
    CsrfToken, EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdToken,
    IdTokenFields, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, Scope, SignatureVerificationError, StandardErrorResponse,
    StandardTokenResponse, TokenResponse,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::authz::Role;

/// Where the provider is and who Gantry is to it.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSettings {
    /// The issuer URL, exactly as the provider spells it in its discovery document.
    pub issuer: String,
    pub client_id: String,
    /// `None` for a public client.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Gantry's callback URL, as registered with the provider.
    pub redirect_url: String,
    /// Scopes to request besides `openid`, e.g. `email`, `profile`, `groups`.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The ID token claim that lists the user's groups.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
}

fn default_groups_claim() -> String {
    "groups".to_owned()
}

impl fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcSettings")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("redirect_url", &self.redirect_url)
            .field("scopes", &self.scopes)
            .field("groups_claim", &self.groups_claim)
            .finish()
    }
}

/// What failed, in words an operator can act on. No message holds a token, code or secret.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the issuer `{0}` is not a valid URL")]
    IssuerUrl(String),
    #[error("the redirect URL `{0}` is not a valid URL")]
    RedirectUrl(String),
    #[error("the HTTP client for the provider could not be built: {0}")]
    HttpClient(String),
    #[error("discovery at {url} failed: {reason}")]
    Discovery { url: String, reason: String },
    #[error("the provider at {0} has no token endpoint")]
    NoTokenEndpoint(String),
    #[error("state does not match")]
    StateMismatch,
    #[error("the provider refused the code: {0}")]
    CodeRefused(String),
    #[error("the token request failed: {0}")]
    TokenRequest(String),
    #[error("the token response has no ID token")]
    NoIdToken,
    #[error("the ID token is not a well-formed JWT")]
    MalformedIdToken,
    #[error("the ID token's signature does not verify ({0})")]
    Signature(String),
    #[error("the ID token's nonce does not match ({0})")]
    Nonce(String),
    #[error("the ID token's issuer is wrong: {0}")]
    Issuer(String),
    #[error("the ID token is not meant for this client: {0}")]
    Audience(String),
    #[error("the ID token has expired: {0}")]
    Expired(String),
    #[error("the ID token was rejected: {0}")]
    Claims(String),
    #[error("the ID token's `{0}` claim is neither a string nor a list of strings")]
    GroupsClaim(String),
}

/// What `begin` hands the caller to keep until the callback: the caller stores it server-side
/// (it holds the PKCE verifier) and looks it up by `state`.
#[derive(Clone, Serialize, Deserialize)]
pub struct PendingLogin {
    /// Sent to the provider and expected back on the callback; also the natural lookup key.
    pub state: String,
    nonce: String,
    pkce_verifier: String,
}

impl fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingLogin")
            .field("state", &self.state)
            .field("nonce", &"<redacted>")
            .field("pkce_verifier", &"<redacted>")
            .finish()
    }
}

/// Who logged in, read from a verified ID token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcIdentity {
    /// The provider's stable identifier for the user; with `issuer`, the key to a Gantry user.
    pub subject: String,
    pub issuer: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub groups: Vec<String>,
}

/// Every claim that `openidconnect` does not model, so the groups claim can have any name.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct OtherClaims {
    #[serde(flatten)]
    claims: serde_json::Map<String, Value>,
}

impl AdditionalClaims for OtherClaims {}

type ProviderIdToken = IdToken<
    OtherClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

type ProviderTokenResponse = StandardTokenResponse<
    IdTokenFields<
        OtherClaims,
        EmptyExtraTokenFields,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    >,
    CoreTokenType,
>;

/// A client whose authorization and token endpoints are known (checked at discovery).
type ProviderClient = Client<
    OtherClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    ProviderTokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
    EndpointMaybeSet,
>;

/// One provider, discovered. Clone it freely: the clones share nothing mutable.
#[derive(Clone)]
pub struct OidcClient {
    client: ProviderClient,
    issuer: String,
    http: reqwest::Client,
    scopes: Vec<String>,
    groups_claim: String,
}

impl fmt::Debug for OidcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcClient")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client.client_id().as_str())
            .field("scopes", &self.scopes)
            .field("groups_claim", &self.groups_claim)
            .finish_non_exhaustive()
    }
}

/// An error and its causes on one line: the outer messages of `openidconnect` and `reqwest`
/// alone ("Request failed") do not say why.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

/// Equality in time independent of where the strings differ: both are hashed first.
fn same_secret(a: &str, b: &str) -> bool {
    Sha256::digest(a.as_bytes())
        .iter()
        .zip(Sha256::digest(b.as_bytes()).iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

impl OidcClient {
    /// Reads the provider's discovery document and signing keys.
    pub async fn discover(settings: OidcSettings) -> Result<Self, OidcError> {
        let OidcSettings {
            issuer,
            client_id,
            client_secret,
            redirect_url,
            scopes,
            groups_claim,
        } = settings;
        let issuer_url =
            IssuerUrl::new(issuer.clone()).map_err(|_| OidcError::IssuerUrl(issuer.clone()))?;
        let redirect_url = RedirectUrl::new(redirect_url.clone())
            .map_err(|_| OidcError::RedirectUrl(redirect_url))?;
        // Following redirects would let a provider's response point the client anywhere (SSRF).
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| OidcError::HttpClient(with_causes(&e)))?;

        let metadata = CoreProviderMetadata::discover_async(issuer_url, &http)
            .await
            .map_err(|e| OidcError::Discovery {
                url: format!(
                    "{}/.well-known/openid-configuration",
                    issuer.trim_end_matches('/')
                ),
                reason: with_causes(&e),
            })?;
        let token_url = metadata
            .token_endpoint()
            .cloned()
            .ok_or_else(|| OidcError::NoTokenEndpoint(issuer.clone()))?;
        let client = Client::from_provider_metadata(
            metadata,
            ClientId::new(client_id),
            client_secret.map(ClientSecret::new),
        )
        .set_token_uri(token_url)
        .set_redirect_uri(redirect_url);

        Ok(OidcClient {
            client,
            issuer,
            http,
            scopes,
            groups_claim,
        })
    }

    /// The URL to send the user's browser to, and what to keep until the callback.
    pub fn begin(&self) -> (String, PendingLogin) {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = self
            .client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scopes(self.scopes.iter().cloned().map(Scope::new))
            .set_pkce_challenge(challenge)
            .url();
        let pending = PendingLogin {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        };
        (url.into(), pending)
    }

    /// Exchanges the code from the callback for the provider's ID token, unverified.
    pub async fn exchange(&self, code: &str, pending: &PendingLogin) -> Result<String, OidcError> {
        let response = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(refusal) => {
                    let mut reason = refusal.error().to_string();
                    if let Some(description) = refusal.error_description() {
                        reason.push_str(" (");
                        reason.push_str(description);
                        reason.push(')');
                    }
                    OidcError::CodeRefused(reason)
                }
                RequestTokenError::Request(e) => OidcError::TokenRequest(with_causes(&e)),
                // The unparsable body may hold tokens: only serde's path and reason are kept.
                RequestTokenError::Parse(e, _body) => OidcError::TokenRequest(format!(
                    "the response does not parse at `{}`",
                    e.path()
                )),
                RequestTokenError::Other(reason) => OidcError::TokenRequest(reason),
            })?;
        let id_token = response.id_token().ok_or(OidcError::NoIdToken)?;
        Ok(id_token.to_string())
    }

    /// Checks the ID token's signature against the provider's keys, its issuer, audience and
    /// expiry, and that its nonce is the one `begin` made for this login.
    pub fn verify(
        &self,
        id_token: &str,
        pending: &PendingLogin,
    ) -> Result<OidcIdentity, OidcError> {
        let token = ProviderIdToken::from_str(id_token).map_err(|_| OidcError::MalformedIdToken)?;
        let nonce = Nonce::new(pending.nonce.clone());
        let claims = token
            .into_claims(&self.client.id_token_verifier(), &nonce)
            .map_err(|e| match e {
                ClaimsVerificationError::SignatureVerification(e) => {
                    OidcError::Signature(signature_reason(&e))
                }
                ClaimsVerificationError::InvalidNonce(reason) => OidcError::Nonce(reason),
                ClaimsVerificationError::InvalidIssuer(reason) => OidcError::Issuer(reason),
                ClaimsVerificationError::InvalidAudience(reason) => OidcError::Audience(reason),
                ClaimsVerificationError::Expired(reason) => OidcError::Expired(reason),
                other => OidcError::Claims(other.to_string()),
            })?;
        let groups = match claims.additional_claims().claims.get(&self.groups_claim) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(group)) => vec![group.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| OidcError::GroupsClaim(self.groups_claim.clone()))?,
            Some(_) => return Err(OidcError::GroupsClaim(self.groups_claim.clone())),
        };
        Ok(OidcIdentity {
            subject: claims.subject().as_str().to_owned(),
            issuer: claims.issuer().as_str().to_owned(),
            email: claims.email().map(|e| e.as_str().to_owned()),
            email_verified: claims.email_verified().unwrap_or(false),
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_owned()),
            groups,
        })
    }

    /// The callback: checks `state` against the pending login, exchanges the code and verifies
    /// the ID token.
    pub async fn finish(
        &self,
        code: &str,
        state: &str,
        pending: &PendingLogin,
    ) -> Result<OidcIdentity, OidcError> {
        if !same_secret(state, &pending.state) {
            return Err(OidcError::StateMismatch);
        }
        let id_token = self.exchange(code, pending).await?;
        self.verify(&id_token, pending)
    }
}

fn signature_reason(error: &SignatureVerificationError) -> String {
    match error {
        SignatureVerificationError::CryptoError(_) => "the signature is not the key's".to_owned(),
        SignatureVerificationError::NoSignature => "the token is unsigned".to_owned(),
        SignatureVerificationError::NoMatchingKey => {
            "no key of the provider matches; if it rotated its keys, discover again".to_owned()
        }
        other => other.to_string(),
    }
}

/// What one group grants: a team to join, a role, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupGrant {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_role",
        deserialize_with = "deserialize_role"
    )]
    pub role: Option<Role>,
}

/// From configuration: provider group name → what it grants in Gantry.
/// Groups are matched exactly (case-sensitive); groups not listed grant nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GroupMapping(pub BTreeMap<String, GroupGrant>);

/// What a user's groups grant together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// Sorted, without duplicates.
    pub teams: Vec<String>,
    /// The highest role any group grants.
    pub role: Option<Role>,
}

fn serialize_role<S: Serializer>(role: &Option<Role>, serializer: S) -> Result<S::Ok, S::Error> {
    match role {
        Some(role) => serializer.serialize_str(role.as_str()),
        None => serializer.serialize_none(),
    }
}

fn deserialize_role<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Role>, D::Error> {
    let text = String::deserialize(deserializer)?;
    Role::parse(&text).map(Some).ok_or_else(|| {
        let expected = Role::ALL.map(Role::as_str).join(", ");
        serde::de::Error::custom(format!("unknown role `{text}`, expected one of {expected}"))
    })
}

/// The teams and the role that `groups` grant under `mapping`.
pub fn map_groups(groups: &[String], mapping: &GroupMapping) -> Grants {
    let mut teams = BTreeSet::new();
    let mut role = None;
    for grant in groups.iter().filter_map(|g| mapping.0.get(g)) {
        if let Some(team) = &grant.team {
            teams.insert(team.clone());
        }
        role = role.max(grant.role);
    }
    Grants {
        teams: teams.into_iter().collect(),
        role,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(names: &[&str]) -> Vec<String> {
        names.iter().map(|&n| n.to_owned()).collect()
    }

    fn mapping(json: &str) -> GroupMapping {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn groups_map_to_teams_and_the_highest_role() {
        let mapping = mapping(
            r#"{
                "platform": {"team": "platform"},
                "sre": {"role": "approver"},
                "oncall": {"team": "sre", "role": "operator"},
                "admins": {"role": "admin"}
            }"#,
        );
        let check = |names: &[&str], teams: &[&str], role: Option<Role>| {
            assert_eq!(
                map_groups(&groups(names), &mapping),
                Grants {
                    teams: groups(teams),
                    role
                },
                "{names:?}"
            );
        };
        check(&["platform", "sre"], &["platform"], Some(Role::Approver));
        check(&["oncall", "sre"], &["sre"], Some(Role::Approver));
        check(
            &["sre", "oncall", "admins", "platform", "oncall"],
            &["platform", "sre"],
            Some(Role::Admin),
        );
        check(&["oncall"], &["sre"], Some(Role::Operator));
        check(&["Platform", "unknown"], &[], None);
        check(&[], &[], None);
    }

    #[test]
    fn a_mapping_with_an_unknown_role_or_field_does_not_load() {
        let err = serde_json::from_str::<GroupMapping>(r#"{"sre": {"role": "owner"}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown role `owner`, expected one of viewer, operator, approver, admin"),
            "{err}"
        );
        assert!(serde_json::from_str::<GroupMapping>(r#"{"sre": {"teams": ["a"]}}"#).is_err());
        let round = mapping(r#"{"sre": {"team": "sre", "role": "viewer"}, "x": {}}"#);
        assert_eq!(
            serde_json::to_string(&round).unwrap(),
            r#"{"sre":{"team":"sre","role":"viewer"},"x":{}}"#
        );
    }

    #[test]
    fn debug_output_hides_the_verifier_nonce_and_secret() {
        let pending = PendingLogin {
            state: "the-state".into(),
            nonce: "the-nonce".into(),
            pkce_verifier: "the-verifier".into(),
        };
        let shown = format!("{pending:?}");
        assert!(shown.contains("the-state"), "{shown}");
        assert!(
            !shown.contains("the-verifier") && !shown.contains("the-nonce"),
            "{shown}"
        );
        let stored = serde_json::to_string(&pending).unwrap();
        let back: PendingLogin = serde_json::from_str(&stored).unwrap();
        assert_eq!(back.pkce_verifier, "the-verifier");

        let settings: OidcSettings = serde_json::from_str(
            r#"{"issuer": "https://id.example", "client_id": "gantry",
                "client_secret": "hunter2", "redirect_url": "https://gantry.example/cb"}"#,
        )
        .unwrap();
        assert_eq!(settings.groups_claim, "groups");
        assert!(settings.scopes.is_empty());
        assert!(!format!("{settings:?}").contains("hunter2"));
    }

    #[test]
    fn states_compare_by_content() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
        assert!(!same_secret("", "a"));
    }

    #[test]
    fn the_client_can_be_shared_across_tasks() {
        fn shareable<T: Clone + Send + Sync + 'static>() {}
        shareable::<OidcClient>();
        shareable::<PendingLogin>();
    }
}
