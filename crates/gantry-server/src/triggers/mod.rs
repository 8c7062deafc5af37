//! Triggers on the server: webhook, push and schedule events, accepted durably and turned into
//! runs through one path.
//!
//! Every door (`/hooks/{id}`, `POST /api/events`, a schedule firing, a trigger container's
//! `POST /events`) calls [`TriggerService::accept`], which applies the trigger's rules in Relay's
//! order: the push `schema`, the trigger's `when` over the event, then `binding.parameters` and
//! `binding.key`. An event that passes is written through the group-commit writer and only
//! then acknowledged, so a 2xx means the event survives a crash; its run is started right after
//! by the dispatcher, and at the next start for any accepted event that has no run yet
//! ([`TriggerService::dispatch_pending`]).
//!
//! What it must not do: start a run for an event that is not stored, or store an event it will
//! not run (a trigger `when` that is false, a binding that fails, are answered without storing).
//!
//! A webhook trigger with an `image` answers its requests from a container ([`container`],
//! [`proxy`]); the container's `POST /events` comes back here through [`Door::Container`].
//!
//! Concurrency: `accept` runs on the caller's task; many callers share one `BatchWriter`, whose
//! transactions group their inserts (ahead of run bookkeeping). Runs are started on the worker
//! runtime (`crate::workers`), so a slow start never holds an acknowledgement back. The hot path
//! reads nothing from the store: webhook records and parsed workflows are cached briefly, and
//! changes made through this server invalidate them at once.

pub mod container;
pub mod proxy;
pub mod push;
pub mod schedule;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use gantry_store::{BatchWriter, Event, NewEvent, RunOrigin, Store, StoreError, TriggerRecord};
use gantry_workflow::expr::{self, Data, WhenOutcome};
use gantry_workflow::{Trigger, TriggerSource, Workflow};
use serde_json::{json, Map, Value};

use crate::runs::{RunService, StartError};

/// What arrived through one of the doors.
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    /// The event data (a JSON object).
    pub data: Map<String, Value>,
    /// The event's own de-duplication key, if it has one (`binding.key` takes precedence).
    pub key: Option<String>,
    /// The `Idempotency-Key` header of the request.
    pub idempotency_key: Option<String>,
}

/// Reads Relay's event envelope `{data, key?}` (push requests and trigger containers' `POST
/// /events`): `data` an object (absent or null: empty), `key` a string (absent, null or empty:
/// none), as a delivery without an idempotency key. On a wrong type, returns the field's name
/// and what it must be.
pub fn event_envelope(
    mut envelope: Map<String, Value>,
) -> Result<Delivery, (&'static str, &'static str)> {
    let data = match envelope.remove("data") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(("data", "`data` must be a JSON object")),
    };
    let key = match envelope.remove("key") {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) if k.is_empty() => None,
        Some(Value::String(k)) => Some(k),
        Some(_) => return Err(("key", "`key` must be a string")),
    };
    Ok(Delivery {
        data,
        key,
        idempotency_key: None,
    })
}

/// The door an event came through; it must match the trigger's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    Webhook,
    Push,
    Schedule,
    /// A webhook trigger's container, through the metadata API.
    Container,
}

/// What `accept` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acceptance {
    /// Stored durably. `created: false` when it repeats an earlier event (same idempotency or
    /// de-duplication key); `run_id` is then that event's run, if it has one yet.
    Accepted {
        event_id: String,
        created: bool,
        run_id: Option<String>,
    },
    /// The trigger's `when` was false: nothing stored, no run.
    Filtered,
}

#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error("no workflow named `{0}`")]
    NoWorkflow(String),
    #[error("workflow `{workflow}` has no {kind} trigger named `{trigger}`")]
    NoTrigger {
        workflow: String,
        trigger: String,
        kind: &'static str,
    },
    /// The event or its binding is wrong; `path` names the field.
    #[error("{message}")]
    Invalid { path: String, message: String },
    #[error("the store failed: {0}")]
    Store(String),
}

