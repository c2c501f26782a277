//! The GPU backend: the data resident on the device, chunked to fit the binding limits, and one
//! command submission per EM iteration that runs estep.wgsl and reduce.wgsl over every chunk and
//! brings back only each chunk's O(K·d²) statistics, which the host combines in f64.

use std::num::NonZeroU64;
use std::sync::mpsc;

use bytemuck::Zeroable;

use crate::backend::{Backend, FitInfo, Traffic};
use crate::data::{DataView, Samples};
use crate::error::GmmError;
use crate::gpu::GpuContext;
use crate::gpu::layout::{self, BLOCK, Chunk, Combine, GROUP, Pass, STATS_DIAG, STATS_PACKED, T, WG};
use crate::gpu::pipelines::Pipelines;
use crate::linalg::packed_len;
use crate::mixture::{HALF_LN_2PI, Mixture};
use crate::params::CovarianceType;
use crate::stats::SuffStats;

/// Where the samples live.
pub(crate) enum Source<'a> {
    /// On the host: uploaded once, centred by their global mean, as f32.
    Host(DataView<'a>),
    /// Already on the device, in the caller's buffer: f32, row-major, used in place.
    Device {
        buffer: &'a wgpu::Buffer,
        n_samples: usize,
        n_features: usize,
    },
}

impl Source<'_> {
    /// Samples and features.
    fn shape(&self) -> (usize, usize) {
        match self {
            Source::Host(view) => (view.n_samples(), view.n_features()),
            Source::Device {
                n_samples, n_features, ..
            } => (*n_samples, *n_features),
        }
    }
}

/// One chunk's resources, made once per fit.
struct ChunkRes {
    start: usize,
    len: usize,
    n_blocks: u32,
    bind: wgpu::BindGroup,
    levels: Vec<Level>,
    /// Whether the combine leaves the final row in `scratch` (else in `partials`).
    final_in_scratch: bool,
}

/// One level of the combine tree of a chunk.
struct Level {
    uniform: wgpu::Buffer,
    bind: wgpu::BindGroup,
    n_rows: u32,
    n_out: u32,
}

/// Which shader entry points one pass runs before the statistics.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Responsibilities {
    Posterior,
    Nearest,
    Random,
}

/// The GPU backend for one fit (or one batch of predictions).
pub(crate) struct GpuBackend<'a> {
    ctx: &'a GpuContext,
    pipes: &'a Pipelines,
    source: Source<'a>,
    n: usize,
    d: usize,
    k: usize,
    weight_sum: f64,
    has_weights: bool,
    /// Subtracted from every sample before upload (zero for the caller's buffers).
    shift: Vec<f64>,
    chunk_len: usize,
    chunks: Vec<ChunkRes>,
    /// The host's copies of the data (one buffer per segment), kept alive for the bind groups.
    _segments: Vec<wgpu::Buffer>,
    _weights: Option<wgpu::Buffer>,
    model: wgpu::Buffer,
    job: wgpu::Buffer,
    resp: wgpu::Buffer,
    per_sample: wgpu::Buffer,
    partials: wgpu::Buffer,
    scratch: wgpu::Buffer,
    readback: wgpu::Buffer,
    /// The largest partial row (K·E + 1 floats) the buffers were sized for.
    row_len_max: usize,
    /// The row length the combine uniforms currently hold.
    combine_row_len: u32,
    /// Host scratch reused by every pass: the model buffer's contents and the readback.
    model_host: Vec<f32>,
    rows_host: Vec<f32>,
    row_sums: Vec<f64>,
    /// Where the centres the GPU used sit, in the caller's coordinates (f32-rounded + shift).
    centres_used: Vec<f64>,
    offsets: [usize; 4],
    traffic: Traffic,
    /// The last E-step's mean of the GPU's log p (without −(d/2)·log 2π), subtracted before summing.
    logp_ref: f64,
}

/// Statistics per component for a second-moment kind: S0, S1 (d) and S2.
fn n_outputs(stats_kind: u32, d: usize) -> usize {
    1 + d + if stats_kind == STATS_PACKED { packed_len(d) } else { d }
}

fn stats_kind_for(kind: CovarianceType) -> u32 {
    match kind {
        CovarianceType::Full | CovarianceType::Tied => STATS_PACKED,
        // Spherical sums the diagonal on the GPU and its trace on the host.
        CovarianceType::Diag | CovarianceType::Spherical => STATS_DIAG,
    }
}

