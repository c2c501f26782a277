//! What the host and the shaders must agree on, written once here: the constants (prepended to the
//! WGSL source as a generated header), the `#[repr(C)]` twins of the structs in shaders/common.wgsl,
//! and the one binding table that the pipelines' layouts are built from. A naga test checks every
//! shader's bindings and struct offsets against this table, without an adapter.

#[cfg(test)]
use std::mem::offset_of;

use bytemuck::{Pod, Zeroable};

use crate::gpu::precision::Arith;

/// Invocations per workgroup, in every entry point.
pub(crate) const WG: u32 = 64;
/// The largest feature count the GPU kernels take with diagonal or spherical covariances:
/// `logprob_diag` loops 2d times per invocation and `stats` stages at most 4·WG features per row
/// (about 10,500 iterations at d = 4,096), under lavapipe's 65,535-iteration cap.
pub const MAX_GPU_FEATURES: usize = 4096;
/// The largest with full or tied covariances: `logprob_tri` loops about 33,800 times per
/// invocation at d = 1,024 and `stats_tri` about 36,000 (two padded rows staged at a time).
pub const MAX_GPU_FEATURES_TRIANGULAR: usize = 1024;

/// The feature limit of the GPU kernels for `covariance`.
pub fn max_gpu_features(covariance: crate::kinds::CovarianceType) -> usize {
    use crate::kinds::CovarianceType::{Diag, Full, Spherical, Tied};
    match covariance {
        Full | Tied => MAX_GPU_FEATURES_TRIANGULAR,
        Diag | Spherical => MAX_GPU_FEATURES,
    }
}
/// Whether the GPU kernels take `k` components of `d` features with `covariance`: else the typed
/// error naming the limit.
pub(crate) fn check_shape(
    covariance: crate::kinds::CovarianceType,
    k: usize,
    d: usize,
) -> Result<(), crate::error::GmmError> {
    use crate::error::GmmError;
    let max = max_gpu_features(covariance);
    if d > max {
        return Err(GmmError::TooManyFeaturesForGpu { n_features: d, max });
    }
    if k > MAX_GPU_COMPONENTS {
        return Err(GmmError::TooManyComponentsForGpu {
            n_components: k,
            max: MAX_GPU_COMPONENTS,
        });
    }
    Ok(())
}

/// The most components the GPU kernels take: a per-sample loop over K (normalise, about 3K
/// iterations) must stay far below lavapipe's 65,535-iteration cap per invocation.
pub const MAX_GPU_COMPONENTS: usize = 16_384;
/// `logprob_tri`'s tile: TRI_TS samples × TRI_CB columns of Y = Z·U per column block, with TRI_RB
/// rows of Z and U staged at a time; each invocation holds 8 samples × 4 columns, so the WG
/// invocations form (TRI_TS/8) sample groups × TRI_CG column groups.
pub(crate) const TRI_TS: u32 = 64;
pub(crate) const TRI_CB: u32 = 32;
pub(crate) const TRI_RB: u32 = 16;
pub(crate) const TRI_CG: u32 = TRI_CB / 4;
/// `logprob_diag`'s register tile: each invocation holds one sample × DIAG_KC components, and the
/// tile's samples are staged DIAG_FB features at a time.
pub(crate) const DIAG_KC: u32 = 4;
pub(crate) const DIAG_FB: u32 = 16;
// `logprob_diag` stages WG / DIAG_FB samples' blocks at once, one feature per invocation.
#[allow(clippy::manual_is_multiple_of)] // is_multiple_of is const only since 1.87, past the MSRV
const _: () = assert!(WG % DIAG_FB == 0);
// `logprob_diag` writes its DIAG_KC components out by hand.
const _: () = assert!(DIAG_KC == 4);
/// Triangular factors up to this many features go through `logprob` (one sample per invocation,
/// z in registers): a `logprob_tri` tile of TRI_CB columns would be mostly padding there (8× at
/// d = 8).
pub(crate) const TRI_SMALL_D: u32 = 16;
// The final sums of y² reuse the staged z: TRI_TS/4 sample groups × TRI_CG column groups of them.
const _: () =
    assert!((TRI_TS / 8) * TRI_CG == WG && TRI_TS % 8 == 0 && TRI_CB % 4 == 0 && TRI_CG <= TRI_RB && TRI_TS <= WG);
