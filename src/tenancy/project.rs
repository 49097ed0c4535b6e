//! The rules of one AppProject: which repositories, destinations and kinds its Applications may use.

use super::glob::{Pattern, allowed_by};
use crate::store::project::{AppProjectSpec, GroupKind, ProjectDestination};

/// A destination resolved to both its cluster name and server URL.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub server: &'a str,
    pub name: &'a str,
    pub namespace: &'a str,
}

/// Something a project forbids, phrased as Argo CD phrases it so users recognise it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("application repo {url} is not permitted in project '{project}'")]
    Repo { url: String, project: String },
    #[error(
        "application destination server '{server}' and namespace '{namespace}' do not match any of the allowed destinations in project '{project}'"
    )]
    Destination {
        server: String,
        namespace: String,
        project: String,
    },
    #[error("resource {group}:{kind} is not permitted in project {project} ({object})")]
    Kind {
        group: String,
        kind: String,
        object: String,
        project: String,
    },
    #[error(
        "{object}: namespace '{namespace}' on server '{server}' is not among the allowed destinations of project '{project}'"
    )]
    ObjectNamespace {
        object: String,
        namespace: String,
        server: String,
        project: String,
    },
}

/// A project's rules, compiled once per reconcile.
pub struct ProjectRules {
    name: String,
    repos: Vec<Pattern>,
    destinations: Vec<DestinationRule>,
    cluster_allow: Vec<KindRule>,
    cluster_deny: Vec<KindRule>,
    namespaced_allow: Vec<KindRule>,
    namespaced_deny: Vec<KindRule>,
    source_namespaces: Vec<Pattern>,
}

struct DestinationRule {
    server: Option<Pattern>,
    name: Option<Pattern>,
    namespace: Pattern,
}

struct KindRule {
    group: Pattern,
    kind: Pattern,
}

impl ProjectRules {
    /// Compiles the rules of project `name`.
    pub fn new(name: &str, spec: &AppProjectSpec) -> ProjectRules {
        let kinds = |list: &[GroupKind]| {
            list.iter()
                .map(|gk| KindRule {
                    group: Pattern::new(&gk.group, false),
                    kind: Pattern::new(&gk.kind, false),
                })
                .collect::<Vec<_>>()
        };
        ProjectRules {
            name: name.to_owned(),
            repos: spec
                .source_repos
                .iter()
                .map(|r| Pattern::new(&normalise_repo_pattern(r), true))
                .collect(),
            destinations: spec.destinations.iter().map(DestinationRule::new).collect(),
            cluster_allow: kinds(&spec.cluster_resource_whitelist),
            cluster_deny: kinds(&spec.cluster_resource_blacklist),
            namespaced_allow: kinds(&spec.namespace_resource_whitelist),
            namespaced_deny: kinds(&spec.namespace_resource_blacklist),
            source_namespaces: spec
                .source_namespaces
                .iter()
                .map(|n| Pattern::new(n, false))
                .collect(),
        }
    }

    /// The project's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether an Application may use repository `url`.
    pub fn check_repo(&self, url: &str) -> Result<(), Violation> {
        if allowed_by(&self.repos, &normalise_repo(url)) {
            Ok(())
        } else {
            Err(Violation::Repo {
                url: url.to_owned(),
                project: self.name.clone(),
            })
        }
    }

    /// Whether an Application may deploy to `target`.
    pub fn check_destination(&self, target: Target<'_>) -> Result<(), Violation> {
        if self.destination_allowed(target) {
            Ok(())
        } else {
            Err(Violation::Destination {
                server: target.server.to_owned(),
                namespace: target.namespace.to_owned(),
                project: self.name.clone(),
            })
        }
    }

