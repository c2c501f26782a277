//! The GPU's arithmetic, chosen per fit: plain-f32 kernels (fast), two-float ones (exact), or fast
//! with a guard that sends a fit to the exact kernels where f32 would not hold (auto). The guard's
//! measures live here; the escalation itself is the EM driver's (src/em.rs).

use crate::mixture::Mixture;

/// How a GPU fit computes: set with [`crate::GmmParamsBuilder::gpu_precision`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum GpuPrecision {
    /// [`GpuPrecision::Fast`] with a guard: each M-step the host estimates every component's
    /// conditioning from its Cholesky factor in f64, and a component past what f32 resolves runs
    /// the exact kernels from then on while the others stay fast (the whole fit switches where
    /// every component is past it, or where the model is small enough for the fused pass); a fast fit that meets an ill-defined covariance, a
    /// non-finite value or a lower bound that falls by more than fast's noise continues from its
    /// last good iterate in exact arithmetic, and so does a fit whose tol is below fast's noise
    /// once it gets there. Each switch is logged and recorded on the model.
    #[default]
    Auto,
    /// Plain f32 kernels: the E-step's products and the exp and log of the device, the statistics
    /// in plain-fma runs of 32 samples merged into two-float totals. Parameters agree with the f64
    /// CPU path to about 1e-4 and the mean log-likelihood to 1e-5 on well-conditioned data.
    Fast,
    /// Exact kernels: native f64 where the device has `wgpu::Features::SHADER_F64` and a probe
    /// kernel finds its f64 rate above a two-float multiply-add's share of f32 (data-centre GPUs,
    /// lavapipe), with our own f64 exp and log, agreeing with the CPU to 1e-10 on the same f32
    /// data; else two-float kernels: every product error-free, our own exp and log to ~5e-10,
    /// whatever the device's accuracy (about 20× the arithmetic of [`GpuPrecision::Fast`]).
    Exact,
}

impl GpuPrecision {
    /// The name used on the command line, in Python and in the model file.
    pub fn name(self) -> &'static str {
        match self {
            GpuPrecision::Auto => "auto",
            GpuPrecision::Fast => "fast",
            GpuPrecision::Exact => "exact",
        }
    }
}

impl std::fmt::Display for GpuPrecision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for GpuPrecision {
    type Err = crate::kinds::ParseNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(GpuPrecision::Auto),
            "fast" => Ok(GpuPrecision::Fast),
            "exact" => Ok(GpuPrecision::Exact),
            _ => Err(crate::kinds::ParseNameError::new(
                "GPU precision",
                s,
                "auto, fast, exact",
            )),
        }
    }
}

/// The arithmetic a set of kernels is built with: which precision prelude the shaders get
/// (shaders/precision_fast.wgsl or shaders/precision_exact.wgsl).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) enum Arith {
    /// Plain f32.
    Fast,
    /// Two-float.
    #[default]
    TwoFloat,
    /// Native f64 (`wgpu::Features::SHADER_F64`).
    F64,
}

impl Arith {
    /// Every kind of kernels, in the order of `GpuContext`'s pipeline slots.
    pub const ALL: [Arith; 3] = [Arith::Fast, Arith::TwoFloat, Arith::F64];

    pub fn index(self) -> usize {
        match self {
            Arith::Fast => 0,
            Arith::TwoFloat => 1,
            Arith::F64 => 2,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Arith::Fast => "fast",
            Arith::TwoFloat => "exact (two-float)",
            Arith::F64 => "exact (f64)",
        }
    }
}

/// What a GPU fit's arithmetic was: recorded on the model ([`crate::GmmModel::gpu_precision`])
/// and in its JSON file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PrecisionRecord {
    /// What the fit asked for: "auto", "fast" or "exact".
    pub requested: String,
    /// The arithmetic of its last pass: "fast", "exact (two-float)" or "exact (f64)", or, where
    /// Auto ran some components in the exact kernels and the rest fast, "fast + exact (f64)" (or
    /// two-float).
    pub used: String,
    /// Each switch from fast to exact arithmetic, of one component or of the whole fit, with its
    /// reason, in order (Auto only).
    pub switches: Vec<String>,
    /// The components the last pass ran in the exact kernels while the rest ran fast (Auto only;
    /// empty where one arithmetic ran them all).
    #[serde(default)]
    pub exact_components: Vec<usize>,
}

