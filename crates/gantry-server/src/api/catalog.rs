//! `/api/v1/blueprints`, `/api/v1/entities`, `/api/v1/catalog`: the software catalog.
//!
//! Blueprints are the organisation's model (admins change them); entities are written by
//! operators, integrations, definition files and automations. Every rule (validation,
//! relations, locks, sources, computed values, queries) is `gantry-catalog`'s; the handlers
//! parse, plan through [`crate::catalog::CatalogService::write`] and answer. Invalid input is a
//! 422 whose `details.problems` lists every problem with the JSON path of its field.

use std::collections::HashSet;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use gantry_catalog::index::{Catalog, Expect, Outcome, Search, WriteContext};
use gantry_catalog::query::{Query as CatalogQuery, Sort};
use gantry_catalog::schema::Problem;
use gantry_catalog::{Blueprint, Entity, Indexed, Source};
use gantry_store::{Audit, AuditFilter, PageRequest};
use serde::Deserialize;
use serde_json::{json, Value};

use super::audit::Caller;
use super::error::ApiError;
use super::openapi as doc;
use super::ApiState;
use crate::catalog::{Plan, WriteError};

/// The largest bulk or apply body, in bytes: thousands of entities per request.
pub const BULK_LIMIT: usize = 16 * 1024 * 1024;
/// Most entities in one bulk request.
const BULK_MAX: usize = 10_000;

// ------------------------------------------------------------------ edge helpers

/// Where a write comes from: a browser session is the web app; an API caller may name itself
/// an integration, automation or definition file with `X-Gantry-Source`.
pub(crate) struct WriteSource(pub Source);

impl<S: Send + Sync> FromRequestParts<S> for WriteSource {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if parts.extensions.get::<super::auth::ViaSession>().is_some() {
            return Ok(WriteSource(Source::Web));
        }
        match parts.headers.get("x-gantry-source") {
            None => Ok(WriteSource(Source::Api)),
            Some(v) => v
                .to_str()
                .ok()
                .and_then(|s| s.parse::<Source>().ok())
                .map(WriteSource)
                .ok_or_else(|| {
                    ApiError::invalid(
                        "X-Gantry-Source",
                        "use api, file:NAME, integration:NAME or automation:NAME",
                    )
                }),
        }
    }
}

fn problems_error(what: &str, problems: &[Problem]) -> ApiError {
    super::error::problems("invalid_catalog", what, problems)
}

fn conflict(problem: &Problem) -> ApiError {
    ApiError {
        path: Some(problem.path.clone().into()),
        ..ApiError::new(StatusCode::CONFLICT, "conflict", problem.message.clone())
    }
}

fn body_error(r: &JsonRejection) -> ApiError {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than {BULK_LIMIT} bytes; send fewer entities per request"),
        )
    } else {
        ApiError::invalid("body", r.body_text())
    }
}

fn from_write(e: WriteError<ApiError>) -> ApiError {
    match e {
        WriteError::Refused(e) => e,
        WriteError::Store(e) => e.into(),
    }
}

/// A JSON document read into a catalog type, with the path of what is wrong.
/// Reads a definition from JSON; the problem names the refused field's path.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    what: &str,
    v: Value,
) -> Result<T, Vec<Problem>> {
    serde_path_to_error::deserialize::<_, T>(v).map_err(|e| {
        let path = e.path().to_string();
        vec![Problem {
            path: if path == "." { String::new() } else { path },
            message: format!("not a valid {what}: {}", e.inner()),
        }]
    })
}

fn entity_json(cat: &Catalog, e: &Indexed) -> Value {
    serde_json::to_value(EntityOut::new(cat, e)).unwrap_or(Value::Null)
}

/// An entity as the API answers it: its view, who set each value, and what the catalog knows
/// of it (dangling relations, failed calculations). Serialised straight into a response.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct EntityOut<'a> {
    #[serde(flatten)]
    view: gantry_catalog::EntityView<'a>,
    sources: &'a std::collections::BTreeMap<String, Source>,
    #[serde(skip_serializing_if = "Option::is_none")]
    managed_by: Option<&'a str>,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    dangling: std::collections::BTreeMap<String, Vec<String>>,
    #[serde(skip_serializing_if = "<[Problem]>::is_empty")]
    computed_errors: &'a [Problem],
}

impl<'a> EntityOut<'a> {
    fn new(cat: &'a Catalog, e: &'a Indexed) -> EntityOut<'a> {
        EntityOut {
            view: e.view(),
            sources: &e.record.sources,
            managed_by: e.record.managed_by.as_deref(),
            dangling: cat.dangling(e),
            computed_errors: cat.errors_of(&e.record.entity.blueprint, &e.record.entity.identifier),
        }
    }
}

fn blueprint_json(r: &gantry_catalog::BlueprintRecord) -> Value {
    crate::catalog::json(r)
}

fn ctx<'a>(caller: &'a Caller, source: &'a Source) -> WriteContext<'a> {
    WriteContext {
        source,
        actor: &caller.0.actor.name,
        now: caller.0.at,
        managed_by: match source {
            Source::File(name) => Some(name.as_str()),
            _ => None,
        },
    }
}

fn encode_cursor(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

fn decode_cursor(s: &str) -> Result<Value, ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| ApiError::invalid("after", "this page cursor is not valid"))
}

async fn synced(state: &ApiState) -> Result<(), ApiError> {
    state.catalog.sync().await.map_err(ApiError::from)
}

// ------------------------------------------------------------------ blueprints

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeleteBlueprintQuery {
    /// Delete the blueprint's entities too (refused without it when it has any).
    #[serde(default)]
    delete_entities: bool,
}

/// Lists the blueprints.
#[utoipa::path(
    get,
    path = "/blueprints",
    tag = "catalog",
    operation_id = "listBlueprints",
    responses((status = 200, description = "Every blueprint", body = doc::BlueprintList)),
)]
pub(crate) async fn list_blueprints(
    State(state): State<ApiState>,
) -> Result<Json<Value>, ApiError> {
    synced(&state).await?;
    let cat = state.catalog.read();
    let items: Vec<Value> = cat.blueprint_records().map(blueprint_json).collect();
    Ok(Json(json!({ "items": items })))
}

/// Creates a blueprint.
#[utoipa::path(
    post,
    path = "/blueprints",
    tag = "catalog",
    operation_id = "createBlueprint",
    request_body(content = doc::Object, description = "The blueprint"),
    responses(
        (status = 201, description = "Created", body = doc::Object),
        (status = 409, description = "It exists", body = doc::Error),
        (status = 422, description = "Every problem with its path in `details.problems`", body = doc::Error),
    ),
)]
pub(crate) async fn create_blueprint(
    State(state): State<ApiState>,
    caller: Caller,
    WriteSource(source): WriteSource,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(body) = body.map_err(|r| body_error(&r))?;
    let bp: Blueprint = decode("blueprint", body).map_err(|p| problems_error("blueprint", &p))?;
    let saved = put_blueprint_with(&state, &caller, &source, bp, Expect::New).await?;
    Ok((StatusCode::CREATED, Json(saved)))
}

