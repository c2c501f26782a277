// What every shader shares: the uniform structs, the bindings, and error-free (two-float) sums.
// Prepended (after the generated constants) to estep.wgsl and reduce.wgsl. The Rust twins and the
// binding table live in src/gpu/layout.rs, and a naga test checks this file against them.

struct Chunk {          // Rust twin: gpu::layout::Chunk
    n_samples: u32,     // samples in this chunk
    first_lo: u32,      // global index of the chunk's first sample, low and high words
    first_hi: u32,
    n_blocks: u32,      // sample blocks of the statistics pass
    block_len: u32,     // samples per block
    x_at: u32,          // where sample 0's row starts in `x` (f32s past the binding's offset)
    x_stride: u32,      // f32s from one sample's row to the next (>= n_features)
    _pad0: u32,
}

struct Pass {           // Rust twin: gpu::layout::Pass
    n_features: u32,
    n_components: u32,
    kind: u32,          // how the factors are stored: KIND_FULL, KIND_TIED, KIND_DIAG
    stats_kind: u32,    // which second moments the statistics pass sums: STATS_*
    n_outputs: u32,     // statistics per component (E)
    out_groups: u32,    // workgroups per component along the outputs (statistics pass)
    has_weights: u32,   // 1 if `weights` holds per-sample weights
    seed_lo: u32,       // the 'random' init's seed
    seed_hi: u32,
    means_at: u32,      // offsets into `model`
    centres_at: u32,
    factors_at: u32,
    consts_at: u32,
    out_slots: u32,     // output slots per workgroup of the statistics pass
    lanes: u32,         // sample lanes per workgroup of the statistics pass
    one: f32,           // 1.0, opaque to the compiler (see two_sum)
    neg_inf: f32,       // −∞
    means_lo_at: u32,   // the means' low parts (a mean is hi + lo)
    factors_lo_at: u32, // the factors' low parts
    tri_blocks: u32,    // stats_tri's square blocks per side (0: row-major tiles)
    routes_at: u32,     // the component routes in `model`: the fast kernels' n_fast, then the exact ones'
    n_fast: u32,
    _pad0: u32,
    _pad1: u32,
}

struct Combine {        // Rust twin: gpu::layout::Combine
    n_rows: u32,        // partial rows in `src`
    row_len: u32,       // two-float values per row
    one: f32,           // 1.0, opaque to the compiler
    _pad: u32,
}

// Group 0 of the per-chunk entry points (gpu::layout::CHUNK_BINDINGS).
@group(0) @binding(0) var<uniform> chunk: Chunk;
@group(0) @binding(1) var<storage, read> x: array<f32>;                     // the chunk's samples, centred and scaled, row-major
@group(0) @binding(2) var<storage, read> model: array<f32>;                 // means, centres, factors, constants
@group(0) @binding(3) var<storage, read_write> resp: array<f32>;            // samples × components
@group(0) @binding(4) var<storage, read_write> logp_part: array<vec2<f32>>; // a two-float sum per WG samples
@group(0) @binding(5) var<storage, read> weights: array<f32>;               // per-sample weights (if has_weights)
@group(0) @binding(6) var<storage, read_write> partials: array<vec2<f32>>;  // n_blocks rows of K·E + 1 two-float sums
@group(0) @binding(7) var<uniform> job: Pass;
@group(0) @binding(8) var<storage, read_write> per_sample: array<f32>;      // log p_n, or the label of n
@group(0) @binding(9) var<storage, read_write> h_lo: array<f32>;            // the low parts of h, as `resp`

// Group 0 of the combine entry point (gpu::layout::COMBINE_BINDINGS).
@group(0) @binding(10) var<uniform> combine_params: Combine;
@group(0) @binding(11) var<storage, read> src: array<vec2<f32>>;
@group(0) @binding(12) var<storage, read_write> dst: array<vec2<f32>>;

/// Where feature i of the chunk's sample n sits in `x`: rows may sit inside larger records (a
/// caller's buffer with a stride), and the first one past the binding's aligned offset.
fn x_index(n: u32, i: u32) -> u32 {
    return chunk.x_at + n * chunk.x_stride + i;
}

