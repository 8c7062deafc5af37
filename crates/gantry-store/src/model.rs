//! The store's domain types: plain data going in and out of `Store` methods.
//!
//! Owns the shapes only. No driver type appears here, so callers never see sqlx.
//! The run and step statuses mirror `gantry-engine`'s `RunState` and `StepState` (plus `queued`,
//! a run accepted but not started); the server converts between them, the store does not
//! interpret them. Catalog records are `gantry-catalog`'s own types, stored as given.

use chrono::{DateTime, Utc};
use serde_json::Value;
use std::time::Duration;

use crate::StoreError;
use gantry_catalog::{BlueprintRecord, EntityRecord};

/// One page of a list, and the cursor of the next page when there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Opaque; pass it back as `PageRequest::after` to continue. `None` on the last page.
    pub next: Option<String>,
}

/// Where a list starts and how long a page is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub after: Option<String>,
    /// Clamped to `1..=1000`.
    pub limit: u32,
}

impl PageRequest {
    pub fn first(limit: u32) -> Self {
        PageRequest { after: None, limit }
    }

    pub fn after(cursor: impl Into<String>, limit: u32) -> Self {
        PageRequest {
            after: Some(cursor.into()),
            limit,
        }
    }

    pub(crate) fn clamped_limit(&self) -> i64 {
        i64::from(self.limit.clamp(1, 1000))
    }
}

// ---------------------------------------------------------------- workflows

/// A workflow to create or replace under `name`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewWorkflowVersion {
    pub name: String,
    /// The source as the user wrote it.
    pub yaml: String,
    /// The canonical JSON of the parsed workflow, stored as given (key order kept).
    pub canonical: String,
    pub at: DateTime<Utc>,
}

/// A workflow's current state (without its source).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowSummary {
    pub name: String,
    pub current_version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One stored version of a workflow, with its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowVersion {
    pub name: String,
    pub version: i64,
    pub yaml: String,
    pub canonical: String,
    pub created_at: DateTime<Utc>,
}

// ---------------------------------------------------------------- events

/// An event to accept durably.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub id: String,
    pub workflow: String,
    /// The trigger's name in the workflow.
    pub trigger: String,
    /// De-duplication key (`binding.key` or the event's `key`): unique per workflow and trigger.
    pub key: Option<String>,
    /// The `Idempotency-Key` of the delivery: unique per workflow.
    pub idempotency_key: Option<String>,
    pub data: Value,
    pub received_at: DateTime<Utc>,
}

/// An accepted event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: String,
    pub workflow: String,
    pub trigger: String,
    pub key: Option<String>,
    pub idempotency_key: Option<String>,
    pub data: Value,
    pub received_at: DateTime<Utc>,
    /// The run the event started, once one was created for it.
    pub run_id: Option<String>,
}

/// What inserting an event did.
#[derive(Debug, Clone, PartialEq)]
pub struct EventInsert {
    /// The new event, or the first event with the same id, idempotency key or de-duplication key.
    pub event: Event,
    /// `false` when `event` is an earlier event this one duplicates.
    pub created: bool,
}

// ---------------------------------------------------------------- runs

/// A run's status. `Queued` is the store's own; the rest are the engine's `RunState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    TimedOut,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
            RunStatus::TimedOut => "timed_out",
        }
    }

    pub fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "queued" => RunStatus::Queued,
            "running" => RunStatus::Running,
            "succeeded" => RunStatus::Succeeded,
            "failed" => RunStatus::Failed,
            "cancelled" => RunStatus::Cancelled,
            "timed_out" => RunStatus::TimedOut,
            other => {
                return Err(StoreError::Database(format!(
                    "unknown run status {other:?}"
                )))
            }
        })
    }
}

/// A step's state: the engine's `StepState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepStatus {
    Pending,
    Waiting,
    Running,
    Succeeded,
    Failed,
    Skipped,
    Cancelled,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Waiting => "waiting",
            StepStatus::Running => "running",
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
            StepStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "pending" => StepStatus::Pending,
            "waiting" => StepStatus::Waiting,
            "running" => StepStatus::Running,
            "succeeded" => StepStatus::Succeeded,
            "failed" => StepStatus::Failed,
            "skipped" => StepStatus::Skipped,
            "cancelled" => StepStatus::Cancelled,
            other => {
                return Err(StoreError::Database(format!(
                    "unknown step state {other:?}"
                )))
            }
        })
    }
}

/// What started a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOrigin {
    /// The API or the CLI.
    Manual,
    /// The accepted event with this id. At most one run per event.
    Event(String),
}

