//! Who may run an action and whether a run's approvals are enough.
//!
//! A [`Rule`] lists principals of four kinds: users (emails, compared without regard to ASCII
//! case), teams (exact names), roles (a role includes every role below it:
//! `viewer < operator < approver < admin`) and `owners` (the members of a team that owns the
//! entity acted on). With `mode: any` one matching principal is enough; with `mode: all` each
//! kind that is listed must match (the user is one of the users, a member of one of the teams,
//! holds one of the roles or a higher one, and is a member of an owning team), and kinds left
//! out do not count. A rule that lists nobody allows nobody. There is no implicit bypass:
//! an admin is allowed by a rule only as the rule says.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{Action, Mode, Rule};

/// An organisation role. Ordered: each includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
    Approver,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Operator, Role::Approver, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }

    /// The role named exactly so (lowercase).
    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// "an approver or higher", for messages.
    fn or_higher(self) -> &'static str {
        match self {
            Role::Viewer => "a viewer or higher",
            Role::Operator => "an operator or higher",
            Role::Approver => "an approver or higher",
            Role::Admin => "an admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Role::parse(s)
            .ok_or_else(|| format!("`{s}` is not a role: viewer, operator, approver or admin"))
    }
}

/// A user asking to run or approve: their email, their teams and their role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who {
    pub email: String,
    pub teams: Vec<String>,
    pub role: Role,
}

fn same_email(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

impl Rule {
    /// Who may run an action whose `permissions.run` is left out: operators and above.
    pub fn default_run() -> Rule {
        Rule {
            roles: vec![Role::Operator],
            ..Rule::default()
        }
    }

    /// Who may approve a run when `permissions.approve` is left out: approvers and above.
    pub fn default_approve() -> Rule {
        Rule {
            roles: vec![Role::Approver],
            ..Rule::default()
        }
    }

    /// Whether the rule lists no principal at all (and so allows nobody).
    pub fn names_nobody(&self) -> bool {
        self.users.is_empty() && self.teams.is_empty() && self.roles.is_empty() && !self.owners
    }

    /// Whether `who` is allowed, `entity_teams` being the teams that own the entity acted on
    /// (empty for a create action). See the module documentation for the modes.
    pub fn allows(&self, who: &Who, entity_teams: &[String]) -> bool {
        let kinds = [
            (!self.users.is_empty()).then(|| self.users.iter().any(|u| same_email(u, &who.email))),
            (!self.teams.is_empty()).then(|| who.teams.iter().any(|t| self.teams.contains(t))),
            (!self.roles.is_empty()).then(|| self.roles.iter().any(|r| who.role >= *r)),
            self.owners
                .then(|| who.teams.iter().any(|t| entity_teams.contains(t))),
        ];
        let mut listed = kinds.into_iter().flatten().peekable();
        match self.mode {
            Mode::Any => listed.any(|ok| ok),
            Mode::All => listed.peek().is_some() && listed.all(|ok| ok),
        }
    }
}

/// Where a run's approvals stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalState {
    Approved,
    /// What is still needed, one line each, in the user's words ("1 more approval from a
    /// member of team sre", "an approval from an approver or higher").
    Waiting {
        missing: Vec<String>,
    },
}

/// Whether the approvals given so far let a run of `action` go on.
///
/// The rule is the action's `permissions.approve` (approvers and above when left out); a run
/// of an action that does not require approval is approved at once. Approvals from
/// `requester` (the user who started the run) never count: nobody approves their own run.
/// Each approver counts once, however many times they approved.
///
/// - `mode: any`: `approval.count` (1 when left out) distinct approvers, each allowed by the
///   rule ([`Rule::allows`]).
/// - `mode: all`: one approval from each listed user, one from a member of each listed team,
///   one from a holder of each listed role (or a higher one), and, with `owners`, one from a
///   member of a team owning the entity. One approval counts for every requirement its
///   approver meets. `count` does not apply.
///
/// A requirement nobody but the requester can meet keeps the run waiting: an entity with no
/// owning team never gets an owner's approval.
pub fn approval_state(
    action: &Action,
    requester: &str,
    approvals: &[Who],
    entity_teams: &[String],
) -> ApprovalState {
    if !action.approval.required {
        return ApprovalState::Approved;
    }
    let rule = action.permissions.approve_rule();
    let mut approvers: Vec<&Who> = Vec::new();
    for who in approvals {
        let counted = approvers.iter().any(|a| same_email(&a.email, &who.email));
        if !counted && !same_email(&who.email, requester) {
            approvers.push(who);
        }
    }
    let missing = match rule.mode {
        Mode::Any => {
            let needed = action.approval.count.unwrap_or(1).max(1) as usize;
            let given = approvers
                .iter()
                .filter(|w| rule.allows(w, entity_teams))
                .count();
            match needed.saturating_sub(given) {
                0 => Vec::new(),
                n => {
                    let noun = if n == 1 { "approval" } else { "approvals" };
                    vec![format!("{n} more {noun} from {}", describe_any(&rule))]
                }
            }
        }
        Mode::All => {
            let mut missing = Vec::new();
            let mut need = |met: bool, who: String| {
                if !met {
                    missing.push(format!("an approval from {who}"));
                }
            };
            for user in &rule.users {
                need(
                    approvers.iter().any(|a| same_email(&a.email, user)),
                    user.clone(),
                );
            }
            for team in &rule.teams {
                need(
                    approvers.iter().any(|a| a.teams.contains(team)),
                    format!("a member of team {team}"),
                );
            }
            for role in &rule.roles {
                need(
                    approvers.iter().any(|a| a.role >= *role),
                    role.or_higher().to_string(),
                );
            }
            if rule.owners {
                need(
                    approvers
                        .iter()
                        .any(|a| a.teams.iter().any(|t| entity_teams.contains(t))),
                    "a member of a team owning the entity".to_string(),
                );
            }
            if rule.names_nobody() {
                missing.push("an approver: the approve rule names nobody".to_string());
            }
            missing
        }
    };
    if missing.is_empty() {
        ApprovalState::Approved
    } else {
        ApprovalState::Waiting { missing }
    }
}

/// "bob@example.com, a member of team sre or an approver or higher".
fn describe_any(rule: &Rule) -> String {
    let mut who: Vec<String> = rule.users.clone();
    who.extend(rule.teams.iter().map(|t| format!("a member of team {t}")));
    who.extend(rule.roles.iter().map(|r| r.or_higher().to_string()));
    if rule.owners {
        who.push("a member of a team owning the entity".to_string());
    }
    match who.split_last() {
        None => "nobody: the approve rule names nobody".to_string(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}
