//! Users, teams and their members, service accounts, and workflow ownership.

use gantry_store::{ServiceAccount, StoreError, Team, TeamMember, User};

use crate::harness::{t, TestDb};

fn user(id: &str, email: &str, role: &str) -> User {
    User {
        id: id.to_owned(),
        email: email.to_owned(),
        name: format!("Name of {id}"),
        role: role.to_owned(),
        password_hash: (id != "sso").then(|| "$argon2id$v=19$stand-in".to_owned()),
        created_at: t(1),
        disabled_at: None,
    }
}

fn team(name: &str) -> Team {
    Team {
        name: name.to_owned(),
        title: name.to_uppercase(),
        created_at: t(2),
    }
}

fn member(team: &str, user: &str, maintainer: bool) -> TeamMember {
    TeamMember {
        team: team.to_owned(),
        user_id: user.to_owned(),
        maintainer,
    }
}

pub(crate) async fn users_teams_members_and_service_accounts(db: &TestDb) {
    let store = db.open().await;
    store
        .create_user(
            &user("u2", "zed@example.com", "viewer"),
            &crate::harness::audit(),
        )
        .await
        .expect("u2");
    store
        .create_user(
            &user("u1", "ann@example.com", "admin"),
            &crate::harness::audit(),
        )
        .await
        .expect("u1");
    store
        .create_user(
            &user("sso", "sso@example.com", "operator"),
            &crate::harness::audit(),
        )
        .await
        .expect("sso");
    // The email and the id are each unique.
    for dup in [
        user("u3", "ann@example.com", "viewer"),
        user("u1", "new@example.com", "viewer"),
    ] {
        assert!(matches!(
            store.create_user(&dup, &crate::harness::audit()).await,
            Err(StoreError::Conflict(_))
        ));
    }
    assert_eq!(
        store.get_user("u1").await,
        Ok(user("u1", "ann@example.com", "admin"))
    );
    assert_eq!(
        store.find_user("zed@example.com").await,
        Ok(user("u2", "zed@example.com", "viewer"))
    );
    assert_eq!(
        store.get_user("sso").await.expect("sso").password_hash,
        None
    );
    assert!(matches!(
        store.find_user("nobody@example.com").await,
        Err(StoreError::NotFound(_))
    ));
    let emails: Vec<String> = store
        .list_users()
        .await
        .expect("users")
        .into_iter()
        .map(|u| u.email)
        .collect();
    assert_eq!(
        emails,
        ["ann@example.com", "sso@example.com", "zed@example.com"]
    );

    store
        .create_team(&team("sre"), &crate::harness::audit())
        .await
        .expect("sre");
    store
        .create_team(&team("payments"), &crate::harness::audit())
        .await
        .expect("payments");
    assert!(matches!(
        store
            .create_team(&team("sre"), &crate::harness::audit())
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.list_teams().await,
        Ok(vec![team("payments"), team("sre")])
    );

    store
        .set_team_member(&member("sre", "u2", false), &crate::harness::audit())
        .await
        .expect("join");
    store
        .set_team_member(&member("payments", "u2", true), &crate::harness::audit())
        .await
        .expect("join");
    store
        .set_team_member(&member("sre", "u1", false), &crate::harness::audit())
        .await
        .expect("join");
    // Setting again changes whether they maintain it.
    store
        .set_team_member(&member("sre", "u2", true), &crate::harness::audit())
        .await
        .expect("promote");
    assert!(matches!(
        store
            .set_team_member(&member("nope", "u1", false), &crate::harness::audit())
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .set_team_member(&member("sre", "ghost", false), &crate::harness::audit())
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store.user_teams("u2").await,
        Ok(vec![
            member("payments", "u2", true),
            member("sre", "u2", true)
        ])
    );
    assert_eq!(
        store.list_team_members().await,
        Ok(vec![
            member("payments", "u2", true),
            member("sre", "u1", false),
            member("sre", "u2", true)
        ])
    );
    store
        .remove_team_member("sre", "u1", &crate::harness::audit())
        .await
        .expect("leave");
    assert!(matches!(
        store
            .remove_team_member("sre", "u1", &crate::harness::audit())
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.user_teams("u1").await, Ok(vec![]));

    let account = |id: &str, name: &str, team: Option<&str>| ServiceAccount {
        id: id.to_owned(),
        name: name.to_owned(),
        role: "operator".to_owned(),
        team: team.map(str::to_owned),
        created_at: t(3),
        disabled_at: None,
    };
    store
        .create_service_account(&account("s1", "ci", Some("sre")), &crate::harness::audit())
        .await
        .expect("ci");
    store
        .create_service_account(
            &account("s2", "backstage-sync", None),
            &crate::harness::audit(),
        )
        .await
        .expect("sync");
    assert!(matches!(
        store
            .create_service_account(&account("s3", "ci", None), &crate::harness::audit())
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .create_service_account(
                &account("s4", "other", Some("nope")),
                &crate::harness::audit()
            )
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store.get_service_account("s1").await,
        Ok(account("s1", "ci", Some("sre")))
    );
    assert_eq!(
        store.find_service_account("backstage-sync").await,
        Ok(account("s2", "backstage-sync", None))
    );
    let names: Vec<String> = store
        .list_service_accounts()
        .await
        .expect("list")
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, ["backstage-sync", "ci"]);
}

pub(crate) async fn workflows_are_owned_by_teams(db: &TestDb) {
    let store = db.open().await;
    store
        .create_team(&team("sre"), &crate::harness::audit())
        .await
        .expect("sre");
    store
        .put_workflow(
            &crate::workflows::version("deploy", "x", 1),
            &crate::harness::audit(),
        )
        .await
        .expect("put");
    assert_eq!(store.workflow_owner("deploy").await, Ok(None));
    store
        .set_workflow_owner("deploy", Some("sre"), &crate::harness::audit())
        .await
        .expect("own");
    assert_eq!(
        store.workflow_owner("deploy").await,
        Ok(Some("sre".to_owned()))
    );
    // A new version keeps its owner.
    store
        .put_workflow(
            &crate::workflows::version("deploy", "y", 2),
            &crate::harness::audit(),
        )
        .await
        .expect("put");
    assert_eq!(
        store.workflow_owner("deploy").await,
        Ok(Some("sre".to_owned()))
    );
    assert!(matches!(
        store
            .set_workflow_owner("deploy", Some("nope"), &crate::harness::audit())
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .set_workflow_owner("ghost", Some("sre"), &crate::harness::audit())
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.workflow_owner("ghost").await,
        Err(StoreError::NotFound(_))
    ));
    // Deleting a workflow forgets its owner: the name may come back for someone else.
    store
        .delete_workflow("deploy", &crate::harness::audit_at(t(3)))
        .await
        .expect("delete");
    assert!(matches!(
        store.workflow_owner("deploy").await,
        Err(StoreError::NotFound(_))
    ));
    store
        .put_workflow(
            &crate::workflows::version("deploy", "z", 4),
            &crate::harness::audit(),
        )
        .await
        .expect("again");
    assert_eq!(store.workflow_owner("deploy").await, Ok(None));
    store
        .set_workflow_owner("deploy", Some("sre"), &crate::harness::audit())
        .await
        .expect("own");
    store
        .set_workflow_owner("deploy", None, &crate::harness::audit())
        .await
        .expect("disown");
    assert_eq!(store.workflow_owner("deploy").await, Ok(None));
}

/// A read right after a write sees it, whatever was read just before (a one-row read must not
/// leave its connection on an old snapshot).
pub(crate) async fn a_read_after_a_write_sees_it(db: &TestDb) {
    let store = db.open().await;
    store
        .create_team(&team("sre"), &crate::harness::audit())
        .await
        .expect("sre");
    store
        .create_user(
            &user("u1", "ann@example.com", "admin"),
            &crate::harness::audit(),
        )
        .await
        .expect("u1");
    for round in 0..20 {
        let maintainer = round % 2 == 0;
        store
            .set_team_member(&member("sre", "u1", maintainer), &crate::harness::audit())
            .await
            .expect("set");
        // One-row reads, as an authenticator makes them, between the write and the check.
        store.get_user("u1").await.expect("user");
        store.find_user("ann@example.com").await.expect("user");
        store
            .remove_team_member("sre", "u1", &crate::harness::audit())
            .await
            .expect("remove");
        assert_eq!(
            store.user_teams("u1").await,
            Ok(vec![]),
            "round {round}: removed"
        );
        store.get_user("u1").await.expect("user");
        store
            .set_team_member(&member("sre", "u1", maintainer), &crate::harness::audit())
            .await
            .expect("set");
        assert_eq!(
            store.user_teams("u1").await,
            Ok(vec![member("sre", "u1", maintainer)]),
            "round {round}: added"
        );
    }
}
