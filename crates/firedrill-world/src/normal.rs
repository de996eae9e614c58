//! The standard normal distribution function from a table built at compile time.
//!
//! The latency histogram needs about eighty normal probabilities per tick, and every call edge one more (the
//! share of calls slower than their timeout). Through `erfc` each cost an exponential; here each is one table
//! row and a cubic: the upper tail `Q(u) = 1 - Φ(u)` on `[0, 8)` in rows of width `h = 1/32`, each the cubic
//! Hermite polynomial through the exact values and slopes at both ends of the row. Its error is at most
//! `h⁴/384 · max|Q⁗| ≈ 1.5e-9` (checked against libm in the tests), fifty times below that of the Abramowitz &
//! Stegun `erfc` it replaces. Beyond the table the tail is below 8e-16 and the answer is 0 or 1.
//!
//! The table is a `static` computed by constant evaluation: it costs nothing at run time and is the same on every
//! machine (constant evaluation is IEEE arithmetic without fused operations).

/// Rows per unit of `u`.
const PER_UNIT: usize = 32;
/// Rows: a power of two, so that masking the row number is the bounds check.
const ROWS: usize = 256;
/// Where the table ends: `(ROWS - 1/2) / PER_UNIT`, just under 8, where `Q ≈ 7.7e-16`.
const END: f64 = (ROWS as f64 - 0.5) / PER_UNIT as f64;
/// Adding 2^52 to a float in `[0, 2^51)` leaves it rounded to an integer, which the low bits then hold.
const ROUND: f64 = 4_503_599_627_370_496.0;

/// Row `i` covers `u` in `[(i - 1/2) h, (i + 1/2) h]` with `h = 1/32`: the coefficients `c` of
/// `Q(i h + s h) ≈ c0 + s (c1 + s (c2 + s c3))` for `s` in `[-1/2, 1/2]`. Centring the rows on the nodes lets the
/// row be found by rounding, which is an addition, where truncating a float to an integer is a saturating
/// conversion of a dozen instructions.
static TAIL: [[f64; 4]; ROWS] = tail_table();

/// `Φ(u) = P(Z <= u)` for a standard normal `Z`, within 2e-9 (absolute) of the exact value, and in the lower tail
/// within 2e-5 of it relatively; 0 or 1 beyond `|u| ≈ 7.98`. Monotone to within that error (callers that need
/// strict monotonicity clamp to the previous value). NaN for NaN.
#[inline]
pub fn std_normal_cdf(u: f64) -> f64 {
    let x = u.abs() * PER_UNIT as f64;
    let q = if x < END * PER_UNIT as f64 {
        let rounded = x + ROUND;
        let c = &TAIL[rounded.to_bits() as usize & (ROWS - 1)];
        let s = x - (rounded - ROUND);
        c[0] + s * (c[1] + s * (c[2] + s * c[3]))
    } else if x.is_nan() {
        return u;
    } else {
        0.0
    };
    if u >= 0.0 { 1.0 - q } else { q }
}

/// The upper tail `Q(x) = 1 - Φ(x)` for `0 <= x < 7` (or NaN, which gives NaN: the masked row number is some
/// row), the value [`std_normal_cdf`] interpolates: for `u` in `[0, 7)` it returns `1 - Q(u)`, for `u` in
/// `(-7, 0)` `Q(-u)`, to the bit. Without the tests for the end of the table and the sign, for callers that know
/// both.
#[inline]
pub fn upper_tail_within_7(x: f64) -> f64 {
    debug_assert!(x.is_nan() || (0.0..7.0).contains(&x));
    let x = x * PER_UNIT as f64;
    let rounded = x + ROUND;
    let c = &TAIL[rounded.to_bits() as usize & (ROWS - 1)];
    let s = x - (rounded - ROUND);
    c[0] + s * (c[1] + s * (c[2] + s * c[3]))
}

/// `1/√(2π)`.
const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// `e^x` for `x` in `[-80, 0]`, to a few ulps, in constant evaluation (`f64::exp` is not `const`): `x = k ln 2 + r`
/// with `|r| <= ln 2 / 2`, a Taylor series for `e^r`, then the power of two from its bits.
const fn exp_const(x: f64) -> f64 {
    const LN2_HI: f64 = 6.931_471_803_691_238e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    let t = x * std::f64::consts::LOG2_E;
    // Rounded to the nearest integer (`as` truncates towards zero).
    let k = if t < 0.0 {
        (t - 0.5) as i64
    } else {
        (t + 0.5) as i64
    };
    let r = (x - k as f64 * LN2_HI) - k as f64 * LN2_LO;
    let mut term = 1.0;
    let mut sum = 1.0;
    let mut n = 1;
    while n <= 20 {
        term = term * r / n as f64;
        sum += term;
        n += 1;
    }
    sum * f64::from_bits(((1023 + k) as u64) << 52)
}

/// The density `φ(u)`.
const fn density(u: f64) -> f64 {
    FRAC_1_SQRT_2PI * exp_const(-0.5 * u * u)
}

