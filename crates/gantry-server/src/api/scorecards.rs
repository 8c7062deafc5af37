//! `/api/v1/scorecards`, `/api/v1/initiatives` and an entity's standings: the definitions,
//! where every entity stands, level history, initiative progress, and `POST
//! /scorecards/check`, which evaluates definition files as they would be after a change
//! without writing anything (`gantry scorecard check`).

use std::collections::HashSet;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use gantry_catalog::index::{Catalog, Delta, Expect, Key, WriteContext};
use gantry_catalog::schema::Problem;
use gantry_catalog::scorecard::{Initiative, Scorecard};
use gantry_catalog::{Blueprint, Entity, Source};
use gantry_store::{HistoryFilter, StoredAction};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::audit::Caller;
use super::catalog::decode;
use super::error::{problems, ApiError};
use super::openapi as doc;
use super::ApiState;
use crate::scorecards::PutError;

/// A definition's stored record as the API shows it: the definition with its version and who
/// changed it when.
pub(crate) fn definition_json(a: &StoredAction) -> Value {
    let mut v = a.definition.clone();
    if let Some(o) = v.as_object_mut() {
        o.insert("version".into(), json!(a.version));
        o.insert("createdAt".into(), json!(a.created_at));
        o.insert("updatedAt".into(), json!(a.updated_at));
        o.insert("createdBy".into(), json!(a.created_by));
        o.insert("updatedBy".into(), json!(a.updated_by));
        if let Some(m) = &a.managed_by {
            o.insert("managedBy".into(), json!(m));
        }
    }
    v
}

/// Reads a definition of kind `what` from a request body whose path names `identifier`;
/// every problem with its path, refused with `code`.
pub(crate) fn decode_definition<T: DeserializeOwned>(
    code: &'static str,
    what: &str,
    identifier: &str,
    bytes: &Bytes,
) -> Result<T, ApiError> {
    let mut body: Value = super::json_body(bytes)?;
    if let Some(o) = body.as_object_mut() {
        o.remove("kind");
        match o.get("identifier") {
            None => {
                o.insert("identifier".into(), json!(identifier));
            }
            Some(v) if v != &json!(identifier) => {
                return Err(ApiError::invalid(
                    "identifier",
                    "the identifier differs from the one in the path",
                ))
            }
            Some(_) => {}
        }
    }
    decode(what, body).map_err(|ps| problems(code, what, &ps))
}

pub(crate) fn put_error(what: &str, e: PutError) -> ApiError {
    match e {
        PutError::Invalid(ps) => problems("invalid_definition", what, &ps),
        PutError::Store(e) => e.into(),
    }
}

/// Lists the scorecards with their summaries.
#[utoipa::path(
    get,
    path = "/scorecards",
    tag = "scorecards",
    operation_id = "listScorecards",
    responses((status = 200, description = "The scorecards", body = doc::Object)),
)]
pub(crate) async fn list_scorecards(
    State(state): State<ApiState>,
) -> Result<Json<Value>, ApiError> {
    state.catalog.sync().await?;
    let items: Vec<Value> = state
        .scorecards
        .records()
        .iter()
        .filter_map(|r| state.scorecards.scorecard_json(&r.identifier))
        .collect();
    Ok(Json(json!({ "items": items })))
}

/// Shows a scorecard with its summary: entities per level, per team and per rule.
#[utoipa::path(
    get,
    path = "/scorecards/{identifier}",
    tag = "scorecards",
    operation_id = "getScorecard",
    params(("identifier" = String, Path, description = "The scorecard's identifier")),
    responses(
        (status = 200, description = "The scorecard", body = doc::Object),
        (status = 404, description = "No such scorecard", body = doc::Error),
    ),
)]
pub(crate) async fn get_scorecard(
    State(state): State<ApiState>,
    Path(identifier): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state.catalog.sync().await?;
    state
        .scorecards
        .scorecard_json(&identifier)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no scorecard `{identifier}`")))
}

