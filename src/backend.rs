//! The seam between the shared EM driver and a compute backend: parameters and data in, sufficient statistics out.

use crate::error::GmmError;
use crate::mixture::Mixture;
use crate::stats::SuffStats;

/// What a backend does for the driver. It holds the data (and sample weights) for the whole fit;
/// everything else — initialisation, the M-step, the convergence check — is shared.
///
/// Every pass writes `stats` around the given centres (row-major K x d), with second moments shaped
/// by `stats.kind`. Results must be deterministic: the same inputs give bitwise the same statistics.
pub(crate) trait Backend {
    /// One E-step and reduction: responsibilities from `mixture`, then their weighted sums around `centres`,
    /// and Σ w·log p(x) in `stats.score_sum`.
    fn em_statistics(
        &mut self,
        mixture: &Mixture,
        centres: &[f64],
        stats: &mut SuffStats,
    ) -> Result<(), GmmError>;

    /// One k-means pass: each sample is assigned wholly to its nearest centroid (lowest index on ties),
    /// and the sums are taken around the centroids. `stats.score_sum` is the weighted inertia.
    fn label_statistics(
        &mut self,
        centroids: &[f64],
        stats: &mut SuffStats,
    ) -> Result<(), GmmError>;

    /// Statistics of uniformly random responsibilities, normalised per sample (scikit-learn's 'random'
    /// init), drawn from a counter-based hash of (seed, sample, component) so that any backend can
    /// reproduce them.
    fn random_statistics(
        &mut self,
        seed: u64,
        centres: &[f64],
        stats: &mut SuffStats,
    ) -> Result<(), GmmError>;
}

/// A uniform number in (0, 1] for (seed, sample, component): SplitMix64 over the triple.
#[inline]
pub(crate) fn hash_uniform(seed: u64, sample: u64, component: u64) -> f64 {
    let mut z = seed ^ splitmix(sample.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ splitmix(component));
    z = splitmix(z);
    ((z >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
}

#[inline]
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
