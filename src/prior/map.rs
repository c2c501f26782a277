//! MAP estimation with mclust's conjugate prior (Fraley & Raftery 2007, as mclust 6.0's
//! `priorControl()` / `defaultPrior`; ../shared/design/bayesian.md §1): the prior's
//! hyperparameters, their data-dependent defaults, and the MAP M-step from the same sufficient
//! statistics as maximum likelihood's.

use crate::kinds::CovarianceType;
use crate::linalg::packed_index;
use crate::mixture::Mixture;
use crate::mstep::{NK_EPS, divide_upper, set_symmetric};
use crate::stats::SuffStats;

/// A conjugate prior resolved for one fit: shrinkage κ, mean μ_P, degrees of freedom ν and scale
/// (Λ, d × d row-major, for full and tied; the scalar ς for diag and spherical), and the optional
/// Dirichlet concentration α of the weights.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct MapPrior {
    pub shrinkage: f64,
    pub mean: Vec<f64>,
    pub dof: f64,
    pub scale: Vec<f64>,
    pub weights: Option<f64>,
}

impl MapPrior {
    /// mclust's `defaultPrior(data, G, model)` from the data's column means and covariance (d × d,
    /// row-major, with the n − 1 denominator) over `n` samples: κ = 0.01, μ_P = the means,
    /// ν = d + 2, and the scale var/G^(2/d) (full and tied: the covariance, its diagonal alone if
    /// n <= d; diag and spherical: the mean column variance).
    pub fn default_of(mean: &[f64], covariance: &[f64], n: usize, k: usize, kind: CovarianceType) -> Self {
        let d = mean.len();
        let shrink = (k as f64).powf(2.0 / d as f64);
        let scale = match kind {
            CovarianceType::Full | CovarianceType::Tied => (0..d * d)
                .map(|ij| {
                    let (i, j) = (ij / d, ij % d);
                    if n <= d && i != j { 0.0 } else { covariance[ij] / shrink }
                })
                .collect(),
            CovarianceType::Diag | CovarianceType::Spherical => {
                vec![(0..d).map(|i| covariance[i * d + i]).sum::<f64>() / d as f64 / shrink]
            }
        };
        Self {
            shrinkage: 0.01,
            mean: mean.to_vec(),
            dof: d as f64 + 2.0,
            scale,
            weights: None,
        }
    }
}

