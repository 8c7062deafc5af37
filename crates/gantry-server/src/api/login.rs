//! How people sign in: a password, or single sign-on with OpenID Connect; either way a web
//! session in a cookie.
//!
//! Sessions: the cookie `gantry_session` holds `<id>.<secret>` (256 random bits); the store
//! keeps the secret's SHA-256 only. It is `HttpOnly`, `SameSite=Lax`, `Path=/`, `Secure` when
//! the server's public URL is https, and lasts [`SESSION_TTL`]. A request authenticated by the
//! cookie that changes anything (any method but GET, HEAD, OPTIONS) must carry the session's
//! CSRF token in `X-CSRF-Token`: a value derived from the secret that the page reads from
//! `POST /auth/login` or `GET /auth/session`, which another site can neither read nor guess.
//! Login and logout also refuse an `Origin` other than the server's own.
//!
//! Abuse limits ([`SignIn`]): login attempts per source address, failed logins per account,
//! and failed authentications per source on every guarded route; beyond them a 429 with
//! `Retry-After`. Every failed login is audited (`login.failed`), without the password and
//! naming the account only when it exists.
//!
//! Single sign-on: `GET /auth/oidc/login` sends the browser to the provider with a state, a
//! nonce and a PKCE challenge, kept sealed (the vault) in a short-lived cookie rather than on
//! the server, so any server of a cluster can finish the login. `GET /auth/oidc/callback`
//! checks them, verifies the ID token, and keeps the user in step with the provider: created
//! on first sign-in (the role the groups grant, else the configured default), the role updated
//! when the groups grant one, and membership of every mapped team added or removed to match
//! the groups. Only a verified email signs in.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::header::{COOKIE, LOCATION, ORIGIN, RETRY_AFTER, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::Utc;
use gantry_store::{
    Actor, ActorKind, Audit, NewAuditEvent, Session, Store, StoreError, Team, TeamMember, User,
};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::audit::Peer;
use super::auth::Authenticator;
use super::error::ApiError;
use super::ApiState;
use crate::apikey::{self, digest, hex};
use crate::authz::Role;
use crate::oidc::{map_groups, GroupMapping, OidcClient, OidcIdentity, OidcSettings, PendingLogin};
use crate::passwords;
use crate::ratelimit::Limiter;
use crate::vault::{Sealed, Vault};

pub const SESSION_COOKIE: &str = "gantry_session";
const PENDING_COOKIE: &str = "gantry_oidc";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// How long a single sign-on may take between leaving for the provider and coming back.
const PENDING_TTL: Duration = Duration::from_secs(600);
const PENDING_BINDING: &str = "oidc-login";

/// Login attempts per source address per minute.
pub const LOGINS_PER_SOURCE: u32 = 30;
/// Failed logins per account per 15 minutes before its logins are refused for the rest.
pub const FAILURES_PER_ACCOUNT: u32 = 5;
/// Failed authentications (bad keys, bad sessions) per source address per minute on the API.
pub const AUTH_FAILURES_PER_SOURCE: u32 = 60;

/// Single sign-on as `gantry server --oidc-config FILE` reads it (JSON):
/// `{"issuer", "clientId", "clientSecret"?, "scopes"?, "groupsClaim"?, "defaultRole"?,
/// "groups"?: {"<group>": {"team"?: "<team>", "role"?: "<role>"}}}`. The client secret may
/// come from `GANTRY_OIDC_CLIENT_SECRET` instead of the file.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SsoConfig {
    pub issuer: String,
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    #[serde(default = "default_role")]
    pub default_role: String,
    #[serde(default)]
    pub groups: GroupMapping,
}

fn default_scopes() -> Vec<String> {
    ["email", "profile", "groups"].map(String::from).to_vec()
}

fn default_groups_claim() -> String {
    "groups".to_owned()
}

fn default_role() -> String {
    "viewer".to_owned()
}

impl std::fmt::Debug for SsoConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsoConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("groups_claim", &self.groups_claim)
            .field("default_role", &self.default_role)
            .finish_non_exhaustive()
    }
}

