//! Binding of relgate_core::{safetensors, merkle, attest}.

use pyo3::prelude::*;

pub fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
