//! User-defined health checks written in Lua, in Argo CD's format
//! (`resource.customizations.health.<group>_<Kind>` → script that reads `obj` and returns `hs`).
//!
//! Every script is compiled once at load; each evaluation runs the compiled chunk in a fresh Lua
//! state so that one evaluation can never see what another left behind. The state offers only the
//! safe part of the base library plus `string`, `table` and `math`, and is bounded in instructions
//! and memory, so a runaway or hostile script ends as an Unknown health instead of a stuck worker.

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use globset::{GlobBuilder, GlobMatcher};
use mlua::chunk::ChunkMode;
use mlua::debug::HookTriggers;
use mlua::{Lua, LuaOptions, StdLib, VmState};
use serde_json::Value;

use super::{Health, HealthStatus};

/// The prefix of health check keys in Argo CD's `argocd-cm` ConfigMap.
pub const KEY_PREFIX: &str = "resource.customizations.health.";

/// VM instructions one evaluation may run before it is stopped.
pub const INSTRUCTION_LIMIT: u64 = 1_000_000;
/// Bytes one evaluation's Lua state may allocate (the object, the libraries and the script's data).
pub const MEMORY_LIMIT: usize = 16 * 1024 * 1024;
/// Nesting depth of the live object beyond which it is not handed to a script; it also bounds
/// the recursion of the conversion, so no object can overflow the Rust stack.
pub const MAX_OBJECT_DEPTH: usize = 128;
/// Longest message kept from a script (bytes); the rest is cut so a status write stays small.
pub const MAX_MESSAGE_BYTES: usize = 4096;
/// How often (in VM instructions) the instruction counter runs; small enough to stop a loop
/// promptly, large enough to cost little.
const HOOK_EVERY: u32 = 1_000;
/// Base-library functions removed before a script runs: they reach files, load code or stop the GC.
const REMOVED_GLOBALS: [&str; 8] = [
    "load",
    "loadfile",
    "dofile",
    "require",
    "collectgarbage",
    "print",
    "warn",
    "loadstring",
];
/// The health codes a script may return.
const STATUSES: [HealthStatus; 6] = [
    HealthStatus::Healthy,
    HealthStatus::Suspended,
    HealthStatus::Progressing,
    HealthStatus::Missing,
    HealthStatus::Degraded,
    HealthStatus::Unknown,
];

/// Why a custom health check could not be loaded; it names the configuration key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CustomHealthError {
    /// The key is not `<group>_<Kind>`, `<Kind>` or a glob of those.
    #[error("health check key {key:?}: expected <group>_<Kind> or <Kind>")]
    BadKey {
        /// The key as configured.
        key: String,
    },
    /// The key's glob does not compile.
    #[error("health check key {key:?}: invalid pattern: {message}")]
    BadPattern {
        /// The key as configured.
        key: String,
        /// The glob parser's complaint.
        message: String,
    },
    /// The script does not compile.
    #[error("health check {key:?}: {message}")]
    Compile {
        /// The key as configured.
        key: String,
        /// The Lua compiler's complaint.
        message: String,
    },
}

/// One configured check: its compiled chunk, or why it failed to compile.
#[derive(Debug)]
struct Check {
    /// The match key (`group/Kind`, or `Kind` for the core group), used as the chunk name.
    name: String,
    code: Result<Vec<u8>, String>,
}

#[derive(Debug, Default)]
struct Checks {
    exact: HashMap<String, Check>,
    /// Glob keys in (bare) key order, so which one wins when several match does not vary between runs.
    wildcards: Vec<(GlobMatcher, Check)>,
}

/// The configured custom health checks, compiled; cheap to clone and share between threads.
#[derive(Debug, Clone, Default)]
pub struct CustomHealth {
    checks: Arc<Checks>,
}

impl CustomHealth {
    /// No custom checks: every kind uses the built-in rules.
    pub fn none() -> Self {
        CustomHealth::default()
    }

