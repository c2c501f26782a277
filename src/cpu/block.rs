//! A block of samples in the two layouts the kernels want, and the parameters padded to match.
//!
//! The E-step runs across samples (features x lanes, "SoA"), the statistics across features (samples
//! x features, "AoS"); both are built once per block from the rows, widened to f64 as they are read.
//! Features are padded with zeros to a whole number of lanes so that every kernel loop has a fixed
//! trip count; a zero feature adds exactly nothing to any sum.

// Lane loops index by lane on purpose: `for l in 0..W` over several arrays is what vectorises.
#![allow(clippy::needless_range_loop)]

use super::lanes::{L, W, multiversion, round_up};
use crate::data::Element;
use crate::kinds::CovarianceType;
use crate::mixture::Mixture;

/// Samples per block: the inner sums run over a block, then add into the task's sum.
pub(crate) const BLOCK: usize = 64;
/// Lane vectors per block.
pub(crate) const CHUNKS: usize = BLOCK / W;

/// The parameters of one pass, padded to `dp` features; refilled each pass without allocating.
#[derive(Default)]
pub(crate) struct Packed {
    pub kind: Option<CovarianceType>,
    pub k: usize,
    pub d: usize,
    /// d rounded up to whole lanes.
    pub dp: usize,
    /// K x dp: the means the E-step centres on.
    pub means: Vec<f64>,
    /// Full and tied: K x dp x dp upper factors U (tied repeated); diag and spherical: K x dp of 1/σ.
    pub factors: Vec<f64>,
    /// log π_k − (d/2)·log 2π + log det U_k.
    pub consts: Vec<f64>,
    /// K x dp: the centres the statistics are taken around.
    pub centres: Vec<f64>,
}

/// Clears `v` and makes it `len` zeros, reusing its allocation.
fn zeroed(v: &mut Vec<f64>, len: usize) {
    v.clear();
    v.resize(len, 0.0);
}

impl Packed {
    /// Packs the centres (K x d), and the mixture if the pass has one.
    pub fn fill(&mut self, mixture: Option<&Mixture>, centres: &[f64], k: usize, d: usize) {
        let dp = round_up(d);
        (self.k, self.d, self.dp) = (k, d, dp);
        zeroed(&mut self.centres, k * dp);
        for (c, src) in self.centres.chunks_exact_mut(dp).zip(centres.chunks_exact(d)) {
            c[..d].copy_from_slice(src);
        }
        self.kind = mixture.map(|m| m.cov_type);
        let Some(m) = mixture else { return };
        zeroed(&mut self.means, k * dp);
        for (c, src) in self.means.chunks_exact_mut(dp).zip(m.means.chunks_exact(d)) {
            c[..d].copy_from_slice(src);
        }
        self.consts.clear();
        self.consts.extend_from_slice(&m.log_consts);
        match m.cov_type {
            CovarianceType::Full | CovarianceType::Tied => {
                zeroed(&mut self.factors, k * dp * dp);
                for (j, f) in self.factors.chunks_exact_mut(dp * dp).enumerate() {
                    let u = m.precision_factor(j);
                    for (row, src) in f.chunks_exact_mut(dp).zip(u.chunks_exact(d)) {
                        row[..d].copy_from_slice(src);
                    }
                }
            }
            // Spherical as diag, its one 1/σ repeated: one kernel serves both.
            CovarianceType::Diag | CovarianceType::Spherical => {
                zeroed(&mut self.factors, k * dp);
                let per = if m.cov_type == CovarianceType::Diag { d } else { 1 };
                for (j, f) in self.factors.chunks_exact_mut(dp).enumerate() {
                    for (i, f) in f[..d].iter_mut().enumerate() {
                        *f = m.precisions_cholesky[j * per + i % per];
                    }
                }
            }
        }
    }
}