/// Floats of sample rows the statistics passes stage at once (8 KiB): `stats_tri`'s augmented rows
/// padded to 4·⌈(d+1)/4⌉, `stats`' windows of at most 4·WG features plus √r. Values are f32 but in
/// native-f64 kernels, which stage half as many (`stage_len`).
pub(crate) const STAGE: u32 = 2064;

/// The staged values of a build's statistics passes: [`STAGE`] f32, or as many bytes of f64.
pub(crate) fn stage_len(arith: Arith) -> u32 {
    match arith {
        Arith::F64 => STAGE / 2,
        Arith::Fast | Arith::TwoFloat => STAGE,
    }
}
/// `stats_tri`'s square blocks: TRI_BT × TRI_BT tiles of 4 × 4, one per invocation, staging two
/// windows of 4·TRI_BT features per row (one value per invocation).
pub(crate) const TRI_BT: u32 = 8;
const _: () = assert!(TRI_BT * TRI_BT == WG && 2 * 4 * TRI_BT == WG);
/// At most this many rows are staged at once.
pub(crate) const SUB_MAX: u32 = 128;
/// Sums each invocation of the statistics passes drains through the lanes' buffer at a time.
pub(crate) const T: u32 = 4;
// `stats_tri` drains its 4 × 4 tiles through the lanes' buffer one row of T at a time.
const _: () = assert!(T == 4);
/// Samples per block of the statistics pass: each block writes one partial row.
pub(crate) const BLOCK: u32 = 2048;
/// Samples per block in a fit whose EM pass is fused (small models): four times the workgroups of
/// BLOCK, so that a million samples keep ~2,000 workgroups in flight. The price is the partial
/// rows: at most about a quarter of the samples' bytes (18% at case A full, 7% diag), in a pass
/// whose two-float arithmetic, not its bytes, is the bound.
pub(crate) const FUSED_BLOCK: u32 = 512;
#[allow(clippy::manual_is_multiple_of)] // is_multiple_of is const only since 1.87, past the MSRV
const _: () = assert!(FUSED_BLOCK % WG == 0 && BLOCK % WG == 0);
/// Partial rows the combine pass sums into one.
pub(crate) const GROUP: u32 = 64;
/// The fused pass (shaders/fused.wgsl) holds a tile's samples and their h for every component in
/// workgroup memory: at most FUSED_D features and FUSED_K components. With the lanes' buffer and
/// the tree sum's, that stays within WebGPU's default 16 KiB of workgroup memory.
pub(crate) const FUSED_D: u32 = 16;
pub(crate) const FUSED_K: u32 = 16;
/// Quads per staged row of the fused pass: a sample's d <= FUSED_D features, the augmented 1 and
/// zeros to a multiple of 4, so that a 4 × 4 tile's rows (or columns) are one vector load.
pub(crate) const FUSED_Q: u32 = (FUSED_D + 4) / 4;
// The fused pass's E-step holds a sample's row in `maha_of`'s array of TRI_SMALL_D features.
const _: () = assert!(FUSED_D <= TRI_SMALL_D);
const _: () = assert!(WG * FUSED_Q * 16 + WG * FUSED_K * 8 + WG * T * 8 + WG * 8 <= 16 * 1024);
/// The most loop iterations the host lets one invocation of the fused pass run (lavapipe stops at
/// 65,535; see gpu::plan::fused_iterations).
pub(crate) const FUSED_MAX_ITERATIONS: usize = 40_000;
/// The log-sum-exp floor: finite, far below any log-density, so max() never starts from −∞.
pub(crate) const LOG_FLOOR: f32 = -3.0e38;

/// How the precision factors are stored in the model buffer (`Pass::kind`). Spherical factors are
/// stored as diagonal ones: per-feature scaling makes them differ per feature.
pub(crate) const KIND_FULL: u32 = 0;
pub(crate) const KIND_TIED: u32 = 1;
pub(crate) const KIND_DIAG: u32 = 2;
/// How an EM pass stores a covariance type's precision factors (`Pass::kind`; spherical ones as
/// diagonal).
pub(crate) fn factor_kind(kind: crate::kinds::CovarianceType) -> u32 {
    use crate::kinds::CovarianceType::{Diag, Full, Spherical, Tied};
    match kind {
        Full => KIND_FULL,
        Tied => KIND_TIED,
        Diag | Spherical => KIND_DIAG,
    }
}

