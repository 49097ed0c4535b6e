//! What the fuzzer runs and what must hold, shared by `tests/fuzz.rs` and `benches/fuzz.rs`:
//! every registered webhook provider (through `Provider::parse` directly, as an authenticated
//! sender reaches it, and through `webhook::receive` with a correctly signed body) and every
//! body parser in [`BODY_PARSERS`]. Seeds are each provider's own samples plus any JSON fixture
//! under tests/fixtures/webhooks/.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::{Duration, Instant};

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use capstan::event::{PullRequestAction, PullRequestEvent, PushEvent};
use capstan::secret::SecretString;
use capstan::webhook::{
    self, Outcome, PROVIDERS, Provider, Received, Request, SamplePullRequest, SamplePush,
    Signature, SignedRequest, WebhookError, WebhookSecrets,
};
use serde_json::json;

use super::mutate::{self, Dictionary, Input, Tape};

/// The secret every provider is configured with.
pub const SECRET: &str = "fuzz-secret-3f9a0c71";

/// A parser of a whole message into a PushEvent that is not a webhook provider.
pub struct BodyParser {
    pub name: &'static str,
    pub parse: fn(&[u8]) -> Result<PushEvent, String>,
    /// Whether an accepted message must satisfy the event invariants (see [`check_event`]), or
    /// only never panic.
    pub event_invariants: bool,
}

/// Every non-webhook body parser; covering another one is one line here.
pub const BODY_PARSERS: &[BodyParser] = &[
    // Capstan's own queue message: its validation is the router's business, so only "no panic".
    BodyParser {
        name: "push-event",
        parse: |b| PushEvent::parse(b).map_err(|e| e.to_string()),
        event_invariants: false,
    },
    // The short trigger form other systems publish (and the generic webhook's body).
    BodyParser {
        name: "trigger",
        parse: |b| {
            capstan::event::parse_trigger(b, capstan::event::EventSource::Mq)
                .map_err(|e| e.to_string())
        },
        event_invariants: true,
    },
    BodyParser {
        name: "queue-message",
        parse: |b| PushEvent::from_message(b).map_err(|e| e.to_string()),
        event_invariants: true,
    },
];

/// One thing to fuzz.
#[derive(Clone, Copy)]
pub enum Target {
    Provider(&'static dyn Provider),
    Body(&'static BodyParser),
}

impl Target {
    /// Every registered provider, then every body parser.
    pub fn all() -> Vec<Target> {
        PROVIDERS
            .iter()
            .map(|p| Target::Provider(*p))
            .chain(BODY_PARSERS.iter().map(Target::Body))
            .collect()
    }

    /// The provider's or parser's name.
    pub fn name(&self) -> &'static str {
        match self {
            Target::Provider(p) => p.name(),
            Target::Body(b) => b.name,
        }
    }
}

/// The repository, refs and files the seeds describe, in several push shapes: a branch push
/// with and without a file list, a tag, a created and a deleted ref, an ssh URL with odd names;
/// then a pull request from a fork.
pub fn sample_requests(p: &dyn Provider, secret: Option<&str>) -> Vec<SignedRequest> {
    let files = vec!["apps/a/deploy.yaml".to_owned(), "README.md".to_owned()];
    let odd_files: Vec<String> = (0..40).map(|i| format!("dir {i}/ü😀-{i}.yaml")).collect();
    let base = SamplePush {
        repo: "https://git.example.com/org/repo.git",
        git_ref: "refs/heads/main",
        before: Some("1111111111111111111111111111111111111111"),
        after: Some("2222222222222222222222222222222222222222"),
        files: Some(&files),
        default_branch: "main",
        delivery: "7d8e0c1e-0000-4000-8000-000000000001",
    };
    let pushes = [
        base.clone(),
        SamplePush {
            files: None,
            ..base.clone()
        },
        SamplePush {
            git_ref: "refs/tags/v1.0.0",
            files: None,
            ..base.clone()
        },
        SamplePush {
            before: None,
            ..base.clone()
        },
        SamplePush {
            after: None,
            files: None,
            ..base.clone()
        },
        SamplePush {
            repo: "git@git.example.com:org/repo.git",
            git_ref: "refs/heads/release/2026.1",
            files: Some(&odd_files),
            default_branch: "release/2026.1",
            ..base
        },
    ];
    let pull_request = SamplePullRequest {
        repo_url: "https://git.example.com/org/repo.git",
        api_url: "https://git.example.com/api/v4",
        number: 7,
        action: PullRequestAction::Updated,
        base_ref: "main",
        base_sha: "1111111111111111111111111111111111111111",
        head_sha: "2222222222222222222222222222222222222222",
        head_ref: "feature/x",
        fork_url: Some("git@git.example.com:fork/repo.git"),
        title: "Preview",
        author: "capstan",
    };
    pushes
        .iter()
        .map(|push| p.sample(push, secret))
        .chain([p.sample_pull_request(&pull_request, secret)])
        .collect()
}

/// JSON bodies under tests/fixtures/webhooks/ (any depth); none is fine.
pub fn fixture_bodies() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    collect_fixtures(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/webhooks"),
        &mut out,
    );
    out
}

