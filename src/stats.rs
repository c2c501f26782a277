//! Sufficient statistics: what a backend returns for one pass over the data, and all the M-step needs.

use crate::kinds::CovarianceType;
use crate::linalg::packed_len;

/// Responsibility-weighted sums over the samples, per component, around centres c_k chosen by the driver.
///
/// With r = sample weight x responsibility and z = x - c_k:
/// - `s0[k]` = Σ r
/// - `s1[k·d + i]` = Σ r·z_i
/// - `s2`: Σ r·z·zᵀ as a packed upper triangle per component (full and tied), its diagonal (diag),
///   or its trace (spherical); see [`SuffStats::s2_len`].
/// - `score_sum` = Σ w·log p(x) for EM passes (Σ w·‖x − c‖² to the nearest centre for k-means passes),
///   and `weight_sum` = Σ w.
#[derive(Clone, Debug, PartialEq)]
pub struct SuffStats {
    pub(crate) kind: CovarianceType,
    pub(crate) n_components: usize,
    pub(crate) n_features: usize,
    pub(crate) s0: Vec<f64>,
    pub(crate) s1: Vec<f64>,
    pub(crate) s2: Vec<f64>,
    pub(crate) score_sum: f64,
    pub(crate) weight_sum: f64,
}

impl SuffStats {
    /// Zeroed statistics whose second moments have the shape `kind` needs.
    pub fn new(kind: CovarianceType, n_components: usize, n_features: usize) -> Self {
        Self {
            kind,
            n_components,
            n_features,
            s0: vec![0.0; n_components],
            s1: vec![0.0; n_components * n_features],
            s2: vec![0.0; n_components * Self::s2_len(kind, n_features)],
            score_sum: 0.0,
            weight_sum: 0.0,
        }
    }

    /// Second-moment values per component: d(d+1)/2 for full and tied, d for diag, 1 for spherical.
    pub fn s2_len(kind: CovarianceType, n_features: usize) -> usize {
        match kind {
            CovarianceType::Full | CovarianceType::Tied => packed_len(n_features),
            CovarianceType::Diag => n_features,
            CovarianceType::Spherical => 1,
        }
    }

    /// Whether these statistics have the given shape.
    pub(crate) fn has_shape(&self, kind: CovarianceType, n_components: usize, n_features: usize) -> bool {
        self.kind == kind && self.n_components == n_components && self.n_features == n_features
    }

    /// Sets every sum to zero, keeping the allocation.
    pub fn clear(&mut self) {
        self.s0.fill(0.0);
        self.s1.fill(0.0);
        self.s2.fill(0.0);
        self.score_sum = 0.0;
        self.weight_sum = 0.0;
    }

    /// Adds another set of statistics of the same shape, entry by entry.
    /// All the sums in one vector (S0, S1, S2, the score and the weight), reusing `out`'s memory:
    /// what ranks exchange.
    pub(crate) fn flatten_into(&self, out: &mut Vec<f64>) {
        out.clear();
        out.extend_from_slice(&self.s0);
        out.extend_from_slice(&self.s1);
        out.extend_from_slice(&self.s2);
        out.extend([self.score_sum, self.weight_sum]);
    }

    /// The inverse of [`SuffStats::flatten_into`] (what `flat` holds past the statistics is not read).
    pub(crate) fn unflatten_from(&mut self, flat: &[f64]) {
        let (s0, rest) = flat.split_at(self.s0.len());
        let (s1, rest) = rest.split_at(self.s1.len());
        let (s2, rest) = rest.split_at(self.s2.len());
        self.s0.copy_from_slice(s0);
        self.s1.copy_from_slice(s1);
        self.s2.copy_from_slice(s2);
        [self.score_sum, self.weight_sum] = [rest[0], rest[1]];
    }

    pub fn add(&mut self, other: &SuffStats) {
        debug_assert!(other.has_shape(self.kind, self.n_components, self.n_features));
        let add = |a: &mut [f64], b: &[f64]| a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        add(&mut self.s0, &other.s0);
        add(&mut self.s1, &other.s1);
        add(&mut self.s2, &other.s2);
        self.score_sum += other.score_sum;
        self.weight_sum += other.weight_sum;
    }

