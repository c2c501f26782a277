//! The host conveniences (`GmmModel::predict_on` and the rest) on the embedding path: the model
//! resident in exact arithmetic, the host's samples uploaded batch by batch into one reused buffer
//! through the data's frame, one encode of the bound inference and one readback per batch.

use crate::backend::Output;
use crate::data::DataView;
use crate::error::GmmError;
use crate::gpu::GpuContext;
use crate::gpu::frame::Frame;
use crate::gpu::inference::Inference;
use crate::gpu::precision::GpuPrecision;
use crate::gpu::readback::read_back;
use crate::gpu::resident::GpuModel;
use crate::gpu::resources::{buffer, mappable};
use crate::gpu::samples::{DeviceSamples, InferOutputs, OutputBuffer};
use crate::gpu::upload::fill_chunk;
use crate::model::GmmModel;

/// Bytes of samples uploaded per batch (and at most as many of outputs read back).
const BATCH_BYTES: usize = 32 << 20;

/// `output` of `model` for every sample of `data` into `out` (labels as their f64 values,
/// log-densities in f64 from the kernels' two-float, responsibilities row-major).
pub(crate) fn outputs_on(
    ctx: &GpuContext,
    model: &GmmModel,
    data: &DataView,
    output: Output,
    out: &mut [f64],
) -> Result<(), GmmError> {
    let (n, d, k) = (data.n_samples(), data.n_features(), model.n_components());
    if n == 0 {
        return Ok(());
    }
    // Exact arithmetic, in the data's frame (centred and scaled by powers of two), as a fit's.
    let frame = Frame::of_data(data, None);
    let resident = GpuModel::in_frame(ctx, model, GpuPrecision::Exact, frame.clone())?;
    let per = match output {
        Output::Labels => 1,
        Output::LogProb => 2,
        Output::Proba => k,
    };
    let batch = (BATCH_BYTES / (4 * d.max(per))).clamp(1, n);
    use wgpu::BufferUsages as U;
    let input = buffer(
        ctx,
        "gmm host samples batch",
        (batch * d * 4) as u64,
        U::STORAGE | U::COPY_DST,
    )?;
    let result_bytes = (batch * per * 4) as u64;
    let results = buffer(ctx, "gmm host outputs batch", result_bytes, U::STORAGE | U::COPY_SRC)?;
    let readback = mappable(ctx, "gmm host outputs readback", result_bytes)?;
    let target = OutputBuffer::new(&results);
    let outputs = match output {
        Output::Labels => InferOutputs::new().labels(target),
        Output::LogProb => InferOutputs::new().log_density(target),
        Output::Proba => InferOutputs::new().responsibilities(target),
    };
    let inference = Inference::new(&resident, DeviceSamples::new(&input, batch, d), outputs, true)?;
    let shift = resident.state().shift;
    let mut host_x = vec![0f32; batch * d];
    let mut host_out = vec![0f32; batch * per];
    for start in (0..n).step_by(batch) {
        let len = batch.min(n - start);
        fill_chunk(data, &frame, start, len, &mut host_x[..len * d])?;
        let mut encoder = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("gmm host inference"),
        });
        inference.encode_count(&mut encoder, len)?;
        encoder.copy_buffer_to_buffer(&results, 0, &readback, 0, (len * per * 4) as u64);
        ctx.scoped("gmm host inference", (len * d * 4) as u64, || {
            ctx.queue
                .write_buffer(&input, 0, bytemuck::cast_slice(&host_x[..len * d]));
            ctx.queue.submit([encoder.finish()]);
        })?;
        let got = &mut host_out[..len * per];
        match output {
            Output::Labels => {
                read_back(ctx, &readback, got)?;
                // The kernels write u32 labels: the f32 buffer holds their bits.
                for (o, &l) in out[start..start + len].iter_mut().zip(got.iter()) {
                    *o = f64::from(l.to_bits());
                }
            }
            Output::LogProb => {
                read_back(ctx, &readback, got)?;
                for (o, pair) in out[start..start + len].iter_mut().zip(got.chunks_exact(2)) {
                    *o = f64::from(pair[0]) + f64::from(pair[1]) + shift;
                }
            }
            Output::Proba => {
                read_back(ctx, &readback, got)?;
                for (o, &v) in out[start * k..(start + len) * k].iter_mut().zip(got.iter()) {
                    *o = f64::from(v);
                }
            }
        }
    }
    Ok(())
}