/// The MAP M-step's weights, means and covariances from statistics accumulated around `centres`,
/// without factoring the covariances (design note §1): with n_k = S0_k + 10·eps, x̄_k = c_k + S1_k/n_k,
/// W_k the scatter around x̄_k, b_k = x̄_k − μ_P (centred: (c_k − μ_P) + S1_k/n_k) and
/// c_k = κ n_k / (κ + n_k),
/// - π_k = n_k / n, or (n_k + α − 1)/(n + K(α − 1)) with a Dirichlet prior;
/// - μ_k = (n_k x̄_k + κ μ_P) / (n_k + κ);
/// - full Σ_k = (Λ + W_k + c_k b_k b_kᵀ) / (ν + n_k + d + 2); tied Σ = (Λ + Σ_k [W_k + c_k b_k b_kᵀ])
///   / (ν + n + K + d + 1); diag σ²_kj = (ς + W_kjj + c_k b_kj²) / (ν + n_k + 3); spherical
///   σ²_k = (ς + tr W_k + c_k ‖b_k‖²) / (ν + (n_k + 1) d + 2);
/// - plus `reg_covar` on the diagonal (0 by default with a prior, which is the regularisation).
pub(crate) fn map_moments(stats: &SuffStats, centres: &[f64], prior: &MapPrior, reg_covar: f64, mix: &mut Mixture) {
    let (k_n, d) = (mix.n_components, mix.n_features);
    debug_assert!(stats.has_shape(mix.cov_type, k_n, d));
    // n_k on the fly: the M-step allocates nothing.
    let n: f64 = stats.s0.iter().map(|s| s + NK_EPS).sum();
    let kappa = prior.shrinkage;
    for (k, nk) in stats.s0.iter().map(|s| s + NK_EPS).enumerate() {
        mix.weights[k] = match prior.weights {
            Some(alpha) => (nk + alpha - 1.0) / (n + k_n as f64 * (alpha - 1.0)),
            None => nk / n,
        };
    }
    let s2_len = SuffStats::s2_len(mix.cov_type, d);
    if mix.cov_type == CovarianceType::Tied {
        mix.covariances.copy_from_slice(&prior.scale);
    }
    for (k, nk) in stats.s0.iter().map(|s| s + NK_EPS).enumerate() {
        let s0 = stats.s0[k];
        let s1 = &stats.s1[k * d..(k + 1) * d];
        let s2 = &stats.s2[k * s2_len..(k + 1) * s2_len];
        let centre = &centres[k * d..(k + 1) * d];
        let delta = |i: usize| s1[i] / nk;
        // b_k = x̄_k − μ_P, from the centre's offset (small where the centre is near the data).
        let b = |i: usize| (centre[i] - prior.mean[i]) + delta(i);
        for (i, mean) in mix.means[k * d..(k + 1) * d].iter_mut().enumerate() {
            // (n_k x̄_k + κ μ_P)/(n_k + κ) = x̄_k − κ b_k/(n_k + κ).
            *mean = centre[i] + delta(i) - kappa * b(i) / (nk + kappa);
        }
        let c = kappa * nk / (kappa + nk);
        // W_k + c_k b bᵀ at (i, j), from the scatter around x̄_k (as the ML M-step forms it).
        let term = |i: usize, j: usize, s2ij: f64| {
            let (di, dj) = (delta(i), delta(j));
            s2ij - di * s1[j] - s1[i] * dj + s0 * di * dj + c * b(i) * b(j)
        };
        match mix.cov_type {
            CovarianceType::Full => {
                let denom = prior.dof + nk + d as f64 + 2.0;
                let cov = &mut mix.covariances[k * d * d..(k + 1) * d * d];
                set_symmetric(cov, d, reg_covar, |i, j| {
                    (prior.scale[i * d + j] + term(i, j, s2[packed_index(i, j, d)])) / denom
                });
            }
            CovarianceType::Tied => {
                for i in 0..d {
                    for j in i..d {
                        mix.covariances[i * d + j] += term(i, j, s2[packed_index(i, j, d)]);
                    }
                }
            }
            CovarianceType::Diag => {
                let denom = prior.dof + nk + 3.0;
                for (i, (cov, &s2i)) in mix.covariances[k * d..(k + 1) * d].iter_mut().zip(s2).enumerate() {
                    *cov = (prior.scale[0] + term(i, i, s2i)) / denom + reg_covar;
                }
            }
            CovarianceType::Spherical => {
                let denom = prior.dof + (nk + 1.0) * d as f64 + 2.0;
                let trace = (0..d).fold(s2[0], |t, i| t + term(i, i, 0.0));
                mix.covariances[k] = (prior.scale[0] + trace) / denom + reg_covar;
            }
        }
    }
    if mix.cov_type == CovarianceType::Tied {
        divide_upper(
            &mut mix.covariances,
            d,
            prior.dof + n + k_n as f64 + d as f64 + 1.0,
            reg_covar,
        );
    }
}

/// ln Γ(x) for x > 0: Lanczos' approximation (g = 7, 9 terms), about 1e-15 relative, with the
/// reflection-free recurrence below 0.5.
pub(crate) fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Γ(x) = Γ(x + 1)/x.
        return ln_gamma(x + 1.0) - x.ln();
    }
    let x = x - 1.0;
    let t = x + G + 0.5;
    let sum = C[1..]
        .iter()
        .enumerate()
        .fold(C[0], |s, (i, c)| s + c / (x + i as f64 + 1.0));
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

