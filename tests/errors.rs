//! Every bad parameter and every bad input gives its own typed error, with a message that says what,
//! where and how to fix it — never a panic, except the index accessors' documented panics, tested
//! here too.

use gmm_gpu::{CovarianceType, DataView, GmmError, GmmModel, GmmParams, SampleWeights};
use serde_json::{Value, json};

fn ok_data() -> Vec<f64> {
    (0..40)
        .map(|i| (i as f64 * 0.37).sin() * 3.0 + (i % 2) as f64)
        .collect()
}

/// Builds with `f` applied to a K=2 builder and returns the error.
fn build_err(f: impl FnOnce(gmm_gpu::GmmParamsBuilder) -> gmm_gpu::GmmParamsBuilder) -> GmmError {
    f(GmmParams::builder(2)).build().unwrap_err()
}

fn fit_err(params: GmmParams, x: &[f64], d: usize) -> GmmError {
    params.fit(&DataView::from_f64(x, d).unwrap()).unwrap_err()
}

fn says(err: &GmmError, words: &[&str]) {
    let msg = err.to_string();
    for w in words {
        assert!(msg.contains(w), "message {msg:?} should mention {w:?}");
    }
}

#[test]
fn zero_components() {
    let e = GmmParams::builder(0).build().unwrap_err();
    assert!(matches!(e, GmmError::ZeroComponents));
    says(&e, &["n_components", ">= 1"]);
}

#[test]
fn bad_tol() {
    for v in [-1e-3, f64::NAN, f64::INFINITY] {
        let e = build_err(|b| b.tol(v));
        assert!(
            matches!(e, GmmError::InvalidTol { value } if value.to_bits() == v.to_bits()),
            "{e}"
        );
        says(&e, &["tol", ">= 0"]);
    }
}

#[test]
fn bad_reg_covar() {
    for v in [-1e-6, f64::NAN, f64::NEG_INFINITY] {
        let e = build_err(|b| b.reg_covar(v));
        assert!(
            matches!(e, GmmError::InvalidRegCovar { value } if value.to_bits() == v.to_bits()),
            "{e}"
        );
        says(&e, &["reg_covar", ">= 0"]);
    }
}

#[test]
fn zero_n_init() {
    let e = build_err(|b| b.n_init(0));
    assert!(matches!(e, GmmError::ZeroNInit));
    says(&e, &["n_init"]);
}

#[test]
fn weights_init_of_the_wrong_length() {
    let e = build_err(|b| b.weights_init(vec![1.0]));
    assert!(matches!(e, GmmError::WeightsInitLength { expected: 2, got: 1 }), "{e}");
}

#[test]
fn weights_init_not_positive() {
    for (w, bad) in [(vec![1.5, -0.5], 1), (vec![0.0, 1.0], 0), (vec![f64::NAN, 1.0], 0)] {
        let e = build_err(|b| b.weights_init(w));
        assert!(
            matches!(e, GmmError::WeightsInitNotPositive { component, .. } if component == bad),
            "{e}"
        );
        says(&e, &[&format!("weights_init[{bad}]")]);
    }
}

#[test]
fn weights_init_not_summing_to_one() {
    let e = build_err(|b| b.weights_init(vec![0.5, 0.6]));
    assert!(
        matches!(e, GmmError::WeightsInitSum { sum } if (sum - 1.1).abs() < 1e-12),
        "{e}"
    );
    says(&e, &["sum", "normalise"]);
}

#[test]
fn means_init_of_the_wrong_shape() {
    let e = build_err(|b| b.means_init(vec![0.0, 1.0, 2.0]));
    assert!(
        matches!(
            e,
            GmmError::MeansInitShape {
                n_components: 2,
                got: 3,
                ..
            }
        ),
        "{e}"
    );
    let e = build_err(|b| b.means_init(vec![]));
    assert!(matches!(e, GmmError::MeansInitShape { got: 0, .. }), "{e}");
}

#[test]
fn means_init_not_finite() {
    let e = build_err(|b| b.means_init(vec![0.0, 1.0, 2.0, f64::INFINITY]));
    assert!(
        matches!(
            e,
            GmmError::MeansInitNotFinite {
                component: 1,
                feature: 1,
                ..
            }
        ),
        "{e}"
    );
    says(&e, &["means_init[1][1]"]);
}

