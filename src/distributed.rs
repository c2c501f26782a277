//! Fits over data split across ranks (MPI processes, or threads): each rank's backend sums its own
//! contiguous rows, and a fixed binomial tree combines the statistics, so that every rank runs the
//! same M-step on bitwise the same sums and they stay in lockstep.
//!
//! **Determinism.** Rank r receives the partial of rank r + 2ʲ at level j (j = 0, 1, …, in order)
//! and adds it to its own, then sends its sum to rank r − 2ʲ at the first level where bit j of r is
//! set; rank 0's total comes back down the same tree. The order of every addition depends on the
//! number of ranks P only, so for a fixed P reruns are bitwise identical, whatever the network does.
//! MPI's own `MPI_Allreduce` makes no such promise (its algorithm may change with message size or
//! library version).
//!
//! **Communication.** Each rank sends and receives at most ⌈log₂ P⌉ + 1 messages of the statistics'
//! size, O(K·d²) each: O(K·d²·log P) per rank per iteration, never O(P·K·d²).
//!
//! **Lockstep.** Every decision after a combine (the M-step, convergence, the best initialisation)
//! is made on every rank from the same numbers, so every rank reaches every combine. A failure on one
//! rank's own data (a NaN, found before the fit by [`first_bad_value`]) is shared first, so that all
//! ranks stop with the same error naming the global row.

use std::sync::Mutex;
use std::sync::mpsc::{Receiver, Sender, channel};

use crate::backend::{Backend, FitInfo, Output};
use crate::error::GmmError;
use crate::given::GivenStart;
use crate::mixture::Mixture;
use crate::stats::SuffStats;

/// The point-to-point messages a distributed fit needs; an MPI communicator in the `gmm` command
/// (feature `mpi`), or threads in tests. Messages between two ranks arrive in the order sent.
pub trait Communicator {
    /// This rank, in 0..size.
    fn rank(&self) -> usize;
    /// The number of ranks.
    fn size(&self) -> usize;
    /// Sends `values` to rank `to` (blocking until the buffer may be reused).
    fn send(&self, to: usize, values: &[f64]);
    /// Receives exactly `values.len()` values from rank `from`.
    fn receive(&self, from: usize, values: &mut [f64]);
}

/// Combines `values` over all ranks with `combine(acc, other)` in the fixed binomial tree described
/// in the module comment; every rank ends with rank 0's result. `scratch` holds `values.len()`.
pub fn tree_allreduce(
    comm: &dyn Communicator,
    values: &mut [f64],
    scratch: &mut [f64],
    combine: impl Fn(&mut [f64], &[f64]),
) {
    let (r, p) = (comm.rank(), comm.size());
    let scratch = &mut scratch[..values.len()];
    // Up the tree.
    let mut step = 1;
    while step < p {
        if r % (2 * step) == step {
            comm.send(r - step, values);
            break;
        }
        if r + step < p {
            comm.receive(r + step, scratch);
            combine(values, scratch);
        }
        step *= 2;
    }
    // Down the tree, from the top level: a rank receives at its lowest set bit, then forwards.
    let mut top = 1;
    while top < p {
        top *= 2;
    }
    let mut step = top / 2;
    while step >= 1 {
        if r % (2 * step) == step {
            comm.receive(r - step, values);
        } else if r % (2 * step) == 0 && r + step < p {
            comm.send(r + step, values);
        }
        step /= 2;
    }
}

/// `local`, once every rank has said whether its own step succeeded: the lowest failing rank keeps
/// its error, the others get [`GmmError::PeerFailed`] naming it, and all stop together.
pub fn agree<T>(comm: &dyn Communicator, local: Result<T, GmmError>) -> Result<T, GmmError> {
    agree_with(comm, local, |rank| GmmError::PeerFailed { rank })
}

/// [`agree`] for any error type: the ranks that did not fail first get `peer(lowest failing rank)`.
pub fn agree_with<T, E>(comm: &dyn Communicator, local: Result<T, E>, peer: impl FnOnce(usize) -> E) -> Result<T, E> {
    let me = comm.rank() as f64;
    let mut lowest = [if local.is_ok() { f64::INFINITY } else { me }];
    tree_allreduce(comm, &mut lowest, &mut [0.0], |a, b| a[0] = a[0].min(b[0]));
    match local {
        Ok(v) if lowest[0].is_infinite() => Ok(v),
        Err(e) if lowest[0] == me => Err(e),
        _ => Err(peer(lowest[0] as usize)),
    }
}

/// Elementwise sum, for [`tree_allreduce`].
pub fn add(acc: &mut [f64], other: &[f64]) {
    acc.iter_mut().zip(other).for_each(|(a, b)| *a += b);
}

/// Elementwise maximum, for [`tree_allreduce`] (a NaN loses to any number: give ∞ instead).
pub fn max(acc: &mut [f64], other: &[f64]) {
    acc.iter_mut().zip(other).for_each(|(a, b)| *a = a.max(*b));
}

/// The first non-finite value on any rank, as (global row, column, value), shared by all ranks,
/// from each rank's own first one (its row a global index), if any.
pub fn first_bad_value(comm: &dyn Communicator, local: Option<(usize, usize, f64)>) -> Option<(usize, usize, f64)> {
    let mut v = local.map_or([f64::INFINITY, 0.0, 0.0], |(row, column, value)| {
        [row as f64, column as f64, value]
    });
    tree_allreduce(comm, &mut v, &mut [0.0; 3], |a, b| {
        if b[0] < a[0] {
            a.copy_from_slice(b);
        }
    });
    v[0].is_finite().then_some((v[0] as usize, v[1] as usize, v[2]))
}

/// One rank's rows of a data set split across ranks, for [`crate::GmmParams::fit_distributed`].
#[derive(Clone, Copy, Debug)]
pub struct RankData<'a> {
    /// This rank's samples, row-major, not yet checked for NaN or infinity.
    pub samples: crate::Samples<'a>,
    pub n_features: usize,
    /// The global index of the first of them.
    pub first_row: usize,
    /// The rows of the whole data set, over all ranks.
    pub n_total: usize,
    /// These rows' sample weights, for a weighted-likelihood fit: one per row, checked as
    /// [`crate::SampleWeights`] checks them (an error naming the global row). Every rank gives
    /// its rows' weights, or none does.
    pub sample_weight: Option<&'a [f64]>,
}

/// The rows rank `rank` of `size` owns out of `n`: a contiguous range, the first n mod P ranks one
/// row longer.
pub fn rows_of(rank: usize, size: usize, n: usize) -> std::ops::Range<usize> {
    let (base, extra) = (n / size, n % size);
    let start = rank * base + rank.min(extra);
    start..start + base + usize::from(rank < extra)
}

/// A backend over one rank's rows that presents the whole data set: its statistics are the sums
/// over all ranks, and the rows it gathers are fetched from whichever rank owns them.
pub(crate) struct DistributedBackend<'c, B: Backend> {
    pub local: B,
    comm: &'c dyn Communicator,
    /// The first global row this rank owns.
    offset: usize,
    n_total: usize,
    /// Flattened statistics and their combine scratch, sized on first use.
    flat: Vec<f64>,
    scratch: Vec<f64>,
}

