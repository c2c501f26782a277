//! The variational lower bound (design note §2; scikit-learn's `_compute_lower_bound`), with the
//! responsibilities' entropy formed on the host from the statistics the E-step already returns.

use crate::kinds::CovarianceType;
use crate::linalg::packed_index;
use crate::mixture::Mixture;
use crate::prior::map::ln_gamma;
use crate::stats::SuffStats;
use crate::variational::WeightPrior;

/// Σ_n w_n Σ_k r_nk ln r_nk of an E-step, from its statistics taken around the means of the
/// mixture that ran it (`mix`, before its M-step): ln r = ln ρ − lse, so the sum is
/// Σ_k Σ_n w r ln ρ_nk − Σ_n w lse_n, where the second is the E-step's `score_sum` and the first,
/// since ln ρ_nk = g_k − ½‖U_kᵀ(x_n − m_k)‖², is Σ_k [S0_k g_k − ½ tr(P_k S2_k)], with
/// g_k = c_k − (d/2) ln 2π + ln|U_k| (the mixture's `log_consts`) and P_k = U_k U_kᵀ.
pub(crate) fn entropy_sum(stats: &SuffStats, mix: &Mixture) -> f64 {
    let (k_n, d) = (mix.n_components, mix.n_features);
    let s2_len = SuffStats::s2_len(mix.cov_type, d);
    let mut total = 0.0;
    for k in 0..k_n {
        let u = mix.precision_factor(k);
        let s2 = &stats.s2[k * s2_len..(k + 1) * s2_len];
        let quad = match mix.cov_type {
            CovarianceType::Full | CovarianceType::Tied => {
                // tr(P S) = Σ_ij P_ij S_ij over the packed upper triangle, off-diagonals twice;
                // P_ij = Σ_p U_ip U_jp.
                let mut q = 0.0;
                for i in 0..d {
                    for j in i..d {
                        let p: f64 = (0..d).map(|c| u[i * d + c] * u[j * d + c]).sum();
                        q += if i == j { 1.0 } else { 2.0 } * p * s2[packed_index(i, j, d)];
                    }
                }
                q
            }
            CovarianceType::Diag => u.iter().zip(s2).map(|(p, s)| p * p * s).sum(),
            CovarianceType::Spherical => u[0] * u[0] * s2[0],
        };
        total += stats.s0[k] * mix.log_consts[k] - 0.5 * quad;
    }
    total - stats.score_sum
}

/// ln|U_k| of a mixture's precision factor.
fn log_det_factor(mix: &Mixture, k: usize) -> f64 {
    let d = mix.n_features;
    let u = mix.precision_factor(k);
    match mix.cov_type {
        CovarianceType::Full | CovarianceType::Tied => (0..d).map(|j| u[j * d + j].ln()).sum(),
        CovarianceType::Diag => u.iter().map(|v| v.ln()).sum(),
        CovarianceType::Spherical => d as f64 * u[0].ln(),
    }
}

