//! The float64 CPU backend: the reference path every other backend is checked against.
//!
//! The samples are split into a fixed set of contiguous tasks (a function of N and the statistics'
//! size only, never of the thread count); rayon runs the tasks, each accumulates in f64 into its own
//! partial in blocks, and the partials are combined by a pairwise tree in a fixed order. So the
//! statistics are bitwise identical however many threads run.

pub(crate) mod estep;
pub(crate) mod reduce;

use rayon::prelude::*;

use crate::backend::{Backend, FitInfo, Output, hash_uniform};
use crate::data::{DataView, Element, Samples};
use crate::error::GmmError;
use crate::mixture::Mixture;
use crate::stats::{SuffStats, tree_combine};

/// Samples summed into a block partial before it is added to the task partial (a two-level sum).
const BLOCK: usize = 256;
/// The fewest samples worth a task of their own.
const MIN_TASK: usize = 2048;
/// At most this many tasks.
const MAX_TASKS: usize = 64;
/// At most this many f64 values in all tasks' partials together.
const MAX_PARTIAL_VALUES: usize = 1 << 24;

/// One task's slice of the samples and its preallocated scratch.
struct Task {
    start: usize,
    end: usize,
    /// The task's running sum.
    stats: SuffStats,
    /// The current block's sum.
    block: SuffStats,
    /// Per-component log-densities, then responsibilities, of one sample.
    resp: Vec<f64>,
    /// d values of scratch.
    scratch: Vec<f64>,
}

/// The CPU backend over a borrowed data set.
pub(crate) struct CpuBackend<'a> {
    data: DataView<'a>,
    sample_weight: Option<&'a [f64]>,
    tasks: Vec<Task>,
}

impl<'a> CpuBackend<'a> {
    pub fn new(data: DataView<'a>, sample_weight: Option<&'a [f64]>) -> Self {
        Self {
            data,
            sample_weight,
            tasks: Vec::new(),
        }
    }

    /// Makes the tasks' partials match `like`'s shape; allocates only when the shape changes
    /// (so never inside the EM loop after its first pass).
    fn prepare(&mut self, like: &SuffStats) {
        let ok = self
            .tasks
            .first()
            .is_some_and(|t| t.stats.has_shape(like.kind, like.n_components, like.n_features));
        if ok {
            return;
        }
        let n = self.data.n_samples();
        let d = self.data.n_features();
        let per_task = like.s0.len() + like.s1.len() + like.s2.len();
        let max_by_memory = (MAX_PARTIAL_VALUES / (2 * per_task).max(1)).max(1);
        let n_tasks = n.div_ceil(MIN_TASK).clamp(1, MAX_TASKS.min(max_by_memory));
        let chunk = n.div_ceil(n_tasks);
        self.tasks = (0..n_tasks)
            .map(|t| Task {
                start: (t * chunk).min(n),
                end: ((t + 1) * chunk).min(n),
                stats: SuffStats::new(like.kind, like.n_components, like.n_features),
                block: SuffStats::new(like.kind, like.n_components, like.n_features),
                resp: vec![0.0; like.n_components],
                scratch: vec![0.0; d],
            })
            .collect();
    }

    /// Runs one pass: `rule` fills each sample's responsibilities and returns its score; the sample is
    /// then accumulated around `centres`. The result lands in `out`.
    fn pass<R: Rule>(&mut self, centres: &[f64], out: &mut SuffStats, rule: &R) {
        self.prepare(out);
        let data = self.data;
        let weights = self.sample_weight;
        match data.samples() {
            Samples::F32(s) => run_tasks(s, data.n_features(), weights, centres, &mut self.tasks, rule),
            Samples::F64(s) => run_tasks(s, data.n_features(), weights, centres, &mut self.tasks, rule),
        }
        tree_combine(&mut self.tasks, |t| &mut t.stats);
        out.copy_from(&self.tasks[0].stats);
    }
}

/// How one pass turns a sample into responsibilities.
pub(crate) trait Rule: Sync {
    /// Fills `resp` (K values) for sample `i` with features `x`, and returns the sample's score.
    /// `scratch` holds d values.
    fn apply<T: Element>(&self, i: usize, x: &[T], resp: &mut [f64], scratch: &mut [f64]) -> f64;
}

/// EM: the posterior responsibilities; the score is log p(x).
pub(crate) struct Posterior<'m>(pub &'m Mixture);

impl Rule for Posterior<'_> {
    #[inline]
    fn apply<T: Element>(&self, _i: usize, x: &[T], resp: &mut [f64], scratch: &mut [f64]) -> f64 {
        estep::logprob(x, self.0, scratch, resp);
        estep::normalise(resp)
    }
}

/// k-means: all of the sample to its nearest centroid (the lowest index on ties); the score is the
/// squared distance.
pub(crate) struct Nearest<'c> {
    pub centroids: &'c [f64],
}