/// One task's scratch for a block: everything the kernels touch, allocated once.
pub(crate) struct Block {
    /// Valid samples in the block (the rest are zero padding with zero weight).
    pub n: usize,
    /// Lane vectors holding the valid samples.
    pub chunks: usize,
    /// dp x CHUNKS: the samples, feature-major.
    pub xt: Vec<L>,
    /// BLOCK x dp: the samples, sample-major.
    pub xa: Vec<f64>,
    /// CHUNKS: the sample weights (0 past n).
    pub w: Vec<L>,
    /// K x CHUNKS: log-densities, then w·responsibilities.
    pub resp: Vec<L>,
    /// CHUNKS: w·score per sample.
    pub score: Vec<L>,
    /// dp: one lane vector's x − μ_k.
    pub z: Vec<L>,
    /// BLOCK x dp: √r·(x − c_k), sample-major (full and tied).
    pub yk: Vec<f64>,
    /// Full and tied: K x dp x dp, the task's running Σ r·z·zᵀ per component, dense and column-major
    /// (only a <= b is used); folded into the packed statistics once, after the task's last block.
    /// Empty for the other types and for passes without statistics.
    pub moments: Vec<f64>,
}

impl Block {
    /// f64 values a block's scratch holds, for the memory budget; `dense` as in [`Block::new`].
    pub fn values(k: usize, d: usize, dense: bool) -> usize {
        let dp = round_up(d);
        (3 * dp + k + 2) * BLOCK + dp * W + if dense { k * dp * dp } else { 0 }
    }

    /// Scratch for K components and d features; `dense`: with the dense second moments that full and
    /// tied statistics accumulate in.
    pub fn new(k: usize, d: usize, dense: bool) -> Self {
        let dp = round_up(d);
        Self {
            n: 0,
            chunks: 0,
            xt: vec![L::ZERO; dp * CHUNKS],
            xa: vec![0.0; BLOCK * dp],
            w: vec![L::ZERO; CHUNKS],
            resp: vec![L::ZERO; k * CHUNKS],
            score: vec![L::ZERO; CHUNKS],
            z: vec![L::ZERO; dp],
            yk: vec![0.0; BLOCK * dp],
            moments: vec![0.0; if dense { k * dp * dp } else { 0 }],
        }
    }

    /// Reads samples `first..first + n` (n <= BLOCK) of the row-major `rows` with d features,
    /// and their weights.
    #[inline(always)]
    pub fn load<T: Element>(&mut self, rows: &[T], d: usize, weights: Option<&[f64]>, first: usize, n: usize) {
        let dp = self.xa.len() / BLOCK;
        self.n = n;
        self.chunks = n.div_ceil(W);
        let src = &rows[first * d..(first + n) * d];
        for (dst, row) in self.xa.chunks_exact_mut(dp).zip(src.chunks_exact(d)) {
            for (o, v) in dst.iter_mut().zip(row) {
                *o = v.to_f64();
            }
        }
        // The padding samples of a short last block: zeros, so that every lane stays finite.
        self.xa[n * dp..].fill(0.0);
        transpose(&self.xa, &mut self.xt, self.chunks, dp);
        for (i, w) in self.w.iter_mut().flat_map(|w| w.0.iter_mut()).enumerate() {
            *w = if i >= n {
                0.0
            } else {
                weights.map_or(1.0, |ws| ws[first + i])
            };
        }
    }
}

multiversion! {
    /// The sample-major block `xa` (BLOCK x dp) into the feature-major `xt` (dp x CHUNKS lane vectors),
    /// for the first `chunks` vectors.
    fn transpose(xa: &[f64], xt: &mut [L], chunks: usize, dp: usize) {
        for c in 0..chunks {
            // W rows of xa, each read W features at a time: an 8 x 8 tile per step.
            let rows = &xa[c * W * dp..(c + 1) * W * dp];
            for j0 in (0..dp).step_by(W) {
                for j in 0..W {
                    let x = &mut xt[(j0 + j) * CHUNKS + c].0;
                    for (l, x) in x.iter_mut().enumerate() {
                        *x = rows[l * dp + j0 + j];
                    }
                }
            }
        }
    }
}
