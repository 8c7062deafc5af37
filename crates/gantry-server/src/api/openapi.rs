//! The OpenAPI 3.1 document of `/api/v1`, served at `GET /api/v1/openapi.json`.
//!
//! The router and the document come from one table, [`RouteTable`]: a route joins it only with
//! a handler that carries a `#[utoipa::path]` annotation (its method, path, parameters, bodies
//! and statuses), so no route is served undocumented. The schemas below describe the JSON that
//! the handlers write by hand with `json!` (serde stays at the edge, see STYLE.md); a change to
//! a response body must change its schema here too, and the tests compare real responses with
//! them.
//!
//! The document itself needs no API key: it tells a client how to authenticate, and says
//! nothing that the routes do not already answer to anyone who asks (Port and Backstage serve
//! theirs openly too).
//!
//! This module owns every use of utoipa-axum (pre-1.0), so its upgrade touches this file and
//! the `routes!` lines in `api/mod.rs`. It must not hold API behaviour. Concurrency: the
//! document is built once per router and shared read-only behind an `Arc`.
#![allow(dead_code)] // The schema types only describe bodies; no code builds or reads them.

use std::sync::Arc;

use axum::{Extension, Json, Router};
use serde_json::Value;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{self, ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
pub(crate) use utoipa_axum::routes;

use super::ApiState;

/// Where the routes are mounted; the document's paths include it.
const PREFIX: &str = "/api/v1";

/// The API-key routes with their operations. It has no way to add an undocumented route.
pub(crate) struct RouteTable(OpenApiRouter<ApiState>);

impl RouteTable {
    pub(crate) fn new() -> Self {
        RouteTable(OpenApiRouter::new())
    }

    /// Serves and documents the handlers of one path: `routes!(module::a, module::b)`.
    pub(crate) fn add(self, handlers: UtoipaMethodRouter<ApiState>) -> Self {
        RouteTable(self.0.routes(handlers))
    }

    /// The table's router (for the caller to put behind the API key), the public route of
    /// the whole document, both relative to [`PREFIX`], and the document.
    pub(crate) fn split(self) -> (Router<ApiState>, Router<ApiState>, Arc<Value>) {
        let (routes, public, doc) = self.build();
        let doc = Arc::new(doc);
        (routes, public.layer(Extension(doc.clone())), doc)
    }

    /// Like [`RouteTable::add`], with a larger body limit for these handlers (bulk writes).
    pub(crate) fn add_with_limit(
        self,
        handlers: UtoipaMethodRouter<ApiState>,
        limit: usize,
    ) -> Self {
        let (schemas, paths, method) = handlers;
        let method = method.layer(axum::extract::DefaultBodyLimit::max(limit));
        RouteTable(self.0.routes((schemas, paths, method)))
    }

    fn build(self) -> (Router<ApiState>, Router<ApiState>, Value) {
        let (routes, mut paths) = self.0.split_for_parts();
        add_common_responses(&mut paths);
        let (public, served) = OpenApiRouter::new()
            .routes(routes!(serve))
            .split_for_parts();
        let mut doc = Document::openapi();
        doc.merge(paths);
        doc.merge(served);
        (routes, public, finish(doc))
    }
}

/// The operation id of the one route served without a key: this document.
pub(crate) const PUBLIC: &str = "getOpenApiDocument";

/// The whole document as JSON, as `GET /api/v1/openapi.json` serves it.
pub fn document() -> Value {
    super::routes().build().2
}

/// This document. Public: no API key needed.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    operation_id = "getOpenApiDocument",
    security(()),
    responses((status = 200, description = "This OpenAPI document", body = Object)),
)]
pub(crate) async fn serve(Extension(doc): Extension<Arc<Value>>) -> Json<Value> {
    Json(doc.as_ref().clone())
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Gantry API",
        description = "Workflows, their runs, secrets and connections. Every route but this \
                       document needs an API key: `Authorization: Bearer gantry_<prefix>_<secret>`. \
                       Errors are `{code, message, path}` with a stable `code`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    modifiers(&ApiKeyScheme),
    security(("api_key" = [])),
    components(schemas(Error)),
    tags(
        (name = "workflows", description = "Workflow definitions and their versions"),
        (name = "runs", description = "Runs of workflows: start, read, logs, cancel, approvals"),
        (name = "secrets", description = "Per-workflow secrets; values are write-only"),
        (name = "connections", description = "Account-wide typed credentials; write-only"),
        (name = "triggers", description = "Webhook URLs, push endpoints and tokens, schedules"),
        (name = "access", description = "Users, teams, service accounts, API keys, ownership"),
        (name = "meta", description = "This document"),
    ),
)]
struct Document;

