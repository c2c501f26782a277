//! Streaming: with a device budget below the data, the GPU fit uploads its samples chunk by chunk
//! each pass, and gives bitwise the same model as a resident fit of the same chunks.

mod common;

use common::{blobs, gpu};
use gmm_gpu::{BackendKind, CovarianceType, DataView, GmmError, GmmModel, GmmParams, GmmParamsBuilder};

/// 5,000 samples of 3 features in three blobs, as f32 (what the device holds anyway).
fn data() -> Vec<f32> {
    let x = blobs(5000, &[0.0, 0.0, 0.0, 4.0, 1.0, -1.0, -2.0, 3.5, 2.0], 3, 1.0, 17);
    x.iter().map(|&v| v as f32).collect()
}

/// The data's bytes (60,000) exceed this budget, while two 512-sample chunks (12,288 bytes) and
/// the working buffers of K = 3 fit it: the streamed plan keeps the forced 512-sample chunks.
const BUDGET: u64 = 40_000;

#[track_caller]
fn assert_bitwise(what: &str, streamed: &GmmModel, resident: &GmmModel) {
    assert_eq!(streamed.weights(), resident.weights(), "{what}: weights");
    assert_eq!(streamed.means(), resident.means(), "{what}: means");
    assert_eq!(streamed.covariances(), resident.covariances(), "{what}: covariances");
    assert_eq!(streamed.lower_bounds(), resident.lower_bounds(), "{what}: lower bounds");
    assert_eq!(streamed.n_iter(), resident.n_iter(), "{what}: iterations");
}

fn params(cov: CovarianceType) -> GmmParamsBuilder {
    // k-means init: its Lloyd passes are streamed too.
    GmmParams::builder(3)
        .covariance_type(cov)
        .tol(0.0)
        .max_iter(8)
        .seed(5)
        .chunk_size(512)
}

#[test]
fn streamed_fits_equal_resident_fits_bitwise_for_every_type() {
    let Some(ctx) = gpu() else { return };
    let x = data();
    let view = DataView::from_f32(&x, 3).unwrap();
    for cov in CovarianceType::ALL {
        let resident = params(cov).build().unwrap().fit_on(ctx, &view).unwrap();
        let streamed = params(cov)
            .max_device_bytes(BUDGET)
            .build()
            .unwrap()
            .fit_on(ctx, &view)
            .unwrap();
        assert_bitwise(&format!("{cov}"), &streamed, &resident);
        // The samples crossed the bus in the last iteration when streamed, and only then.
        let (s, r) = (streamed.traffic().unwrap(), resident.traffic().unwrap());
        assert_eq!(s.bytes_streamed, 5000 * 3 * 4, "{cov}");
        assert_eq!(r.bytes_streamed, 0, "{cov}");
        assert_eq!(s.bytes_uploaded, r.bytes_uploaded + s.bytes_streamed, "{cov}");
        assert_eq!(
            s.dispatches, r.dispatches,
            "{cov}: the same kernels over the same chunks"
        );
        assert!(
            s.stream_fill > std::time::Duration::ZERO,
            "{cov}: no fill time recorded"
        );
    }
}

#[test]
fn streamed_weighted_fits_equal_resident_ones() {
    if gpu().is_none() {
        return;
    }
    let x = data();
    let view = DataView::from_f32(&x, 3).unwrap();
    let w: Vec<f64> = (0..5000).map(|i| 0.5 + (i % 7) as f64 * 0.25).collect();
    let gpu_params = |b: GmmParamsBuilder| b.backend(BackendKind::Gpu).build().unwrap();
    let resident = gpu_params(params(CovarianceType::Full))
        .fit_weighted(&view, &w)
        .unwrap();
    // The weights stay resident (20,000 bytes), so the same 512-sample chunks need a larger budget
    // that still holds less than the data.
    let streamed = gpu_params(params(CovarianceType::Full).max_device_bytes(BUDGET + 20_000))
        .fit_weighted(&view, &w)
        .unwrap();
    assert_eq!(streamed.backend(), "gpu");
    let (s, r) = (streamed.traffic().unwrap(), resident.traffic().unwrap());
    assert_eq!((s.bytes_streamed, s.dispatches), (5000 * 3 * 4, r.dispatches));
    assert_bitwise("weighted full", &streamed, &resident);
}

#[test]
fn a_budget_too_small_for_two_chunks_is_a_typed_error() {
    let Some(ctx) = gpu() else { return };
    let x = data();
    let view = DataView::from_f32(&x, 3).unwrap();
    let err = params(CovarianceType::Full)
        .max_device_bytes(1000)
        .build()
        .unwrap()
        .fit_on(ctx, &view)
        .unwrap_err();
    match err {
        GmmError::GpuBudgetTooSmall { budget, needed } => assert!(budget == 1000 && needed > 1000, "{needed}"),
        other => panic!("{other}"),
    }
}