#[test]
fn precisions_init_of_the_wrong_shape() {
    // Two means of two features: full needs 2·2·2 = 8 values.
    let e = build_err(|b| b.means_init(vec![0.0; 4]).precisions_init(vec![1.0; 4]));
    assert!(
        matches!(
            e,
            GmmError::PrecisionsInitShape {
                expected: 8,
                got: 4,
                n_features: 2,
                ..
            }
        ),
        "{e}"
    );
    says(&e, &["[2, 2, 2]", "full"]);
    // Without means, a length that is no K·d² is rejected too.
    let e = build_err(|b| b.precisions_init(vec![1.0; 6]));
    assert!(matches!(e, GmmError::PrecisionsInitShape { got: 6, .. }), "{e}");
    let e = build_err(|b| {
        b.covariance_type(CovarianceType::Spherical)
            .precisions_init(vec![1.0; 3])
    });
    assert!(
        matches!(
            e,
            GmmError::PrecisionsInitShape {
                expected: 2,
                got: 3,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn precisions_init_not_symmetric() {
    let p = [[1.0, 0.0, 0.0, 1.0], [2.0, 0.5, 0.4, 2.0]].concat();
    let e = build_err(|b| b.precisions_init(p));
    assert!(
        matches!(
            e,
            GmmError::PrecisionsInitNotSymmetric {
                component: 1,
                row: 0,
                col: 1,
                ..
            }
        ),
        "{e}"
    );
    says(&e, &["component 1", "symmetric"]);
}

#[test]
fn precisions_init_not_positive_definite() {
    let p = [[1.0, 0.0, 0.0, 1.0], [1.0, 2.0, 2.0, 1.0]].concat();
    let e = build_err(|b| b.precisions_init(p));
    assert!(
        matches!(e, GmmError::PrecisionsInitNotPositiveDefinite { component: 1 }),
        "{e}"
    );
    let e = build_err(|b| {
        b.covariance_type(CovarianceType::Diag)
            .precisions_init(vec![1.0, 1.0, 1.0, -1.0])
    });
    assert!(
        matches!(e, GmmError::PrecisionsInitNotPositiveDefinite { component: 1 }),
        "{e}"
    );
    let e = build_err(|b| {
        b.covariance_type(CovarianceType::Spherical)
            .precisions_init(vec![0.0, 1.0])
    });
    assert!(
        matches!(e, GmmError::PrecisionsInitNotPositiveDefinite { component: 0 }),
        "{e}"
    );
}

#[test]
fn zero_features() {
    let e = DataView::from_f64(&[], 0).unwrap_err();
    assert!(matches!(e, GmmError::NoFeatures));
}

#[test]
fn data_length_not_a_whole_number_of_rows() {
    let e = DataView::from_f64(&[1.0, 2.0, 3.0], 2).unwrap_err();
    assert!(matches!(e, GmmError::DataLength { len: 3, n_features: 2 }), "{e}");
}

#[test]
fn non_finite_data_names_row_and_column() {
    let mut x = vec![0.0f64; 12];
    x[7] = f64::NAN;
    let e = DataView::from_f64(&x, 3).unwrap_err();
    assert!(matches!(e, GmmError::NonFiniteData { row: 2, column: 1, .. }), "{e}");
    says(&e, &["row 2", "column 1"]);
    let mut y = vec![0.0f32; 12];
    y[11] = f32::NEG_INFINITY;
    let e = DataView::from_f32(&y, 3).unwrap_err();
    assert!(matches!(e, GmmError::NonFiniteData { row: 3, column: 2, .. }), "{e}");
}

#[test]
fn fewer_than_two_samples() {
    let e = fit_err(GmmParams::builder(1).build().unwrap(), &[1.0, 2.0], 2);
    assert!(matches!(e, GmmError::TooFewSamples { n_samples: 1 }), "{e}");
}

#[test]
fn fewer_samples_than_components() {
    let e = fit_err(GmmParams::builder(5).build().unwrap(), &[1.0, 2.0, 3.0], 1);
    assert!(
        matches!(
            e,
            GmmError::FewerSamplesThanComponents {
                n_samples: 3,
                n_components: 5
            }
        ),
        "{e}"
    );
}

#[test]
fn feature_mismatch_with_the_model_or_the_initial_means() {
    let x = ok_data();
    let model = GmmParams::builder(2)
        .build()
        .unwrap()
        .fit(&DataView::from_f64(&x, 2).unwrap())
        .unwrap();
    let e = model.predict(&DataView::from_f64(&x, 4).unwrap()).unwrap_err();
    assert!(
        matches!(
            e,
            GmmError::FeatureMismatch {
                expected: 2,
                got: 4,
                ..
            }
        ),
        "{e}"
    );
    says(&e, &["the model"]);
    let params = GmmParams::builder(2).means_init(vec![0.0; 6]).build().unwrap();
    let e = fit_err(params, &x, 2);
    assert!(
        matches!(
            e,
            GmmError::FeatureMismatch {
                what: "means_init",
                expected: 3,
                got: 2
            }
        ),
        "{e}"
    );
}

#[test]
fn sample_weights_of_the_wrong_length() {
    let e = SampleWeights::new(&[1.0; 3], 4).unwrap_err();
    assert!(matches!(e, GmmError::SampleWeightLength { expected: 4, got: 3 }), "{e}");
}

#[test]
fn negative_or_non_finite_sample_weight() {
    for w in [-1.0, f64::NAN] {
        let e = SampleWeights::new(&[1.0, w, 1.0], 3).unwrap_err();
        assert!(matches!(e, GmmError::InvalidSampleWeight { index: 1, .. }), "{e}");
    }
    // The same check guards fit_weighted.
    let x = ok_data();
    let e = GmmParams::builder(2)
        .build()
        .unwrap()
        .fit_weighted(&DataView::from_f64(&x, 2).unwrap(), &[-1.0; 20])
        .unwrap_err();
    assert!(matches!(e, GmmError::InvalidSampleWeight { index: 0, .. }), "{e}");
}

#[test]
fn all_sample_weights_zero() {
    let e = SampleWeights::new(&[0.0; 3], 3).unwrap_err();
    assert!(matches!(e, GmmError::ZeroSampleWeights));
}

#[test]
fn ill_defined_covariance_names_the_component() {
    // Component 1 starts on the duplicated point with nothing else near it.
    let mut x = ok_data();
    x.extend_from_slice(&[100.0, 100.0, 100.0, 100.0]);
    let params = GmmParams::builder(2)
        .covariance_type(CovarianceType::Diag)
        .reg_covar(0.0)
        .weights_init(vec![0.5, 0.5])
        .means_init(vec![0.0, 0.5, 100.0, 100.0])
        .precisions_init(vec![1.0; 4])
        .build()
        .unwrap();
    let e = fit_err(params, &x, 2);
    assert!(
        matches!(e, GmmError::IllDefinedCovariance { component: Some(1) }),
        "{e}"
    );
    says(
        &e,
        &[
            "component 1",
            "increase reg_covar",
            "decrease the number of components",
            "scale the input data",
        ],
    );
}

#[test]
fn non_finite_likelihood_from_overflowing_data() {
    // (1e200)² overflows f64: no component can give the last sample a finite density.
    let mut x = ok_data();
    x.extend_from_slice(&[1e200, 0.0]);
    let params = GmmParams::builder(1)
        .weights_init(vec![1.0])
        .means_init(vec![0.0, 0.0])
        .precisions_init(vec![1.0, 0.0, 0.0, 1.0])
        .build()
        .unwrap();
    let e = fit_err(params, &x, 2);
    assert!(matches!(e, GmmError::NonFiniteLikelihood { iteration: 1 }), "{e}");
    says(&e, &["scale the input data"]);
}

#[test]
fn model_file_with_a_wrong_shape() {
    let x = ok_data();
    let model = GmmParams::builder(2)
        .build()
        .unwrap()
        .fit(&DataView::from_f64(&x, 2).unwrap())
        .unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&model.to_json()).unwrap();
    v["covariances"][1] = serde_json::json!([[1.0, 0.0]]);
    let e = GmmModel::from_json(&v.to_string()).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("covariances") && msg.contains("[2, 2, 2]"), "{msg}");
}

#[test]
fn model_file_with_a_bad_value() {
    let x = ok_data();
    let model = GmmParams::builder(2)
        .build()
        .unwrap()
        .fit(&DataView::from_f64(&x, 2).unwrap())
        .unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&model.to_json()).unwrap();
    v["weights"] = serde_json::json!([0.7, 0.7]);
    let msg = GmmModel::from_json(&v.to_string()).unwrap_err().to_string();
    assert!(msg.contains("weights") && msg.contains("sum to 1"), "{msg}");
    let mut v: serde_json::Value = serde_json::from_str(&model.to_json()).unwrap();
    v["precisions_cholesky"][0][1][1] = serde_json::json!(-1.0);
    let msg = GmmModel::from_json(&v.to_string()).unwrap_err().to_string();
    assert!(msg.contains("precisions_cholesky") && msg.contains("index 3"), "{msg}");
}

#[test]
fn model_file_with_an_indefinite_covariance() {
    let x = ok_data();
    let model = GmmParams::builder(2)
        .build()
        .unwrap()
        .fit(&DataView::from_f64(&x, 2).unwrap())
        .unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&model.to_json()).unwrap();
    v["covariances"][1] = serde_json::json!([[1.0, 2.0], [2.0, 1.0]]);
    let msg = GmmModel::from_json(&v.to_string()).unwrap_err().to_string();
    assert!(
        msg.contains("covariances") && msg.contains("index 1") && msg.contains("positive definite"),
        "{msg}"
    );
}