impl SsoConfig {
    /// Reads and checks a configuration file; the error names the file and the field.
    pub fn load(path: &std::path::Path) -> Result<SsoConfig, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let config: SsoConfig = serde_json::from_str(&text)
            .map_err(|e| format!("{}:{}:{}: {e}", path.display(), e.line(), e.column()))?;
        Role::parse(&config.default_role).ok_or_else(|| {
            format!(
                "{}: defaultRole `{}` is not viewer, operator, approver or admin",
                path.display(),
                config.default_role
            )
        })?;
        Ok(config)
    }

    /// The running form, with Gantry's callback under `public_url`.
    pub fn into_sso(self, public_url: &str) -> Sso {
        let role = Role::parse(&self.default_role).unwrap_or(Role::Viewer);
        Sso::new(
            OidcSettings {
                issuer: self.issuer,
                client_id: self.client_id,
                client_secret: self.client_secret,
                redirect_url: format!("{}/auth/oidc/callback", public_url.trim_end_matches('/')),
                scopes: self.scopes,
                groups_claim: self.groups_claim,
            },
            self.groups,
            role,
        )
    }
}

/// Single sign-on: the provider, and what its groups grant.
pub struct Sso {
    pub settings: OidcSettings,
    pub groups: GroupMapping,
    /// The role of a user whose groups grant none.
    pub default_role: Role,
    client: tokio::sync::OnceCell<OidcClient>,
}

impl Sso {
    pub fn new(settings: OidcSettings, groups: GroupMapping, default_role: Role) -> Sso {
        Sso {
            settings,
            groups,
            default_role,
            client: tokio::sync::OnceCell::new(),
        }
    }

    /// The client, or a 502 whose cause goes to the log only.
    async fn reachable_client(&self) -> Result<&OidcClient, ApiError> {
        self.client().await.map_err(|reason| {
            tracing::error!(%reason, "single sign-on: the provider cannot be reached");
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "sso_unavailable",
                "the identity provider cannot be reached; the cause is in the server's log",
            )
        })
    }

    /// The provider's client, discovered at the first login (so a provider that is down does
    /// not stop Gantry from starting) and kept.
    async fn client(&self) -> Result<&OidcClient, String> {
        self.client
            .get_or_try_init(|| OidcClient::discover(self.settings.clone()))
            .await
            .map_err(|e| e.to_string())
    }
}

/// What signing in needs beside the store: single sign-on, cookie settings, the limits.
pub struct SignIn {
    pub sso: Option<Sso>,
    /// Cookies carry `Secure` (the public URL is https).
    secure: bool,
    /// The public URL's origin, for the `Origin` check.
    origin: String,
    pub per_source: Limiter,
    pub per_account: Limiter,
    pub failed_auth: Limiter,
}

impl SignIn {
    pub fn new(public_url: &str, sso: Option<Sso>) -> SignIn {
        let origin = public_url.trim_end_matches('/');
        let origin = match origin.find("://").map(|i| i + 3) {
            Some(start) => match origin[start..].find('/') {
                Some(end) => &origin[..start + end],
                None => origin,
            },
            None => origin,
        };
        SignIn {
            sso,
            secure: public_url.starts_with("https://"),
            origin: origin.to_owned(),
            per_source: Limiter::new(LOGINS_PER_SOURCE, Duration::from_secs(60)),
            per_account: Limiter::new(FAILURES_PER_ACCOUNT, Duration::from_secs(15 * 60)),
            failed_auth: Limiter::new(AUTH_FAILURES_PER_SOURCE, Duration::from_secs(60)),
        }
    }

    fn cookie(&self, name: &str, value: &str, path: &str, max_age: Duration) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        let text = format!(
            "{name}={value}; Path={path}; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
            max_age.as_secs()
        );
        HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

// ------------------------------------------------------------------ tokens

/// The CSRF token of a session: derived from its secret, so nothing more is stored.
pub fn csrf_token(secret: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"gantry-csrf\0");
    h.update(secret.as_bytes());
    hex(&h.finalize())
}

/// Whether a request carries the CSRF token of the session whose secret is `secret`.
pub fn csrf_ok(headers: &HeaderMap, secret: &str) -> bool {
    let presented = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    apikey::equal_in_constant_time(presented.as_bytes(), csrf_token(secret).as_bytes())
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// `(id, secret)` of a session cookie's value, if it has the right shape.
pub fn parse_session(value: &str) -> Option<(&str, &str)> {
    let (id, secret) = value.split_once('.')?;
    let hexish = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hexish(id, 32) && hexish(secret, 64)).then_some((id, secret))
}