fn collect_fixtures(dir: &Path, out: &mut Vec<Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_fixtures(&path, out);
        } else if path.extension().is_some_and(|e| e == "json")
            && let Ok(body) = std::fs::read(&path)
        {
            out.push(body);
        }
    }
}

/// A request's headers in the fuzzer's form.
pub fn input_of(request: &SignedRequest) -> Input {
    Input {
        headers: request
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
            .collect(),
        body: request.body.clone(),
    }
}

/// The headers as an actix map; names or values HTTP cannot carry are dropped, as a server would
/// refuse them before any handler runs.
pub fn header_map(headers: &[(String, Vec<u8>)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_bytes(v),
        ) {
            map.append(k, v);
        }
    }
    map
}

/// How a provider's credential is put on a mutated body.
#[derive(Debug, Clone)]
pub enum Signing {
    /// These headers, with the body's HMAC-SHA256 hex written where the sample had it (a token
    /// or Basic credential does not depend on the body and is copied as it is).
    Resign(Vec<(String, Template)>),
    /// The scheme covers more than the body (a timestamp or id): requests go unsigned, with
    /// unsigned requests allowed for the provider.
    Unsigned,
}

/// One credential header's value.
#[derive(Debug, Clone)]
pub enum Template {
    Constant(Vec<u8>),
    BodyMac { prefix: String, suffix: String },
}

fn body_mac_hex(body: &[u8]) -> String {
    let signed = Signature::sign(SECRET.as_bytes(), body);
    signed.trim_start_matches("sha256=").to_owned()
}

impl Signing {
    /// Learns the scheme from the provider's signed and unsigned samples, and keeps it only if
    /// a re-signed sample of another shape is then accepted.
    pub fn learn(p: &dyn Provider, secrets: &WebhookSecrets) -> Signing {
        let signed = sample_requests(p, Some(SECRET));
        let unsigned = sample_requests(p, None);
        let (Some(s), Some(u)) = (signed.first(), unsigned.first()) else {
            return Signing::Unsigned;
        };
        let mac = body_mac_hex(&s.body);
        let headers: Vec<(String, Template)> = s
            .headers
            .iter()
            .filter(|h| !u.headers.contains(h))
            .map(|(k, v)| {
                let template = match v.find(&mac) {
                    Some(at) => Template::BodyMac {
                        prefix: v.get(..at).unwrap_or_default().to_owned(),
                        suffix: v.get(at + mac.len()..).unwrap_or_default().to_owned(),
                    },
                    None => Template::Constant(v.clone().into_bytes()),
                };
                (k.clone(), template)
            })
            .collect();
        let signing = Signing::Resign(headers);
        let works = unsigned.iter().skip(1).all(|other| {
            let mut input = input_of(other);
            signing.sign(&mut input);
            let map = header_map(&input.headers);
            matches!(
                webhook::receive(&Request::new(&map, &input.body), secrets),
                Ok(Received {
                    outcome: Outcome::Event(_) | Outcome::PullRequest(_) | Outcome::Ignored(_),
                    ..
                })
            )
        });
        if works { signing } else { Signing::Unsigned }
    }

