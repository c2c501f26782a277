//! The f64 CPU EM's behaviour: recovery of known mixtures, EM's invariants, and determinism.

mod common;

use common::{assert_close, blobs, heights, iris};
use gmm_gpu::{CovarianceType, DataView, GaussianMixture, GmmParams, InitMethod};

#[test]
fn heights_example_recovers_the_truth_within_a_few_standard_errors() {
    // Source document 002: 600 draws of N(176, 8²) (weight 0.6) and 400 of N(164, 6²) (weight 0.4).
    let x = heights(2);
    let data = DataView::from_f64(&x, 1).unwrap();
    let m = GmmParams::builder(2)
        .tol(1e-8)
        .max_iter(1000)
        .build()
        .unwrap()
        .fit(&data)
        .unwrap();
    assert!(m.converged());
    let (lo, hi) = if m.means()[0] < m.means()[1] { (0, 1) } else { (1, 0) };
    let sd = |k: usize| m.covariances()[k].sqrt();
    // Naive standard errors of each estimate for the true component sizes (n = 400 and 600):
    // mean σ/√n, standard deviation σ/√(2n), weight √(π(1−π)/N). The two components overlap heavily,
    // which inflates the mixture's errors well beyond these, so allow 4 naive standard errors + 100%.
    let se_mean = [6.0 / 400f64.sqrt(), 8.0 / 600f64.sqrt()];
    let se_sd = [6.0 / 800f64.sqrt(), 8.0 / 1200f64.sqrt()];
    let se_w = (0.24f64 / 1000.0).sqrt();
    let allow = 8.0;
    for (slot, (k, mean, sdev, w)) in [(lo, 164.0, 6.0, 0.4), (hi, 176.0, 8.0, 0.6)].into_iter().enumerate() {
        println!(
            "component {k}: weight {:.4} mean {:.3} sd {:.3}",
            m.weights()[k],
            m.means()[k],
            sd(k)
        );
        assert!(
            (m.means()[k] - mean).abs() < allow * se_mean[slot],
            "mean {} vs {mean}",
            m.means()[k]
        );
        assert!((sd(k) - sdev).abs() < allow * se_sd[slot], "sd {} vs {sdev}", sd(k));
        assert!(
            (m.weights()[k] - w).abs() < allow * se_w,
            "weight {} vs {w}",
            m.weights()[k]
        );
    }
}

#[test]
fn every_iris_species_is_dominated_by_its_own_component() {
    let (x, species) = iris();
    let data = DataView::from_f64(&x, 4).unwrap();
    let m = GmmParams::builder(3).seed(0).build().unwrap().fit(&data).unwrap();
    let labels = m.predict(&data).unwrap();
    let mut dominant = Vec::new();
    for s in 0..3 {
        let mut counts = [0usize; 3];
        labels
            .iter()
            .zip(&species)
            .filter(|(_, sp)| **sp == s)
            .for_each(|(l, _)| counts[*l] += 1);
        let (best, &count) = counts.iter().enumerate().max_by_key(|(_, c)| **c).unwrap();
        println!("species {s}: component counts {counts:?}");
        // A 3-component full GMM separates setosa perfectly and confuses only a few versicolor and
        // virginica; 45 of 50 (90%) is the round bar that holds.
        assert!(count >= 45, "species {s} is split: {counts:?}");
        dominant.push(best);
    }
    dominant.sort();
    dominant.dedup();
    assert_eq!(dominant.len(), 3, "two species share a dominant component");
}

/// Three 2-D blobs with different spreads: a well-posed problem for every covariance type.
fn three_blobs(n: usize, seed: u64) -> Vec<f64> {
    let mut x = blobs(n, &[0.0, 0.0, 4.0, 1.0, -1.0, 5.0], 2, 1.0, seed);
    x.iter_mut().step_by(3).for_each(|v| *v *= 1.5);
    x
}

