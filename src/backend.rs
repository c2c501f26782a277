//! The seam between the shared EM driver and a compute backend: parameters and data in, sufficient statistics out.

use crate::error::GmmError;
use crate::given::{GivenStart, given_statistics};
use crate::mixture::Mixture;
use crate::stats::SuffStats;

/// What a backend does for the driver. It holds the data (and sample weights) for the whole fit;
/// everything else — initialisation, the M-step, the convergence check — is shared.
///
/// Every pass writes `stats` around the given centres (row-major K x d), with second moments shaped
/// by `stats.kind`. Results must be deterministic: the same inputs give bitwise the same statistics.
pub(crate) trait Backend {
    /// Samples the backend holds.
    fn n_samples(&self) -> usize;

    /// Features per sample.
    fn n_features(&self) -> usize;

    /// Copies the given rows (sorted, distinct), widened to f64, into `out` (row-major).
    fn gather_rows(&mut self, rows: &[usize], out: &mut [f64]) -> Result<(), GmmError>;

    /// Which backend (and adapter) ran, and its traffic per EM iteration.
    fn info(&self) -> FitInfo;

    /// One E-step and reduction: responsibilities from `mixture`, then their weighted sums around `centres`,
    /// and Σ w·log p(x) in `stats.score_sum`.
    fn em_statistics(&mut self, mixture: &Mixture, centres: &[f64], stats: &mut SuffStats) -> Result<(), GmmError>;

    /// One k-means pass: each sample is assigned wholly to its nearest centroid (lowest index on ties),
    /// and the sums are taken around the centroids. `stats.score_sum` is the weighted inertia.
    fn label_statistics(&mut self, centroids: &[f64], stats: &mut SuffStats) -> Result<(), GmmError>;

    /// Per-sample outputs of `mixture` for every sample the backend holds, into `out`: responsibilities
    /// (N x K, row-major), log p(x) (N) or the most likely component (N, as f64).
    fn per_sample_outputs(&mut self, mixture: &Mixture, output: Output, out: &mut [f64]) -> Result<(), GmmError>;

    /// Statistics of uniformly random responsibilities, normalised per sample (scikit-learn's 'random'
    /// init), drawn from a counter-based hash of (seed, sample, component) so that any backend can
    /// reproduce them.
    fn random_statistics(&mut self, seed: u64, centres: &[f64], stats: &mut SuffStats) -> Result<(), GmmError>;

    /// Statistics of the responsibilities the user gave (`start`, over the samples this backend
    /// holds), weighted by `sample_weight`, around `centres`: a fit's start from responsibilities
    /// or labels. Once per initialisation, so by default the rows are read back in blocks and
    /// summed on the host in f64.
    fn given_statistics(
        &mut self,
        start: &GivenStart,
        sample_weight: Option<&[f64]>,
        centres: &[f64],
        stats: &mut SuffStats,
    ) -> Result<(), GmmError> {
        let n = self.n_samples();
        given_statistics(start, n, sample_weight, centres, stats, &mut |rows, out| {
            self.gather_rows(rows, out)
        })
    }

    /// The sample weights of the given rows (sorted, distinct) into `out`, 1 each without weights.
    /// `sample_weight` holds the weights of the rows this backend holds; a distributed backend
    /// fetches each row's from the rank that owns it (initialisation reads a few rows' weights).
    fn gather_weights(&mut self, rows: &[usize], sample_weight: Option<&[f64]>, out: &mut [f64]) {
        for (o, &i) in out.iter_mut().zip(rows) {
            *o = sample_weight.map_or(1.0, |w| w[i]);
        }
    }

    /// Σw² over every sample, given the weights of the rows this backend holds (a distributed
    /// backend adds every rank's): the MAP and variational priors' effective sample size.
    fn weight_square_sum(&mut self, sample_weight: &[f64]) -> f64 {
        sample_weight.iter().map(|v| v * v).sum()
    }

    /// How many samples have a positive weight (every sample without weights), over every rank.
    fn positive_count(&mut self, sample_weight: Option<&[f64]>) -> usize {
        sample_weight.map_or(self.n_samples(), |w| w.iter().filter(|&&v| v > 0.0).count())
    }

    /// The samples at `positions` (sorted, distinct) in the row-ordered list of those with positive
    /// weight, as (rows, their weights): random-from-data's draw among them.
    fn positive_rows(&mut self, sample_weight: Option<&[f64]>, positions: &[usize]) -> (Vec<usize>, Vec<f64>) {
        let Some(w) = sample_weight else {
            return (positions.to_vec(), vec![1.0; positions.len()]);
        };
        let positive = w.iter().enumerate().filter(|(_, v)| **v > 0.0);
        let mut wanted = positions.iter().peekable();
        let mut picked = (Vec::with_capacity(positions.len()), Vec::with_capacity(positions.len()));
        for (at, (row, &v)) in positive.enumerate() {
            if wanted.peek() == Some(&&at) {
                wanted.next();
                picked.0.push(row);
                picked.1.push(v);
            }
        }
        picked
    }

    /// An initialisation of `n_init` begins. A backend whose arithmetic adapts during a fit
    /// (`GpuPrecision::Auto` on the GPU) starts each afresh, so that one start's troubles do not
    /// choose another's arithmetic.
    fn begin_init(&mut self) -> Result<(), GmmError> {
        Ok(())
    }

