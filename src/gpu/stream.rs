//! Streaming the host's samples when they do not fit the device: each pass uploads chunk by chunk
//! through two device buffers and two mapped staging buffers, all made once per fit.
//!
//! Chunk c is converted to f32 (through the same frame and rounding as a resident upload) into
//! staging buffer c mod 2 while the device still runs chunk c − 1, then one submission copies it to
//! device buffer c mod 2 and runs its kernels. A staging buffer is written again only once the
//! submission that read it has finished (its mapping says so), and a device buffer is overwritten
//! only by a copy queued after the kernels that read it: the queue's order. So the kernels see
//! exactly the values a resident fit holds, and the statistics are bitwise the same.

use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::data::DataView;
use crate::error::GmmError;
use crate::gpu::GpuContext;
use crate::gpu::frame::Frame;
use crate::gpu::resources::{DataWindow, buffer, storage};
use crate::gpu::upload::fill_chunk;

/// One staging buffer and the state of its mapping.
struct Staging {
    buffer: wgpu::Buffer,
    /// Some while a map request is outstanding: its result arrives here.
    /// (In a mutex only so that the stream, held between online batches by a `GaussianMixture`,
    /// is Sync like the rest of it: a Python object may be shared between threads.)
    pending: Option<Mutex<mpsc::Receiver<Result<(), wgpu::BufferAsyncError>>>>,
    /// The submission that last read the buffer (waited on before it is written again).
    last_use: Option<wgpu::SubmissionIndex>,
}

/// Where the host time of a pass's uploads went.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StreamTimes {
    /// Converting and writing the chunks into the staging buffers (overlapping the device's work
    /// on the previous chunk).
    pub fill: Duration,
    /// Waiting for a staging buffer to be free again (the device still busy with its last chunk).
    pub wait: Duration,
}

/// The two device chunk buffers and two staging buffers of a streamed fit.
pub(crate) struct Stream {
    device: [wgpu::Buffer; 2],
    staging: [Staging; 2],
    chunk_len: usize,
    d: usize,
    /// The f32 image of one chunk, reused.
    host: Vec<f32>,
    pub times: StreamTimes,
    /// Chunk c goes through staging buffer (c + parity) mod 2: an online fit flips it per batch, so
    /// that the next batch can be staged while the device runs this one (0 for every other fit).
    pub parity: usize,
    /// The staging buffer already written (and unmapped) ahead of its chunk, and that chunk's bytes.
    prestaged: Option<(usize, u64)>,
}

impl Stream {
    /// Buffers for chunks of up to `chunk_len` samples of `d` features.
    pub fn new(ctx: &GpuContext, chunk_len: usize, d: usize) -> Result<Self, GmmError> {
        use wgpu::BufferUsages as U;
        let bytes = (chunk_len * d * 4) as u64;
        let device = [
            storage(ctx, "gmm streamed samples (even chunks)", bytes, U::COPY_DST)?,
            storage(ctx, "gmm streamed samples (odd chunks)", bytes, U::COPY_DST)?,
        ];
        let staging = |label| -> Result<Staging, GmmError> {
            Ok(Staging {
                buffer: buffer(ctx, label, bytes, U::MAP_WRITE | U::COPY_SRC)?,
                pending: None,
                last_use: None,
            })
        };
        let mut stream = Self {
            device,
            staging: [
                staging("gmm streaming staging (even chunks)")?,
                staging("gmm streaming staging (odd chunks)")?,
            ],
            chunk_len,
            d,
            host: vec![0.0; chunk_len * d],
            times: StreamTimes::default(),
            parity: 0,
            prestaged: None,
        };
        // Both staging buffers start mapped, ready for the first two chunks.
        for s in 0..2 {
            stream.request_map(ctx, s)?;
        }
        Ok(stream)
    }

