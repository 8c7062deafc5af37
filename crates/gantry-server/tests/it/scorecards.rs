//! Scorecards, initiatives and automations through the API on a real SQLite store: levels kept
//! current incrementally (a change to a related entity moves a service's level), level
//! history, summaries, initiative progress by team, the CI check, and automations that start
//! real workflow runs, write entities, stop their own loops and survive a condition that never
//! ends.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::api::{api, finished, Api};

const JSON: &[(&str, &str)] = &[("content-type", "application/json")];

async fn call(api: &Api, method: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let text = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    api.as_admin_with(method, path, &text, JSON).await
}

async fn ok(api: &Api, method: &str, path: &str, body: Value) -> Value {
    let (status, answer) = call(api, method, path, body).await;
    assert!(status.is_success(), "{method} {path}: {status} {answer}");
    answer
}

/// Teams with an on-call rotation; services owned by a team, with the owner's rotation
/// mirrored.
async fn model(api: &Api) {
    ok(
        api,
        "POST",
        "/api/v1/blueprints",
        json!({"identifier": "team", "schema": {"properties": {"oncall": {"type": "string"}}}}),
    )
    .await;
    ok(
        api,
        "POST",
        "/api/v1/blueprints",
        json!({
            "identifier": "service",
            "schema": {"properties": {
                "lifecycle": {"type": "string"},
                "docs": {"type": "string"},
                "tier": {"type": "integer"}
            }},
            "relations": {"owner": {"target": "team"}},
            "mirrorProperties": {"ownerOncall": {"path": "owner.oncall"}}
        }),
    )
    .await;
    for (id, oncall) in [("payments", Some("pd-pay")), ("search", None)] {
        let mut e = json!({"identifier": id, "properties": {}});
        if let Some(o) = oncall {
            e["properties"]["oncall"] = json!(o);
        }
        ok(api, "POST", "/api/v1/blueprints/team/entities", e).await;
    }
    for (id, lifecycle, owner, docs) in [
        (
            "checkout",
            "production",
            Some("payments"),
            Some("https://docs/checkout"),
        ),
        (
            "finder",
            "production",
            Some("search"),
            Some("https://docs/finder"),
        ),
        ("legacy", "deprecated", None, None),
    ] {
        let mut e =
            json!({"identifier": id, "properties": {"lifecycle": lifecycle}, "relations": {}});
        if let Some(o) = owner {
            e["relations"]["owner"] = json!(o);
            e["team"] = json!([o]);
        }
        if let Some(d) = docs {
            e["properties"]["docs"] = json!(d);
        }
        ok(api, "POST", "/api/v1/blueprints/service/entities", e).await;
    }
}

fn readiness() -> Value {
    json!({
        "title": "Production readiness",
        "blueprint": "service",
        "filter": "lifecycle = \"production\"",
        "levels": ["Basic", "Bronze", "Silver", "Gold"],
        "rules": [
            {"identifier": "has-owner", "title": "Has an owning team", "level": "Bronze",
             "where": "owner isNotEmpty"},
            {"identifier": "on-call", "title": "Its team is on call", "level": "Silver", "weight": 2,
             "query": {"combinator": "and", "rules": [{"property": "owner.oncall", "operator": "isNotEmpty"}]}},
            {"identifier": "paged", "title": "Pages through PagerDuty", "level": "Gold",
             "where": "ownerOncall beginsWith \"pd-\""},
            {"identifier": "docs", "title": "Has docs", "level": "Gold", "where": "docs isNotEmpty"}
        ]
    })
}

