//! `MapBackend`: an in-memory [`MetadataBackend`] over plain maps, with Gantry's real
//! expression evaluator, so `/spec` sees genuinely evaluated (and genuinely unresolved) values.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use serde_json::{json, Map, Value};

use gantry_engine::metadata::{
    Caller, CallerKind, MetadataBackend, MetadataError, Output, StartedRun,
};
use gantry_engine::runtime::BoxFuture;
use gantry_workflow::expr::{self, Data, Evaluation, WhenOutcome};

pub(crate) const DEPLOY_TOKEN: &str = "deploy-token";
pub(crate) const BUILD_TOKEN: &str = "build-token";
pub(crate) const TRIGGER_TOKEN: &str = "trigger-token";

/// What the backend was told, in order.
#[derive(Debug, Default)]
pub(crate) struct Record {
    /// (step, name) -> output.
    pub(crate) outputs: BTreeMap<(String, String), Output>,
    /// Output names marked sensitive before or after their value was set.
    pub(crate) sensitive: BTreeMap<(String, String), bool>,
    pub(crate) events: Vec<(String, Value, Option<String>)>,
    pub(crate) decorators: Vec<(String, String, Value)>,
    pub(crate) statuses: Vec<(String, Value)>,
    pub(crate) logs: Vec<(String, String)>,
    pub(crate) runs: Vec<(String, String, Map<String, Value>)>,
}

pub(crate) struct MapBackend {
    tokens: HashMap<String, Caller>,
    /// step -> canonical spec, env and when.
    specs: HashMap<String, Value>,
    envs: HashMap<String, Value>,
    whens: HashMap<String, Value>,
    parameters: Map<String, Value>,
    secrets: BTreeMap<String, String>,
    connections: BTreeMap<String, BTreeMap<String, Value>>,
    state: BTreeMap<String, Value>,
    /// Secret names whose lookup fails with this error (to exercise the error table).
    failing_secrets: HashMap<String, MetadataError>,
    record: Mutex<Record>,
}

fn caller(name: &str, kind: CallerKind) -> Caller {
    Caller {
        run_id: "run-1".into(),
        name: name.into(),
        kind,
    }
}

impl MapBackend {
    /// A run with steps `build` and `deploy` and a trigger `on-push`. `deploy`'s spec needs
    /// `build`'s output `image` and a missing connection.
    pub(crate) fn sample() -> Self {
        let mut tokens = HashMap::new();
        tokens.insert(DEPLOY_TOKEN.into(), caller("deploy", CallerKind::Step));
        tokens.insert(BUILD_TOKEN.into(), caller("build", CallerKind::Step));
        tokens.insert(TRIGGER_TOKEN.into(), caller("on-push", CallerKind::Trigger));

        let mut specs = HashMap::new();
        specs.insert(
            "deploy".to_string(),
            json!({
                "name": "${parameters.name}",
                "count": 3,
                "ratio": 0.5,
                "foo": ["a", "b", "c"],
                "a-b": {"c": "dashed"},
                "aws": {
                    "connection": "${connections.aws.prod}",
                    "region": "eu-west-1",
                },
                "gcp": {"connection": {"$type": "Connection", "type": "gcp", "name": "nope"}},
                "image": "${outputs.build.image}",
                "tagged": "image ${outputs.build.image} in ${parameters.name}",
                "literal": "${'$'}{not an expression}",
                "servers": [
                    {"host": "a.example", "port": 22},
                    {"host": "b.example", "port": "${outputs.build.port}"},
                ],
                "token": "${secrets.api-token}",
            }),
        );
        specs.insert(
            "build".to_string(),
            json!({"broken": "${jsonUnmarshal('{')}", "fine": 1}),
        );

        let mut envs = HashMap::new();
        envs.insert(
            "deploy".to_string(),
            json!({"GREETING": "hello ${parameters.name}", "IMAGE": "${outputs.build.image}"}),
        );

        let mut whens = HashMap::new();
        whens.insert("deploy".to_string(), json!("${outputs.build.ok}"));
        whens.insert("build".to_string(), json!(["${parameters.go}", true]));

        let mut parameters = Map::new();
        parameters.insert("name".into(), json!("gantry"));
        parameters.insert("go".into(), json!(true));

        let mut secrets = BTreeMap::new();
        secrets.insert("api-token".into(), "s3cr3t".into());

        let mut aws = BTreeMap::new();
        aws.insert(
            "prod".to_string(),
            json!({"accessKeyID": "AKIA", "secretAccessKey": "shh"}),
        );
        let mut connections = BTreeMap::new();
        connections.insert("aws".to_string(), aws);

        let mut state = BTreeMap::new();
        state.insert("approval".into(), json!({"approved": true}));

        let mut failing_secrets = HashMap::new();
        failing_secrets.insert(
            "flaky".to_string(),
            MetadataError::Unavailable("sqlite at /var/lib/gantry/db is locked".into()),
        );
        failing_secrets.insert(
            "other-run".to_string(),
            MetadataError::Forbidden("that secret belongs to another workflow".into()),
        );
        failing_secrets.insert(
            "twice".to_string(),
            MetadataError::Conflict("already read".into()),
        );
        failing_secrets.insert(
            "bad name".to_string(),
            MetadataError::Invalid("secret names have no spaces".into()),
        );

        MapBackend {
            tokens,
            specs,
            envs,
            whens,
            parameters,
            secrets,
            connections,
            state,
            failing_secrets,
            record: Mutex::new(Record::default()),
        }
    }

