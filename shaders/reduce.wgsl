// The sufficient statistics of one chunk: the GPU twin of src/cpu/reduce.rs.
//
// - stats:   per component k, around the centre a_k, with z = x̃ − a_k and r the (weighted)
//            responsibility: S0 = Σr, S1 = Σr·z, S2 = Σr·z·zᵀ's diagonal (diag and spherical), 4
//            features per invocation, each workgroup staging only its window of features.
//            It is a tiled matrix product: one workgroup owns (component, up to WG·T outputs, a block
//            of chunk.block_len samples), stages rows of z in workgroup memory, and every invocation
//            accumulates T outputs in registers, as two-float sums, over its share of the rows. Each
//            block writes one partial row of two-float values.
// - stats_tri: the same with S2 the packed upper triangle (full and tied), as a tiled SYRK of 4 × 4
//            register tiles, row-major or (large d) in square blocks of them (`plan::stats_grid`).
// - combine: sums the partial rows GROUP at a time, in a fixed order and two-float, until one row
//            is left.
//
// An output e of a component is a product of two entries of the augmented, weighted row
// √r·(z_0 … z_{d−1}, 1): e = 0 is (d, d) = Σr = S0, e = 1 … d is (e − 1, d) = S1, and the rest are
// the second moments. (r >= 0, and √r·z_a·√r·z_b = r·z_a·z_b: one multiply-add per output.)
// Two-float sums of error-free products keep the small eigenvalues of S2 − S1·S1ᵀ/S0 that a plain
// f32 sum of thousands of rounded products would lose.
// The products run in the prelude's `Run` (two-float of error-free products, plain-fma runs of
// RUN_LEN samples, or f64) and merge into two-float totals (`acc_merge`).
// Prepended: the constants (src/gpu/layout.rs), shaders/common.wgsl, a precision prelude and the
// tree sum.

var<workgroup> zs: array<Stage4, STAGE / 4u>; // up to SUB_MAX augmented rows z, d + 1 values each
/// `stats_tri`'s staged window of a square block: 4·TRI_BT features.
const WIN: u32 = 4u * TRI_BT;
var<workgroup> lanes_out: array<vec2<f32>, WG * T>; // the sample lanes' sums, added in a fixed order

/// The block's share of Σ w·log p (or the k-means inertia): the per-WG partials of its samples,
/// into the last value of its partial row.
fn write_score(b: u32, start: u32, end: u32, row_len: u32, one: f32) {
    var lp = vec2<f32>(0.0, 0.0);
    for (var q = start / WG; q < (end + WG - 1u) / WG; q++) {
        lp = df_add(lp, logp_part[q], one);
    }
    partials[b * row_len + row_len - 1u] = lp;
}

/// Where a statistics invocation works: block b, component k, unit group g, its slot among the
/// group's units and its sample lane.
struct Place {
    b: u32,
    k: u32,
    g: u32,
    slot: u32,
    lane: u32,
}

