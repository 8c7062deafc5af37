//! Durable storage for Gantry: workflows and their versions, accepted events, runs with their
//! step states and outputs, log chunks, the job queue, sealed secrets and connections, API keys,
//! and the software catalog (blueprints and entities, versioned, with a change clock).
//!
//! What it owns: the `Store` trait, its domain types (`model`), two backends
//! (`SqliteStore`, `PostgresStore`) with their migrations, and the group-commit `BatchWriter`.
//! It is the only crate that sees `sqlx`; nothing in its public API is a driver type.
//!
//! What it must not do: business rules. It does not decide which status may follow which, whether
//! an event starts a run, or how a secret is encrypted; it stores what it is told, atomically, and
//! reports conflicts (a duplicate key, a lost lease) for the caller to act on. It reads no clock:
//! every time it stores or compares comes from the caller, so tests control time.
//!
//! Concurrency model: a `Store` is `Send + Sync` and shared as `Arc<dyn Store>`; every method is
//! one transaction. Races that matter are settled by the database, not by locks in this process:
//! unique indexes for event de-duplication and one-run-per-event, row locks with `SKIP LOCKED`
//! (PostgreSQL) or the single writer connection (SQLite) for queue claims, the catalog clock's
//! row lock for catalog writes (their seq order is their commit order). Many server processes
//! may share one PostgreSQL database; a SQLite file belongs to one process.

mod agents;
mod batch;
mod catalog;
mod error;
mod model;
mod postgres;
mod scorecards;
mod sql;
mod sqlite;

use std::future::Future;
use std::pin::Pin;

pub use agents::{AgentRecord, LogMark};
pub use batch::{BatchConfig, BatchStats, BatchWriter, Write};
pub use error::StoreError;
pub use model::*;
pub use postgres::{PostgresOptions, PostgresStore};
pub use scorecards::{
    DefinitionKind, FiringFilter, FiringRow, HistoryFilter, LevelChangeRow, ScorecardEntityRow,
    ScorecardStateWrite,
};
pub use sqlite::SqliteStore;

/// The future every `Store` method returns: boxed so the trait stays object-safe.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Everything Gantry keeps. See the crate documentation for what it must not do.
///
/// Lookups of one thing return `StoreError::NotFound` when it is absent.
///
/// Every method that changes what an actor controls (workflows, secrets, connections, push
/// tokens, identities, keys, ownership, manual and triggered runs) takes an `Audit` and appends
/// its audit event in the same transaction as the change: the change and its record commit
/// together or not at all. Bookkeeping of running work (step states, logs, jobs) is not audited.
pub trait Store: Send + Sync {
    // ------------------------------------------------------------ workflows

