//! Who may use the server: users, teams and their members, service accounts, API keys, and
//! which team owns a workflow. Every route here but `GET /me` needs the admin role (see
//! `permissions.rs`). No response carries a key's hash or a password; a new key is shown once.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use gantry_store::{ApiKey, ServiceAccount, StoreError, Team, TeamMember, User};
use serde_json::{json, Map, Value};

use super::audit::Caller;
use super::auth::Authenticator;
use super::error::ApiError;
use super::openapi as doc;
use super::runs::json_body;
use super::time_json;
use super::ApiState;
use crate::authz::{Principal, Role};

type Shared = Extension<std::sync::Arc<Authenticator>>;

fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match json_body(body)? {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::invalid("body", "the body is a JSON object")),
    }
}

fn text<'a>(body: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::invalid(field, format!("`{field}` is a string"))),
    }
}

fn required<'a>(body: &'a Map<String, Value>, field: &str) -> Result<&'a str, ApiError> {
    text(body, field)?
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| ApiError::invalid(field, format!("`{field}` is required")))
}

fn role(body: &Map<String, Value>) -> Result<Role, ApiError> {
    let given = required(body, "role")?;
    Role::parse(given).ok_or_else(|| {
        ApiError::invalid(
            "role",
            format!("`{given}` is not a role: viewer, operator, approver or admin"),
        )
    })
}

/// A team or service account name: 1 to 100 lowercase letters, digits, `-`, `_` or `.`.
fn check_name(field: &str, name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            format!("`{field}` is 1 to 100 lowercase letters, digits, `-`, `_` or `.`"),
        ))
    }
}

fn new_id() -> Result<String, ApiError> {
    gantry_store::new_id().map_err(|e| {
        tracing::error!(error = %e, "could not make an id");
        ApiError::internal()
    })
}

fn conflict(what: String) -> impl FnOnce(StoreError) -> ApiError {
    move |e| match e {
        StoreError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict", what),
        e => e.into(),
    }
}

fn user_json(u: &User, teams: &[TeamMember]) -> Value {
    json!({
        "id": u.id,
        "email": u.email,
        "name": u.name,
        "role": u.role,
        "ssoOnly": u.password_hash.is_none(),
        "teams": teams.iter().map(|m| json!({"team": m.team, "maintainer": m.maintainer})).collect::<Vec<_>>(),
        "createdAt": time_json(Some(u.created_at)),
        "disabledAt": time_json(u.disabled_at),
    })
}

fn account_json(a: &ServiceAccount) -> Value {
    json!({
        "id": a.id,
        "name": a.name,
        "role": a.role,
        "team": a.team,
        "createdAt": time_json(Some(a.created_at)),
        "disabledAt": time_json(a.disabled_at),
    })
}

fn key_json(k: &ApiKey) -> Value {
    json!({
        "id": k.id,
        "prefix": format!("gantry_{}", k.prefix),
        "principal": k.principal,
        "createdAt": time_json(Some(k.created_at)),
        "lastUsedAt": time_json(k.last_used_at),
        "expiresAt": time_json(k.expires_at),
        "revokedAt": time_json(k.revoked_at),
    })
}

/// Who this key acts for.
#[utoipa::path(
    get,
    path = "/me",
    tag = "access",
    operation_id = "getMe",
    responses((status = 200, description = "The caller", body = doc::Me)),
)]
pub(crate) async fn me(Extension(principal): Extension<std::sync::Arc<Principal>>) -> Json<Value> {
    Json(json!({
        "principal": principal.id,
        "name": principal.name,
        "role": principal.role.as_str(),
        "maintains": principal.maintains,
    }))
}

/// Every user, by email.
#[utoipa::path(
    get,
    path = "/users",
    tag = "access",
    operation_id = "listUsers",
    responses((status = 200, description = "The users", body = doc::UserPage)),
)]
pub(crate) async fn list_users(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let members = state.store.list_team_members().await?;
    let items: Vec<Value> = state
        .store
        .list_users()
        .await?
        .iter()
        .map(|user| {
            let teams: Vec<TeamMember> = members
                .iter()
                .filter(|m| m.user_id == user.id)
                .cloned()
                .collect();
            user_json(user, &teams)
        })
        .collect();
    Ok(Json(json!({ "items": items, "next": null })))
}

