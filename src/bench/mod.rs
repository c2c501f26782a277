//! `gmm bench`'s library side: the standard cases, each kernel of an EM iteration timed on the GPU
//! (timestamp queries where the adapter has them, else the host's clock per submission), its
//! exact bytes and flops ([`cost`]), and the adapter's own peaks ([`peaks`]) to put them against.
//!
//! ```no_run
//! use gmm_gpu::GpuContext;
//! use gmm_gpu::bench::{self, peaks};
//!
//! let ctx = GpuContext::new()?;
//! let timing = bench::best_timing(&ctx);
//! let peaks = peaks::measure(&ctx, false, timing)?;
//! for case in bench::standard_cases() {
//!     let report = bench::run_case(&ctx, &case, 0.01, 3, &peaks, timing, Default::default())?;
//!     println!("{} {}: {:.2} ms per iteration", report.case, report.covariance, report.iteration_ms);
//! }
//! # Ok::<(), gmm_gpu::GmmError>(())
//! ```

pub mod cost;
pub mod infer;
pub mod ops;
pub mod peaks;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;
use serde::Serialize;

use crate::backend::Backend;
use crate::data::DataView;
use crate::error::GmmError;
use crate::gpu::GpuContext;
use crate::gpu::backend::{Clock, GpuBackend, Source};
use crate::gpu::plan::{Budget, stats_kind_for};
use crate::gpu::{GpuKernels, GpuPrecision};
use crate::kinds::CovarianceType;
use crate::mixture::Mixture;
use crate::mstep::m_step;
use crate::stats::SuffStats;

pub use crate::gpu::passes::Kernel;
pub use peaks::Peaks;

/// The CPU block kernels one at a time, for the Criterion benches (benches/cpu_kernels.rs); not a
/// stable API.
#[doc(hidden)]
pub use crate::cpu::bench::KernelBench;

/// The M-step's reg_covar: the blobs have unit spread, and a scaled-down case can leave fewer
/// samples per component than features, whose covariance 1e-3 keeps positive definite (the cost of
/// an iteration does not depend on it).
const REG_COVAR: f64 = 1e-3;

/// One standard case: N samples of d features, K components.
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    pub name: &'static str,
    pub n: usize,
    pub d: usize,
    pub k: usize,
    pub covariance: CovarianceType,
    /// A published figure to compare with, if any.
    pub reference: &'static str,
}

/// The standard cases of issue 8, in order (A runs twice: full and diag).
pub fn standard_cases() -> Vec<Case> {
    let case = |name, n, d, k, covariance, reference| Case {
        name,
        n,
        d,
        k,
        covariance,
        reference,
    };
    use CovarianceType::{Diag, Full};
    vec![
        case("A", 1_000_000, 8, 8, Full, ""),
        case("A", 1_000_000, 8, 8, Diag, ""),
        case("B", 1_000_000, 32, 64, Full, ""),
        case("C", 1_000_000, 64, 64, Diag, "TorchGMM: 77 ms/iter on a GTX 1080 Ti"),
        case(
            "D",
            1_000_000,
            128,
            1024,
            Diag,
            "Flash-GMM: 152 ms per E-step on an A100",
        ),
        case("E", 100_000, 32, 16, Full, "TorchGMM: 24 ms/iter on a GTX 1080 Ti"),
        case("F", 100_000, 512, 16, Full, ""),
    ]
}

/// How the kernels were timed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Timing {
    /// The device's timestamp queries, one compute pass per dispatch.
    Timestamp,
    /// The host's clock around one waited submission per kernel (includes submission overhead).
    Wall,
}

/// Timestamp queries where the device has them, else the wall clock.
pub fn best_timing(ctx: &GpuContext) -> Timing {
    if ctx.has_timestamps() {
        Timing::Timestamp
    } else {
        Timing::Wall
    }
}

/// One kernel's figures over a whole EM iteration (all chunks).
#[derive(Clone, Debug, Serialize)]
pub struct KernelReport {
    pub name: &'static str,
    /// Median time over the timed iterations.
    pub ms: f64,
    pub bytes: u64,
    pub flops: u64,
    pub gbs: f64,
    pub gflops: f64,
    /// Percent of the measured copy bandwidth and of the measured FMA rate.
    pub pct_copy: f64,
    pub pct_fma: f64,
}

/// One case's figures.
#[derive(Clone, Debug, Serialize)]
pub struct CaseReport {
    pub case: &'static str,
    pub covariance: &'static str,
    pub n: usize,
    pub d: usize,
    pub k: usize,
    pub timing: Timing,
    /// Whether the EM pass ran the fused kernel (else the split ones).
    pub fused: bool,
    /// The arithmetic the timed passes ran, as the model records it: "fast", "exact (two-float)",
    /// "exact (f64)", or "fast + exact (…)" where Auto's guard routed some components to the exact
    /// kernels (it may have switched during the warm-up).
    pub precision: String,
    /// Median time of a whole EM iteration: the model upload, every kernel, the readback, the f64
    /// collect and the host M-step.
    pub iteration_ms: f64,
    /// The kernels' times summed.
    pub kernels_ms: f64,
    pub kernels: Vec<KernelReport>,
    pub reference: &'static str,
}

