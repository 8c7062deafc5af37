//! The Backstage import: descriptor files → the default blueprints and their entities.

use std::path::Path;

use gantry_catalog::backstage::{default_blueprints, import, Import};
use gantry_catalog::files::FileError;
use gantry_catalog::{Entity, RelationValue};
use serde_json::json;

/// The fixture catalog, named as the CLI would name files found under `backstage/`.
fn fixture_files() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/backstage");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let name = format!("backstage/{}", path.file_name().unwrap().to_string_lossy());
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

fn fixture() -> Import {
    import(&fixture_files()).unwrap_or_else(|e| panic!("{e:#?}"))
}

fn entity<'a>(i: &'a Import, blueprint: &str, id: &str) -> &'a Entity {
    i.entities
        .iter()
        .find(|e| e.blueprint == blueprint && e.identifier == id)
        .unwrap_or_else(|| panic!("no {blueprint} {id}"))
}

fn one(id: &str) -> RelationValue {
    RelationValue::One(id.to_string())
}

fn many(ids: &[&str]) -> RelationValue {
    RelationValue::Many(ids.iter().map(|s| s.to_string()).collect())
}

fn lines(errors: &[FileError]) -> String {
    errors.iter().map(|e| format!("{e}\n")).collect()
}

fn import_err(files: &[(&str, &str)]) -> String {
    let files: Vec<(String, String)> = files
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    match import(&files) {
        Ok(i) => panic!("imported: {i:#?}"),
        Err(errors) => lines(&errors),
    }
}

fn import_ok(files: &[(&str, &str)]) -> Import {
    let files: Vec<(String, String)> = files
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    import(&files).unwrap_or_else(|e| panic!("{e:#?}"))
}

#[test]
fn the_default_blueprints_come_targets_first() {
    let blueprints = default_blueprints();
    let ids: Vec<&str> = blueprints.iter().map(|b| b.identifier.as_str()).collect();
    assert_eq!(
        ids,
        [
            "group",
            "user",
            "domain",
            "system",
            "resource",
            "api",
            "component"
        ]
    );
    for (i, b) in blueprints.iter().enumerate() {
        assert!(b.allow_dangling_relations, "{}", b.identifier);
        for (name, r) in &b.relations {
            let target = ids.iter().position(|id| *id == r.target);
            assert!(
                target.is_some_and(|t| t <= i),
                "{}.{name} targets {}, which is not created before it",
                b.identifier,
                r.target
            );
        }
    }
    insta::assert_json_snapshot!("default_blueprints", blueprints);
}

#[test]
fn a_realistic_catalog_is_imported() {
    let i = fixture();
    let ids: Vec<String> = i
        .entities
        .iter()
        .map(|e| format!("{}/{}", e.blueprint, e.identifier))
        .collect();
    assert_eq!(
        ids,
        [
            "group/engineering",
            "group/payments-team",
            "group/web-team",
            "user/alice",
            "user/bob",
            "user/carol",
            "domain/commerce",
            "system/payments",
            "system/storefront",
            "resource/payments-db",
            "resource/ledger-db",
            "api/payments-api",
            "api/catalog-api",
            "component/payments-server",
            "component/ledger",
            "component/storefront-web",
            "component/checkout-widget",
        ]
    );
    assert_eq!(i.blueprints, default_blueprints());
    insta::assert_json_snapshot!("fixture_entities", i.entities);
}

