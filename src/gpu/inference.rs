//! Inference bound once, recorded many times: the windows, uniforms and bind groups of a resident
//! model's inference over a caller's samples into the caller's output buffers, made and checked
//! at bind time, and the compute passes `encode` records into the caller's command encoder.

use std::sync::Mutex;

use bytemuck::Zeroable;

use crate::error::GmmError;
use crate::gpu::layout::{self, Chunk, INFER_LABELS, INFER_LOGP, INFER_PROBA, Infer, KIND_DIAG, TRI_SMALL_D, WG};
use crate::gpu::passes::{fold, logprob_for};
use crate::gpu::pipelines::Pipelines;
use crate::gpu::precision::Arith;
use crate::gpu::resident::{GpuModel, Shared};
use crate::gpu::resources::{binding, storage, uniform_buffer};
use crate::gpu::samples::{DeviceSamples, InferOutputs, OutputBuffer};

/// The most loop iterations one invocation of the direct `infer` kernel may run (lavapipe stops an
/// invocation at 65,535; the same margin as the fused pass's `FUSED_MAX_ITERATIONS`).
const DIRECT_MAX_ITERATIONS: usize = layout::FUSED_MAX_ITERATIONS;
/// The samples × components scratch of the two-pass path is at most this many bytes per buffer,
/// whatever the bound capacity: chunks are sized to it.
const SCRATCH_BYTES: u64 = 64 << 20;

/// Whether labels and log-densities of `k` components of `d` features with factors of `kind` come
/// straight from the samples (shaders/infer.wgsl `infer`): diagonal factors, or triangular ones
/// small enough for one sample's row in registers, with both passes over the components short
/// enough for one invocation.
pub(crate) fn direct_fits(kind: u32, d: usize, k: usize) -> bool {
    let per_component = if kind == KIND_DIAG {
        d + d.div_ceil(layout::DIAG_FB as usize)
    } else if d <= TRI_SMALL_D as usize {
        d * (d + 1) / 2 + d
    } else {
        return false;
    };
    2 * k * per_component + d <= DIRECT_MAX_ITERATIONS
}

impl GpuModel {
    /// Binds an inference of the samples `input` into `outputs` (at least one), for
    /// [`Inference::encode`]: buffers, windows and bind groups are made here, once; every misuse
    /// (a usage flag, a size, an offset, a stride, a buffer of another device, an input also bound
    /// as an output) is a typed error here, so that encoding never raises a wgpu validation error.
    pub fn bind(&self, input: DeviceSamples<'_>, outputs: InferOutputs<'_>) -> Result<Inference, GmmError> {
        Inference::new(self, input, outputs, false)
    }
}

/// One chunk of a bound inference: its samples, uniforms and bind groups (for the fast and the
/// exact pass uniforms, so that an `update` that changes the arithmetic keeps them valid).
#[derive(Debug)]
struct InferChunk {
    start: usize,
    len: usize,
    uniform: wgpu::Buffer,
    chunk_host: Chunk,
    infer: [wgpu::BindGroup; 2],
    /// The E-step's bind groups for `logprob*` into the scratch (the two-pass path only).
    logprob: Option<[wgpu::BindGroup; 2]>,
}

/// An inference bound by [`GpuModel::bind`]: record it into command encoders with
/// [`Inference::encode`] (or [`Inference::encode_count`] for fewer samples than bound).
#[derive(Debug)]
pub struct Inference {
    model: GpuModel,
    capacity: usize,
    /// Labels and log-densities straight from the samples (no responsibilities asked for, and a
    /// model small enough); else the E-step's log-densities first, into the scratch.
    direct: bool,
    chunks: Vec<InferChunk>,
    /// The count the chunk uniforms now hold.
    count: Mutex<usize>,
    /// Kept alive for the bind groups.
    _owned: Vec<wgpu::Buffer>,
}

