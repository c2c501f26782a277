// The adapter's own peaks, for `gmm bench`'s percentages: a streaming copy (bandwidth) and
// independent FMA chains (the fp32 rate). Prepended: PEAK_WG, FMA_ITERS and FMA_CHAINS from
// src/bench/peaks.rs, which counts the bytes and flops from the same constants.

@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;

fn linear(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.y * nwg.x * PEAK_WG + gid.x;
}

/// dst[i] = src[i]: 32 bytes moved per invocation.
@compute @workgroup_size(PEAK_WG)
fn copy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear(gid, nwg);
    if i < arrayLength(&dst) {
        dst[i] = src[i];
    }
}

/// FMA_CHAINS independent chains a = a·b + c of FMA_ITERS steps each (2 flops a step), on values
/// the compiler cannot know (b and c come from memory), so nothing folds.
@compute @workgroup_size(PEAK_WG)
fn fma_chain(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear(gid, nwg);
    let b = src[0].x;
    let c = src[0].y;
    var a: array<f32, FMA_CHAINS>;
    for (var j = 0u; j < FMA_CHAINS; j++) {
        a[j] = f32(i + j) * 1e-7;
    }
    for (var t = 0u; t < FMA_ITERS; t++) {
        a[0] = fma(a[0], b, c);
        a[1] = fma(a[1], b, c);
        a[2] = fma(a[2], b, c);
        a[3] = fma(a[3], b, c);
        a[4] = fma(a[4], b, c);
        a[5] = fma(a[5], b, c);
        a[6] = fma(a[6], b, c);
        a[7] = fma(a[7], b, c);
    }
    var s = 0.0;
    for (var j = 0u; j < FMA_CHAINS; j++) {
        s += a[j];
    }
    if i < arrayLength(&dst) {
        dst[i] = vec4<f32>(s, 0.0, 0.0, 0.0);
    }
}
