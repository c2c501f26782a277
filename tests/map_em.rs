//! MAP-EM with mclust's conjugate prior, end to end: data on which maximum likelihood is singular
//! fit cleanly (to the MAP formulas by hand where the responsibilities are hard), the
//! log-posterior never falls, sample weights count as duplicated rows, warm starts continue the
//! same posterior, and the GPU agrees with the CPU.

mod common;

use common::{assert_close, max_rel};
use gmm_gpu::{CovarianceType, DataView, GmmError, GmmParams, GmmParamsBuilder, Prior};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

/// Three distinct 2-D points, ten copies each: every component of a 3-component fit sits on one
/// point, so its maximum-likelihood covariance is zero for every covariance type.
fn duplicated() -> Vec<f64> {
    let points = [[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]];
    (0..30).flat_map(|i| points[i / 10]).collect()
}

fn builder(k: usize, cov: CovarianceType) -> GmmParamsBuilder {
    GmmParams::builder(k).covariance_type(cov).seed(3)
}

#[test]
fn duplicated_points_fail_maximum_likelihood_without_reg_covar() {
    let x = duplicated();
    let data = DataView::from_f64(&x, 2).unwrap();
    for cov in CovarianceType::ALL {
        let e = builder(3, cov).reg_covar(0.0).build().unwrap().fit(&data).unwrap_err();
        assert!(matches!(e, GmmError::IllDefinedCovariance { .. }), "{cov}: {e}");
    }
}

/// With hard responsibilities (the points are 10 apart and the fitted spreads below 1, so the
/// other components' responsibilities are below 1e-40), every component holds one point x_k with
/// n_k = 10 and W_k = 0, and the MAP step is, by hand (design note §1): μ_k = (10 x_k + κ μ_P)/
/// (10 + κ), and with b_k = x_k − μ_P, c = 10κ/(10 + κ), full Σ_k = (Λ + c b bᵀ)/(ν + 10 + d + 2),
/// tied (Λ + c Σ_k b bᵀ)/(ν + 30 + 3 + d + 1), diag (ς + c b_j²)/(ν + 10 + 3), spherical
/// (ς + c‖b‖²)/(ν + 11d + 2); the default prior from the 30 points: κ = 0.01, μ_P = (10/3, 10/3),
/// ν = 4, Λ = cov(X)/3 (n − 1 = 29), ς = mean column variance / 3.
#[test]
fn duplicated_points_fit_the_map_step_by_hand() {
    let x = duplicated();
    let data = DataView::from_f64(&x, 2).unwrap();
    let points = [[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]];
    let mu_p = [10.0 / 3.0, 10.0 / 3.0];
    // cov(X) with the n − 1 denominator: per point 10 copies.
    let mut cov_x = [0.0; 4];
    for p in points {
        for i in 0..2 {
            for j in 0..2 {
                cov_x[i * 2 + j] += 10.0 * (p[i] - mu_p[i]) * (p[j] - mu_p[j]) / 29.0;
            }
        }
    }
    let lambda: Vec<f64> = cov_x.iter().map(|v| v / 3.0).collect();
    let varsigma = (cov_x[0] + cov_x[3]) / 2.0 / 3.0;
    let (kappa, nu, nk) = (0.01, 4.0, 10.0);
    let c = nk * kappa / (nk + kappa);
    for cov in CovarianceType::ALL {
        let m = builder(3, cov)
            .prior(Prior::mclust())
            .build()
            .unwrap()
            .fit(&data)
            .unwrap();
        assert!(m.converged(), "{cov}");
        // Components in the order of their points.
        let order: Vec<usize> = points
            .iter()
            .map(|p| {
                (0..3)
                    .min_by(|&a, &b| dist(&m.means()[a * 2..], p).total_cmp(&dist(&m.means()[b * 2..], p)))
                    .unwrap()
            })
            .collect();
        let b: Vec<[f64; 2]> = points.iter().map(|p| [p[0] - mu_p[0], p[1] - mu_p[1]]).collect();
        let means: Vec<f64> = points
            .iter()
            .flat_map(|p| (0..2).map(move |i| (nk * p[i] + kappa * mu_p[i]) / (nk + kappa)))
            .collect();
        let got_means: Vec<f64> = order
            .iter()
            .flat_map(|&k| m.means()[k * 2..k * 2 + 2].to_vec())
            .collect();
        // A few roundings of the same sums: 1e-13.
        assert_close(&format!("{cov} means"), &got_means, &means, 1e-13, 1e-13);
        let (want, got): (Vec<f64>, Vec<f64>) = match cov {
            CovarianceType::Full => (
                (0..3)
                    .flat_map(|k| (0..4).map(move |ij| (k, ij)))
                    .map(|(k, ij)| (lambda[ij] + c * b[k][ij / 2] * b[k][ij % 2]) / (nu + nk + 4.0))
                    .collect(),
                order
                    .iter()
                    .flat_map(|&k| m.covariances()[k * 4..k * 4 + 4].to_vec())
                    .collect(),
            ),
            CovarianceType::Tied => (
                (0..4)
                    .map(|ij| {
                        (lambda[ij] + c * b.iter().map(|bk| bk[ij / 2] * bk[ij % 2]).sum::<f64>())
                            / (nu + 30.0 + 3.0 + 3.0)
                    })
                    .collect(),
                m.covariances().to_vec(),
            ),
            CovarianceType::Diag => (
                (0..6)
                    .map(|kj| (varsigma + c * b[kj / 2][kj % 2].powi(2)) / (nu + nk + 3.0))
                    .collect(),
                order
                    .iter()
                    .flat_map(|&k| m.covariances()[k * 2..k * 2 + 2].to_vec())
                    .collect(),
            ),
            CovarianceType::Spherical => (
                (0..3)
                    .map(|k| (varsigma + c * (b[k][0].powi(2) + b[k][1].powi(2))) / (nu + 11.0 * 2.0 + 2.0))
                    .collect(),
                order.iter().map(|&k| m.covariances()[k]).collect(),
            ),
        };
        assert_close(&format!("{cov} covariances"), &got, &want, 1e-13, 1e-15);
        assert_close(&format!("{cov} weights"), m.weights(), &[1.0 / 3.0; 3], 1e-13, 0.0);
    }
}