impl Rule for Nearest<'_> {
    #[inline]
    fn apply<T: Element>(&self, _i: usize, x: &[T], resp: &mut [f64], _scratch: &mut [f64]) -> f64 {
        let d = x.len();
        let (best, dist) = nearest(x, self.centroids, d);
        resp.fill(0.0);
        resp[best] = 1.0;
        dist
    }
}

/// The nearest of the row-major centroids to x, and the squared distance to it.
#[inline]
pub(crate) fn nearest<T: Element>(x: &[T], centroids: &[f64], d: usize) -> (usize, f64) {
    let mut best = (0, f64::INFINITY);
    for (k, c) in centroids.chunks_exact(d).enumerate() {
        let dist: f64 = x.iter().zip(c).map(|(&xi, ci)| (xi.to_f64() - ci).powi(2)).sum();
        if dist < best.1 {
            best = (k, dist);
        }
    }
    best
}

/// scikit-learn's 'random' init: uniform responsibilities normalised per sample; the score is 0.
pub(crate) struct RandomResp {
    pub seed: u64,
}

impl Rule for RandomResp {
    #[inline]
    fn apply<T: Element>(&self, i: usize, _x: &[T], resp: &mut [f64], _scratch: &mut [f64]) -> f64 {
        for (k, r) in resp.iter_mut().enumerate() {
            *r = hash_uniform(self.seed, i as u64, k as u64);
        }
        let total: f64 = resp.iter().sum();
        resp.iter_mut().for_each(|r| *r /= total);
        0.0
    }
}

/// Each task walks its samples in blocks; see the module comment for why the order is fixed.
fn run_tasks<T: Element, R: Rule>(
    rows: &[T],
    d: usize,
    weights: Option<&[f64]>,
    centres: &[f64],
    tasks: &mut [Task],
    rule: &R,
) {
    tasks.par_iter_mut().for_each(|task| {
        let Task {
            start,
            end,
            stats,
            block,
            resp,
            scratch,
        } = task;
        stats.clear();
        for block_start in (*start..*end).step_by(BLOCK) {
            block.clear();
            for i in block_start..(block_start + BLOCK).min(*end) {
                let w = weights.map_or(1.0, |w| w[i]);
                if w == 0.0 {
                    continue; // a zero-weight sample contributes nothing, not even its log-density
                }
                let x = &rows[i * d..(i + 1) * d];
                let score = rule.apply(i, x, resp, scratch);
                block.score_sum += w * score;
                block.weight_sum += w;
                reduce::accumulate(x, w, resp, centres, scratch, block);
            }
            stats.add(block);
        }
    });
}

impl Backend for CpuBackend<'_> {
    fn n_samples(&self) -> usize {
        self.data.n_samples()
    }

    fn n_features(&self) -> usize {
        self.data.n_features()
    }

    fn gather_rows(&mut self, rows: &[usize], out: &mut [f64]) -> Result<(), GmmError> {
        for (&i, o) in rows.iter().zip(out.chunks_exact_mut(self.data.n_features())) {
            self.data.row_into(i, o);
        }
        Ok(())
    }

    fn info(&self) -> FitInfo {
        FitInfo {
            backend: "cpu",
            adapter: None,
            traffic: None,
            fallback: None,
        }
    }

    fn per_sample_outputs(&mut self, mixture: &Mixture, output: Output, out: &mut [f64]) -> Result<(), GmmError> {
        fn go<T: Element>(rows: &[T], m: &Mixture, output: Output, out: &mut [f64]) {
            let (k, d) = (m.n_components, m.n_features);
            let per = if output == Output::Proba { k } else { 1 };
            out.par_chunks_mut(per).enumerate().for_each_init(
                || (vec![0.0; k], vec![0.0; d]),
                |(lp, diff), (i, o)| {
                    estep::logprob(&rows[i * d..(i + 1) * d], m, diff, lp);
                    match output {
                        Output::Proba => {
                            estep::normalise(lp);
                            o.copy_from_slice(lp);
                        }
                        Output::LogProb => o[0] = estep::normalise(lp),
                        // The first maximum, as scikit-learn's argmax.
                        Output::Labels => {
                            o[0] = lp
                                .iter()
                                .enumerate()
                                .fold(0, |b, (j, &v)| if v > lp[b] { j } else { b })
                                as f64
                        }
                    }
                },
            );
        }
        match self.data.samples() {
            Samples::F32(x) => go(x, mixture, output, out),
            Samples::F64(x) => go(x, mixture, output, out),
        }
        Ok(())
    }

    fn em_statistics(&mut self, mixture: &Mixture, centres: &[f64], stats: &mut SuffStats) -> Result<(), GmmError> {
        self.pass(centres, stats, &Posterior(mixture));
        Ok(())
    }

    fn label_statistics(&mut self, centroids: &[f64], stats: &mut SuffStats) -> Result<(), GmmError> {
        self.pass(centroids, stats, &Nearest { centroids });
        Ok(())
    }

    fn random_statistics(&mut self, seed: u64, centres: &[f64], stats: &mut SuffStats) -> Result<(), GmmError> {
        self.pass(centres, stats, &RandomResp { seed });
        Ok(())
    }
}
