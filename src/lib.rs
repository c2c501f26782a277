//! Gaussian mixture models fitted by expectation–maximisation, with scikit-learn's `GaussianMixture`
//! semantics, on a float64 CPU path (the reference) and on any GPU that wgpu drives.
//!
//! Parameters go through a validating builder; data is a borrowed row-major view of f32 or f64;
//! the fitted [`GmmModel`] exposes scikit-learn's attributes and methods.
//!
//! ```
//! use gmm_gpu::{CovarianceType, DataView, GmmParams};
//!
//! // Two well-separated clusters on a line.
//! let x: Vec<f64> = (0..200).map(|i| if i < 100 { i as f64 * 0.01 } else { 10.0 + i as f64 * 0.01 }).collect();
//! let data = DataView::from_f64(&x, 1)?;
//! let model = GmmParams::builder(2)
//!     .covariance_type(CovarianceType::Diag)
//!     .seed(7)
//!     .build()?
//!     .fit(&data)?;
//! assert!(model.converged());
//! let mut means = model.means().to_vec();
//! means.sort_by(f64::total_cmp);
//! assert!((means[0] - 0.495).abs() < 1e-6 && (means[1] - 11.495).abs() < 1e-6);
//! let labels = model.predict(&data)?;
//! assert_ne!(labels[0], labels[199]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod backend;
pub mod bench;
mod cpu;
mod data;
pub mod distributed;
mod em;
mod error;
mod estimator;
mod given;
pub mod gpu;
mod init;
mod kinds;
mod kmeans;
mod linalg;
#[cfg(feature = "linfa")]
pub mod linfa;
mod mapped;
mod missing;
mod mixture;
mod model;
mod mstep;
#[cfg(feature = "ndarray")]
mod ndarray;
mod nested;
mod online;
mod params;
mod prior;
mod stats;
mod variational;

pub use backend::Traffic;
pub use data::{DataView, Element, SampleWeights, Samples};
pub use em::Progress;
pub use error::{DataFileProblem, GmmError};
pub use gpu::{
    DeviceSamples, GpuContext, GpuKernels, GpuModel, GpuPrecision, InferOutputs, Inference, OutputBuffer,
    PrecisionRecord,
};
pub use kinds::{BackendKind, CovarianceType, InitMethod, Parameter, ParseNameError};
pub use mapped::{MappedData, Precision};
pub use missing::Missing;
pub use model::GmmModel;
pub use nested::{ShapeError, flatten_nested};
pub use online::Online;
pub use params::{GmmParams, GmmParamsBuilder};
pub use prior::Prior;
pub use stats::pairwise_sum;
pub use variational::{Variational, WeightPrior};

pub use em::FitEvent;

use std::ops::ControlFlow;

use cpu::CpuBackend;
use em::WarmStart;
use gpu::backend::{GpuBackend, Source};

impl GmmParams {
    /// Fits a fresh model to `data` on the chosen backend (ignoring `warm_start`, which needs a
    /// [`GaussianMixture`]).
    pub fn fit(&self, data: &DataView) -> Result<GmmModel, GmmError> {
        fit_model(self, Target::Choose(*data), None, None)
    }

    /// Fits a fresh model maximising the weighted likelihood Σ wᵢ·log p(xᵢ).
    pub fn fit_weighted(&self, data: &DataView, sample_weight: &[f64]) -> Result<GmmModel, GmmError> {
        let w = SampleWeights::new(sample_weight, data.n_samples())?;
        fit_model(self, Target::Choose(*data), Some(w.as_slice()), None)
    }

    /// As [`GmmParams::fit`], calling `observer` after every EM iteration (for progress displays).
    pub fn fit_observed(&self, data: &DataView, observer: &mut dyn FnMut(&Progress)) -> Result<GmmModel, GmmError> {
        let mut monitor = |event: &FitEvent| {
            if let FitEvent::Iteration(p) = event {
                observer(p);
            }
            ControlFlow::Continue(())
        };
        fit_model_monitored(self, Target::Choose(*data), None, None, &mut monitor)
    }