/// Which second moments the statistics pass sums (`Pass::stats_kind`).
pub(crate) const STATS_PACKED: u32 = 0;
pub(crate) const STATS_DIAG: u32 = 1;

/// Per-chunk values. WGSL twin: `struct Chunk` in shaders/common.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub(crate) struct Chunk {
    pub n_samples: u32,
    pub first_lo: u32,
    pub first_hi: u32,
    pub n_blocks: u32,
    /// Samples per block: BLOCK, or FUSED_BLOCK in a fit whose EM pass is fused.
    pub block_len: u32,
    /// Where sample 0's row starts in the bound `x` (f32s past the binding's offset, which must be
    /// aligned to the device's storage offset alignment).
    pub x_at: u32,
    /// f32s from one sample's row to the next: n_features, or more for rows inside larger records.
    pub x_stride: u32,
    pub _pad: u32,
}

/// Per-pass values. WGSL twin: `struct Pass` in shaders/common.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub(crate) struct Pass {
    pub n_features: u32,
    pub n_components: u32,
    pub kind: u32,
    pub stats_kind: u32,
    pub n_outputs: u32,
    pub out_groups: u32,
    pub has_weights: u32,
    pub seed_lo: u32,
    pub seed_hi: u32,
    pub means_at: u32,
    pub centres_at: u32,
    pub factors_at: u32,
    pub consts_at: u32,
    pub out_slots: u32,
    pub lanes: u32,
    /// 1.0, unknown to the shader compiler, so that it cannot simplify the error-free sums away.
    pub one: f32,
    /// −∞, the log-likelihood of a sample that no component reaches in f32.
    pub neg_inf: f32,
    /// Where the means' low parts start (a mean is hi + lo, so f32 holds it to ~2⁻⁴⁸).
    pub means_lo_at: u32,
    /// Where the factors' low parts start (a factor entry is hi + lo: with condition numbers near
    /// 1e10, one f32 would move the precision of the well-determined directions by ~10%).
    pub factors_lo_at: u32,
    /// `stats_tri`'s square blocks per side (0: row-major tiles); see `plan::stats_grid`.
    pub tri_blocks: u32,
    /// Where the component routes start in `model`: the components the fast kernels run, then
    /// those the exact ones run (`GpuPrecision::Auto` sends ill-conditioned ones there).
    pub routes_at: u32,
    /// How many routes are fast: K in a fast pass, 0 in an exact one.
    pub n_fast: u32,
    pub _pad: [u32; 2],
}

/// One level of the combine pass. WGSL twin: `struct Combine` in shaders/common.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub(crate) struct Combine {
    pub n_rows: u32,
    pub row_len: u32,
    /// 1.0, as [`Pass::one`].
    pub one: f32,
    pub _pad: u32,
}

/// Which outputs an inference pass writes (`Infer::outputs`, bit flags).
pub(crate) const INFER_LABELS: u32 = 1;
pub(crate) const INFER_LOGP: u32 = 2;
pub(crate) const INFER_PROBA: u32 = 4;

/// Per-chunk values of an inference pass. WGSL twin: `struct Infer` in shaders/infer.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub(crate) struct Infer {
    pub outputs: u32,
    /// Where the chunk's first label, log-density and row of responsibilities go, in values past
    /// each output binding's (aligned) offset.
    pub labels_at: u32,
    pub logp_at: u32,
    pub proba_at: u32,
    /// What turns the kernels' log p into the caller's units, as a two-float.
    pub shift_hi: f32,
    pub shift_lo: f32,
    /// 1: log p as (hi, lo) pairs without the shift, for the host to finish in f64.
    pub logp_pairs: u32,
    pub _pad: u32,
}

/// A struct's fields as (name, byte offset), for the naga reflection test.
#[cfg(test)]
pub(crate) type Fields = &'static [(&'static str, usize)];

#[cfg(test)]
pub(crate) const CHUNK_FIELDS: Fields = &[
    ("n_samples", offset_of!(Chunk, n_samples)),
    ("first_lo", offset_of!(Chunk, first_lo)),
    ("first_hi", offset_of!(Chunk, first_hi)),
    ("n_blocks", offset_of!(Chunk, n_blocks)),
    ("block_len", offset_of!(Chunk, block_len)),
    ("x_at", offset_of!(Chunk, x_at)),
    ("x_stride", offset_of!(Chunk, x_stride)),
    ("_pad0", offset_of!(Chunk, _pad)),
];

