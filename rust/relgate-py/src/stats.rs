//! Binding of relgate_core::{rank, bootstrap, adjust}: numpy arrays in (zero-copy when
//! contiguous float64), GIL released for the work, numpy arrays out. Argument defaults and
//! dtype conversion live in `relgate.stats`.

use crate::errors::detach;
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;
use relgate_core::bootstrap::{self, BootstrapConfig};
use relgate_core::rank::{self, NanPolicy, Statistic};
use relgate_core::{adjust, CoreError};
use std::borrow::Cow;

type F64s<'py> = PyReadonlyArray1<'py, f64>;
type I64s<'py> = PyReadonlyArray1<'py, i64>;
type Arr<'py, T> = Bound<'py, PyArray1<T>>;

/// The array's memory when it is contiguous, else one copy.
fn view<'a, T: numpy::Element + Copy>(a: &'a PyReadonlyArray1<'_, T>) -> Cow<'a, [T]> {
    match a.as_slice() {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(a.as_array().iter().copied().collect()),
    }
}

fn parse<T: std::str::FromStr<Err = CoreError>>(py: Python<'_>, s: &str) -> PyResult<T> {
    s.parse().map_err(|e| crate::errors::to_pyerr(py, e))
}

#[pyfunction]
fn spearman(py: Python<'_>, x: F64s<'_>, y: F64s<'_>, nan_policy: &str) -> PyResult<f64> {
    let nan: NanPolicy = parse(py, nan_policy)?;
    let (x, y) = (view(&x), view(&y));
    detach(py, || rank::spearman(&x, &y, nan))
}

#[pyfunction]
fn kendall_tau_b(py: Python<'_>, x: F64s<'_>, y: F64s<'_>, nan_policy: &str) -> PyResult<f64> {
    let nan: NanPolicy = parse(py, nan_policy)?;
    let (x, y) = (view(&x), view(&y));
    detach(py, || rank::kendall_tau_b(&x, &y, nan))
}

fn grouped<'py>(
    py: Python<'py>,
    x: F64s<'py>,
    y: F64s<'py>,
    offsets: I64s<'py>,
    nan_policy: &str,
    stat: Statistic,
) -> PyResult<Arr<'py, f64>> {
    let nan: NanPolicy = parse(py, nan_policy)?;
    let (x, y, offsets) = (view(&x), view(&y), view(&offsets));
    let out = detach(py, || {
        rank::correlation_grouped(&x, &y, &offsets, nan, stat)
    })?;
    Ok(out.into_pyarray(py))
}

#[pyfunction]
fn spearman_grouped<'py>(
    py: Python<'py>,
    x: F64s<'py>,
    y: F64s<'py>,
    offsets: I64s<'py>,
    nan_policy: &str,
) -> PyResult<Arr<'py, f64>> {
    grouped(py, x, y, offsets, nan_policy, Statistic::Spearman)
}

#[pyfunction]
fn kendall_tau_b_grouped<'py>(
    py: Python<'py>,
    x: F64s<'py>,
    y: F64s<'py>,
    offsets: I64s<'py>,
    nan_policy: &str,
) -> PyResult<Arr<'py, f64>> {
    grouped(py, x, y, offsets, nan_policy, Statistic::KendallTauB)
}

fn config(
    py: Python<'_>,
    statistic: &str,
    n_resamples: i64,
    confidence: f64,
    method: &str,
    seed: u64,
) -> PyResult<BootstrapConfig> {
    if n_resamples < 1 {
        return Err(crate::errors::to_pyerr(
            py,
            CoreError::invalid(format!("n_resamples must be at least 1, got {n_resamples}")),
        ));
    }
    Ok(BootstrapConfig {
        statistic: parse(py, statistic)?,
        n_resamples: n_resamples as usize,
        confidence,
        method: parse(py, method)?,
        seed,
    })
}