/// A labelled buffer, created inside error scopes so that running out of memory comes back typed.
fn buffer(
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

fn storage(
    ctx: &GpuContext,
    label: &'static str,
    size: u64,
    extra: wgpu::BufferUsages,
) -> Result<wgpu::Buffer, GmmError> {
    buffer(ctx, label, size, wgpu::BufferUsages::STORAGE | extra)
}

/// A buffer the host maps to read what the GPU copied into it.
fn mappable(ctx: &GpuContext, label: &'static str, size: u64) -> Result<wgpu::Buffer, GmmError> {
    buffer(
        ctx,
        label,
        size,
        wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
    )
}

fn binding(buffer: &wgpu::Buffer, offset: u64, size: u64) -> wgpu::BindingResource<'_> {
    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
        buffer,
        offset,
        size: NonZeroU64::new(size.max(4)),
    })
}

impl<'a> GpuBackend<'a> {
    /// Prepares a fit of `k` components with second moments of `kind`: uploads the data once,
    /// sizes the chunks, and makes every buffer and bind group the EM loop will use.
    pub fn new(
        ctx: &'a GpuContext,
        source: Source<'a>,
        k: usize,
        kind: CovarianceType,
        sample_weight: Option<&'a [f64]>,
        chunk_size: Option<usize>,
    ) -> Result<Self, GmmError> {
        let (n, d) = source.shape();
        if d > layout::MAX_GPU_FEATURES {
            return Err(GmmError::TooManyFeaturesForGpu {
                n_features: d,
                max: layout::MAX_GPU_FEATURES,
            });
        }
        if k > layout::MAX_GPU_COMPONENTS {
            return Err(GmmError::TooManyComponentsForGpu {
                n_components: k,
                max: layout::MAX_GPU_COMPONENTS,
            });
        }
        let pipes = ctx.pipelines()?;
        let limits = &ctx.limits;
        let bind_limit = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size);
        // The widest partial row: this fit's second moments, or the diagonal ones k-means sums.
        let row_len_max = k * n_outputs(stats_kind_for(kind), d).max(n_outputs(STATS_DIAG, d)) + 1;

        // Samples per chunk: the data window, the responsibilities and the partial rows must each fit
        // one binding; a multiple of WG keeps every window's offset aligned (WG·4 bytes = 256).
        let wg = WG as usize;
        let by_data = bind_limit / (4 * d as u64);
        let by_resp = bind_limit / (4 * k as u64);
        let by_partials = (bind_limit / (4 * row_len_max as u64)) * u64::from(BLOCK);
        let mut chunk_len = by_data.min(by_resp).min(by_partials).min(1 << 24) as usize / wg * wg;
        // The folded 2-D grid holds at most max_dim² workgroups per dispatch: the E-step launches
        // (C/WG)·K of them and the statistics (C/BLOCK)·K·(output groups).
        let max_groups = u64::from(limits.max_compute_workgroups_per_dimension).pow(2);
        let out_groups = (row_len_max / k).div_ceil((WG * T) as usize).max(1) as u64;
        let by_grid_estep = max_groups / k as u64 * u64::from(WG);
        let by_grid_stats = max_groups / (k as u64 * out_groups) * u64::from(BLOCK);
        chunk_len = chunk_len.min((by_grid_estep.min(by_grid_stats) as usize) / wg * wg);
        if let Some(forced) = chunk_size {
            chunk_len = chunk_len.min(forced.div_ceil(wg).max(1) * wg);
        }
        if chunk_len < wg {
            return Err(GmmError::LimitsTooSmall {
                limit: "max_storage_buffer_binding_size",
                needed: (4 * wg * d.max(k)) as u64,
                granted: bind_limit,
            });
        }
        chunk_len = chunk_len.min(n.div_ceil(wg) * wg);
        let n_chunks = n.div_ceil(chunk_len);
        let max_blocks = chunk_len.div_ceil(BLOCK as usize);

        // The data: the caller's buffer, or the host's samples uploaded chunk by chunk into segments
        // of whole chunks that each fit max_buffer_size.
        let (segments, shift) = match &source {
            Source::Device { buffer, .. } => {
                let needed = (n * d * 4) as u64;
                if buffer.size() < needed {
                    return Err(GmmError::GpuBuffer {
                        problem: format!(
                            "holds {} bytes but {n} samples of {d} f32 features need {needed}",
                            buffer.size()
                        ),
                    });
                }
                if !buffer.usage().contains(wgpu::BufferUsages::STORAGE) {
                    return Err(GmmError::GpuBuffer {
                        problem: "lacks wgpu::BufferUsages::STORAGE; create it with STORAGE usage".into(),
                    });
                }
                (Vec::new(), vec![0.0; d])
            }
            Source::Host(view) => {
                let shift = column_means(view);
                (upload_segments(ctx, view, &shift, chunk_len)?, shift)
            }
        };
        let chunks_per_segment = (limits.max_buffer_size / (chunk_len * d * 4) as u64).max(1) as usize;