/// `∫ φ` over `[a, a + h]` by five-point Gauss–Legendre (exact for polynomials of degree nine; over an interval
/// of 1/32 its error is far below an ulp of the result).
const fn integral(a: f64, h: f64) -> f64 {
    const NODES: [f64; 5] = [
        0.0,
        0.538_469_310_105_683_1,
        -0.538_469_310_105_683_1,
        0.906_179_845_938_664,
        -0.906_179_845_938_664,
    ];
    const WEIGHTS: [f64; 5] = [
        0.568_888_888_888_888_9,
        0.478_628_670_499_366_47,
        0.478_628_670_499_366_47,
        0.236_926_885_056_189_08,
        0.236_926_885_056_189_08,
    ];
    let mid = a + 0.5 * h;
    let mut sum = 0.0;
    let mut k = 0;
    while k < 5 {
        sum += WEIGHTS[k] * density(mid + 0.5 * h * NODES[k]);
        k += 1;
    }
    0.5 * h * sum
}

/// The cubic Hermite interpolant of every row, through `Q` and its slope `Q' = -φ` at both ends, rewritten around
/// the row's centre. `Q` at the ends is the integral of the density from about 12 down (so the far tail keeps its
/// relative precision); what lies beyond, 1.8e-33, is below an ulp of the smallest value used.
const fn tail_table() -> [[f64; 4]; ROWS] {
    const FROM: usize = 12 * PER_UNIT;
    let h = 1.0 / PER_UNIT as f64;
    // `q[j] = Q((j - 1/2) h)`, the left end of row `j`.
    let mut q = [0.0; FROM + 1];
    let mut j = FROM;
    while j > 0 {
        j -= 1;
        q[j] = q[j + 1] + integral((j as f64 - 0.5) * h, h);
    }
    let mut table = [[0.0; 4]; ROWS];
    let mut i = 0;
    while i < ROWS {
        // In `t = s + 1/2`, over [0, 1]: p0 + m0 t + a t² + b t³.
        let (p0, p1) = (q[i], q[i + 1]);
        let m0 = -h * density((i as f64 - 0.5) * h);
        let m1 = -h * density((i as f64 + 0.5) * h);
        let a = 3.0 * (p1 - p0) - 2.0 * m0 - m1;
        let b = 2.0 * (p0 - p1) + m0 + m1;
        // Its Taylor coefficients at t = 1/2.
        table[i] = [
            p0 + 0.5 * m0 + 0.25 * a + 0.125 * b,
            m0 + a + 0.75 * b,
            a + 1.5 * b,
            b,
        ];
        i += 1;
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(u: f64) -> f64 {
        0.5 * libm::erfc(-u / std::f64::consts::SQRT_2)
    }

    #[test]
    fn the_constant_exponential_is_the_exponential() {
        let mut x = -80.0;
        while x <= 0.0 {
            let (got, want) = (exp_const(x), x.exp());
            assert!(
                (got - want).abs() <= 4.0 * f64::EPSILON * want,
                "x = {x}: {got} vs {want}"
            );
            x += 0.001_3;
        }
    }

    #[test]
    fn the_lower_tail_keeps_its_relative_precision() {
        let mut u = -END + 1e-9;
        while u <= -1.0 {
            let (got, want) = (std_normal_cdf(u), exact(u));
            assert!(
                (got - want).abs() <= 2e-5 * want,
                "u = {u}: {got} vs {want}"
            );
            u += 0.000_71;
        }
    }

    #[test]
    fn within_two_billionths_of_the_exact_function_everywhere() {
        let mut worst = 0.0f64;
        let mut u = -9.0;
        while u <= 9.0 {
            let err = (std_normal_cdf(u) - exact(u)).abs();
            assert!(err < 2e-9, "u = {u}: {} vs {}", std_normal_cdf(u), exact(u));
            worst = worst.max(err);
            u += 0.000_37;
        }
        // The bound is not loose by orders of magnitude: the interpolation error is really of this size.
        assert!(worst > 1e-10, "worst {worst}");
    }

    #[test]
    fn the_upper_tail_within_7_is_the_function_to_the_bit() {
        let mut u = 0.0f64;
        while u < 7.0 {
            for v in [u, f64::from_bits(u.to_bits() + 1)] {
                let q = upper_tail_within_7(v);
                assert_eq!((1.0 - q).to_bits(), std_normal_cdf(v).to_bits(), "u = {v}");
                assert_eq!(q.to_bits(), std_normal_cdf(-v).to_bits(), "u = -{v}");
            }
            u += 0.000_13;
        }
        assert!(upper_tail_within_7(f64::NAN).is_nan());
    }

    #[test]
    fn monotone_and_exact_at_the_ends() {
        let mut last = 0.0;
        let mut u = -9.0;
        while u <= 9.0 {
            let p = std_normal_cdf(u);
            assert!(p >= last - 1e-15, "u = {u}");
            assert!((0.0..=1.0).contains(&p));
            last = p;
            u += 0.001;
        }
        assert!((std_normal_cdf(0.0) - 0.5).abs() < 1e-15);
        assert_eq!(std_normal_cdf(8.0), 1.0);
        assert_eq!(std_normal_cdf(-8.5), 0.0);
        assert_eq!(std_normal_cdf(1e300), 1.0);
        assert_eq!(std_normal_cdf(f64::INFINITY), 1.0);
        assert_eq!(std_normal_cdf(f64::NEG_INFINITY), 0.0);
        assert!(std_normal_cdf(f64::NAN).is_nan());
    }
}
