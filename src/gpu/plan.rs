//! Chunk planning: how many samples one chunk holds so that every binding and every dispatch grid
//! fits the device's limits. Pure arithmetic on the limits, testable without an adapter.

use crate::error::GmmError;
use crate::gpu::layout::factor_kind;
use crate::gpu::layout::{
    BLOCK, FUSED_BLOCK, FUSED_D, FUSED_K, FUSED_MAX_ITERATIONS, GROUP, KIND_DIAG, STATS_DIAG, STATS_PACKED, T, TRI_BT,
    TRI_SMALL_D, WG,
};
use crate::gpu::pack::model_len;
use crate::kinds::CovarianceType;
use crate::linalg::packed_len;

/// The device limits a plan depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DeviceLimits {
    pub max_binding: u64,
    pub max_buffer: u64,
    pub max_workgroups_per_dim: u32,
}

impl DeviceLimits {
    pub fn of(limits: &wgpu::Limits) -> Self {
        Self {
            max_binding: limits.max_storage_buffer_binding_size.min(limits.max_buffer_size),
            max_buffer: limits.max_buffer_size,
            max_workgroups_per_dim: limits.max_compute_workgroups_per_dimension,
        }
    }
}

/// A fit's chunking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Samples per chunk (a multiple of WG, except that the last chunk may hold fewer).
    pub chunk_len: usize,
    pub n_chunks: usize,
    /// Whether the EM pass runs the fused kernel (the model fits it and the caller allows it).
    pub fused: bool,
    /// Samples per statistics block: FUSED_BLOCK where the EM pass is fused, else BLOCK.
    pub block_len: usize,
    /// Statistics blocks of the largest chunk.
    pub max_blocks: usize,
    /// The widest partial row, in two-float values: this fit's second moments or the diagonal ones
    /// k-means sums, K·E + 1.
    pub row_len_max: usize,
    /// Whole chunks per data segment (each segment within max_buffer_size).
    pub chunks_per_segment: usize,
    /// Whether the host's samples are streamed through two chunk buffers each pass instead of
    /// being resident (the data does not fit the device budget).
    pub streamed: bool,
}

impl Plan {
    /// Device bytes a fit with this plan allocates besides the samples: the chunk-sized buffers,
    /// the partial rows, the model and the weights (what `Resources::new` makes in device memory;
    /// the uniforms aside, and the readback, one row per chunk, which is host-visible memory).
    pub fn working_bytes(&self, n: usize, d: usize, k: usize, kind: CovarianceType, weighted: bool) -> u64 {
        working_bytes(
            self.chunk_len,
            self.block_len,
            self.row_len_max,
            n,
            d,
            k,
            kind,
            weighted,
        )
    }

    /// Device bytes of the samples: all of them resident, or two chunks when streamed.
    pub fn data_bytes(&self, n: usize, d: usize) -> u64 {
        4 * d as u64
            * if self.streamed {
                2 * self.chunk_len as u64
            } else {
                n as u64
            }
    }
}

#[allow(clippy::too_many_arguments)]
fn working_bytes(
    chunk_len: usize,
    block_len: usize,
    row_len_max: usize,
    n: usize,
    d: usize,
    k: usize,
    kind: CovarianceType,
    weighted: bool,
) -> u64 {
    let c = chunk_len as u64;
    let blocks = chunk_len.div_ceil(block_len) as u64;
    let row = 8 * row_len_max as u64;
    2 * c * k as u64 * 4 // responsibilities and log-density low parts
        + c.div_ceil(u64::from(WG)) * 8 // log-likelihood partials
        + c * 4 // per-sample outputs
        + blocks * row // partial rows
        + blocks.div_ceil(u64::from(GROUP)).max(1) * row // combine scratch
        + 4 * model_len(kind, k, d) as u64
        + if weighted { 4 * n as u64 } else { 0 }
}

/// Statistics per component for a second-moment kind: S0, S1 (d) and S2.
pub(crate) fn n_outputs(stats_kind: u32, d: usize) -> usize {
    1 + d + if stats_kind == STATS_PACKED { packed_len(d) } else { d }
}

/// Work units per component of the statistics pass, one per invocation: 4 × 4 tiles of the
/// augmented (d+1)² upper triangle for packed second moments (`stats_tri`), else 4 features
/// (`stats`).
pub(crate) fn stats_units(stats_kind: u32, d: usize) -> usize {
    if stats_kind == STATS_PACKED {
        let nt = (d + 1).div_ceil(4);
        nt * (nt + 1) / 2
    } else {
        d.div_ceil(4)
    }
}

