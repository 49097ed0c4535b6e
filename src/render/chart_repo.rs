//! Charts from a Helm chart repository (a server publishing `index.yaml`): the version is
//! resolved from the index (exact, a semver range, or the latest), the archive downloaded,
//! its digest checked, unpacked safely and cached by repository, chart, version and
//! credentials, so the second fetch of a version never touches the network.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::RenderError;

/// Largest `index.yaml` accepted (large public repositories publish tens of megabytes).
const MAX_INDEX_BYTES: u64 = 64 * 1024 * 1024;
/// Largest chart archive accepted, compressed.
const MAX_ARCHIVE_BYTES: u64 = 32 * 1024 * 1024;
/// Largest total of unpacked file bytes of one chart.
const MAX_UNPACKED_BYTES: u64 = 256 * 1024 * 1024;
/// Most entries in one chart archive.
const MAX_ENTRIES: usize = 20_000;
/// Marks a complete cache entry; written last.
const COMPLETE: &str = ".capstan-complete";

/// A chart fetched from a Helm repository and unpacked locally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedChart {
    /// The directory holding the unpacked chart directory (a render's checkout root).
    pub dir: PathBuf,
    /// The chart directory inside `dir` (a render's source path), e.g. `nginx`.
    pub chart_path: String,
    /// The version resolved from the index, e.g. `1.2.3`.
    pub version: String,
}

/// Downloads and caches charts from Helm repositories under one directory.
#[derive(Debug, Clone)]
pub struct ChartCache {
    root: PathBuf,
    client: reqwest::Client,
}

/// The parts of a repository's `index.yaml` that are used.
#[derive(Debug, Deserialize)]
struct Index {
    #[serde(default)]
    entries: BTreeMap<String, Vec<IndexEntry>>,
}

/// One chart version in the index.
#[derive(Debug, Clone, Deserialize)]
struct IndexEntry {
    #[serde(default)]
    version: String,
    #[serde(default)]
    urls: Vec<String>,
    #[serde(default)]
    digest: Option<String>,
}

impl ChartCache {
    /// A cache keeping charts under `root` (created on first use); requests time out after
    /// 30 s.
    pub fn new(root: impl Into<PathBuf>) -> ChartCache {
        ChartCache::with_timeout(root, Duration::from_secs(30))
    }

