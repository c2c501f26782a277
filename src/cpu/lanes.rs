//! Fixed-width lanes of f64 for the blocked CPU kernels: the lane type, a branch-free exp and ln
//! that vectorise, and the one place that picks the instruction set at run time.
//!
//! The kernels are written as plain loops over `W` lanes and left to the compiler to vectorise.
//! Every product-and-sum is a fused `mul_add` (one rounding, the same in hardware and in software),
//! and no sum is reassociated, so every instruction set gives bitwise the same results.

// Lane loops index by lane on purpose: `for l in 0..W` over several arrays is what vectorises.
#![allow(clippy::needless_range_loop)]

/// Lanes per vector: 8 f64, two AVX2 registers (one AVX-512 register).
pub(crate) const W: usize = 8;

/// `W` lanes, aligned to a cache line so that no vector load straddles two lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(64))]
pub(crate) struct L(pub [f64; W]);

impl L {
    pub const ZERO: L = L([0.0; W]);
}

/// Lane vectors as one flat run of values.
#[inline(always)]
pub(crate) fn flat(v: &[L]) -> &[f64] {
    bytemuck::cast_slice(v)
}

/// Rounds `n` up to a whole number of lanes.
#[inline]
pub(crate) fn round_up(n: usize) -> usize {
    n.div_ceil(W) * W
}

/// 1.5·2⁵²: adding it rounds a double of magnitude below 2⁵¹ to an integer held in the low mantissa bits.
const SHIFT: f64 = 6_755_399_441_055_744.0;
/// ln 2 split so that n·LN2_HI is exact for |n| < 2¹¹ (Cody and Waite).
const LN2_HI: f64 = 6.931_471_803_691_238e-1;
const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
/// Below this exp underflows to a subnormal; such tiny responsibilities are taken as 0.
const EXP_MIN: f64 = -708.0;

/// eˣ to about 1 ulp, branch-free so that a loop over lanes vectorises; 0 below −708 and for −∞.
#[inline(always)]
pub(crate) fn exp(x: f64) -> f64 {
    // x = n·ln 2 + r with |r| <= ln 2 / 2; eʳ by its Taylor series to r¹³ (the next term is < 5e-18).
    let xc = x.clamp(EXP_MIN, 709.0);
    let t = xc.mul_add(std::f64::consts::LOG2_E, SHIFT);
    let n = t - SHIFT;
    let r = (-n).mul_add(LN2_HI, xc);
    let r = (-n).mul_add(LN2_LO, r);
    const C: [f64; 14] = [
        1.0,
        1.0,
        1.0 / 2.0,
        1.0 / 6.0,
        1.0 / 24.0,
        1.0 / 120.0,
        1.0 / 720.0,
        1.0 / 5040.0,
        1.0 / 40320.0,
        1.0 / 362_880.0,
        1.0 / 3_628_800.0,
        1.0 / 39_916_800.0,
        1.0 / 479_001_600.0,
        1.0 / 6_227_020_800.0,
    ];
    let mut p = C[13];
    for &c in C[..13].iter().rev() {
        p = p.mul_add(r, c);
    }
    // 2ⁿ from n's bits in t: n + 1023 lies in [2, 2046], a normal exponent.
    let scale = f64::from_bits(t.to_bits().wrapping_add(1023) << 52);
    // 0 below the range by masking the bits: a select here would be compiled as a branch, and a
    // branch stops the lane loops from vectorising. NaN passes through.
    let keep = u64::from(x < EXP_MIN).wrapping_sub(1);
    f64::from_bits((p * scale).to_bits() & keep)
}

