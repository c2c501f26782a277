//! Stepwise (online) EM (Cappé & Moulines 2009; Liang & Klein 2009): each mini-batch's E-step
//! statistics ŝ_t are blended into running statistics, s ← (1 − γ_t)·s + γ_t·ŝ_t with
//! γ_t = (t + t₀)^(−α), and the M-step runs from s after every batch, so data seen once suffices.

use crate::backend::{Backend, FitInfo};
use crate::cpu::CpuBackend;
use crate::data::{DataView, Samples};
use crate::error::GmmError;
use crate::estimator::Estimator;
use crate::gpu::GpuContext;
use crate::gpu::online::OnlineGpu;
use crate::init::initialise;
use crate::mixture::Mixture;
use crate::mstep::m_step_frozen;
use crate::params::GmmParams;
use crate::stats::SuffStats;

/// The schedule of an online fit: mini-batches of `batch_size` samples, step sizes
/// γ_t = (t + offset)^(−decay) for the t-th batch (t = 1, 2, …), and `passes` over the data.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Online {
    batch_size: usize,
    decay: f64,
    offset: f64,
    passes: usize,
}

impl Default for Online {
    /// Batches of 65,536, α = 0.7, t₀ = 2, one pass.
    fn default() -> Self {
        Self {
            batch_size: 65_536,
            decay: 0.7,
            offset: 2.0,
            passes: 1,
        }
    }
}

impl Online {
    /// Sets the samples per mini-batch (default 65,536; ≥ 1).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }
    /// Sets α in γ_t = (t + t₀)^(−α) (default 0.7; in (0.5, 1], where stepwise EM converges).
    pub fn decay(mut self, alpha: f64) -> Self {
        self.decay = alpha;
        self
    }
    /// Sets t₀ ≥ 0 in γ_t = (t + t₀)^(−α) (default 2): larger damps the early steps.
    pub fn offset(mut self, t0: f64) -> Self {
        self.offset = t0;
        self
    }
    /// Sets the passes over the data of [`crate::GaussianMixture::fit`] (default 1).
    pub fn passes(mut self, passes: usize) -> Self {
        self.passes = passes;
        self
    }
    /// Samples per mini-batch.
    pub fn get_batch_size(&self) -> usize {
        self.batch_size
    }
    /// Passes over the data.
    pub fn get_passes(&self) -> usize {
        self.passes
    }

    /// Checks every value.
    pub(crate) fn check(&self) -> Result<(), GmmError> {
        let problem = if self.batch_size == 0 {
            Some(("batch_size", self.batch_size as f64, "at least 1"))
        } else if !(self.decay > 0.5 && self.decay <= 1.0) {
            Some(("decay", self.decay, "in (0.5, 1], where stepwise EM converges"))
        } else if !(self.offset.is_finite() && self.offset >= 0.0) {
            Some(("offset", self.offset, "finite and >= 0"))
        } else if self.passes == 0 {
            Some(("passes", 0.0, "at least 1"))
        } else {
            None
        };
        match problem {
            Some((field, value, must)) => Err(GmmError::InvalidOnline { field, value, must }),
            None => Ok(()),
        }
    }

    /// γ_t for the t-th step (t ≥ 1).
    pub(crate) fn step_size(&self, t: u64) -> f64 {
        (t as f64 + self.offset).powf(-self.decay)
    }
}

/// Where an online fit stands between batches: the model, the running statistics (around its
/// means) and the steps taken.
#[derive(Clone, Debug)]
pub(crate) struct OnlineState {
    pub mixture: Mixture,
    pub stats: SuffStats,
    pub steps: u64,
    /// The weight of the last batch: the running statistics are kept in its units.
    pub last_weight: f64,
    pub lower_bounds: Vec<f64>,
    /// The backend of the last step.
    pub backend: FitInfo,
    /// Each step's working memory, allocated once: the batch's statistics, the centres of its
    /// E-step, and the M-step's scratch.
    work: (SuffStats, Vec<f64>, Vec<f64>),
}