/// The agreement a distributed backend hands its rank's backend: each value becomes its largest
/// over the ranks.
fn agree_max<'s>(comm: &'s dyn Communicator, scratch: &'s mut Vec<f64>) -> impl FnMut(&mut [f64]) + 's {
    move |values: &mut [f64]| {
        scratch.resize(values.len(), 0.0);
        tree_allreduce(comm, values, scratch, max);
    }
}

impl<'c, B: Backend> DistributedBackend<'c, B> {
    pub fn new(local: B, comm: &'c dyn Communicator, offset: usize, n_total: usize) -> Self {
        Self {
            local,
            comm,
            offset,
            n_total,
            flat: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// Shares whether every rank's local step succeeded, so that no rank waits in a combine for one
    /// that has stopped: the lowest failing rank keeps its own error, the others get
    /// [`GmmError::PeerFailed`] naming it.
    fn agree<T>(&self, local: Result<T, GmmError>) -> Result<T, GmmError> {
        agree(self.comm, local)
    }

    /// Replaces `stats` with their sum over all ranks.
    fn combine(&mut self, stats: &mut SuffStats) {
        stats.flatten_into(&mut self.flat);
        self.scratch.resize(self.flat.len(), 0.0);
        tree_allreduce(self.comm, &mut self.flat, &mut self.scratch, add);
        stats.unflatten_from(&self.flat);
    }

    /// Checks that every rank holds the same arithmetic (the ranks' largest code equals the
    /// negation of the largest negated one), before anything whose collectives depend on it: a
    /// disagreement stops every rank with the same error, where it would leave one waiting.
    fn check_in_step(&mut self) -> Result<(), GmmError> {
        let code = f64::from(self.local.arithmetic_code());
        let mut codes = [code, -code];
        tree_allreduce(self.comm, &mut codes, &mut [0.0; 2], max);
        if codes[0] != -codes[1] {
            return Err(GmmError::RanksOutOfStep);
        }
        Ok(())
    }
}

impl<B: Backend> Backend for DistributedBackend<'_, B> {
    fn n_samples(&self) -> usize {
        self.n_total
    }

    fn n_features(&self) -> usize {
        self.local.n_features()
    }

    fn gather_rows(&mut self, rows: &[usize], out: &mut [f64]) -> Result<(), GmmError> {
        // Each rank fills the rows it owns and zeros elsewhere; the sum is exact (x + 0 + … = x).
        let d = self.n_features();
        let mine = self.offset..self.offset + self.local.n_samples();
        let (local_rows, at): (Vec<usize>, Vec<usize>) = rows
            .iter()
            .enumerate()
            .filter(|(_, r)| mine.contains(r))
            .map(|(i, r)| (r - self.offset, i))
            .unzip();
        let mut own = vec![0.0; local_rows.len() * d];
        let gathered = self.local.gather_rows(&local_rows, &mut own);
        self.agree(gathered)?;
        out.fill(0.0);
        for (o, &i) in own.chunks_exact(d).zip(&at) {
            out[i * d..(i + 1) * d].copy_from_slice(o);
        }
        let mut scratch = vec![0.0; out.len()];
        tree_allreduce(self.comm, out, &mut scratch, add);
        Ok(())
    }

    fn em_statistics(&mut self, mixture: &Mixture, centres: &[f64], stats: &mut SuffStats) -> Result<(), GmmError> {
        let local = self.local.em_statistics(mixture, centres, stats);
        self.agree(local)?;
        self.combine(stats);
        Ok(())
    }

    fn label_statistics(&mut self, centroids: &[f64], stats: &mut SuffStats) -> Result<(), GmmError> {
        let local = self.local.label_statistics(centroids, stats);
        self.agree(local)?;
        self.combine(stats);
        Ok(())
    }

    fn random_statistics(&mut self, seed: u64, centres: &[f64], stats: &mut SuffStats) -> Result<(), GmmError> {
        // The local backend hashes global row indices (it was made with this rank's offset).
        let local = self.local.random_statistics(seed, centres, stats);
        self.agree(local)?;
        self.combine(stats);
        Ok(())
    }

    fn given_statistics(
        &mut self,
        start: &GivenStart,
        sample_weight: Option<&[f64]>,
        centres: &[f64],
        stats: &mut SuffStats,
    ) -> Result<(), GmmError> {
        // Every rank holds the whole start; each sums its own rows, with its own rows' weights.
        let mine = start.rows(self.offset, self.local.n_samples(), stats.n_components);
        let local = self.local.given_statistics(&mine, sample_weight, centres, stats);
        self.agree(local)?;
        self.combine(stats);
        Ok(())
    }

    fn per_sample_outputs(&mut self, mixture: &Mixture, output: Output, out: &mut [f64]) -> Result<(), GmmError> {
        self.local.per_sample_outputs(mixture, output, out)
    }

    // The driver hands over this rank's weights (every rank has weights, or none does: checked
    // before the fit), and asks about global rows: each rank answers for its own and the tree's
    // sums combine them, exactly (each entry is one rank's value plus zeros).
    fn gather_weights(&mut self, rows: &[usize], sample_weight: Option<&[f64]>, out: &mut [f64]) {
        let Some(w) = sample_weight else {
            return out.fill(1.0);
        };
        let mine = self.offset..self.offset + w.len();
        for (o, r) in out.iter_mut().zip(rows) {
            *o = if mine.contains(r) { w[r - self.offset] } else { 0.0 };
        }
        let mut scratch = vec![0.0; out.len()];
        tree_allreduce(self.comm, out, &mut scratch, add);
    }

    fn weight_square_sum(&mut self, sample_weight: &[f64]) -> f64 {
        let mut sum = [self.local.weight_square_sum(sample_weight)];
        tree_allreduce(self.comm, &mut sum, &mut [0.0], add);
        sum[0]
    }

    fn positive_count(&mut self, sample_weight: Option<&[f64]>) -> usize {
        if sample_weight.is_none() {
            return self.n_total;
        }
        let mut count = [self.local.positive_count(sample_weight) as f64];
        tree_allreduce(self.comm, &mut count, &mut [0.0], add);
        count[0] as usize
    }

    fn positive_rows(&mut self, sample_weight: Option<&[f64]>, positions: &[usize]) -> (Vec<usize>, Vec<f64>) {
        if sample_weight.is_none() {
            return (positions.to_vec(), vec![1.0; positions.len()]);
        }
        // This rank's share of the list starts after the positive rows of the ranks before it.
        let (r, p) = (self.comm.rank(), self.comm.size());
        let mut counts = vec![0.0; p];
        counts[r] = self.local.positive_count(sample_weight) as f64;
        tree_allreduce(self.comm, &mut counts, &mut vec![0.0; p], add);
        let before = counts[..r].iter().sum::<f64>() as usize;
        let mine: Vec<usize> = positions
            .iter()
            .filter(|&&at| (before..before + counts[r] as usize).contains(&at))
            .map(|at| at - before)
            .collect();
        let (rows, weights) = self.local.positive_rows(sample_weight, &mine);
        // Rows and weights of every pick, each filled by the rank that owns it (f64 holds row
        // indices below 2^53 exactly).
        let mut flat = vec![0.0; 2 * positions.len()];
        let first = positions.partition_point(|&at| at < before);
        for (i, (row, w)) in rows.iter().zip(&weights).enumerate() {
            flat[2 * (first + i)] = (row + self.offset) as f64;
            flat[2 * (first + i) + 1] = *w;
        }
        let mut scratch = vec![0.0; flat.len()];
        tree_allreduce(self.comm, &mut flat, &mut scratch, add);
        flat.chunks_exact(2).map(|c| (c[0] as usize, c[1])).unzip()
    }

    fn info(&self) -> FitInfo {
        self.local.info()
    }

    // Every decision that changes a rank's arithmetic is agreed (the guard on every rank's
    // measures, an escalation by all ranks or none, the exact arithmetic of the least capable
    // device), so every rank holds the same floor, sees the same combined lower bound and M-step,
    // and the driver takes every escalation decision on every rank at once; the guard, which the
    // driver calls before each pass, checks it first (`check_in_step`).
    fn escalation_floor(&self) -> Option<f64> {
        self.local.escalation_floor()
    }

    fn guard(&mut self, mixture: &Mixture) -> Result<(), GmmError> {
        self.check_in_step()?;
        let local = self
            .local
            .guard_agreed(mixture, &mut agree_max(self.comm, &mut self.scratch));
        self.agree(local)
    }

    fn escalate(&mut self, why: String) -> bool {
        self.local
            .escalate_agreed(why, &mut agree_max(self.comm, &mut self.scratch))
    }

    fn begin_init(&mut self) -> Result<(), GmmError> {
        let local = self
            .local
            .agree_arithmetic(&mut agree_max(self.comm, &mut self.scratch));
        let local = local.and_then(|()| self.local.begin_init());
        self.agree(local)
    }
}

/// Ranks as threads of one process (one per GPU of a machine, say, or in tests): P communicators
/// joined by channels, one per ordered pair of ranks.
pub struct ThreadComm {
    rank: usize,
    size: usize,
    to: Vec<Sender<Vec<f64>>>,
    from: Vec<Mutex<Receiver<Vec<f64>>>>,
}

impl ThreadComm {
    /// The communicators of ranks 0..size, to hand one to each thread.
    pub fn world(size: usize) -> Vec<ThreadComm> {
        let mut to: Vec<Vec<Sender<Vec<f64>>>> = (0..size).map(|_| Vec::with_capacity(size)).collect();
        let mut from: Vec<Vec<Mutex<Receiver<Vec<f64>>>>> = (0..size).map(|_| Vec::with_capacity(size)).collect();
        for sender in to.iter_mut() {
            for receiver in from.iter_mut() {
                let (tx, rx) = channel();
                sender.push(tx);
                receiver.push(Mutex::new(rx));
            }
        }
        to.into_iter()
            .zip(from)
            .enumerate()
            .map(|(rank, (to, from))| ThreadComm { rank, size, to, from })
            .collect()
    }