#[test]
fn the_lower_bound_never_decreases() {
    let x = three_blobs(600, 11);
    let data = DataView::from_f64(&x, 2).unwrap();
    let mut checked = 0;
    for cov in CovarianceType::ALL {
        for init in [InitMethod::Random, InitMethod::RandomFromData, InitMethod::KMeans] {
            // Random-from-data starts each component at one point, whose covariance is 0: with
            // reg_covar 0 the first M-step fails. 1e-12 makes it a valid (very peaked) start; the
            // regularised M-step is then not an exact maximiser, but what it can lose is second order
            // in 1e-12 (data of unit variance), far below the 1e-13 relative allowance below.
            let reg_covar = if init == InitMethod::RandomFromData { 1e-12 } else { 0.0 };
            let params = GmmParams::builder(3)
                .covariance_type(cov)
                .init_method(init)
                .reg_covar(reg_covar)
                .tol(0.0)
                .max_iter(60)
                .seed(5)
                .build()
                .unwrap();
            let m = params.fit(&data).unwrap_or_else(|e| panic!("{cov} {init}: {e}"));
            assert!(
                m.lower_bounds().len() >= 2,
                "{cov} {init}: {} iterations leave no step to check",
                m.lower_bounds().len()
            );
            for (i, w) in m.lower_bounds().windows(2).enumerate() {
                // EM cannot decrease the likelihood; in f64 a step near convergence can round down by a
                // few ulps of the sum, so allow 1e-13 relative.
                assert!(
                    w[1] >= w[0] - 1e-13 * w[0].abs(),
                    "{cov} {init}: lower bound fell at iteration {}: {} -> {}",
                    i + 1,
                    w[0],
                    w[1]
                );
            }
            checked += 1;
        }
    }
    // Four covariance types times three initialisations, none skipped.
    assert_eq!(checked, 12);
}

#[test]
fn responsibilities_are_a_distribution_and_predict_is_their_argmax() {
    let x = three_blobs(300, 3);
    let data = DataView::from_f64(&x, 2).unwrap();
    for cov in CovarianceType::ALL {
        let m = GmmParams::builder(3)
            .covariance_type(cov)
            .build()
            .unwrap()
            .fit(&data)
            .unwrap();
        let proba = m.predict_proba(&data).unwrap();
        let labels = m.predict(&data).unwrap();
        let sums: Vec<f64> = proba.chunks(3).map(|r| r.iter().sum()).collect();
        // Each responsibility is exp(log ρ_k − log p): the rounding of log p (|log p| < 16 here, so
        // under 16 ulps of 1) scales all K alike, plus K roundings of exp and the sum: 16 ulps holds.
        assert_close(
            &format!("{cov}: row sums of predict_proba"),
            &sums,
            &vec![1.0; sums.len()],
            0.0,
            16.0 * f64::EPSILON,
        );
        for (i, (row, &l)) in proba.chunks(3).zip(&labels).enumerate() {
            let best = (0..3).fold(0, |b, k| if row[k] > row[b] { k } else { b });
            assert_eq!(l, best, "{cov}: sample {i}: predict {l} but predict_proba {row:?}");
        }
    }
}

#[test]
fn fit_predict_equals_fit_then_predict() {
    let x = three_blobs(300, 4);
    let data = DataView::from_f64(&x, 2).unwrap();
    let params = GmmParams::builder(3).max_iter(3).seed(9).build().unwrap();
    let mut gm = GaussianMixture::new(params.clone());
    let labels = gm.fit_predict(&data).unwrap();
    let again = params.fit(&data).unwrap().predict(&data).unwrap();
    assert_eq!(labels, again);
}

#[test]
fn max_iter_zero_returns_the_initialisation() {
    let x = three_blobs(300, 5);
    let data = DataView::from_f64(&x, 2).unwrap();
    for cov in CovarianceType::ALL {
        let build = |t: usize| GmmParams::builder(3).covariance_type(cov).max_iter(t).tol(0.0).seed(1);
        let m0 = build(0).build().unwrap().fit(&data).unwrap();
        assert_eq!(m0.n_iter(), 0);
        assert_eq!(m0.lower_bound(), f64::NEG_INFINITY);
        assert!(m0.lower_bounds().is_empty());
        // One EM step from the returned initialisation, given by hand, equals one step of a fresh fit.
        let m1 = build(1).build().unwrap().fit(&data).unwrap();
        let from_m0 = build(1)
            .weights_init(m0.weights().to_vec())
            .means_init(m0.means().to_vec())
            .precisions_init(m0.precisions())
            .build()
            .unwrap()
            .fit(&data)
            .unwrap();
        // The precisions round-trip through a factorisation: ~1e-15 relative, amplified by one step.
        assert_close(&format!("{cov} means"), from_m0.means(), m1.means(), 1e-12, 1e-12);
        assert_close(
            &format!("{cov} covariances"),
            from_m0.covariances(),
            m1.covariances(),
            1e-12,
            1e-12,
        );
        assert_close(&format!("{cov} weights"), from_m0.weights(), m1.weights(), 1e-12, 0.0);
    }
}

