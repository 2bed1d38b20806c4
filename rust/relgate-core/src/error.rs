//! The one error type of the core. The binding maps each variant to one class of
//! `relgate.errors`; nothing else crosses the boundary.

use std::path::{Path, PathBuf};

/// Everything the core can refuse or fail at.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// A weight file (or index) broke a validation rule. `rule` is a short stable
    /// identifier (e.g. `header-length`, `overlap`) so callers and tests can match on it.
    #[error("{path}: {rule}: {detail}")]
    Integrity {
        path: PathBuf,
        rule: &'static str,
        detail: String,
    },
    /// Bad arguments (mismatched lengths, offsets out of range, unknown policy...).
    #[error("{0}")]
    InvalidInput(String),
    /// The named thing does not exist (a tensor name, a file).
    #[error("{0}")]
    NotFound(String),
    /// An operating-system error while reading a path.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl CoreError {
    pub fn integrity(path: &Path, rule: &'static str, detail: impl Into<String>) -> Self {
        CoreError::Integrity {
            path: path.to_path_buf(),
            rule,
            detail: detail.into(),
        }
    }

    pub fn invalid(msg: impl Into<String>) -> Self {
        CoreError::InvalidInput(msg.into())
    }

    pub fn io(path: &Path, source: std::io::Error) -> Self {
        CoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

pub type Result<T, E = CoreError> = std::result::Result<T, E>;
