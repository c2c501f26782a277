// What the fast and the two-float exact preludes share: the responsibilities and the staged
// values of the statistics are f32 (the native-f64 prelude, shaders/precision_f64.wgsl, has its
// own). Prepended after either of them (src/gpu/layout.rs).

/// An e_k of the log-sum-exp, a sum of them, or a responsibility: a two-float whose value the
/// kernels store as one f32 (each prelude's `prob_parts`).
alias Prob = vec2<f32>;
/// A staged value of the statistics (√r·z) and four of them.
alias Stage = f32;
alias Stage4 = vec4<f32>;
/// Whether the responsibilities keep a low part (in `h_lo`, after `normalise`): not here.
const R_LO: bool = false;

fn prob_zero() -> Prob {
    return vec2<f32>(0.0, 0.0);
}

/// A stored e back.
fn prob_of_parts(v: vec2<f32>) -> Prob {
    return v;
}

/// The responsibility w·e/Σe of a stored e.
fn r_of(e: Prob, w: f32, s: Prob) -> Prob {
    let inv_s = w / (s.x + s.y);
    return vec2<f32>(inv_s * e.x, 0.0);
}

/// The responsibility at `i` of `resp`, for staging.
fn r_at(i: u32) -> Stage {
    return resp[i];
}

/// A stored responsibility, for staging.
fn stage_of_parts(v: vec2<f32>) -> Stage {
    return v.x;
}

/// x − c for staging (its f32 rounding is the data's).
fn stage_value(x_i: f32, centre: f32) -> Stage {
    return x_i - centre;
}

fn stage_root(r: Stage) -> Stage {
    return sqrt(r);
}
