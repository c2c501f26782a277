// The E-step on one chunk of samples: the GPU twin of src/cpu/estep.rs.
//
// Entry points, one pass each over the chunk:
// - logprob:   h[n,k] = −½‖U_kᵀ(x̃_n − μ̃_k)‖² in two-float arithmetic, one sample per invocation,
//              for triangular factors up to TRI_SMALL_D features: the high part into `resp`
//              (samples × components), the low part into `h_lo`. The constant
//              c_k = log π_k + log det U_k is added by `normalise`, so that h keeps its own digits.
// - logprob_diag: the same for diagonal factors (and spherical ones), each invocation one sample ×
//              DIAG_KC components, the samples staged through workgroup memory.
// - logprob_tri: the same for triangular factors (full and tied) past TRI_SMALL_D, as a tiled product Y = Z·U_k over
//              a tile of TRI_TS samples, staged through workgroup memory in TRI_RB × TRI_CB blocks,
//              each invocation holding an 8 × 4 register tile of (samples × columns).
// - normalise: log-sum-exp over k of L = c + h from its largest term; resp[n,k] = w_n·q[n,k] in place
//              with q the posterior; log p_n per sample; and per workgroup the two-float sum of
//              w_n·log p_n, with c_k given as two floats so that its rounding never reaches the sum.
// - assign:    all of w_n to the component with the largest L = c + h: k-means (c = 0, and the
//              features' scales as diagonal factors, so h = −½‖x − μ‖² in the caller's units), or
//              a model's labels.
// - random:    scikit-learn's 'random' init: hashed uniform responsibilities, normalised per sample.
//
// Prepended: the constants (src/gpu/layout.rs), shaders/common.wgsl, a precision prelude
// (shaders/precision_*.wgsl: the types Real, Factor, Prob and the arithmetic on them, per
// GpuPrecision) and the tree sum (shaders/tree.wgsl, or shaders/tree_subgroup.wgsl where the device
// has subgroups). Sums over samples are two-float, and the host combines them in f64.

// `logprob_tri`'s staged block, four values to an entry so that its hot loop loads them at once:
// zt[r·TRI_TS/4 + q] is z = x − μ of row r for the tile's samples 4q..4q+3, ut[r·TRI_CG + b] the
// factor U_k's row r at columns 4b..4b+3 of the column block (zero below the diagonal). At the end
// zt holds the per-sample sums of y² of each column group instead.
var<workgroup> zt: array<Real4, TRI_RB * (TRI_TS / 4u)>;
var<workgroup> ut: array<Real4, TRI_RB * TRI_CG>;  // a `Factor` is a `Real` in every prelude
var<workgroup> xd: array<f32, WG * (DIAG_FB + 1u)>;  // `logprob_diag`: DIAG_FB features of the tile's samples

/// The linear index of this workgroup in the folded 2-D grid.
fn group_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.y * nwg.x + wid.x;
}

/// Column j of the packed upper factor starts here (column-major: U[0][j], …, U[j][j]).
fn column_start(j: u32) -> u32 {
    return j * (j + 1u) / 2u;
}

/// h = −½·maha written for sample n of component k: the high part drives the responsibilities,
/// the low part the log-likelihood.
fn write_h(n: u32, k: u32, maha: Real, one: f32) {
    write_h_parts(n, k, real_parts(maha, one));
}

/// `write_h` for maha as a normalised (hi, lo).
fn write_h_parts(n: u32, k: u32, maha: vec2<f32>) {
    var h = -0.5 * maha.x;
    if c_lo_in_h() {
        h += model[job.consts_at + job.n_components + k];
    }
    resp[n * job.n_components + k] = h;
    // A fast pass leaves h_lo alone, except beside exact routes, whose normalisation reads it.
    if H_LO || job.n_fast < job.n_components {
        h_lo[n * job.n_components + k] = -0.5 * maha.y;
    }
}

/// Whether this pass's h holds its component's c_lo (c = log π + log det U as hi + lo): in a fast
/// build (`C_LO_IN_H`) where every component is fast, so that the fast log-sum-exp loads one
/// constant, not two (`lse_const`). Beside exact routes, the exact normalisation adds c_lo itself.
fn c_lo_in_h() -> bool {
    return C_LO_IN_H && job.n_fast == job.n_components;
}