    /// Runs `f(comm)` for every rank of a world of `size`, each on a thread of its own; returns each
    /// rank's result, in rank order. A rank that panics panics the caller.
    pub fn on_ranks<T: Send>(size: usize, f: impl Fn(&ThreadComm) -> T + Sync) -> Vec<T> {
        let world = ThreadComm::world(size);
        std::thread::scope(|s| {
            let handles: Vec<_> = world.iter().map(|c| s.spawn(|| f(c))).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    }
}

impl Communicator for ThreadComm {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.size
    }
    fn send(&self, to: usize, values: &[f64]) {
        // A receiver gone means its rank's thread ended (it panicked): nothing is waiting.
        let _ = self.to[to].send(values.to_vec());
    }
    fn receive(&self, from: usize, values: &mut [f64]) {
        let v = self.from[from]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .recv()
            .expect("the sending rank's thread ended (it panicked)");
        values.copy_from_slice(&v);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Runs `f(comm)` on P threads; returns each rank's result.
    pub(crate) fn on_ranks<T: Send>(p: usize, f: impl Fn(&ThreadComm) -> T + Sync) -> Vec<T> {
        ThreadComm::on_ranks(p, f)
    }

    #[test]
    fn the_tree_sums_in_a_fixed_order_and_every_rank_gets_rank_0s_total() {
        for p in 1..=9 {
            // Values whose sum depends on the order of additions: the tree's order, by hand, is
            // ((v0 + v1) + (v2 + v3)) + ((v4 + v5) + (v6 + v7)) + v8 for P = 9.
            let v = |r: usize| [1e16 * if r % 2 == 0 { 1.0 } else { -1.0 } + r as f64 * 0.3, r as f64];
            let got = on_ranks(p, |c| {
                let mut x = v(c.rank()).to_vec();
                tree_allreduce(c, &mut x, &mut [0.0; 2], add);
                x
            });
            fn tree(lo: usize, hi: usize, p: usize, v: &dyn Fn(usize) -> [f64; 2]) -> [f64; 2] {
                if hi - lo == 1 {
                    return v(lo);
                }
                let mid = lo + (hi - lo) / 2;
                let a = tree(lo, mid, p, v);
                if mid >= p {
                    return a;
                }
                let b = tree(mid, hi, p, v);
                [a[0] + b[0], a[1] + b[1]]
            }
            let width = p.next_power_of_two();
            let want = tree(0, width, p, &v);
            for (r, g) in got.iter().enumerate() {
                assert_eq!(g[..], want[..], "P={p} rank {r}");
            }
            assert_eq!(want[1], (0..p).sum::<usize>() as f64);
        }
    }

    /// Blobs of 3 features (seeded), and a fit of them split over P thread-ranks.
    fn fit_on(p: usize, params: &crate::GmmParams, x: &[f64]) -> Vec<Result<crate::GmmModel, GmmError>> {
        fit_from(p, params, x, None)
    }

    /// As `fit_on`, continuing from `previous` (warm start).
    fn fit_from(
        p: usize,
        params: &crate::GmmParams,
        x: &[f64],
        previous: Option<&crate::GmmModel>,
    ) -> Vec<Result<crate::GmmModel, GmmError>> {
        fit_parts(p, params, x, |_| None, previous)
    }

    /// As `fit_on`, each rank with its rows of the sample weights `w`.
    fn fit_weighted_on(
        p: usize,
        params: &crate::GmmParams,
        x: &[f64],
        w: &[f64],
    ) -> Vec<Result<crate::GmmModel, GmmError>> {
        fit_parts(p, params, x, |rows| Some(&w[rows]), None)
    }

    /// A fit of `x` over P thread-ranks, rank r with the sample weights `weights(its rows)`.
    fn fit_parts<'w>(
        p: usize,
        params: &crate::GmmParams,
        x: &[f64],
        weights: impl Fn(std::ops::Range<usize>) -> Option<&'w [f64]> + Sync,
        previous: Option<&crate::GmmModel>,
    ) -> Vec<Result<crate::GmmModel, GmmError>> {
        let n = x.len() / 3;
        on_ranks(p, |c| {
            let rows = rows_of(c.rank(), p, n);
            let local = crate::Samples::F64(&x[rows.start * 3..rows.end * 3]);
            let part = RankData {
                samples: local,
                n_features: 3,
                first_row: rows.start,
                n_total: n,
                sample_weight: weights(rows.clone()),
            };
            params.fit_distributed(part, c, None, previous, &mut |_| {})
        })
    }

    fn data(n: usize) -> Vec<f64> {
        use rand::SeedableRng;
        use rand_distr::{Distribution, StandardNormal};
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        (0..n * 3)
            .map(|i| {
                let z: f64 = StandardNormal.sample(&mut rng);
                z + 5.0 * (((i / 3) % 3) as f64) * if i % 3 == 1 { -1.0 } else { 1.0 }
            })
            .collect()
    }

    /// The largest relative difference, a NaN counting as ∞ (`f64::max` would drop it).
    fn max_rel(a: &[f64], b: &[f64]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs() / y.abs().max(1.0))
            .map(|r| if r.is_nan() { f64::INFINITY } else { r })
            .fold(0.0, f64::max)
    }

