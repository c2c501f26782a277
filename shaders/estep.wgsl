// The E-step on one chunk of samples: the GPU twin of src/cpu/estep.rs.
//
// Entry points, one pass each over the chunk:
// - logprob:   h[n,k] = −½‖U_kᵀ(x̃_n − μ̃_k)‖² in two-float arithmetic: the high part into `resp`
//              (samples × components), the low part into `h_lo`. The constant c_k = log π_k +
//              log det U_k is added by `normalise`, so that h keeps its own digits.
// - normalise: log-sum-exp over k of L = c + h from its largest term; resp[n,k] = w_n·q[n,k] in place
//              with q the posterior; log p_n per sample; and per workgroup the two-float sum of
//              w_n·log p_n, with c_k given as two floats so that its rounding never reaches the sum.
// - assign:    all of w_n to the component with the largest L = c + h: k-means (c = 0, and the
//              features' scales as diagonal factors, so h = −½‖x − μ‖² in the caller's units), or
//              a model's labels.
// - random:    scikit-learn's 'random' init: hashed uniform responsibilities, normalised per sample.
//
// Prepended: the constants (src/gpu/layout.rs) and shaders/common.wgsl. All arithmetic is f32;
// sums are two-float, and the host combines them in f64.

var<workgroup> panel: array<f32, PANEL>;    // a run of columns of the packed factor U_k: high parts
var<workgroup> panel_lo: array<f32, PANEL>; // and low parts
var<workgroup> mu: array<f32, MAX_D>;       // the mean μ̃_k (full and tied): high part
var<workgroup> mu_lo: array<f32, MAX_D>;    // and low part
var<workgroup> part: array<vec2<f32>, WG>;  // the workgroup's two-float tree sum

/// The linear index of this workgroup in the folded 2-D grid.
fn group_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.y * nwg.x + wid.x;
}

/// Column j of the packed upper factor starts here (column-major: U[0][j], …, U[j][j]).
fn column_start(j: u32) -> u32 {
    return j * (j + 1u) / 2u;
}

/// x − (μ_hi + μ_lo) as a normalised two-float. With a mean far from the frame's centre relative
/// to its spread, μ_lo is not small next to x − μ_hi, and a product or square of an unnormalised
/// two-float drops lo·lo terms (it once cost 2e-4 nats per sample at spreads 1e-6 of the range).
fn centred(x_i: f32, mu_hi: f32, mu_lo: f32, one: f32) -> vec2<f32> {
    let t = two_sum(x_i, -mu_hi, one);
    return two_sum(t.x, t.y - mu_lo, one);
}

