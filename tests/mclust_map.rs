//! MAP-EM against R's mclust 6.0 with `priorControl()` (tests/fixtures/mclust_map.json, written by
//! tests/fixtures/make_mclust_fixtures.R): from the same start, after 1, 5 and 30 iterations, the
//! default prior's hyperparameters, the weights, means and covariances, and the log-likelihood.

mod common;

use common::{assert_close, flat, max_rel};
use gmm_gpu::{CovarianceType, DataView, GmmModel, GmmParams, GpuPrecision, Prior};
use serde_json::Value;

fn fixture() -> Value {
    serde_json::from_str(include_str!("fixtures/mclust_map.json")).unwrap()
}

/// The inverse of a small symmetric positive-definite matrix, by Gauss–Jordan elimination.
fn inverse(a: &[f64], d: usize) -> Vec<f64> {
    let mut m = a.to_vec();
    let mut inv: Vec<f64> = (0..d * d).map(|ij| f64::from(u8::from(ij / d == ij % d))).collect();
    for c in 0..d {
        let p = m[c * d + c];
        for j in 0..d {
            m[c * d + j] /= p;
            inv[c * d + j] /= p;
        }
        for r in (0..d).filter(|&r| r != c) {
            let f = m[r * d + c];
            for j in 0..d {
                m[r * d + j] -= f * m[c * d + j];
                inv[r * d + j] -= f * inv[c * d + j];
            }
        }
    }
    inv
}

/// K d × d covariance matrices (mclust's sigma) in the layout of `cov`.
fn in_layout(sigma: &[f64], cov: CovarianceType, k: usize, d: usize) -> Vec<f64> {
    match cov {
        CovarianceType::Full => sigma.to_vec(),
        CovarianceType::Tied => sigma[..d * d].to_vec(),
        CovarianceType::Diag => (0..k * d).map(|i| sigma[(i / d) * d * d + (i % d) * (d + 1)]).collect(),
        CovarianceType::Spherical => (0..k).map(|c| sigma[c * d * d]).collect(),
    }
}

struct Case {
    name: String,
    cov: CovarianceType,
    k: usize,
    d: usize,
    x: Vec<f64>,
    value: Value,
}

fn cases() -> Vec<Case> {
    let f = fixture();
    f["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let rows = &f["data"][c["data"].as_str().unwrap()];
            let d = rows[0].as_array().unwrap().len();
            Case {
                name: format!("{} {}", c["data"].as_str().unwrap(), c["model"].as_str().unwrap()),
                cov: c["covariance_type"].as_str().unwrap().parse().unwrap(),
                k: c["n_components"].as_u64().unwrap() as usize,
                d,
                x: flat(rows),
                value: c.clone(),
            }
        })
        .collect()
}

impl Case {
    /// mclust's start as initial parameters, `iters` iterations, tol 0, the default prior.
    fn params(&self, iters: usize) -> gmm_gpu::GmmParamsBuilder {
        let (k, d, cov) = (self.k, self.d, self.cov);
        let start = &self.value["start"];
        let sigma = flat(&start["covariances"]);
        let precisions: Vec<f64> = match cov {
            CovarianceType::Full => sigma.chunks_exact(d * d).flat_map(|s| inverse(s, d)).collect(),
            CovarianceType::Tied => inverse(&sigma[..d * d], d),
            _ => in_layout(&sigma, cov, k, d).iter().map(|v| 1.0 / v).collect(),
        };
        GmmParams::builder(k)
            .covariance_type(cov)
            .tol(0.0)
            .max_iter(iters)
            .weights_init(flat(&start["weights"]))
            .means_init(flat(&start["means"]))
            .precisions_init(precisions)
            .prior(Prior::mclust())
    }

    fn data(&self) -> DataView<'_> {
        DataView::from_f64(&self.x, self.d).unwrap()
    }

    /// The worst relative difference from mclust's run after `iters` iterations over the weights,
    /// means and covariances (entries near zero, such as off-diagonals and means near the origin,
    /// against a floor of the array's largest magnitude), and the log-likelihood at the end.
    fn worst(&self, m: &GmmModel, iters: usize) -> (f64, String) {
        let run = self.value["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["iterations"].as_u64() == Some(iters as u64))
            .unwrap();
        self.compare(m, run, iters)
    }

    /// The worst relative difference from one of mclust's runs.
    fn compare(&self, m: &GmmModel, run: &Value, iters: usize) -> (f64, String) {
        let n = self.x.len() / self.d;
        // mclust's loglik is that of its final parameters: the score of ours, times n.
        let loglik = m.score(&self.data()).unwrap() * n as f64;
        let sigma = flat(&run["covariances"]);
        let checks = [
            ("weights", m.weights().to_vec(), flat(&run["weights"])),
            ("means", m.means().to_vec(), flat(&run["means"])),
            (
                "covariances",
                m.covariances().to_vec(),
                in_layout(&sigma, self.cov, self.k, self.d),
            ),
            ("loglik", vec![loglik], vec![run["loglik"].as_f64().unwrap()]),
        ];
        checks
            .iter()
            .map(|(what, got, want)| {
                let floor = want.iter().fold(0.0f64, |a, v| a.max(v.abs()));
                (
                    max_rel(got, want, floor),
                    format!("{} after {iters}: {what}", self.name),
                )
            })
            .fold((0.0, String::new()), |a, b| if b.0 > a.0 { b } else { a })
    }
}

