// Inference on one chunk of samples, into the caller's buffers: the GPU twin of src/cpu/infer.rs.
//
// Entry points, one invocation per sample:
// - infer:   labels and log-densities straight from the samples, h_k recomputed per component in
//            registers (no samples × components array is written): for diagonal factors, and for
//            triangular ones up to TRI_SMALL_D features, where the loops stay short (the host
//            checks `plan::infer_direct_fits`).
// - infer_h: every output (responsibilities too) from h already in `resp` / `h_lo`, written there
//            by the E-step's log-density kernels over the chunk.
// Both take the log-sum-exp exactly as `normalise` does (each prelude's lse_best, lse_term,
// lse_add, lse_total), so the outputs carry the arithmetic of the build's precision.
//
// Appended to shaders/estep.wgsl (src/gpu/layout.rs `infer_source`), whose functions it calls.

struct Infer {          // Rust twin: gpu::layout::Infer
    outputs: u32,       // which outputs: INFER_LABELS | INFER_LOGP | INFER_PROBA
    labels_at: u32,     // where the chunk's first label goes in `labels_out` (u32s past the binding)
    logp_at: u32,       // ... its first log-density in `logp_out`
    proba_at: u32,      // ... its first row of responsibilities in `proba_out`
    shift_hi: f32,      // added to log p for the caller's units (−(d/2)·log 2π), as a two-float
    shift_lo: f32,
    logp_pairs: u32,    // 1: log p as (hi, lo) pairs without the shift (the host adds it in f64)
    _pad0: u32,
}

// Group 0 of the inference entry points (gpu::layout::INFER_BINDINGS), beside chunk, x, model,
// resp, job and h_lo of shaders/common.wgsl.
@group(0) @binding(13) var<uniform> infer_params: Infer;
@group(0) @binding(14) var<storage, read_write> labels_out: array<u32>;  // the caller's labels
@group(0) @binding(15) var<storage, read_write> logp_out: array<f32>;    // the caller's log-densities
@group(0) @binding(16) var<storage, read_write> proba_out: array<f32>;   // the caller's samples × components

/// h_k of the chunk's sample n as (hi, lo), as `write_h_parts` stores it (hi holds c_k's low part
/// where the fast prelude keeps it there): diagonal factors feature by feature from `x`, in
/// DIAG_FB blocks merged into a two-float total as `logprob_diag` sums them; triangular ones from
/// the sample's row `xs` through `maha_of`, as `logprob` does.
fn infer_h_of(n: u32, k: u32, xs: ptr<function, array<f32, TRI_SMALL_D>>, one: f32) -> vec2<f32> {
    let d = job.n_features;
    var maha = vec2<f32>(0.0, 0.0);
    if job.kind == KIND_DIAG {
        var total = vec2<f32>(0.0, 0.0);
        for (var i0 = 0u; i0 < d; i0 += DIAG_FB) {
            var block = real_zero();
            let end = min(i0 + DIAG_FB, d);
            for (var i = i0; i < end; i++) {
                hot_loop(); // bench::ops counts this loop
                block = diag_term(block, x[x_index(n, i)], k * d + i, one);
            }
            total = sum_merge(total, block, one);
        }
        maha = two_sum(total.x, total.y, one);
    } else {
        maha = real_parts(maha_of(xs, k), one);
    }
    var h = -0.5 * maha.x;
    if c_lo_in_h() {
        h += model[job.consts_at + job.n_components + k];
    }
    return vec2<f32>(h, -0.5 * maha.y);
}