/// A K=2 model of `ok_data` (20 samples, 2 features) with the given covariance type, and its JSON.
fn model_and_json(cov: CovarianceType) -> (GmmModel, Value) {
    let x = ok_data();
    let model = GmmParams::builder(2)
        .covariance_type(cov)
        .build()
        .unwrap()
        .fit(&DataView::from_f64(&x, 2).unwrap())
        .unwrap();
    let v = serde_json::from_str(&model.to_json()).unwrap();
    (model, v)
}

#[test]
fn model_file_that_is_not_json_or_lacks_a_field() {
    // Line 2 is ` "weights": [0.5 0.5]}`: after `0.5` (columns 14 to 16) and a space, the second
    // number starts at column 18 where a comma or `]` must be.
    let e = GmmModel::from_json("{\"covariance_type\": \"full\",\n \"weights\": [0.5 0.5]}").unwrap_err();
    assert!(
        matches!(&e, GmmError::ModelJson { line: 2, column: 18, message } if message == "expected `,` or `]`"),
        "{e:?}"
    );
    says(&e, &["line 2, column 18", "GmmModel::to_json"]);
    // An empty object lacks the first field; the error is at its closing brace, column 2.
    let e = GmmModel::from_json("{}").unwrap_err();
    assert!(
        matches!(&e, GmmError::ModelJson { line: 1, column: 2, message } if message == "missing field `covariance_type`"),
        "{e:?}"
    );
}

