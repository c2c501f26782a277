// The precision prelude of the native-f64 exact kernels, where the device has
// `wgpu::Features::SHADER_F64` and a fast f64 rate (src/gpu/precision.rs): every value of the
// E-step, every e_k and responsibility, and every staged product in f64; exp and log our own (SPIR-V's
// GLSL.std.450 Exp and Log take 32-bit floats only). What crosses device memory stays f32: a value
// that must keep its digits travels as an f32 pair (hi, lo), 48 bits, in `resp` and `h_lo`, and the
// partial sums stay two-float for the combine tree and the host's f64 finish. The twin of
// shaders/precision_fast.wgsl and shaders/precision_exact.wgsl: the same functions.

alias Real = f64;
alias Run = f64;
alias Prob = f64;
alias Stage = f64;
alias Stage4 = vec4<f64>;
/// h, and after `normalise` the responsibilities, keep their low parts in `h_lo`.
const H_LO: bool = true;
/// Whether a factor entry's low part enters the products (`factor_of`).
const FACTOR_LO: bool = true;
/// Whether the kernels that write h fold c's low part into it (`c_lo_in_h`): no, h keeps its own.
const C_LO_IN_H: bool = false;
const R_LO: bool = true;
/// Runs are f64: merged into the two-float totals once, at the end.
const RUN_LEN: u32 = 0xffffffffu;

/// An f32 pair as one f64 (exact).
fn wide(v: vec2<f32>) -> f64 {
    return f64(v.x) + f64(v.y);
}

/// An f64 as an f32 pair hi + lo (48 bits).
fn parts(v: f64) -> vec2<f32> {
    let hi = f32(v);
    return vec2<f32>(hi, f32(v - f64(hi)));
}

fn prob_zero() -> Prob {
    return f64(0.0);
}

fn prob_parts(e: Prob) -> vec2<f32> {
    return parts(e);
}

fn prob_of_parts(v: vec2<f32>) -> Prob {
    return wide(v);
}

/// The responsibility w·e/Σe.
fn r_of(e: Prob, w: f32, s: Prob) -> Prob {
    return f64(w) * e / s;
}

/// The responsibility at `i` (hi in `resp`, lo in `h_lo`), for staging.
fn r_at(i: u32) -> Stage {
    return f64(resp[i]) + f64(h_lo[i]);
}

fn stage_of_parts(v: vec2<f32>) -> Stage {
    return wide(v);
}

/// x − c, exact in f64.
fn stage_value(x_i: f32, centre: f32) -> Stage {
    return f64(x_i) - f64(centre);
}

fn stage_root(r: Stage) -> Stage {
    return sqrt(r);
}

fn real_zero() -> Real {
    return f64(0.0);
}

/// x − (μ_hi + μ_lo), exact in f64 but for one rounding.
fn centred(x_i: f32, mu_hi: f32, mu_lo: f32, one: f32) -> Real {
    return (f64(x_i) - f64(mu_hi)) - f64(mu_lo);
}

/// A factor entry as the products take it: hi + lo as one f64, widened once (as `logprob_tri`
/// stages it).
alias Factor = f64;

fn factor_of(hi: f32, lo: f32) -> Factor {
    return f64(hi) + f64(lo);
}

/// Four values staged as one vector (`logprob_tri`: four samples' z of a row, or four columns of
/// a row of U: a factor entry is a `Real` in every arithmetic), so that a hot loop fetches them in
/// one load.
alias Real4 = vec4<f64>;

fn real4_of(a: Real, b: Real, c: Real, d: Real) -> Real4 {
    return vec4<f64>(a, b, c, d);
}

fn real4_at(v: Real4, i: u32) -> Real {
    return v[i];
}

fn real_mul(z: Real, f: Factor, one: f32) -> Real {
    return z * f;
}

fn mac(acc: Real, z: Real, u: Factor, one: f32) -> Real {
    return fma(z, u, acc);
}

fn add_sq(acc: Real, y: Real, one: f32) -> Real {
    return fma(y, y, acc);
}

fn sum_merge(total: vec2<f32>, part: Real, one: f32) -> vec2<f32> {
    return parts(wide(total) + part);
}

fn real_add(a: Real, b: Real, one: f32) -> Real {
    return a + b;
}

fn real_parts(v: Real, one: f32) -> vec2<f32> {
    return parts(v);
}

