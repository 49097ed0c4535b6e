//! Repository URLs as text: credential-free display, through `RepoUrl`.

use crate::domain::RepoUrl;

/// The URL without userinfo, safe for messages and logs.
///
/// URLs gix cannot parse are stripped of anything between `://` and the last `@` of the
/// authority, so even a malformed URL never shows its password.
pub fn redact_url(url: &str) -> String {
    match RepoUrl::parse_prefix(url) {
        Ok(parsed) => parsed.redacted(),
        Err(_) => strip_userinfo(url.trim()),
    }
}

/// Removes anything between `://` and the last `@` of the authority; the fallback for URLs
/// gix cannot parse.
fn strip_userinfo(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => format!(
            "{}{}{}",
            &url[..scheme_end + 3],
            &authority[at + 1..],
            &rest[authority_end..]
        ),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_from_urls() {
        assert_eq!(
            redact_url("https://bob:s3cret@example.com/org/repo.git"),
            "https://example.com/org/repo.git"
        );
        assert_eq!(
            redact_url("https://tok@en@example.com:8443/r?x=@"),
            "https://example.com:8443/r?x=@"
        );
        assert_eq!(redact_url("git@github.com:org/repo"), "github.com:org/repo");
        assert_eq!(redact_url("/srv/repo"), "/srv/repo");
    }

    #[test]
    fn unparsable_urls_are_redacted_too() {
        let shown = redact_url("http://u:p4ss@h:notaport/r");
        assert!(!shown.contains("p4ss"), "{shown}");
        assert!(shown.contains("h:notaport/r"), "{shown}");
    }
}
