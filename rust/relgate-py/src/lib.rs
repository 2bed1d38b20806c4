//! `relgate._native`: a thin PyO3 layer over relgate-core. One wrapper file per core
//! module; conversion, GIL release and error mapping only.

use pyo3::prelude::*;

mod attest;
mod errors;
mod stats;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    attest::register(m)?;
    stats::register(m)?;
    Ok(())
}