#[test]
fn model_file_with_no_features() {
    // Diag and spherical shapes allow 0 features ([K, 0] and [K]); such a model has nothing to model.
    for (cov, factors) in [
        (CovarianceType::Diag, json!([[], []])),
        (CovarianceType::Spherical, json!([1.0, 1.0])),
    ] {
        let v = json!({
            "covariance_type": cov.as_str(),
            "n_features": 0,
            "weights": [0.5, 0.5],
            "means": [[], []],
            "covariances": factors,
            "precisions_cholesky": factors,
            "converged": true,
            "n_iter": 1,
            "lower_bound": 0.0,
        });
        let e = GmmModel::from_json(&v.to_string()).unwrap_err();
        assert!(
            matches!(
                e,
                GmmError::ModelValue {
                    field: "n_features",
                    index: 0,
                    value: 0.0,
                    ..
                }
            ),
            "{cov}: {e}"
        );
        says(&e, &["n_features", "at least one feature"]);
    }
}

#[test]
fn model_file_with_a_precision_factor_that_is_not_upper_triangular() {
    // Flat indices: full is [K][d][d], so [1][1][0] is 1·4 + 1·2 + 0 = 6; tied [1][0] is 2.
    for (cov, pointer, index) in [
        (CovarianceType::Full, "/precisions_cholesky/1/1/0", 6),
        (CovarianceType::Tied, "/precisions_cholesky/1/0", 2),
    ] {
        let (_, mut v) = model_and_json(cov);
        *v.pointer_mut(pointer).unwrap() = json!(0.25);
        let e = GmmModel::from_json(&v.to_string()).unwrap_err();
        assert!(
            matches!(
                e,
                GmmError::ModelValue {
                    field: "precisions_cholesky",
                    index: i,
                    value: 0.25,
                    ..
                } if i == index
            ),
            "{cov}: {e}"
        );
        says(&e, &["upper triangular", "below the diagonal to 0"]);
    }
}