    /// A cache whose every request (connect and body) must finish within `timeout`.
    pub fn with_timeout(root: impl Into<PathBuf>, timeout: Duration) -> ChartCache {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // Redirects could carry credentials elsewhere; a repository serves its own files.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        ChartCache {
            root: root.into(),
            client,
        }
    }

    /// Fetches `chart` at `version` (exact, a range like `^1.2` or `>=1.0 <2`, or `*`/empty
    /// for the latest stable) from the repository at `repo_url`. An exact version already in
    /// the cache is returned without any request; a range reads the index to resolve it.
    pub async fn fetch(
        &self,
        repo_url: &str,
        chart: &str,
        version: &str,
        creds: Option<(&str, &str)>,
    ) -> Result<FetchedChart, RenderError> {
        let repo = repo_url.trim_end_matches('/');
        let fail = |message: String| RenderError::ChartFetch {
            repo: repo.to_string(),
            message,
        };
        if chart.is_empty() || chart.contains(['/', '\\', '\0']) || chart == "." || chart == ".." {
            return Err(fail(format!("invalid chart name {chart:?}")));
        }
        let base = Url::parse(&format!("{repo}/"))
            .map_err(|e| fail(format!("invalid repository URL: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(fail(
                "only http(s) chart repositories are supported".to_string(),
            ));
        }
        let version = version.trim();
        if let Ok(exact) = parse_version(version) {
            let dir = self.entry_dir(repo, chart, &exact.to_string(), creds);
            if let Some(found) = cached(&dir, &exact.to_string()) {
                return Ok(found);
            }
        }
        let index = self.index(&base, creds).await.map_err(fail)?;
        let entries = index
            .entries
            .get(chart)
            .ok_or_else(|| fail(format!("chart {chart:?} is not in the repository's index")))?;
        let entry = resolve(entries, version).map_err(|m| fail(format!("chart {chart:?}: {m}")))?;
        let resolved = parse_version(&entry.version)
            .map(|v| v.to_string())
            .unwrap_or_else(|_| entry.version.clone());
        let dir = self.entry_dir(repo, chart, &resolved, creds);
        if let Some(found) = cached(&dir, &resolved) {
            return Ok(found);
        }
        let url = entry
            .urls
            .first()
            .ok_or_else(|| fail(format!("chart {chart:?} {resolved} has no download URL")))?;
        let url = base.join(url).map_err(|e| {
            fail(format!(
                "chart {chart:?} {resolved}: invalid URL {url:?}: {e}"
            ))
        })?;
        let archive = self
            .get(&url, &base, creds, MAX_ARCHIVE_BYTES)
            .await
            .map_err(fail)?;
        if let Some(expected) = entry.digest.as_deref().filter(|d| !d.is_empty()) {
            let actual = hex::encode(Sha256::digest(&archive));
            if !actual.eq_ignore_ascii_case(expected.trim()) {
                return Err(fail(format!(
                    "chart {chart:?} {resolved}: the archive's sha256 digest {actual} does not \
                     match the index's {expected}"
                )));
            }
        }
        let chart_name = chart.to_string();
        let resolved_version = resolved.clone();
        let root = self.root.clone();
        let target = dir.clone();
        let unpacked = tokio::task::spawn_blocking(move || {
            store(&root, &target, &archive, &chart_name, &resolved_version)
        })
        .await
        .map_err(|e| fail(format!("unpacking stopped: {e}")))??;
        Ok(unpacked)
    }

    /// `<root>/<hash of repository URL and credentials>/<chart>/<version>`.
    fn entry_dir(
        &self,
        repo: &str,
        chart: &str,
        version: &str,
        creds: Option<(&str, &str)>,
    ) -> PathBuf {
        let mut hasher = Sha256::new();
        hasher.update(repo.as_bytes());
        // A cached chart is reused only with the credentials that fetched it, so a wrong
        // password cannot read what another Application downloaded.
        if let Some((user, pass)) = creds {
            hasher.update([0]);
            hasher.update(user.as_bytes());
            hasher.update([0]);
            hasher.update(pass.as_bytes());
        }
        let key = hex::encode(hasher.finalize());
        self.root
            .join(&key[..32])
            .join(chart)
            .join(sanitize(version))
    }

    async fn index(&self, base: &Url, creds: Option<(&str, &str)>) -> Result<Index, String> {
        let url = base
            .join("index.yaml")
            .map_err(|e| format!("invalid index URL: {e}"))?;
        let bytes = self.get(&url, base, creds, MAX_INDEX_BYTES).await?;
        let text = String::from_utf8(bytes).map_err(|_| "index.yaml is not UTF-8".to_string())?;
        let mut options = serde_saphyr::Options::default();
        options.with_snippet = false;
        let mut budget = serde_saphyr::Budget::default();
        budget.max_nodes = 10_000_000;
        budget.max_events = 40_000_000;
        budget.max_depth = 64;
        options.budget = Some(budget);
        serde_saphyr::from_str_with_options(&text, options)
            .map_err(|e| format!("index.yaml is not a valid chart index: {e}"))
    }

    /// GETs `url` (at most `limit` bytes); credentials go only to the repository's origin.
    async fn get(
        &self,
        url: &Url,
        base: &Url,
        creds: Option<(&str, &str)>,
        limit: u64,
    ) -> Result<Vec<u8>, String> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("refusing to download {url}: not http(s)"));
        }
        let mut request = self.client.get(url.clone());
        if let Some((user, pass)) = creds
            && url.origin() == base.origin()
        {
            request = request.basic_auth(user, Some(pass));
        }
        let shown = without_credentials(url);
        let mut response = request
            .send()
            .await
            .map_err(|e| format!("GET {shown}: {}", describe(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(match status.as_u16() {
                401 | 403 => format!(
                    "GET {shown}: {status}: the repository refused the credentials (check the \
                     repository's username and password)"
                ),
                _ => format!("GET {shown}: {status}"),
            });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("GET {shown}: {}", describe(&e)))?
        {
            if body.len() as u64 + chunk.len() as u64 > limit {
                return Err(format!(
                    "GET {shown}: larger than the limit of {limit} bytes"
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// A URL without user information, for messages.
fn without_credentials(url: &Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}

fn describe(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "timed out".to_string()
    } else {
        let mut text = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(inner) = source {
            text.push_str(": ");
            text.push_str(&inner.to_string());
            source = inner.source();
        }
        text
    }
}

/// A version as the file name of its cache directory.
fn sanitize(version: &str) -> String {
    version
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A version as written in an index or a spec (`v1.2.3` is accepted as Helm does).
fn parse_version(text: &str) -> Result<semver::Version, semver::Error> {
    semver::Version::parse(text.strip_prefix('v').unwrap_or(text))
}

/// The entry for `wanted`: the exact version, else the highest matching a range (`*` or
/// empty: the highest stable version).
fn resolve<'a>(entries: &'a [IndexEntry], wanted: &str) -> Result<&'a IndexEntry, String> {
    if let Ok(exact) = parse_version(wanted) {
        return entries
            .iter()
            .find(|e| parse_version(&e.version).is_ok_and(|v| v == exact))
            .ok_or_else(|| format!("version {wanted} is not in the repository's index"));
    }
    let alternatives = range(wanted)?;
    entries
        .iter()
        .filter_map(|e| parse_version(&e.version).ok().map(|v| (v, e)))
        .filter(|(v, _)| alternatives.iter().any(|req| req.matches(v)))
        .max_by(|(a, _), (b, _)| a.cmp(b))
        .map(|(_, e)| e)
        .ok_or_else(|| format!("no version matches {wanted:?}"))
}

/// Helm's constraint syntax (`>=1.0 <2`, `^1.2 || ~2.0`, `*`) as semver requirements.
fn range(wanted: &str) -> Result<Vec<semver::VersionReq>, String> {
    let wanted = if wanted.is_empty() { "*" } else { wanted };
    let mut alternatives = Vec::new();
    for alternative in wanted.split("||") {
        // Comparators are separated by spaces or commas; an operator may stand apart from
        // its version (`>= 1.0`).
        let mut comparators: Vec<String> = Vec::new();
        let mut pending_operator = String::new();
        for token in alternative.split([' ', ',']).filter(|t| !t.is_empty()) {
            if token
                .chars()
                .all(|c| matches!(c, '>' | '<' | '=' | '~' | '^' | '!'))
            {
                pending_operator.push_str(token);
            } else {
                comparators.push(format!("{pending_operator}{token}"));
                pending_operator.clear();
            }
        }
        if !pending_operator.is_empty() {
            return Err(format!("invalid version constraint {wanted:?}"));
        }
        let text = if comparators.is_empty() {
            "*".to_string()
        } else {
            comparators.join(", ")
        };
        let req = semver::VersionReq::parse(&text)
            .map_err(|e| format!("invalid version constraint {wanted:?}: {e}"))?;
        alternatives.push(req);
    }
    Ok(alternatives)
}

/// The cached chart in `dir`, if a complete one is there.
fn cached(dir: &Path, version: &str) -> Option<FetchedChart> {
    let chart_path = std::fs::read_to_string(dir.join(COMPLETE))
        .ok()?
        .trim()
        .to_string();
    dir.join(&chart_path)
        .join("Chart.yaml")
        .is_file()
        .then(|| FetchedChart {
            dir: dir.to_path_buf(),
            chart_path,
            version: version.to_string(),
        })
}

/// Unpacks `archive` into a fresh directory under `root` and moves it to `target` in one
/// rename, so a half-written chart is never seen.
fn store(
    root: &Path,
    target: &Path,
    archive: &[u8],
    chart: &str,
    version: &str,
) -> Result<FetchedChart, RenderError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RenderError::Io { path, source }
    };
    std::fs::create_dir_all(root).map_err(io(root))?;
    let staging = tempfile::Builder::new()
        .prefix(".unpacking-")
        .tempdir_in(root)
        .map_err(io(root))?;
    let chart_path =
        unpack(archive, staging.path()).map_err(|message| RenderError::ChartFetch {
            repo: format!("{chart} {version}"),
            message: format!("unsafe or invalid chart archive: {message}"),
        })?;
    std::fs::write(staging.path().join(COMPLETE), &chart_path).map_err(io(staging.path()))?;
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let staged = staging.keep();
    if let Err(err) = std::fs::rename(&staged, target) {
        let _ = std::fs::remove_dir_all(&staged);
        // Another fetch of the same chart finished first; its copy is as good as ours.
        return cached(target, version).ok_or(RenderError::Io {
            path: target.to_path_buf(),
            source: err,
        });
    }
    Ok(FetchedChart {
        dir: target.to_path_buf(),
        chart_path,
        version: version.to_string(),
    })
}

/// Unpacks a gzipped tar into `into`, refusing absolute or `..` paths, hard links, symlinks
/// pointing out of the archive and anything beyond the size and entry limits; returns the
/// single top-level directory holding `Chart.yaml`.
fn unpack(archive: &[u8], into: &Path) -> Result<String, String> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    let mut total = 0u64;
    let mut top: Option<String> = None;
    let entries = tar.entries().map_err(|e| e.to_string())?;
    for (count, entry) in entries.enumerate() {
        if count >= MAX_ENTRIES {
            return Err(format!("more than {MAX_ENTRIES} entries"));
        }
        let mut entry = entry.map_err(|e| e.to_string())?;
        let raw = entry.path().map_err(|e| e.to_string())?.into_owned();
        let rel = safe_relative(&raw).ok_or_else(|| format!("entry {raw:?} leaves the chart"))?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let first = rel
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .unwrap_or_default();
        match &top {
            None => top = Some(first.clone()),
            Some(known) if *known != first => {
                return Err(format!(
                    "entries in more than one top-level directory ({known}, {first})"
                ));
            }
            Some(_) => {}
        }
        if through_symlink(into, &rel) {
            return Err(format!("entry {raw:?} is written through a symlink"));
        }
        let path = into.join(&rel);
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            std::fs::create_dir_all(&path).map_err(|e| e.to_string())?;
        } else if kind.is_file() {
            let size = entry.header().size().map_err(|e| e.to_string())?;
            total = total.saturating_add(size);
            if total > MAX_UNPACKED_BYTES {
                return Err(format!("unpacks to more than {MAX_UNPACKED_BYTES} bytes"));
            }
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            let mut out = std::fs::File::create(&path).map_err(|e| e.to_string())?;
            // The header's size is trusted only as far as this limit.
            let copied =
                std::io::copy(&mut (&mut entry).take(size), &mut out).map_err(|e| e.to_string())?;
            if copied != size {
                return Err(format!("entry {raw:?} is truncated"));
            }
        } else if kind.is_symlink() {
            let target = entry
                .link_name()
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("symlink {raw:?} without a target"))?
                .into_owned();
            let parent = rel.parent().unwrap_or(Path::new(""));
            if target.is_absolute() || safe_relative(&parent.join(&target)).is_none() {
                return Err(format!("symlink {raw:?} points out of the chart"));
            }
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            std::os::unix::fs::symlink(&target, &path).map_err(|e| e.to_string())?;
        } else if kind.is_hard_link() {
            return Err(format!("hard link {raw:?} is not allowed"));
        }
        // Other entry types (PAX headers, devices, FIFOs) carry no chart content.
    }
    let top = top.ok_or_else(|| "the archive is empty".to_string())?;
    if !into.join(&top).join("Chart.yaml").is_file() {
        return Err(format!("{top}/Chart.yaml is missing"));
    }
    Ok(top)
}

