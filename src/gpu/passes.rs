//! Encoding the passes: one command buffer per EM iteration that runs the E-step, the statistics and
//! the combine tree over every chunk and copies each chunk's final row for readback; and the
//! per-sample passes behind predictions.

use crate::gpu::GpuContext;
use crate::gpu::layout::{DIAG_KC, KIND_DIAG, Pass, STATS_PACKED, TRI_SMALL_D, TRI_TS, WG};
use crate::gpu::pipelines::Pipelines;
use crate::gpu::resources::{ChunkRes, Resources};
use crate::gpu::timestamps::Timestamps;

/// Which shader entry points a pass runs before the statistics.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Responsibilities {
    Posterior,
    /// The posterior, computed by the fused pass together with the statistics (only where
    /// `plan::fusion_fits`).
    Fused,
    Nearest,
    Random,
}

/// What a per-sample pass leaves in its output buffer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum PerSample {
    /// Responsibilities, samples × components (the `resp` buffer).
    Proba,
    /// log p(x) in the device's units (the `per_sample` buffer).
    LogProb,
    /// The most likely component (the `per_sample` buffer).
    Labels,
}

/// The kernels of an EM iteration, as `gmm bench` names them.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Kernel {
    /// Component log-densities (shaders/estep.wgsl `logprob`).
    Logprob,
    /// Log-sum-exp normalisation into responsibilities (`normalise`).
    Normalise,
    /// Hard assignment to the nearest centroid (k-means; `assign`).
    Assign,
    /// Hashed random responsibilities ('random' init; `random`).
    Random,
    /// The weighted sums per block of samples (shaders/reduce.wgsl `stats`).
    Stats,
    /// The combine tree over the blocks' partial sums (`combine`).
    Combine,
    /// Log-densities, normalisation and statistics in one pass per block of samples, for small
    /// models (shaders/fused.wgsl `fused`).
    Fused,
}

impl Kernel {
    /// Every kernel, in the order an iteration runs them.
    pub const ALL: [Kernel; 7] = [
        Kernel::Fused,
        Kernel::Logprob,
        Kernel::Normalise,
        Kernel::Assign,
        Kernel::Random,
        Kernel::Stats,
        Kernel::Combine,
    ];

    /// The shader entry point's name.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Logprob => "logprob",
            Kernel::Normalise => "normalise",
            Kernel::Assign => "assign",
            Kernel::Random => "random",
            Kernel::Stats => "stats",
            Kernel::Combine => "combine",
            Kernel::Fused => "fused",
        }
    }
}

/// How a statistics pass is instrumented for `gmm bench`.
pub(crate) enum Instrument<'q> {
    /// Not at all: one compute pass per chunk (the EM loop).
    None,
    /// Each dispatch in its own compute pass with a timestamp at its start and end (pair i of
    /// `stamps`); the kernels are appended to `order` in the same order.
    Stamps {
        stamps: &'q Timestamps,
        order: &'q mut Vec<Kernel>,
    },
    /// Only this kernel's dispatches (for wall-clock timing, one kernel per submission).
    Only(Kernel),
}

/// Folds a count of workgroups into a 2-D grid under the per-dimension limit; the shaders rebuild the
/// linear index and skip the surplus.
pub(crate) fn fold(groups: usize, max_dim: u32) -> (u32, u32) {
    let groups = groups.max(1);
    let gx = groups.min(max_dim as usize);
    (gx as u32, groups.div_ceil(gx) as u32)
}

/// The kernels of an EM pass: the fit's own (`main`), and, where `GpuPrecision::Auto` routes some
/// components to the exact kernels, those (`exact`): the components' log-densities and statistics
/// then run in two dispatches each (`Pass::n_fast` says how many are fast), and the normalisation,
/// which reads every component's, in the exact kernels.
#[derive(Clone, Copy)]
pub(crate) struct Kernels<'p> {
    pub main: &'p Pipelines,
    pub exact: Option<&'p Pipelines>,
}

impl<'p> Kernels<'p> {
    /// Each set of kernels with the number of components it runs (none empty), fast ones first.
    fn parts(&self, job: &Pass) -> Vec<(&'p Pipelines, usize)> {
        let k = job.n_components as usize;
        match self.exact {
            None => vec![(self.main, k)],
            Some(exact) => {
                let fast = job.n_fast as usize;
                [(self.main, fast), (exact, k - fast)]
                    .into_iter()
                    .filter(|&(_, n)| n > 0)
                    .collect()
            }
        }
    }
}

