//! The long-running fuzzer (`cargo bench --bench fuzz -- [EXECUTIONS] [TARGET…]`, or env
//! `FUZZ_EXECS`; default 10,000,000 per target): every registered webhook provider and body
//! parser, with the mutation engine of `tests/fuzz.rs`. Prints per target the executions, the
//! rate, how often each outcome occurred, the slowest input, and every broken invariant, whose
//! input is saved under target/fuzz-crashes/ (with the tape and seed that replay it).

#[path = "../tests/common/fuzz_target.rs"]
mod fuzz_target;
#[path = "../tests/common/mutate.rs"]
mod mutate;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fuzz_target::{Harness, Signing};
use mutate::{SplitMix, Tape};

const DEFAULT_EXECS: u64 = 10_000_000;
/// Tape length: enough numbers for four stacked mutations and a credential mutation.
const TAPE: usize = 48;
/// An input on which the parser and `receive` together take longer than this is reported and
/// saved like a crash (a parser must stay linear in its input; 256 KiB takes ~1 ms in release).
const SLOW: Duration = Duration::from_millis(100);

/// What one thread saw.
#[derive(Default)]
struct Tally {
    executions: u64,
    direct: BTreeMap<&'static str, u64>,
    received: BTreeMap<&'static str, u64>,
    /// Broken invariants and slow inputs, counted; the first few are described.
    violations: u64,
    described: Vec<String>,
    slowest: Duration,
}

fn crash_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-crashes")
}

/// Saves the input and how to replay it; returns the file stem.
fn save(
    target: &str,
    kind: &str,
    seed: u64,
    tape: &[u64],
    run: &fuzz_target::Execution,
    why: &str,
) -> String {
    let dir = crash_dir();
    let stem = format!(
        "{target}-{kind}-{seed:016x}-{:016x}",
        tape.first().unwrap_or(&0)
    );
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(format!("{stem}.body")), &run.input.body);
    if let Ok(mut f) = std::fs::File::create(dir.join(format!("{stem}.txt"))) {
        let _ = writeln!(f, "{why}\n\ntape: {tape:?}\n\nheaders:");
        for (k, v) in &run.input.headers {
            let _ = writeln!(f, "{k}: {}", String::from_utf8_lossy(v));
        }
    }
    stem
}

fn fuzz_thread(h: &Harness, execs: u64, seed: u64) -> Tally {
    let mut tally = Tally::default();
    let mut rng = SplitMix(seed);
    let mut tape = Vec::with_capacity(TAPE);
    for _ in 0..execs {
        rng.fill(&mut tape, TAPE);
        let run = h.execute(&mut Tape::new(&tape));
        let took = run.took;
        tally.executions += 1;
        *tally.direct.entry(run.direct).or_default() += 1;
        *tally.received.entry(run.received).or_default() += 1;
        if let Some(why) = &run.violation {
            tally.violations += 1;
            if tally.described.len() < 20 {
                let stem = save(h.target.name(), "crash", seed, &tape, &run, why);
                tally.described.push(format!("{why} (saved as {stem})"));
            }
        }
        if took > SLOW {
            tally.violations += 1;
            if tally.described.len() < 20 {
                let why = format!("slow input: {} ms", took.as_millis());
                let stem = save(h.target.name(), "slow", seed, &tape, &run, &why);
                tally.described.push(format!("{why} (saved as {stem})"));
            }
        }
        tally.slowest = tally.slowest.max(took);
    }
    tally
}

fn counts(map: &BTreeMap<&'static str, u64>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument is a count or a target name.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let execs = args
        .iter()
        .find_map(|a| a.replace('_', "").parse::<u64>().ok())
        .or_else(|| {
            std::env::var("FUZZ_EXECS")
                .ok()?
                .replace('_', "")
                .parse()
                .ok()
        })
        .unwrap_or(DEFAULT_EXECS);
    let only: Vec<&String> = args.iter().filter(|a| a.parse::<u64>().is_err()).collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let base_seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    // Panics are caught and reported per input; the default hook would print each one.
    std::panic::set_hook(Box::new(|_| {}));
    println!("fuzz: {execs} executions per target on {threads} threads, FUZZ_SEED={base_seed}");
    let mut total_violations = 0;
    for h in Harness::all() {
        let name = h.target.name();
        if !only.is_empty() && !only.iter().any(|o| o.as_str() == name) {
            continue;
        }
        let signing = match (h.target, &h.signing) {
            (fuzz_target::Target::Body(_), _) => "none (a message)",
            (_, Signing::Resign(_)) => "re-signed",
            (_, Signing::Unsigned) => "unsigned allowed",
        };
        let started = Instant::now();
        let tallies: Vec<Tally> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let share = execs / threads + u64::from(t < execs % threads);
                    let seed = base_seed.wrapping_add(t.wrapping_mul(0x1000_0000_0000_0001));
                    let h = &h;
                    s.spawn(move || fuzz_thread(h, share, seed))
                })
                .collect();
            handles.into_iter().filter_map(|j| j.join().ok()).collect()
        });
        let elapsed = started.elapsed().as_secs_f64();
        let mut all = Tally::default();
        for t in tallies {
            all.executions += t.executions;
            for (k, v) in t.direct {
                *all.direct.entry(k).or_default() += v;
            }
            for (k, v) in t.received {
                *all.received.entry(k).or_default() += v;
            }
            all.violations += t.violations;
            all.described.extend(t.described);
            all.slowest = all.slowest.max(t.slowest);
        }
        total_violations += all.violations;
        println!(
            "{name}: {} executions in {elapsed:.1} s = {:.0}/s; {} violations; slowest input (parse + receive) {:.2} ms; credential: {signing}",
            all.executions,
            all.executions as f64 / elapsed,
            all.violations,
            all.slowest.as_secs_f64() * 1e3,
        );
        println!("  direct:  {}", counts(&all.direct));
        if all.received.keys().any(|k| *k != "-") {
            println!("  receive: {}", counts(&all.received));
        }
        for v in &all.described {
            println!("  VIOLATION {v}");
        }
    }
    if total_violations > 0 {
        println!(
            "{total_violations} violations; inputs in {}",
            crash_dir().display()
        );
        std::process::exit(1);
    }
}