async fn put_blueprint_with(
    state: &ApiState,
    caller: &Caller,
    source: &Source,
    bp: Blueprint,
    expect: Expect,
) -> Result<Value, ApiError> {
    let ctx = ctx(caller, source);
    state
        .catalog
        .write_heavy(caller.audit(), |cat| {
            // The index answers whether it exists; a create of one that does is a conflict.
            if expect == Expect::New && cat.blueprint_record(&bp.identifier).is_some() {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "conflict",
                    format!("blueprint `{}` already exists", bp.identifier),
                ));
            }
            let p = cat
                .plan_blueprints(vec![(bp.clone(), expect)], &ctx)
                .remove(0)
                .map_err(|problems| problems_error("blueprint", &problems))?;
            let mut plan = Plan::new(blueprint_json(&p.record));
            plan.blueprint(&p, false);
            Ok(plan)
        })
        .await
        .map_err(from_write)
}

/// Shows a blueprint.
#[utoipa::path(
    get,
    path = "/blueprints/{blueprint}",
    tag = "catalog",
    operation_id = "getBlueprint",
    params(("blueprint" = String, Path, description = "The blueprint's identifier")),
    responses(
        (status = 200, description = "The blueprint", body = doc::Object),
        (status = 404, description = "No such blueprint", body = doc::Error),
    ),
)]
pub(crate) async fn get_blueprint(
    State(state): State<ApiState>,
    Path(blueprint): Path<String>,
) -> Result<Json<Value>, ApiError> {
    synced(&state).await?;
    let cat = state.catalog.read();
    cat.blueprint_record(&blueprint)
        .map(|r| Json(blueprint_json(r)))
        .ok_or_else(|| ApiError::not_found(format!("no blueprint `{blueprint}`")))
}

/// Creates or replaces a blueprint. A property's type cannot change.
#[utoipa::path(
    put,
    path = "/blueprints/{blueprint}",
    tag = "catalog",
    operation_id = "putBlueprint",
    params(("blueprint" = String, Path, description = "The blueprint's identifier")),
    request_body(content = doc::Object, description = "The blueprint"),
    responses(
        (status = 200, description = "Saved", body = doc::Object),
        (status = 422, description = "Every problem with its path in `details.problems`", body = doc::Error),
    ),
)]
pub(crate) async fn put_blueprint(
    State(state): State<ApiState>,
    caller: Caller,
    WriteSource(source): WriteSource,
    Path(blueprint): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(mut body) = body.map_err(|r| body_error(&r))?;
    if let Some(o) = body.as_object_mut() {
        match o.get("identifier") {
            None => {
                o.insert("identifier".into(), json!(blueprint));
            }
            Some(id) if id != &json!(blueprint) => {
                return Err(ApiError::invalid(
                    "identifier",
                    "the identifier differs from the one in the path",
                ))
            }
            Some(_) => {}
        }
    }
    let bp: Blueprint = decode("blueprint", body).map_err(|p| problems_error("blueprint", &p))?;
    Ok(Json(
        put_blueprint_with(&state, &caller, &source, bp, Expect::Any).await?,
    ))
}

/// Deletes a blueprint; with `deleteEntities=true` its entities too.
#[utoipa::path(
    delete,
    path = "/blueprints/{blueprint}",
    tag = "catalog",
    operation_id = "deleteBlueprint",
    params(("blueprint" = String, Path, description = "The blueprint's identifier"), DeleteBlueprintQuery),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such blueprint", body = doc::Error),
        (status = 409, description = "It has entities, or other blueprints use it", body = doc::Error),
    ),
)]
pub(crate) async fn delete_blueprint(
    State(state): State<ApiState>,
    caller: Caller,
    Path(blueprint): Path<String>,
    Query(q): Query<DeleteBlueprintQuery>,
) -> Result<StatusCode, ApiError> {
    state
        .catalog
        .write_heavy(caller.audit(), |cat| {
            if cat.blueprint_record(&blueprint).is_none() {
                return Err(ApiError::not_found(format!("no blueprint `{blueprint}`")));
            }
            let (record, entities) = cat
                .plan_blueprint_delete(&blueprint, q.delete_entities)
                .map_err(|p| conflict(&p))?;
            let mut plan = Plan::new(());
            for e in &entities {
                plan.delete_entity(e);
            }
            plan.delete_blueprint(&record);
            Ok(plan)
        })
        .await
        .map_err(from_write)?;
    Ok(StatusCode::NO_CONTENT)
}

// ------------------------------------------------------------------ history

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DiffQuery {
    /// The older version.
    from: i64,
    /// The newer version (default: the current one).
    to: Option<i64>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct Revert {
    /// The version to go back to.
    version: i64,
}

/// Every version of a resource (`blueprint/<id>` or `entity/<bp>/<id>`), newest first:
/// (version, the event as JSON, the record at that version or `None` for a deletion).
async fn versions(
    state: &ApiState,
    resource: &str,
) -> Result<Vec<(i64, Value, Option<Value>)>, ApiError> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = state
            .store
            .list_audit(
                &AuditFilter {
                    resource: Some(resource.to_string()),
                    actor: None,
                    action: None,
                    since: None,
                    until: None,
                },
                &PageRequest {
                    after: after.take(),
                    limit: 1000,
                },
            )
            .await?;
        for e in &page.items {
            if e.resource != resource {
                continue;
            }
            let version = e
                .after
                .as_ref()
                .or(e.before.as_ref())
                .and_then(|v| v["version"].as_i64())
                .unwrap_or(0);
            let event = json!({
                "version": version,
                "action": e.action,
                "at": super::time_json(Some(e.at)),
                "actor": {"kind": e.actor.kind.as_str(), "id": e.actor.id, "name": e.actor.name},
                "requestId": e.request_id,
                "deleted": e.after.is_none(),
            });
            out.push((version, event, e.after.clone()));
        }
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    Ok(out)
}

async fn history(state: &ApiState, resource: &str) -> Result<Json<Value>, ApiError> {
    let versions = versions(state, resource).await?;
    if versions.is_empty() {
        return Err(ApiError::not_found(format!("no history for {resource}")));
    }
    let items: Vec<Value> = versions
        .into_iter()
        .map(|(_, mut event, record)| {
            event["record"] = record.unwrap_or(Value::Null);
            event
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}

fn at_version(versions: &[(i64, Value, Option<Value>)], v: i64) -> Result<Value, ApiError> {
    versions
        .iter()
        .find(|(n, _, r)| *n == v && r.is_some())
        .and_then(|(_, _, r)| r.clone())
        .ok_or_else(|| ApiError::not_found(format!("no version {v}")))
}

/// The written fields of a record (what a revert puts back and a diff compares).
fn written(record: &Value) -> Value {
    let mut v = record.clone();
    if let Some(o) = v.as_object_mut() {
        for k in [
            "sources",
            "version",
            "createdAt",
            "updatedAt",
            "createdBy",
            "updatedBy",
            "managedBy",
        ] {
            o.remove(k);
        }
    }
    v
}

async fn diff(state: &ApiState, resource: &str, q: &DiffQuery) -> Result<Json<Value>, ApiError> {
    let versions = versions(state, resource).await?;
    let latest = versions.first().map(|v| v.0).unwrap_or(0);
    let to = q.to.unwrap_or(latest);
    let before = written(&at_version(&versions, q.from)?);
    let after = written(&at_version(&versions, to)?);
    let changes = gantry_catalog::diff::diff(&before, &after);
    Ok(Json(json!({"from": q.from, "to": to, "changes": changes})))
}

/// The versions of a blueprint, newest first, each with the record as it was.
#[utoipa::path(
    get,
    path = "/blueprints/{blueprint}/history",
    tag = "catalog",
    operation_id = "listBlueprintHistory",
    params(("blueprint" = String, Path, description = "The blueprint's identifier")),
    responses(
        (status = 200, description = "Its versions", body = doc::History),
        (status = 404, description = "Never existed", body = doc::Error),
    ),
)]
pub(crate) async fn blueprint_history(
    State(state): State<ApiState>,
    Path(blueprint): Path<String>,
) -> Result<Json<Value>, ApiError> {
    history(&state, &format!("blueprint/{blueprint}")).await
}