    /// A start from given responsibilities: every rank holds them all and sums its own rows.
    #[test]
    fn a_start_from_responsibilities_over_ranks_equals_the_one_process_start() {
        use crate::{CovarianceType, GmmParams};
        let x = data(2000);
        let view = crate::DataView::from_f64(&x, 3).unwrap();
        let r: Vec<f64> = (0..2000 * 3).map(|i| [0.2, 0.3, 0.5][(i + i / 3) % 3]).collect();
        for cov in CovarianceType::ALL {
            let params = GmmParams::builder(3)
                .covariance_type(cov)
                .init_responsibilities(r.clone())
                .max_iter(3)
                .tol(0.0)
                .build()
                .unwrap();
            let one = params.fit(&view).unwrap();
            for p in [2, 3] {
                let m = fit_on(p, &params, &x).remove(0).unwrap();
                // The same sums in another order: 1e-12.
                let e = max_rel(m.means(), one.means()).max(max_rel(m.covariances(), one.covariances()));
                assert!(e <= 1e-12, "{cov} P={p}: differ by {e:e}");
            }
        }
    }

    /// Parameters that start from the k-means initialisation of `view`, given as initial
    /// weights, means and precisions.
    fn given_start(view: &crate::DataView, cov: crate::CovarianceType) -> crate::GmmParamsBuilder {
        let start = crate::GmmParams::builder(3)
            .covariance_type(cov)
            .max_iter(0)
            .build()
            .unwrap()
            .fit(view)
            .unwrap();
        crate::GmmParams::builder(3)
            .covariance_type(cov)
            .weights_init(start.weights().to_vec())
            .means_init(start.means().to_vec())
            .precisions_init(start.precisions())
    }

    /// Frozen parameters over ranks: kept bitwise, the rest equal to the one-process fit.
    #[test]
    fn a_frozen_fit_over_ranks_equals_the_one_process_fit() {
        use crate::{CovarianceType, Parameter};
        let x = data(3000);
        let view = crate::DataView::from_f64(&x, 3).unwrap();
        for cov in CovarianceType::ALL {
            let params = given_start(&view, cov)
                .freeze(&[Parameter::Means, Parameter::Weights])
                .tol(0.0)
                .max_iter(10)
                .build()
                .unwrap();
            let one = params.fit(&view).unwrap();
            for p in [2, 3] {
                let m = fit_on(p, &params, &x).remove(0).unwrap();
                assert_eq!(m.means(), one.means(), "{cov} P={p}");
                assert_eq!(m.weights(), one.weights(), "{cov} P={p}");
                // The same sums in another order, over 10 iterations: 1e-11.
                let e = max_rel(m.covariances(), one.covariances());
                assert!(e <= 1e-11, "{cov} P={p}: differ by {e:e}");
            }
        }
    }

    /// A variational fit over ranks: its priors from every rank's data, its posterior equal to
    /// the one-process fit's.
    #[test]
    fn a_variational_fit_over_ranks_equals_the_one_process_fit() {
        use crate::{CovarianceType, GmmParams, Variational};
        let x = data(3000);
        let view = crate::DataView::from_f64(&x, 3).unwrap();
        let labels: Vec<usize> = (0..3000).map(|i| (i % 3 + i % 2) % 3).collect();
        for cov in CovarianceType::ALL {
            let params = GmmParams::builder(3)
                .covariance_type(cov)
                .variational(Variational::dirichlet_process())
                .init_labels(labels.clone())
                .tol(0.0)
                .max_iter(10)
                .build()
                .unwrap();
            let one = params.fit(&view).unwrap();
            for p in [2, 3] {
                let m = fit_on(p, &params, &x).remove(0).unwrap();
                // The same sums in another order, over 10 iterations: 1e-11.
                let e = max_rel(m.means(), one.means())
                    .max(max_rel(m.covariances(), one.covariances()))
                    .max(max_rel(m.mean_precision().unwrap(), one.mean_precision().unwrap()))
                    .max(max_rel(m.lower_bounds(), one.lower_bounds()));
                assert!(e <= 1e-11, "{cov} P={p}: differ by {e:e}");
            }
        }
    }

    /// A MAP fit's default prior comes from every rank's data: its hyperparameters and the fit
    /// equal the one-process fit's, for every covariance type.
    #[test]
    fn a_map_fit_over_ranks_takes_its_prior_from_every_rank() {
        use crate::{CovarianceType, GmmParams, Prior};
        let x = data(3000);
        let view = crate::DataView::from_f64(&x, 3).unwrap();
        for cov in CovarianceType::ALL {
            let params = GmmParams::builder(3)
                .covariance_type(cov)
                .prior(Prior::mclust())
                .seed(2)
                .max_iter(30)
                .build()
                .unwrap();
            let one = params.fit(&view).unwrap();
            let (p1, s1) = (one.prior().unwrap(), one.prior().unwrap().get_scale().unwrap().to_vec());
            for p in [2, 3] {
                let m = fit_on(p, &params, &x).remove(0).unwrap();
                let prior = m.prior().unwrap();
                // The same sums in another order: 1e-13 for the moments, 1e-10 after a whole
                // fit (k-means then EM, as in the test above).
                assert!(
                    max_rel(prior.get_mean().unwrap(), p1.get_mean().unwrap()) <= 1e-13,
                    "{cov} P={p}"
                );
                assert!(max_rel(prior.get_scale().unwrap(), &s1) <= 1e-13, "{cov} P={p}");
                let e = max_rel(m.means(), one.means()).max(max_rel(m.covariances(), one.covariances()));
                assert!(e <= 1e-10, "{cov} P={p}: differ by {e:e}");
                assert!(
                    max_rel(&[m.lower_bound()], &[one.lower_bound()]) <= 1e-10,
                    "{cov} P={p}"
                );
            }
        }
    }

