//! Organisations and teams → groups, and the allowlist, as Dex's GitHub connector: the groups are
//! organisation logins and `org:team-slug`. With an allowlist, a user must belong to one of its
//! organisations (and, where it lists teams, to one of them), and only the allowlisted
//! organisations give groups, so an organisation anyone can create cannot match a policy.

use std::collections::BTreeSet;

use super::OrgSettings;

/// A team the user is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    /// The organisation's login.
    pub org: String,
    /// The team's slug.
    pub slug: String,
}

/// Where the user is a member, as the REST API says.
#[derive(Debug, Clone, Default)]
pub struct Membership {
    /// Organisation logins (`GET /user/orgs`).
    pub orgs: Vec<String>,
    /// Teams (`GET /user/teams`).
    pub teams: Vec<Team>,
}

/// The user belongs to none of the allowed organisations or teams.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the GitHub user {user:?} is not a member of the required organisations or teams ({required})"
)]
pub struct NotAllowed {
    pub user: String,
    /// The allowlist, as `org` or `org:team` entries.
    pub required: String,
}

impl Membership {
    /// The user's groups, or why `user` may not sign in under `allowed` (empty: everyone may).
    /// Organisation names compare case-insensitively, as GitHub's do.
    pub fn groups(&self, user: &str, allowed: &[OrgSettings]) -> Result<Vec<String>, NotAllowed> {
        // A team membership implies the organisation's, even when /user/orgs hides it.
        let orgs: BTreeSet<&str> = self
            .orgs
            .iter()
            .map(String::as_str)
            .chain(self.teams.iter().map(|t| t.org.as_str()))
            .collect();
        let team_group = |t: &Team| format!("{}:{}", t.org, t.slug);
        if allowed.is_empty() {
            let mut groups: Vec<String> = orgs.iter().map(|o| o.to_string()).collect();
            groups.extend(self.teams.iter().map(team_group));
            return Ok(groups);
        }
        let mut groups = Vec::new();
        for rule in allowed {
            let Some(org) = orgs.iter().find(|o| o.eq_ignore_ascii_case(&rule.name)) else {
                continue;
            };
            let teams: Vec<&Team> = self
                .teams
                .iter()
                .filter(|t| t.org.eq_ignore_ascii_case(org))
                .filter(|t| {
                    rule.teams.is_empty()
                        || rule.teams.iter().any(|r| r.eq_ignore_ascii_case(&t.slug))
                })
                .collect();
            if !rule.teams.is_empty() && teams.is_empty() {
                continue;
            }
            groups.push(org.to_string());
            groups.extend(teams.into_iter().map(team_group));
        }
        if groups.is_empty() {
            return Err(NotAllowed {
                user: user.to_owned(),
                required: allowed
                    .iter()
                    .flat_map(|rule| {
                        if rule.teams.is_empty() {
                            vec![rule.name.clone()]
                        } else {
                            rule.teams
                                .iter()
                                .map(|t| format!("{}:{t}", rule.name))
                                .collect()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        Ok(groups)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn team(org: &str, slug: &str) -> Team {
        Team {
            org: org.into(),
            slug: slug.into(),
        }
    }

    fn rule(name: &str, teams: &[&str]) -> OrgSettings {
        OrgSettings {
            name: name.into(),
            teams: teams.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn alice() -> Membership {
        Membership {
            orgs: vec!["acme".into(), "hobby".into()],
            teams: vec![
                team("acme", "deployers"),
                team("acme", "qa"),
                team("hidden-org", "ops"),
            ],
        }
    }

    #[test]
    fn without_an_allowlist_every_org_and_team_is_a_group() {
        assert_eq!(
            alice().groups("alice", &[]).expect("allowed"),
            [
                "acme",
                "hidden-org",
                "hobby",
                "acme:deployers",
                "acme:qa",
                "hidden-org:ops"
            ]
        );
    }

    #[test]
    fn an_allowlist_admits_members_and_keeps_only_its_groups() {
        assert_eq!(
            alice()
                .groups("alice", &[rule("ACME", &[])])
                .expect("allowed"),
            ["acme", "acme:deployers", "acme:qa"]
        );
        assert_eq!(
            alice()
                .groups(
                    "alice",
                    &[rule("acme", &["deployers"]), rule("hidden-org", &[])]
                )
                .expect("allowed"),
            ["acme", "acme:deployers", "hidden-org", "hidden-org:ops"]
        );
    }

    #[test]
    fn a_user_outside_the_allowed_orgs_or_teams_is_refused() {
        let refused = alice()
            .groups("alice", &[rule("acme", &["admins"]), rule("other", &[])])
            .expect_err("refused");
        assert_eq!(refused.required, "acme:admins, other");
        assert!(refused.to_string().contains("\"alice\" is not a member"));
    }
}
