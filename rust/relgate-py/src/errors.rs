//! The one mapping from core errors to `relgate.errors` classes, and the one helper that
//! releases the GIL around core work and converts its error.

use pyo3::prelude::*;
use pyo3::types::PyDict;
use relgate_core::CoreError;

/// Build the Python exception for a core error. Classes live in `relgate.errors` (pure
/// Python), so the hierarchy is defined once and Python code can raise the same classes.
pub fn to_pyerr(py: Python<'_>, err: CoreError) -> PyErr {
    let message = err.to_string();
    let (class, kwargs): (&str, Vec<(&str, Py<PyAny>)>) = match &err {
        CoreError::Integrity { path, rule, .. } => (
            "IntegrityError",
            vec![
                ("path", path.display().to_string().into_pyobject(py).unwrap().into_any().unbind()),
                ("rule", rule.into_pyobject(py).unwrap().into_any().unbind()),
            ],
        ),
        CoreError::InvalidInput(_) => ("InvalidInputError", vec![]),
        CoreError::NotFound(_) => ("NotFoundError", vec![]),
        CoreError::Io { path, .. } => (
            "IntegrityError",
            vec![
                ("path", path.display().to_string().into_pyobject(py).unwrap().into_any().unbind()),
                ("rule", "io".into_pyobject(py).unwrap().into_any().unbind()),
            ],
        ),
    };
    let build = || -> PyResult<PyErr> {
        let module = py.import("relgate.errors")?;
        let cls = module.getattr(class)?;
        let kw = PyDict::new(py);
        for (k, v) in kwargs {
            kw.set_item(k, v)?;
        }
        let instance = cls.call((message.clone(),), Some(&kw))?;
        Ok(PyErr::from_value(instance))
    };
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