impl From<StoreError> for TriggerError {
    fn from(e: StoreError) -> Self {
        TriggerError::Store(e.to_string())
    }
}

/// Accepts events for triggers and starts their runs.
pub struct TriggerService {
    store: Arc<dyn Store>,
    events: BatchWriter,
    runs: Arc<RunService>,
    /// Webhook records by hook id, with when they were read.
    hooks: crate::cache::BriefCache<TriggerRecord>,
    pub(crate) push: push::PushKeys,
    /// Wakes the scheduler when workflows change.
    pub(crate) changed: Arc<tokio::sync::Notify>,
    /// The containers of webhook triggers with an image (set once, by the server).
    containers: std::sync::OnceLock<Arc<container::TriggerContainers>>,
}

impl TriggerService {
    pub fn new(
        store: Arc<dyn Store>,
        events: BatchWriter,
        runs: Arc<RunService>,
        push: push::PushKeys,
    ) -> Self {
        TriggerService {
            store,
            events,
            runs,
            hooks: crate::cache::BriefCache::new(),
            push,
            changed: Arc::new(tokio::sync::Notify::new()),
            containers: std::sync::OnceLock::new(),
        }
    }

    /// Sets where webhook triggers with an image run; later calls change nothing.
    pub fn set_containers(&self, containers: Arc<container::TriggerContainers>) {
        let _ = self.containers.set(containers);
    }