#[test]
fn model_file_whose_precision_factor_does_not_match_its_covariances() {
    // Each row of the factor must be the one the covariances imply, to 1e-6 of the row's norm:
    // 1e-5 of the norm (ten times the tolerance) fails, 1e-7 (a tenth) reads back.
    // Full: row 0 of component 1, entry [1][0][1], flat index 4 + 1 = 5. Diag: entry [0][1], index 1.
    for (cov, row_pointer, j, index) in [
        (CovarianceType::Full, "/precisions_cholesky/1/0", 1, 5),
        (CovarianceType::Tied, "/precisions_cholesky/0", 1, 1),
        (CovarianceType::Diag, "/precisions_cholesky/0", 1, 1),
    ] {
        let (model, v) = model_and_json(cov);
        let row: Vec<f64> = serde_json::from_value(v.pointer(row_pointer).unwrap().clone()).unwrap();
        // A diag row is the component's d factors; each is its own row of one entry.
        let norm = if cov == CovarianceType::Diag {
            row[j].abs()
        } else {
            row.iter().map(|u| u * u).sum::<f64>().sqrt()
        };
        let edited = |shift: f64| {
            let mut v = v.clone();
            v.pointer_mut(row_pointer).unwrap()[j] = json!(row[j] + shift * norm);
            GmmModel::from_json(&v.to_string())
        };
        let e = edited(1e-5).unwrap_err();
        assert!(
            matches!(
                e,
                GmmError::ModelValue {
                    field: "precisions_cholesky",
                    index: i,
                    value,
                    ..
                } if i == index && value == row[j] + 1e-5 * norm
            ),
            "{cov}: {e}"
        );
        says(
            &e,
            &["does not match the covariances", "recompute it from the covariances"],
        );
        let near = edited(1e-7).unwrap();
        assert_eq!(near.covariances(), model.covariances(), "{cov}");
    }
    // A plausible hand edit: the two components' spherical factors swapped (their variances differ).
    let (model, mut v) = model_and_json(CovarianceType::Spherical);
    assert_ne!(model.covariances()[0], model.covariances()[1]);
    v["precisions_cholesky"] = json!([model.precisions_cholesky()[1], model.precisions_cholesky()[0]]);
    let e = GmmModel::from_json(&v.to_string()).unwrap_err();
    assert!(
        matches!(
            e,
            GmmError::ModelValue {
                field: "precisions_cholesky",
                index: 0,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn sample_more_values_than_memory_can_hold() {
    // usize::MAX samples of 2 features: n·d overflows usize.
    let (model, _) = model_and_json(CovarianceType::Full);
    let e = model.sample(usize::MAX, 0).unwrap_err();
    assert!(
        matches!(
            e,
            GmmError::SampleTooLarge {
                n_samples: usize::MAX,
                n_features: 2
            }
        ),
        "{e}"
    );
    says(
        &e,
        &["18446744073709551615 samples of 2 features", "draw fewer samples"],
    );
    // usize::MAX / 4 samples of 1 feature: the count fits usize, its 8-byte values do not fit memory.
    let x = ok_data();
    let model1 = GmmParams::builder(2)
        .build()
        .unwrap()
        .fit(&DataView::from_f64(&x, 1).unwrap())
        .unwrap();
    let e = model1.sample(usize::MAX / 4, 0).unwrap_err();
    assert!(
        matches!(e, GmmError::SampleTooLarge { n_samples, n_features: 1 } if n_samples == usize::MAX / 4),
        "{e}"
    );
}

#[test]
#[should_panic(
    expected = "GmmModel::mean(2): component index 2 is out of range for a model of 2 components; pass k < 2"
)]
fn mean_of_a_component_past_the_last_panics() {
    let (model, _) = model_and_json(CovarianceType::Full);
    // The last component is fine; one past it panics with K and k named.
    assert_eq!(model.mean(1), &model.means()[2..4]);
    model.mean(2);
}

#[test]
#[should_panic(
    expected = "GmmModel::covariance_matrix(2): component index 2 is out of range for a model of 2 components; pass k < 2"
)]
fn covariance_matrix_of_a_component_past_the_last_panics() {
    // Tied: every component shares one matrix, so only the check stops k = 2 returning it silently.
    let (model, _) = model_and_json(CovarianceType::Tied);
    assert_eq!(model.covariance_matrix(1), model.covariances());
    model.covariance_matrix(2);
}