    /// Fits one rank's share of a data set split across the ranks of `comm` (MPI processes, say):
    /// `part` holds global rows `part.first_row..` of `part.n_total`, and every rank calls this with
    /// its own contiguous rows ([`distributed::rows_of`] splits them evenly). Each rank sums its
    /// rows on the CPU, or on `gpu` if given (one context per rank: see
    /// [`GpuContext::for_local_rank`]); a fixed binomial tree combines the statistics (see
    /// [`distributed`]), so every rank returns the same model, bitwise the same on every rerun with
    /// the same ranks, and equal to a one-process fit up to the order of the sums. Every
    /// initialisation is global (k-means++ and random-from-data draw global rows, 'random' hashes
    /// global indices), and so are n_init and the convergence test.
    ///
    /// A NaN or infinity on any rank is [`GmmError::NonFiniteData`] on every rank, naming the global
    /// row; a rank's own failure (its GPU, say) stops every rank, the others with
    /// [`GmmError::PeerFailed`]. With `previous` (the same model on every rank) the fit continues
    /// from it, as scikit-learn's `warm_start`. With `part.sample_weight` (every rank its rows'
    /// weights) the fit maximises the weighted likelihood as [`GmmParams::fit_weighted`] does over
    /// all the rows: the weights are checked as there, an invalid one is
    /// [`GmmError::InvalidSampleWeight`] on every rank naming its global row, and
    /// [`GmmError::ZeroSampleWeights`] means every weight on every rank is zero.
    pub fn fit_distributed(
        &self,
        part: distributed::RankData<'_>,
        comm: &dyn distributed::Communicator,
        gpu: Option<&GpuContext>,
        previous: Option<&GmmModel>,
        observer: &mut dyn FnMut(&Progress),
    ) -> Result<GmmModel, GmmError> {
        let distributed::RankData {
            samples,
            n_features,
            first_row,
            n_total,
            sample_weight,
        } = part;
        // The first bad value of any rank, shared before anything else (the data is read once). A
        // row with every feature missing (with Missing::Marginalise) is one too: its column is
        // n_features, which no value has.
        let marginalise = self.missing == Missing::Marginalise;
        let read = match marginalise {
            true => DataView::with_missing(samples, n_features),
            false => DataView::new(samples, n_features),
        };
        let (view, local_bad) = match read {
            Ok(view) => (Ok(Some(view)), None),
            Err(GmmError::NonFiniteData { row, column, value }) => (Ok(None), Some((first_row + row, column, value))),
            Err(GmmError::AllMissingRow { row }) => (Ok(None), Some((first_row + row, n_features, f64::NAN))),
            Err(e) => (Err(e), None),
        };
        // Any other problem with a rank's slice stops every rank (none waits for it below).
        let view = distributed::agree(comm, view)?;
        match distributed::first_bad_value(comm, local_bad) {
            Some((row, column, _)) if column == n_features => return Err(GmmError::AllMissingRow { row }),
            Some((row, column, value)) => return Err(GmmError::NonFiniteData { row, column, value }),
            None => {}
        }
        let view = view.expect("no rank found a bad value, this one included");
        let sample_weight = check_rank_weights(comm, sample_weight, view.n_samples(), first_row)?;
        let warm = check_shapes(self, n_total, n_features, previous)?;
        // Whether any rank has a missing value: then every rank marginalises (the same path).
        let mut any_missing = [f64::from(u8::from(view.has_missing()))];
        if marginalise {
            distributed::tree_allreduce(comm, &mut any_missing, &mut [0.0], distributed::max);
        }
        let mut monitor = |event: &FitEvent| {
            if let FitEvent::Iteration(p) = event {
                observer(p);
            }
            ControlFlow::Continue(())
        };
        let monitor: &mut dyn FnMut(&FitEvent) -> ControlFlow<()> = &mut monitor;
        if any_missing[0] > 0.0 {
            return fit_missing_distributed(
                self,
                view,
                sample_weight,
                DistributedRows {
                    comm,
                    gpu: gpu.is_some(),
                    first_row,
                    n_total,
                    warm,
                    monitor,
                },
            );
        }
        let outcome = match gpu {
            None => {
                let local = CpuBackend::new(view, sample_weight).with_offset(first_row);
                let mut backend = distributed::DistributedBackend::new(local, comm, first_row, n_total);
                em::fit(self, &mut backend, sample_weight, warm, monitor)?
            }
            Some(ctx) => {
                let local = GpuBackend::new_at(
                    ctx,
                    Source::Host(view),
                    self.n_components,
                    self.covariance_type,
                    sample_weight,
                    self.budget(),
                    first_row,
                );
                let local = distributed::agree(comm, local)?;
                let mut backend = distributed::DistributedBackend::new(local, comm, first_row, n_total);
                em::fit(self, &mut backend, sample_weight, warm, monitor)?
            }
        };
        Ok(GmmModel::from_outcome(outcome))
    }