/// One step of stepwise EM on `batch`, on the GPU of `gpu` if given, else the CPU: the first
/// step initialises from its batch (or starts from `state`'s model); then the batch's E-step at
/// the current parameters, the blend into the running statistics, and the M-step from them.
pub(crate) fn step(
    params: &GmmParams,
    online: &Online,
    state: &mut Option<OnlineState>,
    batch: &DataView,
    sample_weight: Option<&[f64]>,
    gpu: Option<OnGpu<'_, '_>>,
) -> Result<(), GmmError> {
    match gpu {
        // The pipelines are the context's, built once; the buffers are the held ones for this
        // batch length, made once (src/gpu/online.rs).
        Some(OnGpu { ctx, held, next }) => held.run(ctx, params, batch, sample_weight, next, |backend| {
            step_on(params, online, state, backend, sample_weight)
        }),
        None => step_on(
            params,
            online,
            state,
            &mut CpuBackend::new(*batch, sample_weight),
            sample_weight,
        ),
    }
}

/// Where a GPU step runs: the context, the device objects held between batches, and the next
/// batch (with its weights) when the caller knows it.
pub(crate) struct OnGpu<'g, 'd> {
    pub ctx: &'g GpuContext,
    pub held: &'g mut OnlineGpu,
    pub next: Option<(&'g DataView<'d>, Option<&'g [f64]>)>,
}

/// [`step`] over ranks, on the CPU: this rank's part of the global batch, `offset` rows into it of
/// `total`. Each rank's statistics (the batch's, and the first step's initialisation) are summed
/// over every rank by [`crate::distributed::DistributedBackend`], so every rank takes the same step.
pub(crate) fn step_distributed(
    params: &GmmParams,
    online: &Online,
    state: &mut Option<OnlineState>,
    batch: &DataView,
    sample_weight: Option<&[f64]>,
    (comm, offset, total): (&dyn crate::distributed::Communicator, usize, usize),
) -> Result<(), GmmError> {
    let local = CpuBackend::new(*batch, sample_weight).with_offset(offset);
    let mut backend = crate::distributed::DistributedBackend::new(local, comm, offset, total);
    step_on(params, online, state, &mut backend, sample_weight)
}

pub(crate) fn step_on<B: Backend>(
    params: &GmmParams,
    online: &Online,
    state: &mut Option<OnlineState>,
    backend: &mut B,
    sample_weight: Option<&[f64]>,
) -> Result<(), GmmError> {
    let mut estimator = Estimator::MaximumLikelihood(params.frozen);
    let state = match state {
        Some(s) => s,
        None => {
            // As a batch fit's first initialisation: the same seed, so the same start.
            let seed = rand::RngExt::random::<u64>(&mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(
                params.seed,
            ));
            let mixture = initialise(params, &mut estimator, backend, sample_weight, seed)?;
            state.insert(OnlineState::continuing(&mixture))
        }
    };
    let (batch_stats, centres, scratch) = &mut state.work;
    centres.copy_from_slice(&state.mixture.means);
    backend.guard(&state.mixture)?;
    backend.em_statistics(&state.mixture, centres, batch_stats)?;
    let log_likelihood = batch_stats.score_sum / batch_stats.weight_sum;
    if !log_likelihood.is_finite() {
        return Err(GmmError::NonFiniteLikelihood {
            iteration: state.steps as usize + 1,
        });
    }
    state.steps += 1;
    let gamma = online.step_size(state.steps);
    if state.steps == 1 || gamma >= 1.0 {
        state.stats.copy_from(batch_stats);
    } else {
        // In the units of this batch's weight: the M-step depends only on ratios of the sums.
        let a = (1.0 - gamma) * batch_stats.weight_sum / state.last_weight;
        state.stats.blend(a, batch_stats, gamma);
    }
    state.last_weight = batch_stats.weight_sum;
    m_step_frozen(
        &state.stats,
        centres,
        params.reg_covar,
        &mut state.mixture,
        scratch,
        params.frozen,
    )?;
    // Keep the running sums around the means the next E-step uses.
    state.stats.recentre(centres, &state.mixture.means);
    state.lower_bounds.push(log_likelihood);
    state.backend = backend.info();
    Ok(())
}

/// Rows `first..first + n` of a view.
pub(crate) fn rows<'a>(view: &DataView<'a>, first: usize, n: usize) -> Result<DataView<'a>, GmmError> {
    let d = view.n_features();
    let samples = match view.samples() {
        Samples::F32(x) => Samples::F32(&x[first * d..(first + n) * d]),
        Samples::F64(x) => Samples::F64(&x[first * d..(first + n) * d]),
    };
    DataView::new(samples, d)
}

