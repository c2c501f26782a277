//! The model's JSON form: scikit-learn's attribute names and shapes, and an exact round trip.

mod common;

use common::blobs;
use gmm_gpu::{CovarianceType, DataView, GmmModel, GmmParams};

#[test]
fn json_round_trip_is_exact_for_every_type() {
    let x = blobs(300, &[0.0, 0.0, 5.0, 5.0, -5.0, 5.0], 2, 1.0, 1);
    let data = DataView::from_f64(&x, 2).unwrap();
    for cov in CovarianceType::ALL {
        let m = GmmParams::builder(3)
            .covariance_type(cov)
            .build()
            .unwrap()
            .fit(&data)
            .unwrap();
        let text = m.to_json();
        let back = GmmModel::from_json(&text).unwrap();
        // serde_json writes the shortest representation that reads back to the same f64.
        assert_eq!(back, m, "{cov}");
        assert_eq!(back.predict_proba(&data).unwrap(), m.predict_proba(&data).unwrap());
    }
}

#[test]
fn json_uses_scikit_learns_names_and_shapes() {
    let x = blobs(100, &[0.0, 0.0, 0.0, 5.0, 5.0, 5.0], 3, 1.0, 2);
    let data = DataView::from_f64(&x, 3).unwrap();
    let shapes = |v: &serde_json::Value| {
        let mut shape = Vec::new();
        let mut cur = v;
        while let Some(a) = cur.as_array() {
            shape.push(a.len());
            cur = &a[0];
        }
        shape
    };
    for (cov, expect) in [
        (CovarianceType::Full, vec![2, 3, 3]),
        (CovarianceType::Tied, vec![3, 3]),
        (CovarianceType::Diag, vec![2, 3]),
        (CovarianceType::Spherical, vec![2]),
    ] {
        let m = GmmParams::builder(2)
            .covariance_type(cov)
            .build()
            .unwrap()
            .fit(&data)
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&m.to_json()).unwrap();
        for key in [
            "covariance_type",
            "weights",
            "means",
            "covariances",
            "precisions_cholesky",
            "converged",
            "n_iter",
            "lower_bound",
            "n_features",
        ] {
            assert!(v.get(key).is_some(), "{cov}: missing {key}");
        }
        assert_eq!(v["covariance_type"], cov.as_str());
        assert_eq!(v["n_features"], 3);
        assert_eq!(shapes(&v["means"]), vec![2, 3]);
        assert_eq!(shapes(&v["covariances"]), expect, "{cov}");
        assert_eq!(shapes(&v["precisions_cholesky"]), expect, "{cov}");
    }
}

#[test]
fn an_initialisation_only_model_writes_its_infinite_lower_bound_as_null() {
    let x = blobs(50, &[0.0, 3.0], 1, 1.0, 3);
    let data = DataView::from_f64(&x, 1).unwrap();
    let m = GmmParams::builder(2).max_iter(0).build().unwrap().fit(&data).unwrap();
    let text = m.to_json();
    assert!(text.contains("\"lower_bound\": null"), "{text}");
    assert_eq!(GmmModel::from_json(&text).unwrap().lower_bound(), f64::NEG_INFINITY);
}

#[test]
fn a_model_started_from_precisions_reads_back() {
    // With max_iter 0 the covariances are derived from the given precision factors (not the other way
    // round, as after an M-step): reading back recomputes the factors from the covariances, and they
    // must still match. The second precision has eigenvalues 3.2 and 0.8 (condition number 4).
    let x = [0.0, 0.0, 1.0, 1.0, 2.0, 2.0];
    let m = GmmParams::builder(3)
        .weights_init(vec![0.3, 0.3, 0.4])
        .means_init(vec![-4.0, 0.0, 3.0, 3.0, 2.0, -3.0])
        .precisions_init(vec![1.0, 0.0, 0.0, 1.0, 2.0, -1.2, -1.2, 2.0, 0.5, 0.0, 0.0, 4.0])
        .max_iter(0)
        .build()
        .unwrap()
        .fit(&DataView::from_f64(&x, 2).unwrap())
        .unwrap();
    let back = GmmModel::from_json(&m.to_json()).unwrap();
    assert_eq!(back, m);
}

/// A MAP fit's file carries its resolved prior (scale nested d × d, or one number) and its
/// log-likelihood beside the log-posterior lower bound, and reads back exactly.
#[test]
fn a_map_fit_records_its_prior_and_log_likelihood() {
    let x = blobs(200, &[0.0, 0.0, 5.0, 5.0], 2, 1.0, 3);
    let data = DataView::from_f64(&x, 2).unwrap();
    for cov in CovarianceType::ALL {
        let m = GmmParams::builder(2)
            .covariance_type(cov)
            .prior(gmm_gpu::Prior::mclust().weights(2.0))
            .build()
            .unwrap()
            .fit(&data)
            .unwrap();
        let text = m.to_json();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let prior = m.prior().unwrap();
        assert_eq!(v["prior"]["shrinkage"], 0.01, "{cov}");
        assert_eq!(v["prior"]["dof"], 4.0, "{cov}");
        assert_eq!(v["prior"]["weights"], 2.0, "{cov}");
        assert_eq!(v["log_likelihood"].as_f64(), Some(m.log_likelihood()), "{cov}");
        assert_ne!(v["lower_bound"].as_f64(), Some(m.log_likelihood()), "{cov}");
        let scale = &v["prior"]["scale"];
        match cov {
            CovarianceType::Full | CovarianceType::Tied => {
                let rows: Vec<Vec<f64>> = serde_json::from_value(scale.clone()).unwrap();
                assert_eq!(rows.concat(), prior.get_scale().unwrap(), "{cov}");
            }
            _ => assert_eq!(scale.as_f64(), Some(prior.get_scale().unwrap()[0]), "{cov}"),
        }
        let back = GmmModel::from_json(&text).unwrap();
        assert_eq!(back, m, "{cov}");
        // A maximum-likelihood fit writes neither field.
        let ml = GmmParams::builder(2)
            .covariance_type(cov)
            .build()
            .unwrap()
            .fit(&data)
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&ml.to_json()).unwrap();
        assert!(v.get("prior").is_none() && v.get("log_likelihood").is_none(), "{cov}");
        assert_eq!(ml.log_likelihood(), ml.lower_bound());
    }
}

/// A prior edited into a model file is checked as a user's prior.
#[test]
fn a_bad_prior_in_a_model_file_is_a_typed_error() {
    let x = blobs(100, &[0.0, 0.0, 5.0, 5.0], 2, 1.0, 4);
    let data = DataView::from_f64(&x, 2).unwrap();
    let m = GmmParams::builder(2)
        .prior(gmm_gpu::Prior::mclust())
        .build()
        .unwrap()
        .fit(&data)
        .unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&m.to_json()).unwrap();
    v["prior"]["scale"] = serde_json::json!([[1.0, 2.0], [2.0, 1.0]]);
    let e = GmmModel::from_json(&v.to_string()).unwrap_err();
    assert!(
        matches!(e, gmm_gpu::GmmError::PriorScaleNotPositiveDefinite { .. }),
        "{e}"
    );
    v["prior"]["scale"] = serde_json::json!([[1.0, 0.0], [0.0, 1.0]]);
    v["prior"]["dof"] = serde_json::json!(0.5);
    let e = GmmModel::from_json(&v.to_string()).unwrap_err();
    assert!(matches!(e, gmm_gpu::GmmError::PriorDof { .. }), "{e}");
}