/// Checks a presented session secret against the stored hash (a hex SHA-256, as an API key's),
/// in constant time.
pub fn session_matches(secret: &str, stored_hash: &str) -> bool {
    apikey::StoredHash::parse(stored_hash).is_some_and(|h| h.verify(secret))
}

// ------------------------------------------------------------------ answers

/// A 429 saying when to come back.
pub(crate) fn rate_limited(wait: Duration) -> Response {
    let secs = wait.as_secs().max(1);
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many attempts; try again in {secs} s"),
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        response.headers_mut().insert(RETRY_AFTER, v);
    }
    response
}

fn refused() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
        "the email or the password is wrong",
    )
}

fn audit_of(actor: Actor, source: Option<String>) -> Audit {
    Audit {
        actor,
        request_id: gantry_store::new_id().ok(),
        source,
        at: Utc::now(),
    }
}

fn user_actor(user: &User) -> Actor {
    Actor {
        kind: ActorKind::User,
        id: format!("user:{}", user.id),
        name: user.email.clone(),
    }
}

/// Records a failed login: the account only when it exists, never what was typed.
async fn failed(
    store: &dyn Store,
    user: Option<&User>,
    via: &str,
    reason: &str,
    src: Option<String>,
) {
    let actor = match user {
        Some(u) => user_actor(u),
        None => Actor {
            kind: ActorKind::User,
            id: "unknown".to_owned(),
            name: "unknown".to_owned(),
        },
    };
    let resource = match user {
        Some(u) => format!("user/{}", u.email),
        None => "user/unknown".to_owned(),
    };
    let event = NewAuditEvent {
        audit: audit_of(actor, src),
        action: "login.failed".to_owned(),
        resource,
        before: None,
        after: Some(json!({"via": via, "reason": reason})),
    };
    if let Err(e) = store.append_audit(&event).await {
        tracing::error!(error = %e, "could not audit a failed login");
    }
}

/// The origin check of login and logout: a browser on another site is refused.
fn same_origin(sign_in: &SignIn, headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get(ORIGIN).and_then(|o| o.to_str().ok()) {
        Some(origin) if origin != sign_in.origin => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf_failed",
            "this request comes from another site",
        )),
        _ => Ok(()),
    }
}

/// Starts a session for `user`: stored (audited), then the cookie and the CSRF token.
async fn start_session(
    state: &ApiState,
    user: &User,
    via: &str,
    src: Option<String>,
) -> Result<(HeaderValue, String), ApiError> {
    let mut secret = [0u8; 32];
    getrandom::getrandom(&mut secret).map_err(|_| ApiError::internal())?;
    let secret = hex(&secret);
    let now = Utc::now();
    let session = Session {
        id: gantry_store::new_id()?,
        hash: digest(&secret),
        user_id: user.id.clone(),
        via: via.to_owned(),
        created_at: now,
        expires_at: now
            + chrono::Duration::from_std(SESSION_TTL).map_err(|_| ApiError::internal())?,
        revoked_at: None,
    };
    state
        .store
        .create_session(&session, &audit_of(user_actor(user), src))
        .await?;
    let cookie = state.sign_in.cookie(
        SESSION_COOKIE,
        &format!("{}.{secret}", session.id),
        "/",
        SESSION_TTL,
    );
    Ok((cookie, csrf_token(&secret)))
}

fn me_json(user: &User, csrf: &str) -> Value {
    json!({
        "user": {"id": user.id, "email": user.email, "name": user.name, "role": user.role},
        "csrfToken": csrf,
    })
}

// ------------------------------------------------------------------ routes

/// `/auth/…`: outside `/api/v1` and its guard; each route checks what it needs.
pub(crate) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/auth/session", get(session))
        .route("/auth/oidc/login", get(oidc_login))
        .route("/auth/oidc/callback", get(oidc_callback))
}

#[derive(Deserialize)]
struct Credentials {
    email: String,
    password: String,
}

