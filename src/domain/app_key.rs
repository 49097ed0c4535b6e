//! `AppKey`: which Application, as `namespace/name` on the wire (Jobs, logs, tracking ids).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::names::{NameError, check_label, check_subdomain};

/// The namespace and name of an Application, both valid Kubernetes names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppKey {
    namespace: String,
    name: String,
}

/// A string that does not name an Application.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppKeyError {
    #[error("{0:?} is not <namespace>/<name>")]
    Shape(String),
    #[error(transparent)]
    Name(#[from] NameError),
}

impl AppKey {
    /// The key of `namespace`/`name`, refusing names Kubernetes would refuse.
    pub fn new(namespace: &str, name: &str) -> Result<AppKey, AppKeyError> {
        check_label("namespace", namespace)?;
        check_subdomain("name", name)?;
        Ok(AppKey {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })
    }

    /// The key of an object the API server stored, whose names it has already validated.
    pub(crate) fn of_stored(namespace: &str, name: &str) -> AppKey {
        AppKey {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }

    /// Parses `namespace/name`.
    pub fn parse(key: &str) -> Result<AppKey, AppKeyError> {
        match key.split_once('/') {
            Some((namespace, name)) if !name.contains('/') => AppKey::new(namespace, name),
            _ => Err(AppKeyError::Shape(key.chars().take(300).collect())),
        }
    }

    /// The Application's namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The Application's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for AppKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

impl FromStr for AppKey {
    type Err = AppKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AppKey::parse(s)
    }
}

impl Serialize for AppKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AppKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        AppKey::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_as_namespace_slash_name() {
        let key = AppKey::parse("capstan/guestbook").expect("valid");
        assert_eq!((key.namespace(), key.name()), ("capstan", "guestbook"));
        assert_eq!(key.to_string(), "capstan/guestbook");
        assert_eq!(
            serde_json::to_string(&key).expect("serialises"),
            "\"capstan/guestbook\""
        );
        let back: AppKey = serde_json::from_str("\"capstan/guestbook\"").expect("parses");
        assert_eq!(back, key);
    }

    #[test]
    fn anything_else_is_refused_when_parsed() {
        for bad in [
            "",
            "guestbook",
            "/x",
            "ns/",
            "a/b/c",
            "NS/x",
            "ns/Bad_Name",
            "../etc/x",
        ] {
            assert!(AppKey::parse(bad).is_err(), "{bad:?}");
        }
        assert!(serde_json::from_str::<AppKey>("\"a/b/c\"").is_err());
        assert!(serde_json::from_str::<AppKey>("42").is_err());
    }
}
