//! A mutation engine for webhook requests, shared by `tests/fuzz.rs` (property tests, where
//! proptest chooses) and `benches/fuzz.rs` (millions of executions, where a seeded RNG chooses).
//! Every choice is read from a [`Tape`] of numbers, so both drivers share one code path and a
//! failing tape replays (and shrinks: a shorter tape or smaller numbers is a simpler input).

use serde_json::{Map, Value};

/// A request as the fuzzer sees it: header values as raw bytes, so values that are not text
/// (which `Request::header` must treat as absent) can be sent too.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Input {
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

/// What was changed, so a driver knows which invariants still apply.
#[derive(Debug, Clone, Copy, Default)]
pub struct Applied {
    /// Some header was added, removed or changed.
    pub headers: bool,
    /// The body was changed.
    pub body: bool,
}

/// The source of every choice; reads past the end as 0, so any tape is a valid input.
pub struct Tape<'a> {
    words: &'a [u64],
    at: usize,
}

impl<'a> Tape<'a> {
    /// A tape over `words`.
    pub fn new(words: &'a [u64]) -> Self {
        Tape { words, at: 0 }
    }

    fn next(&mut self) -> u64 {
        let w = self.words.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        w
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        let w = self.next();
        if n == 0 { 0 } else { (w % n as u64) as usize }
    }

    /// One of `items`, or None when there are none.
    pub fn pick<'b, T>(&mut self, items: &'b [T]) -> Option<&'b T> {
        let i = self.below(items.len());
        items.get(i)
    }

    /// A raw number (for random integers and bytes).
    pub fn word(&mut self) -> u64 {
        self.next()
    }
}

/// A small seeded generator (splitmix64) that fills tapes when nothing else chooses: the bench's
/// millions of executions, and fixed tape streams in tests. A seed replays its stream.
pub struct SplitMix(pub u64);

impl SplitMix {
    /// The next number of the stream.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Refills `tape` with `len` new numbers.
    pub fn fill(&mut self, tape: &mut Vec<u64>, len: usize) {
        tape.clear();
        tape.extend((0..len).map(|_| self.next_u64()));
    }
}

/// Values worth trying where a provider expects something specific: event names, ref shapes,
/// URLs, hashes. Collected from every provider's samples plus known hostile strings.
#[derive(Debug, Clone, Default)]
pub struct Dictionary {
    /// Header values the samples carry (event names, delivery ids, content types …).
    pub header_values: Vec<Vec<u8>>,
    /// Header names the samples carry (every provider's, so one host's request can carry another's).
    pub header_names: Vec<String>,
    /// Strings found in sample bodies.
    pub strings: Vec<String>,
}

/// Strings that break naive parsers: empty, blank, zero ids, odd refs and URLs, control and
/// bidirectional characters, a lone surrogate escape (in raw form below).
const HOSTILE_STRINGS: &[&str] = &[
    "",
    " ",
    "\t\n",
    "0000000000000000000000000000000000000000",
    "refs/heads/",
    "refs/tags/",
    "refs/",
    "/",
    "main",
    "HEAD",
    "..",
    "git@",
    "https://",
    "://",
    "file:///etc/passwd",
    "\u{0}",
    "\u{202e}ref\u{200b}",
    "é😀\u{10ffff}",
    "push",
    "ping",
    "Push Hook",
    "Tag Push Hook",
    "repo:push",
    "repo:refs_changed",
    "diagnostics:ping",
    "git.push",
    "BRANCH",
    "TAG",
    "ADD",
    "UPDATE",
    "DELETE",
];

/// Header values beyond those the samples carry: other events, empty, blank, odd content types.
const HOSTILE_HEADER_VALUES: &[&str] = &[
    "",
    " ",
    "push ",
    "PUSH",
    "application/json; charset=utf-16",
    "application/x-www-form-urlencoded",
    "text/plain",
    "sha256=",
    "sha1=0000",
    "Basic",
    "Basic Og==",
    "v1,",
];

/// Raw JSON texts put in place of a node: the kinds of value a typed parser does not expect.
const REPLACEMENTS: &[&str] = &[
    "null",
    "true",
    "false",
    "0",
    "-1",
    "1.5",
    "-0",
    "18446744073709551616",
    "-9223372036854775809",
    "1e400",
    "1.7976931348623157e308",
    "\"\"",
    "\" \"",
    "\"\\ud800\"",
    "\"\\u0000\"",
    "[]",
    "[null]",
    "[1,\"x\",{}]",
    "{}",
    "{\"\":null}",
];