/// A run to create, in status `queued`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    pub id: String,
    pub workflow: String,
    pub workflow_version: i64,
    pub parameters: Value,
    pub origin: RunOrigin,
    pub created_at: DateTime<Utc>,
    /// Who started it (a person, a trigger): the run's creation is audited as `run.start`.
    pub audit: Audit,
}

/// A change to a run's status. `None` fields keep their stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunUpdate {
    pub status: RunStatus,
    pub reason: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// A step's new state. `None` times and exit code keep their stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepChange {
    pub step: String,
    pub state: StepStatus,
    pub reason: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub exit_code: Option<i32>,
    pub at: DateTime<Utc>,
}

/// A stored step state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRow {
    pub step: String,
    pub state: StepStatus,
    pub reason: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub exit_code: Option<i32>,
    pub updated_at: DateTime<Utc>,
}

/// A step output. The store keeps sensitive values as given; masking is the caller's job.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub step: String,
    pub name: String,
    pub value: Value,
    pub sensitive: bool,
}

/// A run without its steps and outputs (what lists return).
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    pub id: String,
    pub workflow: String,
    pub workflow_version: i64,
    pub parameters: Value,
    pub origin: RunOrigin,
    pub status: RunStatus,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// A run with its steps (by name) and outputs (by step, then name).
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub summary: RunSummary,
    pub steps: Vec<StepRow>,
    pub outputs: Vec<Output>,
}

/// Which runs to list. `None` matches any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    pub workflow: Option<String>,
    pub status: Option<RunStatus>,
}

// ---------------------------------------------------------------- logs

/// A chunk of a step's output. `seq` is assigned by the producer, unique per run, step and stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogChunk {
    pub run_id: String,
    pub step: String,
    pub stream: String,
    pub seq: i64,
    pub bytes: Vec<u8>,
    pub at: DateTime<Utc>,
}

/// A stored chunk and its position, the cursor to read after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLogChunk {
    pub position: i64,
    pub chunk: LogChunk,
}

// ---------------------------------------------------------------- queue

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub id: String,
    /// Who may claim it: the claimers of this pool only (see `Store::claim`).
    pub pool: String,
    pub run_id: String,
    pub step: String,
    pub payload: Value,
    /// Not claimable before this time.
    pub available_at: DateTime<Utc>,
    /// Enqueued already claimed under this lease (one attempt), by a claimer that executes it
    /// at once: the enqueue is the claim. `None` leaves it for `Store::claim`.
    pub claimed: Option<Lease>,
}

/// A job and its lease.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: String,
    pub pool: String,
    pub run_id: String,
    pub step: String,
    pub payload: Value,
    pub available_at: DateTime<Utc>,
    pub worker: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    /// How many times it was claimed.
    pub attempts: i64,
    pub completed_at: Option<DateTime<Utc>>,
    pub result: Option<Value>,
}

/// A claim or heartbeat by `worker` at `now` (the caller's clock, so tests control time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub worker: String,
    /// How long the lease lasts from `now`.
    pub duration: Duration,
    pub now: DateTime<Utc>,
}

/// A job's end, as `Store::complete`, written through `BatchWriter`.
#[derive(Debug, Clone, PartialEq)]
pub struct JobCompletion {
    pub job_id: String,
    pub worker: String,
    pub result: Value,
    pub at: DateTime<Utc>,
}

// ---------------------------------------------------------------- secrets

/// What a sealed value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SealedKind {
    Secret,
    Connection,
}

impl SealedKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SealedKind::Secret => "secret",
            SealedKind::Connection => "connection",
        }
    }
}

/// An encrypted secret or connection. The store never sees its plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedValue {
    pub kind: SealedKind,
    /// What owns it, e.g. a workflow name.
    pub scope: String,
    pub name: String,
    pub key_id: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
    pub updated_at: DateTime<Utc>,
}

// ---------------------------------------------------------------- identities

/// A person. `role` is one of the server's role names; the store does not interpret it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    /// An argon2 PHC string; `None` for a user who signs in only through single sign-on.
    pub password_hash: Option<String>,
    pub created_at: DateTime<Utc>,
    pub disabled_at: Option<DateTime<Utc>>,
}

/// A team: owns workflows (and, later, entities and actions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    pub name: String,
    pub title: String,
    pub created_at: DateTime<Utc>,
}

/// A user's place in a team. Maintainers may change what their team owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamMember {
    pub team: String,
    pub user_id: String,
    pub maintainer: bool,
}

/// A non-person principal for automation (CI jobs, integrations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    pub id: String,
    pub name: String,
    pub role: String,
    /// The team it acts for, if any (it maintains what that team owns).
    pub team: Option<String>,
    pub created_at: DateTime<Utc>,
    pub disabled_at: Option<DateTime<Utc>>,
}

