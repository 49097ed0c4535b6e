//! Kubernetes object names (DNS-1123), checked before a name from a request is used anywhere:
//! in a cluster call, a queue message or a log line.

/// Longest DNS-1123 label (namespaces, most label-like names).
pub const MAX_LABEL: usize = 63;
/// Longest DNS-1123 subdomain (names of most objects, Applications included).
pub const MAX_SUBDOMAIN: usize = 253;
/// Longest part of a refused value repeated in an error message.
const SHOWN: usize = 80;

/// Why a name is not a valid Kubernetes name; the message says what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{what} must not be empty")]
    Empty { what: &'static str },
    #[error("{what} {shown:?} is longer than {max} characters")]
    TooLong {
        what: &'static str,
        shown: String,
        max: usize,
    },
    #[error(
        "{what} {shown:?} is not a valid DNS-1123 {kind}: use lowercase letters, digits and '-'{dots}, starting and ending with a letter or digit"
    )]
    Invalid {
        what: &'static str,
        shown: String,
        kind: &'static str,
        dots: &'static str,
    },
}

/// Checks a DNS-1123 label, as namespaces are: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63.
pub fn check_label(what: &'static str, value: &str) -> Result<(), NameError> {
    check_length(what, value, MAX_LABEL)?;
    if is_label(value) {
        Ok(())
    } else {
        Err(NameError::Invalid {
            what,
            shown: shown(value),
            kind: "label",
            dots: "",
        })
    }
}

/// Checks a DNS-1123 subdomain, as object names are: dot-separated labels, at most 253.
pub fn check_subdomain(what: &'static str, value: &str) -> Result<(), NameError> {
    check_length(what, value, MAX_SUBDOMAIN)?;
    if value.split('.').all(is_label) {
        Ok(())
    } else {
        Err(NameError::Invalid {
            what,
            shown: shown(value),
            kind: "subdomain",
            dots: " or '.'",
        })
    }
}

fn check_length(what: &'static str, value: &str, max: usize) -> Result<(), NameError> {
    if value.is_empty() {
        return Err(NameError::Empty { what });
    }
    if value.len() > max {
        return Err(NameError::TooLong {
            what,
            shown: shown(value),
            max,
        });
    }
    Ok(())
}

fn is_label(part: &str) -> bool {
    let bytes = part.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            alnum(first) && alnum(last) && bytes.iter().all(|b| alnum(b) || *b == b'-')
        }
        _ => false,
    }
}

/// The refused value as it may be echoed: cut short, so an error cannot be made arbitrarily large.
fn shown(value: &str) -> String {
    match value.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{}…", &value[..end]),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_names_are_accepted() {
        for ns in ["default", "kube-system", "a", "team-1", &"a".repeat(63)] {
            assert_eq!(check_label("namespace", ns), Ok(()), "{ns}");
        }
        for name in ["guestbook", "my.app-2", "0", &"a".repeat(253)] {
            assert_eq!(check_subdomain("name", name), Ok(()), "{name}");
        }
    }

    #[test]
    fn everything_else_is_refused_with_a_reason() {
        for ns in [
            "", "Default", "a_b", "-a", "a-", "a.b", "..", "%2e%2e", "a b", "ä",
        ] {
            assert!(check_label("namespace", ns).is_err(), "{ns:?}");
        }
        assert!(matches!(
            check_label("namespace", &"a".repeat(64)),
            Err(NameError::TooLong { max: 63, .. })
        ));
        for name in ["", "a..b", ".a", "a.", "a/b", "A", "a.-b", "a_b"] {
            assert!(check_subdomain("name", name).is_err(), "{name:?}");
        }
        assert!(matches!(
            check_subdomain("name", &"a".repeat(254)),
            Err(NameError::TooLong { max: 253, .. })
        ));
        let message = check_label("namespace", "Bad_NS")
            .expect_err("bad")
            .to_string();
        assert!(
            message.contains("namespace \"Bad_NS\"") && message.contains("DNS-1123"),
            "{message}"
        );
    }

    #[test]
    fn a_huge_refused_value_is_not_echoed_whole() {
        let message = check_subdomain("name", &"X".repeat(10_000))
            .expect_err("too long")
            .to_string();
        assert!(message.len() < 300, "{}", message.len());
    }
}