/// Depths for deeply nested arrays: under, at and over serde_json's recursion limit (128), and far over.
const DEPTHS: &[usize] = &[3, 127, 128, 129, 5000];

/// Bodies are never grown past this by a mutation (the HTTP layer caps real ones).
pub const MAX_BODY: usize = 256 * 1024;

/// A placeholder key/string replaced in the serialised text (for what a `Value` cannot hold:
/// duplicate keys, raw JSON, nesting deeper than is safe to build as a `Value`).
const MARK: &str = "\u{1}capstan-fuzz-mark-";

impl Dictionary {
    /// Collects names, values and strings from seed requests.
    pub fn from_seeds(seeds: &[Input]) -> Self {
        let mut d = Dictionary::default();
        for s in seeds {
            for (k, v) in &s.headers {
                if !d.header_names.contains(k) {
                    d.header_names.push(k.clone());
                }
                if !d.header_values.contains(v) {
                    d.header_values.push(v.clone());
                }
            }
            if let Ok(v) = serde_json::from_slice::<Value>(&s.body) {
                collect_strings(&v, &mut d.strings);
            }
        }
        for h in HOSTILE_HEADER_VALUES {
            d.header_values.push(h.as_bytes().to_vec());
        }
        for s in HOSTILE_STRINGS {
            d.strings.push((*s).to_owned());
        }
        d.strings.sort();
        d.strings.dedup();
        d
    }
}

fn collect_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) if s.len() <= 200 => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|i| collect_strings(i, out)),
        Value::Object(map) => map.iter().for_each(|(k, v)| {
            out.push(k.clone());
            collect_strings(v, out);
        }),
        _ => {}
    }
}

/// Applies 1–4 stacked mutations, chosen by `tape`, to `seeds[i]` for a tape-chosen `i`;
/// `splice` are other bodies that may be spliced in. Returns the input and what changed.
pub fn mutate(
    seeds: &[Input],
    splice: &[Vec<u8>],
    dict: &Dictionary,
    tape: &mut Tape<'_>,
) -> (Input, Applied) {
    let mut input = tape.pick(seeds).cloned().unwrap_or_default();
    let mut applied = Applied::default();
    let rounds = 1 + tape.below(4);
    // JSON-aware changes are made on one parsed tree and serialised once, then bytes and headers.
    let mut tree: Option<(Value, Vec<(String, String)>)> = None;
    for _ in 0..rounds {
        match tape.below(10) {
            0..=4 => {
                if tree.is_none() {
                    tree = serde_json::from_slice::<Value>(&input.body)
                        .ok()
                        .map(|v| (v, Vec::new()));
                }
                match tree.as_mut() {
                    Some((value, marks)) => mutate_json(value, marks, dict, tape),
                    None => mutate_bytes(&mut input.body, splice, dict, tape),
                }
                applied.body = true;
            }
            5..=7 => {
                if let Some((value, marks)) = tree.take() {
                    input.body = serialise(&value, &marks);
                }
                mutate_bytes(&mut input.body, splice, dict, tape);
                applied.body = true;
            }
            _ => {
                mutate_headers(&mut input.headers, dict, tape);
                applied.headers = true;
            }
        }
    }
    if let Some((value, marks)) = tree {
        input.body = serialise(&value, &marks);
    }
    input.body.truncate(MAX_BODY);
    (input, applied)
}

/// Serialises `value` and replaces each placeholder by its raw text.
fn serialise(value: &Value, marks: &[(String, String)]) -> Vec<u8> {
    let mut text = value.to_string();
    for (mark, raw) in marks {
        // The mark is a JSON string in the text, quotes included; the first occurrence is the one.
        let quoted = Value::String(mark.clone()).to_string();
        if let Some(at) = text.find(&quoted) {
            text.replace_range(at..at + quoted.len(), raw);
        }
    }
    text.into_bytes()
}

/// Every node's path from the root, so one can be chosen uniformly.
fn paths(value: &Value) -> Vec<Vec<PathStep>> {
    let mut out = vec![Vec::new()];
    let mut stack = vec![(value, Vec::new())];
    while let Some((v, path)) = stack.pop() {
        let children: Vec<(PathStep, &Value)> = match v {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, c)| (PathStep::Index(i), c))
                .collect(),
            Value::Object(map) => map
                .iter()
                .map(|(k, c)| (PathStep::Key(k.clone()), c))
                .collect(),
            _ => Vec::new(),
        };
        for (step, child) in children {
            let mut p = path.clone();
            p.push(step);
            out.push(p.clone());
            if out.len() < 4096 {
                stack.push((child, p));
            }
        }
    }
    out
}