    #[test]
    fn fits_split_over_ranks_equal_the_one_process_fit() {
        use crate::{CovarianceType, GmmParams, InitMethod};
        let x = data(5000);
        let view = crate::DataView::from_f64(&x, 3).unwrap();
        for cov in CovarianceType::ALL {
            // From a given start, the sums differ only in order: 1e-12 relative holds, with
            // tol 0 so that both run the same 20 iterations.
            let given = given_start(&view, cov).tol(0.0).max_iter(20).build().unwrap();
            let one = given.fit(&view).unwrap();
            for p in 1..=3 {
                let models = fit_on(p, &given, &x);
                let first = models[0].as_ref().unwrap();
                for (r, m) in models.iter().enumerate() {
                    let m = m.as_ref().unwrap();
                    // Every rank holds bitwise the same model.
                    assert_eq!(m.means(), first.means(), "{cov} P={p} rank {r}");
                    assert_eq!(m.covariances(), first.covariances(), "{cov} P={p} rank {r}");
                }
                for (what, a, b) in [
                    ("means", first.means(), one.means()),
                    ("covariances", first.covariances(), one.covariances()),
                    ("weights", first.weights(), one.weights()),
                    ("lower bounds", first.lower_bounds(), one.lower_bounds()),
                ] {
                    let e = max_rel(a, b);
                    assert!(e <= 1e-12, "{cov} P={p}: {what} differ by {e:e}");
                }
                // A rerun with the same P is bitwise the same.
                let again = fit_on(p, &given, &x).remove(0).unwrap();
                assert_eq!(again.means(), first.means(), "{cov} P={p} rerun");
            }
            // Every initialisation is global: k-means (k-means++ then Lloyd) for a whole fit; the
            // others for two EM iterations, because their starts (one sample per component with
            // reg_covar·I; random responsibilities) make the later iterations chaotic, where
            // any change of summation order grows without bound.
            for (init, iters) in [
                (InitMethod::KMeans, 100),
                (InitMethod::RandomFromData, 2),
                (InitMethod::Random, 2),
            ] {
                let params = GmmParams::builder(3)
                    .covariance_type(cov)
                    .init_method(init)
                    .seed(4)
                    .n_init(2)
                    .max_iter(iters)
                    .build()
                    .unwrap();
                let one = params.fit(&view).unwrap();
                for p in [2, 3] {
                    let m = fit_on(p, &params, &x).remove(0).unwrap();
                    // Lloyd and EM each stop on a threshold; order-of-summation differences
                    // (1e-16) leave the same iteration counts here, and 1e-10 holds.
                    assert_eq!(m.n_iter(), one.n_iter(), "{cov} {init:?} P={p}");
                    let e = max_rel(m.means(), one.means()).max(max_rel(m.covariances(), one.covariances()));
                    assert!(e <= 1e-10, "{cov} {init:?} P={p}: differ by {e:e}");
                }
            }
        }
    }

    #[test]
    fn a_warm_start_continues_from_the_model_as_in_one_process() {
        use crate::{GaussianMixture, GmmParams};
        let x = data(4000);
        let view = crate::DataView::from_f64(&x, 3).unwrap();
        let params = GmmParams::builder(3)
            .max_iter(3)
            .tol(0.0)
            .seed(2)
            .warm_start(true)
            .build()
            .unwrap();
        let mut one = GaussianMixture::new(params.clone());
        let first = one.fit(&view).unwrap().clone();
        let second = one.fit(&view).unwrap();
        for p in [2, 3] {
            let m = fit_from(p, &params, &x, Some(&first)).remove(0).unwrap();
            assert_eq!(m.n_iter(), second.n_iter());
            let e = max_rel(m.means(), second.means()).max(max_rel(m.covariances(), second.covariances()));
            // Order-of-summation differences only, over 3 iterations from the same model.
            assert!(e <= 1e-12, "P={p}: warm starts differ by {e:e}");
        }
    }

    #[test]
    fn a_bad_value_on_one_rank_is_the_same_error_naming_the_global_row_on_every_rank() {
        let mut x = data(300);
        x[3 * 250 + 2] = f64::NAN; // row 250: on rank 2 of 3 (rows 200..300)
        let params = crate::GmmParams::builder(2).build().unwrap();
        for r in fit_on(3, &params, &x) {
            match r {
                Err(GmmError::NonFiniteData {
                    row: 250,
                    column: 2,
                    value,
                }) => assert!(value.is_nan()),
                other => panic!("{other:?}"),
            }
        }
    }

    /// Weights in [0, 2) with a zero every 7th row: fractional, so that the priors' Σw² is not Σw.
    fn weights(n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| {
                if i % 7 == 3 {
                    0.0
                } else {
                    ((i * 37) % 20) as f64 / 10.0 + 0.05
                }
            })
            .collect()
    }

    /// The largest relative difference of two models' means, covariances, weights and lower bounds.
    fn model_diff(a: &crate::GmmModel, b: &crate::GmmModel) -> f64 {
        max_rel(a.means(), b.means())
            .max(max_rel(a.covariances(), b.covariances()))
            .max(max_rel(a.weights(), b.weights()))
            .max(max_rel(a.lower_bounds(), b.lower_bounds()))
    }

    #[test]
    fn weighted_fits_over_ranks_equal_the_one_process_weighted_fit() {
        use crate::{CovarianceType, GmmParams, InitMethod};
        let x = data(3000);
        let w = weights(3000);
        let view = crate::DataView::from_f64(&x, 3).unwrap();
        for cov in CovarianceType::ALL {
            // From a given start the sums differ only in order: 1e-13 holds over 20 iterations
            // (the largest seen is 1e-15).
            let given = given_start(&view, cov).tol(0.0).max_iter(20).build().unwrap();
            let one = given.fit_weighted(&view, &w).unwrap();
            for p in 1..=3 {
                let models = fit_weighted_on(p, &given, &x, &w);
                let first = models[0].as_ref().unwrap();
                for (r, m) in models.iter().enumerate() {
                    assert_eq!(m.as_ref().unwrap().means(), first.means(), "{cov} P={p} rank {r}");
                }
                let e = model_diff(first, &one);
                assert!(e <= 1e-13, "{cov} P={p}: differ by {e:e}");
            }
            // Every initialisation reads the weights of global rows: k-means++ seeding, the
            // draw among the rows of positive weight (the zero-weight rows lie on every rank),
            // 'random''s responsibilities. As in the unweighted test, the chaotic starts for 2
            // iterations, k-means for a whole fit; on these data 1e-13 holds (2e-15 seen).
            for (init, iters) in [
                (InitMethod::KMeans, 100),
                (InitMethod::KMeansPlusPlus, 2),
                (InitMethod::RandomFromData, 2),
                (InitMethod::Random, 2),
            ] {
                let params = GmmParams::builder(3)
                    .covariance_type(cov)
                    .init_method(init)
                    .seed(5)
                    .n_init(2)
                    .max_iter(iters)
                    .build()
                    .unwrap();
                let one = params.fit_weighted(&view, &w).unwrap();
                for p in [2, 3] {
                    let m = fit_weighted_on(p, &params, &x, &w).remove(0).unwrap();
                    assert_eq!(m.n_iter(), one.n_iter(), "{cov} {init:?} P={p}");
                    let e = model_diff(&m, &one);
                    assert!(e <= 1e-13, "{cov} {init:?} P={p}: differ by {e:e}");
                }
            }
        }
    }