/// The middle value (the mean of the two middle ones for an even count).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// Seeded f32 blobs: `k` centres ~ N(0, 3²) per feature, each sample a centre (in turn) plus
/// N(0, 1) noise; rows are generated in parallel blocks with their own seeds, so the data depends
/// on the seed only.
pub fn blobs(n: usize, d: usize, k: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let wide = Normal::new(0.0f32, 3.0).expect("a valid normal");
    let centres: Vec<f32> = (0..k * d).map(|_| wide.sample(&mut rng)).collect();
    const ROWS: usize = 4096;
    let mut x = vec![0f32; n * d];
    x.par_chunks_mut(ROWS * d).enumerate().for_each(|(b, block)| {
        let mut rng = StdRng::seed_from_u64(seed ^ (b as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let noise = Normal::new(0.0f32, 1.0).expect("a valid normal");
        for (r, row) in block.chunks_exact_mut(d).enumerate() {
            let c = (b * ROWS + r) % k;
            for (j, v) in row.iter_mut().enumerate() {
                *v = centres[c * d + j] + noise.sample(&mut rng);
            }
        }
    });
    x
}

/// The start every case uses: K rows spread through the data as means, unit covariances, equal
/// weights.
fn start(x: &[f32], n: usize, d: usize, k: usize, covariance: CovarianceType) -> Result<Mixture, GmmError> {
    let mut mix = Mixture::zeros(covariance, k, d);
    mix.weights.fill(1.0 / k as f64);
    for c in 0..k {
        let row = c * (n / k);
        for j in 0..d {
            mix.means[c * d + j] = f64::from(x[row * d + j]);
        }
    }
    match covariance {
        CovarianceType::Full | CovarianceType::Tied => {
            for m in mix.covariances.chunks_exact_mut(d * d) {
                (0..d).for_each(|j| m[j * d + j] = 1.0);
            }
        }
        CovarianceType::Diag | CovarianceType::Spherical => mix.covariances.fill(1.0),
    }
    mix.set_precisions_from_covariances(&mut vec![0.0; d * d])?;
    Ok(mix)
}

/// Which kernels and arithmetic a case runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelChoice {
    pub kernels: GpuKernels,
    pub precision: GpuPrecision,
}

/// Runs one case at `scale` (N multiplied by it, at least 4·K samples): one warm-up iteration,
/// then `iters` timed EM iterations, then `iters` kernel-by-kernel timings of the E-step and
/// statistics pass, with `timing` (a device without timestamp queries falls back to the wall
/// clock) and the EM pass's kernels and arithmetic; every time is a median.
pub fn run_case(
    ctx: &GpuContext,
    case: &Case,
    scale: f64,
    iters: usize,
    peaks: &Peaks,
    timing: Timing,
    choice: KernelChoice,
) -> Result<CaseReport, GmmError> {
    let (d, k) = (case.d, case.k);
    let n = ((case.n as f64 * scale).round() as usize).max(4 * k);
    let iters = iters.max(1);
    let x = blobs(n, d, k, 0);
    let view = DataView::from_f32(&x, d)?;
    let budget = Budget {
        kernels: choice.kernels,
        precision: choice.precision,
        ..Budget::default()
    };
    let mut backend = GpuBackend::new(ctx, Source::Host(view), k, case.covariance, None, budget)?;
    let fused = backend.fuses();
    let mut mix = start(&x, n, d, k, case.covariance)?;
    let mut stats = SuffStats::new(case.covariance, k, d);
    let mut scratch = vec![0.0; d * d];
    let mut iteration = |mix: &mut Mixture, stats: &mut SuffStats| -> Result<f64, GmmError> {
        let started = std::time::Instant::now();
        let centres = mix.means.clone();
        backend.guard(mix)?;
        backend.em_statistics(mix, &centres, stats)?;
        m_step(stats, &centres, REG_COVAR, mix, &mut scratch)?;
        Ok(started.elapsed().as_secs_f64())
    };
    iteration(&mut mix, &mut stats)?; // warm-up: first use of the pipelines and buffers
    let mut whole = Vec::with_capacity(iters);
    for _ in 0..iters {
        whole.push(iteration(&mut mix, &mut stats)?);
    }
    let (timing, clock) = match (timing, ctx.has_timestamps()) {
        (Timing::Timestamp, true) => (Timing::Timestamp, Clock::Timestamps),
        _ => (Timing::Wall, Clock::Wall),
    };
    let stats_kind = stats_kind_for(case.covariance);
    let mut per_kernel: Vec<(Kernel, Vec<f64>)> = Vec::new();
    for _ in 0..iters {
        for (kernel, seconds) in backend.time_kernels(&mix, &mix.means, stats_kind, clock)? {
            match per_kernel.iter_mut().find(|(kk, _)| *kk == kernel) {
                Some((_, v)) => v.push(seconds),
                None => per_kernel.push((kernel, vec![seconds])),
            }
        }
    }
    let shape = backend.pass_shape(case.covariance);
    let kernels: Vec<KernelReport> = per_kernel
        .into_iter()
        .map(|(kernel, times)| {
            let seconds = median(times);
            let cost = shape.cost(kernel);
            let gbs = cost.bytes as f64 / seconds * 1e-9;
            let gflops = cost.flops as f64 / seconds * 1e-9;
            KernelReport {
                name: kernel.name(),
                ms: seconds * 1e3,
                bytes: cost.bytes,
                flops: cost.flops,
                gbs,
                gflops,
                pct_copy: 100.0 * gbs / peaks.copy_gbs,
                pct_fma: 100.0 * gflops / peaks.fma_gflops,
            }
        })
        .collect();
    Ok(CaseReport {
        case: case.name,
        covariance: case.covariance.as_str(),
        n,
        d,
        k,
        timing,
        fused,
        precision: match backend.info().precision {
            Some(record) => record.used,
            None => backend.arith().name().to_string(),
        },
        iteration_ms: median(whole) * 1e3,
        kernels_ms: kernels.iter().map(|r| r.ms).sum(),
        kernels,
        reference: case.reference,
    })
}
