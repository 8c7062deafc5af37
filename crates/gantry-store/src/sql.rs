//! The SQL shared by both backends, written once.
//!
//! Owns every query except connection setup and the queue claim, which differ per backend.
//! `sql_store!` expands the `Store` implementation for a backend type that has `writer` and
//! `reader` pools; both backends accept `$n` placeholders, `ON CONFLICT`, `RETURNING` and partial
//! indexes, and the schemas give every column the same Rust type on both (times as `i64`
//! microseconds, JSON as text, booleans, bytes), so one body serves both.
//!
//! What it must not do: decide anything beyond what the SQL states. Every method is one
//! transaction (or one statement), so a call either happens entirely or not at all.

use chrono::{DateTime, Utc};
use serde_json::Value;
use std::time::Duration;

use crate::StoreError;

pub(crate) fn us(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn opt_us(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(us)
}

pub(crate) fn time(us: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| StoreError::Database(format!("stored time out of range: {us}")))
}

pub(crate) fn opt_time(us: Option<i64>) -> Result<Option<DateTime<Utc>>, StoreError> {
    us.map(time).transpose()
}

pub(crate) fn duration_us(d: Duration) -> Result<i64, StoreError> {
    i64::try_from(d.as_micros())
        .map_err(|_| StoreError::Conflict("lease duration too long".to_owned()))
}

pub(crate) fn json_text(value: &Value) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|err| StoreError::Database(format!("JSON: {err}")))
}

pub(crate) fn json_value(text: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|err| StoreError::Database(format!("stored JSON: {err}")))
}

/// The cursor of a run list: the last item's creation time and id.
pub(crate) fn run_cursor(created_us: i64, id: &str) -> String {
    format!("{created_us}:{id}")
}

pub(crate) fn parse_run_cursor(cursor: &str) -> Result<(i64, String), StoreError> {
    let (time, id) = cursor.split_once(':').ok_or(StoreError::InvalidCursor)?;
    let time = time.parse().map_err(|_| StoreError::InvalidCursor)?;
    Ok((time, id.to_owned()))
}

/// The answer for an event that was just inserted, as it is stored.
pub(crate) fn created_event(e: &crate::NewEvent) -> Result<crate::EventInsert, StoreError> {
    let event = crate::Event {
        id: e.id.clone(),
        workflow: e.workflow.clone(),
        trigger: e.trigger.clone(),
        key: e.key.clone(),
        idempotency_key: e.idempotency_key.clone(),
        data: e.data.clone(),
        // As stored: to the microsecond.
        received_at: time(us(e.received_at))?,
        run_id: None,
    };
    Ok(crate::EventInsert {
        event,
        created: true,
    })
}

/// One audit row to append: the change's JSON is already text.
pub(crate) struct AuditRow<'x> {
    pub(crate) audit: &'x crate::Audit,
    pub(crate) action: &'x str,
    pub(crate) resource: String,
    pub(crate) before: Option<String>,
    pub(crate) after: Option<String>,
}

pub(crate) fn audit_row<'x>(
    audit: &'x crate::Audit,
    action: &'x str,
    resource: String,
    before: Option<&Value>,
    after: Option<&Value>,
) -> Result<AuditRow<'x>, StoreError> {
    Ok(AuditRow {
        audit,
        action,
        resource,
        before: before.map(json_text).transpose()?,
        after: after.map(json_text).transpose()?,
    })
}

/// The start of an audit row insert; the ten values follow, in this order.
pub(crate) const AUDIT_INSERT: &str = "INSERT INTO audit_events (at, actor_kind, actor_id, \
     actor_name, action, resource, before, after, request_id, source) VALUES";

/// Where a sealed value sits in the audit log's resource paths.
pub(crate) fn sealed_resource(kind: crate::SealedKind, scope: &str, name: &str) -> String {
    match kind {
        // An action's secrets are scoped `action/<identifier>` (no workflow name has a `/`).
        crate::SealedKind::Secret if scope.starts_with("action/") => {
            format!("{scope}/secret/{name}")
        }
        crate::SealedKind::Secret => format!("workflow/{scope}/secret/{name}"),
        crate::SealedKind::Connection => format!("connection/{scope}/{name}"),
    }
}

/// What the audit log shows of a sealed value: when it was set, never the value.
pub(crate) fn sealed_audit(updated_us: i64) -> Result<Value, StoreError> {
    Ok(serde_json::json!({"updatedAt": time(updated_us)?.to_rfc3339()}))
}

/// What the audit log shows of a new run.
pub(crate) fn run_audit(run: &crate::NewRun) -> Value {
    let event = match &run.origin {
        crate::RunOrigin::Manual => Value::Null,
        crate::RunOrigin::Event(id) => Value::String(id.clone()),
    };
    serde_json::json!({
        "workflow": run.workflow,
        "version": run.workflow_version,
        "parameters": run.parameters,
        "event": event,
    })
}

/// The `[lo, hi)` range of resource paths under `resource` (itself excluded): `/` is followed
/// by `0` in byte order, so `resource/…` sorts inside it.
pub(crate) fn resource_range(resource: &str) -> (String, String) {
    (format!("{resource}/"), format!("{resource}0"))
}

/// `($1, $2), ($3, $4)`: `rows` tuples of `cols` placeholders, numbered from `$1`.
pub(crate) fn placeholders(rows: usize, cols: usize) -> String {
    let mut sql = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..cols {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(r * cols + c + 1).to_string());
        }
        sql.push(')');
    }
    sql
}

/// How a backend writes the placeholders of bulk statements.
pub(crate) trait Dialect {
    /// `$n` (PostgreSQL) or `?` in binding order (SQLite). SQLite looks a numbered parameter's
    /// name up by a linear search, so binding a statement of n `$n` parameters costs n² steps:
    /// 0.3 s for 16,000, more than the rows themselves.
    const NUMBERED: bool;
}

impl Dialect for sqlx::Sqlite {
    const NUMBERED: bool = false;
}

impl Dialect for sqlx::Postgres {
    const NUMBERED: bool = true;
}

fn push_param<D: Dialect>(sql: &mut String, n: usize) {
    if D::NUMBERED {
        sql.push('$');
        sql.push_str(&n.to_string());
    } else {
        sql.push('?');
    }
}

/// Placeholder number `n` of a statement whose placeholders all come from this module's
/// functions (on SQLite, every placeholder of it must be `?`, bound in order).
pub(crate) fn param<D: Dialect>(n: usize) -> String {
    let mut sql = String::with_capacity(4);
    push_param::<D>(&mut sql, n);
    sql
}

/// `rows` tuples of `cols` placeholders, numbered from `first`: `($2, $3), ($4, $5)`.
pub(crate) fn tuples<D: Dialect>(first: usize, rows: usize, cols: usize) -> String {
    let mut sql = String::with_capacity(rows * (cols * 7 + 4));
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..cols {
            if c > 0 {
                sql.push_str(", ");
            }
            push_param::<D>(&mut sql, first + r * cols + c);
        }
        sql.push(')');
    }
    sql
}

/// Rows per multi-row statement: at most 10 × 64 placeholders, well under both backends' limits.
pub(crate) const ROWS_PER_STATEMENT: usize = 64;

/// A batch's run updates folded into one per run, as applying them in order would leave the
/// row (`None` keeps the value before it), in order of each run's first update.
pub(crate) fn fold_run_updates(
    updates: &[(String, crate::RunUpdate)],
) -> Vec<(&str, crate::RunUpdate)> {
    let mut folded: Vec<(&str, crate::RunUpdate)> = Vec::with_capacity(updates.len());
    let mut at: std::collections::HashMap<&str, usize> =
        std::collections::HashMap::with_capacity(updates.len());
    for (id, u) in updates {
        match at.get(id.as_str()) {
            Some(&i) => {
                let f = &mut folded[i].1;
                f.status = u.status;
                if u.reason.is_some() {
                    f.reason.clone_from(&u.reason);
                }
                f.started_at = u.started_at.or(f.started_at);
                f.ended_at = u.ended_at.or(f.ended_at);
            }
            None => {
                at.insert(id, folded.len());
                folded.push((id, u.clone()));
            }
        }
    }
    folded
}

/// A batch's step changes folded into one per step of a run, as applying them in order would
/// leave the row (the reason and state replace, `None` times and exit code keep the value).
pub(crate) fn fold_step_changes(
    changes: &[(String, crate::StepChange)],
) -> Vec<(&str, crate::StepChange)> {
    let mut folded: Vec<(&str, crate::StepChange)> = Vec::with_capacity(changes.len());
    let mut at: std::collections::HashMap<(&str, &str), usize> =
        std::collections::HashMap::with_capacity(changes.len());
    for (run, c) in changes {
        match at.get(&(run.as_str(), c.step.as_str())) {
            Some(&i) => {
                let f = &mut folded[i].1;
                f.state = c.state;
                f.reason.clone_from(&c.reason);
                f.started_at = c.started_at.or(f.started_at);
                f.ended_at = c.ended_at.or(f.ended_at);
                f.exit_code = c.exit_code.or(f.exit_code);
                f.at = c.at;
            }
            None => {
                at.insert((run, &c.step), folded.len());
                folded.push((run, c.clone()));
            }
        }
    }
    folded
}

/// The first completion of each job in a batch: a later one finds the job completed.
pub(crate) fn first_completions(done: &[crate::JobCompletion]) -> Vec<&crate::JobCompletion> {
    let mut seen = std::collections::HashSet::with_capacity(done.len());
    done.iter()
        .filter(|d| seen.insert(d.job_id.as_str()))
        .collect()
}

/// The error that sends a batch back to its item-by-item path, which names the culprit.
pub(crate) fn batch_mismatch(what: &str) -> StoreError {
    StoreError::Database(format!("a batched {what} did not apply to every row"))
}

/// Placeholders in one bulk statement of a catalog write (and of audit rows): SQLite allows
/// 32,766, PostgreSQL 65,535. Big statements keep a 5,000-entity write to a handful of them.
pub(crate) const BULK_PLACEHOLDERS: usize = 16_000;

/// Rows per bulk statement of `cols` columns.
pub(crate) const fn bulk_rows(cols: usize) -> usize {
    BULK_PLACEHOLDERS / cols
}

/// Whether a bulk statement of `rows` rows (`full` in a full chunk) stays prepared for reuse:
/// small ones and full chunks recur; a large remainder's text rarely does, and every statement
/// kept costs memory on each connection (in the database server too, on PostgreSQL).
pub(crate) fn reused(rows: usize, full: usize) -> bool {
    rows <= ROWS_PER_STATEMENT || rows == full
}

pub(crate) const BLUEPRINT_COLS: &str =
    "identifier, definition, version, created_at, updated_at, created_by, updated_by, managed_by";
pub(crate) const ENTITY_COLS: &str = "blueprint, identifier, title, team, properties, relations, \
     sources, version, created_at, updated_at, created_by, updated_by, managed_by";
/// What an entity upsert sets when the row exists (every column but the key).
pub(crate) const ENTITY_UPDATE: &str = "ON CONFLICT (blueprint, identifier) DO UPDATE SET \
     title = excluded.title, team = excluded.team, properties = excluded.properties, \
     relations = excluded.relations, sources = excluded.sources, version = excluded.version, \
     created_at = excluded.created_at, updated_at = excluded.updated_at, \
     created_by = excluded.created_by, updated_by = excluded.updated_by, \
     managed_by = excluded.managed_by, seq = excluded.seq";

pub(crate) fn scan_limit(limit: u32) -> i64 {
    i64::from(limit.clamp(1, 10_000))
}

pub(crate) const WORKFLOW_VERSION_COLS: &str = "name, version, yaml, canonical, created_at";
pub(crate) const EVENT_COLS: &str =
    "id, workflow, trigger_name, dedup_key, idempotency_key, data, received_at, run_id";
pub(crate) const RUN_COLS: &str = "id, workflow, workflow_version, parameters, event_id, status, \
     reason, created_at, started_at, ended_at";
pub(crate) const LOG_COLS: &str = "id, run_id, step, stream, seq, bytes, at";
pub(crate) const JOB_COLS: &str =
    "id, pool, run_id, step, payload, available_at, worker, lease_until, \
     attempts, completed_at, result";
pub(crate) const TRIGGER_COLS: &str = "id, workflow, name, created_at, last_fire_at";
pub(crate) const PUSH_TOKEN_COLS: &str = "id, workflow, trigger_name, created_at, revoked_at";
pub(crate) const ACTION_COLS: &str = "identifier, definition, version, created_at, updated_at, \
                                      created_by, updated_by, managed_by";
pub(crate) const ACTION_RUN_COLS: &str = "id, action, entity_blueprint, entity_identifier, \
                                          requested_by, status, workflow_run, deadline_at, \
                                          created_at, updated_at, version, doc";
pub(crate) const USER_COLS: &str = "id, email, name, role, password_hash, created_at, disabled_at";
pub(crate) const SERVICE_ACCOUNT_COLS: &str = "id, name, role, team, created_at, disabled_at";
pub(crate) const API_KEY_COLS: &str =
    "id, prefix, hash, principal, created_at, last_used_at, expires_at, revoked_at";

