//! The GPU backend: `impl Backend` over the data resident on the device. Each EM iteration is one
//! command submission over every chunk that brings back only each chunk's O(K·d²) statistics; the
//! rooms beside this file plan the chunks, pack the model, upload the data, make the resources,
//! encode the passes and collect the results in f64.

use bytemuck::Zeroable;

use crate::backend::{Agree, Backend, FitInfo, Output, Traffic};
use crate::bench::cost::{ChunkShape, PassShape};
use crate::data::DataView;
use crate::error::GmmError;
use crate::gpu::GpuContext;
use crate::gpu::frame::Frame;
use crate::gpu::layout::{self, Combine, KIND_DIAG, Pass, STATS_DIAG};
use crate::gpu::pack::ModelPack;
use crate::gpu::passes::{self, Instrument, Kernel, PerSample, Responsibilities};
use crate::gpu::pipelines::Pipelines;
use crate::gpu::plan::{self, Budget, DeviceLimits, Plan, n_outputs, stats_grid, stats_kind_for};
use crate::gpu::precision::{self, Arith, GpuPrecision, PrecisionRecord, starting_arith};
use crate::gpu::readback::{self, Score, read_back};
use crate::gpu::resources::{DataWindow, Resources, mappable};
use crate::gpu::samples::DeviceSamples;
use crate::gpu::stream::Stream;
use crate::gpu::timestamps::Timestamps;
use crate::gpu::upload;
use crate::kinds::CovarianceType;
use crate::mixture::Mixture;
use crate::mstep::NK_EPS;
use crate::stats::SuffStats;

/// How `time_kernels` measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Clock {
    /// The device's timestamp queries.
    Timestamps,
    /// The host's clock around one submission per kernel.
    Wall,
}

/// A mean that moves more than this (squared, in the previous precision's units: ‖Uᵀδ‖²) in one
/// iteration has its statistics summed again around the new mean. Around the old one, S2 − S0·δδᵀ
/// would cancel about log₁₀(1 + ‖Uᵀδ‖²) digits of the f32 products; below 16 that is at most 1.2.
const RECENTRE_ABOVE: f64 = 16.0;

/// Where the samples live.
pub(crate) enum Source<'a> {
    /// On the host: uploaded once, centred and scaled per feature, as f32.
    Host(DataView<'a>),
    /// Already on the device, in the caller's buffer: f32 rows (at an offset, with a stride), used
    /// in place.
    Device(DeviceSamples<'a>),
}

impl Source<'_> {
    /// Samples and features.
    fn shape(&self) -> (usize, usize) {
        match self {
            Source::Host(view) => (view.n_samples(), view.n_features()),
            Source::Device(samples) => (samples.n_samples(), samples.n_features()),
        }
    }
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
    frame: Frame,
    pub(crate) plan: Plan,
    res: Resources,
    /// The host's samples on the device (one buffer per segment), kept alive for the bind groups;
    /// empty when they are streamed.
    _segments: Vec<wgpu::Buffer>,
    /// The streaming buffers, when the samples do not fit the budget.
    stream: Option<Stream>,
    pack: ModelPack,
    /// The row length the combine uniforms currently hold.
    combine_row_len: u32,
    /// Host scratch reused by every pass: the readback (two-float pairs) and its f64 sums.
    rows_host: Vec<f32>,
    row_sums: Vec<f64>,
    /// Centres for a second pass when a mean moved far.
    recentred: Vec<f64>,
    traffic: Traffic,
    /// The arithmetic asked for, the one the kernels now run, and why it changed.
    precision: GpuPrecision,
    arith: Arith,
    switches: Vec<String>,
    /// The arithmetic of the exact kernels (None for a fast fit): this device's choice, or the one
    /// every rank of a distributed fit agreed on.
    exact: Option<Arith>,
    /// The guard's per-component measures (reused: the guard runs before every fast pass).
    measures: Vec<f64>,
    /// Auto's routes: the components the guard sends to the exact kernels while the rest stay fast,
    /// and those kernels (None while every component runs in `arith`).
    exact_routes: Vec<bool>,
    exact_pipes: Option<&'a Pipelines>,
    routed_arith: Arith,
    /// An online fit's weights buffer (written per batch), and the next batch: asked for, then
    /// staged ahead with its frame.
    held_weights: Option<wgpu::Buffer>,
    next: Option<(DataView<'a>, Option<&'a [f64]>)>,
    ahead: Option<Ahead>,
}

/// The device objects of a GPU backend that an online fit keeps from one batch to the next
/// ([`GpuBackend::make_held`], [`GpuBackend::on_held`], [`GpuBackend::into_held`]).
pub(crate) struct Held {
    /// The batch length and weighting they were made for.
    pub n: usize,
    pub weighted: bool,
    plan: Plan,
    res: Resources,
    stream: Option<Stream>,
    weights: Option<wgpu::Buffer>,
    combine_row_len: u32,
    /// The next batch, already in a staging buffer.
    ahead: Option<Ahead>,
}

/// A batch staged ahead: which one (its address, length and weights' address) and its frame.
struct Ahead {
    rows: (usize, usize),
    weights: Option<usize>,
    frame: Frame,
}

impl Held {
    /// Whether `batch` (with `w`) is the one staged ahead.
    pub(crate) fn is_ahead(&self, batch: &DataView, w: Option<&[f64]>) -> bool {
        self.ahead.as_ref().is_some_and(|a| a.is(batch, w))
    }

