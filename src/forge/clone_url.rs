//! Which repository of which host's API a clone URL names, for statuses on commits an
//! Application synced (a PR webhook names it; an Application only has its `repoURL`). The
//! public hosts are known by name; a self-hosted one is known by a `[forge.hosts]` entry whose
//! `api_url` is on the same host.

use reqwest::Url;

use super::hosts::Host;
use crate::domain::RepoUrl;
use crate::event::{EventSource, ForgeRepo};

/// The API repository `clone_url` names, if its host is a public one or a configured one.
pub fn repo_of(clone_url: &str, hosts: &[Host]) -> Option<ForgeRepo> {
    let url = RepoUrl::parse(clone_url).ok()?;
    let host = url.origin()?.host;
    let segments: Vec<&str> = url.path_segments();
    let known = |kind: EventSource, api: &str| Some((kind, api.to_owned()));
    let (kind, api_url) = match host.as_str() {
        "github.com" | "ssh.github.com" => known(EventSource::Github, "https://api.github.com"),
        "gitlab.com" | "altssh.gitlab.com" => {
            known(EventSource::Gitlab, "https://gitlab.com/api/v4")
        }
        "bitbucket.org" | "altssh.bitbucket.org" => {
            known(EventSource::BitbucketCloud, "https://api.bitbucket.org/2.0")
        }
        "dev.azure.com" | "ssh.dev.azure.com" => {
            // https://dev.azure.com/ORG/PROJECT/_git/REPO; ssh: v3/ORG/PROJECT/REPO.
            let org = segments.iter().find(|s| **s != "v3")?;
            known(
                EventSource::AzureDevops,
                &format!("https://dev.azure.com/{org}"),
            )
        }
        _ => hosts.iter().find_map(|h| {
            let api = h.api_url.as_deref()?;
            let api_host = Url::parse(api).ok()?.host_str()?.to_ascii_lowercase();
            (api_host == host).then(|| (h.kind.clone(), api.to_owned()))
        }),
    }?;
    let (owner, name) = match kind {
        EventSource::Github | EventSource::Gitea | EventSource::BitbucketCloud => {
            let [.., owner, name] = segments.as_slice() else {
                return None;
            };
            (owner.to_string(), name.to_string())
        }
        // GitLab's API takes the URL-encoded path in place of the numeric project id; a
        // self-hosted GitLab under a path prefix has that prefix in its api_url too.
        EventSource::Gitlab => {
            let prefix = Url::parse(&api_url)
                .ok()
                .map(|u| {
                    u.path()
                        .trim_end_matches("/api/v4")
                        .split('/')
                        .filter(|s| !s.is_empty())
                        .count()
                })
                .unwrap_or(0);
            let path = segments.get(prefix..)?.join("/");
            (
                String::new(),
                form_urlencoded::byte_serialize(path.as_bytes()).collect(),
            )
        }
        // https://host/scm/PROJECT/repo.git or ssh://git@host:7999/PROJECT/repo.git
        EventSource::BitbucketServer => {
            let [.., project, slug] = segments.as_slice() else {
                return None;
            };
            (project.to_string(), slug.to_string())
        }
        EventSource::AzureDevops => {
            let [.., project, _, repo] = segments.as_slice() else {
                return None;
            };
            (project.to_string(), repo.to_string())
        }
        _ => return None,
    };
    Some(ForgeRepo {
        kind,
        api_url,
        owner,
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(url: &str) -> Option<(String, String, String, String)> {
        repo_of(url, &[]).map(|r| (r.kind.to_string(), r.api_url, r.owner, r.name))
    }

    fn four(a: &str, b: &str, c: &str, d: &str) -> Option<(String, String, String, String)> {
        Some((a.into(), b.into(), c.into(), d.into()))
    }

    #[test]
    fn public_hosts_are_known_in_every_spelling() {
        let gh = four("github", "https://api.github.com", "acme", "shop");
        assert_eq!(repo("https://github.com/acme/shop.git"), gh);
        assert_eq!(repo("git@github.com:acme/shop.git"), gh);
        assert_eq!(
            repo("https://gitlab.com/acme/platform/shop.git"),
            four(
                "gitlab",
                "https://gitlab.com/api/v4",
                "",
                "acme%2Fplatform%2Fshop"
            )
        );
        assert_eq!(
            repo("git@bitbucket.org:acme/shop.git"),
            four(
                "bitbucket-cloud",
                "https://api.bitbucket.org/2.0",
                "acme",
                "shop"
            )
        );
        assert_eq!(
            repo("https://acme@dev.azure.com/acme/Shop/_git/shop"),
            four("azure-devops", "https://dev.azure.com/acme", "Shop", "shop")
        );
        assert_eq!(
            repo("https://git.example.com/acme/shop.git"),
            None,
            "an unknown host"
        );
        assert_eq!(repo("file:///srv/git/shop"), None);
    }
}
