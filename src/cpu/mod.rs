//! The float64 CPU backend: the reference path every other backend is checked against.
//!
//! The samples are split into a fixed set of contiguous tasks (a function of N and the statistics'
//! size only, never of the thread count); rayon runs the tasks, each accumulates in f64 into its own
//! partial in blocks, and the partials are combined by a pairwise tree in a fixed order. So the
//! statistics are bitwise identical however many threads run.

// Lane loops index by lane on purpose: `for l in 0..W` over several arrays is what vectorises.
#![allow(clippy::needless_range_loop)]

pub mod bench;
pub(crate) mod block;
pub(crate) mod estep;
mod infer;
pub(crate) mod lanes;
pub(crate) mod reduce;

use rayon::prelude::*;

use crate::backend::{Backend, FitInfo, Output, hash_uniform};
use crate::data::{DataView, Element, Samples};
use crate::error::GmmError;
use crate::kinds::CovarianceType;
use crate::mixture::Mixture;
use crate::stats::{SuffStats, tree_combine};
use block::{BLOCK, Block, CHUNKS, Packed};
use lanes::W;

/// The fewest samples worth a task of their own.
const MIN_TASK: usize = 2048;
/// At most this many tasks.
const MAX_TASKS: usize = 64;
/// At most this many f64 values in all tasks' partials and scratch together.
const MAX_PARTIAL_VALUES: usize = 1 << 24;

/// One task's slice of the samples and its preallocated scratch.
struct Task {
    start: usize,
    end: usize,
    /// The task's running sum.
    stats: SuffStats,
    /// The current block, in the kernels' layouts.
    block: Block,
}

/// The CPU backend over a borrowed data set.
pub(crate) struct CpuBackend<'a> {
    data: DataView<'a>,
    sample_weight: Option<&'a [f64]>,
    tasks: Vec<Task>,
    /// Samples per task (a whole number of blocks); the last task may hold fewer.
    chunk: usize,
    /// The current pass's parameters, padded for the kernels.
    packed: Packed,
    /// The global index of the first sample (non-zero for one rank's share of a distributed fit):
    /// 'random' initialisation hashes global indices.
    offset: usize,
}

impl<'a> CpuBackend<'a> {
    /// What a CPU fit records of its backend.
    pub(crate) const INFO: FitInfo = FitInfo {
        backend: "cpu",
        adapter: None,
        traffic: None,
        fallback: None,
        precision: None,
    };

    pub fn new(data: DataView<'a>, sample_weight: Option<&'a [f64]>) -> Self {
        Self {
            data,
            sample_weight,
            tasks: Vec::new(),
            chunk: 0,
            packed: Packed::default(),
            offset: 0,
        }
    }

    /// The same backend for samples that start at global index `offset`.
    pub fn with_offset(self, offset: usize) -> Self {
        Self { offset, ..self }
    }

    /// Makes the tasks' partials and scratch match the statistics' shape; allocates only when the
    /// shape changes (so never inside the EM loop after its first pass). The tasks depend on N and
    /// the shape only, never on the thread count.
    fn prepare(&mut self, kind: CovarianceType, k: usize, d: usize) {
        if self.tasks.first().is_some_and(|t| t.stats.has_shape(kind, k, d)) {
            return;
        }
        let n = self.data.n_samples();
        // Two partials (the task's sum and the combine) and one block of scratch per task.
        let dense = matches!(kind, CovarianceType::Full | CovarianceType::Tied);
        let per_task = 2 * (k + k * d + k * SuffStats::s2_len(kind, d)) + Block::values(k, d, dense);
        let max_by_memory = (MAX_PARTIAL_VALUES / per_task.max(1)).max(1);
        let n_tasks = n.div_ceil(MIN_TASK).clamp(1, MAX_TASKS.min(max_by_memory));
        // Whole blocks per task, so that only the very last block is short.
        self.chunk = n.div_ceil(n_tasks).div_ceil(BLOCK) * BLOCK;
        let chunk = self.chunk;
        self.tasks = (0..n_tasks)
            .map(|t| Task {
                start: (t * chunk).min(n),
                end: ((t + 1) * chunk).min(n),
                stats: SuffStats::new(kind, k, d),
                block: Block::new(k, d, dense),
            })
            .collect();
    }