/// What changed in a blueprint between two versions.
#[utoipa::path(
    get,
    path = "/blueprints/{blueprint}/diff",
    tag = "catalog",
    operation_id = "diffBlueprint",
    params(("blueprint" = String, Path, description = "The blueprint's identifier"), DiffQuery),
    responses(
        (status = 200, description = "The changes, path by path", body = doc::Diff),
        (status = 404, description = "No such version", body = doc::Error),
    ),
)]
pub(crate) async fn blueprint_diff(
    State(state): State<ApiState>,
    Path(blueprint): Path<String>,
    Query(q): Query<DiffQuery>,
) -> Result<Json<Value>, ApiError> {
    diff(&state, &format!("blueprint/{blueprint}"), &q).await
}

/// Puts a blueprint back as it was at a version (a new version, audited as a revert).
#[utoipa::path(
    post,
    path = "/blueprints/{blueprint}/revert",
    tag = "catalog",
    operation_id = "revertBlueprint",
    params(("blueprint" = String, Path, description = "The blueprint's identifier")),
    request_body = Revert,
    responses(
        (status = 200, description = "The blueprint as it is now", body = doc::Object),
        (status = 404, description = "No such version", body = doc::Error),
        (status = 422, description = "That version is no longer valid", body = doc::Error),
    ),
)]
pub(crate) async fn revert_blueprint(
    State(state): State<ApiState>,
    caller: Caller,
    WriteSource(source): WriteSource,
    Path(blueprint): Path<String>,
    Json(body): Json<Revert>,
) -> Result<Json<Value>, ApiError> {
    let versions = versions(&state, &format!("blueprint/{blueprint}")).await?;
    let old = written(&at_version(&versions, body.version)?);
    let bp: Blueprint = decode("blueprint", old).map_err(|p| problems_error("blueprint", &p))?;
    let ctx = ctx(&caller, &source);
    let saved = state
        .catalog
        .write_heavy(caller.audit(), |cat| {
            let p = cat
                .plan_blueprints(vec![(bp.clone(), Expect::Any)], &ctx)
                .remove(0)
                .map_err(|p| problems_error("blueprint", &p))?;
            let mut plan = Plan::new(blueprint_json(&p.record));
            plan.blueprint(&p, true);
            Ok(plan)
        })
        .await
        .map_err(from_write)?;
    Ok(Json(saved))
}

// ------------------------------------------------------------------ entities

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// A query in the text form, e.g. `language = "rust" and owner.team = payments`.
    q: Option<String>,
    /// Words that must all appear in the identifier, title or a string property.
    search: Option<String>,
    /// Fields to sort by, `-` for descending: `title,-updatedAt`.
    sort: Option<String>,
    /// At most this many entities (default 50, at most 1000).
    limit: Option<usize>,
    /// The `next` cursor of the previous page.
    after: Option<String>,
    /// Fields to count values of over every match: `language,lifecycle`.
    facets: Option<String>,
}

fn query_error(field: &str, e: &gantry_catalog::query::QueryError) -> ApiError {
    ApiError::invalid(field, format!("{field}: {e}"))
}

/// Runs a search and writes its page as the response body, under one read of the index.
fn run_search(state: &ApiState, search: &Search) -> Response {
    #[derive(serde::Serialize)]
    struct PageOut<'a> {
        items: Vec<EntityOut<'a>>,
        total: usize,
        facets: &'a std::collections::BTreeMap<String, std::collections::BTreeMap<String, usize>>,
        next: Option<String>,
    }
    let cat = state.catalog.read();
    let page = cat.search(search);
    let out = PageOut {
        items: page
            .entities
            .iter()
            .map(|e| EntityOut::new(&cat, e))
            .collect(),
        total: page.total,
        facets: &page.facets,
        next: page.next.as_ref().map(encode_cursor),
    };
    match serde_json::to_vec(&out) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "writing a search page");
            ApiError::internal().into_response()
        }
    }
}

