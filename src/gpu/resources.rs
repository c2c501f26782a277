//! The GPU objects of one fit, made once: the buffers (each labelled, each created inside error
//! scopes), every chunk's bind group, and the bind groups of its combine tree.

use std::num::NonZeroU64;

use bytemuck::Zeroable;

use crate::error::GmmError;
use crate::gpu::GpuContext;
use crate::gpu::layout::{Chunk, Combine, GROUP, Pass, WG};
use crate::gpu::pipelines::Pipelines;
use crate::gpu::plan::{Plan, combine_levels};

/// A labelled buffer, created inside error scopes so that running out of memory comes back typed.
pub(crate) fn buffer(
    ctx: &GpuContext,
    label: &'static str,
    size: u64,
    usage: wgpu::BufferUsages,
) -> Result<wgpu::Buffer, GmmError> {
    ctx.scoped(label, size, || {
        ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: size.max(16),
            usage,
            mapped_at_creation: false,
        })
    })
}

/// A storage buffer with extra usages.
pub(crate) fn storage(
    ctx: &GpuContext,
    label: &'static str,
    size: u64,
    extra: wgpu::BufferUsages,
) -> Result<wgpu::Buffer, GmmError> {
    buffer(ctx, label, size, wgpu::BufferUsages::STORAGE | extra)
}

/// A buffer the host maps to read what the GPU copied into it.
pub(crate) fn mappable(ctx: &GpuContext, label: &'static str, size: u64) -> Result<wgpu::Buffer, GmmError> {
    buffer(
        ctx,
        label,
        size,
        wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
    )
}

/// A uniform buffer with initial contents.
pub(crate) fn uniform_buffer(ctx: &GpuContext, label: &'static str, contents: &[u8]) -> Result<wgpu::Buffer, GmmError> {
    use wgpu::util::DeviceExt;
    ctx.scoped(label, contents.len() as u64, || {
        ctx.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        })
    })
}

pub(crate) fn binding(buffer: &wgpu::Buffer, offset: u64, size: u64) -> wgpu::BindingResource<'_> {
    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
        buffer,
        offset,
        size: NonZeroU64::new(size.max(4)),
    })
}

/// One chunk's resources.
pub(crate) struct ChunkRes {
    pub start: usize,
    pub len: usize,
    pub n_blocks: u32,
    pub bind: wgpu::BindGroup,
    pub levels: Vec<Level>,
    /// Whether the combine leaves the final row in `scratch` (else in `partials`).
    pub final_in_scratch: bool,
}

/// One level of the combine tree of a chunk.
pub(crate) struct Level {
    pub uniform: wgpu::Buffer,
    pub bind: wgpu::BindGroup,
    pub n_rows: u32,
    pub n_out: u32,
}

/// Where a chunk's samples are: a buffer and the byte offset of the chunk's first sample.
pub(crate) struct DataWindow<'b> {
    pub buffer: &'b wgpu::Buffer,
    /// The binding's byte offset (aligned) and size.
    pub offset: u64,
    pub size: u64,
    /// f32s from the binding's start to the first row, and from one row to the next.
    pub x_at: u32,
    pub stride: u32,
}

impl<'b> DataWindow<'b> {
    /// `len` packed rows of `d` f32s from byte `offset` of `buffer`.
    pub fn packed(buffer: &'b wgpu::Buffer, offset: u64, len: usize, d: usize) -> Self {
        Self {
            buffer,
            offset,
            size: (len * d * 4) as u64,
            x_at: 0,
            stride: d as u32,
        }
    }
}

/// Every buffer and bind group of a fit.
pub(crate) struct Resources {
    pub chunks: Vec<ChunkRes>,
    pub model: wgpu::Buffer,
    pub job: wgpu::Buffer,
    pub resp: wgpu::Buffer,
    pub per_sample: wgpu::Buffer,
    pub partials: wgpu::Buffer,
    pub scratch: wgpu::Buffer,
    pub readback: wgpu::Buffer,
    /// Kept alive for the bind groups.
    _weights: Option<wgpu::Buffer>,
    _dummy_weights: wgpu::Buffer,
    _logp_part: wgpu::Buffer,
    _h_lo: wgpu::Buffer,
}

