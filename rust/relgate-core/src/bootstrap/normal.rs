//! Standard normal CDF and quantile, for BCa intervals and Fisher-z intervals.

// The AS241 coefficients are kept digit for digit as published.
#![allow(clippy::excessive_precision)]

/// Inverse of the standard normal CDF (Wichura 1988, AS241 PPND16; ~1e-16 relative).
/// Returns -inf / +inf at 0 / 1 and NaN outside [0, 1].
pub fn ndtri(p: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        let r = 0.180625 - q * q;
        let num = (((((((2.509_080_928_730_122_7e3 * r + 3.343_057_558_358_813e4) * r
            + 6.726_577_092_700_87e4)
            * r
            + 4.592_195_393_154_987e4)
            * r
            + 1.373_169_376_550_946e4)
            * r
            + 1.971_590_950_306_551_3e3)
            * r
            + 1.331_416_678_917_843_8e2)
            * r
            + 3.387_132_872_796_366_5)
            * q;
        let den = ((((((5.226_495_278_852_545e3 * r + 2.872_908_573_572_194_3e4) * r
            + 3.930_789_580_009_271e4)
            * r
            + 2.121_379_430_158_659_7e4)
            * r
            + 5.394_196_021_424_751e3)
            * r
            + 6.871_870_074_920_579e2)
            * r
            + 4.231_333_070_160_091e1)
            * r
            + 1.0;
        return num / den;
    }
    let r = if q <= 0.0 { p } else { 1.0 - p };
    let r = (-r.ln()).sqrt();
    let (num, den) = if r <= 5.0 {
        let r = r - 1.6;
        (
            ((((((7.745_450_142_783_414e-4 * r + 2.272_384_498_926_918_4e-2) * r
                + 2.417_807_251_774_506e-1)
                * r
                + 1.270_458_252_452_368_4)
                * r
                + 3.647_848_324_763_204_5)
                * r
                + 5.769_497_221_460_691)
                * r
                + 4.630_337_846_156_545)
                * r
                + 1.423_437_110_749_683_5,
            ((((((1.050_750_071_644_416_8e-9 * r + 5.475_938_084_995_345e-4) * r
                + 1.519_866_656_361_645_7e-2)
                * r
                + 1.481_039_764_274_800_8e-1)
                * r
                + 6.897_673_349_851e-1)
                * r
                + 1.676_384_830_183_803_8)
                * r
                + 2.053_191_626_637_758_8)
                * r
                + 1.0,
        )
    } else {
        let r = r - 5.0;
        (
            ((((((2.010_334_399_292_288_1e-7 * r + 2.711_555_568_743_487_6e-5) * r
                + 1.242_660_947_388_078_4e-3)
                * r
                + 2.653_218_952_657_612_4e-2)
                * r
                + 2.965_605_718_285_048_7e-1)
                * r
                + 1.784_826_539_917_291_3)
                * r
                + 5.463_784_911_164_114)
                * r
                + 6.657_904_643_501_103,
            ((((((2.044_263_103_389_939_7e-15 * r + 1.421_511_758_316_446e-7) * r
                + 1.846_318_317_510_054_8e-5)
                * r
                + 7.868_691_311_456_133e-4)
                * r
                + 1.487_536_129_085_061_5e-2)
                * r
                + 1.369_298_809_227_358e-1)
                * r
                + 5.998_322_065_558_88e-1)
                * r
                + 1.0,
        )
    };
    let x = num / den;
    if q < 0.0 {
        -x
    } else {
        x
    }
}

/// Standard normal CDF, Phi(x) = erfc(-x / sqrt 2) / 2.
pub fn ndtr(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x.is_infinite() {
        return if x > 0.0 { 1.0 } else { 0.0 };
    }
    let z = -x * std::f64::consts::FRAC_1_SQRT_2;
    0.5 * erfc(z)
}

/// Complementary error function. A positive-term series for erf near zero (no
/// cancellation) and a continued fraction for the tail; ~1e-15 relative accuracy.
fn erfc(z: f64) -> f64 {
    if z < 0.0 {
        return 2.0 - erfc(-z);
    }
    if z < 2.5 {
        // erf(z) = 2/sqrt(pi) * exp(-z^2) * sum_n 2^n z^(2n+1) / (1*3*...*(2n+1))
        let z2 = z * z;
        let mut term = z;
        let mut sum = z;
        let mut n = 0.0;
        while term > sum * 1e-17 {
            n += 1.0;
            term *= 2.0 * z2 / (2.0 * n + 1.0);
            sum += term;
        }
        let erf = std::f64::consts::FRAC_2_SQRT_PI * (-z2).exp() * sum;
        return 1.0 - erf;
    }
    // erfc(z) = exp(-z^2)/sqrt(pi) * 1/(z + (1/2)/(z + 1/(z + (3/2)/(z + ...)))),
    // evaluated by the modified Lentz method.
    let tiny = 1e-300;
    let mut f = z;
    let mut c = z;
    let mut d = 0.0;
    for i in 1..300 {
        let a = i as f64 * 0.5;
        d = z + a * d;
        d = if d == 0.0 { tiny } else { d };
        c = z + a / c;
        c = if c == 0.0 { tiny } else { c };
        d = 1.0 / d;
        let delta = c * d;
        f *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    (-z * z).exp() / (f * std::f64::consts::PI.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // scipy.special.ndtr / ndtri reference values.
        let cases = [
            (0.0, 0.5),
            (1.0, 0.841_344_746_068_542_9),
            (-1.959_963_984_540_054, 0.025),
            (-3.0, 0.001_349_898_031_630_093_3),
            (-6.0, 9.865_876_450_376_946e-10),
            (2.4, 0.991_802_464_075_403_8),
        ];
        for (x, p) in cases {
            let got = ndtr(x);
            assert!(((got - p) / p).abs() < 1e-13, "ndtr({x}) = {got}, want {p}");
            let back = ndtri(p);
            assert!(
                (back - x).abs() < 1e-12 * (1.0 + x.abs()),
                "ndtri({p}) = {back}"
            );
        }
        assert_eq!((ndtr(f64::NEG_INFINITY), ndtr(f64::INFINITY)), (0.0, 1.0));
        assert_eq!((ndtri(0.0), ndtri(1.0)), (f64::NEG_INFINITY, f64::INFINITY));
        assert!(ndtri(1.5).is_nan() && ndtr(f64::NAN).is_nan());
        // Deep tail: erfc's continued fraction keeps relative accuracy (scipy: 7.62e-24).
        let tail = ndtr(-10.0);
        assert!(
            ((tail - 7.619_853_024_160_47e-24) / tail).abs() < 1e-12,
            "{tail}"
        );
    }
}
