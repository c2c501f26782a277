//! The host's samples and weights on their way to f32: each feature centred on its mean and scaled
//! by a power of two (exact, so the f32 rounding is the only change), the weights scaled by a power
//! of two, and both uploaded once per fit, chunk by chunk.

use rayon::prelude::*;

use crate::data::{DataView, Samples};
use crate::error::GmmError;
use crate::gpu::GpuContext;
use crate::gpu::frame::Frame;
use crate::gpu::resources::storage;

/// A value that must survive the trip to f32: an error unless it does (finite, and not flushed to
/// zero while the f64 value is not zero).
#[inline]
fn to_f32(v: f64) -> Option<f32> {
    let f = v as f32;
    (f.is_finite() && (f.is_normal() || v == 0.0)).then_some(f)
}

/// Uploads the host's samples through `frame`, rounded to f32, chunk by chunk into segment buffers
/// of `chunks_per_segment` whole chunks, flushing each chunk so that host memory stays chunk-bounded.
pub(crate) fn upload_segments(
    ctx: &GpuContext,
    view: &DataView,
    frame: &Frame,
    chunk_len: usize,
    chunks_per_segment: usize,
) -> Result<Vec<wgpu::Buffer>, GmmError> {
    let (n, d) = (view.n_samples(), view.n_features());
    let chunk_bytes = (chunk_len * d * 4) as u64;
    let n_chunks = n.div_ceil(chunk_len);
    let mut segments = Vec::new();
    let mut staging = vec![0f32; chunk_len * d];
    for c in 0..n_chunks {
        let s = c / chunks_per_segment;
        if s == segments.len() {
            let chunks_here = chunks_per_segment.min(n_chunks - s * chunks_per_segment);
            let rows_here = (chunks_here * chunk_len).min(n - s * chunks_per_segment * chunk_len);
            segments.push(storage(
                ctx,
                "gmm samples (centred, scaled f32)",
                (rows_here * d * 4) as u64,
                wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
            )?);
        }
        let start = c * chunk_len;
        let len = chunk_len.min(n - start);
        let out = &mut staging[..len * d];
        fill_chunk(view, frame, start, len, out)?;
        let offset = ((start - s * chunks_per_segment * chunk_len) * d * 4) as u64;
        // Flush each chunk at once, so the queue's staging copy of it is freed before the next.
        ctx.scoped("gmm samples upload", chunk_bytes, || {
            ctx.queue.write_buffer(&segments[s], offset, bytemuck::cast_slice(out));
            ctx.queue.submit([]);
        })?;
        ctx.wait()?;
    }
    Ok(segments)
}

/// Samples `start..start + len` of `view` through `frame`, rounded to f32, into `out` (len·d values):
/// the one conversion behind resident uploads and streamed chunks alike.
pub(crate) fn fill_chunk(
    view: &DataView,
    frame: &Frame,
    start: usize,
    len: usize,
    out: &mut [f32],
) -> Result<(), GmmError> {
    let d = view.n_features();
    let convert = |i: usize, v: f64| {
        to_f32(frame.to_device(i % d, v)).ok_or(GmmError::DataOutsideF32Range {
            row: start + i / d,
            column: i % d,
            value: v,
        })
    };
    match view.samples() {
        Samples::F32(x) => out
            .par_iter_mut()
            .zip(&x[start * d..(start + len) * d])
            .enumerate()
            .try_for_each(|(i, (o, &v))| convert(i, f64::from(v)).map(|f| *o = f)),
        Samples::F64(x) => out
            .par_iter_mut()
            .zip(&x[start * d..(start + len) * d])
            .enumerate()
            .try_for_each(|(i, (o, &v))| convert(i, v).map(|f| *o = f)),
    }
}

/// The samples exactly as the GPU path holds them (centred and scaled as for an upload, rounded to
/// f32), mapped back to the caller's units in f64: fitting this on the CPU separates the f32
/// rounding of the data, which no arithmetic can undo, from the GPU's arithmetic.
pub fn f32_image(view: &DataView) -> Result<Vec<f64>, GmmError> {
    let frame = Frame::of_data(view, None);
    let d = view.n_features();
    let mut row = vec![0.0; d];
    let mut out = Vec::with_capacity(view.n_samples() * d);
    for i in 0..view.n_samples() {
        view.row_into(i, &mut row);
        for (j, &v) in row.iter().enumerate() {
            let f = to_f32(frame.to_device(j, v)).ok_or(GmmError::DataOutsideF32Range {
                row: i,
                column: j,
                value: v,
            })?;
            out.push(f64::from(f) * frame.scale[j] + frame.shift[j]);
        }
    }
    Ok(out)
}

/// The sample weights through `frame`, as f32.
fn weights_f32(w: &[f64], frame: &Frame) -> Result<Vec<f32>, GmmError> {
    w.iter()
        .enumerate()
        .map(|(i, &v)| {
            to_f32(v / frame.weight_scale).ok_or(GmmError::SampleWeightOutsideF32Range { index: i, value: v })
        })
        .collect()
}

/// Uploads the sample weights through `frame`, as f32.
pub(crate) fn upload_weights(ctx: &GpuContext, w: &[f64], frame: &Frame) -> Result<wgpu::Buffer, GmmError> {
    let bytes = (w.len() * 4) as u64;
    let buffer = storage(ctx, "gmm sample weights", bytes, wgpu::BufferUsages::COPY_DST)?;
    write_weights(ctx, &buffer, w, frame)?;
    Ok(buffer)
}

/// Writes the sample weights through `frame`, as f32, into `buffer` (an online fit's, reused per
/// batch: the queue orders the write after the kernels already submitted that read the last ones).
pub(crate) fn write_weights(ctx: &GpuContext, buffer: &wgpu::Buffer, w: &[f64], frame: &Frame) -> Result<(), GmmError> {
    let as_f32 = weights_f32(w, frame)?;
    ctx.scoped("gmm sample weights upload", (w.len() * 4) as u64, || {
        ctx.queue.write_buffer(buffer, 0, bytemuck::cast_slice(&as_f32))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_that_f32_cannot_hold_are_refused() {
        assert_eq!(to_f32(1.5), Some(1.5));
        assert_eq!(to_f32(0.0), Some(0.0));
        assert_eq!(to_f32(1e39), None);
        assert_eq!(to_f32(1e-40), None);
    }
}
