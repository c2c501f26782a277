//! Missing values marginalised: no NaN is bitwise the ordinary fit; the fixed point is a
//! stationary point of the observed-data log-likelihood (numerical gradient); the lower bound
//! climbs; the estimates beat EM on mean-imputed data; densities and `impute` match hand
//! formulas; and a typed error for every misuse.

mod common;

use gmm_gpu::{
    BackendKind, CovarianceType, DataView, GaussianMixture, GmmError, GmmModel, GmmParams, Missing, Prior, Samples,
    Variational,
};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

const TYPES: [CovarianceType; 4] = [
    CovarianceType::Full,
    CovarianceType::Tied,
    CovarianceType::Diag,
    CovarianceType::Spherical,
];

/// The truth of the accuracy test: three components in 4-D with correlated covariances.
struct Truth {
    weights: Vec<f64>,
    means: Vec<f64>,
    /// Lower factors A_k (Σ_k = A_k·A_kᵀ), K x d x d.
    factors: Vec<f64>,
}

const D: usize = 4;

fn truth() -> Truth {
    let mut factors = vec![0.0; 3 * D * D];
    for k in 0..3 {
        for i in 0..D {
            for j in 0..=i {
                factors[k * D * D + i * D + j] = if i == j {
                    0.8 + 0.2 * k as f64
                } else {
                    0.5 * (-1f64).powi((i + j + k) as i32)
                };
            }
        }
    }
    Truth {
        weights: vec![0.5, 0.3, 0.2],
        means: vec![
            0.0, 0.0, 0.0, 0.0, //
            6.0, -4.0, 3.0, 5.0, //
            -5.0, 6.0, -6.0, 2.0,
        ],
        factors,
    }
}

impl Truth {
    fn covariance(&self, k: usize) -> Vec<f64> {
        let a = &self.factors[k * D * D..(k + 1) * D * D];
        let mut s = vec![0.0; D * D];
        for i in 0..D {
            for j in 0..D {
                s[i * D + j] = (0..D).map(|p| a[i * D + p] * a[j * D + p]).sum();
            }
        }
        s
    }

    fn sample(&self, n: usize, seed: u64) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut x = Vec::with_capacity(n * D);
        for _ in 0..n {
            let u: f64 = rng.random();
            let k = if u < self.weights[0] {
                0
            } else if u < self.weights[0] + self.weights[1] {
                1
            } else {
                2
            };
            let z: Vec<f64> = (0..D).map(|_| StandardNormal.sample(&mut rng)).collect();
            let a = &self.factors[k * D * D..(k + 1) * D * D];
            for i in 0..D {
                x.push(self.means[k * D + i] + (0..D).map(|p| a[i * D + p] * z[p]).sum::<f64>());
            }
        }
        x
    }
}

/// Each entry missing with probability `p`, completely at random; a row that would lose every
/// feature keeps its first.
fn mcar(x: &[f64], d: usize, p: f64, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = x.to_vec();
    for row in out.chunks_exact_mut(d) {
        let keep0 = row[0];
        for v in row.iter_mut() {
            if rng.random::<f64>() < p {
                *v = f64::NAN;
            }
        }
        if row.iter().all(|v| v.is_nan()) {
            row[0] = keep0;
        }
    }
    out
}

fn view(x: &[f64], d: usize) -> DataView<'_> {
    DataView::with_missing(Samples::F64(x), d).unwrap()
}

fn marginalise(k: usize, cov: CovarianceType) -> gmm_gpu::GmmParamsBuilder {
    GmmParams::builder(k)
        .covariance_type(cov)
        .missing(Missing::Marginalise)
        .backend(BackendKind::Cpu)
}

#[test]
fn no_missing_value_is_bitwise_the_ordinary_fit() {
    let x = truth().sample(600, 1);
    for cov in TYPES {
        let ordinary = GmmParams::builder(3)
            .covariance_type(cov)
            .backend(BackendKind::Cpu)
            .seed(3)
            .build()
            .unwrap()
            .fit(&DataView::from_f64(&x, D).unwrap())
            .unwrap();
        let marginal = marginalise(3, cov).seed(3).build().unwrap().fit(&view(&x, D)).unwrap();
        assert_eq!(marginal.means(), ordinary.means(), "{cov}");
        assert_eq!(marginal.covariances(), ordinary.covariances(), "{cov}");
        assert_eq!(marginal.weights(), ordinary.weights(), "{cov}");
        assert_eq!(marginal.lower_bounds(), ordinary.lower_bounds(), "{cov}");
    }
}

