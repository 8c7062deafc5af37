//! The audit log: every change appends exactly one event in its own transaction, with the
//! right before and after and never a secret; the log filters, pages, and refuses edits.

use chrono::{DateTime, Utc};
use gantry_store::{
    Actor, ActorKind, ApiKey, Audit, AuditEvent, AuditFilter, NewAuditEvent, NewRun,
    NewWorkflowVersion, PageRequest, PushToken, RunOrigin, SealedKind, SealedValue, ServiceAccount,
    Store, StoreError, Team, TeamMember, User, WriteBatch,
};
use serde_json::json;

use crate::harness::{t, TestDb};

fn by(email: &str, at: DateTime<Utc>) -> Audit {
    Audit {
        actor: Actor {
            kind: ActorKind::User,
            id: format!("user:{email}"),
            name: email.to_owned(),
        },
        request_id: Some(format!("req-{}", at.timestamp())),
        source: Some("192.0.2.7".to_owned()),
        at,
    }
}

async fn all(store: &dyn Store) -> Vec<AuditEvent> {
    let mut page = store
        .list_audit(&AuditFilter::default(), &PageRequest::first(1000))
        .await
        .expect("list");
    page.items.reverse();
    page.items
}

/// The events appended since `seen` (oldest first).
async fn since(store: &dyn Store, seen: &mut usize) -> Vec<AuditEvent> {
    let events = all(store).await;
    let fresh = events[*seen..].to_vec();
    *seen = events.len();
    fresh
}

fn one(events: Vec<AuditEvent>) -> AuditEvent {
    assert_eq!(events.len(), 1, "exactly one event: {events:#?}");
    events.into_iter().next().expect("one")
}

fn wf(name: &str, at: DateTime<Utc>) -> NewWorkflowVersion {
    NewWorkflowVersion {
        name: name.to_owned(),
        yaml: "steps: []".to_owned(),
        canonical: "{}".to_owned(),
        at,
    }
}

fn sealed(kind: SealedKind, scope: &str, name: &str, at: DateTime<Utc>) -> SealedValue {
    SealedValue {
        kind,
        scope: scope.to_owned(),
        name: name.to_owned(),
        key_id: "k1".to_owned(),
        nonce: vec![1, 2, 3],
        ciphertext: b"the-sealed-secret-bytes".to_vec(),
        updated_at: at,
    }
}