        let weights = match sample_weight {
            Some(w) => {
                let as_f32: Vec<f32> = w.iter().map(|&v| v as f32).collect();
                let buffer = storage(ctx, "gmm sample weights", (n * 4) as u64, wgpu::BufferUsages::COPY_DST)?;
                ctx.scoped("gmm sample weights upload", (n * 4) as u64, || {
                    ctx.queue.write_buffer(&buffer, 0, bytemuck::cast_slice(&as_f32))
                })?;
                Some(buffer)
            }
            None => None,
        };
        let dummy_weights = storage(ctx, "gmm no sample weights", 16, wgpu::BufferUsages::empty())?;

        // The model: means, centres, factors and constants, each region sized for the largest use.
        // (k-means writes K unit factors into the same region.)
        let factors_len = match kind {
            CovarianceType::Full => k * packed_len(d),
            CovarianceType::Tied => packed_len(d),
            CovarianceType::Diag => k * d,
            CovarianceType::Spherical => k,
        }
        .max(k);
        let offsets = [0, k * d, 2 * k * d, 2 * k * d + factors_len];
        let model_len = offsets[3] + k;
        let model = storage(
            ctx,
            "gmm model parameters",
            (model_len * 4) as u64,
            wgpu::BufferUsages::COPY_DST,
        )?;
        let job = uniform_buffer(ctx, "gmm pass uniform", bytemuck::bytes_of(&Pass::zeroed()))?;
        let resp = storage(
            ctx,
            "gmm responsibilities",
            (chunk_len * k * 4) as u64,
            wgpu::BufferUsages::COPY_SRC,
        )?;
        let logp_part = storage(
            ctx,
            "gmm log-likelihood partials",
            (chunk_len.div_ceil(wg) * 4) as u64,
            wgpu::BufferUsages::empty(),
        )?;
        let per_sample = storage(
            ctx,
            "gmm per-sample output",
            (chunk_len * 4) as u64,
            wgpu::BufferUsages::COPY_SRC,
        )?;
        let partials = storage(
            ctx,
            "gmm statistics partials",
            (max_blocks * row_len_max * 4) as u64,
            wgpu::BufferUsages::COPY_SRC,
        )?;
        let scratch_rows = max_blocks.div_ceil(GROUP as usize).max(1);
        let scratch = storage(
            ctx,
            "gmm statistics combine scratch",
            (scratch_rows * row_len_max * 4) as u64,
            wgpu::BufferUsages::COPY_SRC,
        )?;
        let readback = mappable(ctx, "gmm statistics readback", (n_chunks * row_len_max * 4) as u64)?;