/// The low part of h at `i` of `resp` (0 where the prelude keeps none).
fn h_lo_at(i: u32) -> f32 {
    if H_LO {
        return h_lo[i];
    }
    return 0.0;
}

/// Component k's log-density constant as `lse_term` takes it (`c` is `job.consts_at`): its
/// (hi, lo) parts, the low part loaded only where h does not hold it already (`C_LO_IN_H`).
fn lse_const(c: u32, k_n: u32, k: u32) -> vec2<f32> {
    var lo = 0.0;
    if !C_LO_IN_H {
        lo = model[c + k_n + k];
    }
    return vec2<f32>(model[c + k], lo);
}

/// The low part of the responsibility (or e_k) at `i` of `resp` (0 where the prelude keeps none).
fn r_lo_at(i: u32) -> f32 {
    if R_LO {
        return h_lo[i];
    }
    return 0.0;
}

/// A responsibility (or e_k) as (hi, lo) into `resp` and, where the prelude keeps low parts, `h_lo`.
fn store_prob(i: u32, v: vec2<f32>) {
    resp[i] = v.x;
    if R_LO {
        h_lo[i] = v.y;
    }
}

/// ‖U_kᵀ(x̃ − μ̃_k)‖² for one sample's row `xs` (its d <= TRI_SMALL_D features, loaded once for
/// all its components), one sample in one invocation, as a `Real`: for diagonal factors (spherical
/// ones too, scaled per feature) and triangular ones. Used by `logprob` (small triangular factors)
/// and the fused pass (shaders/fused.wgsl, every kind); `logprob_diag` takes the same steps
/// (`diag_term`), so every path evaluates h with the same operations.
fn maha_of(xs: ptr<function, array<f32, TRI_SMALL_D>>, k: u32) -> Real {
    let d = job.n_features;
    let one = job.one;
    let mean_at = job.means_at + k * d;
    let mean_lo_at = job.means_lo_at + k * d;
    var maha = real_zero();
    if job.kind == KIND_DIAG {
        for (var i = 0u; i < d; i++) {
            maha = diag_term(maha, (*xs)[i], k * d + i, one);
        }
    } else {
        var factor_at = job.factors_at;
        var factor_lo_at = job.factors_lo_at;
        if job.kind == KIND_FULL {
            factor_at += k * column_start(d);
            factor_lo_at += k * column_start(d);
        }
        var z: array<Real, TRI_SMALL_D>;
        for (var i = 0u; i < d; i++) {
            z[i] = centred((*xs)[i], model[mean_at + i], model[mean_lo_at + i], one);
        }
        // y_j = Σ_{i<=j} z_i·U[i][j], the packed factor read column by column.
        for (var j = 0u; j < d; j++) {
            let at = column_start(j);
            var y = real_zero();
            for (var i = 0u; i <= j; i++) {
                hot_loop(); // bench::ops counts this loop
                y = mac(y, z[i], load_factor(factor_at + at + i, factor_lo_at + at + i), one);
            }
            maha = add_sq(maha, y, one);
        }
    }
    return maha;
}

@compute @workgroup_size(WG)
fn logprob(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // Small triangular factors: one component k and a tile of WG samples, one sample per
    // invocation (`maha_of`); every invocation reads the same factor entries (a broadcast). The K
    // workgroups of a tile are adjacent in the grid, so they share its rows in cache.
    let group = group_index(wid, nwg);
    let n = (group / route_len()) * WG + lid;
    if n >= chunk.n_samples {
        return;
    }
    let k = routed(group % route_len());
    let d = job.n_features;
    var xs: array<f32, TRI_SMALL_D>;
    for (var i = 0u; i < d; i++) {
        xs[i] = x[x_index(n, i)];
    }
    write_h(n, k, maha_of(&xs, k), job.one);
}

