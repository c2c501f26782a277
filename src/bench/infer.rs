//! Inference throughput (issue 26): samples per second of labels, log-densities and
//! responsibilities through three paths side by side in one run: inference bound once and
//! recorded into an encoder (the embedding path: encode, submit, wait), the host conveniences
//! (`predict_on` and the rest: upload, encode, readback, exact arithmetic), and the f64 CPU.
//! `benches/infer.rs` prints the table.

use std::time::Instant;

use wgpu::util::DeviceExt;

use crate::bench::blobs;
use crate::bench::cost::InferShape;
use crate::data::DataView;
use crate::error::GmmError;
use crate::gpu::{DeviceSamples, GpuContext, GpuModel, GpuPrecision, InferOutputs, OutputBuffer};
use crate::kinds::{BackendKind, CovarianceType};
use crate::params::GmmParams;

/// One inference case: N samples of d features, K components.
#[derive(Clone, Debug, PartialEq)]
pub struct InferCase {
    pub name: &'static str,
    pub n: usize,
    pub d: usize,
    pub k: usize,
    pub covariance: CovarianceType,
}

/// The two cases: 1M×8 with K = 8 full, 1M×32 with K = 64 diagonal.
pub fn infer_cases() -> Vec<InferCase> {
    vec![
        InferCase {
            name: "1M×8 K=8 full",
            n: 1_000_000,
            d: 8,
            k: 8,
            covariance: CovarianceType::Full,
        },
        InferCase {
            name: "1M×32 K=64 diag",
            n: 1_000_000,
            d: 32,
            k: 64,
            covariance: CovarianceType::Diag,
        },
    ]
}

/// An inference output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InferOutput {
    Labels,
    LogDensity,
    Responsibilities,
}

impl InferOutput {
    pub const ALL: [InferOutput; 3] = [
        InferOutput::Labels,
        InferOutput::LogDensity,
        InferOutput::Responsibilities,
    ];

    pub fn name(self) -> &'static str {
        match self {
            InferOutput::Labels => "labels",
            InferOutput::LogDensity => "log-density",
            InferOutput::Responsibilities => "responsibilities",
        }
    }
}

/// One row of the table: a case and an output through the three paths (median seconds).
#[derive(Clone, Debug)]
pub struct InferReport {
    pub case: &'static str,
    pub output: InferOutput,
    pub n: usize,
    /// The resident model's arithmetic on the encode path (the host path runs exact).
    pub arithmetic: &'static str,
    /// Whether the encode path computes h straight from the samples.
    pub direct: bool,
    pub encode_s: f64,
    pub host_s: f64,
    pub cpu_s: f64,
    /// Global-memory bytes per sample of the encode path ([`InferShape`]).
    pub bytes_per_sample: u64,
}

impl InferReport {
    /// Samples per second of a path's median time.
    pub fn rate(&self, seconds: f64) -> f64 {
        self.n as f64 / seconds
    }

    /// The encode path's effective bandwidth, GB/s.
    pub fn encode_gb_s(&self) -> f64 {
        self.n as f64 * self.bytes_per_sample as f64 / self.encode_s / 1e9
    }
}

/// The adapter's copy bandwidth, GB/s (bytes read plus bytes written per second): the median of
/// `iters` buffer-to-buffer copies of `bytes`, each its own submission, waited for.
pub fn copy_bandwidth(ctx: &GpuContext, bytes: u64, iters: usize) -> Result<f64, GmmError> {
    let device = ctx.device();
    let buffer = |label, usage| {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage,
            mapped_at_creation: false,
        })
    };
    let src = buffer("gmm bench copy source", wgpu::BufferUsages::COPY_SRC);
    let dst = buffer("gmm bench copy destination", wgpu::BufferUsages::COPY_DST);
    let copy = |encoder: &mut wgpu::CommandEncoder| {
        encoder.copy_buffer_to_buffer(&src, 0, &dst, 0, bytes);
        Ok(())
    };
    let seconds = median_submission(ctx, iters, copy)?;
    Ok(2.0 * bytes as f64 / seconds / 1e9)
}