        // Bind groups validate against the layouts: any error comes back typed, not as a panic.
        let chunks = ctx.scoped("gmm chunk bind groups", 0, || -> Result<Vec<ChunkRes>, GmmError> {
            let mut chunks = Vec::with_capacity(n_chunks);
            for c in 0..n_chunks {
                let start = c * chunk_len;
                let len = chunk_len.min(n - start);
                let n_blocks = len.div_ceil(BLOCK as usize) as u32;
                let uniform = uniform_buffer(
                    ctx,
                    "gmm chunk uniform",
                    bytemuck::bytes_of(&Chunk {
                        n_samples: len as u32,
                        first_lo: start as u32,
                        first_hi: (start as u64 >> 32) as u32,
                        n_blocks,
                    }),
                )?;
                let (data_buffer, data_offset) = match &source {
                    Source::Device { buffer: b, .. } => (*b, (start * d * 4) as u64),
                    Source::Host(_) => {
                        let s = c / chunks_per_segment;
                        (
                            &segments[s],
                            ((start - s * chunks_per_segment * chunk_len) * d * 4) as u64,
                        )
                    }
                };
                let weights_binding = match &weights {
                    Some(w) => binding(w, (start * 4) as u64, (len * 4) as u64),
                    None => binding(&dummy_weights, 0, 16),
                };
                let bind = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("gmm chunk bind group"),
                    layout: &pipes.main_layout,
                    entries: &[
                        wgpu::BindGroupEntry {
                            binding: 0,
                            resource: uniform.as_entire_binding(),
                        },
                        wgpu::BindGroupEntry {
                            binding: 1,
                            resource: binding(data_buffer, data_offset, (len * d * 4) as u64),
                        },
                        wgpu::BindGroupEntry {
                            binding: 2,
                            resource: model.as_entire_binding(),
                        },
                        wgpu::BindGroupEntry {
                            binding: 3,
                            resource: binding(&resp, 0, (len * k * 4) as u64),
                        },
                        wgpu::BindGroupEntry {
                            binding: 4,
                            resource: logp_part.as_entire_binding(),
                        },
                        wgpu::BindGroupEntry {
                            binding: 5,
                            resource: weights_binding,
                        },
                        wgpu::BindGroupEntry {
                            binding: 6,
                            resource: partials.as_entire_binding(),
                        },
                        wgpu::BindGroupEntry {
                            binding: 7,
                            resource: job.as_entire_binding(),
                        },
                        wgpu::BindGroupEntry {
                            binding: 8,
                            resource: per_sample.as_entire_binding(),
                        },
                    ],
                });
                // The combine tree: partials -> scratch -> partials ... until one row is left.
                let mut levels = Vec::new();
                let mut rows = n_blocks;
                let mut in_scratch = false;
                while rows > 1 {
                    let n_out = rows.div_ceil(GROUP);
                    let uniform = uniform_buffer(
                        ctx,
                        "gmm combine uniform",
                        bytemuck::bytes_of(&Combine {
                            n_rows: rows,
                            row_len: 0,
                            _pad: [0; 2],
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
                        entries: &[
                            wgpu::BindGroupEntry {
                                binding: 10,
                                resource: uniform.as_entire_binding(),
                            },
                            wgpu::BindGroupEntry {
                                binding: 11,
                                resource: src.as_entire_binding(),
                            },
                            wgpu::BindGroupEntry {
                                binding: 12,
                                resource: dst.as_entire_binding(),
                            },
                        ],
                    });
                    levels.push(Level {
                        uniform,
                        bind,
                        n_rows: rows,
                        n_out,
                    });
                    rows = n_out;
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
        ctx.check_health()?;
        let weight_sum = sample_weight.map_or(n as f64, |w| w.iter().sum());
        log::info!(
            "GPU backend on {}: {n} samples x {d} features in {n_chunks} chunk(s) of up to {chunk_len}; K = {k}",
            ctx.adapter_name()
        );
        Ok(Self {
            ctx,
            pipes,
            source,
            n,
            d,
            k,
            weight_sum,
            has_weights: sample_weight.is_some(),
            shift,
            chunk_len,
            chunks,
            _segments: segments,
            _weights: weights,
            model,
            job,
            resp,
            per_sample,
            partials,
            scratch,
            readback,
            row_len_max,
            combine_row_len: 0,
            model_host: vec![0.0; model_len],
            rows_host: vec![0.0; n_chunks * row_len_max],
            row_sums: vec![0.0; row_len_max],
            centres_used: vec![0.0; k * d],
            offsets,
            traffic: Traffic::default(),
            logp_ref: 0.0,
        })
    }
}

impl GpuBackend<'_> {
    /// Writes the centres (in the GPU's shifted f32 coordinates) and records where they really are.
    fn set_centres(&mut self, centres: &[f64]) {
        let at = self.offsets[1];
        let d = self.d;
        for (i, &c) in centres.iter().enumerate() {
            let v = (c - self.shift[i % d]) as f32;
            self.model_host[at + i] = v;
            self.centres_used[i] = f64::from(v) + self.shift[i % d];
        }
    }

    /// Writes the means, factors and constants of `mix` into the model buffer's host copy.
    fn set_mixture(&mut self, mix: &Mixture) {
        let (k, d) = (self.k, self.d);
        for (i, &m) in mix.means.iter().enumerate() {
            self.model_host[self.offsets[0] + i] = (m - self.shift[i % d]) as f32;
        }
        let f = self.offsets[2];
        match mix.cov_type {
            CovarianceType::Full | CovarianceType::Tied => {
                // Packed column by column: U[0][j], …, U[j][j], as estep.wgsl reads them.
                let mut p = f;
                for u in mix.precisions_cholesky.chunks_exact(d * d) {
                    for j in 0..d {
                        for i in 0..=j {
                            self.model_host[p] = u[i * d + j] as f32;
                            p += 1;
                        }
                    }
                }
            }
            CovarianceType::Diag | CovarianceType::Spherical => {
                for (i, &u) in mix.precisions_cholesky.iter().enumerate() {
                    self.model_host[f + i] = u as f32;
                }
            }
        }
        // The GPU leaves out −(d/2)·log 2π, common to every component: the host adds it in f64.
        for c in 0..k {
            self.model_host[self.offsets[3] + c] = (mix.log_consts[c] + d as f64 * HALF_LN_2PI) as f32;
        }
    }

    /// k-means: centroids as means with U = I and c = 0, so that L = −½‖x − μ‖².
    fn set_centroids(&mut self, centroids: &[f64]) {
        let d = self.d;
        for (i, &m) in centroids.iter().enumerate() {
            self.model_host[self.offsets[0] + i] = (m - self.shift[i % d]) as f32;
        }
        self.model_host[self.offsets[2]..self.offsets[2] + self.k].fill(1.0);
        self.model_host[self.offsets[3]..self.offsets[3] + self.k].fill(0.0);
    }

    fn job(&self, kind: u32, stats_kind: u32, seed: u64) -> Pass {
        let e = n_outputs(stats_kind, self.d);
        // Invocations per output group: one per T outputs, the rest become sample lanes.
        let slots = e.div_ceil(T as usize).min(WG as usize);
        Pass {
            n_features: self.d as u32,
            n_components: self.k as u32,
            kind,
            stats_kind,
            n_outputs: e as u32,
            out_groups: e.div_ceil(slots * T as usize) as u32,
            out_slots: slots as u32,
            lanes: WG / slots as u32,
            has_weights: u32::from(self.has_weights),
            seed_lo: seed as u32,
            seed_hi: (seed >> 32) as u32,
            means_at: self.offsets[0] as u32,
            centres_at: self.offsets[1] as u32,
            factors_at: self.offsets[2] as u32,
            consts_at: self.offsets[3] as u32,
            ..Pass::zeroed()
        }
    }

    /// Uploads the model and the pass, then one submission over every chunk: responsibilities,
    /// statistics, the combine tree, and a copy of each chunk's final row to the readback buffer,
    /// which is then read into `rows_host`.
    fn run_statistics(&mut self, how: Responsibilities, job: Pass) -> Result<(), GmmError> {
        let ctx = self.ctx;
        let row_len = (job.n_components * job.n_outputs + 1) as usize;
        debug_assert!(row_len <= self.row_len_max);
        // Inside error scopes: a lost device or a failed allocation comes back typed, never as a
        // panic from wgpu's default handler on a caller's device.
        let (dispatches, uploaded) =
            ctx.scoped("gmm EM iteration", 0, || self.submit_statistics(how, &job, row_len))?;
        let bytes = self.chunks.len() * row_len;
        read_back(ctx, &self.readback, &mut self.rows_host[..bytes])?;
        self.traffic = Traffic {
            dispatches,
            bytes_uploaded: uploaded,
            bytes_read_back: (bytes * 4) as u64,
        };
        Ok(())
    }

    /// Uploads the model and the pass, and submits every chunk's passes; returns the dispatches and
    /// the bytes uploaded.
    fn submit_statistics(&mut self, how: Responsibilities, job: &Pass, row_len: usize) -> (u32, u64) {
        let ctx = self.ctx;
        let mut uploaded = 0u64;
        ctx.queue
            .write_buffer(&self.model, 0, bytemuck::cast_slice(&self.model_host));
        ctx.queue.write_buffer(&self.job, 0, bytemuck::bytes_of(job));
        uploaded += (self.model_host.len() * 4 + std::mem::size_of::<Pass>()) as u64;
        if self.combine_row_len != row_len as u32 {
            // Only when the kind of pass changes (k-means to EM), never within the EM loop.
            for chunk in &self.chunks {
                for level in &chunk.levels {
                    let c = Combine {
                        n_rows: level.n_rows,
                        row_len: row_len as u32,
                        _pad: [0; 2],
                    };
                    ctx.queue.write_buffer(&level.uniform, 0, bytemuck::bytes_of(&c));
                    uploaded += 16;
                }
            }
            self.combine_row_len = row_len as u32;
        }
        let max_dim = ctx.limits.max_compute_workgroups_per_dimension;
        let mut dispatches = 0u32;
        let mut encoder = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("gmm statistics pass"),
        });
        for (c, chunk) in self.chunks.iter().enumerate() {
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
                        run(&self.pipes.logprob, tiles * self.k);
                        run(&self.pipes.normalise, tiles);
                    }
                    Responsibilities::Nearest => {
                        run(&self.pipes.logprob, tiles * self.k);
                        run(&self.pipes.assign, tiles);
                    }
                    Responsibilities::Random => run(&self.pipes.random, tiles),
                }
                run(
                    &self.pipes.stats,
                    chunk.n_blocks as usize * self.k * job.out_groups as usize,
                );
                pass.set_pipeline(&self.pipes.combine);
                for level in &chunk.levels {
                    pass.set_bind_group(0, &level.bind, &[]);
                    let (gx, gy) = fold((level.n_out as usize * row_len).div_ceil(WG as usize), max_dim);
                    pass.dispatch_workgroups(gx, gy, 1);
                    dispatches += 1;
                }
            }
            let last = if chunk.final_in_scratch {
                &self.scratch
            } else {
                &self.partials
            };
            encoder.copy_buffer_to_buffer(last, 0, &self.readback, (c * row_len * 4) as u64, (row_len * 4) as u64);
        }
        ctx.queue.submit([encoder.finish()]);
        (dispatches, uploaded)
    }

    /// Sums the chunks' rows in f64, in chunk order, and writes them to `out` around `centres`
    /// (the GPU summed around `centres_used`; the shift to `centres` is exact algebra).
    fn collect(&mut self, stats_kind: u32, centres: &[f64], score_offset: f64, out: &mut SuffStats) {
        let (k, d) = (self.k, self.d);
        let e = n_outputs(stats_kind, d);
        let row_len = k * e + 1;
        let sums = &mut self.row_sums[..row_len];
        sums.fill(0.0);
        for row in self.rows_host.chunks_exact(row_len).take(self.chunks.len()) {
            sums.iter_mut().zip(row).for_each(|(s, &v)| *s += f64::from(v));
        }
        out.clear();
        let s2_len = SuffStats::s2_len(out.kind, d);
        for c in 0..k {
            let r = &sums[c * e..(c + 1) * e];
            let s0 = r[0];
            let s1 = &r[1..1 + d];
            // The GPU's centre minus the driver's: f32 rounding, undone exactly here.
            let used = &self.centres_used[c * d..(c + 1) * d];
            let delta = |i: usize| used[i] - centres[c * d + i];
            out.s0[c] = s0;
            for (i, (o, &s)) in out.s1[c * d..(c + 1) * d].iter_mut().zip(s1).enumerate() {
                *o = s + s0 * delta(i);
            }
            let moved =
                |i: usize, j: usize, s2ij: f64| s2ij + delta(i) * s1[j] + s1[i] * delta(j) + s0 * delta(i) * delta(j);
            let s2 = &mut out.s2[c * s2_len..(c + 1) * s2_len];
            match out.kind {
                CovarianceType::Full | CovarianceType::Tied => {
                    let mut p = 0;
                    for i in 0..d {
                        for j in i..d {
                            s2[p] = moved(i, j, r[1 + d + p]);
                            p += 1;
                        }
                    }
                }
                CovarianceType::Diag => (0..d).for_each(|i| s2[i] = moved(i, i, r[1 + d + i])),
                CovarianceType::Spherical => s2[0] = (0..d).map(|i| moved(i, i, r[1 + d + i])).sum(),
            }
        }
        out.score_sum = sums[row_len - 1] + score_offset;
        out.weight_sum = self.weight_sum;
    }

    /// Per-sample outputs of `mix` for every sample, chunk by chunk: responsibilities (N x K),
    /// log p(x) or labels, read back into `out`.
    pub(crate) fn per_sample_outputs(
        &mut self,
        mix: &Mixture,
        output: Output,
        out: &mut [f64],
    ) -> Result<(), GmmError> {
        let ctx = self.ctx;
        self.set_mixture(mix);
        let job = self.job(kind_code(mix.cov_type), STATS_DIAG, 0);
        ctx.queue
            .write_buffer(&self.model, 0, bytemuck::cast_slice(&self.model_host));
        ctx.queue.write_buffer(&self.job, 0, bytemuck::bytes_of(&job));
        let per = if output == Output::Proba { self.k } else { 1 };
        let staging = mappable(ctx, "gmm per-sample readback", (self.chunk_len * per * 4) as u64)?;
        let mut host = vec![0f32; self.chunk_len * per];
        let max_dim = ctx.limits.max_compute_workgroups_per_dimension;
        for chunk in &self.chunks {
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
                for (pipeline, groups) in [
                    (&self.pipes.logprob, tiles * self.k),
                    (
                        if output == Output::Labels {
                            &self.pipes.assign
                        } else {
                            &self.pipes.normalise
                        },
                        tiles,
                    ),
                ] {
                    pass.set_pipeline(pipeline);
                    let (gx, gy) = fold(groups, max_dim);
                    pass.dispatch_workgroups(gx, gy, 1);
                }
            }
            let (src, len) = if output == Output::Proba {
                (&self.resp, chunk.len * self.k)
            } else {
                (&self.per_sample, chunk.len)
            };
            encoder.copy_buffer_to_buffer(src, 0, &staging, 0, (len * 4) as u64);
            ctx.scoped("gmm per-sample pass", 0, || ctx.queue.submit([encoder.finish()]))?;
            read_back(ctx, &staging, &mut host[..len])?;
            let dst = &mut out[chunk.start * per..chunk.start * per + len];
            match output {
                // The GPU left out −(d/2)·log 2π.
                Output::LogProb => dst
                    .iter_mut()
                    .zip(&host)
                    .for_each(|(o, &v)| *o = f64::from(v) - self.d as f64 * HALF_LN_2PI),
                _ => dst.iter_mut().zip(&host).for_each(|(o, &v)| *o = f64::from(v)),
            }
        }
        Ok(())
    }
}

