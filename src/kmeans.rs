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
        let mut weights = vec![0.0; rows.len()];
        backend.gather_weights(&rows, sample_weight, &mut weights);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::CpuBackend;
    use crate::data::DataView;
    use rand::SeedableRng;

    /// Seeded blobs: `n` rows of `d` features around `centres` (row-major), spread `spread`, with
    /// sample weights in [0.5, 2).
    fn blobs(n: usize, d: usize, centres: &[f64], spread: f64, seed: u64) -> (Vec<f64>, Vec<f64>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let k = centres.len() / d;
        let mut x = Vec::with_capacity(n * d);
        for i in 0..n {
            let c = &centres[(i % k) * d..(i % k + 1) * d];
            // A sum of three uniforms: bell-shaped, so that neighbouring blobs overlap a little.
            x.extend(
                c.iter()
                    .map(|m| m + spread * (0..3).map(|_| rng.random::<f64>() - 0.5).sum::<f64>()),
            );
        }
        let w = (0..n).map(|_| 0.5 + 1.5 * rng.random::<f64>()).collect();
        (x, w)
    }

    fn seed_set(x: &[f64], w: &[f64], d: usize) -> SeedSet {
        SeedSet {
            points: x.to_vec(),
            weights: w.to_vec(),
            n_features: d,
        }
    }

    #[test]
    fn small_data_seeds_from_every_row() {
        let (x, w) = blobs(50, 3, &[0.0, 1.0, 2.0], 1.0, 1);
        let view = DataView::from_f64(&x, 3).unwrap();
        let seeds = SeedSet::gather(
            &mut CpuBackend::new(view, Some(&w)),
            Some(&w),
            &mut StdRng::seed_from_u64(0),
        )
        .unwrap();
        assert_eq!(seeds.points, x);
        assert_eq!(seeds.weights, w);
    }

    #[test]
    fn large_data_seeds_from_whole_runs_of_rows() {
        // Past SEED_ROWS rows, seeding takes SEED_ROWS of them in distinct aligned runs of SEED_RUN.
        // Row i holds (i, −2i) and weighs i/4 (all exact in f64), so each gathered row names itself.
        let n = SEED_ROWS + SEED_ROWS / 4 + 3;
        let x: Vec<f64> = (0..n).flat_map(|i| [i as f64, -2.0 * i as f64]).collect();
        let w: Vec<f64> = (0..n).map(|i| i as f64 / 4.0).collect();
        let view = DataView::from_f64(&x, 2).unwrap();
        let mut backend = CpuBackend::new(view, Some(&w));
        let seeds = SeedSet::gather(&mut backend, Some(&w), &mut StdRng::seed_from_u64(3)).unwrap();
        assert_eq!(seeds.len(), SEED_ROWS);
        let rows: Vec<usize> = seeds.points.chunks(2).map(|p| p[0] as usize).collect();
        for (i, (p, &wt)) in seeds.points.chunks(2).zip(&seeds.weights).enumerate() {
            assert_eq!((p[1], wt), (-2.0 * p[0], p[0] / 4.0), "seed row {i}");
        }
        let mut last_run = None;
        for (r, run) in rows.chunks(SEED_RUN).enumerate() {
            assert_eq!(run[0] % SEED_RUN, 0, "run {r} starts at row {}", run[0]);
            assert!(
                run.iter().enumerate().all(|(j, &row)| row == run[0] + j),
                "run {r} is not consecutive"
            );
            assert!(last_run.is_none_or(|l| run[0] > l), "run {r} repeats or goes back");
            last_run = Some(run[0]);
        }
        assert!(rows[rows.len() - 1] < n);
    }

    #[test]
    fn mean_variance_by_hand() {
        // Columns (1, 2, 3, 4) and (0, 0, 0, 8): variances 1.25 and 12 (divided by n), mean 6.625.
        let seeds = seed_set(&[1.0, 0.0, 2.0, 0.0, 3.0, 0.0, 4.0, 8.0], &[1.0; 4], 2);
        assert_eq!(seeds.mean_variance(), 6.625);
    }

    /// Greedy k-means++ written out plainly (scikit-learn's `_kmeans_plusplus`: the first centre by
    /// weight, then the best of 2 + ⌊ln K⌋ candidates by weight·D², ties to the first drawn), drawing
    /// from the same generator in the same order.
    fn naive_plusplus(seeds: &SeedSet, k: usize, rng: &mut StdRng) -> Vec<usize> {
        let (n, d) = (seeds.len(), seeds.n_features);
        let d2 = |a: usize, b: usize| -> f64 {
            (0..d)
                .map(|j| (seeds.points[a * d + j] - seeds.points[b * d + j]).powi(2))
                .sum()
        };
        let pick = |mass: &[f64], rng: &mut StdRng| {
            let target = rng.random::<f64>() * mass.iter().fold(0.0, |a, m| a + m);
            let mut acc = 0.0;
            for (i, m) in mass.iter().enumerate() {
                acc += m;
                if acc > target {
                    return i;
                }
            }
            n - 1
        };
        let mut centres = vec![pick(&seeds.weights, rng)];
        let mut closest: Vec<f64> = (0..n).map(|i| d2(i, centres[0])).collect();
        while centres.len() < k {
            let mass: Vec<f64> = (0..n).map(|i| seeds.weights[i] * closest[i]).collect();
            let mut best: Option<(f64, usize)> = None;
            for _ in 0..2 + (k as f64).ln().floor() as usize {
                let c = pick(&mass, rng);
                let potential = (0..n).fold(0.0, |a, i| a + seeds.weights[i] * d2(i, c).min(closest[i]));
                if best.is_none_or(|(p, _)| potential < p) {
                    best = Some((potential, c));
                }
            }
            let c = best.unwrap().1;
            centres.push(c);
            closest = (0..n).map(|i| d2(i, c).min(closest[i])).collect();
        }
        centres
    }

    #[test]
    fn plusplus_matches_the_plain_algorithm() {
        let (x, w) = blobs(
            200,
            3,
            &[0.0, 0.0, 0.0, 4.0, 0.0, 1.0, -3.0, 5.0, 2.0, 1.0, -6.0, 0.5],
            2.0,
            7,
        );
        let seeds = seed_set(&x, &w, 3);
        for k in [1, 2, 5, 9] {
            for seed in 0..8 {
                let got = kmeans_plusplus(&seeds, k, &mut StdRng::seed_from_u64(seed));
                let want = naive_plusplus(&seeds, k, &mut StdRng::seed_from_u64(seed));
                assert_eq!(got, want, "k = {k}, seed {seed}");
            }
        }
    }

    #[test]
    fn plusplus_breaks_ties_to_the_first_candidate() {
        // A heavy row at 0 is the first centre; rows at −1 and +1 then leave the same potential
        // (1), so the candidate drawn first must win, as numpy's argmin has it.
        let seeds = seed_set(&[0.0, 0.0, -1.0, 0.0, 1.0, 0.0], &[1e6, 1.0, 1.0], 2);
        let mut second = [0; 3];
        for seed in 0..32 {
            let got = kmeans_plusplus(&seeds, 2, &mut StdRng::seed_from_u64(seed));
            assert_eq!(
                got,
                naive_plusplus(&seeds, 2, &mut StdRng::seed_from_u64(seed)),
                "seed {seed}"
            );
            second[got[1]] += 1;
        }
        // Both outcomes occur, so the seeds did stage ties in both orders.
        assert!(second[1] > 0 && second[2] > 0, "{second:?}");
    }

    #[test]
    fn plusplus_with_fewer_distinct_rows_than_components() {
        // Once every distinct row is a centre, all weight·D² is zero: the remaining picks must still
        // be rows (the last), and the distinct rows must all have been picked first.
        let seeds = seed_set(&[1.0, 1.0, 1.0, 1.0, 5.0, 5.0, 9.0, 0.0, 9.0, 0.0], &[1.0; 5], 2);
        for seed in 0..8 {
            let got = kmeans_plusplus(&seeds, 5, &mut StdRng::seed_from_u64(seed));
            assert_eq!(got.len(), 5);
            let points: Vec<&[f64]> = got[..3].iter().map(|&i| seeds.row(i)).collect();
            for p in [[1.0, 1.0], [5.0, 5.0], [9.0, 0.0]] {
                assert!(
                    points.contains(&&p[..]),
                    "seed {seed}: {p:?} not among the first three {got:?}"
                );
            }
            assert_eq!(got[3..], [4, 4], "seed {seed}");
        }
    }

    /// Lloyd written out plainly: nearest centroid (the first on ties), the weighted mean of its
    /// rows, stop once the centroids moved by at most `tol` in total squared distance; an empty
    /// cluster keeps its centroid.
    fn naive_lloyd(x: &[f64], w: &[f64], centroids: &mut [f64], k: usize, d: usize, tol: f64) -> usize {
        for iter in 1..=LLOYD_MAX_ITER {
            let (mut sum, mut mass) = (vec![0.0; k * d], vec![0.0; k]);
            for (row, &wt) in x.chunks(d).zip(w) {
                let dist = |c: usize| -> f64 { (0..d).map(|j| (row[j] - centroids[c * d + j]).powi(2)).sum() };
                let nearest = (1..k).fold(0, |b, c| if dist(c) < dist(b) { c } else { b });
                mass[nearest] += wt;
                (0..d).for_each(|j| sum[nearest * d + j] += wt * row[j]);
            }
            let mut shift = 0.0;
            for c in (0..k).filter(|&c| mass[c] > 0.0) {
                for j in 0..d {
                    let new = sum[c * d + j] / mass[c];
                    shift += (new - centroids[c * d + j]).powi(2);
                    centroids[c * d + j] = new;
                }
            }
            if shift <= tol {
                return iter;
            }
        }
        LLOYD_MAX_ITER
    }

    #[test]
    fn lloyd_matches_the_plain_algorithm() {
        // Two overlapping blobs make Lloyd creep for a few dozen iterations, so the stopping rule and
        // its tolerance (1e-4 x the mean variance, here about 12) decide the count. A third centroid
        // far from everything gets no rows and must stay put.
        let (x, w) = blobs(3000, 2, &[0.0, 0.0, 3.0, 1.0], 6.0, 11);
        let seeds = seed_set(&x, &w, 2);
        let start = [x[0], x[1], x[2], x[3], 1e3, -1e3];
        let view = DataView::from_f64(&x, 2).unwrap();
        let mut backend = CpuBackend::new(view, Some(&w));
        let mut got = start;
        let iters = lloyd(&mut backend, &mut got, 3, 2, seeds.mean_variance()).unwrap();
        let mut want = start;
        let naive_iters = naive_lloyd(&x, &w, &mut want, 3, 2, LLOYD_TOL * seeds.mean_variance());
        assert_eq!(iters, naive_iters);
        assert!(iters > 5, "{iters} iterations: too few to test the stopping rule");
        // Centroid + mean offset against the plain weighted mean: a few roundings of values ~5.
        for (j, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-12 * w.abs().max(1.0),
                "centroid value {j}: {g} vs {w}"
            );
        }
        assert_eq!(got[4..], [1e3, -1e3]);
    }
}