/// Creates a user with a role. Without a password (today's only kind), the user signs in with
/// an API key made for them, or through single sign-on.
#[utoipa::path(
    post,
    path = "/users",
    tag = "access",
    operation_id = "createUser",
    request_body(content = doc::NewUser),
    responses(
        (status = 201, description = "Created", body = doc::User),
        (status = 409, description = "The email is taken", body = doc::Error),
        (status = 422, description = "A missing or bad field", body = doc::Error),
    ),
)]
pub(crate) async fn create_user(
    State(state): State<ApiState>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = object(&body)?;
    let email = required(&body, "email")?.trim().to_lowercase();
    if !email.contains('@') || email.len() > 254 || email.contains(char::is_whitespace) {
        return Err(ApiError::invalid("email", "`email` is an email address"));
    }
    let role = role(&body)?;
    // A password is optional: without one the user signs in through single sign-on only.
    let password_hash = match text(&body, "password")? {
        None => None,
        Some(password) => {
            crate::passwords::check(password).map_err(|m| ApiError::invalid("password", m))?;
            let password = password.to_owned();
            let hashed = tokio::task::spawn_blocking(move || crate::passwords::hash(&password))
                .await
                .map_err(|_| ApiError::internal())?;
            Some(hashed.ok_or_else(ApiError::internal)?)
        }
    };
    let user = User {
        id: new_id()?,
        name: text(&body, "name")?.unwrap_or(&email).to_owned(),
        email: email.clone(),
        role: role.as_str().to_owned(),
        password_hash,
        created_at: Utc::now(),
        disabled_at: None,
    };
    state
        .store
        .create_user(&user, caller.audit())
        .await
        .map_err(conflict(format!("a user with email `{email}` exists")))?;
    Ok((StatusCode::CREATED, Json(user_json(&user, &[]))))
}

/// Every team, by name.
#[utoipa::path(
    get,
    path = "/teams",
    tag = "access",
    operation_id = "listTeams",
    responses((status = 200, description = "The teams", body = doc::TeamPage)),
)]
pub(crate) async fn list_teams(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let members = state.store.list_team_members().await?;
    let items: Vec<Value> = state
        .store
        .list_teams()
        .await?
        .iter()
        .map(|team| {
            let members: Vec<Value> = members
                .iter()
                .filter(|m| m.team == team.name)
                .map(|m| json!({"userId": m.user_id, "maintainer": m.maintainer}))
                .collect();
            json!({
                "name": team.name,
                "title": team.title,
                "members": members,
                "createdAt": time_json(Some(team.created_at)),
            })
        })
        .collect();
    Ok(Json(json!({ "items": items, "next": null })))
}

/// Creates a team.
#[utoipa::path(
    post,
    path = "/teams",
    tag = "access",
    operation_id = "createTeam",
    request_body(content = doc::NewTeam),
    responses(
        (status = 201, description = "Created", body = doc::Team),
        (status = 409, description = "The name is taken", body = doc::Error),
        (status = 422, description = "A missing or bad field", body = doc::Error),
    ),
)]
pub(crate) async fn create_team(
    State(state): State<ApiState>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = object(&body)?;
    let name = required(&body, "name")?;
    check_name("name", name)?;
    let team = Team {
        name: name.to_owned(),
        title: text(&body, "title")?.unwrap_or(name).to_owned(),
        created_at: Utc::now(),
    };
    state
        .store
        .create_team(&team, caller.audit())
        .await
        .map_err(conflict(format!("a team named `{name}` exists")))?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "name": team.name,
            "title": team.title,
            "members": [],
            "createdAt": time_json(Some(team.created_at)),
        })),
    ))
}