#[test]
fn two_warm_started_fits_of_one_iteration_equal_one_fit_of_two() {
    let x = three_blobs(500, 6);
    let data = DataView::from_f64(&x, 2).unwrap();
    for cov in CovarianceType::ALL {
        let build = |t: usize| {
            GmmParams::builder(3)
                .covariance_type(cov)
                .max_iter(t)
                .tol(0.0)
                .seed(3)
                .warm_start(true)
        };
        let mut warm = GaussianMixture::new(build(1).build().unwrap());
        warm.fit(&data).unwrap();
        let first_lb = warm.model().unwrap().lower_bound();
        let warm = warm.fit(&data).unwrap().clone();
        let two = build(2).build().unwrap().fit(&data).unwrap();
        // The same operations in the same order: bitwise equal.
        assert_eq!(warm.means(), two.means(), "{cov}");
        assert_eq!(warm.covariances(), two.covariances(), "{cov}");
        assert_eq!(warm.weights(), two.weights(), "{cov}");
        assert_eq!(warm.lower_bound(), two.lower_bound(), "{cov}");
        assert_eq!(two.lower_bounds(), &[first_lb, warm.lower_bound()], "{cov}");
        assert_eq!(warm.n_iter(), 1);
    }
}

#[test]
fn n_parameters_count_scikit_learns_way() {
    let x = blobs(100, &[0.0; 10], 5, 1.0, 1);
    let data = DataView::from_f64(&x, 5).unwrap();
    // By hand for d = 5, K = 2: means 10, weights 1, covariances 2 (spherical), 10 (diag),
    // 15 (tied), 30 (full).
    for (cov, expect) in [
        (CovarianceType::Spherical, 13),
        (CovarianceType::Diag, 21),
        (CovarianceType::Tied, 26),
        (CovarianceType::Full, 41),
    ] {
        let m = GmmParams::builder(2)
            .covariance_type(cov)
            .max_iter(2)
            .build()
            .unwrap()
            .fit(&data)
            .unwrap();
        assert_eq!(m.n_parameters(), expect, "{cov}");
    }
}

#[test]
fn one_feature_one_component_has_the_same_bic_for_every_type() {
    let x = heights(8);
    let data = DataView::from_f64(&x, 1).unwrap();
    let bics: Vec<f64> = CovarianceType::ALL
        .iter()
        .map(|&cov| {
            GmmParams::builder(1)
                .covariance_type(cov)
                .build()
                .unwrap()
                .fit(&data)
                .unwrap()
                .bic(&data)
                .unwrap()
        })
        .collect();
    // All four are the same Gaussian fitted by different formulas: equal to rounding (~1e-13).
    assert_close("bic per type", &bics, &[bics[0]; 4], 1e-12, 0.0);
}

#[test]
fn identical_points_fail_typed_without_reg_covar_and_fit_with_it() {
    let x = [3.0, -2.0].repeat(50);
    let data = DataView::from_f64(&x, 2).unwrap();
    for cov in CovarianceType::ALL {
        let err = GmmParams::builder(1)
            .covariance_type(cov)
            .reg_covar(0.0)
            .build()
            .unwrap()
            .fit(&data)
            .unwrap_err();
        let expected = if cov == CovarianceType::Tied { None } else { Some(0) };
        assert!(
            matches!(err, gmm_gpu::GmmError::IllDefinedCovariance { component } if component == expected),
            "{cov}: {err}"
        );
        assert!(err.to_string().contains("increase reg_covar"), "{err}");
        let m = GmmParams::builder(1)
            .covariance_type(cov)
            .build()
            .unwrap()
            .fit(&data)
            .unwrap();
        // Zero scatter plus reg_covar: the covariance is exactly 1e-6·I and the mean is the point.
        assert_eq!(m.means(), &[3.0, -2.0]);
        assert_close(
            &format!("{cov} covariance"),
            &m.covariance_matrix(0),
            &[1e-6, 0.0, 0.0, 1e-6],
            1e-12,
            0.0,
        );
    }
}