#[test]
fn relations_follow_the_descriptors() {
    let i = fixture();
    let server = entity(&i, "component", "payments-server");
    assert_eq!(server.title.as_deref(), Some("Payments server"));
    assert_eq!(server.team, ["payments-team"]);
    assert_eq!(server.relations["owner"], one("payments-team"));
    assert_eq!(server.relations["system"], one("payments"));
    assert_eq!(server.relations["providesApis"], many(&["payments-api"]));
    assert_eq!(server.relations["consumesApis"], many(&["fx-rates-api"]));
    assert_eq!(server.relations["dependsOnComponents"], many(&["ledger"]));
    assert_eq!(
        server.relations["dependsOnResources"],
        many(&["payments-db"])
    );
    assert_eq!(
        server.properties["annotations"]["github.com/project-slug"],
        "acme/payments"
    );
    assert_eq!(server.properties["tags"], json!(["rust", "grpc"]));
    assert_eq!(server.properties["lifecycle"], "production");

    // `dependsOn: [ledger-db]` without a kind: the only entity of that name is a resource;
    // the resource's `dependencyOf` says the same and is recorded once.
    let ledger = entity(&i, "component", "ledger");
    assert_eq!(ledger.relations["dependsOnResources"], many(&["ledger-db"]));
    assert_eq!(ledger.team, ["payments-team"]);

    // A user owner is `ownerUser` and sets no team.
    let web = entity(&i, "component", "storefront-web");
    assert_eq!(web.relations["ownerUser"], one("bob"));
    assert!(!web.relations.contains_key("owner"));
    assert!(web.team.is_empty());
    assert_eq!(
        web.relations["consumesApis"],
        many(&["payments-api", "catalog-api"])
    );

    let widget = entity(&i, "component", "checkout-widget");
    assert_eq!(widget.relations["subcomponentOf"], one("storefront-web"));
    assert_eq!(
        widget.relations["dependsOnComponents"],
        many(&["payments-sdk"])
    );

    let ledger_db = entity(&i, "resource", "ledger-db");
    assert_eq!(
        ledger_db.relations["dependsOnResources"],
        many(&["payments-db"])
    );
    assert_eq!(
        entity(&i, "system", "storefront").relations["domain"],
        one("commerce")
    );
    assert_eq!(entity(&i, "domain", "commerce").team, ["engineering"]);

    // `children` and `members` are recorded on the child and the member.
    assert_eq!(
        entity(&i, "group", "web-team").relations["parent"],
        one("engineering")
    );
    assert_eq!(
        entity(&i, "group", "payments-team").relations["parent"],
        one("engineering")
    );
    assert!(!entity(&i, "group", "engineering")
        .relations
        .contains_key("parent"));
    assert_eq!(
        entity(&i, "user", "carol").relations["memberOf"],
        many(&["sre", "web-team"])
    );
    assert_eq!(
        entity(&i, "user", "bob").relations["memberOf"],
        many(&["web-team", "engineering"])
    );

    let alice = entity(&i, "user", "alice");
    assert_eq!(alice.title.as_deref(), Some("Alice Doe"));
    assert_eq!(alice.properties["email"], "alice@acme.example");
    let engineering = entity(&i, "group", "engineering");
    assert_eq!(engineering.title.as_deref(), Some("Engineering"));
    assert_eq!(engineering.properties["displayName"], "Acme Engineering");
    assert_eq!(engineering.properties["type"], "department");
}