/// Lists and queries a blueprint's entities: filter, full text, sort, facets, cursor pages.
#[utoipa::path(
    get,
    path = "/blueprints/{blueprint}/entities",
    tag = "catalog",
    operation_id = "listEntities",
    params(("blueprint" = String, Path, description = "The blueprint's identifier"), ListQuery),
    responses(
        (status = 200, description = "One page of entities", body = doc::EntityPage),
        (status = 404, description = "No such blueprint", body = doc::Error),
        (status = 422, description = "A bad query, sort or cursor", body = doc::Error),
    ),
)]
pub(crate) async fn list_entities(
    State(state): State<ApiState>,
    Path(blueprint): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    synced(&state).await?;
    if state.catalog.read().blueprint_record(&blueprint).is_none() {
        return Err(ApiError::not_found(format!("no blueprint `{blueprint}`")));
    }
    let search = Search {
        query: q
            .q
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(CatalogQuery::parse)
            .transpose()
            .map_err(|e| query_error("q", &e))?,
        blueprint: Some(blueprint),
        text: q.search.filter(|s| !s.trim().is_empty()),
        sort: q
            .sort
            .as_deref()
            .map(Sort::parse_list)
            .transpose()
            .map_err(|e| query_error("sort", &e))?
            .unwrap_or_default(),
        limit: q.limit.unwrap_or(50).clamp(1, 1000),
        after: q.after.as_deref().map(decode_cursor).transpose()?,
        facets: q
            .facets
            .map(|f| {
                f.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
    };
    Ok(run_search(&state, &search))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct SearchBody {
    /// The JSON rule form (`{combinator, rules}`) or the text form as a string.
    #[schema(value_type = Object)]
    query: Option<Value>,
    blueprint: Option<String>,
    search: Option<String>,
    /// `title,-updatedAt`, or a list of such fields.
    #[schema(value_type = Object)]
    sort: Option<Value>,
    limit: Option<usize>,
    after: Option<String>,
    #[serde(default)]
    facets: Vec<String>,
}

/// Searches the whole catalog with the JSON rule form (or the text form).
#[utoipa::path(
    post,
    path = "/entities/search",
    tag = "catalog",
    operation_id = "searchEntities",
    request_body = SearchBody,
    responses(
        (status = 200, description = "One page of entities", body = doc::EntityPage),
        (status = 422, description = "A bad query, sort or cursor", body = doc::Error),
    ),
)]
pub(crate) async fn search_entities(
    State(state): State<ApiState>,
    body: Result<Json<SearchBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(b) = body.map_err(|r| body_error(&r))?;
    synced(&state).await?;
    let sort = match &b.sort {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => Sort::parse_list(s).map_err(|e| query_error("sort", &e))?,
        Some(Value::Array(items)) => {
            let joined: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            Sort::parse_list(&joined.join(",")).map_err(|e| query_error("sort", &e))?
        }
        Some(_) => return Err(ApiError::invalid("sort", "a string or a list of strings")),
    };
    let search = Search {
        query: b
            .query
            .as_ref()
            .filter(|v| !v.is_null())
            .map(CatalogQuery::from_value)
            .transpose()
            .map_err(|e| {
                let path = e
                    .path()
                    .map_or("query".to_string(), |p| format!("query.{p}"));
                ApiError::invalid(&path, e.to_string())
            })?,
        blueprint: b.blueprint,
        text: b.search.filter(|s| !s.trim().is_empty()),
        sort,
        limit: b.limit.unwrap_or(50).clamp(1, 1000),
        after: b.after.as_deref().map(decode_cursor).transpose()?,
        facets: b.facets,
    };
    Ok(run_search(&state, &search))
}

/// Reads an entity body, taking the blueprint (and identifier) from the path when absent.
fn entity_from(
    mut body: Value,
    blueprint: &str,
    identifier: Option<&str>,
) -> Result<Entity, ApiError> {
    let Some(o) = body.as_object_mut() else {
        return Err(ApiError::invalid("body", "an entity is a JSON object"));
    };
    for (key, want) in [("blueprint", Some(blueprint)), ("identifier", identifier)] {
        let Some(want) = want else { continue };
        match o.get(key) {
            None => {
                o.insert(key.into(), json!(want));
            }
            Some(v) if v != &json!(want) => {
                return Err(ApiError::invalid(
                    key,
                    format!("the {key} differs from the one in the path"),
                ))
            }
            Some(_) => {}
        }
    }
    decode("entity", body).map_err(|p| problems_error("entity", &p))
}

async fn write_entity(
    state: &ApiState,
    caller: &Caller,
    source: &Source,
    entity: Entity,
    expect: Expect,
    revert: bool,
) -> Result<(Outcome, Value), ApiError> {
    let ctx = ctx(caller, source);
    let (bp, id) = (entity.blueprint.clone(), entity.identifier.clone());
    state
        .catalog
        .write(caller.audit(), |cat| {
            // Existence is the index's answer, not a problem of the entity: 409 and 404.
            match (cat.entity_view(&bp, &id).is_some(), expect) {
                (true, Expect::New) => {
                    return Err(ApiError::new(
                        StatusCode::CONFLICT,
                        "conflict",
                        format!("entity `{id}` of blueprint `{bp}` already exists"),
                    ))
                }
                (false, Expect::Existing) => {
                    return Err(ApiError::not_found(format!(
                        "no entity `{id}` of blueprint `{bp}`"
                    )))
                }
                _ => {}
            }
            let p = cat
                .plan_entities(vec![(entity.clone(), expect)], &[], &ctx)
                .remove(0)
                .map_err(|problems| problems_error("entity", &problems))?;
            let mut plan = Plan::new(p.outcome);
            plan.entity(&p, revert);
            Ok(plan)
        })
        .await
        .map_err(from_write)
        .map(|outcome| {
            let cat = state.catalog.read();
            let view = cat.entity_view(&bp, &id).map(|e| entity_json(&cat, e));
            (outcome, view.unwrap_or(Value::Null))
        })
}

/// Creates an entity of the blueprint.
#[utoipa::path(
    post,
    path = "/blueprints/{blueprint}/entities",
    tag = "catalog",
    operation_id = "createEntity",
    params(("blueprint" = String, Path, description = "The blueprint's identifier")),
    request_body(content = doc::Object, description = "The entity"),
    responses(
        (status = 201, description = "Created", body = doc::Object),
        (status = 409, description = "It exists", body = doc::Error),
        (status = 422, description = "Every problem with its path in `details.problems`", body = doc::Error),
    ),
)]
pub(crate) async fn create_entity(
    State(state): State<ApiState>,
    caller: Caller,
    WriteSource(source): WriteSource,
    Path(blueprint): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(body) = body.map_err(|r| body_error(&r))?;
    let entity = entity_from(body, &blueprint, None)?;
    let (_, view) = write_entity(&state, &caller, &source, entity, Expect::New, false).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Shows an entity with its computed values, sources and dangling relations.
#[utoipa::path(
    get,
    path = "/blueprints/{blueprint}/entities/{identifier}",
    tag = "catalog",
    operation_id = "getEntity",
    params(
        ("blueprint" = String, Path, description = "The blueprint's identifier"),
        ("identifier" = String, Path, description = "The entity's identifier"),
    ),
    responses(
        (status = 200, description = "The entity", body = doc::Object),
        (status = 404, description = "No such entity", body = doc::Error),
    ),
)]
pub(crate) async fn get_entity(
    State(state): State<ApiState>,
    Path((blueprint, identifier)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    synced(&state).await?;
    let cat = state.catalog.read();
    cat.entity_view(&blueprint, &identifier)
        .map(|e| Json(entity_json(&cat, e)))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no entity `{identifier}` of blueprint `{blueprint}`"
            ))
        })
}

/// Creates or replaces an entity.
#[utoipa::path(
    put,
    path = "/blueprints/{blueprint}/entities/{identifier}",
    tag = "catalog",
    operation_id = "putEntity",
    params(
        ("blueprint" = String, Path, description = "The blueprint's identifier"),
        ("identifier" = String, Path, description = "The entity's identifier"),
    ),
    request_body(content = doc::Object, description = "The entity"),
    responses(
        (status = 200, description = "Saved", body = doc::Object),
        (status = 201, description = "Created", body = doc::Object),
        (status = 422, description = "Every problem with its path in `details.problems`", body = doc::Error),
    ),
)]
pub(crate) async fn put_entity(
    State(state): State<ApiState>,
    caller: Caller,
    WriteSource(source): WriteSource,
    Path((blueprint, identifier)): Path<(String, String)>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(body) = body.map_err(|r| body_error(&r))?;
    let entity = entity_from(body, &blueprint, Some(&identifier))?;
    let (outcome, view) =
        write_entity(&state, &caller, &source, entity, Expect::Any, false).await?;
    let status = if outcome == Outcome::Created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)))
}