/// How the statistics pass spreads one component's work units over workgroups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StatsGrid {
    /// Workgroups per (block, component).
    pub out_groups: usize,
    /// Work units per workgroup, one per invocation.
    pub out_slots: usize,
    /// Sample lanes: invocations per work unit.
    pub lanes: usize,
    /// `stats_tri` only: the blocks per side when each workgroup owns a square block of TRI_BT ×
    /// TRI_BT tiles (0: the tiles run row-major, `out_slots` per workgroup).
    pub tri_blocks: usize,
}

/// The statistics pass's grid. Row-major tiles stage a whole augmented row per workgroup, so at
/// large d each workgroup stages ~d values per row for WG tiles and only STAGE/(d+1) rows fit per
/// barrier (4 at d = 512); square blocks stage 2·4·TRI_BT values per row for the same WG tiles but
/// leave the tiles below the diagonal of the diagonal blocks idle. Per row and component the cost
/// is counted as 16 multiply-adds per invocation (idle ones too: they hold their SIMD slot) plus
/// STAGED_COST per staged value (a global load, the centring and a workgroup store), and the cheaper
/// layout wins: row-major below d = 116 (and at 128–139, where 33–35 tiles a side leave a fifth
/// block row nearly empty), blocks above.
pub(crate) fn stats_grid(stats_kind: u32, d: usize) -> StatsGrid {
    const STAGED_COST: usize = 8;
    let wg = WG as usize;
    let units = stats_units(stats_kind, d);
    let slots = units.min(wg);
    let row_major = StatsGrid {
        out_groups: units.div_ceil(slots),
        out_slots: slots,
        lanes: wg / slots,
        tri_blocks: 0,
    };
    if stats_kind != STATS_PACKED {
        return row_major;
    }
    let nt = (d + 1).div_ceil(4);
    let nb = nt.div_ceil(TRI_BT as usize);
    let blocks = nb * (nb + 1) / 2;
    let row_major_cost = row_major.out_groups * (16 * wg + STAGED_COST * 4 * nt);
    let blocked_cost = blocks * (16 * wg + STAGED_COST * 2 * 4 * TRI_BT as usize);
    if blocked_cost < row_major_cost {
        StatsGrid {
            out_groups: blocks,
            out_slots: wg,
            lanes: 1,
            tri_blocks: nb,
        }
    } else {
        row_major
    }
}

/// Loop iterations one invocation of the fused pass runs over a block (shaders/fused.wgsl), counted
/// as lavapipe counts them (every iteration of every loop, the callees' too): per tile of WG
/// samples, the staging ((d + 4)/4 quads), the E-step of one sample (its row copied out of the
/// tile, d; the loop over K calling `maha_of`: d for diagonal factors, d + d + d(d+1)/2 for
/// triangular ones; and the normalisation's three loops over K) and its lane's samples of the
/// statistics; then the drain and the score's tree.
pub(crate) fn fused_iterations(kind: u32, stats_kind: u32, d: usize, k: usize) -> usize {
    let wg = WG as usize;
    let maha = if kind == KIND_DIAG { d } else { 2 * d + d * (d + 1) / 2 };
    let slots = k * stats_units(stats_kind, d);
    let lanes = (wg / slots.max(1)).max(1);
    let per_tile = (d + 4) / 4 + d + k * (1 + maha) + 3 * k + wg.div_ceil(lanes);
    (FUSED_BLOCK as usize / wg) * per_tile + 4 * T as usize * (lanes + 1) + 8 * 4 + 2 * WG.ilog2() as usize
}

/// Whether the fused pass takes a model of `k` components over `d` features: every component's
/// statistics units at once in one workgroup, the tile's samples and h within its workgroup
/// memory, triangular factors only where `logprob` itself takes them (d <= TRI_SMALL_D), and the
/// loops under FUSED_MAX_ITERATIONS.
pub(crate) fn fusion_fits(kind: u32, stats_kind: u32, d: usize, k: usize) -> bool {
    d <= FUSED_D as usize
        && k <= FUSED_K as usize
        && (kind == KIND_DIAG || d <= TRI_SMALL_D as usize)
        && k * stats_units(stats_kind, d) <= WG as usize
        && fused_iterations(kind, stats_kind, d, k) <= FUSED_MAX_ITERATIONS
}

