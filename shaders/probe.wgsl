// Whether this device's fma rounds once: `two_prod` (shaders/common.wgsl, built here with
// EXACT_FMA = true) on pairs whose exact products src/gpu/probe.rs knows in f64. Run once per
// context, before the kernels are built; they use fma only where every pair comes back exact.
// Prepended: the constants (src/gpu/layout.rs) and shaders/common.wgsl. Its bindings are numbered
// past the kernels' table (they share group 0 in this module, unused here).

@group(0) @binding(20) var<storage, read> pairs: array<vec2<f32>>;
@group(0) @binding(21) var<storage, read_write> products: array<vec2<f32>>;
@group(0) @binding(22) var<uniform> probe_one: vec4<f32>; // (1, 1, 1, 1): opaque to the compiler

@compute @workgroup_size(WG)
fn probe_fma(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if i < arrayLength(&products) {
        products[i] = two_prod(pairs[i].x, pairs[i].y, probe_one.x);
    }
}
