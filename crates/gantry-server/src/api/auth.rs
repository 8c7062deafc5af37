//! Authentication and authorisation of every `/api/v1` route, in one middleware ([`guard`]).
//!
//! Authentication: `Authorization: Bearer gantry_<prefix>_<secret>`. The prefix finds the
//! stored key; the secret is checked against its hash (SHA-256, constant-time compare: the key
//! is 256 random bits, so no slow hash is needed or wanted per request); revoked and expired
//! keys, and keys of disabled users and service accounts, are refused. Every failure is the
//! same 401, so a caller learns nothing about which part was wrong.
//!
//! Authorisation: each route's operation declares its permission in
//! [`super::permissions`]; the router refuses to build when one does not. The guard resolves
//! the owner of the resource when the rule needs it and asks [`crate::authz::can`]; a refusal is
//! a 403 naming the action, never the resource's owner.
//!
//! Concurrency and cost: resolved keys are cached per prefix for [`TRUST_FOR`] (the secret is
//! still checked against the cached hash on every request), so a request costs no database
//! read; a key's last use is written at most once per [`TOUCH_EVERY`], off the request path.
//! Changes made through this server (revoking a key, a user's role) clear the cache at once;
//! another server sharing the database sees them within [`TRUST_FOR`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, RawPathParams, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use axum::RequestExt as _;
use chrono::{DateTime, Utc};
use gantry_store::{Store, StoreError};

use super::error::ApiError;
use super::permissions::{Permission, Permissions, Scope};
use crate::apikey;
use crate::authz::{can, Action, Principal, Resource, Role};

/// How long a resolved key is trusted before it is read again.
pub const TRUST_FOR: Duration = Duration::from_secs(2);
/// How often a key's last use is recorded, at most.
pub const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// A key as last read, with who it acts for.
struct Resolved {
    key_id: String,
    hash: apikey::StoredHash,
    expires_at: Option<DateTime<Utc>>,
    principal: Option<Arc<Principal>>,
}

/// A cache entry: the key as read, when, and when its use was last recorded.
struct Entry {
    resolved: Arc<Resolved>,
    read_at: Instant,
    touched_at: Option<Instant>,
}

/// A session as last read: its hash, end, and who it signs in.
struct SessionEntry {
    hash: String,
    expires_at: DateTime<Utc>,
    principal: Option<Arc<Principal>>,
    read_at: Instant,
}

/// Resolves presented keys and session cookies to principals, with a short cache.
pub struct Authenticator {
    store: Arc<dyn Store>,
    cache: Mutex<HashMap<String, Entry>>,
    sessions: Mutex<HashMap<String, SessionEntry>>,
}