    /// Where the backend computes in a fast arithmetic that it may leave for an exact one
    /// (`GpuPrecision::Auto` on the GPU): the noise of that arithmetic in the mean log-likelihood,
    /// per sample. `None` where there is nothing to escalate to.
    fn escalation_floor(&self) -> Option<f64> {
        None
    }

    /// Auto's guard, before each E-step in the fast arithmetic: the components that f32 cannot
    /// hold run the exact kernels from then on. The driver calls this; a distributed backend
    /// decides from every rank's measures ([`Backend::guard_agreed`]).
    fn guard(&mut self, mixture: &Mixture) -> Result<(), GmmError> {
        self.guard_agreed(mixture, &mut |_| {})
    }

    /// [`Backend::guard`] with its per-component measures, taken in this backend's own frame,
    /// passed through `agree` before they are acted on (in a distributed fit, `agree` replaces each
    /// with its largest over the ranks, so that every rank routes alike). `agree` is called once
    /// on every call where [`Backend::escalation_floor`] is `Some`, and never otherwise.
    fn guard_agreed(&mut self, mixture: &Mixture, agree: Agree<'_>) -> Result<(), GmmError> {
        let _ = (mixture, agree);
        Ok(())
    }

    /// Switches to exact arithmetic for the rest of the fit, because of `why` (logged and
    /// recorded); returns whether it did.
    fn escalate(&mut self, why: String) -> bool {
        self.escalate_agreed(why, &mut |_| {})
    }

    /// [`Backend::escalate`] in two steps, so that ranks escalate all or none: each says whether
    /// it can (1 where it cannot) through `agree`, which gives the largest over the ranks, and
    /// switches only where none objects. `agree` is called once where [`Backend::escalation_floor`]
    /// is `Some`, and never otherwise.
    fn escalate_agreed(&mut self, why: String, agree: Agree<'_>) -> bool {
        let _ = (why, agree);
        false
    }

    /// Makes every rank's exact arithmetic the same (a distributed fit over devices that differ:
    /// two-float wherever any rank's device would run two-float), through `agree` as above. Called
    /// once per initialisation by a distributed backend, before [`Backend::begin_init`].
    fn agree_arithmetic(&mut self, agree: Agree<'_>) -> Result<(), GmmError> {
        let _ = agree;
        Ok(())
    }

    /// A number that names the arithmetic the next E-step runs, component by component (0 where
    /// it never changes): the ranks of a distributed fit check before each pass that theirs are
    /// equal, so that a disagreement stops them with an error instead of diverging.
    fn arithmetic_code(&self) -> u32 {
        0
    }
}

/// How a backend's decision from its own share of the data becomes every rank's: replaces each
/// value with its largest over the ranks of a distributed fit (in one process, leaves them as
/// they are).
pub(crate) type Agree<'a> = &'a mut dyn FnMut(&mut [f64]);

/// What [`Backend::per_sample_outputs`] computes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Output {
    Proba,
    LogProb,
    Labels,
}

/// Which backend ran a fit, recorded on the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FitInfo {
    pub backend: &'static str,
    pub adapter: Option<String>,
    pub traffic: Option<Traffic>,
    /// Why `Auto` fell back to the CPU, if it did.
    pub fallback: Option<String>,
    /// The GPU's arithmetic, and its switches.
    pub precision: Option<crate::gpu::PrecisionRecord>,
}

/// What one GPU pass over the data cost in commands and bus traffic (the last EM iteration's).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Compute dispatches.
    pub dispatches: u32,
    /// Bytes written to the device (parameters and uniforms).
    pub bytes_uploaded: u64,
    /// Bytes read back from the device (the statistics).
    pub bytes_read_back: u64,
    /// Of `bytes_uploaded`, the samples streamed in the pass (0 when they are resident).
    pub bytes_streamed: u64,
    /// Host time spent converting and writing the streamed chunks, which overlaps the device's
    /// work on the previous chunk (zero when resident).
    pub stream_fill: std::time::Duration,
    /// Host time spent waiting for a staging buffer the device was still reading: the part of the
    /// streaming the overlap did not hide from the device's side (zero when resident).
    pub stream_wait: std::time::Duration,
}

/// A uniform number in (0, 1] for (seed, sample, component), with 24 random bits so that it is exact
/// in f32: nested lowbias32 hashes of the words, exactly as `random` in shaders/estep.wgsl.
#[inline]
pub(crate) fn hash_uniform(seed: u64, sample: u64, component: u64) -> f64 {
    let (seed_lo, seed_hi) = (seed as u32, (seed >> 32) as u32);
    let (lo, hi) = (sample as u32, (sample >> 32) as u32);
    let h = mix32(seed_lo ^ mix32(seed_hi ^ mix32(lo ^ mix32(hi ^ mix32(component as u32)))));
    f64::from((h >> 8) + 1) * (1.0 / 16_777_216.0)
}

/// lowbias32 (Chris Wellons' integer hash).
#[inline]
pub(crate) fn mix32(v: u32) -> u32 {
    let mut h = v;
    h ^= h >> 16;
    h = h.wrapping_mul(0x7feb_352d);
    h ^= h >> 15;
    h = h.wrapping_mul(0x846c_a68b);
    h ^= h >> 16;
    h
}
