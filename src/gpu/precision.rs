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

/// The arithmetic a fit with `precision` starts in (`exact`: its exact kernels').
pub(crate) fn starting_arith(precision: GpuPrecision, exact: Option<Arith>) -> Arith {
    match (precision, exact) {
        (GpuPrecision::Exact, Some(exact)) => exact,
        _ => Arith::Fast,
    }
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
/// per feature): √(d + 2)·u·g with g the larger of the spread of the Cholesky factor's diagonal
/// there, max|U'_ii| / min|U'_ii| (a lower bound on √κ of the precision matrix Λ, since
/// √κ(Λ) = κ(U) >= max|U_ii| / min|U_ii|, and equal to it for diagonal and spherical
/// covariances), and the mean's whitened offset from the frame's centre one feature at a time,
/// max_i |μ_i − shift_i|·|U_ii| (f32 rounds x − μ to u·|μ| per feature, which the factor
/// magnifies). NaN where a diagonal entry or a mean is NaN. The
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
        let mean = (mix.means[c * d + i] - shift[i]) / scale[i];
        // f64::min and max would pass over a NaN, and measure the other features only.
        if g.is_nan() || mean.is_nan() {
            return f64::NAN;
        }
        lo = lo.min(g);
        hi = hi.max(g);
        offset = offset.max(mean.abs() * g);
    }
    let spread = if lo > 0.0 { hi / lo } else { f64::INFINITY };
    ((d + 2) as f64).sqrt() * F32_U * spread.max(offset)
}

/// Every component's guard measure into `out`, ∞ where f64 cannot measure it (NaN): past any
/// limit, and it survives the ranks' max, where a NaN would lose.
pub(crate) fn guard_measures(mix: &Mixture, scale: &[f64], shift: &[f64], out: &mut [f64]) {
    for (c, m) in out.iter_mut().enumerate() {
        let g = guard_measure(mix, c, scale, shift);
        *m = if g.is_nan() { f64::INFINITY } else { g };
    }
}

