//! The permission every route declares, by its OpenAPI operation id: one table, read by the
//! guard ([`super::auth::guard`]) and by the authorisation matrix test.
//!
//! The router is built from the OpenAPI document's operations, and [`Permissions::from_document`]
//! fails for an operation missing here: a new route cannot be served without a declared
//! permission (the server does not start, and every API test fails).

use std::collections::HashMap;

use axum::http::Method;
use serde_json::Value;

use crate::authz::Action;

/// What a route's resource is, for the ownership rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The organisation: nobody owns it.
    Organisation,
    /// The workflow named by the path parameter `name` (its owning team may edit it).
    Workflow,
}

/// A route's declared permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permission {
    pub action: Action,
    pub scope: Scope,
}

/// The permission of an operation, by its id; `None` for one that declares none (the public
/// OpenAPI document is the only such route, and it is not behind the guard).
pub fn declared(operation_id: &str) -> Option<Permission> {
    use Action::*;
    use Scope::*;
    let (action, scope) = match operation_id {
        "listWorkflows" => (Read, Organisation),
        "getWorkflow"
        | "listWorkflowVersions"
        | "getWorkflowVersion"
        | "listTriggers"
        | "listPushTokens"
        | "listSecrets" => (Read, Workflow),
        "putWorkflow" | "deleteWorkflow" | "putSecret" | "deleteSecret" | "createPushToken"
        | "revokePushToken" => (Edit, Workflow),
        "startRun" => (Run, Workflow),
        "listRuns" | "getRun" | "getRunLogs" | "streamRunLogs" => (Read, Organisation),
        "cancelRun" | "rerunRun" => (Run, Organisation),
        "approveStep" | "denyStep" => (Approve, Organisation),
        "listConnections" => (Read, Organisation),
        "putConnection" | "deleteConnection" => (Administer, Organisation),
        "getMe" | "listUsers" | "listTeams" | "listAgents" => (Read, Organisation),
        // Who may run, approve or deny is each action's own rule (`permissions`), decided
        // by the action service; cancelling asks for the requester or an operator.
        "listActions" | "getAction" | "runAction" | "listActionRuns" | "getActionRun"
        | "getActionRunLogs" | "approveActionRun" | "denyActionRun" | "cancelActionRun"
        | "rerunActionRun" => (Read, Organisation),
        "putAction" | "deleteAction" | "putActionSecret" => (Administer, Organisation),
        "listScorecards"
        | "getScorecard"
        | "listScorecardEntities"
        | "listScorecardHistory"
        | "getEntityScorecards"
        | "checkScorecards"
        | "listInitiatives"
        | "getInitiative"
        | "listAutomations"
        | "getAutomation"
        | "listAutomationFirings" => (Read, Organisation),
        "putScorecard" | "deleteScorecard" | "putInitiative" | "deleteInitiative"
        | "putAutomation" | "deleteAutomation" => (Administer, Organisation),
        "claimAgentJobs"
        | "heartbeatAgentJob"
        | "appendAgentJobLogs"
        | "completeAgentJob"
        | "forwardAgentMetadata" => (Work, Organisation),
        "createUser"
        | "createTeam"
        | "putTeamMember"
        | "deleteTeamMember"
        | "listServiceAccounts"
        | "createServiceAccount"
        | "listApiKeys"
        | "createApiKey"
        | "createAgentToken"
        | "revokeApiKey"
        | "putWorkflowOwner"
        | "listAuditEvents" => (Administer, Organisation),
        "listBlueprints"
        | "getBlueprint"
        | "listBlueprintHistory"
        | "diffBlueprint"
        | "listEntities"
        | "getEntity"
        | "listEntityHistory"
        | "diffEntity"
        | "searchEntities" => (Read, Organisation),
        "createBlueprint" | "putBlueprint" | "deleteBlueprint" | "revertBlueprint" => {
            (Administer, Organisation)
        }
        "createEntity" | "putEntity" | "patchEntity" | "deleteEntity" | "revertEntity"
        | "bulkUpsertEntities" | "applyCatalog" => (Write, Organisation),
        _ => return None,
    };
    Some(Permission { action, scope })
}

/// Every guarded route's permission, by path template (as axum matches it) and method.
#[derive(Debug, Clone, Default)]
pub struct Permissions(HashMap<String, Vec<(Method, Permission)>>);

impl Permissions {
    /// Reads the operations of an OpenAPI document whose paths start with `prefix`; `public`
    /// names the operations served without a key. Fails naming the first operation that
    /// declares no permission.
    pub fn from_document(doc: &Value, public: &[&str]) -> Result<Permissions, String> {
        let mut table = HashMap::new();
        for (method, path, id) in operations(doc) {
            if public.contains(&id.as_str()) {
                continue;
            }
            let permission = declared(&id).ok_or_else(|| {
                format!(
                    "{method} {path} (operation `{id}`) declares no permission in \
                     api/permissions.rs"
                )
            })?;
            table
                .entry(path)
                .or_insert_with(Vec::new)
                .push((method, permission));
        }
        Ok(Permissions(table))
    }

    /// The permission of the route `path` (its template) answers for `method`.
    pub fn of(&self, method: &Method, path: &str) -> Option<Permission> {
        self.0
            .get(path)?
            .iter()
            .find(|(m, _)| m == method)
            .map(|(_, p)| *p)
    }
}

/// `(method, path, operation id)` of every operation of an OpenAPI document.
pub fn operations(doc: &Value) -> Vec<(Method, String, String)> {
    let mut found = Vec::new();
    let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
        return found;
    };
    for (path, item) in paths {
        let Some(item) = item.as_object() else {
            continue;
        };
        for (method, operation) in item {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            let id = operation
                .get("operationId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            found.push((method, path.clone(), id));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_route_declares_a_permission() {
        let doc = crate::api::openapi::document();
        let table = Permissions::from_document(&doc, &["getOpenApiDocument"])
            .expect("every route declares a permission");
        // Every operation but the public document is in the table.
        let declared: usize = table.0.values().map(Vec::len).sum();
        assert_eq!(declared + 1, operations(&doc).len());
    }

    #[test]
    fn a_route_without_a_permission_is_refused() {
        let doc = serde_json::json!({"paths": {"/api/v1/things": {"post": {"operationId": "makeThing"}}}});
        let err = Permissions::from_document(&doc, &[]).unwrap_err();
        assert!(err.contains("POST /api/v1/things"), "{err}");
        assert!(err.contains("makeThing"), "{err}");
    }
}