/// What [`GpuBackend::per_sample_outputs`] reads back.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Output {
    Proba,
    LogProb,
    Labels,
}

fn kind_code(kind: CovarianceType) -> u32 {
    match kind {
        CovarianceType::Full => layout::KIND_FULL,
        CovarianceType::Tied => layout::KIND_TIED,
        CovarianceType::Diag => layout::KIND_DIAG,
        CovarianceType::Spherical => layout::KIND_SPHERICAL,
    }
}

/// Folds a count of workgroups into a 2-D grid under the per-dimension limit; the shaders rebuild the
/// linear index and skip the surplus.
fn fold(groups: usize, max_dim: u32) -> (u32, u32) {
    let groups = groups.max(1);
    let gx = groups.min(max_dim as usize);
    (gx as u32, groups.div_ceil(gx) as u32)
}

/// Maps the front of `buffer`, copies it into `out` and unmaps it.
fn read_back(ctx: &GpuContext, buffer: &wgpu::Buffer, out: &mut [f32]) -> Result<(), GmmError> {
    let bytes = (out.len() * 4) as u64;
    let (tx, rx) = mpsc::channel();
    ctx.scoped("gmm readback mapping", bytes, || {
        buffer.map_async(wgpu::MapMode::Read, 0..bytes, move |r| {
            let _ = tx.send(r);
        })
    })?;
    ctx.wait()?;
    match rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return Err(GmmError::DeviceLost {
                reason: format!("mapping the readback buffer failed: {e}"),
            });
        }
        Err(_) => {
            return Err(GmmError::DeviceLost {
                reason: "the readback mapping never completed".into(),
            });
        }
    }
    {
        let view = buffer
            .get_mapped_range(0..bytes)
            .map_err(|e| GmmError::GpuInternal { message: e.to_string() })?;
        out.copy_from_slice(bytemuck::cast_slice(&view));
    }
    buffer.unmap();
    Ok(())
}