    /// Fits on the GPU of `ctx` (the backend setting is ignored): the data is uploaded once.
    pub fn fit_on(&self, ctx: &GpuContext, data: &DataView) -> Result<GmmModel, GmmError> {
        fit_model(self, Target::Host(*data, ctx), None, None)
    }

    /// Fits on the GPU of `ctx` to `n_samples x n_features` f32 samples, row-major, packed from the
    /// start of the caller's `buffer` on that device: [`GmmParams::fit_device`] with
    /// `DeviceSamples::new(buffer, n_samples, n_features)`.
    pub fn fit_buffer(
        &self,
        ctx: &GpuContext,
        buffer: &wgpu::Buffer,
        n_samples: usize,
        n_features: usize,
    ) -> Result<GmmModel, GmmError> {
        self.fit_device(ctx, DeviceSamples::new(buffer, n_samples, n_features))
    }

    /// Fits on the GPU of `ctx` to f32 samples already in a caller's buffer on that device, where
    /// `samples` says (from a byte offset, rows a stride apart, so that they can sit inside larger
    /// records). The buffer needs STORAGE usage; COPY_SRC too for initialisations that read a few
    /// rows (k-means, k-means++ and random-from-data). The data is used in place: only parameters
    /// go up and statistics come back.
    ///
    /// The caller's data is not checked (that would mean reading it back), nor centred or scaled
    /// (so keep it near zero, with no feature far beyond the others in scale). A NaN or infinity in
    /// it poisons the sums of every component it touches: the fit then fails with a typed error
    /// (`GpuNonFiniteParameter` or `IllDefinedCovariance` when an initialisation or M-step meets it,
    /// else `NonFiniteLikelihood`), and never returns a NaN model. A description the buffer cannot
    /// hold is a typed error ([`GmmError::GpuBufferTooSmall`], [`GmmError::GpuBufferUsage`],
    /// [`GmmError::GpuBufferMisaligned`], [`GmmError::StrideTooSmall`]).
    pub fn fit_device(&self, ctx: &GpuContext, samples: DeviceSamples<'_>) -> Result<GmmModel, GmmError> {
        fit_model(self, Target::Buffer(samples, ctx), None, None)
    }

    /// [`GmmParams::fit_device`], the fitted model left resident on the device
    /// ([`GpuModel::new`], in [`GpuPrecision::Auto`]) for inference over the same buffer, or any
    /// other, without another upload of the samples ([`GpuModel::model`] is the fitted model).
    pub fn fit_resident(&self, ctx: &GpuContext, samples: DeviceSamples<'_>) -> Result<GpuModel, GmmError> {
        GpuModel::new(ctx, &self.fit_device(ctx, samples)?)
    }
}

/// The scikit-learn-style estimator: parameters plus the current model, so that with
/// `warm_start` a second fit continues from the first.
#[derive(Clone, Debug)]
pub struct GaussianMixture {
    params: GmmParams,
    model: Option<GmmModel>,
    ctx: Option<GpuContext>,
    /// An online fit's state between batches.
    online: Option<online::OnlineState>,
    /// An online fit's GPU buffers, kept between batches.
    online_gpu: gpu::online::OnlineGpu,
}

// An estimator moves between threads and is shared by them (a Python object, a server's model).
const _: () = {
    const fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<GaussianMixture>();
};

impl GaussianMixture {
    /// An unfitted estimator, fitting on the backend its parameters choose.
    pub fn new(params: GmmParams) -> Self {
        Self {
            params,
            model: None,
            ctx: None,
            online: None,
            online_gpu: Default::default(),
        }
    }

    /// An unfitted estimator that fits on the GPU of `ctx`.
    pub fn on_gpu(params: GmmParams, ctx: GpuContext) -> Self {
        Self {
            params,
            model: None,
            ctx: Some(ctx),
            online: None,
            online_gpu: Default::default(),
        }
    }

    /// The parameters.
    pub fn params(&self) -> &GmmParams {
        &self.params
    }

    /// The current model, once fitted.
    pub fn model(&self) -> Option<&GmmModel> {
        self.model.as_ref()
    }

    /// Takes the current model.
    pub fn into_model(self) -> Option<GmmModel> {
        self.model
    }

