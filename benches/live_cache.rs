//! The live state cache over 10,000 labeled ConfigMaps of 1,000 apps in the sandbox: how long the
//! first list takes, `objects_of` for one app, the time from someone's PATCH to the app's
//! notification, and the memory the cache holds the objects in.
//! Run with `cargo bench --bench live_cache`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use capstan::cluster::cache::LiveCache;
use capstan::cluster::resource::set_tracking_id;
use capstan::sandbox::{Sandbox, SandboxOptions};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use serde_json::json;

const OBJECTS: usize = 10_000;
const APPS: usize = 1_000;
const CONCURRENCY: usize = 32;
const LOOKUPS: usize = 20_000;
const PATCHES: usize = 200;

/// The system allocator, counting the bytes live on the heap; RSS alone also shows what the
/// allocator keeps after the list's transient buffers are freed.
struct Counting;

static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: same layout as given to us.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        // SAFETY: forwarded as received.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Resident set size of this process in bytes (from /proc/self/statm), when available.
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn app_of(i: usize) -> String {
    format!("bench/app-{:04}", i % APPS)
}

fn name_of(i: usize) -> String {
    format!("cm-{i:05}")
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    capstan::install_crypto_provider();
    let sb = Sandbox::start(SandboxOptions::default())
        .await
        .expect("sandbox starts");
    let client = sb.client();
    let resource = ApiResource::erase::<ConfigMap>(&());

    // Objects as Capstan applies them: tracking label and annotation, managedFields included.
    let load = Instant::now();
    futures::stream::iter(0..OBJECTS)
        .map(|i| {
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), "default", &resource);
            async move {
                let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": name_of(i), "namespace": "default"},
                    "data": {"value": "1", "payload": "x".repeat(200)}});
                set_tracking_id(&mut obj, &app_of(i));
                let obj: DynamicObject = serde_json::from_value(obj).expect("object");
                api.patch(
                    &name_of(i),
                    &PatchParams::apply("capstan").force(),
                    &Patch::Apply(&obj),
                )
                .await
                .expect("apply");
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<()>>()
        .await;
    println!(
        "loaded {OBJECTS} ConfigMaps of {APPS} apps in {:.1} s",
        load.elapsed().as_secs_f64()
    );

    let rss_before = rss_bytes();
    let heap_before = LIVE.load(Ordering::Relaxed);
    let (cache, mut rx) = LiveCache::new(client.clone());
    let start = Instant::now();
    cache.ensure(&resource).await.expect("ensure");
    let ensure_ms = start.elapsed().as_secs_f64() * 1e3;
    let rss_after = rss_bytes();
    // Let the watch's buffers settle before counting what stays.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let heap_delta = LIVE.load(Ordering::Relaxed) - heap_before;
    let stats = cache.stats();
    assert_eq!(stats.objects, OBJECTS, "every object is cached");
    println!("ensure (first list of {OBJECTS}): {ensure_ms:.0} ms");
    let json_bytes: usize = (0..APPS)
        .flat_map(|a| cache.objects_of(&app_of(a)))
        .map(|o| serde_json::to_vec(&*o).map(|v| v.len()).unwrap_or(0))
        .sum();
    match (rss_before, rss_after) {
        (Some(b), Some(a)) => {
            let delta = a.saturating_sub(b);
            println!(
                "RSS delta for {OBJECTS} objects: {:.1} MiB ({} bytes/object; their JSON is {} bytes/object)",
                delta as f64 / (1024.0 * 1024.0),
                delta / OBJECTS as u64,
                json_bytes / OBJECTS
            );
        }
        _ => println!("RSS: /proc/self/statm not available"),
    }
    println!(
        "live heap delta for {OBJECTS} objects: {:.1} MiB ({} bytes/object)",
        heap_delta as f64 / (1024.0 * 1024.0),
        heap_delta / OBJECTS as i64
    );

    let mut lookups = Vec::with_capacity(LOOKUPS);
    let mut found = 0;
    for i in 0..LOOKUPS {
        let app = app_of(i);
        let t = Instant::now();
        let objects = cache.objects_of(&app);
        lookups.push(t.elapsed().as_secs_f64() * 1e6);
        found += objects.len();
    }
    assert_eq!(found, LOOKUPS * OBJECTS / APPS, "each app has its objects");
    let lookups = sorted(lookups);
    println!(
        "objects_of (10 objects of one app): median {:.2} µs, p90 {:.2} µs",
        percentile(&lookups, 0.5),
        percentile(&lookups, 0.9)
    );

    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut latencies = Vec::with_capacity(PATCHES);
    for i in 0..PATCHES {
        let n = i * (OBJECTS / PATCHES);
        let t = Instant::now();
        api.patch(
            &name_of(n),
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"value": format!("edit-{i}")}})),
        )
        .await
        .expect("patch");
        let want = app_of(n);
        loop {
            let got = tokio::time::timeout(Duration::from_secs(30), rx.recv())
                .await
                .expect("a notification within 30 s")
                .expect("channel open");
            if got == want {
                break;
            }
        }
        latencies.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let latencies = sorted(latencies);
    println!(
        "PATCH to notification: median {:.2} ms, p90 {:.2} ms",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.9)
    );
    let stats = cache.stats();
    println!(
        "stats: kinds {} objects {} events {} notified {} suppressed {}",
        stats.kinds, stats.objects, stats.events, stats.notified, stats.suppressed
    );
    drop(cache);
    sb.shutdown().await;
}
