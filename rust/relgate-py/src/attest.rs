//! Binding of relgate_core::{safetensors, merkle, attest}.

use pyo3::prelude::*;

#[path = "merkle.rs"]
mod merkle;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    merkle::register(m)?;
    Ok(())
}