    /// Compiles checks from `(key, script)` pairs: keys are `resource.customizations.health.X` or
    /// bare `X`; other `resource.customizations.*` keys are ignored. Checks that fail to load are
    /// returned as errors for the caller to report; a script that does not compile still makes its
    /// kind Unknown, with the compiler's message.
    pub fn from_entries(
        entries: impl IntoIterator<Item = (String, String)>,
    ) -> (CustomHealth, Vec<CustomHealthError>) {
        let mut sorted: Vec<(String, String)> = entries.into_iter().collect();
        // By key without the prefix, the full form after the bare one so that it wins when both are given.
        sorted.sort_by_cached_key(|(key, _)| match key.strip_prefix(KEY_PREFIX) {
            Some(bare) => (bare.to_string(), true),
            None => (key.clone(), false),
        });
        let mut checks = Checks::default();
        let mut errors = Vec::new();
        for (key, script) in sorted {
            let Some(group_kind) = group_kind_of_key(&key) else {
                continue;
            };
            let Some(name) = match_key(group_kind) else {
                errors.push(CustomHealthError::BadKey { key });
                continue;
            };
            let code = compile(&name, &script);
            if let Err(message) = &code {
                errors.push(CustomHealthError::Compile {
                    key: key.clone(),
                    message: message.clone(),
                });
            }
            let check = Check { name, code };
            if check.name.contains(['*', '?']) {
                match GlobBuilder::new(&check.name).build() {
                    Ok(glob) => {
                        // The same pattern given twice (full and bare key): the later one wins, as for exact keys.
                        checks.wildcards.retain(|(_, c)| c.name != check.name);
                        checks.wildcards.push((glob.compile_matcher(), check));
                    }
                    Err(e) => errors.push(CustomHealthError::BadPattern {
                        key,
                        message: e.kind().to_string(),
                    }),
                }
            } else {
                checks.exact.insert(check.name.clone(), check);
            }
        }
        (
            CustomHealth {
                checks: Arc::new(checks),
            },
            errors,
        )
    }

    /// Whether no check is configured.
    pub fn is_empty(&self) -> bool {
        self.checks.exact.is_empty() && self.checks.wildcards.is_empty()
    }

    /// Whether a check applies to this group and kind.
    pub fn covers(&self, group: &str, kind: &str) -> bool {
        self.check_for(group, kind).is_some()
    }

    /// The health the configured check gives the object; None when no check applies to its kind
    /// or the script returned nil (the built-in rules then decide).
    pub fn evaluate(&self, group: &str, kind: &str, obj: &Value) -> Option<Health> {
        let check = self.check_for(group, kind)?;
        let code = match &check.code {
            Ok(code) => code,
            Err(message) => return Some(Health::new(HealthStatus::Unknown, message.clone())),
        };
        let mut health = match run(&check.name, code, obj) {
            Ok(health) => health?,
            Err(e) => Health::new(HealthStatus::Unknown, describe(&e)),
        };
        truncate(&mut health.message);
        Some(health)
    }

    /// The exact check for the kind, else the first glob (in key order) that matches it.
    fn check_for(&self, group: &str, kind: &str) -> Option<&Check> {
        if self.is_empty() {
            return None;
        }
        let name = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{group}/{kind}")
        };
        self.checks.exact.get(&name).or_else(|| {
            self.checks
                .wildcards
                .iter()
                .find(|(glob, _)| glob.is_match(&name))
                .map(|(_, check)| check)
        })
    }
}

/// The `<group>_<Kind>` part of a health key, or None for keys that are not health checks.
fn group_kind_of_key(key: &str) -> Option<&str> {
    if let Some(rest) = key.strip_prefix(KEY_PREFIX) {
        return Some(rest);
    }
    (!key.starts_with("resource.customizations")).then_some(key)
}

/// `group_Kind` → `group/Kind`; `Kind` stays (core group). More than one `_` is not a key.
fn match_key(group_kind: &str) -> Option<String> {
    let parts: Vec<&str> = group_kind.split('_').collect();
    match parts.as_slice() {
        [kind] if !kind.is_empty() => Some((*kind).to_string()),
        [group, kind] if !group.is_empty() && !kind.is_empty() => Some(format!("{group}/{kind}")),
        _ => None,
    }
}

/// Compiles a script to bytecode in a throwaway state (nothing runs).
fn compile(name: &str, script: &str) -> Result<Vec<u8>, String> {
    let lua = Lua::new_with(StdLib::NONE, LuaOptions::new()).map_err(|e| describe(&e))?;
    let function = lua
        .load(script)
        .set_name(format!("={name}"))
        .set_mode(ChunkMode::Text)
        .into_function()
        .map_err(|e| describe(&e))?;
    Ok(function.dump(false))
}

/// Runs a compiled check against the object in a fresh, bounded state.
fn run(name: &str, code: &[u8], obj: &Value) -> mlua::Result<Option<Health>> {
    let lua = sandbox()?;
    lua.globals().raw_set("obj", to_lua(&lua, obj, 0)?)?;
    let executed = Rc::new(Cell::new(0u64));
    lua.set_hook(
        HookTriggers::new().every_nth_instruction(HOOK_EVERY),
        move |_, _| {
            let n = executed.get() + u64::from(HOOK_EVERY);
            executed.set(n);
            if n > INSTRUCTION_LIMIT {
                return Err(mlua::Error::runtime(format!(
                    "script exceeded the instruction limit of {INSTRUCTION_LIMIT}"
                )));
            }
            Ok(VmState::Continue)
        },
    )?;
    let returned: mlua::Value = lua
        .load(code)
        .set_name(format!("={name}"))
        .set_mode(ChunkMode::Binary)
        .call(())?;
    read_health(&returned)
}