/// e^x in f64 (relative error a few 1e-16): x = k·ln 2 + r with ln 2 in two parts (the high one
/// short, so k·ln2_hi is exact), |r| <= 0.347, and e^r by its Taylor series to r¹³/13! (truncation
/// 4e-18), written out: lavapipe counts loop iterations, and normalise calls this K times.
fn exp64(x: f64) -> f64 {
    if x < f64(-745.0) {
        return f64(0.0);
    }
    let k = round(min(x, f64(709.0)) * f64(1.4426950408889634));
    let r = (x - k * f64(6.93147180369123816490e-01)) - k * f64(1.90821492927058770002e-10);
    var p = f64(1.0 / 6227020800.0);
    p = fma(p, r, f64(1.0 / 479001600.0));
    p = fma(p, r, f64(1.0 / 39916800.0));
    p = fma(p, r, f64(1.0 / 3628800.0));
    p = fma(p, r, f64(1.0 / 362880.0));
    p = fma(p, r, f64(1.0 / 40320.0));
    p = fma(p, r, f64(1.0 / 5040.0));
    p = fma(p, r, f64(1.0 / 720.0));
    p = fma(p, r, f64(1.0 / 120.0));
    p = fma(p, r, f64(1.0 / 24.0));
    p = fma(p, r, f64(1.0 / 6.0));
    p = fma(p, r, f64(0.5));
    p = fma(p, r, f64(1.0));
    p = fma(p, r, f64(1.0));
    return ldexp(p, i32(k));
}

/// log s in f64 for s in f32's normal range (absolute error a few 1e-16): s = m·2^e with m in [√½, √2), and
/// log m = 2·atanh(u) = 2u + 2u³·(1/3 + u²/5 + … + u²⁰/23) with u = (m − 1)/(m + 1), |u| <= 0.172
/// (truncation 5e-19).
fn log64(s: f64) -> f64 {
    // The exponent from the f32 nearest s (frexp of an f64 would need 64-bit integers): m lands
    // in [½·(1 − 2⁻²⁴), 1), which the √½ step below brings into [√½·(1 − 2⁻²⁴), √2).
    let ex = frexp(f32(s)).exp;
    var m = ldexp(s, -ex);
    var e = f64(ex);
    if m < f64(0.70710678118654752) {
        m = m * f64(2.0);
        e = e - f64(1.0);
    }
    let u = (m - f64(1.0)) / (m + f64(1.0));
    let u2 = u * u;
    var p = f64(1.0 / 23.0);
    p = fma(p, u2, f64(1.0 / 21.0));
    p = fma(p, u2, f64(1.0 / 19.0));
    p = fma(p, u2, f64(1.0 / 17.0));
    p = fma(p, u2, f64(1.0 / 15.0));
    p = fma(p, u2, f64(1.0 / 13.0));
    p = fma(p, u2, f64(1.0 / 11.0));
    p = fma(p, u2, f64(1.0 / 9.0));
    p = fma(p, u2, f64(1.0 / 7.0));
    p = fma(p, u2, f64(1.0 / 5.0));
    p = fma(p, u2, f64(1.0 / 3.0));
    let log_m = fma(f64(2.0) * u * u2, p, f64(2.0) * u);
    return fma(e, f64(6.93147180369123816490e-01), fma(e, f64(1.90821492927058770002e-10), log_m));
}

/// The best component's L = c + h: its parts as they are, (c_hi, h_hi, c_lo + h_lo).
fn lse_best(c_hi: f32, h_hi: f32, lo: f32, one: f32) -> vec3<f32> {
    return vec3<f32>(c_hi, h_hi, lo);
}

/// e^(L_k − L_best) in f64, Δ_k from the differences of the high parts, then of the low parts
/// (Δ_best is exactly 0).
fn lse_term(c: vec2<f32>, h_k: f32, h_lo_k: f32, best: vec3<f32>, one: f32) -> Prob {
    let delta = ((f64(c.x) - f64(best.x)) + (f64(h_k) - f64(best.y))) + ((f64(c.y) + f64(h_lo_k)) - f64(best.z));
    return exp64(delta);
}

fn lse_add(s: Prob, e: Prob, one: f32) -> Prob {
    return s + e;
}

/// log p = L_best + log Σ_k e^(L_k − L_best), in f64, as an f32 pair.
fn lse_total(best: vec3<f32>, total: Prob, one: f32) -> vec2<f32> {
    return parts(((f64(best.x) + f64(best.y)) + f64(best.z)) + log64(total));
}

fn run_zero() -> Run {
    return f64(0.0);
}

fn run_mac(run: Run, a: Stage, b: Stage, one: f32) -> Run {
    return fma(a, b, run);
}

fn acc_merge(acc: vec2<f32>, run: Run, one: f32) -> vec2<f32> {
    return parts(wide(acc) + run);
}