#[test]
fn data_offset_by_a_million_keeps_centred_variances() {
    // Two unit-spread clusters 30 apart, both near 1e6: uncentred E[x²]−μ² would lose 12 of f64's 16
    // digits (and every digit in f32); centred moments keep them.
    let centres = [1e6, 1e6, 1e6 + 30.0, 1e6 - 30.0];
    let x64 = blobs(2000, &centres, 2, 1.0, 21);
    let x32: Vec<f32> = x64.iter().map(|&v| v as f32).collect();
    let x32_as_64: Vec<f64> = x32.iter().map(|&v| f64::from(v)).collect();
    for (label, data, values) in [
        ("f64", DataView::from_f64(&x64, 2).unwrap(), &x64),
        ("f32", DataView::from_f32(&x32, 2).unwrap(), &x32_as_64),
    ] {
        // The truth, by a two-pass f64 computation over each cluster (the clusters are 30σ apart,
        // so every responsibility is 0 or 1 to within e^-400).
        let mut truth_diag = [[0.0; 2]; 2];
        for (c, truth) in truth_diag.iter_mut().enumerate() {
            let rows: Vec<&[f64]> = values.chunks(2).skip(c).step_by(2).collect();
            for (j, t) in truth.iter_mut().enumerate() {
                let mean = rows.iter().map(|r| r[j]).sum::<f64>() / rows.len() as f64;
                *t = rows.iter().map(|r| (r[j] - mean).powi(2)).sum::<f64>() / rows.len() as f64 + 1e-6;
            }
        }
        for cov in [CovarianceType::Diag, CovarianceType::Spherical] {
            let m = GmmParams::builder(2)
                .covariance_type(cov)
                .tol(1e-12)
                .build()
                .unwrap()
                .fit(&data)
                .unwrap();
            let first = if m.means()[0] < 1e6 + 15.0 { 0 } else { 1 };
            for (slot, c) in [first, 1 - first].into_iter().enumerate() {
                let got = m.covariance_matrix(c);
                assert!(
                    got[0] > 0.0 && got[3] > 0.0,
                    "{label} {cov}: non-positive variance {got:?}"
                );
                let expect = match cov {
                    CovarianceType::Diag => [truth_diag[slot][0], truth_diag[slot][1]],
                    _ => [(truth_diag[slot][0] + truth_diag[slot][1]) / 2.0; 2],
                };
                // Centred f64 sums around the previous means lose nothing to the offset: 1e-9 relative.
                assert_close(
                    &format!("{label} {cov} component {c} variances"),
                    &[got[0], got[3]],
                    &expect,
                    1e-9,
                    0.0,
                );
            }
        }
    }
}

#[test]
fn integer_sample_weights_equal_duplicated_rows() {
    let x = three_blobs(200, 7);
    let weights: Vec<f64> = (0..200).map(|i| (i % 3) as f64).collect();
    let mut dup = Vec::new();
    for (i, row) in x.chunks(2).enumerate() {
        for _ in 0..(i % 3) {
            dup.extend_from_slice(row);
        }
    }
    for cov in CovarianceType::ALL {
        // A fixed start, so that initialisation (which sees different rows) plays no part.
        let build = || {
            let b = GmmParams::builder(3)
                .covariance_type(cov)
                .tol(0.0)
                .max_iter(20)
                .weights_init(vec![0.3, 0.3, 0.4])
                .means_init(vec![0.5, 0.5, 3.0, 0.0, -1.0, 4.0]);
            let p = match cov {
                CovarianceType::Full => [1.0, 0.0, 0.0, 1.0].repeat(3),
                CovarianceType::Tied => vec![1.0, 0.0, 0.0, 1.0],
                CovarianceType::Diag => vec![1.0; 6],
                CovarianceType::Spherical => vec![1.0; 3],
            };
            b.precisions_init(p).build().unwrap()
        };
        let weighted = build()
            .fit_weighted(&DataView::from_f64(&x, 2).unwrap(), &weights)
            .unwrap();
        let duplicated = build().fit(&DataView::from_f64(&dup, 2).unwrap()).unwrap();
        // The same sums in a different order: equal to rounding, amplified over 20 iterations.
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
            &format!("{cov} weights"),
            weighted.weights(),
            duplicated.weights(),
            1e-11,
            0.0,
        );
        assert_close(
            &format!("{cov} lower bound"),
            &[weighted.lower_bound()],
            &[duplicated.lower_bound()],
            1e-12,
            0.0,
        );
    }
}

#[test]
fn the_same_seed_gives_a_bitwise_identical_model_on_any_thread_count() {
    // 20,000 samples make ten tasks, so the partition and the combine order are exercised.
    let x = three_blobs(20_000, 8);
    let data = DataView::from_f64(&x, 2).unwrap();
    for init in [
        InitMethod::KMeans,
        InitMethod::KMeansPlusPlus,
        InitMethod::Random,
        InitMethod::RandomFromData,
    ] {
        let params = GmmParams::builder(3)
            .init_method(init)
            .n_init(2)
            .seed(42)
            .max_iter(20)
            .build()
            .unwrap();
        let fit_on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| params.fit(&data).unwrap())
        };
        let one = fit_on(1);
        assert_eq!(one, fit_on(2), "{init}: 1 thread vs 2");
        assert_eq!(one, fit_on(3), "{init}: 1 thread vs 3");
        assert_eq!(one, params.fit(&data).unwrap(), "{init}: refit");
    }
}