fn dist(a: &[f64], b: &[f64; 2]) -> f64 {
    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)
}

fn normals(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n).map(|_| StandardNormal.sample(&mut rng)).collect()
}

/// Three shapes that make maximum likelihood singular, in 3-D: a cluster of two points (fewer
/// than the features), a feature constant within every cluster, and a cluster of one repeated
/// point beside a cloud. Each fails maximum likelihood (reg_covar 0) for the types it makes
/// singular, and fits every type cleanly under the default prior, its log-posterior never falling.
#[test]
fn data_singular_for_maximum_likelihood_fit_cleanly_under_the_prior() {
    let z = normals(3 * 60, 11);
    // A cloud of 40 points around the origin and 2 points far away.
    let mut few: Vec<f64> = z[..120].to_vec();
    few.extend([20.0, 20.0, 20.0, 21.0, 19.0, 22.0]);
    // Two clouds whose third feature is 0 in one and 5 in the other.
    let constant: Vec<f64> = (0..60)
        .flat_map(|i| {
            let shift = if i < 30 { 0.0 } else { 8.0 };
            [z[i * 3] + shift, z[i * 3 + 1], if i < 30 { 0.0 } else { 5.0 }]
        })
        .collect();
    // A cloud and one point repeated ten times.
    let mut repeated: Vec<f64> = z[..150].to_vec();
    repeated.extend([9.0, -9.0, 9.0].repeat(10));
    let singular_for: [(&str, &[f64], &[CovarianceType]); 3] = [
        ("two far points", &few, &[CovarianceType::Full]),
        (
            "a feature constant within each cluster",
            &constant,
            &[CovarianceType::Full, CovarianceType::Tied, CovarianceType::Diag],
        ),
        (
            "a repeated point",
            &repeated,
            &[CovarianceType::Full, CovarianceType::Diag, CovarianceType::Spherical],
        ),
    ];
    for (name, x, singular) in singular_for {
        let data = DataView::from_f64(x, 3).unwrap();
        for &cov in singular {
            let e = builder(2, cov).reg_covar(0.0).build().unwrap().fit(&data).unwrap_err();
            assert!(matches!(e, GmmError::IllDefinedCovariance { .. }), "{name} {cov}: {e}");
        }
        for cov in CovarianceType::ALL {
            let m = builder(2, cov)
                .prior(Prior::mclust())
                .tol(0.0)
                .max_iter(60)
                .build()
                .unwrap()
                .fit(&data)
                .unwrap();
            assert!(m.covariances().iter().all(|v| v.is_finite()), "{name} {cov}");
            assert!(m.precisions_cholesky().iter().all(|v| v.is_finite()), "{name} {cov}");
            assert!(m.score(&data).unwrap().is_finite(), "{name} {cov}");
            assert_monotone(&format!("{name} {cov}"), m.lower_bounds());
        }
    }
}