    /// Fits to `data`; with `warm_start` and a current model, continues from it for up to max_iter
    /// iterations (n_init is then 1). On error the current model is kept.
    pub fn fit(&mut self, data: &DataView) -> Result<&GmmModel, GmmError> {
        self.fit_inner(data, None)
    }

    /// As [`GaussianMixture::fit`], maximising the weighted likelihood.
    pub fn fit_weighted(&mut self, data: &DataView, sample_weight: &[f64]) -> Result<&GmmModel, GmmError> {
        let w = SampleWeights::new(sample_weight, data.n_samples())?;
        self.fit_inner(data, Some(w.as_slice()))
    }

    /// As [`GaussianMixture::fit`], maximising the weighted likelihood when `sample_weight` is given,
    /// and sending every [`FitEvent`] to `monitor` as the fit runs (for progress output, or to check
    /// for a user's interrupt). A `ControlFlow::Break` from the monitor stops the fit with
    /// [`GmmError::Interrupted`]; the current model is then kept, as on any error.
    pub fn fit_monitored(
        &mut self,
        data: &DataView,
        sample_weight: Option<&[f64]>,
        monitor: &mut dyn FnMut(&FitEvent) -> ControlFlow<()>,
    ) -> Result<&GmmModel, GmmError> {
        let w = match sample_weight {
            Some(w) => Some(SampleWeights::new(w, data.n_samples())?.as_slice()),
            None => None,
        };
        self.fit_monitored_inner(data, w, monitor)
    }

    /// Replaces the current model: with `warm_start`, the next fit continues from `model` (made,
    /// for example, by [`GmmModel::from_parameters`] from parameters kept elsewhere).
    pub fn set_model(&mut self, model: Option<GmmModel>) {
        self.model = model;
    }

    /// One step of stepwise (online) EM on `batch` (scikit-learn's `partial_fit`, as
    /// MiniBatchKMeans'): its E-step at the current parameters, blended into the running
    /// statistics with step γ_t = (t + t₀)^(−α) ([`Online`], from the parameters, else its
    /// defaults), then the M-step. The first call initialises from its batch (by the init
    /// method, or from the given initial parameters), or continues the current model with
    /// `warm_start`. The model's lower bound is the last batch's mean log-likelihood (before its
    /// M-step), and `n_iter` counts the steps. It runs on the GPU of [`GaussianMixture::on_gpu`]
    /// or with `BackendKind::Gpu` (on device buffers made at the first batch of each length and
    /// reused by the later ones), else on the CPU.
    pub fn partial_fit(&mut self, batch: &DataView) -> Result<&GmmModel, GmmError> {
        self.partial_fit_inner(batch, None, None, None)
    }

    /// As [`GaussianMixture::partial_fit`], with sample weights for the batch.
    pub fn partial_fit_weighted(&mut self, batch: &DataView, sample_weight: &[f64]) -> Result<&GmmModel, GmmError> {
        let w = SampleWeights::new(sample_weight, batch.n_samples())?;
        self.partial_fit_inner(batch, Some(w.as_slice()), None, None)
    }

    /// One step of stepwise EM over the ranks of `comm` (MPI processes, say): every rank calls it
    /// with its own part of the step's batch (`batch`, any number of rows, none included, with
    /// `sample_weight` if every rank has weights), and the global batch is their concatenation in
    /// rank order, so every rank takes the step [`GaussianMixture::partial_fit`] takes on that
    /// concatenation in one process (equal up to the order of the sums; the first step's
    /// k-means++ and Lloyd run over the global batch too), and holds the same model. It runs on the
    /// CPU. Weights are checked as in [`GmmParams::fit_distributed`], rows numbered in the global
    /// batch; an empty global batch is [`GmmError::TooFewSamples`] on every rank.
    pub fn partial_fit_distributed(
        &mut self,
        batch: &DataView,
        sample_weight: Option<&[f64]>,
        comm: &dyn distributed::Communicator,
    ) -> Result<&GmmModel, GmmError> {
        // Each rank's rows, so that each knows where its own lie in the global batch.
        let (r, p) = (comm.rank(), comm.size());
        let mut sizes = vec![0.0; p];
        sizes[r] = batch.n_samples() as f64;
        distributed::tree_allreduce(comm, &mut sizes, &mut vec![0.0; p], distributed::add);
        let offset = sizes[..r].iter().sum::<f64>() as usize;
        let total = sizes.iter().sum::<f64>() as usize;
        // Every rank's batch has the same features (the largest d equals the smallest).
        let d = batch.n_features() as f64;
        let mut dims = [d, -d];
        distributed::tree_allreduce(comm, &mut dims, &mut [0.0; 2], distributed::max);
        if dims[0] != -dims[1] {
            return Err(GmmError::FeatureMismatch {
                what: "another rank's batch",
                expected: dims[if dims[0] == d { 1 } else { 0 }].abs() as usize,
                got: batch.n_features(),
            });
        }
        let w = check_rank_weights(comm, sample_weight, batch.n_samples(), offset)?;
        // A rank's NaN stops every rank (none waits for it in the step's sums).
        distributed::agree(comm, refuse_online_missing(&self.params, batch))?;
        self.partial_fit_inner(batch, w, None, Some((comm, offset, total)))
    }