#[test]
fn complete_rows_score_as_the_ordinary_path_and_missing_rows_as_their_marginal() {
    // A model fitted on complete data; the marginal density of a row missing feature 2 is the
    // mixture of the 3-D Gaussians with Σ_oo, computed here by hand (explicit 3 x 3 inverse).
    let x = truth().sample(900, 2);
    for cov in TYPES {
        let model = GmmParams::builder(3)
            .covariance_type(cov)
            .backend(BackendKind::Cpu)
            .build()
            .unwrap()
            .fit(&DataView::from_f64(&x, D).unwrap())
            .unwrap();
        let rows = [0.3, -0.2, f64::NAN, 0.7, 5.5, -3.0, 2.0, 4.0];
        let got = model.score_samples(&view(&rows, D)).unwrap();
        let full = model
            .score_samples(&DataView::from_f64(&rows[4..], D).unwrap())
            .unwrap();
        // Through Σ recomputed from the precisions instead of the precisions themselves: a few
        // ulps of a log-density near -8.
        common::assert_close(&format!("{cov} complete row"), &got[1..], &full, 1e-13, 0.0);
        let o = [0usize, 1, 3];
        let mut p = 0.0;
        for k in 0..3 {
            let s = model.covariance_matrix(k);
            let m = |a: usize, b: usize| s[o[a] * D + o[b]];
            let det = m(0, 0) * (m(1, 1) * m(2, 2) - m(1, 2) * m(2, 1))
                - m(0, 1) * (m(1, 0) * m(2, 2) - m(1, 2) * m(2, 0))
                + m(0, 2) * (m(1, 0) * m(2, 1) - m(1, 1) * m(2, 0));
            let cof = |a: usize, b: usize| {
                let (r0, r1) = ([1, 0, 0][a], [2, 2, 1][a]);
                let (c0, c1) = ([1, 0, 0][b], [2, 2, 1][b]);
                let minor = m(r0, c0) * m(r1, c1) - m(r0, c1) * m(r1, c0);
                if (a + b) % 2 == 0 { minor } else { -minor }
            };
            let diff: Vec<f64> = o.iter().map(|&j| rows[j] - model.mean(k)[j]).collect();
            // Σ⁻¹ = adj(Σ)/det, with adj the transposed cofactors (Σ is symmetric).
            let maha: f64 = (0..3)
                .flat_map(|a| (0..3).map(move |b| (a, b)))
                .map(|(a, b)| diff[a] * cof(b, a) / det * diff[b])
                .sum();
            p += model.weights()[k] * (-0.5 * maha).exp() / ((2.0 * std::f64::consts::PI).powi(3) * det).sqrt();
        }
        // The hand formula's cancellations in the determinant and cofactors cost a few ulps.
        common::assert_close(&format!("{cov} marginal row"), &got[..1], &[p.ln()], 1e-12, 0.0);
    }
}