    /// Creates `name` or replaces its current version; returns the new version number (from 1).
    /// A deleted workflow re-created under the same name continues its numbering, so a run's
    /// `(workflow, version)` always names one source.
    fn put_workflow<'a>(
        &'a self,
        new: &'a NewWorkflowVersion,
        audit: &'a Audit,
    ) -> StoreFuture<'a, i64>;
    /// The current version of a workflow that is not deleted.
    fn get_workflow<'a>(&'a self, name: &'a str) -> StoreFuture<'a, WorkflowVersion>;
    /// Any stored version, also of a deleted workflow (run history needs it).
    fn get_workflow_version<'a>(
        &'a self,
        name: &'a str,
        version: i64,
    ) -> StoreFuture<'a, WorkflowVersion>;
    /// Workflows that are not deleted, by name.
    fn list_workflows<'a>(
        &'a self,
        page: &'a PageRequest,
    ) -> StoreFuture<'a, Page<WorkflowSummary>>;
    /// Every version of a workflow that is not deleted, oldest first.
    fn list_workflow_versions<'a>(&'a self, name: &'a str)
        -> StoreFuture<'a, Vec<WorkflowVersion>>;
    /// Marks a workflow deleted; its versions stay readable through `get_workflow_version`.
    fn delete_workflow<'a>(&'a self, name: &'a str, audit: &'a Audit) -> StoreFuture<'a, ()>;

    // ------------------------------------------------------------ events

    /// Accepts an event durably. An event with the same id, the same idempotency key (per
    /// workflow) or the same de-duplication key (per workflow and trigger) as a stored one is not
    /// stored: the first one comes back with `created: false`.
    fn insert_event<'a>(&'a self, event: &'a NewEvent) -> StoreFuture<'a, EventInsert>;
    fn get_event<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Event>;
    /// Accepted events with no run yet, oldest first (recovery after a crash).
    fn events_without_run(&self, limit: u32) -> StoreFuture<'_, Vec<Event>>;

    // ------------------------------------------------------------ runs

    /// Creates a run in status `queued`. With `RunOrigin::Event`, links the event to it in the
    /// same transaction; `Conflict` if the event already has a run, `NotFound` if it does not
    /// exist.
    fn create_run<'a>(&'a self, run: &'a NewRun) -> StoreFuture<'a, ()>;
    fn update_run<'a>(&'a self, id: &'a str, update: &'a RunUpdate) -> StoreFuture<'a, ()>;
    /// Records a step's new state (creating the step row on first use).
    fn record_step<'a>(&'a self, run_id: &'a str, change: &'a StepChange) -> StoreFuture<'a, ()>;
    /// Sets (or replaces) a step output.
    fn set_output<'a>(&'a self, run_id: &'a str, output: &'a Output) -> StoreFuture<'a, ()>;
    fn get_run<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Run>;
    /// Runs matching `filter`, newest first.
    fn list_runs<'a>(
        &'a self,
        filter: &'a RunFilter,
        page: &'a PageRequest,
    ) -> StoreFuture<'a, Page<RunSummary>>;
    /// Every run in `status`, oldest first (at start: the runs a crash left `running`).
    fn runs_in_status(&self, status: RunStatus) -> StoreFuture<'_, Vec<RunSummary>>;

    // ------------------------------------------------------------ logs

    /// Appends chunks in one transaction.
    /// A chunk whose `(run, step, stream, seq)` is already stored is skipped.
    fn append_logs<'a>(&'a self, chunks: &'a [LogChunk]) -> StoreFuture<'a, ()>;
    /// A step's chunks after `after` (a `StoredLogChunk::position`, or `None` from the start),
    /// in order.
    fn read_step_logs<'a>(
        &'a self,
        run_id: &'a str,
        step: &'a str,
        after: Option<i64>,
        limit: u32,
    ) -> StoreFuture<'a, Vec<StoredLogChunk>>;
    /// A run's chunks (all steps) after `after`, in order of storage.
    fn read_run_logs<'a>(
        &'a self,
        run_id: &'a str,
        after: Option<i64>,
        limit: u32,
    ) -> StoreFuture<'a, Vec<StoredLogChunk>>;

    // ------------------------------------------------------------ job queue

    fn enqueue<'a>(&'a self, job: &'a NewJob) -> StoreFuture<'a, ()>;
    /// Atomically leases at most `limit` jobs of `pool` that are available, not completed, and
    /// not leased (or whose lease expired at `lease.now`) to `lease.worker`, oldest
    /// `available_at` first (and in that order). An empty answer means nothing was claimable at
    /// that moment; on PostgreSQL that includes jobs other claimers hold locked right now, so
    /// callers poll again rather than conclude the queue is empty.
    fn claim<'a>(
        &'a self,
        pool: &'a str,
        lease: &'a Lease,
        limit: u32,
    ) -> StoreFuture<'a, Vec<Job>>;
    /// Extends every unexpired lease `lease.worker` holds on a job not completed to
    /// `lease.now + lease.duration`, in one statement; returns how many.
    fn renew_leases<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, u64>;
    /// Completes every job of a run not completed yet with `result`, whoever holds it: the
    /// run ended without them (it was cut off by a crash, or cancelled). Returns how many.
    fn abandon_jobs<'a>(
        &'a self,
        run_id: &'a str,
        result: &'a serde_json::Value,
        now: chrono::DateTime<chrono::Utc>,
    ) -> StoreFuture<'a, u64>;
    /// Extends `worker`'s lease to `now + duration`. `Conflict` if the lease expired or is held by
    /// another worker, `NotFound` if there is no such job.
    fn heartbeat<'a>(&'a self, job_id: &'a str, lease: &'a Lease) -> StoreFuture<'a, ()>;
    /// Completes a job with its result.
    /// `Conflict` unless `worker` holds an unexpired lease at `now`, so a second completion,
    /// or one by a worker that lost its lease, changes nothing.
    fn complete<'a>(
        &'a self,
        job_id: &'a str,
        worker: &'a str,
        result: &'a serde_json::Value,
        now: chrono::DateTime<chrono::Utc>,
    ) -> StoreFuture<'a, ()>;
    fn get_job<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Job>;
    /// A run's jobs, oldest first: which worker executed each step, and how it ended.
    fn run_jobs<'a>(&'a self, run_id: &'a str) -> StoreFuture<'a, Vec<Job>>;

    // ------------------------------------------------------------ agents and re-attachment

    /// Gives `lease.worker` its lease on job `job_id` back until `lease.now + lease.duration`,
    /// also when it has expired, as long as nobody else claimed the job and it has not ended (a
    /// restarted server re-attaches the jobs its agents kept running while it was down).
    /// `Conflict` if the job ended or another worker holds it, `NotFound` if there is none.
    fn restore_lease<'a>(&'a self, job_id: &'a str, lease: &'a Lease) -> StoreFuture<'a, ()>;
    /// The highest `seq` stored per step and stream of a run's log chunks, among those with
    /// `from <= seq < to`, by step then stream.
    fn last_log_seqs<'a>(
        &'a self,
        run_id: &'a str,
        from: i64,
        to: i64,
    ) -> StoreFuture<'a, Vec<LogMark>>;
    /// Records sightings of agents, in one transaction; a sighting older than the one stored for
    /// the same pool and id changes nothing.
    fn record_agents<'a>(&'a self, agents: &'a [AgentRecord]) -> StoreFuture<'a, ()>;
    /// Every agent recorded, by pool then id.
    fn list_agents(&self) -> StoreFuture<'_, Vec<AgentRecord>>;

    // ------------------------------------------------------------ secrets and connections

    /// Stores (or replaces) an encrypted value.
    fn put_sealed<'a>(&'a self, value: &'a SealedValue, audit: &'a Audit) -> StoreFuture<'a, ()>;
    fn get_sealed<'a>(
        &'a self,
        kind: SealedKind,
        scope: &'a str,
        name: &'a str,
    ) -> StoreFuture<'a, SealedValue>;
    /// The names in a scope, sorted.
    fn list_sealed_names<'a>(
        &'a self,
        kind: SealedKind,
        scope: &'a str,
    ) -> StoreFuture<'a, Vec<String>>;
    fn delete_sealed<'a>(
        &'a self,
        kind: SealedKind,
        scope: &'a str,
        name: &'a str,
        audit: &'a Audit,
    ) -> StoreFuture<'a, ()>;

    // ------------------------------------------------------------ triggers

    /// The record of trigger `name` of `workflow`, created with `id` and `at` if there is none
    /// yet. An existing record is returned unchanged, so re-applying a workflow keeps its URLs.
    fn ensure_trigger<'a>(
        &'a self,
        id: &'a str,
        workflow: &'a str,
        name: &'a str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> StoreFuture<'a, TriggerRecord>;
    /// The trigger whose id is `id`.
    fn find_trigger<'a>(&'a self, id: &'a str) -> StoreFuture<'a, TriggerRecord>;
    /// A workflow's trigger records, by name.
    fn list_triggers<'a>(&'a self, workflow: &'a str) -> StoreFuture<'a, Vec<TriggerRecord>>;
    /// Records that a schedule fired at `at`; an earlier time than the stored one changes
    /// nothing, so the mark only moves forward. `NotFound` if the trigger has no record.
    fn mark_fired<'a>(
        &'a self,
        workflow: &'a str,
        name: &'a str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> StoreFuture<'a, ()>;

    /// `Conflict` if the id is taken.
    fn create_push_token<'a>(
        &'a self,
        token: &'a PushToken,
        audit: &'a Audit,
    ) -> StoreFuture<'a, ()>;
    fn get_push_token<'a>(&'a self, id: &'a str) -> StoreFuture<'a, PushToken>;
    /// A trigger's tokens, oldest first (revoked ones included).
    fn list_push_tokens<'a>(
        &'a self,
        workflow: &'a str,
        trigger: &'a str,
    ) -> StoreFuture<'a, Vec<PushToken>>;
    /// Revokes a token; revoking twice keeps the first time.
    fn revoke_push_token<'a>(&'a self, id: &'a str, audit: &'a Audit) -> StoreFuture<'a, ()>;

    // ------------------------------------------------------------ identities

    /// `Conflict` if the id or the email is taken.
    fn create_user<'a>(&'a self, user: &'a User, audit: &'a Audit) -> StoreFuture<'a, ()>;
    fn get_user<'a>(&'a self, id: &'a str) -> StoreFuture<'a, User>;
    fn find_user<'a>(&'a self, email: &'a str) -> StoreFuture<'a, User>;
    /// All users, by email.
    fn list_users(&self) -> StoreFuture<'_, Vec<User>>;
    /// `Conflict` if the name is taken.
    fn create_team<'a>(&'a self, team: &'a Team, audit: &'a Audit) -> StoreFuture<'a, ()>;
    /// All teams, by name.
    fn list_teams(&self) -> StoreFuture<'_, Vec<Team>>;
    /// Adds a user to a team or changes whether they maintain it. `NotFound` for an unknown
    /// team or user.
    fn set_team_member<'a>(
        &'a self,
        member: &'a TeamMember,
        audit: &'a Audit,
    ) -> StoreFuture<'a, ()>;
    /// Removes a user from a team; `NotFound` if they were not in it.
    fn remove_team_member<'a>(
        &'a self,
        team: &'a str,
        user_id: &'a str,
        audit: &'a Audit,
    ) -> StoreFuture<'a, ()>;
    /// Every membership of every team, by team and then user id (one read for a listing).
    fn list_team_members(&self) -> StoreFuture<'_, Vec<TeamMember>>;
    /// The teams a user is in, by team name.
    fn user_teams<'a>(&'a self, user_id: &'a str) -> StoreFuture<'a, Vec<TeamMember>>;
    /// `Conflict` if the id or the name is taken; `NotFound` for an unknown team.
    fn create_service_account<'a>(
        &'a self,
        account: &'a ServiceAccount,
        audit: &'a Audit,
    ) -> StoreFuture<'a, ()>;
    fn get_service_account<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ServiceAccount>;
    fn find_service_account<'a>(&'a self, name: &'a str) -> StoreFuture<'a, ServiceAccount>;
    /// All service accounts, by name.
    fn list_service_accounts(&self) -> StoreFuture<'_, Vec<ServiceAccount>>;
    /// Sets (or, with `None`, clears) the team that owns a workflow. `NotFound` for an unknown
    /// (or deleted) workflow or team.
    fn set_workflow_owner<'a>(
        &'a self,
        workflow: &'a str,
        team: Option<&'a str>,
        audit: &'a Audit,
    ) -> StoreFuture<'a, ()>;
    /// The team that owns a workflow, if any; `NotFound` for an unknown (or deleted) workflow.
    fn workflow_owner<'a>(&'a self, workflow: &'a str) -> StoreFuture<'a, Option<String>>;

    // ------------------------------------------------------------ API keys

    /// `Conflict` if the id or the prefix is taken.
    fn create_api_key<'a>(&'a self, key: &'a ApiKey, audit: &'a Audit) -> StoreFuture<'a, ()>;
    fn find_api_key<'a>(&'a self, prefix: &'a str) -> StoreFuture<'a, ApiKey>;
    fn touch_api_key<'a>(
        &'a self,
        id: &'a str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> StoreFuture<'a, ()>;
    /// All keys, oldest first (revoked ones included).
    fn list_api_keys(&self) -> StoreFuture<'_, Vec<ApiKey>>;
    /// Revokes a key; revoking twice keeps the first time.
    fn revoke_api_key<'a>(&'a self, id: &'a str, audit: &'a Audit) -> StoreFuture<'a, ()>;

    /// Sets or clears a user's password hash (an argon2 PHC string). `NotFound` for an
    /// unknown user. The audit event says whether a password is set, never the hash.
    fn set_user_password<'a>(
        &'a self,
        user_id: &'a str,
        hash: Option<&'a str>,
        audit: &'a Audit,
    ) -> StoreFuture<'a, ()>;
    /// Changes a user's role (single sign-on keeps it in step with the provider's groups).
    fn set_user_role<'a>(
        &'a self,
        user_id: &'a str,
        role: &'a str,
        audit: &'a Audit,
    ) -> StoreFuture<'a, ()>;

    // ------------------------------------------------------------ web sessions

    /// `Conflict` if the id is taken; `NotFound` for an unknown user.
    fn create_session<'a>(&'a self, session: &'a Session, audit: &'a Audit) -> StoreFuture<'a, ()>;
    fn get_session<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Session>;
    /// Ends a session; ending it twice keeps the first time.
    fn revoke_session<'a>(&'a self, id: &'a str, audit: &'a Audit) -> StoreFuture<'a, ()>;

    // ------------------------------------------------------------ audit log

    /// Appends an event that records a decision rather than a change another method makes
    /// (an approval, a cancellation, a failed login). Returns its `seq`.
    fn append_audit<'a>(&'a self, event: &'a NewAuditEvent) -> StoreFuture<'a, i64>;
    /// Audit events matching `filter`, newest first; the cursor is the last `seq` returned.
    fn list_audit<'a>(
        &'a self,
        filter: &'a AuditFilter,
        page: &'a PageRequest,
    ) -> StoreFuture<'a, Page<AuditEvent>>;

    // ------------------------------------------------------------ software catalog

    /// Applies all changes in one transaction, after bumping the catalog clock; returns the new
    /// seq, which every row the write stores (and every tombstone of a delete) carries.
    /// Each change must find its key at the version it expects (after the changes before it in
    /// the same write): otherwise nothing is stored, not even the clock, and the error is a
    /// `Conflict` naming the first key that did not match. Each change appends its audit event
    /// (`blueprint/<identifier>` or `entity/<blueprint>/<identifier>`) in the same transaction.
    /// Empty `changes`: no transaction, returns the current seq.
    ///
    /// On PostgreSQL the clock's row lock serialises catalog writers until they commit, so seq
    /// order is commit order across every server sharing the database.
    fn write_catalog<'a>(&'a self, write: &'a CatalogWrite) -> StoreFuture<'a, i64>;
    /// Applies several writes in one transaction, as one catalog change (one seq): every
    /// change audited as its own write's. The writes must touch different records (each
    /// change's expected version is checked against the stored one, not the batch's).
    fn write_catalogs<'a>(&'a self, writes: &'a [CatalogWrite]) -> StoreFuture<'a, i64>;
    /// The catalog clock: the seq of the last committed catalog write (0 before the first).
    fn catalog_seq(&self) -> StoreFuture<'_, i64>;
    /// Everything written after `since` (0: the whole catalog), read from one snapshot: the
    /// blueprints and entities whose rows were written after it, and the keys deleted after it
    /// and not re-created since. `seq` is the clock in that snapshot: every write up to it is
    /// included, so passing it as the next `since` misses nothing.
    fn catalog_changes(&self, since: i64) -> StoreFuture<'_, CatalogChanges>;

    // ------------------------------------------------------------ self-service actions

    /// Creates or replaces an action. `expected`: the stored version it replaces (`None`:
    /// there must be none); otherwise `Conflict`. Audited as `action.create` or
    /// `action.update` on `action/<identifier>`.
    fn put_action<'a>(
        &'a self,
        action: &'a StoredAction,
        expected: Option<i64>,
        audit: &'a Audit,
    ) -> StoreFuture<'a, ()>;
    fn get_action<'a>(&'a self, identifier: &'a str) -> StoreFuture<'a, StoredAction>;
    /// Every action, by identifier.
    fn list_actions(&self) -> StoreFuture<'_, Vec<StoredAction>>;
    /// Deletes an action (its runs stay); audited as `action.delete`.
    fn delete_action<'a>(&'a self, identifier: &'a str, audit: &'a Audit) -> StoreFuture<'a, ()>;
    /// Stores a new run (`version` 1) and its audit event in one transaction; `Conflict` if
    /// the id is taken.
    fn create_action_run<'a>(
        &'a self,
        run: &'a ActionRunRow,
        event: &'a NewAuditEvent,
    ) -> StoreFuture<'a, ()>;
    /// Replaces a run whose stored version is `run.version - 1` (otherwise `Conflict`, and
    /// nothing changes), with `event` appended in the same transaction.
    fn update_action_run<'a>(
        &'a self,
        run: &'a ActionRunRow,
        event: Option<&'a NewAuditEvent>,
    ) -> StoreFuture<'a, ()>;
    fn get_action_run<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ActionRunRow>;
    /// Runs matching `filter`, newest first.
    fn list_action_runs<'a>(
        &'a self,
        filter: &'a ActionRunFilter,
        page: &'a PageRequest,
    ) -> StoreFuture<'a, Page<ActionRunRow>>;
    /// Every run in one of `statuses`, oldest first (after a restart: what is in flight).
    fn action_runs_in_status<'a>(
        &'a self,
        statuses: &'a [&'a str],
    ) -> StoreFuture<'a, Vec<ActionRunRow>>;
    /// Appends lines to a run's log, numbered on from its last line; returns the last number.
    /// `NotFound` for an unknown run.
    fn append_action_run_logs<'a>(
        &'a self,
        id: &'a str,
        lines: &'a [(chrono::DateTime<chrono::Utc>, String)],
    ) -> StoreFuture<'a, i64>;
    /// A run's log lines after `after`, in order.
    fn read_action_run_logs<'a>(
        &'a self,
        id: &'a str,
        after: i64,
        limit: u32,
    ) -> StoreFuture<'a, Vec<ActionRunLog>>;

    // ------------------------------------------------------------ definitions

    /// Creates or replaces a definition of `kind` (an action's methods above are this with
    /// `DefinitionKind::Action`). `expected`: the stored version it replaces (`None`: there
    /// must be none); otherwise `Conflict`. Audited as `<kind>.create` or `<kind>.update` on
    /// `<kind>/<identifier>`.
    fn put_definition<'a>(
        &'a self,
        kind: DefinitionKind,
        def: &'a StoredAction,
        expected: Option<i64>,
        audit: &'a Audit,
    ) -> StoreFuture<'a, ()>;
    fn get_definition<'a>(
        &'a self,
        kind: DefinitionKind,
        identifier: &'a str,
    ) -> StoreFuture<'a, StoredAction>;
    /// Every definition of `kind`, by identifier.
    fn list_definitions(&self, kind: DefinitionKind) -> StoreFuture<'_, Vec<StoredAction>>;
    /// Deletes a definition; audited as `<kind>.delete`.
    fn delete_definition<'a>(
        &'a self,
        kind: DefinitionKind,
        identifier: &'a str,
        audit: &'a Audit,
    ) -> StoreFuture<'a, ()>;

    // ------------------------------------------------------------ scorecards and automations

    /// Replaces and removes scorecard rows and appends history, in one transaction.
    fn write_scorecard_state<'a>(&'a self, write: &'a ScorecardStateWrite) -> StoreFuture<'a, ()>;
    /// Every stored row of one scorecard.
    fn load_scorecard_state<'a>(
        &'a self,
        scorecard: &'a str,
    ) -> StoreFuture<'a, Vec<ScorecardEntityRow>>;
    /// Level changes matching `filter`, newest first.
    fn scorecard_history<'a>(
        &'a self,
        filter: &'a HistoryFilter,
        limit: u32,
    ) -> StoreFuture<'a, Vec<LevelChangeRow>>;
    /// Stores firings and their audit events in one transaction.
    fn record_firings<'a>(
        &'a self,
        firings: &'a [FiringRow],
        audit: &'a [NewAuditEvent],
    ) -> StoreFuture<'a, ()>;
    /// Firings matching `filter`, newest first.
    fn list_firings<'a>(
        &'a self,
        filter: &'a FiringFilter,
        limit: u32,
    ) -> StoreFuture<'a, Vec<FiringRow>>;

    // ------------------------------------------------------------ health

    /// Checks that the database answers (for the server's readiness endpoint).
    fn ping(&self) -> StoreFuture<'_, ()>;

    // ------------------------------------------------------------ group commit

    /// Writes events, run updates, step changes, log chunks, jobs and claims in one
    /// transaction: all of them or none (see `WriteBatch` for the order). Returns one
    /// `EventInsert` per event and the jobs of each claim, in order. Used by `BatchWriter`.
    fn write_batch<'a>(&'a self, batch: &'a WriteBatch) -> StoreFuture<'a, BatchWritten>;
}

/// A new random id: 128 bits as 32 lowercase hex digits.
pub fn new_id() -> Result<String, StoreError> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes)
        .map_err(|err| StoreError::Database(format!("no randomness: {err}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