    /// The containers of webhook triggers with an image, once the server set them up.
    pub fn containers(&self) -> Option<&Arc<container::TriggerContainers>> {
        self.containers.get()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Forgets what is cached about `workflow` (it was applied or deleted), tells the scheduler,
    /// and stops trigger containers whose definition is gone.
    pub fn workflow_changed(&self, workflow: &str) {
        self.runs.forget(workflow);
        // Hook ids are stable across applies; a deleted workflow's must stop answering.
        self.hooks.retain(|record| record.workflow != workflow);
        self.changed.notify_one();
        if let Some(containers) = self.containers.get() {
            containers.workflow_changed(workflow);
        }
    }

    /// The trigger a webhook id names (cached briefly, like workflows; an unknown id is not).
    pub(crate) async fn hook(&self, id: &str) -> Result<TriggerRecord, StoreError> {
        if let Some(record) = self.hooks.get(id) {
            return Ok(record);
        }
        let record = self.store.find_trigger(id).await?;
        self.hooks.insert(id, record.clone());
        Ok(record)
    }

    /// The current version of `name`, parsed (cached briefly, shared with the run service).
    pub(crate) async fn workflow(&self, name: &str) -> Result<(i64, Arc<Workflow>), TriggerError> {
        match self.runs.loaded(name).await {
            Ok(loaded) => Ok((loaded.version, loaded.workflow.clone())),
            Err(StartError::NoWorkflow(name)) => Err(TriggerError::NoWorkflow(name)),
            Err(e) => Err(TriggerError::Store(e.to_string())),
        }
    }

    /// Applies trigger `trigger` of `workflow` to a delivery and, when it passes, stores the
    /// event durably and hands it to the dispatcher. See the module documentation for the order.
    pub async fn accept(
        &self,
        workflow: &str,
        trigger: &str,
        door: Door,
        delivery: Delivery,
        now: DateTime<Utc>,
    ) -> Result<Acceptance, TriggerError> {
        let (_, wf) = self.workflow(workflow).await?;
        let Some(t) = find(&wf, trigger, door) else {
            return Err(TriggerError::NoTrigger {
                workflow: workflow.to_owned(),
                trigger: trigger.to_owned(),
                kind: door_kind(door),
            });
        };
        if let TriggerSource::Push { schema } = &t.source {
            check_schema(schema, &delivery.data)?;
        }
        let data = Data {
            event: Some(Value::Object(delivery.data.clone())),
            now,
            ..Data::default()
        };
        if let Some(when) = &t.when {
            let conditions = if when.is_list {
                Value::Array(when.conditions.iter().map(|c| c.to_json()).collect())
            } else {
                when.conditions
                    .first()
                    .map_or(Value::Null, gantry_workflow::Value::to_json)
            };
            match expr::evaluate_when(&conditions, &data) {
                WhenOutcome::Satisfied => {}
                // A field the event does not carry makes the condition false, not an error:
                // webhooks send whatever they send.
                WhenOutcome::NotSatisfied | WhenOutcome::Unresolved(_) => {
                    return Ok(Acceptance::Filtered)
                }
                WhenOutcome::Error(errors) if errors.iter().all(|e| e.code == "path_not_found") => {
                    return Ok(Acceptance::Filtered)
                }
                WhenOutcome::Error(errors) => {
                    return Err(TriggerError::Invalid {
                        path: "when".into(),
                        message: format!(
                            "the trigger's `when` failed: {}",
                            errors
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join("; ")
                        ),
                    })
                }
            }
        }
        let (parameters, binding_key) = bind(&wf, t, &data)?;
        let key = match door {
            // A schedule's key is its fire time, whatever the binding says: that is what makes
            // a fire happen once across restarts and servers.
            Door::Schedule => delivery.key.clone(),
            _ => binding_key.or(delivery.key.clone()),
        };
        let event = NewEvent {
            id: gantry_store::new_id()?,
            workflow: workflow.to_owned(),
            trigger: trigger.to_owned(),
            key,
            idempotency_key: delivery.idempotency_key,
            data: json!({"data": Value::Object(delivery.data), "parameters": parameters}),
            received_at: now,
        };
        let inserted = self.events.insert_event(event).await?;
        if !inserted.created {
            return Ok(Acceptance::Accepted {
                event_id: inserted.event.id,
                created: false,
                run_id: inserted.event.run_id,
            });
        }
        let event_id = inserted.event.id.clone();
        let runs = self.runs.clone();
        // Started where runs execute, so a burst of events is acknowledged before its runs
        // compete for the cores (the event is durable; its run may lag).
        self.runs.spawn(async move {
            start_for(&runs, &inserted.event).await;
        });
        Ok(Acceptance::Accepted {
            event_id,
            created: true,
            run_id: None,
        })
    }

    /// Starts a run for every stored event that has none (events accepted just before a
    /// crash). Returns how many runs were started.
    pub async fn dispatch_pending(&self) -> Result<usize, StoreError> {
        let mut started = 0;
        let mut seen = std::collections::HashSet::new();
        loop {
            let pending = self.store.events_without_run(500).await?;
            let fresh: Vec<Event> = pending
                .into_iter()
                .filter(|e| seen.insert(e.id.clone()))
                .collect();
            if fresh.is_empty() {
                return Ok(started);
            }
            for event in &fresh {
                if start_for(&self.runs, event).await {
                    started += 1;
                }
            }
        }
    }
}

/// Starts the run of an accepted event; `false` (logged) when it cannot start.
async fn start_for(runs: &RunService, event: &Event) -> bool {
    let parameters = match event.data.get("parameters") {
        Some(Value::Object(p)) => p.clone(),
        _ => Map::new(),
    };
    // The trigger is the actor; the event it accepted ties the run to its request.
    let audit = gantry_store::Audit {
        actor: gantry_store::Actor {
            kind: gantry_store::ActorKind::Trigger,
            id: format!("trigger:{}/{}", event.workflow, event.trigger),
            name: event.trigger.clone(),
        },
        request_id: Some(event.id.clone()),
        source: None,
        at: chrono::Utc::now(),
    };
    match runs
        .start(
            &event.workflow,
            parameters,
            RunOrigin::Event(event.id.clone()),
            audit,
        )
        .await
    {
        Ok(_) => true,
        // Another server, or an earlier start, made it first.
        Err(StartError::AlreadyStarted(_)) => false,
        Err(e) => {
            tracing::warn!(event = %event.id, workflow = %event.workflow, error = %e,
                "an accepted event could not start its run");
            false
        }
    }
}

fn door_kind(door: Door) -> &'static str {
    match door {
        Door::Webhook | Door::Container => "webhook",
        Door::Push => "push",
        Door::Schedule => "schedule",
    }
}