#[cfg(test)]
pub(crate) const PASS_FIELDS: Fields = &[
    ("n_features", offset_of!(Pass, n_features)),
    ("n_components", offset_of!(Pass, n_components)),
    ("kind", offset_of!(Pass, kind)),
    ("stats_kind", offset_of!(Pass, stats_kind)),
    ("n_outputs", offset_of!(Pass, n_outputs)),
    ("out_groups", offset_of!(Pass, out_groups)),
    ("has_weights", offset_of!(Pass, has_weights)),
    ("seed_lo", offset_of!(Pass, seed_lo)),
    ("seed_hi", offset_of!(Pass, seed_hi)),
    ("means_at", offset_of!(Pass, means_at)),
    ("centres_at", offset_of!(Pass, centres_at)),
    ("factors_at", offset_of!(Pass, factors_at)),
    ("consts_at", offset_of!(Pass, consts_at)),
    ("out_slots", offset_of!(Pass, out_slots)),
    ("lanes", offset_of!(Pass, lanes)),
    ("one", offset_of!(Pass, one)),
    ("neg_inf", offset_of!(Pass, neg_inf)),
    ("means_lo_at", offset_of!(Pass, means_lo_at)),
    ("factors_lo_at", offset_of!(Pass, factors_lo_at)),
    ("tri_blocks", offset_of!(Pass, tri_blocks)),
    ("routes_at", offset_of!(Pass, routes_at)),
    ("n_fast", offset_of!(Pass, n_fast)),
    ("_pad0", offset_of!(Pass, _pad)),
    ("_pad1", offset_of!(Pass, _pad) + 4),
];

#[cfg(test)]
pub(crate) const COMBINE_FIELDS: Fields = &[
    ("n_rows", offset_of!(Combine, n_rows)),
    ("row_len", offset_of!(Combine, row_len)),
    ("one", offset_of!(Combine, one)),
    ("_pad", offset_of!(Combine, _pad)),
];

#[cfg(test)]
pub(crate) const INFER_FIELDS: Fields = &[
    ("outputs", offset_of!(Infer, outputs)),
    ("labels_at", offset_of!(Infer, labels_at)),
    ("logp_at", offset_of!(Infer, logp_at)),
    ("proba_at", offset_of!(Infer, proba_at)),
    ("shift_hi", offset_of!(Infer, shift_hi)),
    ("shift_lo", offset_of!(Infer, shift_lo)),
    ("logp_pairs", offset_of!(Infer, logp_pairs)),
    ("_pad0", offset_of!(Infer, _pad)),
];

/// The structs of shaders/common.wgsl (and shaders/infer.wgsl's, in the modules that include it):
/// WGSL name, Rust size and fields.
#[cfg(test)]
pub(crate) const STRUCTS: [(&str, usize, Fields); 4] = [
    ("Chunk", size_of::<Chunk>(), CHUNK_FIELDS),
    ("Pass", size_of::<Pass>(), PASS_FIELDS),
    ("Combine", size_of::<Combine>(), COMBINE_FIELDS),
    ("Infer", size_of::<Infer>(), INFER_FIELDS),
];

/// How a shader reaches a binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    Uniform,
    Read,
    ReadWrite,
}

/// One binding of shaders/common.wgsl.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Binding {
    pub binding: u32,
    pub name: &'static str,
    pub access: Access,
}

const fn b(binding: u32, name: &'static str, access: Access) -> Binding {
    Binding { binding, name, access }
}

/// Group 0 of every per-chunk entry point (logprob, normalise, assign, random, stats).
pub(crate) const CHUNK_BINDINGS: [Binding; 10] = [
    b(0, "chunk", Access::Uniform),
    b(1, "x", Access::Read),
    b(2, "model", Access::Read),
    b(3, "resp", Access::ReadWrite),
    b(4, "logp_part", Access::ReadWrite),
    b(5, "weights", Access::Read),
    b(6, "partials", Access::ReadWrite),
    b(7, "job", Access::Uniform),
    b(8, "per_sample", Access::ReadWrite),
    b(9, "h_lo", Access::ReadWrite),
];

/// Group 0 of the combine entry point.
pub(crate) const COMBINE_BINDINGS: [Binding; 3] = [
    b(10, "combine_params", Access::Uniform),
    b(11, "src", Access::Read),
    b(12, "dst", Access::ReadWrite),
];

