// The fused EM pass for small models: the E-step, the normalisation and the statistics of one block
// of samples in one workgroup, so that the N×K responsibilities never leave it. The GPU twin of the
// CPU's block loop (`run_tasks` in src/cpu/mod.rs: estep, then reduce, per block).
//
// One workgroup owns block b (chunk.block_len samples, FUSED_BLOCK in a fused fit) and every component. Per tile of WG samples:
// 1. each invocation takes one sample: h_k for every k (`maha_of`, the same arithmetic as
//    `logprob`, so bit for bit the same h), then the log-sum-exp and the responsibilities (the same
//    arithmetic as `normalise`), into workgroup memory; its w·log p joins its own two-float sum;
// 2. the tile's rows are staged, and each invocation adds the tile's samples of its lane into its
//    unit of the statistics: a 4 × 4 tile of the augmented product (full, tied) or 4 features
//    (diag, spherical) of one component, in registers, as in `stats_tri` and `stats`.
// Then the lanes' sums and the score go to the block's partial row, for the usual combine tree.
//
// The host takes this path only where it fits (src/gpu/plan.rs `fusion_fits`): K <= FUSED_K,
// d <= FUSED_D, every component's units at once in one workgroup (K·units <= WG), and each
// invocation's loops far under lavapipe's 65,535-iteration cap.
// Prepended: the constants, shaders/common.wgsl, a precision prelude, shaders/estep.wgsl and
// shaders/reduce.wgsl.

var<workgroup> fx: array<vec4<f32>, WG * FUSED_Q>;  // the tile's samples, a row of (d + 4)/4 quads
                                                    // each: d features, the augmented 1, zeros
var<workgroup> fh: array<vec2<f32>, WG * FUSED_K>;  // per sample and component: h, then r (`prob_parts`)

/// Quads in an augmented row of d features: the features, the 1 and zeros to a multiple of 4 (a
/// staged row of `fx`, and the side of the 4 × 4 tiles' grid).
fn row_quads(d: u32) -> u32 {
    return (d + 4u) / 4u;
}

/// Coordinate i of the chunk's augmented sample n: its feature i, 1 at i = d, 0 past it (the load
/// clamped inside the row).
fn augmented_x(n: u32, i: u32, d: u32) -> f32 {
    let v = x[x_index(n, min(i, d - 1u))];
    return select(select(0.0, 1.0, i == d), v, i < d);
}

/// Sample s of the tile (staged in `fx`), sample n of the chunk: h_k for every k, then the responsibilities
/// r_k = w·q_k in `fh` and w·log p as a two-float (the arithmetic of `normalise`, on `fh` in place
/// of `resp` and `h_lo`).
fn fused_estep(s: u32, n: u32) -> vec2<f32> {
    let k_n = job.n_components;
    let one = job.one;
    let row = s * k_n;
    let c = job.consts_at;
    // The sample's row, read from the staged tile once for all K components.
    let d = job.n_features;
    let quads = row_quads(d);
    var xs: array<f32, TRI_SMALL_D>;
    for (var i = 0u; i < d; i++) {
        xs[i] = fx[s * quads + i / 4u][i % 4u];
    }
    // h_k, and the largest L = c + h as `normalise` finds it, in the same loop.
    var top = LOG_FLOOR;
    var best = 0u;
    for (var k = 0u; k < k_n; k++) {
        let h = real_parts(maha_of(&xs, k), one);
        var hk = vec2<f32>(-0.5 * h.x, -0.5 * h.y);
        if c_lo_in_h() {
            hk.x += model[c + k_n + k]; // as `write_h_parts` does
        }
        fh[row + k] = hk;
        let l = model[c + k] + hk.x;
        if l > top {
            top = l;
            best = k;
        }
    }
    let w = weight_of(n);
    if top == LOG_FLOOR || w == 0.0 {
        for (var k = 0u; k < k_n; k++) {
            fh[row + k] = vec2<f32>(0.0, 0.0);
        }
        return vec2<f32>(select(0.0, job.neg_inf, w > 0.0), 0.0);
    }
    let best_l = lse_best(model[c + best], fh[row + best].x, lse_const(c, k_n, best).y + fh[row + best].y, one);
    var total = prob_zero();
    for (var k = 0u; k < k_n; k++) {
        let hk = fh[row + k];
        let e = lse_term(lse_const(c, k_n, k), hk.x, hk.y, best_l, one);
        fh[row + k] = prob_parts(e);
        total = lse_add(total, e, one);
    }
    for (var k = 0u; k < k_n; k++) {
        fh[row + k] = prob_parts(r_of(prob_of_parts(fh[row + k]), w, total));
    }
    let log_p = lse_total(best_l, total, one);
    return df_mul1(log_p, w, one);
}