    /// With `next` (the batch that follows, when the caller knows it), a GPU step stages it while
    /// the device runs this one.
    fn partial_fit_inner(
        &mut self,
        batch: &DataView,
        w: Option<&[f64]>,
        next: Option<(&DataView, Option<&[f64]>)>,
        ranks: Option<(&dyn distributed::Communicator, usize, usize)>,
    ) -> Result<&GmmModel, GmmError> {
        let schedule = self.params.online.unwrap_or_default();
        refuse_online_missing(&self.params, batch)?;
        // The global batch's rows over ranks; every check below is then the same on every rank.
        let n = ranks.map_or(batch.n_samples(), |(_, _, total)| total);
        if n == 0 {
            return Err(GmmError::TooFewSamples { n_samples: 0 });
        }
        if self.params.prior.is_some() || self.params.variational.is_some() {
            return Err(GmmError::OnlineWithPrior);
        }
        match (&self.online, &self.model) {
            (Some(s), _) => batch.check_features("the online model", s.mixture.n_features)?,
            (None, Some(m)) if self.params.warm_start => {
                batch.check_features("the warm-started model", m.n_features())?;
                self.online = Some(online::OnlineState::continuing(&m.mixture));
            }
            (None, _) => {
                check_shapes(&self.params, n, batch.n_features(), None)?;
            }
        }
        // A GPU fit keeps one context for every batch (its pipelines are built once).
        if ranks.is_none() && self.ctx.is_none() && self.params.backend == BackendKind::Gpu {
            self.ctx = Some(GpuContext::new()?);
        }
        // A step that fails (a non-finite batch, an ill-defined covariance) leaves the state as
        // it was: the blend and the M-step change it in place, so keep a copy (O(K·d²)).
        let before = self.online.clone();
        let stepped = match ranks {
            Some(ranks) => online::step_distributed(&self.params, &schedule, &mut self.online, batch, w, ranks),
            None => {
                let gpu = self.ctx.as_ref().map(|ctx| online::OnGpu {
                    ctx,
                    held: &mut self.online_gpu,
                    next,
                });
                online::step(&self.params, &schedule, &mut self.online, batch, w, gpu)
            }
        };
        if let Err(e) = stepped {
            self.online = before;
            return Err(e);
        }
        let model = self.online.as_ref().expect("a step leaves a state").model();
        Ok(self.model.insert(model))
    }

    /// Stepwise EM over `data`: `passes` passes of consecutive mini-batches (the last one
    /// shorter), as successive [`GaussianMixture::partial_fit`] calls from a fresh start (or
    /// the current model with `warm_start`).
    fn fit_online(&mut self, data: &DataView, w: Option<&[f64]>, schedule: Online) -> Result<&GmmModel, GmmError> {
        refuse_online_missing(&self.params, data)?;
        if !self.params.warm_start {
            self.online = None;
            self.model = None;
        }
        let (n, b, passes) = (data.n_samples(), schedule.get_batch_size(), schedule.get_passes());
        // Every batch of every pass in order, each with the one after it (staged on the GPU while
        // the device runs this one).
        let starts: Vec<usize> = (0..passes).flat_map(|_| (0..n).step_by(b)).collect();
        let batch = |first: usize| {
            let m = b.min(n - first);
            online::rows(data, first, m).map(|v| (v, w.map(|w| &w[first..first + m])))
        };
        let mut steps = || -> Result<(), GmmError> {
            for (i, &first) in starts.iter().enumerate() {
                let (this, this_w) = batch(first)?;
                let next = starts.get(i + 1).map(|&f| batch(f)).transpose()?;
                self.partial_fit_inner(&this, this_w, next.as_ref().map(|(v, w)| (v, *w)), None)?;
            }
            Ok(())
        };
        let stepped = steps();
        // A batch staged ahead belongs to this fit alone.
        if let Some(ctx) = &self.ctx {
            self.online_gpu.forget_ahead(ctx)?;
        }
        stepped?;
        Ok(self.model.as_ref().expect("a pass fits at least one batch"))
    }

