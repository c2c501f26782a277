// A workgroup's tree sum of two-float values with its last levels (SG lanes wide, SG the device's
// smallest subgroup) by subgroup shuffles: prepended (after shaders/common.wgsl) where the device
// has subgroups, in place of shaders/tree.wgsl. The pairs are the fallback's, so the sum is bitwise
// the same (tests/gpu_subgroups.rs).

var<workgroup> part: array<vec2<f32>, WG>;

/// The workgroup's sum of `value` by shaders/tree.wgsl's tree, valid at invocation 0: the levels
/// s >= SG in workgroup memory, the rest in registers. Every invocation calls it.
fn tree_sum(lid: u32, value: vec2<f32>, one: f32) -> vec2<f32> {
    part[lid] = value;
    workgroupBarrier();
    for (var s = WG / 2u; s >= SG; s >>= 1u) {
        if lid < s {
            part[lid] = df_add(part[lid], part[lid + s], one);
        }
        workgroupBarrier();
    }
    var total = vec2<f32>(0.0, 0.0);
    if lid < SG {
        total = tree_tail(lid, part[lid], one);
    }
    return total;
}

/// The sum of v over lanes 0..SG (invocations lid < SG, each holding its level-SG partial, the same
/// value as `part[lid]`), as the tree pairs them: at level s, lane l < s adds lane l + s. By
/// shuffles where those SG invocations are the first SG lanes of one subgroup, in order (as every
/// known driver lays out a 1-D workgroup); else lane 0 walks the same tree through `part`.
fn tree_tail(lid: u32, v: vec2<f32>, one: f32) -> vec2<f32> {
    let lane = subgroupExclusiveAdd(1u); // this invocation's place among the active lanes
    let lanes_active = subgroupAdd(1u);
    let first = subgroupBroadcastFirst(lid);
    let linear = subgroupAll(lid == first + lane) && first == 0u && lanes_active == SG;
    var s = v;
    if linear {
        for (var step = SG / 2u; step > 0u; step >>= 1u) {
            // Lane l < step takes lane l + step's value: the fallback's part[l] + part[l + step].
            s = df_add(s, subgroupShuffleDown(s, step), one);
        }
    } else if lid == 0u {
        for (var step = SG / 2u; step > 0u; step >>= 1u) {
            for (var l = 0u; l < step; l++) {
                part[l] = df_add(part[l], part[l + step], one);
            }
        }
        s = part[0];
    }
    return s;
}