/// Group 0 of the inference entry points (`infer`, `infer_h`): these beside `chunk`, `x`, `model`,
/// `resp`, `job` and `h_lo` of [`CHUNK_BINDINGS`], at most six storage buffers in all (WebGPU's
/// default allows eight per stage).
pub(crate) const INFER_BINDINGS: [Binding; 10] = [
    CHUNK_BINDINGS[0],
    CHUNK_BINDINGS[1],
    CHUNK_BINDINGS[2],
    CHUNK_BINDINGS[3],
    CHUNK_BINDINGS[7],
    CHUNK_BINDINGS[9],
    b(13, "infer_params", Access::Uniform),
    b(14, "labels_out", Access::ReadWrite),
    b(15, "logp_out", Access::ReadWrite),
    b(16, "proba_out", Access::ReadWrite),
];

/// The choices of a kernel build: the subgroup width the tree sums use (None: the workgroup-memory
/// fallback), whether `two_prod` may use fma (the device's rounds once), and the arithmetic (which
/// precision prelude the kernels are written against).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Build {
    pub subgroup: Option<u32>,
    pub exact_fma: bool,
    pub arith: Arith,
}

/// The constants every shader starts with, from the values above and the build's choices: SG (the
/// subgroup width, for shaders/tree_subgroup.wgsl; 1 without) and EXACT_FMA.
pub(crate) fn wgsl_header(build: Build) -> String {
    let subgroup = build.subgroup.unwrap_or(1);
    let exact_fma = build.exact_fma;
    let stage = stage_len(build.arith);
    let fast = build.arith == Arith::Fast;
    format!(
        "// Generated by src/gpu/layout.rs: the host's constants.\n\
         const SG: u32 = {subgroup}u;\nconst EXACT_FMA: bool = {exact_fma};\nconst FAST: bool = {fast};\n\
         const WG: u32 = {WG}u;\nconst TRI_TS: u32 = {TRI_TS}u;\nconst TRI_CB: u32 = {TRI_CB}u;\nconst TRI_RB: u32 = {TRI_RB}u;\nconst TRI_CG: u32 = {TRI_CG}u;\nconst TRI_SMALL_D: u32 = {TRI_SMALL_D}u;\nconst TRI_BT: u32 = {TRI_BT}u;\n\
         const DIAG_KC: u32 = {DIAG_KC}u;\nconst DIAG_FB: u32 = {DIAG_FB}u;\n\
         const FUSED_D: u32 = {FUSED_D}u;\nconst FUSED_K: u32 = {FUSED_K}u;\nconst FUSED_Q: u32 = {FUSED_Q}u;\n\
         const STAGE: u32 = {stage}u;\nconst SUB_MAX: u32 = {SUB_MAX}u;\nconst T: u32 = {T}u;\nconst GROUP: u32 = {GROUP}u;\n\
         const LOG_FLOOR: f32 = {LOG_FLOOR:e};\n\
         const KIND_FULL: u32 = {KIND_FULL}u;\nconst KIND_TIED: u32 = {KIND_TIED}u;\nconst KIND_DIAG: u32 = {KIND_DIAG}u;\n\
         const STATS_PACKED: u32 = {STATS_PACKED}u;\nconst STATS_DIAG: u32 = {STATS_DIAG}u;\n\
         const INFER_LABELS: u32 = {INFER_LABELS}u;\nconst INFER_LOGP: u32 = {INFER_LOGP}u;\nconst INFER_PROBA: u32 = {INFER_PROBA}u;\n\n"
    )
}

/// The generated header, shaders/common.wgsl, the precision prelude, the tree sum, then the shader
/// itself. With a
/// subgroup width (the device's smallest subgroup, a power of two) the tree's last levels are
/// subgroup shuffles (naga 30 takes them without WGSL's `enable subgroups`, which it does not
/// implement yet; the device's `Features::SUBGROUP` is what allows them).
fn with_common(shader: &str, build: Build) -> String {
    let tree = match build.subgroup {
        Some(_) => include_str!("../../shaders/tree_subgroup.wgsl"),
        None => include_str!("../../shaders/tree.wgsl"),
    };
    let f32_values = include_str!("../../shaders/precision_f32_values.wgsl");
    let (prelude, values) = match build.arith {
        Arith::Fast => (include_str!("../../shaders/precision_fast.wgsl"), f32_values),
        Arith::TwoFloat => (include_str!("../../shaders/precision_exact.wgsl"), f32_values),
        Arith::F64 => (include_str!("../../shaders/precision_f64.wgsl"), ""),
    };
    [
        &wgsl_header(build),
        include_str!("../../shaders/common.wgsl"),
        prelude,
        values,
        tree,
        shader,
    ]
    .concat()
}