impl Resources {
    /// Makes the buffers for `plan` and one bind group per chunk; `window(c, start, len)` says where
    /// chunk c's samples (`start..start + len`) are, and `first_row` is the global index of the first sample.
    #[allow(clippy::too_many_arguments)]
    pub fn new<'b>(
        ctx: &GpuContext,
        pipes: &Pipelines,
        plan: &Plan,
        n: usize,
        k: usize,
        model_len: usize,
        weights: Option<wgpu::Buffer>,
        window: impl Fn(usize, usize, usize) -> DataWindow<'b>,
        first_row: usize,
    ) -> Result<Self, GmmError> {
        use wgpu::BufferUsages as U;
        let chunk_len = plan.chunk_len;
        let row_bytes = (plan.row_len_max * 8) as u64;
        let model = storage(ctx, "gmm model parameters", (model_len * 4) as u64, U::COPY_DST)?;
        let job = uniform_buffer(ctx, "gmm pass uniform", bytemuck::bytes_of(&Pass::zeroed()))?;
        let resp = storage(ctx, "gmm responsibilities", (chunk_len * k * 4) as u64, U::COPY_SRC)?;
        let h_lo = storage(ctx, "gmm log-density low parts", (chunk_len * k * 4) as u64, U::empty())?;
        let logp_part = storage(
            ctx,
            "gmm log-likelihood partials",
            (chunk_len.div_ceil(WG as usize) * 8) as u64,
            U::empty(),
        )?;
        let per_sample = storage(ctx, "gmm per-sample output", (chunk_len * 4) as u64, U::COPY_SRC)?;
        let partials = storage(
            ctx,
            "gmm statistics partials",
            plan.max_blocks as u64 * row_bytes,
            U::COPY_SRC,
        )?;
        let scratch_rows = plan.max_blocks.div_ceil(GROUP as usize).max(1) as u64;
        let scratch = storage(
            ctx,
            "gmm statistics combine scratch",
            scratch_rows * row_bytes,
            U::COPY_SRC,
        )?;
        let readback = mappable(ctx, "gmm statistics readback", plan.n_chunks as u64 * row_bytes)?;
        let dummy_weights = storage(ctx, "gmm no sample weights", 16, U::empty())?;

        // Bind groups validate against the layouts: any error comes back typed, not as a panic.
        let chunks = ctx.scoped("gmm chunk bind groups", 0, || -> Result<Vec<ChunkRes>, GmmError> {
            let mut chunks = Vec::with_capacity(plan.n_chunks);
            for c in 0..plan.n_chunks {
                let start = c * chunk_len;
                let len = chunk_len.min(n - start);
                let n_blocks = len.div_ceil(plan.block_len) as u32;
                let data = window(c, start, len);
                let uniform = uniform_buffer(
                    ctx,
                    "gmm chunk uniform",
                    bytemuck::bytes_of(&Chunk {
                        n_samples: len as u32,
                        // The global index: 'random' hashes it (first_row > 0 for one rank's rows).
                        first_lo: (first_row + start) as u32,
                        first_hi: ((first_row + start) as u64 >> 32) as u32,
                        n_blocks,
                        block_len: plan.block_len as u32,
                        x_at: data.x_at,
                        x_stride: data.stride,
                        _pad: 0,
                    }),
                )?;
                let weights_binding = match &weights {
                    Some(w) => binding(w, (start * 4) as u64, (len * 4) as u64),
                    None => binding(&dummy_weights, 0, 16),
                };
                let resources = [
                    uniform.as_entire_binding(),
                    binding(data.buffer, data.offset, data.size),
                    model.as_entire_binding(),
                    binding(&resp, 0, (len * k * 4) as u64),
                    logp_part.as_entire_binding(),
                    weights_binding,
                    partials.as_entire_binding(),
                    job.as_entire_binding(),
                    per_sample.as_entire_binding(),
                    binding(&h_lo, 0, (len * k * 4) as u64),
                ];
                let bind = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("gmm chunk bind group"),
                    layout: &pipes.chunk_layout,
                    entries: &Pipelines::chunk_entries(resources),
                });
                // The combine tree: partials -> scratch -> partials ... until one row is left.
                let mut levels = Vec::new();
                let mut in_scratch = false;
                for (n_rows, n_out) in combine_levels(n_blocks) {
                    let uniform = uniform_buffer(
                        ctx,
                        "gmm combine uniform",
                        bytemuck::bytes_of(&Combine {
                            n_rows,
                            row_len: 0,
                            one: 1.0,
                            _pad: 0,
                        }),
                    )?;
                    let (src, dst) = if in_scratch {
                        (&scratch, &partials)
                    } else {
                        (&partials, &scratch)
                    };
                    let bind = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
                        label: Some("gmm combine bind group"),
                        layout: &pipes.combine_layout,
                        entries: &Pipelines::combine_entries([
                            uniform.as_entire_binding(),
                            src.as_entire_binding(),
                            dst.as_entire_binding(),
                        ]),
                    });
                    levels.push(Level {
                        uniform,
                        bind,
                        n_rows,
                        n_out,
                    });
                    in_scratch = !in_scratch;
                }
                chunks.push(ChunkRes {
                    start,
                    len,
                    n_blocks,
                    bind,
                    levels,
                    final_in_scratch: in_scratch,
                });
            }
            Ok(chunks)
        })??;
        Ok(Self {
            chunks,
            model,
            job,
            resp,
            per_sample,
            partials,
            scratch,
            readback,
            _weights: weights,
            _dummy_weights: dummy_weights,
            _logp_part: logp_part,
            _h_lo: h_lo,
        })
    }
}
