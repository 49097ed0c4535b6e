//! jq path expressions of ignoreDifferences rules: compiled once, evaluated as `path(EXPR)`.
//!
//! jaq has no step budget, so runaway work is bounded two ways: constructs that can loop or
//! recurse without end on a finite object are refused when the rule is compiled, and the
//! evaluation stops after a number of paths or once a wall-clock limit has passed between
//! two outputs.

use std::time::{Duration, Instant};

use jaq_core::load::{Arena, File, Loader, lex};
use jaq_core::{Compiler, Ctx, Vars, data};
use jaq_json::Val;
use serde::Deserialize;
use serde_json::Value;

use super::DiffError;
use super::path::Segment;

/// At most this many paths are taken from one expression on one object.
const MAX_PATHS: usize = 10_000;
/// Evaluation of one expression on one object gives up after this long.
const TIME_LIMIT: Duration = Duration::from_millis(100);

/// Names that generate unbounded work (recursion, generators, folds), read the environment or
/// stop the process; `def` is here because user recursion can overflow the stack, which no
/// guard can catch. Path expressions need none of them (`..` covers recursion).
const REFUSED: &[&str] = &[
    "def",
    "recurse",
    "repeat",
    "while",
    "until",
    "range",
    "combinations",
    "reduce",
    "foreach",
    "input",
    "inputs",
    "env",
    "$ENV",
    "halt",
    "halt_error",
    "debug",
    "stderr",
    "now",
    "localtime",
    "import",
    "include",
    // `"x" * 1e12` builds a string of any size.
    "*",
    "*=",
];
/// Longer expressions are refused: nesting generators multiplies work.
const MAX_LEN: usize = 1024;

type D = data::JustLut<Val>;

/// One compiled jq path expression.
pub(crate) struct JqPath {
    source: String,
    filter: jaq_core::Filter<D>,
}

impl std::fmt::Debug for JqPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("JqPath").field(&self.source).finish()
    }
}

impl JqPath {
    /// Compiles `expression`; the error names it and says what is wrong.
    pub(crate) fn compile(expression: &str) -> Result<JqPath, DiffError> {
        let invalid = |message: String| DiffError::InvalidJq {
            expression: expression.to_string(),
            message,
        };
        if expression.len() > MAX_LEN {
            return Err(invalid(format!("longer than {MAX_LEN} characters")));
        }
        let tokens = lex::Lexer::new(expression)
            .lex()
            .map_err(|errs| invalid(lex_message(&errs)))?;
        if let Some(name) = refused_word(&tokens) {
            return Err(invalid(format!("`{name}` is not allowed here")));
        }
        let code = format!("path({expression})");
        let defs = jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs());
        let funs = jaq_core::funs()
            .chain(jaq_std::funs())
            .chain(jaq_json::funs());
        let arena = Arena::default();
        let modules = Loader::new(defs)
            .load(
                &arena,
                File {
                    code: &code,
                    path: (),
                },
            )
            .map_err(|errs| {
                invalid(
                    errs.iter()
                        .map(|(_, e)| load_message(e))
                        .collect::<Vec<_>>()
                        .join("; "),
                )
            })?;
        let filter = Compiler::default()
            .with_funs(funs)
            .compile(modules)
            .map_err(|errs| {
                let names: Vec<String> = errs
                    .iter()
                    .flat_map(|(_, es)| es.iter().map(|(name, _)| format!("unknown `{name}`")))
                    .collect();
                invalid(names.join("; "))
            })?;
        Ok(JqPath {
            source: expression.to_string(),
            filter,
        })
    }

    /// The paths the expression selects in `input` (already converted); errors end the stream.
    pub(crate) fn paths(&self, input: &Val) -> Vec<Vec<Segment>> {
        let ctx = Ctx::<D>::new(&self.filter.lut, Vars::new([]));
        let started = Instant::now();
        let mut out = Vec::new();
        for item in self.filter.id.run((ctx, input.clone())) {
            // An error (e.g. iterating over null) ends this expression's paths, as in Argo CD.
            let Ok(path) = jaq_core::unwrap_valr(item) else {
                break;
            };
            if let Some(path) = to_segments(&path) {
                out.push(path);
            }
            if out.len() >= MAX_PATHS || started.elapsed() > TIME_LIMIT {
                tracing::warn!(expression = %self.source, "jq ignoreDifferences expression stopped early");
                break;
            }
        }
        out
    }
}

/// Converts a JSON value for evaluation; done once per object, shared by all expressions.
pub(crate) fn to_val(value: &Value) -> Val {
    Val::deserialize(value).unwrap_or(Val::Null)
}

fn to_segments(path: &Val) -> Option<Vec<Segment>> {
    let Val::Arr(parts) = path else {
        return None;
    };
    parts
        .iter()
        .map(|p| match p {
            Val::TStr(b) | Val::BStr(b) => {
                Some(Segment::Key(String::from_utf8_lossy(b).into_owned()))
            }
            Val::Num(n) => n.as_isize().map(Segment::Index),
            _ => None,
        })
        .collect()
}

fn refused_word(tokens: &[lex::Token<&str>]) -> Option<String> {
    for lex::Token(text, tok) in tokens {
        match tok {
            lex::Tok::Word | lex::Tok::Var | lex::Tok::Sym => {
                let word = text.rsplit("::").next().unwrap_or(text);
                if REFUSED.contains(&word) {
                    return Some(word.to_string());
                }
            }
            lex::Tok::Block(inner) => {
                if let Some(w) = refused_word(inner) {
                    return Some(w);
                }
            }
            lex::Tok::Str(parts) => {
                for part in parts {
                    if let lex::StrPart::Term(lex::Token(_, lex::Tok::Block(inner))) = part
                        && let Some(w) = refused_word(inner)
                    {
                        return Some(w);
                    }
                }
            }
            _ => {}
        }
    }
    None
}

fn lex_message(errs: &[lex::Error<&str>]) -> String {
    errs.iter()
        .map(|(expect, rest)| format!("expected {} at `{}`", expect.as_str(), clip(rest)))
        .collect::<Vec<_>>()
        .join("; ")
}

fn load_message(e: &jaq_core::load::Error<&str>) -> String {
    match e {
        jaq_core::load::Error::Lex(errs) => lex_message(errs),
        jaq_core::load::Error::Parse(errs) => errs
            .iter()
            .map(|(expect, found)| format!("expected {} at `{}`", expect.as_str(), clip(found)))
            .collect::<Vec<_>>()
            .join("; "),
        jaq_core::load::Error::Io(errs) => errs
            .iter()
            .map(|(path, msg)| format!("{path}: {msg}"))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

fn clip(s: &str) -> &str {
    if s.is_empty() {
        return "the end";
    }
    match s.char_indices().nth(20) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}
