//! The planner: orders steps into levels of the dependency DAG, or spells out every cycle.
//!
//! A step's level is one more than the highest level among the steps it waits for, so each
//! level can run in parallel once the levels before it are done.

use crate::check::{Edge, EdgeKind};
use crate::diagnostic::{Code, Diagnostic};
use crate::model::Workflow;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// In file order.
    pub steps: Vec<PlannedStep>,
    /// Step indices per level, in file order within a level.
    pub levels: Vec<Vec<usize>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedStep {
    pub name: String,
    /// Indices of the steps listed in `dependsOn`.
    pub explicit: Vec<usize>,
    /// Indices of steps whose outputs or status this step reads and that it does not list.
    pub implicit: Vec<usize>,
    pub level: usize,
}

impl PlannedStep {
    /// Every step this one waits for.
    pub fn dependencies(&self) -> impl Iterator<Item = usize> + '_ {
        self.explicit.iter().chain(&self.implicit).copied()
    }
}

impl Plan {
    pub fn step(&self, name: &str) -> Option<(usize, &PlannedStep)> {
        self.steps.iter().enumerate().find(|(_, s)| s.name == name)
    }
}

/// Orders `wf`'s steps, or returns a diagnostic per dependency cycle.
pub fn plan(wf: &Workflow, edges: &[Edge]) -> Result<Plan, Vec<Diagnostic>> {
    let n = wf.steps.len();
    let mut steps: Vec<PlannedStep> = wf
        .steps
        .iter()
        .map(|s| PlannedStep {
            name: s.name.value.clone(),
            explicit: Vec::new(),
            implicit: Vec::new(),
            level: 0,
        })
        .collect();
    // Outgoing edges (waiting step → its dependency), first edge per pair kept for its span.
    let mut deps: Vec<Vec<&Edge>> = vec![Vec::new(); n];
    for e in edges.iter().filter(|e| e.kind == EdgeKind::Explicit) {
        if !steps[e.from].explicit.contains(&e.to) {
            steps[e.from].explicit.push(e.to);
            deps[e.from].push(e);
        }
    }
    for e in edges.iter().filter(|e| e.kind == EdgeKind::Implicit) {
        let s = &mut steps[e.from];
        if !s.explicit.contains(&e.to) && !s.implicit.contains(&e.to) {
            s.implicit.push(e.to);
            deps[e.from].push(e);
        }
    }
    // Kahn's algorithm over reverse edges.
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut waiting: Vec<usize> = vec![0; n];
    for (from, ds) in deps.iter().enumerate() {
        waiting[from] = ds.len();
        for e in ds {
            dependents[e.to].push(from);
        }
    }
    let mut ready: Vec<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
    let mut done = vec![false; n];
    let mut ordered = 0;
    while let Some(i) = ready.pop() {
        done[i] = true;
        ordered += 1;
        let level = steps[i].level;
        for &d in &dependents[i] {
            steps[d].level = steps[d].level.max(level + 1);
            waiting[d] -= 1;
            if waiting[d] == 0 {
                ready.push(d);
            }
        }
    }
    if ordered < n {
        return Err(cycles(wf, &deps, &done));
    }
    let depth = steps.iter().map(|s| s.level + 1).max().unwrap_or(0);
    let mut levels = vec![Vec::new(); depth];
    for (i, s) in steps.iter().enumerate() {
        levels[s.level].push(i);
    }
    Ok(Plan { steps, levels })
}

/// Every step left unordered waits for another unordered one, so following any such edge from
/// it must come back to a step already seen: that loop is a cycle.
fn cycles(wf: &Workflow, deps: &[Vec<&Edge>], done: &[bool]) -> Vec<Diagnostic> {
    let n = deps.len();
    let mut visited = vec![false; n];
    let mut diags = Vec::new();
    for start in 0..n {
        if done[start] || visited[start] {
            continue;
        }
        let mut path: Vec<&Edge> = Vec::new();
        let mut on_path = vec![usize::MAX; n];
        let mut at = start;
        let found = loop {
            if on_path[at] != usize::MAX {
                break Some(on_path[at]);
            }
            if visited[at] {
                break None;
            }
            visited[at] = true;
            on_path[at] = path.len();
            let Some(e) = deps[at].iter().find(|e| !done[e.to]) else {
                break None;
            };
            path.push(e);
            at = e.to;
        };
        let Some(first) = found else { continue };
        let cycle = &path[first..];
        let name = |i: usize| wf.steps[i].name.value.as_str();
        let mut spelled: Vec<&str> = cycle.iter().map(|e| name(e.from)).collect();
        spelled.push(name(cycle[0].from));
        let mut d = Diagnostic::error(
            Code::DependencyCycle,
            format!(
                "steps depend on each other in a cycle: {}",
                spelled.join(" → ")
            ),
            cycle[0].span,
        )
        .with_help("remove one of these dependencies; a step cannot wait for itself");
        for e in cycle {
            let how = match e.kind {
                EdgeKind::Explicit => "depends on",
                EdgeKind::Implicit => "reads from",
            };
            d = d.with_related(e.span, format!("`{}` {how} `{}`", name(e.from), name(e.to)));
        }
        diags.push(d);
    }
    diags
}