/// The log-posterior (the lower bound of a MAP fit) never falls, beyond rounding; with more
/// components than clusters and a weights prior too.
#[test]
fn the_log_posterior_never_falls() {
    let z = normals(2 * 300, 5);
    let x: Vec<f64> = z
        .chunks(2)
        .enumerate()
        .flat_map(|(i, p)| [p[0] + 4.0 * (i % 3) as f64, p[1] * (1.0 + (i % 3) as f64)])
        .collect();
    let data = DataView::from_f64(&x, 2).unwrap();
    for cov in CovarianceType::ALL {
        for prior in [Prior::mclust(), Prior::mclust().weights(3.0).shrinkage(0.5)] {
            let m = builder(6, cov)
                .prior(prior)
                .init_method(gmm_gpu::InitMethod::Random)
                .tol(0.0)
                .max_iter(80)
                .build()
                .unwrap()
                .fit(&data)
                .unwrap();
            assert_monotone(&format!("{cov}"), m.lower_bounds());
            // The bound is the log-likelihood plus the prior's term.
            assert!(m.lower_bound() != m.log_likelihood(), "{cov}");
        }
    }
}

/// Rounding of sums over a few hundred samples: 1e-12 relative of the bound's size.
fn assert_monotone(what: &str, bounds: &[f64]) {
    for (t, w) in bounds.windows(2).enumerate() {
        assert!(
            w[1] >= w[0] - 1e-12 * w[0].abs(),
            "{what}: the bound fell from {} to {} at iteration {}",
            w[0],
            w[1],
            t + 2
        );
    }
}

/// Integer sample weights give the fit (prior included) that duplicated rows give.
#[test]
fn integer_sample_weights_equal_duplicated_rows_under_the_prior() {
    let z = normals(2 * 120, 8);
    let x: Vec<f64> = z
        .chunks(2)
        .enumerate()
        .flat_map(|(i, p)| [p[0] + 5.0 * (i % 2) as f64, p[1]])
        .collect();
    let weights: Vec<f64> = (0..120).map(|i| (i % 3) as f64).collect();
    let dup: Vec<f64> = x.chunks(2).enumerate().flat_map(|(i, r)| r.repeat(i % 3)).collect();
    for cov in CovarianceType::ALL {
        let build = || {
            builder(2, cov)
                .prior(Prior::mclust())
                .tol(0.0)
                .max_iter(15)
                .weights_init(vec![0.5, 0.5])
                .means_init(vec![0.0, 0.0, 5.0, 0.0])
                .build()
                .unwrap()
        };
        let weighted = build()
            .fit_weighted(&DataView::from_f64(&x, 2).unwrap(), &weights)
            .unwrap();
        let duplicated = build().fit(&DataView::from_f64(&dup, 2).unwrap()).unwrap();
        let (pw, pd) = (weighted.prior().unwrap(), duplicated.prior().unwrap());
        // The same sums in another order, amplified by 15 iterations: 1e-11.
        assert_close(
            &format!("{cov} prior mean"),
            pw.get_mean().unwrap(),
            pd.get_mean().unwrap(),
            1e-12,
            1e-13,
        );
        assert_close(
            &format!("{cov} prior scale"),
            pw.get_scale().unwrap(),
            pd.get_scale().unwrap(),
            1e-12,
            1e-13,
        );
        assert_close(
            &format!("{cov} means"),
            weighted.means(),
            duplicated.means(),
            1e-11,
            1e-12,
        );
        assert_close(
            &format!("{cov} covariances"),
            weighted.covariances(),
            duplicated.covariances(),
            1e-11,
            1e-12,
        );
        assert_close(
            &format!("{cov} bounds"),
            weighted.lower_bounds(),
            duplicated.lower_bounds(),
            1e-11,
            0.0,
        );
    }
}

/// Weights that do not count samples: rescaling them changes nothing (the covariance's
/// denominator Σw − Σw²/Σw is scale-free), and weights summing to 1 fit.
#[test]
fn rescaled_fractional_weights_give_the_same_prior() {
    let x = normals(2 * 50, 2);
    let w: Vec<f64> = (0..50).map(|i| 0.2 + (i % 4) as f64 * 0.1).collect();
    let total: f64 = w.iter().sum();
    let unit: Vec<f64> = w.iter().map(|v| v / total).collect();
    let data = DataView::from_f64(&x, 2).unwrap();
    let fit = |w: &[f64]| {
        builder(2, CovarianceType::Full)
            .prior(Prior::mclust())
            .max_iter(3)
            .build()
            .unwrap()
            .fit_weighted(&data, w)
            .unwrap()
    };
    let (a, b) = (fit(&w), fit(&unit));
    assert_close(
        "scale",
        a.prior().unwrap().get_scale().unwrap(),
        b.prior().unwrap().get_scale().unwrap(),
        1e-13,
        1e-15,
    );
    // By hand: the weighted covariance with Σw − Σw²/Σw, over K^(2/d) = 2.
    let (sw, sw2) = (total, w.iter().map(|v| v * v).sum::<f64>());
    let mean: Vec<f64> = (0..2)
        .map(|j| (0..50).map(|i| w[i] * x[i * 2 + j]).sum::<f64>() / sw)
        .collect();
    let scale: Vec<f64> = (0..4)
        .map(|ij| {
            (0..50)
                .map(|i| w[i] * (x[i * 2 + ij / 2] - mean[ij / 2]) * (x[i * 2 + ij % 2] - mean[ij % 2]))
                .sum::<f64>()
                / (sw - sw2 / sw)
                / 2.0
        })
        .collect();
    assert_close(
        "scale by hand",
        a.prior().unwrap().get_scale().unwrap(),
        &scale,
        1e-13,
        1e-15,
    );
}

