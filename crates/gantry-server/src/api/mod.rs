//! The REST API under `/api/v1`: JSON in and out, API keys, errors as `{code, message, path}`
//! from one table ([`error`]), bodies limited to [`BODY_LIMIT`] bytes (413 beyond).
//!
//! Handlers translate between HTTP and the store and the workflow crate; they hold no business
//! rule of their own beyond validation at the edge. Concurrency: handlers share an `ApiState`
//! (an `Arc<dyn Store>` and configuration) and run on the server's tokio runtime.

mod actions;
mod agents;
pub mod audit;
pub mod auth;
mod automations;
pub mod catalog;
pub mod diagnostics;
pub mod error;
mod identities;
pub mod login;
pub mod openapi;
pub mod permissions;
mod runs;
pub mod scorecards;
pub mod secrets;
mod triggers;
mod workflows;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{any, post};
use axum::Router;
use gantry_store::Store;

/// A time as every API response writes it: RFC 3339, UTC, milliseconds; `null` when absent.
pub(crate) fn time_json(t: Option<chrono::DateTime<chrono::Utc>>) -> serde_json::Value {
    t.map_or(serde_json::Value::Null, |t| {
        serde_json::Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    })
}

/// Parses an age or a lifetime, `30d`, `12h`, `90m`, `2w`: a positive whole number and a unit
/// (key expiries here, `gantry audit --since` in the CLI).
pub fn parse_age(text: &str) -> Option<chrono::Duration> {
    let text = text.trim();
    let unit = text.chars().last()?;
    let n: i64 = text[..text.len() - unit.len_utf8()].parse().ok()?;
    if n <= 0 {
        return None;
    }
    match unit {
        'm' => chrono::Duration::try_minutes(n),
        'h' => chrono::Duration::try_hours(n),
        'd' => chrono::Duration::try_days(n),
        'w' => chrono::Duration::try_weeks(n),
        _ => None,
    }
}

/// A JSON body read into `T`; the error names the field that does not fit (`body` for the
/// whole).
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(
    bytes: &axum::body::Bytes,
) -> Result<T, error::ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        error::ApiError::invalid(
            if path == "." { "body" } else { &path },
            e.inner().to_string(),
        )
    })
}

/// The largest request body accepted, in bytes.
pub const BODY_LIMIT: usize = 4 * 1024 * 1024;

/// What every API handler shares.
#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<dyn Store>,
    pub runs: Arc<crate::runs::RunService>,
    pub vault: Arc<crate::vault::Vault>,
    pub triggers: Arc<crate::triggers::TriggerService>,
    /// The server's address as callers reach it (`http://host:port`, no trailing slash): the
    /// base of webhook URLs and the push endpoint.
    pub public_url: Arc<str>,
    /// Passwords, single sign-on, sessions and the abuse limits.
    pub sign_in: Arc<login::SignIn>,
    /// The software catalog's in-memory index and its write path.
    pub catalog: Arc<crate::catalog::CatalogService>,
    /// The jobs handed to agents, when this server's steps go through its job queue.
    pub agents: Option<Arc<crate::agents::AgentHub>>,
    /// Self-service actions and their runs.
    pub actions: Arc<crate::actions::ActionService>,
    /// Scorecards and initiatives, evaluated as the catalog changes.
    pub scorecards: Arc<crate::scorecards::ScorecardService>,
    /// Automations: catalog and run events that start workflows and write entities.
    pub automations: Arc<crate::automations::AutomationService>,
}

/// The `/api/v1` routes, every one behind an API key and the permission it declares
/// (`permissions.rs`), but the OpenAPI document.
///
/// Panics when a route declares no permission: a programming error that every API test
/// reports, so such a server is never built.
pub fn router(state: ApiState) -> Router {
    build(state, true)
}

/// The same routes with no authentication or authorisation at all, for the benchmark that
/// measures what the guard costs. Never served by Gantry.
#[doc(hidden)]
pub fn unguarded_router_for_benchmarks(state: ApiState) -> Router {
    build(state, false)
}

fn build(state: ApiState, guarded: bool) -> Router {
    let (routes, document, doc) = routes().split();
    let permissions = permissions::Permissions::from_document(&doc, &[openapi::PUBLIC])
        .unwrap_or_else(|missing| panic!("{missing}"));
    let authenticator = Arc::new(auth::Authenticator::new(state.store.clone()));
    let guard = Arc::new(auth::Guard {
        store: state.store.clone(),
        permissions,
        authenticator: authenticator.clone(),
        sign_in: state.sign_in.clone(),
    });
    let routes = routes.fallback(error::not_found);
    let routes = if guarded {
        routes.layer(middleware::from_fn_with_state(guard, auth::guard))
    } else {
        routes
    };
    let routes = routes
        .layer(axum::Extension(authenticator.clone()))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .merge(document)
        .with_state(state.clone());
    // The doors events come through: their own credentials, no API key.
    let doors = Router::new()
        .route("/hooks/{id}", any(triggers::hook))
        .route("/hooks/{id}/", any(triggers::hook))
        .route("/hooks/{id}/{*rest}", any(triggers::hook))
        .route("/api/events", post(triggers::push_event))
        .route("/api/action-runs/{id}/report", post(actions::report))
        .merge(login::routes())
        .layer(axum::Extension(authenticator))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state);
    Router::new().nest("/api/v1", routes).merge(doors)
}

