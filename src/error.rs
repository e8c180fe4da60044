//! The library's error type.
//!
//! Structured variants so callers (the CLI, tests, a sweep driver) can react to the kind of
//! failure: a spec problem is shown with its file positions, a locked store gets a hint, bad
//! input names its file and line. The binary wraps these with `anyhow` context at its edge.

use std::path::PathBuf;

use crate::spec::SpecIssues;

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The experiment spec failed to parse or validate; each issue carries file:line:col.
    #[error(transparent)]
    Spec(#[from] SpecIssues),

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A required input file is missing; `key` is the spec key that named it.
    #[error("{key}: file not found: {path}")]
    MissingInput { key: String, path: PathBuf },

    /// A malformed record in an input file.
    #[error("{file}:{line}: {reason}")]
    BadInput {
        file: PathBuf,
        line: usize,
        reason: String,
    },

    /// A data filter removed everything; `counts` describes what remained after each step.
    #[error("{step} left no data; counts after each step: {counts}")]
    EmptyAfterFilter { step: String, counts: String },

    /// Another process holds the store's lock.
    #[error(
        "the store at {path} is in use by another recx process; wait for it to finish, \
         or point this command at another store with --store"
    )]
    StoreLocked { path: PathBuf },

    /// The store's database is damaged (or was replaced): it fails when read, or knows less
    /// than the run and stage folders beside it. Nothing was changed.
    #[error(
        "the store database {db} is damaged: {reason}. Nothing was changed. Restore the run and \
         stage records from the artifact folders with `{command}` (the damaged database is kept \
         beside it), then check with `recx store check`"
    )]
    StoreDamaged {
        db: PathBuf,
        reason: String,
        command: String,
    },

    /// The store is unreadable or a record has an unknown schema version.
    #[error("store {path}: {reason}")]
    Store { path: PathBuf, reason: String },

    /// A number that must be finite is NaN or infinite: a diverged training loss, or a
    /// measurement that the store could not read back.
    #[error("{what} is {value}, not a finite number{hint}", hint = non_finite_hint(.what))]
    NonFinite { what: String, value: f64 },

    /// No run, experiment or artifact with that id.
    #[error("{what} not found: {id}")]
    NotFound { what: &'static str, id: String },

    /// A model file (GGUF, safetensors, checkpoint) is malformed or does not fit the model.
    #[error("{path}: {reason}")]
    ModelFile { path: PathBuf, reason: String },

    /// The tokenizer could not be built, trained, or could not encode/decode.
    #[error("tokenizer: {0}")]
    Tokenizer(String),

    /// A configuration that parsed but cannot be executed (e.g. a device that is not compiled in).
    #[error("{0}")]
    Config(String),

    /// A statistical test got input it cannot use (mismatched pairs, too few values).
    #[error("statistics: {0}")]
    Stats(String),

    /// The user interrupted the run (Ctrl-C); finished stages are kept.
    #[error("interrupted")]
    Interrupted,
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub fn bad_input(file: impl Into<PathBuf>, line: usize, reason: impl Into<String>) -> Self {
        Error::BadInput {
            file: file.into(),
            line,
            reason: reason.into(),
        }
    }

    pub fn model_file(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::ModelFile {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

fn non_finite_hint(what: &str) -> &'static str {
    if what.contains("loss") {
        "; training diverged: lower the learning rate (or the gradient-norm clip)"
    } else {
        ""
    }
}

/// Adds the path to an `io::Result`, so every I/O error says which file it was about.
pub trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
