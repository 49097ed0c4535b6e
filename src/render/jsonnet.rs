//! `*.jsonnet` files of a directory source, evaluated in process with jrsonnet: extVars, TLAs
//! and library paths as Argo CD's `directory.jsonnet` gives them, every import confined to the
//! checkout and charged to the source's budget.

use std::any::Any;
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

use jrsonnet_evaluator::manifest::JsonFormat;
use jrsonnet_evaluator::trace::{CompactFormat, PathResolver, TraceFormat};
use jrsonnet_evaluator::{
    AsPathLike, IStr, ImportResolver, ResolvePath, SourcePath, State, apply_tla, stack, tla::TlaArg,
};
use jrsonnet_gcmodule::{Acyclic, Trace};
use jrsonnet_ir::{SourceFifo, SourceFile};
use serde_json::Value;

use super::budget::{Budget, Expanded};
use super::confine::{normalise, resolve_inside};
use super::yaml::{flatten, type_name};
use super::{JsonnetSpec, RenderError};

/// The evaluator, as `Rendered.tool_version` names it; the exact pin of Cargo.toml.
pub(crate) const TOOL_VERSION: &str = "jrsonnet 0.5.0-pre98";

/// Jsonnet calls nested deeper than this fail the render (jrsonnet grows the native stack on
/// demand, so the limit is what stops runaway recursion). The C++ CLI's default is 500.
const MAX_STACK_DEPTH: usize = 500;

/// Evaluates the `*.jsonnet` files of one source; holds jrsonnet's `State`, which is `!Send`,
/// so it lives and dies on the rendering thread.
pub(crate) struct Evaluator {
    state: State,
    root: PathBuf,
    tlas: HashMap<IStr, TlaArg>,
}

impl Evaluator {
    /// An evaluator for the source at `source_dir` (canonical) of the checkout at `root`
    /// (canonical). Library paths are repository-relative and must stay inside the checkout;
    /// missing ones are ignored, as the jsonnet CLI ignores them.
    pub(crate) fn new(
        root: &Path,
        source_dir: &Path,
        spec: &JsonnetSpec,
    ) -> Result<Evaluator, RenderError> {
        // Argo CD searches the source directory first, then the libraries.
        let mut search = vec![source_dir.to_path_buf()];
        for lib in &spec.libs {
            let normalised = normalise(lib)?;
            match resolve_inside(root, &root.join(&normalised), lib) {
                Ok(dir) => search.push(dir),
                Err(RenderError::NotFound { .. }) => {}
                Err(err) => return Err(err),
            }
        }
        let resolver = ConfinedResolver {
            root: root.to_path_buf(),
            search,
            log: RefCell::new(ImportLog::default()),
        };
        let context =
            jrsonnet_stdlib::ContextInitializer::new(PathResolver::Relative(root.to_path_buf()));
        for var in &spec.ext_vars {
            if var.code {
                context
                    .add_ext_code(&var.name, &var.value)
                    .map_err(|err| invalid_var("extVar", &var.name, &err.to_string()))?;
            } else {
                context.add_ext_str(var.name.as_str().into(), var.value.as_str().into());
            }
        }
        // `IStr` hashes by its interned identity, which never changes; `apply_tla` takes this map.
        #[allow(clippy::mutable_key_type)]
        let tlas = spec
            .tlas
            .iter()
            .map(|var| {
                let value = if var.code {
                    TlaArg::InlineCode(var.value.clone())
                } else {
                    TlaArg::String(var.value.as_str().into())
                };
                (IStr::from(var.name.as_str()), value)
            })
            .collect();
        let mut builder = State::builder();
        builder
            .import_resolver(resolver)
            .context_initializer(context);
        Ok(Evaluator {
            state: builder.build(),
            root: root.to_path_buf(),
            tlas,
        })
    }

    /// Evaluates the file at `real` (canonical, inside the checkout; `shown` is its
    /// repository-relative name) and returns its objects: the output must be an object, a
    /// `List` or an array of objects.
    pub(crate) fn evaluate(
        &self,
        real: &Path,
        shown: &str,
        budget: &mut Budget,
    ) -> Result<Vec<Value>, RenderError> {
        let resolver = self.resolver();
        {
            let mut log = resolver.log.borrow_mut();
            log.failure = None;
            log.bytes = 0;
            log.allowance = budget.remaining_rendered();
            log.max_file_bytes = budget.limits().max_file_bytes;
            log.max_total_bytes = budget.limits().max_total_bytes;
        }
        let output = self.manifest(real, shown);
        let (failure, bytes) = {
            let mut log = resolver.log.borrow_mut();
            (log.failure.take(), log.bytes)
        };
        budget.charge_rendered(shown, bytes)?;
        // An import refused for leaving the checkout or for its size is the real cause; the
        // evaluator's own message about it would only say the import failed.
        if let Some(failure) = failure {
            return Err(failure);
        }
        let json = output?;
        budget.charge_rendered(shown, json.len() as u64)?;
        // Nesting beyond serde_json's limit (128) is an error here, not a stack overflow.
        let value: Value = serde_json::from_str(&json).map_err(|err| RenderError::Jsonnet {
            file: shown.to_string(),
            message: format!("the output cannot be read as JSON: {err}"),
        })?;
        budget.charge_expanded(shown, Expanded::of(&value))?;
        objects_of(shown, value, budget)
    }