/// The second moments the GPU sums for a covariance type (spherical sums the diagonal; the host
/// takes its trace).
pub(crate) fn stats_kind_for(kind: CovarianceType) -> u32 {
    match kind {
        CovarianceType::Full | CovarianceType::Tied => STATS_PACKED,
        CovarianceType::Diag | CovarianceType::Spherical => STATS_DIAG,
    }
}

/// What the caller asks of a GPU fit: a cap on the samples per chunk and on the device bytes the
/// fit may hold, which kernels an EM pass runs, and in which arithmetic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Budget {
    pub chunk_size: Option<usize>,
    pub max_device_bytes: Option<u64>,
    pub kernels: GpuKernels,
    /// The arithmetic the fit asks for (the plan is the same for every one).
    pub precision: crate::gpu::GpuPrecision,
}

/// Which kernels a GPU EM pass runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum GpuKernels {
    /// One fused kernel per block of samples (E-step, normalisation and statistics, the
    /// responsibilities kept in workgroup memory) wherever the model is small enough (up to 16
    /// features and 16 components, depending on the covariance type), else the split kernels.
    #[default]
    Auto,
    /// Always the split kernels: log-densities, normalisation and statistics as separate passes,
    /// the responsibilities through device memory (for comparison, and for tests of that path).
    Split,
}

/// Plans `n` samples of `d` features and `k` components with second moments of `kind`;
/// `budget.chunk_size` caps the chunk, and where the samples and the working buffers together
/// exceed `budget.max_device_bytes`, the plan streams the samples through two chunk buffers,
/// with chunks small enough that the two and the working buffers fit.
pub(crate) fn plan(
    n: usize,
    d: usize,
    k: usize,
    kind: CovarianceType,
    limits: DeviceLimits,
    budget: Budget,
    weighted: bool,
) -> Result<Plan, GmmError> {
    let forced = budget.chunk_size;
    let row_len_max = k * n_outputs(stats_kind_for(kind), d).max(n_outputs(STATS_DIAG, d)) + 1;
    // The model and one block's partial row must each fit one binding, whatever the chunking.
    for (what, bytes) in [
        ("model (means, factors, constants)", 4 * model_len(kind, k, d) as u64),
        ("partial statistics of one block", 8 * row_len_max as u64),
    ] {
        if bytes > limits.max_binding {
            return Err(GmmError::GpuModelTooLarge {
                what,
                n_components: k,
                n_features: d,
                bytes,
                granted: limits.max_binding,
            });
        }
    }
    let wg = WG as u64;
    let fused = budget.kernels == GpuKernels::Auto && fusion_fits(factor_kind(kind), stats_kind_for(kind), d, k);
    let block_len = if fused { FUSED_BLOCK } else { BLOCK };
    // Samples per chunk: the data window, the responsibilities and the partial rows (8 bytes per
    // two-float value) must each fit one binding; a multiple of WG keeps every window's offset aligned
    // (WG·4 bytes = 256).
    let by_data = limits.max_binding / (4 * d as u64);
    let by_resp = limits.max_binding / (4 * k as u64);
    let by_partials = (limits.max_binding / (8 * row_len_max as u64)) * u64::from(block_len);
    let mut chunk_len = by_data.min(by_resp).min(by_partials).min(1 << 24) / wg * wg;
    // The folded 2-D grid holds at most max_dim² workgroups per dispatch: the E-step launches
    // (C/WG)·K of them and the statistics (C/block)·K·(output groups).
    let max_groups = u64::from(limits.max_workgroups_per_dim).pow(2);
    let out_groups = stats_grid(stats_kind_for(kind), d)
        .out_groups
        .max(stats_grid(STATS_DIAG, d).out_groups) as u64;
    let by_grid_estep = max_groups / k as u64 * wg;
    let by_grid_stats = max_groups / (k as u64 * out_groups) * u64::from(block_len);
    chunk_len = chunk_len.min(by_grid_estep.min(by_grid_stats) / wg * wg);
    if let Some(forced) = forced {
        chunk_len = chunk_len.min((forced as u64).div_ceil(wg).max(1) * wg);
    }
    if chunk_len < wg {
        return Err(GmmError::LimitsTooSmall {
            limit: "max_storage_buffer_binding_size",
            needed: 4 * wg * d.max(k) as u64,
            granted: limits.max_binding,
        });
    }
    let mut chunk_len = (chunk_len as usize).min(n.div_ceil(WG as usize) * WG as usize);
    let total = |chunk_len: usize, streamed: bool| {
        let data = 4 * d as u64 * if streamed { 2 * chunk_len as u64 } else { n as u64 };
        data + working_bytes(chunk_len, block_len as usize, row_len_max, n, d, k, kind, weighted)
    };
    let mut streamed = false;
    if let Some(max) = budget.max_device_bytes
        && total(chunk_len, false) > max
    {
        // Stream, with the largest whole-workgroup chunk whose two buffers and working set fit.
        streamed = true;
        while chunk_len > WG as usize && total(chunk_len, true) > max {
            let scaled = (chunk_len as u128 * u128::from(max) / u128::from(total(chunk_len, true))) as usize;
            chunk_len = (scaled / WG as usize * WG as usize).clamp(WG as usize, chunk_len - WG as usize);
        }
        if total(chunk_len, true) > max {
            return Err(GmmError::GpuBudgetTooSmall {
                budget: max,
                needed: total(chunk_len, true),
            });
        }
    }
    let n_chunks = n.div_ceil(chunk_len);
    Ok(Plan {
        chunk_len,
        n_chunks,
        fused,
        block_len: block_len as usize,
        max_blocks: chunk_len.div_ceil(block_len as usize),
        row_len_max,
        chunks_per_segment: (limits.max_buffer / (chunk_len * d * 4) as u64).max(1) as usize,
        streamed,
    })
}