struct ApiKeyScheme;

impl Modify for ApiKeyScheme {
    fn modify(&self, doc: &mut openapi::OpenApi) {
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.bearer_format = Some("gantry_<prefix>_<secret>".to_owned());
        http.description =
            Some("An API key, made by `gantry api-key create` or at first start".to_owned());
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme("api_key", SecurityScheme::Http(http));
    }
}

/// Every route behind the key can answer 401, 403 and 500: said once here, not on each handler.
fn add_common_responses(doc: &mut openapi::OpenApi) {
    let error = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Error")))
                    .build(),
            )
            .build()
    };
    let components = doc.components.get_or_insert_with(Default::default);
    components.responses.insert(
        "Unauthorized".to_owned(),
        RefOr::T(error(
            "No valid API key: missing, malformed, unknown, revoked or expired",
        )),
    );
    components.responses.insert(
        "Forbidden".to_owned(),
        RefOr::T(error(
            "The key's role, or its teams, do not allow this (`api/permissions.rs` has each \
             route's rule)",
        )),
    );
    components.responses.insert(
        "InternalError".to_owned(),
        RefOr::T(error("The server failed; the cause is in its log")),
    );
    for item in doc.paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            for (status, name) in [
                ("401", "Unauthorized"),
                ("403", "Forbidden"),
                ("500", "InternalError"),
            ] {
                op.responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
            }
        }
    }
}

/// Mounts the paths under [`PREFIX`] and renders the document.
fn finish(mut doc: openapi::OpenApi) -> Value {
    doc.paths.paths = std::mem::take(&mut doc.paths.paths)
        .into_iter()
        .map(|(path, item)| (format!("{PREFIX}{path}"), item))
        .collect();
    // The document is plain data: it always serialises.
    serde_json::to_value(&doc).unwrap_or(Value::Null)
}

// ---------------------------------------------------------------------------------------------
// Shared parameters.

/// `Idempotency-Key`: a repeated delivery with the same key returns the first run (200).
#[derive(IntoParams)]
#[into_params(parameter_in = Header, names("Idempotency-Key"))]
pub(crate) struct IdempotencyKey(
    /// 1 to 200 characters; a retry with the same key returns the run the first one started.
    Option<String>,
);

// ---------------------------------------------------------------------------------------------
// Bodies, as the handlers write them.

/// Every error response.
#[derive(ToSchema)]
pub(crate) struct Error {
    /// Stable and `snake_case`: `unauthorized`, `forbidden`, `not_found`, `invalid_request`,
    /// `invalid_workflow`, `conflict`, `run_not_active`, `not_waiting`, `payload_too_large`,
    /// `internal_error`.
    #[schema(example = "not_found")]
    code: String,
    message: String,
    /// The request field at fault (`parameters`, `body.url`, `Idempotency-Key`), or null.
    #[schema(required = true)]
    path: Option<String>,
    /// Present with `invalid_workflow`: every diagnostic of the YAML.
    #[schema(nullable = false)]
    details: Option<InvalidWorkflowDetails>,
}

#[derive(ToSchema)]
pub(crate) struct InvalidWorkflowDetails {
    diagnostics: Vec<Diagnostic>,
}

/// A finding in workflow YAML; lines and columns are 1-based, columns count characters.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub(crate) struct Diagnostic {
    /// `error` or `warning`.
    severity: String,
    code: String,
    message: String,
    line: u32,
    column: u32,
    end_line: u32,
    end_column: u32,
    #[schema(nullable = false)]
    help: Option<String>,
}

/// A workflow as `PUT` left it: 201 for its first version, 200 for a later one.
#[derive(ToSchema)]
pub(crate) struct WorkflowSaved {
    name: String,
    version: i64,
    /// Diagnostics that are not errors.
    warnings: Vec<Diagnostic>,
}

#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub(crate) struct WorkflowSummary {
    name: String,
    /// The current version.
    version: i64,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

#[derive(ToSchema)]
pub(crate) struct WorkflowPage {
    items: Vec<WorkflowSummary>,
    /// The `after` cursor of the next page; null on the last.
    #[schema(required = true)]
    next: Option<String>,
}

/// One version of a workflow; `yaml` is there when one version is asked for.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub(crate) struct WorkflowVersion {
    name: String,
    version: i64,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(nullable = false)]
    yaml: Option<String>,
}

#[derive(ToSchema)]
pub(crate) struct WorkflowVersionPage {
    items: Vec<WorkflowVersion>,
    /// Always null: every version is on one page.
    #[schema(required = true)]
    next: Option<String>,
}