/// Marks the first statement of a kernel's hot loop, whose arithmetic per iteration `bench::ops`
/// counts from the compiled module (src/bench/ops.rs). Empty: compilers inline it to nothing.
fn hot_loop() {}

// Component routes: a pass may run some components in the fast kernels and the rest in the exact
// ones (`GpuPrecision::Auto`'s guard, src/gpu/precision.rs). `model` holds a permutation of the
// components at routes_at, the fast kernels' n_fast first; each build's kernels walk their own
// part of it (all K in a pass of one arithmetic).

/// How many components this build's kernels run.
fn route_len() -> u32 {
    return select(job.n_components - job.n_fast, job.n_fast, FAST);
}

/// The i-th component this build's kernels run (i < route_len()).
fn routed(i: u32) -> u32 {
    return u32(model[job.routes_at + select(job.n_fast, 0u, FAST) + i]);
}

// Two-float sums: a value is hi + lo with |lo| <= ulp(hi)/2, so a sum keeps about 48 bits however
// many terms it has. Knuth's TwoSum is exact in round-to-nearest f32; `one` is a runtime 1.0 that
// stops the compiler from simplifying (a + b) − a to b, which would drop the error term.

/// a + b as (s, e) with s + e exactly a + b.
fn two_sum(a: f32, b: f32, one: f32) -> vec2<f32> {
    let s = (a + b) * one;
    let bb = (s - a) * one;
    return vec2<f32>(s, (a - (s - bb)) + (b - bb));
}

/// A two-float sum plus one f32 term.
fn df_add1(acc: vec2<f32>, v: f32, one: f32) -> vec2<f32> {
    let t = two_sum(acc.x, v, one);
    return vec2<f32>(t.x, acc.y + t.y);
}

/// The sum of two two-float values.
fn df_add(a: vec2<f32>, b: vec2<f32>, one: f32) -> vec2<f32> {
    let t = two_sum(a.x, b.x, one);
    // Renormalised, so that lo stays small relative to hi.
    return two_sum(t.x, t.y + (a.y + b.y), one);
}

/// a split into two halves of 12 significant bits (Veltkamp), so that products of halves are exact.
fn split(a: f32, one: f32) -> vec2<f32> {
    let c = (4097.0 * a) * one;
    let hi = c - (c - a) * one;
    return vec2<f32>(hi, a - hi);
}

/// a·b as (p, e) with p + e exactly a·b: e = fma(a, b, −p) where the device's fma rounds once
/// (EXACT_FMA, probed per context by shaders/probe.wgsl: WGSL lets fma round twice, which would lose
/// e silently), else Dekker's products of halves. Both are exact, so bitwise the same.
fn two_prod(a: f32, b: f32, one: f32) -> vec2<f32> {
    let p = (a * b) * one;
    if EXACT_FMA {
        return vec2<f32>(p, fma(a, b, -p));
    }
    let sa = split(a, one);
    let sb = split(b, one);
    return vec2<f32>(p, ((sa.x * sb.x - p) + sa.x * sb.y + sa.y * sb.x) + sa.y * sb.y);
}

/// acc + a·b for a two-float a, as a two-float.
fn df_fma(acc: vec2<f32>, a: vec2<f32>, b: f32, one: f32) -> vec2<f32> {
    let p = two_prod(a.x, b, one);
    let t = two_sum(acc.x, p.x, one);
    return vec2<f32>(t.x, acc.y + t.y + p.y + a.y * b);
}

/// acc + a·(b_hi + b_lo) for a two-float a, as a two-float.
fn df_fma2(acc: vec2<f32>, a: vec2<f32>, b_hi: f32, b_lo: f32, one: f32) -> vec2<f32> {
    let t = df_fma(acc, a, b_hi, one);
    return vec2<f32>(t.x, t.y + a.x * b_lo);
}

/// a·b for a two-float a, as a two-float.
fn df_mul1(a: vec2<f32>, b: f32, one: f32) -> vec2<f32> {
    let p = two_prod(a.x, b, one);
    return vec2<f32>(p.x, p.y + a.y * b);
}

/// y², as a two-float. y is renormalised first: a sum of products (Dot2) leaves lo unbounded
/// relative to hi, and the lo² term this formula drops is only negligible when |lo| <= ulp(hi).
fn df_sq(y: vec2<f32>, one: f32) -> vec2<f32> {
    let v = two_sum(y.x, y.y, one);
    let p = two_prod(v.x, v.x, one);
    return vec2<f32>(p.x, p.y + 2.0 * v.x * v.y);
}