/// `POST /auth/login` with `{"email", "password"}` (JSON or a form): a session cookie and
/// `{user, csrfToken}`; 401 `invalid_credentials` for any wrong part; 429 beyond the limits.
async fn login(
    State(state): State<ApiState>,
    Peer(src): Peer,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let sign_in = &state.sign_in;
    if let Err(wait) = sign_in.per_source.hit(src.as_deref().unwrap_or("unknown")) {
        return Ok(rate_limited(wait));
    }
    same_origin(sign_in, &headers)?;
    let form = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let credentials: Credentials = if form {
        form_credentials(&body)?
    } else {
        serde_json::from_slice(&body)
            .map_err(|_| ApiError::invalid("body", "the body is {\"email\": …, \"password\": …}"))?
    };
    let email = credentials.email.trim().to_lowercase();
    let user = match state.store.find_user(&email).await {
        Ok(u) => Some(u),
        Err(StoreError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let account = format!("account:{email}");
    if let Some(wait) = sign_in.per_account.blocked(&account) {
        failed(
            state.store.as_ref(),
            user.as_ref(),
            "password",
            "too many failures",
            src,
        )
        .await;
        return Ok(rate_limited(wait));
    }
    let stored = user.as_ref().and_then(|u| u.password_hash.clone());
    let password = credentials.password;
    let matches =
        tokio::task::spawn_blocking(move || passwords::verify(&password, stored.as_deref()))
            .await
            .map_err(|_| ApiError::internal())?;
    let user = match user {
        Some(u) if matches && u.disabled_at.is_none() => u,
        other => {
            sign_in.per_account.record(&account);
            let reason = match &other {
                None => "unknown user",
                Some(u) if u.disabled_at.is_some() => "disabled user",
                Some(u) if u.password_hash.is_none() => "no password (single sign-on only)",
                Some(_) => "wrong password",
            };
            failed(
                state.store.as_ref(),
                other.as_ref(),
                "password",
                reason,
                src,
            )
            .await;
            return Err(refused());
        }
    };
    sign_in.per_account.clear(&account);
    let (cookie, csrf) = start_session(&state, &user, "password", src).await?;
    let mut response = Json(me_json(&user, &csrf)).into_response();
    response.headers_mut().append(SET_COOKIE, cookie);
    Ok(response)
}

fn form_credentials(body: &[u8]) -> Result<Credentials, ApiError> {
    let mut email = None;
    let mut password = None;
    for (k, v) in url::form_urlencoded::parse(body) {
        match k.as_ref() {
            "email" => email = Some(v.into_owned()),
            "password" => password = Some(v.into_owned()),
            _ => {}
        }
    }
    match (email, password) {
        (Some(email), Some(password)) => Ok(Credentials { email, password }),
        _ => Err(ApiError::invalid(
            "body",
            "the form has `email` and `password`",
        )),
    }
}

/// The session a request's cookie names, if it is valid now: `(session, user, secret)`.
async fn current(
    store: &dyn Store,
    headers: &HeaderMap,
) -> Result<Option<(Session, User, String)>, ApiError> {
    let Some((id, secret)) = cookie(headers, SESSION_COOKIE).and_then(parse_session) else {
        return Ok(None);
    };
    let session = match store.get_session(id).await {
        Ok(s) => s,
        Err(StoreError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if !session_matches(secret, &session.hash)
        || session.revoked_at.is_some()
        || session.expires_at <= Utc::now()
    {
        return Ok(None);
    }
    let user = store.get_user(&session.user_id).await?;
    if user.disabled_at.is_some() {
        return Ok(None);
    }
    Ok(Some((session, user, secret.to_owned())))
}

/// `GET /auth/session`: who the cookie signs in, with the CSRF token; 401 without one.
async fn session(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let (session, user, secret) = current(state.store.as_ref(), &headers)
        .await?
        .ok_or_else(|| ApiError::unauthorized("not signed in"))?;
    let mut body = me_json(&user, &csrf_token(&secret));
    body["expiresAt"] = super::time_json(Some(session.expires_at));
    body["via"] = json!(session.via);
    Ok(Json(body))
}

/// `POST /auth/logout` (with the CSRF token): ends the session and clears the cookie.
async fn logout(
    State(state): State<ApiState>,
    axum::Extension(auth): axum::Extension<Arc<Authenticator>>,
    Peer(src): Peer,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    same_origin(&state.sign_in, &headers)?;
    let (session, user, secret) = current(state.store.as_ref(), &headers)
        .await?
        .ok_or_else(|| ApiError::unauthorized("not signed in"))?;
    if !csrf_ok(&headers, &secret) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf_failed",
            "send the session's CSRF token in X-CSRF-Token",
        ));
    }
    state
        .store
        .revoke_session(&session.id, &audit_of(user_actor(&user), src))
        .await?;
    auth.forget_all();
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().append(
        SET_COOKIE,
        state
            .sign_in
            .cookie(SESSION_COOKIE, "", "/", Duration::ZERO),
    );
    Ok(response)
}

#[derive(Deserialize)]
struct Next {
    next: Option<String>,
}

/// Only a path on this server: no scheme, no `//host`.
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p.to_owned(),
        _ => "/".to_owned(),
    }
}