    /// Drops the batch staged ahead, if any.
    pub(crate) fn forget_ahead(&mut self, ctx: &GpuContext) -> Result<(), GmmError> {
        match (self.ahead.take(), self.stream.as_mut()) {
            (Some(_), Some(stream)) => stream.discard_prestaged(ctx),
            _ => Ok(()),
        }
    }
}

impl Ahead {
    fn key(batch: &DataView, w: Option<&[f64]>) -> ((usize, usize), Option<usize>) {
        let rows = match batch.samples() {
            crate::data::Samples::F32(x) => (x.as_ptr() as usize, x.len()),
            crate::data::Samples::F64(x) => (x.as_ptr() as usize, x.len()),
        };
        (rows, w.map(|w| w.as_ptr() as usize))
    }

    fn of(batch: &DataView, w: Option<&[f64]>, frame: Frame) -> Self {
        let (rows, weights) = Self::key(batch, w);
        Self { rows, weights, frame }
    }

    /// Whether `batch` (with `w`) is the batch staged: the same memory, as the caller of
    /// `stage_next` passed the slice it then steps on.
    fn is(&self, batch: &DataView, w: Option<&[f64]>) -> bool {
        Self::key(batch, w) == (self.rows, self.weights)
    }
}

impl<'a> GpuBackend<'a> {
    /// Prepares a fit of `k` components with second moments of `kind`: sizes the chunks, uploads
    /// the data once (or, when it does not fit `budget`, makes the buffers to stream it each pass),
    /// and makes every buffer and bind group the EM loop will use.
    pub fn new(
        ctx: &'a GpuContext,
        source: Source<'a>,
        k: usize,
        kind: CovarianceType,
        sample_weight: Option<&'a [f64]>,
        budget: Budget,
    ) -> Result<Self, GmmError> {
        Self::new_at(ctx, source, k, kind, sample_weight, budget, 0)
    }

    /// As [`GpuBackend::new`] for samples whose first is global row `first_row` (one rank's rows of
    /// a distributed fit: 'random' initialisation hashes global indices).
    pub fn new_at(
        ctx: &'a GpuContext,
        source: Source<'a>,
        k: usize,
        kind: CovarianceType,
        sample_weight: Option<&'a [f64]>,
        budget: Budget,
        first_row: usize,
    ) -> Result<Self, GmmError> {
        let (n, d) = source.shape();
        if let Source::Device(samples) = &source {
            samples.check()?;
        }
        layout::check_shape(kind, k, d)?;
        // Auto's exact arithmetic is decided (the f64 rate probe runs once per device) before the
        // EM loop, not at its first switch.
        let exact = match budget.precision {
            GpuPrecision::Fast => None,
            GpuPrecision::Auto | GpuPrecision::Exact => Some(ctx.exact_arith()?),
        };
        let arith = starting_arith(budget.precision, exact);
        let pipes = ctx.pipelines(arith)?;
        // The caller's own buffer is resident by definition: a budget only streams host data.
        // Rows inside longer records: each chunk's window spans its rows' strides, so chunks are
        // capped to keep it within one binding.
        let budget = match source {
            Source::Device(samples) => Budget {
                max_device_bytes: None,
                chunk_size: match samples.stride_chunk_cap(&ctx.limits) {
                    Some(cap) => Some(budget.chunk_size.map_or(cap, |c| c.min(cap))),
                    None => budget.chunk_size,
                },
                ..budget
            },
            Source::Host(_) => budget,
        };
        let limits = DeviceLimits::of(&ctx.limits);
        let plan = plan::plan(n, d, k, kind, limits, budget, sample_weight.is_some())?;

        // The data: the caller's buffer as it is, or the host's samples through the frame, uploaded
        // chunk by chunk into segments of whole chunks that each fit max_buffer_size.
        let (frame, segments) = match &source {
            Source::Device(_) => (
                Frame {
                    weight_scale: Frame::weight_scale_of(sample_weight),
                    ..Frame::identity(d)
                },
                Vec::new(),
            ),
            Source::Host(view) => {
                let frame = Frame::of_data(view, sample_weight);
                let segments = if plan.streamed {
                    Vec::new()
                } else {
                    upload::upload_segments(ctx, view, &frame, plan.chunk_len, plan.chunks_per_segment)?
                };
                (frame, segments)
            }
        };
        let stream = if plan.streamed {
            Some(Stream::new(ctx, plan.chunk_len, d)?)
        } else {
            None
        };
        // A weight f32 cannot hold is named by its global row (a rank's rows start at first_row).
        let weights = sample_weight
            .map(|w| upload::upload_weights(ctx, w, &frame))
            .transpose()
            .map_err(|e| match e {
                GmmError::SampleWeightOutsideF32Range { index, value } => GmmError::SampleWeightOutsideF32Range {
                    index: first_row + index,
                    value,
                },
                e => e,
            })?;
        let pack = ModelPack::new(kind, k, d);
        let res = {
            let align = u64::from(ctx.limits.min_storage_buffer_offset_alignment);
            let window = |c: usize, start: usize, len: usize| match (&source, &stream) {
                (Source::Device(samples), _) => {
                    let (offset, size, x_at) = samples.window(start, len, align);
                    DataWindow {
                        buffer: samples.buffer(),
                        offset,
                        size,
                        x_at,
                        stride: samples.stride as u32,
                    }
                }
                (Source::Host(_), Some(stream)) => stream.window(c, len, d),
                (Source::Host(_), None) => {
                    let s = c / plan.chunks_per_segment;
                    let first = (c - s * plan.chunks_per_segment) * plan.chunk_len;
                    DataWindow::packed(&segments[s], (first * d * 4) as u64, len, d)
                }
            };
            Resources::new(ctx, pipes, &plan, n, k, pack.host.len(), weights, window, first_row)?
        };
        ctx.check_health()?;
        log::info!(
            "GPU backend on {}: {n} samples x {d} features in {} chunk(s) of up to {}{}; K = {k}; {} MB on the device",
            ctx.adapter_name(),
            plan.n_chunks,
            plan.chunk_len,
            if plan.streamed { ", streamed each pass" } else { "" },
            (plan.data_bytes(n, d) + plan.working_bytes(n, d, k, kind, sample_weight.is_some())) / 1_000_000
        );
        let parts = Held {
            n,
            weighted: sample_weight.is_some(),
            plan,
            res,
            stream,
            weights: None,
            combine_row_len: 0,
            ahead: None,
        };
        Ok(Self::assemble(
            ctx,
            pipes,
            source,
            k,
            kind,
            sample_weight,
            budget.precision,
            (arith, exact),
            frame,
            parts,
            segments,
        ))
    }

