//! Many apps on one repository: concurrent resolves share ref listings and pack fetches, and
//! never get an answer older than their own call.

mod common;

use capstan::git::{FetchStats, RepoCache};
use common::git::TestRepo;
use common::git_http::GitHttpServer;

const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n";

async fn resolve_many(cache: &RepoCache, url: &str, n: usize) -> Vec<String> {
    let calls = (0..n).map(|_| {
        let cache = cache.clone();
        let url = url.to_string();
        tokio::spawn(async move { cache.resolve(&url, "main", None).await })
    });
    futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|joined| joined.unwrap().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_resolves_cost_one_or_two_listings_and_one_fetch() {
    let repo = TestRepo::new();
    let first = repo.write("apps/web.yaml", DEPLOYMENT).commit("first");
    let server = GitHttpServer::start(repo.root(), None);
    let url = server.url_for(&repo.name());
    let dir = tempfile::tempdir().unwrap();
    let cache = RepoCache::new(dir.path().to_path_buf());

    let heads = resolve_many(&cache, &url, 100).await;
    assert!(heads.iter().all(|h| *h == first), "{heads:?}");
    let stats = cache.stats();
    assert!(
        (1..=2).contains(&stats.listings),
        "100 resolves made {} listings",
        stats.listings
    );
    assert_eq!(stats.pack_fetches, 1, "{stats:?}");
    // The server agrees: what the counters say is what went over the wire.
    assert_eq!(server.listings() as u64, stats.listings);
    assert_eq!(server.pack_fetches(), 1);

    // After a push, a new wave sees the new commit (no answer from before the push) and again
    // shares: at most two more listings and one more pack.
    let second = repo.write("apps/db.yaml", DEPLOYMENT).commit("second");
    let heads = resolve_many(&cache, &url, 100).await;
    assert!(heads.iter().all(|h| *h == second), "{heads:?}");
    let after = cache.stats();
    assert!(
        (1..=2).contains(&(after.listings - stats.listings)),
        "{stats:?} -> {after:?}"
    );
    assert_eq!(after.pack_fetches, stats.pack_fetches + 1, "{after:?}");
    assert_eq!(server.pack_fetches(), 2);
}

#[tokio::test]
async fn each_sequential_resolve_lists_afresh_and_an_unmoved_ref_fetches_no_pack() {
    let repo = TestRepo::new();
    let first = repo.write("apps/web.yaml", DEPLOYMENT).commit("first");
    let server = GitHttpServer::start(repo.root(), None);
    let url = server.url_for(&repo.name());
    let dir = tempfile::tempdir().unwrap();
    let cache = RepoCache::new(dir.path().to_path_buf());

    assert_eq!(cache.resolve(&url, "main", None).await.unwrap(), first);
    assert_eq!(
        cache.stats(),
        FetchStats {
            listings: 1,
            pack_fetches: 1
        }
    );
    for _ in 0..3 {
        assert_eq!(cache.resolve(&url, "main", None).await.unwrap(), first);
    }
    // Every call asked the server (a branch may have moved), none fetched a pack.
    assert_eq!(
        cache.stats(),
        FetchStats {
            listings: 4,
            pack_fetches: 1
        }
    );
    assert_eq!(server.listings(), 4);
    assert_eq!(server.pack_fetches(), 1);

    // Sequential calls never reuse an older listing: a push is seen by the very next call.
    let second = repo.write("apps/db.yaml", DEPLOYMENT).commit("second");
    assert_eq!(cache.resolve(&url, "main", None).await.unwrap(), second);
    assert_eq!(server.pack_fetches(), 2);
}
