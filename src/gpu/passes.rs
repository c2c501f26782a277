//! Encoding the passes: one command buffer per EM iteration that runs the E-step, the statistics and
//! the combine tree over every chunk and copies each chunk's final row for readback; and the
//! per-sample passes behind predictions.

use crate::gpu::GpuContext;
use crate::gpu::layout::WG;
use crate::gpu::pipelines::Pipelines;
use crate::gpu::resources::{ChunkRes, Resources};

/// Which shader entry points a pass runs before the statistics.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Responsibilities {
    Posterior,
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

/// Folds a count of workgroups into a 2-D grid under the per-dimension limit; the shaders rebuild the
/// linear index and skip the surplus.
pub(crate) fn fold(groups: usize, max_dim: u32) -> (u32, u32) {
    let groups = groups.max(1);
    let gx = groups.min(max_dim as usize);
    (gx as u32, groups.div_ceil(gx) as u32)
}

/// Encodes one statistics pass over every chunk, each chunk's final row copied to the readback
/// buffer at `c · row_len` two-float values; returns the command buffer and its dispatch count.
pub(crate) fn encode_statistics(
    ctx: &GpuContext,
    pipes: &Pipelines,
    res: &Resources,
    how: Responsibilities,
    k: usize,
    out_groups: usize,
    row_len: usize,
) -> (wgpu::CommandBuffer, u32) {
    let max_dim = ctx.limits.max_compute_workgroups_per_dimension;
    let mut dispatches = 0u32;
    let mut encoder = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
        label: Some("gmm statistics pass"),
    });
    for (c, chunk) in res.chunks.iter().enumerate() {
        let tiles = chunk.len.div_ceil(WG as usize);
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("gmm chunk"),
                timestamp_writes: None,
            });
            pass.set_bind_group(0, &chunk.bind, &[]);
            let mut run = |pipeline: &wgpu::ComputePipeline, groups: usize| {
                pass.set_pipeline(pipeline);
                let (gx, gy) = fold(groups, max_dim);
                pass.dispatch_workgroups(gx, gy, 1);
                dispatches += 1;
            };
            match how {
                Responsibilities::Posterior => {
                    run(&pipes.logprob, tiles * k);
                    run(&pipes.normalise, tiles);
                }
                Responsibilities::Nearest => {
                    run(&pipes.logprob, tiles * k);
                    run(&pipes.assign, tiles);
                }
                Responsibilities::Random => run(&pipes.random, tiles),
            }
            run(&pipes.stats, chunk.n_blocks as usize * k * out_groups);
            pass.set_pipeline(&pipes.combine);
            for level in &chunk.levels {
                pass.set_bind_group(0, &level.bind, &[]);
                let (gx, gy) = fold((level.n_out as usize * row_len).div_ceil(WG as usize), max_dim);
                pass.dispatch_workgroups(gx, gy, 1);
                dispatches += 1;
            }
        }
        let last = if chunk.final_in_scratch {
            &res.scratch
        } else {
            &res.partials
        };
        let bytes = (row_len * 8) as u64;
        encoder.copy_buffer_to_buffer(last, 0, &res.readback, c as u64 * bytes, bytes);
    }
    (encoder.finish(), dispatches)
}

/// Encodes the per-sample pass of one chunk and the copy of its output into `staging`; returns the
/// command buffer and the number of f32 values copied.
pub(crate) fn encode_per_sample(
    ctx: &GpuContext,
    pipes: &Pipelines,
    res: &Resources,
    chunk: &ChunkRes,
    output: PerSample,
    k: usize,
    staging: &wgpu::Buffer,
) -> (wgpu::CommandBuffer, usize) {
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
        for (pipeline, groups) in [(&pipes.logprob, tiles * k), (second, tiles)] {
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