/// Creates or replaces a scorecard; its entities are evaluated before the answer.
#[utoipa::path(
    put,
    path = "/scorecards/{identifier}",
    tag = "scorecards",
    operation_id = "putScorecard",
    params(("identifier" = String, Path, description = "The scorecard's identifier")),
    request_body(content = doc::Object, description = "The scorecard"),
    responses(
        (status = 200, description = "Stored and evaluated", body = doc::Object),
        (status = 422, description = "Every problem with its path in `details.problems`", body = doc::Error),
    ),
)]
pub(crate) async fn put_scorecard(
    State(state): State<ApiState>,
    caller: Caller,
    Path(identifier): Path<String>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let sc: Scorecard = decode_definition("invalid_definition", "scorecard", &identifier, &bytes)?;
    state
        .scorecards
        .put(sc, None, caller.audit())
        .await
        .map_err(|e| put_error("scorecard", e))?;
    state
        .scorecards
        .scorecard_json(&identifier)
        .map(Json)
        .ok_or_else(ApiError::internal)
}

/// Deletes a scorecard; its level history stays.
#[utoipa::path(
    delete,
    path = "/scorecards/{identifier}",
    tag = "scorecards",
    operation_id = "deleteScorecard",
    params(("identifier" = String, Path, description = "The scorecard's identifier")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such scorecard", body = doc::Error),
    ),
)]
pub(crate) async fn delete_scorecard(
    State(state): State<ApiState>,
    caller: Caller,
    Path(identifier): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.scorecards.delete(&identifier, caller.audit()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct StandingsQuery {
    /// Only entities at this level.
    level: Option<String>,
    /// Only entities of this team.
    team: Option<String>,
    /// At most this many (default 100, at most 1000).
    limit: Option<usize>,
    /// The `next` of the previous page.
    after: Option<String>,
}

/// Where each entity a scorecard evaluates stands: level, score, every rule's result (with the
/// value seen and since when) and the rules to fix next; by identifier.
#[utoipa::path(
    get,
    path = "/scorecards/{identifier}/entities",
    tag = "scorecards",
    operation_id = "listScorecardEntities",
    params(("identifier" = String, Path, description = "The scorecard's identifier"), StandingsQuery),
    responses(
        (status = 200, description = "A page of standings", body = doc::Object),
        (status = 404, description = "No such scorecard", body = doc::Error),
    ),
)]
pub(crate) async fn list_standings(
    State(state): State<ApiState>,
    Path(identifier): Path<String>,
    Query(q): Query<StandingsQuery>,
) -> Result<Json<Value>, ApiError> {
    state.catalog.sync().await?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    state
        .scorecards
        .standings_json(
            &identifier,
            q.level.as_deref(),
            q.team.as_deref(),
            limit,
            q.after.as_deref(),
        )
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no scorecard `{identifier}`")))
}

/// Where an entity stands on every scorecard that evaluates it.
#[utoipa::path(
    get,
    path = "/blueprints/{blueprint}/entities/{identifier}/scorecards",
    tag = "scorecards",
    operation_id = "getEntityScorecards",
    params(
        ("blueprint" = String, Path, description = "The blueprint's identifier"),
        ("identifier" = String, Path, description = "The entity's identifier"),
    ),
    responses(
        (status = 200, description = "The entity's standings", body = doc::Object),
        (status = 404, description = "No such entity", body = doc::Error),
    ),
)]
pub(crate) async fn entity_scorecards(
    State(state): State<ApiState>,
    Path((blueprint, identifier)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    state.catalog.sync().await?;
    if state
        .catalog
        .read()
        .entity_view(&blueprint, &identifier)
        .is_none()
    {
        return Err(ApiError::not_found(format!(
            "no entity `{identifier}` of blueprint `{blueprint}`"
        )));
    }
    let items = state.scorecards.entity_json(&blueprint, &identifier);
    Ok(Json(json!({ "items": items })))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct HistoryQuery {
    /// Only this entity: `BLUEPRINT/IDENTIFIER`.
    entity: Option<String>,
    /// At most this many (default 100, at most 1000).
    limit: Option<u32>,
    /// The `next` of the previous page.
    before: Option<i64>,
}

/// A scorecard's level changes, newest first (`from` null: first evaluated; `to` null: no
/// longer evaluated).
#[utoipa::path(
    get,
    path = "/scorecards/{identifier}/history",
    tag = "scorecards",
    operation_id = "listScorecardHistory",
    params(("identifier" = String, Path, description = "The scorecard's identifier"), HistoryQuery),
    responses(
        (status = 200, description = "A page of level changes", body = doc::Object),
        (status = 422, description = "A bad entity", body = doc::Error),
    ),
)]
pub(crate) async fn history(
    State(state): State<ApiState>,
    Path(identifier): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<Value>, ApiError> {
    let entity = match q.entity.as_deref() {
        None => None,
        Some(e) => Some(
            e.split_once('/')
                .map(|(b, i)| (b.to_owned(), i.to_owned()))
                .ok_or_else(|| ApiError::invalid("entity", "an entity is BLUEPRINT/IDENTIFIER"))?,
        ),
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let rows = state
        .scorecards
        .history(
            &HistoryFilter {
                scorecard: Some(identifier),
                entity,
                before: q.before,
            },
            limit,
        )
        .await?;
    let next = (rows.len() == limit as usize).then(|| rows.last().map(|r| r.seq));
    let items: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "entity": format!("{}/{}", r.blueprint, r.identifier),
                "from": r.from,
                "to": r.to,
                "score": r.score,
                "at": r.at,
            })
        })
        .collect();
    Ok(Json(json!({ "items": items, "next": next.flatten() })))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct CheckRequest {
    /// Definition documents (`kind: Blueprint | Entity | Scorecard`; other kinds are ignored)
    /// as they would be after the change.
    #[schema(value_type = Vec<Object>)]
    documents: Vec<Value>,
}

