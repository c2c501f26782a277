//! The CPU backend of a fit with missing values: observed-data responsibilities, and statistics of
//! the conditionally completed samples, pattern by pattern, in f64.
//!
//! With r = w·P(k | x_o), x̂ = x with x_m = E[x_m | x_o, k] and z = x̂ − c_k, the sums are Σ r,
//! Σ r·z and Σ r·(z·zᵀ + C_k) where C_k is the conditional covariance on the missing block: the
//! expected sufficient statistics of the complete data, which the ordinary M-step turns into the
//! next parameters. Initialisations read the column-mean-filled data through a plain CPU backend.

use rayon::prelude::*;

use crate::backend::{Backend, FitInfo, Output};
use crate::cpu::CpuBackend;
use crate::data::DataView;
use crate::error::GmmError;
use crate::kinds::CovarianceType;
use crate::linalg::packed_index;
use crate::mixture::Mixture;
use crate::stats::{SuffStats, tree_combine};

use super::{Conditional, Patterns, Run, normalise};

/// Rows per task: a function of N only, so the sums' order never depends on the thread count.
pub(crate) fn task_len(n: usize) -> usize {
    n.div_ceil(64).max(1024)
}

/// One task's scratch and partial sums, allocated once per shape.
pub(crate) struct Work {
    pub stats: SuffStats,
    pub cond: Conditional,
    /// ln π_k + ln N(x_o | k), then the responsibilities (K).
    pub lp: Vec<f64>,
    /// Each component's conditional mean of the missing features (K x d).
    pub x_miss: Vec<f64>,
    /// The row (d), the completed row (d), and triangular-solve scratch (d).
    pub x: Vec<f64>,
    pub z: Vec<f64>,
    pub y: Vec<f64>,
    /// Σ r per component over the current pattern's rows, for the conditional covariance term.
    pub r_sum: Vec<f64>,
}

impl Work {
    pub fn new(kind: CovarianceType, k: usize, d: usize) -> Self {
        Self {
            stats: SuffStats::new(kind, k, d),
            cond: Conditional::new(k, d),
            lp: vec![0.0; k],
            x_miss: vec![0.0; k * d],
            x: vec![0.0; d],
            z: vec![0.0; d],
            y: vec![0.0; d],
            r_sum: vec![0.0; k],
        }
    }

    /// The E-step of one row (read into `self.x`) of the current pattern: the log-densities and
    /// conditional means into `lp` and `x_miss`, then normalised; returns ln p(x_o).
    #[inline]
    pub fn posterior(&mut self, mix: &Mixture, run: &Run) -> f64 {
        let (k_n, d) = (mix.n_components, mix.n_features);
        for k in 0..k_n {
            self.lp[k] = self
                .cond
                .component(mix, k, &self.x, run, &mut self.y, &mut self.x_miss[k * d..(k + 1) * d]);
        }
        normalise(&mut self.lp)
    }
}

/// A fit's backend over data with missing values.
pub(crate) struct MissingBackend<'a> {
    data: DataView<'a>,
    sample_weight: Option<&'a [f64]>,
    patterns: Patterns,
    /// The column-mean-filled data, for the initialisations.
    filled: CpuBackend<'a>,
    work: Vec<Work>,
}

impl<'a> MissingBackend<'a> {
    /// `filled` is [`super::column_mean_filled`] of `data` (with the same weights).
    pub fn new(data: DataView<'a>, sample_weight: Option<&'a [f64]>, filled: &'a [f64]) -> Self {
        let filled_view = DataView::from_f64(filled, data.n_features()).expect("the filled data is finite");
        Self {
            data,
            sample_weight,
            patterns: Patterns::new(&data),
            filled: CpuBackend::new(filled_view, sample_weight),
            work: Vec::new(),
        }
    }

    /// The same backend for samples that start at global row `offset` (one rank's rows: the
    /// 'random' initialisation hashes global indices).
    pub fn with_offset(self, offset: usize) -> Self {
        Self {
            filled: self.filled.with_offset(offset),
            ..self
        }
    }

    fn prepare(&mut self, kind: CovarianceType, k: usize, d: usize) {
        if self.work.first().is_some_and(|w| w.stats.has_shape(kind, k, d)) {
            return;
        }
        let tasks = self.data.n_samples().div_ceil(task_len(self.data.n_samples()));
        self.work = (0..tasks).map(|_| Work::new(kind, k, d)).collect();
    }
}

