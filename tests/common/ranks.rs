//! Data whose rows, dealt to P ranks, put a component past Auto's guard in one rank's frame only
//! (tests/distributed_gpu.rs with thread ranks, tests/mpi.rs under mpirun), and the f64 reference
//! of a fit over them.

use gmm_gpu::distributed::rows_of;
use gmm_gpu::{BackendKind, CovarianceType, DataView, GmmModel, GmmParams, GmmParamsBuilder, GpuKernels, GpuPrecision};

/// Where the second blob sits on feature 0, in units of both blobs' σ = 1. The frame of a rank's
/// rows centres each feature on their mean (src/gpu/upload.rs), and the guard's whitened offset
/// of a component is then |μ − mean|·U_ii at d = 2: past the guard where
/// √(d + 2)·2⁻²⁴·offset > 1e-5, i.e. offset > 83.9. A rank holding only the second blob's rows
/// sees the first blob at 97 (past it, by 16%); the whole data's mean, 0.75·97 = 73 at P = 2 and
/// 0.67·97 = 65 at P = 3, and a rank holding both blobs alike (48.5) are inside it.
pub const SECOND: f64 = 97.0;

/// Two-float kernels against the f64 fit of the same f32 data, relative to each array's largest
/// entry: seen 3.2e-9 (a covariance; the means 5e-11, the lower bounds 7e-10), so 3e-8.
pub const TWO_FLOAT: f64 = 3e-8;

/// P − 1 ranks' worth of rows alternating between N((0, 0), I) and N((SECOND, 0), I), then the
/// last rank's, all from the second: 1,000 rows a rank, seeded.
pub fn data(p: usize) -> Vec<f64> {
    let n = 1000 * p;
    let first_of_last = rows_of(p - 1, p, n).start;
    let centres: Vec<f64> = (0..n)
        .flat_map(|i| {
            let second = i >= first_of_last || i % 2 == 1;
            [if second { SECOND } else { 0.0 }, 0.0]
        })
        .collect();
    let noise = super::blobs(n, &[0.0, 0.0], 2, 1.0, 25);
    centres.iter().zip(&noise).map(|(c, z)| c + z).collect()
}

/// The true parameters as the start, up to 10 iterations to `tol`.
pub fn params(p: usize, kernels: GpuKernels, precision: GpuPrecision, tol: f64) -> GmmParams {
    start(p, kernels, precision, tol).build().unwrap()
}

pub fn start(p: usize, kernels: GpuKernels, precision: GpuPrecision, tol: f64) -> GmmParamsBuilder {
    let second = (p + 1) as f64 / (2 * p) as f64;
    GmmParams::builder(2)
        .covariance_type(CovarianceType::Full)
        .weights_init(vec![1.0 - second, second])
        .means_init(vec![0.0, 0.0, SECOND, 0.0])
        .precisions_init(vec![1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0])
        .tol(tol)
        .max_iter(10)
        .gpu_kernels(kernels)
        .gpu_precision(precision)
}

/// The guard's measure of the first blob (μ = 0, U = I) in the frame of `rows`, as above.
pub fn offset_measure(rows: &[f64]) -> f64 {
    let n = rows.len() / 2;
    let mean = |j: usize| rows.iter().skip(j).step_by(2).sum::<f64>() / n as f64;
    let offset = mean(0).abs().max(mean(1).abs());
    4f64.sqrt() * (-24f64).exp2() * offset
}

/// The data as P ranks hold it on their devices: each rank's rows rounded to f32 in their own
/// frame (`gpu::f32_image`), back in the caller's units.
pub fn ranks_image(x: &[f64], p: usize) -> Vec<f64> {
    let n = x.len() / 2;
    (0..p)
        .flat_map(|r| {
            let rows = rows_of(r, p, n);
            let view = DataView::from_f64(&x[rows.start * 2..rows.end * 2], 2).unwrap();
            gmm_gpu::gpu::f32_image(&view).unwrap()
        })
        .collect()
}

/// The f64 CPU fit of the data as the ranks hold it, from the same start: what an exact
/// distributed fit computes but for its arithmetic.
pub fn cpu_fit_of_ranks_image(x: &[f64], p: usize) -> GmmModel {
    let image = ranks_image(x, p);
    let view = DataView::from_f64(&image, 2).unwrap();
    start(p, GpuKernels::Auto, GpuPrecision::Exact, 0.0)
        .backend(BackendKind::Cpu)
        .build()
        .unwrap()
        .fit(&view)
        .unwrap()
}
