// The sufficient statistics of one chunk: the GPU twin of src/cpu/reduce.rs.
//
// - stats:   per component k, around the centre a_k, with z = x̃ − a_k and r the (weighted)
//            responsibility: S0 = Σr, S1 = Σr·z, S2 = Σr·z·zᵀ (packed upper triangle, or its diagonal).
//            It is a tiled matrix product: one workgroup owns (component, up to WG·T outputs, a block
//            of BLOCK samples), stages rows of z in workgroup memory, and every invocation
//            accumulates T outputs in registers, as two-float sums, over its share of the rows. Each
//            block writes one partial row of two-float values.
// - combine: sums the partial rows GROUP at a time, in a fixed order and two-float, until one row
//            is left.
//
// An output e of a component is a product of two entries of the augmented, weighted row
// √r·(z_0 … z_{d−1}, 1): e = 0 is (d, d) = Σr = S0, e = 1 … d is (e − 1, d) = S1, and the rest are
// the second moments. (r >= 0, and √r·z_a·√r·z_b = r·z_a·z_b: one multiply-add per output.)
// Two-float sums of error-free products keep the small eigenvalues of S2 − S1·S1ᵀ/S0 that a plain
// f32 sum of thousands of rounded products would lose.
// Prepended: the constants (src/gpu/layout.rs) and shaders/common.wgsl.

var<workgroup> zs: array<f32, STAGE>;   // up to SUB_MAX augmented rows z, d + 1 values each
var<workgroup> lanes_out: array<vec2<f32>, WG * T>; // the sample lanes' sums, added in a fixed order

/// The pair of augmented-z indices whose product is output e (see the file comment).
fn decode(e: u32, d: u32) -> vec2<u32> {
    if e == 0u {
        return vec2<u32>(d, d);
    }
    if e <= d {
        return vec2<u32>(e - 1u, d);
    }
    var p = e - 1u - d;
    if job.stats_kind == STATS_DIAG {
        return vec2<u32>(p, p);
    }
    // Row-major packed upper triangle: row i holds d − i entries.
    var i = 0u;
    var row_len = d;
    while p >= row_len {
        p -= row_len;
        i++;
        row_len--;
    }
    return vec2<u32>(i, i + p);
}

@compute @workgroup_size(WG)
fn stats(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // One workgroup: (block b, component k, output group g). Its invocations form `out_slots`
    // output slots (T outputs each, in registers) times `lanes` sample lanes: when a component has
    // few outputs, the lanes share the samples instead of idling, and are summed at the end.
    let k_n = job.n_components;
    let group = wid.y * nwg.x + wid.x;
    let per_block = k_n * job.out_groups;
    let b = group / per_block;
    if b >= chunk.n_blocks {
        return; // a whole surplus workgroup of the folded grid
    }
    let k = (group % per_block) / job.out_groups;
    let g = group % job.out_groups;
    let d = job.n_features;
    let d1 = d + 1u;
    let n_out = job.n_outputs;
    let slots = job.out_slots;
    let lanes = job.lanes;
    let slot = lid % slots;
    let lane = lid / slots;
    // Rows staged at once: as many as fit STAGE (fewer barriers per sample for small d).
    let sub = min(SUB_MAX, STAGE / d1);

    var pair: array<vec2<u32>, T>;
    var acc: array<vec2<f32>, T>;
    for (var t = 0u; t < T; t++) {
        let e = (g * T + t) * slots + slot;
        pair[t] = decode(min(e, n_out - 1u), d);
        acc[t] = vec2<f32>(0.0, 0.0);
    }
    let one = job.one;
    // The centre a_k is read from the model buffer as rows are staged (cached; any d fits).
    let centre_at = job.centres_at + k * d;

    let start = b * BLOCK;
    let end = min(start + BLOCK, chunk.n_samples);
    for (var s0 = start; s0 < end; s0 += sub) {
        let count = min(sub, end - s0);
        workgroupBarrier(); // the previous rows are used up
        for (var e = lid; e < count * d1; e += WG) {
            // Staged as √r·(z, 1): every output is then one product, √r·z_a · √r·z_b = r·z_a·z_b.
            let s = e / d1;
            let i = e % d1;
            var v = 1.0;
            if i < d {
                v = x[(s0 + s) * d + i] - model[centre_at + i];
            }
            zs[e] = sqrt(resp[(s0 + s) * k_n + k]) * v;
        }
        workgroupBarrier();
        if lane < lanes {
            for (var s = lane; s < count; s += lanes) {
                let row = s * d1;
                for (var t = 0u; t < T; t++) {
                    // Error-free: a rounded product would err independently in every output,
                    // which the small eigenvalues of S2 − S1·S1ᵀ/S0 cannot afford; the rounding of
                    // each staged √r·z_i is shared by all the outputs of its row, like the data's.
                    acc[t] = df_add(acc[t], two_prod(zs[row + pair[t].x], zs[row + pair[t].y], one), one);
                }
            }
        }
    }

    for (var t = 0u; t < T; t++) {
        lanes_out[lid * T + t] = acc[t];
    }
    workgroupBarrier();
    let row_len = k_n * n_out + 1u;
    if lane == 0u {
        for (var t = 0u; t < T; t++) {
            let e = (g * T + t) * slots + slot;
            if e < n_out {
                var v = vec2<f32>(0.0, 0.0);
                for (var l = 0u; l < lanes; l++) {
                    v = df_add(v, lanes_out[(l * slots + slot) * T + t], one);
                }
                partials[b * row_len + k * n_out + e] = v;
            }
        }
    }
    if k == 0u && g == 0u && lid == 0u {
        // The block's share of Σ w·log p (or the k-means inertia): the per-WG partials of its samples.
        var lp = vec2<f32>(0.0, 0.0);
        for (var q = start / WG; q < (end + WG - 1u) / WG; q++) {
            lp = df_add(lp, logp_part[q], one);
        }
        partials[b * row_len + row_len - 1u] = lp;
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