    /// Adds the credential headers for `input`'s body.
    pub fn sign(&self, input: &mut Input) {
        if let Signing::Resign(headers) = self {
            for (name, template) in headers {
                let value = match template {
                    Template::Constant(v) => v.clone(),
                    Template::BodyMac { prefix, suffix } => {
                        format!("{prefix}{}{suffix}", body_mac_hex(&input.body)).into_bytes()
                    }
                };
                input.headers.push((name.clone(), value));
            }
        }
    }
}

/// What must hold for every event a parser produces: a repository to match and refs that
/// moved, each named, and a document the router can read back.
pub fn check_event(ev: &PushEvent) -> Result<(), String> {
    if ev.repo_urls.is_empty() {
        return Err("an event without a repository URL".into());
    }
    if ev.repo_urls.iter().any(|u| u.trim().is_empty()) {
        return Err(format!("an empty repository URL in {:?}", ev.repo_urls));
    }
    if ev.refs.is_empty() {
        return Err("an event without refs".into());
    }
    if let Some(r) = ev.refs.iter().find(|r| r.name.trim().is_empty()) {
        return Err(format!("an empty ref name: {r:?}"));
    }
    let text = serde_json::to_vec(ev).map_err(|e| format!("the event does not serialise: {e}"))?;
    match PushEvent::parse(&text) {
        Ok(back) if back == *ev => Ok(()),
        Ok(back) => Err(format!("the event reads back changed: {back:?}")),
        Err(e) => Err(format!("the published event does not parse back: {e}")),
    }
}

/// What every accepted pull request must hold: a base repository, both commits' sides named,
/// and a document that reads back as itself.
pub fn check_pull_request(pr: &PullRequestEvent) -> Result<(), String> {
    if pr.repo_urls.is_empty() || pr.repo_urls.iter().any(|u| u.trim().is_empty()) {
        return Err(format!(
            "a pull request without usable repository URLs: {:?}",
            pr.repo_urls
        ));
    }
    if pr.number == 0 || pr.head_sha.trim().is_empty() || pr.base_ref.trim().is_empty() {
        return Err(format!(
            "a pull request without number, head or base: {pr:?}"
        ));
    }
    let text =
        serde_json::to_vec(pr).map_err(|e| format!("the pull request does not serialise: {e}"))?;
    match serde_json::from_slice::<PullRequestEvent>(&text) {
        Ok(back) if back == *pr => Ok(()),
        Ok(back) => Err(format!("the pull request reads back changed: {back:?}")),
        Err(e) => Err(format!("the pull request does not parse back: {e}")),
    }
}

/// The result of one execution.
#[derive(Debug)]
pub struct Execution {
    pub input: Input,
    /// Outcome label of the direct call (`event`, `ignored`, an error kind).
    pub direct: &'static str,
    /// Outcome label through `webhook::receive` (`-` for body parsers).
    pub received: &'static str,
    /// The broken invariant, if any.
    pub violation: Option<String>,
    /// Time spent in the code under test (the parser and `receive`), not in mutating.
    pub took: Duration,
}

/// A target prepared for fuzzing: its seeds, mutation material and credentials.
pub struct Harness {
    pub target: Target,
    pub seeds: Vec<Input>,
    splice: Vec<Vec<u8>>,
    dict: Dictionary,
    pub signing: Signing,
    secrets: WebhookSecrets,
}

impl Harness {
    /// Prepares every target.
    pub fn all() -> Vec<Harness> {
        Harness::build(Target::all())
    }