/// One dispatch of a statistics pass.
struct Step<'r> {
    kernel: Kernel,
    pipeline: &'r wgpu::ComputePipeline,
    bind: &'r wgpu::BindGroup,
    groups: usize,
}

/// The log-density pipeline for `d` features with factors stored as `kind`, and its workgroups for
/// `len` samples of `k` components: diagonal factors take `logprob_diag`'s tiles of WG samples ×
/// DIAG_KC components, triangular ones past TRI_SMALL_D features `logprob_tri`'s tiles of TRI_TS
/// samples, and small triangular ones `logprob`'s WG samples, per component.
pub(crate) fn logprob_for(
    pipes: &Pipelines,
    kind: u32,
    d: usize,
    len: usize,
    k: usize,
) -> (&wgpu::ComputePipeline, usize) {
    if kind == KIND_DIAG {
        (
            &pipes.logprob_diag,
            len.div_ceil(WG as usize) * k.div_ceil(DIAG_KC as usize),
        )
    } else if d <= TRI_SMALL_D as usize {
        (&pipes.logprob, len.div_ceil(WG as usize) * k)
    } else {
        (&pipes.logprob_tri, len.div_ceil(TRI_TS as usize) * k)
    }
}

/// The dispatches of one chunk's statistics pass of `job`, in order.
fn chunk_steps<'r>(
    kernels: Kernels<'r>,
    chunk: &'r ChunkRes,
    how: Responsibilities,
    job: &Pass,
    row_len: usize,
) -> Vec<Step<'r>> {
    let d = job.n_features as usize;
    let out_groups = job.out_groups as usize;
    let parts = kernels.parts(job);
    // The per-sample kernels (normalise, assign, random, fused) run every component: the exact ones
    // where there are routes.
    let pipes = parts.last().expect("a pass runs some components").0;
    let tiles = chunk.len.div_ceil(WG as usize);
    let step = |kernel, pipeline, groups| Step {
        kernel,
        pipeline,
        bind: &chunk.bind,
        groups,
    };
    let logprob = || {
        parts.iter().map(|&(p, n)| {
            let (pipeline, groups) = logprob_for(p, job.kind, d, chunk.len, n);
            step(Kernel::Logprob, pipeline, groups)
        })
    };
    let mut steps: Vec<Step> = match how {
        Responsibilities::Posterior => logprob()
            .chain([step(Kernel::Normalise, &pipes.normalise, tiles)])
            .collect(),
        Responsibilities::Nearest => logprob().chain([step(Kernel::Assign, &pipes.assign, tiles)]).collect(),
        Responsibilities::Random => vec![step(Kernel::Random, &pipes.random, tiles)],
        Responsibilities::Fused => vec![step(Kernel::Fused, &pipes.fused, chunk.n_blocks as usize)],
    };
    if how != Responsibilities::Fused {
        steps.extend(parts.iter().map(|&(p, n)| {
            let stats = if job.stats_kind == STATS_PACKED {
                &p.stats_tri
            } else {
                &p.stats
            };
            step(Kernel::Stats, stats, chunk.n_blocks as usize * n * out_groups)
        }));
    }
    steps.extend(chunk.levels.iter().map(|level| Step {
        kernel: Kernel::Combine,
        pipeline: &pipes.combine,
        bind: &level.bind,
        groups: (level.n_out as usize * row_len).div_ceil(WG as usize),
    }));
    steps
}

/// Encodes one statistics pass over every chunk, each chunk's final row copied to the readback
/// buffer at `c · row_len` two-float values; returns the command buffer and its dispatch count.
pub(crate) fn encode_statistics(
    ctx: &GpuContext,
    kernels: Kernels,
    res: &Resources,
    how: Responsibilities,
    job: &Pass,
    row_len: usize,
    mut instrument: Instrument,
) -> (wgpu::CommandBuffer, u32) {
    let mut encoder = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
        label: Some("gmm statistics pass"),
    });
    let dispatches = (0..res.chunks.len())
        .map(|c| encode_chunk(ctx, kernels, res, &mut encoder, c, how, job, row_len, &mut instrument))
        .sum();
    (encoder.finish(), dispatches)
}

