//! Exact byte and flop counts of each kernel of an EM statistics pass, derived from the pass's shape
//! (the chunks, blocks and combine levels the GPU backend planned), for `gmm bench`'s GB/s and
//! GFLOP/s.
//!
//! - **Bytes** are the global-memory bytes a kernel must move: every buffer region it reads or
//!   writes, counted once (the DRAM traffic of a perfect cache). Re-reads that hit in cache, such as
//!   the K workgroups of a sample tile each reading its rows, are not counted.
//! - **Flops** are the algorithm's f32 arithmetic: each +, −, ×, ÷, √, exp, log and comparison-free
//!   step of the formula counted once, as peers count theirs. The kernels evaluate these in two-float
//!   (error-free) arithmetic, which executes several f32 instructions per counted flop, so the
//!   instruction rate is higher than the GFLOP/s shown.

use crate::gpu::layout::WG;
use crate::gpu::passes::Kernel;
use crate::kinds::CovarianceType;
use crate::linalg::packed_len;

/// The shape of one EM statistics pass.
#[derive(Clone, Debug, PartialEq)]
pub struct PassShape {
    pub n_features: usize,
    pub n_components: usize,
    pub covariance: CovarianceType,
    pub has_weights: bool,
    pub chunks: Vec<ChunkShape>,
    /// Bytes each stored h and each stored responsibility takes in device memory: 4 and 4 in fast
    /// arithmetic, 8 (hi and lo) and 4 in two-float, 8 and 8 in f64.
    pub h_bytes: u64,
    pub r_bytes: u64,
}

/// One chunk of the pass: its samples, its statistics blocks, and its combine tree's levels as
/// (rows in, rows out).
#[derive(Clone, Debug, PartialEq)]
pub struct ChunkShape {
    pub samples: usize,
    pub blocks: usize,
    pub levels: Vec<(usize, usize)>,
}

/// What one kernel moves and computes over a whole pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cost {
    pub bytes: u64,
    pub flops: u64,
}

/// What an inference pass moves per sample (a perfect cache; the model, read once per pass, is
/// left out): the samples in, the outputs asked for out, and, on the two-pass path, h through
/// device memory (written by the log-density kernels, read by `infer_h`) and, for responsibilities,
/// each e_k stored and read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InferShape {
    pub n_features: usize,
    pub n_components: usize,
    pub labels: bool,
    pub log_density: bool,
    pub responsibilities: bool,
    /// Whether h comes straight from the samples (shaders/infer.wgsl `infer`), never stored.
    pub direct: bool,
    /// Bytes per stored h and per stored e_k, as [`PassShape`]'s.
    pub h_bytes: u64,
    pub r_bytes: u64,
}

impl InferShape {
    /// Global-memory bytes per sample.
    pub fn bytes_per_sample(&self) -> u64 {
        let (k, d) = (self.n_components as u64, self.n_features as u64);
        let outputs = F32 * (u64::from(self.labels) + u64::from(self.log_density))
            + if self.responsibilities { k * F32 } else { 0 };
        let h = if self.direct { 0 } else { 2 * k * self.h_bytes };
        let e = if self.responsibilities { 2 * k * self.r_bytes } else { 0 };
        d * F32 + h + e + outputs
    }
}

const F32: u64 = 4;
/// A two-float value.
const DF: u64 = 8;

impl PassShape {
    /// Statistics per component: S0, S1 (d) and the second moments (packed d(d+1)/2, or d).
    pub fn n_outputs(&self) -> usize {
        let d = self.n_features;
        1 + d
            + match self.covariance {
                CovarianceType::Full | CovarianceType::Tied => packed_len(d),
                CovarianceType::Diag | CovarianceType::Spherical => d,
            }
    }

    /// Two-float values in one partial row: K·E statistics and the score.
    fn row_len(&self) -> u64 {
        (self.n_components * self.n_outputs() + 1) as u64
    }

    /// f32 values of the precision factors in the model buffer (each stored as hi and lo).
    fn factor_len(&self) -> u64 {
        let (k, d) = (self.n_components as u64, self.n_features as u64);
        match self.covariance {
            CovarianceType::Full => k * d * (d + 1) / 2,
            CovarianceType::Tied => d * (d + 1) / 2,
            CovarianceType::Diag | CovarianceType::Spherical => k * d,
        }
    }