/// The median seconds of `iters` submissions of what `record` encodes, each waited for, after one
/// untimed (which pays for first uses).
fn median_submission(
    ctx: &GpuContext,
    iters: usize,
    record: impl Fn(&mut wgpu::CommandEncoder) -> Result<(), GmmError>,
) -> Result<f64, GmmError> {
    let run = || -> Result<f64, GmmError> {
        let t = Instant::now();
        let mut encoder = ctx.device().create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("gmm bench submission"),
        });
        record(&mut encoder)?;
        let index = ctx.queue().submit([encoder.finish()]);
        ctx.device()
            .poll(wgpu::PollType::Wait {
                submission_index: Some(index),
                timeout: None,
            })
            .map_err(|e| GmmError::DeviceLost { reason: e.to_string() })?;
        Ok(t.elapsed().as_secs_f64())
    };
    run()?;
    Ok(median((0..iters.max(1)).map(|_| run()).collect::<Result<_, _>>()?))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs `case` with N scaled by `scale`, each path `iters` times (the median kept), every output.
pub fn run_infer_case(
    ctx: &GpuContext,
    case: &InferCase,
    scale: f64,
    iters: usize,
) -> Result<Vec<InferReport>, GmmError> {
    let (d, k) = (case.d, case.k);
    let n = ((case.n as f64 * scale).round() as usize).max(64);
    let x = blobs(n, d, k, 26);
    let view = DataView::from_f32(&x, d)?;
    // A model fitted on the CPU to the first samples (a few iterations: the cost of inference does
    // not depend on how well it fits).
    let fit_n = n.min(20_000);
    let model = GmmParams::builder(k)
        .covariance_type(case.covariance)
        .max_iter(5)
        .reg_covar(1e-3)
        .seed(0)
        .backend(BackendKind::Cpu)
        .build()?
        .fit(&DataView::from_f32(&x[..fit_n * d], d)?)?;
    let resident = GpuModel::with_precision(ctx, &model, GpuPrecision::Auto)?;
    let device = ctx.device();
    let input = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("gmm bench inference samples"),
        contents: bytemuck::cast_slice(&x),
        usage: wgpu::BufferUsages::STORAGE,
    });
    let arith = resident.arithmetic();
    let (h_bytes, r_bytes) = match arith {
        "fast" => (4, 4),
        "exact (two-float)" => (8, 4),
        _ => (8, 8),
    };
    let iters = iters.max(1);
    let mut reports = Vec::new();
    for output in InferOutput::ALL {
        let per = if output == InferOutput::Responsibilities { k } else { 1 };
        let out = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("gmm bench inference output"),
            size: (n * per * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let target = OutputBuffer::new(&out);
        let outputs = match output {
            InferOutput::Labels => InferOutputs::new().labels(target),
            InferOutput::LogDensity => InferOutputs::new().log_density(target),
            InferOutput::Responsibilities => InferOutputs::new().responsibilities(target),
        };
        let inference = resident.bind(DeviceSamples::new(&input, n, d), outputs)?;
        let encode_s = median_submission(ctx, iters, |encoder| inference.encode(encoder))?;
        let timed = |f: &dyn Fn() -> Result<(), GmmError>| -> Result<f64, GmmError> {
            let mut times = Vec::with_capacity(iters);
            for _ in 0..iters {
                let t = Instant::now();
                f()?;
                times.push(t.elapsed().as_secs_f64());
            }
            Ok(median(times))
        };
        let (host_s, cpu_s) = match output {
            InferOutput::Labels => (
                timed(&|| model.predict_on(ctx, &view).map(drop))?,
                timed(&|| model.predict(&view).map(drop))?,
            ),
            InferOutput::LogDensity => (
                timed(&|| model.score_samples_on(ctx, &view).map(drop))?,
                timed(&|| model.score_samples(&view).map(drop))?,
            ),
            InferOutput::Responsibilities => (
                timed(&|| model.predict_proba_on(ctx, &view).map(drop))?,
                timed(&|| model.predict_proba(&view).map(drop))?,
            ),
        };
        let shape = InferShape {
            n_features: d,
            n_components: k,
            labels: output == InferOutput::Labels,
            log_density: output == InferOutput::LogDensity,
            responsibilities: output == InferOutput::Responsibilities,
            direct: inference.direct(),
            h_bytes,
            r_bytes,
        };
        reports.push(InferReport {
            case: case.name,
            output,
            n,
            arithmetic: arith,
            direct: inference.direct(),
            encode_s,
            host_s,
            cpu_s,
            bytes_per_sample: shape.bytes_per_sample(),
        });
    }
    Ok(reports)
}