    /// Every file the evaluations read (the jsonnet files and their imports), repository-relative.
    pub(crate) fn files_read(&self) -> BTreeSet<String> {
        self.resolver().log.borrow().files.iter().cloned().collect()
    }

    /// Evaluates and manifests one file as compact JSON, under the stack depth limit.
    fn manifest(&self, real: &Path, shown: &str) -> Result<String, RenderError> {
        // jrsonnet reads the entered state from a thread local while applying TLAs and
        // manifesting; without it a default state (no resolver, no extVars) would be used.
        let Some(_entered) = self.state.try_enter() else {
            return Err(RenderError::Jsonnet {
                file: shown.to_string(),
                message: "another Jsonnet evaluation is already running on this thread".into(),
            });
        };
        let _depth = stack::limit_stack_depth(MAX_STACK_DEPTH);
        let file = SourcePath::new(SourceFile::new(real.to_path_buf()));
        let result = self
            .state
            .import_resolved(file)
            .and_then(|value| apply_tla(&self.tlas, value))
            .and_then(|value| {
                jrsonnet_evaluator::manifest::manifest_json_ex(&value, &JsonFormat::minify())
            });
        result.map_err(|err| RenderError::Jsonnet {
            file: shown.to_string(),
            message: self.describe(&err),
        })
    }

    /// The evaluator's message with its stack trace, paths relative to the checkout.
    fn describe(&self, err: &jrsonnet_evaluator::Error) -> String {
        let format = CompactFormat {
            resolver: PathResolver::Relative(self.root.clone()),
            max_trace: 20,
            padding: 4,
        };
        let message = format.format(err).unwrap_or_else(|_| err.to_string());
        // Messages naming a file by its full path (imports not found) would show the worker's
        // private checkout location.
        let mut prefix = self.root.display().to_string();
        prefix.push('/');
        message
            .replace(&prefix, "")
            .replace(&*self.root.to_string_lossy(), ".")
    }

    fn resolver(&self) -> &ConfinedResolver {
        let resolver: &dyn Any = self.state.import_resolver();
        match resolver.downcast_ref::<ConfinedResolver>() {
            Some(resolver) => resolver,
            // `new` is the only constructor and always installs a ConfinedResolver.
            None => unreachable!("the evaluator's resolver is a ConfinedResolver"),
        }
    }
}

/// The objects of a Jsonnet output: an object, a `List`, or an array of objects.
fn objects_of(shown: &str, value: Value, budget: &mut Budget) -> Result<Vec<Value>, RenderError> {
    let mut objects = Vec::new();
    match value {
        Value::Object(_) => flatten(shown, 0, value, 0, &mut objects, budget)?,
        Value::Array(items) => {
            for (index, item) in items.into_iter().enumerate() {
                if !item.is_object() {
                    return Err(RenderError::NotAnObject {
                        file: shown.to_string(),
                        index,
                        message: format!(
                            "the Jsonnet output's array may hold only objects, not {}",
                            type_name(&item)
                        ),
                    });
                }
                flatten(shown, index, item, 0, &mut objects, budget)?;
            }
        }
        other => {
            return Err(RenderError::Jsonnet {
                file: shown.to_string(),
                message: format!(
                    "the output must be an object, a List or an array of objects, not {}",
                    type_name(&other)
                ),
            });
        }
    }
    Ok(objects)
}

fn invalid_var(what: &str, name: &str, message: &str) -> RenderError {
    RenderError::InvalidSpec {
        message: format!("directory.jsonnet {what} {name:?}: {message}"),
    }
}

/// What the resolver saw during one evaluation.
#[derive(Default)]
struct ImportLog {
    /// Repository-relative names of every file loaded.
    files: Vec<String>,
    /// Bytes loaded during the current evaluation.
    bytes: u64,
    /// Bytes the current evaluation may still load (the source's remaining budget).
    allowance: u64,
    /// The largest file that may be loaded.
    max_file_bytes: u64,
    /// The source's total budget, for the message when the allowance runs out.
    max_total_bytes: u64,
    /// Why an import was refused, reported instead of the evaluator's error.
    failure: Option<RenderError>,
}

/// Resolves imports relative to the importing file, then the source directory and the
/// libraries, refusing anything that leaves the checkout (invariant 6).
struct ConfinedResolver {
    root: PathBuf,
    search: Vec<PathBuf>,
    log: RefCell<ImportLog>,
}

// The resolver holds no garbage-collected value, so there is nothing to trace.
impl Trace for ConfinedResolver {}

// SAFETY: `Acyclic` promises the type cannot be part of a reference cycle of jrsonnet's
// collector; the resolver holds only paths and plain data, no `Cc`.
unsafe impl Acyclic for ConfinedResolver {}