/// The body of a run start; Relay's `{"name": {"value": v}}` form is accepted too.
#[derive(ToSchema)]
pub(crate) struct StartRun {
    #[schema(value_type = Option<Object>, nullable = false)]
    parameters: Option<Value>,
}

/// A started run: `created` is false when an `Idempotency-Key` matched an earlier start.
#[derive(ToSchema)]
pub(crate) struct RunStarted {
    id: String,
    workflow: String,
    created: bool,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum RunStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    TimedOut,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum StepStatus {
    Pending,
    Waiting,
    Running,
    Succeeded,
    Failed,
    Skipped,
    Cancelled,
}

#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub(crate) struct RunSummary {
    id: String,
    workflow: String,
    /// The workflow version the run executes.
    version: i64,
    status: RunStatus,
    #[schema(required = true)]
    reason: Option<String>,
    #[schema(value_type = Object)]
    parameters: Value,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime, required = true)]
    started_at: Option<String>,
    #[schema(format = DateTime, required = true)]
    ended_at: Option<String>,
}

#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub(crate) struct Step {
    name: String,
    status: StepStatus,
    #[schema(required = true)]
    reason: Option<String>,
    #[schema(format = DateTime, required = true)]
    started_at: Option<String>,
    #[schema(format = DateTime, required = true)]
    ended_at: Option<String>,
    #[schema(required = true)]
    exit_code: Option<i32>,
}

/// A step output; a sensitive one's value is masked.
#[derive(ToSchema)]
pub(crate) struct Output {
    step: String,
    name: String,
    sensitive: bool,
    /// Any JSON value; `"***"` when sensitive.
    value: Value,
}

/// A run with its steps and outputs.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub(crate) struct Run {
    id: String,
    workflow: String,
    version: i64,
    status: RunStatus,
    #[schema(required = true)]
    reason: Option<String>,
    #[schema(value_type = Object)]
    parameters: Value,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime, required = true)]
    started_at: Option<String>,
    #[schema(format = DateTime, required = true)]
    ended_at: Option<String>,
    steps: Vec<Step>,
    outputs: Vec<Output>,
}

#[derive(ToSchema)]
pub(crate) struct RunPage {
    items: Vec<RunSummary>,
    #[schema(required = true)]
    next: Option<String>,
}

#[derive(ToSchema)]
pub(crate) struct LogLine {
    /// Resume after it with `?after=`.
    position: i64,
    step: String,
    /// `stdout` or `stderr`.
    stream: String,
    text: String,
    #[schema(format = DateTime)]
    at: String,
}

#[derive(ToSchema)]
pub(crate) struct LogPage {
    items: Vec<LogLine>,
    /// The position of the last line, for `?after=`; null when the page is empty.
    #[schema(required = true)]
    next: Option<i64>,
}

#[derive(ToSchema)]
pub(crate) struct Cancelling {
    id: String,
    cancelling: bool,
}

#[derive(ToSchema)]
pub(crate) struct Deny {
    /// Recorded with who denied.
    #[schema(nullable = false)]
    reason: Option<String>,
}

#[derive(ToSchema)]
pub(crate) struct Approval {
    id: String,
    step: String,
    /// `approved` or `rejected`.
    approval: String,
}

#[derive(ToSchema)]
pub(crate) struct NamePage {
    items: Vec<String>,
    /// Always null: every name is on one page.
    #[schema(required = true)]
    next: Option<String>,
}

#[derive(ToSchema)]
pub(crate) struct ConnectionName {
    #[schema(rename = "type")]
    type_: String,
    name: String,
}

#[derive(ToSchema)]
pub(crate) struct ConnectionPage {
    items: Vec<ConnectionName>,
    /// Always null: every connection is on one page.
    #[schema(required = true)]
    next: Option<String>,
}

/// One trigger of a workflow; which fields are present depends on `type`.
#[derive(ToSchema)]
#[allow(non_snake_case)]
pub(crate) struct Trigger {
    name: String,
    /// `webhook`, `push` or `schedule`.
    #[schema(rename = "type")]
    type_: String,
    /// Webhook: the URL to send events to (`/hooks/{id}`, an unguessable id).
    url: Option<String>,
    /// Webhook: the image that handles requests, or null when the JSON body is the event.
    image: Option<String>,
    /// Push: where to send events with a push token.
    endpoint: Option<String>,
    /// Push: the trigger's tokens (ids and times, never the tokens).
    tokens: Option<Vec<PushToken>>,
    /// Schedule: the cron expression.
    schedule: Option<String>,
    /// Schedule: RFC 3339.
    nextFireAt: Option<String>,
    /// Schedule: the last fire accepted, RFC 3339.
    lastFireAt: Option<String>,
}