@compute @workgroup_size(WG)
fn logprob_diag(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // Diagonal factors (spherical ones too, scaled per feature): one tile of WG samples and DIAG_KC
    // components per workgroup, one sample × DIAG_KC components per invocation, so that each
    // feature value, staged through workgroup memory DIAG_FB features at a time (rows padded by one
    // against bank conflicts), feeds DIAG_KC components; the model's values are the same for every
    // invocation (a broadcast). Per feature and component the arithmetic is `maha_of`'s, in the
    // same order. Per invocation the loops run 2d + DIAG_KC times: 8,196 at d = 4,096.
    let group = group_index(wid, nwg);
    let k_len = route_len();
    let k_groups = (k_len + DIAG_KC - 1u) / DIAG_KC;
    let k0 = (group % k_groups) * DIAG_KC; // in this build's routes
    let first = (group / k_groups) * WG;
    if first >= chunk.n_samples {
        return; // a whole surplus workgroup of the folded grid
    }
    let d = job.n_features;
    let one = job.one;
    let n = first + lid;
    let count = min(WG, chunk.n_samples - first);
    // Routes past the last repeat its arithmetic, and are not written.
    var at: array<u32, DIAG_KC>;
    for (var c = 0u; c < DIAG_KC; c++) {
        at[c] = routed(min(k0 + c, k_len - 1u)) * d;
    }
    // Each block of DIAG_FB features is summed as a `Real`, then merged into a two-float total, so
    // that a plain-f32 sum never runs over more than DIAG_FB terms (at d = 4,096 one long f32 sum
    // moved the mean log p by 4e-4).
    var total = array<vec2<f32>, DIAG_KC>();
    for (var i0 = 0u; i0 < d; i0 += DIAG_FB) {
        var maha = array<Real, DIAG_KC>();
        let width = min(DIAG_FB, d - i0);
        workgroupBarrier(); // the previous features are used up
        // Invocation lid stages feature lid % DIAG_FB of every (WG / DIAG_FB)-th sample: no
        // division per value.
        let col = lid % DIAG_FB;
        if col < width {
            for (var s = lid / DIAG_FB; s < count; s += WG / DIAG_FB) {
                xd[s * (DIAG_FB + 1u) + col] = x[x_index(first + s, i0 + col)];
            }
        }
        workgroupBarrier();
        if lid < count {
            for (var i = 0u; i < width; i++) {
                hot_loop(); // bench::ops counts this loop
                let xv = xd[lid * (DIAG_FB + 1u) + i];
                let f = i0 + i;
                // Written out over the DIAG_KC components (lavapipe counts loop iterations).
                maha[0] = diag_term(maha[0], xv, at[0] + f, one);
                maha[1] = diag_term(maha[1], xv, at[1] + f, one);
                maha[2] = diag_term(maha[2], xv, at[2] + f, one);
                maha[3] = diag_term(maha[3], xv, at[3] + f, one);
            }
        }
        total[0] = sum_merge(total[0], maha[0], one);
        total[1] = sum_merge(total[1], maha[1], one);
        total[2] = sum_merge(total[2], maha[2], one);
        total[3] = sum_merge(total[3], maha[3], one);
    }
    if lid < count {
        for (var c = 0u; c < DIAG_KC; c++) {
            if k0 + c < k_len {
                write_h_parts(n, routed(k0 + c), two_sum(total[c].x, total[c].y, one));
            }
        }
    }
}

/// maha + (f·(x − μ))² for one feature of one component, its entries at `at` past the model's
/// means and factors: `maha_of`'s diagonal step.
fn diag_term(maha: Real, xv: f32, at: u32, one: f32) -> Real {
    let z = centred(xv, model[job.means_at + at], model[job.means_lo_at + at], one);
    let t = real_mul(z, load_factor(job.factors_at + at, job.factors_lo_at + at), one);
    return add_sq(maha, t, one);
}

/// `logprob_tri`'s z of sample n at a feature whose mean is (mu_hi, mu_lo) (zero past the chunk).
fn tri_z(n: u32, at: u32, mu_hi: f32, mu_lo: f32, one: f32) -> Real {
    if n < chunk.n_samples {
        return centred(x[x_index(n, at)], mu_hi, mu_lo, one);
    }
    return real_zero();
}

/// The factor entry at `at` of the model (its low part at `lo_at`), the low part loaded only where
/// the arithmetic takes it.
fn load_factor(at: u32, lo_at: u32) -> Factor {
    var lo = 0.0;
    if FACTOR_LO {
        lo = model[lo_at];
    }
    return factor_of(model[at], lo);
}

/// `logprob_tri`'s U[i][j] of the packed upper factor (zero below the diagonal or past d).
fn tri_u(i: u32, j: u32, factor_at: u32, factor_lo_at: u32) -> Factor {
    if i <= j && j < job.n_features {
        let p = column_start(j) + i;
        return load_factor(factor_at + p, factor_lo_at + p);
    }
    return factor_of(0.0, 0.0);
}