/// RFC 7386 merge patch.
fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = json!({});
            }
            if let Some(t) = target.as_object_mut() {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// Changes part of an entity with a JSON merge patch (RFC 7386): `null` removes a field.
#[utoipa::path(
    patch,
    path = "/blueprints/{blueprint}/entities/{identifier}",
    tag = "catalog",
    operation_id = "patchEntity",
    params(
        ("blueprint" = String, Path, description = "The blueprint's identifier"),
        ("identifier" = String, Path, description = "The entity's identifier"),
    ),
    request_body(content = doc::Object, description = "The merge patch"),
    responses(
        (status = 200, description = "Saved", body = doc::Object),
        (status = 404, description = "No such entity", body = doc::Error),
        (status = 422, description = "Every problem with its path in `details.problems`", body = doc::Error),
    ),
)]
pub(crate) async fn patch_entity(
    State(state): State<ApiState>,
    caller: Caller,
    WriteSource(source): WriteSource,
    Path((blueprint, identifier)): Path<(String, String)>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(patch) = body.map_err(|r| body_error(&r))?;
    if !patch.is_object() {
        return Err(ApiError::invalid("body", "a merge patch is a JSON object"));
    }
    synced(&state).await?;
    let current = {
        let cat = state.catalog.read();
        cat.entity_view(&blueprint, &identifier)
            .map(|e| serde_json::to_value(&e.record.entity).unwrap_or(Value::Null))
    }
    .ok_or_else(|| {
        ApiError::not_found(format!(
            "no entity `{identifier}` of blueprint `{blueprint}`"
        ))
    })?;
    let mut merged = current;
    merge_patch(&mut merged, &patch);
    let entity = entity_from(merged, &blueprint, Some(&identifier))?;
    let (_, view) = write_entity(&state, &caller, &source, entity, Expect::Existing, false).await?;
    Ok(Json(view))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeleteEntityQuery {
    /// Delete the entities whose relations point at this one too (recursively).
    #[serde(default)]
    delete_dependents: bool,
}

/// Deletes an entity (refused while others point at it, unless `deleteDependents=true`).
#[utoipa::path(
    delete,
    path = "/blueprints/{blueprint}/entities/{identifier}",
    tag = "catalog",
    operation_id = "deleteEntity",
    params(
        ("blueprint" = String, Path, description = "The blueprint's identifier"),
        ("identifier" = String, Path, description = "The entity's identifier"),
        DeleteEntityQuery,
    ),
    responses(
        (status = 200, description = "What was deleted", body = doc::Object),
        (status = 404, description = "No such entity", body = doc::Error),
        (status = 409, description = "Other entities point at it", body = doc::Error),
    ),
)]
pub(crate) async fn delete_entity(
    State(state): State<ApiState>,
    caller: Caller,
    Path((blueprint, identifier)): Path<(String, String)>,
    Query(q): Query<DeleteEntityQuery>,
) -> Result<Json<Value>, ApiError> {
    let deleted = state
        .catalog
        .write(caller.audit(), |cat| {
            if cat.entity_view(&blueprint, &identifier).is_none() {
                return Err(ApiError::not_found(format!(
                    "no entity `{identifier}` of blueprint `{blueprint}`"
                )));
            }
            let records = cat
                .plan_entity_delete(&blueprint, &identifier, q.delete_dependents)
                .map_err(|p| conflict(&p))?;
            let keys: Vec<String> = records
                .iter()
                .map(|r| format!("{}/{}", r.entity.blueprint, r.entity.identifier))
                .collect();
            let mut plan = Plan::new(keys);
            // Dependents first, so no write leaves a relation to a deleted entity behind.
            for r in records.iter().rev() {
                plan.delete_entity(r);
            }
            Ok(plan)
        })
        .await
        .map_err(from_write)?;
    Ok(Json(json!({ "deleted": deleted })))
}

/// The versions of an entity, newest first, each with the record as it was.
#[utoipa::path(
    get,
    path = "/blueprints/{blueprint}/entities/{identifier}/history",
    tag = "catalog",
    operation_id = "listEntityHistory",
    params(
        ("blueprint" = String, Path, description = "The blueprint's identifier"),
        ("identifier" = String, Path, description = "The entity's identifier"),
    ),
    responses(
        (status = 200, description = "Its versions", body = doc::History),
        (status = 404, description = "Never existed", body = doc::Error),
    ),
)]
pub(crate) async fn entity_history(
    State(state): State<ApiState>,
    Path((blueprint, identifier)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    history(&state, &format!("entity/{blueprint}/{identifier}")).await
}

/// What changed in an entity between two versions.
#[utoipa::path(
    get,
    path = "/blueprints/{blueprint}/entities/{identifier}/diff",
    tag = "catalog",
    operation_id = "diffEntity",
    params(
        ("blueprint" = String, Path, description = "The blueprint's identifier"),
        ("identifier" = String, Path, description = "The entity's identifier"),
        DiffQuery,
    ),
    responses(
        (status = 200, description = "The changes, path by path", body = doc::Diff),
        (status = 404, description = "No such version", body = doc::Error),
    ),
)]
pub(crate) async fn entity_diff(
    State(state): State<ApiState>,
    Path((blueprint, identifier)): Path<(String, String)>,
    Query(q): Query<DiffQuery>,
) -> Result<Json<Value>, ApiError> {
    diff(&state, &format!("entity/{blueprint}/{identifier}"), &q).await
}

/// Puts an entity back as it was at a version (also one since deleted); audited as a revert.
#[utoipa::path(
    post,
    path = "/blueprints/{blueprint}/entities/{identifier}/revert",
    tag = "catalog",
    operation_id = "revertEntity",
    params(
        ("blueprint" = String, Path, description = "The blueprint's identifier"),
        ("identifier" = String, Path, description = "The entity's identifier"),
    ),
    request_body = Revert,
    responses(
        (status = 200, description = "The entity as it is now", body = doc::Object),
        (status = 404, description = "No such version", body = doc::Error),
        (status = 422, description = "That version is no longer valid", body = doc::Error),
    ),
)]
pub(crate) async fn revert_entity(
    State(state): State<ApiState>,
    caller: Caller,
    WriteSource(source): WriteSource,
    Path((blueprint, identifier)): Path<(String, String)>,
    Json(body): Json<Revert>,
) -> Result<Json<Value>, ApiError> {
    let versions = versions(&state, &format!("entity/{blueprint}/{identifier}")).await?;
    let old = written(&at_version(&versions, body.version)?);
    let entity = entity_from(old, &blueprint, Some(&identifier))?;
    let (_, view) = write_entity(&state, &caller, &source, entity, Expect::Any, true).await?;
    Ok(Json(view))
}

// ------------------------------------------------------------------ bulk

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Bulk {
    /// Entities, each with its `blueprint`; up to 10,000.
    #[schema(value_type = Vec<Object>)]
    entities: Vec<Value>,
    /// Keep properties and relations the entity already has and this one leaves out.
    #[serde(default)]
    merge: bool,
}

