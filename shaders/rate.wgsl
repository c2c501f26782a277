// The device's f64 FMA rate against its f32 rate (src/gpu/rate.rs): RATE_CHAINS independent fma
// chains of RATE_ITERS steps per invocation, on values the compiler cannot know, in each type.
// Built only where the device has `wgpu::Features::SHADER_F64`. Prepended: RATE_ITERS.

@group(0) @binding(0) var<storage, read> coeffs: array<f32>;     // b and c of a = a·b + c
@group(0) @binding(1) var<storage, read_write> sink: array<f32>; // one value per invocation

@compute @workgroup_size(64)
fn chain_f32(@builtin(global_invocation_id) gid: vec3<u32>) {
    let b = coeffs[0];
    let c = coeffs[1];
    var a0 = f32(gid.x) * 1e-7;
    var a1 = a0 + 1e-7;
    var a2 = a0 + 2e-7;
    var a3 = a0 + 3e-7;
    for (var t = 0u; t < RATE_ITERS; t++) {
        a0 = fma(a0, b, c);
        a1 = fma(a1, b, c);
        a2 = fma(a2, b, c);
        a3 = fma(a3, b, c);
    }
    sink[gid.x] = (a0 + a1) + (a2 + a3);
}

@compute @workgroup_size(64)
fn chain_f64(@builtin(global_invocation_id) gid: vec3<u32>) {
    let b = f64(coeffs[0]);
    let c = f64(coeffs[1]);
    var a0 = f64(gid.x) * f64(1e-7);
    var a1 = a0 + f64(1e-7);
    var a2 = a0 + f64(2e-7);
    var a3 = a0 + f64(3e-7);
    for (var t = 0u; t < RATE_ITERS; t++) {
        a0 = fma(a0, b, c);
        a1 = fma(a1, b, c);
        a2 = fma(a2, b, c);
        a3 = fma(a3, b, c);
    }
    sink[gid.x] = f32((a0 + a1) + (a2 + a3));
}