/// The subgroup width the tree sum may use on a device whose smallest subgroup is `min_size`:
/// a power of two from 2 to WG, else none.
pub(crate) fn subgroup_width(min_size: u32) -> Option<u32> {
    (min_size >= 2 && min_size.is_power_of_two()).then_some(min_size.min(WG))
}

/// The E-step shader, complete.
pub(crate) fn estep_source(build: Build) -> String {
    with_common(include_str!("../../shaders/estep.wgsl"), build)
}

/// The reduction shader, complete.
pub(crate) fn reduce_source(build: Build) -> String {
    with_common(include_str!("../../shaders/reduce.wgsl"), build)
}

/// The inference shader, complete: it calls the E-step's functions, so that comes first.
pub(crate) fn infer_source(build: Build) -> String {
    with_common(
        &[
            include_str!("../../shaders/estep.wgsl"),
            include_str!("../../shaders/infer.wgsl"),
        ]
        .concat(),
        build,
    )
}

/// The fused pass, complete: it calls the E-step's and the reduction's functions, so both come
/// first (their entry points are compiled only where a pipeline names them).
pub(crate) fn fused_source(build: Build) -> String {
    with_common(
        &[
            include_str!("../../shaders/estep.wgsl"),
            include_str!("../../shaders/reduce.wgsl"),
            include_str!("../../shaders/fused.wgsl"),
        ]
        .concat(),
        build,
    )
}

/// The fma probe, complete (EXACT_FMA set, so that `two_prod` takes its fma).
pub(crate) fn probe_source() -> String {
    with_common(
        include_str!("../../shaders/probe.wgsl"),
        Build {
            subgroup: None,
            exact_fma: true,
            arith: Arith::TwoFloat,
        },
    )
}

