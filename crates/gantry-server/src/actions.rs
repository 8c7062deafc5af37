//! Self-service action runs: asked for by a user, approved when the action says so, carried
//! out by a Gantry workflow run or by an outgoing signed webhook, and followed to their end.
//!
//! A run moves `waiting_for_approval → queued → running → succeeded | failed | cancelled`
//! (a denial cancels it). Every change is one `update_action_run` that expects the version it
//! read, so two servers (or a report racing a timeout) never both move a run: the loser reads
//! again and finds the run where the winner left it.
//!
//! What a run reports, it reports through its invocation:
//! - a workflow run's steps set outputs named `link` or `links` (`{title, url}` or a list of
//!   them), `summary` (text) and `entity` or `entities` (catalog entity documents, as in a
//!   definition file, with or without `kind: Entity`); they are read when the workflow run
//!   ends, its entities are written to the catalog and linked;
//! - a webhook receiver posts to the report URL the request gave it, with the token it gave:
//!   log lines, links, a summary, entities, and the final status. A receiver that does not
//!   answer within the webhook's `timeoutSeconds`, or does not report an end within its
//!   `reportTimeoutSeconds`, fails the run with a message that says so.
//!
//! Secret inputs are sealed with the vault (bound to the run) before anything is stored and
//! opened only to render the invocation; they never reach a response, a log or the audit log.
//! A workflow parameter made from a secret input is refused: run parameters are stored in
//! plain, so secrets reach workflows as workflow secrets instead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use axum::http::StatusCode;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use gantry_catalog::action::{
    approval_state, check_action, validate_inputs, ApprovalState, ParameterTemplates,
    TemplateContext, ValidatedInputs, Who,
};
use gantry_catalog::action::{Action, Role};
use gantry_catalog::index::{Catalog, Expect, Outcome, WriteContext};
use gantry_catalog::{Entity, Source};
use gantry_engine::run::RunRecord;
use gantry_engine::sink::RunState;
use gantry_store::{
    ActionRunRow, Actor, ActorKind, Audit, NewAuditEvent, RunOrigin, SealedKind, Store, StoreError,
    StoredAction,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::api::error::ApiError;
use crate::catalog::{CatalogService, Plan, WriteError};
use crate::runs::RunService;
use crate::vault::{Sealed, Vault};

/// The statuses of a run.
pub const WAITING: &str = "waiting_for_approval";
pub const QUEUED: &str = "queued";
pub const RUNNING: &str = "running";
pub const SUCCEEDED: &str = "succeeded";
pub const FAILED: &str = "failed";
pub const CANCELLED: &str = "cancelled";
pub const STATUSES: [&str; 6] = [WAITING, QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED];

/// The header a signed webhook request carries its signature in.
pub const SIGNATURE_HEADER: &str = "x-gantry-signature";
/// How many times a change is tried again after another writer moved the run first.
const ATTEMPTS: usize = 8;
/// Most links, log lines and entities one report may carry.
const REPORT_MAX: usize = 1000;

/// Who asked for a run, as it was when they asked.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Requester {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub role: Role,
    #[serde(default)]
    pub teams: Vec<String>,
}

impl Requester {
    fn who(&self) -> Who {
        Who {
            email: self.name.clone(),
            teams: self.teams.clone(),
            role: self.role,
        }
    }

    fn audit(&self, request_id: &str) -> Audit {
        Audit {
            actor: Actor {
                kind: ActorKind::parse(&self.kind).unwrap_or(ActorKind::User),
                id: self.id.clone(),
                name: self.name.clone(),
            },
            request_id: Some(request_id.to_owned()),
            source: None,
            at: Utc::now(),
        }
    }
}

/// An approval or a denial.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub by: String,
    #[serde(default)]
    pub teams: Vec<String>,
    pub role: Role,
    /// `approved` or `denied`.
    pub decision: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Link {
    pub title: String,
    pub url: String,
}

/// An entity the run created or changed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LinkedEntity {
    pub blueprint: String,
    pub identifier: String,
    /// `created`, `updated` or `unchanged`.
    pub change: String,
}

/// The secret inputs, sealed for the run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct SealedInputs {
    key_id: String,
    nonce: String,
    ciphertext: String,
}

/// The server's document of a run (the store keeps it as given).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RunDoc {
    pub action_version: i64,
    /// The action as it was when the run was asked for: approvals and the invocation follow it
    /// even if the action changes meanwhile.
    pub definition: Value,
    pub requested_by: Requester,
    #[serde(default)]
    pub inputs: Map<String, Value>,
    /// The names of the secret inputs given.
    #[serde(default)]
    pub secret_inputs: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed: Option<SealedInputs>,
    #[serde(default)]
    pub decisions: Vec<Decision>,
    /// What approvals are still needed, in words.
    #[serde(default)]
    pub waiting_for: Vec<String>,
    #[serde(default)]
    pub links: Vec<Link>,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub entities: Vec<LinkedEntity>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub rerun_of: Option<String>,
    /// SHA-256 (hex) of the token a webhook receiver reports with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    report_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Value>,
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
}

/// A run as the API shows it: never a secret value, a sealed input or the report token.
pub fn run_json(row: &ActionRunRow) -> Value {
    let doc: Option<RunDoc> = serde_json::from_value(row.doc.clone()).ok();
    let Some(doc) = doc else {
        return json!({"id": row.id, "action": row.action, "status": row.status});
    };
    let mut inputs = doc.inputs.clone();
    for name in &doc.secret_inputs {
        inputs.insert(name.clone(), json!("***"));
    }
    json!({
        "id": row.id,
        "action": row.action,
        "actionVersion": doc.action_version,
        "status": row.status,
        "entity": row.entity.as_ref().map(|(b, i)| json!({"blueprint": b, "identifier": i})),
        "requestedBy": {"id": doc.requested_by.id, "name": doc.requested_by.name},
        "inputs": inputs,
        "decisions": doc.decisions,
        "waitingFor": doc.waiting_for,
        "workflowRun": row.workflow_run,
        "webhook": doc.webhook,
        "links": doc.links,
        "summary": doc.summary,
        "entities": doc.entities,
        "error": doc.error,
        "rerunOf": doc.rerun_of,
        "createdAt": row.created_at,
        "updatedAt": row.updated_at,
        "startedAt": doc.started_at,
        "finishedAt": doc.finished_at,
        "deadlineAt": row.deadline_at,
    })
}