    /// The backend over `source` on objects already made: the one place every field is set.
    #[allow(clippy::too_many_arguments)]
    fn assemble(
        ctx: &'a GpuContext,
        pipes: &'a Pipelines,
        source: Source<'a>,
        k: usize,
        kind: CovarianceType,
        sample_weight: Option<&'a [f64]>,
        precision: GpuPrecision,
        (arith, exact): (Arith, Option<Arith>),
        frame: Frame,
        held: Held,
        segments: Vec<wgpu::Buffer>,
    ) -> Self {
        let (n, d) = source.shape();
        let plan = held.plan;
        let weight_sum = sample_weight.map_or(n as f64, |w| w.iter().sum());
        Self {
            ctx,
            pipes,
            source,
            n,
            d,
            k,
            weight_sum,
            has_weights: sample_weight.is_some(),
            frame,
            plan,
            res: held.res,
            _segments: segments,
            stream: held.stream,
            pack: ModelPack::new(kind, k, d),
            combine_row_len: held.combine_row_len,
            rows_host: vec![0.0; 2 * plan.n_chunks * plan.row_len_max],
            row_sums: vec![0.0; plan.row_len_max],
            recentred: vec![0.0; k * d],
            traffic: Traffic::default(),
            precision,
            arith,
            switches: Vec::new(),
            exact,
            measures: vec![0.0; k],
            exact_routes: vec![false; k],
            exact_pipes: None,
            routed_arith: Arith::TwoFloat,
            held_weights: held.weights,
            ahead: held.ahead,
            next: None,
        }
    }

    /// The device objects for online batches of `n` samples of `d` features (weighted or not),
    /// made once and reused by every batch of that length ([`GpuBackend::on_held`]): the chunks of
    /// a resident fit of `n` samples (so the sums run in the same order), whose samples pass
    /// through the two streaming buffers each pass, and a buffer for the weights.
    pub(crate) fn make_held(
        ctx: &GpuContext,
        (n, d): (usize, usize),
        k: usize,
        kind: CovarianceType,
        weighted: bool,
        budget: Budget,
    ) -> Result<Held, GmmError> {
        layout::check_shape(kind, k, d)?;
        let exact = match budget.precision {
            GpuPrecision::Fast => None,
            GpuPrecision::Auto | GpuPrecision::Exact => Some(ctx.exact_arith()?),
        };
        let pipes = ctx.pipelines(starting_arith(budget.precision, exact))?;
        let mut plan = plan::plan(n, d, k, kind, DeviceLimits::of(&ctx.limits), budget, weighted)?;
        plan.streamed = true;
        let stream = Stream::new(ctx, plan.chunk_len, d)?;
        let weights = weighted
            .then(|| {
                crate::gpu::resources::storage(
                    ctx,
                    "gmm online batch weights",
                    (n * 4) as u64,
                    wgpu::BufferUsages::COPY_DST,
                )
            })
            .transpose()?;
        let model_len = ModelPack::new(kind, k, d).host.len();
        let window = |c: usize, _start: usize, len: usize| stream.window(c, len, d);
        let res = Resources::new(ctx, pipes, &plan, n, k, model_len, weights.clone(), window, 0)?;
        ctx.check_health()?;
        log::info!(
            "GPU online buffers on {}: batches of {n} x {d} in {} chunk(s) of up to {}, streamed; K = {k}",
            ctx.adapter_name(),
            plan.n_chunks,
            plan.chunk_len,
        );
        Ok(Held {
            n,
            weighted,
            plan,
            res,
            stream: Some(stream),
            weights,
            combine_row_len: 0,
            ahead: None,
        })
    }