#[derive(ToSchema)]
pub(crate) struct TriggerPage {
    items: Vec<Trigger>,
    /// Always null: every trigger is on one page.
    #[schema(required = true)]
    next: Option<String>,
}

/// A push token's record.
#[derive(ToSchema)]
#[allow(non_snake_case)]
pub(crate) struct PushToken {
    id: String,
    createdAt: String,
    #[schema(required = true)]
    revokedAt: Option<String>,
}

/// A new push token: `token` is shown in this answer only.
#[derive(ToSchema)]
#[allow(non_snake_case)]
pub(crate) struct NewPushToken {
    id: String,
    token: String,
    createdAt: String,
    #[schema(required = true)]
    revokedAt: Option<String>,
}

#[derive(ToSchema)]
pub(crate) struct PushTokenPage {
    items: Vec<PushToken>,
    /// Always null: every token is on one page.
    #[schema(required = true)]
    next: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Access: users, teams, service accounts, API keys, ownership.

/// Who a key acts for.
#[derive(ToSchema)]
pub(crate) struct Me {
    /// `user:<id>`, `service:<id>`, or `admin` (the key made at first start).
    principal: String,
    /// An email, a service account's name, or `admin`.
    name: String,
    /// `viewer`, `operator`, `approver` or `admin`.
    role: String,
    /// The teams whose workflows this principal may change.
    maintains: Vec<String>,
}

#[derive(ToSchema)]
pub(crate) struct Membership {
    /// Whether the member may change what the team owns.
    #[schema(nullable = false)]
    maintainer: Option<bool>,
}

#[derive(ToSchema)]
pub(crate) struct NewUser {
    email: String,
    /// `viewer`, `operator`, `approver` or `admin`.
    role: String,
    /// Defaults to the email.
    #[schema(nullable = false)]
    name: Option<String>,
    /// At least 12 characters, stored as an argon2id hash; leave it out for a user who signs
    /// in through single sign-on only.
    #[schema(nullable = false)]
    password: Option<String>,
}

#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub(crate) struct User {
    id: String,
    email: String,
    name: String,
    role: String,
    /// No password: the user signs in with an API key or through single sign-on.
    sso_only: bool,
    teams: Vec<UserTeam>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(required = true, format = DateTime)]
    disabled_at: Option<String>,
}

#[derive(ToSchema)]
pub(crate) struct UserTeam {
    team: String,
    maintainer: bool,
}

#[derive(ToSchema)]
pub(crate) struct UserPage {
    items: Vec<User>,
    /// Always null: every user is on one page.
    #[schema(required = true)]
    next: Option<String>,
}

#[derive(ToSchema)]
pub(crate) struct NewTeam {
    /// 1 to 100 lowercase letters, digits, `-`, `_` or `.`.
    name: String,
    /// Defaults to the name.
    #[schema(nullable = false)]
    title: Option<String>,
}

#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub(crate) struct Team {
    name: String,
    title: String,
    members: Vec<TeamMember>,
    #[schema(format = DateTime)]
    created_at: String,
}

#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub(crate) struct TeamMember {
    user_id: String,
    maintainer: bool,
}

#[derive(ToSchema)]
pub(crate) struct TeamPage {
    items: Vec<Team>,
    /// Always null: every team is on one page.
    #[schema(required = true)]
    next: Option<String>,
}

#[derive(ToSchema)]
pub(crate) struct NewServiceAccount {
    /// 1 to 100 lowercase letters, digits, `-`, `_` or `.`.
    name: String,
    /// `viewer`, `operator`, `approver` or `admin`.
    role: String,
    /// The team it acts for: it may change what that team owns.
    #[schema(nullable = false)]
    team: Option<String>,
}

#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub(crate) struct ServiceAccount {
    id: String,
    name: String,
    role: String,
    #[schema(required = true)]
    team: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(required = true, format = DateTime)]
    disabled_at: Option<String>,
}

#[derive(ToSchema)]
pub(crate) struct ServiceAccountPage {
    items: Vec<ServiceAccount>,
    /// Always null: every service account is on one page.
    #[schema(required = true)]
    next: Option<String>,
}

/// Exactly one of `user` and `serviceAccount`.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub(crate) struct NewApiKey {
    /// A user's email.
    #[schema(nullable = false)]
    user: Option<String>,
    /// A service account's name.
    #[schema(nullable = false)]
    service_account: Option<String>,
    /// `30d`, `12h`, `90m`, `2w`; no expiry when absent.
    #[schema(nullable = false)]
    expires_in: Option<String>,
}