    /// Fits, then labels the samples with the fitted model (equal to `fit` then `predict`).
    pub fn fit_predict(&mut self, data: &DataView) -> Result<Vec<usize>, GmmError> {
        self.fit(data)?.predict(data)
    }

    fn fit_inner(&mut self, data: &DataView, w: Option<&[f64]>) -> Result<&GmmModel, GmmError> {
        self.fit_monitored_inner(data, w, &mut |_| ControlFlow::Continue(()))
    }

    fn fit_monitored_inner(
        &mut self,
        data: &DataView,
        w: Option<&[f64]>,
        monitor: &mut dyn FnMut(&FitEvent) -> ControlFlow<()>,
    ) -> Result<&GmmModel, GmmError> {
        if let Some(schedule) = self.params.online {
            return self.fit_online(data, w, schedule);
        }
        let previous = if self.params.warm_start {
            self.model.as_ref()
        } else {
            None
        };
        let target = match &self.ctx {
            Some(ctx) => Target::Host(*data, ctx),
            None => Target::Choose(*data),
        };
        let model = fit_model_monitored(&self.params, target, w, previous, monitor)?;
        Ok(self.model.insert(model))
    }
}

/// Online EM does not marginalise missing values: a NaN is today's error, or with
/// [`Missing::Marginalise`] one that says so.
fn refuse_online_missing(params: &GmmParams, data: &DataView) -> Result<(), GmmError> {
    if params.missing == Missing::Reject {
        data.reject_missing()?;
    }
    data.refuse_missing(
        "online (stepwise) EM",
        "fit the whole data at once with Missing::Marginalise, or impute the batches first",
    )
}

/// What a fit runs on.
enum Target<'a> {
    /// Host data, on the backend the parameters choose.
    Choose(DataView<'a>),
    /// Host data, on the given GPU.
    Host(DataView<'a>, &'a GpuContext),
    /// Data in a GPU buffer of the given GPU.
    Buffer(DeviceSamples<'a>, &'a GpuContext),
}

fn fit_model(
    params: &GmmParams,
    target: Target<'_>,
    sample_weight: Option<&[f64]>,
    previous: Option<&GmmModel>,
) -> Result<GmmModel, GmmError> {
    fit_model_monitored(params, target, sample_weight, previous, &mut |_| {
        ControlFlow::Continue(())
    })
}

/// Checks the data against the parameters, picks the backend, then runs the one EM driver.
fn fit_model_monitored(
    params: &GmmParams,
    target: Target<'_>,
    sample_weight: Option<&[f64]>,
    previous: Option<&GmmModel>,
    monitor: &mut dyn FnMut(&FitEvent) -> ControlFlow<()>,
) -> Result<GmmModel, GmmError> {
    let (n, d) = match &target {
        Target::Choose(v) | Target::Host(v, _) => (v.n_samples(), v.n_features()),
        Target::Buffer(samples, _) => (samples.n_samples(), samples.n_features()),
    };
    let k = params.n_components;
    let warm = check_shapes(params, n, d, previous)?;
    let kind = params.covariance_type;
    if let Target::Choose(view) | Target::Host(view, _) = &target
        && view.has_missing()
    {
        return fit_missing(params, target, sample_weight, warm, monitor);
    }
    let outcome = match target {
        Target::Buffer(samples, ctx) => {
            let source = Source::Device(samples);
            let mut b = GpuBackend::new(ctx, source, k, kind, sample_weight, params.budget())?;
            em::fit(params, &mut b, sample_weight, warm, monitor)?
        }
        Target::Host(view, ctx) => {
            let mut b = GpuBackend::new(ctx, Source::Host(view), k, kind, sample_weight, params.budget())?;
            em::fit(params, &mut b, sample_weight, warm, monitor)?
        }
        Target::Choose(view) => {
            type Monitor<'m> = &'m mut dyn FnMut(&FitEvent) -> ControlFlow<()>;
            let cpu = |monitor: Monitor<'_>, fallback: Option<String>| {
                let mut b = CpuBackend::new(view, sample_weight);
                let mut outcome = em::fit(params, &mut b, sample_weight, warm, monitor)?;
                outcome.info.fallback = fallback;
                Ok::<_, GmmError>(outcome)
            };
            let gpu = |ctx: &GpuContext, monitor: Monitor<'_>| {
                log::info!("backend: GPU on {}", ctx.adapter_name());
                let mut b = GpuBackend::new(ctx, Source::Host(view), k, kind, sample_weight, params.budget())?;
                em::fit(params, &mut b, sample_weight, warm, monitor)
            };
            match params.backend {
                BackendKind::Cpu => cpu(monitor, None)?,
                BackendKind::Gpu => gpu(&GpuContext::new()?, monitor)?,
                BackendKind::Auto => match auto_gpu(d, k, params.covariance_type) {
                    Err(reason) => {
                        log::info!("backend auto: {reason}; using the CPU");
                        cpu(monitor, Some(reason))?
                    }
                    Ok(ctx) => match gpu(ctx, monitor) {
                        Err(e) if e.is_gpu_capacity() => {
                            let reason = format!("the GPU could not run this fit ({e})");
                            log::warn!("backend auto: {reason}; fitting on the CPU instead");
                            cpu(monitor, Some(reason))?
                        }
                        other => other?,
                    },
                },
            }
        }
    };
    Ok(GmmModel::from_outcome(outcome))
}