    /// Where chunk c's `len` samples of `d` features are on the device.
    pub fn window(&self, c: usize, len: usize, d: usize) -> DataWindow<'_> {
        DataWindow::packed(&self.device[c % 2], 0, len, d)
    }

    fn request_map(&mut self, ctx: &GpuContext, s: usize) -> Result<(), GmmError> {
        let (tx, rx) = mpsc::channel();
        let staging = &mut self.staging[s];
        ctx.scoped("gmm streaming staging mapping", 0, || {
            staging.buffer.map_async(wgpu::MapMode::Write, .., move |r| {
                let _ = tx.send(r);
            })
        })?;
        staging.pending = Some(Mutex::new(rx));
        Ok(())
    }

    /// Converts samples `start..start + len` of `view` into the staging buffer of chunk `c` (waiting
    /// until it is free, unless it was staged ahead) and encodes the copy into its device buffer at
    /// the front of `encoder`.
    pub fn stage(
        &mut self,
        ctx: &GpuContext,
        view: &DataView,
        frame: &Frame,
        c: usize,
        (start, len): (usize, usize),
        encoder: &mut wgpu::CommandEncoder,
    ) -> Result<(), GmmError> {
        debug_assert!(len <= self.chunk_len);
        let s = (c + self.parity) % 2;
        let bytes = match self.prestaged.take() {
            Some((ahead, bytes)) if ahead == s => bytes,
            other => {
                self.prestaged = other;
                self.write_staging(ctx, view, frame, s, (start, len))?
            }
        };
        encoder.copy_buffer_to_buffer(&self.staging[s].buffer, 0, &self.device[c % 2], 0, bytes);
        Ok(())
    }

    /// Writes samples `start..start + len` of `view` into staging buffer `s` now, for the chunk that
    /// `stage` is next called with on it (the first chunk of an online fit's next batch, while the
    /// device still runs this one).
    pub fn prestage(
        &mut self,
        ctx: &GpuContext,
        view: &DataView,
        frame: &Frame,
        s: usize,
        (start, len): (usize, usize),
    ) -> Result<(), GmmError> {
        debug_assert!(self.prestaged.is_none());
        let bytes = self.write_staging(ctx, view, frame, s, (start, len))?;
        self.prestaged = Some((s, bytes));
        Ok(())
    }

    /// Drops what `prestage` wrote (its batch did not come next): the buffer is mapped again.
    pub fn discard_prestaged(&mut self, ctx: &GpuContext) -> Result<(), GmmError> {
        match self.prestaged.take() {
            Some((s, _)) => self.request_map(ctx, s),
            None => Ok(()),
        }
    }

    /// Converts the samples into staging buffer `s` once it is free; returns the bytes written.
    fn write_staging(
        &mut self,
        ctx: &GpuContext,
        view: &DataView,
        frame: &Frame,
        s: usize,
        (start, len): (usize, usize),
    ) -> Result<u64, GmmError> {
        // The conversion needs no buffer: it overlaps the device's work before any wait.
        let filled = Instant::now();
        let out = &mut self.host[..len * self.d];
        fill_chunk(view, frame, start, len, out)?;
        let mut fill = filled.elapsed();
        let waited = Instant::now();
        if let Some(rx) = self.staging[s].pending.take() {
            let rx = rx.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(index) = self.staging[s].last_use.take() {
                ctx.wait_for(index)?;
            }
            let mapped = rx.recv_timeout(Duration::ZERO).or_else(|_| {
                // Not yet delivered: poll until the callback runs.
                ctx.wait()?;
                rx.recv().map_err(|_| GmmError::DeviceLost {
                    reason: "the streaming staging mapping never completed".into(),
                })
            })?;
            mapped.map_err(|e| GmmError::DeviceLost {
                reason: format!("mapping a streaming staging buffer failed: {e}"),
            })?;
        }
        self.times.wait += waited.elapsed();
        let bytes = (len * self.d * 4) as u64;
        let written = Instant::now();
        {
            let staging = &self.staging[s].buffer;
            let mut view = staging
                .get_mapped_range_mut(..bytes)
                .map_err(|e| GmmError::GpuInternal { message: e.to_string() })?;
            view.copy_from_slice(bytemuck::cast_slice(out));
        }
        self.staging[s].buffer.unmap();
        fill += written.elapsed();
        self.times.fill += fill;
        Ok(bytes)
    }

    /// After the submission `index` that read chunk c's staging buffer: asks for it back.
    pub fn submitted(&mut self, ctx: &GpuContext, c: usize, index: wgpu::SubmissionIndex) -> Result<(), GmmError> {
        let s = (c + self.parity) % 2;
        self.staging[s].last_use = Some(index);
        self.request_map(ctx, s)
    }
}

#[cfg(test)]
mod tests {
    use crate::backend::{Backend, Output};
    use crate::data::DataView;
    use crate::gpu::backend::{GpuBackend, Source};
    use crate::gpu::plan::Budget;
    use crate::{CovarianceType, GmmParams};

    /// Predictions (per-sample outputs) through a streamed backend equal a resident one's bitwise.
    #[test]
    fn streamed_per_sample_outputs_equal_resident_ones() {
        let Some(ctx) = crate::gpu::test_context() else { return };
        let x: Vec<f32> = (0..3000 * 2)
            .map(|i| ((i * 7919) % 1000) as f32 / 100.0 + (i % 2) as f32)
            .collect();
        let view = DataView::from_f32(&x, 2).unwrap();
        let model = GmmParams::builder(3)
            .covariance_type(CovarianceType::Full)
            .max_iter(5)
            .build()
            .unwrap()
            .fit(&view)
            .unwrap();
        let budget = |max_device_bytes| Budget {
            chunk_size: Some(512),
            max_device_bytes,
            ..Budget::default()
        };
        let outputs = |max: Option<u64>, output: Output| {
            let per = if output == Output::Proba { 3 } else { 1 };
            let mut b = GpuBackend::new(&ctx, Source::Host(view), 3, CovarianceType::Full, None, budget(max)).unwrap();
            assert_eq!(b.plan.streamed, max.is_some());
            let mut out = vec![0.0; 3000 * per];
            b.per_sample_outputs(&model.mixture, output, &mut out).unwrap();
            out
        };
        for output in [Output::Proba, Output::LogProb, Output::Labels] {
            // The data holds 24,000 bytes; two 512-sample chunks and the working set fit 20,000.
            assert_eq!(outputs(Some(20_000), output), outputs(None, output), "{output:?}");
        }
    }
}
