//! A fit started from the user's responsibilities or labels: its first step is the M-step from
//! them (checked against the naive formulas), labels are one-hot responsibilities, sample weights
//! multiply them, and the GPU starts where the CPU does.

mod common;

use common::{assert_close, blobs};
use gmm_gpu::{CovarianceType, DataView, GmmParams};
use rand::{RngExt, SeedableRng};

fn data() -> (Vec<f64>, usize) {
    (blobs(90, &[0.0, 0.0, 4.0, 1.0, -2.0, 5.0], 2, 1.0, 12), 2)
}

/// Random rows of 3 responsibilities, normalised (seeded).
fn random_resp(n: usize, k: usize, seed: u64) -> Vec<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut r: Vec<f64> = (0..n * k).map(|_| rng.random::<f64>() + 0.01).collect();
    for row in r.chunks_exact_mut(k) {
        let s: f64 = row.iter().sum();
        row.iter_mut().for_each(|v| *v /= s);
    }
    r
}

/// The M-step from `r` by the naive formulas (full covariances): N_k = Σ w r, μ_k = Σ w r x / N_k,
/// Σ_k = Σ w r (x − μ_k)(x − μ_k)ᵀ / N_k + reg_covar·I, π_k = N_k / Σ N.
fn naive(x: &[f64], d: usize, r: &[f64], k: usize, w: &[f64], reg: f64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let n = x.len() / d;
    let nk: Vec<f64> = (0..k).map(|c| (0..n).map(|i| w[i] * r[i * k + c]).sum()).collect();
    let total: f64 = nk.iter().sum();
    let means: Vec<f64> = (0..k * d)
        .map(|cj| {
            (0..n)
                .map(|i| w[i] * r[i * k + cj / d] * x[i * d + cj % d])
                .sum::<f64>()
                / nk[cj / d]
        })
        .collect();
    let covs: Vec<f64> = (0..k * d * d)
        .map(|e| {
            let (c, a, b) = (e / (d * d), (e / d) % d, e % d);
            let s: f64 = (0..n)
                .map(|i| w[i] * r[i * k + c] * (x[i * d + a] - means[c * d + a]) * (x[i * d + b] - means[c * d + b]))
                .sum();
            s / nk[c] + if a == b { reg } else { 0.0 }
        })
        .collect();
    (nk.iter().map(|v| v / total).collect(), means, covs)
}

#[test]
fn the_start_is_the_m_step_from_the_given_responsibilities() {
    let (x, d) = data();
    let n = x.len() / d;
    let r = random_resp(n, 3, 1);
    let w: Vec<f64> = (0..n).map(|i| 0.5 + (i % 4) as f64).collect();
    let view = DataView::from_f64(&x, d).unwrap();
    let params = || {
        GmmParams::builder(3)
            .max_iter(0)
            .init_responsibilities(r.clone())
            .build()
            .unwrap()
    };
    for (weights, wv) in [(None, vec![1.0; n]), (Some(&w), w.clone())] {
        let m = match weights {
            None => params().fit(&view).unwrap(),
            Some(w) => params().fit_weighted(&view, w).unwrap(),
        };
        let (pi, mu, sigma) = naive(&x, d, &r, 3, &wv, 1e-6);
        // Sums of 270 terms in another order: 1e-13.
        assert_close("weights", m.weights(), &pi, 1e-13, 0.0);
        assert_close("means", m.means(), &mu, 1e-13, 1e-13);
        assert_close("covariances", m.covariances(), &sigma, 1e-12, 1e-13);
    }
}

#[test]
fn labels_are_one_hot_responsibilities() {
    let (x, d) = data();
    let n = x.len() / d;
    let labels: Vec<usize> = (0..n).map(|i| (i * 7) % 3).collect();
    let one_hot: Vec<f64> = labels
        .iter()
        .flat_map(|&l| (0..3).map(move |c| f64::from(u8::from(c == l))))
        .collect();
    let view = DataView::from_f64(&x, d).unwrap();
    for cov in CovarianceType::ALL {
        let a = GmmParams::builder(3)
            .covariance_type(cov)
            .max_iter(5)
            .init_labels(labels.clone())
            .build()
            .unwrap()
            .fit(&view)
            .unwrap();
        let b = GmmParams::builder(3)
            .covariance_type(cov)
            .max_iter(5)
            .init_responsibilities(one_hot.clone())
            .build()
            .unwrap()
            .fit(&view)
            .unwrap();
        // The same products by 1 and 0: bitwise.
        assert_eq!(a.means(), b.means(), "{cov}");
        assert_eq!(a.covariances(), b.covariances(), "{cov}");
    }
}

#[test]
fn the_gpu_starts_where_the_cpu_does() {
    let Some(ctx) = common::gpu() else { return };
    let (x, d) = data();
    let n = x.len() / d;
    let r = random_resp(n, 3, 2);
    let view = DataView::from_f64(&x, d).unwrap();
    for cov in CovarianceType::ALL {
        let params = GmmParams::builder(3)
            .covariance_type(cov)
            .max_iter(0)
            .init_responsibilities(r.clone())
            .build()
            .unwrap();
        let cpu = params.fit(&view).unwrap();
        let gpu = params.fit_on(ctx, &view).unwrap();
        // The start is summed on the host in f64 from the rows read back: equal to rounding.
        assert_close(&format!("{cov} means"), gpu.means(), cpu.means(), 1e-13, 1e-13);
        assert_close(
            &format!("{cov} covariances"),
            gpu.covariances(),
            cpu.covariances(),
            1e-13,
            1e-13,
        );
    }
}