@compute @workgroup_size(WG)
fn fused(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let b = group_index(wid, nwg);
    if b >= chunk.n_blocks {
        return; // a whole surplus workgroup of the folded grid
    }
    let k_n = job.n_components;
    let d = job.n_features;
    let one = job.one;
    let packed = job.stats_kind == STATS_PACKED;
    // This invocation's unit of the statistics and its sample lane.
    // The units per component (4 × 4 tiles, or 4 features) are the host's `job.out_slots`:
    // `stats_units` capped at WG, and the fused pass only runs where K·units <= WG.
    let units = job.out_slots;
    let slots = k_n * units;
    let lanes = WG / slots;
    let slot = lid % slots;
    let lane = lid / slots;
    let live = lane < lanes;
    let k = slot / units;
    let u = slot % units;
    // The unit's 8 augmented coordinates (a tile's 4 rows, then its 4 columns; or the 4 features
    // twice), each 4 a quad of the staged rows (tiles start at multiples of 4): the staged value
    // less the centre, so x − c for a feature, 1 for the augmented coordinate d, and 0 past it.
    var centre: array<f32, 8>;
    var first_row = 0u;
    var first_col = 0u;
    if packed {
        let tile = tile_of(u, row_quads(d));
        first_row = 4u * tile.x;
        first_col = 4u * tile.y;
    } else {
        first_row = 4u * u;
        first_col = 4u * u;
    }
    for (var q = 0u; q < 8u; q++) {
        let i = select(first_col + q - 4u, first_row + q, q < 4u);
        if i < d {
            centre[q] = model[job.centres_at + k * d + i];
        }
    }
    let quad_a = first_row / 4u;
    let quad_b = first_col / 4u;
    let centre_a = Stage4(vec4<f32>(centre[0], centre[1], centre[2], centre[3]));
    let centre_b = Stage4(vec4<f32>(centre[4], centre[5], centre[6], centre[7]));
    let quads = row_quads(d);
    var acc: array<vec2<f32>, 16>; // packed: acc[4i + j] is entry (row i, column j) of the tile;
                                   // diag: S1 of the 4 features, then S2, then S0 at 8
    var run: array<Run, 16>;       // the same sums' current runs
    var in_run = 0u;               // samples of this lane in the runs
    let n_sums = select(9u, 16u, packed);
    var score = vec2<f32>(0.0, 0.0);

    let start = b * chunk.block_len;
    let end = min(start + chunk.block_len, chunk.n_samples);
    for (var t0 = start; t0 < end; t0 += WG) {
        let count = min(WG, end - t0);
        workgroupBarrier(); // the previous tile is used up
        // A quad per invocation per step (written out: lavapipe counts every loop iteration).
        for (var e = lid; e < count * quads; e += WG) {
            let row = t0 + e / quads;
            let i = 4u * (e % quads);
            fx[e] = vec4<f32>(augmented_x(row, i, d), augmented_x(row, i + 1u, d), augmented_x(row, i + 2u, d), augmented_x(row, i + 3u, d));
        }
        workgroupBarrier(); // the E-step reads its sample's row from fx
        // Every invocation runs the E-step, in uniform control flow (so the model's entries are
        // loaded once for all, a broadcast); one past the tile's end works on whatever its row of
        // fx holds (a previous tile's sample, or zeros), with the last sample's weight, and its
        // results are never read: its fh row is past `count`, and its score is dropped.
        let e_score = fused_estep(lid, t0 + min(lid, count - 1u));
        if lid < count {
            score = df_add(score, e_score, one);
        }
        workgroupBarrier();
        if live {
            for (var s = lane; s < count; s += lanes) {
                hot_loop(); // bench::ops counts this loop
                let r = stage_root(stage_of_parts(fh[s * k_n + k]));
                let row = s * quads;
                let v = r * (Stage4(fx[row + quad_a]) - centre_a);
                if packed {
                    let c = r * (Stage4(fx[row + quad_b]) - centre_b);
                    add_outer(&run, v, c, one);
                } else {
                    // The products as in `stats`.
                    run[0] = run_mac(run[0], r, v.x, one);
                    run[1] = run_mac(run[1], r, v.y, one);
                    run[2] = run_mac(run[2], r, v.z, one);
                    run[3] = run_mac(run[3], r, v.w, one);
                    run[4] = run_mac(run[4], v.x, v.x, one);
                    run[5] = run_mac(run[5], v.y, v.y, one);
                    run[6] = run_mac(run[6], v.z, v.z, one);
                    run[7] = run_mac(run[7], v.w, v.w, one);
                    run[8] = run_mac(run[8], r, r, one);
                }
                in_run++;
            }
            if in_run >= RUN_LEN {
                merge_runs(&acc, &run, n_sums, one);
                in_run = 0u;
            }
        }
    }
    merge_runs(&acc, &run, n_sums, one);

    // The lanes' sums through lanes_out, T values at a time, in lane order, then into the block's
    // partial row: packed, the tile's 4 rows (entries below the diagonal or past d are not
    // outputs); diag, S1, S2 and S0 (S0 kept by each component's first unit).
    let n_out = job.n_outputs;
    let row_len = k_n * n_out + 1u;
    let base = b * row_len + k * n_out;
    let rounds = select(3u, 4u, packed);
    for (var q = 0u; q < rounds; q++) {
        workgroupBarrier();
        for (var t = 0u; t < T; t++) {
            var v = acc[4u * q + t];
            if !packed && q == 2u {
                v = acc[8];
            }
            lanes_out[lid * T + t] = v;
        }
        workgroupBarrier();
        if lane == 0u {
            for (var t = 0u; t < T; t++) {
                var total = vec2<f32>(0.0, 0.0);
                for (var l = 0u; l < lanes; l++) {
                    total = df_add(total, lanes_out[(l * slots + slot) * T + t], one);
                }
                if packed {
                    let ra = first_row + q;
                    let cb = first_col + t;
                    if ra <= cb && cb <= d {
                        partials[base + output_of(ra, cb, d)] = total;
                    }
                } else {
                    let f = first_row + t;
                    if q == 0u && f < d {
                        partials[base + 1u + f] = total;
                    } else if q == 1u && f < d {
                        partials[base + 1u + d + f] = total;
                    } else if q == 2u && u == 0u && t == 0u {
                        partials[base] = total;
                    }
                }
            }
        }
    }
    // The block's score: the invocations' sums by a fixed tree.
    workgroupBarrier();
    let total = tree_sum(lid, score, one);
    if lid == 0u {
        partials[b * row_len + row_len - 1u] = total;
    }
}