/// Adds a user (by email) to a team, or changes whether they maintain it.
#[utoipa::path(
    put,
    path = "/teams/{team}/members/{email}",
    tag = "access",
    operation_id = "putTeamMember",
    params(("team" = String, Path, description = "The team"), ("email" = String, Path, description = "The user's email")),
    request_body(content = Option<doc::Membership>, description = "`{\"maintainer\": true}` to let them change what the team owns; an empty body is a plain member"),
    responses(
        (status = 204, description = "Set"),
        (status = 404, description = "No such team or user", body = doc::Error),
        (status = 422, description = "A bad body", body = doc::Error),
    ),
)]
pub(crate) async fn put_member(
    State(state): State<ApiState>,
    caller: Caller,
    Extension(auth): Shared,
    Path((team, email)): Path<(String, String)>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let maintainer = match json_body(&body)? {
        Value::Null => false,
        Value::Object(map) => match map.get("maintainer") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(ApiError::invalid("maintainer", "`maintainer` is a boolean")),
        },
        _ => return Err(ApiError::invalid("body", "the body is a JSON object")),
    };
    let user = state.store.find_user(&email.to_lowercase()).await?;
    state
        .store
        .set_team_member(
            &TeamMember {
                team,
                user_id: user.id,
                maintainer,
            },
            caller.audit(),
        )
        .await?;
    auth.forget_all();
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a user (by email) from a team.
#[utoipa::path(
    delete,
    path = "/teams/{team}/members/{email}",
    tag = "access",
    operation_id = "deleteTeamMember",
    params(("team" = String, Path, description = "The team"), ("email" = String, Path, description = "The user's email")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such user, or not in the team", body = doc::Error),
    ),
)]
pub(crate) async fn delete_member(
    State(state): State<ApiState>,
    caller: Caller,
    Extension(auth): Shared,
    Path((team, email)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let user = state.store.find_user(&email.to_lowercase()).await?;
    state
        .store
        .remove_team_member(&team, &user.id, caller.audit())
        .await?;
    auth.forget_all();
    Ok(StatusCode::NO_CONTENT)
}

/// Every service account, by name.
#[utoipa::path(
    get,
    path = "/service-accounts",
    tag = "access",
    operation_id = "listServiceAccounts",
    responses((status = 200, description = "The service accounts", body = doc::ServiceAccountPage)),
)]
pub(crate) async fn list_accounts(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let items: Vec<Value> = state
        .store
        .list_service_accounts()
        .await?
        .iter()
        .map(account_json)
        .collect();
    Ok(Json(json!({ "items": items, "next": null })))
}

/// Creates a service account: a principal for automation, with a role and optionally the team
/// it acts for (it may change what that team owns).
#[utoipa::path(
    post,
    path = "/service-accounts",
    tag = "access",
    operation_id = "createServiceAccount",
    request_body(content = doc::NewServiceAccount),
    responses(
        (status = 201, description = "Created", body = doc::ServiceAccount),
        (status = 404, description = "No such team", body = doc::Error),
        (status = 409, description = "The name is taken", body = doc::Error),
        (status = 422, description = "A missing or bad field", body = doc::Error),
    ),
)]
pub(crate) async fn create_account(
    State(state): State<ApiState>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = object(&body)?;
    let name = required(&body, "name")?;
    check_name("name", name)?;
    let account = ServiceAccount {
        id: new_id()?,
        name: name.to_owned(),
        role: role(&body)?.as_str().to_owned(),
        team: text(&body, "team")?.map(str::to_owned),
        created_at: Utc::now(),
        disabled_at: None,
    };
    state
        .store
        .create_service_account(&account, caller.audit())
        .await
        .map_err(conflict(format!("a service account named `{name}` exists")))?;
    Ok((StatusCode::CREATED, Json(account_json(&account))))
}

/// Every API key (revoked ones included), oldest first; never a key itself.
#[utoipa::path(
    get,
    path = "/api-keys",
    tag = "access",
    operation_id = "listApiKeys",
    responses((status = 200, description = "The keys", body = doc::ApiKeyPage)),
)]
pub(crate) async fn list_keys(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let items: Vec<Value> = state
        .store
        .list_api_keys()
        .await?
        .iter()
        .map(key_json)
        .collect();
    Ok(Json(json!({ "items": items, "next": null })))
}

/// Makes an API key for a user (by email) or a service account (by name); the key is in this
/// answer only.
#[utoipa::path(
    post,
    path = "/api-keys",
    tag = "access",
    operation_id = "createApiKey",
    request_body(content = doc::NewApiKey),
    responses(
        (status = 201, description = "Created: `key` is shown this once", body = doc::ApiKeyCreated),
        (status = 404, description = "No such user or service account", body = doc::Error),
        (status = 422, description = "Neither or both of `user` and `serviceAccount`, or a bad `expiresIn`", body = doc::Error),
    ),
)]
pub(crate) async fn create_key(
    State(state): State<ApiState>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = object(&body)?;
    let principal = match (text(&body, "user")?, text(&body, "serviceAccount")?) {
        (Some(email), None) => {
            format!(
                "user:{}",
                state.store.find_user(&email.to_lowercase()).await?.id
            )
        }
        (None, Some(name)) => format!(
            "service:{}",
            state.store.find_service_account(name).await?.id
        ),
        _ => {
            return Err(ApiError::invalid(
                "user",
                "name exactly one of `user` (an email) and `serviceAccount` (a name)",
            ))
        }
    };
    issue_key(&state, &caller, principal, &body).await
}