// exp and log as two-floats, on any adapter. Vulkan lets exp err by 3 + 2|v| ulps and log by 2⁻²¹
// absolute near 1, and software rasterisers use short polynomials: smooth, deterministic errors that
// do not average out over samples, so they would bias the responsibilities and the log-likelihood
// (by ~1e-8 per sample on lavapipe). Even an f32 result correct to an ulp leaves ~2e-10 of noise in
// the mean log-likelihood per sample, enough to move where a tol of 1e-8 stops EM by a few
// iterations; so the leading terms are two-float, and only terms below 1e-2 are plain f32.

/// e^(hi + lo) for a small lo, as a normalised two-float (relative error ~5e-10): Cody–Waite
/// reduction by ln 2 (a short high part, so k·ln2_hi is exact) to a two-float r, |r| <= 0.35, then
/// 2^k·(1 + r + r²/2 + r³·p(r)) with 1 + r + r²/2 two-float and r³·p(r) <= 7.3e-3 in f32
/// (Taylor to r⁹, truncation below 1e-10).
fn exp_df(hi: f32, lo: f32, one: f32) -> vec2<f32> {
    if hi < -104.0 {
        return vec2<f32>(0.0, 0.0); // below the smallest subnormal
    }
    let k = round(min(hi, 88.0) * 1.4426950408889634);
    let t = two_sum(hi - k * 0.693145751953125, -k * 1.4286068203094172e-6, one);
    let r = two_sum(t.x, t.y + lo, one);
    var p = 1.0 / 362880.0;
    p = p * r.x + 1.0 / 40320.0;
    p = p * r.x + 1.0 / 5040.0;
    p = p * r.x + 1.0 / 720.0;
    p = p * r.x + 1.0 / 120.0;
    p = p * r.x + 1.0 / 24.0;
    p = p * r.x + 1.0 / 6.0;
    let cubic = (r.x * r.x) * (r.x * p);
    let half_sq = df_mul1(df_sq(r, one), 0.5, one);
    let e = df_add(df_add(vec2<f32>(1.0, 0.0), r, one), half_sq, one);
    let q = df_add1(e, cubic, one);
    let n = i32(k);
    return vec2<f32>(ldexp(q.x, n), ldexp(q.y, n));
}

/// log of a positive two-float s, as a two-float (absolute error ~3e-10): s = m·2^e with m in
/// [√½, √2), and log m = 2·atanh(u) = 2u + 2u³·p(u²) with u = (m − 1)/(m + 1), |u| <= 0.172: u as a
/// two-float (its division's residual recovered exactly, whatever the division's own accuracy),
/// 2u³·p(u²) <= 3.5e-3 in f32 (series to u¹¹, truncation below 1e-10); the low part of s enters as
/// s_lo / s_hi.
fn log_df(s: vec2<f32>, one: f32) -> vec2<f32> {
    let parts = frexp(s.x);
    var m = parts.fract;
    var e = f32(parts.exp);
    if m < 0.70710678 {
        m *= 2.0;
        e -= 1.0;
    }
    let num = m - 1.0; // exact (Sterbenz)
    let den = two_sum(m, 1.0, one);
    let u_hi = num / den.x;
    // num − u_hi·(den_hi + den_lo), exactly enough: the products' errors are recovered.
    let pr = two_prod(u_hi, den.x, one);
    let u_lo = (((num - pr.x) - pr.y) - u_hi * den.y) / den.x;
    let u2 = u_hi * u_hi;
    var p = 1.0 / 11.0;
    p = p * u2 + 1.0 / 9.0;
    p = p * u2 + 1.0 / 7.0;
    p = p * u2 + 1.0 / 5.0;
    p = p * u2 + 1.0 / 3.0;
    let tail = (2.0 * u_hi) * (u2 * p);
    let t = two_sum(e * 0.693145751953125, 2.0 * u_hi, one);
    return two_sum(t.x, t.y + ((2.0 * u_lo + tail) + (e * 1.4286068203094172e-6 + s.y / s.x)), one);
}