// ---- the prior (MAP) ----------------------------------------------------------------------

fn prior_build_err(prior: gmm_gpu::Prior) -> GmmError {
    build_err(|b| b.prior(prior))
}

fn prior_fit_err(cov: CovarianceType, prior: gmm_gpu::Prior) -> GmmError {
    let params = GmmParams::builder(2).covariance_type(cov).prior(prior).build().unwrap();
    fit_err(params, &ok_data(), 2)
}

#[test]
fn prior_shrinkage_not_positive() {
    for v in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let e = prior_build_err(gmm_gpu::Prior::mclust().shrinkage(v));
        assert!(
            matches!(e, GmmError::PriorShrinkage { value } if value.to_bits() == v.to_bits()),
            "{e}"
        );
        says(&e, &["shrinkage", "> 0"]);
    }
}

#[test]
fn prior_dof_not_above_d_minus_one() {
    for v in [0.0, -2.0, f64::NAN] {
        let e = prior_build_err(gmm_gpu::Prior::mclust().dof(v));
        assert!(matches!(e, GmmError::PriorDof { n_features: None, .. }), "{e}");
        says(&e, &["degrees of freedom", "d - 1"]);
    }
    // With d = 2 known at the fit: ν = 1 = d − 1 is refused, ν = 1.5 is not.
    let e = prior_fit_err(CovarianceType::Full, gmm_gpu::Prior::mclust().dof(1.0));
    assert!(
        matches!(
            e,
            GmmError::PriorDof {
                value: 1.0,
                n_features: Some(2)
            }
        ),
        "{e}"
    );
    says(&e, &["2 features", "> 1"]);
    let params = GmmParams::builder(2)
        .prior(gmm_gpu::Prior::mclust().dof(1.5))
        .build()
        .unwrap();
    params.fit(&DataView::from_f64(&ok_data(), 2).unwrap()).unwrap();
}

#[test]
fn prior_weights_below_one() {
    for v in [0.5, 0.0, f64::NAN, f64::INFINITY] {
        let e = prior_build_err(gmm_gpu::Prior::mclust().weights(v));
        assert!(
            matches!(e, GmmError::PriorWeights { value } if value.to_bits() == v.to_bits()),
            "{e}"
        );
        says(&e, &["weight concentration", ">= 1"]);
    }
}

#[test]
fn prior_entries_not_finite() {
    let e = prior_build_err(gmm_gpu::Prior::mclust().mean(vec![0.0, f64::NAN]));
    assert!(
        matches!(
            e,
            GmmError::PriorNotFinite {
                field: "mean",
                index: 1,
                ..
            }
        ),
        "{e}"
    );
    let e = prior_build_err(gmm_gpu::Prior::mclust().scale(vec![1.0, 0.0, 0.0, f64::INFINITY]));
    assert!(
        matches!(
            e,
            GmmError::PriorNotFinite {
                field: "scale",
                index: 3,
                ..
            }
        ),
        "{e}"
    );
    says(&e, &["scale[3]", "finite"]);
}

#[test]
fn prior_mean_of_the_wrong_length() {
    let e = prior_fit_err(CovarianceType::Diag, gmm_gpu::Prior::mclust().mean(vec![0.0, 1.0, 2.0]));
    assert!(
        matches!(
            e,
            GmmError::PriorMeanLength {
                field: "mean",
                expected: 2,
                got: 3
            }
        ),
        "{e}"
    );
    says(&e, &["mean", "3 values", "2 features"]);
}

#[test]
fn prior_scale_of_the_wrong_shape() {
    for (cov, scale, expected) in [
        (CovarianceType::Full, vec![1.0], 4),
        (CovarianceType::Tied, vec![1.0; 3], 4),
        (CovarianceType::Diag, vec![1.0, 0.0, 0.0, 1.0], 1),
        (CovarianceType::Spherical, vec![1.0, 1.0], 1),
    ] {
        let got = scale.len();
        let e = prior_fit_err(cov, gmm_gpu::Prior::mclust().scale(scale));
        assert!(
            matches!(e, GmmError::PriorScaleShape { covariance_type, expected: x, got: g, .. } if covariance_type == cov && x == expected && g == got),
            "{cov}: {e}"
        );
        says(&e, &["scale", &format!("{got} values")]);
    }
}