/// Whether a measure from [`guard_measures`] sends its component to the exact kernels.
pub(crate) fn is_past(measure: f64) -> bool {
    measure > GUARD_LIMIT
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::kinds::CovarianceType::{self, Diag, Full, Spherical, Tied};
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    /// f32's unit roundoff, written out again (the guard's own constant is what is under test).
    fn f32_u() -> f64 {
        2f64.powi(-24)
    }

    /// A mixture of `cov_type` with these means and covariances, factored by the crate's own code.
    fn mixture(cov_type: CovarianceType, k: usize, d: usize, means: Vec<f64>, covariances: Vec<f64>) -> Mixture {
        let mut m = Mixture::zeros(cov_type, k, d);
        m.weights = vec![1.0 / k as f64; k];
        m.means = means;
        m.covariances = covariances;
        m.set_precisions_from_covariances(&mut vec![0.0; d * d]).unwrap();
        m
    }

    /// g of the measure √(d + 2)·u·g.
    fn g_of(mix: &Mixture, c: usize, scale: &[f64], shift: &[f64]) -> f64 {
        guard_measure(mix, c, scale, shift) / (((mix.n_features + 2) as f64).sqrt() * f32_u())
    }

    /// The eigenvalues of the symmetric d × d matrix `a` (row-major), by cyclic Jacobi rotations
    /// in f64 (each zeroes one off-diagonal pair; sweeps until none is left, 60 at most).
    fn jacobi_eigenvalues(a: &[f64], d: usize) -> Vec<f64> {
        let mut a = a.to_vec();
        for _ in 0..60 {
            let off = (0..d).flat_map(|i| (0..d).map(move |j| (i, j))).filter(|(i, j)| i != j);
            if off.map(|(i, j)| a[i * d + j].abs()).sum::<f64>() == 0.0 {
                break;
            }
            for p in 0..d {
                for q in p + 1..d {
                    if a[p * d + q] == 0.0 {
                        continue;
                    }
                    // The rotation by θ with cot 2θ = (a_qq − a_pp)/(2a_pq), t = tan θ the smaller root.
                    let theta = (a[q * d + q] - a[p * d + p]) / (2.0 * a[p * d + q]);
                    let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                    let c = 1.0 / (t * t + 1.0).sqrt();
                    let s = t * c;
                    for k in 0..d {
                        let (kp, kq) = (a[k * d + p], a[k * d + q]);
                        a[k * d + p] = c * kp - s * kq;
                        a[k * d + q] = s * kp + c * kq;
                    }
                    for k in 0..d {
                        let (pk, qk) = (a[p * d + k], a[q * d + k]);
                        a[p * d + k] = c * pk - s * qk;
                        a[q * d + k] = s * pk + c * qk;
                    }
                    // Zero by construction (the rotation's own rounding left out).
                    a[p * d + q] = 0.0;
                    a[q * d + p] = 0.0;
                }
            }
        }
        (0..d).map(|i| a[i * d + i]).collect()
    }

    /// κ of a symmetric positive definite matrix (its precision's κ is the same) from its
    /// eigenvalues.
    fn kappa(a: &[f64], d: usize) -> f64 {
        let e = jacobi_eigenvalues(a, d);
        let (lo, hi) = e
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        hi / lo
    }

    /// Σ' = S⁻¹ Σ S⁻¹, the covariance in the device's frame (x' = (x − shift)/s).
    fn device_covariance(cov: &[f64], scale: &[f64]) -> Vec<f64> {
        let d = scale.len();
        (0..d * d).map(|ij| cov[ij] / (scale[ij / d] * scale[ij % d])).collect()
    }

    /// Q·diag(λ)·Qᵀ with Q orthogonal (Gram–Schmidt of a seeded random matrix).
    fn with_eigenvalues(lambda: &[f64], rng: &mut StdRng) -> Vec<f64> {
        let d = lambda.len();
        let mut q: Vec<Vec<f64>> = Vec::new();
        while q.len() < d {
            let mut v: Vec<f64> = (0..d).map(|_| rng.random::<f64>() - 0.5).collect();
            for _ in 0..2 {
                // Twice, so that the columns are orthogonal to rounding.
                for w in &q {
                    let dot: f64 = v.iter().zip(w).map(|(a, b)| a * b).sum();
                    v.iter_mut().zip(w).for_each(|(a, b)| *a -= dot * b);
                }
            }
            let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
            if norm > 1e-3 {
                q.push(v.iter().map(|a| a / norm).collect());
            }
        }
        let mut out = vec![0.0; d * d];
        for i in 0..d {
            for j in 0..d {
                out[i * d + j] = (0..d).map(|t| q[t][i] * lambda[t] * q[t][j]).sum();
            }
        }
        out
    }

    /// D^½·(I + E)·D^½: E symmetric with entries in ±0.1/(d − 1) off the diagonal, so that
    /// I + E's eigenvalues lie in [0.9, 1.1] (Gershgorin), D spanning `decades` decades.
    fn diagonal_dominant(d: usize, decades: f64, rng: &mut StdRng) -> Vec<f64> {
        let dv: Vec<f64> = (0..d)
            .map(|_| 10f64.powf(decades * (rng.random::<f64>() - 0.5)))
            .collect();
        let e = 0.1 / (d - 1) as f64;
        let mut out = vec![0.0; d * d];
        for i in 0..d {
            out[i * d + i] = dv[i];
            for j in 0..i {
                let c = e * (2.0 * rng.random::<f64>() - 1.0) * (dv[i] * dv[j]).sqrt();
                out[i * d + j] = c;
                out[j * d + i] = c;
            }
        }
        out
    }

    /// Diagonal and spherical covariances: U' is diagonal, so the spread of its diagonal is √κ(Λ')
    /// exactly, κ = max var'/min var' with var'_i = var_i/s_i² the device frame's variances. The
    /// means sit on the frame's shift (no offset). Tolerance 1e-15: the two sides are 8
    /// roundings of 2⁻⁵³ apart at most (1/√v, ·s and a ratio in the guard, √(d + 2)·u and the
    /// division by it; v/s², a ratio and √ here), 9e-16; seen 1.6e-16.
    #[test]
    fn diagonal_spread_is_root_kappa() {
        let mut rng = StdRng::seed_from_u64(25);
        let (k, d) = (3, 5);
        for cov_type in [Diag, Spherical] {
            let per = if cov_type == Diag { d } else { 1 };
            // Variances over 8 decades, scales over 2.
            let covs: Vec<f64> = (0..k * per)
                .map(|_| 10f64.powf(8.0 * rng.random::<f64>() - 4.0))
                .collect();
            let scale: Vec<f64> = (0..d).map(|_| 10f64.powf(2.0 * rng.random::<f64>() - 1.0)).collect();
            let shift: Vec<f64> = (0..d).map(|_| 6.0 * rng.random::<f64>() - 3.0).collect();
            let mix = mixture(cov_type, k, d, shift.repeat(k), covs.clone());
            let mut worst = (0.0f64, 0);
            for c in 0..k {
                let var = |i: usize| covs[c * per + if cov_type == Diag { i } else { 0 }] / (scale[i] * scale[i]);
                let (lo, hi) = (0..d).fold((f64::INFINITY, 0.0f64), |(lo, hi), i| (lo.min(var(i)), hi.max(var(i))));
                let root_kappa = (hi / lo).sqrt();
                let g = g_of(&mix, c, &scale, &shift);
                let err = (g - root_kappa).abs() / root_kappa;
                assert!(
                    err <= 1e-15,
                    "{cov_type:?} component {c}: g {g:e}, √κ {root_kappa:e} ({err:.1e})"
                );
                if err >= worst.0 {
                    worst = (err, c);
                }
            }
            println!(
                "{cov_type:?}: worst relative error {:.1e} (component {})",
                worst.0, worst.1
            );
        }
    }

    /// Full and tied covariances: the spread of U''s diagonal is at most √κ(Λ') = κ(U') (a
    /// triangular matrix's diagonal holds its eigenvalues, which lie between its extreme singular
    /// values), κ taken directly from Σ''s eigenvalues by Jacobi. Seeded random SPD matrices at
    /// d = 2..6 (eigenvalues over 2 decades) and one at d = 5 with κ = 1e10. Slack 4·d·ε·κ: the
    /// smallest eigenvalue errs by a few ε·λ_max, and the factor's diagonal (Cholesky's backward
    /// error) by about d·ε·κ relative.
    ///
    /// Built diagonal-dominant, Σ = D^½·C·D^½ with C's eigenvalues in [0.9, 1.1], the bound is
    /// nearly tight: U_ii² = 1/(D_i·c_i) with c_i C's conditional variance, in [0.9, 1], so
    /// spread ≥ √κ(D)·√0.9, while √κ(Σ) ≤ √(κ(D)·κ(C)) ≤ √κ(D)·√(1.1/0.9): spread ≥ 0.9/√1.1·√κ
    /// (0.858). The frame's scales (random, within a factor 10) keep that form (D' = D/s²).
    #[test]
    fn full_spread_is_a_lower_bound_on_root_kappa() {
        let mut rng = StdRng::seed_from_u64(2025);
        let eps = f64::EPSILON;
        for d in 2..=6 {
            let scale: Vec<f64> = (0..d).map(|_| 10f64.powf(rng.random::<f64>() - 0.5)).collect();
            let shift: Vec<f64> = (0..d).map(|_| 6.0 * rng.random::<f64>() - 3.0).collect();
            let lambda: Vec<f64> = (0..d).map(|_| 10f64.powf(2.0 * rng.random::<f64>() - 1.0)).collect();
            let mut covs = vec![with_eigenvalues(&lambda, &mut rng), diagonal_dominant(d, 6.0, &mut rng)];
            if d == 5 {
                let ill: Vec<f64> = (0..d).map(|i| 10f64.powf(-2.5 * i as f64)).collect();
                covs.push(with_eigenvalues(&ill, &mut rng));
            }
            // The Jacobi routine itself, on the rotated matrix whose eigenvalues are known: to
            // 1e-14·λ_max (45 ε), above the rounding of Q·Λ·Qᵀ's entries (d·ε·λ_max) and the
            // rotations' own (a few ε·λ_max each); seen 1.6e-15 at d = 6.
            let mut got = jacobi_eigenvalues(&covs[0], d);
            let mut want = lambda.clone();
            got.sort_by(f64::total_cmp);
            want.sort_by(f64::total_cmp);
            let err = got.iter().zip(&want).map(|(g, w)| (g - w).abs()).fold(0.0, f64::max) / want[d - 1];
            println!("d = {d}: Jacobi's eigenvalues within {err:.1e}·λ_max");
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g - w).abs() <= 1e-14 * want[d - 1],
                    "d = {d}: Jacobi {got:?}, built {want:?}"
                );
            }
            let k = covs.len();
            let mix = mixture(Full, k, d, shift.repeat(k), covs.concat());
            for (c, cov) in covs.iter().enumerate() {
                let kappa = kappa(&device_covariance(cov, &scale), d);
                let spread = g_of(&mix, c, &scale, &shift);
                let ratio = spread / kappa.sqrt();
                println!("d = {d}, component {c}: κ = {kappa:.3e}, spread/√κ = {ratio:.4}");
                assert!(
                    ratio <= 1.0 + 4.0 * d as f64 * eps * kappa,
                    "d = {d}, component {c}: spread {spread:e} above √κ = {:e}",
                    kappa.sqrt()
                );
                if c == 1 {
                    assert!(
                        ratio >= 0.9 / 1.1f64.sqrt(),
                        "d = {d}, diagonal-dominant: spread/√κ = {ratio}"
                    );
                }
            }
            // Tied: the one factor, whatever the component.
            let tied = mixture(Tied, 2, d, shift.repeat(2), covs[1].clone());
            for c in 0..2 {
                assert_eq!(
                    guard_measure(&tied, c, &scale, &shift),
                    guard_measure(&mix, 1, &scale, &shift),
                    "d = {d}, tied, component {c}"
                );
            }
        }
    }

    /// The offset term, by hand. Diagonal, variances (4, ¼, 1), the mean (1000, −40, 7) from the
    /// frame's shift: |μ_i − shift_i|·|U_ii| = (500, 80, 7), the spread 2/½ = 4, so g = 500; the
    /// frame's scale cancels in the offset ((μ − shift)/s times s·U) while it moves the spread
    /// (scales (10, 0.1, 2): U' = (5, 0.2, 2), spread 25). Full, Σ = ((4, 2), (2, 2)): L = ((2,
    /// 0), (1, 1)), U = L⁻ᵀ = ((½, −½), (0, 1)); the mean (300, −50) from the shift: per feature
    /// (150, 50), so g = 150, where the whole whitened vector Uᵀz = (150, −200) would give 200.
    /// Every value is a dyadic rational and u a power of two, so the measure is √(d + 2)·g
    /// rounded once: exact equality.
    #[test]
    fn offset_by_hand() {
        let shift = [5.0, -5.0, 0.5];
        let mix = mixture(Diag, 1, 3, vec![1005.0, -45.0, 7.5], vec![4.0, 0.25, 1.0]);
        assert_eq!(guard_measure(&mix, 0, &[1.0; 3], &shift), 5f64.sqrt() * f32_u() * 500.0);
        assert_eq!(
            guard_measure(&mix, 0, &[10.0, 0.1, 2.0], &shift),
            5f64.sqrt() * f32_u() * 500.0
        );
        // Near the shift the spread dominates again, and the scales move it: 4, then 25.
        let near = mixture(Diag, 1, 3, shift.to_vec(), vec![4.0, 0.25, 1.0]);
        assert_eq!(guard_measure(&near, 0, &[1.0; 3], &shift), 5f64.sqrt() * f32_u() * 4.0);
        let g = g_of(&near, 0, &[10.0, 0.1, 2.0], &shift);
        assert!((g - 25.0).abs() <= 1e-14 * 25.0, "{g}"); // 0.1 is not dyadic: a few roundings

        let full = mixture(Full, 1, 2, vec![301.0, -48.0], vec![4.0, 2.0, 2.0, 2.0]);
        assert_eq!(full.precision_factor(0), [0.5, -0.5, 0.0, 1.0]);
        let shift = [1.0, 2.0];
        assert_eq!(guard_measure(&full, 0, &[1.0; 2], &shift), 2.0 * f32_u() * 150.0);
        assert_eq!(guard_measure(&full, 0, &[0.5, 4.0], &shift), 2.0 * f32_u() * 150.0);
    }

    /// The frame's scales enter U' = s_i·U_ij: a spherical model, U = 1/σ = ½ for every feature,
    /// has spread 1 in its own frame, and max s / min s = 1.5/0.25 = 6 under scales
    /// (1, 3, ½, 2) (U' = (½, 3/2, ¼, 1)). Exact, as in `offset_by_hand`.
    #[test]
    fn scales_move_the_spread() {
        let shift = [0.0, 1.0, -2.0, 3.0];
        let mix = mixture(Spherical, 2, 4, shift.repeat(2), vec![4.0, 0.25]);
        for c in 0..2 {
            assert_eq!(guard_measure(&mix, c, &[1.0; 4], &shift), 6f64.sqrt() * f32_u());
            assert_eq!(
                guard_measure(&mix, c, &[1.0, 3.0, 0.5, 2.0], &shift),
                6f64.sqrt() * f32_u() * 6.0
            );
        }
    }

    /// The components past GUARD_LIMIT = 1e-5, with their measures (`guard_measures`, `is_past`): at
    /// d = 2, √4·2⁻²⁴·g = 1e-5 at g = 83.9, so offsets 83 (9.9e-6) and 84 (1.0014e-5) fall either
    /// side, and an offset of 2²³·1e-5 gives 1e-5 exactly (scaling by powers of two is exact),
    /// which is not past it; a zero diagonal entry of the factor, both zero (spread ∞, not 0/0)
    /// and an infinite entry are.
    #[test]
    fn the_components_past_the_guard_by_hand() {
        let shift = [0.0, 0.0];
        let at_limit = GUARD_LIMIT * 2f64.powi(23);
        let means = [
            [0.0, 0.0],
            [83.0, 0.0],
            [0.0, -84.0],
            [0.0; 2],
            [0.0; 2],
            [0.0; 2],
            [at_limit, 0.0],
        ];
        let mut mix = mixture(Diag, 7, 2, means.concat(), vec![1.0; 14]);
        mix.precisions_cholesky[6] = 0.0; // component 3
        mix.precisions_cholesky[8..10].fill(0.0); // component 4
        mix.precisions_cholesky[11] = f64::INFINITY; // component 5
        assert_eq!(guard_measure(&mix, 6, &[1.0; 2], &shift), GUARD_LIMIT);
        let past = past(&mix, &shift);
        let limit = |g: f64| 2.0 * f32_u() * g;
        assert!(limit(83.0) < GUARD_LIMIT && limit(84.0) > GUARD_LIMIT);
        let inf = f64::INFINITY;
        assert_eq!(past, [(2, limit(84.0)), (3, inf), (4, inf), (5, inf)]);
    }

    /// The components of `mix` past the guard in the frame centred on `shift` at scale 1.
    fn past(mix: &Mixture, shift: &[f64]) -> Vec<(usize, f64)> {
        let mut measures = vec![0.0; mix.n_components];
        guard_measures(mix, &vec![1.0; shift.len()], shift, &mut measures);
        measures.into_iter().enumerate().filter(|&(_, g)| is_past(g)).collect()
    }

    /// A component whose factor or mean is NaN is past the guard (its measure ∞): f64::min and
    /// f64::max would drop the NaN and measure the other features only (an all-NaN factor would
    /// give spread 0/∞ = 0).
    #[test]
    fn a_nan_model_is_past_the_guard() {
        let shift = [0.0, 0.0];
        let mut mix = mixture(Diag, 3, 2, vec![0.0; 6], vec![1.0; 6]);
        mix.precisions_cholesky[2] = f64::NAN; // component 1: one entry
        mix.means[4] = f64::NAN; // component 2: one feature of its mean
        assert!(guard_measure(&mix, 1, &[1.0; 2], &shift).is_nan());
        let inf = f64::INFINITY;
        assert_eq!(
            past(&mix, &shift),
            [(1, inf), (2, inf)],
            "measures {:?}",
            (0..3)
                .map(|c| guard_measure(&mix, c, &[1.0; 2], &shift))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn names_round_trip() {
        for p in [GpuPrecision::Auto, GpuPrecision::Fast, GpuPrecision::Exact] {
            assert_eq!(p.name().parse::<GpuPrecision>().unwrap(), p);
        }
        assert!("double".parse::<GpuPrecision>().is_err());
    }

    #[test]
    fn display_is_the_name() {
        // Error messages and the CLI print a precision with `{}`: it must read as it parses.
        for p in [GpuPrecision::Auto, GpuPrecision::Fast, GpuPrecision::Exact] {
            assert_eq!(p.to_string(), p.name());
        }
    }

    #[test]
    fn each_arithmetic_has_its_own_pipeline_slot() {
        // `GpuContext` keeps one slot per arithmetic at `index()`: two sharing a slot would run one
        // arithmetic's kernels under the other's name.
        for (i, a) in Arith::ALL.into_iter().enumerate() {
            assert_eq!(a.index(), i, "{}", a.name());
        }
    }

    #[test]
    fn noise_floor_by_hand() {
        assert!((fast_noise_floor(8) - 1e-6).abs() < 1e-20);
        assert!((fast_noise_floor(1024) - 1.026e-4).abs() < 1e-18);
    }
}