/// Whether a parent directory of `rel` below `into` is a symlink unpacked earlier: writing
/// through it could land anywhere the link points.
fn through_symlink(into: &Path, rel: &Path) -> bool {
    let mut path = into.to_path_buf();
    let parents = rel.parent().map(|p| p.components().count()).unwrap_or(0);
    for component in rel.components().take(parents) {
        path.push(component);
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            return true;
        }
    }
    false
}

/// The lexically normalised form of an archive path, or `None` if it is absolute or climbs
/// above the archive's root.
fn safe_relative(path: &Path) -> Option<PathBuf> {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(versions: &[&str]) -> Vec<IndexEntry> {
        versions
            .iter()
            .map(|v| IndexEntry {
                version: v.to_string(),
                urls: vec![],
                digest: None,
            })
            .collect()
    }

    #[test]
    fn versions_resolve_as_helm_constraints_do() {
        let all = entries(&["1.0.0", "1.2.0", "1.5.3", "2.0.0", "2.1.0-rc.1"]);
        let pick = |wanted: &str| resolve(&all, wanted).map(|e| e.version.clone());
        assert_eq!(pick("1.2.0").unwrap(), "1.2.0");
        assert_eq!(pick("v1.2.0").unwrap(), "1.2.0");
        assert_eq!(pick("^1.2").unwrap(), "1.5.3");
        assert_eq!(pick(">=1.0 <2").unwrap(), "1.5.3");
        assert_eq!(pick(">= 1.0, < 1.5").unwrap(), "1.2.0");
        assert_eq!(pick("~1.2 || ^2").unwrap(), "2.0.0");
        assert_eq!(
            pick("*").unwrap(),
            "2.0.0",
            "pre-releases are not the latest"
        );
        assert_eq!(pick("").unwrap(), "2.0.0");
        assert!(pick("1.3.0").unwrap_err().contains("1.3.0"));
        assert!(pick("^3").is_err());
        assert!(pick(">=").is_err());
    }

    /// A gzipped tar of `(path, symlink target or file content, is_link)` written with raw
    /// names, so hostile paths are kept as given.
    fn archive(entries: &[(&str, &str, bool)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, data, is_link) in entries {
            let mut header = tar::Header::new_old();
            let name = &mut header.as_old_mut().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_mode(0o644);
            if *is_link {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_link_name(data).unwrap();
                header.set_size(0);
                header.set_cksum();
                builder.append(&header, std::io::empty()).unwrap();
            } else {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(data.len() as u64);
                header.set_cksum();
                builder.append(&header, data.as_bytes()).unwrap();
            }
        }
        let tar = builder.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn hostile_archives_are_refused_and_write_nothing_outside() {
        let chart = ("web/Chart.yaml", "name: web\nversion: 1.0.0\n", false);
        let ok = tempfile::tempdir().unwrap();
        assert_eq!(unpack(&archive(&[chart]), ok.path()).unwrap(), "web");
        let cases: [&[(&str, &str, bool)]; 5] = [
            &[chart, ("web/../../evil", "x", false)],
            &[chart, ("/tmp/evil", "x", false)],
            &[chart, ("web/link", "../../outside", true)],
            &[chart, ("web/d", "../web", true), ("web/d/x", "x", false)],
            &[chart, ("other/Chart.yaml", "x", false)],
        ];
        for entries in cases {
            let outer = tempfile::tempdir().unwrap();
            let into = outer.path().join("into");
            std::fs::create_dir(&into).unwrap();
            let err = unpack(&archive(entries), &into).expect_err(&format!("{entries:?}"));
            assert!(!err.is_empty());
            assert!(!outer.path().join("evil").exists(), "{entries:?}");
            assert!(!into.join("web/x").exists(), "{entries:?}");
        }
    }

    #[test]
    fn archive_paths_climbing_out_are_refused() {
        assert_eq!(
            safe_relative(Path::new("a/./b")),
            Some(PathBuf::from("a/b"))
        );
        assert!(safe_relative(Path::new("../x")).is_none());
        assert!(safe_relative(Path::new("a/../../x")).is_none());
        assert!(safe_relative(Path::new("/etc/passwd")).is_none());
    }
}