/// The lower bound of the posterior `mix` (after its M-step), given the E-step's Σ w r ln r:
/// LB = −Σ r ln r + Σ_k [ν_k hl_k + ν_k (d/2) ln 2 + Σ_{i<d} lnΓ((ν_k − i)/2)] (tied: K times
/// the one term) + {DP: Σ_k ln B(a_k, b_k) | DD: Σ_k lnΓ(α_k) − lnΓ(Σα)} − (d/2) Σ_k ln β_k,
/// with hl_k = ln|U_k| − (d/2) ln ν_k.
pub(crate) fn lower_bound(entropy_sum: f64, mix: &Mixture) -> f64 {
    let post = mix.variational.as_ref().expect("a variational mixture");
    let (k_n, d) = (mix.n_components, mix.n_features);
    let df = d as f64;
    let wishart = |k: usize| {
        let nu = post.dof_of(k);
        let hl = log_det_factor(mix, k) - 0.5 * df * nu.ln();
        nu * hl + nu * 0.5 * df * 2f64.ln() + (0..d).map(|i| ln_gamma(0.5 * (nu - i as f64))).sum::<f64>()
    };
    let log_wishart = if mix.cov_type == CovarianceType::Tied {
        k_n as f64 * wishart(0)
    } else {
        (0..k_n).map(wishart).sum()
    };
    let log_weight_norm = match post.weight_prior {
        WeightPrior::DirichletProcess => post
            .concentration_a
            .iter()
            .zip(&post.concentration_b)
            .map(|(&a, &b)| ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b))
            .sum(),
        WeightPrior::DirichletDistribution => {
            post.concentration_a.iter().map(|&a| ln_gamma(a)).sum::<f64>() - ln_gamma(post.concentration_a.iter().sum())
        }
    };
    let log_beta: f64 = post.mean_precision.iter().map(|b| b.ln()).sum();
    -entropy_sum + log_wishart + log_weight_norm - 0.5 * df * log_beta
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Backend, Output};
    use crate::cpu::CpuBackend;
    use crate::data::DataView;
    use crate::variational::Posterior;

    /// Three clusters in 3-D, `gap` apart (seeded).
    fn data(n: usize, gap: f64) -> Vec<f64> {
        use rand::SeedableRng;
        use rand_distr::{Distribution, StandardNormal};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        (0..n * 3)
            .map(|i| {
                let z: f64 = StandardNormal.sample(&mut rng);
                z + gap * (((i / 3) % 3) as f64) * [1.0, -0.5, 0.25][i % 3]
            })
            .collect()
    }

    /// A variational-looking mixture: the clusters' means and spreads, c_k ≠ ln w_k.
    fn mixture(kind: CovarianceType, gap: f64) -> Mixture {
        let (k, d) = (3, 3);
        let mut mix = Mixture::zeros(kind, k, d);
        mix.weights = vec![0.3, 0.3, 0.4];
        mix.means = (0..k * d)
            .map(|i| gap * ((i / d) as f64) * [1.0, -0.5, 0.25][i % d] + 0.1)
            .collect();
        mix.covariances = match kind {
            CovarianceType::Full => [1.2, 0.1, 0.0, 0.1, 0.9, 0.05, 0.0, 0.05, 1.1].repeat(k),
            CovarianceType::Tied => vec![1.2, 0.1, 0.0, 0.1, 0.9, 0.05, 0.0, 0.05, 1.1],
            CovarianceType::Diag => [1.1, 0.9, 1.2].repeat(k),
            CovarianceType::Spherical => vec![1.0, 1.1, 0.9],
        };
        mix.variational = Some(Posterior {
            weight_prior: WeightPrior::DirichletDistribution,
            concentration_a: vec![1.0; k],
            concentration_b: Vec::new(),
            mean_precision: vec![1.0; k],
            dof: vec![4.0; k],
            log_weights: vec![-1.3, -1.1, -0.8],
        });
        mix.set_precisions_from_covariances(&mut [0.0; 9]).unwrap();
        mix
    }

    /// Σ w r ln r directly, per sample, in f64 (the naive formula the statistics replace).
    fn direct(x: &[f64], mix: &Mixture) -> f64 {
        let view = DataView::from_f64(x, 3).unwrap();
        let mut r = vec![0.0; x.len() / 3 * 3];
        CpuBackend::new(view, None)
            .per_sample_outputs(mix, Output::Proba, &mut r)
            .unwrap();
        r.iter().filter(|&&v| v > 0.0).map(|v| v * v.ln()).sum()
    }

    /// On the CPU the entropy formed from the statistics equals the direct per-sample sum to
    /// the rounding of the two large sums it is the difference of (Σ r ln ρ and Σ lse, each
    /// about 5 nats × N): 1e-13 of them.
    #[test]
    fn the_entropy_from_the_statistics_equals_the_direct_sum() {
        let x = data(3000, 3.0);
        for kind in CovarianceType::ALL {
            let mix = mixture(kind, 3.0);
            let view = DataView::from_f64(&x, 3).unwrap();
            let mut stats = SuffStats::new(kind, 3, 3);
            CpuBackend::new(view, None)
                .em_statistics(&mix, &mix.means, &mut stats)
                .unwrap();
            let (got, want) = (entropy_sum(&stats, &mix), direct(&x, &mix));
            let scale = stats.score_sum.abs();
            assert!(
                (got - want).abs() <= 1e-13 * scale,
                "{kind}: {got} vs {want} (scale {scale})"
            );
            assert!(want < 0.0);
        }
    }

    /// The GPU's fast f32 statistics: the entropy formed from them against the direct f64 sum,
    /// beside the error of the f32 log-likelihood itself (what the fit's Auto arithmetic already
    /// guards), for clusters that overlap (entropy large) and that barely do (entropy near 0,
    /// the worst case: a difference of two large sums). The entropy's error must stay within a
    /// few times the log-likelihood's, and within the fast arithmetic's noise floor per sample.
    #[test]
    fn the_entropy_in_fast_f32_is_as_accurate_as_the_log_likelihood() {
        use crate::gpu::backend::{GpuBackend, Source};
        use crate::gpu::plan::Budget;
        use crate::gpu::{GpuPrecision, precision::fast_noise_floor};
        let Some(ctx) = crate::gpu::test_context() else { return };
        let n = 20_000;
        for gap in [2.0, 12.0] {
            let x = data(n, gap);
            let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let x64: Vec<f64> = x32.iter().map(|&v| f64::from(v)).collect();
            for kind in CovarianceType::ALL {
                let mix = mixture(kind, gap);
                let view = DataView::from_f32(&x32, 3).unwrap();
                let budget = Budget {
                    precision: GpuPrecision::Fast,
                    ..Budget::default()
                };
                let mut gpu = GpuBackend::new(&ctx, Source::Host(view), 3, kind, None, budget).unwrap();
                let mut stats = SuffStats::new(kind, 3, 3);
                gpu.em_statistics(&mix, &mix.means, &mut stats).unwrap();
                let mut exact = SuffStats::new(kind, 3, 3);
                CpuBackend::new(DataView::from_f64(&x64, 3).unwrap(), None)
                    .em_statistics(&mix, &mix.means, &mut exact)
                    .unwrap();
                let (got, want) = (entropy_sum(&stats, &mix), direct(&x64, &mix));
                let err_h = (got - want).abs();
                let err_ll = (stats.score_sum - exact.score_sum).abs();
                let floor = fast_noise_floor(3) * n as f64;
                println!(
                    "gap {gap} {kind}: entropy {want:.6e}, its f32 error {err_h:.2e} ({:.1e} per sample); log-likelihood error {err_ll:.2e}",
                    err_h / n as f64
                );
                assert!(
                    err_h <= (4.0 * err_ll).max(floor),
                    "gap {gap} {kind}: {err_h:e} vs {err_ll:e}, floor {floor:e}"
                );
            }
        }
    }
}