@compute @workgroup_size(WG)
fn logprob(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // One workgroup: one component k and a tile of WG samples, one sample per invocation. The K
    // workgroups of a tile are adjacent in the grid, so they run together and share its rows in cache.
    let n_tiles = (chunk.n_samples + WG - 1u) / WG;
    let group = group_index(wid, nwg);
    let k = group % job.n_components;
    let tile = group / job.n_components;
    if tile >= n_tiles {
        return; // a whole surplus workgroup of the folded grid
    }
    let n = tile * WG + lid;
    let in_chunk = n < chunk.n_samples;
    let d = job.n_features;

    // The Mahalanobis form as a two-float, every product and sum error-free but the last rounding:
    // the log-likelihood then carries only the f32 rounding of the data and of the model.
    let one = job.one;
    var maha = vec2<f32>(0.0, 0.0);
    if job.kind == KIND_FULL || job.kind == KIND_TIED {
        var z: array<vec2<f32>, MAX_D>;
        // y_j = Σ_{i<=j} z_i·U[i][j]; the factor is staged through workgroup memory in runs of
        // whole columns that fit PANEL (with the mean, in the first run), so every invocation loops
        // O(d²/2) in all and the workgroup meets at two barriers per run.
        var base = job.factors_at;
        var base_lo = job.factors_lo_at;
        if job.kind == KIND_FULL {
            base += k * column_start(d);
            base_lo += k * column_start(d);
        }
        var j0 = 0u;
        while j0 < d {
            var j1 = j0 + 1u;
            while j1 < d && column_start(j1 + 1u) - column_start(j0) <= PANEL {
                j1++;
            }
            let start = column_start(j0);
            let len = column_start(j1) - start;
            if j0 > 0u {
                workgroupBarrier(); // everyone is done with the previous run
            } else {
                for (var i = lid; i < d; i += WG) {
                    mu[i] = model[job.means_at + k * d + i];
                    mu_lo[i] = model[job.means_lo_at + k * d + i];
                }
            }
            for (var e = lid; e < len; e += WG) {
                panel[e] = model[base + start + e];
                panel_lo[e] = model[base_lo + start + e];
            }
            workgroupBarrier();
            if in_chunk {
                if j0 == 0u {
                    for (var i = 0u; i < d; i++) {
                        z[i] = centred(x[n * d + i], mu[i], mu_lo[i], one);
                    }
                }
                for (var j = j0; j < j1; j++) {
                    let off = column_start(j) - start;
                    var y = vec2<f32>(0.0, 0.0);
                    for (var i = 0u; i <= j; i++) {
                        y = df_fma2(y, z[i], panel[off + i], panel_lo[off + i], one);
                    }
                    maha = df_add(maha, df_sq(y, one), one);
                }
            }
            j0 = j1;
        }
    } else if in_chunk {
        // Diagonal factors (spherical ones too, scaled per feature) need no staging: every
        // invocation reads the same values.
        let mean_at = job.means_at + k * d;
        let factor_at = job.factors_at + k * d;
        for (var i = 0u; i < d; i++) {
            let z = centred(x[n * d + i], model[mean_at + i], model[job.means_lo_at + k * d + i], one);
            let t = df_fma2(vec2<f32>(0.0, 0.0), z, model[factor_at + i], model[job.factors_lo_at + k * d + i], one);
            maha = df_add(maha, df_sq(t, one), one);
        }
    }
    if in_chunk {
        // h = −½·maha: its high part drives the responsibilities, its low part the log-likelihood.
        let h = two_sum(maha.x, maha.y, one);
        resp[n * job.n_components + k] = -0.5 * h.x;
        h_lo[n * job.n_components + k] = -0.5 * h.y;
    }
}

/// The sample's weight (1 without weights).
fn weight_of(n: u32) -> f32 {
    if job.has_weights == 1u {
        return weights[n];
    }
    return 1.0;
}

/// Writes the workgroup's two-float sum of `value` to logp_part[group], by a fixed tree.
fn workgroup_sum(lid: u32, group: u32, value: vec2<f32>) {
    part[lid] = value;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if lid < s {
            part[lid] = df_add(part[lid], part[lid + s], job.one);
        }
        workgroupBarrier();
    }
    if lid == 0u {
        logp_part[group] = part[0];
    }
}