pub(crate) async fn every_change_appends_one_event_with_it(db: &TestDb) {
    let store = db.open().await;
    let s = store.as_ref();
    let mut seen = 0;
    let a = by("ann@example.com", t(10));

    // Workflows: a version, the next one, ownership, deletion.
    s.put_workflow(&wf("deploy", t(10)), &a).await.expect("put");
    let e = one(since(s, &mut seen).await);
    assert_eq!(
        (e.action.as_str(), e.resource.as_str()),
        ("workflow.put", "workflow/deploy")
    );
    assert_eq!((e.before, e.after), (None, Some(json!({"version": 1}))));
    assert_eq!(e.actor, a.actor);
    assert_eq!(e.at, t(10));
    assert_eq!(e.request_id.as_deref(), Some("req-1790000010"));
    assert_eq!(e.source.as_deref(), Some("192.0.2.7"));
    s.put_workflow(&wf("deploy", t(11)), &a)
        .await
        .expect("put 2");
    let e = one(since(s, &mut seen).await);
    assert_eq!(
        (e.before, e.after),
        (Some(json!({"version": 1})), Some(json!({"version": 2})))
    );

    s.create_team(
        &Team {
            name: "sre".into(),
            title: "SRE".into(),
            created_at: t(12),
        },
        &a,
    )
    .await
    .expect("team");
    let e = one(since(s, &mut seen).await);
    assert_eq!(
        (e.action.as_str(), e.resource.as_str()),
        ("team.create", "team/sre")
    );
    assert_eq!(e.after, Some(json!({"name": "sre", "title": "SRE"})));

    s.set_workflow_owner("deploy", Some("sre"), &a)
        .await
        .expect("owner");
    let e = one(since(s, &mut seen).await);
    assert_eq!(e.action, "workflow.owner");
    assert_eq!(
        (e.before, e.after),
        (Some(json!({"owner": null})), Some(json!({"owner": "sre"})))
    );

    // Secrets and connections: when they were set, never the value.
    s.put_sealed(&sealed(SealedKind::Secret, "deploy", "token", t(13)), &a)
        .await
        .expect("secret");
    let e = one(since(s, &mut seen).await);
    assert_eq!(
        (e.action.as_str(), e.resource.as_str()),
        ("secret.put", "workflow/deploy/secret/token")
    );
    assert_eq!(e.before, None);
    s.put_sealed(&sealed(SealedKind::Secret, "deploy", "token", t(14)), &a)
        .await
        .expect("secret again");
    let e = one(since(s, &mut seen).await);
    assert_eq!(
        e.before.as_ref().map(|b| b["updatedAt"].clone()),
        Some(json!(t(13).to_rfc3339()))
    );
    assert_eq!(
        e.after.as_ref().map(|b| b["updatedAt"].clone()),
        Some(json!(t(14).to_rfc3339()))
    );
    s.delete_sealed(SealedKind::Secret, "deploy", "token", &a)
        .await
        .expect("delete secret");
    let e = one(since(s, &mut seen).await);
    assert_eq!(e.action, "secret.delete");
    assert_eq!(e.after, None);
    s.put_sealed(&sealed(SealedKind::Connection, "aws", "prod", t(15)), &a)
        .await
        .expect("connection");
    let e = one(since(s, &mut seen).await);
    assert_eq!(
        (e.action.as_str(), e.resource.as_str()),
        ("connection.put", "connection/aws/prod")
    );

    // People and keys.
    let user = User {
        id: "u1".into(),
        email: "bob@example.com".into(),
        name: "Bob".into(),
        role: "operator".into(),
        password_hash: Some("$argon2id$v=19$the-hash".into()),
        created_at: t(16),
        disabled_at: None,
    };
    s.create_user(&user, &a).await.expect("user");
    let e = one(since(s, &mut seen).await);
    assert_eq!(
        (e.action.as_str(), e.resource.as_str()),
        ("user.create", "user/bob@example.com")
    );
    assert_eq!(
        e.after,
        Some(
            json!({"id": "u1", "email": "bob@example.com", "name": "Bob",
                    "role": "operator", "password": true})
        )
    );
    let member = |maintainer| TeamMember {
        team: "sre".into(),
        user_id: "u1".into(),
        maintainer,
    };
    s.set_team_member(&member(false), &a).await.expect("member");
    let e = one(since(s, &mut seen).await);
    assert_eq!(
        (e.action.as_str(), e.resource.as_str()),
        ("team.member.put", "team/sre/member/bob@example.com")
    );
    assert_eq!(
        (e.before, e.after),
        (None, Some(json!({"maintainer": false})))
    );
    s.set_team_member(&member(true), &a)
        .await
        .expect("maintainer");
    let e = one(since(s, &mut seen).await);
    assert_eq!(
        (e.before, e.after),
        (
            Some(json!({"maintainer": false})),
            Some(json!({"maintainer": true}))
        )
    );
    s.remove_team_member("sre", "u1", &a).await.expect("remove");
    let e = one(since(s, &mut seen).await);
    assert_eq!(e.action, "team.member.delete");
    assert_eq!(
        (e.before, e.after),
        (Some(json!({"maintainer": true})), None)
    );
    s.create_service_account(
        &ServiceAccount {
            id: "sa1".into(),
            name: "ci".into(),
            role: "operator".into(),
            team: Some("sre".into()),
            created_at: t(17),
            disabled_at: None,
        },
        &a,
    )
    .await
    .expect("service account");
    let e = one(since(s, &mut seen).await);
    assert_eq!(
        (e.action.as_str(), e.resource.as_str()),
        ("service_account.create", "service-account/ci")
    );
    let key = ApiKey {
        id: "k1".into(),
        prefix: "abcd1234".into(),
        hash: b"the-key-hash".to_vec(),
        principal: "service:sa1".into(),
        created_at: t(18),
        last_used_at: None,
        expires_at: None,
        revoked_at: None,
    };
    s.create_api_key(&key, &a).await.expect("key");
    let e = one(since(s, &mut seen).await);
    assert_eq!(
        (e.action.as_str(), e.resource.as_str()),
        ("api_key.create", "api-key/k1")
    );
    assert_eq!(
        e.after,
        Some(
            json!({"id": "k1", "prefix": "abcd1234", "principal": "service:sa1",
                    "expiresAt": null})
        )
    );
    s.revoke_api_key("k1", &by("ann@example.com", t(19)))
        .await
        .expect("revoke");
    let e = one(since(s, &mut seen).await);
    assert_eq!(
        (e.before, e.after),
        (
            Some(json!({"revokedAt": null})),
            Some(json!({"revokedAt": t(19).to_rfc3339()}))
        )
    );

    // Push tokens.
    s.create_push_token(
        &PushToken {
            id: "p1".into(),
            workflow: "deploy".into(),
            trigger: "push".into(),
            created_at: t(20),
            revoked_at: None,
        },
        &a,
    )
    .await
    .expect("push token");
    let e = one(since(s, &mut seen).await);
    assert_eq!(e.resource, "workflow/deploy/push-token/p1");
    s.revoke_push_token("p1", &by("ann@example.com", t(21)))
        .await
        .expect("revoke token");
    let e = one(since(s, &mut seen).await);
    assert_eq!(e.action, "push_token.revoke");
    assert_eq!(e.after, Some(json!({"revokedAt": t(21).to_rfc3339()})));

    // A run, and a decision recorded on its own.
    s.create_run(&NewRun {
        id: "r1".into(),
        workflow: "deploy".into(),
        workflow_version: 2,
        parameters: json!({"env": "prod"}),
        origin: RunOrigin::Manual,
        created_at: t(22),
        audit: a.clone(),
    })
    .await
    .expect("run");
    let e = one(since(s, &mut seen).await);
    assert_eq!(
        (e.action.as_str(), e.resource.as_str()),
        ("run.start", "run/r1")
    );
    assert_eq!(
        e.after,
        Some(
            json!({"workflow": "deploy", "version": 2, "parameters": {"env": "prod"},
                    "event": null})
        )
    );
    let seq = s
        .append_audit(&NewAuditEvent {
            audit: a.clone(),
            action: "step.approve".into(),
            resource: "run/r1/step/gate".into(),
            before: Some(json!({"approval": "waiting"})),
            after: Some(json!({"approval": "approved"})),
        })
        .await
        .expect("append");
    let e = one(since(s, &mut seen).await);
    assert_eq!(e.seq, seq);

    s.delete_workflow("deploy", &a).await.expect("delete");
    let e = one(since(s, &mut seen).await);
    assert_eq!(e.action, "workflow.delete");
    assert_eq!(
        (e.before, e.after),
        (Some(json!({"version": 2, "owner": "sre"})), None)
    );

    // No stored event holds a secret's bytes, a key's hash or a password hash.
    for e in all(s).await {
        let text = format!("{:?} {:?}", e.before, e.after);
        for secret in ["the-sealed-secret-bytes", "the-key-hash", "the-hash"] {
            assert!(!text.contains(secret), "{secret} in {e:?}");
        }
    }
    // Sequence numbers only grow.
    let seqs: Vec<i64> = all(s).await.iter().map(|e| e.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
}

pub(crate) async fn a_refused_change_leaves_no_event(db: &TestDb) {
    let store = db.open().await;
    let s = store.as_ref();
    let a = by("ann@example.com", t(1));
    s.create_team(
        &Team {
            name: "sre".into(),
            title: "SRE".into(),
            created_at: t(1),
        },
        &a,
    )
    .await
    .expect("team");
    let dup = s
        .create_team(
            &Team {
                name: "sre".into(),
                title: "again".into(),
                created_at: t(2),
            },
            &a,
        )
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    let gone = s.delete_workflow("nope", &a).await;
    assert!(matches!(gone, Err(StoreError::NotFound(_))), "{gone:?}");
    let gone = s.set_workflow_owner("nope", Some("sre"), &a).await;
    assert!(matches!(gone, Err(StoreError::NotFound(_))), "{gone:?}");
    let gone = s.revoke_api_key("nope", &a).await;
    assert!(matches!(gone, Err(StoreError::NotFound(_))), "{gone:?}");
    let events = all(s).await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0].action, "team.create");
}