impl Inference {
    pub(crate) fn new<'b>(
        model: &GpuModel,
        input: DeviceSamples<'b>,
        outputs: InferOutputs<'b>,
        logp_pairs: bool,
    ) -> Result<Self, GmmError> {
        let s: &Shared = &model.shared;
        let ctx = &s.ctx;
        let (k, d) = (s.k, s.d);
        if input.n_features != d {
            return Err(GmmError::FeatureMismatch {
                what: "the resident model",
                expected: d,
                got: input.n_features,
            });
        }
        input.check()?;
        let n = input.n_samples;
        let per_logp = if logp_pairs { 2 } else { 1 };
        let named = [
            ("labels", outputs.labels, 1u64),
            ("log-density", outputs.log_density, per_logp),
            ("responsibilities", outputs.responsibilities, k as u64),
        ];
        if named.iter().all(|(_, o, _)| o.is_none()) {
            return Err(GmmError::NoInferenceOutputs);
        }
        for (name, out, per) in named {
            if let Some(out) = out {
                out.check(name, n as u64 * per)?;
                if out.buffer == input.buffer {
                    return Err(GmmError::GpuBufferAliased { buffer: name });
                }
            }
        }
        let direct = outputs.responsibilities.is_none() && direct_fits(s.kind, d, k);
        if !direct {
            // The E-step's log-density kernels, built now rather than at the first encode.
            ctx.pipelines(model.state().arith)?;
        }
        let chunk_len = chunk_len(ctx, &input, k, per_logp, direct, outputs.responsibilities.is_some())?;
        let align = u64::from(ctx.limits.min_storage_buffer_offset_alignment);

        use wgpu::BufferUsages as U;
        // Unused bindings: one buffer for every writable slot, another for the read-only one (a
        // buffer read-only and writable in one dispatch is a wgpu validation error).
        let dummy = storage(ctx, "gmm inference unused output", 16, U::empty())?;
        let dummy_read = storage(ctx, "gmm inference no sample weights", 16, U::empty())?;
        let scratch = if direct {
            None
        } else {
            let bytes = (chunk_len * k * 4) as u64;
            Some([
                storage(ctx, "gmm inference log-densities per component", bytes, U::empty())?,
                storage(ctx, "gmm inference log-density low parts", bytes, U::empty())?,
            ])
        };
        let flags = [
            (outputs.labels, INFER_LABELS),
            (outputs.log_density, INFER_LOGP),
            (outputs.responsibilities, INFER_PROBA),
        ]
        .iter()
        .filter(|(o, _)| o.is_some())
        .fold(0, |f, (_, bit)| f | bit);
        // log p in the caller's units: the shift added on the device, or by the host in f64 after
        // it reads the (hi, lo) pairs.
        let shift = model.state().shift;
        let (shift_hi, shift_lo) = if logp_pairs {
            (0.0, 0.0)
        } else {
            let hi = shift as f32;
            (hi, (shift - f64::from(hi)) as f32)
        };
        let chunk_count = n.div_ceil(chunk_len);
        let layouts = ctx.layouts()?;
        // Bind groups validate against the layouts here: a buffer of another device is the one
        // misuse the checks above cannot see, and comes back typed.
        let made = ctx.scoped(
            "gmm inference bind groups",
            0,
            || -> Result<Vec<InferChunk>, GmmError> {
                let mut chunks = Vec::with_capacity(chunk_count);
                for c in 0..chunk_count {
                    let start = c * chunk_len;
                    let len = chunk_len.min(n - start);
                    let (x_offset, x_size, x_at) = input.window(start, len, align);
                    let window = |out: Option<OutputBuffer<'b>>, per: u64| match out {
                        Some(o) => {
                            let (offset, size, at) = o.window(start as u64 * per, len as u64 * per, align);
                            (binding(o.buffer, offset, size), at)
                        }
                        None => (dummy.as_entire_binding(), 0),
                    };
                    let (labels, labels_at) = window(outputs.labels, 1);
                    let (logp, logp_at) = window(outputs.log_density, per_logp);
                    let (proba, proba_at) = window(outputs.responsibilities, k as u64);
                    let chunk_host = Chunk {
                        n_samples: len as u32,
                        x_at,
                        x_stride: input.stride as u32,
                        ..Chunk::zeroed()
                    };
                    let uniform = uniform_buffer(ctx, "gmm inference chunk uniform", bytemuck::bytes_of(&chunk_host))?;
                    let infer_host = Infer {
                        outputs: flags,
                        labels_at,
                        logp_at,
                        proba_at,
                        shift_hi,
                        shift_lo,
                        logp_pairs: u32::from(logp_pairs),
                        _pad: 0,
                    };
                    let infer_uniform =
                        uniform_buffer(ctx, "gmm inference outputs uniform", bytemuck::bytes_of(&infer_host))?;
                    let x = binding(input.buffer, x_offset, x_size);
                    let (resp, h_lo) = match &scratch {
                        Some([r, l]) => (r.as_entire_binding(), l.as_entire_binding()),
                        None => (dummy.as_entire_binding(), dummy.as_entire_binding()),
                    };
                    let infer = [0, 1].map(|j| {
                        ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
                            label: Some("gmm inference bind group"),
                            layout: &layouts.infer,
                            entries: &Pipelines::infer_entries([
                                uniform.as_entire_binding(),
                                x.clone(),
                                s.model.as_entire_binding(),
                                resp.clone(),
                                s.jobs[j].as_entire_binding(),
                                h_lo.clone(),
                                infer_uniform.as_entire_binding(),
                                labels.clone(),
                                logp.clone(),
                                proba.clone(),
                            ]),
                        })
                    });
                    let logprob = scratch.as_ref().map(|_| {
                        [0, 1].map(|j| {
                            ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
                                label: Some("gmm inference log-density bind group"),
                                layout: &layouts.chunk,
                                entries: &Pipelines::chunk_entries([
                                    uniform.as_entire_binding(),
                                    x.clone(),
                                    s.model.as_entire_binding(),
                                    resp.clone(),
                                    dummy.as_entire_binding(),
                                    dummy_read.as_entire_binding(),
                                    dummy.as_entire_binding(),
                                    s.jobs[j].as_entire_binding(),
                                    dummy.as_entire_binding(),
                                    h_lo.clone(),
                                ]),
                            })
                        })
                    });
                    chunks.push(InferChunk {
                        start,
                        len,
                        uniform,
                        chunk_host,
                        infer,
                        logprob,
                    });
                }
                Ok(chunks)
            },
        );
        let chunks = match made {
            Ok(chunks) => chunks?,
            // After the checks above, a bind group fails validation only for a buffer of another device.
            Err(GmmError::GpuInternal { message } | GmmError::DeviceLost { reason: message })
                if message.contains("doesn't match") =>
            {
                return Err(GmmError::GpuBufferOtherDevice {
                    buffer: "input or an output",
                });
            }
            Err(e) => return Err(e),
        };
        let mut owned = vec![dummy, dummy_read];
        owned.extend(scratch.into_iter().flatten());
        Ok(Self {
            model: model.clone(),
            capacity: n,
            direct,
            chunks,
            count: Mutex::new(n),
            _owned: owned,
        })
    }

    /// Whether labels and log-densities come straight from the samples, with no samples ×
    /// components array in device memory (responsibilities not asked for, and a model small enough
    /// for one invocation per sample); else the log-densities per component pass through a scratch
    /// buffer first.
    pub fn direct(&self) -> bool {
        self.direct
    }

    /// The number of samples bound.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The resident model this inference reads.
    pub fn model(&self) -> &GpuModel {
        &self.model
    }

    /// Records the inference of every bound sample into `encoder`: compute passes only (no
    /// submission, no readback, no allocation); the caller submits. Fails only if the model's
    /// kernels cannot be built: they are built by `GpuModel::new`, `update` and `bind`, except after
    /// an `update` that moved the model to the exact kernels, whose first encode builds them.
    pub fn encode(&self, encoder: &mut wgpu::CommandEncoder) -> Result<(), GmmError> {
        self.encode_count(encoder, self.capacity)
    }

    /// As [`Inference::encode`] for the first `count` bound samples only (variable-size frames).
    /// A count other than the last one given is written to the chunk uniforms with
    /// `Queue::write_buffer`, which takes effect at the next submission: the count given last
    /// before a submission applies to every encode in it. More than bound is
    /// [`GmmError::InferenceCount`].
    pub fn encode_count(&self, encoder: &mut wgpu::CommandEncoder, count: usize) -> Result<(), GmmError> {
        if count > self.capacity {
            return Err(GmmError::InferenceCount {
                count,
                capacity: self.capacity,
            });
        }
        let s = &self.model.shared;
        let ctx = &s.ctx;
        self.set_count(count)?;
        let arith = self.model.state().arith;
        let infer = ctx.infer_pipelines(arith)?;
        let pipes = if self.direct { None } else { Some(ctx.pipelines(arith)?) };
        let j = usize::from(arith != Arith::Fast);
        let max_dim = ctx.limits.max_compute_workgroups_per_dimension;
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("gmm inference"),
            timestamp_writes: None,
        });
        for chunk in self.chunks.iter().filter(|c| c.start < count) {
            let len = chunk.len.min(count - chunk.start);
            if let (Some(pipes), Some(bind)) = (pipes, &chunk.logprob) {
                let (pipeline, groups) = logprob_for(pipes, s.kind, s.d, len, s.k);
                pass.set_pipeline(pipeline);
                pass.set_bind_group(0, &bind[j], &[]);
                let (gx, gy) = fold(groups, max_dim);
                pass.dispatch_workgroups(gx, gy, 1);
            }
            pass.set_pipeline(if self.direct { &infer.infer } else { &infer.infer_h });
            pass.set_bind_group(0, &chunk.infer[j], &[]);
            let (gx, gy) = fold(len.div_ceil(WG as usize), max_dim);
            pass.dispatch_workgroups(gx, gy, 1);
        }
        Ok(())
    }

    /// Writes the chunk uniforms' sample counts for `count` where they differ.
    fn set_count(&self, count: usize) -> Result<(), GmmError> {
        let mut current = self.count.lock().unwrap_or_else(|p| p.into_inner());
        if *current == count {
            return Ok(());
        }
        let ctx = &self.model.shared.ctx;
        ctx.scoped("gmm inference count", 0, || {
            for chunk in &self.chunks {
                let len = chunk.len.min(count.saturating_sub(chunk.start));
                let old = chunk.len.min(current.saturating_sub(chunk.start));
                if len != old {
                    let host = Chunk {
                        n_samples: len as u32,
                        ..chunk.chunk_host
                    };
                    ctx.queue.write_buffer(&chunk.uniform, 0, bytemuck::bytes_of(&host));
                }
            }
        })?;
        *current = count;
        Ok(())
    }
}

