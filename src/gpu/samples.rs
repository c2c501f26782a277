//! Where samples, and inference outputs, sit in a caller's wgpu buffers: the descriptions that
//! [`crate::GmmParams::fit_device`] and [`crate::GpuModel::bind`] take, their checks, and the
//! windows a chunk binds.

use crate::error::GmmError;

/// `n_samples` rows of `n_features` f32 values in a caller's buffer: from byte `offset`, each row
/// `stride` f32s after the previous one (so samples can sit inside larger records, such as vertex
/// data). The buffer needs `wgpu::BufferUsages::STORAGE`.
///
/// ```no_run
/// # fn demo(buffer: &wgpu::Buffer) {
/// use gmm_gpu::DeviceSamples;
/// // 1,000 points of 3 coordinates inside records of 8 f32s, after a 256-byte header.
/// let samples = DeviceSamples::new(buffer, 1_000, 3).offset(256).stride(8);
/// # }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct DeviceSamples<'a> {
    pub(crate) buffer: &'a wgpu::Buffer,
    pub(crate) offset: u64,
    pub(crate) n_samples: usize,
    pub(crate) n_features: usize,
    pub(crate) stride: usize,
}

impl<'a> DeviceSamples<'a> {
    /// Rows packed one after the other from the buffer's start (stride = n_features).
    pub fn new(buffer: &'a wgpu::Buffer, n_samples: usize, n_features: usize) -> Self {
        Self {
            buffer,
            offset: 0,
            n_samples,
            n_features,
            stride: n_features,
        }
    }

    /// The first row starts `bytes` into the buffer (a multiple of 4).
    pub fn offset(self, bytes: u64) -> Self {
        Self { offset: bytes, ..self }
    }

    /// Rows start every `floats` f32 values (>= n_features).
    pub fn stride(self, floats: usize) -> Self {
        Self { stride: floats, ..self }
    }

    /// The buffer.
    pub fn buffer(&self) -> &'a wgpu::Buffer {
        self.buffer
    }

    /// Samples.
    pub fn n_samples(&self) -> usize {
        self.n_samples
    }

    /// Features per sample.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Checks the description against the buffer: usage, alignment, stride and size.
    pub(crate) fn check(&self) -> Result<(), GmmError> {
        if self.n_features == 0 {
            return Err(GmmError::NoFeatures);
        }
        if self.stride < self.n_features {
            return Err(GmmError::StrideTooSmall {
                stride: self.stride,
                n_features: self.n_features,
            });
        }
        check_buffer("input", self.buffer, self.offset)?;
        let needed = self.bytes().ok_or_else(|| GmmError::GpuBufferTooSmall {
            buffer: "input",
            size: self.buffer.size(),
            needed: u64::MAX,
        })?;
        check_size("input", self.buffer, self.offset, needed)
    }

    /// The most samples per chunk whose window (rows `stride` apart) fits one storage binding of a
    /// device with `limits`, where the stride makes that tighter than packed rows would (None).
    pub(crate) fn stride_chunk_cap(&self, limits: &wgpu::Limits) -> Option<usize> {
        if self.stride == self.n_features {
            return None;
        }
        let usable = limits
            .max_storage_buffer_binding_size
            .min(u64::from(u32::MAX))
            .saturating_sub(u64::from(limits.min_storage_buffer_offset_alignment) + 4 * self.n_features as u64);
        Some((usable / (4 * self.stride as u64) + 1) as usize)
    }

    /// Bytes from the first row's start to the last row's end (None on overflow).
    fn bytes(&self) -> Option<u64> {
        if self.n_samples == 0 {
            return Some(0);
        }
        let floats = (self.n_samples as u64 - 1)
            .checked_mul(self.stride as u64)?
            .checked_add(self.n_features as u64)?;
        floats.checked_mul(4)
    }

    /// The binding of rows `first..first + len`: (aligned byte offset, byte size, f32s from the
    /// binding's start to the first row), the offset aligned down to `align` bytes.
    pub(crate) fn window(&self, first: usize, len: usize, align: u64) -> (u64, u64, u32) {
        let start = self.offset + first as u64 * self.stride as u64 * 4;
        let aligned = start - start % align;
        let end = start + ((len.max(1) as u64 - 1) * self.stride as u64 + self.n_features as u64) * 4;
        (aligned, end - aligned, ((start - aligned) / 4) as u32)
    }
}