@compute @workgroup_size(WG)
fn normalise(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let group = group_index(wid, nwg);
    if group * WG >= chunk.n_samples {
        return;
    }
    let n = group * WG + lid;
    var contribution = vec2<f32>(0.0, 0.0);
    if n < chunk.n_samples {
        let k_n = job.n_components;
        let row = n * k_n;
        let c = job.consts_at;
        // The largest L = c + h, from a finite floor.
        var top = LOG_FLOOR;
        var best = 0u;
        for (var k = 0u; k < k_n; k++) {
            let l = model[c + k] + resp[row + k];
            if l > top {
                top = l;
                best = k;
            }
        }
        let w = weight_of(n);
        if top == LOG_FLOOR || w == 0.0 {
            // No component reaches this sample in f32 (or it does not count): no responsibility,
            // and −∞ if it counts, which the host reports as a non-finite likelihood.
            for (var k = 0u; k < k_n; k++) {
                resp[row + k] = 0.0;
            }
            per_sample[n] = job.neg_inf;
            contribution = vec2<f32>(select(0.0, job.neg_inf, w > 0.0), 0.0);
        } else {
            // Δ_k = L_k − L_best as a two-float, from the differences of the high and low parts of
            // c and h, so that no term carries the rounding of a large L (Δ_best is exactly 0), and
            // log p = L_best + log Σ exp(Δ) with every piece two-float.
            let one = job.one;
            let c_best = model[c + best];
            let h_best = resp[row + best];
            let lo_best = model[c + k_n + best] + h_lo[row + best];
            var s = vec2<f32>(0.0, 0.0);
            for (var k = 0u; k < k_n; k++) {
                let dc = two_sum(model[c + k], -c_best, one);
                let dh = two_sum(resp[row + k], -h_best, one);
                let dd = two_sum(dc.x, dh.x, one);
                let d_lo = dd.y + dc.y + dh.y + ((model[c + k_n + k] + h_lo[row + k]) - lo_best);
                let e = exp_df(dd.x, d_lo, one);
                // e_k replaces h in place; q_k = e_k / Σ e below.
                resp[row + k] = e.x + e.y;
                s = df_add(s, e, one);
            }
            let inv_s = w / (s.x + s.y);
            for (var k = 0u; k < k_n; k++) {
                resp[row + k] = inv_s * resp[row + k];
            }
            let t = two_sum(c_best, h_best, one);
            let log_p = df_add(vec2<f32>(t.x, t.y + lo_best), log_df(s, one), one);
            per_sample[n] = log_p.x + log_p.y;
            contribution = df_mul1(log_p, w, job.one);
        }
    }
    workgroup_sum(lid, group, contribution);
}

@compute @workgroup_size(WG)
fn assign(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let group = group_index(wid, nwg);
    if group * WG >= chunk.n_samples {
        return;
    }
    let n = group * WG + lid;
    var contribution = vec2<f32>(0.0, 0.0);
    if n < chunk.n_samples {
        let k_n = job.n_components;
        let row = n * k_n;
        // The largest L = c + h, the first on ties (k-means has c = 0; predictions the model's c).
        let c = job.consts_at;
        var best = 0u;
        var top = model[c] + resp[row];
        for (var k = 1u; k < k_n; k++) {
            let l = model[c + k] + resp[row + k];
            if l > top {
                top = l;
                best = k;
            }
        }
        let w = weight_of(n);
        // For k-means h = −½‖x − μ‖² in the caller's units: the squared distance is −2h.
        contribution = vec2<f32>(w * (-2.0 * resp[row + best]), 0.0);
        for (var k = 0u; k < k_n; k++) {
            resp[row + k] = select(0.0, w, k == best);
        }
        per_sample[n] = f32(best);
    }
    workgroup_sum(lid, group, contribution);
}

/// lowbias32 (Wellons): the integer hash behind `hash_uniform` in src/backend.rs.
fn mix32(v: u32) -> u32 {
    var h = v;
    h ^= h >> 16u;
    h *= 0x7feb352du;
    h ^= h >> 15u;
    h *= 0x846ca68bu;
    h ^= h >> 16u;
    return h;
}

@compute @workgroup_size(WG)
fn random(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let group = group_index(wid, nwg);
    if group * WG >= chunk.n_samples {
        return;
    }
    let n = group * WG + lid;
    if n < chunk.n_samples {
        let k_n = job.n_components;
        let row = n * k_n;
        // The sample's global index as two words (chunks can start past 2³²).
        let lo = chunk.first_lo + n;
        let hi = chunk.first_hi + select(0u, 1u, lo < n);
        var total = 0.0;
        for (var k = 0u; k < k_n; k++) {
            let h = mix32(job.seed_lo ^ mix32(job.seed_hi ^ mix32(lo ^ mix32(hi ^ mix32(k)))));
            let u = f32((h >> 8u) + 1u) * (1.0 / 16777216.0);
            resp[row + k] = u;
            total += u;
        }
        let w = weight_of(n);
        for (var k = 0u; k < k_n; k++) {
            resp[row + k] = w * (resp[row + k] / total);
        }
    }
    workgroup_sum(lid, group, vec2<f32>(0.0, 0.0));
}
