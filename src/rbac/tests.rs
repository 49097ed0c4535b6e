//! The policy language against the examples of Argo CD's RBAC documentation.

use super::*;

async fn rbac(csv: &str, default_role: &str) -> Rbac {
    Rbac::new(csv, default_role, &[])
        .await
        .expect("valid policy")
}

fn who(user: &str, groups: &[&str]) -> Subject {
    Subject {
        user: user.to_string(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
    }
}

/// (subject, resource, action, object, expected)
type Case<'a> = (Subject, &'a str, &'a str, &'a str, bool);

fn check_all(rbac: &Rbac, cases: &[Case<'_>]) {
    for (subject, resource, action, object, expected) in cases {
        assert_eq!(
            rbac.allows(subject, resource, action, object),
            *expected,
            "{subject:?} {resource} {action} {object}"
        );
    }
}

#[tokio::test]
async fn an_org_admin_role_granted_to_a_github_team() {
    let rbac = rbac(
        "p, role:org-admin, applications, *, */*, allow
         p, role:org-admin, clusters, get, *, allow
         p, role:org-admin, repositories, get, *, allow
         p, role:org-admin, repositories, create, *, allow
         p, role:org-admin, repositories, update, *, allow
         p, role:org-admin, repositories, delete, *, allow
         g, your-github-org:your-team, role:org-admin",
        "role:readonly",
    )
    .await;
    let team = who("alice", &["your-github-org:your-team"]);
    let other = who("bob", &["your-github-org:other-team"]);
    check_all(
        &rbac,
        &[
            (
                team.clone(),
                "applications",
                "sync",
                "default/guestbook",
                true,
            ),
            (team.clone(), "applications", "delete", "team-a/api", true),
            (
                team.clone(),
                "repositories",
                "create",
                "https://git.example/repo",
                true,
            ),
            (team.clone(), "clusters", "delete", "https://prod", false),
            // policy.default: everyone signed in reads.
            (
                other.clone(),
                "applications",
                "get",
                "default/guestbook",
                true,
            ),
            (
                other.clone(),
                "applications",
                "sync",
                "default/guestbook",
                false,
            ),
            (other, "projects", "create", "new", false),
        ],
    );
}

#[tokio::test]
async fn project_scoped_roles_and_an_explicit_deny() {
    let rbac = rbac(
        "p, role:staging-db-admin, applications, create, staging-db-project/*, allow
         p, role:staging-db-admin, applications, delete, staging-db-project/*, allow
         p, role:staging-db-admin, applications, get, staging-db-project/*, allow
         p, role:staging-db-admin, applications, override, staging-db-project/*, allow
         p, role:staging-db-admin, applications, sync, staging-db-project/*, allow
         p, role:staging-db-admin, projects, get, staging-db-project, allow
         p, role:staging-db-admin, applications, delete, staging-db-project/critical, deny
         g, db-admins, role:staging-db-admin",
        "",
    )
    .await;
    let admin = who("carol", &["db-admins"]);
    check_all(
        &rbac,
        &[
            (
                admin.clone(),
                "applications",
                "sync",
                "staging-db-project/db",
                true,
            ),
            (
                admin.clone(),
                "applications",
                "delete",
                "staging-db-project/db",
                true,
            ),
            // Deny wins over the allow above for the same subject.
            (
                admin.clone(),
                "applications",
                "delete",
                "staging-db-project/critical",
                false,
            ),
            (
                admin.clone(),
                "applications",
                "sync",
                "prod-db-project/db",
                false,
            ),
            (admin.clone(), "projects", "get", "staging-db-project", true),
            (admin.clone(), "projects", "get", "other", false),
            // No default role: a person without a group reads nothing.
            (
                who("dave", &[]),
                "applications",
                "get",
                "staging-db-project/db",
                false,
            ),
        ],
    );
}

#[tokio::test]
async fn local_users_actions_and_fine_grained_deletes() {
    let rbac = rbac(
        "p, my-local-user, applications, sync, my-project/*, allow
         p, example-user, applications, action/apps/Deployment/restart, default/*, allow
         p, example-user, applications, delete/*/Pod/*/*, default/prod-app, allow",
        "",
    )
    .await;
    check_all(
        &rbac,
        &[
            (
                who("my-local-user", &[]),
                "applications",
                "sync",
                "my-project/web",
                true,
            ),
            (
                who("my-local-user", &[]),
                "applications",
                "sync",
                "other/web",
                false,
            ),
            (
                who("my-local-user", &[]),
                "applications",
                "get",
                "my-project/web",
                false,
            ),
            (
                who("example-user", &[]),
                "applications",
                "action/apps/Deployment/restart",
                "default/web",
                true,
            ),
            (
                who("example-user", &[]),
                "applications",
                "action/apps/Deployment/scale",
                "default/web",
                false,
            ),
            (
                who("example-user", &[]),
                "applications",
                "delete/apps/Pod/default/web-1",
                "default/prod-app",
                true,
            ),
            (
                who("example-user", &[]),
                "applications",
                "delete",
                "default/prod-app",
                false,
            ),
        ],
    );
}

#[tokio::test]
async fn apps_in_other_namespaces_are_project_namespace_app() {
    let rbac = rbac(
        "p, role:team, applications, *, team-a/team-a-apps/*, allow
         g, team-a, role:team",
        "",
    )
    .await;
    let member = who("erin", &["team-a"]);
    check_all(
        &rbac,
        &[
            (
                member.clone(),
                "applications",
                "sync",
                "team-a/team-a-apps/web",
                true,
            ),
            (
                member.clone(),
                "applications",
                "sync",
                "team-a/other-ns/web",
                false,
            ),
            (member, "applications", "sync", "team-a/web", false),
        ],
    );
}

#[tokio::test]
async fn the_builtin_roles_and_the_admin_account() {
    let rbac = rbac("g, ops, role:admin", "").await;
    check_all(
        &rbac,
        &[
            (
                who("admin", &[]),
                "clusters",
                "delete",
                "https://prod",
                true,
            ),
            (who("admin", &[]), "applications", "sync", "any/app", true),
            (who("frank", &["ops"]), "projects", "create", "new", true),
            // role:admin inherits role:readonly's reads.
            (who("frank", &["ops"]), "logs", "get", "default/web", true),
            (
                who("frank", &[]),
                "applications",
                "get",
                "default/web",
                false,
            ),
        ],
    );
    let readonly = super::Rbac::new("", "role:readonly", &[])
        .await
        .expect("valid");
    assert!(readonly.allows(&who("guest", &[]), "clusters", "get", "https://prod"));
    assert!(!readonly.allows(&who("guest", &[]), "clusters", "update", "https://prod"));
    let denied = readonly
        .check(&who("guest", &[]), "applications", "sync", "default/web")
        .expect_err("read only");
    assert_eq!(
        denied.to_string(),
        "permission denied: applications, sync, default/web, sub: guest"
    );
}

#[tokio::test]
async fn project_roles_reach_only_their_project() {
    let roles = project_roles::parse(
        "team-a",
        &serde_json::json!([{
            "name": "deployer",
            "policies": ["p, proj:team-a:deployer, applications, sync, team-a/*, allow"],
            "groups": ["my-org:team-a-deployers"]
        }]),
    )
    .expect("roles");
    let rbac = Rbac::new("", "", &[("team-a".to_string(), roles)])
        .await
        .expect("valid");
    let deployer = who("gina", &["my-org:team-a-deployers"]);
    check_all(
        &rbac,
        &[
            (deployer.clone(), "applications", "sync", "team-a/web", true),
            (
                deployer.clone(),
                "applications",
                "sync",
                "team-b/web",
                false,
            ),
            (
                deployer.clone(),
                "applications",
                "delete",
                "team-a/web",
                false,
            ),
            // The role's own subject, as a project token presents it.
            (
                who("proj:team-a:deployer", &[]),
                "applications",
                "sync",
                "team-a/api",
                true,
            ),
        ],
    );
}

#[tokio::test]
async fn a_bad_line_refuses_the_whole_policy() {
    let err = Rbac::new(
        "p, role:x, applications, get, */*, allow\np, role:x, aplications, get, */*, allow",
        "",
        &[],
    )
    .await
    .err()
    .expect("refused");
    assert!(
        err.to_string()
            .starts_with("policy.csv line 2: unknown resource"),
        "{err}"
    );
}

#[tokio::test]
async fn repeated_lines_are_loaded_once_not_dropped() {
    // casbin refuses a whole batch holding a rule it has: the repeat of a built-in line must
    // not cost the lines around it.
    let rbac = rbac(
        "p, role:readonly, applications, get, */*, allow
         p, role:dev, applications, sync, dev/*, allow
         p, role:dev, applications, sync, dev/*, allow
         g, devs, role:dev",
        "",
    )
    .await;
    assert!(rbac.allows(&who("h", &["devs"]), "applications", "sync", "dev/web"));
}