/// Two warm-started fits of one iteration equal one fit of two, under the prior.
#[test]
fn warm_starts_continue_the_posterior() {
    let z = normals(2 * 200, 4);
    let x: Vec<f64> = z
        .chunks(2)
        .enumerate()
        .flat_map(|(i, p)| [p[0] + 6.0 * (i % 2) as f64, p[1]])
        .collect();
    let data = DataView::from_f64(&x, 2).unwrap();
    for cov in CovarianceType::ALL {
        let params = |iters| {
            builder(2, cov)
                .prior(Prior::mclust().weights(2.0))
                .tol(0.0)
                .max_iter(iters)
                .warm_start(true)
                .build()
                .unwrap()
        };
        let mut warm = gmm_gpu::GaussianMixture::new(params(1));
        warm.fit(&data).unwrap();
        let second = warm.fit(&data).unwrap().clone();
        let once = params(2).fit(&data).unwrap();
        assert_eq!(second.means(), once.means(), "{cov}");
        assert_eq!(second.covariances(), once.covariances(), "{cov}");
        assert_eq!(second.lower_bound(), once.lower_bound(), "{cov}");
    }
}

/// n_init keeps the initialisation with the highest log-posterior: the best of the ends that the
/// monitor reports, and they differ (the random starts find different optima).
#[test]
fn restarts_keep_the_highest_log_posterior() {
    let z = normals(2 * 150, 6);
    let x: Vec<f64> = z
        .chunks(2)
        .enumerate()
        .flat_map(|(i, p)| [p[0] + 3.0 * (i % 3) as f64, p[1]])
        .collect();
    let data = DataView::from_f64(&x, 2).unwrap();
    let params = builder(5, CovarianceType::Full)
        .prior(Prior::mclust())
        .init_method(gmm_gpu::InitMethod::Random)
        .n_init(5)
        .build()
        .unwrap();
    let (m, ends) = common::fit_with_init_ends(params, &data);
    assert_eq!(ends.len(), 5);
    let best = ends.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(m.lower_bound(), best, "{ends:?}");
    assert!(
        ends.iter().any(|&e| e < best - 1e-6),
        "the restarts all ended alike: {ends:?}"
    );
}

/// The GPU fits the singular data as the CPU does, in every arithmetic.
#[test]
fn gpu_fits_duplicated_points_as_the_cpu() {
    let Some(ctx) = common::gpu() else { return };
    let x = duplicated();
    let data = DataView::from_f64(&x, 2).unwrap();
    for cov in CovarianceType::ALL {
        let params = builder(3, cov).prior(Prior::mclust()).build().unwrap();
        let cpu = params.fit(&data).unwrap();
        for precision in [
            gmm_gpu::GpuPrecision::Fast,
            gmm_gpu::GpuPrecision::Exact,
            gmm_gpu::GpuPrecision::Auto,
        ] {
            let p = builder(3, cov)
                .prior(Prior::mclust())
                .gpu_precision(precision)
                .build()
                .unwrap();
            let gpu = p.fit_on(ctx, &data).unwrap();
            // f32 statistics: the scatter of points at 10 around centres a rounding away from
            // them is f32 noise (exactly 0 on the CPU) against covariances of about 1; the worst
            // seen is 2.4e-5 (full, Fast), so 1e-4.
            let e = max_rel(gpu.covariances(), cpu.covariances(), 0.0).max(max_rel(gpu.means(), cpu.means(), 1e-3));
            assert!(e <= 1e-4, "{cov} {precision:?}: {e:e}");
            assert_close(
                &format!("{cov} {precision:?} prior scale"),
                gpu.prior().unwrap().get_scale().unwrap(),
                cpu.prior().unwrap().get_scale().unwrap(),
                1e-6,
                1e-9,
            );
        }
    }
}