/// Creates or replaces many entities at once, with a result per entity: one bad entity does
/// not stop the others. Relations may point at entities of the same request.
#[utoipa::path(
    post,
    path = "/entities/bulk",
    tag = "catalog",
    operation_id = "bulkUpsertEntities",
    request_body = Bulk,
    responses(
        (status = 200, description = "A result per entity, in order", body = doc::BulkResult),
        (status = 413, description = "The body is larger than 16 MiB", body = doc::Error),
        (status = 422, description = "Not a list of entities, or too many", body = doc::Error),
    ),
)]
pub(crate) async fn bulk(
    State(state): State<ApiState>,
    caller: Caller,
    WriteSource(source): WriteSource,
    body: Result<Json<Bulk>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(b) = body.map_err(|r| body_error(&r))?;
    if b.entities.len() > BULK_MAX {
        return Err(ApiError::invalid(
            "entities",
            format!("at most {BULK_MAX} entities per request"),
        ));
    }
    if b.merge {
        synced(&state).await?;
    }
    // Decode each on its own: a bad one gets its problems, the rest go on.
    let decoded: Vec<Result<Entity, Vec<Problem>>> = {
        let cat = state.catalog.read();
        b.entities
            .into_iter()
            .map(|mut v| {
                if b.merge {
                    let key = (
                        v["blueprint"].as_str().unwrap_or_default().to_string(),
                        v["identifier"].as_str().unwrap_or_default().to_string(),
                    );
                    if let Some(e) = cat.entity_view(&key.0, &key.1) {
                        let mut current =
                            serde_json::to_value(&e.record.entity).unwrap_or(Value::Null);
                        merge_patch(&mut current, &v);
                        v = current;
                    }
                }
                decode::<Entity>("entity", v)
            })
            .collect()
    };
    let ctx = ctx(&caller, &source);
    let results = state
        .catalog
        .write_heavy(caller.audit(), |cat| {
            let inputs: Vec<(Entity, Expect)> = decoded
                .iter()
                .filter_map(|d| d.as_ref().ok())
                .map(|e| (e.clone(), Expect::Any))
                .collect();
            let mut planned = cat.plan_entities(inputs, &[], &ctx).into_iter();
            let mut plan = Plan::new(Vec::with_capacity(decoded.len()));
            for d in &decoded {
                let r = match d {
                    Err(problems) => json!({"status": "error", "problems": problems}),
                    Ok(e) => match planned.next() {
                        Some(Ok(p)) => {
                            plan.entity(&p, false);
                            json!({"blueprint": e.blueprint, "identifier": e.identifier, "status": p.outcome})
                        }
                        Some(Err(problems)) => json!({
                            "blueprint": e.blueprint, "identifier": e.identifier,
                            "status": "error", "problems": problems,
                        }),
                        None => Value::Null,
                    },
                };
                plan.result.push(r);
            }
            Ok::<_, ApiError>(plan)
        })
        .await
        .map_err(from_write)?;
    let failed = results.iter().filter(|r| r["status"] == "error").count();
    Ok(Json(json!({"results": results, "failed": failed})))
}

// ------------------------------------------------------------------ apply (GitOps)

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Apply {
    /// The definition-file source (a repository's name): `--prune` deletes only what this
    /// source declared before.
    source: String,
    /// Documents with `kind: Blueprint` or `kind: Entity`, in file order.
    #[schema(value_type = Vec<Object>)]
    documents: Vec<Value>,
    /// Plan and answer, store nothing.
    #[serde(default)]
    dry_run: bool,
    /// Delete what this source declared before and the documents no longer declare.
    #[serde(default)]
    prune: bool,
}

/// Applies definition documents all or nothing: every problem of every document is reported
/// (by document index and path) before anything is written; `dryRun` only plans. Answers
/// what changed, document by document, with each change's diff.
#[utoipa::path(
    post,
    path = "/catalog/apply",
    tag = "catalog",
    operation_id = "applyCatalog",
    request_body = Apply,
    responses(
        (status = 200, description = "What changed (or would change)", body = doc::ApplyResult),
        (status = 403, description = "Blueprint changes need an admin", body = doc::Error),
        (status = 413, description = "The body is larger than 16 MiB", body = doc::Error),
        (status = 422, description = "Every problem in `details.problems`, each with its `document`", body = doc::Error),
    ),
)]
pub(crate) async fn apply(
    State(state): State<ApiState>,
    caller: Caller,
    principal: axum::Extension<std::sync::Arc<crate::authz::Principal>>,
    body: Result<Json<Apply>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(a) = body.map_err(|r| body_error(&r))?;
    let source: Source = format!("file:{}", a.source)
        .parse()
        .map_err(|e: String| ApiError::invalid("source", e))?;
    // Documents → typed definitions, every problem kept with its document's index.
    let mut problems: Vec<Value> = Vec::new();
    let mut blueprints: Vec<(usize, Blueprint)> = Vec::new();
    let mut entities: Vec<(usize, Entity)> = Vec::new();
    let mut actions: Vec<(usize, gantry_catalog::action::Action)> = Vec::new();
    let mut scorecards: Vec<(usize, gantry_catalog::scorecard::Scorecard)> = Vec::new();
    let mut initiatives: Vec<(usize, gantry_catalog::scorecard::Initiative)> = Vec::new();
    let mut automations: Vec<(usize, gantry_catalog::automation::Automation)> = Vec::new();
    for (i, mut doc) in a.documents.into_iter().enumerate() {
        let kind = doc
            .as_object_mut()
            .and_then(|o| o.remove("kind"))
            .and_then(|k| k.as_str().map(str::to_string));
        let mut push = |ps: Vec<Problem>| {
            for p in ps {
                problems.push(json!({"document": i, "path": p.path, "message": p.message}));
            }
        };
        match kind.as_deref() {
            Some("Blueprint") => match decode::<Blueprint>("blueprint", doc) {
                Ok(b) => blueprints.push((i, b)),
                Err(ps) => push(ps),
            },
            Some("Entity") => match decode::<Entity>("entity", doc) {
                Ok(e) => entities.push((i, e)),
                Err(ps) => push(ps),
            },
            Some("Action") => match decode::<gantry_catalog::action::Action>("action", doc) {
                Ok(a) => actions.push((i, a)),
                Err(ps) => push(ps),
            },
            Some("Scorecard") => match decode("scorecard", doc) {
                Ok(s) => scorecards.push((i, s)),
                Err(ps) => push(ps),
            },
            Some("Initiative") => match decode("initiative", doc) {
                Ok(s) => initiatives.push((i, s)),
                Err(ps) => push(ps),
            },
            Some("Automation") => match decode("automation", doc) {
                Ok(s) => automations.push((i, s)),
                Err(ps) => push(ps),
            },
            other => push(vec![Problem {
                path: "kind".into(),
                message: format!(
                    "`{}` is not a kind this server applies: Blueprint, Entity, Action, \
                     Scorecard, Initiative or Automation",
                    other.unwrap_or("")
                ),
            }]),
        }
    }
    let mut seen = HashSet::new();
    for (i, b) in &blueprints {
        if !seen.insert(format!("blueprint/{}", b.identifier)) {
            problems.push(json!({"document": i, "path": "identifier", "message": format!("blueprint `{}` is declared twice", b.identifier)}));
        }
    }
    for (i, e) in &entities {
        if !seen.insert(format!("entity/{}/{}", e.blueprint, e.identifier)) {
            problems.push(json!({"document": i, "path": "identifier", "message": format!("entity `{}/{}` is declared twice", e.blueprint, e.identifier)}));
        }
    }
    let declared: Vec<Blueprint> = blueprints.iter().map(|(_, b)| b.clone()).collect();
    let defs = Definitions {
        actions,
        scorecards,
        initiatives,
        automations,
    };
    problems.extend(defs.check(&state, &declared, &mut seen).await);
    if !problems.is_empty() {
        return Err(apply_error(&problems));
    }
    let ctx = ctx(&caller, &source);
    let is_admin = crate::authz::can(
        &principal,
        crate::authz::Action::Administer,
        &crate::authz::Resource::NONE,
    );
    let Source::File(source_name) = &source else {
        return Err(ApiError::internal());
    };
    let run = |cat: &Catalog| -> Result<Plan<Vec<Value>>, ApiError> {
        let mut problems = Vec::new();
        let mut plan = Plan::new(Vec::new());
        let planned_bps = cat.plan_blueprints(
            blueprints
                .iter()
                .map(|(_, b)| (b.clone(), Expect::Any))
                .collect(),
            &ctx,
        );
        let pending: Vec<Blueprint> = blueprints.iter().map(|(_, b)| b.clone()).collect();
        for ((i, b), p) in blueprints.iter().zip(&planned_bps) {
            match p {
                Err(ps) => problems.extend(
                    ps.iter()
                        .map(|p| json!({"document": i, "path": p.path, "message": p.message})),
                ),
                Ok(p) => {
                    if p.outcome != Outcome::Unchanged && !is_admin {
                        problems.push(json!({"document": i, "path": "kind", "message": format!("changing blueprint `{}` needs the admin role", b.identifier)}));
                    }
                    plan.result.push(change_json(
                        "blueprint",
                        &b.identifier,
                        p.outcome,
                        p.before.as_ref().map(crate::catalog::json).as_ref(),
                        Some(&crate::catalog::json(&p.record)),
                    ));
                    plan.blueprint(p, false);
                }
            }
        }
        let planned = cat.plan_entities(
            entities
                .iter()
                .map(|(_, e)| (e.clone(), Expect::Any))
                .collect(),
            &pending,
            &ctx,
        );
        for ((i, e), p) in entities.iter().zip(&planned) {
            match p {
                Err(ps) => problems.extend(
                    ps.iter()
                        .map(|p| json!({"document": i, "path": p.path, "message": p.message})),
                ),
                Ok(p) => {
                    plan.result.push(change_json(
                        "entity",
                        &format!("{}/{}", e.blueprint, e.identifier),
                        p.outcome,
                        p.before.as_ref().map(crate::catalog::json).as_ref(),
                        Some(&crate::catalog::json(&p.record)),
                    ));
                    plan.entity(p, false);
                }
            }
        }
        if a.prune {
            let declared_entities: HashSet<(&str, &str)> = entities
                .iter()
                .map(|(_, e)| (e.blueprint.as_str(), e.identifier.as_str()))
                .collect();
            let mut gone: Vec<_> = cat
                .managed_by(source_name)
                .filter(|e| {
                    !declared_entities.contains(&(
                        e.record.entity.blueprint.as_str(),
                        e.record.entity.identifier.as_str(),
                    ))
                })
                .map(|e| e.record.clone())
                .collect();
            gone.sort_by(|a, b| {
                (&a.entity.blueprint, &a.entity.identifier)
                    .cmp(&(&b.entity.blueprint, &b.entity.identifier))
            });
            for r in &gone {
                plan.result.push(change_json(
                    "entity",
                    &format!("{}/{}", r.entity.blueprint, r.entity.identifier),
                    Outcome::Deleted,
                    Some(&crate::catalog::json(r)),
                    None,
                ));
                plan.delete_entity(r);
            }
            let declared_bps: HashSet<&str> = blueprints
                .iter()
                .map(|(_, b)| b.identifier.as_str())
                .collect();
            for r in cat.blueprints_managed_by(source_name) {
                if declared_bps.contains(r.blueprint.identifier.as_str()) {
                    continue;
                }
                if !is_admin {
                    problems.push(json!({"document": Value::Null, "path": "prune", "message": format!("deleting blueprint `{}` needs the admin role", r.blueprint.identifier)}));
                }
                plan.result.push(change_json(
                    "blueprint",
                    &r.blueprint.identifier,
                    Outcome::Deleted,
                    Some(&crate::catalog::json(r)),
                    None,
                ));
                plan.delete_blueprint(r);
            }
        }
        if !problems.is_empty() {
            return Err(apply_error(&problems));
        }
        if a.dry_run {
            plan.changes.clear();
            plan.delta = Default::default();
        }
        Ok(plan)
    };
    // Refusals of the other definitions come before any catalog change is stored.
    let apply = Applying {
        state: &state,
        caller: &caller,
        is_admin,
        source: source_name,
        prune: a.prune,
    };
    defs.apply(&apply, true).await?;
    let mut changes = state
        .catalog
        .write_heavy(caller.audit(), run)
        .await
        .map_err(from_write)?;
    changes.extend(defs.apply(&apply, a.dry_run).await?);
    let count = |o: &str| changes.iter().filter(|c| c["outcome"] == o).count();
    Ok(Json(json!({
        "dryRun": a.dry_run,
        "created": count("created"),
        "updated": count("updated"),
        "unchanged": count("unchanged"),
        "deleted": count("deleted"),
        "changes": changes,
    })))
}