/// Makes an agent token: a key an agent of pool `pool` presents when it polls for work. It
/// opens no other route (see `authz::can`); revoke it like any key.
#[utoipa::path(
    post,
    path = "/agent-tokens",
    tag = "access",
    operation_id = "createAgentToken",
    request_body(content = doc::NewAgentToken),
    responses(
        (status = 201, description = "Created: `key` is shown this once", body = doc::ApiKeyCreated),
        (status = 422, description = "A bad pool name or `expiresIn`", body = doc::Error),
    ),
)]
pub(crate) async fn create_agent_token(
    State(state): State<ApiState>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = object(&body)?;
    let pool = required(&body, "pool")?;
    check_name("pool", pool)?;
    let principal = format!("agent:{pool}");
    issue_key(&state, &caller, principal, &body).await
}

/// Stores a new key for `principal`, expiring after the body's `expiresIn` if any; the key is
/// in the answer only.
async fn issue_key(
    state: &ApiState,
    caller: &Caller,
    principal: String,
    body: &Map<String, Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let now = Utc::now();
    let expires_at: Option<DateTime<Utc>> = match text(body, "expiresIn")? {
        None => None,
        Some(given) => Some(
            super::parse_age(given)
                .and_then(|d| now.checked_add_signed(d))
                .ok_or_else(|| {
                    ApiError::invalid(
                        "expiresIn",
                        format!("`{given}` is not a duration such as 30d, 12h, 90m or 2w"),
                    )
                })?,
        ),
    };
    let made = crate::apikey::generate().ok_or_else(|| {
        tracing::error!("no randomness available for an API key");
        ApiError::internal()
    })?;
    let key = ApiKey {
        id: new_id()?,
        prefix: made.prefix.clone(),
        hash: made.hash.into_bytes(),
        principal,
        created_at: now,
        last_used_at: None,
        expires_at,
        revoked_at: None,
    };
    state.store.create_api_key(&key, caller.audit()).await?;
    let mut answer = key_json(&key);
    answer["key"] = Value::String(made.presented);
    Ok((StatusCode::CREATED, Json(answer)))
}

/// Revokes an API key: it is refused from the next request on (on other servers sharing the
/// database, within two seconds).
#[utoipa::path(
    delete,
    path = "/api-keys/{id}",
    tag = "access",
    operation_id = "revokeApiKey",
    params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such key", body = doc::Error),
    ),
)]
pub(crate) async fn revoke_key(
    State(state): State<ApiState>,
    caller: Caller,
    Extension(auth): Shared,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.store.revoke_api_key(&id, caller.audit()).await?;
    auth.forget_all();
    Ok(StatusCode::NO_CONTENT)
}

/// Sets the team that owns a workflow (its maintainers may then change it), or with
/// `{"team": null}` clears it.
#[utoipa::path(
    put,
    path = "/workflows/{name}/owner",
    tag = "access",
    operation_id = "putWorkflowOwner",
    params(("name" = String, Path, description = "The workflow's name")),
    request_body(content = doc::Owner),
    responses(
        (status = 200, description = "Set", body = doc::Owner),
        (status = 404, description = "No such workflow or team", body = doc::Error),
        (status = 422, description = "A bad body", body = doc::Error),
    ),
)]
pub(crate) async fn put_owner(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body = object(&body)?;
    if !body.contains_key("team") {
        return Err(ApiError::invalid(
            "team",
            "`team` is required (null clears it)",
        ));
    }
    let team = text(&body, "team")?;
    state
        .store
        .set_workflow_owner(&name, team, caller.audit())
        .await?;
    Ok(Json(json!({ "team": team })))
}

#[cfg(test)]
mod tests {
    use crate::api::parse_age as parse_duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30d"), chrono::Duration::try_days(30));
        assert_eq!(parse_duration(" 12h "), chrono::Duration::try_hours(12));
        assert_eq!(parse_duration("90m"), chrono::Duration::try_minutes(90));
        assert_eq!(parse_duration("2w"), chrono::Duration::try_weeks(2));
        for bad in ["", "d", "0d", "-1d", "1y", "1.5h", "abc"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