/// A fit of data with missing values: marginalised on the CPU with [`Missing::Marginalise`], else
/// today's error at the first NaN.
fn fit_missing(
    params: &GmmParams,
    target: Target<'_>,
    sample_weight: Option<&[f64]>,
    warm: Option<WarmStart<'_>>,
    monitor: &mut dyn FnMut(&FitEvent) -> ControlFlow<()>,
) -> Result<GmmModel, GmmError> {
    let (Target::Choose(view) | Target::Host(view, _)) = target else {
        unreachable!("only host data has missing values")
    };
    if params.missing == Missing::Reject {
        view.reject_missing()?;
    }
    let on_gpu = matches!(target, Target::Host(..)) || params.backend == BackendKind::Gpu;
    missing::fit::check(params, &view, on_gpu.then_some(missing::fit::ON_GPU))?;
    let fallback =
        (params.backend == BackendKind::Auto).then(|| "missing values are marginalised on the CPU only".to_string());
    if let Some(reason) = &fallback {
        log::info!("backend auto: {reason}; using the CPU");
    }
    let filled = missing::column_mean_filled(&view, sample_weight);
    let mut backend = missing::backend::MissingBackend::new(view, sample_weight, &filled);
    let mut outcome = em::fit(params, &mut backend, sample_weight, warm, monitor)?;
    outcome.info.fallback = fallback;
    Ok(GmmModel::from_outcome(outcome))
}

/// Where one rank's rows sit in a distributed fit, and the fit's state.
struct DistributedRows<'a, 'm> {
    comm: &'a dyn distributed::Communicator,
    gpu: bool,
    first_row: usize,
    n_total: usize,
    warm: Option<WarmStart<'m>>,
    monitor: &'a mut dyn FnMut(&FitEvent) -> ControlFlow<()>,
}

/// [`fit_missing`] for one rank of a distributed fit in which some rank has a missing value:
/// every rank refuses alike (the rank holding the first NaN names it, the others report
/// [`GmmError::PeerFailed`]), and the initialisations' column means are global.
fn fit_missing_distributed(
    params: &GmmParams,
    view: DataView<'_>,
    sample_weight: Option<&[f64]>,
    rows: DistributedRows<'_, '_>,
) -> Result<GmmModel, GmmError> {
    let comm = rows.comm;
    let refused = missing::fit::check(params, &view, rows.gpu.then_some(missing::fit::ON_RANK_GPU));
    // The ranks holding a NaN refuse; agree stops the others too, naming the lowest of them.
    distributed::agree(comm, refused)?;
    let mut sums = missing::column_sums(&view, sample_weight);
    let mut scratch = vec![0.0; sums.len()];
    distributed::tree_allreduce(comm, &mut sums, &mut scratch, distributed::add);
    let filled = missing::fill_missing(&view, &sums);
    let local = missing::backend::MissingBackend::new(view, sample_weight, &filled).with_offset(rows.first_row);
    let mut backend = distributed::DistributedBackend::new(local, comm, rows.first_row, rows.n_total);
    let outcome = em::fit(params, &mut backend, sample_weight, rows.warm, rows.monitor)?;
    Ok(GmmModel::from_outcome(outcome))
}