fn sso(state: &ApiState) -> Result<&Sso, ApiError> {
    state
        .sign_in
        .sso
        .as_ref()
        .ok_or_else(|| ApiError::not_found("single sign-on is not configured on this server"))
}

fn seal_pending(vault: &Vault, pending: &PendingLogin, next: &str) -> Result<String, ApiError> {
    let plain = serde_json::to_vec(
        &json!({"pending": pending, "next": next, "at": Utc::now().timestamp()}),
    )
    .map_err(|_| ApiError::internal())?;
    let sealed = vault
        .seal(PENDING_BINDING, &plain)
        .map_err(|_| ApiError::internal())?;
    let packed = json!({
        "k": sealed.key_id,
        "n": URL_SAFE_NO_PAD.encode(&sealed.nonce),
        "c": URL_SAFE_NO_PAD.encode(&sealed.ciphertext),
    });
    Ok(URL_SAFE_NO_PAD.encode(packed.to_string()))
}

fn open_pending(vault: &Vault, cookie: &str) -> Option<(PendingLogin, String)> {
    let packed: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(cookie).ok()?).ok()?;
    let sealed = Sealed {
        key_id: packed["k"].as_str()?.to_owned(),
        nonce: URL_SAFE_NO_PAD.decode(packed["n"].as_str()?).ok()?,
        ciphertext: URL_SAFE_NO_PAD.decode(packed["c"].as_str()?).ok()?,
    };
    let plain: Value = serde_json::from_slice(&vault.open(PENDING_BINDING, &sealed).ok()?).ok()?;
    let age = Utc::now().timestamp() - plain["at"].as_i64()?;
    if !(0..=i64::try_from(PENDING_TTL.as_secs()).ok()?).contains(&age) {
        return None;
    }
    let pending = serde_json::from_value(plain["pending"].clone()).ok()?;
    Some((pending, plain["next"].as_str()?.to_owned()))
}