/// f32's unit roundoff, 2⁻²⁴.
const F32_U: f64 = 1.0 / 16_777_216.0;
/// The guard's bound on a component's √(d + 2)·u·g: past it, f32 products and sums of its
/// whitened coordinates lose more than 1e-5 of their value.
pub(crate) const GUARD_LIMIT: f64 = 1e-5;

/// The fast kernels' noise in the mean log-likelihood, per sample, on well-conditioned data: an
/// empirical bound, 1e-7·(d + 2) nats. Each h is an f32 of magnitude ~d/2 (half an ulp, 2⁻²⁵·d/2,
/// per sample), the Mahalanobis sums round at (d + 2)·u relative, and the device's exp and log err
/// by a few ulps; against the f64 CPU from the same start the fast lower bound was seen off by
/// 1.3e-7 at d = 16, 2e-6 at d = 129 and 500, and 2.7e-5 at d = 1,024 (tests/gpu.rs), 4 to 15
/// times below this. A tol below it cannot be met reliably in fast arithmetic, and a lower bound
/// that falls by more than it is not noise.
pub(crate) fn fast_noise_floor(d: usize) -> f64 {
    1e-7 * (d + 2) as f64
}

/// The guard's measure of component `c` of `mix` on the device's frame (x' = (x − shift)/scale
/// per feature): √(d + 2)·u·g with g the larger of √κ (κ the precision
/// matrix's condition number, estimated by the spread of the Cholesky factor's diagonal, a lower
/// bound: √κ(Λ) = κ(U) >= max|U_ii| / min|U_ii|) and the whitened offset of the mean from the
/// frame's centre (f32 rounds x − μ to u·|μ| per feature, which the factor magnifies). The
/// rounding errors of a sum of d + 2 terms grow as √(d + 2) unless they conspire: the worst case,
/// (d + 2)·u·g, would send every fit past d = 166 to the exact kernels even at κ = 1, where the
/// fast ones hold (tests/gpu.rs: within 3e-5 of the CPU at d = 1,024).
pub(crate) fn guard_measure(mix: &Mixture, c: usize, scale: &[f64], shift: &[f64]) -> f64 {
    use crate::kinds::CovarianceType::{Diag, Full, Spherical, Tied};
    let d = mix.n_features;
    let u = mix.precision_factor(c);
    // U on the device: x = shift + s·x' gives U'_ij = s_i·U_ij.
    let diag = |i: usize| -> f64 {
        let v = match mix.cov_type {
            Full | Tied => u[i * d + i],
            Diag => u[i],
            Spherical => u[0],
        };
        (v * scale[i]).abs()
    };
    let (mut lo, mut hi, mut offset) = (f64::INFINITY, 0.0f64, 0.0f64);
    for i in 0..d {
        let g = diag(i);
        lo = lo.min(g);
        hi = hi.max(g);
        let mean = (mix.means[c * d + i] - shift[i]) / scale[i];
        offset = offset.max(mean.abs() * g);
    }
    let spread = if lo > 0.0 { hi / lo } else { f64::INFINITY };
    ((d + 2) as f64).sqrt() * F32_U * spread.max(offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in [GpuPrecision::Auto, GpuPrecision::Fast, GpuPrecision::Exact] {
            assert_eq!(p.name().parse::<GpuPrecision>().unwrap(), p);
        }
        assert!("double".parse::<GpuPrecision>().is_err());
    }

    #[test]
    fn noise_floor_by_hand() {
        assert!((fast_noise_floor(8) - 1e-6).abs() < 1e-20);
        assert!((fast_noise_floor(1024) - 1.026e-4).abs() < 1e-18);
    }
}
