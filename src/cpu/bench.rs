//! The block kernels one at a time, single-threaded, for the Criterion benches (`benches/cpu_kernels.rs`).

use super::block::{BLOCK, Block, Packed};
use super::{estep, reduce};
use crate::GmmModel;
use crate::stats::SuffStats;

/// A model's parameters packed for the kernels, with one block of scratch and the statistics.
pub struct KernelBench<'a> {
    data: &'a [f64],
    packed: Packed,
    block: Block,
    stats: SuffStats,
}

impl<'a> KernelBench<'a> {
    /// Packs `model` for the row-major f64 `data`, which has the model's number of features.
    pub fn new(model: &GmmModel, data: &'a [f64]) -> Self {
        let m = &model.mixture;
        let (k, d) = (m.n_components, m.n_features);
        let mut packed = Packed::default();
        packed.fill(Some(m), &m.means, k, d);
        Self {
            data,
            packed,
            block: Block::new(k, d, true),
            stats: SuffStats::new(m.cov_type, k, d),
        }
    }

    fn blocks(&mut self, mut f: impl FnMut(&Packed, &mut Block, &mut SuffStats)) {
        let d = self.packed.d;
        let n = self.data.len() / d;
        for first in (0..n).step_by(BLOCK) {
            self.block.load(self.data, d, None, first, BLOCK.min(n - first));
            f(&self.packed, &mut self.block, &mut self.stats);
        }
    }

    /// The E-step over all samples: log-densities, then responsibilities and log p(x).
    pub fn estep(&mut self) {
        let k = self.packed.k;
        self.blocks(|p, b, _| {
            estep::log_densities(p, b);
            estep::normalise(k, b);
        });
    }

    /// The statistics over all samples, from the responsibilities the last block of the E-step left
    /// (the same for every block: the kernel's cost does not depend on their values).
    pub fn statistics(&mut self) -> f64 {
        self.stats.clear();
        self.block.moments.fill(0.0);
        self.blocks(reduce::accumulate_block);
        reduce::fold_moments(&self.packed, &self.block, &mut self.stats);
        self.stats.s0.iter().sum()
    }
}