    /// A backend for one online batch on `held` (made by [`GpuBackend::make_held`] for this batch's
    /// length and weighting): as [`GpuBackend::new`] over the batch, in the batch's own frame, with
    /// a fresh arithmetic; only the weights (and, each pass, the samples) are written.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_held(
        ctx: &'a GpuContext,
        batch: DataView<'a>,
        k: usize,
        kind: CovarianceType,
        sample_weight: Option<&'a [f64]>,
        budget: Budget,
        mut held: Held,
    ) -> Result<Self, GmmError> {
        debug_assert!(held.n == batch.n_samples() && held.weighted == sample_weight.is_some());
        let exact = match budget.precision {
            GpuPrecision::Fast => None,
            GpuPrecision::Auto | GpuPrecision::Exact => Some(ctx.exact_arith()?),
        };
        let arith = starting_arith(budget.precision, exact);
        let pipes = ctx.pipelines(arith)?;
        // The frame the batch was staged in ahead, if this is that batch; else its own.
        let frame = match held.ahead.take() {
            Some(ahead) if ahead.is(&batch, sample_weight) => ahead.frame,
            Some(_) => {
                if let Some(stream) = held.stream.as_mut() {
                    stream.discard_prestaged(ctx)?;
                }
                Frame::of_data(&batch, sample_weight)
            }
            None => Frame::of_data(&batch, sample_weight),
        };
        if let (Some(buffer), Some(w)) = (&held.weights, sample_weight) {
            upload::write_weights(ctx, buffer, w, &frame)?;
        }
        let source = Source::Host(batch);
        Ok(Self::assemble(
            ctx,
            pipes,
            source,
            k,
            kind,
            sample_weight,
            budget.precision,
            (arith, exact),
            frame,
            held,
            Vec::new(),
        ))
    }

    /// Asks this backend to stage `batch` (the next online batch, of the same length) into the
    /// other streaming buffer once its first pass is submitted, so that the host converts it while
    /// the device runs this one. Only for a batch of one chunk (the other buffer is then free).
    pub(crate) fn stage_next(&mut self, batch: DataView<'a>, sample_weight: Option<&'a [f64]>) {
        if self.plan.n_chunks == 1 && self.stream.is_some() && batch.n_samples() == self.n {
            self.next = Some((batch, sample_weight));
        }
    }

    /// The device objects back, for the next batch: the staging buffers swap roles.
    pub(crate) fn into_held(self) -> Held {
        let mut stream = self.stream;
        if let Some(s) = stream.as_mut() {
            s.parity = (s.parity + self.plan.n_chunks) % 2;
        }
        Held {
            n: self.n,
            weighted: self.has_weights,
            plan: self.plan,
            res: self.res,
            stream,
            weights: self.held_weights,
            combine_row_len: self.combine_row_len,
            ahead: self.ahead,
        }
    }

    /// Stages the next online batch ([`GpuBackend::stage_next`]) into the staging buffer its first
    /// chunk will use, after this batch's first submission.
    fn stage_ahead(&mut self) -> Result<(), GmmError> {
        let Some((batch, w)) = self.next.take() else {
            return Ok(());
        };
        let stream = self.stream.as_mut().expect("stage_next checked the stream");
        let frame = Frame::of_data(&batch, w);
        let slot = (stream.parity + self.plan.n_chunks) % 2;
        stream.prestage(self.ctx, &batch, &frame, slot, (0, batch.n_samples()))?;
        self.ahead = Some(Ahead::of(&batch, w, frame));
        Ok(())
    }

    fn job(&self, kind: u32, stats_kind: u32, seed: u64) -> Pass {
        let e = n_outputs(stats_kind, self.d);
        let grid = stats_grid(stats_kind, self.d);
        Pass {
            n_features: self.d as u32,
            n_components: self.k as u32,
            kind,
            stats_kind,
            n_outputs: e as u32,
            out_groups: grid.out_groups as u32,
            out_slots: grid.out_slots as u32,
            lanes: grid.lanes as u32,
            tri_blocks: grid.tri_blocks as u32,
            has_weights: u32::from(self.has_weights),
            seed_lo: seed as u32,
            seed_hi: (seed >> 32) as u32,
            means_at: self.pack.offsets[0] as u32,
            centres_at: self.pack.offsets[1] as u32,
            factors_at: self.pack.offsets[2] as u32,
            consts_at: self.pack.offsets[3] as u32,
            means_lo_at: self.pack.offsets[4] as u32,
            factors_lo_at: self.pack.offsets[5] as u32,
            routes_at: self.pack.offsets[6] as u32,
            n_fast: self.n_fast() as u32,
            one: 1.0,
            neg_inf: f32::NEG_INFINITY,
            ..Pass::zeroed()
        }
    }

    /// How many components the fast kernels run: those Auto has not routed to the exact kernels in
    /// a fast fit, none in an exact one.
    fn n_fast(&self) -> usize {
        match (self.arith, self.exact_pipes) {
            (Arith::Fast, None) => self.k,
            (Arith::Fast, Some(_)) => self.exact_routes.iter().filter(|&&e| !e).count(),
            _ => 0,
        }
    }

    /// How an EM pass computes the posterior: fused with the statistics where the plan says so
    /// (the model is small enough and the caller allows it), else by the split kernels.
    fn posterior(&self) -> Responsibilities {
        if self.plan.fused {
            Responsibilities::Fused
        } else {
            Responsibilities::Posterior
        }
    }

    /// Whether an EM pass of this fit runs the fused kernel (for `gmm bench`'s report).
    pub(crate) fn fuses(&self) -> bool {
        self.plan.fused
    }

    /// Writes the model and the pass (and the combine levels' row length when it changes): what
    /// crosses the bus before each pass; returns the bytes written.
    fn upload_job(&mut self, job: &Pass, row_len: usize) -> u64 {
        let ctx = self.ctx;
        let mut uploaded = (self.pack.host.len() * 4 + size_of::<Pass>()) as u64;
        ctx.queue
            .write_buffer(&self.res.model, 0, bytemuck::cast_slice(&self.pack.host));
        ctx.queue.write_buffer(&self.res.job, 0, bytemuck::bytes_of(job));
        if self.combine_row_len != row_len as u32 {
            // Only when the kind of pass changes (k-means to EM), never within the EM loop.
            for level in self.res.chunks.iter().flat_map(|c| &c.levels) {
                let c = Combine {
                    n_rows: level.n_rows,
                    row_len: row_len as u32,
                    one: 1.0,
                    _pad: 0,
                };
                ctx.queue.write_buffer(&level.uniform, 0, bytemuck::bytes_of(&c));
                uploaded += size_of::<Combine>() as u64;
            }
            self.combine_row_len = row_len as u32;
        }
        uploaded
    }

    /// Encodes one statistics pass of `job` over every chunk.
    fn encode(
        &self,
        how: Responsibilities,
        job: &Pass,
        row_len: usize,
        instrument: Instrument,
    ) -> (wgpu::CommandBuffer, u32) {
        passes::encode_statistics(self.ctx, self.kernels(), &self.res, how, job, row_len, instrument)
    }

    /// Uploads the model and the pass, then one submission over every chunk (or, streamed, one per
    /// chunk, each with its samples): responsibilities, statistics, the combine tree, and a copy of
    /// each chunk's final row to the readback buffer, which is then read into `rows_host`.
    fn run_statistics(&mut self, how: Responsibilities, job: Pass) -> Result<(), GmmError> {
        let ctx = self.ctx;
        let row_len = (job.n_components * job.n_outputs + 1) as usize;
        debug_assert!(row_len <= self.plan.row_len_max);
        // Inside error scopes: a lost device or a failed allocation comes back typed, never as a
        // panic from wgpu's default handler on a caller's device.
        let (dispatches, uploaded, streamed) = if self.stream.is_some() {
            self.run_streamed(how, &job, row_len)?
        } else {
            ctx.scoped("gmm EM iteration", 0, || {
                let uploaded = self.upload_job(&job, row_len);
                let (commands, dispatches) = self.encode(how, &job, row_len, Instrument::None);
                ctx.queue.submit([commands]);
                (dispatches, uploaded, 0)
            })?
        };
        // The next online batch is converted and staged while the device runs this pass.
        self.stage_ahead()?;
        let floats = 2 * self.res.chunks.len() * row_len;
        read_back(ctx, &self.res.readback, &mut self.rows_host[..floats])?;
        let times = self.stream.as_ref().map(|s| s.times).unwrap_or_default();
        self.traffic = Traffic {
            dispatches,
            bytes_uploaded: uploaded + streamed,
            bytes_read_back: (floats * 4) as u64,
            bytes_streamed: streamed,
            stream_fill: times.fill,
            stream_wait: times.wait,
        };
        Ok(())
    }

    /// The streamed pass: per chunk, its samples through a staging buffer, then its kernels, in one
    /// submission; the next chunk is converted while the device runs this one. Returns the
    /// dispatches, the model bytes and the sample bytes uploaded.
    fn run_streamed(&mut self, how: Responsibilities, job: &Pass, row_len: usize) -> Result<(u32, u64, u64), GmmError> {
        let ctx = self.ctx;
        let Source::Host(view) = self.source else {
            unreachable!("only host data is streamed")
        };
        let uploaded = ctx.scoped("gmm EM iteration model upload", 0, || self.upload_job(job, row_len))?;
        let kernels = self.kernels();
        let stream = self.stream.as_mut().expect("a streamed plan has its buffers");
        stream.times = Default::default();
        let (mut dispatches, mut streamed) = (0, 0);
        for (c, chunk) in self.res.chunks.iter().enumerate() {
            let mut encoder = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("gmm streamed chunk"),
            });
            stream.stage(ctx, &view, &self.frame, c, (chunk.start, chunk.len), &mut encoder)?;
            let index = ctx.scoped("gmm streamed chunk", 0, || {
                dispatches += passes::encode_chunk(
                    ctx,
                    kernels,
                    &self.res,
                    &mut encoder,
                    c,
                    how,
                    job,
                    row_len,
                    &mut Instrument::None,
                );
                ctx.queue.submit([encoder.finish()])
            })?;
            stream.submitted(ctx, c, index)?;
            streamed += (chunk.len * self.d * 4) as u64;
        }
        Ok((dispatches, uploaded, streamed))
    }

    /// Times one EM statistics pass of `mix` (centred on `centres`, second moments of
    /// `stats_kind`) kernel by kernel, for `gmm bench`. With timestamp queries each dispatch gets
    /// its own compute pass and the device's clock; without them each kernel's dispatches go in a
    /// submission of their own, waited on and timed by the host's clock (which then includes the
    /// submission's overhead). Returns seconds per kernel, summed over chunks and combine levels.
    pub(crate) fn time_kernels(
        &mut self,
        mix: &Mixture,
        centres: &[f64],
        stats_kind: u32,
        clock: Clock,
    ) -> Result<Vec<(Kernel, f64)>, GmmError> {
        let ctx = self.ctx;
        let kind = self.pack.set_mixture(mix, &self.frame)?;
        self.pack.set_centres(centres, &self.frame)?;
        let job = self.job(kind, stats_kind, 0);
        let row_len = (job.n_components * job.n_outputs + 1) as usize;
        let how = self.posterior();
        let n_dispatches = passes::count_dispatches(self.kernels(), &self.res, how, &job);
        ctx.scoped("gmm bench upload", 0, || self.upload_job(&job, row_len))?;
        let mut times: Vec<(Kernel, f64)> = Vec::new();
        let mut add = |kernel: Kernel, seconds: f64| match times.iter_mut().find(|(k, _)| *k == kernel) {
            Some((_, t)) => *t += seconds,
            None => times.push((kernel, seconds)),
        };
        // A pass with more dispatches than one query set holds is timed by the wall clock.
        let clock = if 2 * n_dispatches > wgpu::QUERY_SET_MAX_QUERIES as usize {
            Clock::Wall
        } else {
            clock
        };
        match clock {
            Clock::Timestamps => {
                let stamps = Timestamps::new(ctx, "gmm bench timestamps", 2 * n_dispatches as u32)?;
                let mut order = Vec::with_capacity(n_dispatches);
                ctx.scoped("gmm bench timed pass", 0, || {
                    let pass = self.encode(
                        how,
                        &job,
                        row_len,
                        Instrument::Stamps {
                            stamps: &stamps,
                            order: &mut order,
                        },
                    );
                    let mut encoder = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                        label: Some("gmm bench resolve"),
                    });
                    stamps.resolve(&mut encoder);
                    ctx.queue.submit([pass.0, encoder.finish()]);
                })?;
                for (kernel, seconds) in order.into_iter().zip(stamps.seconds(ctx, n_dispatches)?) {
                    add(kernel, seconds);
                }
            }
            Clock::Wall => {
                let has_levels = self.res.chunks.iter().any(|c| !c.levels.is_empty());
                let kernels: &[Kernel] = if how == Responsibilities::Fused {
                    &[Kernel::Fused, Kernel::Combine]
                } else {
                    &[Kernel::Logprob, Kernel::Normalise, Kernel::Stats, Kernel::Combine]
                };
                for &kernel in kernels.iter().filter(|&&k| k != Kernel::Combine || has_levels) {
                    let started = std::time::Instant::now();
                    ctx.scoped("gmm bench kernel", 0, || {
                        ctx.queue
                            .submit([self.encode(how, &job, row_len, Instrument::Only(kernel)).0])
                    })?;
                    ctx.wait()?;
                    add(kernel, started.elapsed().as_secs_f64());
                }
            }
        }
        Ok(times)
    }

    /// The shape of one EM statistics pass with second moments for `covariance`: what
    /// `bench::cost` derives each kernel's bytes and flops from.
    pub(crate) fn pass_shape(&self, covariance: CovarianceType) -> PassShape {
        PassShape {
            n_features: self.d,
            n_components: self.k,
            covariance,
            has_weights: self.has_weights,
            chunks: self
                .res
                .chunks
                .iter()
                .map(|c| ChunkShape {
                    samples: c.len,
                    blocks: c.n_blocks as usize,
                    levels: c.levels.iter().map(|l| (l.n_rows as usize, l.n_out as usize)).collect(),
                })
                .collect(),
            // Beside exact routes the fast kernels write h's low part too, and the normalisation
            // is the exact one.
            h_bytes: if self.arith == Arith::Fast && self.exact_pipes.is_none() {
                4
            } else {
                8
            },
            r_bytes: if self.arith == Arith::F64 || (self.exact_pipes.is_some() && self.routed_arith == Arith::F64) {
                8
            } else {
                4
            },
        }
    }

    fn collect(&mut self, stats_kind: u32, centres: &[f64], score: Score, out: &mut SuffStats) {
        readback::collect(
            &self.rows_host,
            self.res.chunks.len(),
            stats_kind,
            &self.frame,
            &self.pack,
            centres,
            score,
            self.weight_sum,
            &mut self.row_sums,
            out,
        );
    }

    /// Whether some component's new mean lies far from its centre, measured with the precision the
    /// responsibilities came from; if so, `recentred` holds the new means for those components and
    /// the old centres for the rest.
    fn far_moves(&mut self, mix: &Mixture, centres: &[f64], stats: &SuffStats) -> bool {
        let d = self.d;
        let mut any = false;
        for c in 0..self.k {
            let nk = stats.s0[c] + NK_EPS;
            // δ = S1/N_k, the move of the mean (no allocation: this runs every iteration).
            let s1 = &stats.s1[c * d..(c + 1) * d];
            let delta = |i: usize| s1[i] / nk;
            let u = mix.precision_factor(c);
            let whitened: f64 = match mix.cov_type {
                // y_j = Σ_{i<=j} δ_i·U[i][j].
                CovarianceType::Full | CovarianceType::Tied => (0..d)
                    .map(|j| (0..=j).map(|i| delta(i) * u[i * d + j]).sum::<f64>().powi(2))
                    .sum(),
                CovarianceType::Diag => (0..d).map(|i| (delta(i) * u[i]).powi(2)).sum(),
                CovarianceType::Spherical => (0..d).map(|i| (delta(i) * u[0]).powi(2)).sum(),
            };
            let far = whitened > RECENTRE_ABOVE;
            any |= far;
            for (i, r) in self.recentred[c * d..(c + 1) * d].iter_mut().enumerate() {
                *r = centres[c * d + i] + if far { delta(i) } else { 0.0 };
            }
        }
        any
    }

    /// The kernels an EM pass runs: this fit's, and the exact ones where Auto routes components
    /// there.
    fn kernels(&self) -> passes::Kernels<'a> {
        passes::Kernels {
            main: self.pipes,
            exact: self.exact_pipes,
        }
    }

    /// Runs every later pass with `arith`'s kernels (on the same bind groups: the layouts are
    /// shared), logging and recording why.
    fn switch_to(&mut self, arith: Arith, why: String) -> Result<(), GmmError> {
        self.pipes = self.ctx.pipelines(arith)?;
        self.exact_pipes = None;
        log::info!(
            "GPU fit switches from {} to {} arithmetic: {why}",
            self.arith.name(),
            arith.name()
        );
        self.arith = arith;
        self.switches.push(why);
        Ok(())
    }

    /// The arithmetic the kernels now run.
    pub(crate) fn arith(&self) -> Arith {
        self.arith
    }

    /// Per-sample outputs of `mix` for every sample, chunk by chunk, read back into `out`.
    fn per_sample(&mut self, mix: &Mixture, output: PerSample, out: &mut [f64]) -> Result<(), GmmError> {
        let ctx = self.ctx;
        let kind = self.pack.set_mixture(mix, &self.frame)?;
        let mut job = self.job(kind, STATS_DIAG, 0);
        // Beside exact routes every component's outputs come from the exact kernels.
        let pipes = match self.exact_pipes {
            Some(exact) => {
                job.n_fast = 0;
                exact
            }
            None => self.pipes,
        };
        ctx.scoped("gmm per-sample model upload", 0, || {
            ctx.queue
                .write_buffer(&self.res.model, 0, bytemuck::cast_slice(&self.pack.host));
            ctx.queue.write_buffer(&self.res.job, 0, bytemuck::bytes_of(&job));
        })?;
        let per = if output == PerSample::Proba { self.k } else { 1 };
        let staging = mappable(ctx, "gmm per-sample readback", (self.plan.chunk_len * per * 4) as u64)?;
        let mut host = vec![0f32; self.plan.chunk_len * per];
        // The GPU's log p is in the device's units, without −(d/2)·log 2π.
        let to_callers = -self.pack.to_callers;
        for (c, chunk) in self.res.chunks.iter().enumerate() {
            // Streamed: the chunk's samples first, in a command buffer of their own.
            let mut upload = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("gmm streamed chunk upload"),
            });
            if let (Some(stream), Source::Host(view)) = (self.stream.as_mut(), &self.source) {
                stream.stage(ctx, view, &self.frame, c, (chunk.start, chunk.len), &mut upload)?;
            }
            let (commands, len) = passes::encode_per_sample(ctx, pipes, &self.res, chunk, output, &job, &staging);
            let index = ctx.scoped("gmm per-sample pass", 0, || {
                ctx.queue.submit([upload.finish(), commands])
            })?;
            if let Some(stream) = self.stream.as_mut() {
                stream.submitted(ctx, c, index)?;
            }
            read_back(ctx, &staging, &mut host[..len])?;
            let dst = &mut out[chunk.start * per..chunk.start * per + len];
            match output {
                PerSample::LogProb => dst
                    .iter_mut()
                    .zip(&host)
                    .for_each(|(o, &v)| *o = f64::from(v) + to_callers),
                _ => dst.iter_mut().zip(&host).for_each(|(o, &v)| *o = f64::from(v)),
            }
        }
        Ok(())
    }
}

