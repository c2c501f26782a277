//! Stepwise (online) EM: one step over the whole data with γ = 1 is one batch EM iteration,
//! bitwise; partial_fit over batches is fit over their concatenation; one pass over separated
//! blobs reaches batch EM's held-out log-likelihood; and a typed error per bad schedule.

mod common;

use common::blobs;
use gmm_gpu::{CovarianceType, DataView, GaussianMixture, GmmError, GmmParams, Online};

#[test]
fn one_step_over_all_the_data_is_one_batch_iteration() {
    let x = blobs(3000, &[0.0, 0.0, 5.0, 1.0, -2.0, 6.0], 2, 1.0, 3);
    let data = DataView::from_f64(&x, 2).unwrap();
    for cov in CovarianceType::ALL {
        let batch = GmmParams::builder(3)
            .covariance_type(cov)
            .max_iter(1)
            .seed(4)
            .build()
            .unwrap()
            .fit(&data)
            .unwrap();
        // γ_1 = (1 + 0)^(−α) = 1: the running statistics are the batch's.
        let online = Online::default().batch_size(3000).offset(0.0);
        let params = GmmParams::builder(3)
            .covariance_type(cov)
            .seed(4)
            .online(online)
            .build()
            .unwrap();
        let m = GaussianMixture::new(params).fit(&data).unwrap().clone();
        assert_eq!(m.weights(), batch.weights(), "{cov}");
        assert_eq!(m.means(), batch.means(), "{cov}");
        assert_eq!(m.covariances(), batch.covariances(), "{cov}");
        assert_eq!(m.lower_bound(), batch.lower_bound(), "{cov}");
        assert_eq!(m.n_iter(), 1);
    }
}

#[test]
fn partial_fit_over_batches_is_fit_over_their_concatenation() {
    let x = blobs(5000, &[0.0, 0.0, 5.0, 1.0, -2.0, 6.0], 2, 1.0, 5);
    let data = DataView::from_f64(&x, 2).unwrap();
    for cov in CovarianceType::ALL {
        let online = Online::default().batch_size(700).passes(2);
        let params = GmmParams::builder(3)
            .covariance_type(cov)
            .seed(1)
            .online(online)
            .build()
            .unwrap();
        let whole = GaussianMixture::new(params.clone()).fit(&data).unwrap().clone();
        let mut stepwise = GaussianMixture::new(params);
        for _ in 0..2 {
            for first in (0..5000).step_by(700) {
                let rows = &x[first * 2..(first + 700).min(5000) * 2];
                stepwise.partial_fit(&DataView::from_f64(rows, 2).unwrap()).unwrap();
            }
        }
        let stepwise = stepwise.model().unwrap();
        assert_eq!(stepwise, &whole, "{cov}");
        // 8 batches per pass.
        assert_eq!(whole.n_iter(), 16);
    }
}

/// Weighted batches: integer weights equal duplicated rows, step by step.
#[test]
fn weighted_batches_equal_duplicated_rows() {
    let x = blobs(1200, &[0.0, 0.0, 5.0, 1.0], 2, 1.0, 6);
    let w: Vec<f64> = (0..1200).map(|i| (1 + i % 2) as f64).collect();
    let online = Online::default().batch_size(400);
    let params = || {
        GmmParams::builder(2)
            .weights_init(vec![0.5, 0.5])
            .means_init(vec![0.5, 0.0, 4.5, 1.0])
            .online(online)
            .build()
            .unwrap()
    };
    let mut weighted = GaussianMixture::new(params());
    let mut duplicated = GaussianMixture::new(params());
    for first in (0..1200).step_by(400) {
        let rows = &x[first * 2..(first + 400) * 2];
        weighted
            .partial_fit_weighted(&DataView::from_f64(rows, 2).unwrap(), &w[first..first + 400])
            .unwrap();
        let dup: Vec<f64> = rows
            .chunks(2)
            .enumerate()
            .flat_map(|(i, r)| r.repeat(1 + (first + i) % 2))
            .collect();
        duplicated.partial_fit(&DataView::from_f64(&dup, 2).unwrap()).unwrap();
    }
    let (a, b) = (weighted.model().unwrap(), duplicated.model().unwrap());
    // The same sums in another order, over 3 steps: 1e-12.
    common::assert_close("means", a.means(), b.means(), 1e-12, 1e-13);
    common::assert_close("covariances", a.covariances(), b.covariances(), 1e-12, 1e-13);
    common::assert_close("weights", a.weights(), b.weights(), 1e-12, 0.0);
}