/// An output in a caller's buffer, from byte `offset` (a multiple of 4). The buffer needs
/// `wgpu::BufferUsages::STORAGE`.
#[derive(Clone, Copy, Debug)]
pub struct OutputBuffer<'a> {
    pub(crate) buffer: &'a wgpu::Buffer,
    pub(crate) offset: u64,
}

impl<'a> OutputBuffer<'a> {
    /// From the buffer's start.
    pub fn new(buffer: &'a wgpu::Buffer) -> Self {
        Self { buffer, offset: 0 }
    }

    /// From `bytes` into the buffer.
    pub fn offset(self, bytes: u64) -> Self {
        Self { offset: bytes, ..self }
    }

    /// Checks usage, alignment and that `values` 4-byte values fit from the offset.
    pub(crate) fn check(&self, name: &'static str, values: u64) -> Result<(), GmmError> {
        check_buffer(name, self.buffer, self.offset)?;
        check_size(name, self.buffer, self.offset, values.saturating_mul(4))
    }

    /// The binding of values `first..first + len`: (aligned byte offset, byte size, values from the
    /// binding's start to the first).
    pub(crate) fn window(&self, first: u64, len: u64, align: u64) -> (u64, u64, u32) {
        let start = self.offset + first * 4;
        let aligned = start - start % align;
        (
            aligned,
            start + len.max(1) * 4 - aligned,
            ((start - aligned) / 4) as u32,
        )
    }
}

/// Which outputs an inference writes, each into a caller's buffer: labels (u32 per sample),
/// log-densities (f32 per sample, `score_samples`) and responsibilities (f32, samples ×
/// components, row-major, `predict_proba`).
#[derive(Clone, Copy, Debug, Default)]
pub struct InferOutputs<'a> {
    pub(crate) labels: Option<OutputBuffer<'a>>,
    pub(crate) log_density: Option<OutputBuffer<'a>>,
    pub(crate) responsibilities: Option<OutputBuffer<'a>>,
}

impl<'a> InferOutputs<'a> {
    /// No outputs yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Labels (u32), one per sample.
    pub fn labels(self, out: OutputBuffer<'a>) -> Self {
        Self {
            labels: Some(out),
            ..self
        }
    }

    /// Log-densities (f32), one per sample.
    pub fn log_density(self, out: OutputBuffer<'a>) -> Self {
        Self {
            log_density: Some(out),
            ..self
        }
    }

    /// Responsibilities (f32), a row of K per sample.
    pub fn responsibilities(self, out: OutputBuffer<'a>) -> Self {
        Self {
            responsibilities: Some(out),
            ..self
        }
    }
}

fn check_buffer(name: &'static str, buffer: &wgpu::Buffer, offset: u64) -> Result<(), GmmError> {
    if !buffer.usage().contains(wgpu::BufferUsages::STORAGE) {
        return Err(GmmError::GpuBufferUsage {
            buffer: name,
            usage: "STORAGE",
        });
    }
    if offset % 4 != 0 {
        return Err(GmmError::GpuBufferMisaligned {
            buffer: name,
            offset,
            alignment: 4,
        });
    }
    Ok(())
}

fn check_size(name: &'static str, buffer: &wgpu::Buffer, offset: u64, bytes: u64) -> Result<(), GmmError> {
    let needed = offset.saturating_add(bytes);
    if buffer.size() < needed {
        return Err(GmmError::GpuBufferTooSmall {
            buffer: name,
            size: buffer.size(),
            needed,
        });
    }
    Ok(())
}