/// The definitions of an apply beside blueprints and entities, stored after the catalog
/// changes (so they may name blueprints the same apply declares), in this order: actions,
/// scorecards, initiatives (which name scorecards), automations.
struct Definitions {
    actions: Vec<(usize, gantry_catalog::action::Action)>,
    scorecards: Vec<(usize, gantry_catalog::scorecard::Scorecard)>,
    initiatives: Vec<(usize, gantry_catalog::scorecard::Initiative)>,
    automations: Vec<(usize, gantry_catalog::automation::Automation)>,
}

/// Who applies what, from where.
struct Applying<'a> {
    state: &'a ApiState,
    caller: &'a Caller,
    is_admin: bool,
    source: &'a str,
    prune: bool,
}

impl Definitions {
    /// Every problem of every definition, with its document; duplicates too.
    async fn check(
        &self,
        state: &ApiState,
        declared: &[Blueprint],
        seen: &mut HashSet<String>,
    ) -> Vec<Value> {
        let mut out = Vec::new();
        let mut push = |i: usize, ps: Vec<Problem>| {
            for p in ps {
                out.push(json!({"document": i, "path": p.path, "message": p.message}));
            }
        };
        let mut twice = |i: usize, kind: &str, id: &str| {
            if !seen.insert(format!("{kind}/{id}")) {
                push(
                    i,
                    vec![Problem {
                        path: "identifier".into(),
                        message: format!("{kind} `{id}` is declared twice"),
                    }],
                );
            }
        };
        for (i, a) in &self.actions {
            twice(*i, "action", &a.identifier);
        }
        for (i, s) in &self.scorecards {
            twice(*i, "scorecard", &s.identifier);
        }
        for (i, s) in &self.initiatives {
            twice(*i, "initiative", &s.identifier);
        }
        for (i, s) in &self.automations {
            twice(*i, "automation", &s.identifier);
        }
        // A blueprint the same apply declares is no problem.
        let known = |p: &Problem, blueprint: Option<&str>| {
            !(p.path.ends_with("blueprint")
                && blueprint.is_some_and(|b| declared.iter().any(|d| d.identifier == b)))
        };
        for (i, a) in &self.actions {
            if let Err(ps) = state.actions.check_with(a, declared).await {
                push(*i, ps);
            }
        }
        for (i, s) in &self.scorecards {
            if let Err(ps) = state.scorecards.check(s) {
                push(
                    *i,
                    ps.into_iter()
                        .filter(|p| known(p, Some(&s.blueprint)))
                        .collect(),
                );
            }
        }
        for (i, init) in &self.initiatives {
            let declared_card = self
                .scorecards
                .iter()
                .find(|(_, s)| s.identifier == init.scorecard)
                .map(|(_, s)| s);
            push(*i, state.scorecards.check_initiative(init, declared_card));
        }
        for (i, a) in &self.automations {
            if let Err(ps) = state.automations.check(a) {
                let bp = a.trigger.blueprint.as_deref();
                push(*i, ps.into_iter().filter(|p| known(p, bp)).collect());
            }
        }
        out
    }