/// What a run is asked for with.
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    pub entity: Option<(String, String)>,
    pub inputs: Map<String, Value>,
    pub rerun_of: Option<String>,
}

/// What a webhook receiver (or a workflow's outputs) reports.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Report {
    /// `running`, `succeeded` or `failed`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub links: Vec<Link>,
    #[serde(default)]
    pub logs: Vec<String>,
    #[serde(default)]
    pub entities: Vec<Value>,
    #[serde(default)]
    pub error: Option<String>,
}

pub struct ActionService {
    store: Arc<dyn Store>,
    vault: Arc<Vault>,
    runs: Arc<RunService>,
    catalog: Arc<CatalogService>,
    http: reqwest::Client,
    public_url: Arc<str>,
    me: Weak<ActionService>,
    /// Webhook runs whose report deadline this server is watching.
    watched: Mutex<HashMap<String, ()>>,
    /// Told of every run that reaches a final status through this server.
    finished: std::sync::OnceLock<FinishedHook>,
}

/// Told of an action run's end (automations' `action_run.finished`).
pub type FinishedHook = Arc<dyn Fn(&ActionRunRow) + Send + Sync>;

fn doc_of(row: &ActionRunRow) -> Result<RunDoc, ApiError> {
    serde_json::from_value(row.doc.clone()).map_err(|e| {
        tracing::error!(run = %row.id, error = %e, "an action run's document does not read");
        ApiError::internal()
    })
}

fn action_of(definition: &Value) -> Result<Action, String> {
    serde_json::from_value(definition.clone())
        .map_err(|e| format!("the action's definition does not read: {e}"))
}

fn forbidden(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
}

fn conflict(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "conflict", message)
}

/// A 422 listing every problem with its path.
pub fn problems_error(what: &str, problems: &[gantry_catalog::schema::Problem]) -> ApiError {
    crate::api::error::problems("invalid_action", what, problems)
}

fn is_final(status: &str) -> bool {
    matches!(status, SUCCEEDED | FAILED | CANCELLED)
}

/// Where a run's secret inputs are sealed for.
fn inputs_binding(run_id: &str) -> String {
    format!("action-run/{run_id}/inputs")
}

/// Where an action's secret is sealed for.
pub fn action_secret_binding(action: &str, name: &str) -> String {
    format!("action-secret/{action}/{name}")
}

/// The scope an action's secrets are stored under (no workflow name holds `/`).
pub fn action_secret_scope(action: &str) -> String {
    format!("action/{action}")
}

/// A URL as messages show it: no user, password or query (which may hold tokens).
fn shown_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => {
            format!(
                "{}://{}{}",
                u.scheme(),
                u.host_str().unwrap_or(""),
                u.port().map(|p| format!(":{p}")).unwrap_or_default()
            ) + u.path()
        }
        Err(_) => "the webhook URL".to_owned(),
    }
}