#[test]
fn prior_scale_not_positive_definite() {
    for (cov, scale) in [
        (CovarianceType::Full, vec![1.0, 2.0, 2.0, 1.0]),
        (CovarianceType::Tied, vec![1.0, 0.5, 0.0, 1.0]),
        (CovarianceType::Diag, vec![-1.0]),
        (CovarianceType::Spherical, vec![0.0]),
    ] {
        let e = prior_fit_err(cov, gmm_gpu::Prior::mclust().scale(scale));
        assert!(
            matches!(e, GmmError::PriorScaleNotPositiveDefinite { covariance_type, .. } if covariance_type == cov),
            "{cov}: {e}"
        );
        says(&e, &["scale", "positive definite"]);
    }
}

// ---- initial responsibilities -----------------------------------------------------------

#[test]
fn init_responsibilities_of_the_wrong_shape() {
    let e = build_err(|b| b.init_responsibilities(vec![0.5; 5]));
    assert!(
        matches!(
            e,
            GmmError::InitResponsibilitiesShape {
                n_components: 2,
                got: 5
            }
        ),
        "{e}"
    );
    says(&e, &["5 values", "N x K"]);
    // 19 rows of 2 against 20 samples.
    let params = GmmParams::builder(2)
        .init_responsibilities(vec![0.5; 38])
        .build()
        .unwrap();
    let e = fit_err(params, &ok_data(), 2);
    assert!(
        matches!(
            e,
            GmmError::InitResponsibilitiesRows {
                what: "responsibilities",
                expected: 20,
                got: 19
            }
        ),
        "{e}"
    );
    let params = GmmParams::builder(2).init_labels(vec![0; 21]).build().unwrap();
    let e = fit_err(params, &ok_data(), 2);
    assert!(
        matches!(
            e,
            GmmError::InitResponsibilitiesRows {
                what: "labels",
                expected: 20,
                got: 21
            }
        ),
        "{e}"
    );
    says(&e, &["21 samples", "20"]);
}

#[test]
fn init_responsibilities_negative() {
    for v in [-0.25, f64::NAN] {
        let mut r = vec![0.5; 40];
        r[7] = v;
        let e = build_err(|b| b.init_responsibilities(r));
        assert!(
            matches!(
                e,
                GmmError::InitResponsibilitiesNegative {
                    row: 3,
                    component: 1,
                    ..
                }
            ),
            "{e}"
        );
        says(&e, &["sample 3", "component 1", ">= 0"]);
    }
}

#[test]
fn init_responsibilities_rows_not_summing_to_one() {
    let mut r = vec![0.5; 40];
    r[10] = 0.6;
    let e = build_err(|b| b.init_responsibilities(r));
    assert!(
        matches!(e, GmmError::InitResponsibilitiesRowSum { row: 5, sum } if (sum - 1.1).abs() < 1e-12),
        "{e}"
    );
    says(&e, &["sample 5", "normalise"]);
}

#[test]
fn init_label_out_of_range() {
    let mut labels = vec![0; 20];
    labels[4] = 2;
    let e = build_err(|b| b.init_labels(labels));
    assert!(
        matches!(
            e,
            GmmError::InitLabelOutOfRange {
                row: 4,
                label: 2,
                n_components: 2
            }
        ),
        "{e}"
    );
    says(&e, &["sample 4", "below n_components"]);
}

#[test]
fn init_method_responsibilities_without_them() {
    let e = build_err(|b| b.init_method(gmm_gpu::InitMethod::Responsibilities));
    assert!(matches!(e, GmmError::InitResponsibilitiesMissing), "{e}");
    says(&e, &["init_responsibilities", "init_labels"]);
}

// ---- variational fits -------------------------------------------------------------------

fn vb_build_err(v: gmm_gpu::Variational) -> GmmError {
    build_err(|b| b.variational(v))
}

fn vb_fit_err(cov: CovarianceType, v: gmm_gpu::Variational) -> GmmError {
    let params = GmmParams::builder(2)
        .covariance_type(cov)
        .variational(v)
        .build()
        .unwrap();
    fit_err(params, &ok_data(), 2)
}