    /// Prepares `targets`, each seeded from every provider's samples and the fixtures.
    pub fn build(targets: Vec<Target>) -> Vec<Harness> {
        let fixtures = fixture_bodies();
        let mut provider_seeds: Vec<(&'static str, Vec<Input>)> = Vec::new();
        let mut all_inputs: Vec<Input> = Vec::new();
        for p in PROVIDERS {
            let unsigned: Vec<Input> = sample_requests(*p, None).iter().map(input_of).collect();
            all_inputs.extend(sample_requests(*p, Some(SECRET)).iter().map(input_of));
            all_inputs.extend(unsigned.iter().cloned());
            provider_seeds.push((p.name(), unsigned));
        }
        let mut bodies: Vec<Vec<u8>> = all_inputs.iter().map(|i| i.body.clone()).collect();
        bodies.extend(fixtures.iter().cloned());
        let message_bodies = message_seeds(&all_inputs);
        bodies.extend(message_bodies.iter().cloned());
        let dict = Dictionary::from_seeds(&all_inputs);
        targets
            .into_iter()
            .map(|target| {
                let seeds: Vec<Input> = match target {
                    Target::Provider(p) => provider_seeds
                        .iter()
                        .find(|(n, _)| *n == p.name())
                        .map(|(_, s)| s.clone())
                        .unwrap_or_default(),
                    // A message has no headers; every known body shape is a seed.
                    Target::Body(_) => bodies
                        .iter()
                        .map(|b| Input {
                            headers: Vec::new(),
                            body: b.clone(),
                        })
                        .collect(),
                };
                Harness::new(target, seeds, bodies.clone(), dict.clone())
            })
            .collect()
    }

    fn new(target: Target, seeds: Vec<Input>, splice: Vec<Vec<u8>>, dict: Dictionary) -> Self {
        let (signing, secrets) = match target {
            Target::Provider(p) => {
                let signed = WebhookSecrets::new()
                    .with_secret(p.name(), SecretString::from(SECRET.to_owned()))
                    .expect("a registered provider");
                match Signing::learn(p, &signed) {
                    Signing::Unsigned => (
                        Signing::Unsigned,
                        WebhookSecrets::new()
                            .allowing_unsigned(p.name())
                            .expect("a registered provider"),
                    ),
                    resign => (resign, signed),
                }
            }
            Target::Body(_) => (Signing::Unsigned, WebhookSecrets::new()),
        };
        Harness {
            target,
            seeds,
            splice,
            dict,
            signing,
            secrets,
        }
    }

    /// Mutates a seed as `tape` chooses and runs it; never panics itself.
    pub fn execute(&self, tape: &mut Tape<'_>) -> Execution {
        let (mut input, applied) = mutate::mutate(&self.seeds, &self.splice, &self.dict, tape);
        match self.target {
            Target::Body(parser) => {
                let started = Instant::now();
                let (direct, violation) = run_body_parser(parser, &input.body);
                Execution {
                    input,
                    direct,
                    received: "-",
                    violation,
                    took: started.elapsed(),
                }
            }
            Target::Provider(p) => {
                let started = Instant::now();
                let (direct, mut violation) = run_parse(p, &input);
                let mut took = started.elapsed();
                self.signing.sign(&mut input);
                // Sometimes the credential itself is mangled, to reach `authenticate` with odd values.
                let mut headers_changed = applied.headers;
                if tape.below(8) == 0 {
                    mutate::mutate_headers(&mut input.headers, &self.dict, tape);
                    headers_changed = true;
                }
                let started = Instant::now();
                let (received, v) = run_receive(&input, &self.secrets);
                took += started.elapsed();
                violation = violation.or(v);
                // With the sample's own headers and a correct credential, the body must get past
                // authentication: otherwise the fuzzer would only be testing the refusal.
                if violation.is_none()
                    && !headers_changed
                    && matches!(self.signing, Signing::Resign(_))
                    && received == "unauthorized"
                {
                    violation = Some(format!(
                        "{}: a correctly re-signed request was refused as unauthorized",
                        p.name()
                    ));
                }
                Execution {
                    input,
                    direct,
                    received,
                    violation,
                    took,
                }
            }
        }
    }
}

/// PushEvents and short trigger messages to seed the body parsers with: each provider's sample
/// parsed, and the `{repo, ref, revision?, paths?}` form in its variants.
fn message_seeds(samples: &[Input]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for s in samples {
        let map = header_map(&s.headers);
        let request = Request::new(&map, &s.body);
        if let Some(p) = webhook::detect(&map)
            && let Ok(Outcome::Event(ev)) = p.parse(&request)
            && let Ok(text) = serde_json::to_vec(&ev)
        {
            out.push(text);
        }
    }
    let repo = "https://git.example.com/org/repo.git";
    for doc in [
        json!({"repo": repo, "ref": "refs/heads/main"}),
        json!({"repo": repo, "ref": "main", "revision": "2".repeat(40)}),
        json!({"repo": repo, "ref": "refs/tags/v1", "revision": "a".repeat(64), "paths": ["apps/a/x.yaml", "b"]}),
        json!({"repo": "git@git.example.com:org/repo.git", "ref": "refs/heads/main", "paths": []}),
    ] {
        out.push(doc.to_string().into_bytes());
    }
    out
}

/// The label of a webhook error, for counting.
fn error_label(e: &WebhookError) -> &'static str {
    e.kind()
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

fn run_parse(p: &dyn Provider, input: &Input) -> (&'static str, Option<String>) {
    let map = header_map(&input.headers);
    let request = Request::new(&map, &input.body);
    match catch_unwind(AssertUnwindSafe(|| p.parse(&request))) {
        Err(payload) => (
            "panic",
            Some(format!(
                "{}: parse panicked: {}",
                p.name(),
                panic_message(&*payload)
            )),
        ),
        Ok(Ok(Outcome::Event(ev))) => (
            "event",
            check_event(&ev)
                .err()
                .map(|e| format!("{}: parse: {e}", p.name())),
        ),
        Ok(Ok(Outcome::PullRequest(pr))) => (
            "pull_request",
            check_pull_request(&pr)
                .err()
                .map(|e| format!("{}: parse: {e}", p.name())),
        ),
        Ok(Ok(Outcome::Ignored(_))) => ("ignored", None),
        Ok(Err(e)) => (error_label(&e), server_error(&e)),
    }
}

fn run_receive(input: &Input, secrets: &WebhookSecrets) -> (&'static str, Option<String>) {
    let map = header_map(&input.headers);
    let request = Request::new(&map, &input.body);
    match catch_unwind(AssertUnwindSafe(|| webhook::receive(&request, secrets))) {
        Err(payload) => (
            "panic",
            Some(format!("receive panicked: {}", panic_message(&*payload))),
        ),
        Ok(Ok(Received {
            outcome: Outcome::Event(ev),
            provider,
            ..
        })) => (
            "event",
            check_event(&ev)
                .err()
                .map(|e| format!("{}: receive: {e}", provider.name())),
        ),
        Ok(Ok(Received {
            outcome: Outcome::PullRequest(pr),
            provider,
            ..
        })) => (
            "pull_request",
            check_pull_request(&pr)
                .err()
                .map(|e| format!("{}: receive: {e}", provider.name())),
        ),
        Ok(Ok(Received { .. })) => ("ignored", None),
        Ok(Err((_, e))) => (error_label(&e), server_error(&e)),
    }
}

/// A refusal must be the sender's fault (4xx): a 5xx makes Git hosts retry and back off.
fn server_error(e: &WebhookError) -> Option<String> {
    (e.status_code() >= 500).then(|| format!("{e} answers {}", e.status_code()))
}

fn run_body_parser(parser: &BodyParser, body: &[u8]) -> (&'static str, Option<String>) {
    match catch_unwind(AssertUnwindSafe(|| (parser.parse)(body))) {
        Err(payload) => (
            "panic",
            Some(format!(
                "{}: panicked: {}",
                parser.name,
                panic_message(&*payload)
            )),
        ),
        Ok(Ok(ev)) => (
            "event",
            if parser.event_invariants {
                check_event(&ev)
                    .err()
                    .map(|e| format!("{}: {e}", parser.name))
            } else {
                None
            },
        ),
        Ok(Err(_)) => ("error", None),
    }
}