impl ActionService {
    pub fn new(
        store: Arc<dyn Store>,
        vault: Arc<Vault>,
        runs: Arc<RunService>,
        catalog: Arc<CatalogService>,
        public_url: Arc<str>,
    ) -> Arc<ActionService> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("gantry/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Arc::new_cyclic(|me| ActionService {
            store,
            vault,
            runs,
            catalog,
            http,
            public_url,
            me: me.clone(),
            watched: Mutex::new(HashMap::new()),
            finished: std::sync::OnceLock::new(),
        })
    }

    /// Tells `hook` of every run that reaches a final status through this server (set once).
    pub fn on_finish(&self, hook: FinishedHook) {
        let _ = self.finished.set(hook);
    }

    fn spawn<F>(&self, f: impl FnOnce(Arc<ActionService>) -> F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        if let Some(me) = self.me.upgrade() {
            tokio::spawn(f(me));
        }
    }

    // ------------------------------------------------------------ definitions

    /// Checks a definition against the catalog's blueprints; every problem with its path.
    pub async fn check(&self, action: &Action) -> Result<(), ApiError> {
        self.check_with(action, &[])
            .await
            .map_err(|problems| problems_error("action", &problems))
    }

    /// Every problem of a definition, with the blueprints of `pending` counted as existing
    /// (a definition file may declare the blueprint beside the action).
    pub async fn check_with(
        &self,
        action: &Action,
        pending: &[gantry_catalog::Blueprint],
    ) -> Result<(), Vec<gantry_catalog::schema::Problem>> {
        if let Err(e) = self.catalog.sync().await {
            tracing::error!(error = %e, "could not read the catalog");
        }
        let mut problems = {
            let cat = self.catalog.read();
            check_action(action, &|id| {
                pending
                    .iter()
                    .find(|b| b.identifier == id)
                    .or_else(|| cat.blueprint_record(id).map(|r| &r.blueprint))
            })
        };
        // Run parameters are stored in plain: a secret input reaches a webhook only.
        if action.invocation.workflow.is_some() {
            if let Ok(templates) = ParameterTemplates::parse(&action.invocation.parameters) {
                for (path, reference) in templates.references() {
                    let secret = reference.root == gantry_catalog::action::TemplateRoot::Inputs
                        && reference
                            .first_key()
                            .and_then(|k| action.inputs.properties.get(k))
                            .is_some_and(|spec| spec.secret);
                    if secret {
                        problems.push(gantry_catalog::schema::Problem {
                            path,
                            message: format!(
                                "`{reference}` is a secret input, and workflow run parameters \
                                 are stored in plain: give the workflow a secret instead, or \
                                 invoke a webhook"
                            ),
                        });
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Creates or replaces an action; returns it as stored.
    pub async fn put(
        &self,
        action: Action,
        managed_by: Option<String>,
        audit: &Audit,
    ) -> Result<(StoredAction, bool), ApiError> {
        self.check(&action).await?;
        let definition = serde_json::to_value(&action).map_err(|_| ApiError::internal())?;
        for _ in 0..ATTEMPTS {
            let before = match self.store.get_action(&action.identifier).await {
                Ok(b) => Some(b),
                Err(StoreError::NotFound(_)) => None,
                Err(e) => return Err(e.into()),
            };
            if let Some(b) = &before {
                if b.definition == definition && b.managed_by == managed_by {
                    return Ok((b.clone(), false));
                }
            }
            let stored = StoredAction {
                identifier: action.identifier.clone(),
                definition: definition.clone(),
                version: before.as_ref().map_or(1, |b| b.version + 1),
                created_at: before.as_ref().map_or(audit.at, |b| b.created_at),
                updated_at: audit.at,
                created_by: before
                    .as_ref()
                    .map_or(audit.actor.name.clone(), |b| b.created_by.clone()),
                updated_by: audit.actor.name.clone(),
                managed_by: managed_by.clone(),
            };
            match self
                .store
                .put_action(&stored, before.as_ref().map(|b| b.version), audit)
                .await
            {
                Ok(()) => return Ok((stored, true)),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(conflict(format!(
            "action `{}` kept changing; try again",
            action.identifier
        )))
    }

    // ------------------------------------------------------------ runs

    /// Asks for a run of `identifier` as `who`: checks who may, the entity and the inputs;
    /// stores it waiting for approval or queued (and then starts it).
    pub async fn request(
        &self,
        identifier: &str,
        requester: Requester,
        request: RunRequest,
        audit: &Audit,
    ) -> Result<ActionRunRow, ApiError> {
        let stored = self
            .store
            .get_action(identifier)
            .await
            .map_err(|e| match e {
                StoreError::NotFound(_) => ApiError::not_found(format!("no action `{identifier}`")),
                e => e.into(),
            })?;
        let action = action_of(&stored.definition).map_err(|e| {
            tracing::error!(action = identifier, error = %e, "a stored action does not read");
            ApiError::internal()
        })?;
        self.catalog.sync().await?;
        let (inputs, entity_teams) = {
            let cat = self.catalog.read();
            let cat: &Catalog = &cat;
            let entity_teams = match (&request.entity, action.operation.needs_entity()) {
                (Some((bp, id)), true) => {
                    let e = cat.entity_view(bp, id).ok_or_else(|| ApiError {
                        status: StatusCode::UNPROCESSABLE_ENTITY,
                        ..ApiError::invalid(
                            "entity",
                            format!("there is no entity `{id}` of blueprint `{bp}`"),
                        )
                    })?;
                    action
                        .applies_to(e, cat)
                        .map_err(|m| ApiError::invalid("entity", m))?;
                    e.record.entity.team.clone()
                }
                (None, true) => {
                    return Err(ApiError::invalid(
                        "entity",
                        format!(
                            "`{identifier}` is a {} action: name the entity it acts on \
                             (`{}/IDENTIFIER`)",
                            action.operation.as_str(),
                            action.blueprint.as_deref().unwrap_or("BLUEPRINT")
                        ),
                    ))
                }
                (Some(_), false) => {
                    return Err(ApiError::invalid(
                        "entity",
                        format!("`{identifier}` is a create action: it acts on no entity"),
                    ))
                }
                (None, false) => Vec::new(),
            };
            let who = requester.who();
            if !action.permissions.run_rule().allows(&who, &entity_teams) {
                return Err(forbidden(format!(
                    "{} may not run `{identifier}`",
                    requester.name
                )));
            }
            let inputs = validate_inputs(&action, &request.inputs, cat)
                .map_err(|p| problems_error("run's input", &p))?;
            (inputs, entity_teams)
        };
        let id = gantry_store::new_id()?;
        let sealed = if inputs.secret.is_empty() {
            None
        } else {
            let plain = serde_json::to_vec(&inputs.secret).map_err(|_| ApiError::internal())?;
            let s = self.vault.seal(&inputs_binding(&id), &plain).map_err(|e| {
                tracing::error!(error = %e, "could not seal a run's inputs");
                ApiError::internal()
            })?;
            let b64 = base64::engine::general_purpose::STANDARD;
            Some(SealedInputs {
                key_id: s.key_id,
                nonce: b64.encode(s.nonce),
                ciphertext: b64.encode(s.ciphertext),
            })
        };
        let state = approval_state(&action, &requester.name, &[], &entity_teams);
        let (status, waiting_for) = match state {
            ApprovalState::Approved => (QUEUED, Vec::new()),
            ApprovalState::Waiting { missing } => (WAITING, missing),
        };
        let doc = RunDoc {
            action_version: stored.version,
            definition: stored.definition.clone(),
            requested_by: requester,
            inputs: inputs.plain.clone(),
            secret_inputs: inputs.secret.keys().cloned().collect(),
            sealed,
            decisions: Vec::new(),
            waiting_for,
            links: Vec::new(),
            summary: None,
            entities: Vec::new(),
            error: None,
            rerun_of: request.rerun_of.clone(),
            report_token: None,
            webhook: None,
            started_at: None,
            finished_at: None,
        };
        let now = Utc::now();
        let row = ActionRunRow {
            id: id.clone(),
            action: identifier.to_owned(),
            entity: request.entity.clone(),
            requested_by: doc.requested_by.name.clone(),
            status: status.to_owned(),
            workflow_run: None,
            deadline_at: None,
            created_at: now,
            updated_at: now,
            version: 1,
            doc: serde_json::to_value(&doc).map_err(|_| ApiError::internal())?,
        };
        let event = NewAuditEvent {
            audit: audit.clone(),
            action: if request.rerun_of.is_some() {
                "action_run.rerun".into()
            } else {
                "action_run.create".into()
            },
            resource: format!("action/{identifier}/run/{id}"),
            before: None,
            after: Some(run_json(&row)),
        };
        self.store.create_action_run(&row, &event).await?;
        if status == QUEUED {
            self.spawn(|me| async move { me.dispatch(id).await });
        }
        Ok(row)
    }

    /// A new run with the inputs (secret ones too) and entity of run `id`, asked for by
    /// `requester`.
    pub async fn rerun(
        &self,
        id: &str,
        requester: Requester,
        audit: &Audit,
    ) -> Result<ActionRunRow, ApiError> {
        let row = self.store.get_action_run(id).await?;
        let doc = doc_of(&row)?;
        let mut inputs = doc.inputs.clone();
        if let Some(secret) = self.open_inputs(&row.id, &doc) {
            inputs.extend(secret);
        } else if doc.sealed.is_some() {
            return Err(conflict(
                "the secret inputs of this run can no longer be opened; run the action anew",
            ));
        }
        self.request(
            &row.action,
            requester,
            RunRequest {
                entity: row.entity.clone(),
                inputs,
                rerun_of: Some(row.id.clone()),
            },
            audit,
        )
        .await
    }

    fn open_inputs(&self, id: &str, doc: &RunDoc) -> Option<Map<String, Value>> {
        let sealed = doc.sealed.as_ref()?;
        let b64 = base64::engine::general_purpose::STANDARD;
        let sealed = Sealed {
            key_id: sealed.key_id.clone(),
            nonce: b64.decode(&sealed.nonce).ok()?,
            ciphertext: b64.decode(&sealed.ciphertext).ok()?,
        };
        let plain = self.vault.open(&inputs_binding(id), &sealed).ok()?;
        serde_json::from_slice(&plain).ok()
    }

    /// Reads run `id`, lets `change` move it, and stores the change, again from a fresh read
    /// when another writer moved the run first. `change` returns `Ok(None)` to leave the run
    /// as it is.
    async fn change<T>(
        &self,
        id: &str,
        mut change: impl FnMut(
            &mut ActionRunRow,
            &mut RunDoc,
        ) -> Result<Option<(T, Option<NewAuditEvent>)>, ApiError>,
    ) -> Result<Option<(T, ActionRunRow)>, ApiError> {
        for _ in 0..ATTEMPTS {
            let mut row = self.store.get_action_run(id).await?;
            let mut doc = doc_of(&row)?;
            let was_final = is_final(&row.status);
            let Some((out, event)) = change(&mut row, &mut doc)? else {
                return Ok(None);
            };
            row.version += 1;
            row.updated_at = Utc::now();
            row.doc = serde_json::to_value(&doc).map_err(|_| ApiError::internal())?;
            match self.store.update_action_run(&row, event.as_ref()).await {
                Ok(()) => {
                    if !was_final && is_final(&row.status) {
                        if let Some(hook) = self.finished.get() {
                            hook(&row);
                        }
                    }
                    return Ok(Some((out, row)));
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(conflict(format!(
            "action run {id} kept changing; try again"
        )))
    }

    /// Approves (or, with `deny`, denies) a run waiting for approval.
    pub async fn decide(
        &self,
        id: &str,
        who: &Requester,
        approve: bool,
        reason: Option<String>,
        audit: &Audit,
    ) -> Result<ActionRunRow, ApiError> {
        let entity_teams = {
            let row = self.store.get_action_run(id).await?;
            self.entity_teams(&row).await?
        };
        let changed = self
            .change(id, |row, doc| {
                if row.status != WAITING {
                    return Err(conflict(format!(
                        "action run {id} is {}, not waiting for approval",
                        row.status
                    )));
                }
                let action = action_of(&doc.definition).map_err(|e| {
                    tracing::error!(run = %id, error = %e, "an action run's definition does not read");
                    ApiError::internal()
                })?;
                if who.name.eq_ignore_ascii_case(&doc.requested_by.name) {
                    return Err(forbidden("nobody approves or denies their own run"));
                }
                if !action
                    .permissions
                    .approve_rule()
                    .allows(&who.who(), &entity_teams)
                {
                    return Err(forbidden(format!(
                        "{} may not approve or deny runs of `{}`",
                        who.name, row.action
                    )));
                }
                let before = json!({"status": row.status});
                doc.decisions.push(Decision {
                    by: who.name.clone(),
                    teams: who.teams.clone(),
                    role: who.role,
                    decision: if approve { "approved" } else { "denied" }.into(),
                    reason: reason.clone(),
                    at: Utc::now(),
                });
                if approve {
                    let approvals: Vec<Who> = doc
                        .decisions
                        .iter()
                        .filter(|d| d.decision == "approved")
                        .map(|d| Who {
                            email: d.by.clone(),
                            teams: d.teams.clone(),
                            role: d.role,
                        })
                        .collect();
                    match approval_state(
                        &action,
                        &doc.requested_by.name,
                        &approvals,
                        &entity_teams,
                    ) {
                        ApprovalState::Approved => {
                            row.status = QUEUED.into();
                            doc.waiting_for.clear();
                        }
                        ApprovalState::Waiting { missing } => doc.waiting_for = missing,
                    }
                } else {
                    row.status = CANCELLED.into();
                    doc.waiting_for.clear();
                    doc.error = Some(format!(
                        "denied by {}: {}",
                        who.name,
                        reason.as_deref().unwrap_or("")
                    ));
                    doc.finished_at = Some(Utc::now());
                }
                let event = NewAuditEvent {
                    audit: audit.clone(),
                    action: if approve {
                        "action_run.approve"
                    } else {
                        "action_run.deny"
                    }
                    .into(),
                    resource: format!("action/{}/run/{id}", row.action),
                    before: Some(before),
                    after: Some(json!({"status": row.status, "reason": reason})),
                };
                Ok(Some((row.status.clone(), Some(event))))
            })
            .await?;
        let Some((status, row)) = changed else {
            return Err(ApiError::internal());
        };
        if status == QUEUED {
            let id = id.to_owned();
            self.spawn(|me| async move { me.dispatch(id).await });
        }
        Ok(row)
    }

    async fn entity_teams(&self, row: &ActionRunRow) -> Result<Vec<String>, ApiError> {
        let Some((bp, id)) = &row.entity else {
            return Ok(Vec::new());
        };
        self.catalog.sync().await?;
        let cat = self.catalog.read();
        Ok(cat
            .entity_view(bp, id)
            .map(|e| e.record.entity.team.clone())
            .unwrap_or_default())
    }

    /// Cancels a run that has not ended: one waiting or queued ends at once; a running
    /// workflow run is cancelled and the action run ends with it.
    pub async fn cancel(&self, id: &str, audit: &Audit) -> Result<ActionRunRow, ApiError> {
        // A running workflow run is cancelled and its end ends this run: nothing to write.
        let mut running: Option<(ActionRunRow, String)> = None;
        let changed = self
            .change(id, |row, doc| {
                if is_final(&row.status) {
                    return Err(conflict(format!(
                        "action run {id} has ended ({})",
                        row.status
                    )));
                }
                if let (RUNNING, Some(run)) = (row.status.as_str(), &row.workflow_run) {
                    running = Some((row.clone(), run.clone()));
                    return Ok(None);
                }
                let before = json!({"status": row.status});
                row.status = CANCELLED.into();
                row.deadline_at = None;
                doc.error = Some(format!("cancelled by {}", audit.actor.name));
                doc.finished_at = Some(Utc::now());
                let event = NewAuditEvent {
                    audit: audit.clone(),
                    action: "action_run.cancel".into(),
                    resource: format!("action/{}/run/{id}", row.action),
                    before: Some(before),
                    after: Some(json!({"status": CANCELLED})),
                };
                Ok(Some(((), Some(event))))
            })
            .await?;
        if let Some(((), row)) = changed {
            return Ok(row);
        }
        let Some((row, run)) = running else {
            return Err(ApiError::internal());
        };
        if let Some(handle) = self.runs.registry().get(&run) {
            handle.cancel();
        }
        self.store
            .append_audit(&NewAuditEvent {
                audit: audit.clone(),
                action: "action_run.cancel".into(),
                resource: format!("action/{}/run/{id}", row.action),
                before: Some(json!({"status": RUNNING})),
                after: Some(json!({"status": "cancelling", "workflowRun": run})),
            })
            .await?;
        Ok(row)
    }

    /// Moves a run to its end (unless it has ended already), recording why.
    async fn end(&self, id: &str, status: &str, error: Option<String>, outputs: Report) {
        let result = self
            .change(id, |row, doc| {
                if is_final(&row.status) {
                    return Ok(None);
                }
                row.status = status.to_owned();
                row.deadline_at = None;
                if error.is_some() {
                    doc.error = error.clone();
                }
                doc.finished_at = Some(Utc::now());
                if let Some(s) = &outputs.summary {
                    doc.summary = Some(s.clone());
                }
                doc.links.extend(outputs.links.iter().cloned());
                Ok(Some(((), None)))
            })
            .await;
        if let Err(e) = result {
            tracing::error!(run = id, error = %e.message, "could not record an action run's end");
        }
    }

    /// Starts a queued run's invocation.
    pub async fn dispatch(self: Arc<Self>, id: String) {
        let Ok(row) = self.store.get_action_run(&id).await else {
            return;
        };
        if row.status != QUEUED {
            return;
        }
        let fail = |message: String| {
            let me = self.clone();
            let id = id.clone();
            async move { me.end(&id, FAILED, Some(message), Report::default()).await }
        };
        let Ok(doc) = doc_of(&row) else {
            return fail("the run's document does not read".into()).await;
        };
        let action = match action_of(&doc.definition) {
            Ok(a) => a,
            Err(e) => return fail(e).await,
        };
        let secret = match (&doc.sealed, self.open_inputs(&id, &doc)) {
            (Some(_), None) => {
                return fail("the run's secret inputs could not be opened".into()).await
            }
            (_, s) => s.unwrap_or_default(),
        };
        let inputs = ValidatedInputs {
            plain: doc.inputs.clone(),
            secret,
        };
        let entity = match &row.entity {
            Some((bp, eid)) => {
                let _ = self.catalog.sync().await;
                let found = self
                    .catalog
                    .read()
                    .entity_view(bp, eid)
                    .map(|e| e.to_json());
                match found {
                    Some(e) => Some(e),
                    None => return fail(format!("entity `{bp}/{eid}` no longer exists")).await,
                }
            }
            None => None,
        };
        let templates = match ParameterTemplates::parse(&action.invocation.parameters) {
            Ok(t) => t,
            Err(p) => {
                return fail(format!(
                    "the action's parameters do not read: {}",
                    p.first().map(|p| p.to_string()).unwrap_or_default()
                ))
                .await
            }
        };
        let who = doc.requested_by.who();
        let rendered = templates.render(&TemplateContext {
            inputs: &inputs,
            entity: entity.as_ref(),
            user: &who,
            user_name: &doc.requested_by.name,
            run_id: &id,
            action: &row.action,
        });
        let rendered = match rendered {
            Ok(r) => r,
            Err(p) => {
                return fail(format!(
                    "the action's parameters could not be made: {}",
                    p.iter()
                        .map(|p| p.to_string())
                        .collect::<Vec<_>>()
                        .join("; ")
                ))
                .await
            }
        };
        if let Some(workflow) = &action.invocation.workflow {
            if let Some(name) = rendered.secret.first() {
                return fail(format!(
                    "parameter `{name}` is made from a secret input, and workflow run \
                     parameters are stored in plain"
                ))
                .await;
            }
            self.start_workflow(&id, &doc, workflow, rendered.values)
                .await;
        } else if let Some(webhook) = &action.invocation.webhook {
            let body = json!({
                "id": id,
                "action": row.action,
                "entity": entity,
                "inputs": inputs.plain.iter().chain(inputs.secret.iter()).map(|(k, v)| (k.clone(), v.clone())).collect::<Map<_, _>>(),
                "parameters": rendered.values,
                "user": {"name": doc.requested_by.name, "teams": doc.requested_by.teams, "role": doc.requested_by.role},
            });
            self.call_webhook(&id, &row.action, webhook, body).await;
        } else {
            fail("the action invokes neither a workflow nor a webhook".into()).await;
        }
    }

    async fn start_workflow(
        self: &Arc<Self>,
        id: &str,
        doc: &RunDoc,
        workflow: &str,
        parameters: Map<String, Value>,
    ) {
        // Claims the run first, so two dispatches never start two workflow runs.
        let claimed = self
            .change(id, |row, doc| {
                if row.status != QUEUED {
                    return Ok(None);
                }
                row.status = RUNNING.into();
                doc.started_at = Some(Utc::now());
                Ok(Some(((), None)))
            })
            .await;
        if !matches!(claimed, Ok(Some(_))) {
            return;
        }
        let me = Arc::downgrade(self);
        let action_run = id.to_owned();
        let then: crate::runs::RunEnd = Box::new(move |record: Arc<RunRecord>| {
            if let Some(me) = me.upgrade() {
                tokio::spawn(async move { me.workflow_ended(&action_run, &record).await });
            }
        });
        let started = self
            .runs
            .start_then(
                workflow,
                parameters,
                RunOrigin::Manual,
                doc.requested_by.audit(id),
                Some(then),
            )
            .await;
        match started {
            Ok(run) => {
                let recorded = self
                    .change(id, |row, _| {
                        row.workflow_run = Some(run.clone());
                        Ok(Some(((), None)))
                    })
                    .await;
                if let Err(e) = recorded {
                    tracing::error!(run = id, error = %e.message, "could not record an action run's workflow run");
                }
            }
            Err(e) => {
                self.end(
                    id,
                    FAILED,
                    Some(format!("workflow `{workflow}` did not start: {e}")),
                    Report::default(),
                )
                .await
            }
        }
    }

    /// A workflow run of an action run ended: its outputs report links, a summary and
    /// entities; its state is the action run's.
    async fn workflow_ended(&self, id: &str, record: &RunRecord) {
        // The workflow run's id is recorded right after it starts; a run that ends sooner
        // waits for that here.
        for _ in 0..50 {
            match self.store.get_action_run(id).await {
                Ok(row) if row.workflow_run.is_some() => break,
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        let outputs: Vec<(&str, &str, &Value)> = record
            .steps
            .iter()
            .flat_map(|s| {
                s.outputs
                    .iter()
                    .map(move |o| (s.name.as_str(), o.name.as_str(), &o.value))
            })
            .collect();
        let status = match record.state {
            RunState::Succeeded => SUCCEEDED,
            RunState::Cancelled => CANCELLED,
            _ => FAILED,
        };
        self.outputs_ended(id, &outputs, status, record.reason.clone())
            .await;
    }

    /// Ends a workflow-invoked run with its workflow run: `outputs` (step, name, value) report
    /// links, a summary and entities; `status` is the workflow run's end.
    async fn outputs_ended(
        &self,
        id: &str,
        outputs: &[(&str, &str, &Value)],
        status: &str,
        reason: Option<String>,
    ) {
        let mut report = Report::default();
        let mut problems = Vec::new();
        for (step, name, raw) in outputs {
            let value = match raw {
                Value::String(s) => serde_json::from_str(s).unwrap_or((*raw).clone()),
                v => (*v).clone(),
            };
            match *name {
                "summary" => {
                    report.summary = Some(match raw {
                        Value::String(s) => s.clone(),
                        v => v.to_string(),
                    })
                }
                "link" | "links" => {
                    let list = match value {
                        Value::Array(a) => a,
                        v => vec![v],
                    };
                    for l in list {
                        match serde_json::from_value::<Link>(l) {
                            Ok(l) => report.links.push(l),
                            Err(e) => problems.push(format!(
                                "step `{step}` output `{name}` is not a link {{title, url}}: {e}"
                            )),
                        }
                    }
                }
                "entity" | "entities" => match value {
                    Value::Array(a) => report.entities.extend(a),
                    v => report.entities.push(v),
                },
                _ => {}
            }
        }
        if !report.entities.is_empty() {
            if let Err(e) = self.write_entities(id, &report.entities).await {
                problems.push(e);
            }
        }
        let mut error = match status {
            SUCCEEDED => None,
            CANCELLED => reason,
            _ => Some(reason.unwrap_or_else(|| "the workflow run failed".to_owned())),
        };
        let status = if problems.is_empty() {
            status
        } else {
            error = Some(problems.join("; "));
            FAILED
        };
        self.end(id, status, error, report).await;
    }

    /// Follows a workflow run this server did not start (it was resumed after a restart)
    /// through the store, and ends action run `id` with it.
    async fn follow(self: Arc<Self>, id: String, workflow_run: String) {
        use gantry_store::RunStatus as S;
        loop {
            let run = match self.store.get_run(&workflow_run).await {
                Ok(r) => r,
                Err(StoreError::NotFound(_)) => {
                    let message = format!("workflow run {workflow_run} is gone");
                    return self
                        .end(&id, FAILED, Some(message), Report::default())
                        .await;
                }
                Err(e) => {
                    tracing::warn!(run = %id, error = %e, "could not read a workflow run");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let status = match run.summary.status {
                S::Queued | S::Running => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                S::Succeeded => SUCCEEDED,
                S::Cancelled => CANCELLED,
                S::Failed | S::TimedOut => FAILED,
            };
            let outputs: Vec<(&str, &str, &Value)> = run
                .outputs
                .iter()
                .map(|o| (o.step.as_str(), o.name.as_str(), &o.value))
                .collect();
            return self
                .outputs_ended(&id, &outputs, status, run.summary.reason.clone())
                .await;
        }
    }

    /// Writes entities a run reported to the catalog and links them to the run.
    async fn write_entities(&self, id: &str, docs: &[Value]) -> Result<(), String> {
        if docs.len() > REPORT_MAX {
            return Err(format!("at most {REPORT_MAX} entities per report"));
        }
        let row = self
            .store
            .get_action_run(id)
            .await
            .map_err(|e| e.to_string())?;
        let doc = doc_of(&row).map_err(|e| e.message)?;
        let mut entities = Vec::new();
        for (i, d) in docs.iter().enumerate() {
            // A document as written in a definition file names its kind; only entities fit.
            let mut d = d.clone();
            if let Some(o) = d.as_object_mut() {
                match o.get("kind") {
                    Some(Value::String(k)) if k == "Entity" => {
                        o.remove("kind");
                    }
                    Some(k) => {
                        return Err(format!(
                            "entities[{i}] is a document of kind {k}; a run reports entities \
                             (`kind: Entity` or no kind)"
                        ))
                    }
                    None => {}
                }
            }
            let e: Entity = serde_path_to_error::deserialize(d).map_err(|e| {
                format!(
                    "entities[{i}] is not an entity: {} at {}",
                    e.inner(),
                    e.path()
                )
            })?;
            entities.push(e);
        }
        let source = Source::Automation(format!("action/{}", row.action));
        let audit = doc.requested_by.audit(id);
        let ctx = WriteContext {
            source: &source,
            actor: &doc.requested_by.name,
            now: Utc::now(),
            managed_by: None,
        };
        let outcomes = self
            .catalog
            .write(&audit, |cat| {
                let planned = cat.plan_entities(
                    entities.iter().map(|e| (e.clone(), Expect::Any)).collect(),
                    &[],
                    &ctx,
                );
                let mut plan = Plan::new(Vec::new());
                for (i, p) in planned.into_iter().enumerate() {
                    let p = p.map_err(|problems| {
                        format!(
                            "entities[{i}]: {}",
                            problems
                                .iter()
                                .map(|p| p.to_string())
                                .collect::<Vec<_>>()
                                .join("; ")
                        )
                    })?;
                    plan.result.push(p.outcome);
                    plan.entity(&p, false);
                }
                Ok::<_, String>(plan)
            })
            .await
            .map_err(|e| match e {
                WriteError::Refused(m) => m,
                WriteError::Store(e) => format!("the catalog write failed: {e}"),
            })?;
        let linked: Vec<LinkedEntity> = entities
            .iter()
            .zip(outcomes)
            .map(|(e, o)| LinkedEntity {
                blueprint: e.blueprint.clone(),
                identifier: e.identifier.clone(),
                change: match o {
                    Outcome::Created => "created",
                    Outcome::Unchanged => "unchanged",
                    _ => "updated",
                }
                .into(),
            })
            .collect();
        self.change(id, |_, doc| {
            for l in &linked {
                if !doc.entities.contains(l) {
                    doc.entities.push(l.clone());
                }
            }
            Ok(Some(((), None)))
        })
        .await
        .map_err(|e| e.message)?;
        Ok(())
    }

    async fn call_webhook(
        &self,
        id: &str,
        action: &str,
        webhook: &gantry_catalog::action::Webhook,
        mut body: Value,
    ) {
        let token = match (gantry_store::new_id(), gantry_store::new_id()) {
            (Ok(a), Ok(b)) => format!("gar_{a}{b}"),
            _ => {
                return self
                    .end(
                        id,
                        FAILED,
                        Some("no randomness for a report token".into()),
                        Report::default(),
                    )
                    .await
            }
        };
        let secret = match &webhook.secret {
            None => None,
            Some(s) => match self
                .store
                .get_sealed(SealedKind::Secret, &action_secret_scope(action), &s.name)
                .await
            {
                Ok(v) => {
                    let sealed = Sealed {
                        key_id: v.key_id,
                        nonce: v.nonce,
                        ciphertext: v.ciphertext,
                    };
                    match self.vault.open(&action_secret_binding(action, &s.name), &sealed) {
                        Ok(plain) => Some(plain),
                        Err(_) => {
                            return self
                                .end(id, FAILED, Some(format!("the webhook secret `{}` could not be opened", s.name)), Report::default())
                                .await
                        }
                    }
                }
                Err(_) => {
                    return self
                        .end(
                            id,
                            FAILED,
                            Some(format!(
                                "the webhook secret `{}` is not set: set it with PUT /api/v1/actions/{action}/secrets/{}",
                                s.name, s.name
                            )),
                            Report::default(),
                        )
                        .await
                }
            },
        };
        let deadline = Utc::now()
            + chrono::Duration::from_std(webhook.timeout() + webhook.report_timeout())
                .unwrap_or(chrono::Duration::hours(1));
        let shown = shown_url(&webhook.url);
        let hash = crate::apikey::digest(&token);
        let claimed = self
            .change(id, |row, doc| {
                if row.status != QUEUED {
                    return Ok(None);
                }
                row.status = RUNNING.into();
                row.deadline_at = Some(deadline);
                doc.started_at = Some(Utc::now());
                doc.report_token = Some(hash.clone());
                doc.webhook = Some(json!({"url": shown}));
                Ok(Some(((), None)))
            })
            .await;
        if !matches!(claimed, Ok(Some(_))) {
            return;
        }
        self.watch(id.to_owned(), deadline, webhook.report_timeout());
        body["report"] = json!({
            "url": format!("{}/api/action-runs/{id}/report", self.public_url),
            "token": token,
        });
        let bytes = body.to_string().into_bytes();
        let mut request = self
            .http
            .post(&webhook.url)
            .timeout(webhook.timeout())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("x-gantry-action-run", id);
        if let Some(secret) = &secret {
            let signature = gantry_catalog::action::sign(secret, Utc::now().timestamp(), &bytes);
            request = request.header(SIGNATURE_HEADER, signature);
        }
        let answer = request.body(bytes).send().await;
        let failure = match answer {
            Err(e) if e.is_timeout() => Some(format!(
                "the webhook receiver at {shown} did not answer within {} s",
                webhook.timeout().as_secs()
            )),
            Err(e) if e.is_connect() => Some(format!(
                "could not connect to the webhook receiver at {shown}"
            )),
            Err(_) => Some(format!(
                "the request to the webhook receiver at {shown} failed"
            )),
            Ok(r) if !r.status().is_success() => Some(format!(
                "the webhook receiver at {shown} answered {}",
                r.status()
            )),
            Ok(r) => {
                // A 2xx is what running means: no write unless the answer reports something.
                let answer: Option<Report> = r
                    .bytes()
                    .await
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok());
                if let Some(report) = answer {
                    if let Err(e) = self.apply_report(id, report).await {
                        tracing::warn!(run = id, error = %e.message, "a webhook answer's report was refused");
                    }
                }
                None
            }
        };
        if let Some(message) = failure {
            self.end(id, FAILED, Some(message), Report::default()).await;
        }
    }

    /// Fails a webhook run still running at its deadline.
    fn watch(&self, id: String, deadline: DateTime<Utc>, report_timeout: Duration) {
        {
            let mut watched = self.watched.lock().unwrap_or_else(PoisonError::into_inner);
            if watched.insert(id.clone(), ()).is_some() {
                return;
            }
        }
        self.spawn(|me| async move {
            let wait = (deadline - Utc::now()).to_std().unwrap_or_default();
            tokio::time::sleep(wait).await;
            me.watched
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&id);
            let Ok(row) = me.store.get_action_run(&id).await else {
                return;
            };
            if row.status == RUNNING && row.deadline_at.is_some_and(|d| d <= Utc::now()) {
                let message = format!(
                    "the webhook receiver did not report the run's end within {} s",
                    report_timeout.as_secs()
                );
                me.end(&id, FAILED, Some(message), Report::default()).await;
            }
        });
    }

    /// A webhook receiver's report, authenticated by the token its request carried.
    pub async fn report(
        &self,
        id: &str,
        token: &str,
        report: Report,
    ) -> Result<ActionRunRow, ApiError> {
        let row = self.store.get_action_run(id).await.map_err(|e| match e {
            StoreError::NotFound(_) => ApiError::unauthorized("no such run, or a wrong token"),
            e => e.into(),
        })?;
        let doc = doc_of(&row)?;
        let good = doc.report_token.as_deref().is_some_and(|h| {
            crate::apikey::equal_in_constant_time(
                h.as_bytes(),
                crate::apikey::digest(token).as_bytes(),
            )
        });
        if !good {
            return Err(ApiError::unauthorized("no such run, or a wrong token"));
        }
        self.apply_report(id, report).await
    }

    async fn apply_report(&self, id: &str, report: Report) -> Result<ActionRunRow, ApiError> {
        if let Some(s) = &report.status {
            if !matches!(s.as_str(), RUNNING | SUCCEEDED | FAILED) {
                return Err(ApiError::invalid(
                    "status",
                    format!("`{s}` is not running, succeeded or failed"),
                ));
            }
        }
        if report.links.len() > REPORT_MAX || report.logs.len() > REPORT_MAX {
            return Err(ApiError::invalid(
                "logs",
                format!("at most {REPORT_MAX} links and {REPORT_MAX} log lines per report"),
            ));
        }
        let current = self.store.get_action_run(id).await?;
        if is_final(&current.status) {
            return Err(conflict(format!(
                "action run {id} has ended ({})",
                current.status
            )));
        }
        if !report.logs.is_empty() {
            let now = Utc::now();
            let lines: Vec<(DateTime<Utc>, String)> =
                report.logs.iter().map(|l| (now, l.clone())).collect();
            self.store.append_action_run_logs(id, &lines).await?;
        }
        let mut entity_error = None;
        if !report.entities.is_empty() {
            if let Err(e) = self.write_entities(id, &report.entities).await {
                entity_error = Some(e);
            }
        }
        let changed = self
            .change(id, |row, doc| {
                if is_final(&row.status) {
                    return Err(conflict(format!(
                        "action run {id} has ended ({})",
                        row.status
                    )));
                }
                doc.links.extend(report.links.iter().cloned());
                if let Some(s) = &report.summary {
                    doc.summary = Some(s.clone());
                }
                if let Some(s @ (SUCCEEDED | FAILED)) = report.status.as_deref() {
                    row.status = s.to_owned();
                    row.deadline_at = None;
                    doc.finished_at = Some(Utc::now());
                    if s == FAILED {
                        doc.error =
                            Some(report.error.clone().unwrap_or_else(|| {
                                "the webhook receiver reported a failure".into()
                            }));
                    }
                }
                Ok(Some(((), None)))
            })
            .await?;
        if let Some(e) = entity_error {
            return Err(ApiError::invalid("entities", e));
        }
        changed.map(|(_, row)| row).ok_or_else(ApiError::internal)
    }

    /// After a restart: queued runs are started, running webhook runs watched again, and
    /// running workflow-invoked runs follow their workflow run through the store (ended by
    /// the stop, or resumed because a step of it is on an agent).
    pub async fn recover(&self) -> Result<usize, StoreError> {
        let rows = self.store.action_runs_in_status(&[QUEUED, RUNNING]).await?;
        let n = rows.len();
        for row in rows {
            if row.status == QUEUED {
                let id = row.id.clone();
                self.spawn(|me| async move { me.dispatch(id).await });
                continue;
            }
            match (&row.workflow_run, row.deadline_at) {
                (Some(run), _) => {
                    let (id, run) = (row.id.clone(), run.clone());
                    self.spawn(|me| me.follow(id, run));
                }
                (None, Some(deadline)) => {
                    let action = action_of(&doc_of(&row).map(|d| d.definition).unwrap_or_default());
                    let timeout = action
                        .ok()
                        .and_then(|a| a.invocation.webhook.map(|w| w.report_timeout()))
                        .unwrap_or(Duration::from_secs(600));
                    self.watch(row.id.clone(), deadline, timeout);
                }
                (None, None) => {
                    self.end(
                        &row.id,
                        FAILED,
                        Some("the server stopped while this run was starting".into()),
                        Report::default(),
                    )
                    .await
                }
            }
        }
        Ok(n)
    }
}