/// `GET /auth/oidc/login[?next=/path]`: to the provider.
async fn oidc_login(
    State(state): State<ApiState>,
    Peer(src): Peer,
    Query(q): Query<Next>,
) -> Result<Response, ApiError> {
    if let Err(wait) = state
        .sign_in
        .per_source
        .hit(src.as_deref().unwrap_or("unknown"))
    {
        return Ok(rate_limited(wait));
    }
    let sso = sso(&state)?;
    let client = sso.reachable_client().await?;
    let (url, pending) = client.begin();
    let sealed = seal_pending(&state.vault, &pending, &local_path(q.next.as_deref()))?;
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    headers.insert(
        LOCATION,
        HeaderValue::from_str(&url).map_err(|_| ApiError::internal())?,
    );
    headers.append(
        SET_COOKIE,
        state
            .sign_in
            .cookie(PENDING_COOKIE, &sealed, "/auth/oidc", PENDING_TTL),
    );
    Ok(response)
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /auth/oidc/callback`: the provider's answer; a session, then back to `next`.
async fn oidc_callback(
    State(state): State<ApiState>,
    Peer(src): Peer,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Result<Response, ApiError> {
    if let Err(wait) = state
        .sign_in
        .per_source
        .hit(src.as_deref().unwrap_or("unknown"))
    {
        return Ok(rate_limited(wait));
    }
    let sso = sso(&state)?;
    let store = state.store.as_ref();
    let fail = |reason: &'static str| {
        let src = src.clone();
        async move {
            failed(store, None, "oidc", reason, src).await;
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "login_failed",
                format!("single sign-on failed: {reason}"),
            )
        }
    };
    if q.error.is_some() {
        return Err(fail("the provider refused the login").await);
    }
    let (Some(code), Some(got_state)) = (q.code, q.state) else {
        return Err(fail("the callback has no code or state").await);
    };
    let Some((pending, next)) =
        cookie(&headers, PENDING_COOKIE).and_then(|c| open_pending(&state.vault, c))
    else {
        return Err(fail("no login in progress in this browser (or it expired)").await);
    };
    let client = sso.reachable_client().await?;
    let identity = match client.finish(&code, &got_state, &pending).await {
        Ok(identity) => identity,
        Err(e) => {
            tracing::warn!(error = %e, "single sign-on: a login was refused");
            return Err(fail("the provider's answer did not verify").await);
        }
    };
    let Some(email) = identity
        .email
        .clone()
        .filter(|_| identity.email_verified)
        .map(|e| e.trim().to_lowercase())
    else {
        return Err(fail("the provider gave no verified email").await);
    };
    let user = provision(store, sso, &identity, &email, src.clone()).await?;
    if user.disabled_at.is_some() {
        failed(store, Some(&user), "oidc", "disabled user", src).await;
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "login_failed",
            "single sign-on failed: this user is disabled",
        ));
    }
    let (cookie, _) = start_session(&state, &user, "oidc", src).await?;
    let mut response = StatusCode::SEE_OTHER.into_response();
    let h = response.headers_mut();
    h.insert(
        LOCATION,
        HeaderValue::from_str(&next).unwrap_or_else(|_| HeaderValue::from_static("/")),
    );
    h.append(SET_COOKIE, cookie);
    h.append(
        SET_COOKIE,
        state
            .sign_in
            .cookie(PENDING_COOKIE, "", "/auth/oidc", Duration::ZERO),
    );
    Ok(response)
}

/// The user behind a verified identity, made or brought in step with the provider's groups.
async fn provision(
    store: &dyn Store,
    sso: &Sso,
    identity: &OidcIdentity,
    email: &str,
    src: Option<String>,
) -> Result<User, ApiError> {
    let grants = map_groups(&identity.groups, &sso.groups);
    let user = match store.find_user(email).await {
        Ok(user) => {
            let audit = audit_of(user_actor(&user), src.clone());
            match grants.role {
                Some(role) if role.as_str() != user.role => {
                    store.set_user_role(&user.id, role.as_str(), &audit).await?;
                    store.get_user(&user.id).await?
                }
                _ => user,
            }
        }
        Err(StoreError::NotFound(_)) => {
            let user = User {
                id: gantry_store::new_id()?,
                email: email.to_owned(),
                name: identity.name.clone().unwrap_or_else(|| email.to_owned()),
                role: grants.role.unwrap_or(sso.default_role).as_str().to_owned(),
                password_hash: None,
                created_at: Utc::now(),
                disabled_at: None,
            };
            store
                .create_user(&user, &audit_of(user_actor(&user), src.clone()))
                .await?;
            user
        }
        Err(e) => return Err(e.into()),
    };
    let audit = audit_of(user_actor(&user), src);
    let mapped: std::collections::BTreeSet<&str> = sso
        .groups
        .0
        .values()
        .filter_map(|g| g.team.as_deref())
        .collect();
    let member_of: std::collections::BTreeSet<String> = store
        .user_teams(&user.id)
        .await?
        .into_iter()
        .map(|m| m.team)
        .collect();
    let missing: Vec<&String> = grants
        .teams
        .iter()
        .filter(|t| !member_of.contains(*t))
        .collect();
    let existing: std::collections::BTreeSet<String> = if missing.is_empty() {
        Default::default()
    } else {
        store
            .list_teams()
            .await?
            .into_iter()
            .map(|t| t.name)
            .collect()
    };
    for team in missing {
        if !existing.contains(team) {
            store
                .create_team(
                    &Team {
                        name: team.clone(),
                        title: team.clone(),
                        created_at: Utc::now(),
                    },
                    &audit,
                )
                .await?;
        }
        store
            .set_team_member(
                &TeamMember {
                    team: team.clone(),
                    user_id: user.id.clone(),
                    maintainer: false,
                },
                &audit,
            )
            .await?;
    }
    for team in member_of.iter().filter(|t| mapped.contains(t.as_str())) {
        if !grants.teams.contains(team) {
            store.remove_team_member(team, &user.id, &audit).await?;
        }
    }
    Ok(user)
}
