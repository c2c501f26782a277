// The precision prelude of the exact kernels: every value of the E-step a two-float (hi, lo), every
// product error-free, exp and log our own two-float ones. Prepended (after shaders/common.wgsl,
// before shaders/precision_f32_values.wgsl) in place of its twins shaders/precision_fast.wgsl and
// shaders/precision_f64.wgsl, which define the same functions: the kernels are written once
// against them (src/gpu/layout.rs picks the prelude per arithmetic).

/// A value of the E-step (z = x − μ, y = Uᵀz, the Mahalanobis form): a two-float.
alias Real = vec2<f32>;
/// A plain run of statistics between merges into the two-float totals: here itself a two-float of
/// error-free products.
alias Run = vec2<f32>;
/// Whether h has a low part that `normalise` reads (`h_lo`).
const H_LO: bool = true;
/// Whether a factor entry's low part enters the products (`factor_of`).
const FACTOR_LO: bool = true;
/// Whether the kernels that write h fold c's low part into it (`c_lo_in_h`): no, h keeps its own.
const C_LO_IN_H: bool = false;
/// Samples a lane's runs hold before they are merged into its totals: here never before the end
/// (a run is already two-float).
const RUN_LEN: u32 = 0xffffffffu;

/// e as stored: its value in one f32, no low part.
fn prob_parts(e: Prob) -> vec2<f32> {
    return vec2<f32>(e.x + e.y, 0.0);
}

fn real_zero() -> Real {
    return vec2<f32>(0.0, 0.0);
}

/// x − (μ_hi + μ_lo) as a normalised two-float. With a mean far from the frame's centre relative
/// to its spread, μ_lo is not small next to x − μ_hi, and a product or square of an unnormalised
/// two-float drops lo·lo terms (it once cost 2e-4 nats per sample at spreads 1e-6 of the range).
fn centred(x_i: f32, mu_hi: f32, mu_lo: f32, one: f32) -> Real {
    let t = two_sum(x_i, -mu_hi, one);
    return two_sum(t.x, t.y - mu_lo, one);
}

/// A factor entry as the products take it: here (hi, lo).
alias Factor = vec2<f32>;

fn factor_of(hi: f32, lo: f32) -> Factor {
    return vec2<f32>(hi, lo);
}

/// Four values staged together (`logprob_tri`: four samples' z of a row, or four columns of a row
/// of U: a factor entry is a `Real` here too): the high parts in column 0 and the low parts in
/// column 1, so that a hot loop fetches them in two vector loads.
alias Real4 = mat2x4<f32>;

fn real4_of(a: Real, b: Real, c: Real, d: Real) -> Real4 {
    return mat2x4<f32>(vec4<f32>(a.x, b.x, c.x, d.x), vec4<f32>(a.y, b.y, c.y, d.y));
}

fn real4_at(v: Real4, i: u32) -> Real {
    return vec2<f32>(v[0][i], v[1][i]);
}

/// z·(f_hi + f_lo).
fn real_mul(z: Real, f: Factor, one: f32) -> Real {
    return df_fma2(vec2<f32>(0.0, 0.0), z, f.x, f.y, one);
}

/// acc + z·(u_hi + u_lo).
fn mac(acc: Real, z: Real, u: Factor, one: f32) -> Real {
    return df_fma2(acc, z, u.x, u.y, one);
}

/// acc + y².
fn add_sq(acc: Real, y: Real, one: f32) -> Real {
    return df_add(acc, df_sq(y, one), one);
}

/// A partial sum merged into a two-float total.
fn sum_merge(total: vec2<f32>, part: Real, one: f32) -> vec2<f32> {
    return df_add(total, part, one);
}

fn real_add(a: Real, b: Real, one: f32) -> Real {
    return df_add(a, b, one);
}

/// v as a normalised (hi, lo).
fn real_parts(v: Real, one: f32) -> vec2<f32> {
    return two_sum(v.x, v.y, one);
}

/// The best component's L = c + h as `lse_term` and `lse_total` take it: here its parts as they
/// are, (c_hi, h_hi, c_lo + h_lo).
fn lse_best(c_hi: f32, h_hi: f32, lo: f32, one: f32) -> vec3<f32> {
    return vec3<f32>(c_hi, h_hi, lo);
}

/// e^(L_k − L_best) as a two-float, with L = c + h given as c (hi, lo, from `lse_const`) and h
/// (hi, lo), and the best component's as (c_hi, h_hi, c_lo + h_lo): Δ_k = L_k − L_best from the
/// differences of the high and low parts, so that no term carries the rounding of a large L
/// (Δ_best is exactly 0). Shared by `normalise` and the fused pass.
fn lse_term(c: vec2<f32>, h_k: f32, h_lo_k: f32, best: vec3<f32>, one: f32) -> Prob {
    let dc = two_sum(c.x, -best.x, one);
    let dh = two_sum(h_k, -best.y, one);
    let dd = two_sum(dc.x, dh.x, one);
    let d_lo = dd.y + dc.y + dh.y + ((c.y + h_lo_k) - best.z);
    return exp_df(dd.x, d_lo, one);
}

/// s + e, the sum of the terms of the log-sum-exp.
fn lse_add(s: Prob, e: Prob, one: f32) -> Prob {
    return df_add(s, e, one);
}

/// log p = L_best + log Σ_k e^(L_k − L_best), every piece two-float (`best` as in `lse_term`).
fn lse_total(best: vec3<f32>, total: Prob, one: f32) -> vec2<f32> {
    let t = two_sum(best.x, best.y, one);
    return df_add(vec2<f32>(t.x, t.y + best.z), log_df(total, one), one);
}

fn run_zero() -> Run {
    return vec2<f32>(0.0, 0.0);
}

/// run + a·b, the product error-free.
fn run_mac(run: Run, a: Stage, b: Stage, one: f32) -> Run {
    return df_add(run, two_prod(a, b, one), one);
}

/// A run merged into a two-float total.
fn acc_merge(acc: vec2<f32>, run: Run, one: f32) -> vec2<f32> {
    return df_add(acc, run, one);
}
