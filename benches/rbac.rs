//! Authorisation figures (a bench binary; `cargo bench --bench rbac`): the median time of one
//! decision with 1,000 policy lines (500 roles, each with an allow and a deny line, granted to
//! groups), for a request allowed through a group and one refused after every subject was
//! tried. Medians over ROUNDS decisions.

use std::hint::black_box;
use std::time::{Duration, Instant};

use capstan::rbac::{Rbac, Subject};

const ROUNDS: usize = 2_001;
const ROLES: usize = 250;

fn median(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1e6
}

fn policy() -> String {
    let mut csv = String::new();
    for i in 0..ROLES {
        csv.push_str(&format!(
            "p, role:team-{i}, applications, *, team-{i}/*, allow\n\
             p, role:team-{i}, applications, delete, team-{i}/prod-*, deny\n\
             p, role:team-{i}, projects, get, team-{i}, allow\n\
             g, org:team-{i}, role:team-{i}\n"
        ));
    }
    csv
}

fn time(rbac: &Rbac, subject: &Subject, object: &str, expected: bool) -> f64 {
    let samples = (0..ROUNDS)
        .map(|_| {
            let started = Instant::now();
            let allowed = rbac.allows(black_box(subject), "applications", "sync", object);
            let took = started.elapsed();
            assert_eq!(allowed, expected);
            took
        })
        .collect();
    median(samples)
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let csv = policy();
    let lines = csv.lines().count();
    let rbac = runtime
        .block_on(Rbac::new(&csv, "role:readonly", &[]))
        .expect("policy");
    let member = Subject {
        user: "alice".into(),
        groups: vec!["org:unrelated".into(), format!("org:team-{}", ROLES - 1)],
    };
    let allowed = time(&rbac, &member, &format!("team-{}/web", ROLES - 1), true);
    let refused = time(&rbac, &member, "team-0/web", false);
    println!("rbac: {lines} policy lines (+ built-in roles), policy.default role:readonly");
    println!("  allowed through the user's second group: median {allowed:.1} µs per decision");
    println!("  refused (default role, user, 2 groups tried): median {refused:.1} µs per decision");
}