    /// Runs one pass: `rule` fills each block's responsibilities and scores; the block is then
    /// accumulated around `centres`. The result lands in `out`.
    fn pass<R: Rule>(&mut self, mixture: Option<&Mixture>, centres: &[f64], out: &mut SuffStats, rule: &R) {
        let (k, d) = (out.n_components, out.n_features);
        self.prepare(out.kind, k, d);
        self.packed.fill(mixture, centres, k, d);
        let data = self.data;
        let (weights, packed) = (self.sample_weight, &self.packed);
        match data.samples() {
            Samples::F32(s) => run_tasks(s, weights, packed, &mut self.tasks, rule),
            Samples::F64(s) => run_tasks(s, weights, packed, &mut self.tasks, rule),
        }
        tree_combine(&mut self.tasks, |t| &mut t.stats);
        out.copy_from(&self.tasks[0].stats);
    }
}

/// How one pass turns a block of samples into responsibilities.
pub(crate) trait Rule: Sync {
    /// Fills `b.resp` with w·responsibilities (K x CHUNKS lanes) and `b.score` with w·score for the
    /// loaded block, whose first sample is `first`.
    fn responsibilities(&self, p: &Packed, first: usize, b: &mut Block);
}

/// EM: the posterior responsibilities; the score is log p(x).
pub(crate) struct Posterior;

impl Rule for Posterior {
    #[inline(always)]
    fn responsibilities(&self, p: &Packed, _first: usize, b: &mut Block) {
        estep::log_densities(p, b);
        estep::normalise(p.k, b);
    }
}

/// k-means: all of the sample to its nearest centroid (the lowest index on ties); the score is the
/// squared distance.
pub(crate) struct Nearest;

impl Rule for Nearest {
    #[inline(always)]
    fn responsibilities(&self, p: &Packed, _first: usize, b: &mut Block) {
        let dp = p.dp;
        for ch in 0..b.chunks {
            let (mut best, mut at) = ([f64::INFINITY; W], [0usize; W]);
            for k in 0..p.k {
                let c = &p.centres[k * dp..(k + 1) * dp];
                let mut dist = [0.0; W];
                for (j, &cj) in c.iter().enumerate() {
                    let x = &b.xt[j * CHUNKS + ch].0;
                    for l in 0..W {
                        let z = x[l] - cj;
                        dist[l] = z.mul_add(z, dist[l]);
                    }
                }
                for l in 0..W {
                    if dist[l] < best[l] {
                        (best[l], at[l]) = (dist[l], k);
                    }
                }
            }
            let w = &b.w[ch].0;
            for k in 0..p.k {
                let r = &mut b.resp[k * CHUNKS + ch].0;
                for l in 0..W {
                    r[l] = if at[l] == k { w[l] } else { 0.0 };
                }
            }
            for l in 0..W {
                b.score[ch].0[l] = if w[l] == 0.0 { 0.0 } else { w[l] * best[l] };
            }
        }
    }
}

/// scikit-learn's 'random' init: uniform responsibilities normalised per sample; the score is 0.
pub(crate) struct RandomResp {
    pub seed: u64,
    /// The global index of the backend's first sample.
    pub offset: usize,
}

impl Rule for RandomResp {
    #[inline(always)]
    fn responsibilities(&self, p: &Packed, first: usize, b: &mut Block) {
        b.score[..b.chunks].fill(lanes::L::ZERO);
        for i in 0..b.chunks * W {
            let (ch, l) = (i / W, i % W);
            let w = b.w[ch].0[l];
            let total: f64 = (0..p.k)
                .map(|k| hash_uniform(self.seed, (self.offset + first + i) as u64, k as u64))
                .sum();
            for k in 0..p.k {
                let r = hash_uniform(self.seed, (self.offset + first + i) as u64, k as u64) / total;
                b.resp[k * CHUNKS + ch].0[l] = if w == 0.0 { 0.0 } else { w * r };
            }
        }
    }
}

