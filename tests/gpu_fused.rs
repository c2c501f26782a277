//! The fused EM pass (shaders/fused.wgsl: E-step, normalisation and statistics in one kernel per
//! block) against the split kernels and the f64 CPU path, from the same start, at sizes that leave
//! partial tiles, blocks and statistics units. Runs on any wgpu adapter (lavapipe in CI); with
//! CI=true a missing adapter fails.

mod common;

use common::{assert_close, blobs, gpu, max_rel, shared_start};
use gmm_gpu::{CovarianceType, DataView, GmmModel, GmmParamsBuilder, GpuContext, GpuKernels, GpuPrecision};

/// Both GPU paths evaluate h and the responsibilities with the same f32 operations (their log
/// likelihoods agree to 1e-13), but in different compiled kernels, where the compiler may contract
/// a different multiply-add into an fma: a responsibility can differ by an ulp (6e-8), and the
/// statistics' two-float sums run in a different order. After one iteration the worst relative
/// difference seen here is 2.5e-6 (a covariance entry of a 16-feature full fit at N = 255), so
/// 1e-5 holds with 4× to spare and still catches a sample the fused pass dropped or counted twice
/// (one of 255 samples moves a weight by ~4e-3).
const SAME_PASS_RTOL: f64 = 1e-5;
/// The two paths' lower bounds at the same start: exact, every piece two-float, so only f64-level
/// rounding of the final sums differs (seen 0); fast, a compiler's different fma contraction moves
/// a sample's log p by an f32 ulp (~2e-7 at |log p| ~ 3), unbiased over the samples (seen 3.7e-10
/// at N = 255).
const SAME_PASS_LB_EXACT: f64 = 1e-12;
const SAME_PASS_LB_FAST: f64 = 1e-8;
/// Against the f64 CPU after a few iterations: tests/gpu.rs's bound.
const CPU_RTOL: f64 = 1e-4;
const LB_ATOL: f64 = 1e-5;

/// The fit with `kernels`, and the dispatches of its last pass.
fn fit(ctx: &GpuContext, params: GmmParamsBuilder, data: &DataView, kernels: GpuKernels) -> (GmmModel, u32) {
    let m = params.gpu_kernels(kernels).build().unwrap().fit_on(ctx, data).unwrap();
    let dispatches = m.traffic().expect("a GPU fit records its traffic").dispatches;
    (m, dispatches)
}

/// Weights, means, covariances and lower bound of `a` against `b` within `rtol` (an absolute floor
/// of `rtol` times each array's largest magnitude) and `lb_atol`.
fn assert_models(what: &str, a: &GmmModel, b: &GmmModel, rtol: f64, lb_atol: f64) {
    let scale = |v: &[f64]| v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    for (name, x, y) in [
        ("weights", a.weights(), b.weights()),
        ("means", a.means(), b.means()),
        ("covariances", a.covariances(), b.covariances()),
    ] {
        assert_close(&format!("{what}: {name}"), x, y, rtol, rtol * scale(y));
    }
    assert_close(
        &format!("{what}: lower bound"),
        &[a.lower_bound()],
        &[b.lower_bound()],
        0.0,
        lb_atol,
    );
}

/// `d`-feature blobs around `k` centres 3 apart per feature, `n` samples.
fn data(n: usize, d: usize, k: usize, seed: u64) -> Vec<f64> {
    let centres: Vec<f64> = (0..k * d).map(|i| 3.0 * ((i / d + i % d) % k) as f64).collect();
    blobs(n, &centres, d, 1.0, seed)
}

/// Every covariance type at feature and component counts around the fused pass's tiles and units
/// (d = 1, 3, 8, 16; K up to the most a workgroup holds), at N = 255 (one partial tile) and 4,133
/// (nine fused blocks, the last partial, and a combine level): one iteration agrees with the split
/// kernels to f64 rounding, and both agree with the CPU; the fused run makes two fewer dispatches
/// per chunk (it really ran). In both arithmetics.
#[test]
fn the_fused_pass_matches_the_split_kernels_and_the_cpu() {
    let Some(ctx) = gpu() else { return };
    for (precision, lb_atol) in [
        (GpuPrecision::Exact, SAME_PASS_LB_EXACT),
        (GpuPrecision::Fast, SAME_PASS_LB_FAST),
    ] {
        fused_against_split(ctx, precision, lb_atol);
    }
}

fn fused_against_split(ctx: &GpuContext, precision: GpuPrecision, lb_atol: f64) {
    let mut worst = (0.0f64, String::new());
    let mut worst_lb = 0.0f64;
    for (d, k, types) in [
        (1, 16, &CovarianceType::ALL[..]),
        (3, 5, &CovarianceType::ALL[..]),
        (8, 8, &CovarianceType::ALL[..]),
        (16, 4, &[CovarianceType::Full, CovarianceType::Tied][..]),
        (16, 16, &[CovarianceType::Diag, CovarianceType::Spherical][..]),
    ] {
        for n in [255usize, 4_133] {
            let x = data(n, d, k.min(4), (n + d) as u64);
            let view = DataView::from_f64(&x, d).unwrap();
            for &cov in types {
                let what = format!("N = {n}, d = {d}, K = {k} {cov}, {precision}");
                let one = || {
                    shared_start(&view, k, cov)
                        .reg_covar(1e-3)
                        .tol(0.0)
                        .max_iter(1)
                        .gpu_precision(precision)
                };
                let (fused, fused_dispatches) = fit(ctx, one(), &view, GpuKernels::Auto);
                let (split, split_dispatches) = fit(ctx, one(), &view, GpuKernels::Split);
                assert_eq!(
                    fused_dispatches + 2,
                    split_dispatches,
                    "{what}: the fused pass did not run"
                );
                worst_lb = worst_lb.max((fused.lower_bound() - split.lower_bound()).abs());
                assert_models(&what, &fused, &split, SAME_PASS_RTOL, lb_atol);
                let rel = max_rel(fused.covariances(), split.covariances(), 1e-300);
                if rel > worst.0 {
                    worst = (rel, what.clone());
                }
                let cpu = one().build().unwrap().fit(&view).unwrap();
                assert_models(&format!("{what} against the CPU"), &fused, &cpu, CPU_RTOL, LB_ATOL);
            }
        }
    }
    println!(
        "{precision}: fused against split, worst covariance: {:.1e} ({}), worst lower bound {worst_lb:.1e}",
        worst.0, worst.1
    );
}

/// Weighted samples (some zero) over several chunks and iterations: the fused pass reads each
/// sample's weight, and a zero weight counts nothing; against the CPU.
#[test]
fn weighted_fused_fits_over_chunks_match_the_cpu() {
    let Some(ctx) = gpu() else { return };
    let (n, d, k) = (3_001, 4, 3);
    let x = data(n, d, k, 8);
    let w: Vec<f64> = (0..n).map(|i| [0.0, 0.5, 1.0, 2.5][i % 4]).collect();
    let view = DataView::from_f64(&x, d).unwrap();
    for cov in CovarianceType::ALL {
        let params = shared_start(&view, k, cov)
            .tol(0.0)
            .max_iter(10)
            .chunk_size(1_000)
            .build()
            .unwrap();
        let cpu = params.fit_weighted(&view, &w).unwrap();
        let fused = gmm_gpu::GaussianMixture::on_gpu(params, ctx.clone())
            .fit_weighted(&view, &w)
            .unwrap()
            .clone();
        assert_models(&format!("weighted {cov}"), &fused, &cpu, CPU_RTOL, LB_ATOL);
    }
}