#[test]
fn impute_is_the_conditional_mean_by_hand_in_two_dimensions() {
    // Two components in 2-D; for a row (x1, NaN): E[x2 | x1] = Σ_k r_k (μ_k2 + Σ_k21/Σ_k11·(x1 − μ_k1))
    // with r_k ∝ π_k N(x1; μ_k1, Σ_k11); and symmetrically for (NaN, x2).
    let covs: [[f64; 4]; 2] = [[2.0, 0.6, 0.6, 1.0], [0.5, -0.3, -0.3, 1.5]];
    let mut precisions_cholesky = Vec::new();
    for s in covs {
        // U = (L⁻¹)ᵀ for Σ = L·Lᵀ in 2-D.
        let l11 = s[0].sqrt();
        let l21 = s[2] / l11;
        let l22 = (s[3] - l21 * l21).sqrt();
        precisions_cholesky.extend([1.0 / l11, -l21 / (l11 * l22), 0.0, 1.0 / l22]);
    }
    let model = GmmModel::from_parameters(
        CovarianceType::Full,
        2,
        vec![0.4, 0.6],
        vec![1.0, -1.0, -2.0, 3.0],
        covs.concat(),
        precisions_cholesky,
        f64::NEG_INFINITY,
    )
    .unwrap();
    let rows = [0.5, f64::NAN, f64::NAN, 2.0, 1.5, -0.5];
    let got = model.impute(&view(&rows, 2)).unwrap();
    let normal =
        |x: f64, m: f64, v: f64| (-(x - m) * (x - m) / (2.0 * v)).exp() / (2.0 * std::f64::consts::PI * v).sqrt();
    let hand = |x: f64, seen: usize| {
        let other = 1 - seen;
        let mu = [[1.0, -1.0], [-2.0, 3.0]];
        let r: Vec<f64> = (0..2)
            .map(|k| [0.4, 0.6][k] * normal(x, mu[k][seen], covs[k][seen * 3]))
            .collect();
        let total = r[0] + r[1];
        (0..2)
            .map(|k| r[k] / total * (mu[k][other] + covs[k][1] / covs[k][seen * 3] * (x - mu[k][seen])))
            .sum::<f64>()
    };
    let expected = [0.5, hand(0.5, 0), hand(2.0, 1), 2.0, 1.5, -0.5];
    // Through Σ recomputed from U and two triangular solves: a few ulps.
    common::assert_close("imputed", &got, &expected, 1e-13, 1e-15);
    // Observed values are copied exactly.
    assert_eq!([got[0], got[3], got[4], got[5]], [0.5, 2.0, 1.5, -0.5]);
}

/// Observed-data mean log-likelihood of `x` under a diag model with these parameters.
fn diag_score(x: &DataView, weights: &[f64], means: &[f64], variances: &[f64]) -> f64 {
    let d = x.n_features();
    let model = GmmModel::from_parameters(
        CovarianceType::Diag,
        d,
        weights.to_vec(),
        means.to_vec(),
        variances.to_vec(),
        variances.iter().map(|v| 1.0 / v.sqrt()).collect(),
        f64::NEG_INFINITY,
    )
    .unwrap();
    model.score(x).unwrap()
}

#[test]
fn the_fixed_point_is_a_stationary_point_of_the_observed_data_likelihood() {
    // 20% of entries missing completely at random; EM run to a tight fixed point with reg_covar 0
    // (so it maximises the likelihood itself). The numerical gradient of the observed-data mean
    // log-likelihood in every mean, every variance, and the weights along the simplex
    // (π_a + h, π_b − h) is then zero up to the central difference's error.
    let x = mcar(&truth().sample(3000, 4), D, 0.2, 5);
    let data = view(&x, D);
    let model = marginalise(3, CovarianceType::Diag)
        .reg_covar(0.0)
        .tol(1e-13)
        .max_iter(5000)
        .seed(1)
        .build()
        .unwrap()
        .fit(&data)
        .unwrap();
    assert!(
        model.converged(),
        "EM reached its fixed point in {} iterations",
        model.n_iter()
    );
    let (w, m, v) = (
        model.weights().to_vec(),
        model.means().to_vec(),
        model.covariances().to_vec(),
    );
    let f = |w: &[f64], m: &[f64], v: &[f64]| diag_score(&data, w, m, v);
    let mut worst = (0.0f64, String::new());
    let mut record = |g: f64, what: String| {
        if g.abs() > worst.0 {
            worst = (g.abs(), what);
        }
    };
    for i in 0..m.len() {
        let h = 1e-5;
        let (mut up, mut down) = (m.clone(), m.clone());
        up[i] += h;
        down[i] -= h;
        record((f(&w, &up, &v) - f(&w, &down, &v)) / (2.0 * h), format!("mean {i}"));
        let h = 1e-5 * v[i];
        let (mut up, mut down) = (v.clone(), v.clone());
        up[i] += h;
        down[i] -= h;
        // Scaled by the variance: the derivative in log σ², comparable across features.
        record(
            v[i] * (f(&w, &m, &up) - f(&w, &m, &down)) / (2.0 * h),
            format!("variance {i}"),
        );
    }
    for (a, b) in [(0, 1), (1, 2), (0, 2)] {
        let h = 1e-6;
        let (mut up, mut down) = (w.clone(), w.clone());
        (up[a], up[b], down[a], down[b]) = (w[a] + h, w[b] - h, w[a] - h, w[b] + h);
        record(
            (f(&up, &m, &v) - f(&down, &m, &v)) / (2.0 * h),
            format!("weights {a}/{b}"),
        );
    }
    // The same gradient one step away from the fixed point, for scale.
    let mut off = m.clone();
    off[0] += 0.1;
    let away = (f(
        &w,
        &{
            let mut u = off.clone();
            u[0] += 1e-5;
            u
        },
        &v,
    ) - f(
        &w,
        &{
            let mut u = off.clone();
            u[0] -= 1e-5;
            u
        },
        &v,
    )) / 2e-5;
    println!(
        "largest |gradient| at the fixed point: {:.2e} ({}); 0.1 away in mean 0: {away:.2e}",
        worst.0, worst.1
    );
    // Central differences of a mean of N = 3000 log-densities: O(h²) truncation plus rounding of
    // ~1e-16/h ≈ 1e-11; the EM fixed point at tol 1e-13 leaves a gradient of order 1e-7.
    assert!(worst.0 < 1e-6, "gradient {} in {}", worst.0, worst.1);
    assert!(
        away.abs() > 1e-2,
        "the gradient off the fixed point is not small: {away}"
    );
}

