//! Fuzzing every webhook provider and body parser on stable Rust: property tests over mutated
//! requests (proptest chooses the mutations), and the crash advisories' request shapes through
//! the HTTP path of a running Capstan. `cargo bench --bench fuzz` runs the same engine for
//! millions of executions.

// The bench reads what this test does not (execution timings).
#[allow(dead_code)]
#[path = "common/fuzz_target.rs"]
mod fuzz_target;
#[path = "common/mutate.rs"]
mod mutate;

use std::collections::BTreeSet;
use std::sync::LazyLock;

use capstan::config::Settings;
use capstan::webhook::PROVIDERS;
use fuzz_target::{Harness, SECRET, Signing, Target, input_of, sample_requests};
use mutate::{Input, Tape};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

static HARNESSES: LazyLock<Vec<Harness>> = LazyLock::new(Harness::all);

/// Executions per test, shared among the targets so that more providers do not make the file
/// slower (about 0.3 ms each in a debug build); never fewer than `MIN_PER_TARGET` per target.
const BUDGET: usize = 12_000;
const MIN_PER_TARGET: usize = 600;

fn per_target() -> usize {
    (BUDGET / HARNESSES.len().max(1)).max(MIN_PER_TARGET)
}

proptest! {
    #![proptest_config(ProptestConfig {
        // Each case runs every target; shrinking reduces a failure to a short tape.
        cases: per_target() as u32,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutated_requests_never_panic_and_every_event_names_a_repository_and_refs(
        tape in prop::collection::vec(any::<u64>(), 0..48)
    ) {
        for h in HARNESSES.iter() {
            let run = h.execute(&mut Tape::new(&tape));
            prop_assert!(
                run.violation.is_none(),
                "{}: {}\nheaders: {:?}\nbody: {}",
                h.target.name(),
                run.violation.unwrap_or_default(),
                run.input.headers.iter().map(|(k, v)| (k, String::from_utf8_lossy(v))).collect::<Vec<_>>(),
                String::from_utf8_lossy(&run.input.body),
            );
        }
    }
}

/// A deterministic stream of tapes (the fuzzer's own choices, not the data under test).
fn tapes(n: usize) -> impl Iterator<Item = Vec<u64>> {
    let mut rng = mutate::SplitMix(0x5eed);
    (0..n).map(move |_| {
        let mut tape = Vec::new();
        rng.fill(&mut tape, 48);
        tape
    })
}

#[test]
fn every_target_is_seeded_with_requests_it_accepts() {
    for h in HARNESSES.iter() {
        assert!(!h.seeds.is_empty(), "{}: no seeds", h.target.name());
        // The unmutated seeds, signed: every one gets through, and some are events, so the
        // fuzzer starts from inputs that reach deep into the parser.
        let mut labels = BTreeSet::new();
        for seed in &h.seeds {
            let mut input = seed.clone();
            h.signing.sign(&mut input);
            labels.insert(outcome_of(h, &input));
        }
        assert!(
            labels.contains("event"),
            "{}: no seed becomes an event: {labels:?}",
            h.target.name()
        );
        if let Target::Provider(_) = h.target {
            assert!(
                labels.iter().all(|l| *l == "event" || *l == "ignored"),
                "{}: a signed seed is refused: {labels:?}",
                h.target.name()
            );
        }
    }
}

/// The label `receive` (or the body parser) gives one unmutated input.
fn outcome_of(h: &Harness, input: &Input) -> &'static str {
    match h.target {
        Target::Provider(_) => {
            let map = fuzz_target::header_map(&input.headers);
            let request = capstan::webhook::Request::new(&map, &input.body);
            let secrets = if matches!(h.signing, Signing::Resign(_)) {
                capstan::webhook::WebhookSecrets::new()
                    .with_secret(
                        h.target.name(),
                        capstan::secret::SecretString::from(SECRET.to_owned()),
                    )
                    .expect("registered")
            } else {
                capstan::webhook::WebhookSecrets::new()
                    .allowing_unsigned(h.target.name())
                    .expect("registered")
            };
            match capstan::webhook::receive(&request, &secrets) {
                Ok(capstan::webhook::Received {
                    outcome: capstan::webhook::Outcome::Event(_),
                    ..
                }) => "event",
                Ok(_) => "ignored",
                Err((_, e)) => e.kind(),
            }
        }
        Target::Body(b) => match (b.parse)(&input.body) {
            Ok(_) => "event",
            Err(_) => "error",
        },
    }
}