/// One pass of online EM over separated blobs (40,000 × 4, K = 4, batches of 2,048) reaches a
/// held-out mean log-likelihood within 0.01 nats of batch EM's converged one, from the same start.
#[test]
fn one_pass_reaches_batch_em_on_separated_blobs() {
    let centres: Vec<f64> = (0..16)
        .map(|i| [0.0, 6.0, -6.0, 3.0][i / 4] * [1.0, -1.0, 0.5, 1.0][i % 4])
        .collect();
    let x = blobs(40_000, &centres, 4, 1.0, 8);
    let held_out = blobs(8_000, &centres, 4, 1.0, 9);
    let (data, test) = (
        DataView::from_f64(&x, 4).unwrap(),
        DataView::from_f64(&held_out, 4).unwrap(),
    );
    let batch = GmmParams::builder(4)
        .seed(2)
        .tol(1e-6)
        .build()
        .unwrap()
        .fit(&data)
        .unwrap();
    let online = Online::default().batch_size(2048);
    let m = GaussianMixture::new(GmmParams::builder(4).seed(2).online(online).build().unwrap())
        .fit(&data)
        .unwrap()
        .clone();
    let (a, b) = (m.score(&test).unwrap(), batch.score(&test).unwrap());
    assert!((a - b).abs() < 0.01, "online {a} vs batch {b}");
}

#[test]
fn bad_online_schedules_are_typed_errors() {
    for (online, field) in [
        (Online::default().batch_size(0), "batch_size"),
        (Online::default().decay(0.5), "decay"),
        (Online::default().decay(1.5), "decay"),
        (Online::default().offset(-1.0), "offset"),
        (Online::default().passes(0), "passes"),
    ] {
        let e = GmmParams::builder(2).online(online).build().unwrap_err();
        assert!(
            matches!(e, GmmError::InvalidOnline { field: f, .. } if f == field),
            "{e}"
        );
        assert!(e.to_string().contains(field), "{e}");
    }
    let e = GmmParams::builder(2)
        .online(Online::default())
        .prior(gmm_gpu::Prior::mclust())
        .build()
        .unwrap_err();
    assert!(matches!(e, GmmError::OnlineWithPrior), "{e}");
    let mut gm = GaussianMixture::new(GmmParams::builder(2).build().unwrap());
    let e = gm.partial_fit(&DataView::from_f64(&[], 2).unwrap()).unwrap_err();
    assert!(matches!(e, GmmError::TooFewSamples { n_samples: 0 }), "{e}");
}

/// The GPU steps as the CPU does, step by step: exact arithmetic to 1e-10, fast to 1e-4. The CPU
/// runs on each batch's f32 image (the values the GPU holds after centring and scaling that batch
/// in its own frame), so that only the arithmetic differs; both from a given start.
#[test]
fn the_gpu_matches_the_cpu_per_step() {
    let Some(ctx) = common::gpu() else { return };
    let x = blobs(3000, &[0.0, 0.0, 5.0, 1.0, -2.0, 6.0], 2, 1.0, 11);
    let data = DataView::from_f64(&x, 2).unwrap();
    for cov in CovarianceType::ALL {
        let start = GmmParams::builder(3)
            .covariance_type(cov)
            .max_iter(0)
            .build()
            .unwrap()
            .fit(&data)
            .unwrap();
        for (precision, tol) in [
            (gmm_gpu::GpuPrecision::Exact, 1e-10),
            (gmm_gpu::GpuPrecision::Fast, 1e-4),
        ] {
            let params = GmmParams::builder(3)
                .covariance_type(cov)
                .weights_init(start.weights().to_vec())
                .means_init(start.means().to_vec())
                .precisions_init(start.precisions())
                .gpu_precision(precision)
                .online(Online::default().batch_size(500))
                .build()
                .unwrap();
            let mut cpu = GaussianMixture::new(params.clone());
            let mut gpu = GaussianMixture::on_gpu(params, ctx.clone());
            for first in (0..3000).step_by(500) {
                let batch = DataView::from_f64(&x[first * 2..(first + 500) * 2], 2).unwrap();
                let image = gmm_gpu::gpu::f32_image(&batch).unwrap();
                let a = gpu.partial_fit(&batch).unwrap().clone();
                let b = cpu
                    .partial_fit(&DataView::from_f64(&image, 2).unwrap())
                    .unwrap()
                    .clone();
                let e = common::max_rel(a.means(), b.means(), 1.0)
                    .max(common::max_rel(a.covariances(), b.covariances(), 1.0))
                    .max(common::max_rel(a.weights(), b.weights(), 1.0));
                assert!(e <= tol, "{cov} {precision:?} step {}: {e:e}", first / 500 + 1);
                assert_eq!(a.backend(), "gpu");
            }
        }
    }
}