    /// Moves the centres the sums are taken around from `from` to `to` (K × d each), exactly in
    /// exact arithmetic: with δ = from − to, x − to = (x − from) + δ, so S1 += S0·δ and
    /// S2 += δS1ᵀ + S1δᵀ + S0·δδᵀ (its diagonal for diag, its trace for spherical).
    pub(crate) fn recentre(&mut self, from: &[f64], to: &[f64]) {
        let (k_n, d) = (self.n_components, self.n_features);
        let s2_len = Self::s2_len(self.kind, d);
        for k in 0..k_n {
            let delta = |i: usize| from[k * d + i] - to[k * d + i];
            let s0 = self.s0[k];
            let s1 = &mut self.s1[k * d..(k + 1) * d];
            let s2 = &mut self.s2[k * s2_len..(k + 1) * s2_len];
            match self.kind {
                CovarianceType::Full | CovarianceType::Tied => {
                    for i in 0..d {
                        for j in i..d {
                            s2[crate::linalg::packed_index(i, j, d)] +=
                                delta(i) * s1[j] + s1[i] * delta(j) + s0 * delta(i) * delta(j);
                        }
                    }
                }
                CovarianceType::Diag => {
                    for (i, v) in s2.iter_mut().enumerate() {
                        *v += 2.0 * delta(i) * s1[i] + s0 * delta(i) * delta(i);
                    }
                }
                CovarianceType::Spherical => {
                    s2[0] += (0..d)
                        .map(|i| 2.0 * delta(i) * s1[i] + s0 * delta(i) * delta(i))
                        .sum::<f64>();
                }
            }
            for (i, v) in s1.iter_mut().enumerate() {
                *v += s0 * delta(i);
            }
        }
    }

    /// self ← a·self + b·other, entry by entry (the score and the weight are other's).
    pub(crate) fn blend(&mut self, a: f64, other: &SuffStats, b: f64) {
        let mix = |x: &mut [f64], y: &[f64]| x.iter_mut().zip(y).for_each(|(u, v)| *u = a * *u + b * v);
        mix(&mut self.s0, &other.s0);
        mix(&mut self.s1, &other.s1);
        mix(&mut self.s2, &other.s2);
        self.score_sum = other.score_sum;
        self.weight_sum = other.weight_sum;
    }

    /// Copies another set of statistics of the same shape, keeping this allocation.
    pub fn copy_from(&mut self, other: &SuffStats) {
        self.s0.copy_from_slice(&other.s0);
        self.s1.copy_from_slice(&other.s1);
        self.s2.copy_from_slice(&other.s2);
        self.score_sum = other.score_sum;
        self.weight_sum = other.weight_sum;
    }
}

/// Combines a list of partial statistics into the first, by a pairwise tree in a fixed order,
/// so the result depends only on the partition, never on thread scheduling.
pub(crate) fn tree_combine<T>(parts: &mut [T], stats: impl Fn(&mut T) -> &mut SuffStats) {
    let n = parts.len();
    let mut step = 1;
    while step < n {
        let mut i = 0;
        while i + step < n {
            let (left, right) = parts.split_at_mut(i + step);
            let other: &SuffStats = stats(&mut right[0]);
            stats(&mut left[i]).add(other);
            i += 2 * step;
        }
        step *= 2;
    }
}

/// A pairwise (cascade) sum: rounding error O(log N · eps) rather than the O(N · eps) of a running sum.
///
/// [`crate::GmmModel::score`] is this sum of [`crate::GmmModel::score_samples`] divided by N, so a
/// caller that already holds the per-sample scores (from the CPU or the GPU) gets the same mean,
/// to the last bit, without scoring twice.
pub fn pairwise_sum(v: &[f64]) -> f64 {
    if v.len() <= 64 {
        v.iter().sum()
    } else {
        let (a, b) = v.split_at(v.len() / 2);
        pairwise_sum(a) + pairwise_sum(b)
    }
}