/// Every shader module, by name, in every build: without and with subgroups (the widths of
/// lavapipe and NVIDIA), with and without fma, in every arithmetic.
#[cfg(test)]
pub(crate) fn sources() -> Vec<(String, String, Build)> {
    let builds = [None, Some(8), Some(32)].into_iter().flat_map(|subgroup| {
        [false, true].into_iter().flat_map(move |exact_fma| {
            Arith::ALL.map(|arith| Build {
                subgroup,
                exact_fma,
                arith,
            })
        })
    });
    builds
        .flat_map(|build| {
            [
                ("estep.wgsl", estep_source(build)),
                ("reduce.wgsl", reduce_source(build)),
                ("fused.wgsl", fused_source(build)),
                ("infer.wgsl", infer_source(build)),
            ]
            .map(|(name, source)| (format!("{name} ({build:?})"), source, build))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses and validates a shader with naga, as wgpu would, without an adapter; the subgroup
    /// and f64 capabilities only where the build uses them (so no other build can).
    fn validate(name: &str, source: &str, build: Build) -> naga::Module {
        use naga::valid::{Capabilities, ShaderStages, SubgroupOperationSet, ValidationFlags, Validator};
        let module =
            naga::front::wgsl::parse_str(source).unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(source)));
        let mut caps = Capabilities::empty();
        if build.subgroup.is_some() {
            caps |= Capabilities::SUBGROUP;
        }
        if build.arith == Arith::F64 {
            caps |= Capabilities::FLOAT64;
        }
        let mut validator = Validator::new(ValidationFlags::all(), caps);
        if build.subgroup.is_some() {
            validator
                .subgroup_stages(ShaderStages::COMPUTE)
                .subgroup_operations(SubgroupOperationSet::all());
        }
        validator.validate(&module).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        module
    }

    #[test]
    fn every_shader_parses_and_validates() {
        for (name, source, build) in sources() {
            validate(&name, &source, build);
        }
        let estep = validate("estep.wgsl", &estep_source(Build::default()), Build::default());
        let reduce = validate("reduce.wgsl", &reduce_source(Build::default()), Build::default());
        let entries = |m: &naga::Module| m.entry_points.iter().map(|e| e.name.clone()).collect::<Vec<_>>();
        assert_eq!(
            entries(&estep),
            [
                "logprob",
                "logprob_diag",
                "logprob_tri",
                "normalise",
                "assign",
                "random"
            ]
        );
        assert_eq!(entries(&reduce), ["stats_tri", "stats", "combine"]);
        let fused = validate("fused.wgsl", &fused_source(Build::default()), Build::default());
        let probe = validate("probe.wgsl", &probe_source(), Build::default());
        assert_eq!(entries(&probe).last().map(String::as_str), Some("probe_fma"));
        assert_eq!(entries(&fused).last().map(String::as_str), Some("fused"));
        let infer = validate("infer.wgsl", &infer_source(Build::default()), Build::default());
        assert_eq!(entries(&infer)[entries(&estep).len()..], ["infer", "infer_h"]);
    }

    /// The (group, binding, access) of every global a shader declares, by name.
    fn reflect_bindings(module: &naga::Module) -> Vec<(String, u32, u32, Access)> {
        module
            .global_variables
            .iter()
            .filter_map(|(_, g)| {
                let rb = g.binding.as_ref()?;
                let access = match g.space {
                    naga::AddressSpace::Uniform => Access::Uniform,
                    naga::AddressSpace::Storage { access } if access.contains(naga::StorageAccess::STORE) => {
                        Access::ReadWrite
                    }
                    naga::AddressSpace::Storage { .. } => Access::Read,
                    other => panic!("unexpected address space {other:?}"),
                };
                Some((g.name.clone().unwrap_or_default(), rb.group, rb.binding, access))
            })
            .collect()
    }

    #[test]
    fn every_shader_binding_matches_the_table() {
        let common: Vec<Binding> = CHUNK_BINDINGS.iter().chain(&COMBINE_BINDINGS).copied().collect();
        let with_infer: Vec<Binding> = common.iter().chain(&INFER_BINDINGS[6..]).copied().collect();
        for (name, source, _) in sources() {
            let table = if name.starts_with("infer.wgsl") {
                &with_infer
            } else {
                &common
            };
            let module = naga::front::wgsl::parse_str(&source).unwrap();
            let found = reflect_bindings(&module);
            assert_eq!(found.len(), table.len(), "{name}: {found:?}");
            for (var, group, binding, access) in found {
                let row = table
                    .iter()
                    .find(|b| b.name == var)
                    .unwrap_or_else(|| panic!("{name}: binding '{var}' is not in the Rust table"));
                assert_eq!(
                    (group, binding, access),
                    (0, row.binding, row.access),
                    "{name}: '{var}'"
                );
            }
        }
        // The layouts never reuse a binding number, so one group-0 namespace serves them all; the
        // inference layout's shared rows are the chunk layout's.
        let mut numbers: Vec<u32> = with_infer.iter().map(|b| b.binding).collect();
        numbers.sort_unstable();
        numbers.dedup();
        assert_eq!(numbers.len(), with_infer.len());
        assert!(INFER_BINDINGS[..6].iter().all(|b| CHUNK_BINDINGS.contains(b)));
    }

    #[test]
    fn uniform_structs_match_their_wgsl_twins_field_by_field() {
        for (module_name, source, _) in sources() {
            let module = naga::front::wgsl::parse_str(&source).unwrap();
            for (name, size, fields) in STRUCTS {
                let found = module.types.iter().find(|(_, t)| t.name.as_deref() == Some(name));
                // `Infer` lives in shaders/infer.wgsl alone.
                if name == "Infer" && !module_name.starts_with("infer.wgsl") {
                    assert!(found.is_none(), "{module_name} declares Infer");
                    continue;
                }
                let (_, ty) = found.unwrap_or_else(|| panic!("{module_name}: {name}"));
                assert_eq!(ty.inner.size(module.to_ctx()) as usize, size, "{name}: size");
                let naga::TypeInner::Struct { members, .. } = &ty.inner else {
                    panic!("{name} is not a struct")
                };
                let wgsl: Vec<(String, usize)> = members
                    .iter()
                    .map(|m| (m.name.clone().unwrap_or_default(), m.offset as usize))
                    .collect();
                let rust: Vec<(String, usize)> = fields.iter().map(|&(n, o)| (n.to_string(), o)).collect();
                assert_eq!(wgsl, rust, "{name}: fields and offsets");
            }
        }
    }
}