/// A fresh state with only the safe libraries and a memory limit.
fn sandbox() -> mlua::Result<Lua> {
    let lua = Lua::new_with(
        StdLib::STRING | StdLib::TABLE | StdLib::MATH,
        LuaOptions::new(),
    )?;
    lua.set_memory_limit(MEMORY_LIMIT)?;
    let globals = lua.globals();
    for name in REMOVED_GLOBALS {
        globals.raw_set(name, mlua::Value::Nil)?;
    }
    if let Ok(string) = globals.raw_get::<mlua::Table>("string") {
        // Bytecode can only be loaded by `load`, which is gone, but there is no reason to make it.
        string.raw_set("dump", mlua::Value::Nil)?;
    }
    // Finalizers run with hooks switched off, so a `__gc` loop would escape the instruction limit.
    let setmetatable: mlua::Function = globals.raw_get("setmetatable")?;
    let guarded = lua.create_function(move |_, (t, mt): (mlua::Value, mlua::Value)| {
        if let mlua::Value::Table(mt) = &mt
            && !mt.raw_get::<mlua::Value>("__gc")?.is_nil()
        {
            return Err(mlua::Error::runtime("__gc metamethods are not allowed"));
        }
        setmetatable.call::<mlua::Value>((t, mt))
    })?;
    globals.raw_set("setmetatable", guarded)?;
    Ok(lua)
}

/// JSON → Lua as Argo CD hands objects to scripts: objects are tables, arrays 1-based sequences,
/// null is nil.
fn to_lua(lua: &Lua, v: &Value, depth: usize) -> mlua::Result<mlua::Value> {
    if depth > MAX_OBJECT_DEPTH {
        return Err(mlua::Error::runtime(format!(
            "object is nested deeper than {MAX_OBJECT_DEPTH} levels"
        )));
    }
    Ok(match v {
        Value::Null => mlua::Value::Nil,
        Value::Bool(b) => mlua::Value::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => mlua::Value::Integer(i),
            None => mlua::Value::Number(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => mlua::Value::String(lua.create_string(s)?),
        Value::Array(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i + 1, to_lua(lua, item, depth + 1)?)?;
            }
            mlua::Value::Table(t)
        }
        Value::Object(fields) => {
            let t = lua.create_table_with_capacity(0, fields.len())?;
            for (k, item) in fields {
                t.raw_set(k.as_str(), to_lua(lua, item, depth + 1)?)?;
            }
            mlua::Value::Table(t)
        }
    })
}

/// The script's `hs` table as a health; nil means the script has no opinion.
fn read_health(returned: &mlua::Value) -> mlua::Result<Option<Health>> {
    let table = match returned {
        mlua::Value::Nil => return Ok(None),
        mlua::Value::Table(t) => t,
        other => {
            return Err(mlua::Error::runtime(format!(
                "expect table output from Lua script, not {}",
                other.type_name()
            )));
        }
    };
    let status = text(&table.raw_get("status")?);
    let Some(status) = STATUSES.into_iter().find(|s| s.as_str() == status) else {
        return Err(mlua::Error::runtime(format!(
            "Lua returned an invalid health status {status:?}"
        )));
    };
    Ok(Some(Health::new(status, text(&table.raw_get("message")?))))
}

/// A Lua string or number as text; anything else as empty.
fn text(v: &mlua::Value) -> String {
    match v {
        mlua::Value::String(s) => s.to_string_lossy(),
        mlua::Value::Integer(i) => i.to_string(),
        mlua::Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// Cuts a message to [`MAX_MESSAGE_BYTES`] on a character boundary.
fn truncate(message: &mut String) {
    if message.len() > MAX_MESSAGE_BYTES {
        let mut end = MAX_MESSAGE_BYTES;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
}

/// The message of a Lua error without mlua's wrapping and tracebacks.
fn describe(e: &mlua::Error) -> String {
    match e {
        mlua::Error::CallbackError { cause, .. } => describe(cause),
        mlua::Error::RuntimeError(message) => first_line(message),
        mlua::Error::SyntaxError { message, .. } => format!("syntax error: {message}"),
        mlua::Error::MemoryError(_) => {
            format!("script exceeded the memory limit of {MEMORY_LIMIT} bytes")
        }
        other => first_line(&other.to_string()),
    }
}

/// Lua appends a stack traceback to runtime errors; the first line is the message.
fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or("").to_string()
}
