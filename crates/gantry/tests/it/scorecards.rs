//! `gantry scorecard|initiative|automation` and scorecards in `gantry apply -f` against a real
//! server: blueprints, entities, a scorecard, an initiative and an automation declared in one
//! apply (idempotent, pruned by source); `gantry scorecard check`, the CI gate, with its exit
//! codes and without writing anything; and the texts that say where an entity stands, how an
//! initiative progresses and what an automation did.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::server::{gantry, start_server, Running};

/// Teams with an on-call rotation; services owned by a team, with the owner's rotation
/// mirrored.
const MODEL: &str = "\
kind: Blueprint
identifier: team
schema:
  properties:
    oncall: {type: string}
---
kind: Blueprint
identifier: service
schema:
  properties:
    lifecycle: {type: string}
    docs: {type: string}
relations:
  owner: {target: team}
mirrorProperties:
  ownerOncall: {path: owner.oncall}
";

const TEAMS: &str = "\
kind: Entity
blueprint: team
identifier: payments
properties: {oncall: pd-pay}
---
kind: Entity
blueprint: team
identifier: search
properties: {}
";

const SERVICES: &str = "\
kind: Entity
blueprint: service
identifier: checkout
team: [payments]
properties: {lifecycle: production, docs: 'https://docs/checkout'}
relations: {owner: payments}
---
kind: Entity
blueprint: service
identifier: finder
team: [search]
properties: {lifecycle: production, docs: 'https://docs/finder'}
relations: {owner: search}
---
kind: Entity
blueprint: service
identifier: legacy
properties: {lifecycle: deprecated}
";

/// A scorecard whose rules use `where` and `query`, over the relation path and over the
/// mirror; an initiative on it; an automation that pages on a drop.
const READINESS: &str = r#"
kind: Scorecard
identifier: production-readiness
title: Production readiness
blueprint: service
filter: 'lifecycle = "production"'
levels: [Basic, Bronze, Silver, Gold]
rules:
- identifier: has-owner
  title: Has an owning team
  level: Bronze
  where: owner isNotEmpty
- identifier: on-call
  title: Its team is on call
  level: Silver
  weight: 2
  query:
    combinator: and
    rules:
    - {property: owner.oncall, operator: isNotEmpty}
- identifier: paged
  title: Pages through PagerDuty
  level: Gold
  where: 'ownerOncall beginsWith "pd-"'
- identifier: docs
  title: Has docs
  level: Gold
  where: docs isNotEmpty
---
kind: Initiative
identifier: all-gold
title: All gold
scorecard: production-readiness
targetLevel: Gold
deadline: '2026-12-31'
owners: [platform]
---
kind: Automation
identifier: page-on-drop
title: Page the owners when a service drops
trigger: {event: scorecard.level_changed, blueprint: service, scorecard: production-readiness}
condition: '.event.direction == "drop"'
effect:
  workflow:
    name: page
    parameters:
      service: '{{ .event.identifier }}'
      from: '{{ .before.level }}'
      to: '{{ .after.level }}'
"#;

/// The workflow the automation starts.
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

/// A server and the catalog folder applied to it; the server stops when this is dropped,
/// however the test ends.
struct World {
    server: Running,
    addr: String,
    key: String,
    dir: tempfile::TempDir,
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = self.server.child.kill();
        let _ = self.server.child.wait();
    }
}

impl World {
    fn start() -> World {
        let dir = tempfile::tempdir().unwrap();
        let server = start_server(&dir.path().join("data"), "process", true);
        let (addr, key) = (server.addr.clone(), server.key.clone().expect("admin key"));
        let repo = dir.path().join("repo");
        write(&repo, "catalog/model.yaml", MODEL);
        write(&repo, "catalog/teams.yaml", TEAMS);
        write(&repo, "catalog/services.yaml", SERVICES);
        write(&repo, "catalog/readiness.yaml", READINESS);
        // A git repository: its name is the source `--prune` is limited to.
        std::fs::create_dir_all(repo.join(".git")).unwrap();
        World {
            server,
            addr,
            key,
            dir,
        }
    }

    /// The same, applied, with the workflow the automation starts.
    fn applied() -> World {
        let w = World::start();
        let page = w.dir.path().join("page.yaml");
        std::fs::write(&page, PAGE).unwrap();
        let (code, out, err) = w.gantry(&["workflow", "apply", page.to_str().unwrap()]);
        assert_eq!(code, Some(0), "{out}{err}");
        let (code, out, err) = w.gantry(&["apply", "-f", &w.catalog()]);
        assert_eq!(code, Some(0), "{out}{err}");
        w
    }