/// Encodes chunk c of a statistics pass into `encoder`, then the copy of its final row to the
/// readback buffer at `c · row_len` two-float values; returns its dispatch count.
#[allow(clippy::too_many_arguments)]
pub(crate) fn encode_chunk(
    ctx: &GpuContext,
    kernels: Kernels,
    res: &Resources,
    encoder: &mut wgpu::CommandEncoder,
    c: usize,
    how: Responsibilities,
    job: &Pass,
    row_len: usize,
    instrument: &mut Instrument,
) -> u32 {
    let max_dim = ctx.limits.max_compute_workgroups_per_dimension;
    let mut dispatches = 0u32;
    let dispatch = |pass: &mut wgpu::ComputePass, step: &Step| {
        pass.set_pipeline(step.pipeline);
        pass.set_bind_group(0, step.bind, &[]);
        let (gx, gy) = fold(step.groups, max_dim);
        pass.dispatch_workgroups(gx, gy, 1);
    };
    let chunk = &res.chunks[c];
    let steps = chunk_steps(kernels, chunk, how, job, row_len);
    match instrument {
        Instrument::None => {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("gmm chunk"),
                timestamp_writes: None,
            });
            for step in &steps {
                dispatch(&mut pass, step);
                dispatches += 1;
            }
        }
        Instrument::Stamps { stamps, order } => {
            for step in &steps {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some(step.kernel.name()),
                    timestamp_writes: Some(stamps.pass_writes(order.len() as u32)),
                });
                dispatch(&mut pass, step);
                order.push(step.kernel);
                dispatches += 1;
            }
        }
        Instrument::Only(kernel) => {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(kernel.name()),
                timestamp_writes: None,
            });
            for step in steps.iter().filter(|s| s.kernel == *kernel) {
                dispatch(&mut pass, step);
                dispatches += 1;
            }
        }
    }
    let last = if chunk.final_in_scratch {
        &res.scratch
    } else {
        &res.partials
    };
    let bytes = (row_len * 8) as u64;
    encoder.copy_buffer_to_buffer(last, 0, &res.readback, c as u64 * bytes, bytes);
    dispatches
}

/// The number of dispatches `encode_statistics` makes for `job` (one timestamp pair each when
/// timed): counted from the same steps it encodes.
pub(crate) fn count_dispatches(kernels: Kernels, res: &Resources, how: Responsibilities, job: &Pass) -> usize {
    res.chunks
        .iter()
        .map(|c| chunk_steps(kernels, c, how, job, 0).len())
        .sum()
}

/// Encodes the per-sample pass of one chunk and the copy of its output into `staging`; returns the
/// command buffer and the number of f32 values copied.
pub(crate) fn encode_per_sample(
    ctx: &GpuContext,
    pipes: &Pipelines,
    res: &Resources,
    chunk: &ChunkRes,
    output: PerSample,
    job: &Pass,
    staging: &wgpu::Buffer,
) -> (wgpu::CommandBuffer, usize) {
    let k = job.n_components as usize;
    let max_dim = ctx.limits.max_compute_workgroups_per_dimension;
    let tiles = chunk.len.div_ceil(WG as usize);
    let mut encoder = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
        label: Some("gmm per-sample pass"),
    });
    {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("gmm per-sample chunk"),
            timestamp_writes: None,
        });
        pass.set_bind_group(0, &chunk.bind, &[]);
        let second = if output == PerSample::Labels {
            &pipes.assign
        } else {
            &pipes.normalise
        };
        for (pipeline, groups) in [
            logprob_for(pipes, job.kind, job.n_features as usize, chunk.len, k),
            (second, tiles),
        ] {
            pass.set_pipeline(pipeline);
            let (gx, gy) = fold(groups, max_dim);
            pass.dispatch_workgroups(gx, gy, 1);
        }
    }
    let (src, len) = if output == PerSample::Proba {
        (&res.resp, chunk.len * k)
    } else {
        (&res.per_sample, chunk.len)
    };
    encoder.copy_buffer_to_buffer(src, 0, staging, 0, (len * 4) as u64);
    (encoder.finish(), len)
}