#[test]
fn variational_priors_not_positive() {
    use gmm_gpu::Variational as V;
    for v in [0.0, -1.0, f64::NAN] {
        let e = vb_build_err(V::dirichlet_process().weight_concentration_prior(v));
        assert!(
            matches!(
                e,
                GmmError::VariationalPriorNotPositive {
                    field: "weight_concentration_prior",
                    ..
                }
            ),
            "{e}"
        );
        let e = vb_build_err(V::dirichlet_distribution().mean_precision_prior(v));
        assert!(
            matches!(
                e,
                GmmError::VariationalPriorNotPositive {
                    field: "mean_precision_prior",
                    ..
                }
            ),
            "{e}"
        );
        says(&e, &["mean_precision_prior", "> 0"]);
    }
}

#[test]
fn variational_dof_not_above_d_minus_one() {
    let e = vb_build_err(gmm_gpu::Variational::dirichlet_process().degrees_of_freedom_prior(f64::NAN));
    assert!(matches!(e, GmmError::VariationalDof { n_features: None, .. }), "{e}");
    let e = vb_fit_err(
        CovarianceType::Full,
        gmm_gpu::Variational::dirichlet_process().degrees_of_freedom_prior(1.0),
    );
    assert!(
        matches!(
            e,
            GmmError::VariationalDof {
                value: 1.0,
                n_features: Some(2)
            }
        ),
        "{e}"
    );
    says(&e, &["degrees_of_freedom_prior", "> 1"]);
}

#[test]
fn variational_mean_prior_of_the_wrong_length() {
    let e = vb_fit_err(
        CovarianceType::Diag,
        gmm_gpu::Variational::dirichlet_process().mean_prior(vec![1.0]),
    );
    assert!(
        matches!(
            e,
            GmmError::PriorMeanLength {
                field: "mean_prior",
                expected: 2,
                got: 1
            }
        ),
        "{e}"
    );
    says(&e, &["mean_prior", "1 values"]);
}

#[test]
fn variational_covariance_prior_of_the_wrong_shape_or_not_positive_definite() {
    use gmm_gpu::Variational as V;
    // diag takes d values (scikit-learn's shape), unlike the MAP prior's one number.
    for (cov, psi, expected) in [
        (CovarianceType::Full, vec![1.0; 2], 4),
        (CovarianceType::Diag, vec![1.0], 2),
        (CovarianceType::Spherical, vec![1.0, 1.0], 1),
    ] {
        let got = psi.len();
        let e = vb_fit_err(cov, V::dirichlet_process().covariance_prior(psi));
        assert!(
            matches!(e, GmmError::PriorScaleShape { field: "covariance_prior", expected: x, got: g, .. } if x == expected && g == got),
            "{cov}: {e}"
        );
    }
    for (cov, psi) in [
        (CovarianceType::Tied, vec![1.0, 3.0, 3.0, 1.0]),
        (CovarianceType::Diag, vec![1.0, 0.0]),
        (CovarianceType::Spherical, vec![-2.0]),
    ] {
        let e = vb_fit_err(cov, V::dirichlet_process().covariance_prior(psi));
        assert!(
            matches!(
                e,
                GmmError::PriorScaleNotPositiveDefinite {
                    field: "covariance_prior",
                    ..
                }
            ),
            "{cov}: {e}"
        );
        says(&e, &["covariance_prior", "positive definite"]);
    }
    let e = vb_build_err(V::dirichlet_process().covariance_prior(vec![f64::INFINITY]));
    assert!(
        matches!(
            e,
            GmmError::PriorNotFinite {
                field: "covariance_prior",
                index: 0,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn variational_with_a_map_prior() {
    let e = build_err(|b| {
        b.prior(gmm_gpu::Prior::mclust())
            .variational(gmm_gpu::Variational::dirichlet_process())
    });
    assert!(matches!(e, GmmError::PriorAndVariational), "{e}");
    says(&e, &["prior", "variational", "not both"]);
}

#[test]
fn variational_with_initial_parameters() {
    let e = build_err(|b| {
        b.means_init(vec![0.0, 1.0])
            .variational(gmm_gpu::Variational::dirichlet_process())
    });
    assert!(
        matches!(e, GmmError::VariationalInitialParameters { field: "means_init" }),
        "{e}"
    );
    says(&e, &["means_init", "responsibilities"]);
    let e = build_err(|b| {
        b.weights_init(vec![0.5, 0.5])
            .variational(gmm_gpu::Variational::dirichlet_process())
    });
    assert!(
        matches!(e, GmmError::VariationalInitialParameters { field: "weights_init" }),
        "{e}"
    );
}