impl Backend for GpuBackend<'_> {
    fn n_samples(&self) -> usize {
        self.n
    }

    fn n_features(&self) -> usize {
        self.d
    }

    fn em_statistics(&mut self, mixture: &Mixture, centres: &[f64], stats: &mut SuffStats) -> Result<(), GmmError> {
        let kind = self.pack.set_mixture(mixture, &self.frame)?;
        self.pack.set_centres(centres, &self.frame)?;
        let stats_kind = stats_kind_for(stats.kind);
        let job = self.job(kind, stats_kind, 0);
        let how = self.posterior();
        self.run_statistics(how, job)?;
        self.collect(stats_kind, centres, Score::LogLikelihood, stats);
        if self.far_moves(mixture, centres, stats) {
            // The same model gives the same responsibilities: only the centres of the sums move.
            let recentred = std::mem::take(&mut self.recentred);
            self.pack.set_centres(&recentred, &self.frame)?;
            self.recentred = recentred;
            self.run_statistics(how, job)?;
            self.collect(stats_kind, centres, Score::LogLikelihood, stats);
        }
        Ok(())
    }

    fn label_statistics(&mut self, centroids: &[f64], stats: &mut SuffStats) -> Result<(), GmmError> {
        let kind = self.pack.set_centroids(centroids, &self.frame)?;
        self.pack.set_centres(centroids, &self.frame)?;
        let stats_kind = stats_kind_for(stats.kind);
        let job = self.job(kind, stats_kind, 0);
        self.run_statistics(Responsibilities::Nearest, job)?;
        self.collect(stats_kind, centroids, Score::Inertia, stats);
        Ok(())
    }

    fn random_statistics(&mut self, seed: u64, centres: &[f64], stats: &mut SuffStats) -> Result<(), GmmError> {
        self.pack.set_centres(centres, &self.frame)?;
        let stats_kind = stats_kind_for(stats.kind);
        let job = self.job(KIND_DIAG, stats_kind, seed);
        self.run_statistics(Responsibilities::Random, job)?;
        self.collect(stats_kind, centres, Score::None, stats);
        Ok(())
    }

    fn per_sample_outputs(&mut self, mixture: &Mixture, output: Output, out: &mut [f64]) -> Result<(), GmmError> {
        let output = match output {
            Output::Proba => PerSample::Proba,
            Output::LogProb => PerSample::LogProb,
            Output::Labels => PerSample::Labels,
        };
        self.per_sample(mixture, output, out)
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
            Source::Device(samples) => {
                let buffer = samples.buffer();
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
                // Runs of consecutive rows become one copy each where rows are packed (a stride of
                // d); inside longer records, one copy per row.
                let packed = samples.stride == d;
                let mut i = 0;
                while i < rows.len() {
                    let mut j = i + 1;
                    while packed && j < rows.len() && rows[j] == rows[j - 1] + 1 {
                        j += 1;
                    }
                    encoder.copy_buffer_to_buffer(
                        buffer,
                        samples.offset + (rows[i] * samples.stride * 4) as u64,
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
            fallback: None,
            precision: Some(match self.exact_pipes {
                Some(_) => PrecisionRecord {
                    requested: self.precision.name().to_string(),
                    used: format!("fast + {}", self.routed_arith.name()),
                    switches: self.switches.clone(),
                    exact_components: (0..self.k).filter(|&c| self.exact_routes[c]).collect(),
                },
                None => PrecisionRecord {
                    requested: self.precision.name().to_string(),
                    used: self.arith.name().to_string(),
                    switches: self.switches.clone(),
                    exact_components: Vec::new(),
                },
            }),
        }
    }

    /// Auto's switches and routes belong to one initialisation: the next starts fast again, with
    /// every component in the fast kernels and nothing recorded (the model records its best
    /// initialisation's).
    fn begin_init(&mut self) -> Result<(), GmmError> {
        let arith = starting_arith(self.precision, self.exact);
        if self.precision != GpuPrecision::Auto || (self.arith == arith && self.exact_pipes.is_none()) {
            return Ok(());
        }
        self.pipes = self.ctx.pipelines(arith)?;
        self.arith = arith;
        self.exact_pipes = None;
        self.exact_routes.fill(false);
        self.pack.set_routes(&self.exact_routes);
        self.switches.clear();
        log::info!("GPU fit: a new initialisation starts in {} arithmetic", arith.name());
        Ok(())
    }

    fn escalation_floor(&self) -> Option<f64> {
        (self.precision == GpuPrecision::Auto && self.arith == Arith::Fast).then(|| precision::fast_noise_floor(self.d))
    }

    /// `GpuPrecision::Auto`'s guard, before each fast EM pass: a component whose conditioning (or
    /// whitened offset from the frame's centre) is past what f32 resolves runs the exact kernels
    /// from then on, the others staying fast (src/gpu/precision.rs); a fused pass, which runs
    /// every component in one kernel, and a fit with every component past it switch whole. The
    /// measures are taken in this backend's frame (its own rows' centre and scale), then agreed:
    /// in a distributed fit each is the largest over the ranks, so every rank routes alike.
    fn guard_agreed(&mut self, mix: &Mixture, agree: Agree<'_>) -> Result<(), GmmError> {
        let (Some(_), Some(exact)) = (self.escalation_floor(), self.exact) else {
            return Ok(());
        };
        precision::guard_measures(mix, &self.frame.scale, &self.frame.shift, &mut self.measures);
        agree(&mut self.measures);
        let mut routed = false;
        for c in 0..self.k {
            let g = self.measures[c];
            if !precision::is_past(g) || self.exact_routes[c] {
                continue;
            }
            self.exact_routes[c] = true;
            routed = true;
            let why = format!(
                "component {c} is too ill-conditioned for f32: √(d + 2)·u·max(spread of its factor's diagonal, whitened offset) = {g:.2e} > {:.0e}",
                precision::GUARD_LIMIT
            );
            // plan.fused depends on the model's shape and the caller's kernels only: the same on
            // every rank.
            if self.plan.fused {
                return self.switch_to(
                    exact,
                    format!("{why} (the fused pass runs every component in one arithmetic)"),
                );
            }
            log::info!("GPU fit runs component {c} in {} arithmetic: {why}", exact.name());
            self.switches
                .push(format!("{why}: it runs the {} kernels", exact.name()));
        }
        if !routed {
            return Ok(());
        }
        if self.exact_routes.iter().all(|&e| e) {
            self.exact_pipes = None;
            return self.switch_to(exact, "every component runs the exact kernels".into());
        }
        self.exact_pipes = Some(self.ctx.pipelines(exact)?);
        self.routed_arith = exact;
        self.pack.set_routes(&self.exact_routes);
        Ok(())
    }

    fn escalate_agreed(&mut self, why: String, agree: Agree<'_>) -> bool {
        let (Some(_), Some(exact)) = (self.escalation_floor(), self.exact) else {
            return false;
        };
        // The exact pipelines are built before the ranks agree, so that the switch cannot fail
        // after they have.
        let ready = self
            .ctx
            .pipelines(exact)
            .inspect_err(|e| log::warn!("cannot switch to exact GPU kernels: {e}"))
            .is_ok();
        let mut objects = [if ready { 0.0 } else { 1.0 }];
        agree(&mut objects);
        if objects[0] != 0.0 {
            log::warn!("GPU fit stays fast: a rank cannot switch to the exact kernels ({why})");
            return false;
        }
        match self.switch_to(exact, why) {
            Ok(()) => true,
            Err(e) => {
                log::warn!("cannot switch to exact GPU kernels: {e}");
                false
            }
        }
    }

    /// Two-float wherever any rank's device runs it (every device can; native f64 needs the
    /// feature and a fast enough rate), decided before each initialisation.
    fn agree_arithmetic(&mut self, agree: Agree<'_>) -> Result<(), GmmError> {
        let Some(mine) = self.exact else {
            return Ok(());
        };
        let mut two_float = [if mine == Arith::TwoFloat { 1.0 } else { 0.0 }];
        agree(&mut two_float);
        if two_float[0] == 0.0 || mine == Arith::TwoFloat {
            return Ok(());
        }
        log::info!("GPU fit: exact kernels in two-float, as another rank's device runs them");
        self.exact = Some(Arith::TwoFloat);
        if self.arith == mine {
            // An Exact fit: its kernels from now on.
            self.pipes = self.ctx.pipelines(Arith::TwoFloat)?;
            self.arith = Arith::TwoFloat;
        }
        Ok(())
    }

    /// The kernels' arithmetic and each component's route, hashed (FNV-1a; exact in f64).
    fn arithmetic_code(&self) -> u32 {
        let routed = self
            .exact_pipes
            .map(|_| self.routed_arith.index() as u8 + 1)
            .unwrap_or(0);
        let words = [self.arith.index() as u8, routed]
            .into_iter()
            .chain(self.exact_routes.iter().map(|&e| u8::from(e)));
        words.fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
    }
}

#[cfg(test)]
mod tests;
