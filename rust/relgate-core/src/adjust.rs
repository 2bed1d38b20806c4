//! Multiplicity adjustment across slices (Holm, Benjamini-Hochberg) and the closed-form
//! Fisher-z interval for a correlation.
//!
//! NaN p-values are not tests: they stay NaN and do not count toward m.

use crate::bootstrap::normal::ndtri;
use crate::error::{CoreError, Result};

/// Indices of the non-NaN p-values, sorted by p ascending (stable on ties).
fn order(p: &[f64]) -> Result<Vec<usize>> {
    if let Some(bad) = p.iter().find(|v| !v.is_nan() && !(0.0..=1.0).contains(*v)) {
        return Err(CoreError::invalid(format!(
            "p-values must lie in [0, 1] (or be NaN), got {bad}"
        )));
    }
    let mut idx: Vec<usize> = (0..p.len()).filter(|&i| !p[i].is_nan()).collect();
    idx.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    Ok(idx)
}

/// Holm step-down adjusted p-values (family-wise error), in input order.
pub fn holm(p: &[f64]) -> Result<Vec<f64>> {
    let idx = order(p)?;
    let m = idx.len();
    let mut out = vec![f64::NAN; p.len()];
    let mut running = 0.0f64;
    for (rank, &i) in idx.iter().enumerate() {
        let adj = ((m - rank) as f64 * p[i]).min(1.0);
        running = running.max(adj);
        out[i] = running;
    }
    Ok(out)
}

/// Benjamini-Hochberg step-up adjusted p-values (false discovery rate), in input order.
pub fn benjamini_hochberg(p: &[f64]) -> Result<Vec<f64>> {
    let idx = order(p)?;
    let m = idx.len();
    let mut out = vec![f64::NAN; p.len()];
    let mut running = 1.0f64;
    for (rank, &i) in idx.iter().enumerate().rev() {
        let adj = (m as f64 / (rank + 1) as f64 * p[i]).min(1.0);
        running = running.min(adj);
        out[i] = running;
    }
    Ok(out)
}

/// Fisher-z interval for correlations `rho` from `n` pairs each:
/// tanh(atanh(rho) -/+ z_{(1+c)/2} / sqrt(n - 3)). NaN where n <= 3 or rho is NaN.
pub fn fisher_z_ci(rho: &[f64], n: &[f64], confidence: f64) -> Result<(Vec<f64>, Vec<f64>)> {
    if rho.len() != n.len() {
        return Err(CoreError::invalid(format!(
            "length mismatch: rho has {} elements but n has {}",
            rho.len(),
            n.len()
        )));
    }
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(CoreError::invalid(format!(
            "confidence must be in (0, 1), got {confidence}"
        )));
    }
    let z = ndtri(0.5 + confidence / 2.0);
    let (lo, hi) = rho
        .iter()
        .zip(n)
        .map(|(&r, &k)| {
            if r.is_nan() || k.is_nan() || k <= 3.0 || !(-1.0..=1.0).contains(&r) {
                return (f64::NAN, f64::NAN);
            }
            let center = r.atanh();
            let half = z / (k - 3.0).sqrt();
            ((center - half).tanh(), (center + half).tanh())
        })
        .unzip();
    Ok((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holm_and_bh_known_values() {
        let p = [0.01, 0.04, f64::NAN, 0.03, 0.005];
        let h = holm(&p).unwrap();
        let expect_h = [0.03, 0.06, f64::NAN, 0.06, 0.02];
        let b = benjamini_hochberg(&p).unwrap();
        let expect_b = [0.02, 0.04, f64::NAN, 0.04, 0.02];
        for (got, want) in [(h, expect_h), (b, expect_b)] {
            for (g, w) in got.iter().zip(want) {
                assert!(
                    (g.is_nan() && w.is_nan()) || (g - w).abs() < 1e-15,
                    "{g} vs {w}"
                );
            }
        }
        assert!(holm(&[1.5]).is_err());
    }

    #[test]
    fn fisher_interval_contains_rho() {
        let (lo, hi) = fisher_z_ci(&[0.5, f64::NAN, 0.2], &[50.0, 50.0, 3.0], 0.95).unwrap();
        assert!(lo[0] < 0.5 && 0.5 < hi[0]);
        // atanh(0.5) = 0.549306..., half width 1.959964/sqrt(47)
        assert!((lo[0] - 0.257_487_860_768_284).abs() < 1e-12, "{}", lo[0]);
        assert!(lo[1].is_nan() && hi[2].is_nan());
    }
}