/// Adds r_sum[k]·C_k (the conditional covariance on the missing block) to each component's
/// second moments.
fn add_conditional(work: &mut Work, missing: &[usize]) {
    let stats = &mut work.stats;
    let (k_n, d) = (stats.n_components, stats.n_features);
    let s2_len = SuffStats::s2_len(stats.kind, d);
    let nm = missing.len();
    for k in 0..k_n {
        let r = std::mem::take(&mut work.r_sum[k]);
        if nm == 0 {
            continue;
        }
        let c = work.cond.conditional_covariance(k);
        let s2 = &mut stats.s2[k * s2_len..(k + 1) * s2_len];
        match stats.kind {
            CovarianceType::Full | CovarianceType::Tied => {
                for a in 0..nm {
                    for b in a..nm {
                        s2[packed_index(missing[a], missing[b], d)] += r * c[a * nm + b];
                    }
                }
            }
            CovarianceType::Diag => {
                for a in 0..nm {
                    s2[missing[a]] += r * c[a * nm + a];
                }
            }
            CovarianceType::Spherical => s2[0] += r * (0..nm).map(|a| c[a * nm + a]).sum::<f64>(),
        }
    }
}

/// One task's statistics: rows `order[range]`, pattern by pattern.
fn task_statistics(
    data: &DataView,
    weights: Option<&[f64]>,
    patterns: &Patterns,
    range: std::ops::Range<usize>,
    mix: &Mixture,
    centres: &[f64],
    work: &mut Work,
) -> Result<(), GmmError> {
    work.stats.clear();
    let (k_n, d) = (mix.n_components, mix.n_features);
    let s2_len = SuffStats::s2_len(mix.cov_type, d);
    for (run, at) in patterns.runs_in(range) {
        let missing = &run.missing;
        work.cond.compute(mix, run)?;
        for &i in &patterns.order[at] {
            data.row_into(i, &mut work.x);
            let w = weights.map_or(1.0, |w| w[i]);
            let lse = work.posterior(mix, run);
            work.stats.score_sum += w * lse;
            work.stats.weight_sum += w;
            for k in 0..k_n {
                let wr = w * work.lp[k];
                work.r_sum[k] += wr;
                let c = &centres[k * d..(k + 1) * d];
                work.z.iter_mut().zip(&work.x).zip(c).for_each(|((z, x), c)| *z = x - c);
                for (a, &j) in missing.iter().enumerate() {
                    work.z[j] = work.x_miss[k * d + a] - c[j];
                }
                let z = &work.z;
                work.stats.s0[k] += wr;
                work.stats.s1[k * d..(k + 1) * d]
                    .iter_mut()
                    .zip(z)
                    .for_each(|(s, z)| *s += wr * z);
                let s2 = &mut work.stats.s2[k * s2_len..(k + 1) * s2_len];
                match mix.cov_type {
                    CovarianceType::Full | CovarianceType::Tied => {
                        for a in 0..d {
                            let wa = wr * z[a];
                            for b in a..d {
                                s2[packed_index(a, b, d)] += wa * z[b];
                            }
                        }
                    }
                    CovarianceType::Diag => s2.iter_mut().zip(z).for_each(|(s, z)| *s += wr * z * z),
                    CovarianceType::Spherical => s2[0] += wr * z.iter().map(|z| z * z).sum::<f64>(),
                }
            }
        }
        add_conditional(work, missing);
    }
    Ok(())
}

