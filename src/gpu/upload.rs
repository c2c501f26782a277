//! The host's samples and weights on their way to f32: each feature centred on its mean and scaled
//! by a power of two (exact, so the f32 rounding is the only change), the weights scaled by a power
//! of two, and both uploaded once per fit, chunk by chunk.

use rayon::prelude::*;

use crate::data::{DataView, Samples};
use crate::error::GmmError;
use crate::gpu::GpuContext;
use crate::gpu::resources::storage;
use crate::stats::pairwise_sum;

/// The map from the caller's units to the device's: x' = (x − shift)/scale per feature, w' = w/weight_scale.
/// Every scale is a power of two, so the map and its inverse are exact in floating point.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Frame {
    pub shift: Vec<f64>,
    pub scale: Vec<f64>,
    pub weight_scale: f64,
}

/// The smallest power of two at or above `m` (1 for 0 or non-finite; at most 2¹⁰²³, at least
/// 2⁻¹⁰²²), so that m/scale lies in (1/2, 1] (or below 2 at the top of f64's range).
pub(crate) fn pow2_at_least(m: f64) -> f64 {
    if !(m > 0.0 && m.is_finite()) {
        return 1.0;
    }
    if m < f64::MIN_POSITIVE {
        return f64::MIN_POSITIVE;
    }
    let bits = m.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i32 - 1023;
    let exact = bits & ((1u64 << 52) - 1) == 0;
    2f64.powi(if exact { exponent } else { (exponent + 1).min(1023) })
}

impl Frame {
    /// The identity: the caller's buffer is used as it is.
    pub fn identity(d: usize) -> Self {
        Self {
            shift: vec![0.0; d],
            scale: vec![1.0; d],
            weight_scale: 1.0,
        }
    }

    /// Centres each feature on its mean and scales it by the power of two at or above its largest
    /// magnitude; scales the weights by the power of two at or above the largest.
    pub fn of_data(view: &DataView, sample_weight: Option<&[f64]>) -> Self {
        let (n, d) = (view.n_samples(), view.n_features());
        let block = 4096;
        let blocks = n.div_ceil(block);
        // One partial per block of rows, in parallel: `f(acc, row)` folds each row into it.
        type Fold<'f> = &'f (dyn Fn(&mut [f64], &[f64]) + Sync);
        let per_block = |f: Fold| -> Vec<Vec<f64>> {
            (0..blocks)
                .into_par_iter()
                .map(|b| {
                    let mut acc = vec![0.0; d];
                    let mut row = vec![0.0; d];
                    for i in b * block..((b + 1) * block).min(n) {
                        view.row_into(i, &mut row);
                        f(&mut acc, &row);
                    }
                    acc
                })
                .collect()
        };
        // First the magnitudes, so that the sums below cannot overflow even for values near f64::MAX.
        let max_abs = per_block(&|acc, row| {
            acc.iter_mut().zip(row.iter()).for_each(|(a, v)| *a = a.max(v.abs()));
        });
        let scale: Vec<f64> = (0..d)
            .map(|j| pow2_at_least(max_abs.iter().fold(0.0, |m, b| m.max(b[j]))))
            .collect();
        let sums = per_block(&|acc, row| {
            acc.iter_mut()
                .zip(row.iter())
                .zip(&scale)
                .for_each(|((a, v), s)| *a += v / s);
        });
        let shift = (0..d)
            .map(|j| pairwise_sum(&sums.iter().map(|p| p[j]).collect::<Vec<_>>()) / n as f64 * scale[j])
            .collect();
        let weight_scale = Self::weight_scale_of(sample_weight);
        Self {
            shift,
            scale,
            weight_scale,
        }
    }

    /// The power of two at or above the largest sample weight (1 without weights).
    pub fn weight_scale_of(sample_weight: Option<&[f64]>) -> f64 {
        sample_weight.map_or(1.0, |w| pow2_at_least(w.iter().fold(0.0, |m, &v| m.max(v))))
    }

    /// Feature `j` of a point in the caller's units, in the device's.
    #[inline]
    pub fn to_device(&self, j: usize, v: f64) -> f64 {
        (v - self.shift[j]) / self.scale[j]
    }

    /// Σ_j log scale_j: the log-density's change of units, exact.
    pub fn log_scale_sum(&self) -> f64 {
        self.scale.iter().map(|s| s.ln()).sum()
    }
}

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

/// Uploads the sample weights through `frame`, as f32.
pub(crate) fn upload_weights(ctx: &GpuContext, w: &[f64], frame: &Frame) -> Result<wgpu::Buffer, GmmError> {
    let as_f32 = w
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            to_f32(v / frame.weight_scale).ok_or(GmmError::SampleWeightOutsideF32Range { index: i, value: v })
        })
        .collect::<Result<Vec<f32>, _>>()?;
    let bytes = (w.len() * 4) as u64;
    let buffer = storage(ctx, "gmm sample weights", bytes, wgpu::BufferUsages::COPY_DST)?;
    ctx.scoped("gmm sample weights upload", bytes, || {
        ctx.queue.write_buffer(&buffer, 0, bytemuck::cast_slice(&as_f32))
    })?;
    Ok(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_are_the_powers_of_two_at_or_above() {
        for (m, s) in [
            (1.0, 1.0),
            (0.75, 1.0),
            (1.5, 2.0),
            (1024.0, 1024.0),
            (1e-3, 1.0 / 512.0),
            (0.0, 1.0),
        ] {
            assert_eq!(pow2_at_least(m), s, "{m}");
        }
        assert_eq!(pow2_at_least(f64::MAX), 2f64.powi(1023));
        assert_eq!(pow2_at_least(f64::INFINITY), 1.0);
    }

    #[test]
    fn the_frame_centres_and_scales_exactly() {
        // Column 0 around 1e4 with spread 1; column 1 tiny; column 2 constant zero.
        let x: Vec<f64> = (0..300)
            .flat_map(|i| [1e4 + (i % 7) as f64, 1e-30 * (i % 5) as f64, 0.0])
            .collect();
        let view = DataView::from_f64(&x, 3).unwrap();
        let w: Vec<f64> = (0..100).map(|i| 3.0 + i as f64).collect();
        let f = Frame::of_data(&view, Some(&w));
        assert_eq!(f.scale, [16384.0, pow2_at_least(4e-30), 1.0]);
        assert_eq!(f.weight_scale, 128.0);
        // The mean of 0..7 repeating over 300 rows, computed independently.
        let mean0 = 1e4 + (0..300).map(|i| (i % 7) as f64).sum::<f64>() / 300.0;
        assert!((f.shift[0] - mean0).abs() <= 1e-12 * mean0, "{} vs {mean0}", f.shift[0]);
        assert_eq!(f.shift[2], 0.0);
        // Scaling by a power of two loses nothing: back and forth is the identity.
        for (j, &v) in x[..3].iter().enumerate() {
            assert_eq!(f.to_device(j, v) * f.scale[j] + f.shift[j], v);
        }
    }

    #[test]
    fn values_that_f32_cannot_hold_are_refused() {
        assert_eq!(to_f32(1.5), Some(1.5));
        assert_eq!(to_f32(0.0), Some(0.0));
        assert_eq!(to_f32(1e39), None);
        assert_eq!(to_f32(1e-40), None);
    }
}