pub(crate) async fn filters_and_pages(db: &TestDb) {
    let store = db.open().await;
    let s = store.as_ref();
    let ann = by("ann@example.com", t(1));
    let bob = by("bob@example.com", t(2));
    for (name, audit) in [("a", &ann), ("ab", &bob), ("b", &ann)] {
        s.put_workflow(&wf(name, audit.at), audit)
            .await
            .expect("put");
    }
    s.put_sealed(
        &sealed(SealedKind::Secret, "a", "token", t(3)),
        &by("bob@example.com", t(3)),
    )
    .await
    .expect("secret");
    s.create_team(
        &Team {
            name: "sre".into(),
            title: "SRE".into(),
            created_at: t(4),
        },
        &by("ann@example.com", t(4)),
    )
    .await
    .expect("team");
    let list = |filter: AuditFilter| async move {
        s.list_audit(&filter, &PageRequest::first(100))
            .await
            .expect("list")
            .items
            .into_iter()
            .map(|e| format!("{} {}", e.action, e.resource))
            .collect::<Vec<_>>()
    };
    // A resource and what is under it, not its namesakes (`workflow/ab`).
    assert_eq!(
        list(AuditFilter {
            resource: Some("workflow/a".into()),
            ..AuditFilter::default()
        })
        .await,
        [
            "secret.put workflow/a/secret/token",
            "workflow.put workflow/a"
        ]
    );
    // An actor by name or by id.
    let bobs = [
        "secret.put workflow/a/secret/token",
        "workflow.put workflow/ab",
    ];
    assert_eq!(
        list(AuditFilter {
            actor: Some("bob@example.com".into()),
            ..AuditFilter::default()
        })
        .await,
        bobs
    );
    assert_eq!(
        list(AuditFilter {
            actor: Some("user:bob@example.com".into()),
            ..AuditFilter::default()
        })
        .await,
        bobs
    );
    // An action, or a kind of action.
    assert_eq!(
        list(AuditFilter {
            action: Some("workflow".into()),
            ..AuditFilter::default()
        })
        .await,
        [
            "workflow.put workflow/b",
            "workflow.put workflow/ab",
            "workflow.put workflow/a"
        ]
    );
    assert_eq!(
        list(AuditFilter {
            action: Some("team.create".into()),
            ..AuditFilter::default()
        })
        .await,
        ["team.create team/sre"]
    );
    assert!(list(AuditFilter {
        action: Some("work".into()),
        ..AuditFilter::default()
    })
    .await
    .is_empty());
    // A time range: since is inclusive, until exclusive.
    assert_eq!(
        list(AuditFilter {
            since: Some(t(2)),
            until: Some(t(4)),
            ..AuditFilter::default()
        })
        .await,
        [
            "secret.put workflow/a/secret/token",
            "workflow.put workflow/ab"
        ]
    );
    // Pages of two, newest first, each event once.
    let mut seen = Vec::new();
    let mut page = PageRequest::first(2);
    loop {
        let got = s
            .list_audit(&AuditFilter::default(), &page)
            .await
            .expect("page");
        assert!(got.items.len() <= 2);
        seen.extend(got.items.iter().map(|e| e.seq));
        match got.next {
            Some(next) => page = PageRequest::after(next, 2),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "{seen:?}");
    let bad = s
        .list_audit(
            &AuditFilter::default(),
            &PageRequest::after("not-a-cursor", 2),
        )
        .await;
    assert!(matches!(bad, Err(StoreError::InvalidCursor)), "{bad:?}");
}

pub(crate) async fn runs_started_in_a_batch_are_audited(db: &TestDb) {
    let store = db.open().await;
    let trigger = Audit {
        actor: Actor {
            kind: ActorKind::Trigger,
            id: "trigger:deploy/push".into(),
            name: "push".into(),
        },
        request_id: None,
        source: None,
        at: t(5),
    };
    let batch = WriteBatch {
        runs: (0..70)
            .map(|i| NewRun {
                id: format!("r{i:02}"),
                workflow: "deploy".into(),
                workflow_version: 1,
                parameters: json!({"i": i}),
                origin: RunOrigin::Manual,
                created_at: t(5),
                audit: trigger.clone(),
            })
            .collect(),
        ..WriteBatch::default()
    };
    store.write_batch(&batch).await.expect("batch");
    let events = all(store.as_ref()).await;
    assert_eq!(events.len(), 70);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.action, "run.start");
        assert_eq!(e.resource, format!("run/r{i:02}"));
        assert_eq!(e.actor, trigger.actor);
        assert_eq!(
            e.after.as_ref().expect("after")["parameters"],
            json!({"i": i})
        );
    }
}

