//! Which configured credentials serve a repository: the entry of its kind naming its API, else
//! the entry of its kind naming none. A token configured for one API never goes to another.

use std::path::PathBuf;

use reqwest::Url;

use super::ForgeError;
use super::rate::TokenBucket;
use super::settings::HostSettings;
use crate::event::{EventSource, ForgeRepo};
use crate::secret::{ExposeSecret, SecretString};

/// One `[forge.hosts.<name>]` entry, checked.
#[derive(Debug)]
pub struct Host {
    /// The entry's name, for logs and errors.
    pub name: String,
    pub kind: EventSource,
    /// Normalised (see [`normalise`]); `None` serves any API of its kind no entry names.
    pub api_url: Option<String>,
    token: Option<SecretString>,
    token_file: Option<PathBuf>,
    pub username: Option<String>,
    /// GitHub App credentials, which mint tokens in place of a configured one.
    pub app: Option<super::github_app::GithubApp>,
    /// Paces this entry's calls.
    pub bucket: TokenBucket,
}

impl Host {
    /// Checks one entry: a known kind, a parseable `api_url`, a token or a readable token file.
    pub fn from_settings(
        name: &str,
        settings: &HostSettings,
        rate: f64,
    ) -> Result<Host, ForgeError> {
        let config = |problem: String| ForgeError::Config(format!("forge.hosts.{name}: {problem}"));
        let kind = match settings.kind.as_str() {
            "gitea" | "forgejo" => EventSource::Gitea,
            "gogs" => {
                return Err(config(
                    "Gogs has no commit status API; Capstan cannot report to it".into(),
                ));
            }
            other => match EventSource::from_name(other) {
                kind if supported(&kind) => kind,
                _ => {
                    return Err(config(format!(
                        "kind {other:?} is not one of github, gitlab, bitbucket-cloud, \
                         bitbucket-server, gitea, azure-devops"
                    )));
                }
            },
        };
        let api_url = match settings.api_url.as_deref() {
            Some(url) => Some(
                normalise(url).ok_or_else(|| config(format!("api_url {url:?} is not a URL")))?,
            ),
            None => None,
        };
        let app = match (
            &settings.app_id,
            settings.installation_id,
            &settings.private_key_file,
        ) {
            (None, None, None) => None,
            (Some(id), Some(installation), Some(key)) if kind == EventSource::Github => {
                Some(super::github_app::GithubApp::new(id, installation, key).map_err(config)?)
            }
            (Some(_), Some(_), Some(_)) => {
                return Err(config("app_id is for kind = \"github\" only".into()));
            }
            _ => {
                return Err(config(
                    "a GitHub App needs app_id, installation_id and private_key_file".into(),
                ));
            }
        };
        let host = Host {
            name: name.to_owned(),
            kind,
            api_url,
            token: settings.token.clone(),
            token_file: settings.token_file.clone(),
            username: settings.username.clone(),
            app,
            bucket: TokenBucket::new(rate),
        };
        if host.app.is_none() {
            host.token().map_err(|e| config(e.to_string()))?;
        }
        Ok(host)
    }

    /// The token: `token` when set, else the file's current content.
    pub fn token(&self) -> Result<SecretString, ForgeError> {
        let token = self
            .token
            .as_ref()
            .filter(|t| !t.expose_secret().is_empty());
        match crate::secret::resolve(token, self.token_file.as_deref(), None) {
            Ok(Some(token)) => Ok(token),
            Ok(None) => Err(ForgeError::NotConfigured(format!(
                "forge.hosts.{} has neither token nor token_file",
                self.name
            ))),
            Err(e) => Err(ForgeError::Unavailable(format!(
                "forge.hosts.{}: {e}",
                self.name
            ))),
        }
    }
}

/// Whether Capstan can talk to this kind of host's API.
pub fn supported(kind: &EventSource) -> bool {
    matches!(
        kind,
        EventSource::Github
            | EventSource::Gitlab
            | EventSource::BitbucketCloud
            | EventSource::BitbucketServer
            | EventSource::Gitea
            | EventSource::AzureDevops
    )
}

/// An API URL as entries and repositories are compared: scheme and host lower-case, default
/// port dropped, no trailing slash, no query or fragment. `None` when it is not an http(s) URL.
pub fn normalise(url: &str) -> Option<String> {
    let parsed = Url::parse(url.trim()).ok()?;
    if !matches!(parsed.scheme(), "http" | "https")
        || parsed.host_str().is_none()
        || !parsed.username().is_empty()
        || parsed.password().is_some()
    {
        return None;
    }
    let mut parsed = parsed;
    parsed.set_query(None);
    parsed.set_fragment(None);
    Some(parsed.as_str().trim_end_matches('/').to_owned())
}