    /// The cost of `kernel` over the whole pass (zero for kernels an EM pass does not run).
    pub fn cost(&self, kernel: Kernel) -> Cost {
        let (k, d) = (self.n_components as u64, self.n_features as u64);
        let n: u64 = self.chunks.iter().map(|c| c.samples as u64).sum();
        let weights = if self.has_weights { n * F32 } else { 0 };
        let full = matches!(self.covariance, CovarianceType::Full | CovarianceType::Tied);
        match kernel {
            Kernel::Logprob => Cost {
                // x; the means and factors (hi and lo); h as hi (in resp) and, but in fast
                // arithmetic, lo.
                bytes: n * d * F32 + (k * d + self.factor_len()) * DF + n * k * self.h_bytes,
                // z = x − μ (d), y = Uᵀz (d(d+1)/2 multiply-adds, or d products), Σ y² (2d), −½ (1).
                flops: n
                    * k
                    * if full {
                        d + d * (d + 1) + 2 * d + 1
                    } else {
                        d + d + 2 * d + 1
                    },
            },
            Kernel::Normalise => {
                let groups: u64 = self.chunks.iter().map(|c| c.samples.div_ceil(WG as usize) as u64).sum();
                Cost {
                    // h and c (hi, lo) in; responsibilities, log p and the groups' sums out.
                    bytes: n * k * self.h_bytes + k * DF + weights + n * k * self.r_bytes + n * F32 + groups * DF,
                    // Per (n, k): L = c + h, Δ = L − L_best, exp, Σ, ×w/Σ. Per n: log, L_best + log Σ,
                    // w/Σ, and w·log p.
                    flops: n * k * 5 + n * 4,
                }
            }
            Kernel::Stats => {
                let blocks: u64 = self.chunks.iter().map(|c| c.blocks as u64).sum();
                let e = self.n_outputs() as u64;
                Cost {
                    // x and the responsibilities in; the blocks' partial rows out.
                    bytes: n * d * F32 + n * k * self.r_bytes + k * d * F32 + blocks * self.row_len() * DF,
                    // Per (n, k): z = x − c (d), √r (1), √r·(z, 1) (d + 1), then each output one
                    // product and one add (2E).
                    flops: n * k * (2 * d + 2 + 2 * e),
                }
            }
            Kernel::Combine => {
                let (rows_in, rows_out): (u64, u64) = self
                    .chunks
                    .iter()
                    .flat_map(|c| &c.levels)
                    .fold((0, 0), |(i, o), &(a, b)| (i + a as u64, o + b as u64));
                Cost {
                    bytes: (rows_in + rows_out) * self.row_len() * DF,
                    // Each input row beyond the first of its group is one two-float add per value.
                    flops: (rows_in - rows_out) * self.row_len(),
                }
            }
            Kernel::Fused => {
                // The three split kernels' arithmetic, and of their traffic only x, the model and
                // the blocks' partial rows (the score in each): h and the responsibilities stay in
                // workgroup memory.
                let blocks: u64 = self.chunks.iter().map(|c| c.blocks as u64).sum();
                let flops = [Kernel::Logprob, Kernel::Normalise, Kernel::Stats]
                    .iter()
                    .map(|&kernel| self.cost(kernel).flops)
                    .sum();
                Cost {
                    // x; the means and factors (hi, lo), c (hi, lo) and the centres; weights; rows.
                    bytes: n * d * F32
                        + (k * d + self.factor_len()) * DF
                        + k * DF
                        + k * d * F32
                        + weights
                        + blocks * self.row_len() * DF,
                    flops,
                }
            }
            Kernel::Assign | Kernel::Random => Cost::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1,000 samples of d = 3 in one chunk of 1 block and a 5-row → 1-row combine level, K = 2.
    fn shape(covariance: CovarianceType) -> PassShape {
        PassShape {
            n_features: 3,
            n_components: 2,
            covariance,
            has_weights: false,
            chunks: vec![ChunkShape {
                samples: 1000,
                blocks: 5,
                levels: vec![(5, 1)],
            }],
            h_bytes: 8,
            r_bytes: 4,
        }
    }

    #[test]
    fn full_covariance_costs_by_hand() {
        let s = shape(CovarianceType::Full);
        // E = 1 + 3 + 6 = 10 statistics per component; a row holds 2·10 + 1 = 21 two-floats.
        assert_eq!(s.n_outputs(), 10);
        // logprob: x 1000·3·4 = 12,000; means 2·3·8 = 48; factors 2·6·8 = 96; h 1000·2·8 = 16,000.
        // Flops per (n, k): z 3, y = 6 multiply-adds = 12, Σy² 6, −½ 1: 22; times 2,000.
        assert_eq!(
            s.cost(Kernel::Logprob),
            Cost {
                bytes: 28_144,
                flops: 44_000
            }
        );
        // normalise: h 16,000 + c 16 + responsibilities 8,000 + log p 4,000 + 16 groups · 8 = 128.
        // Flops: 2,000·5 + 1,000·4.
        assert_eq!(
            s.cost(Kernel::Normalise),
            Cost {
                bytes: 28_144,
                flops: 14_000
            }
        );
        // stats: x 12,000 + r 8,000 + centres 24 + 5 rows · 21 · 8 = 840. Flops per (n, k):
        // 2·3 + 2 + 2·10 = 28.
        assert_eq!(
            s.cost(Kernel::Stats),
            Cost {
                bytes: 20_864,
                flops: 56_000
            }
        );
        // combine: 6 rows of 21 two-floats moved; 4 rows added into the first.
        assert_eq!(
            s.cost(Kernel::Combine),
            Cost {
                bytes: 1_008,
                flops: 84
            }
        );
    }

    #[test]
    fn the_fused_pass_moves_only_x_the_model_and_the_rows() {
        let s = shape(CovarianceType::Full);
        // x 12,000; means 48 and factors 96 (hi, lo); c 16; centres 24; 5 rows · 21 · 8 = 840.
        // Flops: the split kernels' 44,000 + 14,000 + 56,000.
        assert_eq!(
            s.cost(Kernel::Fused),
            Cost {
                bytes: 13_024,
                flops: 114_000
            }
        );
        // Against the split kernels' 28,144 + 28,144 + 20,864 bytes: h (hi, lo) and the
        // responsibilities never leave the workgroup.
        let w = PassShape {
            has_weights: true,
            ..shape(CovarianceType::Full)
        };
        assert_eq!(w.cost(Kernel::Fused).bytes, 13_024 + 4_000);
    }

    #[test]
    fn labels_alone_never_move_samples_times_components() {
        let shape = |k, direct, responsibilities| InferShape {
            n_features: 8,
            n_components: k,
            labels: true,
            log_density: false,
            responsibilities,
            direct,
            h_bytes: 4,
            r_bytes: 4,
        };
        // Direct labels: the 8 features in, one u32 out, whatever K.
        assert_eq!(shape(8, true, false).bytes_per_sample(), 36);
        assert_eq!(shape(64, true, false).bytes_per_sample(), 36);
        // Two-pass: h written and read (2·K·4); responsibilities add e_k stored and read (2·K·4)
        // and the K outputs.
        assert_eq!(shape(8, false, false).bytes_per_sample(), 36 + 64);
        assert_eq!(shape(8, false, true).bytes_per_sample(), 36 + 64 + 64 + 32);
    }

    #[test]
    fn diagonal_and_tied_costs_by_hand() {
        let s = shape(CovarianceType::Diag);
        // E = 1 + 3 + 3 = 7. logprob: z 3, y 3, Σy² 6, −½ 1 = 13 per (n, k); factors 2·3·8 = 48.
        assert_eq!(s.n_outputs(), 7);
        assert_eq!(
            s.cost(Kernel::Logprob),
            Cost {
                bytes: 12_000 + 48 + 48 + 16_000,
                flops: 26_000
            }
        );
        // Tied: one factor of 6 entries (hi, lo) for both components.
        let t = shape(CovarianceType::Tied);
        assert_eq!(t.cost(Kernel::Logprob).bytes, 12_000 + 48 + 48 + 16_000);
        // Weights add one f32 per sample to normalise's reads.
        let w = PassShape {
            has_weights: true,
            ..shape(CovarianceType::Full)
        };
        assert_eq!(
            w.cost(Kernel::Normalise).bytes,
            shape(CovarianceType::Full).cost(Kernel::Normalise).bytes + 4_000
        );
    }
}