    /// Whether an object of `group`/`kind` in `namespace` ("" when cluster-scoped) may be applied
    /// to the cluster of `target`; `object` names it in the message.
    pub fn check_object(
        &self,
        group: &str,
        kind: &str,
        namespace: &str,
        target: Target<'_>,
        object: &str,
    ) -> Result<(), Violation> {
        let kind_allowed = if namespace.is_empty() {
            any_kind(&self.cluster_allow, group, kind) && !any_kind(&self.cluster_deny, group, kind)
        } else {
            (self.namespaced_allow.is_empty() || any_kind(&self.namespaced_allow, group, kind))
                && !any_kind(&self.namespaced_deny, group, kind)
        };
        if !kind_allowed {
            return Err(Violation::Kind {
                group: group.to_owned(),
                kind: kind.to_owned(),
                object: object.to_owned(),
                project: self.name.clone(),
            });
        }
        if !namespace.is_empty()
            && !self.destination_allowed(Target {
                namespace,
                ..target
            })
        {
            return Err(Violation::ObjectNamespace {
                object: object.to_owned(),
                namespace: namespace.to_owned(),
                server: target.server.to_owned(),
                project: self.name.clone(),
            });
        }
        Ok(())
    }

    /// Whether Applications of this project may live in `namespace` (besides the control namespace).
    pub fn allows_app_namespace(&self, namespace: &str) -> bool {
        allowed_by(&self.source_namespaces, namespace)
    }

    fn destination_allowed(&self, target: Target<'_>) -> bool {
        let mut allowed = false;
        for rule in &self.destinations {
            match rule.verdict(target) {
                Verdict::Deny => return false,
                Verdict::Allow => allowed = true,
                Verdict::NoMatch => {}
            }
        }
        allowed
    }
}

enum Verdict {
    Allow,
    Deny,
    NoMatch,
}

impl DestinationRule {
    fn new(d: &ProjectDestination) -> DestinationRule {
        let field = |v: &Option<String>| {
            v.as_deref()
                .filter(|s| !s.is_empty())
                .map(|s| Pattern::new(s, false))
        };
        DestinationRule {
            server: field(&d.server),
            name: field(&d.name),
            namespace: Pattern::new(&d.namespace, false),
        }
    }

    fn is_deny(&self) -> bool {
        self.namespace.is_deny()
            || self.server.as_ref().is_some_and(Pattern::is_deny)
            || self.name.as_ref().is_some_and(Pattern::is_deny)
    }

    /// An entry with a `!` anywhere only denies: when every field's pattern matches the target.
    /// Any other entry allows when its cluster (server or name) and namespace match.
    fn verdict(&self, target: Target<'_>) -> Verdict {
        let server = self.server.as_ref().map(|p| p.matches(target.server));
        let name = self.name.as_ref().map(|p| p.matches(target.name));
        let cluster = match (server, name) {
            (None, None) => false,
            (Some(s), None) => s,
            (None, Some(n)) => n,
            (Some(s), Some(n)) => s || n,
        };
        let namespace = self.namespace.matches(target.namespace);
        match (cluster && namespace, self.is_deny()) {
            (true, true) => Verdict::Deny,
            (true, false) => Verdict::Allow,
            (false, _) => Verdict::NoMatch,
        }
    }
}

fn any_kind(rules: &[KindRule], group: &str, kind: &str) -> bool {
    rules
        .iter()
        .any(|r| r.group.matches(group) && r.kind.matches(kind))
}

/// Argo CD compares repositories lowercased, without `.git` or a trailing `/`, scp-style as ssh://.
fn normalise_repo(url: &str) -> String {
    let mut url = url.trim().to_ascii_lowercase();
    if !url.contains("://")
        && let Some((user_host, path)) = url.split_once(':')
        && user_host.contains('@')
        && !user_host.contains('/')
    {
        url = format!("ssh://{user_host}/{path}");
    }
    let url = url.trim_end_matches('/');
    url.strip_suffix(".git").unwrap_or(url).to_owned()
}