    #[test]
    fn integer_weights_over_ranks_equal_duplicated_rows_in_one_process() {
        use crate::CovarianceType;
        let x = data(2000);
        let view = crate::DataView::from_f64(&x, 3).unwrap();
        // 0, 1, 2 or 3 copies of each row.
        let w: Vec<f64> = (0..2000).map(|i| ((i * 7) % 4) as f64).collect();
        let copies: Vec<f64> = x
            .chunks_exact(3)
            .zip(&w)
            .flat_map(|(row, &c)| std::iter::repeat_n(row, c as usize).flatten().copied())
            .collect();
        let duplicated = crate::DataView::from_f64(&copies, 3).unwrap();
        for cov in CovarianceType::ALL {
            let params = given_start(&view, cov).tol(0.0).max_iter(15).build().unwrap();
            let one = params.fit(&duplicated).unwrap();
            for p in [1, 2, 3] {
                let m = fit_weighted_on(p, &params, &x, &w).remove(0).unwrap();
                // The same sums (a weight of c adds c·x where the copies add x c times), in
                // another order and grouping: 1e-13 over 15 iterations (1e-14 seen).
                let e = model_diff(&m, &one);
                assert!(e <= 1e-13, "{cov} P={p}: differ by {e:e}");
            }
        }
    }

    #[test]
    fn a_bad_weight_on_one_rank_is_the_same_error_naming_the_global_row_on_every_rank() {
        let x = data(300);
        let params = crate::GmmParams::builder(2).build().unwrap();
        // Rows 200..300 are rank 2's of 3; the smaller global row wins over rank 1's later one.
        for (bad, value) in [(250, -1.0), (217, f64::NAN), (299, f64::INFINITY)] {
            let mut w = vec![1.0; 300];
            w[bad] = value;
            if bad != 250 {
                w[280] = -2.0;
            }
            for (r, got) in fit_weighted_on(3, &params, &x, &w).into_iter().enumerate() {
                match got {
                    Err(GmmError::InvalidSampleWeight { index, value: v }) => {
                        assert_eq!(index, bad.min(280), "rank {r}");
                        assert_eq!(v.to_bits(), w[index].to_bits(), "rank {r}");
                    }
                    other => panic!("row {bad}, rank {r}: {other:?}"),
                }
            }
        }
        // Zero on every rank is an error; zero on all ranks but one is a fit.
        let mut w = vec![0.0; 300];
        for got in fit_weighted_on(3, &params, &x, &w) {
            assert!(matches!(got, Err(GmmError::ZeroSampleWeights)), "{got:?}");
        }
        w[120..140].fill(1.0);
        assert!(fit_weighted_on(3, &params, &x, &w).iter().all(|m| m.is_ok()));
        // A NaN in the data comes first, as in one process.
        let mut y = x.clone();
        y[3 * 260] = f64::NAN;
        w[10] = -1.0;
        for got in fit_weighted_on(3, &params, &y, &w) {
            assert!(matches!(got, Err(GmmError::NonFiniteData { row: 260, .. })), "{got:?}");
        }
        // Rank 1 with too few weights: its error there, PeerFailed naming it elsewhere.
        let w = vec![1.0; 300];
        let got = fit_parts(
            3,
            &params,
            &x,
            |rows| Some(&w[rows.start..rows.end - usize::from(rows.start == 100)]),
            None,
        );
        for (r, g) in got.into_iter().enumerate() {
            match (r, g) {
                (1, Err(GmmError::SampleWeightLength { expected: 100, got: 99 })) => {}
                (0 | 2, Err(GmmError::PeerFailed { rank: 1 })) => {}
                (r, other) => panic!("rank {r}: {other:?}"),
            }
        }
        // Weights on some ranks only: every rank names the lowest rank without them.
        let got = fit_parts(3, &params, &x, |rows| (rows.start != 100).then(|| &w[rows]), None);
        for g in got {
            assert!(matches!(g, Err(GmmError::SampleWeightOnSomeRanks { rank: 1 })), "{g:?}");
        }
    }

    /// The MAP prior's defaults use every rank's Σw and Σw² (fractional weights: Σw² ≠ Σw, and
    /// integer weights, which count as rows).
    #[test]
    fn a_weighted_map_fit_over_ranks_equals_the_one_process_fit() {
        use crate::{CovarianceType, Prior};
        let x = data(3000);
        let view = crate::DataView::from_f64(&x, 3).unwrap();
        let counts: Vec<f64> = (0..3000).map(|i| (i % 3 + 1) as f64).collect();
        for w in [weights(3000), counts] {
            for cov in CovarianceType::ALL {
                let params = given_start(&view, cov)
                    .prior(Prior::mclust())
                    .tol(0.0)
                    .max_iter(15)
                    .build()
                    .unwrap();
                let one = params.fit_weighted(&view, &w).unwrap();
                let p1 = one.prior().unwrap();
                let s1 = p1.get_scale().unwrap().to_vec();
                for p in [2, 3] {
                    let m = fit_weighted_on(p, &params, &x, &w).remove(0).unwrap();
                    let prior = m.prior().unwrap();
                    // The moments' sums in another order, and the fit over 15 iterations: 1e-13
                    // (1e-15 seen).
                    let e = max_rel(prior.get_mean().unwrap(), p1.get_mean().unwrap())
                        .max(max_rel(prior.get_scale().unwrap(), &s1));
                    assert!(e <= 1e-13, "{cov} P={p}: priors differ by {e:e}");
                    let e = model_diff(&m, &one);
                    assert!(e <= 1e-13, "{cov} P={p}: differ by {e:e}");
                }
            }
        }
    }

    /// A start from labels, weighted: each rank sums its rows' labels with its rows' weights.
    #[test]
    fn a_weighted_start_from_labels_over_ranks_equals_the_one_process_start() {
        use crate::{CovarianceType, GmmParams};
        let x = data(2000);
        let w = weights(2000);
        let view = crate::DataView::from_f64(&x, 3).unwrap();
        let labels: Vec<usize> = (0..2000).map(|i| (i % 3 + i % 2) % 3).collect();
        for cov in CovarianceType::ALL {
            let params = GmmParams::builder(3)
                .covariance_type(cov)
                .init_labels(labels.clone())
                .max_iter(5)
                .tol(0.0)
                .build()
                .unwrap();
            let one = params.fit_weighted(&view, &w).unwrap();
            for p in [2, 3] {
                let m = fit_weighted_on(p, &params, &x, &w).remove(0).unwrap();
                // The same sums in another order, over 5 iterations: 1e-13 (1e-15 seen).
                let e = model_diff(&m, &one);
                assert!(e <= 1e-13, "{cov} P={p}: differ by {e:e}");
            }
        }
    }

    /// Stepwise EM over P thread-ranks, rank r holding `sizes[r]` consecutive rows of `x` (with
    /// their weights, if any), each stepping through its own rows in batches of `b` for `passes`
    /// passes, an empty batch once its rows run out: every rank's model.
    fn online_on(
        sizes: &[usize],
        params: &crate::GmmParams,
        x: &[f64],
        w: Option<&[f64]>,
        b: usize,
        passes: usize,
    ) -> Vec<Result<crate::GmmModel, GmmError>> {
        let starts: Vec<usize> = sizes
            .iter()
            .scan(0, |at, n| Some(std::mem::replace(at, *at + n)))
            .collect();
        let steps = sizes.iter().max().unwrap().div_ceil(b);
        on_ranks(sizes.len(), |c| {
            let (start, n) = (starts[c.rank()], sizes[c.rank()]);
            let mut gm = crate::GaussianMixture::new(params.clone());
            for _ in 0..passes {
                for s in 0..steps {
                    let rows = start + (s * b).min(n)..start + ((s + 1) * b).min(n);
                    let batch = crate::DataView::from_f64(&x[rows.start * 3..rows.end * 3], 3).unwrap();
                    gm.partial_fit_distributed(&batch, w.map(|w| &w[rows]), c)?;
                }
            }
            Ok(gm.into_model().unwrap())
        })
    }

