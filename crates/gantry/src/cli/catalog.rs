//! The catalog from the command line: `gantry apply -f PATH...` (definition files, GitOps),
//! `gantry catalog search|get`, and `gantry import backstage FILE|DIR...`.
//!
//! Files are parsed here first: every syntax and shape error of every file is printed as
//! `file:line:col: message` and nothing is sent. Then the server plans the whole set at once;
//! a problem it finds (a bad property, a relation to nothing) comes back with the document and
//! the field's path and is printed against the file the same way, and again nothing is written.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use gantry_catalog::files::{self, Definition, Document};
use reqwest::Method;
use serde_json::{json, Value};

use super::client::{block_on, segment, Client, Connection};
use super::Format;

#[derive(Debug, clap::Args)]
pub(crate) struct ApplyArgs {
    /// Definition files or folders of them (`.yaml`, `.yml`, `.json`, searched recursively).
    #[arg(short = 'f', long = "file", required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Print what would change (with each change's diff); write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Delete the blueprints and entities this source declared before and the files no longer
    /// declare.
    #[arg(long)]
    prune: bool,
    /// The name of this set of files, which `--prune` is limited to [default: the name of the
    /// git repository holding the first path, else of its folder].
    #[arg(long, value_name = "NAME")]
    source: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum CatalogCommand {
    /// Search the catalog: `gantry catalog search 'language = "rust" and tier < 3'`.
    ///
    /// The query is the text form of the catalog's rule language (`and`, `or`, parentheses;
    /// operators `= != < <= > >= in notIn contains containsAny beginsWith endsWith isEmpty
    /// isNotEmpty between relatedTo`); fields may follow relations (`owner.team`).
    Search {
        /// The query; empty matches everything.
        #[arg(default_value = "")]
        query: String,
        /// Only entities of this blueprint.
        #[arg(long, value_name = "BLUEPRINT")]
        blueprint: Option<String>,
        /// Words that must appear in the identifier, title or a string property.
        #[arg(long, value_name = "WORDS")]
        search: Option<String>,
        /// Sort fields, `-` for descending: `title,-updatedAt`.
        #[arg(long, value_name = "FIELDS")]
        sort: Option<String>,
        #[arg(long, default_value_t = 50, value_name = "N")]
        limit: usize,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Show one entity with its computed values and where each value came from.
    Get {
        blueprint: String,
        identifier: String,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum ImportCommand {
    /// Import Backstage `catalog-info.yaml` files (multi-document) into blueprints named after
    /// the kinds (`component`, `api`, `resource`, `system`, `domain`, `group`, `user`).
    Backstage {
        /// Files, or folders searched recursively for `.yaml` and `.yml` files.
        #[arg(required = true, value_name = "FILE|DIR")]
        paths: Vec<PathBuf>,
        /// Print what would change; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// The source name the imported records are kept under.
        #[arg(long, default_value = "backstage", value_name = "NAME")]
        source: String,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
}

/// Every file under the paths with one of the extensions, in a stable order.
fn collect(paths: &[PathBuf], extensions: &[&str]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).with_context(|| format!("cannot read {}", p.display()))?;
        if meta.is_dir() {
            let mut stack = vec![p.clone()];
            let mut found = Vec::new();
            while let Some(dir) = stack.pop() {
                for entry in std::fs::read_dir(&dir)
                    .with_context(|| format!("cannot read {}", dir.display()))?
                {
                    let path = entry?.path();
                    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    if name.starts_with('.') {
                        continue;
                    }
                    if path.is_dir() {
                        stack.push(path);
                    } else if path
                        .extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| extensions.contains(&e))
                    {
                        found.push(path);
                    }
                }
            }
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// The name of the git repository holding `path`, else of the folder holding it.
fn default_source(path: &Path) -> String {
    let start = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let start = if start.is_dir() {
        start
    } else {
        start.parent().map(Path::to_path_buf).unwrap_or(start)
    };
    let mut dir = Some(start.as_path());
    while let Some(d) = dir {
        if d.join(".git").exists() {
            if let Some(name) = d.file_name() {
                return name.to_string_lossy().into_owned();
            }
        }
        dir = d.parent();
    }
    start
        .file_name()
        .map_or_else(|| "files".to_string(), |n| n.to_string_lossy().into_owned())
}

pub(crate) fn document_json(d: &Document) -> Value {
    let (kind, mut v) = match &d.definition {
        Definition::Blueprint(b) => ("Blueprint", serde_json::to_value(b)),
        Definition::Entity(e) => ("Entity", serde_json::to_value(e)),
        Definition::Action(a) => ("Action", serde_json::to_value(a)),
        Definition::Scorecard(s) => ("Scorecard", serde_json::to_value(s)),
        Definition::Initiative(i) => ("Initiative", serde_json::to_value(i)),
        Definition::Automation(a) => ("Automation", serde_json::to_value(a)),
    };
    if let Ok(Value::Object(o)) = &mut v {
        o.insert("kind".into(), json!(kind));
    }
    v.unwrap_or(Value::Null)
}

/// Sends the documents to `POST /catalog/apply` and prints the answer; problems are printed
/// against `located` (the documents the request was built from, when they came from files).
async fn send_apply(
    client: &Client,
    body: &Value,
    located: Option<&[Document]>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let answer = client
        .send_json(Method::POST, "/catalog/apply", body)
        .await?;
    if !answer.ok() {
        if let Some(problems) = answer.body["details"]["problems"].as_array() {
            eprintln!("error: {}", answer.summary());
            for p in problems {
                let message = p["message"].as_str().unwrap_or_default();
                let path = p["path"].as_str().unwrap_or_default();
                let doc = p["document"]
                    .as_u64()
                    .and_then(|i| located.and_then(|docs| docs.get(i as usize)));
                match doc {
                    Some(d) => eprintln!("{}: {message}", d.locate(path)),
                    None if path.is_empty() => eprintln!("{message}"),
                    None => eprintln!("{path}: {message}"),
                }
            }
        } else {
            eprint!("{}", answer.error_text(None));
        }
        return Ok(ExitCode::from(1));
    }
    if format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&answer.body).unwrap_or_default()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let b = &answer.body;
    for c in b["changes"].as_array().into_iter().flatten() {
        let (mark, outcome) = match c["outcome"].as_str().unwrap_or_default() {
            "created" => ("+", "created"),
            "updated" => ("~", "updated"),
            "deleted" => ("-", "deleted"),
            _ => continue,
        };
        let verb = if b["dryRun"] == true {
            match outcome {
                "created" => "would be created",
                "updated" => "would be updated",
                _ => "would be deleted",
            }
        } else {
            outcome
        };
        println!(
            "{mark} {} {} {verb}",
            c["kind"].as_str().unwrap_or_default(),
            c["key"].as_str().unwrap_or_default()
        );
        for d in c["diff"].as_array().into_iter().flatten() {
            let show = |v: &Value| {
                if v.is_null() {
                    "(none)".to_string()
                } else {
                    v.to_string()
                }
            };
            println!(
                "    {}: {} → {}",
                d["path"].as_str().unwrap_or_default(),
                show(&d["before"]),
                show(&d["after"])
            );
        }
    }
    println!(
        "{} created, {} updated, {} unchanged, {} deleted{}",
        b["created"],
        b["updated"],
        b["unchanged"],
        b["deleted"],
        if b["dryRun"] == true {
            " (dry run: nothing was written)"
        } else {
            ""
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// The definition documents of the files under `paths`; `Ok(None)` once every problem of
/// every file has been printed (`file:line:col: message`) with `what_not` ("nothing was
/// sent").
pub(crate) fn read_documents(
    paths: &[PathBuf],
    what_not: &str,
) -> anyhow::Result<Option<Vec<Document>>> {
    let mut documents = Vec::new();
    let mut errors = Vec::new();
    for f in collect(paths, &["yaml", "yml", "json"])? {
        let src =
            std::fs::read_to_string(&f).with_context(|| format!("cannot read {}", f.display()))?;
        let (docs, errs) = files::parse_file(&f.display().to_string(), &src);
        documents.extend(docs);
        errors.extend(errs);
    }
    errors.extend(files::check_duplicates(&documents));
    if errors.is_empty() {
        return Ok(Some(documents));
    }
    for e in &errors {
        eprintln!("{e}");
    }
    eprintln!(
        "error: {} problem{} in the files; {what_not}",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    );
    Ok(None)
}

pub(crate) fn apply(c: &Connection, args: ApplyArgs) -> anyhow::Result<ExitCode> {
    let Some(documents) = read_documents(&args.paths, "nothing was sent")? else {
        return Ok(ExitCode::from(1));
    };
    let source = match args.source {
        Some(s) => s,
        None => default_source(&args.paths[0]),
    };
    let body = json!({
        "source": source,
        "documents": documents.iter().map(document_json).collect::<Vec<_>>(),
        "dryRun": args.dry_run,
        "prune": args.prune,
    });
    let client = Client::new(c)?;
    block_on(async move { send_apply(&client, &body, Some(&documents), args.format).await })
}

pub(crate) fn catalog(c: &Connection, command: CatalogCommand) -> anyhow::Result<ExitCode> {
    let client = Client::new(c)?;
    match command {
        CatalogCommand::Search {
            query,
            blueprint,
            search,
            sort,
            limit,
            format,
        } => block_on(async move {
            let body = json!({
                "query": if query.trim().is_empty() { Value::Null } else { json!(query) },
                "blueprint": blueprint,
                "search": search,
                "sort": sort,
                "limit": limit,
            });
            let answer = client
                .send_json(Method::POST, "/entities/search", &body)
                .await?;
            Ok(super::remote::finish(
                &answer,
                format == Format::Json,
                |b| {
                    let mut out = String::new();
                    for e in b["items"].as_array().into_iter().flatten() {
                        out.push_str(&format!(
                            "{}/{}\t{}\n",
                            e["blueprint"].as_str().unwrap_or_default(),
                            e["identifier"].as_str().unwrap_or_default(),
                            e["title"].as_str().unwrap_or_default()
                        ));
                    }
                    out.push_str(&format!(
                        "{} of {} shown\n",
                        b["items"].as_array().map_or(0, Vec::len),
                        b["total"]
                    ));
                    out
                },
            ))
        }),
        CatalogCommand::Get {
            blueprint,
            identifier,
            format,
        } => block_on(async move {
            let path = format!(
                "/blueprints/{}/entities/{}",
                segment(&blueprint),
                segment(&identifier)
            );
            let answer = client.send(Method::GET, &path, None).await?;
            Ok(super::remote::finish(
                &answer,
                format == Format::Json,
                |b| {
                    let mut out = format!(
                        "{}/{}  {}\n",
                        b["blueprint"].as_str().unwrap_or_default(),
                        b["identifier"].as_str().unwrap_or_default(),
                        b["title"].as_str().unwrap_or_default()
                    );
                    if let Some(team) = b["team"].as_array().filter(|t| !t.is_empty()) {
                        let names: Vec<&str> = team.iter().filter_map(Value::as_str).collect();
                        out.push_str(&format!("team: {}\n", names.join(", ")));
                    }
                    let sources = &b["sources"];
                    for (k, v) in b["properties"].as_object().into_iter().flatten() {
                        let from = sources[format!("properties.{k}")]
                            .as_str()
                            .map_or(String::new(), |s| format!("  ({s})"));
                        out.push_str(&format!("  {k}: {v}{from}\n"));
                    }
                    for (k, v) in b["relations"].as_object().into_iter().flatten() {
                        out.push_str(&format!("  → {k}: {v}\n"));
                    }
                    for (k, v) in b["dangling"].as_object().into_iter().flatten() {
                        out.push_str(&format!("  ! {k} names what does not exist: {v}\n"));
                    }
                    out.push_str(&format!(
                        "version {}, updated {} by {}\n",
                        b["version"],
                        b["updatedAt"].as_str().unwrap_or_default(),
                        b["updatedBy"].as_str().unwrap_or_default()
                    ));
                    out
                },
            ))
        }),
    }
}

pub(crate) fn import(c: &Connection, command: ImportCommand) -> anyhow::Result<ExitCode> {
    let ImportCommand::Backstage {
        paths,
        dry_run,
        source,
        format,
    } = command;
    let files = collect(&paths, &["yaml", "yml"])?;
    let mut texts = Vec::new();
    for f in &files {
        let src =
            std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
        texts.push((f.display().to_string(), src));
    }
    let import = match gantry_catalog::backstage::import(&texts) {
        Ok(i) => i,
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!("error: the Backstage files have problems; nothing was sent");
            return Ok(ExitCode::from(1));
        }
    };
    for w in &import.warnings {
        eprintln!("warning: {w}");
    }
    let mut documents: Vec<Value> = Vec::new();
    for b in &import.blueprints {
        let mut v = serde_json::to_value(b)?;
        v["kind"] = json!("Blueprint");
        documents.push(v);
    }
    for e in &import.entities {
        let mut v = serde_json::to_value(e)?;
        v["kind"] = json!("Entity");
        documents.push(v);
    }
    let body = json!({
        "source": source,
        "documents": documents,
        "dryRun": dry_run,
        "prune": false,
    });
    let client = Client::new(c)?;
    block_on(async move { send_apply(&client, &body, None, format).await })
}
