//! Our own k-means for initialisation: greedy k-means++ seeding on the host, then Lloyd iterations
//! whose assignment and sums run on the backend.

use rand::rngs::StdRng;
use rand::{RngExt, seq::index};
use rayon::prelude::*;

use crate::backend::Backend;
use crate::error::GmmError;
use crate::kinds::CovarianceType;
use crate::stats::SuffStats;

/// Seeding looks at no more than this many rows: a uniform random subset beyond it.
pub(crate) const SEED_ROWS: usize = 1 << 18;
/// Seeding rows come in runs of this many consecutive rows.
const SEED_RUN: usize = 64;
/// Lloyd iterations at most, as scikit-learn's KMeans.
const LLOYD_MAX_ITER: usize = 300;
/// Lloyd stops when the centroids move (in total squared distance) by less than this times the
/// mean feature variance, as scikit-learn's KMeans.
const LLOYD_TOL: f64 = 1e-4;

/// The rows seeding works on, widened to f64, with their sample weights.
pub(crate) struct SeedSet {
    pub points: Vec<f64>,
    pub weights: Vec<f64>,
    pub n_features: usize,
}

impl SeedSet {
    /// All rows, or [`SEED_ROWS`] of them in random runs of [`SEED_RUN`] consecutive rows (runs keep
    /// the reads from a GPU buffer to a few thousand copies).
    pub fn gather<B: Backend>(
        backend: &mut B,
        sample_weight: Option<&[f64]>,
        rng: &mut StdRng,
    ) -> Result<Self, GmmError> {
        let (n, d) = (backend.n_samples(), backend.n_features());
        let rows: Vec<usize> = if n <= SEED_ROWS {
            (0..n).collect()
        } else {
            let mut runs = index::sample(rng, n / SEED_RUN, SEED_ROWS / SEED_RUN).into_vec();
            runs.sort_unstable();
            runs.iter().flat_map(|r| r * SEED_RUN..(r + 1) * SEED_RUN).collect()
        };
        let mut points = vec![0.0; rows.len() * d];
        backend.gather_rows(&rows, &mut points)?;
        let weights = rows.iter().map(|&i| sample_weight.map_or(1.0, |w| w[i])).collect();
        Ok(Self {
            points,
            weights,
            n_features: d,
        })
    }

    pub fn len(&self) -> usize {
        self.weights.len()
    }

    fn row(&self, i: usize) -> &[f64] {
        &self.points[i * self.n_features..(i + 1) * self.n_features]
    }

    /// The mean of the (unweighted) feature variances, which scales the Lloyd tolerance.
    pub fn mean_variance(&self) -> f64 {
        let (n, d) = (self.len(), self.n_features);
        let mut total = 0.0;
        for j in 0..d {
            let mean = (0..n).map(|i| self.points[i * d + j]).sum::<f64>() / n as f64;
            total += (0..n).map(|i| (self.points[i * d + j] - mean).powi(2)).sum::<f64>() / n as f64;
        }
        total / d as f64
    }
}

/// Greedy k-means++ (as scikit-learn): the first centre is drawn with probability ∝ w; each next one
/// is the best, by the potential Σ w·D², of 2 + ⌊ln K⌋ candidates drawn with probability ∝ w·D².
/// Returns indices into the seed set.
pub(crate) fn kmeans_plusplus(seeds: &SeedSet, k: usize, rng: &mut StdRng) -> Vec<usize> {
    let n = seeds.len();
    let n_trials = 2 + (k as f64).ln().floor() as usize;
    let draw = |cumulative: &[f64], rng: &mut StdRng| {
        let total = *cumulative.last().unwrap_or(&0.0);
        let target = rng.random::<f64>() * total;
        // The first index whose cumulative sum exceeds the target, kept among positive-weight rows.
        cumulative.partition_point(|&c| c <= target).min(n - 1)
    };
    let mut cumulative: Vec<f64> = seeds
        .weights
        .iter()
        .scan(0.0, |acc, w| {
            *acc += w;
            Some(*acc)
        })
        .collect();
    let first = draw(&cumulative, rng);
    let mut centres = vec![first];
    let dist_to = |c: usize| -> Vec<f64> {
        let centre = seeds.row(c);
        (0..n)
            .into_par_iter()
            .map(|i| seeds.row(i).iter().zip(centre).map(|(a, b)| (a - b).powi(2)).sum())
            .collect()
    };
    let mut closest = dist_to(first);
    while centres.len() < k {
        let mut acc = 0.0;
        for (c, (w, d2)) in cumulative.iter_mut().zip(seeds.weights.iter().zip(&closest)) {
            acc += w * d2;
            *c = acc;
        }
        let mut best: Option<(f64, usize, Vec<f64>)> = None;
        for _ in 0..n_trials {
            let candidate = draw(&cumulative, rng);
            let dist: Vec<f64> = dist_to(candidate)
                .iter()
                .zip(&closest)
                .map(|(a, b)| a.min(*b))
                .collect();
            let potential: f64 = dist.iter().zip(&seeds.weights).map(|(d2, w)| w * d2).sum();
            if best.as_ref().is_none_or(|b| potential < b.0) {
                best = Some((potential, candidate, dist));
            }
        }
        let (_, candidate, dist) = best.expect("n_trials >= 2");
        centres.push(candidate);
        closest = dist;
    }
    centres
}

/// Lloyd iterations from `centroids` (row-major K x d, updated in place): assignment and sums on the
/// backend, the update on the host. An empty cluster keeps its centroid. Returns the iterations run.
pub(crate) fn lloyd<B: Backend>(
    backend: &mut B,
    centroids: &mut [f64],
    k: usize,
    d: usize,
    mean_variance: f64,
) -> Result<usize, GmmError> {
    let tol = LLOYD_TOL * mean_variance;
    let mut stats = SuffStats::new(CovarianceType::Spherical, k, d);
    for iter in 1..=LLOYD_MAX_ITER {
        backend.label_statistics(centroids, &mut stats)?;
        let mut shift = 0.0;
        for c in 0..k {
            if stats.s0[c] > 0.0 {
                for j in 0..d {
                    let delta = stats.s1[c * d + j] / stats.s0[c];
                    centroids[c * d + j] += delta;
                    shift += delta * delta;
                }
            }
        }
        if shift <= tol {
            return Ok(iter);
        }
    }
    Ok(LLOYD_MAX_ITER)
}