fn uniform_buffer(ctx: &GpuContext, label: &'static str, contents: &[u8]) -> Result<wgpu::Buffer, GmmError> {
    use wgpu::util::DeviceExt;
    ctx.scoped(label, contents.len() as u64, || {
        ctx.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        })
    })
}

/// The mean of every column, in f64, summed in fixed blocks and combined pairwise (deterministic).
fn column_means(view: &DataView) -> Vec<f64> {
    use rayon::prelude::*;
    let (n, d) = (view.n_samples(), view.n_features());
    let block = 4096;
    let partial: Vec<Vec<f64>> = (0..n.div_ceil(block))
        .into_par_iter()
        .map(|b| {
            let mut s = vec![0.0; d];
            let mut row = vec![0.0; d];
            for i in b * block..((b + 1) * block).min(n) {
                view.row_into(i, &mut row);
                s.iter_mut().zip(&row).for_each(|(a, v)| *a += v);
            }
            s
        })
        .collect();
    (0..d)
        .map(|j| crate::model::pairwise_sum(&partial.iter().map(|p| p[j]).collect::<Vec<_>>()) / n as f64)
        .collect()
}

/// Uploads the host's samples, shifted and rounded to f32, chunk by chunk into segment buffers of
/// whole chunks (each within max_buffer_size), flushing each chunk so that host memory stays
/// chunk-bounded.
fn upload_segments(
    ctx: &GpuContext,
    view: &DataView,
    shift: &[f64],
    chunk_len: usize,
) -> Result<Vec<wgpu::Buffer>, GmmError> {
    let (n, d) = (view.n_samples(), view.n_features());
    let chunk_bytes = (chunk_len * d * 4) as u64;
    let per_segment = (ctx.limits.max_buffer_size / chunk_bytes).max(1) as usize;
    let n_chunks = n.div_ceil(chunk_len);
    let mut segments = Vec::new();
    let mut staging = vec![0f32; chunk_len * d];
    for c in 0..n_chunks {
        let s = c / per_segment;
        if s == segments.len() {
            let chunks_here = per_segment.min(n_chunks - s * per_segment);
            let rows_here = (chunks_here * chunk_len).min(n - s * per_segment * chunk_len);
            segments.push(storage(
                ctx,
                "gmm samples (centred f32)",
                (rows_here * d * 4) as u64,
                wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
            )?);
        }
        let start = c * chunk_len;
        let len = chunk_len.min(n - start);
        let out = &mut staging[..len * d];
        match view.samples() {
            Samples::F32(x) => out
                .iter_mut()
                .zip(&x[start * d..(start + len) * d])
                .enumerate()
                .for_each(|(i, (o, &v))| *o = (f64::from(v) - shift[i % d]) as f32),
            Samples::F64(x) => out
                .iter_mut()
                .zip(&x[start * d..(start + len) * d])
                .enumerate()
                .for_each(|(i, (o, &v))| *o = (v - shift[i % d]) as f32),
        }
        let offset = ((start - s * per_segment * chunk_len) * d * 4) as u64;
        // Flush each chunk at once, so the queue's staging copy of it is freed before the next.
        ctx.scoped("gmm samples upload", chunk_bytes, || {
            ctx.queue.write_buffer(&segments[s], offset, bytemuck::cast_slice(out));
            ctx.queue.submit([]);
        })?;
        ctx.wait()?;
    }
    Ok(segments)
}

