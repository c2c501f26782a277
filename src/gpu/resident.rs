//! A fitted model resident on a device: its parameters uploaded once into buffers that every
//! inference bound to it reads, rewritten in place by `update`; and the arithmetic it runs in,
//! chosen as a fit's is (fast, exact, or fast with the conditioning guard).

use std::sync::{Arc, Mutex, MutexGuard};

use bytemuck::Zeroable;

use crate::error::GmmError;
use crate::gpu::GpuContext;
use crate::gpu::frame::Frame;
use crate::gpu::layout::{self, Pass};
use crate::gpu::pack::ModelPack;
use crate::gpu::precision::{self, Arith, GpuPrecision};
use crate::gpu::resources::{storage, uniform_buffer};
use crate::kinds::CovarianceType;
use crate::model::GmmModel;

/// A fitted [`GmmModel`] uploaded to a [`GpuContext`]'s device, for inference recorded into the
/// caller's command encoders ([`GpuModel::bind`], then [`crate::Inference::encode`]).
///
/// [`GpuModel::update`] rewrites the parameters in place (same K, d and covariance type): every
/// inference bound to the model stays valid and reads the new parameters from the next submission
/// on. Cloning is cheap and shares the device buffers.
///
/// Precision: [`GpuPrecision::Auto`] (the default of [`GpuModel::new`]) runs the fast f32 kernels
/// unless the conditioning guard finds a component that f32 does not resolve, as in a fit; then
/// every component runs the exact kernels (one inference pass runs one arithmetic). `Fast` and
/// `Exact` force either.
#[derive(Clone, Debug)]
pub struct GpuModel {
    pub(crate) shared: Arc<Shared>,
}

/// What a resident model and the inferences bound to it share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub ctx: GpuContext,
    pub k: usize,
    pub d: usize,
    pub cov: CovarianceType,
    pub kind: u32,
    pub precision: GpuPrecision,
    /// The device's units: the identity for a caller's buffer, the data's frame for the host
    /// conveniences.
    frame: Frame,
    pub model: wgpu::Buffer,
    /// The pass uniform of the fast kernels (every component fast) and of the exact ones (none).
    pub jobs: [wgpu::Buffer; 2],
    state: Mutex<State>,
}

/// What `update` changes.
#[derive(Debug)]
pub(crate) struct State {
    pub arith: Arith,
    pub exact_components: Vec<usize>,
    /// What turns the kernels' log p into the caller's units (−(d/2)·log 2π − Σ log scale).
    pub shift: f64,
    pub model: GmmModel,
    pack: ModelPack,
}

impl GpuModel {
    /// Uploads `model` to `ctx`'s device, in [`GpuPrecision::Auto`].
    pub fn new(ctx: &GpuContext, model: &GmmModel) -> Result<Self, GmmError> {
        Self::with_precision(ctx, model, GpuPrecision::Auto)
    }

    /// Uploads `model` to `ctx`'s device, in `precision`.
    pub fn with_precision(ctx: &GpuContext, model: &GmmModel, precision: GpuPrecision) -> Result<Self, GmmError> {
        Self::in_frame(ctx, model, precision, Frame::identity(model.n_features()))
    }

    /// Uploads `model` for samples given in the device units of `frame`.
    pub(crate) fn in_frame(
        ctx: &GpuContext,
        model: &GmmModel,
        precision: GpuPrecision,
        frame: Frame,
    ) -> Result<Self, GmmError> {
        let (k, d, cov) = (model.n_components(), model.n_features(), model.covariance_type());
        layout::check_shape(cov, k, d)?;
        let mut pack = ModelPack::new(cov, k, d);
        let bytes = (pack.host.len() * 4) as u64;
        if bytes > ctx.limits.max_storage_buffer_binding_size {
            return Err(GmmError::GpuModelTooLarge {
                what: "model parameters",
                n_components: k,
                n_features: d,
                bytes,
                granted: ctx.limits.max_storage_buffer_binding_size,
            });
        }
        pack.set_routes(&vec![false; k]);
        let kind = layout::factor_kind(cov);
        let job = |n_fast: usize| Pass {
            n_features: d as u32,
            n_components: k as u32,
            kind,
            means_at: pack.offsets[0] as u32,
            centres_at: pack.offsets[1] as u32,
            factors_at: pack.offsets[2] as u32,
            consts_at: pack.offsets[3] as u32,
            means_lo_at: pack.offsets[4] as u32,
            factors_lo_at: pack.offsets[5] as u32,
            routes_at: pack.offsets[6] as u32,
            n_fast: n_fast as u32,
            one: 1.0,
            neg_inf: f32::NEG_INFINITY,
            ..Pass::zeroed()
        };
        let jobs = [
            uniform_buffer(ctx, "gmm resident model pass (fast)", bytemuck::bytes_of(&job(k)))?,
            uniform_buffer(ctx, "gmm resident model pass (exact)", bytemuck::bytes_of(&job(0)))?,
        ];
        let buffer = storage(
            ctx,
            "gmm resident model parameters",
            bytes,
            wgpu::BufferUsages::COPY_DST,
        )?;
        let shared = Shared {
            ctx: ctx.clone(),
            k,
            d,
            cov,
            kind,
            precision,
            frame,
            model: buffer,
            jobs,
            state: Mutex::new(State {
                arith: Arith::Fast,
                exact_components: Vec::new(),
                shift: 0.0,
                model: model.clone(),
                pack,
            }),
        };
        let resident = Self {
            shared: Arc::new(shared),
        };
        resident.write(model)?;
        Ok(resident)
    }