/// An entity's standing on `production-readiness`.
async fn standing(api: &Api, entity: &str) -> Value {
    let (bp, id) = entity.split_once('/').unwrap();
    let b = ok(
        api,
        "GET",
        &format!("/api/v1/blueprints/{bp}/entities/{id}/scorecards"),
        Value::Null,
    )
    .await;
    b["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["scorecard"] == "production-readiness")
        .cloned()
        .unwrap_or(Value::Null)
}

async fn level(api: &Api, entity: &str) -> Value {
    standing(api, entity).await["level"].clone()
}

/// Polls until `f` holds of the answer to GET `path`.
async fn eventually(api: &Api, path: &str, f: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..300 {
        last = ok(api, "GET", path, Value::Null).await;
        if f(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("GET {path} never got there: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn levels_follow_changes_incrementally_with_history_summaries_and_initiatives() {
    let api = api().await;
    model(&api).await;
    // A definition with a mistake names its field.
    let mut bad = readiness();
    bad["rules"][0]["level"] = json!("Basic");
    let (s, b) = call(&api, "PUT", "/api/v1/scorecards/production-readiness", bad).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["path"], "rules[0].level", "{b}");

    let b = ok(
        &api,
        "PUT",
        "/api/v1/scorecards/production-readiness",
        readiness(),
    )
    .await;
    assert_eq!(
        b["summary"]["total"], 2,
        "the filter leaves legacy out: {b}"
    );
    assert_eq!(level(&api, "service/checkout").await, "Gold");
    // finder's team has no rotation: Silver's rule fails, and Gold's with it.
    let finder = standing(&api, "service/finder").await;
    assert_eq!(finder["level"], "Bronze", "{finder}");
    let rules: Vec<(&str, bool)> = finder["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["identifier"].as_str().unwrap(), r["passed"] == true))
        .collect();
    assert_eq!(
        rules,
        [
            ("has-owner", true),
            ("on-call", false),
            ("paged", false),
            ("docs", true)
        ]
    );
    assert_eq!(finder["rules"][0]["value"], "search", "{finder}");
    assert_eq!(
        finder["rules"][1]["value"],
        json!([]),
        "nothing reached: {finder}"
    );
    assert_eq!(finder["nextLevel"], "Silver");
    let next: Vec<&str> = finder["toFixNext"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["identifier"].as_str().unwrap())
        .collect();
    assert_eq!(next, ["on-call"]);
    // Weighted: has-owner (1) and docs (1) of 1 + 2 + 1 + 1.
    assert!(
        (finder["score"].as_f64().unwrap() - 40.0).abs() < 1e-9,
        "{finder}"
    );
    assert!(standing(&api, "service/legacy").await.is_null());

    // The initiative: Gold for everything in production.
    ok(
        &api,
        "PUT",
        "/api/v1/initiatives/all-gold",
        json!({"title": "All gold", "scorecard": "production-readiness", "targetLevel": "Gold",
               "deadline": "2026-12-31", "owners": ["platform"]}),
    )
    .await;
    let i = ok(&api, "GET", "/api/v1/initiatives/all-gold", Value::Null).await;
    assert_eq!(i["progress"]["total"], 2, "{i}");
    assert_eq!(i["progress"]["atTarget"], 1, "{i}");
    assert_eq!(i["progress"]["byTeam"]["payments"]["share"], 1.0, "{i}");
    assert_eq!(i["progress"]["byTeam"]["search"]["share"], 0.0, "{i}");

    // The search team gets a rotation: finder rises, though finder itself did not change.
    ok(
        &api,
        "PATCH",
        "/api/v1/blueprints/team/entities/search",
        json!({"properties": {"oncall": "pd-search"}}),
    )
    .await;
    let finder = standing(&api, "service/finder").await;
    assert_eq!(finder["level"], "Gold", "{finder}");
    assert_eq!(
        finder["rules"][1]["value"],
        json!(["pd-search"]),
        "{finder}"
    );
    assert!((finder["score"].as_f64().unwrap() - 100.0).abs() < 1e-9);

    // checkout loses its docs: Gold's rule fails, down to Silver.
    ok(
        &api,
        "PATCH",
        "/api/v1/blueprints/service/entities/checkout",
        json!({"properties": {"docs": null}}),
    )
    .await;
    assert_eq!(level(&api, "service/checkout").await, "Silver");
    // The payments team loses its rotation: a Silver rule fails, so checkout falls to Bronze
    // even though its Gold rule on the mirror is the only other failing one.
    ok(
        &api,
        "PATCH",
        "/api/v1/blueprints/team/entities/payments",
        json!({"properties": {"oncall": null}}),
    )
    .await;
    assert_eq!(level(&api, "service/checkout").await, "Bronze");

    // History, newest first, written behind.
    let h = eventually(
        &api,
        "/api/v1/scorecards/production-readiness/history?entity=service/checkout",
        |h| h["items"].as_array().is_some_and(|a| a.len() == 3),
    )
    .await;
    let moves: Vec<(Value, Value)> = h["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["from"].clone(), m["to"].clone()))
        .collect();
    assert_eq!(
        moves,
        [
            (json!("Silver"), json!("Bronze")),
            (json!("Gold"), json!("Silver")),
            (Value::Null, json!("Gold")),
        ]
    );

    // Summaries: per level, per team, per rule.
    let sc = ok(
        &api,
        "GET",
        "/api/v1/scorecards/production-readiness",
        Value::Null,
    )
    .await;
    let by_level: Vec<(String, u64)> = sc["summary"]["byLevel"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["level"].as_str().unwrap().to_owned(),
                l["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        by_level,
        [
            ("Basic".into(), 0),
            ("Bronze".into(), 1),
            ("Silver".into(), 0),
            ("Gold".into(), 1)
        ]
    );
    assert_eq!(sc["summary"]["byTeam"]["payments"]["Bronze"], 1, "{sc}");
    assert_eq!(sc["summary"]["byTeam"]["search"]["Gold"], 1, "{sc}");
    let page = ok(
        &api,
        "GET",
        "/api/v1/scorecards/production-readiness/entities?level=Gold",
        Value::Null,
    )
    .await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["entity"], "service/finder");

    // A lifecycle change takes checkout out of the scorecard's scope.
    ok(
        &api,
        "PATCH",
        "/api/v1/blueprints/service/entities/checkout",
        json!({"properties": {"lifecycle": "deprecated"}}),
    )
    .await;
    assert!(standing(&api, "service/checkout").await.is_null());
    let i = ok(&api, "GET", "/api/v1/initiatives/all-gold", Value::Null).await;
    assert_eq!(
        (
            i["progress"]["total"].clone(),
            i["progress"]["share"].clone()
        ),
        (json!(1), json!(1.0)),
        "{i}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_lists_rises_and_drops_and_writes_nothing() {
    let api = api().await;
    model(&api).await;
    ok(
        &api,
        "PUT",
        "/api/v1/scorecards/production-readiness",
        readiness(),
    )
    .await;
    let check = |docs: Value| {
        let api = &api;
        async move {
            ok(
                api,
                "POST",
                "/api/v1/scorecards/check",
                json!({ "documents": docs }),
            )
            .await
        }
    };
    // The payments team's rotation would go: checkout would drop from Gold to Bronze.
    let b = check(json!([{"kind": "Entity", "blueprint": "team", "identifier": "payments", "properties": {}}])).await;
    assert_eq!(
        (b["drops"].clone(), b["rises"].clone()),
        (json!(1), json!(0)),
        "{b}"
    );
    let c = &b["changes"][0];
    assert_eq!(
        (&c["entity"], &c["from"], &c["to"], &c["direction"]),
        (
            &json!("service/checkout"),
            &json!("Gold"),
            &json!("Bronze"),
            &json!("drop")
        )
    );
    let failing: Vec<&str> = c["newlyFailing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["identifier"].as_str().unwrap())
        .collect();
    assert_eq!(failing, ["on-call", "paged"]);
    // Nothing was written.
    assert_eq!(level(&api, "service/checkout").await, "Gold");
    // A rotation for search lifts finder; a new service enters.
    let b = check(json!([
        {"kind": "Entity", "blueprint": "team", "identifier": "search", "properties": {"oncall": "pd-s"}},
        {"kind": "Entity", "blueprint": "service", "identifier": "new", "properties": {"lifecycle": "production"}}
    ]))
    .await;
    let counts = |b: &Value| (b["drops"].clone(), b["rises"].clone(), b["enters"].clone());
    assert_eq!(counts(&b), (json!(0), json!(1), json!(1)), "{b}");
    let entities: Vec<&str> = b["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["entity"].as_str().unwrap())
        .collect();
    assert_eq!(entities, ["service/finder", "service/new"]);
    // A bad document names itself and its field.
    let (s, b) = call(
        &api,
        "POST",
        "/api/v1/scorecards/check",
        json!({"documents": [{"kind": "Entity", "blueprint": "nope", "identifier": "x"}]}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["details"]["problems"][0]["document"], 0, "{b}");
}

/// Firings of an automation, once there are `n`.
async fn firings(api: &Api, automation: &str, n: usize) -> Vec<Value> {
    let b = eventually(
        api,
        &format!("/api/v1/automation-firings?automation={automation}"),
        |b| b["items"].as_array().is_some_and(|a| a.len() >= n),
    )
    .await;
    let mut items = b["items"].as_array().unwrap().clone();
    items.reverse();
    items
}

const PAGE: &str = r#"
parameters:
  service: {}
  from: {}
  to: {}
steps:
- name: page
  image: none
  env:
    SERVICE: ${parameters.service}
    MOVE: ${parameters.from} to ${parameters.to}
  input: ['echo "paging the owners of $SERVICE: $MOVE"']
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_level_drop_starts_a_workflow_run() {
    let api = api().await;
    model(&api).await;
    ok(
        &api,
        "PUT",
        "/api/v1/scorecards/production-readiness",
        readiness(),
    )
    .await;
    let (s, b) = api.as_admin("PUT", "/api/v1/workflows/page", PAGE).await;
    assert!(s.is_success(), "{b}");
    ok(
        &api,
        "PUT",
        "/api/v1/automations/page-on-drop",
        json!({
            "title": "Page the owners when a service drops",
            "trigger": {"event": "scorecard.level_changed", "blueprint": "service",
                        "scorecard": "production-readiness"},
            "condition": ".event.direction == \"drop\"",
            "effect": {"workflow": {"name": "page", "parameters": {
                "service": "{{ .event.identifier }}",
                "from": "{{ .before.level }}",
                "to": "{{ .after.level }}"
            }}}
        }),
    )
    .await;
    // A rise fires nothing; the drop fires once.
    ok(
        &api,
        "PATCH",
        "/api/v1/blueprints/team/entities/search",
        json!({"properties": {"oncall": "pd-search"}}),
    )
    .await;
    ok(
        &api,
        "PATCH",
        "/api/v1/blueprints/service/entities/checkout",
        json!({"properties": {"docs": null}}),
    )
    .await;
    let fired = firings(&api, "page-on-drop", 1).await;
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0]["status"], "started", "{}", fired[0]);
    assert_eq!(fired[0]["event"], "scorecard.level_changed");
    assert_eq!(fired[0]["detail"]["event"]["identifier"], "checkout");
    let run = fired[0]["detail"]["result"]["run"].as_str().unwrap();
    let run = finished(&api, run).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(
        run["parameters"],
        json!({"service": "checkout", "from": "Gold", "to": "Silver"})
    );
    let (_, logs) = api
        .as_admin(
            "GET",
            &format!("/api/v1/runs/{}/logs", run["id"].as_str().unwrap()),
            "",
        )
        .await;
    assert!(
        logs.to_string()
            .contains("paging the owners of checkout: Gold to Silver"),
        "{logs}"
    );
    // Audited as the automation's.
    let (_, audit) = api
        .as_admin("GET", "/api/v1/audit?action=automation.fire", "")
        .await;
    assert_eq!(
        audit["items"][0]["resource"], "automation/page-on-drop",
        "{audit}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_automation_writes_entities_and_its_own_loop_is_stopped() {
    let api = api().await;
    model(&api).await;
    // Every new service gets a tier, written by the automation as its source.
    ok(
        &api,
        "PUT",
        "/api/v1/automations/default-tier",
        json!({
            "trigger": {"event": "entity.created", "blueprint": "service"},
            "condition": ".after.properties.tier == null",
            "effect": {"entity": {"mode": "patch", "blueprint": "service",
                       "identifier": "{{ .event.identifier }}", "properties": {"tier": 3}}}
        }),
    )
    .await;
    // Every update of a service bumps its tier: its own effect is an update, a loop.
    ok(
        &api,
        "PUT",
        "/api/v1/automations/bump",
        json!({
            "trigger": {"event": "entity.updated", "blueprint": "service"},
            "effect": {"entity": {"mode": "patch", "blueprint": "service",
                       "identifier": "{{ .event.identifier }}",
                       "properties": {"tier": "{{ (.after.properties.tier // 0) + 1 }}"}}}
        }),
    )
    .await;
    ok(
        &api,
        "POST",
        "/api/v1/blueprints/service/entities",
        json!({"identifier": "fresh", "properties": {"lifecycle": "production"}}),
    )
    .await;
    let created = firings(&api, "default-tier", 1).await;
    assert_eq!(created[0]["status"], "written", "{}", created[0]);
    assert_eq!(
        created[0]["detail"]["result"],
        json!({"entity": "service/fresh", "outcome": "updated"})
    );
    // default-tier's patch is an update: bump fires (chain default-tier → bump), writes, and
    // its own write reaches it again: stopped.
    // (A firing is recorded once its effect is done, so the stop, which that effect caused,
    // may be recorded first.)
    let bumped = firings(&api, "bump", 2).await;
    let of = |status: &str| {
        bumped
            .iter()
            .find(|f| f["status"] == status)
            .unwrap_or_else(|| panic!("no {status} firing: {bumped:?}"))
    };
    assert_eq!(of("written")["detail"]["chain"], json!(["default-tier"]));
    let stopped = of("stopped");
    assert_eq!(stopped["detail"]["chain"], json!(["default-tier", "bump"]));
    let message = stopped["detail"]["result"]["error"].as_str().unwrap();
    assert!(message.contains("default-tier → bump → bump"), "{message}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        firings(&api, "bump", 2).await.len(),
        2,
        "the loop stays stopped"
    );
    let e = ok(
        &api,
        "GET",
        "/api/v1/blueprints/service/entities/fresh",
        Value::Null,
    )
    .await;
    assert_eq!(e["properties"]["tier"], 4, "3, then bumped once: {e}");
    assert_eq!(e["sources"]["properties.tier"], "automation:bump", "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_condition_that_never_ends_is_stopped_and_reported() {
    let api = api().await;
    model(&api).await;
    ok(
        &api,
        "PUT",
        "/api/v1/automations/forever",
        json!({
            "trigger": {"event": "entity.created"},
            "condition": "def f: f; f",
            "effect": {"workflow": {"name": "page"}}
        }),
    )
    .await;
    let started = std::time::Instant::now();
    let (s, b) = call(
        &api,
        "POST",
        "/api/v1/blueprints/team/entities",
        json!({"identifier": "infra"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "the change is not held back: {b}");
    assert!(started.elapsed() < Duration::from_secs(2));
    let fired = firings(&api, "forever", 1).await;
    assert_eq!(fired[0]["status"], "failed", "{}", fired[0]);
    let message = fired[0]["detail"]["result"]["error"].as_str().unwrap();
    assert!(
        message.starts_with("the condition failed:") && message.contains("stopped"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_ends_and_an_entity_deleted_are_events_too() {
    let api = api().await;
    model(&api).await;
    ok(
        &api,
        "POST",
        "/api/v1/blueprints",
        json!({"identifier": "note", "schema": {"properties": {
            "status": {"type": "string"}, "workflow": {"type": "string"}}}}),
    )
    .await;
    let (s, b) = api.as_admin("PUT", "/api/v1/workflows/page", PAGE).await;
    assert!(s.is_success(), "{b}");
    // Every ended run of `page` is noted in the catalog; every deleted service too.
    ok(
        &api,
        "PUT",
        "/api/v1/automations/note-runs",
        json!({
            "trigger": {"event": "run.finished", "workflow": "page"},
            "effect": {"entity": {"mode": "upsert", "blueprint": "note",
                "identifier": "run-{{ .event.run }}",
                "properties": {"status": "{{ .event.status }}", "workflow": "{{ .after.workflow }}"}}}
        }),
    )
    .await;
    ok(
        &api,
        "PUT",
        "/api/v1/automations/note-deletions",
        json!({
            "trigger": {"event": "entity.deleted", "blueprint": "service"},
            "condition": ".after == null and .before.identifier == \"legacy\"",
            "effect": {"entity": {"mode": "create", "blueprint": "note",
                "identifier": "gone-{{ .event.identifier }}", "properties": {"status": "deleted"}}}
        }),
    )
    .await;
    let run = ok(
        &api,
        "POST",
        "/api/v1/workflows/page/runs",
        json!({"parameters": {"service": "s", "from": "a", "to": "b"}}),
    )
    .await;
    let id = run["id"].as_str().unwrap();
    assert_eq!(finished(&api, id).await["status"], "succeeded");
    let note = eventually(
        &api,
        &format!("/api/v1/blueprints/note/entities?q=identifier%20%3D%20run-{id}"),
        |b| b["total"] == 1,
    )
    .await;
    assert_eq!(
        note["items"][0]["properties"]["status"], "succeeded",
        "{note}"
    );
    assert_eq!(note["items"][0]["properties"]["workflow"], "page", "{note}");
    ok(
        &api,
        "DELETE",
        "/api/v1/blueprints/service/entities/legacy",
        Value::Null,
    )
    .await;
    eventually(
        &api,
        "/api/v1/blueprints/note/entities?q=identifier%20%3D%20gone-legacy",
        |b| b["total"] == 1,
    )
    .await;
}