#[test]
fn the_observed_data_lower_bound_never_decreases() {
    let x = mcar(&truth().sample(1500, 6), D, 0.2, 7);
    for cov in TYPES {
        let model = marginalise(3, cov)
            .reg_covar(0.0)
            .tol(0.0)
            .max_iter(40)
            .seed(2)
            .build()
            .unwrap()
            .fit(&view(&x, D))
            .unwrap();
        let lb = model.lower_bounds();
        for (i, pair) in lb.windows(2).enumerate() {
            // EM's monotonicity, up to the rounding of a mean of 1500 log-densities near -7.
            assert!(
                pair[1] >= pair[0] - 1e-13,
                "{cov}: iteration {}: {} then {}",
                i + 1,
                pair[0],
                pair[1]
            );
        }
        // The reported lower bound is the observed-data mean log-likelihood of the final model
        // (its last E-step), within one more EM step's climb.
        let score = model.score(&view(&x, D)).unwrap();
        assert!(
            score >= model.lower_bound() - 1e-13,
            "{cov}: {score} < {}",
            model.lower_bound()
        );
    }
}

#[test]
fn map_with_missing_values_climbs_its_log_posterior() {
    let x = mcar(&truth().sample(800, 8), D, 0.2, 9);
    for cov in TYPES {
        let model = marginalise(3, cov)
            .prior(Prior::mclust())
            .tol(0.0)
            .max_iter(30)
            .build()
            .unwrap()
            .fit(&view(&x, D))
            .unwrap();
        for pair in model.lower_bounds().windows(2) {
            // MAP-EM never lowers the log-posterior; rounding as above.
            assert!(pair[1] >= pair[0] - 1e-13, "{cov}: {} then {}", pair[0], pair[1]);
        }
    }
}

/// Sorts components of a fit to the truth's order by nearest mean.
fn matched(model: &GmmModel, truth: &Truth) -> Vec<usize> {
    (0..3)
        .map(|t| {
            (0..3)
                .min_by(|&a, &b| {
                    let dist = |k: usize| -> f64 {
                        (0..D)
                            .map(|i| (model.mean(k)[i] - truth.means[t * D + i]).powi(2))
                            .sum()
                    };
                    dist(a).total_cmp(&dist(b))
                })
                .unwrap()
        })
        .collect()
}

/// The largest error of the means and of the covariances (Frobenius), over components.
fn errors(model: &GmmModel, truth: &Truth) -> (f64, f64) {
    let order = matched(model, truth);
    let (mut mean_err, mut cov_err) = (0.0f64, 0.0f64);
    for (t, &k) in order.iter().enumerate() {
        let m: f64 = (0..D)
            .map(|i| (model.mean(k)[i] - truth.means[t * D + i]).powi(2))
            .sum();
        mean_err = mean_err.max(m.sqrt());
        let s = truth.covariance(t);
        let c: f64 = model
            .covariance_matrix(k)
            .iter()
            .zip(&s)
            .map(|(a, b)| (a - b).powi(2))
            .sum();
        cov_err = cov_err.max(c.sqrt());
    }
    (mean_err, cov_err)
}