    fn gantry(&self, args: &[&str]) -> (Option<i32>, String, String) {
        gantry(args, &self.addr, &self.key)
    }

    fn catalog(&self) -> String {
        self.path("repo/catalog")
    }

    fn path(&self, relative: &str) -> String {
        self.dir.path().join(relative).to_str().unwrap().to_owned()
    }

    /// `BLUEPRINT/ID`'s level on `production-readiness`, from the CLI's JSON.
    fn level(&self, entity: &str) -> Value {
        let (code, out, err) = self.gantry(&["scorecard", "entity", entity, "--format", "json"]);
        assert_eq!(code, Some(0), "{out}{err}");
        let v: Value = serde_json::from_str(&out).unwrap();
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["scorecard"] == "production-readiness")
            .map_or(Value::Null, |s| s["level"].clone())
    }

    /// Writes `files` (name, text) under a new folder `name` and returns the folder.
    fn proposal(&self, name: &str, files: &[(&str, &str)]) -> String {
        let folder = self.dir.path().join(name);
        for (file, text) in files {
            write(&folder, file, text);
        }
        folder.to_str().unwrap().to_owned()
    }
}

/// Polls `f` until it gives a value; what happens behind a change (history, automations)
/// takes a moment.
fn eventually<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "never got there");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn one_apply_declares_scorecards_initiatives_and_automations_and_prunes_them() {
    let w = World::start();
    let catalog = w.catalog();
    // A second scorecard, in a file of its own, to be removed later.
    write(
        &w.dir.path().join("repo/catalog"),
        "docs.yaml",
        "kind: Scorecard\nidentifier: docs-coverage\nblueprint: service\n\
         levels: [Missing, Documented]\nrules:\n- identifier: docs\n  level: Documented\n  \
         where: docs isNotEmpty\n",
    );

    let (code, out, err) = w.gantry(&["apply", "-f", &catalog]);
    assert_eq!(code, Some(0), "{out}{err}");
    for line in [
        "+ blueprint service",
        "+ entity service/checkout",
        "+ scorecard production-readiness",
        "+ scorecard docs-coverage",
        "+ initiative all-gold",
        "+ automation page-on-drop",
    ] {
        assert!(out.contains(line), "{line}: {out}");
    }
    // 2 blueprints, 5 entities, 2 scorecards, 1 initiative, 1 automation.
    assert!(
        out.contains("11 created, 0 updated, 0 unchanged, 0 deleted"),
        "{out}"
    );
    // The scorecards evaluate what the same apply declared.
    assert_eq!(w.level("service/checkout"), "Gold");
    assert_eq!(w.level("service/finder"), "Bronze");
    assert_eq!(w.level("service/legacy"), Value::Null, "out of scope");

    // Applying the same files again changes nothing.
    let (code, out, err) = w.gantry(&["apply", "-f", &catalog]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("0 created, 0 updated, 11 unchanged, 0 deleted"),
        "{out}"
    );

    // A scorecard whose file is gone is deleted with --prune, the rest stays.
    std::fs::remove_file(w.dir.path().join("repo/catalog/docs.yaml")).unwrap();
    let (code, out, err) = w.gantry(&["apply", "-f", &catalog]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("0 deleted"), "no --prune, no deletion: {out}");
    let (code, out, err) = w.gantry(&["apply", "-f", &catalog, "--prune"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("- scorecard docs-coverage"), "{out}");
    assert!(
        out.contains("0 created, 0 updated, 10 unchanged, 1 deleted"),
        "{out}"
    );
    let (code, out, err) = w.gantry(&["scorecard", "list", "--format", "json"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let list: Value = serde_json::from_str(&out).unwrap();
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["scorecard"]["identifier"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["production-readiness"]);
    let (code, _, err) = w.gantry(&["scorecard", "get", "docs-coverage"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("not_found"), "{err}");
}

#[test]
fn scorecard_check_gates_level_drops_and_applies_nothing() {
    let w = World::applied();
    assert_eq!(w.level("service/checkout"), "Gold");

    // The repository as it would be after a change: payments loses its rotation.
    let drop = w.proposal(
        "drop",
        &[
            ("model.yaml", MODEL),
            ("teams.yaml", &TEAMS.replace("{oncall: pd-pay}", "{}")),
            ("services.yaml", SERVICES),
            ("readiness.yaml", READINESS),
        ],
    );
    let (code, out, err) = w.gantry(&["scorecard", "check", "-f", &drop]);
    assert_eq!(code, Some(0), "a drop alone does not fail: {out}{err}");
    insta::assert_snapshot!(out, @r#"
    ▼ service/checkout drops Gold → Bronze on production-readiness
        now failing: on-call (Its team is on call, Silver)
        now failing: paged (Pages through PagerDuty, Gold)
    1 drop, 0 rises
    "#);
    let (code, again, err) = w.gantry(&["scorecard", "check", "-f", &drop, "--fail-on-drop"]);
    assert_eq!(code, Some(1), "{again}{err}");
    assert_eq!(again, out);

    // Only a rise: search gets a rotation, and a new service enters.
    let rise = w.proposal(
        "rise",
        &[
            (
                "teams.yaml",
                "kind: Entity\nblueprint: team\nidentifier: search\nproperties: {oncall: pd-search}\n",
            ),
            (
                "new.yaml",
                "kind: Entity\nblueprint: service\nidentifier: fresh\nproperties: {lifecycle: production}\n",
            ),
        ],
    );
    let (code, out, err) = w.gantry(&["scorecard", "check", "-f", &rise, "--fail-on-drop"]);
    assert_eq!(code, Some(0), "{out}{err}");
    insta::assert_snapshot!(out, @r#"
    ▲ service/finder rises Bronze → Gold on production-readiness
        now passing: on-call (Its team is on call, Silver)
        now passing: paged (Pages through PagerDuty, Gold)
    + service/fresh enters at Basic on production-readiness
        failing: has-owner (Has an owning team, Bronze)
        failing: on-call (Its team is on call, Silver)
        failing: paged (Pages through PagerDuty, Gold)
        failing: docs (Has docs, Gold)
    0 drops, 1 rise, 1 entering
    "#);

    // A file that does not parse: where, on stderr; nothing sent.
    let broken = w.proposal(
        "broken",
        &[(
            "teams.yaml",
            "kind: Entity\nblueprint: team\nidentifier: payments\nproperties: {oncall: [pd-pay}\n",
        )],
    );
    let (code, out, err) = w.gantry(&["scorecard", "check", "-f", &broken, "--fail-on-drop"]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert_eq!(out, "");
    let file = Path::new(&broken).join("teams.yaml");
    assert!(
        err.contains(&format!("{}:4:29: invalid YAML", file.display())),
        "{err}"
    );
    assert!(err.contains("nothing was checked"), "{err}");

    // Nothing the checks saw was applied.
    assert_eq!(w.level("service/checkout"), "Gold");
    assert_eq!(w.level("service/finder"), "Bronze");
    let (code, _, err) = w.gantry(&["catalog", "get", "service", "fresh"]);
    assert_eq!(code, Some(1), "{err}");
    let (code, out, err) = w.gantry(&[
        "scorecard",
        "history",
        "production-readiness",
        "--format",
        "json",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    let history: Value = serde_json::from_str(&out).unwrap();
    assert!(
        history["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["from"].is_null()),
        "only the entries into the scorecard: {history}"
    );
}

#[test]
fn texts_show_standings_progress_and_what_automations_did() {
    let w = World::applied();

    // finder's team has no rotation: Silver's rule fails, and Gold's on the mirror with it.
    let (code, out, err) = w.gantry(&["scorecard", "entity", "service/finder"]);
    assert_eq!(code, Some(0), "{out}{err}");
    insta::assert_snapshot!(out, @r#"
    production-readiness: Bronze (score 40)
      ✓ has-owner [Bronze]: saw "search"
      ✗ on-call [Silver]: saw nothing
      ✗ paged [Gold]: saw nothing
      ✓ docs [Gold]: saw "https://docs/finder"
      to reach Silver: fix on-call
    "#);
    let (code, out, _) = w.gantry(&["scorecard", "entity", "service/checkout"]);
    assert_eq!(code, Some(0));
    assert!(
        out.starts_with("production-readiness: Gold (score 100)\n"),
        "{out}"
    );
    assert!(!out.contains("to reach"), "nothing above Gold: {out}");
    let (code, out, _) = w.gantry(&["scorecard", "entity", "service/legacy"]);
    assert_eq!(code, Some(0));
    assert_eq!(out, "no scorecard evaluates this entity\n");
    let (code, _, err) = w.gantry(&["scorecard", "entity", "finder"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("BLUEPRINT/IDENTIFIER"), "{err}");

    let (code, out, err) = w.gantry(&["scorecard", "get", "production-readiness"]);
    assert_eq!(code, Some(0), "{out}{err}");
    insta::assert_snapshot!(out, @r#"
    Production readiness (production-readiness) on service: 2 entities, average score 70
      levels: Basic 0, Bronze 1, Silver 0, Gold 1
    RULE       PASSED
    has-owner  2/2
    on-call    1/2
    paged      1/2
    docs       2/2
    by team:
      payments: Basic 0, Bronze 0, Silver 0, Gold 1
      search: Basic 0, Bronze 1, Silver 0, Gold 0
    "#);
    let (code, out, _) = w.gantry(&["scorecard", "list"]);
    assert_eq!(code, Some(0));
    insta::assert_snapshot!(out, @r#"
    IDENTIFIER            BLUEPRINT  ENTITIES  LEVELS
    production-readiness  service    2         Basic 0, Bronze 1, Silver 0, Gold 1
    "#);
    let (code, out, _) = w.gantry(&["scorecard", "entities", "production-readiness"]);
    assert_eq!(code, Some(0));
    insta::assert_snapshot!(out, @r#"
    ENTITY            LEVEL   SCORE  TO FIX NEXT
    service/checkout  Gold    100
    service/finder    Bronze  40     on-call
    "#);

    let (code, out, err) = w.gantry(&["initiative", "get", "all-gold"]);
    assert_eq!(code, Some(0), "{out}{err}");
    insta::assert_snapshot!(out, @r#"
    All gold (all-gold): production-readiness at Gold or above by 2026-12-31
      all: 1/2 (50%)
      payments: 1/1 (100%)
      search: 0/1 (0%)
    "#);
    let (code, out, _) = w.gantry(&["initiative", "list"]);
    assert_eq!(code, Some(0));
    insta::assert_snapshot!(out, @r#"
    IDENTIFIER  SCORECARD             TARGET  DEADLINE    AT TARGET
    all-gold    production-readiness  Gold    2026-12-31  1/2 (50%)
    "#);

    let (code, out, err) = w.gantry(&["automation", "list"]);
    assert_eq!(code, Some(0), "{out}{err}");
    insta::assert_snapshot!(out, @r#"
    IDENTIFIER    EVENT                    EFFECT         ENABLED
    page-on-drop  scorecard.level_changed  workflow page  yes
    "#);
    let (code, out, _) = w.gantry(&["automation", "get", "page-on-drop"]);
    assert_eq!(code, Some(0));
    let got: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(got["trigger"]["event"], "scorecard.level_changed", "{out}");
    let (code, out, _) = w.gantry(&["automation", "firings"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        out.lines().count(),
        1,
        "only a header, nothing fired: {out}"
    );

    // A real drop: payments loses its rotation; the automation starts the page workflow.
    let catalog = w.catalog();
    write(
        Path::new(&catalog),
        "teams.yaml",
        &TEAMS.replace("{oncall: pd-pay}", "{}"),
    );
    let (code, out, err) = w.gantry(&["apply", "-f", &catalog]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(w.level("service/checkout"), "Bronze");
    let firings = eventually(|| {
        let (code, out, err) = w.gantry(&["automation", "firings", "--format", "json"]);
        assert_eq!(code, Some(0), "{out}{err}");
        let v: Value = serde_json::from_str(&out).unwrap();
        v["items"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
            .then_some(v)
    });
    let run = firings["items"][0]["detail"]["result"]["run"]
        .as_str()
        .unwrap_or_else(|| panic!("{firings}"))
        .to_owned();
    let (code, out, _) = w.gantry(&["automation", "firings", "--automation", "page-on-drop"]);
    assert_eq!(code, Some(0));
    let row = out.lines().nth(1).unwrap_or_else(|| panic!("{out}"));
    for part in [
        "page-on-drop",
        "scorecard.level_changed",
        "started",
        &format!("run {run}"),
    ] {
        assert!(row.contains(part), "{part}: {out}");
    }
    let (code, out, _) = w.gantry(&["automation", "firings", "--status", "failed"]);
    assert_eq!(code, Some(0));
    assert_eq!(out.lines().count(), 1, "{out}");
    // History is written behind the change.
    let out = eventually(|| {
        let (code, out, err) = w.gantry(&[
            "scorecard",
            "history",
            "production-readiness",
            "--entity",
            "service/checkout",
        ]);
        assert_eq!(code, Some(0), "{out}{err}");
        out.contains("service/checkout  Gold  Bronze")
            .then_some(out)
    });
    assert_eq!(out.lines().count(), 3, "header, entry, drop: {out}");
}
