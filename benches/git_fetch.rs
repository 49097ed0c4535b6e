//! Git fetch figures (a bench binary; `cargo bench --bench git_fetch`): a 10,000-file repository
//! of YAML directories with ~200 commits, served over smart HTTP (`git http-backend`) on
//! 127.0.0.1. Compares Capstan's first fetch (resolve + checkout into an empty cache) with
//! `git clone` (and `git clone --depth 1`, the case for shallow fetches), and an incremental
//! fetch of one new commit touching a few files with `git fetch` + `git checkout`. Medians of
//! ROUNDS runs; prints the ratios and the listings and packs Capstan asked for.

#[path = "../tests/common/git_http.rs"]
mod git_http;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use capstan::git::RepoCache;
use git_http::GitHttpServer;

const FILES: usize = 10_000;
const COMMITS: usize = 200;
const DIRS: usize = 100;
const ROUNDS: usize = 3;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run());
}

async fn run() {
    let work = tempfile::tempdir().expect("temp dir");
    let repos = work.path().join("repos");
    let repo = repos.join("big");
    let started = Instant::now();
    build_repository(&repo);
    eprintln!(
        "built {FILES}-file repository with {COMMITS} commits in {:.1} s ({} of objects)",
        started.elapsed().as_secs_f64(),
        size_of_objects(&repo)
    );
    let server = GitHttpServer::start(&repos, None);
    let url = server.url_for("big");

    // First fetch into an empty cache / an empty directory.
    let mut capstan_first = Vec::new();
    let mut git_first = Vec::new();
    let mut git_shallow = Vec::new();
    for round in 0..ROUNDS {
        let cache_dir = work.path().join(format!("cache-{round}"));
        let cache = RepoCache::new(cache_dir);
        let t = Instant::now();
        let head = cache.resolve(&url, "main", None).await.expect("resolve");
        let resolved = t.elapsed();
        let checkout = cache.checkout(&url, &head, None).await.expect("checkout");
        capstan_first.push(t.elapsed());
        assert!(checkout.join("apps/app-000/file-0000.yaml").is_file());
        let stats = cache.stats();
        eprintln!(
            "capstan first fetch round {round}: resolve (listing + pack) {:.1} ms, checkout {:.1} ms, {stats:?}",
            ms(resolved),
            ms(t.elapsed() - resolved)
        );

        let dest = work.path().join(format!("clone-{round}"));
        let t = Instant::now();
        git(
            work.path(),
            &["clone", "-q", &url, &dest.display().to_string()],
        );
        git_first.push(t.elapsed());

        let dest = work.path().join(format!("shallow-{round}"));
        let t = Instant::now();
        git(
            work.path(),
            &[
                "clone",
                "-q",
                "--depth",
                "1",
                &url,
                &dest.display().to_string(),
            ],
        );
        git_shallow.push(t.elapsed());
    }

    // Incremental: one new commit touching a few files, fetched by a warm cache and a warm clone.
    let cache = RepoCache::new(work.path().join("cache-0"));
    let clone = work.path().join("clone-0");
    let mut capstan_next = Vec::new();
    let mut git_next = Vec::new();
    for round in 0..ROUNDS {
        let commit = touch_files(&repo, round);
        let before = cache.stats();
        let t = Instant::now();
        let head = cache.resolve(&url, "main", None).await.expect("resolve");
        let resolved = t.elapsed();
        let checkout = cache.checkout(&url, &head, None).await.expect("checkout");
        capstan_next.push(t.elapsed());
        assert_eq!(head, commit);
        assert!(checkout.join("apps/app-000/file-0000.yaml").is_file());
        let after = cache.stats();
        eprintln!(
            "capstan incremental round {round}: resolve {:.1} ms, checkout {:.1} ms, {} listing(s), {} pack(s)",
            ms(resolved),
            ms(capstan_next[round] - resolved),
            after.listings - before.listings,
            after.pack_fetches - before.pack_fetches
        );

        let t = Instant::now();
        git(&clone, &["fetch", "-q", "origin"]);
        git(&clone, &["checkout", "-q", "--detach", "origin/main"]);
        git_next.push(t.elapsed());
        assert_eq!(git(&clone, &["rev-parse", "HEAD"]), commit);
    }

    let row = |name: &str, ours: &[Duration], theirs: &[Duration], what: &str| {
        let (a, b) = (median(ours), median(theirs));
        println!(
            "{name:<12} capstan {:>8.1} ms   {what:<24} {:>8.1} ms   ratio capstan/git {:.2}",
            ms(a),
            ms(b),
            a.as_secs_f64() / b.as_secs_f64()
        );
    };
    println!(
        "git_fetch: {FILES} files, {COMMITS} commits, smart HTTP on 127.0.0.1, medians of {ROUNDS}"
    );
    row("first", &capstan_first, &git_first, "git clone");
    row("first", &capstan_first, &git_shallow, "git clone --depth 1");
    row(
        "incremental",
        &capstan_next,
        &git_next,
        "git fetch + checkout",
    );
    println!(
        "shallow gain for git itself: full clone / depth-1 clone = {:.2}",
        median(&git_first).as_secs_f64() / median(&git_shallow).as_secs_f64()
    );
}