    pub(crate) fn record(&self) -> MutexGuard<'_, Record> {
        // A test that panicked while holding the lock has already failed.
        self.record.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn data(&self) -> Data {
        let mut outputs: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
        for ((step, name), output) in &self.record().outputs {
            outputs
                .entry(step.clone())
                .or_default()
                .insert(name.clone(), output.value.clone());
        }
        Data {
            parameters: self.parameters.clone(),
            secrets: self.secrets.clone(),
            connections: self.connections.clone(),
            outputs,
            ..Data::default()
        }
    }

    fn evaluate(&self, from: &HashMap<String, Value>, caller: &Caller) -> Evaluation {
        let canonical = from.get(&caller.name).cloned().unwrap_or(json!({}));
        expr::evaluate(&canonical, &self.data())
    }
}

impl MetadataBackend for MapBackend {
    fn authenticate(&self, token: &str) -> Option<Caller> {
        self.tokens.get(token).cloned()
    }

    fn spec(&self, caller: &Caller) -> Result<Evaluation, MetadataError> {
        Ok(self.evaluate(&self.specs, caller))
    }

    fn environment(&self, caller: &Caller) -> Result<Evaluation, MetadataError> {
        Ok(self.evaluate(&self.envs, caller))
    }

    fn conditions(&self, caller: &Caller) -> Result<WhenOutcome, MetadataError> {
        let when = self.whens.get(&caller.name).cloned().unwrap_or(Value::Null);
        Ok(expr::evaluate_when(&when, &self.data()))
    }

    fn set_output(&self, caller: &Caller, name: &str, value: Value) -> Result<(), MetadataError> {
        let mut record = self.record();
        let key = (caller.name.clone(), name.to_string());
        let sensitive = record.sensitive.get(&key).copied().unwrap_or(false);
        record.outputs.insert(key, Output { value, sensitive });
        Ok(())
    }

    fn set_output_sensitive(
        &self,
        caller: &Caller,
        name: &str,
        sensitive: bool,
    ) -> Result<(), MetadataError> {
        let mut record = self.record();
        let key = (caller.name.clone(), name.to_string());
        record.sensitive.insert(key.clone(), sensitive);
        if let Some(output) = record.outputs.get_mut(&key) {
            output.sensitive = sensitive;
        }
        Ok(())
    }

    fn output(&self, _caller: &Caller, step: &str, name: &str) -> Result<Output, MetadataError> {
        self.record()
            .outputs
            .get(&(step.to_string(), name.to_string()))
            .cloned()
            .ok_or_else(|| MetadataError::NotFound(format!("step {step} has no output {name}")))
    }

    fn secret(&self, _caller: &Caller, name: &str) -> Result<String, MetadataError> {
        if let Some(e) = self.failing_secrets.get(name) {
            return Err(e.clone());
        }
        self.secrets
            .get(name)
            .cloned()
            .ok_or_else(|| MetadataError::NotFound(format!("no secret {name}")))
    }

    fn state(&self, _caller: &Caller, name: &str) -> Result<Value, MetadataError> {
        self.state
            .get(name)
            .cloned()
            .ok_or_else(|| MetadataError::NotFound(format!("no state {name}")))
    }

    fn set_decorator(
        &self,
        caller: &Caller,
        name: &str,
        value: Value,
    ) -> Result<(), MetadataError> {
        self.record()
            .decorators
            .push((caller.name.clone(), name.to_string(), value));
        Ok(())
    }

    fn report_status(&self, caller: &Caller, status: Value) -> Result<(), MetadataError> {
        self.record().statuses.push((caller.name.clone(), status));
        Ok(())
    }

    fn log(&self, caller: &Caller, line: String) -> Result<(), MetadataError> {
        self.record().logs.push((caller.name.clone(), line));
        Ok(())
    }

    fn emit_event<'a>(
        &'a self,
        caller: &'a Caller,
        data: Value,
        key: Option<String>,
    ) -> BoxFuture<'a, Result<(), MetadataError>> {
        let result = if caller.kind != CallerKind::Trigger {
            Err(MetadataError::Forbidden("steps cannot emit events".into()))
        } else {
            self.record().events.push((caller.name.clone(), data, key));
            Ok(())
        };
        Box::pin(async move { result })
    }

    fn run_workflow<'a>(
        &'a self,
        caller: &'a Caller,
        workflow: &'a str,
        parameters: Map<String, Value>,
    ) -> BoxFuture<'a, Result<StartedRun, MetadataError>> {
        Box::pin(async move {
            if workflow == "missing" {
                return Err(MetadataError::NotFound("no workflow missing".into()));
            }
            let mut record = self.record();
            record
                .runs
                .push((caller.name.clone(), workflow.to_string(), parameters));
            let run_number = u64::try_from(record.runs.len()).unwrap_or(u64::MAX);
            Ok(StartedRun {
                workflow: workflow.to_string(),
                run_number,
                app_url: format!("http://gantry.test/workflows/{workflow}/runs/{run_number}"),
            })
        })
    }
}