impl Authenticator {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Authenticator {
            store,
            cache: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets every resolved key: the next request of each reads it again.
    pub fn forget_all(&self) {
        self.cache().clear();
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// The principal a session cookie (`id`, `secret`) signs in; `None` for one that is
    /// unknown, ended, expired, or whose user may not act.
    pub async fn authenticate_session(
        &self,
        id: &str,
        secret: &str,
    ) -> Result<Option<Arc<Principal>>, StoreError> {
        let sessions = || self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let cached = sessions()
            .get(id)
            .filter(|e| e.read_at.elapsed() < TRUST_FOR)
            .map(|e| (e.hash.clone(), e.expires_at, e.principal.clone()));
        let (hash, expires_at, principal) = match cached {
            Some(c) => c,
            None => {
                let session = match self.store.get_session(id).await {
                    Ok(s) if s.revoked_at.is_none() => s,
                    Ok(_) | Err(StoreError::NotFound(_)) => return Ok(None),
                    Err(e) => return Err(e),
                };
                let principal =
                    principal_of(self.store.as_ref(), &format!("user:{}", session.user_id))
                        .await?
                        .map(Arc::new);
                let mut map = sessions();
                if map.len() >= crate::ratelimit::PRUNE_AT {
                    map.retain(|_, e| e.read_at.elapsed() < TRUST_FOR);
                }
                map.insert(
                    id.to_owned(),
                    SessionEntry {
                        hash: session.hash.clone(),
                        expires_at: session.expires_at,
                        principal: principal.clone(),
                        read_at: Instant::now(),
                    },
                );
                (session.hash, session.expires_at, principal)
            }
        };
        if !super::login::session_matches(secret, &hash) || expires_at <= Utc::now() {
            return Ok(None);
        }
        Ok(principal)
    }

    /// The principal a presented key acts for; `None` for any key that must be refused.
    pub async fn authenticate(
        &self,
        presented: &str,
    ) -> Result<Option<Arc<Principal>>, StoreError> {
        let Some((prefix, secret)) = apikey::parse(presented) else {
            return Ok(None);
        };
        // One lock on the common path: the entry, and whether its last use is due to be recorded.
        let due = |touched: Option<Instant>| touched.is_none_or(|at| at.elapsed() >= TOUCH_EVERY);
        let cached = self
            .cache()
            .get(prefix)
            .filter(|e| e.read_at.elapsed() < TRUST_FOR)
            .map(|e| (Arc::clone(&e.resolved), due(e.touched_at)));
        let (resolved, touch) = match cached {
            Some(c) => c,
            None => {
                let Some(r) = self.resolve(prefix).await? else {
                    return Ok(None);
                };
                let r = Arc::new(r);
                let mut cache = self.cache();
                let touched_at = cache.get(prefix).and_then(|e| e.touched_at);
                cache.insert(
                    prefix.to_owned(),
                    Entry {
                        resolved: Arc::clone(&r),
                        read_at: Instant::now(),
                        touched_at,
                    },
                );
                (r, due(touched_at))
            }
        };
        if !resolved.hash.verify(secret) {
            return Ok(None);
        }
        let now = Utc::now();
        if resolved.expires_at.is_some_and(|at| at <= now) {
            return Ok(None);
        }
        let Some(principal) = resolved.principal.clone() else {
            return Ok(None);
        };
        if touch {
            self.touch(prefix, &resolved.key_id, now);
        }
        Ok(Some(principal))
    }

    /// Reads a key and its principal; `None` for an unknown or revoked key.
    async fn resolve(&self, prefix: &str) -> Result<Option<Resolved>, StoreError> {
        let key = match self.store.find_api_key(prefix).await {
            Ok(key) => key,
            Err(StoreError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        if key.revoked_at.is_some() {
            return Ok(None);
        }
        // A stored hash that is not a SHA-256 in hex matches nothing.
        let Some(hash) = std::str::from_utf8(&key.hash)
            .ok()
            .and_then(apikey::StoredHash::parse)
        else {
            return Ok(None);
        };
        let principal = principal_of(self.store.as_ref(), &key.principal).await?;
        Ok(Some(Resolved {
            key_id: key.id,
            hash,
            expires_at: key.expires_at,
            principal: principal.map(Arc::new),
        }))
    }

    /// Records a key's use, at most once per [`TOUCH_EVERY`], without holding up the request.
    fn touch(&self, prefix: &str, key_id: &str, now: DateTime<Utc>) {
        {
            let mut cache = self.cache();
            let Some(entry) = cache.get_mut(prefix) else {
                return;
            };
            if entry
                .touched_at
                .is_some_and(|at| at.elapsed() < TOUCH_EVERY)
            {
                return;
            }
            entry.touched_at = Some(Instant::now());
        }
        let (store, id) = (Arc::clone(&self.store), key_id.to_owned());
        tokio::spawn(async move {
            if let Err(e) = store.touch_api_key(&id, now).await {
                tracing::warn!(error = %e, "could not record an API key's last use");
            }
        });
    }
}

/// Who a key's principal string names, as it stands now; `None` when it names nobody who may
/// act (an unknown or disabled user or service account, an unknown role).
pub async fn principal_of(
    store: &dyn Store,
    principal: &str,
) -> Result<Option<Principal>, StoreError> {
    let absent = |e: StoreError| match e {
        StoreError::NotFound(_) => Ok(None),
        e => Err(e),
    };
    if principal == "admin" {
        return Ok(Some(Principal {
            id: "admin".to_owned(),
            name: "admin".to_owned(),
            role: Role::Admin,
            maintains: Vec::new(),
        }));
    }
    if let Some(id) = principal.strip_prefix("user:") {
        let user = match store.get_user(id).await {
            Ok(user) => user,
            Err(e) => return absent(e),
        };
        let Some(role) = Role::parse(&user.role).filter(|_| user.disabled_at.is_none()) else {
            return Ok(None);
        };
        let maintains = store
            .user_teams(id)
            .await?
            .into_iter()
            .filter(|m| m.maintainer)
            .map(|m| m.team)
            .collect();
        return Ok(Some(Principal {
            id: principal.to_owned(),
            name: user.email,
            role,
            maintains,
        }));
    }
    if principal
        .strip_prefix("agent:")
        .is_some_and(|pool| !pool.is_empty())
    {
        return Ok(Some(Principal {
            id: principal.to_owned(),
            name: principal.to_owned(),
            role: Role::Viewer,
            maintains: Vec::new(),
        }));
    }
    if let Some(id) = principal.strip_prefix("service:") {
        let account = match store.get_service_account(id).await {
            Ok(account) => account,
            Err(e) => return absent(e),
        };
        let Some(role) = Role::parse(&account.role).filter(|_| account.disabled_at.is_none())
        else {
            return Ok(None);
        };
        return Ok(Some(Principal {
            id: principal.to_owned(),
            name: account.name,
            role,
            maintains: account.team.into_iter().collect(),
        }));
    }
    Ok(None)
}

/// Marks a request the guard authenticated by a session cookie: a browser, the web app.
#[derive(Clone, Copy)]
pub(crate) struct ViaSession;

/// What the guard needs: the store (for owners), the permission table, the key cache.
pub(crate) struct Guard {
    pub store: Arc<dyn Store>,
    pub permissions: Permissions,
    pub authenticator: Arc<Authenticator>,
    pub sign_in: Arc<super::login::SignIn>,
}

/// Authenticates the request, then checks the permission its route declares.
pub(crate) async fn guard(
    State(guard): State<Arc<Guard>>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let refused = || {
        ApiError::unauthorized(
            "a valid API key (Authorization: Bearer <key>) or a session cookie is required",
        )
    };
    // A source that keeps failing is turned away before anything is checked.
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    // Nothing to look up (and no string to make) until some source has failed.
    if let Some(ip) = peer.filter(|_| !guard.sign_in.failed_auth.is_idle()) {
        if let Some(wait) = guard.sign_in.failed_auth.blocked(&ip.to_string()) {
            return Ok(super::login::rate_limited(wait));
        }
    }
    let bearer = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let mut from_session = false;
    let principal = match bearer {
        Some(presented) => guard.authenticator.authenticate(presented).await?,
        None => match super::login::cookie(request.headers(), super::login::SESSION_COOKIE)
            .and_then(super::login::parse_session)
        {
            Some((id, secret)) => {
                let principal = guard.authenticator.authenticate_session(id, secret).await?;
                // A change made with a cookie must carry the session's CSRF token.
                let safe = matches!(
                    *request.method(),
                    axum::http::Method::GET
                        | axum::http::Method::HEAD
                        | axum::http::Method::OPTIONS
                );
                if principal.is_some() && !safe && !super::login::csrf_ok(request.headers(), secret)
                {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        "csrf_failed",
                        "a change made with a session cookie needs the session's CSRF token \
                         in X-CSRF-Token",
                    ));
                }
                from_session = principal.is_some();
                principal
            }
            None => None,
        },
    };
    if from_session {
        request.extensions_mut().insert(ViaSession);
    }
    let Some(principal) = principal else {
        if let Some(ip) = peer {
            guard.sign_in.failed_auth.record(&ip.to_string());
        }
        return Err(refused());
    };
    // An unknown path has no permission to check; the router answers 404.
    let permission = request
        .extensions()
        .get::<MatchedPath>()
        .and_then(|path| guard.permissions.of(request.method(), path.as_str()));
    if let Some(permission) = permission {
        // Only the edit rule looks at the owner, and an admin passes it anyway.
        let owner_matters = permission.scope == Scope::Workflow
            && permission.action == Action::Edit
            && principal.role != Role::Admin;
        let name = if owner_matters {
            request
                .extract_parts::<RawPathParams>()
                .await
                .ok()
                .and_then(|p| {
                    p.iter()
                        .find(|(k, _)| *k == "name")
                        .map(|(_, v)| v.to_owned())
                })
        } else {
            None
        };
        check(
            guard.store.as_ref(),
            &principal,
            permission,
            name.as_deref(),
        )
        .await?;
    }
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
}

/// Asks the rule; `workflow` is the workflow the route acts on, for a workflow-scoped one.
async fn check(
    store: &dyn Store,
    principal: &Principal,
    permission: Permission,
    workflow: Option<&str>,
) -> Result<(), ApiError> {
    let owner = match workflow {
        Some(name) => match store.workflow_owner(name).await {
            Ok(owner) => owner,
            // A new workflow has no owner yet; the rule decides.
            Err(StoreError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    if can(
        principal,
        permission.action,
        &Resource::owned_by(owner.as_deref()),
    ) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "the {} role may not {} this",
                principal.role,
                permission.action.as_str()
            ),
        ))
    }
}