fn normalise_repo_pattern(pattern: &str) -> String {
    match pattern.strip_prefix('!') {
        Some(rest) => format!("!{}", normalise_repo(rest)),
        None if pattern.trim() == "*" => "*".to_owned(),
        None => normalise_repo(pattern),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(server: &str, namespace: &str) -> ProjectDestination {
        ProjectDestination {
            server: Some(server.into()),
            name: None,
            namespace: namespace.into(),
        }
    }

    fn gk(group: &str, kind: &str) -> GroupKind {
        GroupKind {
            group: group.into(),
            kind: kind.into(),
        }
    }

    const IN_CLUSTER: &str = "https://kubernetes.default.svc";

    fn target(namespace: &str) -> Target<'_> {
        Target {
            server: IN_CLUSTER,
            name: "in-cluster",
            namespace,
        }
    }

    fn team_a() -> ProjectRules {
        ProjectRules::new(
            "team-a",
            &AppProjectSpec {
                source_repos: vec!["https://git.example.com/team-a/*".into()],
                destinations: vec![dest(IN_CLUSTER, "team-a-*"), dest("*", "!team-a-secret")],
                namespace_resource_blacklist: vec![gk("", "ResourceQuota")],
                ..Default::default()
            },
        )
    }

    #[test]
    fn repositories_match_argo_cd_normalisation() {
        let p = team_a();
        assert!(
            p.check_repo("https://git.example.com/team-a/app.git")
                .is_ok()
        );
        assert!(p.check_repo("HTTPS://git.example.com/team-a/app/").is_ok());
        let err = p
            .check_repo("https://git.example.com/team-b/app")
            .expect_err("other team");
        assert_eq!(
            err.to_string(),
            "application repo https://git.example.com/team-b/app is not permitted in project 'team-a'"
        );
        let ssh = ProjectRules::new(
            "p",
            &AppProjectSpec {
                source_repos: vec!["ssh://git@github.com/org/*".into()],
                ..Default::default()
            },
        );
        assert!(ssh.check_repo("git@github.com:org/repo.git").is_ok());
    }

    #[test]
    fn destinations_need_an_allow_and_no_deny() {
        let p = team_a();
        assert!(p.check_destination(target("team-a-web")).is_ok());
        assert!(
            p.check_destination(target("team-a-secret")).is_err(),
            "the deny entry wins over the allow glob"
        );
        let err = p
            .check_destination(target("kube-system"))
            .expect_err("not allowed");
        assert!(
            err.to_string()
                .contains("do not match any of the allowed destinations in project 'team-a'"),
            "{err}"
        );
        let by_name = ProjectRules::new(
            "p",
            &AppProjectSpec {
                destinations: vec![ProjectDestination {
                    server: None,
                    name: Some("in-*".into()),
                    namespace: "*".into(),
                }],
                ..Default::default()
            },
        );
        assert!(by_name.check_destination(target("anything")).is_ok());
        let other_cluster = Target {
            server: "https://prod.example.com",
            name: "prod",
            namespace: "x",
        };
        assert!(by_name.check_destination(other_cluster).is_err());
    }

    #[test]
    fn kinds_follow_the_whitelists_and_blacklists() {
        let p = team_a();
        let t = target("team-a-web");
        assert!(
            p.check_object("apps", "Deployment", "team-a-web", t, "d")
                .is_ok()
        );
        let err = p
            .check_object("", "Namespace", "", t, "Namespace/x")
            .expect_err("cluster-scoped kinds need the cluster whitelist");
        assert_eq!(
            err.to_string(),
            "resource :Namespace is not permitted in project team-a (Namespace/x)"
        );
        assert!(
            p.check_object("", "ResourceQuota", "team-a-web", t, "q")
                .is_err(),
            "blacklisted namespaced kind"
        );
        let err = p
            .check_object("", "ConfigMap", "kube-system", t, "ConfigMap kube-system/c")
            .expect_err("an object's own namespace must be an allowed destination");
        assert!(err.to_string().contains("kube-system"), "{err}");
        let default = crate::store::project::AppProject::default_project("capstan");
        let open = ProjectRules::new("default", &default.spec);
        assert!(
            open.check_object("rbac.authorization.k8s.io", "ClusterRole", "", t, "r")
                .is_ok()
        );
        assert!(open.check_repo("file:///tmp/demo").is_ok());
        assert!(open.check_destination(target("anything")).is_ok());
    }

    #[test]
    fn source_namespaces_are_globs() {
        let p = ProjectRules::new(
            "p",
            &AppProjectSpec {
                source_namespaces: vec!["team-*".into(), "!team-admin".into()],
                ..Default::default()
            },
        );
        assert!(p.allows_app_namespace("team-a"));
        assert!(!p.allows_app_namespace("team-admin"));
        assert!(!p.allows_app_namespace("other"));
    }
}