/// y[at + c] += z·U[c] for the 4 columns c of a staged row of U: one sample's row of the tile.
fn mac4(y: ptr<function, array<Real, 32>>, at: u32, z: Real, u: Real4, one: f32) {
    (*y)[at] = mac((*y)[at], z, real4_at(u, 0u), one);
    (*y)[at + 1u] = mac((*y)[at + 1u], z, real4_at(u, 1u), one);
    (*y)[at + 2u] = mac((*y)[at + 2u], z, real4_at(u, 2u), one);
    (*y)[at + 3u] = mac((*y)[at + 3u], z, real4_at(u, 3u), one);
}

@compute @workgroup_size(WG)
fn logprob_tri(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // Triangular factors: one component k and a tile of TRI_TS samples. y_j = Σ_{i<=j} z_i·U[i][j]
    // is a product Y = Z·U over the tile, taken TRI_CB columns at a time; for each column block the
    // rows i < j1 come through workgroup memory TRI_RB at a time (z computed as it is staged, U zero
    // below the diagonal). Invocation (a, b) holds y for samples 8a..8a+7 and columns 4b..4b+3 of
    // the block: per row, two loads of 4 z and one of 4 U (zt and ut hold them as Real4)
    // feed 32 FMAs; a software adapter such as llvmpipe pays per load instruction, a GPU's LDS
    // per access. In the exact arithmetics every product and sum is error-free but the last
    // rounding, as in `logprob`. Per invocation the loops run about
    // (d/TRI_CB)·(d/TRI_RB)/2·(TRI_RB + TRI_RB·(TRI_TS + TRI_CB)/(4·WG)) times: 23,200 at
    // d = 1,024, under llvmpipe's 65,535 cap.
    let n_tiles = (chunk.n_samples + TRI_TS - 1u) / TRI_TS;
    let group = group_index(wid, nwg);
    let tile = group / route_len();
    if tile >= n_tiles {
        return; // a whole surplus workgroup of the folded grid
    }
    let k = routed(group % route_len());
    let d = job.n_features;
    let one = job.one;
    let a = lid % (TRI_TS / 8u);
    let b = lid / (TRI_TS / 8u);
    let first = tile * TRI_TS;
    var factor_at = job.factors_at;
    var factor_lo_at = job.factors_lo_at;
    if job.kind == KIND_FULL {
        factor_at += k * column_start(d);
        factor_lo_at += k * column_start(d);
    }
    let mean_at = job.means_at + k * d;
    let mean_lo_at = job.means_lo_at + k * d;
    // Σ_j y_j² over this invocation's columns, for its 8 samples.
    var sums = array<Real, 8>();
    for (var j0 = 0u; j0 < d; j0 += TRI_CB) {
        var y = array<Real, 32>(); // y[4·s + c]: sample 8a + s, column j0 + 4b + c
        let rows = min(j0 + TRI_CB, d); // U[i][j] = 0 for i > j
        for (var i0 = 0u; i0 < rows; i0 += TRI_RB) {
            workgroupBarrier(); // the previous block is used up
            for (var e = lid; e < TRI_RB * (TRI_TS / 4u); e += WG) {
                // Neighbouring invocations take neighbouring features of the same samples, and
                // the row's mean is loaded once for its 4 samples.
                let i = i0 + e % TRI_RB;
                let n = first + 4u * (e / TRI_RB);
                var z = real4_of(real_zero(), real_zero(), real_zero(), real_zero());
                if i < d {
                    let mu_hi = model[mean_at + i];
                    let mu_lo = model[mean_lo_at + i];
                    z = real4_of(
                        tri_z(n, i, mu_hi, mu_lo, one),
                        tri_z(n + 1u, i, mu_hi, mu_lo, one),
                        tri_z(n + 2u, i, mu_hi, mu_lo, one),
                        tri_z(n + 3u, i, mu_hi, mu_lo, one),
                    );
                }
                zt[(e % TRI_RB) * (TRI_TS / 4u) + e / TRI_RB] = z;
            }
            for (var e = lid; e < TRI_RB * TRI_CG; e += WG) {
                let i = i0 + e / TRI_CG;
                let j = j0 + 4u * (e % TRI_CG);
                ut[e] = real4_of(
                    tri_u(i, j, factor_at, factor_lo_at),
                    tri_u(i, j + 1u, factor_at, factor_lo_at),
                    tri_u(i, j + 2u, factor_at, factor_lo_at),
                    tri_u(i, j + 3u, factor_at, factor_lo_at),
                );
            }
            workgroupBarrier();
            for (var r = 0u; r < TRI_RB; r++) {
                hot_loop(); // bench::ops counts this loop
                let za = zt[r * (TRI_TS / 4u) + 2u * a];
                let zb = zt[r * (TRI_TS / 4u) + 2u * a + 1u];
                let u = ut[r * TRI_CG + b];
                mac4(&y, 0u, real4_at(za, 0u), u, one);
                mac4(&y, 4u, real4_at(za, 1u), u, one);
                mac4(&y, 8u, real4_at(za, 2u), u, one);
                mac4(&y, 12u, real4_at(za, 3u), u, one);
                mac4(&y, 16u, real4_at(zb, 0u), u, one);
                mac4(&y, 20u, real4_at(zb, 1u), u, one);
                mac4(&y, 24u, real4_at(zb, 2u), u, one);
                mac4(&y, 28u, real4_at(zb, 3u), u, one);
            }
        }
        // Columns past d hold y = 0 (their U is zero), so every column can be squared.
        for (var s = 0u; s < 8u; s++) {
            for (var c = 0u; c < 4u; c++) {
                sums[s] = add_sq(sums[s], y[4u * s + c], one);
            }
        }
    }
    // Each sample's Σ y² is split over the TRI_CG column groups b: staged in zt (4 samples to an
    // entry, at sample group q and column group b: q·TRI_CG + b) and summed in a fixed order.
    workgroupBarrier(); // zt's last block is used up
    zt[(2u * a) * TRI_CG + b] = real4_of(sums[0], sums[1], sums[2], sums[3]);
    zt[(2u * a + 1u) * TRI_CG + b] = real4_of(sums[4], sums[5], sums[6], sums[7]);
    workgroupBarrier();
    if lid < TRI_TS {
        let n = first + lid;
        if n < chunk.n_samples {
            var maha = real_zero();
            for (var g = 0u; g < TRI_CG; g++) {
                maha = real_add(maha, real4_at(zt[(lid / 4u) * TRI_CG + g], lid % 4u), one);
            }
            write_h(n, k, maha, one);
        }
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
    let total = tree_sum(lid, value, job.one);
    if lid == 0u {
        logp_part[group] = total;
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
                if R_LO {
                    h_lo[row + k] = 0.0;
                }
            }
            per_sample[n] = job.neg_inf;
            contribution = vec2<f32>(select(0.0, job.neg_inf, w > 0.0), 0.0);
        } else {
            // Δ_k = L_k − L_best from differences of c and of h (each prelude's `lse_term`: of the
            // high and the low parts in the exact ones; in fast, h holds c's low part), so that no
            // term carries the rounding of a large L (Δ_best is exactly 0), and
            // log p = L_best + log Σ exp(Δ) with L_best two-float.
            let one = job.one;
            let best_l = lse_best(model[c + best], resp[row + best], lse_const(c, k_n, best).y + h_lo_at(row + best), one);
            var s = prob_zero();
            for (var k = 0u; k < k_n; k++) {
                hot_loop(); // bench::ops counts this loop
                let e = lse_term(lse_const(c, k_n, k), resp[row + k], h_lo_at(row + k), best_l, one);
                // e_k replaces h in place (its low part too, where the prelude keeps one);
                // q_k = e_k / Σ e below.
                store_prob(row + k, prob_parts(e));
                s = lse_add(s, e, one);
            }
            for (var k = 0u; k < k_n; k++) {
                store_prob(row + k, prob_parts(r_of(prob_of_parts(vec2<f32>(resp[row + k], r_lo_at(row + k))), w, s)));
            }
            let log_p = lse_total(best_l, s, one);
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
            store_prob(row + k, vec2<f32>(select(0.0, w, k == best), 0.0));
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
            store_prob(row + k, vec2<f32>(w * (resp[row + k] / total), 0.0));
        }
    }
    workgroup_sum(lid, group, vec2<f32>(0.0, 0.0));
}