#[test]
fn warnings_name_what_was_left_out_and_where() {
    let i = fixture();
    insta::assert_snapshot!(lines(&i.warnings), @r"
    backstage/apis.yaml:31:5: the definition is read from elsewhere (`$text`, `$json` or `$yaml`), which the import does not follow; it is left out, set `definition` later
    backstage/catalog-info.yaml:14:7: Location `acme-catalog` names backstage/teams/legacy.yaml, which was not given; the import reads only the files it is given: pass it too
    backstage/catalog-info.yaml:15:7: Location `acme-catalog` names https://git.example.com/acme/billing/blob/main/catalog-info.yaml; the import fetches nothing: download it and pass it too
    backstage/catalog-info.yaml:18:7: kind `Template` is not imported (only Group, User, Domain, System, Resource, API, Component and Location are); skipped
    backstage/components.yaml:23:18: `spec.consumesApis[0]` names API `fx-rates-api`, which is not in the files given; kept as a dangling relation
    backstage/components.yaml:61:15: `spec.dependsOn[0]` names `payments-sdk` without a kind and no component or resource of that name was given; kept as a dangling component (write `component:` or `resource:` before it)
    backstage/org.yaml:53:12: `bob at acme` is not an email address; left out
    backstage/org.yaml:61:14: `spec.memberOf[0]` names Group `sre`, which is not in the files given; kept as a dangling relation
    ");
}

#[test]
fn namespaces_are_part_of_identifiers_and_default_for_references() {
    let i = import_ok(&[(
        "ops.yaml",
        "\
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: SRE
  namespace: Ops
spec:
  type: team
  children: []
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: pager
  namespace: ops
spec:
  type: service
  lifecycle: production
  owner: sre
  system: default/alerting
  dependsOn: [resource:Ops/queue]
---
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata:
  name: queue
  namespace: OPS
spec:
  type: queue
  owner: group:ops/sre
",
    )]);
    let pager = entity(&i, "component", "ops:pager");
    assert_eq!(pager.relations["owner"], one("ops:SRE"));
    assert_eq!(pager.team, ["ops.sre"]);
    assert_eq!(pager.relations["system"], one("alerting"));
    assert_eq!(pager.relations["dependsOnResources"], many(&["ops:queue"]));
    assert_eq!(pager.title.as_deref(), Some("pager"));
    assert_eq!(entity(&i, "resource", "ops:queue").team, ["ops.sre"]);
    insta::assert_snapshot!(lines(&i.warnings), @r"
    ops.yaml:19:11: `spec.system` names System `alerting`, which is not in the files given; kept as a dangling relation
    ");
}

#[test]
fn unreadable_descriptors_fail_the_import_with_every_problem() {
    let errors = import_err(&[
        (
            "a.yaml",
            "\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: bad name
spec:
  owner: a:b:c
  subcomponentOf: \"default/\"
  providesApis: payments-api
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  title: No name
---
kind: System
metadata:
  name: s
---
apiVersion: backstage.io/v1alpha1
metadata:
  name: k
---
- not a descriptor
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: u
  tags: [ok, 3]
  links:
    - title: no url
spec:
  memberOf: [group:]
  profile: Jane
",
        ),
        (
            "b.yaml",
            "\
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: Team-A
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: team-a
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: broken
spec: {definition: [1, 2]
",
        ),
    ]);
    insta::assert_snapshot!(errors, @r"
    a.yaml:4:9: `metadata.name` `bad name` cannot be a Gantry identifier: use 1 to 100 letters, digits, `-`, `_`, `.` or `@`
    a.yaml:6:10: `spec.owner` is not an entity reference: `a:b:c` has too many parts; write `[kind:][namespace/]name`
    a.yaml:7:19: `spec.subcomponentOf` is not an entity reference: `default/` has an empty part; write `[kind:][namespace/]name`
    a.yaml:8:17: `spec.providesApis` must be a list, not a string
    a.yaml:13:3: missing field `metadata.name`
    a.yaml:15:1: missing field `apiVersion`
    a.yaml:19:1: missing field `kind`
    a.yaml:23:1: a Backstage descriptor is a mapping with `apiVersion`, `kind`, `metadata` and `spec`, not a list
    a.yaml:29:14: a tag must be a string, not a number
    a.yaml:31:7: a link is a mapping with a `url` string (and `title`, `icon`, `type`)
    a.yaml:33:14: `spec.memberOf[0]` is not an entity reference: a mapping reference needs a `name` string
    a.yaml:34:12: `spec.profile` must be a mapping, not a string
    b.yaml:4:9: Group `Team-A` in namespace `default` is declared 2 times (names are compared ignoring case); also at b.yaml:9:9
    b.yaml:9:9: Group `team-a` in namespace `default` is declared 2 times (names are compared ignoring case); also at b.yaml:4:9
    b.yaml:16:1: invalid YAML: while parsing a flow mapping, did not find expected ',' or '}'
    ");
}

#[test]
fn the_same_entity_in_two_files_is_reported_at_both() {
    let doc = "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: core\n";
    insta::assert_snapshot!(import_err(&[("a.yaml", doc), ("b/c.yaml", doc)]), @r"
    a.yaml:4:9: Group `core` in namespace `default` is declared 2 times (names are compared ignoring case); also at b/c.yaml:4:9
    b/c.yaml:4:9: Group `core` in namespace `default` is declared 2 times (names are compared ignoring case); also at a.yaml:4:9
    ");
}

#[test]
fn references_of_the_wrong_kind_are_left_out_with_a_warning() {
    let i = import_ok(&[(
        "c.yaml",
        "\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: c
spec:
  owner: component:other
  system: domain:commerce
  dependsOn: [api:x, resource:db]
  consumesApis:
    - kind: API
      name: compound
---
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata:
  name: db
spec:
  dependsOn: [component:c]
",
    )]);
    let c = entity(&i, "component", "c");
    assert!(!c.relations.contains_key("owner"));
    assert!(!c.relations.contains_key("system"));
    assert_eq!(c.relations["dependsOnResources"], many(&["db"]));
    assert_eq!(c.relations["consumesApis"], many(&["compound"]));
    assert!(!entity(&i, "resource", "db")
        .relations
        .contains_key("dependsOnResources"));
    insta::assert_snapshot!(lines(&i.warnings), @r"
    c.yaml:6:10: `spec.owner` names `component:other`, but only a Group or User can be there; left out
    c.yaml:7:11: `spec.system` names `domain:commerce`, but only a System can be there; left out
    c.yaml:8:15: `spec.dependsOn[0]` names `api:x`, but only a Component or Resource can be there; left out
    c.yaml:10:7: `spec.consumesApis[0]` names API `compound`, which is not in the files given; kept as a dangling relation
    c.yaml:18:15: `spec.dependsOn[0]`: a resource that depends on component `c` is not imported (resources depend on resources only, so blueprints can be created in order); left out
    ");
}

#[test]
fn nothing_to_import_is_an_empty_import() {
    let i = import_ok(&[("empty.yaml", "# nothing\n")]);
    assert!(i.entities.is_empty());
    assert!(i.warnings.is_empty());
    assert_eq!(i.blueprints.len(), 7);
}

#[test]
fn what_an_entity_says_of_itself_wins_over_reverse_fields() {
    let i = import_ok(&[(
        "edge.yaml",
        "\
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: a
spec:
  type: team
  children: [c, ghost]
  members: [nobody]
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: b
spec:
  type: team
  children: []
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: c
spec:
  type: team
  parent: b
  children: []
---
apiVersion: backstage.io/v1beta2
kind: Component
metadata:
  name: shared
spec:
  owner: user:x@corp
  dependsOn: [twin]
  dependencyOf: [resource:missing]
---
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata:
  name: twin
spec:
  owner: team@corp
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: twin
spec:
  owner: b
",
    )]);
    assert_eq!(entity(&i, "group", "c").relations["parent"], one("b"));
    let shared = entity(&i, "component", "shared");
    assert_eq!(shared.relations["ownerUser"], one("x@corp"));
    assert!(!shared.relations.contains_key("dependsOnComponents"));
    assert!(!shared.relations.contains_key("dependsOnResources"));
    let twin = entity(&i, "resource", "twin");
    assert_eq!(twin.relations["owner"], one("team@corp"));
    assert!(twin.team.is_empty());
    insta::assert_snapshot!(lines(&i.warnings), @r"
    edge.yaml:7:14: `spec.children[0]` makes `a` the parent of group `c`, which already has `b`; left out
    edge.yaml:7:17: `spec.children[1]` names Group `ghost`, which is not in the files given; the relation is recorded on that entity, so it is left out
    edge.yaml:8:13: `spec.members[0]` names User `nobody`, which is not in the files given; the relation is recorded on that entity, so it is left out
    edge.yaml:27:13: `apiVersion: backstage.io/v1beta2` is not one Gantry reads (backstage.io/v1alpha1, backstage.io/v1beta1); read as backstage.io/v1alpha1
    edge.yaml:32:10: `spec.owner` names User `x@corp`, which is not in the files given; kept as a dangling relation
    edge.yaml:33:15: `spec.dependsOn[0]` names `twin`, which is both a component and a resource; write `component:twin` or `resource:twin`; left out
    edge.yaml:34:18: `spec.dependencyOf[0]` names Resource `missing`, which is not in the files given; the relation is recorded on that entity, so it is left out
    edge.yaml:41:10: `spec.owner` names Group `team@corp`, which is not in the files given; kept as a dangling relation
    edge.yaml:41:10: the owner `team@corp` cannot be a Gantry team name (lowercase letters, digits, `-`, `_`, `.`); no team is set
    ");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

    #[test]
    fn any_cut_of_the_fixture_imports_or_fails_cleanly(file in 0usize..6, cut in 0usize..4000) {
        let mut files = fixture_files();
        let i = file % files.len();
        let text = &files[i].1;
        let mut end = cut.min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        files[i].1 = text[..end].to_string();
        match import(&files) {
            Ok(imported) => proptest::prop_assert_eq!(imported.blueprints.len(), 7),
            Err(errors) => proptest::prop_assert!(!errors.is_empty()),
        }
    }

    #[test]
    fn any_text_imports_or_fails_cleanly(src in "\\PC{0,300}") {
        let _ = import(&[("any.yaml".to_string(), src)]);
    }
}