/// Every route behind the API key, each served and documented from its handler's
/// `#[utoipa::path]` annotation (method, path, parameters, bodies, statuses): a new handler gets
/// that annotation and one `.add(routes!(...))` line here, one line per path.
fn routes() -> openapi::RouteTable {
    use openapi::routes;
    openapi::RouteTable::new()
        .add(routes!(workflows::list))
        .add(routes!(workflows::get, workflows::put, workflows::delete))
        .add(routes!(workflows::versions))
        .add(routes!(workflows::get_version))
        .add(routes!(runs::start))
        .add(routes!(triggers::list))
        .add(routes!(triggers::list_tokens, triggers::create_token))
        .add(routes!(triggers::revoke_token))
        .add(routes!(secrets::list_secrets))
        .add(routes!(secrets::put_secret, secrets::delete_secret))
        .add(routes!(secrets::list_connections))
        .add(routes!(secrets::put_connection, secrets::delete_connection))
        .add(routes!(runs::list))
        .add(routes!(runs::get))
        .add(routes!(runs::logs))
        .add(routes!(runs::stream_logs))
        .add(routes!(runs::cancel))
        .add(routes!(runs::rerun))
        .add(routes!(runs::approve))
        .add(routes!(runs::deny))
        .add(routes!(identities::me))
        .add(routes!(identities::list_users, identities::create_user))
        .add(routes!(identities::list_teams, identities::create_team))
        .add(routes!(identities::put_member, identities::delete_member))
        .add(routes!(
            identities::list_accounts,
            identities::create_account
        ))
        .add(routes!(identities::list_keys, identities::create_key))
        .add(routes!(identities::revoke_key))
        .add(routes!(identities::create_agent_token))
        .add(routes!(agents::claim))
        .add(routes!(agents::heartbeat))
        .add(routes!(agents::logs))
        .add(routes!(agents::complete))
        .add(routes!(agents::metadata))
        .add(routes!(agents::list))
        .add(routes!(identities::put_owner))
        .add(routes!(audit::list))
        .add(routes!(catalog::list_blueprints, catalog::create_blueprint))
        .add(routes!(
            catalog::get_blueprint,
            catalog::put_blueprint,
            catalog::delete_blueprint
        ))
        .add(routes!(catalog::blueprint_history))
        .add(routes!(catalog::blueprint_diff))
        .add(routes!(catalog::revert_blueprint))
        .add(routes!(catalog::list_entities, catalog::create_entity))
        .add(routes!(
            catalog::get_entity,
            catalog::put_entity,
            catalog::patch_entity,
            catalog::delete_entity
        ))
        .add(routes!(catalog::entity_history))
        .add(routes!(catalog::entity_diff))
        .add(routes!(catalog::revert_entity))
        .add(routes!(catalog::search_entities))
        .add_with_limit(routes!(catalog::bulk), catalog::BULK_LIMIT)
        .add_with_limit(routes!(catalog::apply), catalog::BULK_LIMIT)
        .add(routes!(actions::list_actions))
        .add(routes!(
            actions::get_action,
            actions::put_action,
            actions::delete_action
        ))
        .add(routes!(actions::put_action_secret))
        .add(routes!(actions::run_action))
        .add(routes!(actions::list_runs))
        .add(routes!(actions::get_run))
        .add(routes!(actions::run_logs))
        .add(routes!(actions::approve))
        .add(routes!(actions::deny))
        .add(routes!(actions::cancel))
        .add(routes!(actions::rerun))
        .add(routes!(scorecards::list_scorecards))
        .add(routes!(
            scorecards::get_scorecard,
            scorecards::put_scorecard,
            scorecards::delete_scorecard
        ))
        .add(routes!(scorecards::list_standings))
        .add(routes!(scorecards::history))
        .add(routes!(scorecards::entity_scorecards))
        .add_with_limit(routes!(scorecards::check), catalog::BULK_LIMIT)
        .add(routes!(scorecards::list_initiatives))
        .add(routes!(
            scorecards::get_initiative,
            scorecards::put_initiative,
            scorecards::delete_initiative
        ))
        .add(routes!(automations::list_automations))
        .add(routes!(
            automations::get_automation,
            automations::put_automation,
            automations::delete_automation
        ))
        .add(routes!(automations::list_firings))
}