    /// Rewrites the parameters in place with those of `model`, which must have the same number of
    /// components and features and the same covariance type (else
    /// [`GmmError::ResidentModelShape`]). Inferences bound to this model stay valid: commands
    /// submitted after this call read the new parameters (written with `Queue::write_buffer`, so
    /// commands already submitted are not affected). Under [`GpuPrecision::Auto`] the guard runs
    /// again on the new parameters.
    pub fn update(&self, model: &GmmModel) -> Result<(), GmmError> {
        let s = &self.shared;
        if (model.n_components(), model.n_features(), model.covariance_type()) != (s.k, s.d, s.cov) {
            return Err(GmmError::ResidentModelShape {
                expected_components: s.k,
                expected_features: s.d,
                expected_covariance: s.cov,
                found_components: model.n_components(),
                found_features: model.n_features(),
                found_covariance: model.covariance_type(),
            });
        }
        self.write(model)
    }

    /// Packs `model`, decides the arithmetic and writes the parameters.
    fn write(&self, model: &GmmModel) -> Result<(), GmmError> {
        let s = &self.shared;
        let (arith, exact_components) = choose_arith(&s.ctx, s.precision, model, &s.frame)?;
        // The kernels are built now, so that encoding never compiles.
        s.ctx.infer_pipelines(arith)?;
        let mut state = self.state();
        state.pack.set_mixture(&model.mixture, &s.frame)?;
        s.ctx.scoped("gmm resident model upload", 0, || {
            s.ctx
                .queue
                .write_buffer(&s.model, 0, bytemuck::cast_slice(&state.pack.host));
        })?;
        state.shift = -state.pack.to_callers;
        state.arith = arith;
        state.exact_components = exact_components;
        state.model = model.clone();
        Ok(())
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves consistent data (every field is written
        // after the fallible steps), so a poisoned lock is taken as it is.
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The context the model lives on.
    pub fn context(&self) -> &GpuContext {
        &self.shared.ctx
    }

    /// Number of components K.
    pub fn n_components(&self) -> usize {
        self.shared.k
    }

    /// Number of features d.
    pub fn n_features(&self) -> usize {
        self.shared.d
    }

    /// The covariance type.
    pub fn covariance_type(&self) -> CovarianceType {
        self.shared.cov
    }

    /// The precision asked for.
    pub fn precision(&self) -> GpuPrecision {
        self.shared.precision
    }

    /// The arithmetic inference now runs in: "fast", "exact (two-float)" or "exact (f64)".
    pub fn arithmetic(&self) -> &'static str {
        self.state().arith.name()
    }

    /// The components the guard found too ill-conditioned for f32 (Auto only), which sent the
    /// model to the exact kernels.
    pub fn exact_components(&self) -> Vec<usize> {
        self.state().exact_components.clone()
    }

    /// The model as last uploaded.
    pub fn model(&self) -> GmmModel {
        self.state().model.clone()
    }
}

/// The arithmetic of `precision` for `model` in `frame`, and the components the guard flagged.
fn choose_arith(
    ctx: &GpuContext,
    precision: GpuPrecision,
    model: &GmmModel,
    frame: &Frame,
) -> Result<(Arith, Vec<usize>), GmmError> {
    match precision {
        GpuPrecision::Fast => Ok((Arith::Fast, Vec::new())),
        GpuPrecision::Exact => Ok((ctx.exact_arith()?, Vec::new())),
        GpuPrecision::Auto => {
            let mut measures = vec![0.0; model.n_components()];
            precision::guard_measures(&model.mixture, &frame.scale, &frame.shift, &mut measures);
            let past: Vec<usize> = (0..measures.len())
                .filter(|&c| precision::is_past(measures[c]))
                .collect();
            if past.is_empty() {
                Ok((Arith::Fast, past))
            } else {
                log::info!(
                    "resident model runs the exact kernels: components {past:?} are too ill-conditioned for f32"
                );
                Ok((ctx.exact_arith()?, past))
            }
        }
    }
}
