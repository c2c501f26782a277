//! A fit's start from responsibilities the user gives (N × K, or one label per sample): their
//! checks, and the sufficient statistics they imply, summed on the host in f64 from rows the
//! backend reads back (once per fit).

use std::sync::Arc;

use crate::error::GmmError;
use crate::kinds::CovarianceType;
use crate::linalg::packed_index;
use crate::stats::SuffStats;

/// Starting responsibilities: a row of K per sample, or a label per sample (a row with a single 1).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum GivenStart {
    Responsibilities(Arc<[f64]>),
    Labels(Arc<[usize]>),
}

/// How far a row of responsibilities may sum from 1: a row computed in f32 and normalised there
/// sums to 1 within a few 1e-7; anything further is not a distribution.
const ROW_SUM_TOLERANCE: f64 = 1e-6;

impl GivenStart {
    /// Samples covered.
    pub fn n_rows(&self, k: usize) -> usize {
        match self {
            Self::Responsibilities(r) => r.len() / k,
            Self::Labels(l) => l.len(),
        }
    }

    /// The checks that need no data: a whole number of rows of K, every entry finite and >= 0,
    /// every row summing to 1; labels below K.
    pub fn check(&self, k: usize) -> Result<(), GmmError> {
        match self {
            Self::Responsibilities(r) => {
                if r.is_empty() || r.len() % k != 0 {
                    return Err(GmmError::InitResponsibilitiesShape {
                        n_components: k,
                        got: r.len(),
                    });
                }
                for (row, values) in r.chunks_exact(k).enumerate() {
                    if let Some(component) = values.iter().position(|v| !(v.is_finite() && *v >= 0.0)) {
                        return Err(GmmError::InitResponsibilitiesNegative {
                            row,
                            component,
                            value: values[component],
                        });
                    }
                    let sum: f64 = values.iter().sum();
                    if (sum - 1.0).abs() > ROW_SUM_TOLERANCE {
                        return Err(GmmError::InitResponsibilitiesRowSum { row, sum });
                    }
                }
            }
            Self::Labels(l) => {
                if let Some(row) = l.iter().position(|&c| c >= k) {
                    return Err(GmmError::InitLabelOutOfRange {
                        row,
                        label: l[row],
                        n_components: k,
                    });
                }
            }
        }
        Ok(())
    }

    /// Rows `first..first + n` only (a rank's share of a distributed fit).
    pub fn rows(&self, first: usize, n: usize, k: usize) -> Self {
        match self {
            Self::Responsibilities(r) => Self::Responsibilities(r[first * k..(first + n) * k].into()),
            Self::Labels(l) => Self::Labels(l[first..first + n].into()),
        }
    }

    /// The responsibility of component `c` for sample `i`.
    fn at(&self, i: usize, c: usize, k: usize) -> f64 {
        match self {
            Self::Responsibilities(r) => r[i * k + c],
            Self::Labels(l) => f64::from(u8::from(l[i] == c)),
        }
    }
}

/// Reads sorted rows into a row-major f64 buffer (a backend's `gather_rows`).
pub(crate) type Gather<'a> = &'a mut dyn FnMut(&[usize], &mut [f64]) -> Result<(), GmmError>;

/// Rows read back per block: bounded host memory for any N.
const BLOCK: usize = 16_384;

/// The statistics of `start` over `n` samples around `centres`, weighted by `sample_weight`,
/// from rows that `gather` reads (sorted row indices into a row-major f64 buffer), summed in f64.
pub(crate) fn given_statistics(
    start: &GivenStart,
    n: usize,
    sample_weight: Option<&[f64]>,
    centres: &[f64],
    stats: &mut SuffStats,
    gather: Gather<'_>,
) -> Result<(), GmmError> {
    let (k, d, kind) = (stats.n_components, stats.n_features, stats.kind);
    stats.clear();
    // Each block sums on its own, then adds to the totals: two levels, so that rounding grows
    // with the block size and the number of blocks, not with N.
    let mut block = SuffStats::new(kind, k, d);
    let s2_len = SuffStats::s2_len(kind, d);
    let mut rows = vec![0.0; BLOCK.min(n) * d];
    let mut z = vec![0.0; d];
    for first in (0..n).step_by(BLOCK) {
        let m = BLOCK.min(n - first);
        let indices: Vec<usize> = (first..first + m).collect();
        gather(&indices, &mut rows[..m * d])?;
        block.clear();
        for (j, x) in rows[..m * d].chunks_exact(d).enumerate() {
            let i = first + j;
            let w = sample_weight.map_or(1.0, |w| w[i]);
            block.weight_sum += w;
            for c in 0..k {
                let r = w * start.at(i, c, k);
                if r == 0.0 {
                    continue;
                }
                for (zi, (xi, ci)) in z.iter_mut().zip(x.iter().zip(&centres[c * d..(c + 1) * d])) {
                    *zi = xi - ci;
                }
                block.s0[c] += r;
                for (s, zi) in block.s1[c * d..(c + 1) * d].iter_mut().zip(&z) {
                    *s += r * zi;
                }
                let s2 = &mut block.s2[c * s2_len..(c + 1) * s2_len];
                match kind {
                    CovarianceType::Full | CovarianceType::Tied => {
                        for a in 0..d {
                            for b in a..d {
                                s2[packed_index(a, b, d)] += r * z[a] * z[b];
                            }
                        }
                    }
                    CovarianceType::Diag => {
                        for (s, zi) in s2.iter_mut().zip(&z) {
                            *s += r * zi * zi;
                        }
                    }
                    CovarianceType::Spherical => s2[0] += r * z.iter().map(|v| v * v).sum::<f64>(),
                }
            }
        }
        for (total, part) in [
            (&mut stats.s0, &block.s0),
            (&mut stats.s1, &block.s1),
            (&mut stats.s2, &block.s2),
        ] {
            for (t, p) in total.iter_mut().zip(part) {
                *t += p;
            }
        }
        stats.weight_sum += block.weight_sum;
    }
    Ok(())
}