#[test]
fn marginalising_beats_mean_imputation() {
    let truth = truth();
    let complete = truth.sample(8000, 10);
    let x = mcar(&complete, D, 0.2, 11);
    // Mean imputation: each NaN replaced by its column's observed mean.
    let mut imputed = x.clone();
    for j in 0..D {
        let seen: Vec<f64> = x.iter().skip(j).step_by(D).copied().filter(|v| !v.is_nan()).collect();
        let mean = seen.iter().sum::<f64>() / seen.len() as f64;
        imputed
            .iter_mut()
            .skip(j)
            .step_by(D)
            .filter(|v| v.is_nan())
            .for_each(|v| *v = mean);
    }
    // The same start for both: the true means.
    let start = |b: gmm_gpu::GmmParamsBuilder| b.means_init(truth.means.clone()).max_iter(500);
    let ours = start(marginalise(3, CovarianceType::Full))
        .build()
        .unwrap()
        .fit(&view(&x, D))
        .unwrap();
    let naive = start(GmmParams::builder(3).backend(BackendKind::Cpu))
        .build()
        .unwrap()
        .fit(&DataView::from_f64(&imputed, D).unwrap())
        .unwrap();
    let complete_fit = start(GmmParams::builder(3).backend(BackendKind::Cpu))
        .build()
        .unwrap()
        .fit(&DataView::from_f64(&complete, D).unwrap())
        .unwrap();
    let (ours_m, ours_c) = errors(&ours, &truth);
    let (naive_m, naive_c) = errors(&naive, &truth);
    let (all_m, all_c) = errors(&complete_fit, &truth);
    println!("| fit | largest mean error | largest covariance error (Frobenius) |");
    println!("|---|---|---|");
    println!("| complete data (no value missing) | {all_m:.4} | {all_c:.4} |");
    println!("| marginalised (20% MCAR) | {ours_m:.4} | {ours_c:.4} |");
    println!("| mean imputation (20% MCAR) | {naive_m:.4} | {naive_c:.4} |");
    assert!(
        ours_m < naive_m,
        "means: marginalised {ours_m} vs mean-imputed {naive_m}"
    );
    assert!(
        ours_c < naive_c,
        "covariances: marginalised {ours_c} vs mean-imputed {naive_c}"
    );
    // And close to what the complete data would give: the missing fifth costs precision, not bias.
    assert!(
        ours_c < 3.0 * all_c.max(0.05),
        "marginalised {ours_c} vs complete {all_c}"
    );
}

#[test]
fn integer_weights_equal_duplicated_rows() {
    let x = mcar(&truth().sample(400, 12), D, 0.2, 13);
    let w: Vec<f64> = (0..400).map(|i| (i % 3) as f64).collect();
    let dup: Vec<f64> = x
        .chunks_exact(D)
        .zip(&w)
        .flat_map(|(r, &w)| std::iter::repeat_n(r, w as usize).flatten().copied())
        .collect();
    for cov in TYPES {
        let p = marginalise(3, cov)
            .means_init(truth().means)
            .max_iter(20)
            .tol(0.0)
            .build()
            .unwrap();
        let weighted = p.fit_weighted(&view(&x, D), &w).unwrap();
        let duplicated = p.fit(&view(&dup, D)).unwrap();
        // The same sums in another order (rows grouped by pattern either way), over 20 iterations:
        // ~1e-13 apart.
        common::assert_close(
            &format!("{cov} means"),
            weighted.means(),
            duplicated.means(),
            1e-9,
            1e-12,
        );
        common::assert_close(
            &format!("{cov} covariances"),
            weighted.covariances(),
            duplicated.covariances(),
            1e-12,
            1e-12,
        );
    }
}