/// ln x for positive normal x to about 2 ulp, branch-free; −∞ for 0. (The E-step only asks for
/// ln of a sum of exponentials whose largest term is 1, so x is 0 or in [1, K].)
#[inline(always)]
pub(crate) fn ln(x: f64) -> f64 {
    const MANTISSA: u64 = (1 << 52) - 1;
    let bits = x.to_bits();
    // x = 2ᵉ·m with m in [√½, √2).
    let m = f64::from_bits((bits & MANTISSA) | 1.0f64.to_bits());
    let big = m > std::f64::consts::SQRT_2;
    let m = if big { 0.5 * m } else { m };
    let e = f64::from_bits((bits >> 52) | (SHIFT.to_bits() & !MANTISSA)) - (4_503_599_627_370_496.0 + 1023.0)
        + if big { 1.0 } else { 0.0 };
    // ln m = 2·atanh(t), t = (m − 1)/(m + 1), |t| < 0.172: the odd series to t¹⁹ (next term < 3e-17 relative).
    let f = m - 1.0;
    let t = f / (2.0 + f);
    let t2 = t * t;
    let mut p: f64 = 1.0 / 19.0;
    for c in [17.0, 15.0, 13.0, 11.0, 9.0, 7.0, 5.0, 3.0] {
        p = p.mul_add(t2, 1.0 / c);
    }
    let two_t = 2.0 * t;
    let ln_m = (two_t * t2).mul_add(p, two_t);
    let y = e.mul_add(LN2_HI, e.mul_add(LN2_LO, ln_m));
    if x > 0.0 { y } else { f64::NEG_INFINITY }
}

/// Whether this CPU runs the AVX2 + FMA builds of the kernels (checked once, then cached by std).
#[inline]
pub(crate) fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Defines `pub(crate) fn $name(args)` that runs `$body` compiled for AVX2 + FMA where the CPU has
/// them, else for the baseline. Each kernel is its own function: inlined into one large function,
/// the compiler stops vectorising some of its loops.
macro_rules! multiversion {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$doc])*
        #[allow(clippy::too_many_arguments)]
        pub(crate) fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn imp($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                    imp($($arg),*)
                }
                if $crate::cpu::lanes::has_avx2() {
                    // SAFETY: the CPU has just been checked to support the features `avx2` enables.
                    return unsafe { avx2($($arg),*) };
                }
            }
            imp($($arg),*)
        }
    };
}
pub(crate) use multiversion;

#[cfg(test)]
mod tests {
    use super::*;

    /// The worst error of `f` against `reference` in ulps of the reference, over `xs`, with where it was.
    fn worst_ulps(xs: impl Iterator<Item = f64>, f: fn(f64) -> f64, reference: fn(f64) -> f64) -> (f64, f64) {
        let mut worst = (0.0, f64::NAN);
        for x in xs {
            let (got, want) = (f(x), reference(x));
            let ulp = f64::EPSILON * want.abs();
            let err = (got - want).abs() / ulp;
            if err > worst.0 || err.is_nan() {
                worst = (err, x);
            }
        }
        worst
    }

    #[test]
    fn exp_is_within_two_ulps_of_std() {
        // libm's exp is within 1 ulp of the true value; ours within 1 more.
        let xs = (0..200_001).map(|i| -700.0 + i as f64 * 0.0035 + 1e-7 * (i % 7) as f64);
        let (err, at) = worst_ulps(xs, exp, f64::exp);
        assert!(err <= 2.0, "exp: {err} ulps at x = {at}");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-709.0), 0.0);
        assert_eq!(exp(f64::NEG_INFINITY), 0.0);
        assert_eq!(exp(-f64::MAX), 0.0);
    }

    #[test]
    fn ln_is_within_two_ulps_of_std() {
        let xs = (0..200_000).map(|i| 1e-300 * 1.0035f64.powi(i));
        let (err, at) = worst_ulps(xs.filter(|x| (*x - 1.0).abs() > 1e-3), ln, f64::ln);
        assert!(err <= 2.0, "ln: {err} ulps at x = {at}");
        // Near 1, ln x is small: compare absolutely, against the ulp of 1.
        for i in 0..20_000 {
            let x = 0.999 + i as f64 * 1e-7;
            assert!((ln(x) - x.ln()).abs() <= f64::EPSILON, "ln({x})");
        }
        assert_eq!(ln(1.0), 0.0);
        assert_eq!(ln(0.0), f64::NEG_INFINITY);
    }
}