/// The trigger named `name` if its type matches the door.
pub(crate) fn find<'w>(wf: &'w Workflow, name: &str, door: Door) -> Option<&'w Trigger> {
    wf.triggers
        .iter()
        .find(|t| t.name.value == name && t.source.type_name() == door_kind(door))
}

/// Relay's push `schema`: each named field, when present, has the named JSON type.
fn check_schema(
    schema: &[(
        gantry_workflow::Spanned<String>,
        gantry_workflow::Spanned<String>,
    )],
    data: &Map<String, Value>,
) -> Result<(), TriggerError> {
    for (field, type_) in schema {
        let Some(value) = data.get(&field.value) else {
            continue;
        };
        let ok = match type_.value.as_str() {
            "string" => value.is_string(),
            "number" => value.is_number(),
            "integer" => value.is_i64() || value.is_u64(),
            "boolean" => value.is_boolean(),
            "object" => value.is_object(),
            "array" => value.is_array(),
            "null" => value.is_null(),
            _ => true,
        };
        if !ok {
            return Err(TriggerError::Invalid {
                path: format!("data.{}", field.value),
                message: format!(
                    "`{}` must be of type {} (the trigger's schema says so)",
                    field.value, type_.value
                ),
            });
        }
    }
    Ok(())
}

/// Evaluates `binding.parameters` and `binding.key` over the event. A parameter whose value
/// reads an event field the event does not carry is left unbound (its default applies); a
/// parameter that then has no value at all is an error naming it.
fn bind(
    wf: &Workflow,
    t: &Trigger,
    data: &Data,
) -> Result<(Map<String, Value>, Option<String>), TriggerError> {
    let mut parameters = Map::new();
    let mut key = None;
    if let Some(binding) = &t.binding {
        for (name, value) in &binding.parameters {
            let evaluation = expr::evaluate(&value.to_json(), data);
            // A field the event does not carry leaves the parameter unbound.
            let missing = evaluation.errors.iter().any(|e| e.code == "path_not_found");
            if let Some(e) = evaluation
                .errors
                .iter()
                .find(|e| e.code != "path_not_found")
            {
                return Err(TriggerError::Invalid {
                    path: format!("binding.parameters.{}", name.value),
                    message: format!("binding parameter `{}` failed: {e}", name.value),
                });
            }
            if evaluation.unresolved.is_empty() && !missing {
                parameters.insert(name.value.clone(), evaluation.value);
            }
        }
        if let Some(k) = &binding.key {
            let evaluation = expr::evaluate(&k.to_json(), data);
            let missing = evaluation.errors.iter().any(|e| e.code == "path_not_found");
            if let Some(e) = evaluation
                .errors
                .iter()
                .find(|e| e.code != "path_not_found")
            {
                return Err(TriggerError::Invalid {
                    path: "binding.key".into(),
                    message: format!("the binding's key failed: {e}"),
                });
            }
            if evaluation.unresolved.is_empty() && !missing {
                key = match evaluation.value {
                    Value::Null => None,
                    Value::String(s) => Some(s),
                    other => Some(other.to_string()),
                };
            }
        }
    }
    for p in &wf.parameters {
        if p.default.is_none() && !parameters.contains_key(&p.name.value) {
            return Err(TriggerError::Invalid {
                path: format!("parameters.{}", p.name.value),
                message: format!(
                    "parameter `{}` has no value: the event does not provide it and it has no \
                     default",
                    p.name.value
                ),
            });
        }
    }
    Ok((parameters, key))
}
