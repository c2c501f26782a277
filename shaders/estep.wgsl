// The E-step on one chunk of samples: the GPU twin of src/cpu/estep.rs.
//
// Entry points, one pass each over the chunk:
// - logprob:   L[n,k] = c_k − ½‖U_kᵀ(x̃_n − μ̃_k)‖², into `resp` (samples × components).
// - normalise: log-sum-exp over k from a finite floor; resp[n,k] = w_n·exp(L[n,k] − log p_n) in place;
//              log p_n per sample, and Σ w·(log p − logp_ref) per workgroup.
// - assign:    k-means: all of w_n to the component with the largest L (after logprob with U = I, c = 0).
// - random:    scikit-learn's 'random' init: hashed uniform responsibilities, normalised per sample.
//
// The host prepends the constants (WG, MAX_D, PANEL, LOG_FLOOR, KIND_*) from src/gpu/layout.rs,
// so the two sides cannot drift. All arithmetic is f32; the host combines the sums in f64.

struct Chunk {          // Rust twin: gpu::layout::Chunk
    n_samples: u32,     // samples in this chunk
    first_lo: u32,      // global index of the chunk's first sample, low and high words
    first_hi: u32,
    n_blocks: u32,      // sample blocks of the statistics pass
}

struct Pass {           // Rust twin: gpu::layout::Pass
    n_features: u32,
    n_components: u32,
    kind: u32,          // how the factors are stored: KIND_FULL, KIND_TIED, KIND_DIAG, KIND_SPHERICAL
    stats_kind: u32,    // which second moments the statistics pass sums: STATS_*
    n_outputs: u32,     // statistics per component (E)
    out_groups: u32,    // workgroups per component along the outputs (statistics pass)
    has_weights: u32,   // 1 if `weights` holds per-sample weights
    seed_lo: u32,       // the 'random' init's seed
    seed_hi: u32,
    means_at: u32,      // offsets into `model`
    centres_at: u32,
    factors_at: u32,
    consts_at: u32,
    out_slots: u32,     // output slots per workgroup of the statistics pass
    lanes: u32,         // sample lanes per workgroup of the statistics pass
    logp_ref: f32,      // subtracted from every log p before summing (the previous mean), so f32 keeps the digits of its change
}

@group(0) @binding(0) var<uniform> chunk: Chunk;
@group(0) @binding(1) var<storage, read> x: array<f32>;               // the chunk's samples, row-major
@group(0) @binding(2) var<storage, read> model: array<f32>;           // means, centres, factors, constants
@group(0) @binding(3) var<storage, read_write> resp: array<f32>;      // samples × components
@group(0) @binding(4) var<storage, read_write> logp_part: array<f32>; // Σ w·log p per workgroup of WG samples
@group(0) @binding(5) var<storage, read> weights: array<f32>;         // per-sample weights (if has_weights)
@group(0) @binding(7) var<uniform> job: Pass;
@group(0) @binding(8) var<storage, read_write> per_sample: array<f32>; // log p_n, or the label of n

var<workgroup> panel: array<f32, PANEL>;    // a run of columns of the packed factor U_k
var<workgroup> mu: array<f32, MAX_D>;       // the mean μ̃_k (full and tied)
var<workgroup> part: array<f32, WG>;        // the workgroup's tree sum

/// The linear index of this workgroup in the folded 2-D grid.
fn group_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.y * nwg.x + wid.x;
}

/// Column j of the packed upper factor starts here (column-major: U[0][j], …, U[j][j]).
fn column_start(j: u32) -> u32 {
    return j * (j + 1u) / 2u;
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

    var maha = 0.0;
    if job.kind == KIND_FULL || job.kind == KIND_TIED {
        var z: array<f32, MAX_D>;
        // y_j = Σ_{i<=j} z_i·U[i][j]; the factor is staged through workgroup memory in runs of
        // whole columns that fit PANEL (with the mean, in the first run), so every invocation loops
        // O(d²/2) in all and the workgroup meets at two barriers per run.
        var base = job.factors_at;
        if job.kind == KIND_FULL {
            base += k * column_start(d);
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
                }
            }
            for (var e = lid; e < len; e += WG) {
                panel[e] = model[base + start + e];
            }
            workgroupBarrier();
            if in_chunk {
                if j0 == 0u {
                    for (var i = 0u; i < d; i++) {
                        z[i] = x[n * d + i] - mu[i];
                    }
                }
                for (var j = j0; j < j1; j++) {
                    let off = column_start(j) - start;
                    var y = 0.0;
                    for (var i = 0u; i <= j; i++) {
                        y += z[i] * panel[off + i];
                    }
                    maha += y * y;
                }
            }
            j0 = j1;
        }
    } else if in_chunk {
        // Diagonal factors need no staging: every invocation reads the same values.
        let mean_at = job.means_at + k * d;
        if job.kind == KIND_DIAG {
            for (var i = 0u; i < d; i++) {
                let t = (x[n * d + i] - model[mean_at + i]) * model[job.factors_at + k * d + i];
                maha += t * t;
            }
        } else {
            let p = model[job.factors_at + k];
            for (var i = 0u; i < d; i++) {
                let t = x[n * d + i] - model[mean_at + i];
                maha += t * t;
            }
            maha *= p * p;
        }
    }
    if in_chunk {
        resp[n * job.n_components + k] = model[job.consts_at + k] - 0.5 * maha;
    }
}

/// The sample's weight (1 without weights).
fn weight_of(n: u32) -> f32 {
    if job.has_weights == 1u {
        return weights[n];
    }
    return 1.0;
}

/// Writes the workgroup's sum of `value` to logp_part[group], by a fixed tree.
fn workgroup_sum(lid: u32, group: u32, value: f32) {
    part[lid] = value;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if lid < s {
            part[lid] += part[lid + s];
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
    var contribution = 0.0;
    if n < chunk.n_samples {
        let k_n = job.n_components;
        let row = n * k_n;
        var m = LOG_FLOOR;
        for (var k = 0u; k < k_n; k++) {
            m = max(m, resp[row + k]);
        }
        var s = 0.0;
        for (var k = 0u; k < k_n; k++) {
            s += exp(resp[row + k] - m);
        }
        let log_p = m + log(s);
        let w = weight_of(n);
        for (var k = 0u; k < k_n; k++) {
            resp[row + k] = w * exp(resp[row + k] - log_p);
        }
        per_sample[n] = log_p;
        if w > 0.0 {
            contribution = w * (log_p - job.logp_ref);
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
    var contribution = 0.0;
    if n < chunk.n_samples {
        let k_n = job.n_components;
        let row = n * k_n;
        var best = 0u;
        for (var k = 1u; k < k_n; k++) {
            if resp[row + k] > resp[row + best] {
                best = k;
            }
        }
        let w = weight_of(n);
        // With U = I and c = 0, L = −½‖x − μ‖²: the squared distance is −2·L.
        contribution = w * (-2.0 * resp[row + best]);
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
    workgroup_sum(lid, group, 0.0);
}