pub(crate) async fn the_log_is_append_only(db: &TestDb) {
    let store = db.open().await;
    store
        .create_team(
            &Team {
                name: "sre".into(),
                title: "SRE".into(),
                created_at: t(1),
            },
            &by("ann@example.com", t(1)),
        )
        .await
        .expect("team");
    for sql in [
        "UPDATE audit_events SET actor_name = 'someone else'",
        "DELETE FROM audit_events",
    ] {
        let refused = db.raw_execute(sql).await;
        let err = refused.expect_err(sql);
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
    let events = all(store.as_ref()).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].actor.name, "ann@example.com");
}

pub(crate) async fn sessions_passwords_and_roles(db: &TestDb) {
    let store = db.open().await;
    let s = store.as_ref();
    let a = by("ann@example.com", t(1));
    s.create_user(
        &User {
            id: "u1".into(),
            email: "bob@example.com".into(),
            name: "Bob".into(),
            role: "viewer".into(),
            password_hash: None,
            created_at: t(1),
            disabled_at: None,
        },
        &a,
    )
    .await
    .expect("user");
    let mut seen = all(s).await.len();
    s.set_user_password(
        "u1",
        Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"),
        &a,
    )
    .await
    .expect("password");
    assert_eq!(
        s.get_user("u1")
            .await
            .expect("get")
            .password_hash
            .as_deref(),
        Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA")
    );
    let e = one(since(s, &mut seen).await);
    assert_eq!(
        (e.action.as_str(), e.before, e.after),
        (
            "user.password",
            Some(json!({"password": false})),
            Some(json!({"password": true}))
        )
    );
    s.set_user_role("u1", "approver", &a).await.expect("role");
    assert_eq!(s.get_user("u1").await.expect("get").role, "approver");
    let e = one(since(s, &mut seen).await);
    assert_eq!(
        (e.before, e.after),
        (
            Some(json!({"role": "viewer"})),
            Some(json!({"role": "approver"}))
        )
    );
    let missing = s.set_user_role("nobody", "admin", &a).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );

    let session = gantry_store::Session {
        id: "s1".into(),
        hash: "ab".repeat(32),
        user_id: "u1".into(),
        via: "password".into(),
        created_at: t(2),
        expires_at: t(3600),
        revoked_at: None,
    };
    s.create_session(&session, &a).await.expect("session");
    assert_eq!(s.get_session("s1").await.expect("get"), session);
    let e = one(since(s, &mut seen).await);
    assert_eq!(
        (e.action.as_str(), e.resource.as_str()),
        ("session.create", "user/bob@example.com/session/s1")
    );
    assert!(
        !format!("{e:?}").contains(&"ab".repeat(32)),
        "no hash: {e:?}"
    );
    let dup = s.create_session(&session, &a).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    s.revoke_session("s1", &by("ann@example.com", t(5)))
        .await
        .expect("revoke");
    s.revoke_session("s1", &by("ann@example.com", t(9)))
        .await
        .expect("revoke twice");
    assert_eq!(
        s.get_session("s1").await.expect("get").revoked_at,
        Some(t(5))
    );
    let events = since(s, &mut seen).await;
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[1].before,
        Some(json!({"revokedAt": t(5).to_rfc3339()}))
    );
    let missing = s.get_session("nope").await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}