/// Returns (estimate, low, high, p_below, n); `p_below` is empty without `thresholds`.
#[pyfunction]
#[pyo3(signature = (x, y, offsets, clusters, statistic, n_resamples, confidence, method, seed, thresholds=None))]
#[allow(clippy::too_many_arguments)]
#[allow(clippy::type_complexity)]
fn bootstrap_ci_grouped<'py>(
    py: Python<'py>,
    x: F64s<'py>,
    y: F64s<'py>,
    offsets: I64s<'py>,
    clusters: Option<I64s<'py>>,
    statistic: &str,
    n_resamples: i64,
    confidence: f64,
    method: &str,
    seed: u64,
    thresholds: Option<F64s<'py>>,
) -> PyResult<(
    Arr<'py, f64>,
    Arr<'py, f64>,
    Arr<'py, f64>,
    Arr<'py, f64>,
    Arr<'py, i64>,
)> {
    let cfg = config(py, statistic, n_resamples, confidence, method, seed)?;
    let (x, y, offsets) = (view(&x), view(&y), view(&offsets));
    let clusters = clusters.as_ref().map(view);
    let thresholds = thresholds.as_ref().map(view);
    let r = detach(py, || {
        bootstrap::bootstrap_ci_grouped_below(
            &x,
            &y,
            &offsets,
            clusters.as_deref(),
            &cfg,
            thresholds.as_deref(),
        )
    })?;
    Ok((
        r.estimate.into_pyarray(py),
        r.low.into_pyarray(py),
        r.high.into_pyarray(py),
        r.p_below.into_pyarray(py),
        r.n.into_pyarray(py),
    ))
}

/// Returns (estimate, low, high, p_value, p_worse, n).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[allow(clippy::type_complexity)]
fn paired_bootstrap_diff<'py>(
    py: Python<'py>,
    x_new: F64s<'py>,
    x_old: F64s<'py>,
    y: F64s<'py>,
    offsets: I64s<'py>,
    clusters: I64s<'py>,
    statistic: &str,
    n_resamples: i64,
    confidence: f64,
    margin: f64,
    seed: u64,
) -> PyResult<(
    Arr<'py, f64>,
    Arr<'py, f64>,
    Arr<'py, f64>,
    Arr<'py, f64>,
    Arr<'py, f64>,
    Arr<'py, i64>,
)> {
    let cfg = config(py, statistic, n_resamples, confidence, "percentile", seed)?;
    let (x_new, x_old, y) = (view(&x_new), view(&x_old), view(&y));
    let (offsets, clusters) = (view(&offsets), view(&clusters));
    let r = detach(py, || {
        bootstrap::paired_bootstrap_diff(&x_new, &x_old, &y, &offsets, &clusters, &cfg, margin)
    })?;
    Ok((
        r.estimate.into_pyarray(py),
        r.low.into_pyarray(py),
        r.high.into_pyarray(py),
        r.p_value.into_pyarray(py),
        r.p_worse.into_pyarray(py),
        r.n.into_pyarray(py),
    ))
}

#[pyfunction]
fn fisher_z_ci<'py>(
    py: Python<'py>,
    rho: F64s<'py>,
    n: F64s<'py>,
    confidence: f64,
) -> PyResult<(Arr<'py, f64>, Arr<'py, f64>)> {
    let (rho, n) = (view(&rho), view(&n));
    let (lo, hi) = detach(py, || adjust::fisher_z_ci(&rho, &n, confidence))?;
    Ok((lo.into_pyarray(py), hi.into_pyarray(py)))
}

#[pyfunction]
fn holm<'py>(py: Python<'py>, pvalues: F64s<'py>) -> PyResult<Arr<'py, f64>> {
    let p = view(&pvalues);
    Ok(detach(py, || adjust::holm(&p))?.into_pyarray(py))
}

#[pyfunction]
fn benjamini_hochberg<'py>(py: Python<'py>, pvalues: F64s<'py>) -> PyResult<Arr<'py, f64>> {
    let p = view(&pvalues);
    Ok(detach(py, || adjust::benjamini_hochberg(&p))?.into_pyarray(py))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(spearman, m)?)?;
    m.add_function(wrap_pyfunction!(kendall_tau_b, m)?)?;
    m.add_function(wrap_pyfunction!(spearman_grouped, m)?)?;
    m.add_function(wrap_pyfunction!(kendall_tau_b_grouped, m)?)?;
    m.add_function(wrap_pyfunction!(bootstrap_ci_grouped, m)?)?;
    m.add_function(wrap_pyfunction!(paired_bootstrap_diff, m)?)?;
    m.add_function(wrap_pyfunction!(fisher_z_ci, m)?)?;
    m.add_function(wrap_pyfunction!(holm, m)?)?;
    m.add_function(wrap_pyfunction!(benjamini_hochberg, m)?)?;
    Ok(())
}