#[test]
fn mutations_reach_events_refusals_and_ignored_events_alike() {
    // A fuzzer whose inputs all fail at the first byte tests nothing: every provider must see
    // mutated inputs that still become events, inputs refused as bad payloads, and ignored ones.
    for h in HARNESSES.iter() {
        let mut direct = BTreeSet::new();
        let mut received = BTreeSet::new();
        for tape in tapes(per_target()) {
            let run = h.execute(&mut Tape::new(&tape));
            direct.insert(run.direct);
            received.insert(run.received);
        }
        let name = h.target.name();
        match h.target {
            Target::Provider(_) => {
                for want in ["event", "ignored", "bad_payload"] {
                    assert!(
                        direct.contains(want),
                        "{name}: parse never gave {want}: {direct:?}"
                    );
                    assert!(
                        received.contains(want),
                        "{name}: receive never gave {want}: {received:?}"
                    );
                }
                // Mangled credentials reach the refusal before parsing too.
                if matches!(h.signing, Signing::Resign(_)) {
                    assert!(
                        received.contains("unauthorized"),
                        "{name}: no credential mutation: {received:?}"
                    );
                }
            }
            Target::Body(_) => {
                for want in ["event", "error"] {
                    assert!(
                        direct.contains(want),
                        "{name}: never gave {want}: {direct:?}"
                    );
                }
            }
        }
    }
}

/// Parsers with the bugs the fuzzer exists to find: one indexes past the end of short bodies,
/// one accepts a message without naming its repository.
static BUGGY: [fuzz_target::BodyParser; 2] = [
    fuzz_target::BodyParser {
        name: "indexes-blindly",
        parse: |b| {
            let last = b[b.len().saturating_sub(1).max(40)];
            Err(format!("{last}"))
        },
        event_invariants: true,
    },
    fuzz_target::BodyParser {
        name: "forgets-the-repository",
        parse: |b| {
            let mut ev = capstan::event::PushEvent::parse(b).map_err(|e| e.to_string())?;
            ev.repo_urls.clear();
            Ok(ev)
        },
        event_invariants: true,
    },
];

#[test]
fn the_fuzzer_catches_a_panicking_parser_and_an_event_without_a_repository() {
    let harnesses = Harness::build(BUGGY.iter().map(Target::Body).collect());
    for h in &harnesses {
        let found = tapes(500)
            .filter_map(|tape| h.execute(&mut Tape::new(&tape)).violation)
            .next();
        assert!(found.is_some(), "{}: no violation found", h.target.name());
    }
}

// ---- Crash advisories: the request shapes that crashed Argo CD, through HTTP ----

/// Sets `path` (object keys) in `doc`, creating objects where needed.
fn set_path(doc: &mut Value, path: &[&str], value: Value) {
    let mut at = doc;
    for (i, key) in path.iter().enumerate() {
        if !at.is_object() {
            *at = Value::Object(Map::new());
        }
        let Some(map) = at.as_object_mut() else {
            return;
        };
        if i + 1 == path.len() {
            map.insert((*key).to_owned(), value);
            return;
        }
        at = map.entry((*key).to_owned()).or_insert(Value::Null);
    }
}