fn place(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> Place {
    let group = wid.y * nwg.x + wid.x;
    let per_block = route_len() * job.out_groups;
    return Place(
        group / per_block,
        routed((group % per_block) / job.out_groups),
        group % job.out_groups,
        lid % job.out_slots,
        lid / job.out_slots,
    );
}

/// Sum t of this slot over the sample lanes, in lane order, from what each invocation left in
/// `lanes_out` (after a barrier).
fn lanes_total(slot: u32, t: u32, one: f32) -> vec2<f32> {
    var v = vec2<f32>(0.0, 0.0);
    for (var l = 0u; l < job.lanes; l++) {
        v = df_add(v, lanes_out[(l * job.out_slots + slot) * T + t], one);
    }
    return v;
}

/// Cell u of the upper triangle of an nt × nt grid (of 4 × 4 tiles, or of square blocks of them),
/// row-major: (I, J) with I <= J.
fn tile_of(u: u32, nt: u32) -> vec2<u32> {
    var p = u;
    var i = 0u;
    var len = nt;
    while p >= len {
        p -= len;
        i++;
        len--;
    }
    return vec2<u32>(i, i + p);
}

/// The output index of entry (a, b), a <= b <= d, of the augmented product: the inverse of decode.
fn output_of(a: u32, b: u32, d: u32) -> u32 {
    if a == d {
        return 0u;
    }
    if b == d {
        return 1u + a;
    }
    // Row a of the packed upper triangle starts at a·d − a(a − 1)/2; (a, b) is b − a further.
    return 1u + d + a * d - (a * (a + 1u)) / 2u + b;
}

/// run[4i + j] += a_i·b_j for a 4 × 4 tile (`run_mac`: error-free into two-floats in the exact
/// kernels, one fma in the fast ones); written out, not looped (lavapipe counts every loop iteration
/// against its cap). Shared by `stats_tri` and the fused pass.
fn add_outer(run: ptr<function, array<Run, 16>>, a: Stage4, b: Stage4, one: f32) {
    (*run)[0] = run_mac((*run)[0], a.x, b.x, one);
    (*run)[1] = run_mac((*run)[1], a.x, b.y, one);
    (*run)[2] = run_mac((*run)[2], a.x, b.z, one);
    (*run)[3] = run_mac((*run)[3], a.x, b.w, one);
    (*run)[4] = run_mac((*run)[4], a.y, b.x, one);
    (*run)[5] = run_mac((*run)[5], a.y, b.y, one);
    (*run)[6] = run_mac((*run)[6], a.y, b.z, one);
    (*run)[7] = run_mac((*run)[7], a.y, b.w, one);
    (*run)[8] = run_mac((*run)[8], a.z, b.x, one);
    (*run)[9] = run_mac((*run)[9], a.z, b.y, one);
    (*run)[10] = run_mac((*run)[10], a.z, b.z, one);
    (*run)[11] = run_mac((*run)[11], a.z, b.w, one);
    (*run)[12] = run_mac((*run)[12], a.w, b.x, one);
    (*run)[13] = run_mac((*run)[13], a.w, b.y, one);
    (*run)[14] = run_mac((*run)[14], a.w, b.z, one);
    (*run)[15] = run_mac((*run)[15], a.w, b.w, one);
}

/// acc[i] += run[i] for the first `n` (9 or 16) of a tile's sums, and the runs restarted: written out,
/// as `add_outer`. Called when a lane's runs hold RUN_LEN samples or more, and at the end.
fn merge_runs(acc: ptr<function, array<vec2<f32>, 16>>, run: ptr<function, array<Run, 16>>, n: u32, one: f32) {
    (*acc)[0] = acc_merge((*acc)[0], (*run)[0], one);
    (*run)[0] = run_zero();
    (*acc)[1] = acc_merge((*acc)[1], (*run)[1], one);
    (*run)[1] = run_zero();
    (*acc)[2] = acc_merge((*acc)[2], (*run)[2], one);
    (*run)[2] = run_zero();
    (*acc)[3] = acc_merge((*acc)[3], (*run)[3], one);
    (*run)[3] = run_zero();
    (*acc)[4] = acc_merge((*acc)[4], (*run)[4], one);
    (*run)[4] = run_zero();
    (*acc)[5] = acc_merge((*acc)[5], (*run)[5], one);
    (*run)[5] = run_zero();
    (*acc)[6] = acc_merge((*acc)[6], (*run)[6], one);
    (*run)[6] = run_zero();
    (*acc)[7] = acc_merge((*acc)[7], (*run)[7], one);
    (*run)[7] = run_zero();
    (*acc)[8] = acc_merge((*acc)[8], (*run)[8], one);
    (*run)[8] = run_zero();
    if n > 9u {
        (*acc)[9] = acc_merge((*acc)[9], (*run)[9], one);
        (*run)[9] = run_zero();
        (*acc)[10] = acc_merge((*acc)[10], (*run)[10], one);
        (*run)[10] = run_zero();
        (*acc)[11] = acc_merge((*acc)[11], (*run)[11], one);
        (*run)[11] = run_zero();
        (*acc)[12] = acc_merge((*acc)[12], (*run)[12], one);
        (*run)[12] = run_zero();
        (*acc)[13] = acc_merge((*acc)[13], (*run)[13], one);
        (*run)[13] = run_zero();
        (*acc)[14] = acc_merge((*acc)[14], (*run)[14], one);
        (*run)[14] = run_zero();
        (*acc)[15] = acc_merge((*acc)[15], (*run)[15], one);
        (*run)[15] = run_zero();
    }
}

/// Entry f of sample n's augmented row (z_0 … z_{d−1}, 1) around the centre at `centre_at`, zero
/// past it (`stats_tri` pads rows to whole quads).
fn augmented(n: u32, f: u32, centre_at: u32) -> Stage {
    let d = job.n_features;
    if f < d {
        return stage_value(x[x_index(n, f)], model[centre_at + f]);
    } else if f == d {
        return Stage(1.0);
    }
    return Stage(0.0);
}

@compute @workgroup_size(WG)
fn stats_tri(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // Packed second moments as a tiled SYRK: the upper triangle of the augmented (d+1)² product
    // is cut into 4 × 4 tiles, and each invocation owns one (16 two-float sums in registers): per
    // staged row it loads 4 + 4 values and forms 16 error-free products, so every load feeds 4.
    // One workgroup owns (block b, component k, tile group g): `out_slots` tiles times `lanes`
    // sample lanes, as in `stats`. Rows are staged padded to a multiple of 4 with zeros. Group g is
    // either the g-th run of `out_slots` tiles, row-major, with whole rows staged (d+1 values per
    // row for up to WG tiles), or, where `job.tri_blocks` > 0, the g-th square block of TRI_BT ×
    // TRI_BT tiles, with only its two windows of 4·TRI_BT features staged (at d = 512, 64 values
    // a row instead of 516, and 32 rows per barrier instead of 4).
    let at = place(wid, nwg, lid);
    if at.b >= chunk.n_blocks {
        return; // a whole surplus workgroup of the folded grid
    }
    let k_n = job.n_components;
    let b = at.b;
    let k = at.k;
    let g = at.g;
    let slot = at.slot;
    let lane = at.lane;
    let slots = job.out_slots;
    let lanes = job.lanes;
    let d = job.n_features;
    let d1 = d + 1u;
    let nt = (d1 + 3u) / 4u;
    let units = nt * (nt + 1u) / 2u;
    // Which tile this invocation owns, the staged row's width w, where its features start (fa for
    // staged values below WIN, fb above) and where the tile's rows (ra) and columns (ca) sit in it.
    var tile: vec2<u32>;
    var live: bool;
    var w = 4u * nt;
    var fa = 0u;
    var fb = WIN;
    var ra: u32;
    var ca: u32;
    if job.tri_blocks == 0u {
        // Row-major tiles, `slots` per workgroup; the whole augmented row is staged.
        let u = g * slots + slot;
        live = u < units;
        tile = tile_of(min(u, units - 1u), nt);
        ra = 4u * tile.x;
        ca = 4u * tile.y;
    } else {
        // Square block (I, J) of TRI_BT × TRI_BT tiles: only its row window (features 4·TRI_BT·I
        // on) and column window (4·TRI_BT·J on) are staged, WIN values each.
        let blk = tile_of(g, job.tri_blocks);
        tile = vec2<u32>(blk.x * TRI_BT + slot / TRI_BT, blk.y * TRI_BT + slot % TRI_BT);
        live = tile.x <= tile.y && tile.y < nt;
        w = 2u * WIN;
        fa = WIN * blk.x;
        fb = WIN * blk.y;
        ra = 4u * (slot / TRI_BT);
        ca = WIN + 4u * (slot % TRI_BT);
    }
    let r0 = 4u * tile.x;
    let c0 = 4u * tile.y;
    let sub = min(SUB_MAX, STAGE / w);
    // Rows are staged 4 values (a quad, one Stage4) per invocation and step, so that √r is loaded
    // and taken once per quad: quad e = s·w4 + q of this invocation, values 4q..4q+3 of row s.
    // (s, q) start at (lid / w4, lid % w4) and advance by WG quads a step without a division.
    let w4 = w / 4u;
    let s_first = lid / w4;
    let q_first = lid % w4;
    let ds = WG / w4;
    let dq = WG % w4;
    let one = job.one;
    let centre_at = job.centres_at + k * d;
    var acc: array<vec2<f32>, 16>; // acc[4i + j]: entry (r0 + i, c0 + j)
    var run: array<Run, 16>;       // the same entries' current runs
    var in_run = 0u;               // samples of this lane in the runs

    let start = b * chunk.block_len;
    let end = min(start + chunk.block_len, chunk.n_samples);
    for (var s0 = start; s0 < end; s0 += sub) {
        let count = min(sub, end - s0);
        workgroupBarrier(); // the previous rows are used up
        var s = s_first;
        var q = q_first;
        for (var e = lid; e < count * w4; e += WG) {
            // The features staged at 4q..4q+3 (a quad never straddles the windows' boundary).
            let f = select(fb + 4u * q - WIN, fa + 4u * q, 4u * q < WIN);
            let n = s0 + s;
            zs[e] = stage_root(r_at(n * k_n + k)) * Stage4(
                augmented(n, f, centre_at),
                augmented(n, f + 1u, centre_at),
                augmented(n, f + 2u, centre_at),
                augmented(n, f + 3u, centre_at),
            );
            s += ds;
            q += dq;
            if q >= w4 {
                s++;
                q -= w4;
            }
        }
        workgroupBarrier();
        if lane < lanes && live {
            for (var s = lane; s < count; s += lanes) {
                hot_loop(); // bench::ops counts this loop
                let row = s * w;
                let a = zs[(row + ra) / 4u];
                let c = zs[(row + ca) / 4u];
                add_outer(&run, a, c, one);
                in_run++;
            }
            if in_run >= RUN_LEN {
                merge_runs(&acc, &run, 16u, one);
                in_run = 0u;
            }
        }
    }
    merge_runs(&acc, &run, 16u, one);

    // The lanes' sums, one tile row (T = 4 entries) at a time through lanes_out, in a fixed order;
    // entries below the diagonal or past d are not outputs.
    let row_len = k_n * job.n_outputs + 1u;
    for (var q = 0u; q < 4u; q++) {
        workgroupBarrier();
        for (var t = 0u; t < T; t++) {
            lanes_out[lid * T + t] = acc[4u * q + t];
        }
        workgroupBarrier();
        if lane == 0u && live {
            for (var t = 0u; t < T; t++) {
                let ra = r0 + q;
                let cb = c0 + t;
                if ra <= cb && cb < d1 {
                    partials[b * row_len + k * job.n_outputs + output_of(ra, cb, d)] = lanes_total(slot, t, one);
                }
            }
        }
    }
    if k == 0u && g == 0u && lid == 0u {
        write_score(b, start, end, row_len, one);
    }
}

@compute @workgroup_size(WG)
fn stats(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // Diagonal second moments: each invocation owns 4 features (S1 and S2 of each, 8 two-float
    // sums in registers, and S0). One workgroup owns (block b, component k, feature group g):
    // `out_slots` units of 4 features times `lanes` sample lanes, as in `stats_tri`, and stages
    // only its own window of at most 4·WG features per row, so any d fits.
    let at = place(wid, nwg, lid);
    if at.b >= chunk.n_blocks {
        return; // a whole surplus workgroup of the folded grid
    }
    let k_n = job.n_components;
    let b = at.b;
    let k = at.k;
    let slot = at.slot;
    let lane = at.lane;
    let slots = job.out_slots;
    let lanes = job.lanes;
    let d = job.n_features;
    let lo = 4u * at.g * slots; // the window's first feature
    let width = min(d, lo + 4u * slots) - lo;
    let stride = width + 1u; // √r, then √r·z over the window
    let sub = min(SUB_MAX, STAGE / stride);
    // Staged value e = s·stride + i, advanced as in `stats_tri`.
    let s_first = lid / stride;
    let i_first = lid % stride;
    let ds = WG / stride;
    let di = WG % stride;
    let f0 = 4u * slot; // this invocation's first feature, in the window
    let one = job.one;
    let centre_at = job.centres_at + k * d + lo;
    var acc: array<vec2<f32>, 16>; // S1 of the 4 features, then their S2, then S0 at 8
    var run: array<Run, 16>;       // the same sums' current runs
    var in_run = 0u;               // samples of this lane in the runs

    let start = b * chunk.block_len;
    let end = min(start + chunk.block_len, chunk.n_samples);
    for (var r0 = start; r0 < end; r0 += sub) {
        let count = min(sub, end - r0);
        workgroupBarrier(); // the previous rows are used up
        var s = s_first;
        var i = i_first;
        for (var e = lid; e < count * stride; e += WG) {
            var v = Stage(1.0);
            if i > 0u {
                v = stage_value(x[x_index(r0 + s, lo + i - 1u)], model[centre_at + i - 1u]);
            }
            zs[e / 4u][e % 4u] = stage_root(r_at((r0 + s) * k_n + k)) * v;
            s += ds;
            i += di;
            if i >= stride {
                s++;
                i -= stride;
            }
        }
        workgroupBarrier();
        if lane < lanes && f0 < width {
            for (var s = lane; s < count; s += lanes) {
                let row = s * stride;
                let w = zs[row / 4u][row % 4u];
                // The products as in `stats_tri`; features past the window add zeros.
                run[8] = run_mac(run[8], w, w, one);
                for (var c = 0u; c < 4u; c++) {
                    hot_loop(); // bench::ops counts this loop
                    var v = Stage(0.0);
                    if f0 + c < width {
                        v = zs[(row + 1u + f0 + c) / 4u][(row + 1u + f0 + c) % 4u];
                    }
                    run[c] = run_mac(run[c], w, v, one);
                    run[4u + c] = run_mac(run[4u + c], v, v, one);
                }
                in_run++;
            }
            if in_run >= RUN_LEN {
                merge_runs(&acc, &run, 9u, one);
                in_run = 0u;
            }
        }
    }
    merge_runs(&acc, &run, 9u, one);

    // The lanes' sums through lanes_out, T = 4 values at a time, in a fixed order: S1, then S2,
    // then S0 (kept by the first unit of the first group only).
    let n_out = job.n_outputs;
    let row_len = k_n * n_out + 1u;
    let base = b * row_len + k * n_out;
    for (var q = 0u; q < 3u; q++) {
        workgroupBarrier();
        for (var c = 0u; c < T; c++) {
            var v = acc[8];
            if q < 2u {
                v = acc[4u * q + c];
            }
            lanes_out[lid * T + c] = v;
        }
        workgroupBarrier();
        if lane == 0u {
            for (var c = 0u; c < T; c++) {
                let f = lo + f0 + c; // the feature, in the whole row
                var keep = f0 + c < width;
                var e = 1u + f;
                if q == 1u {
                    e = 1u + d + f;
                } else if q == 2u {
                    keep = at.g == 0u && slot == 0u && c == 0u;
                    e = 0u;
                }
                if keep {
                    partials[base + e] = lanes_total(slot, c, one);
                }
            }
        }
    }
    if k == 0u && at.g == 0u && lid == 0u {
        write_score(b, start, end, row_len, one);
    }
}

@compute @workgroup_size(WG)
fn combine(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // One invocation per (output row, value): the sum of GROUP consecutive input rows, in order.
    let index = (wid.y * nwg.x + wid.x) * WG + lid;
    let row_len = combine_params.row_len;
    let out_row = index / row_len;
    let v = index % row_len;
    let first = out_row * GROUP;
    if first >= combine_params.n_rows {
        return;
    }
    let last = min(first + GROUP, combine_params.n_rows);
    var s = vec2<f32>(0.0, 0.0);
    for (var r = first; r < last; r++) {
        s = df_add(s, src[r * row_len + v], combine_params.one);
    }
    dst[out_row * row_len + v] = s;
}