#[derive(Debug, Clone)]
enum PathStep {
    Key(String),
    Index(usize),
}

fn node_mut<'v>(value: &'v mut Value, path: &[PathStep]) -> Option<&'v mut Value> {
    let mut at = value;
    for step in path {
        at = match (step, at) {
            (PathStep::Key(k), Value::Object(map)) => map.get_mut(k)?,
            (PathStep::Index(i), Value::Array(items)) => items.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(at)
}

fn mark(marks: &mut Vec<(String, String)>, raw: String) -> String {
    let m = format!("{MARK}{}", marks.len());
    marks.push((m.clone(), raw));
    m
}

fn mutate_json(
    value: &mut Value,
    marks: &mut Vec<(String, String)>,
    dict: &Dictionary,
    tape: &mut Tape<'_>,
) {
    let all = paths(value);
    let Some(path) = tape.pick(&all).cloned() else {
        return;
    };
    let choice = tape.below(12);
    let Some(node) = node_mut(value, &path) else {
        return;
    };
    match choice {
        // Another type in place of the node.
        0 | 1 => {
            if let Some(raw) = tape.pick(REPLACEMENTS) {
                *node = Value::String(mark(marks, (*raw).to_owned()));
            }
        }
        // A string the providers know, or a hostile one.
        2 | 3 => {
            if let Some(s) = tape.pick(&dict.strings) {
                *node = Value::String(s.clone());
            }
        }
        // A random number, sometimes huge.
        4 => {
            let w = tape.word();
            *node = if w.is_multiple_of(2) {
                Value::from(w as i64)
            } else {
                Value::from(w)
            };
        }
        // A deeply nested array: written as text, a `Value` this deep is unsafe to drop.
        5 => {
            let depth = tape.pick(DEPTHS).copied().unwrap_or(3);
            let raw = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            *node = Value::String(mark(marks, raw));
        }
        // Delete a key (or an array element).
        6 => delete_child(node, tape),
        // Duplicate a key with another value.
        7 => {
            if let Value::Object(map) = node {
                let keys: Vec<String> = map.keys().cloned().collect();
                if let Some(k) = tape.pick(&keys) {
                    let raw = Value::String(k.clone()).to_string();
                    let replacement = tape.pick(REPLACEMENTS).copied().unwrap_or("null");
                    // The placeholder key becomes the duplicate's name in the text.
                    let key_mark = mark(marks, raw);
                    let value_mark = mark(marks, replacement.to_owned());
                    map.insert(key_mark, Value::String(value_mark));
                }
            } else {
                *node = Value::Object(Map::new());
            }
        }
        // Empty an array or object.
        8 => match node {
            Value::Array(items) => items.clear(),
            Value::Object(map) => map.clear(),
            other => *other = Value::Array(Vec::new()),
        },
        // Wrap the value in an array (a list where one value was expected).
        9 => *node = Value::Array(vec![node.take()]),
        // Unwrap: an array's first element, or an object's first value, in its place.
        10 => {
            let inner = match node {
                Value::Array(items) => items.first().cloned(),
                Value::Object(map) => map.values().next().cloned(),
                _ => None,
            };
            *node = inner.unwrap_or(Value::Null);
        }
        // Grow: repeat an array's element many times, or add a key the providers know.
        _ => match node {
            Value::Array(items) => {
                if let Some(first) = items.first().cloned() {
                    // Bounded in nodes, so stacked growths cannot exhaust memory.
                    let size = paths(&first).len().max(1);
                    let n = [2, 100, 3000][tape.below(3)].min(8_000 / size);
                    items.extend(std::iter::repeat_n(first, n));
                }
            }
            Value::Object(map) => {
                if let (Some(k), Some(raw)) = (tape.pick(&dict.strings), tape.pick(REPLACEMENTS)) {
                    map.insert(k.clone(), Value::String(mark(marks, (*raw).to_owned())));
                }
            }
            other => *other = Value::Object(Map::new()),
        },
    }
}

fn delete_child(node: &mut Value, tape: &mut Tape<'_>) {
    match node {
        Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            if let Some(k) = tape.pick(&keys) {
                map.remove(k);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let i = tape.below(items.len());
            items.remove(i);
        }
        other => *other = Value::Null,
    }
}

/// Bytes that matter to a JSON tokenizer or to UTF-8.
const BYTES: &[u8] = b"{}[]\":,\\0-e.tnf \x00\x7f\x80\xc3\xed\xf0\xff";

fn mutate_bytes(body: &mut Vec<u8>, splice: &[Vec<u8>], dict: &Dictionary, tape: &mut Tape<'_>) {
    let len = body.len();
    match tape.below(8) {
        // Flip one bit.
        0 => {
            if len > 0 {
                let i = tape.below(len);
                let bit = tape.below(8);
                if let Some(b) = body.get_mut(i) {
                    *b ^= 1 << bit;
                }
            }
        }
        // Insert a byte that matters.
        1 => {
            let i = tape.below(len + 1);
            let b = tape.pick(BYTES).copied().unwrap_or(0);
            body.insert(i.min(len), b);
        }
        // Overwrite a byte with a random one.
        2 => {
            if len > 0 {
                let i = tape.below(len);
                let w = tape.word() as u8;
                if let Some(b) = body.get_mut(i) {
                    *b = w;
                }
            }
        }
        // Delete a range.
        3 => {
            if len > 0 {
                let start = tape.below(len);
                let n = 1 + tape.below(16.min(len - start));
                body.drain(start..(start + n).min(len));
            }
        }
        // Truncate.
        4 => {
            let at = tape.below(len + 1);
            body.truncate(at);
        }
        // Splice: this body's head with another body's tail.
        5 => {
            if let Some(other) = tape.pick(splice) {
                let head = tape.below(len + 1);
                let tail = tape.below(other.len() + 1);
                body.truncate(head);
                body.extend_from_slice(other.get(tail..).unwrap_or_default());
            }
        }
        // Insert a known string as raw text, quoted or not.
        6 => {
            if let Some(s) = tape.pick(&dict.strings) {
                let i = tape.below(len + 1).min(len);
                let text = if tape.below(2) == 0 {
                    Value::String(s.clone()).to_string()
                } else {
                    s.clone()
                };
                body.splice(i..i, text.into_bytes());
            }
        }
        // Duplicate a chunk in place.
        _ => {
            if len > 0 {
                let start = tape.below(len);
                let n = 1 + tape.below(64.min(len - start));
                let chunk: Vec<u8> = body.get(start..start + n).unwrap_or_default().to_vec();
                body.splice(start..start, chunk);
            }
        }
    }
    body.truncate(MAX_BODY);
}

/// Changes one header as `tape` chooses: another known value, empty, missing, doubled, another
/// host's header beside, or a value that is not text or very long.
pub fn mutate_headers(
    headers: &mut Vec<(String, Vec<u8>)>,
    dict: &Dictionary,
    tape: &mut Tape<'_>,
) {
    let n = headers.len();
    match tape.below(7) {
        // Another value the samples or hostile list know (another event, another content type).
        0 | 1 => {
            if n > 0 {
                let i = tape.below(n);
                if let (Some(h), Some(v)) = (headers.get_mut(i), tape.pick(&dict.header_values)) {
                    h.1 = v.clone();
                }
            }
        }
        // Empty value.
        2 => {
            if n > 0 {
                let i = tape.below(n);
                if let Some(h) = headers.get_mut(i) {
                    h.1.clear();
                }
            }
        }
        // Missing header.
        3 => {
            if n > 0 {
                let i = tape.below(n);
                headers.remove(i);
            }
        }
        // The same header twice with different values (which one counts?).
        4 => {
            if n > 0 {
                let i = tape.below(n);
                if let (Some(h), Some(v)) =
                    (headers.get(i).cloned(), tape.pick(&dict.header_values))
                {
                    headers.push((h.0, v.clone()));
                }
            }
        }
        // Another host's header beside this one's.
        5 => {
            if let (Some(k), Some(v)) = (
                tape.pick(&dict.header_names),
                tape.pick(&dict.header_values),
            ) {
                headers.push((k.clone(), v.clone()));
            }
        }
        // A value that is not text, or a very long one.
        _ => {
            if n > 0 {
                let i = tape.below(n);
                let long = tape.below(2) == 0;
                if let Some(h) = headers.get_mut(i) {
                    if long {
                        h.1 = b"a".repeat(16 * 1024);
                    } else {
                        h.1.extend_from_slice(b"\xff\xfe");
                    }
                }
            }
        }
    }
}