/// Evaluates definition documents as they would be after a change, against the server's
/// scorecards (or the scorecards among the documents), and lists every entity whose level
/// would rise or drop (or that would enter or leave a scorecard) with the rules behind it.
/// Writes nothing.
#[utoipa::path(
    post,
    path = "/scorecards/check",
    tag = "scorecards",
    operation_id = "checkScorecards",
    request_body(content = doc::Object, description = "`{documents: [...]}`"),
    responses(
        (status = 200, description = "The level changes the documents would make", body = doc::Object),
        (status = 422, description = "Every problem with its document and path in `details.problems`", body = doc::Error),
    ),
)]
pub(crate) async fn check(
    State(state): State<ApiState>,
    caller: Caller,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let req: CheckRequest = super::json_body(&bytes)?;
    let mut problems_found: Vec<Value> = Vec::new();
    let mut blueprints: Vec<(usize, Blueprint)> = Vec::new();
    let mut entities: Vec<(usize, Entity)> = Vec::new();
    let mut scorecards: Vec<Scorecard> = Vec::new();
    for (i, mut doc) in req.documents.into_iter().enumerate() {
        let kind = doc
            .as_object_mut()
            .and_then(|o| o.remove("kind"))
            .and_then(|k| k.as_str().map(str::to_owned));
        let mut push = |ps: Vec<Problem>| {
            for p in ps {
                problems_found.push(json!({"document": i, "path": p.path, "message": p.message}));
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
            Some("Scorecard") => match decode::<Scorecard>("scorecard", doc) {
                Ok(s) => match state.scorecards.check(&s) {
                    Ok(_) => scorecards.push(s),
                    Err(ps) => push(ps),
                },
                Err(ps) => push(ps),
            },
            _ => {}
        }
    }
    state.catalog.sync().await?;
    let before: Catalog = state.catalog.read().clone();
    let mut after = before.clone();
    let source = Source::File("scorecard-check".into());
    let ctx = WriteContext {
        source: &source,
        actor: &caller.audit().actor.name,
        now: caller.audit().at,
        managed_by: None,
    };
    let mut delta = Delta {
        seq: before.seq() + 1,
        ..Delta::default()
    };
    let planned_bps = after.plan_blueprints(
        blueprints
            .iter()
            .map(|(_, b)| (b.clone(), Expect::Any))
            .collect(),
        &ctx,
    );
    for ((i, _), p) in blueprints.iter().zip(planned_bps) {
        match p {
            Ok(p) => delta.blueprints.push(p.record),
            Err(ps) => problems_found.extend(
                ps.iter()
                    .map(|p| json!({"document": i, "path": p.path, "message": p.message})),
            ),
        }
    }
    let pending: Vec<Blueprint> = blueprints.iter().map(|(_, b)| b.clone()).collect();
    let planned = after.plan_entities(
        entities
            .iter()
            .map(|(_, e)| (e.clone(), Expect::Any))
            .collect(),
        &pending,
        &ctx,
    );
    let mut changed: Vec<Key> = Vec::new();
    for ((i, e), p) in entities.iter().zip(planned) {
        match p {
            Ok(p) => {
                changed.push((e.blueprint.clone(), e.identifier.clone()));
                delta.entities.push(p.record);
            }
            Err(ps) => problems_found.extend(
                ps.iter()
                    .map(|p| json!({"document": i, "path": p.path, "message": p.message})),
            ),
        }
    }
    if !problems_found.is_empty() {
        return Err(super::catalog::apply_error(&problems_found));
    }
    let changes = crate::catalog::heavy(true, || {
        let applied = after.apply(delta);
        let mut keys: Vec<Key> = applied.keys;
        if applied.all || !scorecards.is_empty() {
            // A blueprint or a scorecard changed: every entity a scorecard evaluates.
            let bps: HashSet<String> = state
                .scorecards
                .records()
                .iter()
                .filter_map(|r| r.definition["blueprint"].as_str().map(str::to_owned))
                .chain(scorecards.iter().map(|s| s.blueprint.clone()))
                .collect();
            for bp in bps {
                keys.extend(after.entities_of(&bp).map(|e| {
                    (
                        e.record.entity.blueprint.clone(),
                        e.record.entity.identifier.clone(),
                    )
                }));
            }
        }
        keys.extend(changed);
        state
            .scorecards
            .compare(&before, &after, &keys, &scorecards)
    });
    let count = |d: &str| changes.iter().filter(|c| c["direction"] == d).count();
    Ok(Json(json!({
        "drops": count("drop"),
        "rises": count("rise"),
        "enters": count("enter"),
        "leaves": count("leave"),
        "changes": changes,
    })))
}

/// Lists the initiatives with their progress.
#[utoipa::path(
    get,
    path = "/initiatives",
    tag = "scorecards",
    operation_id = "listInitiatives",
    responses((status = 200, description = "The initiatives", body = doc::Object)),
)]
pub(crate) async fn list_initiatives(
    State(state): State<ApiState>,
) -> Result<Json<Value>, ApiError> {
    state.catalog.sync().await?;
    let items: Vec<Value> = state
        .scorecards
        .initiative_records()
        .iter()
        .filter_map(|r| state.scorecards.initiative_json(&r.identifier))
        .collect();
    Ok(Json(json!({ "items": items })))
}