/// Writes the label and the log-density of the chunk's sample n where they are asked for;
/// `reached` is false where no component reaches the sample in f32 (log p = −∞).
fn write_outputs(n: u32, best: u32, log_p: vec2<f32>, reached: bool) {
    if (infer_params.outputs & INFER_LABELS) != 0u {
        labels_out[infer_params.labels_at + n] = best;
    }
    if (infer_params.outputs & INFER_LOGP) != 0u {
        if infer_params.logp_pairs == 1u {
            logp_out[infer_params.logp_at + 2u * n] = select(job.neg_inf, log_p.x, reached);
            logp_out[infer_params.logp_at + 2u * n + 1u] = select(0.0, log_p.y, reached);
        } else {
            let t = df_add(log_p, vec2<f32>(infer_params.shift_hi, infer_params.shift_lo), job.one);
            logp_out[infer_params.logp_at + n] = select(job.neg_inf, t.x + t.y, reached);
        }
    }
}

@compute @workgroup_size(WG)
fn infer(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let n = group_index(wid, nwg) * WG + lid;
    if n >= chunk.n_samples {
        return;
    }
    let k_n = job.n_components;
    let c = job.consts_at;
    let one = job.one;
    var xs: array<f32, TRI_SMALL_D>;
    if job.kind != KIND_DIAG {
        for (var i = 0u; i < job.n_features; i++) {
            xs[i] = x[x_index(n, i)];
        }
    }
    // The largest L = c + h from a finite floor, the first on ties (as `normalise`).
    var top = LOG_FLOOR;
    var best = 0u;
    var best_h = vec2<f32>(0.0, 0.0);
    for (var k = 0u; k < k_n; k++) {
        let h = infer_h_of(n, k, &xs, one);
        let l = model[c + k] + h.x;
        if l > top {
            top = l;
            best = k;
            best_h = h;
        }
    }
    if (infer_params.outputs & INFER_LOGP) == 0u || top == LOG_FLOOR {
        write_outputs(n, best, vec2<f32>(0.0, 0.0), false);
        return;
    }
    // log p = L_best + log Σ exp(L_k − L_best), h recomputed rather than kept for every component.
    let best_l = lse_best(model[c + best], best_h.x, lse_const(c, k_n, best).y + best_h.y, one);
    var s = prob_zero();
    for (var k = 0u; k < k_n; k++) {
        let h = infer_h_of(n, k, &xs, one);
        s = lse_add(s, lse_term(lse_const(c, k_n, k), h.x, h.y, best_l, one), one);
    }
    write_outputs(n, best, lse_total(best_l, s, one), true);
}

@compute @workgroup_size(WG)
fn infer_h(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let n = group_index(wid, nwg) * WG + lid;
    if n >= chunk.n_samples {
        return;
    }
    let k_n = job.n_components;
    let row = n * k_n;
    let c = job.consts_at;
    let one = job.one;
    let proba = (infer_params.outputs & INFER_PROBA) != 0u;
    var top = LOG_FLOOR;
    var best = 0u;
    for (var k = 0u; k < k_n; k++) {
        let l = model[c + k] + resp[row + k];
        if l > top {
            top = l;
            best = k;
        }
    }
    if top == LOG_FLOOR {
        // No component reaches this sample in f32: no responsibility (as `normalise`).
        if proba {
            for (var k = 0u; k < k_n; k++) {
                proba_out[infer_params.proba_at + row + k] = 0.0;
            }
        }
        write_outputs(n, best, vec2<f32>(0.0, 0.0), false);
        return;
    }
    let best_l = lse_best(model[c + best], resp[row + best], lse_const(c, k_n, best).y + h_lo_at(row + best), one);
    var s = prob_zero();
    for (var k = 0u; k < k_n; k++) {
        hot_loop(); // bench::ops counts this loop
        let e = lse_term(lse_const(c, k_n, k), resp[row + k], h_lo_at(row + k), best_l, one);
        if proba {
            store_prob(row + k, prob_parts(e)); // e_k replaces h in the scratch
        }
        s = lse_add(s, e, one);
    }
    if proba {
        for (var k = 0u; k < k_n; k++) {
            let q = prob_parts(r_of(prob_of_parts(vec2<f32>(resp[row + k], r_lo_at(row + k))), 1.0, s));
            proba_out[infer_params.proba_at + row + k] = q.x + q.y;
        }
    }
    write_outputs(n, best, lse_total(best_l, s, one), true);
}