// ---------------------------------------------------------------- API keys

/// A stored API key: its hash, never the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    /// The non-secret start of the key, used to find the row.
    pub prefix: String,
    pub hash: Vec<u8>,
    pub principal: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

// ---------------------------------------------------------------- batches

/// Writes committed together in one transaction (see `BatchWriter`), applied in this order:
/// events, new runs, run updates, step changes, log chunks, schedule marks; within each kind, in
/// list order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteBatch {
    pub events: Vec<NewEvent>,
    /// As `Store::create_run`.
    pub runs: Vec<NewRun>,
    /// `(run id, update)`, as `Store::update_run`.
    pub run_updates: Vec<(String, RunUpdate)>,
    /// `(run id, change)`, as `Store::record_step`.
    pub steps: Vec<(String, StepChange)>,
    pub logs: Vec<LogChunk>,
    /// `(workflow, trigger, fire time)`, as `Store::mark_fired`.
    pub marks: Vec<(String, String, DateTime<Utc>)>,
    /// As `Store::enqueue`, after the batch's runs.
    pub jobs: Vec<NewJob>,
    /// As `Store::complete`, except that a completion whose lease is no longer held changes
    /// nothing instead of failing the batch.
    pub completions: Vec<JobCompletion>,
    /// As `Store::claim`, last in the transaction (after its enqueues and completions).
    pub claims: Vec<Claim>,
}

/// A claim written through `BatchWriter`, as `Store::claim`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub pool: String,
    pub lease: Lease,
    pub limit: u32,
}

/// What a batch answered: one `EventInsert` per event and the jobs of each claim, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchWritten {
    pub events: Vec<EventInsert>,
    pub claimed: Vec<Vec<Job>>,
}

// ---------------------------------------------------------------- triggers

/// A trigger's durable identity: the id its webhook URL carries, stable across re-applies of the
/// workflow, and the last fire time a schedule trigger accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerRecord {
    /// 128 random bits; unguessable, so `/hooks/{id}` needs no other secret.
    pub id: String,
    pub workflow: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_fire_at: Option<DateTime<Utc>>,
}

/// A push token's record. The token itself (a signed JWT naming this id) is never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushToken {
    pub id: String,
    pub workflow: String,
    pub trigger: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

// ---------------------------------------------------------------- audit log

/// What kind of principal changed something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActorKind {
    /// A person, by API key, session or single sign-on.
    User,
    /// A service account's API key.
    ServiceAccount,
    /// The admin key made at first start.
    Admin,
    /// A trigger (webhook, push, schedule) starting a run.
    Trigger,
    /// An agent reporting work.
    Agent,
    /// Gantry itself (first start, recovery).
    System,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::ServiceAccount => "service_account",
            ActorKind::Admin => "admin",
            ActorKind::Trigger => "trigger",
            ActorKind::Agent => "agent",
            ActorKind::System => "system",
        }
    }

    pub fn parse(text: &str) -> Result<Self, StoreError> {
        Ok(match text {
            "user" => ActorKind::User,
            "service_account" => ActorKind::ServiceAccount,
            "admin" => ActorKind::Admin,
            "trigger" => ActorKind::Trigger,
            "agent" => ActorKind::Agent,
            "system" => ActorKind::System,
            other => {
                return Err(StoreError::Database(format!(
                    "unknown actor kind in the audit log: {other}"
                )))
            }
        })
    }
}

/// Who changed something: `id` is stable (`user:<id>`, `service:<id>`, `admin`,
/// `trigger:<workflow>/<name>`, `system`), `name` is what people read (an email, a name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: String,
    pub name: String,
}

/// Who asks for a change, from where, and when: every mutating `Store` method takes one and
/// writes its audit event in the same transaction as the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    pub actor: Actor,
    /// The API request's id (or the id of the event that started a run).
    pub request_id: Option<String>,
    /// The caller's address.
    pub source: Option<String>,
    pub at: DateTime<Utc>,
}

impl Audit {
    /// A change Gantry makes on its own (`what` names the part of Gantry, e.g. `first start`).
    pub fn system(what: &str, at: DateTime<Utc>) -> Audit {
        Audit {
            actor: Actor {
                kind: ActorKind::System,
                id: "system".to_owned(),
                name: what.to_owned(),
            },
            request_id: None,
            source: None,
            at,
        }
    }
}