/// One rank's sample weights for [`GmmParams::fit_distributed`], checked as [`SampleWeights::new`]
/// checks one process's, with every rank ending in the same error: the length on each rank (the
/// lowest failing rank's error), the first invalid weight by global row (`first_row` onwards here),
/// and a positive weight somewhere over the ranks. Weights on some ranks only are an error too.
fn check_rank_weights<'w>(
    comm: &dyn distributed::Communicator,
    sample_weight: Option<&'w [f64]>,
    n_samples: usize,
    first_row: usize,
) -> Result<Option<&'w [f64]>, GmmError> {
    // Whether each rank has weights: the lowest rank without them, if any rank has them.
    let me = comm.rank() as f64;
    let mut seen = [
        if sample_weight.is_some() { 1.0 } else { 0.0 },
        if sample_weight.is_none() { me } else { f64::INFINITY },
    ];
    distributed::tree_allreduce(comm, &mut seen[..1], &mut [0.0], distributed::max);
    distributed::tree_allreduce(comm, &mut seen[1..], &mut [0.0], |a, b| a[0] = a[0].min(b[0]));
    if seen[0] == 0.0 {
        return Ok(None);
    }
    if seen[1].is_finite() {
        return Err(GmmError::SampleWeightOnSomeRanks { rank: seen[1] as usize });
    }
    let w = sample_weight.expect("every rank has weights, this one included");
    distributed::agree(comm, SampleWeights::check_length(w, n_samples))?;
    let local_bad = SampleWeights::first_invalid(w).map(|(i, v)| (first_row + i, 0, v));
    if let Some((index, _, value)) = distributed::first_bad_value(comm, local_bad) {
        return Err(GmmError::InvalidSampleWeight { index, value });
    }
    let mut positive = [if SampleWeights::any_positive(w) { 1.0 } else { 0.0 }];
    distributed::tree_allreduce(comm, &mut positive, &mut [0.0], distributed::max);
    if positive[0] == 0.0 {
        return Err(GmmError::ZeroSampleWeights);
    }
    Ok(Some(w))
}

/// The checks every fit makes of N and d against the parameters (and a warm start's model).
fn check_shapes<'m>(
    params: &GmmParams,
    n: usize,
    d: usize,
    previous: Option<&'m GmmModel>,
) -> Result<Option<WarmStart<'m>>, GmmError> {
    let k = params.n_components;
    if n < 2 {
        return Err(GmmError::TooFewSamples { n_samples: n });
    }
    if n < k {
        return Err(GmmError::FewerSamplesThanComponents {
            n_samples: n,
            n_components: k,
        });
    }
    if let Some(given) = &params.init_given
        && given.n_rows(k) != n
    {
        return Err(GmmError::InitResponsibilitiesRows {
            what: match given {
                given::GivenStart::Responsibilities(_) => "responsibilities",
                given::GivenStart::Labels(_) => "labels",
            },
            expected: n,
            got: given.n_rows(k),
        });
    }
    let mismatch = |what, expected| GmmError::FeatureMismatch { what, expected, got: d };
    if let Some(expected) = params.init_n_features().filter(|&e| e != d) {
        return Err(mismatch(
            if params.means_init.is_some() {
                "means_init"
            } else {
                "precisions_init"
            },
            expected,
        ));
    }
    Ok(match previous {
        Some(m) if m.n_features() != d => return Err(mismatch("the warm-started model", m.n_features())),
        Some(m) => Some(WarmStart {
            mixture: &m.mixture,
            lower_bound: m.lower_bound,
        }),
        None => None,
    })
}

/// The GPU `Auto` fits on, or why there is none for a fit of `d` features and `k` components with
/// `covariance`.
fn auto_gpu(d: usize, k: usize, covariance: CovarianceType) -> Result<&'static GpuContext, String> {
    let max_d = gpu::max_gpu_features(covariance);
    if d > max_d {
        return Err(format!(
            "{d} features exceed the GPU kernels' {max_d} for {covariance} covariances"
        ));
    }
    if k > gpu::MAX_GPU_COMPONENTS {
        return Err(format!(
            "{k} components exceed the GPU kernels' {}",
            gpu::MAX_GPU_COMPONENTS
        ));
    }
    GpuContext::auto().map_err(|e| e.to_string())
}

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