/// The repository: a first commit with half the files, then commits that each add a few
/// files and edit a few older ones, until FILES files and COMMITS commits exist.
fn build_repository(repo: &Path) {
    std::fs::create_dir_all(repo).expect("create repo dir");
    git(repo, &["init", "-q", "-b", "main"]);
    let mut stream = String::new();
    let first = FILES / 2;
    let per_commit = (FILES - first).div_ceil(COMMITS - 1);
    let mut written = 0;
    for commit in 0..COMMITS {
        let adds = if commit == 0 { first } else { per_commit };
        let end = (written + adds).min(FILES);
        stream.push_str(&format!(
            "commit refs/heads/main\nmark :{}\ncommitter Bench <bench@capstan.dev> {} +0000\ndata <<EOF\ncommit {commit}\nEOF\n",
            commit + 1,
            1_700_000_000 + commit * 3600
        ));
        if commit > 0 {
            stream.push_str(&format!("from :{commit}\n"));
        }
        for file in written..end {
            push_file(&mut stream, file, 0);
        }
        if commit > 0 {
            // Edit a handful of existing files, as a release bumping image tags would.
            for k in 0..5 {
                push_file(&mut stream, (commit * 37 + k * 997) % written, commit);
            }
        }
        written = end;
    }
    let mut child = Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(repo)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(Stdio::piped())
        .spawn()
        .expect("run git fast-import");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stream.as_bytes())
        .expect("write fast-import stream");
    assert!(child.wait().expect("fast-import").success());
    git(repo, &["reset", "-q", "--hard", "main"]);
    git(repo, &["repack", "-adq"]);
    git(repo, &["config", "http.receivepack", "false"]);
    git(repo, &["config", "uploadpack.allowAnySHA1InWant", "true"]);
}

fn file_path(file: usize) -> String {
    format!("apps/app-{:03}/file-{file:04}.yaml", file % DIRS)
}

fn file_body(file: usize, version: usize) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{file}\n  labels:\n    app: app-{file}\n    team: team-{}\nspec:\n  replicas: {}\n  selector:\n    matchLabels:\n      app: app-{file}\n  template:\n    metadata:\n      labels:\n        app: app-{file}\n    spec:\n      containers:\n        - name: main\n          image: registry.example.com/app-{file}:1.{version}.0\n          ports:\n            - containerPort: 8080\n          resources:\n            requests:\n              cpu: 100m\n              memory: 128Mi\n",
        file % 17,
        1 + file % 3
    )
}

fn push_file(stream: &mut String, file: usize, version: usize) {
    let body = file_body(file, version);
    stream.push_str(&format!(
        "M 100644 inline {}\ndata {}\n{body}\n",
        file_path(file),
        body.len()
    ));
}

/// A new commit editing three files; returns its id.
fn touch_files(repo: &Path, round: usize) -> String {
    for k in 0..3 {
        let file = round * 101 + k * 13;
        std::fs::write(repo.join(file_path(file)), file_body(file, 1000 + round))
            .expect("edit file");
    }
    git(repo, &["add", "-A"]);
    git(
        repo,
        &[
            "-c",
            "user.name=Bench",
            "-c",
            "user.email=bench@capstan.dev",
            "commit",
            "-q",
            "-m",
            &format!("bump {round}"),
        ],
    );
    git(repo, &["rev-parse", "HEAD"])
}

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("run git");
    assert!(
        output.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

fn size_of_objects(repo: &Path) -> String {
    git(repo, &["count-objects", "-vH"])
        .lines()
        .find(|l| l.starts_with("size-pack"))
        .unwrap_or("size-pack: ?")
        .to_string()
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