impl Backend for GpuBackend<'_> {
    fn n_samples(&self) -> usize {
        self.n
    }

    fn n_features(&self) -> usize {
        self.d
    }

    fn em_statistics(&mut self, mixture: &Mixture, centres: &[f64], stats: &mut SuffStats) -> Result<(), GmmError> {
        self.set_mixture(mixture);
        self.set_centres(centres);
        let stats_kind = stats_kind_for(stats.kind);
        // The shader sums log p − ref, with ref the previous pass's mean: in f32 a sum of log p itself
        // would carry an absolute error of |Σ log p|·2⁻²⁴, which hides changes below ~1e-7 per sample.
        let logp_ref = self.logp_ref as f32;
        let job = Pass {
            logp_ref,
            ..self.job(kind_code(mixture.cov_type), stats_kind, 0)
        };
        self.run_statistics(Responsibilities::Posterior, job)?;
        // The GPU also leaves out −(d/2)·log 2π, common to every component.
        let offset = self.weight_sum * (f64::from(logp_ref) - self.d as f64 * HALF_LN_2PI);
        self.collect(stats_kind, centres, offset, stats);
        self.logp_ref = stats.score_sum / stats.weight_sum + self.d as f64 * HALF_LN_2PI;
        Ok(())
    }

    fn label_statistics(&mut self, centroids: &[f64], stats: &mut SuffStats) -> Result<(), GmmError> {
        self.set_centroids(centroids);
        self.set_centres(centroids);
        let stats_kind = stats_kind_for(stats.kind);
        let job = self.job(layout::KIND_SPHERICAL, stats_kind, 0);
        self.run_statistics(Responsibilities::Nearest, job)?;
        self.collect(stats_kind, centroids, 0.0, stats);
        Ok(())
    }

    fn random_statistics(&mut self, seed: u64, centres: &[f64], stats: &mut SuffStats) -> Result<(), GmmError> {
        self.set_centres(centres);
        let stats_kind = stats_kind_for(stats.kind);
        let job = self.job(layout::KIND_SPHERICAL, stats_kind, seed);
        self.run_statistics(Responsibilities::Random, job)?;
        self.collect(stats_kind, centres, 0.0, stats);
        Ok(())
    }

    fn gather_rows(&mut self, rows: &[usize], out: &mut [f64]) -> Result<(), GmmError> {
        let d = self.d;
        match &self.source {
            Source::Host(view) => {
                for (&i, o) in rows.iter().zip(out.chunks_exact_mut(d)) {
                    view.row_into(i, o);
                }
                Ok(())
            }
            Source::Device { buffer, .. } => {
                if !buffer.usage().contains(wgpu::BufferUsages::COPY_SRC) {
                    return Err(GmmError::GpuBuffer {
                        problem: "lacks wgpu::BufferUsages::COPY_SRC, which k-means and random-from-data initialisation need to read a few rows; add it, or use InitMethod::Random or user-given initial parameters".into(),
                    });
                }
                let ctx = self.ctx;
                let bytes = (rows.len() * d * 4) as u64;
                let staging = mappable(ctx, "gmm seed rows readback", bytes)?;
                let mut encoder = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("gmm gather seed rows"),
                });
                // Runs of consecutive rows become one copy each.
                let mut i = 0;
                while i < rows.len() {
                    let mut j = i + 1;
                    while j < rows.len() && rows[j] == rows[j - 1] + 1 {
                        j += 1;
                    }
                    encoder.copy_buffer_to_buffer(
                        buffer,
                        (rows[i] * d * 4) as u64,
                        &staging,
                        (i * d * 4) as u64,
                        ((j - i) * d * 4) as u64,
                    );
                    i = j;
                }
                ctx.scoped("gmm gather seed rows", bytes, || ctx.queue.submit([encoder.finish()]))?;
                let mut host = vec![0f32; rows.len() * d];
                read_back(ctx, &staging, &mut host)?;
                out.iter_mut().zip(&host).for_each(|(o, &v)| *o = f64::from(v));
                Ok(())
            }
        }
    }

    fn info(&self) -> FitInfo {
        FitInfo {
            backend: "gpu",
            adapter: Some(self.ctx.adapter_name()),
            traffic: Some(self.traffic),
        }
    }
}