impl Backend for MissingBackend<'_> {
    fn n_samples(&self) -> usize {
        self.data.n_samples()
    }

    fn n_features(&self) -> usize {
        self.data.n_features()
    }

    fn gather_rows(&mut self, rows: &[usize], out: &mut [f64]) -> Result<(), GmmError> {
        self.filled.gather_rows(rows, out)
    }

    fn info(&self) -> FitInfo {
        CpuBackend::INFO
    }

    fn em_statistics(&mut self, mixture: &Mixture, centres: &[f64], stats: &mut SuffStats) -> Result<(), GmmError> {
        let (k, d) = (mixture.n_components, mixture.n_features);
        self.prepare(mixture.cov_type, k, d);
        let n = self.data.n_samples();
        let len = task_len(n);
        let (data, weights, patterns) = (&self.data, self.sample_weight, &self.patterns);
        self.work.par_iter_mut().enumerate().try_for_each(|(t, work)| {
            let range = t * len..((t + 1) * len).min(n);
            task_statistics(data, weights, patterns, range, mixture, centres, work)
        })?;
        tree_combine(&mut self.work, |w| &mut w.stats);
        stats.copy_from(&self.work[0].stats);
        Ok(())
    }

    fn label_statistics(&mut self, centroids: &[f64], stats: &mut SuffStats) -> Result<(), GmmError> {
        self.filled.label_statistics(centroids, stats)
    }

    fn random_statistics(&mut self, seed: u64, centres: &[f64], stats: &mut SuffStats) -> Result<(), GmmError> {
        self.filled.random_statistics(seed, centres, stats)
    }

    fn per_sample_outputs(&mut self, mixture: &Mixture, output: Output, out: &mut [f64]) -> Result<(), GmmError> {
        super::infer::outputs(&self.data, &self.patterns, mixture, output, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::test_util::{data, mixture};
    use crate::missing::covariance_entry;

    const TYPES: [CovarianceType; 4] = [
        CovarianceType::Full,
        CovarianceType::Tied,
        CovarianceType::Diag,
        CovarianceType::Spherical,
    ];

    /// The inverse of an n x n matrix by Gauss–Jordan elimination with partial pivoting.
    fn inverse(a: &[f64], n: usize) -> Vec<f64> {
        let mut m = a.to_vec();
        let mut inv: Vec<f64> = (0..n * n).map(|i| if i / n == i % n { 1.0 } else { 0.0 }).collect();
        for c in 0..n {
            let p = (c..n)
                .max_by(|&x, &y| m[x * n + c].abs().total_cmp(&m[y * n + c].abs()))
                .unwrap();
            for j in 0..n {
                m.swap(c * n + j, p * n + j);
                inv.swap(c * n + j, p * n + j);
            }
            let pivot = m[c * n + c];
            for j in 0..n {
                m[c * n + j] /= pivot;
                inv[c * n + j] /= pivot;
            }
            for r in (0..n).filter(|&r| r != c) {
                let f = m[r * n + c];
                for j in 0..n {
                    m[r * n + j] -= f * m[c * n + j];
                    inv[r * n + j] -= f * inv[c * n + j];
                }
            }
        }
        inv
    }

    /// The naive statistics, row by row with explicit inverses: log p(x_o), the conditional
    /// means and covariances, and the full second moments projected to the type's shape.
    fn naive(x: &[f64], w: &[f64], mix: &Mixture, centres: &[f64]) -> SuffStats {
        let (k_n, d) = (mix.n_components, mix.n_features);
        let mut s = SuffStats::new(mix.cov_type, k_n, d);
        let s2_len = SuffStats::s2_len(mix.cov_type, d);
        for (row, &wi) in x.chunks_exact(d).zip(w) {
            let o: Vec<usize> = (0..d).filter(|&j| !row[j].is_nan()).collect();
            let m: Vec<usize> = (0..d).filter(|&j| row[j].is_nan()).collect();
            let mut lp = vec![0.0; k_n];
            let mut completed = vec![vec![0.0; d]; k_n];
            let mut cond = vec![vec![0.0; d * d]; k_n];
            for k in 0..k_n {
                let sig = |i: usize, j: usize| covariance_entry(mix, k, i, j);
                let s_oo: Vec<f64> = o.iter().flat_map(|&i| o.iter().map(move |&j| sig(i, j))).collect();
                let inv = inverse(&s_oo, o.len());
                let mut chol = vec![0.0; o.len() * o.len()];
                assert!(crate::linalg::cholesky_lower(&s_oo, o.len(), &mut chol));
                let log_det: f64 = (0..o.len()).map(|a| 2.0 * chol[a * o.len() + a].ln()).sum();
                let diff: Vec<f64> = o.iter().map(|&j| row[j] - mix.means[k * d + j]).collect();
                let alpha: Vec<f64> = (0..o.len())
                    .map(|a| (0..o.len()).map(|b| inv[a * o.len() + b] * diff[b]).sum())
                    .collect();
                let maha: f64 = diff.iter().zip(&alpha).map(|(a, b)| a * b).sum();
                lp[k] =
                    mix.weights[k].ln() - 0.5 * (o.len() as f64 * (2.0 * std::f64::consts::PI).ln() + log_det + maha);
                completed[k] = row.to_vec();
                for &j in &m {
                    completed[k][j] =
                        mix.means[k * d + j] + o.iter().zip(&alpha).map(|(&i, a)| sig(j, i) * a).sum::<f64>();
                }
                for &i in &m {
                    for &j in &m {
                        let back: f64 = (0..o.len())
                            .flat_map(|a| (0..o.len()).map(move |b| (a, b)))
                            .map(|(a, b)| sig(i, o[a]) * inv[a * o.len() + b] * sig(o[b], j))
                            .sum();
                        cond[k][i * d + j] = sig(i, j) - back;
                    }
                }
            }
            let max = lp.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let lse = max + lp.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
            s.score_sum += wi * lse;
            s.weight_sum += wi;
            for k in 0..k_n {
                let r = wi * (lp[k] - lse).exp();
                let z: Vec<f64> = (0..d).map(|j| completed[k][j] - centres[k * d + j]).collect();
                s.s0[k] += r;
                (0..d).for_each(|j| s.s1[k * d + j] += r * z[j]);
                let full = |i: usize, j: usize| r * (z[i] * z[j] + cond[k][i * d + j]);
                let s2 = &mut s.s2[k * s2_len..(k + 1) * s2_len];
                match mix.cov_type {
                    CovarianceType::Full | CovarianceType::Tied => {
                        (0..d).for_each(|i| (i..d).for_each(|j| s2[packed_index(i, j, d)] += full(i, j)))
                    }
                    CovarianceType::Diag => (0..d).for_each(|i| s2[i] += full(i, i)),
                    CovarianceType::Spherical => s2[0] += (0..d).map(|i| full(i, i)).sum::<f64>(),
                }
            }
        }
        s
    }

    fn flat(s: &SuffStats) -> Vec<f64> {
        let mut v = Vec::new();
        s.flatten_into(&mut v);
        v
    }

    #[test]
    fn statistics_match_the_naive_formulas_with_missing_values() {
        // 2,500 rows (three tasks) of 4 features, each entry missing with probability 0.3.
        let (n, d, k) = (2500, 4, 3);
        let mut x = data(n, d, 1);
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(2);
        for row in x.chunks_exact_mut(d) {
            for v in &mut row[..d - 1] {
                if rand::RngExt::random::<f64>(&mut rng) < 0.3 {
                    *v = f64::NAN;
                }
            }
        }
        let w: Vec<f64> = (0..n).map(|i| 0.5 + (i % 4) as f64).collect();
        let view = DataView::with_missing(crate::data::Samples::F64(&x), d).unwrap();
        let filled = super::super::column_mean_filled(&view, Some(&w));
        for cov in TYPES {
            let mix = mixture(cov, k, d, 3);
            let centres: Vec<f64> = mix.means.iter().map(|m| m + 0.25).collect();
            let mut backend = MissingBackend::new(view, Some(&w), &filled);
            let mut got = SuffStats::new(cov, k, d);
            backend.em_statistics(&mix, &centres, &mut got).unwrap();
            let expected = naive(&x, &w, &mix, &centres);
            let (got, expected) = (flat(&got), flat(&expected));
            // Cholesky solves against explicit inverses, summed in another order over 2,500 rows.
            let scale = expected.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let (i, err) = got
                .iter()
                .zip(&expected)
                .map(|(a, b)| (a - b).abs() / scale)
                .enumerate()
                .fold((0, 0.0), |w, (i, e)| if e > w.1 { (i, e) } else { w });
            assert!(
                err < 1e-13,
                "{cov}: worst entry [{i}] {} vs {} (relative to the largest {scale})",
                got[i],
                expected[i]
            );
        }
    }

    #[test]
    fn statistics_of_complete_data_match_the_cpu_kernels() {
        let (n, d, k) = (3000, 5, 4);
        let x = data(n, d, 4);
        let view = DataView::with_missing(crate::data::Samples::F64(&x), d).unwrap();
        let filled = super::super::column_mean_filled(&view, None);
        for cov in TYPES {
            let mix = mixture(cov, k, d, 5);
            let mut ours = SuffStats::new(cov, k, d);
            MissingBackend::new(view, None, &filled)
                .em_statistics(&mix, &mix.means, &mut ours)
                .unwrap();
            let mut cpu = SuffStats::new(cov, k, d);
            CpuBackend::new(view, None)
                .em_statistics(&mix, &mix.means, &mut cpu)
                .unwrap();
            let (a, b) = (flat(&ours), flat(&cpu));
            let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let err = a.iter().zip(&b).map(|(a, b)| (a - b).abs() / scale).fold(0.0, f64::max);
            // Σ's Cholesky against the precision factors, and another order of the sums.
            assert!(err < 1e-13, "{cov}: {err}");
        }
    }

    #[test]
    fn initialisations_read_the_column_mean_filled_data() {
        let x = [1.0, f64::NAN, 3.0, 4.0, f64::NAN, 8.0];
        let w = [1.0, 1.0, 3.0];
        let view = DataView::with_missing(crate::data::Samples::F64(&x), 2).unwrap();
        let filled = super::super::column_mean_filled(&view, Some(&w));
        // Column 0: (1·1 + 1·3)/2 = 2; column 1: (1·4 + 3·8)/4 = 7.
        assert_eq!(filled, [1.0, 7.0, 3.0, 4.0, 2.0, 8.0]);
        let mut out = [0.0; 4];
        MissingBackend::new(view, Some(&w), &filled)
            .gather_rows(&[0, 2], &mut out)
            .unwrap();
        assert_eq!(out, [1.0, 7.0, 2.0, 8.0]);
    }
}