/// The default prior of every case equals mclust's `defaultPrior` (the same column means and
/// n − 1 covariance, computed here in two centred passes; mclust's one-pass var agrees to ~1e-15).
#[test]
fn the_default_prior_is_mclusts() {
    for case in cases() {
        let m = case.params(1).build().unwrap().fit(&case.data()).unwrap();
        let p = m.prior().expect("a MAP fit records its prior");
        let want = &case.value["prior"];
        assert_eq!(p.get_shrinkage(), want["shrinkage"].as_f64(), "{}", case.name);
        assert_eq!(p.get_dof(), want["dof"].as_f64(), "{}", case.name);
        assert_eq!(p.get_weights(), None);
        assert_close(
            &format!("{} prior mean", case.name),
            p.get_mean().unwrap(),
            &flat(&want["mean"]),
            1e-13,
            1e-13,
        );
        assert_close(
            &format!("{} prior scale", case.name),
            p.get_scale().unwrap(),
            &flat(&want["scale"]),
            1e-12,
            1e-13,
        );
    }
}

/// The tolerance against mclust (the issue asks for 1e-8): both evaluate the same f64 formulas in
/// another order (mclust forms ‖x̄_k − μ_P‖² uncentred; we centre), and EM amplifies the rounding
/// over 30 iterations. The worst seen is 3.0e-12 (line1 V's covariances, data near 100; ~1e-14
/// elsewhere), so 1e-11 is the tightest round number that holds.
const RTOL: f64 = 1e-11;

#[test]
fn cpu_map_em_matches_mclust_from_the_same_start() {
    let mut report = Vec::new();
    for case in cases() {
        for iters in [1, 5, 30] {
            let m = case.params(iters).build().unwrap().fit(&case.data()).unwrap();
            assert_eq!(m.n_iter(), iters, "{}", case.name);
            let (worst, what) = case.worst(&m, iters);
            report.push(format!("{what}: {worst:.1e}"));
            assert!(worst <= RTOL, "{what}: {worst:.3e} > {RTOL:e}\n{}", report.join("\n"));
        }
    }
    println!("{}", report.join("\n"));
}

/// From the same responsibilities: mclust's `me<MODEL>` (a MAP M-step from z first, then E and
/// M steps) against the crate's start from given responsibilities, after 0, 5 and 30 iterations.
#[test]
fn cpu_map_em_from_responsibilities_matches_mclust_me() {
    let mut report = Vec::new();
    for case in cases() {
        let z0 = flat(&case.value["z0"]);
        for run in case.value["me_runs"].as_array().unwrap() {
            let iters = run["iterations"].as_u64().unwrap() as usize;
            let m = GmmParams::builder(case.k)
                .covariance_type(case.cov)
                .tol(0.0)
                .max_iter(iters)
                .init_responsibilities(z0.clone())
                .prior(Prior::mclust())
                .build()
                .unwrap()
                .fit(&case.data())
                .unwrap();
            let (worst, what) = case.compare(&m, run, iters);
            report.push(format!("me {what}: {worst:.1e}"));
            assert!(worst <= RTOL, "{what}: {worst:.3e} > {RTOL:e}\n{}", report.join("\n"));
        }
    }
    println!("{}", report.join("\n"));
}

/// The GPU in every arithmetic, against the same fixtures (the issue asks for 1e-3). f32 rounding
/// of the statistics, amplified by 30 iterations of EM: the worst seen on lavapipe is 2.8e-5
/// (line1 V, Fast: data near 100 in f32), so 1e-4 holds with room for other hardware's rounding.
#[test]
fn gpu_map_em_matches_mclust_from_the_same_start() {
    let Some(ctx) = common::gpu() else { return };
    let mut report = Vec::new();
    for precision in [GpuPrecision::Fast, GpuPrecision::Exact, GpuPrecision::Auto] {
        for case in cases() {
            let params = case.params(30).gpu_precision(precision).build().unwrap();
            let m = params.fit_on(ctx, &case.data()).unwrap();
            let (worst, what) = case.worst(&m, 30);
            report.push(format!("{precision:?} {what}: {worst:.1e}"));
            assert!(worst <= 1e-4, "{precision:?} {what}: {worst:.3e}");
        }
    }
    println!("{}", report.join("\n"));
}