#[test]
fn frozen_means_stay_as_given_with_missing_values() {
    let truth = truth();
    let x = mcar(&truth.sample(500, 14), D, 0.2, 15);
    for cov in TYPES {
        let model = marginalise(3, cov)
            .means_init(truth.means.clone())
            .freeze(&[gmm_gpu::Parameter::Means])
            .build()
            .unwrap()
            .fit(&view(&x, D))
            .unwrap();
        assert_eq!(model.means(), &truth.means[..], "{cov}");
    }
}

#[test]
fn auto_fits_on_the_cpu_and_says_why() {
    let x = mcar(&truth().sample(300, 16), D, 0.2, 17);
    let model = GmmParams::builder(2)
        .covariance_type(CovarianceType::Diag)
        .missing(Missing::Marginalise)
        .backend(BackendKind::Auto)
        .build()
        .unwrap()
        .fit(&view(&x, D))
        .unwrap();
    assert_eq!(model.backend(), "cpu");
    assert_eq!(
        model.fallback_reason(),
        Some("missing values are marginalised on the CPU only")
    );
    // predict and predict_proba agree: the label is the largest responsibility.
    let proba = model.predict_proba(&view(&x, D)).unwrap();
    let labels = model.predict(&view(&x, D)).unwrap();
    for (i, (p, &l)) in proba.chunks_exact(2).zip(&labels).enumerate() {
        assert!(p[l] >= p[1 - l], "row {i}: label {l} with responsibilities {p:?}");
        assert!((p[0] + p[1] - 1.0).abs() < 1e-15, "row {i}: {p:?}");
    }
}

#[test]
fn a_nan_without_the_option_is_todays_error() {
    let x = [1.0, 2.0, 3.0, f64::NAN, 5.0, 6.0];
    let e = GmmParams::builder(1).build().unwrap().fit(&view(&x, 2)).unwrap_err();
    assert!(
        matches!(e, GmmError::NonFiniteData { row: 1, column: 1, value } if value.is_nan()),
        "{e}"
    );
    let e = DataView::from_f64(&x, 2).unwrap_err();
    assert!(matches!(e, GmmError::NonFiniteData { row: 1, column: 1, .. }), "{e}");
    let mut online = GaussianMixture::new(GmmParams::builder(1).build().unwrap());
    let e = online.partial_fit(&view(&x, 2)).unwrap_err();
    assert!(matches!(e, GmmError::NonFiniteData { row: 1, column: 1, .. }), "{e}");
}

#[test]
fn a_row_with_every_feature_missing_is_an_error_naming_it() {
    let x = [1.0, 2.0, f64::NAN, f64::NAN, 5.0, 6.0];
    let e = DataView::with_missing(Samples::F64(&x), 2).unwrap_err();
    assert!(matches!(e, GmmError::AllMissingRow { row: 1 }), "{e}");
    let x32 = [1.0f32, f32::NAN, f32::NAN, f32::NAN];
    let e = DataView::with_missing(Samples::F32(&x32), 2).unwrap_err();
    assert!(matches!(e, GmmError::AllMissingRow { row: 1 }), "{e}");
}

#[test]
fn an_infinity_is_still_non_finite_data() {
    let x = [1.0, f64::NAN, f64::INFINITY, 2.0];
    let e = DataView::with_missing(Samples::F64(&x), 2).unwrap_err();
    assert!(
        matches!(e, GmmError::NonFiniteData { row: 1, column: 0, value } if value == f64::INFINITY),
        "{e}"
    );
}

#[test]
fn paths_that_do_not_marginalise_refuse_missing_values_by_name() {
    let x = mcar(&truth().sample(200, 18), D, 0.2, 19);
    let first = x.iter().position(|v| v.is_nan()).unwrap();
    let (row, column) = (first / D, first % D);
    let check = |e: GmmError, what: &str| {
        assert!(
            matches!(e, GmmError::MissingUnsupported { row: r, column: c, what: w, .. } if r == row && c == column && w == what),
            "{what}: {e}"
        );
    };
    let gpu = marginalise(2, CovarianceType::Diag)
        .backend(BackendKind::Gpu)
        .build()
        .unwrap();
    check(gpu.fit(&view(&x, D)).unwrap_err(), "a fit on the GPU");
    let vb = marginalise(2, CovarianceType::Diag)
        .variational(Variational::dirichlet_process())
        .build()
        .unwrap();
    check(vb.fit(&view(&x, D)).unwrap_err(), "a variational (Bayesian) fit");
    let mut online = GaussianMixture::new(marginalise(2, CovarianceType::Diag).build().unwrap());
    check(online.partial_fit(&view(&x, D)).unwrap_err(), "online (stepwise) EM");
}