/// Each task walks its samples in blocks, in order; see the module comment for why the order is fixed.
fn run_tasks<T: Element, R: Rule>(rows: &[T], weights: Option<&[f64]>, p: &Packed, tasks: &mut [Task], rule: &R) {
    tasks.par_iter_mut().for_each(|task| {
        let Task {
            start,
            end,
            stats,
            block,
        } = task;
        stats.clear();
        block.moments.fill(0.0);
        for first in (*start..*end).step_by(BLOCK) {
            let n = BLOCK.min(*end - first);
            block.load(rows, p.d, weights, first, n);
            rule.responsibilities(p, first, block);
            let (mut score, mut weight) = (0.0, 0.0);
            for i in 0..n {
                score += block.score[i / W].0[i % W];
                weight += block.w[i / W].0[i % W];
            }
            stats.score_sum += score;
            stats.weight_sum += weight;
            reduce::accumulate_block(p, block, stats);
        }
        reduce::fold_moments(p, block, stats);
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
        Self::INFO
    }

    fn per_sample_outputs(&mut self, mixture: &Mixture, output: Output, out: &mut [f64]) -> Result<(), GmmError> {
        let (k, d) = (mixture.n_components, mixture.n_features);
        self.prepare(mixture.cov_type, k, d);
        self.packed.fill(Some(mixture), &mixture.means, k, d);
        let per = if output == Output::Proba { k } else { 1 };
        let (p, chunk) = (&self.packed, self.chunk);
        fn go<T: Element>(rows: &[T], p: &Packed, tasks: &mut [Task], output: Output, out: &mut [f64], span: usize) {
            tasks
                .par_iter_mut()
                .zip(out.par_chunks_mut(span))
                .for_each(|(task, out)| infer::task_outputs(rows, p, task, output, out));
        }
        match self.data.samples() {
            // (max(1): no samples make empty tasks, and chunks must not be empty.)
            Samples::F32(x) => go(x, p, &mut self.tasks, output, out, (chunk * per).max(1)),
            Samples::F64(x) => go(x, p, &mut self.tasks, output, out, (chunk * per).max(1)),
        }
        Ok(())
    }

    fn em_statistics(&mut self, mixture: &Mixture, centres: &[f64], stats: &mut SuffStats) -> Result<(), GmmError> {
        self.pass(Some(mixture), centres, stats, &Posterior);
        Ok(())
    }

    fn label_statistics(&mut self, centroids: &[f64], stats: &mut SuffStats) -> Result<(), GmmError> {
        self.pass(None, centroids, stats, &Nearest);
        Ok(())
    }

    fn random_statistics(&mut self, seed: u64, centres: &[f64], stats: &mut SuffStats) -> Result<(), GmmError> {
        let rule = RandomResp {
            seed,
            offset: self.offset,
        };
        self.pass(None, centres, stats, &rule);
        Ok(())
    }
}

/// Random data and mixtures for the kernel tests.
#[cfg(test)]
pub(crate) mod test_util {
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    use crate::kinds::CovarianceType;
    use crate::mixture::Mixture;

    /// n x d samples, uniform in [−4, 4) and seeded.
    pub fn data(n: usize, d: usize, seed: u64) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n * d).map(|_| rng.random::<f64>() * 8.0 - 4.0).collect()
    }

    /// A seeded K-component mixture of the given type with well-conditioned covariances
    /// (A·Aᵀ + I for full and tied), factored by the crate's own code.
    pub fn mixture(cov_type: CovarianceType, k: usize, d: usize, seed: u64) -> Mixture {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut m = Mixture::zeros(cov_type, k, d);
        m.weights = (0..k).map(|j| (j + 1) as f64).collect();
        let total: f64 = m.weights.iter().sum();
        m.weights.iter_mut().for_each(|w| *w /= total);
        m.means = (0..k * d).map(|_| rng.random::<f64>() * 6.0 - 3.0).collect();
        let mut spd = |c: &mut [f64]| {
            let a: Vec<f64> = (0..d * d).map(|_| rng.random::<f64>() - 0.5).collect();
            for i in 0..d {
                for j in 0..d {
                    let dot: f64 = (0..d).map(|t| a[i * d + t] * a[j * d + t]).sum();
                    c[i * d + j] = dot + if i == j { 1.0 } else { 0.0 };
                }
            }
        };
        match cov_type {
            CovarianceType::Full | CovarianceType::Tied => m.covariances.chunks_exact_mut(d * d).for_each(&mut spd),
            _ => m.covariances.iter_mut().for_each(|c| *c = 0.5 + rng.random::<f64>()),
        }
        m.set_precisions_from_covariances(&mut vec![0.0; d * d]).unwrap();
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::DataView;

    /// EM statistics of `x` under `m` on a pool of `threads` threads.
    fn statistics(x: &[f64], w: &[f64], m: &Mixture, threads: usize) -> SuffStats {
        let view = DataView::from_f64(x, m.n_features).unwrap();
        let mut stats = SuffStats::new(m.cov_type, m.n_components, m.n_features);
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            CpuBackend::new(view, Some(w))
                .em_statistics(m, &m.means, &mut stats)
                .unwrap()
        });
        stats
    }

    #[test]
    fn statistics_are_bitwise_identical_for_any_thread_count() {
        // 2048·5 + 77 samples: several tasks, and a last block that is not a whole block.
        let (n, d, k) = (5 * MIN_TASK + 77, 5, 3);
        let x = test_util::data(n, d, 1);
        let w: Vec<f64> = (0..n).map(|i| (i % 4) as f64 * 0.5).collect();
        for cov in CovarianceType::ALL {
            let m = test_util::mixture(cov, k, d, 2);
            let one = statistics(&x, &w, &m, 1);
            for threads in [2, 3, 8] {
                let many = statistics(&x, &w, &m, threads);
                let same = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(p, q)| p.to_bits() == q.to_bits());
                assert!(
                    same(&one.s0, &many.s0) && same(&one.s1, &many.s1) && same(&one.s2, &many.s2),
                    "{cov}: {threads} threads differ from 1"
                );
                assert_eq!(one.score_sum.to_bits(), many.score_sum.to_bits(), "{cov} score");
                assert_eq!(one.weight_sum.to_bits(), many.weight_sum.to_bits(), "{cov} weight");
            }
            // And against the one-sample formulas, summed in plain order (an independent route).
            let mut want = SuffStats::new(cov, k, d);
            let (mut lp, mut z) = (vec![0.0; k], vec![0.0; d]);
            for (i, xi) in x.chunks_exact(d).enumerate() {
                if w[i] == 0.0 {
                    continue;
                }
                estep::logprob(xi, &m, &mut z, &mut lp);
                want.score_sum += w[i] * estep::normalise_row(&mut lp);
                want.weight_sum += w[i];
                reduce::accumulate(xi, w[i], &lp, &m.means, &mut z, &mut want);
            }
            // Sums of ~10⁴ terms of size <= 10² in two orders: 1e-9 relative holds with room.
            let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
            for (name, got, want) in [
                ("s0", &one.s0, &want.s0),
                ("s1", &one.s1, &want.s1),
                ("s2", &one.s2, &want.s2),
            ] {
                let bad = got.iter().zip(want.iter()).position(|(a, b)| !close(*a, *b));
                assert!(bad.is_none(), "{cov} {name}[{bad:?}]: {got:?} vs {want:?}");
            }
            assert!(
                close(one.score_sum, want.score_sum),
                "{cov} score {} vs {}",
                one.score_sum,
                want.score_sum
            );
        }
    }
}