/// The entry serving `repo`: its kind's entry naming its API, else its kind's entry naming none.
pub fn pick<'a>(hosts: &'a [Host], repo: &ForgeRepo) -> Option<&'a Host> {
    let wanted = normalise(&repo.api_url)?;
    let of_kind = || hosts.iter().filter(|h| h.kind == repo.kind);
    of_kind()
        .find(|h| h.api_url.as_deref() == Some(wanted.as_str()))
        .or_else(|| of_kind().find(|h| h.api_url.is_none()))
}

/// Refuses two entries that would serve the same repositories (which one wins would be a guess).
pub fn check_unambiguous(hosts: &[Host]) -> Result<(), ForgeError> {
    for (i, a) in hosts.iter().enumerate() {
        if let Some(b) = hosts[i + 1..]
            .iter()
            .find(|b| b.kind == a.kind && b.api_url == a.api_url)
        {
            return Err(ForgeError::Config(format!(
                "forge.hosts.{} and forge.hosts.{} are both for {} {}",
                a.name,
                b.name,
                a.kind,
                a.api_url.as_deref().unwrap_or("(any api_url)")
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, kind: &str, api_url: Option<&str>) -> Host {
        Host::from_settings(
            name,
            &HostSettings {
                kind: kind.into(),
                api_url: api_url.map(str::to_owned),
                token: Some(SecretString::from(format!("token-{name}"))),
                token_file: None,
                username: None,
                app_id: None,
                installation_id: None,
                private_key_file: None,
            },
            0.0,
        )
        .expect("valid entry")
    }

    fn repo(kind: EventSource, api_url: &str) -> ForgeRepo {
        ForgeRepo {
            kind,
            api_url: api_url.into(),
            owner: "o".into(),
            name: "r".into(),
        }
    }

    #[test]
    fn urls_compare_without_case_default_port_or_trailing_slash() {
        assert_eq!(
            normalise("HTTPS://GHE.Example.com:443/api/v3/").as_deref(),
            Some("https://ghe.example.com/api/v3")
        );
        assert_eq!(
            normalise("https://api.github.com").as_deref(),
            Some("https://api.github.com")
        );
        assert_eq!(normalise("not a url"), None);
        assert_eq!(normalise("file:///etc/passwd"), None);
        assert_eq!(normalise("https://user:pw@host/x"), None);
    }

    #[test]
    fn the_entry_naming_the_api_wins_and_a_named_entry_serves_nothing_else() {
        let hosts = vec![
            host("ghe", "github", Some("https://ghe.example.com/api/v3/")),
            host(
                "gitlab",
                "gitlab",
                Some("https://gitlab.example.com/api/v4"),
            ),
            host("github", "github", None),
        ];
        let name = |r: &ForgeRepo| pick(&hosts, r).map(|h| h.name.clone());
        assert_eq!(
            name(&repo(EventSource::Github, "https://ghe.example.com/api/v3")).as_deref(),
            Some("ghe")
        );
        assert_eq!(
            name(&repo(EventSource::Github, "https://api.github.com")).as_deref(),
            Some("github"),
            "the entry without api_url serves the rest of its kind"
        );
        assert_eq!(
            name(&repo(
                EventSource::Gitlab,
                "https://other-gitlab.example.com/api/v4"
            )),
            None,
            "a token configured for one GitLab never goes to another"
        );
        assert_eq!(
            name(&repo(EventSource::Gitea, "https://ghe.example.com/api/v3")),
            None
        );
    }

    #[test]
    fn bad_entries_are_refused_with_their_name() {
        let bad = |kind: &str, api_url: Option<&str>, token: Option<&str>| {
            Host::from_settings(
                "x",
                &HostSettings {
                    kind: kind.into(),
                    api_url: api_url.map(str::to_owned),
                    token: token.map(SecretString::from),
                    token_file: None,
                    username: None,
                    app_id: None,
                    installation_id: None,
                    private_key_file: None,
                },
                1.0,
            )
            .expect_err("refused")
            .to_string()
        };
        assert!(bad("gogs", None, Some("t")).contains("Gogs has no commit status API"));
        assert!(bad("svn", None, Some("t")).contains("\"svn\""));
        assert!(bad("github", Some("nope"), Some("t")).contains("api_url"));
        assert!(bad("github", None, None).contains("neither token nor token_file"));
        let twice = [host("a", "gitea", None), host("b", "forgejo", None)];
        assert!(check_unambiguous(&twice).is_err());
    }
}