    /// One process's stepwise EM over the batches `online_on` makes: step t's batch is every
    /// rank's t-th batch, concatenated in rank order.
    fn online_concatenated(
        sizes: &[usize],
        params: &crate::GmmParams,
        x: &[f64],
        w: Option<&[f64]>,
        b: usize,
        passes: usize,
    ) -> crate::GmmModel {
        let starts: Vec<usize> = sizes
            .iter()
            .scan(0, |at, n| Some(std::mem::replace(at, *at + n)))
            .collect();
        let steps = sizes.iter().max().unwrap().div_ceil(b);
        let mut gm = crate::GaussianMixture::new(params.clone());
        for _ in 0..passes {
            for s in 0..steps {
                let rows: Vec<usize> = starts
                    .iter()
                    .zip(sizes)
                    .flat_map(|(&start, &n)| start + (s * b).min(n)..start + ((s + 1) * b).min(n))
                    .collect();
                let batch: Vec<f64> = rows.iter().flat_map(|&i| x[i * 3..i * 3 + 3].iter().copied()).collect();
                let batch = crate::DataView::from_f64(&batch, 3).unwrap();
                match w {
                    Some(w) => gm.partial_fit_weighted(&batch, &rows.iter().map(|&i| w[i]).collect::<Vec<_>>()),
                    None => gm.partial_fit(&batch),
                }
                .unwrap();
            }
        }
        gm.into_model().unwrap()
    }

