//! Who may do what: one pure function, [`can`], over a [`Principal`], an [`Action`] and the
//! [`Resource`] it acts on. No I/O: the API's middleware resolves the principal and the
//! resource's owner, then asks.
//!
//! The roles are Relay's, each including the one before: `viewer` reads, `operator` also runs
//! workflows (and actions), `approver` also answers approvals, `admin` does everything (edits
//! workflows, secrets, connections, users, teams, keys). Ownership adds one rule: the
//! maintainers of a team may edit what their team owns (a workflow, its secrets and push
//! tokens) without being admins; a service account acting for a team maintains what it owns.

/// The organisation roles, ordered, each including the ones before it: the catalog's, which
/// action rules name too.
pub use gantry_catalog::action::Role;

/// What a request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Read anything but a secret value (which no door returns).
    Read,
    /// Start, rerun or cancel a run.
    Run,
    /// Approve or deny an approval step.
    Approve,
    /// Write the catalog's entities (create, replace, patch, delete, bulk, apply).
    Write,
    /// Change a resource that can be owned: a workflow, its secrets, its push tokens.
    Edit,
    /// Change what belongs to the whole organisation: connections, users, teams, API keys,
    /// ownership itself; read the audit log.
    Administer,
    /// Claim and report the jobs of a pool: agents only, with an agent token.
    Work,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Run => "run",
            Action::Approve => "approve",
            Action::Write => "write",
            Action::Edit => "edit",
            Action::Administer => "administer",
            Action::Work => "work",
        }
    }
}

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `user:<id>`, `service:<id>`, or `admin` (the key made at first start).
    pub id: String,
    /// What audit events and approvals show: an email, a service account's name, `admin`.
    pub name: String,
    pub role: Role,
    /// The teams whose owned resources this principal may edit.
    pub maintains: Vec<String>,
}

impl Principal {
    /// An agent of a pool (`agent:<pool>`), acting with an agent token.
    pub fn is_agent(&self) -> bool {
        self.id.starts_with("agent:")
    }
}

/// What is acted on: only its owning team matters to the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Resource<'a> {
    pub owner: Option<&'a str>,
}

impl<'a> Resource<'a> {
    /// A resource nobody owns (or whose owner does not matter to the action).
    pub const NONE: Resource<'static> = Resource { owner: None };

    pub fn owned_by(team: Option<&'a str>) -> Self {
        Resource { owner: team }
    }
}

/// Whether `principal` may do `action` to `resource`.
pub fn can(principal: &Principal, action: Action, resource: &Resource<'_>) -> bool {
    // An agent token opens the agent endpoints only, and nothing else does.
    if principal.is_agent() || action == Action::Work {
        return principal.is_agent() && action == Action::Work;
    }
    let role = principal.role;
    match action {
        Action::Read => true,
        Action::Run => role >= Role::Operator,
        Action::Approve => role >= Role::Approver,
        Action::Write => role >= Role::Operator,
        Action::Edit => {
            role == Role::Admin
                || resource
                    .owner
                    .is_some_and(|team| principal.maintains.iter().any(|t| t == team))
        }
        Action::Administer => role == Role::Admin,
        Action::Work => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_token_opens_none_of_the_api() {
        let agent = Principal {
            id: "agent:edge".into(),
            name: "agent:edge".into(),
            role: Role::Admin,
            maintains: vec!["sre".into()],
        };
        for action in [
            Action::Read,
            Action::Run,
            Action::Approve,
            Action::Write,
            Action::Edit,
            Action::Administer,
        ] {
            assert!(
                !can(&agent, action, &Resource::owned_by(Some("sre"))),
                "{action:?}"
            );
        }
        assert!(can(&agent, Action::Work, &Resource::NONE));
        for role in Role::ALL {
            assert!(!can(&who(role, &["sre"]), Action::Work, &Resource::NONE));
        }
    }

    fn who(role: Role, maintains: &[&str]) -> Principal {
        Principal {
            id: "user:u".into(),
            name: "u@example.com".into(),
            role,
            maintains: maintains.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    #[test]
    fn each_role_includes_the_one_before() {
        let actions = [
            Action::Read,
            Action::Run,
            Action::Approve,
            Action::Administer,
        ];
        let allowed = |role| {
            actions
                .iter()
                .filter(|a| can(&who(role, &[]), **a, &Resource::NONE))
                .count()
        };
        assert_eq!(
            Role::ALL.map(allowed),
            [1, 2, 3, 4],
            "viewer reads; operator runs; approver approves; admin administers"
        );
        assert!(Role::Viewer < Role::Operator && Role::Approver < Role::Admin);
    }

    #[test]
    fn maintainers_edit_what_their_team_owns_and_nothing_else() {
        let sre = Resource::owned_by(Some("sre"));
        let payments = Resource::owned_by(Some("payments"));
        // A viewer who maintains sre edits sre's workflows, not another team's, not unowned.
        let maintainer = who(Role::Viewer, &["sre"]);
        assert!(can(&maintainer, Action::Edit, &sre));
        assert!(!can(&maintainer, Action::Edit, &payments));
        assert!(!can(&maintainer, Action::Edit, &Resource::NONE));
        // Maintaining does not grant running, approving or administering.
        assert!(!can(&maintainer, Action::Run, &sre));
        assert!(!can(&maintainer, Action::Approve, &sre));
        assert!(!can(&maintainer, Action::Administer, &sre));
        // An approver who maintains nothing edits nothing; an admin edits everything.
        for resource in [sre, payments, Resource::NONE] {
            assert!(!can(&who(Role::Approver, &[]), Action::Edit, &resource));
            assert!(can(&who(Role::Admin, &[]), Action::Edit, &resource));
        }
    }

    #[test]
    fn role_names_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("Admin"), None);
        assert_eq!(Role::parse("owner"), None);
    }
}