/// Shows an initiative with its progress: the share of its scorecard's entities at or above
/// the target level, in all and per team.
#[utoipa::path(
    get,
    path = "/initiatives/{identifier}",
    tag = "scorecards",
    operation_id = "getInitiative",
    params(("identifier" = String, Path, description = "The initiative's identifier")),
    responses(
        (status = 200, description = "The initiative", body = doc::Object),
        (status = 404, description = "No such initiative", body = doc::Error),
    ),
)]
pub(crate) async fn get_initiative(
    State(state): State<ApiState>,
    Path(identifier): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state.catalog.sync().await?;
    state
        .scorecards
        .initiative_json(&identifier)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no initiative `{identifier}`")))
}

/// Creates or replaces an initiative.
#[utoipa::path(
    put,
    path = "/initiatives/{identifier}",
    tag = "scorecards",
    operation_id = "putInitiative",
    params(("identifier" = String, Path, description = "The initiative's identifier")),
    request_body(content = doc::Object, description = "The initiative"),
    responses(
        (status = 200, description = "Stored", body = doc::Object),
        (status = 422, description = "Every problem with its path in `details.problems`", body = doc::Error),
    ),
)]
pub(crate) async fn put_initiative(
    State(state): State<ApiState>,
    caller: Caller,
    Path(identifier): Path<String>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let i: Initiative = decode_definition("invalid_definition", "initiative", &identifier, &bytes)?;
    state
        .scorecards
        .put_initiative(i, None, caller.audit())
        .await
        .map_err(|e| put_error("initiative", e))?;
    state
        .scorecards
        .initiative_json(&identifier)
        .map(Json)
        .ok_or_else(ApiError::internal)
}

/// Deletes an initiative.
#[utoipa::path(
    delete,
    path = "/initiatives/{identifier}",
    tag = "scorecards",
    operation_id = "deleteInitiative",
    params(("identifier" = String, Path, description = "The initiative's identifier")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such initiative", body = doc::Error),
    ),
)]
pub(crate) async fn delete_initiative(
    State(state): State<ApiState>,
    caller: Caller,
    Path(identifier): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .scorecards
        .delete_initiative(&identifier, caller.audit())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