/// Samples per chunk: a multiple of WG whose every window (input, outputs, scratch) fits one
/// storage binding, and the scratch [`SCRATCH_BYTES`].
fn chunk_len(
    ctx: &crate::gpu::GpuContext,
    input: &DeviceSamples,
    k: usize,
    per_logp: u64,
    direct: bool,
    proba: bool,
) -> Result<usize, GmmError> {
    let limit = ctx.limits.max_storage_buffer_binding_size.min(u64::from(u32::MAX));
    let slack = u64::from(ctx.limits.min_storage_buffer_offset_alignment);
    let usable = limit.saturating_sub(slack);
    let stride = input.stride as u64 * 4;
    let mut len = usable.saturating_sub(input.n_features as u64 * 4) / stride + 1;
    len = len.min(usable / (4 * per_logp));
    if proba || !direct {
        len = len.min(usable / (4 * k as u64));
    }
    if !direct {
        len = len.min(SCRATCH_BYTES.min(ctx.limits.max_buffer_size) / (4 * k as u64));
    }
    let len = (len as usize / WG as usize) * WG as usize;
    if len == 0 {
        return Err(GmmError::GpuModelTooLarge {
            what: "per-component log-densities of 64 samples",
            n_components: k,
            n_features: input.n_features,
            bytes: u64::from(WG) * 4 * k as u64,
            granted: limit,
        });
    }
    let wanted = input.n_samples.div_ceil(WG as usize).max(1) * WG as usize;
    Ok(len.min(wanted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::layout::{KIND_FULL, KIND_TIED};

    #[test]
    fn the_direct_kernel_takes_what_stays_under_lavapipes_loop_cap() {
        // Diagonal: 2·K·(d + ⌈d/16⌉) + d iterations; the benchmark case (d = 32, K = 64)
        // runs 2·64·34 + 32 = 4,384.
        assert!(direct_fits(KIND_DIAG, 32, 64));
        assert!(direct_fits(KIND_DIAG, 4, 3999)); // 2·3999·5 + 4 = 39,994
        assert!(!direct_fits(KIND_DIAG, 4, 4000)); // 40,004
        // Triangular: only up to TRI_SMALL_D features, 2·K·(d(d+1)/2 + d) + d iterations.
        assert!(direct_fits(KIND_FULL, 8, 8));
        assert!(direct_fits(KIND_TIED, 16, 130)); // 2·130·152 + 16 = 39,536
        assert!(!direct_fits(KIND_TIED, 16, 132)); // 40,144
        assert!(!direct_fits(KIND_FULL, 17, 1));
    }
}
