//! The f64 CPU path against scikit-learn, from the same user-given start (tests/fixtures/sklearn_em.json,
//! written by tests/fixtures/make_fixtures.py).
//!
//! The fixtures' data sit near the origin (or use 'full', which scikit-learn centres), so scikit-learn's
//! uncentred diag/tied/spherical moments and our centred ones agree to ~1e-13 there.

mod common;

use common::{assert_close, max_rel};
use gmm_gpu::{CovarianceType, DataView, GmmParams};
use serde_json::Value;

fn flat(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().flat_map(flat).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap()],
        Value::Bool(b) => vec![f64::from(u8::from(*b))],
        other => panic!("unexpected fixture value {other}"),
    }
}

fn cases() -> Vec<Value> {
    let text = include_str!("fixtures/sklearn_em.json");
    let v: Value = serde_json::from_str(text).unwrap();
    v["cases"].as_array().unwrap().clone()
}

/// Relative tolerance for matching scikit-learn (the issue asks for 1e-9). Both compute the same f64
/// formulas in a different order (and we centre the moments), so they differ by rounding, which 50 EM
/// iterations amplify: the worst seen is 7e-11, on the data offset by 1e4 (~1e-13 elsewhere), so
/// 1e-10 is the tightest round number that holds.
const RTOL: f64 = 1e-10;

#[test]
fn cpu_matches_sklearn_from_the_same_start() {
    let mut worst_by_type: Vec<(String, f64)> = Vec::new();
    for case in cases() {
        let name = case["name"].as_str().unwrap().to_string();
        let cov: CovarianceType = case["covariance_type"].as_str().unwrap().parse().unwrap();
        let x_rows = case["X"].as_array().unwrap();
        let d = x_rows[0].as_array().unwrap().len();
        let x = flat(&case["X"]);
        let data = DataView::from_f64(&x, d).unwrap();
        let k = case["weights_init"].as_array().unwrap().len();
        let mut worst: f64 = 0.0;
        for run in case["runs"].as_array().unwrap() {
            let t = run["max_iter"].as_u64().unwrap() as usize;
            let params = GmmParams::builder(k)
                .covariance_type(cov)
                .tol(0.0)
                .reg_covar(case["reg_covar"].as_f64().unwrap())
                .max_iter(t)
                .weights_init(flat(&case["weights_init"]))
                .means_init(flat(&case["means_init"]))
                .precisions_init(flat(&case["precisions_init"]))
                .build()
                .unwrap();
            let m = params.fit(&data).unwrap();
            let what = |field: &str| format!("{name} after {t} iterations: {field}");
            assert_eq!(
                m.n_iter(),
                run["n_iter"].as_u64().unwrap() as usize,
                "{}",
                what("n_iter")
            );
            assert_eq!(
                m.converged(),
                run["converged"].as_bool().unwrap(),
                "{}",
                what("converged")
            );
            // Arrays whose entries can be near zero (means, off-diagonals, responsibilities) are compared
            // with an absolute floor of RTOL times the array's largest magnitude.
            let checks: [(&str, Vec<f64>, Vec<f64>); 8] = [
                ("weights", m.weights().to_vec(), flat(&run["weights"])),
                ("means", m.means().to_vec(), flat(&run["means"])),
                ("covariances", m.covariances().to_vec(), flat(&run["covariances"])),
                (
                    "precisions_cholesky",
                    m.precisions_cholesky().to_vec(),
                    flat(&run["precisions_cholesky"]),
                ),
                ("precisions", m.precisions(), flat(&run["precisions"])),
                ("lower_bounds", m.lower_bounds().to_vec(), flat(&run["lower_bounds"])),
                (
                    "score_samples",
                    m.score_samples(&data).unwrap(),
                    flat(&run["score_samples"]),
                ),
                (
                    "predict_proba",
                    m.predict_proba(&data).unwrap(),
                    flat(&run["predict_proba"]),
                ),
            ];
            for (field, ours, theirs) in &checks {
                let scale = theirs.iter().fold(0.0f64, |s, v| s.max(v.abs()));
                assert_close(&what(field), ours, theirs, RTOL, RTOL * scale);
                worst = worst.max(max_rel(ours, theirs, 1e-3 * scale));
            }
            let scalars = [
                ("lower_bound", m.lower_bound(), run["lower_bound"].as_f64().unwrap()),
                ("score", m.score(&data).unwrap(), run["score"].as_f64().unwrap()),
                ("bic", m.bic(&data).unwrap(), run["bic"].as_f64().unwrap()),
                ("aic", m.aic(&data).unwrap(), run["aic"].as_f64().unwrap()),
            ];
            for (field, ours, theirs) in scalars {
                assert_close(&what(field), &[ours], &[theirs], RTOL, 0.0);
                worst = worst.max(max_rel(&[ours], &[theirs], 0.0));
            }
            let labels: Vec<f64> = m.predict(&data).unwrap().into_iter().map(|l| l as f64).collect();
            assert_eq!(labels, flat(&run["predict"]), "{}", what("predict"));
        }
        worst_by_type.push((name, worst));
    }
    for (name, w) in &worst_by_type {
        println!("worst relative error against scikit-learn, {name}: {w:.2e}");
    }
}
