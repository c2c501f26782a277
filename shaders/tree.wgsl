// A workgroup's tree sum of two-float values, in workgroup memory: prepended (after
// shaders/common.wgsl) where the device has no subgroups. shaders/tree_subgroup.wgsl is its twin
// with the last levels by subgroup shuffles, bitwise the same.

var<workgroup> part: array<vec2<f32>, WG>;

/// The workgroup's sum of `value` by a fixed tree (level s = WG/2 … 1: invocation lid < s adds
/// lid + s), valid at invocation 0. Every invocation calls it (it has barriers).
fn tree_sum(lid: u32, value: vec2<f32>, one: f32) -> vec2<f32> {
    part[lid] = value;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if lid < s {
            part[lid] = df_add(part[lid], part[lid + s], one);
        }
        workgroupBarrier();
    }
    return part[0];
}