    /// Puts (and with `prune`, deletes) the definitions; `dry_run`: only says what would
    /// change, and refuses what the caller may not do.
    async fn apply(&self, a: &Applying<'_>, dry_run: bool) -> Result<Vec<Value>, ApiError> {
        let mut out = apply_kind(a, &self.actions, dry_run).await?;
        out.extend(apply_kind(a, &self.scorecards, dry_run).await?);
        out.extend(apply_kind(a, &self.initiatives, dry_run).await?);
        out.extend(apply_kind(a, &self.automations, dry_run).await?);
        Ok(out)
    }
}

/// A kind of definition an apply stores through its service.
trait DefinitionKind: serde::Serialize + Clone {
    const KIND: gantry_store::DefinitionKind;
    fn identifier(&self) -> &str;
    async fn put(self, state: &ApiState, managed_by: String, audit: &Audit)
        -> Result<(), ApiError>;
    async fn delete(state: &ApiState, id: &str, audit: &Audit) -> Result<(), ApiError>;
}

impl DefinitionKind for gantry_catalog::action::Action {
    const KIND: gantry_store::DefinitionKind = gantry_store::DefinitionKind::Action;
    fn identifier(&self) -> &str {
        &self.identifier
    }
    async fn put(self, state: &ApiState, by: String, audit: &Audit) -> Result<(), ApiError> {
        state.actions.put(self, Some(by), audit).await.map(|_| ())
    }
    async fn delete(state: &ApiState, id: &str, audit: &Audit) -> Result<(), ApiError> {
        Ok(state.store.delete_action(id, audit).await?)
    }
}

impl DefinitionKind for gantry_catalog::scorecard::Scorecard {
    const KIND: gantry_store::DefinitionKind = gantry_store::DefinitionKind::Scorecard;
    fn identifier(&self) -> &str {
        &self.identifier
    }
    async fn put(self, state: &ApiState, by: String, audit: &Audit) -> Result<(), ApiError> {
        state
            .scorecards
            .put(self, Some(by), audit)
            .await
            .map(|_| ())
            .map_err(|e| super::scorecards::put_error("scorecard", e))
    }
    async fn delete(state: &ApiState, id: &str, audit: &Audit) -> Result<(), ApiError> {
        Ok(state.scorecards.delete(id, audit).await?)
    }
}

impl DefinitionKind for gantry_catalog::scorecard::Initiative {
    const KIND: gantry_store::DefinitionKind = gantry_store::DefinitionKind::Initiative;
    fn identifier(&self) -> &str {
        &self.identifier
    }
    async fn put(self, state: &ApiState, by: String, audit: &Audit) -> Result<(), ApiError> {
        state
            .scorecards
            .put_initiative(self, Some(by), audit)
            .await
            .map(|_| ())
            .map_err(|e| super::scorecards::put_error("initiative", e))
    }
    async fn delete(state: &ApiState, id: &str, audit: &Audit) -> Result<(), ApiError> {
        Ok(state.scorecards.delete_initiative(id, audit).await?)
    }
}

impl DefinitionKind for gantry_catalog::automation::Automation {
    const KIND: gantry_store::DefinitionKind = gantry_store::DefinitionKind::Automation;
    fn identifier(&self) -> &str {
        &self.identifier
    }
    async fn put(self, state: &ApiState, by: String, audit: &Audit) -> Result<(), ApiError> {
        state
            .automations
            .put(self, Some(by), audit)
            .await
            .map(|_| ())
            .map_err(|e| super::scorecards::put_error("automation", e))
    }
    async fn delete(state: &ApiState, id: &str, audit: &Audit) -> Result<(), ApiError> {
        Ok(state.automations.delete(id, audit).await?)
    }
}

/// Puts the definitions of one kind and, with `prune`, deletes those the same source declared
/// before and no longer does. Changing them needs the admin role.
async fn apply_kind<K: DefinitionKind>(
    a: &Applying<'_>,
    defs: &[(usize, K)],
    dry_run: bool,
) -> Result<Vec<Value>, ApiError> {
    let kind = K::KIND.as_str();
    let stored = a.state.store.list_definitions(K::KIND).await?;
    let mut out = Vec::new();
    let mut refused = Vec::new();
    let mut puts = Vec::new();
    for (i, d) in defs {
        let definition = serde_json::to_value(d).map_err(|_| ApiError::internal())?;
        let before = stored.iter().find(|s| s.identifier == d.identifier());
        let outcome = match before {
            None => Outcome::Created,
            Some(b) if b.definition == definition && b.managed_by.as_deref() == Some(a.source) => {
                Outcome::Unchanged
            }
            Some(_) => Outcome::Updated,
        };
        if outcome != Outcome::Unchanged && !a.is_admin {
            refused.push(json!({"document": i, "path": "kind", "message": format!("changing {kind} `{}` needs the admin role", d.identifier())}));
        }
        out.push(change_json(
            kind,
            d.identifier(),
            outcome,
            before.map(|b| &b.definition),
            Some(&definition),
        ));
        if outcome != Outcome::Unchanged {
            puts.push(d.clone());
        }
    }
    let mut gone = Vec::new();
    if a.prune {
        for s in &stored {
            let declared = defs.iter().any(|(_, d)| d.identifier() == s.identifier);
            if s.managed_by.as_deref() == Some(a.source) && !declared {
                if !a.is_admin {
                    refused.push(json!({"document": Value::Null, "path": "prune", "message": format!("deleting {kind} `{}` needs the admin role", s.identifier)}));
                }
                out.push(change_json(
                    kind,
                    &s.identifier,
                    Outcome::Deleted,
                    Some(&s.definition),
                    None,
                ));
                gone.push(s.identifier.clone());
            }
        }
    }
    if !refused.is_empty() {
        return Err(apply_error(&refused));
    }
    if !dry_run {
        let audit = a.caller.audit();
        for d in puts {
            d.put(a.state, a.source.to_owned(), audit).await?;
        }
        for id in gone {
            K::delete(a.state, &id, audit).await?;
        }
    }
    Ok(out)
}

fn change_json(
    kind: &str,
    key: &str,
    outcome: Outcome,
    before: Option<&Value>,
    after: Option<&Value>,
) -> Value {
    let diff = match (before, after) {
        (Some(b), Some(a)) => gantry_catalog::diff::diff(&written(b), &written(a)),
        _ => Vec::new(),
    };
    json!({"kind": kind, "key": key, "outcome": outcome, "diff": diff})
}

pub(crate) fn apply_error(problems: &[Value]) -> ApiError {
    let n = problems.len();
    ApiError {
        details: Some(Box::new(json!({ "problems": problems }))),
        ..ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_catalog",
            format!(
                "the documents have {n} problem{}; nothing was written",
                if n == 1 { "" } else { "s" }
            ),
        )
    }
}