/// A key's record; never the key.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub(crate) struct ApiKey {
    id: String,
    /// The start of the key (`gantry_<prefix>`), to recognise it.
    prefix: String,
    /// `user:<id>`, `service:<id>` or `admin`.
    principal: String,
    #[schema(format = DateTime)]
    created_at: String,
    /// Recorded at most once a minute.
    #[schema(required = true, format = DateTime)]
    last_used_at: Option<String>,
    #[schema(required = true, format = DateTime)]
    expires_at: Option<String>,
    #[schema(required = true, format = DateTime)]
    revoked_at: Option<String>,
}

/// A new agent token for a pool.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub(crate) struct NewAgentToken {
    /// The agent pool: 1 to 100 lowercase letters, digits, `-`, `_` or `.`.
    pool: String,
    /// `30d`, `12h`, `90m`, `2w` from now; never, when absent.
    #[schema(nullable = false)]
    expires_in: Option<String>,
}

/// A new key: `key` is in this answer only.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub(crate) struct ApiKeyCreated {
    id: String,
    key: String,
    prefix: String,
    principal: String,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(required = true, format = DateTime)]
    expires_at: Option<String>,
}

#[derive(ToSchema)]
pub(crate) struct ApiKeyPage {
    items: Vec<ApiKey>,
    /// Always null: every key is on one page.
    #[schema(required = true)]
    next: Option<String>,
}

/// The team that owns a workflow; null for none.
#[derive(ToSchema)]
pub(crate) struct Owner {
    #[schema(required = true)]
    team: Option<String>,
}

#[derive(ToSchema)]
pub(crate) struct AuditActor {
    /// `user`, `service_account`, `admin`, `trigger`, `agent` or `system`.
    kind: String,
    id: String,
    name: String,
}

/// One change: who, what, when, from where; `before` and `after` never hold a secret value.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub(crate) struct AuditEvent {
    /// The event's place in the log; later events have larger numbers.
    seq: i64,
    #[schema(format = DateTime)]
    at: String,
    actor: AuditActor,
    /// `<kind>.<verb>`, e.g. `workflow.put`, `run.start`, `login.failed`.
    action: String,
    /// A path such as `workflow/deploy` or `run/<id>`.
    resource: String,
    #[schema(required = true, value_type = Option<Object>)]
    before: Option<serde_json::Value>,
    #[schema(required = true, value_type = Option<Object>)]
    after: Option<serde_json::Value>,
    #[schema(required = true)]
    request_id: Option<String>,
    #[schema(required = true)]
    source: Option<String>,
}

#[derive(ToSchema)]
pub(crate) struct AuditPage {
    items: Vec<AuditEvent>,
    /// The `after` cursor of the next page; null on the last.
    #[schema(required = true)]
    next: Option<String>,
}

/// Any JSON object (a blueprint or an entity as documented in ARCHITECTURE.md and README.md).
#[derive(ToSchema)]
#[schema(value_type = Object)]
pub(crate) struct Object(serde_json::Map<String, Value>);

#[derive(ToSchema)]
pub(crate) struct BlueprintList {
    #[schema(value_type = Vec<Object>)]
    items: Vec<Value>,
}

/// One page of entities, the count of all matches, and facet counts.
#[derive(ToSchema)]
pub(crate) struct EntityPage {
    #[schema(value_type = Vec<Object>)]
    items: Vec<Value>,
    total: u64,
    /// Field → value → count (`null` counts entities without one).
    #[schema(value_type = Object)]
    facets: Value,
    /// The `after` cursor of the next page; null on the last.
    #[schema(required = true)]
    next: Option<String>,
}

/// The versions of a blueprint or an entity, newest first.
#[derive(ToSchema)]
pub(crate) struct History {
    #[schema(value_type = Vec<Object>)]
    items: Vec<Value>,
}

/// What changed between two versions, path by path.
#[derive(ToSchema)]
pub(crate) struct Diff {
    from: i64,
    to: i64,
    #[schema(value_type = Vec<Object>)]
    changes: Vec<Value>,
}

/// A result per entity, in the order sent: `status` is created, updated, unchanged or error
/// (with `problems`).
#[derive(ToSchema)]
pub(crate) struct BulkResult {
    #[schema(value_type = Vec<Object>)]
    results: Vec<Value>,
    failed: u64,
}

/// What an apply changed (or would change with `dryRun`).
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub(crate) struct ApplyResult {
    dry_run: bool,
    created: u64,
    updated: u64,
    unchanged: u64,
    deleted: u64,
    /// `{kind, key, outcome, diff}` per document and per pruned record.
    #[schema(value_type = Vec<Object>)]
    changes: Vec<Value>,
}
