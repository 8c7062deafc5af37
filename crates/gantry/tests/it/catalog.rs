//! `gantry apply -f`, `gantry catalog search|get` and `gantry import backstage` against a real
//! server: errors at `file:line:col` before anything is written, dry runs, idempotent applies,
//! prune by source, and a Backstage catalog moved in one command.

use std::path::Path;

use crate::server::{gantry, start_server};

const MODEL: &str = "\
kind: Blueprint
identifier: team
schema:
  properties:
    slack: {type: string}
---
kind: Blueprint
identifier: service
schema:
  properties:
    language: {type: string, enum: [rust, go]}
    tier: {type: integer, minimum: 1, maximum: 3}
  required: [language]
relations:
  owner: {target: team, required: true}
mirrorProperties:
  slack: {path: owner.slack}
";

const ENTITIES: &str = "\
kind: Entity
blueprint: team
identifier: payments
properties: {slack: '#pay'}
---
kind: Entity
blueprint: service
identifier: checkout
title: Checkout
properties: {language: rust, tier: 1}
relations: {owner: payments}
---
kind: Entity
blueprint: service
identifier: ledger
properties: {language: go, tier: 2}
relations: {owner: payments}
";

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn apply_reports_file_errors_plans_applies_once_and_prunes_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_server(&dir.path().join("data"), "process", true);
    let (addr, key) = (server.addr.clone(), server.key.clone().expect("admin key"));
    let repo = dir.path().join("repo");
    write(&repo, "catalog/model.yaml", MODEL);
    write(&repo, "catalog/services.yaml", ENTITIES);
    // A git repository: its name is the source `--prune` is limited to.
    std::fs::create_dir_all(repo.join(".git")).unwrap();
    let folder = repo.join("catalog");
    let folder = folder.to_str().unwrap();

    // Shape errors in a file: each at its place, nothing sent.
    let broken = repo.join("broken");
    write(
        &broken,
        "bad.yaml",
        "kind: Entity\nblueprint: service\nidentifier: x\ntitel: typo\n---\nkind: Widget\nidentifier: w\n",
    );
    let (code, out, err) = gantry(&["apply", "-f", broken.to_str().unwrap()], &addr, &key);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("bad.yaml:4:1:"), "{err}");
    assert!(err.contains("title"), "did you mean: {err}");
    assert!(err.contains("bad.yaml:6:7:"), "{err}");
    assert!(err.contains("nothing was sent"), "{err}");

    // A dry run shows what would be created and writes nothing.
    let (code, out, err) = gantry(&["apply", "-f", folder, "--dry-run"], &addr, &key);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("+ entity service/checkout would be created"),
        "{out}"
    );
    assert!(
        out.contains("5 created, 0 updated, 0 unchanged, 0 deleted (dry run"),
        "{out}"
    );
    let (code, _, _) = gantry(&["catalog", "get", "service", "checkout"], &addr, &key);
    assert_eq!(code, Some(1), "nothing was written");

    let (code, out, err) = gantry(&["apply", "-f", folder], &addr, &key);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("5 created"), "{out}");
    let (code, out, _) = gantry(&["apply", "-f", folder], &addr, &key);
    assert_eq!(code, Some(0));
    assert!(out.contains("0 created, 0 updated, 5 unchanged"), "{out}");

    // A problem only the server can see (a value out of range): at its file:line:col, nothing
    // written.
    write(
        &repo,
        "catalog/services.yaml",
        &ENTITIES.replace("tier: 2", "tier: 9"),
    );
    let (code, out, err) = gantry(&["apply", "-f", folder], &addr, &key);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("services.yaml:16:"), "{err}");
    assert!(err.contains("maximum"), "{err}");

    // A change shows its diff; a document removed is pruned with --prune.
    let changed = ENTITIES.replace("tier: 1", "tier: 3");
    let without_ledger = &changed[..changed.rfind("---").unwrap()];
    write(&repo, "catalog/services.yaml", without_ledger);
    let (code, out, err) = gantry(
        &["apply", "-f", folder, "--prune", "--dry-run"],
        &addr,
        &key,
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("~ entity service/checkout would be updated"),
        "{out}"
    );
    assert!(out.contains("properties.tier: 1 → 3"), "{out}");
    assert!(
        out.contains("- entity service/ledger would be deleted"),
        "{out}"
    );
    let (code, out, err) = gantry(&["apply", "-f", folder, "--prune"], &addr, &key);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("1 updated") && out.contains("1 deleted"),
        "{out}"
    );

    // Queries from the command line.
    let (code, out, err) = gantry(
        &[
            "catalog",
            "search",
            "blueprint = service and owner.slack = \"#pay\"",
            "--format",
            "json",
        ],
        &addr,
        &key,
    );
    assert_eq!(code, Some(0), "{out}{err}");
    let page: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["identifier"], "checkout");
    assert_eq!(page["items"][0]["properties"]["slack"], "#pay");
    let (code, out, _) = gantry(&["catalog", "get", "service", "checkout"], &addr, &key);
    assert_eq!(code, Some(0));
    assert!(out.starts_with("service/checkout  Checkout\n"), "{out}");
    assert!(
        out.contains("tier: 3  (file:repo)"),
        "the source is the repository: {out}"
    );
    let (code, _, err) = gantry(&["catalog", "search", "tier >"], &addr, &key);
    assert_eq!(code, Some(1));
    assert!(err.contains("q") || err.contains("query"), "{err}");
    let _ = server.child.kill();
    let _ = server.child.wait();
}

#[test]
fn a_backstage_catalog_moves_in_with_one_command() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_server(&dir.path().join("data"), "process", true);
    let (addr, key) = (server.addr.clone(), server.key.clone().expect("admin key"));
    let fixtures =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../gantry-catalog/tests/fixtures/backstage");
    let fixtures = fixtures.to_str().unwrap();
    let (code, out, err) = gantry(&["import", "backstage", fixtures], &addr, &key);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("0 deleted"), "{out}");
    assert!(
        err.contains("warning:"),
        "the Location and Template are reported: {err}"
    );
    // Components, with their owners and APIs, are in the catalog.
    let (code, out, err) = gantry(
        &[
            "catalog",
            "search",
            "",
            "--blueprint",
            "component",
            "--format",
            "json",
        ],
        &addr,
        &key,
    );
    assert_eq!(code, Some(0), "{out}{err}");
    let page: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(page["total"], 4, "{out}");
    let with_owner = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["relations"]["owner"].is_string())
        .count();
    assert!(with_owner >= 3, "{out}");
    // Importing again changes nothing.
    let (code, out, _) = gantry(&["import", "backstage", fixtures], &addr, &key);
    assert_eq!(code, Some(0));
    assert!(
        out.lines()
            .last()
            .unwrap()
            .starts_with("0 created, 0 updated"),
        "{out}"
    );
    let _ = server.child.kill();
    let _ = server.child.wait();
}