impl OnlineState {
    /// A state that continues `mixture` (a warm start): no running statistics yet.
    pub fn continuing(mixture: &Mixture) -> Self {
        let (k, d) = (mixture.n_components, mixture.n_features);
        Self {
            mixture: mixture.clone(),
            stats: SuffStats::new(mixture.cov_type, k, d),
            steps: 0,
            last_weight: 0.0,
            lower_bounds: Vec::new(),
            backend: CpuBackend::INFO,
            work: (
                SuffStats::new(mixture.cov_type, k, d),
                vec![0.0; k * d],
                vec![0.0; d * d],
            ),
        }
    }

    /// The model the steps so far give.
    pub fn model(&self) -> crate::GmmModel {
        crate::GmmModel::from_outcome(crate::em::FitOutcome {
            mixture: self.mixture.clone(),
            converged: false,
            n_iter: self.steps as usize,
            lower_bound: self.lower_bounds.last().copied().unwrap_or(f64::NEG_INFINITY),
            lower_bounds: self.lower_bounds.clone(),
            info: self.backend.clone(),
            prior: None,
            variational: None,
            log_likelihood: f64::NEG_INFINITY,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::CovarianceType;

    /// After T steps the running statistics are the weighted sum Σ_t c_t·ŝ_t/W_t of each batch's
    /// statistics at the parameters its step used, with c_t = γ_t Π_{u>t} (1 − γ_u) (c_1 without
    /// its γ: the first step takes its batch whole), in the units of the last batch's weight:
    /// computed here directly, around the origin, and moved to the model's means.
    #[test]
    fn running_statistics_are_the_weighted_sum_of_the_batches() {
        let x: Vec<f64> = (0..2400)
            .map(|i| ((i * 7919) % 1000) as f64 / 250.0 + [0.0, 4.0, -3.0][(i / 2) % 3])
            .collect();
        for cov in CovarianceType::ALL {
            let params = crate::GmmParams::builder(3)
                .covariance_type(cov)
                .seed(3)
                .build()
                .unwrap();
            let online = Online::default().decay(0.8).offset(1.0);
            let mut state = None;
            let mut direct = SuffStats::new(cov, 3, 2);
            let batches: Vec<&[f64]> = x.chunks(400 * 2).collect();
            // The parameters each step's E-step used: the first batch's initialisation (as the
            // first step draws it), then each step's result.
            let seed = rand::RngExt::random::<u64>(&mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(3));
            let view0 = DataView::from_f64(batches[0], 2).unwrap();
            let mut ml = Estimator::MaximumLikelihood(Default::default());
            let mut used = vec![initialise(&params, &mut ml, &mut CpuBackend::new(view0, None), None, seed).unwrap()];
            for b in &batches {
                step(
                    &params,
                    &online,
                    &mut state,
                    &DataView::from_f64(b, 2).unwrap(),
                    None,
                    None,
                )
                .unwrap();
                used.push(state.as_ref().unwrap().mixture.clone());
            }
            let t_max = batches.len();
            let zeros = vec![0.0; 6];
            let last_weight = 400.0;
            for (t, (b, mix)) in batches.iter().zip(&used).enumerate() {
                let t1 = (t + 1) as u64;
                let mut c = if t1 == 1 { 1.0 } else { online.step_size(t1) };
                for u in t1 + 1..=t_max as u64 {
                    c *= 1.0 - online.step_size(u);
                }
                let mut s = SuffStats::new(cov, 3, 2);
                CpuBackend::new(DataView::from_f64(b, 2).unwrap(), None)
                    .em_statistics(mix, &zeros, &mut s)
                    .unwrap();
                direct.blend(1.0, &s, c * last_weight / s.weight_sum);
            }
            let state = state.unwrap();
            direct.recentre(&zeros, &state.mixture.means);
            let worst = |a: &[f64], b: &[f64]| {
                a.iter()
                    .zip(b)
                    .map(|(p, q)| (p - q).abs() / q.abs().max(1.0))
                    .fold(0.0, f64::max)
            };
            // Sums around the origin against centred ones, over 6 blended steps: 1e-10.
            for (what, a, b) in [
                ("s0", &state.stats.s0, &direct.s0),
                ("s1", &state.stats.s1, &direct.s1),
                ("s2", &state.stats.s2, &direct.s2),
            ] {
                let e = worst(a, b);
                assert!(e <= 1e-10, "{cov} {what}: {e:e}\n{a:?}\n{b:?}");
            }
        }
    }
}
