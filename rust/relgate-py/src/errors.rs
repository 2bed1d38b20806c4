//! The one mapping from core errors to `relgate.errors` classes, and the one helper that
//! releases the GIL around core work and converts its error.

use pyo3::prelude::*;
use pyo3::types::PyDict;
use relgate_core::CoreError;

/// Build the Python exception for a core error. Classes live in `relgate.errors` (pure
/// Python), so the hierarchy is defined once and Python code can raise the same classes.
pub fn to_pyerr(py: Python<'_>, err: CoreError) -> PyErr {
    let message = err.to_string();
    let (class, path, rule): (&str, Option<String>, Option<&str>) = match &err {
        CoreError::Integrity { path, rule, .. } => (
            "IntegrityError",
            Some(path.display().to_string()),
            Some(rule),
        ),
        CoreError::Io { path, .. } => (
            "IntegrityError",
            Some(path.display().to_string()),
            Some("io"),
        ),
        CoreError::InvalidInput(_) => ("InvalidInputError", None, None),
        CoreError::NotFound(_) => ("NotFoundError", None, None),
    };
    let build = || -> PyResult<PyErr> {
        let cls = py.import("relgate.errors")?.getattr(class)?;
        let kwargs = PyDict::new(py);
        if let Some(path) = path {
            kwargs.set_item("path", path)?;
        }
        if let Some(rule) = rule {
            kwargs.set_item("rule", rule)?;
        }
        Ok(PyErr::from_value(cls.call((message,), Some(&kwargs))?))
    };
    // If relgate.errors itself cannot be imported, that import error is the better report.
    build().unwrap_or_else(|e| e)
}

/// Run `work` with the GIL released, then map its error. Everything `work` needs must
/// already be taken out of Python objects (it is `Send` and must not touch Python).
pub fn detach<T, F>(py: Python<'_>, work: F) -> PyResult<T>
where
    F: FnOnce() -> Result<T, CoreError> + Send,
    T: Send,
{
    py.detach(work).map_err(|e| to_pyerr(py, e))
}