/// An audit event to append on its own (a decision such as an approval, a failed login):
/// changes through the other `Store` methods write theirs themselves.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEvent {
    pub audit: Audit,
    /// `<kind>.<verb>`, e.g. `run.cancel`, `login.failed`.
    pub action: String,
    /// A path such as `workflow/deploy` or `run/<id>/step/approve`.
    pub resource: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// One event of the audit log, as stored. Never holds a secret value.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    /// Its place in the log: later events have larger numbers.
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: Actor,
    pub action: String,
    pub resource: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub request_id: Option<String>,
    pub source: Option<String>,
}

/// Which audit events to list, newest first. Every field narrows the list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// This resource and everything under it (`workflow/deploy` also finds
    /// `workflow/deploy/secret/token`).
    pub resource: Option<String>,
    /// An actor's id (`user:<id>`) or name (an email).
    pub actor: Option<String>,
    /// An action (`workflow.put`) or every action of a kind (`workflow`).
    pub action: Option<String>,
    /// At or after.
    pub since: Option<DateTime<Utc>>,
    /// Before.
    pub until: Option<DateTime<Utc>>,
}

// ---------------------------------------------------------------- web sessions

/// A signed-in browser: the cookie holds `<id>.<secret>`, the store only the secret's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: String,
    /// SHA-256 of the secret, in hex.
    pub hash: String,
    pub user_id: String,
    /// How the user signed in: `password` or `oidc`.
    pub via: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

// ---------------------------------------------------------------- software catalog

/// One change of a catalog write. A put stores its record as given (`record.version` is the new
/// version the caller computed); `expected_version` is the version the stored row must have
/// (`None`: there must be none). A delete names the version it deletes.
/// `action`, `before` and `after` make the change's audit event.
// Unboxed so callers build changes by value; a write of 5,000 holds about 4 MB of them.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum CatalogChange {
    PutBlueprint {
        record: BlueprintRecord,
        expected_version: Option<i64>,
        action: String,
        before: Option<Value>,
        after: Value,
    },
    /// Deletes the blueprint only: its entities are deleted by `DeleteEntity` changes of the
    /// same write, earlier in it.
    DeleteBlueprint {
        identifier: String,
        expected_version: i64,
        action: String,
        before: Value,
    },
    PutEntity {
        record: EntityRecord,
        expected_version: Option<i64>,
        action: String,
        before: Option<Value>,
        after: Value,
    },
    DeleteEntity {
        blueprint: String,
        identifier: String,
        expected_version: i64,
        action: String,
        before: Value,
    },
}

/// Catalog changes committed together, in order, all audited as done by `audit`.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogWrite {
    pub changes: Vec<CatalogChange>,
    pub audit: Audit,
}

/// What changed in the catalog after a seq (see `Store::catalog_changes`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CatalogChanges {
    /// The catalog clock when this was read: pass it as `since` next time.
    pub seq: i64,
    /// Blueprints written after `since`, by identifier.
    pub blueprints: Vec<BlueprintRecord>,
    /// Entities written after `since`, by blueprint and identifier.
    pub entities: Vec<EntityRecord>,
    /// Blueprints deleted after `since` and not re-created, by identifier.
    pub deleted_blueprints: Vec<String>,
    /// `(blueprint, identifier)` of entities deleted after `since` and not re-created, in order.
    pub deleted_entities: Vec<(String, String)>,
}

// ---------------------------------------------------------------- self-service actions

/// An action definition as stored: its JSON (`definition`, what the server reads into
/// `gantry_catalog::Action`) and who wrote it when. `version` is 1 for a new action, one more
/// for each change.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAction {
    pub identifier: String,
    pub definition: Value,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_by: String,
    /// The definition-file source that declared it.
    pub managed_by: Option<String>,
}

/// A run of an action: the columns lists filter on, and the server's document of the run
/// (which the store keeps as given and never reads).
#[derive(Debug, Clone, PartialEq)]
pub struct ActionRunRow {
    pub id: String,
    pub action: String,
    /// `(blueprint, identifier)` of the entity it acts on.
    pub entity: Option<(String, String)>,
    /// The actor id of who asked for it.
    pub requested_by: String,
    pub status: String,
    /// The workflow run it started, if any.
    pub workflow_run: Option<String>,
    /// When it fails unless it has ended (a webhook receiver that never reports).
    pub deadline_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// 1 when created; each update stores one more than the version it expects.
    pub version: i64,
    pub doc: Value,
}

/// Which action runs to list, newest first. Every field narrows the list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActionRunFilter {
    pub action: Option<String>,
    pub entity: Option<(String, String)>,
    pub requested_by: Option<String>,
    pub status: Option<String>,
}

/// A line of an action run's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRunLog {
    /// From 1, in order of appending.
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub line: String,
}