#[test]
fn restarts_really_reinitialise_and_keep_the_best() {
    // Eight blobs and a single random-from-data start: local optima are common.
    let centres: Vec<f64> = (0..8)
        .flat_map(|i| [(i % 4) as f64 * 6.0, (i / 4) as f64 * 6.0])
        .collect();
    let x = blobs(800, &centres, 2, 1.0, 13);
    let data = DataView::from_f64(&x, 2).unwrap();
    let fit = |n_init: usize, seed: u64| {
        GmmParams::builder(8)
            .init_method(InitMethod::RandomFromData)
            .n_init(n_init)
            .seed(seed)
            .build()
            .unwrap()
            .fit(&data)
            .unwrap()
    };
    let mut singles: Vec<f64> = (0..10).map(|s| fit(1, s).lower_bound()).collect();
    singles.sort_by(f64::total_cmp);
    singles.dedup();
    assert!(
        singles.len() > 1,
        "different seeds should reach different optima here: {singles:?}"
    );
    for seed in 0..10 {
        // The first start of an n_init = 10 fit is the n_init = 1 fit's, so the best is at least as good,
        // and it is strictly better whenever that first start is not the best of the ten.
        let (one, ten) = (fit(1, seed), fit(10, seed));
        assert!(ten.lower_bound() >= one.lower_bound(), "seed {seed}");
    }
    let improved = (0..10)
        .filter(|&s| fit(10, s).lower_bound() > fit(1, s).lower_bound())
        .count();
    assert!(
        improved > 0,
        "n_init = 10 never beat a single start: restarts are not re-initialising"
    );
}

#[test]
fn every_init_method_finds_well_separated_blobs() {
    let centres = [0.0, 0.0, 10.0, 0.0, 0.0, 10.0];
    let x = blobs(900, &centres, 2, 1.0, 17);
    let data = DataView::from_f64(&x, 2).unwrap();
    for init in [
        InitMethod::KMeans,
        InitMethod::KMeansPlusPlus,
        InitMethod::Random,
        InitMethod::RandomFromData,
    ] {
        let m = GmmParams::builder(3)
            .init_method(init)
            .n_init(3)
            .seed(2)
            .tol(1e-6)
            .max_iter(500)
            .build()
            .unwrap()
            .fit(&data)
            .unwrap();
        println!("{init}: {} iterations, lower bound {}", m.n_iter(), m.lower_bound());
        assert!(m.converged(), "{init}");
        let mut found: Vec<[f64; 2]> = m.means().chunks(2).map(|c| [c[0], c[1]]).collect();
        found.sort_by(|a, b| (a[0] + 2.0 * a[1]).total_cmp(&(b[0] + 2.0 * b[1])));
        // 300 points per blob with unit spread: each mean is within 4/√300 ≈ 0.23 of its centre.
        assert_close(
            &format!("{init} means"),
            found.as_flattened(),
            &[0.0, 0.0, 10.0, 0.0, 0.0, 10.0],
            0.0,
            0.25,
        );
    }
}

#[test]
fn samples_have_the_models_moments() {
    let x = heights(4);
    let data = DataView::from_f64(&x, 1).unwrap();
    let m = GmmParams::builder(2).build().unwrap().fit(&data).unwrap();
    let n = 200_000;
    let (s, labels) = m.sample(n, 99).unwrap();
    assert_eq!((s.len(), labels.len()), (n, n));
    let mean: f64 = s.iter().sum::<f64>() / n as f64;
    let var: f64 = s.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
    let true_mean: f64 = (0..2).map(|k| m.weights()[k] * m.means()[k]).sum();
    let true_var: f64 = (0..2)
        .map(|k| m.weights()[k] * (m.covariances()[k] + (m.means()[k] - true_mean).powi(2)))
        .sum();
    // Five standard errors: σ/√n for the mean, about σ²·√(2/n) for the variance.
    assert!(
        (mean - true_mean).abs() < 5.0 * (true_var / n as f64).sqrt(),
        "{mean} vs {true_mean}"
    );
    assert!(
        (var - true_var).abs() < 5.0 * true_var * (3.0 / n as f64).sqrt(),
        "{var} vs {true_var}"
    );
    let share0 = labels.iter().filter(|&&l| l == 0).count() as f64 / n as f64;
    assert!((share0 - m.weights()[0]).abs() < 5.0 * (0.25 / n as f64).sqrt());
    assert!(
        labels.windows(2).all(|w| w[0] <= w[1]),
        "samples are grouped by component"
    );
    assert_eq!(m.sample(n, 99).unwrap().0, s, "same seed, same samples");
}