/// The combine tree of a chunk with `n_blocks` partial rows: the rows each level reads and writes.
pub(crate) fn combine_levels(n_blocks: u32) -> Vec<(u32, u32)> {
    let mut levels = Vec::new();
    let mut rows = n_blocks;
    while rows > 1 {
        let out = rows.div_ceil(GROUP);
        levels.push((rows, out));
        rows = out;
    }
    levels
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::layout::{KIND_FULL, KIND_TIED};

    const BIG: DeviceLimits = DeviceLimits {
        max_binding: 1 << 31,
        max_buffer: 1 << 32,
        max_workgroups_per_dim: 65_535,
    };

    /// Which models the fused pass takes: the standard case A (1M × 8, K = 8) both ways; at d = 16
    /// a full model's 15 tiles per component allow K = 4 in one workgroup of 64, not 5; a diagonal
    /// one's 4 units allow K = 16; never past 16 features or 16 components.
    #[test]
    fn the_models_the_fused_pass_takes() {
        let full = |d, k| fusion_fits(KIND_FULL, STATS_PACKED, d, k);
        let diag = |d, k| fusion_fits(KIND_DIAG, STATS_DIAG, d, k);
        assert!(full(8, 8) && diag(8, 8));
        assert!(full(16, 4) && !full(16, 5));
        assert!(fusion_fits(KIND_TIED, STATS_PACKED, 16, 4));
        assert!(diag(16, 16) && !diag(16, 17) && !diag(17, 1) && !full(17, 1));
        assert!(full(1, 16) && !full(1, 17));
        // Case A full, by hand: per tile of 64 samples, staging 3 (quads of 8 features and the 1),
        // the row copied 8, the E-step 8·(1 + 2·8 + 36) = 424, the normalisation 3·8 = 24, and 64
        // samples of statistics (48 units, one lane): 523; 8 tiles of a block of 512; then the
        // drain 4·4·(1 + 1), the unit set-up 32 and the score's tree 2·6.
        assert_eq!(fused_iterations(KIND_FULL, STATS_PACKED, 8, 8), 8 * 523 + 32 + 32 + 12);
        // The largest it takes stays under the cap with room: full d = 16, K = 4.
        assert!(fused_iterations(KIND_FULL, STATS_PACKED, 16, 4) < 10_000);
    }

    /// `stats_tri`'s grid: row-major tiles while a whole row is cheap to stage (one workgroup at
    /// d = 32, nine at d = 128), square blocks at d = 160 and past; the blocks, mapped as the shader maps
    /// them (block (I, J) by `tile_of`, invocation s to tile (8I + s/8, 8J + s%8), live on or above
    /// the diagonal and inside the triangle), own every tile exactly once. Diagonal statistics
    /// never take blocks.
    #[test]
    fn the_statistics_grid_stages_least() {
        let grid = |d| stats_grid(STATS_PACKED, d);
        assert_eq!((grid(32).out_groups, grid(32).tri_blocks), (1, 0)); // 45 tiles
        assert_eq!((grid(128).out_groups, grid(128).tri_blocks), (9, 0)); // 561 tiles
        // d = 160: 41 tiles a side, 861 in all: 14 row-major groups cost 14·(1024 + 8·164) =
        // 32,704, 21 blocks 21·(1024 + 8·64) = 32,256.
        assert_eq!((grid(160).out_groups, grid(160).tri_blocks), (21, 6));
        assert_eq!((grid(512).out_groups, grid(512).tri_blocks), (153, 17));
        assert_eq!(stats_grid(STATS_DIAG, 4096).tri_blocks, 0);
        let bt = TRI_BT as usize;
        for d in [159, 160, 200, 500, 1024] {
            let g = grid(d);
            let nt = (d + 1).div_ceil(4);
            assert_eq!((g.out_slots, g.lanes), (WG as usize, 1), "d = {d}");
            let upper: Vec<(usize, usize)> = (0..g.tri_blocks)
                .flat_map(|i| (i..g.tri_blocks).map(move |j| (i, j)))
                .collect();
            assert_eq!(upper.len(), g.out_groups, "d = {d}");
            let mut owned = vec![0u32; nt * nt];
            for &(bi, bj) in &upper {
                for s in 0..WG as usize {
                    let (ti, tj) = (bi * bt + s / bt, bj * bt + s % bt);
                    if ti <= tj && tj < nt {
                        owned[ti * nt + tj] += 1;
                    }
                }
            }
            let worst = (0..nt * nt)
                .find(|&t| owned[t] != u32::from(t / nt <= t % nt))
                .map(|t| (t / nt, t % nt));
            assert_eq!(worst, None, "d = {d}: a tile owned other than once");
        }
    }

    /// The largest full model the kernels take (K = 16,384 at d = 1,024) needs 69 GB in one binding:
    /// a typed error that names the part and the sizes, before any buffer is made.
    #[test]
    fn a_model_too_large_for_one_binding() {
        let (k, d) = (16_384, 1_024);
        let err = plan(100_000, d, k, CovarianceType::Full, BIG, Budget::default(), false).unwrap_err();
        // K·d(d+1)/2 factor entries, hi and lo: 4 bytes each, with the means, centres, constants and
        // the component routes.
        let floats = 2 * k * d + 2 * k * (d * (d + 1) / 2) + 2 * k + k * d + k;
        match err {
            GmmError::GpuModelTooLarge {
                what,
                n_components,
                n_features,
                bytes,
                granted,
            } => {
                assert!(what.starts_with("model"), "{what}");
                assert_eq!((n_components, n_features), (k, d));
                assert_eq!(bytes, 4 * floats as u64);
                assert_eq!(granted, BIG.max_binding);
            }
            other => panic!("{other}"),
        }
        // Tied, K = 64: the one factor fits 16 MiB (4.9 MB), one block's row of
        // K·(1 + d + d(d+1)/2) + 1 two-floats (269 MB) does not.
        let small = DeviceLimits {
            max_binding: 16 << 20,
            ..BIG
        };
        let err = plan(100_000, d, 64, CovarianceType::Tied, small, Budget::default(), false).unwrap_err();
        assert!(
            matches!(err, GmmError::GpuModelTooLarge { what, bytes, .. }
                if what.starts_with("partial") && bytes == 8 * (64 * (1 + d + d * (d + 1) / 2) + 1) as u64),
            "{err}"
        );
        assert!(err.is_gpu_capacity());
    }

    #[test]
    fn a_plan_fits_every_binding_and_grid() {
        for (n, d, k, kind) in [
            (1_000_003usize, 8usize, 8usize, CovarianceType::Full),
            (5_000_000, 128, 64, CovarianceType::Full),
            (300_000, 3, 16_384, CovarianceType::Diag),
            (77, 2, 3, CovarianceType::Spherical),
        ] {
            for limits in [
                BIG,
                DeviceLimits {
                    max_binding: 128 << 20,
                    max_buffer: 256 << 20,
                    max_workgroups_per_dim: 65_535,
                },
            ] {
                let p = plan(n, d, k, kind, limits, Budget::default(), false).unwrap();
                let what = format!("n={n} d={d} k={k} {kind} {limits:?}: {p:?}");
                assert!(p.chunk_len.is_multiple_of(WG as usize), "{what}");
                assert_eq!(p.n_chunks, n.div_ceil(p.chunk_len), "{what}");
                assert!((p.chunk_len * d * 4) as u64 <= limits.max_binding, "{what}");
                assert!((p.chunk_len * k * 4) as u64 <= limits.max_binding, "{what}");
                assert!(
                    (p.max_blocks * p.row_len_max * 8) as u64 <= limits.max_binding,
                    "{what}"
                );
                let grid = u64::from(limits.max_workgroups_per_dim).pow(2);
                assert!((p.chunk_len.div_ceil(WG as usize) * k) as u64 <= grid, "{what}");
            }
        }
    }

    fn forced(chunk_size: usize) -> Budget {
        Budget {
            chunk_size: Some(chunk_size),
            max_device_bytes: None,
            ..Budget::default()
        }
    }

    #[test]
    fn a_budget_below_the_data_streams_chunks_that_fit_it() {
        let (n, d, k) = (100_000, 16, 8);
        let resident = plan(n, d, k, CovarianceType::Full, BIG, Budget::default(), false).unwrap();
        assert!(!resident.streamed);
        let all = resident.data_bytes(n, d) + resident.working_bytes(n, d, k, CovarianceType::Full, false);
        // Exactly enough for everything resident: still resident.
        let exact = Budget {
            chunk_size: None,
            max_device_bytes: Some(all),
            ..Budget::default()
        };
        assert_eq!(
            plan(n, d, k, CovarianceType::Full, BIG, exact, false).unwrap(),
            resident
        );
        // A quarter of that: streamed, two chunks and the working set within it, chunks whole
        // workgroups, and as large as allowed within one workgroup.
        for max in [all / 4, all / 40] {
            let b = Budget {
                chunk_size: None,
                max_device_bytes: Some(max),
                ..Budget::default()
            };
            let p = plan(n, d, k, CovarianceType::Full, BIG, b, false).unwrap();
            let used = |p: &Plan| p.data_bytes(n, d) + p.working_bytes(n, d, k, CovarianceType::Full, false);
            assert!(p.streamed && used(&p) <= max, "{max}: {p:?} uses {}", used(&p));
            assert!(p.chunk_len.is_multiple_of(WG as usize));
            assert_eq!(p.data_bytes(n, d), 2 * (p.chunk_len * d * 4) as u64);
            let bigger = plan(
                n,
                d,
                k,
                CovarianceType::Full,
                BIG,
                forced(p.chunk_len + WG as usize),
                false,
            )
            .unwrap();
            let bigger = Plan {
                streamed: true,
                ..bigger
            };
            assert!(
                used(&bigger) > max,
                "{max}: a chunk of {} would fit too",
                bigger.chunk_len
            );
        }
        // Less than two workgroup-sized chunks and the working set: a typed error with the need.
        let tiny = Budget {
            chunk_size: None,
            max_device_bytes: Some(10_000),
            ..Budget::default()
        };
        match plan(n, d, k, CovarianceType::Full, BIG, tiny, false) {
            Err(GmmError::GpuBudgetTooSmall { budget, needed }) => assert!(budget == 10_000 && needed > 10_000),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_forced_chunk_size_rounds_up_to_whole_workgroups() {
        let p = plan(1000, 2, 3, CovarianceType::Full, BIG, forced(100), false).unwrap();
        assert_eq!((p.chunk_len, p.n_chunks), (128, 8));
        let p = plan(1000, 2, 3, CovarianceType::Full, BIG, forced(1), false).unwrap();
        assert_eq!((p.chunk_len, p.n_chunks), (64, 16));
    }

    #[test]
    fn tiny_limits_are_a_typed_error() {
        // The model (1,288 bytes) and a partial row (1,040) fit 2 KiB, but a workgroup's 64
        // samples of 64 features (16 KiB) do not.
        let limits = DeviceLimits {
            max_binding: 2048,
            ..BIG
        };
        assert!(matches!(
            plan(10_000, 64, 1, CovarianceType::Diag, limits, Budget::default(), false),
            Err(GmmError::LimitsTooSmall { .. })
        ));
    }

    #[test]
    fn the_combine_tree_ends_in_one_row() {
        assert_eq!(combine_levels(1), []);
        assert_eq!(combine_levels(69), [(69, 2), (2, 1)]);
        assert_eq!(combine_levels(64), [(64, 1)]);
        assert_eq!(combine_levels(4097), [(4097, 65), (65, 2), (2, 1)]);
    }
}