/// Applies `f` to every node, parents first; `f` returns true when it replaced the node, whose
/// new children are then not visited (a replacement may contain what it replaced).
fn visit(doc: &mut Value, f: &mut dyn FnMut(Option<&str>, &mut Value) -> bool) {
    fn walk(key: Option<&str>, v: &mut Value, f: &mut dyn FnMut(Option<&str>, &mut Value) -> bool) {
        if f(key, v) {
            return;
        }
        match v {
            Value::Object(map) => {
                for (k, child) in map.iter_mut() {
                    walk(Some(k), child, f);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|c| walk(None, c, f)),
            _ => {}
        }
    }
    walk(None, doc, f);
}

/// The advisories' shapes built on one provider's sample body, each named.
fn hostile_bodies(sample: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    // CVE-2025-59531: `repository.links.clone` not a list of objects (also wherever the host
    // already has a `clone` key).
    for clone in [
        json!({"href": "https://x/y.git", "name": "http"}),
        json!("https://x/y.git"),
        Value::Null,
        json!([1, null, "x"]),
        json!([{"href": 5, "name": []}]),
        json!([{"name": "ssh"}]),
    ] {
        let mut doc = sample.clone();
        set_path(&mut doc, &["repository", "links", "clone"], clone.clone());
        visit(&mut doc, &mut |_, v| {
            if let Value::Object(map) = v
                && let Some(c) = map.get_mut("clone")
            {
                *c = clone.clone();
            }
            false
        });
        out.push((format!("clone links = {clone}"), doc));
    }
    // CVE-2025-59537: no repository (absent and null), for every host's name for it.
    for missing in [None, Some(Value::Null)] {
        let mut doc = sample.clone();
        visit(&mut doc, &mut |_, v| {
            if let Value::Object(map) = v {
                for key in ["repository", "project"] {
                    match &missing {
                        None => {
                            map.remove(key);
                        }
                        Some(null) => {
                            if map.contains_key(key) {
                                map.insert(key.to_owned(), null.clone());
                            }
                        }
                    }
                }
            }
            false
        });
        out.push((format!("repository = {missing:?}"), doc));
    }
    // CVE-2025-59538: empty ref update lists, by each host's name and every array the sample has.
    for path in [
        &["resource", "refUpdates"][..],
        &["changes"][..],
        &["push", "changes"][..],
    ] {
        let mut doc = sample.clone();
        set_path(&mut doc, path, json!([]));
        out.push((format!("{} = []", path.join(".")), doc));
    }
    let mut doc = sample.clone();
    visit(&mut doc, &mut |_, v| {
        if let Value::Array(items) = v {
            items.clear();
        }
        false
    });
    out.push(("every array empty".into(), doc));
    // #23024/#23042: empty and absent URLs; a body of only `ref` and `repository`.
    for (label, empty) in [("empty", true), ("absent", false)] {
        let mut doc = sample.clone();
        visit(&mut doc, &mut |_, v| {
            if let Value::Object(map) = v {
                let urls: Vec<String> = map
                    .iter()
                    .filter(|(_, u)| {
                        u.as_str()
                            .is_some_and(|s| s.contains("://") || s.starts_with("git@"))
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in urls {
                    if empty {
                        map.insert(k, json!(""));
                    } else {
                        map.remove(&k);
                    }
                }
            }
            false
        });
        out.push((format!("every URL {label}"), doc));
    }
    out.push((
        "only ref and an empty repository".into(),
        json!({"ref": "refs/heads/main", "repository": {}}),
    ));
    out.push((
        "only ref and an empty web URL".into(),
        json!({"ref": "refs/heads/main", "repository": {"html_url": "", "clone_url": ""}}),
    ));
    // Non-string refs: every ref-looking string as another type.
    for other in [
        json!(5),
        Value::Null,
        json!([]),
        json!({}),
        json!(["refs/heads/main"]),
    ] {
        let mut doc = sample.clone();
        visit(&mut doc, &mut |k, v| {
            let is_ref = v.as_str().is_some_and(|s| s.starts_with("refs/"))
                || matches!(k, Some("ref" | "refId"));
            if is_ref {
                *v = other.clone();
            }
            is_ref
        });
        out.push((format!("refs = {other}"), doc));
    }
    out
}

/// A running Capstan (API role, embedded queue, sandbox cluster) with a secret for every
/// provider, and unsigned requests allowed only for providers whose scheme the fuzzer cannot sign.
async fn start_capstan(dir: &std::path::Path) -> (String, capstan::startup::StopHandle) {
    capstan::install_crypto_provider();
    let mut toml = String::from("[webhook]\nmax_body_bytes = 65536\nallow_unsigned = [");
    let unsigned: Vec<String> = HARNESSES
        .iter()
        .filter(|h| {
            matches!(h.target, Target::Provider(_)) && matches!(h.signing, Signing::Unsigned)
        })
        .map(|h| format!("{:?}", h.target.name()))
        .collect();
    toml.push_str(&unsigned.join(", "));
    toml.push_str("]\n");
    for p in PROVIDERS {
        toml.push_str(&format!(
            "[webhook.providers.{:?}]\nsecret = {SECRET:?}\n",
            p.name()
        ));
    }
    let file = dir.join("capstan.toml");
    std::fs::write(&file, toml).expect("write config");
    let env = [
        ("CAPSTAN__SERVER__LISTEN", "127.0.0.1:0".to_owned()),
        ("CAPSTAN__SERVER__ROLE", "api".to_owned()),
        ("CAPSTAN__SERVER__DATA_DIR", dir.display().to_string()),
        ("CAPSTAN__QUEUE__KIND", "embedded".to_owned()),
        ("CAPSTAN__LOG__LEVEL", "warn".to_owned()),
        // Every shape reuses its sample's delivery id; redelivery is tested in tests/e2e/webhooks.rs.
        ("CAPSTAN__WEBHOOK__DEDUP_WINDOW_SECS", "0".to_owned()),
    ]
    .map(|(k, v)| (k.to_owned(), v));
    let settings = Settings::load_from(Some(&file), env).expect("settings");
    let service = capstan::startup::Service::build(settings)
        .await
        .expect("capstan starts");
    let stop = service.stop_handle();
    let base = format!("http://127.0.0.1:{}", service.port());
    tokio::spawn(service.run_until_stopped());
    (base, stop)
}

async fn post(http: &reqwest::Client, base: &str, input: &Input) -> u16 {
    let mut request = http.post(format!("{base}/api/webhook"));
    for (k, v) in &input.headers {
        request = request.header(k.as_str(), v.as_slice());
    }
    request
        .body(input.body.clone())
        .send()
        .await
        .expect("Capstan answers")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advisory_shapes_never_get_a_5xx_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (base, stop) = start_capstan(dir.path()).await;
    let http = reqwest::Client::new();
    for h in HARNESSES.iter() {
        let Target::Provider(p) = h.target else {
            continue;
        };
        let name = p.name();
        let resigned = matches!(h.signing, Signing::Resign(_));
        for sample in sample_requests(p, None) {
            let Ok(sample_doc) = serde_json::from_slice::<Value>(&sample.body) else {
                panic!("{name}: the sample body is not JSON");
            };
            for (shape, doc) in hostile_bodies(&sample_doc) {
                let mut input = input_of(&sample);
                input.body = doc.to_string().into_bytes();
                // Unauthenticated, as the advisories sent them: refused before parsing.
                let status = post(&http, &base, &input).await;
                assert!(status < 500, "{name} unsigned {shape}: {status}");
                if resigned {
                    assert_eq!(status, 401, "{name} unsigned {shape}");
                }
                // Authenticated: the parser sees the shape and answers 2xx or 4xx, never 5xx.
                h.signing.sign(&mut input);
                let status = post(&http, &base, &input).await;
                assert!(status < 500, "{name} signed {shape}: {status}");
                if resigned {
                    assert_ne!(
                        status, 401,
                        "{name} signed {shape} did not reach the parser"
                    );
                }
            }
        }
        // CVE-2024-40634: a body over the cap is refused while it is read.
        let mut big = input_of(&sample_requests(p, None)[0]);
        big.body = vec![b' '; 65537];
        h.signing.sign(&mut big);
        assert_eq!(post(&http, &base, &big).await, 413, "{name}: over the cap");
    }
    // Still serving: health, and every provider's real push is queued.
    let health = http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status().as_u16(), 200);
    for h in HARNESSES.iter() {
        if let Target::Provider(p) = h.target {
            let mut input = input_of(&sample_requests(p, None)[0]);
            h.signing.sign(&mut input);
            assert_eq!(post(&http, &base, &input).await, 202, "{}", p.name());
        }
    }
    stop.stop().await;
}