impl MapPrior {
    /// ln p(θ): the prior's log density at `mix` (whose precision factors must be current), the
    /// term MAP-EM adds to the log-likelihood so that the bound it climbs (the log-posterior, up to
    /// the evidence) is monotone. Per component (tied: the scale's term once):
    /// - full and tied: ln N(μ_k | μ_P, Σ/κ) + ln IW(Σ | ν, Λ), with
    ///   ln IW = (ν/2) ln|Λ| − (νd/2) ln 2 − ln Γ_d(ν/2) − ((ν + d + 1)/2) ln|Σ| − ½ tr(Λ Σ⁻¹);
    /// - diag: per feature ln N(μ_kj | μ_Pj, σ²_kj/κ) + ln InvGamma(σ²_kj | ν/2, ς/2);
    /// - spherical: Σ_j ln N(μ_kj | μ_Pj, σ²_k/κ) + ln InvGamma(σ²_k | ν/2, ς/2),
    ///
    /// with ln InvGamma(x | a, b) = a ln b − ln Γ(a) − (a + 1) ln x − b/x; and with a Dirichlet prior
    /// on the weights, ln Dir(π | α) = ln Γ(Kα) − K ln Γ(α) + (α − 1) Σ ln π_k.
    /// `scratch` holds d × d values (the scale's Cholesky factor).
    pub fn log_density(&self, mix: &Mixture, scratch: &mut [f64]) -> f64 {
        let (k_n, d) = (mix.n_components, mix.n_features);
        let df = d as f64;
        let (kappa, nu) = (self.shrinkage, self.dof);
        let ln_2pi = (2.0 * std::f64::consts::PI).ln();
        let inv_gamma = |x: f64, a: f64, b: f64| a * b.ln() - ln_gamma(a) - (a + 1.0) * x.ln() - b / x;
        let mut total = 0.0;
        match mix.cov_type {
            CovarianceType::Full | CovarianceType::Tied => {
                // ln|Λ| from its Cholesky factor (the scale is positive definite once checked).
                let l = &mut scratch[..d * d];
                crate::linalg::cholesky_lower(&self.scale, d, l);
                let ln_det_scale: f64 = (0..d).map(|i| 2.0 * l[i * d + i].ln()).sum();
                let ln_multigamma: f64 = df * (df - 1.0) / 4.0 * std::f64::consts::PI.ln()
                    + (0..d).map(|j| ln_gamma(nu / 2.0 - j as f64 / 2.0)).sum::<f64>();
                let n_scales = if mix.cov_type == CovarianceType::Tied { 1 } else { k_n };
                for k in 0..k_n {
                    // Σ⁻¹ = U Uᵀ, so ln|Σ| = −2 Σ ln U_ii and xᵀΣ⁻¹x = ‖Uᵀx‖².
                    let u = mix.precision_factor(k);
                    let ln_det: f64 = -(0..d).map(|i| 2.0 * u[i * d + i].ln()).sum::<f64>();
                    let m = &mix.means[k * d..(k + 1) * d];
                    let maha: f64 = (0..d)
                        .map(|j| {
                            (0..=j)
                                .map(|i| u[i * d + j] * (m[i] - self.mean[i]))
                                .sum::<f64>()
                                .powi(2)
                        })
                        .sum();
                    total += -0.5 * df * ln_2pi + 0.5 * df * kappa.ln() - 0.5 * ln_det - 0.5 * kappa * maha;
                    if k < n_scales {
                        // tr(Λ U Uᵀ) = Σ_ij Λ_ij (U Uᵀ)_ji.
                        let trace: f64 = (0..d)
                            .flat_map(|i| (0..d).map(move |j| (i, j)))
                            .map(|(i, j)| {
                                self.scale[i * d + j] * (0..d).map(|p| u[j * d + p] * u[i * d + p]).sum::<f64>()
                            })
                            .sum();
                        total += 0.5 * nu * ln_det_scale
                            - 0.5 * nu * df * 2f64.ln()
                            - ln_multigamma
                            - 0.5 * (nu + df + 1.0) * ln_det
                            - 0.5 * trace;
                    }
                }
            }
            CovarianceType::Diag | CovarianceType::Spherical => {
                let (a, b) = (nu / 2.0, self.scale[0] / 2.0);
                for k in 0..k_n {
                    for j in 0..d {
                        let var = if mix.cov_type == CovarianceType::Diag {
                            mix.covariances[k * d + j]
                        } else {
                            mix.covariances[k]
                        };
                        let z = mix.means[k * d + j] - self.mean[j];
                        total += -0.5 * ln_2pi + 0.5 * (kappa / var).ln() - 0.5 * kappa * z * z / var;
                        if mix.cov_type == CovarianceType::Diag {
                            total += inv_gamma(var, a, b);
                        }
                    }
                    if mix.cov_type == CovarianceType::Spherical {
                        total += inv_gamma(mix.covariances[k], a, b);
                    }
                }
            }
        }
        if let Some(alpha) = self.weights {
            let kf = k_n as f64;
            total += ln_gamma(kf * alpha) - kf * ln_gamma(alpha)
                + (alpha - 1.0) * mix.weights.iter().map(|w| w.ln()).sum::<f64>();
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Six points in 2-D, hard-assigned to two components (three each), with a prior chosen by hand.
    const X: [[f64; 2]; 6] = [
        [0.0, 1.0],
        [1.0, 3.0],
        [2.0, 2.0],
        [10.0, 0.0],
        [12.0, 1.0],
        [11.0, 5.0],
    ];

    fn prior(kind: CovarianceType) -> MapPrior {
        let scale = match kind {
            CovarianceType::Full | CovarianceType::Tied => vec![2.0, 0.5, 0.5, 3.0],
            _ => vec![1.5],
        };
        MapPrior {
            shrinkage: 0.5,
            mean: vec![4.0, 1.0],
            dof: 4.0,
            scale,
            weights: None,
        }
    }

    /// The statistics of X under the hard assignment, around centres (1, 1) and (10, 2).
    fn stats(kind: CovarianceType) -> (SuffStats, Vec<f64>) {
        let centres = vec![1.0, 1.0, 10.0, 2.0];
        let mut s = SuffStats::new(kind, 2, 2);
        let s2_len = SuffStats::s2_len(kind, 2);
        for (i, x) in X.iter().enumerate() {
            let k = i / 3;
            let z = [x[0] - centres[2 * k], x[1] - centres[2 * k + 1]];
            s.s0[k] += 1.0;
            s.s1[2 * k] += z[0];
            s.s1[2 * k + 1] += z[1];
            let s2 = &mut s.s2[k * s2_len..(k + 1) * s2_len];
            match kind {
                CovarianceType::Full | CovarianceType::Tied => {
                    s2[0] += z[0] * z[0];
                    s2[1] += z[0] * z[1];
                    s2[2] += z[1] * z[1];
                }
                CovarianceType::Diag => {
                    s2[0] += z[0] * z[0];
                    s2[1] += z[1] * z[1];
                }
                CovarianceType::Spherical => s2[0] += z[0] * z[0] + z[1] * z[1],
            }
        }
        (s, centres)
    }

    fn close(got: f64, want: f64, what: &str) {
        // The same few operations in another order: a few ulps.
        assert!(
            (got - want).abs() <= 1e-13 * want.abs().max(1.0),
            "{what}: {got} vs {want}"
        );
    }

    /// By hand: component 0 has x̄ = (1, 2), W = [[2, 1], [1, 2]]; component 1 x̄ = (11, 2),
    /// W = [[2, 1], [1, 14]]; b = x̄ − μ_P = (−3, 1) and (7, 1); c = 0.5·3/3.5 = 3/7.
    #[test]
    fn one_map_m_step_by_hand() {
        let c = 3.0 / 7.0;
        let mu = [
            [1.0 - 0.5 * -3.0 / 3.5, 2.0 - 0.5 / 3.5],
            [11.0 - 0.5 * 7.0 / 3.5, 2.0 - 0.5 / 3.5],
        ];
        let w = [[2.0, 1.0, 1.0, 2.0], [2.0, 1.0, 1.0, 14.0]];
        let b = [[-3.0, 1.0], [7.0, 1.0]];
        let lam = [2.0, 0.5, 0.5, 3.0];
        for kind in CovarianceType::ALL {
            let (s, centres) = stats(kind);
            let mut mix = Mixture::zeros(kind, 2, 2);
            map_moments(&s, &centres, &prior(kind), 0.0, &mut mix);
            for (k, mu_k) in mu.iter().enumerate() {
                close(mix.weights[k], 0.5, "weight");
                for (i, &m) in mu_k.iter().enumerate() {
                    close(mix.means[2 * k + i], m, &format!("{kind} mean {k},{i}"));
                }
            }
            let want: Vec<f64> = match kind {
                // ν + n_k + d + 2 = 4 + 3 + 2 + 2 = 11.
                CovarianceType::Full => (0..2)
                    .flat_map(|k| (0..4).map(move |ij| (lam[ij] + w[k][ij] + c * b[k][ij / 2] * b[k][ij % 2]) / 11.0))
                    .collect(),
                // ν + n + K + d + 1 = 4 + 6 + 2 + 2 + 1 = 15.
                CovarianceType::Tied => (0..4)
                    .map(|ij| {
                        (lam[ij] + (0..2).map(|k| w[k][ij] + c * b[k][ij / 2] * b[k][ij % 2]).sum::<f64>()) / 15.0
                    })
                    .collect(),
                // ν + n_k + 3 = 10.
                CovarianceType::Diag => (0..2)
                    .flat_map(|k| (0..2).map(move |i| (1.5 + w[k][3 * i] + c * b[k][i] * b[k][i]) / 10.0))
                    .collect(),
                // ν + (n_k + 1)·d + 2 = 4 + 8 + 2 = 14.
                CovarianceType::Spherical => (0..2)
                    .map(|k| (1.5 + w[k][0] + w[k][3] + c * (b[k][0] * b[k][0] + b[k][1] * b[k][1])) / 14.0)
                    .collect(),
            };
            for (i, (&g, &e)) in mix.covariances.iter().zip(&want).enumerate() {
                close(g, e, &format!("{kind} covariance [{i}]"));
            }
        }
    }

    /// The Dirichlet prior on the weights: π_k = (n_k + α − 1)/(n + K(α − 1)); here n_k = 2 and 4
    /// with α = 4: (2 + 3)/(6 + 6) and (4 + 3)/12.
    #[test]
    fn a_dirichlet_prior_pulls_the_weights_together() {
        let (mut s, centres) = stats(CovarianceType::Diag);
        s.s0 = vec![2.0, 4.0];
        let p = MapPrior {
            weights: Some(4.0),
            ..prior(CovarianceType::Diag)
        };
        let mut mix = Mixture::zeros(CovarianceType::Diag, 2, 2);
        map_moments(&s, &centres, &p, 0.0, &mut mix);
        close(mix.weights[0], 5.0 / 12.0, "π_0");
        close(mix.weights[1], 7.0 / 12.0, "π_1");
    }

    /// mclust's defaults: κ 0.01, the column means, ν = d + 2, and var/G^(2/d) (n − 1 denominator),
    /// the diagonal alone where n <= d; for diag and spherical the mean column variance.
    #[test]
    fn the_default_prior_is_mclusts() {
        let (mean, cov) = ([1.0, 2.0], [4.0, 1.0, 1.0, 9.0]);
        let full = MapPrior::default_of(&mean, &cov, 100, 4, CovarianceType::Full);
        assert_eq!((full.shrinkage, full.dof, full.weights), (0.01, 4.0, None));
        assert_eq!(full.mean, mean);
        // G^(2/d) = 4 at d = 2.
        assert_eq!(full.scale, [1.0, 0.25, 0.25, 2.25]);
        // d = 3, G = 8: G^(2/3) = 4 (powf's, to an ulp); every entry of the 3 × 3 covariance scaled.
        let cov3: Vec<f64> = (0..9).map(|v| v as f64 * 4.0).collect();
        let three = MapPrior::default_of(&[0.0; 3], &cov3, 10, 8, CovarianceType::Full);
        for (ij, &v) in three.scale.iter().enumerate() {
            close(v, ij as f64, &format!("scale [{ij}]"));
        }
        assert_eq!(three.dof, 5.0);
        let few = MapPrior::default_of(&mean, &cov, 2, 4, CovarianceType::Tied);
        assert_eq!(few.scale, [1.0, 0.0, 0.0, 2.25]);
        let diag = MapPrior::default_of(&mean, &cov, 100, 4, CovarianceType::Diag);
        assert_eq!(diag.scale, [6.5 / 4.0]);
        // d = 1: ν = 3, ς = var / G².
        let one = MapPrior::default_of(&[0.0], &[8.0], 50, 2, CovarianceType::Spherical);
        assert_eq!((one.dof, one.scale.as_slice()), (3.0, [2.0].as_slice()));
    }

    #[test]
    fn ln_gamma_at_known_points() {
        // Γ(1/2) = √π, Γ(5) = 24, Γ(1) = Γ(2) = 1, Γ(0.1) = 9.513507698668732.
        for (x, want) in [
            (0.5, 0.5 * std::f64::consts::PI.ln()),
            (5.0, 24f64.ln()),
            (1.0, 0.0),
            (2.0, 0.0),
            (0.1, 9.513_507_698_668_732_f64.ln()),
            (30.5, 72.953_471_184_169_4),
        ] {
            assert!(
                (ln_gamma(x) - want).abs() <= 1e-13 * want.abs().max(1.0),
                "ln Γ({x}) = {} vs {want}",
                ln_gamma(x)
            );
        }
    }

    /// The objective MAP-EM's M-step maximises for fixed responsibilities: Σ_i Σ_k r_ik [ln π_k +
    /// ln N(x_i | μ_k, Σ_k)] + ln p(θ), evaluated directly from X.
    fn objective(mix: &Mixture, prior: &MapPrior) -> f64 {
        let mut q = 0.0;
        for (i, x) in X.iter().enumerate() {
            let k = i / 3;
            let cov = mix.dense_covariance(k);
            let det = cov[0] * cov[3] - cov[1] * cov[2];
            let z = [x[0] - mix.means[2 * k], x[1] - mix.means[2 * k + 1]];
            let maha = (cov[3] * z[0] * z[0] - 2.0 * cov[1] * z[0] * z[1] + cov[0] * z[1] * z[1]) / det;
            q += mix.weights[k].ln() - (2.0 * std::f64::consts::PI).ln() - 0.5 * det.ln() - 0.5 * maha;
        }
        q + prior.log_density(mix, &mut vec![0.0; mix.n_features * mix.n_features])
    }

    /// The MAP M-step maximises the objective, which checks the step and the density against each
    /// other: every small move of a mean or a covariance entry (kept symmetric and positive
    /// definite) lowers it, and the density's gradient there is what the step's formulas solve.
    #[test]
    fn the_map_step_maximises_the_log_posterior_objective() {
        for kind in CovarianceType::ALL {
            let (s, centres) = stats(kind);
            let p = MapPrior {
                weights: Some(2.0),
                ..prior(kind)
            };
            let mut mix = Mixture::zeros(kind, 2, 2);
            map_moments(&s, &centres, &p, 0.0, &mut mix);
            mix.set_precisions_from_covariances(&mut [0.0; 4]).unwrap();
            let best = objective(&mix, &p);
            // Weight moved between the two components (the sum stays 1).
            for step in [1e-4, -1e-4] {
                let mut moved = mix.clone();
                moved.weights[0] += step;
                moved.weights[1] -= step;
                assert!(
                    objective(&moved, &p) < best - 1e-12,
                    "{kind}: moving weight by {step} raised it"
                );
            }
            let n_params = mix.means.len() + mix.covariances.len();
            for at in 0..n_params {
                for step in [1e-4, -1e-4] {
                    let mut moved = mix.clone();
                    if at < mix.means.len() {
                        moved.means[at] += step;
                    } else {
                        let c = at - mix.means.len();
                        moved.covariances[c] += step;
                        // Keep full and tied covariances symmetric.
                        if matches!(kind, CovarianceType::Full | CovarianceType::Tied) {
                            let (m, ij) = (c / 4, c % 4);
                            let ji = (ij % 2) * 2 + ij / 2;
                            if ji != ij {
                                moved.covariances[m * 4 + ji] += step;
                            }
                        }
                    }
                    moved.set_precisions_from_covariances(&mut [0.0; 4]).unwrap();
                    let value = objective(&moved, &p);
                    // A maximum: second order in the step (seen: at least 4.2e-9), far above
                    // the objective's rounding (~1e-14).
                    assert!(
                        value < best - 1e-12,
                        "{kind}: moving parameter {at} by {step} raised it: {value} vs {best}"
                    );
                }
            }
        }
    }

    /// Against the design note's formulas evaluated directly from samples and soft responsibilities
    /// (x̄_k, W_k and b_k from the rows, no statistics), at d = 3 and K = 3, every covariance type.
    #[test]
    fn the_map_step_from_statistics_equals_the_formulas_from_samples() {
        use rand::rngs::StdRng;
        use rand::{RngExt, SeedableRng};
        let (n, d, k_n) = (40, 3, 3);
        let mut rng = StdRng::seed_from_u64(7);
        let x: Vec<f64> = (0..n * d).map(|i| rng.random::<f64>() * 4.0 + (i % d) as f64).collect();
        let mut r: Vec<f64> = (0..n * k_n).map(|_| rng.random::<f64>() + 0.1).collect();
        for row in r.chunks_mut(k_n) {
            let s: f64 = row.iter().sum();
            row.iter_mut().for_each(|v| *v /= s);
        }
        let centres: Vec<f64> = (0..k_n * d).map(|i| 1.0 + 0.3 * i as f64).collect();
        for kind in CovarianceType::ALL {
            let scale = match kind {
                CovarianceType::Full | CovarianceType::Tied => vec![2.0, 0.3, 0.1, 0.3, 1.5, 0.2, 0.1, 0.2, 1.0],
                _ => vec![0.7],
            };
            let p = MapPrior {
                shrinkage: 0.2,
                mean: vec![1.0, 2.0, 3.0],
                dof: 5.5,
                scale,
                weights: None,
            };
            // Statistics around the centres, summed naively.
            let s = crate::mstep::tests::naive_stats(kind, &x, &r, &centres, k_n, d);
            let mut mix = Mixture::zeros(kind, k_n, d);
            map_moments(&s, &centres, &p, 0.0, &mut mix);
            // The formulas, from the rows.
            let nk: Vec<f64> = (0..k_n).map(|k| r.iter().skip(k).step_by(k_n).sum::<f64>()).collect();
            let n_tot: f64 = nk.iter().sum();
            let mut want_cov = vec![0.0; mix.covariances.len()];
            let mut tied = p.scale.clone();
            for k in 0..k_n {
                let xbar: Vec<f64> = (0..d)
                    .map(|i| {
                        x.chunks(d)
                            .zip(r.chunks(k_n))
                            .map(|(row, rr)| rr[k] * row[i])
                            .sum::<f64>()
                            / nk[k]
                    })
                    .collect();
                let mut w = vec![0.0; d * d];
                for (row, rr) in x.chunks(d).zip(r.chunks(k_n)) {
                    (0..d * d)
                        .for_each(|ij| w[ij] += rr[k] * (row[ij / d] - xbar[ij / d]) * (row[ij % d] - xbar[ij % d]));
                }
                let b: Vec<f64> = (0..d).map(|i| xbar[i] - p.mean[i]).collect();
                let c = p.shrinkage * nk[k] / (p.shrinkage + nk[k]);
                for (i, (&xb, &m)) in xbar.iter().zip(&p.mean).enumerate() {
                    let mu = (nk[k] * xb + p.shrinkage * m) / (nk[k] + p.shrinkage);
                    close(mix.means[k * d + i], mu, &format!("{kind} mean {k},{i}"));
                }
                close(mix.weights[k], nk[k] / n_tot, "weight");
                let wb = |ij: usize| w[ij] + c * b[ij / d] * b[ij % d];
                match kind {
                    CovarianceType::Full => (0..d * d).for_each(|ij| {
                        want_cov[k * d * d + ij] = (p.scale[ij] + wb(ij)) / (p.dof + nk[k] + d as f64 + 2.0)
                    }),
                    CovarianceType::Tied => (0..d * d).for_each(|ij| tied[ij] += wb(ij)),
                    CovarianceType::Diag => {
                        (0..d).for_each(|i| want_cov[k * d + i] = (p.scale[0] + wb(i * d + i)) / (p.dof + nk[k] + 3.0))
                    }
                    CovarianceType::Spherical => {
                        want_cov[k] = (p.scale[0] + (0..d).map(|i| wb(i * d + i)).sum::<f64>())
                            / (p.dof + (nk[k] + 1.0) * d as f64 + 2.0)
                    }
                }
            }
            if kind == CovarianceType::Tied {
                let denom = p.dof + n_tot + k_n as f64 + d as f64 + 1.0;
                want_cov = tied.iter().map(|v| v / denom).collect();
            }
            for (i, (&g, &e)) in mix.covariances.iter().zip(&want_cov).enumerate() {
                close(g, e, &format!("{kind} covariance [{i}]"));
            }
        }
    }
}