/// Expands `impl Store for $store` over the driver `$db` whose rows are `$row`;
/// `$claim` is the backend's claim statement (see `Store::claim`) with
/// `$1` worker, `$2` lease end, `$3` now, `$4` pool, `$5` limit; `$log_lock` is a statement run once per run id
/// (`$1`) before appending log chunks to it, or `""` when writes are already serialised;
/// `$snapshot` is the first statement of a read transaction that must see one snapshot
/// throughout, or `""` when a transaction already does; `$bulk` is the backend's module of
/// bulk writes (`audit_rows`, `upsert_entities`), the hottest statements, written per backend.
macro_rules! sql_store {
    ($store:ty, $db:ty, $row:ty, $claim:expr, $log_lock:expr, $snapshot:expr, $bulk:ident) => {
        use sqlx::Row as _;
        use $crate::model::*;
        use $crate::sql::*;
        use $crate::{Store, StoreError, StoreFuture};
        use serde_json::Value;

        type Tx = sqlx::Transaction<'static, $db>;

        /// Appends audit rows, many per statement.
        async fn audit_rows_tx(tx: &mut Tx, rows: &[AuditRow<'_>]) -> Result<(), StoreError> {
            $bulk::audit_rows(tx, rows).await
        }

        /// Appends one audit event; returns its `seq`.
        async fn audit_tx(
            tx: &mut Tx,
            audit: &Audit,
            action: &str,
            resource: String,
            before: Option<Value>,
            after: Option<Value>,
        ) -> Result<i64, StoreError> {
            let row = audit_row(audit, action, resource, before.as_ref(), after.as_ref())?;
            let sql = format!("{AUDIT_INSERT} {} RETURNING seq", placeholders(1, 10));
            let seq = sqlx::query_scalar(&sql)
            .bind(us(audit.at))
            .bind(audit.actor.kind.as_str())
            .bind(&audit.actor.id)
            .bind(&audit.actor.name)
            .bind(row.action)
            .bind(&row.resource)
            .bind(&row.before)
            .bind(&row.after)
            .bind(&audit.request_id)
            .bind(&audit.source)
            .fetch_one(&mut **tx)
            .await?;
            Ok(seq)
        }

        /// Marks row `id` of `table` revoked (keeping an earlier revocation's time) and audits
        /// it as `action` on `resource`; `before` is the stored `revoked_at`.
        async fn revoke_tx(
            tx: &mut Tx,
            table: &str,
            id: &str,
            before: Option<i64>,
            audit: &Audit,
            action: &str,
            resource: String,
        ) -> Result<(), StoreError> {
            let revoked = before.unwrap_or(us(audit.at));
            sqlx::query(&format!("UPDATE {table} SET revoked_at = $2 WHERE id = $1"))
                .bind(id)
                .bind(revoked)
                .execute(&mut **tx)
                .await?;
            let at = |t: i64| time(t).map(|t| t.to_rfc3339());
            audit_tx(
                tx,
                audit,
                action,
                resource,
                Some(serde_json::json!({"revokedAt": before.map(at).transpose()?})),
                Some(serde_json::json!({"revokedAt": at(revoked)?})),
            )
            .await?;
            Ok(())
        }

        fn audit_event_from(row: &$row) -> Result<AuditEvent, StoreError> {
            let text = |col: &str| -> Result<Option<Value>, StoreError> {
                get::<Option<String>>(row, col)?
                    .map(|t| json_value(&t))
                    .transpose()
            };
            Ok(AuditEvent {
                seq: get(row, "seq")?,
                at: time(get(row, "at")?)?,
                actor: Actor {
                    kind: ActorKind::parse(&get::<String>(row, "actor_kind")?)?,
                    id: get(row, "actor_id")?,
                    name: get(row, "actor_name")?,
                },
                action: get(row, "action")?,
                resource: get(row, "resource")?,
                before: text("before")?,
                after: text("after")?,
                request_id: get(row, "request_id")?,
                source: get(row, "source")?,
            })
        }

        fn get<'r, T>(row: &'r $row, col: &str) -> Result<T, StoreError>
        where
            T: sqlx::Decode<'r, $db> + sqlx::Type<$db>,
        {
            row.try_get(col).map_err(StoreError::from)
        }

        fn workflow_version_from(row: &$row) -> Result<WorkflowVersion, StoreError> {
            Ok(WorkflowVersion {
                name: get(row, "name")?,
                version: get(row, "version")?,
                yaml: get(row, "yaml")?,
                canonical: get(row, "canonical")?,
                created_at: time(get(row, "created_at")?)?,
            })
        }

        fn event_from(row: &$row) -> Result<Event, StoreError> {
            Ok(Event {
                id: get(row, "id")?,
                workflow: get(row, "workflow")?,
                trigger: get(row, "trigger_name")?,
                key: get(row, "dedup_key")?,
                idempotency_key: get(row, "idempotency_key")?,
                data: json_value(&get::<String>(row, "data")?)?,
                received_at: time(get(row, "received_at")?)?,
                run_id: get(row, "run_id")?,
            })
        }

        fn run_from(row: &$row) -> Result<RunSummary, StoreError> {
            let event: Option<String> = get(row, "event_id")?;
            Ok(RunSummary {
                id: get(row, "id")?,
                workflow: get(row, "workflow")?,
                workflow_version: get(row, "workflow_version")?,
                parameters: json_value(&get::<String>(row, "parameters")?)?,
                origin: match event {
                    Some(id) => RunOrigin::Event(id),
                    None => RunOrigin::Manual,
                },
                status: RunStatus::parse(&get::<String>(row, "status")?)?,
                reason: get(row, "reason")?,
                created_at: time(get(row, "created_at")?)?,
                started_at: opt_time(get(row, "started_at")?)?,
                ended_at: opt_time(get(row, "ended_at")?)?,
            })
        }

        fn step_from(row: &$row) -> Result<StepRow, StoreError> {
            let exit_code: Option<i64> = get(row, "exit_code")?;
            Ok(StepRow {
                step: get(row, "step")?,
                state: StepStatus::parse(&get::<String>(row, "state")?)?,
                reason: get(row, "reason")?,
                started_at: opt_time(get(row, "started_at")?)?,
                ended_at: opt_time(get(row, "ended_at")?)?,
                exit_code: exit_code
                    .map(|c| {
                        i32::try_from(c).map_err(|_| {
                            StoreError::Database(format!("stored exit code out of range: {c}"))
                        })
                    })
                    .transpose()?,
                updated_at: time(get(row, "updated_at")?)?,
            })
        }

        fn output_from(row: &$row) -> Result<Output, StoreError> {
            Ok(Output {
                step: get(row, "step")?,
                name: get(row, "name")?,
                value: json_value(&get::<String>(row, "value")?)?,
                sensitive: get(row, "sensitive")?,
            })
        }

        fn log_from(row: &$row) -> Result<StoredLogChunk, StoreError> {
            Ok(StoredLogChunk {
                position: get(row, "id")?,
                chunk: LogChunk {
                    run_id: get(row, "run_id")?,
                    step: get(row, "step")?,
                    stream: get(row, "stream")?,
                    seq: get(row, "seq")?,
                    bytes: get(row, "bytes")?,
                    at: time(get(row, "at")?)?,
                },
            })
        }

        fn job_from(row: &$row) -> Result<Job, StoreError> {
            let result: Option<String> = get(row, "result")?;
            Ok(Job {
                id: get(row, "id")?,
                pool: get(row, "pool")?,
                run_id: get(row, "run_id")?,
                step: get(row, "step")?,
                payload: json_value(&get::<String>(row, "payload")?)?,
                available_at: time(get(row, "available_at")?)?,
                worker: get(row, "worker")?,
                lease_until: opt_time(get(row, "lease_until")?)?,
                attempts: get(row, "attempts")?,
                completed_at: opt_time(get(row, "completed_at")?)?,
                result: result.as_deref().map(json_value).transpose()?,
            })
        }

        fn sealed_from(row: &$row, kind: SealedKind) -> Result<SealedValue, StoreError> {
            Ok(SealedValue {
                kind,
                scope: get(row, "scope")?,
                name: get(row, "name")?,
                key_id: get(row, "key_id")?,
                nonce: get(row, "nonce")?,
                ciphertext: get(row, "ciphertext")?,
                updated_at: time(get(row, "updated_at")?)?,
            })
        }

        fn api_key_from(row: &$row) -> Result<ApiKey, StoreError> {
            Ok(ApiKey {
                id: get(row, "id")?,
                prefix: get(row, "prefix")?,
                hash: get(row, "hash")?,
                principal: get(row, "principal")?,
                created_at: time(get(row, "created_at")?)?,
                last_used_at: opt_time(get(row, "last_used_at")?)?,
                expires_at: opt_time(get(row, "expires_at")?)?,
                revoked_at: opt_time(get(row, "revoked_at")?)?,
            })
        }

        fn user_from(row: &$row) -> Result<User, StoreError> {
            Ok(User {
                id: get(row, "id")?,
                email: get(row, "email")?,
                name: get(row, "name")?,
                role: get(row, "role")?,
                password_hash: get(row, "password_hash")?,
                created_at: time(get(row, "created_at")?)?,
                disabled_at: opt_time(get(row, "disabled_at")?)?,
            })
        }

        fn service_account_from(row: &$row) -> Result<ServiceAccount, StoreError> {
            Ok(ServiceAccount {
                id: get(row, "id")?,
                name: get(row, "name")?,
                role: get(row, "role")?,
                team: get(row, "team")?,
                created_at: time(get(row, "created_at")?)?,
                disabled_at: opt_time(get(row, "disabled_at")?)?,
            })
        }

        fn member_from(row: &$row) -> Result<TeamMember, StoreError> {
            Ok(TeamMember {
                team: get(row, "team")?,
                user_id: get(row, "user_id")?,
                maintainer: get(row, "maintainer")?,
            })
        }

        fn trigger_from(row: &$row) -> Result<TriggerRecord, StoreError> {
            Ok(TriggerRecord {
                id: get(row, "id")?,
                workflow: get(row, "workflow")?,
                name: get(row, "name")?,
                created_at: time(get(row, "created_at")?)?,
                last_fire_at: opt_time(get(row, "last_fire_at")?)?,
            })
        }

        fn push_token_from(row: &$row) -> Result<PushToken, StoreError> {
            Ok(PushToken {
                id: get(row, "id")?,
                workflow: get(row, "workflow")?,
                trigger: get(row, "trigger_name")?,
                created_at: time(get(row, "created_at")?)?,
                revoked_at: opt_time(get(row, "revoked_at")?)?,
            })
        }

        fn not_found(what: &str, id: &str) -> StoreError {
            StoreError::NotFound(format!("{what} {id:?}"))
        }

        fn stored_action_from(row: &$row) -> Result<StoredAction, StoreError> {
            Ok(StoredAction {
                identifier: get(row, "identifier")?,
                definition: json_value(&get::<String>(row, "definition")?)?,
                version: get(row, "version")?,
                created_at: time(get(row, "created_at")?)?,
                updated_at: time(get(row, "updated_at")?)?,
                created_by: get(row, "created_by")?,
                updated_by: get(row, "updated_by")?,
                managed_by: get(row, "managed_by")?,
            })
        }

        fn action_run_from(row: &$row) -> Result<ActionRunRow, StoreError> {
            let blueprint: Option<String> = get(row, "entity_blueprint")?;
            let identifier: Option<String> = get(row, "entity_identifier")?;
            Ok(ActionRunRow {
                id: get(row, "id")?,
                action: get(row, "action")?,
                entity: blueprint.zip(identifier),
                requested_by: get(row, "requested_by")?,
                status: get(row, "status")?,
                workflow_run: get(row, "workflow_run")?,
                deadline_at: opt_time(get(row, "deadline_at")?)?,
                created_at: time(get(row, "created_at")?)?,
                updated_at: time(get(row, "updated_at")?)?,
                version: get(row, "version")?,
                doc: json_value(&get::<String>(row, "doc")?)?,
            })
        }

        async fn append_audit_event_tx(
            tx: &mut Tx,
            event: &NewAuditEvent,
        ) -> Result<i64, StoreError> {
            audit_tx(
                tx,
                &event.audit,
                &event.action,
                event.resource.clone(),
                event.before.clone(),
                event.after.clone(),
            )
            .await
        }

        async fn insert_event_tx(tx: &mut Tx, e: &NewEvent) -> Result<EventInsert, StoreError> {
            let data = json_text(&e.data)?;
            let done = sqlx::query(
                "INSERT INTO events \
                 (id, workflow, trigger_name, dedup_key, idempotency_key, data, received_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            )
            .bind(&e.id)
            .bind(&e.workflow)
            .bind(&e.trigger)
            .bind(&e.key)
            .bind(&e.idempotency_key)
            .bind(&data)
            .bind(us(e.received_at))
            .execute(&mut **tx)
            .await?;
            if done.rows_affected() == 1 {
                return created_event(e);
            }
            // The conflicting row is committed (or ours): a unique index makes the insert wait
            // for a concurrent inserter of the same key, so this read finds it.
            let sql = format!(
                "SELECT {EVENT_COLS} FROM events \
                 WHERE (workflow = $1 AND idempotency_key = $2) \
                    OR (workflow = $1 AND trigger_name = $3 AND dedup_key = $4) \
                    OR id = $5 \
                 ORDER BY CASE WHEN idempotency_key = $2 THEN 0 WHEN id = $5 THEN 1 ELSE 2 END \
                 LIMIT 1"
            );
            let row = sqlx::query(&sql)
                .bind(&e.workflow)
                .bind(&e.idempotency_key)
                .bind(&e.trigger)
                .bind(&e.key)
                .bind(&e.id)
                .fetch_optional(&mut **tx)
                .await?;
            match row {
                Some(row) => Ok(EventInsert { event: event_from(&row)?, created: false }),
                None => Err(StoreError::Conflict(format!("event {:?} conflicts", e.id))),
            }
        }

        /// Inserts many events with one statement (a round trip per event is what a batch of
        /// them would otherwise cost); an event that conflicts is then looked up alone, as
        /// `insert_event_tx` does. Earlier events in the slice win over later ones.
        async fn insert_events_tx(
            tx: &mut Tx,
            events: &[NewEvent],
        ) -> Result<Vec<EventInsert>, StoreError> {
            if events.len() < 2 {
                let mut inserted = Vec::with_capacity(events.len());
                for e in events {
                    inserted.push(insert_event_tx(tx, e).await?);
                }
                return Ok(inserted);
            }
            let mut inserted = Vec::with_capacity(events.len());
            // At most 7 × 64 placeholders per statement, well under both backends' limits.
            for chunk in events.chunks(64) {
                let data = chunk
                    .iter()
                    .map(|e| json_text(&e.data))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut sql = String::from(
                    "INSERT INTO events \
                     (id, workflow, trigger_name, dedup_key, idempotency_key, data, received_at) \
                     VALUES ",
                );
                for i in 0..chunk.len() {
                    let n = i * 7;
                    if i > 0 {
                        sql.push(',');
                    }
                    sql.push_str(&format!(
                        "(${}, ${}, ${}, ${}, ${}, ${}, ${})",
                        n + 1, n + 2, n + 3, n + 4, n + 5, n + 6, n + 7
                    ));
                }
                sql.push_str(" ON CONFLICT DO NOTHING RETURNING id");
                let mut query = sqlx::query(&sql);
                for (e, data) in chunk.iter().zip(&data) {
                    query = query
                        .bind(&e.id)
                        .bind(&e.workflow)
                        .bind(&e.trigger)
                        .bind(&e.key)
                        .bind(&e.idempotency_key)
                        .bind(data)
                        .bind(us(e.received_at));
                }
                let created: std::collections::HashSet<String> = query
                    .fetch_all(&mut **tx)
                    .await?
                    .iter()
                    .map(|row| row.try_get::<String, _>("id"))
                    .collect::<Result<_, _>>()?;
                for e in chunk {
                    if created.contains(&e.id) {
                        inserted.push(created_event(e)?);
                    } else {
                        // Not inserted: it repeats a stored event (or one earlier in this
                        // statement); the single-event path finds which.
                        inserted.push(insert_event_tx(tx, e).await?);
                    }
                }
            }
            Ok(inserted)
        }

        async fn create_run_tx(tx: &mut Tx, run: &NewRun) -> Result<(), StoreError> {
            let event_id = match &run.origin {
                RunOrigin::Manual => None,
                RunOrigin::Event(id) => Some(id.as_str()),
            };
            if let Some(event_id) = event_id {
                let linked = sqlx::query(
                    "UPDATE events SET run_id = $1 WHERE id = $2 AND run_id IS NULL",
                )
                .bind(&run.id)
                .bind(event_id)
                .execute(&mut **tx)
                .await?;
                if linked.rows_affected() == 0 {
                    let exists = sqlx::query("SELECT id FROM events WHERE id = $1")
                        .bind(event_id)
                        .fetch_optional(&mut **tx)
                        .await?;
                    return Err(match exists {
                        Some(_) => StoreError::Conflict(format!(
                            "event {event_id:?} already has a run"
                        )),
                        None => not_found("event", event_id),
                    });
                }
            }
            sqlx::query(
                "INSERT INTO runs (id, workflow, workflow_version, parameters, event_id, \
                 status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&run.id)
            .bind(&run.workflow)
            .bind(run.workflow_version)
            .bind(json_text(&run.parameters)?)
            .bind(event_id)
            .bind(RunStatus::Queued.as_str())
            .bind(us(run.created_at))
            .execute(&mut **tx)
            .await
            .map_err(|err| match StoreError::from(err) {
                StoreError::Conflict(_) => {
                    StoreError::Conflict(format!("run {:?} exists", run.id))
                }
                other => other,
            })?;
            audit_tx(
                tx,
                &run.audit,
                "run.start",
                format!("run/{}", run.id),
                None,
                Some(run_audit(run)),
            )
            .await?;
            Ok(())
        }

        /// Creates many runs in two statements per chunk; anything unusual (an event that
        /// already has a run, a run id taken) fails the batch, whose item-by-item retry names it.
        async fn create_runs_tx(tx: &mut Tx, runs: &[NewRun]) -> Result<(), StoreError> {
            if runs.len() < 2 {
                for run in runs {
                    create_run_tx(tx, run).await?;
                }
                return Ok(());
            }
            for chunk in runs.chunks(ROWS_PER_STATEMENT) {
                let linked: Vec<(&str, &str)> = chunk
                    .iter()
                    .filter_map(|r| match &r.origin {
                        RunOrigin::Event(event) => Some((event.as_str(), r.id.as_str())),
                        RunOrigin::Manual => None,
                    })
                    .collect();
                if !linked.is_empty() {
                    let sql = format!(
                        "UPDATE events SET run_id = v.column2 FROM (VALUES {}) AS v \
                         WHERE events.id = v.column1 AND events.run_id IS NULL",
                        placeholders(linked.len(), 2)
                    );
                    let mut query = sqlx::query(&sql);
                    for (event, run) in &linked {
                        query = query.bind(*event).bind(*run);
                    }
                    let done = query.execute(&mut **tx).await?;
                    if done.rows_affected() != linked.len() as u64 {
                        return Err(batch_mismatch("run creation"));
                    }
                }
                let parameters = chunk
                    .iter()
                    .map(|r| json_text(&r.parameters))
                    .collect::<Result<Vec<_>, _>>()?;
                let sql = format!(
                    "INSERT INTO runs (id, workflow, workflow_version, parameters, event_id, \
                     status, created_at) VALUES {}",
                    placeholders(chunk.len(), 7)
                );
                let mut query = sqlx::query(&sql);
                for (run, parameters) in chunk.iter().zip(&parameters) {
                    let event_id = match &run.origin {
                        RunOrigin::Manual => None,
                        RunOrigin::Event(id) => Some(id.as_str()),
                    };
                    query = query
                        .bind(&run.id)
                        .bind(&run.workflow)
                        .bind(run.workflow_version)
                        .bind(parameters)
                        .bind(event_id)
                        .bind(RunStatus::Queued.as_str())
                        .bind(us(run.created_at));
                }
                query.execute(&mut **tx).await?;
                let audits = chunk
                    .iter()
                    .map(|r| {
                        audit_row(
                            &r.audit,
                            "run.start",
                            format!("run/{}", r.id),
                            None,
                            Some(&run_audit(r)),
                        )
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                audit_rows_tx(tx, &audits).await?;
            }
            Ok(())
        }

        /// Applies many run updates, folded to one per run, one statement per chunk.
        async fn update_runs_tx(
            tx: &mut Tx,
            updates: &[(String, RunUpdate)],
        ) -> Result<(), StoreError> {
            if updates.len() < 2 {
                for (id, update) in updates {
                    update_run_tx(tx, id, update).await?;
                }
                return Ok(());
            }
            let folded = fold_run_updates(updates);
            for chunk in folded.chunks(ROWS_PER_STATEMENT) {
                let sql = format!(
                    "UPDATE runs SET status = v.column2, reason = COALESCE(v.column3, runs.reason), \
                     started_at = COALESCE(v.column4, runs.started_at), \
                     ended_at = COALESCE(v.column5, runs.ended_at) \
                     FROM (VALUES {}) AS v WHERE runs.id = v.column1",
                    placeholders(chunk.len(), 5)
                );
                let mut query = sqlx::query(&sql);
                for (id, u) in chunk {
                    query = query
                        .bind(*id)
                        .bind(u.status.as_str())
                        .bind(&u.reason)
                        .bind(opt_us(u.started_at))
                        .bind(opt_us(u.ended_at));
                }
                let done = query.execute(&mut **tx).await?;
                if done.rows_affected() != chunk.len() as u64 {
                    return Err(batch_mismatch("run update"));
                }
            }
            Ok(())
        }

        /// Records many step changes, folded to one per step, one statement per chunk.
        async fn record_steps_tx(
            tx: &mut Tx,
            changes: &[(String, StepChange)],
        ) -> Result<(), StoreError> {
            if changes.len() < 2 {
                for (run_id, change) in changes {
                    record_step_tx(tx, run_id, change).await?;
                }
                return Ok(());
            }
            let folded = fold_step_changes(changes);
            for chunk in folded.chunks(ROWS_PER_STATEMENT) {
                let sql = format!(
                    "INSERT INTO run_steps \
                     (run_id, step, state, reason, started_at, ended_at, exit_code, updated_at) \
                     VALUES {} \
                     ON CONFLICT (run_id, step) DO UPDATE SET \
                       state = excluded.state, reason = excluded.reason, \
                       started_at = COALESCE(excluded.started_at, run_steps.started_at), \
                       ended_at = COALESCE(excluded.ended_at, run_steps.ended_at), \
                       exit_code = COALESCE(excluded.exit_code, run_steps.exit_code), \
                       updated_at = excluded.updated_at",
                    placeholders(chunk.len(), 8)
                );
                let mut query = sqlx::query(&sql);
                for (run_id, c) in chunk {
                    query = query
                        .bind(*run_id)
                        .bind(&c.step)
                        .bind(c.state.as_str())
                        .bind(&c.reason)
                        .bind(opt_us(c.started_at))
                        .bind(opt_us(c.ended_at))
                        .bind(c.exit_code.map(i64::from))
                        .bind(us(c.at));
                }
                query.execute(&mut **tx).await?;
            }
            Ok(())
        }

        /// Enqueues many jobs, one statement per chunk.
        async fn enqueue_many_tx(tx: &mut Tx, jobs: &[NewJob]) -> Result<(), StoreError> {
            if jobs.len() < 2 {
                for job in jobs {
                    enqueue_tx(tx, job).await?;
                }
                return Ok(());
            }
            for chunk in jobs.chunks(ROWS_PER_STATEMENT) {
                let mut rows = Vec::with_capacity(chunk.len());
                for job in chunk {
                    let (worker, lease_until, attempts) = match &job.claimed {
                        Some(lease) => {
                            let now = us(lease.now);
                            let until = now.saturating_add(duration_us(lease.duration)?);
                            (Some(lease.worker.as_str()), Some(until), 1_i64)
                        }
                        None => (None, None, 0),
                    };
                    rows.push((json_text(&job.payload)?, worker, lease_until, attempts));
                }
                let sql = format!(
                    "INSERT INTO jobs (id, pool, run_id, step, payload, available_at, \
                     created_at, worker, lease_until, attempts) VALUES {}",
                    placeholders(chunk.len(), 10)
                );
                let mut query = sqlx::query(&sql);
                for (job, (payload, worker, lease_until, attempts)) in chunk.iter().zip(&rows) {
                    query = query
                        .bind(&job.id)
                        .bind(&job.pool)
                        .bind(&job.run_id)
                        .bind(&job.step)
                        .bind(payload)
                        .bind(us(job.available_at))
                        .bind(us(job.available_at))
                        .bind(*worker)
                        .bind(*lease_until)
                        .bind(*attempts);
                }
                query.execute(&mut **tx).await?;
            }
            Ok(())
        }

        /// Completes many jobs, one statement per chunk; as `complete_tx`, a lease no longer
        /// held changes nothing.
        async fn complete_many_tx(
            tx: &mut Tx,
            done: &[JobCompletion],
        ) -> Result<(), StoreError> {
            if done.len() < 2 {
                for d in done {
                    complete_tx(tx, d).await?;
                }
                return Ok(());
            }
            let first = first_completions(done);
            for chunk in first.chunks(ROWS_PER_STATEMENT) {
                let results = chunk
                    .iter()
                    .map(|d| json_text(&d.result))
                    .collect::<Result<Vec<_>, _>>()?;
                let sql = format!(
                    "UPDATE jobs SET completed_at = v.column3, result = v.column4, \
                     lease_until = NULL FROM (VALUES {}) AS v \
                     WHERE jobs.id = v.column1 AND jobs.worker = v.column2 \
                     AND jobs.completed_at IS NULL AND jobs.lease_until > v.column3",
                    placeholders(chunk.len(), 4)
                );
                let mut query = sqlx::query(&sql);
                for (d, result) in chunk.iter().zip(&results) {
                    query = query
                        .bind(&d.job_id)
                        .bind(&d.worker)
                        .bind(us(d.at))
                        .bind(result);
                }
                query.execute(&mut **tx).await?;
            }
            Ok(())
        }

        async fn mark_fired_tx(
            tx: &mut Tx,
            workflow: &str,
            name: &str,
            at: chrono::DateTime<chrono::Utc>,
        ) -> Result<(), StoreError> {
            let exists = sqlx::query(
                "UPDATE triggers SET last_fire_at = $3 WHERE workflow = $1 AND name = $2 \
                 AND (last_fire_at IS NULL OR last_fire_at < $3)",
            )
            .bind(workflow)
            .bind(name)
            .bind(us(at))
            .execute(&mut **tx)
            .await?;
            if exists.rows_affected() == 0 {
                let found = sqlx::query("SELECT id FROM triggers WHERE workflow = $1 AND name = $2")
                    .bind(workflow)
                    .bind(name)
                    .fetch_optional(&mut **tx)
                    .await?;
                if found.is_none() {
                    return Err(not_found("trigger", &format!("{workflow}/{name}")));
                }
            }
            Ok(())
        }

        async fn update_run_tx(
            tx: &mut Tx,
            id: &str,
            update: &RunUpdate,
        ) -> Result<(), StoreError> {
            let done = sqlx::query(
                "UPDATE runs SET status = $1, reason = COALESCE($2, reason), \
                 started_at = COALESCE($3, started_at), ended_at = COALESCE($4, ended_at) \
                 WHERE id = $5",
            )
            .bind(update.status.as_str())
            .bind(&update.reason)
            .bind(opt_us(update.started_at))
            .bind(opt_us(update.ended_at))
            .bind(id)
            .execute(&mut **tx)
            .await?;
            if done.rows_affected() == 0 {
                return Err(not_found("run", id));
            }
            Ok(())
        }

        async fn record_step_tx(
            tx: &mut Tx,
            run_id: &str,
            change: &StepChange,
        ) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO run_steps \
                 (run_id, step, state, reason, started_at, ended_at, exit_code, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (run_id, step) DO UPDATE SET \
                   state = excluded.state, reason = excluded.reason, \
                   started_at = COALESCE(excluded.started_at, run_steps.started_at), \
                   ended_at = COALESCE(excluded.ended_at, run_steps.ended_at), \
                   exit_code = COALESCE(excluded.exit_code, run_steps.exit_code), \
                   updated_at = excluded.updated_at",
            )
            .bind(run_id)
            .bind(&change.step)
            .bind(change.state.as_str())
            .bind(&change.reason)
            .bind(opt_us(change.started_at))
            .bind(opt_us(change.ended_at))
            .bind(change.exit_code.map(i64::from))
            .bind(us(change.at))
            .execute(&mut **tx)
            .await
            .map_err(|err| match StoreError::from(err) {
                StoreError::NotFound(_) => not_found("run", run_id),
                other => other,
            })?;
            Ok(())
        }

        async fn append_logs_tx(tx: &mut Tx, chunks: &[LogChunk]) -> Result<(), StoreError> {
            // Readers follow a run's log by position. Positions come from a sequence, so two
            // concurrent writers could commit out of position order and a follower that already
            // read past the later position would skip the earlier one. Serialising the writers of
            // one run until commit (in run id order, so no deadlock) makes positions per run
            // appear in commit order.
            if !$log_lock.is_empty() {
                let mut runs: Vec<&str> = chunks.iter().map(|c| c.run_id.as_str()).collect();
                runs.sort_unstable();
                runs.dedup();
                for run in runs {
                    sqlx::query($log_lock).bind(run).execute(&mut **tx).await?;
                }
            }
            // Rows of one statement take their positions in order, so a run's chunks keep theirs.
            for rows in chunks.chunks(ROWS_PER_STATEMENT) {
                let sql = format!(
                    "INSERT INTO log_chunks (run_id, step, stream, seq, bytes, at) \
                     VALUES {} ON CONFLICT DO NOTHING",
                    placeholders(rows.len(), 6)
                );
                let mut query = sqlx::query(&sql);
                for c in rows {
                    query = query
                        .bind(&c.run_id)
                        .bind(&c.step)
                        .bind(&c.stream)
                        .bind(c.seq)
                        .bind(&c.bytes)
                        .bind(us(c.at));
                }
                query.execute(&mut **tx).await?;
            }
            Ok(())
        }

        async fn enqueue_tx(tx: &mut Tx, job: &NewJob) -> Result<(), StoreError> {
            let (worker, lease_until, attempts) = match &job.claimed {
                Some(lease) => {
                    let now = us(lease.now);
                    let until = now.saturating_add(duration_us(lease.duration)?);
                    (Some(lease.worker.as_str()), Some(until), 1_i64)
                }
                None => (None, None, 0),
            };
            sqlx::query(
                "INSERT INTO jobs (id, pool, run_id, step, payload, available_at, created_at, \
                 worker, lease_until, attempts) VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9)",
            )
            .bind(&job.id)
            .bind(&job.pool)
            .bind(&job.run_id)
            .bind(&job.step)
            .bind(json_text(&job.payload)?)
            .bind(us(job.available_at))
            .bind(worker)
            .bind(lease_until)
            .bind(attempts)
            .execute(&mut **tx)
            .await?;
            Ok(())
        }

        /// As `complete`, but a lease no longer held changes nothing rather than failing.
        async fn complete_tx(
            tx: &mut Tx,
            done: &JobCompletion,
        ) -> Result<(), StoreError> {
            sqlx::query(
                "UPDATE jobs SET completed_at = $1, result = $2, lease_until = NULL \
                 WHERE id = $3 AND worker = $4 AND completed_at IS NULL AND lease_until > $1",
            )
            .bind(us(done.at))
            .bind(json_text(&done.result)?)
            .bind(&done.job_id)
            .bind(&done.worker)
            .execute(&mut **tx)
            .await?;
            Ok(())
        }

        async fn claim_tx(
            tx: &mut Tx,
            pool: &str,
            lease: &Lease,
            limit: u32,
        ) -> Result<Vec<Job>, StoreError> {
            if limit == 0 {
                return Ok(Vec::new());
            }
            let now = us(lease.now);
            let until = now.saturating_add(duration_us(lease.duration)?);
            let rows = sqlx::query($claim)
                .bind(&lease.worker)
                .bind(until)
                .bind(now)
                .bind(pool)
                .bind(i64::from(limit))
                .fetch_all(&mut **tx)
                .await?;
            let mut jobs = rows.iter().map(job_from).collect::<Result<Vec<_>, _>>()?;
            // RETURNING keeps no order.
            jobs.sort_by(|a, b| (a.available_at, &a.id).cmp(&(b.available_at, &b.id)));
            Ok(jobs)
        }

        fn blueprint_record_from(row: &$row) -> Result<gantry_catalog::BlueprintRecord, StoreError> {
            Ok(gantry_catalog::BlueprintRecord {
                blueprint: crate::catalog::from_text(
                    get::<&str>(row, "definition")?,
                    "blueprint",
                )?,
                version: get(row, "version")?,
                created_at: time(get(row, "created_at")?)?,
                updated_at: time(get(row, "updated_at")?)?,
                created_by: get(row, "created_by")?,
                updated_by: get(row, "updated_by")?,
                managed_by: get(row, "managed_by")?,
            })
        }

        fn entity_record_from(row: &$row) -> Result<gantry_catalog::EntityRecord, StoreError> {
            use crate::catalog::from_text;
            Ok(gantry_catalog::EntityRecord {
                entity: gantry_catalog::Entity {
                    identifier: get(row, "identifier")?,
                    blueprint: get(row, "blueprint")?,
                    title: get(row, "title")?,
                    team: from_text(get::<&str>(row, "team")?, "entity team")?,
                    properties: from_text(get::<&str>(row, "properties")?, "entity properties")?,
                    relations: from_text(get::<&str>(row, "relations")?, "entity relations")?,
                },
                sources: from_text(get::<&str>(row, "sources")?, "entity sources")?,
                version: get(row, "version")?,
                created_at: time(get(row, "created_at")?)?,
                updated_at: time(get(row, "updated_at")?)?,
                created_by: get(row, "created_by")?,
                updated_by: get(row, "updated_by")?,
                managed_by: get(row, "managed_by")?,
            })
        }

        /// The stored versions of the keys a catalog write touches.
        async fn catalog_versions_tx(
            tx: &mut Tx,
            touched: &crate::catalog::Touched<'_>,
        ) -> Result<(Vec<(String, i64)>, Vec<(String, String, i64)>), StoreError> {
            let mut blueprints = Vec::new();
            for chunk in touched.blueprints.chunks(bulk_rows(1)) {
                let sql = format!(
                    "SELECT identifier, version FROM blueprints WHERE identifier IN (VALUES {})",
                    tuples::<$db>(1, chunk.len(), 1)
                );
                let mut query = sqlx::query_as::<_, (String, i64)>(&sql)
                    .persistent(reused(chunk.len(), bulk_rows(1)));
                for b in chunk {
                    query = query.bind(*b);
                }
                blueprints.extend(query.fetch_all(&mut **tx).await?);
            }
            let mut entities = Vec::new();
            for (blueprint, identifiers) in crate::catalog::by_blueprint(&touched.entities) {
                for chunk in identifiers.chunks(bulk_rows(1) - 1) {
                    let sql = format!(
                        "SELECT blueprint, identifier, version FROM entities \
                         WHERE blueprint = {} AND identifier IN (VALUES {})",
                        param::<$db>(1),
                        tuples::<$db>(2, chunk.len(), 1)
                    );
                    let mut query = sqlx::query_as::<_, (String, String, i64)>(&sql)
                        .persistent(reused(chunk.len(), bulk_rows(1) - 1))
                        .bind(blueprint);
                    for i in chunk {
                        query = query.bind(*i);
                    }
                    entities.extend(query.fetch_all(&mut **tx).await?);
                }
            }
            Ok((blueprints, entities))
        }

        /// The body of `write_catalog`: takes the clock, checks the versions, writes the rows,
        /// tombstones and audit events; returns the new seq.
        async fn write_catalog_tx(
            tx: &mut Tx,
            changes: &[CatalogChange],
            touched: &crate::catalog::Touched<'_>,
            rows: &[crate::catalog::RowText<'_>],
            audits: &[AuditRow<'_>],
        ) -> Result<i64, StoreError> {
            // First: on PostgreSQL this row lock makes every other catalog writer wait until we
            // commit, so the versions read below stay true and seqs commit in order.
            let seq: i64 = sqlx::query_scalar(
                "UPDATE catalog_clock SET seq = seq + 1 WHERE id = 1 RETURNING seq",
            )
            .fetch_one(&mut **tx)
            .await?;
            let (blueprints, entities) = catalog_versions_tx(tx, touched).await?;
            let stored = crate::catalog::Stored::new(&blueprints, &entities);
            let plan = crate::catalog::plan(changes, &stored)?;

            for chunk in crate::catalog::blueprint_rows(&plan, rows).chunks(bulk_rows(9)) {
                let sql = format!(
                    "INSERT INTO blueprints ({BLUEPRINT_COLS}, seq) VALUES {} \
                     ON CONFLICT (identifier) DO UPDATE SET \
                       definition = excluded.definition, version = excluded.version, \
                       created_at = excluded.created_at, updated_at = excluded.updated_at, \
                       created_by = excluded.created_by, updated_by = excluded.updated_by, \
                       managed_by = excluded.managed_by, seq = excluded.seq",
                    tuples::<$db>(1, chunk.len(), 9)
                );
                let mut query = sqlx::query(&sql).persistent(reused(chunk.len(), bulk_rows(9)));
                for (r, definition) in chunk {
                    query = query
                        .bind(&r.blueprint.identifier)
                        .bind(*definition)
                        .bind(r.version)
                        .bind(us(r.created_at))
                        .bind(us(r.updated_at))
                        .bind(&r.created_by)
                        .bind(&r.updated_by)
                        .bind(&r.managed_by)
                        .bind(seq);
                }
                query.execute(&mut **tx).await?;
            }
            $bulk::upsert_entities(tx, seq, &crate::catalog::entity_rows(&plan, rows)).await?;

            for chunk in plan.deleted_blueprints.chunks(bulk_rows(1)) {
                let sql = format!(
                    "DELETE FROM blueprints WHERE identifier IN (VALUES {})",
                    tuples::<$db>(1, chunk.len(), 1)
                );
                let mut query = sqlx::query(&sql).persistent(reused(chunk.len(), bulk_rows(1)));
                for b in chunk {
                    query = query.bind(*b);
                }
                query.execute(&mut **tx).await?;
            }
            for (blueprint, identifiers) in crate::catalog::by_blueprint(&plan.deleted_entities) {
                for chunk in identifiers.chunks(bulk_rows(1) - 1) {
                    let sql = format!(
                        "DELETE FROM entities WHERE blueprint = {} AND identifier IN (VALUES {})",
                        param::<$db>(1),
                        tuples::<$db>(2, chunk.len(), 1)
                    );
                    let mut query = sqlx::query(&sql)
                        .persistent(reused(chunk.len(), bulk_rows(1) - 1))
                        .bind(blueprint);
                    for i in chunk {
                        query = query.bind(*i);
                    }
                    query.execute(&mut **tx).await?;
                }
            }
            let tombstones: Vec<(&str, &str, Option<&str>)> = plan
                .deleted_blueprints
                .iter()
                .map(|b| ("blueprint", *b, None))
                .chain(plan.deleted_entities.iter().map(|(b, i)| ("entity", *b, Some(*i))))
                .collect();
            for chunk in tombstones.chunks(bulk_rows(4)) {
                let sql = format!(
                    "INSERT INTO catalog_tombstones (seq, kind, blueprint, identifier) VALUES {}",
                    tuples::<$db>(1, chunk.len(), 4)
                );
                let mut query = sqlx::query(&sql).persistent(reused(chunk.len(), bulk_rows(4)));
                for (kind, b, i) in chunk {
                    query = query.bind(seq).bind(*kind).bind(*b).bind(*i);
                }
                query.execute(&mut **tx).await?;
            }

            audit_rows_tx(tx, audits).await?;
            Ok(seq)
        }

        impl $store {
            async fn lease_refusal(&self, job_id: &str) -> StoreError {
                let found = sqlx::query("SELECT id FROM jobs WHERE id = $1")
                    .bind(job_id)
                    .fetch_optional(&self.reader)
                    .await;
                match found {
                    Ok(Some(_)) => {
                        StoreError::Conflict(format!("job {job_id:?}: lease not held"))
                    }
                    Ok(None) => not_found("job", job_id),
                    Err(err) => err.into(),
                }
            }
        }

        impl Store for $store {
            fn put_workflow<'a>(
                &'a self,
                new: &'a NewWorkflowVersion,
                audit: &'a Audit,
            ) -> StoreFuture<'a, i64> {
                Box::pin(async move {
                    let mut tx = self.writer.begin().await?;
                    let at = us(new.at);
                    let before: Option<i64> = sqlx::query_scalar(
                        "SELECT current_version FROM workflows \
                         WHERE name = $1 AND deleted_at IS NULL",
                    )
                    .bind(&new.name)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let version: i64 = sqlx::query_scalar(
                        "INSERT INTO workflows (name, current_version, created_at, updated_at) \
                         VALUES ($1, 1, $2, $2) \
                         ON CONFLICT (name) DO UPDATE SET \
                           current_version = workflows.current_version + 1, \
                           created_at = CASE WHEN workflows.deleted_at IS NULL \
                             THEN workflows.created_at ELSE excluded.created_at END, \
                           updated_at = excluded.updated_at, deleted_at = NULL \
                         RETURNING current_version",
                    )
                    .bind(&new.name)
                    .bind(at)
                    .fetch_one(&mut *tx)
                    .await?;
                    sqlx::query(
                        "INSERT INTO workflow_versions \
                         (name, version, yaml, canonical, created_at) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(&new.name)
                    .bind(version)
                    .bind(&new.yaml)
                    .bind(&new.canonical)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                    audit_tx(
                        &mut tx,
                        audit,
                        "workflow.put",
                        format!("workflow/{}", new.name),
                        before.map(|v| serde_json::json!({"version": v})),
                        Some(serde_json::json!({"version": version})),
                    )
                    .await?;
                    tx.commit().await?;
                    Ok(version)
                })
            }

            fn get_workflow<'a>(&'a self, name: &'a str) -> StoreFuture<'a, WorkflowVersion> {
                Box::pin(async move {
                    let row = sqlx::query(
                        "SELECT v.name, v.version, v.yaml, v.canonical, v.created_at \
                         FROM workflows w JOIN workflow_versions v \
                           ON v.name = w.name AND v.version = w.current_version \
                         WHERE w.name = $1 AND w.deleted_at IS NULL",
                    )
                    .bind(name)
                    .fetch_optional(&self.reader)
                    .await?
                    .ok_or_else(|| not_found("workflow", name))?;
                    workflow_version_from(&row)
                })
            }

            fn get_workflow_version<'a>(
                &'a self,
                name: &'a str,
                version: i64,
            ) -> StoreFuture<'a, WorkflowVersion> {
                Box::pin(async move {
                    let sql = format!(
                        "SELECT {WORKFLOW_VERSION_COLS} FROM workflow_versions \
                         WHERE name = $1 AND version = $2"
                    );
                    let row = sqlx::query(&sql)
                        .bind(name)
                        .bind(version)
                        .fetch_optional(&self.reader)
                        .await?
                        .ok_or_else(|| {
                            not_found("workflow version", &format!("{name}@{version}"))
                        })?;
                    workflow_version_from(&row)
                })
            }

            fn list_workflows<'a>(
                &'a self,
                page: &'a PageRequest,
            ) -> StoreFuture<'a, Page<WorkflowSummary>> {
                Box::pin(async move {
                    let limit = page.clamped_limit();
                    let rows = sqlx::query(
                        "SELECT name, current_version, created_at, updated_at FROM workflows \
                         WHERE deleted_at IS NULL AND ($1 IS NULL OR name > $1) \
                         ORDER BY name LIMIT $2",
                    )
                    .bind(&page.after)
                    .bind(limit + 1)
                    .fetch_all(&self.reader)
                    .await?;
                    let mut items = rows
                        .iter()
                        .map(|row| {
                            Ok(WorkflowSummary {
                                name: get(row, "name")?,
                                current_version: get(row, "current_version")?,
                                created_at: time(get(row, "created_at")?)?,
                                updated_at: time(get(row, "updated_at")?)?,
                            })
                        })
                        .collect::<Result<Vec<_>, StoreError>>()?;
                    let next = if items.len() as i64 > limit {
                        items.truncate(items.len() - 1);
                        items.last().map(|w| w.name.clone())
                    } else {
                        None
                    };
                    Ok(Page { items, next })
                })
            }

            fn list_workflow_versions<'a>(
                &'a self,
                name: &'a str,
            ) -> StoreFuture<'a, Vec<WorkflowVersion>> {
                Box::pin(async move {
                    let rows = sqlx::query(
                        "SELECT v.name, v.version, v.yaml, v.canonical, v.created_at \
                         FROM workflows w JOIN workflow_versions v ON v.name = w.name \
                         WHERE w.name = $1 AND w.deleted_at IS NULL ORDER BY v.version",
                    )
                    .bind(name)
                    .fetch_all(&self.reader)
                    .await?;
                    if rows.is_empty() {
                        return Err(not_found("workflow", name));
                    }
                    rows.iter().map(workflow_version_from).collect()
                })
            }

            fn delete_workflow<'a>(
                &'a self,
                name: &'a str,
                audit: &'a Audit,
            ) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    let mut tx = self.writer.begin().await?;
                    let before = sqlx::query(
                        "SELECT current_version, owner_team FROM workflows \
                         WHERE name = $1 AND deleted_at IS NULL",
                    )
                    .bind(name)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| not_found("workflow", name))?;
                    let before = serde_json::json!({
                        "version": get::<i64>(&before, "current_version")?,
                        "owner": get::<Option<String>>(&before, "owner_team")?,
                    });
                    sqlx::query(
                        "UPDATE workflows SET deleted_at = $2, owner_team = NULL \
                         WHERE name = $1 AND deleted_at IS NULL",
                    )
                    .bind(name)
                    .bind(us(audit.at))
                    .execute(&mut *tx)
                    .await?;
                    audit_tx(
                        &mut tx,
                        audit,
                        "workflow.delete",
                        format!("workflow/{name}"),
                        Some(before),
                        None,
                    )
                    .await?;
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn insert_event<'a>(&'a self, event: &'a NewEvent) -> StoreFuture<'a, EventInsert> {
                Box::pin(async move {
                    let mut tx = self.writer.begin().await?;
                    let inserted = insert_event_tx(&mut tx, event).await?;
                    tx.commit().await?;
                    Ok(inserted)
                })
            }

            fn get_event<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Event> {
                Box::pin(async move {
                    let sql = format!("SELECT {EVENT_COLS} FROM events WHERE id = $1");
                    let row = sqlx::query(&sql)
                        .bind(id)
                        .fetch_optional(&self.reader)
                        .await?
                        .ok_or_else(|| not_found("event", id))?;
                    event_from(&row)
                })
            }

            fn events_without_run(&self, limit: u32) -> StoreFuture<'_, Vec<Event>> {
                Box::pin(async move {
                    let sql = format!(
                        "SELECT {EVENT_COLS} FROM events WHERE run_id IS NULL \
                         ORDER BY received_at, id LIMIT $1"
                    );
                    let rows = sqlx::query(&sql)
                        .bind(scan_limit(limit))
                        .fetch_all(&self.reader)
                        .await?;
                    rows.iter().map(event_from).collect()
                })
            }

            fn create_run<'a>(&'a self, run: &'a NewRun) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    let mut tx = self.writer.begin().await?;
                    create_run_tx(&mut tx, run).await?;
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn update_run<'a>(&'a self, id: &'a str, update: &'a RunUpdate) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    let mut tx = self.writer.begin().await?;
                    update_run_tx(&mut tx, id, update).await?;
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn record_step<'a>(
                &'a self,
                run_id: &'a str,
                change: &'a StepChange,
            ) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    let mut tx = self.writer.begin().await?;
                    record_step_tx(&mut tx, run_id, change).await?;
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn set_output<'a>(
                &'a self,
                run_id: &'a str,
                output: &'a Output,
            ) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO run_outputs (run_id, step, name, value, sensitive) \
                         VALUES ($1, $2, $3, $4, $5) \
                         ON CONFLICT (run_id, step, name) DO UPDATE SET \
                           value = excluded.value, sensitive = excluded.sensitive",
                    )
                    .bind(run_id)
                    .bind(&output.step)
                    .bind(&output.name)
                    .bind(json_text(&output.value)?)
                    .bind(output.sensitive)
                    .execute(&self.writer)
                    .await
                    .map_err(|err| match StoreError::from(err) {
                        StoreError::NotFound(_) => not_found("run", run_id),
                        other => other,
                    })?;
                    Ok(())
                })
            }

            fn get_run<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Run> {
                Box::pin(async move {
                    // One read transaction, so steps and outputs belong to the same moment.
                    let mut tx = self.reader.begin().await?;
                    let sql = format!("SELECT {RUN_COLS} FROM runs WHERE id = $1");
                    let row = sqlx::query(&sql)
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?
                        .ok_or_else(|| not_found("run", id))?;
                    let summary = run_from(&row)?;
                    let steps = sqlx::query(
                        "SELECT step, state, reason, started_at, ended_at, exit_code, updated_at \
                         FROM run_steps WHERE run_id = $1 ORDER BY step",
                    )
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await?
                    .iter()
                    .map(step_from)
                    .collect::<Result<Vec<_>, _>>()?;
                    let outputs = sqlx::query(
                        "SELECT step, name, value, sensitive FROM run_outputs \
                         WHERE run_id = $1 ORDER BY step, name",
                    )
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await?
                    .iter()
                    .map(output_from)
                    .collect::<Result<Vec<_>, _>>()?;
                    tx.commit().await?;
                    Ok(Run { summary, steps, outputs })
                })
            }

            fn list_runs<'a>(
                &'a self,
                filter: &'a RunFilter,
                page: &'a PageRequest,
            ) -> StoreFuture<'a, Page<RunSummary>> {
                Box::pin(async move {
                    let limit = page.clamped_limit();
                    let (before_time, before_id) = match &page.after {
                        Some(cursor) => {
                            let (t, id) = parse_run_cursor(cursor)?;
                            (Some(t), Some(id))
                        }
                        None => (None, None),
                    };
                    let sql = format!(
                        "SELECT {RUN_COLS} FROM runs \
                         WHERE ($1 IS NULL OR workflow = $1) AND ($2 IS NULL OR status = $2) \
                           AND ($3 IS NULL OR created_at < $3 OR (created_at = $3 AND id < $4)) \
                         ORDER BY created_at DESC, id DESC LIMIT $5"
                    );
                    let rows = sqlx::query(&sql)
                        .bind(&filter.workflow)
                        .bind(filter.status.map(RunStatus::as_str))
                        .bind(before_time)
                        .bind(before_id)
                        .bind(limit + 1)
                        .fetch_all(&self.reader)
                        .await?;
                    let mut items = rows.iter().map(run_from).collect::<Result<Vec<_>, _>>()?;
                    let next = if items.len() as i64 > limit {
                        items.truncate(items.len() - 1);
                        items.last().map(|r| run_cursor(us(r.created_at), &r.id))
                    } else {
                        None
                    };
                    Ok(Page { items, next })
                })
            }

            fn runs_in_status(&self, status: RunStatus) -> StoreFuture<'_, Vec<RunSummary>> {
                Box::pin(async move {
                    let sql = format!(
                        "SELECT {RUN_COLS} FROM runs WHERE status = $1 ORDER BY created_at, id"
                    );
                    let rows = sqlx::query(&sql)
                        .bind(status.as_str())
                        .fetch_all(&self.reader)
                        .await?;
                    rows.iter().map(run_from).collect()
                })
            }

            fn append_logs<'a>(&'a self, chunks: &'a [LogChunk]) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    let mut tx = self.writer.begin().await?;
                    append_logs_tx(&mut tx, chunks).await?;
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn read_step_logs<'a>(
                &'a self,
                run_id: &'a str,
                step: &'a str,
                after: Option<i64>,
                limit: u32,
            ) -> StoreFuture<'a, Vec<StoredLogChunk>> {
                Box::pin(async move {
                    let sql = format!(
                        "SELECT {LOG_COLS} FROM log_chunks \
                         WHERE run_id = $1 AND step = $2 AND id > $3 ORDER BY id LIMIT $4"
                    );
                    let rows = sqlx::query(&sql)
                        .bind(run_id)
                        .bind(step)
                        .bind(after.unwrap_or(0))
                        .bind(scan_limit(limit))
                        .fetch_all(&self.reader)
                        .await?;
                    rows.iter().map(log_from).collect()
                })
            }

            fn read_run_logs<'a>(
                &'a self,
                run_id: &'a str,
                after: Option<i64>,
                limit: u32,
            ) -> StoreFuture<'a, Vec<StoredLogChunk>> {
                Box::pin(async move {
                    let sql = format!(
                        "SELECT {LOG_COLS} FROM log_chunks \
                         WHERE run_id = $1 AND id > $2 ORDER BY id LIMIT $3"
                    );
                    let rows = sqlx::query(&sql)
                        .bind(run_id)
                        .bind(after.unwrap_or(0))
                        .bind(scan_limit(limit))
                        .fetch_all(&self.reader)
                        .await?;
                    rows.iter().map(log_from).collect()
                })
            }

            fn enqueue<'a>(&'a self, job: &'a NewJob) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    let mut tx = self.writer.begin().await?;
                    enqueue_tx(&mut tx, job).await?;
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn claim<'a>(
                &'a self,
                pool: &'a str,
                lease: &'a Lease,
                limit: u32,
            ) -> StoreFuture<'a, Vec<Job>> {
                Box::pin(async move {
                    let mut tx = self.writer.begin().await?;
                    let jobs = claim_tx(&mut tx, pool, lease, limit).await?;
                    tx.commit().await?;
                    Ok(jobs)
                })
            }

            fn renew_leases<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, u64> {
                Box::pin(async move {
                    let now = us(lease.now);
                    let until = now.saturating_add(duration_us(lease.duration)?);
                    let done = sqlx::query(
                        "UPDATE jobs SET lease_until = $1 WHERE worker = $2 \
                         AND completed_at IS NULL AND lease_until > $3",
                    )
                    .bind(until)
                    .bind(&lease.worker)
                    .bind(now)
                    .execute(&self.writer)
                    .await?;
                    Ok(done.rows_affected())
                })
            }

            fn abandon_jobs<'a>(
                &'a self,
                run_id: &'a str,
                result: &'a serde_json::Value,
                now: chrono::DateTime<chrono::Utc>,
            ) -> StoreFuture<'a, u64> {
                Box::pin(async move {
                    let done = sqlx::query(
                        "UPDATE jobs SET completed_at = $1, result = $2, lease_until = NULL \
                         WHERE run_id = $3 AND completed_at IS NULL",
                    )
                    .bind(us(now))
                    .bind(json_text(result)?)
                    .bind(run_id)
                    .execute(&self.writer)
                    .await?;
                    Ok(done.rows_affected())
                })
            }

            fn heartbeat<'a>(&'a self, job_id: &'a str, lease: &'a Lease) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    let now = us(lease.now);
                    let until = now.saturating_add(duration_us(lease.duration)?);
                    let done = sqlx::query(
                        "UPDATE jobs SET lease_until = $1 WHERE id = $2 AND worker = $3 \
                         AND completed_at IS NULL AND lease_until > $4",
                    )
                    .bind(until)
                    .bind(job_id)
                    .bind(&lease.worker)
                    .bind(now)
                    .execute(&self.writer)
                    .await?;
                    if done.rows_affected() == 0 {
                        return Err(self.lease_refusal(job_id).await);
                    }
                    Ok(())
                })
            }

            fn complete<'a>(
                &'a self,
                job_id: &'a str,
                worker: &'a str,
                result: &'a serde_json::Value,
                now: chrono::DateTime<chrono::Utc>,
            ) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    let done = sqlx::query(
                        "UPDATE jobs SET completed_at = $1, result = $2, lease_until = NULL \
                         WHERE id = $3 AND worker = $4 AND completed_at IS NULL \
                         AND lease_until > $1",
                    )
                    .bind(us(now))
                    .bind(json_text(result)?)
                    .bind(job_id)
                    .bind(worker)
                    .execute(&self.writer)
                    .await?;
                    if done.rows_affected() == 0 {
                        return Err(self.lease_refusal(job_id).await);
                    }
                    Ok(())
                })
            }

            fn get_job<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Job> {
                Box::pin(async move {
                    let sql = format!("SELECT {JOB_COLS} FROM jobs WHERE id = $1");
                    let row = sqlx::query(&sql)
                        .bind(id)
                        .fetch_optional(&self.reader)
                        .await?
                        .ok_or_else(|| not_found("job", id))?;
                    job_from(&row)
                })
            }

            fn run_jobs<'a>(&'a self, run_id: &'a str) -> StoreFuture<'a, Vec<Job>> {
                Box::pin(async move {
                    let sql = format!(
                        "SELECT {JOB_COLS} FROM jobs WHERE run_id = $1 ORDER BY created_at, id"
                    );
                    let rows = sqlx::query(&sql)
                        .bind(run_id)
                        .fetch_all(&self.reader)
                        .await?;
                    rows.iter().map(job_from).collect()
                })
            }

            // The agents section's SQL is `agents.rs`'s.
            fn restore_lease<'a>(
                &'a self,
                job_id: &'a str,
                lease: &'a Lease,
            ) -> StoreFuture<'a, ()> {
                Box::pin(self.restore_lease_sql(job_id, lease))
            }

            fn last_log_seqs<'a>(
                &'a self,
                run_id: &'a str,
                from: i64,
                to: i64,
            ) -> StoreFuture<'a, Vec<$crate::LogMark>> {
                Box::pin(self.last_log_seqs_sql(run_id, from, to))
            }

            fn record_agents<'a>(
                &'a self,
                agents: &'a [$crate::AgentRecord],
            ) -> StoreFuture<'a, ()> {
                Box::pin(self.record_agents_sql(agents))
            }

            fn list_agents(&self) -> StoreFuture<'_, Vec<$crate::AgentRecord>> {
                Box::pin(self.list_agents_sql())
            }

            fn put_sealed<'a>(
                &'a self,
                value: &'a SealedValue,
                audit: &'a Audit,
            ) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    let mut tx = self.writer.begin().await?;
                    let before: Option<i64> = sqlx::query_scalar(
                        "SELECT updated_at FROM sealed_values \
                         WHERE kind = $1 AND scope = $2 AND name = $3",
                    )
                    .bind(value.kind.as_str())
                    .bind(&value.scope)
                    .bind(&value.name)
                    .fetch_optional(&mut *tx)
                    .await?;
                    sqlx::query(
                        "INSERT INTO sealed_values \
                         (kind, scope, name, key_id, nonce, ciphertext, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) \
                         ON CONFLICT (kind, scope, name) DO UPDATE SET key_id = excluded.key_id, \
                           nonce = excluded.nonce, ciphertext = excluded.ciphertext, \
                           updated_at = excluded.updated_at",
                    )
                    .bind(value.kind.as_str())
                    .bind(&value.scope)
                    .bind(&value.name)
                    .bind(&value.key_id)
                    .bind(&value.nonce)
                    .bind(&value.ciphertext)
                    .bind(us(value.updated_at))
                    .execute(&mut *tx)
                    .await?;
                    audit_tx(
                        &mut tx,
                        audit,
                        match value.kind {
                            SealedKind::Secret => "secret.put",
                            SealedKind::Connection => "connection.put",
                        },
                        sealed_resource(value.kind, &value.scope, &value.name),
                        before.map(sealed_audit).transpose()?,
                        Some(sealed_audit(us(value.updated_at))?),
                    )
                    .await?;
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn get_sealed<'a>(
                &'a self,
                kind: SealedKind,
                scope: &'a str,
                name: &'a str,
            ) -> StoreFuture<'a, SealedValue> {
                Box::pin(async move {
                    let row = sqlx::query(
                        "SELECT scope, name, key_id, nonce, ciphertext, updated_at \
                         FROM sealed_values WHERE kind = $1 AND scope = $2 AND name = $3",
                    )
                    .bind(kind.as_str())
                    .bind(scope)
                    .bind(name)
                    .fetch_optional(&self.reader)
                    .await?
                    .ok_or_else(|| not_found(kind.as_str(), &format!("{scope}/{name}")))?;
                    sealed_from(&row, kind)
                })
            }

            fn list_sealed_names<'a>(
                &'a self,
                kind: SealedKind,
                scope: &'a str,
            ) -> StoreFuture<'a, Vec<String>> {
                Box::pin(async move {
                    let names = sqlx::query_scalar(
                        "SELECT name FROM sealed_values WHERE kind = $1 AND scope = $2 \
                         ORDER BY name",
                    )
                    .bind(kind.as_str())
                    .bind(scope)
                    .fetch_all(&self.reader)
                    .await?;
                    Ok(names)
                })
            }

            fn delete_sealed<'a>(
                &'a self,
                kind: SealedKind,
                scope: &'a str,
                name: &'a str,
                audit: &'a Audit,
            ) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    let mut tx = self.writer.begin().await?;
                    let before: i64 = sqlx::query_scalar(
                        "DELETE FROM sealed_values WHERE kind = $1 AND scope = $2 AND name = $3 \
                         RETURNING updated_at",
                    )
                    .bind(kind.as_str())
                    .bind(scope)
                    .bind(name)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| not_found(kind.as_str(), &format!("{scope}/{name}")))?;
                    audit_tx(
                        &mut tx,
                        audit,
                        match kind {
                            SealedKind::Secret => "secret.delete",
                            SealedKind::Connection => "connection.delete",
                        },
                        sealed_resource(kind, scope, name),
                        Some(sealed_audit(before)?),
                        None,
                    )
                    .await?;
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn ensure_trigger<'a>(
                &'a self,
                id: &'a str,
                workflow: &'a str,
                name: &'a str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> StoreFuture<'a, TriggerRecord> {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO triggers (id, workflow, name, created_at) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (workflow, name) DO NOTHING",
                    )
                    .bind(id)
                    .bind(workflow)
                    .bind(name)
                    .bind(us(at))
                    .execute(&self.writer)
                    .await?;
                    let sql = format!(
                        "SELECT {TRIGGER_COLS} FROM triggers WHERE workflow = $1 AND name = $2"
                    );
                    // Read on the writer: the row may have been written a moment ago.
                    let row = sqlx::query(&sql)
                        .bind(workflow)
                        .bind(name)
                        .fetch_optional(&self.writer)
                        .await?
                        .ok_or_else(|| not_found("trigger", &format!("{workflow}/{name}")))?;
                    trigger_from(&row)
                })
            }

            fn find_trigger<'a>(&'a self, id: &'a str) -> StoreFuture<'a, TriggerRecord> {
                Box::pin(async move {
                    let sql = format!("SELECT {TRIGGER_COLS} FROM triggers WHERE id = $1");
                    let row = sqlx::query(&sql)
                        .bind(id)
                        .fetch_optional(&self.reader)
                        .await?
                        .ok_or_else(|| not_found("trigger", id))?;
                    trigger_from(&row)
                })
            }

            fn list_triggers<'a>(
                &'a self,
                workflow: &'a str,
            ) -> StoreFuture<'a, Vec<TriggerRecord>> {
                Box::pin(async move {
                    let sql = format!(
                        "SELECT {TRIGGER_COLS} FROM triggers WHERE workflow = $1 ORDER BY name"
                    );
                    let rows = sqlx::query(&sql)
                        .bind(workflow)
                        .fetch_all(&self.reader)
                        .await?;
                    rows.iter().map(trigger_from).collect()
                })
            }

            fn mark_fired<'a>(
                &'a self,
                workflow: &'a str,
                name: &'a str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    let mut tx = self.writer.begin().await?;
                    mark_fired_tx(&mut tx, workflow, name, at).await?;
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn create_push_token<'a>(
                &'a self,
                token: &'a PushToken,
                audit: &'a Audit,
            ) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    let mut tx = self.writer.begin().await?;
                    sqlx::query(
                        "INSERT INTO push_tokens (id, workflow, trigger_name, created_at, \
                         revoked_at) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(&token.id)
                    .bind(&token.workflow)
                    .bind(&token.trigger)
                    .bind(us(token.created_at))
                    .bind(opt_us(token.revoked_at))
                    .execute(&mut *tx)
                    .await?;
                    audit_tx(
                        &mut tx,
                        audit,
                        "push_token.create",
                        format!("workflow/{}/push-token/{}", token.workflow, token.id),
                        None,
                        Some(serde_json::json!({"id": token.id, "trigger": token.trigger})),
                    )
                    .await?;
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn get_push_token<'a>(&'a self, id: &'a str) -> StoreFuture<'a, PushToken> {
                Box::pin(async move {
                    let sql = format!("SELECT {PUSH_TOKEN_COLS} FROM push_tokens WHERE id = $1");
                    let row = sqlx::query(&sql)
                        .bind(id)
                        .fetch_optional(&self.reader)
                        .await?
                        .ok_or_else(|| not_found("push token", id))?;
                    push_token_from(&row)
                })
            }

            fn list_push_tokens<'a>(
                &'a self,
                workflow: &'a str,
                trigger: &'a str,
            ) -> StoreFuture<'a, Vec<PushToken>> {
                Box::pin(async move {
                    let sql = format!(
                        "SELECT {PUSH_TOKEN_COLS} FROM push_tokens \
                         WHERE workflow = $1 AND trigger_name = $2 ORDER BY created_at, id"
                    );
                    let rows = sqlx::query(&sql)
                        .bind(workflow)
                        .bind(trigger)
                        .fetch_all(&self.reader)
                        .await?;
                    rows.iter().map(push_token_from).collect()
                })
            }

            fn revoke_push_token<'a>(
                &'a self,
                id: &'a str,
                audit: &'a Audit,
            ) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    let mut tx = self.writer.begin().await?;
                    let sql = format!("SELECT {PUSH_TOKEN_COLS} FROM push_tokens WHERE id = $1");
                    let before = sqlx::query(&sql)
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?
                        .ok_or_else(|| not_found("push token", id))?;
                    let before = push_token_from(&before)?;
                    revoke_tx(
                        &mut tx,
                        "push_tokens",
                        id,
                        opt_us(before.revoked_at),
                        audit,
                        "push_token.revoke",
                        format!("workflow/{}/push-token/{id}", before.workflow),
                    )
                    .await?;
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn create_user<'a>(&'a self, user: &'a User, audit: &'a Audit) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    let mut tx = self.writer.begin().await?;
                    sqlx::query(
                        "INSERT INTO users (id, email, name, role, password_hash, created_at, \
                         disabled_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(&user.id)
                    .bind(&user.email)
                    .bind(&user.name)
                    .bind(&user.role)
                    .bind(&user.password_hash)
                    .bind(us(user.created_at))
                    .bind(opt_us(user.disabled_at))
                    .execute(&mut *tx)
                    .await?;
                    audit_tx(
                        &mut tx,
                        audit,
                        "user.create",
                        format!("user/{}", user.email),
                        None,
                        // Whether a password is set, never its hash.
                        Some(serde_json::json!({
                            "id": user.id,
                            "email": user.email,
                            "name": user.name,
                            "role": user.role,
                            "password": user.password_hash.is_some(),
                        })),
                    )
                    .await?;
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn get_user<'a>(&'a self, id: &'a str) -> StoreFuture<'a, User> {
                Box::pin(async move {
                    let sql = format!("SELECT {USER_COLS} FROM users WHERE id = $1");
                    let row = sqlx::query(&sql)
                        .bind(id)
                        .fetch_optional(&self.reader)
                        .await?
                        .ok_or_else(|| not_found("user", id))?;
                    user_from(&row)
                })
            }

            fn find_user<'a>(&'a self, email: &'a str) -> StoreFuture<'a, User> {
                Box::pin(async move {
                    let sql = format!("SELECT {USER_COLS} FROM users WHERE email = $1");
                    let row = sqlx::query(&sql)
                        .bind(email)
                        .fetch_optional(&self.reader)
                        .await?
                        .ok_or_else(|| not_found("user", email))?;
                    user_from(&row)
                })
            }

            fn list_users(&self) -> StoreFuture<'_, Vec<User>> {
                Box::pin(async move {
                    let sql = format!("SELECT {USER_COLS} FROM users ORDER BY email");
                    let rows = sqlx::query(&sql).fetch_all(&self.reader).await?;
                    rows.iter().map(user_from).collect()
                })
            }

            fn create_team<'a>(&'a self, team: &'a Team, audit: &'a Audit) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    let mut tx = self.writer.begin().await?;
                    sqlx::query("INSERT INTO teams (name, title, created_at) VALUES ($1, $2, $3)")
                        .bind(&team.name)
                        .bind(&team.title)
                        .bind(us(team.created_at))
                        .execute(&mut *tx)
                        .await?;
                    audit_tx(
                        &mut tx,
                        audit,
                        "team.create",
                        format!("team/{}", team.name),
                        None,
                        Some(serde_json::json!({"name": team.name, "title": team.title})),
                    )
                    .await?;
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn list_teams(&self) -> StoreFuture<'_, Vec<Team>> {
                Box::pin(async move {
                    let rows = sqlx::query("SELECT name, title, created_at FROM teams ORDER BY name")
                        .fetch_all(&self.reader)
                        .await?;
                    rows.iter()
                        .map(|row| {
                            Ok(Team {
                                name: get(row, "name")?,
                                title: get(row, "title")?,
                                created_at: time(get(row, "created_at")?)?,
                            })
                        })
                        .collect()
                })
            }

            fn set_team_member<'a>(
                &'a self,
                member: &'a TeamMember,
                audit: &'a Audit,
            ) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    let mut tx = self.writer.begin().await?;
                    let team = sqlx::query("SELECT name FROM teams WHERE name = $1")
                        .bind(&member.team)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if team.is_none() {
                        return Err(not_found("team", &member.team));
                    }
                    let email: String = sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
                        .bind(&member.user_id)
                        .fetch_optional(&mut *tx)
                        .await?
                        .ok_or_else(|| not_found("user", &member.user_id))?;
                    let before: Option<bool> = sqlx::query_scalar(
                        "SELECT maintainer FROM team_members WHERE team = $1 AND user_id = $2",
                    )
                    .bind(&member.team)
                    .bind(&member.user_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    sqlx::query(
                        "INSERT INTO team_members (team, user_id, maintainer) VALUES ($1, $2, $3) \
                         ON CONFLICT (team, user_id) DO UPDATE SET maintainer = excluded.maintainer",
                    )
                    .bind(&member.team)
                    .bind(&member.user_id)
                    .bind(member.maintainer)
                    .execute(&mut *tx)
                    .await?;
                    audit_tx(
                        &mut tx,
                        audit,
                        "team.member.put",
                        format!("team/{}/member/{email}", member.team),
                        before.map(|m| serde_json::json!({"maintainer": m})),
                        Some(serde_json::json!({"maintainer": member.maintainer})),
                    )
                    .await?;
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn remove_team_member<'a>(
                &'a self,
                team: &'a str,
                user_id: &'a str,
                audit: &'a Audit,
            ) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    let mut tx = self.writer.begin().await?;
                    let row = sqlx::query(
                        "DELETE FROM team_members WHERE team = $1 AND user_id = $2 \
                         RETURNING maintainer",
                    )
                    .bind(team)
                    .bind(user_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| not_found("team member", &format!("{team}/{user_id}")))?;
                    let maintainer: bool = get(&row, "maintainer")?;
                    let email: String = sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
                        .bind(user_id)
                        .fetch_one(&mut *tx)
                        .await?;
                    audit_tx(
                        &mut tx,
                        audit,
                        "team.member.delete",
                        format!("team/{team}/member/{email}"),
                        Some(serde_json::json!({"maintainer": maintainer})),
                        None,
                    )
                    .await?;
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn list_team_members(&self) -> StoreFuture<'_, Vec<TeamMember>> {
                Box::pin(async move {
                    let rows = sqlx::query(
                        "SELECT team, user_id, maintainer FROM team_members \
                         ORDER BY team, user_id",
                    )
                    .fetch_all(&self.reader)
                    .await?;
                    rows.iter().map(member_from).collect()
                })
            }

            fn user_teams<'a>(&'a self, user_id: &'a str) -> StoreFuture<'a, Vec<TeamMember>> {
                Box::pin(async move {
                    let rows = sqlx::query(
                        "SELECT team, user_id, maintainer FROM team_members WHERE user_id = $1 \
                         ORDER BY team",
                    )
                    .bind(user_id)
                    .fetch_all(&self.reader)
                    .await?;
                    rows.iter().map(member_from).collect()
                })
            }

            fn create_service_account<'a>(
                &'a self,
                account: &'a ServiceAccount,
                audit: &'a Audit,
            ) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    let mut tx = self.writer.begin().await?;
                    if let Some(team) = &account.team {
                        let found = sqlx::query("SELECT name FROM teams WHERE name = $1")
                            .bind(team)
                            .fetch_optional(&mut *tx)
                            .await?;
                        if found.is_none() {
                            return Err(not_found("team", team));
                        }
                    }
                    sqlx::query(
                        "INSERT INTO service_accounts (id, name, role, team, created_at, \
                         disabled_at) VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(&account.id)
                    .bind(&account.name)
                    .bind(&account.role)
                    .bind(&account.team)
                    .bind(us(account.created_at))
                    .bind(opt_us(account.disabled_at))
                    .execute(&mut *tx)
                    .await?;
                    audit_tx(
                        &mut tx,
                        audit,
                        "service_account.create",
                        format!("service-account/{}", account.name),
                        None,
                        Some(serde_json::json!({
                            "id": account.id,
                            "name": account.name,
                            "role": account.role,
                            "team": account.team,
                        })),
                    )
                    .await?;
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn get_service_account<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ServiceAccount> {
                Box::pin(async move {
                    let sql =
                        format!("SELECT {SERVICE_ACCOUNT_COLS} FROM service_accounts WHERE id = $1");
                    let row = sqlx::query(&sql)
                        .bind(id)
                        .fetch_optional(&self.reader)
                        .await?
                        .ok_or_else(|| not_found("service account", id))?;
                    service_account_from(&row)
                })
            }

            fn find_service_account<'a>(
                &'a self,
                name: &'a str,
            ) -> StoreFuture<'a, ServiceAccount> {
                Box::pin(async move {
                    let sql = format!(
                        "SELECT {SERVICE_ACCOUNT_COLS} FROM service_accounts WHERE name = $1"
                    );
                    let row = sqlx::query(&sql)
                        .bind(name)
                        .fetch_optional(&self.reader)
                        .await?
                        .ok_or_else(|| not_found("service account", name))?;
                    service_account_from(&row)
                })
            }

            fn list_service_accounts(&self) -> StoreFuture<'_, Vec<ServiceAccount>> {
                Box::pin(async move {
                    let sql =
                        format!("SELECT {SERVICE_ACCOUNT_COLS} FROM service_accounts ORDER BY name");
                    let rows = sqlx::query(&sql).fetch_all(&self.reader).await?;
                    rows.iter().map(service_account_from).collect()
                })
            }

            fn set_workflow_owner<'a>(
                &'a self,
                workflow: &'a str,
                team: Option<&'a str>,
                audit: &'a Audit,
            ) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    let mut tx = self.writer.begin().await?;
                    if let Some(team) = team {
                        let found = sqlx::query("SELECT name FROM teams WHERE name = $1")
                            .bind(team)
                            .fetch_optional(&mut *tx)
                            .await?;
                        if found.is_none() {
                            return Err(not_found("team", team));
                        }
                    }
                    let before = sqlx::query(
                        "SELECT owner_team FROM workflows WHERE name = $1 AND deleted_at IS NULL",
                    )
                    .bind(workflow)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| not_found("workflow", workflow))?;
                    let before: Option<String> = get(&before, "owner_team")?;
                    sqlx::query("UPDATE workflows SET owner_team = $2 WHERE name = $1")
                        .bind(workflow)
                        .bind(team)
                        .execute(&mut *tx)
                        .await?;
                    audit_tx(
                        &mut tx,
                        audit,
                        "workflow.owner",
                        format!("workflow/{workflow}"),
                        Some(serde_json::json!({"owner": before})),
                        Some(serde_json::json!({"owner": team})),
                    )
                    .await?;
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn workflow_owner<'a>(&'a self, workflow: &'a str) -> StoreFuture<'a, Option<String>> {
                Box::pin(async move {
                    let row = sqlx::query(
                        "SELECT owner_team FROM workflows WHERE name = $1 AND deleted_at IS NULL",
                    )
                    .bind(workflow)
                    .fetch_optional(&self.reader)
                    .await?
                    .ok_or_else(|| not_found("workflow", workflow))?;
                    get(&row, "owner_team")
                })
            }

            fn create_api_key<'a>(&'a self, key: &'a ApiKey, audit: &'a Audit) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    let mut tx = self.writer.begin().await?;
                    sqlx::query(
                        "INSERT INTO api_keys (id, prefix, hash, principal, created_at, \
                         last_used_at, expires_at, revoked_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(&key.id)
                    .bind(&key.prefix)
                    .bind(&key.hash)
                    .bind(&key.principal)
                    .bind(us(key.created_at))
                    .bind(opt_us(key.last_used_at))
                    .bind(opt_us(key.expires_at))
                    .bind(opt_us(key.revoked_at))
                    .execute(&mut *tx)
                    .await?;
                    // The prefix is what listings show; the key and its hash never appear.
                    audit_tx(
                        &mut tx,
                        audit,
                        "api_key.create",
                        format!("api-key/{}", key.id),
                        None,
                        Some(serde_json::json!({
                            "id": key.id,
                            "prefix": key.prefix,
                            "principal": key.principal,
                            "expiresAt": key.expires_at.map(|t| t.to_rfc3339()),
                        })),
                    )
                    .await?;
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn find_api_key<'a>(&'a self, prefix: &'a str) -> StoreFuture<'a, ApiKey> {
                Box::pin(async move {
                    let sql = format!("SELECT {API_KEY_COLS} FROM api_keys WHERE prefix = $1");
                    let row = sqlx::query(&sql)
                        .bind(prefix)
                        .fetch_optional(&self.reader)
                        .await?
                        .ok_or_else(|| not_found("API key with prefix", prefix))?;
                    api_key_from(&row)
                })
            }

            fn touch_api_key<'a>(
                &'a self,
                id: &'a str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    let done = sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
                        .bind(id)
                        .bind(us(at))
                        .execute(&self.writer)
                        .await?;
                    if done.rows_affected() == 0 {
                        return Err(not_found("API key", id));
                    }
                    Ok(())
                })
            }

            fn list_api_keys(&self) -> StoreFuture<'_, Vec<ApiKey>> {
                Box::pin(async move {
                    let sql =
                        format!("SELECT {API_KEY_COLS} FROM api_keys ORDER BY created_at, id");
                    let rows = sqlx::query(&sql).fetch_all(&self.reader).await?;
                    rows.iter().map(api_key_from).collect()
                })
            }

            fn revoke_api_key<'a>(&'a self, id: &'a str, audit: &'a Audit) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    let mut tx = self.writer.begin().await?;
                    let before: Option<i64> = sqlx::query_scalar::<_, Option<i64>>(
                        "SELECT revoked_at FROM api_keys WHERE id = $1",
                    )
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| not_found("API key", id))?;
                    revoke_tx(
                        &mut tx,
                        "api_keys",
                        id,
                        before,
                        audit,
                        "api_key.revoke",
                        format!("api-key/{id}"),
                    )
                    .await?;
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn set_user_password<'a>(
                &'a self,
                user_id: &'a str,
                hash: Option<&'a str>,
                audit: &'a Audit,
            ) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    let mut tx = self.writer.begin().await?;
                    let row = sqlx::query("SELECT email, password_hash FROM users WHERE id = $1")
                        .bind(user_id)
                        .fetch_optional(&mut *tx)
                        .await?
                        .ok_or_else(|| not_found("user", user_id))?;
                    let email: String = get(&row, "email")?;
                    let had: Option<String> = get(&row, "password_hash")?;
                    sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
                        .bind(user_id)
                        .bind(hash)
                        .execute(&mut *tx)
                        .await?;
                    audit_tx(
                        &mut tx,
                        audit,
                        "user.password",
                        format!("user/{email}"),
                        Some(serde_json::json!({"password": had.is_some()})),
                        Some(serde_json::json!({"password": hash.is_some()})),
                    )
                    .await?;
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn set_user_role<'a>(
                &'a self,
                user_id: &'a str,
                role: &'a str,
                audit: &'a Audit,
            ) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    let mut tx = self.writer.begin().await?;
                    let row = sqlx::query("SELECT email, role FROM users WHERE id = $1")
                        .bind(user_id)
                        .fetch_optional(&mut *tx)
                        .await?
                        .ok_or_else(|| not_found("user", user_id))?;
                    let email: String = get(&row, "email")?;
                    let before: String = get(&row, "role")?;
                    sqlx::query("UPDATE users SET role = $2 WHERE id = $1")
                        .bind(user_id)
                        .bind(role)
                        .execute(&mut *tx)
                        .await?;
                    audit_tx(
                        &mut tx,
                        audit,
                        "user.role",
                        format!("user/{email}"),
                        Some(serde_json::json!({"role": before})),
                        Some(serde_json::json!({"role": role})),
                    )
                    .await?;
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn create_session<'a>(
                &'a self,
                session: &'a Session,
                audit: &'a Audit,
            ) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    let mut tx = self.writer.begin().await?;
                    let email: String = sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
                        .bind(&session.user_id)
                        .fetch_optional(&mut *tx)
                        .await?
                        .ok_or_else(|| not_found("user", &session.user_id))?;
                    sqlx::query(
                        "INSERT INTO sessions (id, hash, user_id, via, created_at, expires_at, \
                         revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(&session.id)
                    .bind(&session.hash)
                    .bind(&session.user_id)
                    .bind(&session.via)
                    .bind(us(session.created_at))
                    .bind(us(session.expires_at))
                    .bind(opt_us(session.revoked_at))
                    .execute(&mut *tx)
                    .await?;
                    audit_tx(
                        &mut tx,
                        audit,
                        "session.create",
                        format!("user/{email}/session/{}", session.id),
                        None,
                        Some(serde_json::json!({
                            "via": session.via,
                            "expiresAt": session.expires_at.to_rfc3339(),
                        })),
                    )
                    .await?;
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn get_session<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Session> {
                Box::pin(async move {
                    let row = sqlx::query(
                        "SELECT id, hash, user_id, via, created_at, expires_at, revoked_at \
                         FROM sessions WHERE id = $1",
                    )
                    .bind(id)
                    .fetch_optional(&self.reader)
                    .await?
                    .ok_or_else(|| not_found("session", id))?;
                    Ok(Session {
                        id: get(&row, "id")?,
                        hash: get(&row, "hash")?,
                        user_id: get(&row, "user_id")?,
                        via: get(&row, "via")?,
                        created_at: time(get(&row, "created_at")?)?,
                        expires_at: time(get(&row, "expires_at")?)?,
                        revoked_at: opt_time(get(&row, "revoked_at")?)?,
                    })
                })
            }

            fn revoke_session<'a>(&'a self, id: &'a str, audit: &'a Audit) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    let mut tx = self.writer.begin().await?;
                    let row = sqlx::query(
                        "SELECT s.revoked_at, u.email FROM sessions s \
                         JOIN users u ON u.id = s.user_id WHERE s.id = $1",
                    )
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| not_found("session", id))?;
                    let before: Option<i64> = get(&row, "revoked_at")?;
                    let email: String = get(&row, "email")?;
                    revoke_tx(
                        &mut tx,
                        "sessions",
                        id,
                        before,
                        audit,
                        "session.revoke",
                        format!("user/{email}/session/{id}"),
                    )
                    .await?;
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn append_audit<'a>(&'a self, event: &'a NewAuditEvent) -> StoreFuture<'a, i64> {
                Box::pin(async move {
                    let mut tx = self.writer.begin().await?;
                    let seq = audit_tx(
                        &mut tx,
                        &event.audit,
                        &event.action,
                        event.resource.clone(),
                        event.before.clone(),
                        event.after.clone(),
                    )
                    .await?;
                    tx.commit().await?;
                    Ok(seq)
                })
            }

            fn list_audit<'a>(
                &'a self,
                filter: &'a AuditFilter,
                page: &'a PageRequest,
            ) -> StoreFuture<'a, Page<AuditEvent>> {
                Box::pin(async move {
                    let limit = page.clamped_limit();
                    let after: Option<i64> = page
                        .after
                        .as_deref()
                        .map(|c| c.parse().map_err(|_| StoreError::InvalidCursor))
                        .transpose()?;
                    let (lo, hi) = match &filter.resource {
                        Some(r) => {
                            let (lo, hi) = resource_range(r);
                            (Some(lo), Some(hi))
                        }
                        None => (None, None),
                    };
                    let action_kind = filter.action.as_ref().map(|a| format!("{a}."));
                    let action_end = filter.action.as_ref().map(|a| format!("{a}/"));
                    let rows = sqlx::query(
                        "SELECT seq, at, actor_kind, actor_id, actor_name, action, resource, \
                         before, after, request_id, source FROM audit_events \
                         WHERE ($1 IS NULL OR seq < $1) \
                           AND ($2 IS NULL OR resource = $2 OR (resource >= $3 AND resource < $4)) \
                           AND ($5 IS NULL OR actor_id = $5 OR actor_name = $5) \
                           AND ($6 IS NULL OR action = $6 OR (action >= $7 AND action < $8)) \
                           AND ($9 IS NULL OR at >= $9) AND ($10 IS NULL OR at < $10) \
                         ORDER BY seq DESC LIMIT $11",
                    )
                    .bind(after)
                    .bind(&filter.resource)
                    .bind(&lo)
                    .bind(&hi)
                    .bind(&filter.actor)
                    .bind(&filter.action)
                    .bind(&action_kind)
                    .bind(&action_end)
                    .bind(opt_us(filter.since))
                    .bind(opt_us(filter.until))
                    .bind(limit + 1)
                    .fetch_all(&self.reader)
                    .await?;
                    let mut items = rows
                        .iter()
                        .map(audit_event_from)
                        .collect::<Result<Vec<_>, StoreError>>()?;
                    let next = if items.len() as i64 > limit {
                        items.truncate(items.len() - 1);
                        items.last().map(|e| e.seq.to_string())
                    } else {
                        None
                    };
                    Ok(Page { items, next })
                })
            }

            fn write_catalog<'a>(&'a self, write: &'a CatalogWrite) -> StoreFuture<'a, i64> {
                self.write_catalogs(std::slice::from_ref(write))
            }

            fn write_catalogs<'a>(&'a self, writes: &'a [CatalogWrite]) -> StoreFuture<'a, i64> {
                Box::pin(async move {
                    let joined: Vec<CatalogChange>;
                    let changes: &[CatalogChange] = match writes {
                        [one] => &one.changes,
                        many => {
                            joined = many.iter().flat_map(|w| w.changes.iter().cloned()).collect();
                            &joined
                        }
                    };
                    if changes.is_empty() {
                        return self.catalog_seq().await;
                    }
                    // What needs no stored row is prepared before the clock is taken, so other
                    // catalog writers wait for SQL only.
                    let touched = crate::catalog::touched(changes);
                    let rows = changes
                        .iter()
                        .map(crate::catalog::row_text)
                        .collect::<Result<Vec<_>, StoreError>>()?;
                    let audits = writes
                        .iter()
                        .flat_map(|w| w.changes.iter().map(move |c| (&w.audit, c)))
                        .map(|(audit, change)| {
                            let a = crate::catalog::audit_text(change)?;
                            Ok(AuditRow {
                                audit,
                                action: a.action,
                                resource: a.resource,
                                before: a.before,
                                after: a.after,
                            })
                        })
                        .collect::<Result<Vec<_>, StoreError>>()?;
                    let mut tx = self.writer.begin().await?;
                    let seq = write_catalog_tx(&mut tx, changes, &touched, &rows, &audits).await?;
                    tx.commit().await?;
                    Ok(seq)
                })
            }

            fn catalog_seq(&self) -> StoreFuture<'_, i64> {
                Box::pin(async move {
                    let seq = sqlx::query_scalar("SELECT seq FROM catalog_clock WHERE id = 1")
                        .fetch_one(&self.reader)
                        .await?;
                    Ok(seq)
                })
            }

            fn catalog_changes(&self, since: i64) -> StoreFuture<'_, CatalogChanges> {
                Box::pin(async move {
                    let mut tx = self.reader.begin().await?;
                    // One snapshot for the clock and every table: the rows and tombstones are
                    // exactly those of the writes up to `seq`.
                    if !$snapshot.is_empty() {
                        sqlx::query($snapshot).execute(&mut *tx).await?;
                    }
                    let seq: i64 =
                        sqlx::query_scalar("SELECT seq FROM catalog_clock WHERE id = 1")
                            .fetch_one(&mut *tx)
                            .await?;
                    // Sorted here, not by `ORDER BY`: asked to sort, SQLite walks the whole
                    // table in key order instead of the few rows the `seq` index finds (tens
                    // of milliseconds at 100,000 entities, for a catch-up of one write).
                    let sql = format!("SELECT {BLUEPRINT_COLS} FROM blueprints WHERE seq > $1");
                    let mut blueprints = sqlx::query(&sql)
                        .bind(since)
                        .fetch_all(&mut *tx)
                        .await?
                        .iter()
                        .map(blueprint_record_from)
                        .collect::<Result<Vec<_>, _>>()?;
                    blueprints.sort_unstable_by(|a, b| {
                        a.blueprint.identifier.cmp(&b.blueprint.identifier)
                    });
                    // Everything (the first load): one walk of the table beats 100,000 index
                    // lookups (every row's seq is above 0).
                    let sql = if since > 0 {
                        format!("SELECT {ENTITY_COLS} FROM entities WHERE seq > $1")
                    } else {
                        format!("SELECT {ENTITY_COLS} FROM entities WHERE $1 = 0")
                    };
                    let mut entities = sqlx::query(&sql)
                        .bind(since)
                        .fetch_all(&mut *tx)
                        .await?
                        .iter()
                        .map(entity_record_from)
                        .collect::<Result<Vec<_>, _>>()?;
                    entities.sort_unstable_by(|a, b| {
                        (&a.entity.blueprint, &a.entity.identifier)
                            .cmp(&(&b.entity.blueprint, &b.entity.identifier))
                    });
                    // A key deleted and re-created since is a row above, not a deletion.
                    let deleted_blueprints: Vec<String> = sqlx::query_scalar(
                        "SELECT DISTINCT t.blueprint FROM catalog_tombstones t \
                         WHERE t.seq > $1 AND t.kind = 'blueprint' AND NOT EXISTS \
                           (SELECT 1 FROM blueprints b WHERE b.identifier = t.blueprint) \
                         ORDER BY t.blueprint",
                    )
                    .bind(since)
                    .fetch_all(&mut *tx)
                    .await?;
                    let deleted_entities: Vec<(String, String)> = sqlx::query_as(
                        "SELECT DISTINCT t.blueprint, t.identifier FROM catalog_tombstones t \
                         WHERE t.seq > $1 AND t.kind = 'entity' AND NOT EXISTS \
                           (SELECT 1 FROM entities e \
                            WHERE e.blueprint = t.blueprint AND e.identifier = t.identifier) \
                         ORDER BY t.blueprint, t.identifier",
                    )
                    .bind(since)
                    .fetch_all(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(CatalogChanges {
                        seq,
                        blueprints,
                        entities,
                        deleted_blueprints,
                        deleted_entities,
                    })
                })
            }

            fn put_action<'a>(
                &'a self,
                action: &'a StoredAction,
                expected: Option<i64>,
                audit: &'a Audit,
            ) -> StoreFuture<'a, ()> {
                self.put_definition($crate::DefinitionKind::Action, action, expected, audit)
            }

            fn get_action<'a>(&'a self, identifier: &'a str) -> StoreFuture<'a, StoredAction> {
                self.get_definition($crate::DefinitionKind::Action, identifier)
            }

            fn list_actions(&self) -> StoreFuture<'_, Vec<StoredAction>> {
                self.list_definitions($crate::DefinitionKind::Action)
            }

            fn delete_action<'a>(
                &'a self,
                identifier: &'a str,
                audit: &'a Audit,
            ) -> StoreFuture<'a, ()> {
                self.delete_definition($crate::DefinitionKind::Action, identifier, audit)
            }

            fn put_definition<'a>(
                &'a self,
                kind: $crate::DefinitionKind,
                def: &'a StoredAction,
                expected: Option<i64>,
                audit: &'a Audit,
            ) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    let (name, table) = (kind.as_str(), kind.table());
                    let mut tx = self.writer.begin().await?;
                    let sql = format!("SELECT {ACTION_COLS} FROM {table} WHERE identifier = $1");
                    let before = sqlx::query(&sql)
                        .bind(&def.identifier)
                        .fetch_optional(&mut *tx)
                        .await?
                        .map(|r| stored_action_from(&r))
                        .transpose()?;
                    let found = before.as_ref().map(|b| b.version);
                    if found != expected {
                        return Err(StoreError::Conflict(format!(
                            "{name} `{}` is at version {}, not {}",
                            def.identifier,
                            found.map_or("none".to_owned(), |v| v.to_string()),
                            expected.map_or("none".to_owned(), |v| v.to_string()),
                        )));
                    }
                    let definition = json_text(&def.definition)?;
                    sqlx::query(&format!(
                        "INSERT INTO {table} (identifier, definition, version, created_at, \
                         updated_at, created_by, updated_by, managed_by) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                         ON CONFLICT (identifier) DO UPDATE SET definition = $2, version = $3, \
                         updated_at = $5, updated_by = $7, managed_by = $8"
                    ))
                    .bind(&def.identifier)
                    .bind(&definition)
                    .bind(def.version)
                    .bind(us(def.created_at))
                    .bind(us(def.updated_at))
                    .bind(&def.created_by)
                    .bind(&def.updated_by)
                    .bind(&def.managed_by)
                    .execute(&mut *tx)
                    .await?;
                    let verb = if before.is_some() { "update" } else { "create" };
                    audit_tx(
                        &mut tx,
                        audit,
                        &format!("{name}.{verb}"),
                        format!("{name}/{}", def.identifier),
                        before.map(|b| b.definition),
                        Some(def.definition.clone()),
                    )
                    .await?;
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn get_definition<'a>(
                &'a self,
                kind: $crate::DefinitionKind,
                identifier: &'a str,
            ) -> StoreFuture<'a, StoredAction> {
                Box::pin(async move {
                    let sql = format!(
                        "SELECT {ACTION_COLS} FROM {} WHERE identifier = $1",
                        kind.table()
                    );
                    let row = sqlx::query(&sql)
                        .bind(identifier)
                        .fetch_optional(&self.reader)
                        .await?
                        .ok_or_else(|| not_found(kind.as_str(), identifier))?;
                    stored_action_from(&row)
                })
            }

            fn list_definitions(
                &self,
                kind: $crate::DefinitionKind,
            ) -> StoreFuture<'_, Vec<StoredAction>> {
                Box::pin(async move {
                    let sql = format!(
                        "SELECT {ACTION_COLS} FROM {} ORDER BY identifier",
                        kind.table()
                    );
                    let rows = sqlx::query(&sql).fetch_all(&self.reader).await?;
                    rows.iter().map(stored_action_from).collect()
                })
            }

            fn delete_definition<'a>(
                &'a self,
                kind: $crate::DefinitionKind,
                identifier: &'a str,
                audit: &'a Audit,
            ) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    let (name, table) = (kind.as_str(), kind.table());
                    let mut tx = self.writer.begin().await?;
                    let sql = format!(
                        "DELETE FROM {table} WHERE identifier = $1 RETURNING {ACTION_COLS}"
                    );
                    let before = sqlx::query(&sql)
                        .bind(identifier)
                        .fetch_optional(&mut *tx)
                        .await?
                        .ok_or_else(|| not_found(name, identifier))?;
                    let before = stored_action_from(&before)?;
                    audit_tx(
                        &mut tx,
                        audit,
                        &format!("{name}.delete"),
                        format!("{name}/{identifier}"),
                        Some(before.definition),
                        None,
                    )
                    .await?;
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn write_scorecard_state<'a>(
                &'a self,
                write: &'a $crate::ScorecardStateWrite,
            ) -> StoreFuture<'a, ()> {
                Box::pin(self.write_scorecard_state_sql(write))
            }

            fn load_scorecard_state<'a>(
                &'a self,
                scorecard: &'a str,
            ) -> StoreFuture<'a, Vec<$crate::ScorecardEntityRow>> {
                Box::pin(self.load_scorecard_state_sql(scorecard))
            }

            fn scorecard_history<'a>(
                &'a self,
                filter: &'a $crate::HistoryFilter,
                limit: u32,
            ) -> StoreFuture<'a, Vec<$crate::LevelChangeRow>> {
                Box::pin(self.scorecard_history_sql(filter, limit))
            }

            fn record_firings<'a>(
                &'a self,
                firings: &'a [$crate::FiringRow],
                audit: &'a [NewAuditEvent],
            ) -> StoreFuture<'a, ()> {
                Box::pin(self.record_firings_sql(firings, audit))
            }

            fn list_firings<'a>(
                &'a self,
                filter: &'a $crate::FiringFilter,
                limit: u32,
            ) -> StoreFuture<'a, Vec<$crate::FiringRow>> {
                Box::pin(self.list_firings_sql(filter, limit))
            }

            fn create_action_run<'a>(
                &'a self,
                run: &'a ActionRunRow,
                event: &'a NewAuditEvent,
            ) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    let doc = json_text(&run.doc)?;
                    let mut tx = self.writer.begin().await?;
                    let done = sqlx::query(&format!(
                        "INSERT INTO action_runs ({ACTION_RUN_COLS}) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1, $11) \
                         ON CONFLICT DO NOTHING"
                    ))
                    .bind(&run.id)
                    .bind(&run.action)
                    .bind(run.entity.as_ref().map(|e| &e.0))
                    .bind(run.entity.as_ref().map(|e| &e.1))
                    .bind(&run.requested_by)
                    .bind(&run.status)
                    .bind(&run.workflow_run)
                    .bind(opt_us(run.deadline_at))
                    .bind(us(run.created_at))
                    .bind(us(run.updated_at))
                    .bind(&doc)
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::Conflict(format!(
                            "action run {:?} exists",
                            run.id
                        )));
                    }
                    append_audit_event_tx(&mut tx, event).await?;
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn update_action_run<'a>(
                &'a self,
                run: &'a ActionRunRow,
                event: Option<&'a NewAuditEvent>,
            ) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    let doc = json_text(&run.doc)?;
                    let mut tx = self.writer.begin().await?;
                    let done = sqlx::query(
                        "UPDATE action_runs SET status = $3, workflow_run = $4, \
                         deadline_at = $5, updated_at = $6, version = $2, doc = $7 \
                         WHERE id = $1 AND version = $2 - 1",
                    )
                    .bind(&run.id)
                    .bind(run.version)
                    .bind(&run.status)
                    .bind(&run.workflow_run)
                    .bind(opt_us(run.deadline_at))
                    .bind(us(run.updated_at))
                    .bind(&doc)
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() == 0 {
                        let exists: Option<i64> =
                            sqlx::query_scalar("SELECT version FROM action_runs WHERE id = $1")
                                .bind(&run.id)
                                .fetch_optional(&mut *tx)
                                .await?;
                        return Err(match exists {
                            None => not_found("action run", &run.id),
                            Some(v) => StoreError::Conflict(format!(
                                "action run {:?} is at version {v}, not {}",
                                run.id,
                                run.version - 1
                            )),
                        });
                    }
                    if let Some(event) = event {
                        append_audit_event_tx(&mut tx, event).await?;
                    }
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn get_action_run<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ActionRunRow> {
                Box::pin(async move {
                    let sql = format!("SELECT {ACTION_RUN_COLS} FROM action_runs WHERE id = $1");
                    let row = sqlx::query(&sql)
                        .bind(id)
                        .fetch_optional(&self.reader)
                        .await?
                        .ok_or_else(|| not_found("action run", id))?;
                    action_run_from(&row)
                })
            }

            fn list_action_runs<'a>(
                &'a self,
                filter: &'a ActionRunFilter,
                page: &'a PageRequest,
            ) -> StoreFuture<'a, Page<ActionRunRow>> {
                Box::pin(async move {
                    let limit = page.clamped_limit();
                    let (before_time, before_id) = match &page.after {
                        Some(cursor) => {
                            let (t, id) = parse_run_cursor(cursor)?;
                            (Some(t), Some(id))
                        }
                        None => (None, None),
                    };
                    let sql = format!(
                        "SELECT {ACTION_RUN_COLS} FROM action_runs \
                         WHERE ($1 IS NULL OR action = $1) \
                           AND ($2 IS NULL OR (entity_blueprint = $2 AND entity_identifier = $3)) \
                           AND ($4 IS NULL OR requested_by = $4) \
                           AND ($5 IS NULL OR status = $5) \
                           AND ($6 IS NULL OR created_at < $6 OR (created_at = $6 AND id < $7)) \
                         ORDER BY created_at DESC, id DESC LIMIT $8"
                    );
                    let rows = sqlx::query(&sql)
                        .bind(&filter.action)
                        .bind(filter.entity.as_ref().map(|e| &e.0))
                        .bind(filter.entity.as_ref().map(|e| &e.1))
                        .bind(&filter.requested_by)
                        .bind(&filter.status)
                        .bind(before_time)
                        .bind(before_id)
                        .bind(limit + 1)
                        .fetch_all(&self.reader)
                        .await?;
                    let mut items = rows
                        .iter()
                        .map(action_run_from)
                        .collect::<Result<Vec<_>, _>>()?;
                    let next = if items.len() as i64 > limit {
                        items.truncate(items.len() - 1);
                        items.last().map(|r| run_cursor(us(r.created_at), &r.id))
                    } else {
                        None
                    };
                    Ok(Page { items, next })
                })
            }

            fn action_runs_in_status<'a>(
                &'a self,
                statuses: &'a [&'a str],
            ) -> StoreFuture<'a, Vec<ActionRunRow>> {
                Box::pin(async move {
                    let mut out = Vec::new();
                    for status in statuses {
                        let sql = format!(
                            "SELECT {ACTION_RUN_COLS} FROM action_runs WHERE status = $1 \
                             ORDER BY created_at, id"
                        );
                        let rows = sqlx::query(&sql)
                            .bind(*status)
                            .fetch_all(&self.reader)
                            .await?;
                        for row in &rows {
                            out.push(action_run_from(row)?);
                        }
                    }
                    out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
                    Ok(out)
                })
            }

            fn append_action_run_logs<'a>(
                &'a self,
                id: &'a str,
                lines: &'a [(chrono::DateTime<chrono::Utc>, String)],
            ) -> StoreFuture<'a, i64> {
                Box::pin(async move {
                    let mut tx = self.writer.begin().await?;
                    // Locks the run's row (PostgreSQL), so appends to one run number in turn.
                    let locked = sqlx::query(
                        "UPDATE action_runs SET updated_at = updated_at WHERE id = $1",
                    )
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    if locked.rows_affected() == 0 {
                        return Err(not_found("action run", id));
                    }
                    let mut seq: i64 = sqlx::query_scalar(
                        "SELECT COALESCE(MAX(seq), 0) FROM action_run_logs WHERE run_id = $1",
                    )
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
                    for (at, line) in lines {
                        seq += 1;
                        sqlx::query(
                            "INSERT INTO action_run_logs (run_id, seq, at, line) \
                             VALUES ($1, $2, $3, $4)",
                        )
                        .bind(id)
                        .bind(seq)
                        .bind(us(*at))
                        .bind(line)
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                    Ok(seq)
                })
            }

            fn read_action_run_logs<'a>(
                &'a self,
                id: &'a str,
                after: i64,
                limit: u32,
            ) -> StoreFuture<'a, Vec<ActionRunLog>> {
                Box::pin(async move {
                    let rows = sqlx::query(
                        "SELECT seq, at, line FROM action_run_logs \
                         WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                    )
                    .bind(id)
                    .bind(after)
                    .bind(i64::from(limit.clamp(1, 10_000)))
                    .fetch_all(&self.reader)
                    .await?;
                    rows.iter()
                        .map(|row| {
                            Ok(ActionRunLog {
                                seq: get(row, "seq")?,
                                at: time(get(row, "at")?)?,
                                line: get(row, "line")?,
                            })
                        })
                        .collect()
                })
            }

            fn ping(&self) -> StoreFuture<'_, ()> {
                Box::pin(async move {
                    sqlx::query("SELECT 1").execute(&self.writer).await?;
                    sqlx::query("SELECT 1").execute(&self.reader).await?;
                    Ok(())
                })
            }

            fn write_batch<'a>(
                &'a self,
                batch: &'a WriteBatch,
            ) -> StoreFuture<'a, BatchWritten> {
                Box::pin(async move {
                    let mut tx = self.writer.begin().await?;
                    let events = insert_events_tx(&mut tx, &batch.events).await?;
                    create_runs_tx(&mut tx, &batch.runs).await?;
                    update_runs_tx(&mut tx, &batch.run_updates).await?;
                    record_steps_tx(&mut tx, &batch.steps).await?;
                    append_logs_tx(&mut tx, &batch.logs).await?;
                    for (workflow, name, at) in &batch.marks {
                        mark_fired_tx(&mut tx, workflow, name, *at).await?;
                    }
                    enqueue_many_tx(&mut tx, &batch.jobs).await?;
                    complete_many_tx(&mut tx, &batch.completions).await?;
                    let mut claimed = Vec::with_capacity(batch.claims.len());
                    for c in &batch.claims {
                        claimed.push(claim_tx(&mut tx, &c.pool, &c.lease, c.limit).await?);
                    }
                    tx.commit().await?;
                    Ok(BatchWritten { events, claimed })
                })
            }
        }
    };
}

pub(crate) use sql_store;
