// The precision prelude of the fast kernels: plain f32 where that is safe on well-conditioned
// components (the host's guard sends the others to the exact kernels, src/gpu/precision.rs), with
// the sums that many samples feed still two-float. The twin of shaders/precision_exact.wgsl: the
// same functions, so the kernels are written once. No `* one` here: plain f32 needs no guard
// against the compiler's algebra.

/// A value of the E-step (z = x − μ, y = Uᵀz, the Mahalanobis form): plain f32.
alias Real = f32;
/// A run of statistics over one staged sub-block (at most SUB_MAX samples, or one tile of WG):
/// plain fma, merged into the two-float totals after each sub-block.
alias Run = f32;
/// Whether h has a low part that `normalise` reads (`h_lo`): not here.
const H_LO: bool = false;
/// Whether a factor entry's low part enters the products (`factor_of`): not here, so the kernels
/// need not load it.
const FACTOR_LO: bool = false;
/// Samples a lane's runs hold before they are merged into its two-float totals: a plain f32 run
/// of m products errs by at most m·2⁻²⁴ of its magnitudes, so 32 keeps each run within 2e-6.
const RUN_LEN: u32 = 32u;
/// Whether the kernels that write h fold in the log-density constant's low part (`c_lo_in_h`), so
/// that the log-sum-exp takes c's high part alone: yes, h has no low part of its own here.
const C_LO_IN_H: bool = true;
/// exp terms below e^−36 (2e-16 of the largest, which is 1) are below f32's resolution of the sum.
const LSE_SKIP: f32 = -36.0;

/// e as stored: its value in one f32 (it has no low part here).
fn prob_parts(e: Prob) -> vec2<f32> {
    return vec2<f32>(e.x, 0.0);
}

fn real_zero() -> Real {
    return 0.0;
}

/// x − (μ_hi + μ_lo): the mean's low part still enters, so a mean far from the frame's centre
/// costs only the rounding of the difference.
fn centred(x_i: f32, mu_hi: f32, mu_lo: f32, one: f32) -> Real {
    return (x_i - mu_hi) - mu_lo;
}

/// A factor entry as the products take it: its high part (the low part is below f32's resolution
/// of a product), so `logprob_tri` stages half the bytes.
alias Factor = f32;

fn factor_of(hi: f32, lo: f32) -> Factor {
    return hi;
}

/// Four values staged as one vector (`logprob_tri`: four samples' z of a row, or four columns of
/// a row of U: a factor entry is a `Real` in every arithmetic), so that a hot loop fetches them in
/// one load.
alias Real4 = vec4<f32>;

fn real4_of(a: Real, b: Real, c: Real, d: Real) -> Real4 {
    return vec4<f32>(a, b, c, d);
}

fn real4_at(v: Real4, i: u32) -> Real {
    return v[i];
}

/// z·f.
fn real_mul(z: Real, f: Factor, one: f32) -> Real {
    return z * f;
}

/// acc + z·u, one fma.
fn mac(acc: Real, z: Real, u: Factor, one: f32) -> Real {
    return fma(z, u, acc);
}

/// acc + y², one fma.
fn add_sq(acc: Real, y: Real, one: f32) -> Real {
    return fma(y, y, acc);
}

/// A partial sum merged into a two-float total.
fn sum_merge(total: vec2<f32>, part: Real, one: f32) -> vec2<f32> {
    return df_add1(total, part, one);
}

fn real_add(a: Real, b: Real, one: f32) -> Real {
    return a + b;
}

fn real_parts(v: Real, one: f32) -> vec2<f32> {
    return vec2<f32>(v, 0.0);
}

/// The best component's L = c + h as `lse_term` and `lse_total` take it: its parts as they are,
/// (c_hi, h, lo), where h holds c's low part already (`c_lo_in_h`) and lo is 0 (`lse_const`).
fn lse_best(c_hi: f32, h_hi: f32, lo: f32, one: f32) -> vec3<f32> {
    return vec3<f32>(c_hi, h_hi, lo);
}

/// e^(L_k − L_best) with the device's exp, Δ_k = (c_k − c_best) + (h_k − h_best) from the high
/// parts of c and from h, which holds c's low part (`c_lo_in_h`): the large c and h cancel before
/// anything rounds (L_k itself in f32 would err by 2⁻²⁴·|L|: 1e-4 at d = 500), and the difference
/// of the constants is exact where they lie within a factor 2 (Sterbenz); folding c_lo into h costs
/// one rounding of h, below the f32 arithmetic that made it. 0 below e^LSE_SKIP.
fn lse_term(c: vec2<f32>, h_k: f32, h_lo_k: f32, best: vec3<f32>, one: f32) -> Prob {
    let delta = (c.x - best.x) + (h_k - best.y);
    if delta < LSE_SKIP {
        return vec2<f32>(0.0, 0.0);
    }
    return vec2<f32>(exp(delta), 0.0);
}

/// s + e in plain f32: at most K terms in [0, 1], one of them 1.
fn lse_add(s: Prob, e: Prob, one: f32) -> Prob {
    return vec2<f32>(s.x + e.x, 0.0);
}

/// log p = L_best + log Σ_k e^(L_k − L_best): L_best = c + h kept exact as a two-float (once per
/// sample), the device's log of the sum added to it.
fn lse_total(best: vec3<f32>, total: Prob, one: f32) -> vec2<f32> {
    let t = two_sum(best.x, best.y, one);
    return vec2<f32>(t.x, t.y + (best.z + log(total.x)));
}

fn run_zero() -> Run {
    return 0.0;
}

/// run + a·b, one fma.
fn run_mac(run: Run, a: Stage, b: Stage, one: f32) -> Run {
    return fma(a, b, run);
}

/// A run merged into a two-float total (TwoSum of the total's high part and the run).
fn acc_merge(acc: vec2<f32>, run: Run, one: f32) -> vec2<f32> {
    return df_add1(acc, run, one);
}
