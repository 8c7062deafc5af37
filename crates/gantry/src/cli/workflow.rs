//! `gantry workflow validate` and `gantry workflow plan`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use gantry_workflow::{LineIndex, Parsed, StepKind, TriggerSource, Workflow};
use serde_json::{json, Value};

use super::render::{diagnostic_json, diagnostics_text};

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

pub(crate) fn validate(
    files: &[std::path::PathBuf],
    as_json: bool,
    color: bool,
) -> anyhow::Result<ExitCode> {
    let mut all_valid = true;
    let mut report = Vec::with_capacity(files.len());
    let mut out = std::io::stdout().lock();
    for path in files {
        let name = path.display().to_string();
        let src = read(path)?;
        let parsed = gantry_workflow::parse(&src);
        let valid = parsed.is_valid();
        all_valid &= valid;
        if as_json {
            let lines = LineIndex::new(&src);
            let diags: Vec<Value> = parsed
                .diagnostics
                .iter()
                .map(|d| diagnostic_json(d, &lines))
                .collect();
            report.push(json!({"file": name, "valid": valid, "diagnostics": diags}));
        } else {
            write!(
                out,
                "{}",
                diagnostics_text(&name, &src, &parsed.diagnostics, color)
            )?;
            let errors = parsed.diagnostics.iter().filter(|d| d.is_error()).count();
            let warnings = parsed.diagnostics.len() - errors;
            let verdict = if valid { "valid" } else { "invalid" };
            writeln!(
                out,
                "{name}: {verdict} ({errors} errors, {warnings} warnings)"
            )?;
        }
    }
    if as_json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&Value::Array(report))?
        )?;
    }
    Ok(if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub(crate) fn plan(path: &Path, as_json: bool, color: bool) -> anyhow::Result<ExitCode> {
    let src = read(path)?;
    let name = path.display().to_string();
    let parsed = gantry_workflow::parse(&src);
    let mut out = std::io::stdout().lock();
    let Some(_) = &parsed.plan else {
        if as_json {
            let lines = LineIndex::new(&src);
            let diags: Vec<Value> = parsed
                .diagnostics
                .iter()
                .map(|d| diagnostic_json(d, &lines))
                .collect();
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(
                    &json!({"file": name, "valid": false, "diagnostics": diags})
                )?
            )?;
        } else {
            write!(
                out,
                "{}",
                diagnostics_text(&name, &src, &parsed.diagnostics, color)
            )?;
            writeln!(out, "{name}: invalid, no plan")?;
        }
        return Ok(ExitCode::from(1));
    };
    let doc = plan_json(&name, path, &parsed, chrono::Utc::now());
    if as_json {
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
    } else {
        write!(
            out,
            "{}",
            diagnostics_text(&name, &src, &parsed.diagnostics, color)
        )?;
        write!(out, "{}", plan_text(&doc))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn workflow_name(wf: &Workflow, path: &Path) -> String {
    wf.name
        .as_ref()
        .map(|n| n.value.clone())
        .unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
}

/// The plan as JSON: the shape of `gantry workflow plan --format json`.
pub(crate) fn plan_json(
    file: &str,
    path: &Path,
    parsed: &Parsed,
    now: chrono::DateTime<chrono::Utc>,
) -> Value {
    let wf = &parsed.workflow;
    let parameters: Vec<Value> = wf
        .parameters
        .iter()
        .map(|p| {
            let mut v = json!({"name": p.name.value, "required": p.default.is_none()});
            if let Some(d) = &p.description {
                v["description"] = json!(d.value);
            }
            if let Some(d) = &p.default {
                v["default"] = d.to_json();
            }
            if let Some(t) = &p.type_ {
                v["type"] = json!(t.value);
            }
            v
        })
        .collect();
    let triggers: Vec<Value> = wf
        .triggers
        .iter()
        .map(|t| {
            let mut v = json!({"name": t.name.value, "type": t.source.type_name()});
            match &t.source {
                TriggerSource::Schedule { schedule, parsed } => {
                    v["schedule"] = json!(schedule.value);
                    if let Some(next) = parsed.as_ref().and_then(|p| p.next_after(now)) {
                        v["next"] = json!(next.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
                    }
                }
                TriggerSource::Webhook(c) => {
                    if let Some(i) = &c.image {
                        v["image"] = json!(i.value);
                    }
                }
                TriggerSource::Push { schema } => {
                    if !schema.is_empty() {
                        v["schema"] = schema
                            .iter()
                            .map(|(k, t)| (k.value.clone(), json!(t.value)))
                            .collect::<serde_json::Map<_, _>>()
                            .into();
                    }
                }
            }
            if let Some(b) = &t.binding {
                let bound: Vec<&str> = b.parameters.iter().map(|(k, _)| k.value.as_str()).collect();
                v["binds"] = json!(bound);
            }
            v
        })
        .collect();
    let levels: Vec<Value> = parsed
        .plan
        .as_ref()
        .map(|plan| {
            plan.levels
                .iter()
                .map(|level| {
                    level
                        .iter()
                        .map(|&i| {
                            let s = &plan.steps[i];
                            let step = &wf.steps[i];
                            let names = |ix: &[usize]| -> Vec<&str> {
                                ix.iter().map(|&j| plan.steps[j].name.as_str()).collect()
                            };
                            let mut v = json!({
                                "name": s.name,
                                "type": match step.kind { StepKind::Approval => "approval", StepKind::Container(_) => "container" },
                                "dependsOn": names(&s.explicit),
                                "implicitDependsOn": names(&s.implicit),
                            });
                            if let Some(img) = step.container().and_then(|c| c.image.as_ref()) {
                                v["image"] = json!(img.value);
                            }
                            if step.when.is_some() {
                                v["conditional"] = json!(true);
                            }
                            v
                        })
                        .collect::<Vec<_>>()
                        .into()
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "file": file,
        "name": workflow_name(wf, path),
        "parameters": parameters,
        "triggers": triggers,
        "levels": levels,
    })
}

fn plan_text(doc: &Value) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let arr = |v: &Value| v.as_array().cloned().unwrap_or_default();
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let _ = writeln!(s, "workflow {}", text(&doc["name"]));
    let params = arr(&doc["parameters"]);
    if !params.is_empty() {
        let _ = writeln!(s, "\nparameters:");
        for p in params {
            let default = match p.get("default") {
                Some(d) => format!("default {d}"),
                None => "required".into(),
            };
            let desc = p
                .get("description")
                .map(text)
                .map(|d| format!("  {d}"))
                .unwrap_or_default();
            let _ = writeln!(s, "  {:<20} {default}{desc}", text(&p["name"]));
        }
    }
    let triggers = arr(&doc["triggers"]);
    if !triggers.is_empty() {
        let _ = writeln!(s, "\ntriggers:");
        for t in triggers {
            let detail = match t["type"].as_str() {
                Some("schedule") => {
                    let next = t
                        .get("next")
                        .map(text)
                        .map(|n| format!(", next {n}"))
                        .unwrap_or_default();
                    format!("schedule `{}`{next}", text(&t["schedule"]))
                }
                Some("webhook") => format!("webhook → {}", text(&t["image"])),
                _ => text(&t["type"]),
            };
            let _ = writeln!(s, "  {:<20} {detail}", text(&t["name"]));
        }
    }
    let levels = arr(&doc["levels"]);
    let count: usize = levels.iter().map(|l| arr(l).len()).sum();
    let _ = writeln!(s, "\nsteps: {count} in {} levels", levels.len());
    for (i, level) in levels.iter().enumerate() {
        let _ = writeln!(s, "  level {}", i + 1);
        for step in arr(level) {
            let mut deps: Vec<String> = arr(&step["dependsOn"]).iter().map(text).collect();
            deps.extend(
                arr(&step["implicitDependsOn"])
                    .iter()
                    .map(|d| format!("{} (implicit)", text(d))),
            );
            let after = if deps.is_empty() {
                String::new()
            } else {
                format!(" ← {}", deps.join(", "))
            };
            let kind = if step["type"] == "approval" {
                " [approval]"
            } else {
                ""
            };
            let when = if step.get("conditional").is_some() {
                " [when]"
            } else {
                ""
            };
            let _ = writeln!(s, "    {}{kind}{when}{after}", text(&step["name"]));
        }
    }
    s
}