    #[test]
    fn online_steps_over_ranks_equal_one_process_over_the_concatenated_batches() {
        use crate::{CovarianceType, GmmParams, InitMethod, Online};
        let x = data(1003);
        let w = weights(1003);
        // Even splits (rows_of), and uneven ones where ranks run out of rows early or hold none:
        // those take part with empty batches.
        let splits: [&[usize]; 5] = [&[502, 501], &[335, 334, 334], &[700, 303], &[603, 0, 400], &[90, 913]];
        for cov in CovarianceType::ALL {
            for init in [InitMethod::KMeans, InitMethod::Random] {
                let params = GmmParams::builder(3)
                    .covariance_type(cov)
                    .init_method(init)
                    .seed(6)
                    .online(Online::default().batch_size(100))
                    .build()
                    .unwrap();
                for sizes in splits {
                    for (weights, passes) in [(None, 2), (Some(&w[..]), 1)] {
                        let one = online_concatenated(sizes, &params, &x, weights, 100, passes);
                        let models = online_on(sizes, &params, &x, weights, 100, passes);
                        let first = models[0].as_ref().unwrap();
                        for (r, m) in models.iter().enumerate() {
                            let m = m.as_ref().unwrap_or_else(|e| panic!("{cov} {sizes:?} rank {r}: {e}"));
                            assert_eq!(m.means(), first.means(), "{cov} {sizes:?} rank {r}");
                        }
                        assert_eq!(first.n_iter(), one.n_iter());
                        // Each step's sums in another order, over 11 to 22 steps: 1e-13 (2e-14
                        // seen).
                        let e = model_diff(first, &one);
                        assert!(
                            e <= 1e-13,
                            "{cov} {init:?} {sizes:?} weighted {}: differ by {e:e}",
                            weights.is_some()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn online_steps_over_ranks_fail_together() {
        let x = data(300);
        let params = crate::GmmParams::builder(2).build().unwrap();
        // No rows anywhere: the global batch is empty on every rank.
        let got = on_ranks(2, |c| {
            let empty = crate::DataView::from_f64(&[], 3).unwrap();
            crate::GaussianMixture::new(params.clone())
                .partial_fit_distributed(&empty, None, c)
                .map(|_| ())
        });
        for g in got {
            assert!(matches!(g, Err(GmmError::TooFewSamples { n_samples: 0 })), "{g:?}");
        }
        // A bad weight names its row in the global batch (rank 1's rows follow rank 0's 100).
        let mut w = vec![1.0; 300];
        w[130] = -1.0;
        let got = online_on(&[100, 200], &params, &x, Some(&w), 200, 1);
        for g in got {
            assert!(
                matches!(g, Err(GmmError::InvalidSampleWeight { index: 130, .. })),
                "{g:?}"
            );
        }
    }

    /// Runs `f` on a thread of its own and waits at most `secs` for it: ranks that wait for each
    /// other forever fail the test instead of stalling the suite.
    pub(crate) fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        match rx.recv_timeout(std::time::Duration::from_secs(secs)) {
            Ok(v) => v,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                panic!("the ranks did not finish within {secs} s: one waits for another that has moved on")
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("a rank panicked"),
        }
    }

    /// What one rank of a fit over fake-fast ranks (`em::tests::Flaky`) ended with: its outcome
    /// or error, its switches.
    type FlakyRank = (Result<crate::em::FitOutcome, GmmError>, Vec<String>);

    /// A fit of `em::tests::data()` over P ranks, each a `Flaky` over its rows set up by
    /// `setup(rank, backend)`, 8 iterations from k-means, within a minute.
    fn flaky_fit(
        p: usize,
        setup: impl Fn(usize, &mut crate::em::tests::Flaky) + Send + Sync + 'static,
    ) -> Vec<FlakyRank> {
        use crate::em::tests::{Flaky, data, params};
        within(60, move || {
            let x = data();
            let n = x.len() / 2;
            on_ranks(p, |c| {
                let rows = rows_of(c.rank(), p, n);
                let view = crate::DataView::from_f64(&x[rows.start * 2..rows.end * 2], 2).unwrap();
                let mut local = Flaky::new(crate::cpu::CpuBackend::new(view, None).with_offset(rows.start), None);
                setup(c.rank(), &mut local);
                let mut backend = DistributedBackend::new(local, c, rows.start, n);
                let outcome = crate::em::fit(&params(8, 1), &mut backend, None, None, &mut |_| {
                    std::ops::ControlFlow::Continue(())
                });
                (outcome, backend.local.switches.clone())
            })
        })
    }

    #[test]
    fn a_bound_that_falls_on_one_rank_sends_every_rank_back_together() {
        use crate::em::tests::Fault;
        for p in [2, 3] {
            // Rank 0's own sums make the combined bound fall at pass 4 (by 1/P nat): every rank
            // switches and redoes iteration 3, so each ends bitwise where ranks that ran exact
            // from pass 3 end (fast's faked noise tells the iterates apart).
            let want = flaky_fit(p, |_, b| b.exact_from = Some(3));
            let got = flaky_fit(p, |rank, b| {
                if rank == 0 {
                    b.fault = Some((Fault::Fall, 4));
                }
            });
            let want = want[0].0.as_ref().unwrap();
            for (r, (outcome, switches)) in got.iter().enumerate() {
                let outcome = outcome.as_ref().unwrap_or_else(|e| panic!("P={p} rank {r}: {e}"));
                assert_eq!(switches.len(), 1, "P={p} rank {r}: {switches:?}");
                assert!(switches[0].contains("fell"), "P={p} rank {r}: {switches:?}");
                assert_eq!(outcome.mixture, want.mixture, "P={p} rank {r}");
                assert_eq!(outcome.lower_bounds, want.lower_bounds, "P={p} rank {r}");
            }
        }
    }

    #[test]
    fn the_guard_acts_on_the_largest_measure_over_the_ranks() {
        // Only rank 1's measure is past the fake guard's limit: every rank switches before its
        // first pass, so all run exact throughout and end bitwise where ranks that ran exact from
        // pass 1 end.
        for p in [2, 3] {
            let want = flaky_fit(p, |_, b| b.exact_from = Some(1));
            let got = flaky_fit(p, |rank, b| b.measure = if rank == 1 { 2.0 } else { 0.5 });
            let want = want[0].0.as_ref().unwrap();
            for (r, (outcome, switches)) in got.iter().enumerate() {
                let outcome = outcome.as_ref().unwrap_or_else(|e| panic!("P={p} rank {r}: {e}"));
                assert_eq!(switches, &["the guard: 2"], "P={p} rank {r}");
                assert_eq!(outcome.mixture, want.mixture, "P={p} rank {r}");
            }
        }
    }

    #[test]
    fn a_distributed_backend_passes_its_ranks_floor_and_outputs_through() {
        use crate::backend::Output;
        let x = crate::em::tests::data();
        let n = x.len() / 2;
        let params = crate::em::tests::params(3, 1);
        let model = params.fit(&crate::DataView::from_f64(&x, 2).unwrap()).unwrap();
        let mix = &model.mixture;
        on_ranks(2, |c| {
            let rows = rows_of(c.rank(), 2, n);
            let view = crate::DataView::from_f64(&x[rows.start * 2..rows.end * 2], 2).unwrap();
            let mut want = vec![0.0; rows.len()];
            let mut cpu = crate::cpu::CpuBackend::new(view, None);
            cpu.per_sample_outputs(mix, Output::LogProb, &mut want).unwrap();
            let mut backend = DistributedBackend::new(cpu, c, rows.start, n);
            assert_eq!(backend.escalation_floor(), None);
            let mut got = vec![0.0; rows.len()];
            backend.per_sample_outputs(mix, Output::LogProb, &mut got).unwrap();
            // Each rank's own rows, as its backend computes them.
            assert_eq!(got, want, "rank {}", c.rank());
            let fast = crate::em::tests::Flaky::new(crate::cpu::CpuBackend::new(view, None), None);
            let backend = DistributedBackend::new(fast, c, rows.start, n);
            assert_eq!(backend.escalation_floor(), Some(1e-14));
        });
    }

    #[test]
    fn a_rank_that_cannot_switch_keeps_every_rank_in_step() {
        use crate::em::tests::Fault;
        // Rank 2 cannot switch (its exact kernels would not build), and rank 0 meets trouble at
        // pass 4: no rank switches, so a failure is every rank's error and a fall goes on fast on
        // every rank, and none waits for another.
        for (fault, want) in [
            (Fault::NonFinite, "NonFiniteLikelihood { iteration: 4 }"),
            (Fault::Singular, "IllDefinedCovariance"),
            (Fault::Fall, ""),
        ] {
            let got = flaky_fit(3, move |rank, b| {
                b.can_switch = rank != 2;
                if rank == 0 {
                    b.fault = Some((fault, 4));
                }
            });
            for (r, (outcome, switches)) in got.iter().enumerate() {
                assert!(switches.is_empty(), "{fault:?} rank {r}: {switches:?}");
                match outcome {
                    Err(e) => assert!(
                        !want.is_empty() && format!("{e:?}").contains(want),
                        "{fault:?} rank {r}: {e:?}"
                    ),
                    Ok(o) => {
                        assert!(want.is_empty(), "{fault:?} rank {r}: no error");
                        assert_eq!(o.n_iter, 8);
                        assert_eq!(o.mixture, got[0].0.as_ref().unwrap().mixture, "rank {r}");
                    }
                }
            }
        }
    }

    #[test]
    fn ranks_in_different_arithmetic_stop_together_with_an_error() {
        // Rank 1 starts exact while rank 0 is fast: the check before the first pass sees their
        // codes differ, and every rank stops with the same error before the guard's collective,
        // which only the fast rank would enter.
        let got = flaky_fit(2, |rank, b| b.starts_fast = rank == 0);
        for (r, (outcome, _)) in got.iter().enumerate() {
            assert!(
                matches!(outcome, Err(GmmError::RanksOutOfStep)),
                "rank {r}: {:?}",
                outcome.as_ref().map(|o| o.n_iter)
            );
        }
    }

    #[test]
    fn agree_keeps_the_lowest_failing_ranks_error_and_names_that_rank_to_the_others() {
        for (p, failing) in [(3, vec![]), (3, vec![1]), (4, vec![3, 1]), (1, vec![0])] {
            let got = on_ranks(p, |c| {
                let r = c.rank();
                let local = if failing.contains(&r) {
                    Err(GmmError::TooFewSamples { n_samples: r })
                } else {
                    Ok(r)
                };
                agree(c, local)
            });
            let lowest = failing.iter().min().copied();
            for (r, g) in got.iter().enumerate() {
                match (lowest, g) {
                    (None, Ok(v)) => assert_eq!(*v, r),
                    (Some(l), Err(GmmError::TooFewSamples { n_samples })) if r == l => assert_eq!(*n_samples, l),
                    (Some(l), Err(GmmError::PeerFailed { rank })) if r != l => assert_eq!(*rank, l),
                    other => panic!("P={p}, ranks {failing:?} failing: rank {r} got {other:?}"),
                }
            }
        }
    }

    #[test]
    fn rows_split_contiguously_and_cover_everything() {
        for (n, p) in [(10, 3), (3, 5), (0, 2), (1_000_003, 7)] {
            let ranges: Vec<_> = (0..p).map(|r| rows_of(r, p, n)).collect();
            assert_eq!(ranges[0].start, 0);
            assert_eq!(ranges[p - 1].end, n);
            for w in ranges.windows(2) {
                assert_eq!(w[0].end, w[1].start);
                assert!(w[0].len() >= w[1].len() && w[0].len() - w[1].len() <= 1);
            }
        }
    }

    #[test]
    fn the_first_bad_value_is_the_one_in_the_smallest_row_over_ranks() {
        let bad = [
            None,
            Some((907, 2, 1.0 / 0.0)),
            None,
            Some((2400, 0, f64::NEG_INFINITY)),
        ];
        let got = on_ranks(4, |c| first_bad_value(c, bad[c.rank()]));
        assert_eq!(got, vec![Some((907, 2, f64::INFINITY)); 4]);
        let got = on_ranks(3, |c| first_bad_value(c, None));
        assert_eq!(got, vec![None; 3]);
    }
}
