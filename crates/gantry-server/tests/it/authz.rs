//! The authorisation matrix: every route of the API's route table × every role × a workflow
//! the caller's team owns and one it does not, asserting the status code. Generated from the
//! OpenAPI document the router is built from, so a new route joins the matrix by itself.

use axum::http::StatusCode;
use chrono::Utc;
use gantry_server::api::openapi::document;
use gantry_server::api::permissions::{declared, operations, Scope};
use gantry_server::authz::{Action, Role};
use gantry_server::server::issue_api_key;
use gantry_store::{Team, TeamMember, User};

use crate::api::{api, Api, HELLO};

/// The policy, written out independently of `authz::can`: what each role may do, and the one
/// ownership rule (maintainers of the owning team edit it).
fn expected(role: Role, action: Action, owned: bool) -> bool {
    match action {
        Action::Read => true,
        Action::Run => matches!(role, Role::Operator | Role::Approver | Role::Admin),
        Action::Approve => matches!(role, Role::Approver | Role::Admin),
        Action::Write => matches!(role, Role::Operator | Role::Approver | Role::Admin),
        Action::Edit => role == Role::Admin || owned,
        Action::Administer => role == Role::Admin,
        Action::Work => false,
    }
}

/// The workflows every case starts from: `owned` by the caller's team, `other` by another.
async fn reset(api: &Api) {
    for name in ["owned", "other"] {
        let (status, body) = api
            .as_admin("PUT", &format!("/api/v1/workflows/{name}"), HELLO)
            .await;
        assert!(status.is_success(), "{status} {body}");
    }
    let store = api.store();
    store
        .set_workflow_owner("owned", Some("sre"), &crate::audit())
        .await
        .unwrap();
    store
        .set_workflow_owner("other", Some("payments"), &crate::audit())
        .await
        .unwrap();
    // A case may have removed a member (as an admin may): every user maintains `sre` again.
    for role in Role::ALL {
        store
            .set_team_member(
                &TeamMember {
                    team: "sre".into(),
                    user_id: format!("u-{role}"),
                    maintainer: true,
                },
                &crate::audit(),
            )
            .await
            .unwrap();
    }
}

fn fill(template: &str, workflow: &str) -> String {
    template
        .replace("{name}", workflow)
        .replace("{id}", "no-such-run")
        .replace("{type}", "token")
        .replace("{secret}", "token")
        .replace("{trigger}", "hook")
        .replace("{step}", "approval")
        .replace("{version}", "1")
        .replace("{team}", "sre")
        .replace("{email}", "viewer@example.com")
}

#[tokio::test]
async fn every_route_every_role_owned_and_not() {
    let api = api().await;
    let store = api.store();
    for team in ["sre", "payments"] {
        store
            .create_team(
                &Team {
                    name: team.into(),
                    title: team.into(),
                    created_at: Utc::now(),
                },
                &crate::audit(),
            )
            .await
            .unwrap();
    }
    // One user per role, each a maintainer of `sre`.
    let mut keys = Vec::new();
    for role in Role::ALL {
        let id = format!("u-{role}");
        store
            .create_user(
                &User {
                    id: id.clone(),
                    email: format!("{role}@example.com"),
                    name: role.to_string(),
                    role: role.to_string(),
                    password_hash: None,
                    created_at: Utc::now(),
                    disabled_at: None,
                },
                &crate::audit(),
            )
            .await
            .unwrap();
        store
            .set_team_member(
                &TeamMember {
                    team: "sre".into(),
                    user_id: id.clone(),
                    maintainer: true,
                },
                &crate::audit(),
            )
            .await
            .unwrap();
        let key = issue_api_key(store.as_ref(), &format!("user:{id}"), &crate::audit())
            .await
            .unwrap();
        keys.push((role, key));
    }
    let doc = document();
    let mut checked = 0;
    for (method, path, id) in operations(&doc) {
        let Some(permission) = declared(&id) else {
            assert_eq!(
                id, "getOpenApiDocument",
                "{method} {path} declares no permission"
            );
            continue;
        };
        let targets: &[(&str, bool)] = match permission.scope {
            Scope::Workflow => &[("owned", true), ("other", false)],
            Scope::Organisation => &[("owned", false)],
        };
        for (workflow, owned) in targets {
            let uri = fill(&path, workflow);
            // Without a key: 401, whatever the route.
            reset(&api).await;
            let (status, _) = api.call(method.as_str(), &uri, None, HELLO).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {uri} without a key"
            );
            for (role, key) in &keys {
                reset(&api).await;
                let (status, body) = api.call(method.as_str(), &uri, Some(key), HELLO).await;
                let allowed = expected(*role, permission.action, *owned);
                if allowed {
                    assert!(
                        status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED,
                        "{role} {method} {uri} ({id}) should be allowed: {status} {body}"
                    );
                } else {
                    assert_eq!(
                        status,
                        StatusCode::FORBIDDEN,
                        "{role} {method} {uri} ({id}) should be refused: {body}"
                    );
                    assert_eq!(body["code"], "forbidden");
                }
                checked += 1;
            }
        }
    }
    // Every guarded operation, four roles, workflow routes twice.
    assert!(checked >= 4 * 25, "{checked} cases");
}

/// A few routes whose permission is the point of the policy, pinned here so the table cannot
/// drift without a test saying so.
#[test]
fn key_routes_declare_the_expected_action() {
    for (id, action) in [
        ("getWorkflow", Action::Read),
        ("putWorkflow", Action::Edit),
        ("deleteWorkflow", Action::Edit),
        ("putSecret", Action::Edit),
        ("startRun", Action::Run),
        ("cancelRun", Action::Run),
        ("approveStep", Action::Approve),
        ("denyStep", Action::Approve),
        ("putConnection", Action::Administer),
        ("deleteConnection", Action::Administer),
    ] {
        assert_eq!(declared(id).map(|p| p.action), Some(action), "{id}");
    }
}

#[tokio::test]
async fn a_disabled_user_or_an_unknown_principal_is_refused() {
    let api = api().await;
    let store = api.store();
    store
        .create_user(
            &User {
                id: "gone".into(),
                email: "gone@example.com".into(),
                name: "Gone".into(),
                role: "admin".into(),
                password_hash: None,
                created_at: Utc::now(),
                disabled_at: Some(Utc::now()),
            },
            &crate::audit(),
        )
        .await
        .unwrap();
    for principal in ["user:gone", "user:nobody", "service:nobody", "root"] {
        let key = issue_api_key(store.as_ref(), principal, &crate::audit())
            .await
            .unwrap();
        let (status, _) = api.call("GET", "/api/v1/workflows", Some(&key), "").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{principal}");
    }
}