impl ConfinedResolver {
    /// Records why an import was refused and turns it into the evaluator's error.
    fn refuse(&self, err: RenderError) -> jrsonnet_evaluator::Error {
        let message = err.to_string();
        self.log.borrow_mut().failure.get_or_insert(err);
        jrsonnet_evaluator::RuntimeError(message.into()).into()
    }

    /// The repository-relative name of a path inside the checkout.
    fn shown(&self, real: &Path) -> String {
        real.strip_prefix(&self.root)
            .unwrap_or(real)
            .to_string_lossy()
            .into_owned()
    }

    /// `import` as written, resolved against `base` (a canonical directory inside the
    /// checkout): `Ok(None)` when there is no such file there.
    fn try_base(&self, base: &Path, import: &str) -> Result<Option<PathBuf>, RenderError> {
        let escapes = || RenderError::PathEscapes {
            path: import.to_string(),
        };
        let relative_base = base.strip_prefix(&self.root).map_err(|_| escapes())?;
        let joined = relative_base.join(import);
        let normalised = normalise(&joined.to_string_lossy()).map_err(|_| escapes())?;
        let candidate = self.root.join(normalised);
        if std::fs::symlink_metadata(&candidate).is_err() {
            return Ok(None);
        }
        match resolve_inside(&self.root, &candidate, import) {
            Ok(real) => Ok(Some(real)),
            Err(RenderError::NotFound { .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }
}

impl ImportResolver for ConfinedResolver {
    fn resolve_from(
        &self,
        from: &SourcePath,
        path: &dyn AsPathLike,
    ) -> jrsonnet_evaluator::Result<SourcePath> {
        let import = match path.as_path() {
            ResolvePath::Str(text) => text.to_string(),
            ResolvePath::Path(path) => path.to_string_lossy().into_owned(),
        };
        if import.starts_with('/') || import.contains('\0') {
            return Err(self.refuse(RenderError::PathEscapes { path: import }));
        }
        // Imports from TLA or extVar code resolve from the checkout root.
        let importing_dir = from
            .downcast_ref::<SourceFile>()
            .and_then(|file| file.path().parent())
            .unwrap_or(&self.root)
            .to_path_buf();
        for base in std::iter::once(&importing_dir).chain(&self.search) {
            match self.try_base(base, &import) {
                Ok(Some(real)) if real.is_dir() => {
                    return Err(jrsonnet_evaluator::RuntimeError(
                        format!("can't import {import}: is a directory").into(),
                    )
                    .into());
                }
                Ok(Some(real)) => return Ok(SourcePath::new(SourceFile::new(real))),
                Ok(None) => {}
                Err(err) => return Err(self.refuse(err)),
            }
        }
        Err(jrsonnet_evaluator::RuntimeError(
            format!(
                "import {import:?} not found next to {} or in the libraries",
                from.path().map_or_else(|| ".".into(), |p| self.shown(p))
            )
            .into(),
        )
        .into())
    }

    fn load_file_contents(&self, resolved: &SourcePath) -> jrsonnet_evaluator::Result<Vec<u8>> {
        // extVar and TLA code arrive in memory, already read.
        if let Some(inline) = resolved.downcast_ref::<SourceFifo>() {
            return Ok(inline.1.to_vec());
        }
        let Some(file) = resolved.downcast_ref::<SourceFile>() else {
            return Err(jrsonnet_evaluator::RuntimeError("not a file".into()).into());
        };
        let real = file.path();
        let shown = self.shown(real);
        let (max_file_bytes, allowance, max_total_bytes) = {
            let log = self.log.borrow();
            (
                log.max_file_bytes,
                log.allowance.saturating_sub(log.bytes),
                log.max_total_bytes,
            )
        };
        let io = |err: std::io::Error| {
            jrsonnet_evaluator::Error::from(jrsonnet_evaluator::ImportIo(format!("{shown}: {err}")))
        };
        let handle = std::fs::File::open(real).map_err(io)?;
        let mut bytes = Vec::new();
        // One byte past the limit, so an oversized file is detected rather than truncated.
        handle
            .take(max_file_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(io)?;
        let size = bytes.len() as u64;
        if size > max_file_bytes {
            return Err(self.refuse(RenderError::TooLarge {
                what: format!("file {shown}"),
                limit: max_file_bytes,
            }));
        }
        if size > allowance {
            return Err(self.refuse(RenderError::TooLarge {
                what: format!("total bytes of rendered manifests (at {shown})"),
                limit: max_total_bytes,
            }));
        }
        let mut log = self.log.borrow_mut();
        log.bytes += size;
        if !log.files.contains(&shown) {
            log.files.push(shown);
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reported_version_is_the_pinned_one() {
        let manifest = include_str!("../../Cargo.toml");
        let version = TOOL_VERSION.trim_start_matches("jrsonnet ");
        assert!(
            manifest.contains(&format!("jrsonnet-evaluator = \"={version}\"")),
            "Cargo.toml does not pin jrsonnet-evaluator {version}"
        );
    }
}