#[test]
fn every_covariance_type_recovers_the_truth_roughly() {
    // A sanity check across types on well-separated data: each fit's means land within 0.2 of
    // the truth (the spread of an estimate from ~1600 rows with a fifth missing is ~0.05).
    let truth = truth();
    let x = mcar(&truth.sample(8000, 20), D, 0.2, 21);
    for cov in TYPES {
        let model = marginalise(3, cov)
            .seed(4)
            .n_init(2)
            .build()
            .unwrap()
            .fit(&view(&x, D))
            .unwrap();
        let (mean_err, _) = errors(&model, &truth);
        assert!(mean_err < 0.2, "{cov}: largest mean error {mean_err}");
    }
}

/// A fit over `p` thread ranks, each holding its contiguous rows of `x` (and their weights).
fn on_ranks(params: &GmmParams, x: &[f64], w: Option<&[f64]>, p: usize) -> Vec<Result<GmmModel, GmmError>> {
    use gmm_gpu::distributed::{RankData, ThreadComm, rows_of};
    let n = x.len() / D;
    ThreadComm::on_ranks(p, |comm| {
        let rows = rows_of(gmm_gpu::distributed::Communicator::rank(comm), p, n);
        let part = RankData {
            samples: Samples::F64(&x[rows.start * D..rows.end * D]),
            n_features: D,
            first_row: rows.start,
            n_total: n,
            sample_weight: w.map(|w| &w[rows.clone()]),
        };
        params.fit_distributed(part, comm, None, None, &mut |_| {})
    })
}

#[test]
fn ranks_marginalise_as_one_process() {
    let x = mcar(&truth().sample(900, 22), D, 0.2, 23);
    let w: Vec<f64> = (0..900).map(|i| 0.5 + (i % 3) as f64).collect();
    for cov in TYPES {
        // k-means on the column-mean-filled data (global means), random draws of global rows.
        let params = marginalise(3, cov).seed(5).max_iter(30).build().unwrap();
        let one = params.fit_weighted(&view(&x, D), &w).unwrap();
        for p in [1, 2, 3] {
            for model in on_ranks(&params, &x, Some(&w), p) {
                let model = model.unwrap();
                // The same sums combined by ranks instead of tasks, over up to 30 iterations.
                common::assert_close(&format!("{cov} P={p} means"), model.means(), one.means(), 1e-10, 1e-12);
                common::assert_close(
                    &format!("{cov} P={p} covariances"),
                    model.covariances(),
                    one.covariances(),
                    1e-10,
                    1e-12,
                );
                assert_eq!(model.n_iter(), one.n_iter(), "{cov} P={p}");
            }
        }
    }
}

#[test]
fn ranks_refuse_alike_and_name_an_empty_row_globally() {
    let mut x = mcar(&truth().sample(300, 24), D, 0.2, 25);
    // A variational fit does not marginalise: the rank with the first NaN names it, the others
    // name that rank.
    let params = marginalise(2, CovarianceType::Diag)
        .variational(Variational::dirichlet_process())
        .build()
        .unwrap();
    let results = on_ranks(&params, &x, None, 3);
    assert!(
        matches!(&results[0], Err(GmmError::MissingUnsupported { what, .. }) if *what == "a variational (Bayesian) fit"),
        "{:?}",
        results[0]
    );
    for r in &results[1..] {
        assert!(matches!(r, Err(GmmError::PeerFailed { .. })), "{r:?}");
    }
    // Row 250 (on rank 2 of 3) with every feature missing: every rank names it.
    x[250 * D..251 * D].fill(f64::NAN);
    let params = marginalise(2, CovarianceType::Diag).build().unwrap();
    for r in on_ranks(&params, &x, None, 3) {
        assert!(matches!(r, Err(GmmError::AllMissingRow { row: 250 })), "{r:?}");
    }
}
