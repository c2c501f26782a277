//! Accumulation of the sufficient statistics, in f64: the CPU twin of `shaders/reduce.wgsl`.
//!
//! [`accumulate_block`] sums a block of samples, lane-parallel across features (see `block.rs`);
//! `accumulate` is the one-sample formula it is tested against.

// Lane loops index by lane on purpose: `for l in 0..W` over several arrays is what vectorises.
#![allow(clippy::needless_range_loop)]

use super::block::{BLOCK, Block, CHUNKS, Packed};
use super::lanes::{L, W, flat, multiversion};
#[cfg(test)]
use crate::data::Element;
use crate::kinds::CovarianceType;
use crate::stats::SuffStats;

/// Columns per register tile of the second moments: 4 columns x 8 rows is 8 AVX2 accumulators.
const TILE: usize = 4;

/// The W values of `s` from `at`, as an array (one bounds check, then a fixed trip count).
#[inline(always)]
fn lanes_at(s: &[f64], at: usize) -> &[f64; W] {
    s[at..at + W].try_into().unwrap()
}

multiversion! {
    /// Adds the block's samples to `stats` around the packed centres: for each component, with
    /// z = x − c_k and r the block's w·responsibility, S0 += Σ r, S1 += Σ r·z and S2 += Σ r·z·zᵀ
    /// (diagonal or trace, as `stats.kind` needs). Full and tied S2 goes to the dense `b.moments`
    /// instead, which [`fold_moments`] moves into `stats` after the task's last block. The sums over
    /// the block run in registers, in sample order, and are then added to the running sums.
    fn accumulate_block(p: &Packed, b: &mut Block, stats: &mut SuffStats) {
        let (d, dp, n) = (p.d, p.dp, b.n);
        let s2_len = SuffStats::s2_len(stats.kind, d);
        let dense = matches!(stats.kind, CovarianceType::Full | CovarianceType::Tied);
        for k in 0..p.k {
            let r = &b.resp[k * CHUNKS..(k + 1) * CHUNKS];
            // Σ r lane-wise over the block's vectors, then across the lanes in order.
            let mut r_sum = [0.0; W];
            for rv in &r[..b.chunks] {
                for l in 0..W {
                    r_sum[l] += rv.0[l];
                }
            }
            if r[..b.chunks].iter().all(|rv| rv.0.iter().all(|&v| v == 0.0)) {
                continue; // adds exactly nothing (a k-means pass, or a far component)
            }
            stats.s0[k] += r_sum.iter().fold(0.0, |a, v| a + v);
            // √r, so that the second moments are the plain product YᵀY of y = √r·z.
            let mut root = [0.0; BLOCK];
            for (o, &v) in root.iter_mut().zip(flat(r)) {
                *o = v.sqrt();
            }
            let c = &p.centres[k * dp..(k + 1) * dp];
            let s1 = &mut stats.s1[k * d..(k + 1) * d];
            let s2 = &mut stats.s2[k * s2_len..(k + 1) * s2_len];
            let mut trace = [0.0; W];
            for j0 in (0..dp).step_by(W) {
                // z = x − c for these W features of every sample, with the sums on the way.
                let (xa, c) = (&b.xa[..n * dp], *lanes_at(c, j0));
                let (a1, a2) = centre_and_weigh(xa, r, &root, c, &mut b.yk, dp, j0, dense);
                // Fixed trip counts with a test, not a shorter loop: an array indexed by a run-time
                // bound is kept in memory, which stops the loop above from vectorising.
                for l in 0..W {
                    if j0 + l < d {
                        s1[j0 + l] += a1[l];
                    }
                }
                match stats.kind {
                    CovarianceType::Full | CovarianceType::Tied => {}
                    CovarianceType::Diag => {
                        for l in 0..W {
                            if j0 + l < d {
                                s2[j0 + l] += a2[l];
                            }
                        }
                    }
                    CovarianceType::Spherical => (0..W).for_each(|l| trace[l] += a2[l]),
                }
            }
            match stats.kind {
                // Every row of y is complete only now.
                CovarianceType::Full | CovarianceType::Tied => {
                    let m = &mut b.moments[k * dp * dp..(k + 1) * dp * dp];
                    for a0 in (0..dp).step_by(W) {
                        second_moments(&b.yk[..n * dp], dp, a0, m);
                    }
                }
                CovarianceType::Spherical => s2[0] += trace.iter().fold(0.0, |a, v| a + v),
                CovarianceType::Diag => {}
            }
        }
    }
}

/// Full and tied: sets each component's packed S2 in `stats` to the task's dense sums in
/// `b.moments` (its upper triangle, padding left out), after the task's last block.
pub(crate) fn fold_moments(p: &Packed, b: &Block, stats: &mut SuffStats) {
    if !matches!(stats.kind, CovarianceType::Full | CovarianceType::Tied) {
        return;
    }
    let (d, dp) = (p.d, p.dp);
    let s2_len = SuffStats::s2_len(stats.kind, d);
    for (s2, m) in stats.s2.chunks_exact_mut(s2_len).zip(b.moments.chunks_exact(dp * dp)) {
        let mut at = 0;
        for a in 0..d {
            for bb in a..d {
                s2[at] = m[bb * dp + a];
                at += 1;
            }
        }
    }
}

multiversion! {
    /// For features j0..j0 + W of every sample: Σ r·z and Σ r·z² with z = x − c, and with `keep`,
    /// y = √r·z into `yk` for the second moments.
    fn centre_and_weigh(
        xa: &[f64],
        r: &[L],
        root: &[f64; BLOCK],
        c: [f64; W],
        yk: &mut [f64], dp: usize, j0: usize, keep: bool) -> ([f64; W],
        [f64; W],
    ) {
        let (mut a1, mut a2) = ([0.0; W], [0.0; W]);
        // Zipped chunks, so that no bounds check (and so no panic path) stays in the loop.
        assert!(j0 + W <= dp);
        let rows = xa.chunks_exact(dp).zip(yk.chunks_exact_mut(dp));
        for (((x, yk), &ri), &si) in rows.zip(flat(r)).zip(root) {
            let x: &[f64; W] = x[j0..j0 + W].try_into().unwrap();
            let (mut z, mut y) = ([0.0; W], [0.0; W]);
            for l in 0..W {
                z[l] = x[l] - c[l];
                let rz = ri * z[l];
                a1[l] += rz;
                if keep {
                    y[l] = si * z[l];
                } else {
                    a2[l] = rz.mul_add(z[l], a2[l]);
                }
            }
            if keep {
                yk[j0..j0 + W].copy_from_slice(&y);
            }
        }
        (a1, a2)
    }
}

multiversion! {
    /// The rows a in [a0, a0 + W) of Σ y·yᵀ over the block, from column a0 on, added to the dense
    /// column-major `m` (dp x dp). The first tile is the diagonal one: only its upper rows are needed,
    /// so it takes half the rows; the others are whole.
    fn second_moments(yk: &[f64], dp: usize, a0: usize, m: &mut [f64]) {
        const { assert!(TILE == W / 2, "the diagonal tile is half a lane vector of rows by TILE columns") };
        moments_tile::<{ W / 2 }>(yk, dp, a0, a0, m);
        for b0 in (a0 + TILE..dp).step_by(TILE) {
            moments_tile::<W>(yk, dp, a0, b0, m);
        }
    }
}

/// Rows a0..a0 + R x columns b0..b0 + TILE of Σ y·yᵀ over the block, added to the dense `m`.
#[inline(always)]
fn moments_tile<const R: usize>(yk: &[f64], dp: usize, a0: usize, b0: usize, m: &mut [f64]) {
    let mut acc = [[0.0; R]; TILE];
    // No bounds check may stay in the loop: a possible panic keeps `acc` in memory.
    assert!(a0 + R <= dp && b0 + TILE <= dp);
    for y in yk.chunks_exact(dp) {
        let ya: &[f64; R] = y[a0..a0 + R].try_into().unwrap();
        let yb: &[f64; TILE] = y[b0..b0 + TILE].try_into().unwrap();
        for c in 0..TILE {
            for l in 0..R {
                acc[c][l] = ya[l].mul_add(yb[c], acc[c][l]);
            }
        }
    }
    // Constant indices into `acc` (no iterator over it), or it is kept in memory.
    for c in 0..TILE {
        let col: &mut [f64; R] = (&mut m[(b0 + c) * dp + a0..(b0 + c) * dp + a0 + R]).try_into().unwrap();
        for l in 0..R {
            col[l] += acc[c][l];
        }
    }
}

/// The one-sample reference: adds one sample x, with sample weight `w` and responsibilities
/// `resp`, to `stats`, around `centres`: for each component, z = x − c_k and r = w·resp_k, then
/// S0 += r, S1 += r·z, and S2 += r·z·zᵀ
/// (packed upper triangle, diagonal or trace, as `stats.kind` needs). `z` holds d values of scratch.
#[cfg(test)]
pub(crate) fn accumulate<T: Element>(
    x: &[T],
    w: f64,
    resp: &[f64],
    centres: &[f64],
    z: &mut [f64],
    stats: &mut SuffStats,
) {
    let d = stats.n_features;
    let s2_len = SuffStats::s2_len(stats.kind, d);
    for (k, &rk) in resp.iter().enumerate() {
        let r = w * rk;
        if r == 0.0 {
            continue; // adds exactly nothing
        }
        let c = &centres[k * d..(k + 1) * d];
        for ((zi, &xi), &ci) in z.iter_mut().zip(x).zip(c) {
            *zi = xi.to_f64() - ci;
        }
        stats.s0[k] += r;
        let s1 = &mut stats.s1[k * d..(k + 1) * d];
        for (s, zi) in s1.iter_mut().zip(z.iter()) {
            *s += r * zi;
        }
        let s2 = &mut stats.s2[k * s2_len..(k + 1) * s2_len];
        match stats.kind {
            CovarianceType::Full | CovarianceType::Tied => {
                let mut p = 0;
                for i in 0..d {
                    let rzi = r * z[i];
                    for zj in &z[i..] {
                        s2[p] += rzi * zj;
                        p += 1;
                    }
                }
            }
            CovarianceType::Diag => {
                for (s, zi) in s2.iter_mut().zip(z.iter()) {
                    *s += r * zi * zi;
                }
            }
            CovarianceType::Spherical => s2[0] += r * z.iter().map(|zi| zi * zi).sum::<f64>(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::block::{BLOCK, CHUNKS};
    use crate::linalg::packed_index;

    #[test]
    fn accumulate_block_matches_the_one_sample_formula() {
        use crate::cpu::block::{Block, Packed};
        use crate::cpu::test_util;
        use rand::rngs::StdRng;
        use rand::{RngExt, SeedableRng};
        let k = 3;
        for d in [1, 3, 8, 11, 19] {
            for n in [1, 37, BLOCK] {
                let x = test_util::data(n, d, 3);
                let centres = test_util::data(k, d, 4);
                // Random w·responsibilities; component 1 is all zero (the skip), some samples too.
                let mut rng = StdRng::seed_from_u64(5);
                let r: Vec<f64> = (0..n * k)
                    .map(|t| {
                        if t % k == 1 || (t / k) % 5 == 0 {
                            0.0
                        } else {
                            rng.random::<f64>()
                        }
                    })
                    .collect();
                for kind in CovarianceType::ALL {
                    let mut p = Packed::default();
                    p.fill(None, &centres, k, d);
                    let mut b = Block::new(k, d, true);
                    b.load(&x, d, None, 0, n);
                    for (t, &v) in r.iter().enumerate() {
                        b.resp[(t % k) * CHUNKS + (t / k) / W].0[(t / k) % W] = v;
                    }
                    // The same block twice: the running sums carry across blocks, then fold.
                    let mut got = SuffStats::new(kind, k, d);
                    accumulate_block(&p, &mut b, &mut got);
                    accumulate_block(&p, &mut b, &mut got);
                    fold_moments(&p, &b, &mut got);
                    let mut want = SuffStats::new(kind, k, d);
                    for _ in 0..2 {
                        for (i, xi) in x.chunks_exact(d).enumerate() {
                            accumulate(xi, 1.0, &r[i * k..(i + 1) * k], &centres, &mut vec![0.0; d], &mut want);
                        }
                    }
                    // Sums of ≤ BLOCK terms in two orders (lanes, then in order; or in order): a few ulps
                    // of the sum (of the unit for sums near 0) in these well-spread data.
                    for (name, g, w) in [
                        ("s0", &got.s0, &want.s0),
                        ("s1", &got.s1, &want.s1),
                        ("s2", &got.s2, &want.s2),
                    ] {
                        let worst = g.iter().zip(w.iter()).enumerate().max_by(|a, b| {
                            let e = |(_, (p, q)): &(usize, (&f64, &f64))| (*p - *q).abs() / q.abs().max(1.0);
                            e(a).total_cmp(&e(b))
                        });
                        if let Some((at, (p, q))) = worst {
                            assert!(
                                (p - q).abs() <= 2e-14 * q.abs().max(1.0),
                                "d={d} n={n} {kind} {name}[{at}]: {p} vs {q}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn accumulate_matches_the_naive_weighted_sums() {
        let (k, d) = (2, 3);
        let xs = [[1.0, 2.0, -1.0], [0.5, -0.5, 4.0], [3.0, 0.0, 1.5]];
        let resp = [[0.25, 0.75], [1.0, 0.0], [0.6, 0.4]];
        let w = [1.0, 2.0, 0.5];
        let centres = [0.5, 1.0, 0.0, -1.0, 0.0, 2.0];
        for kind in CovarianceType::ALL {
            let mut stats = SuffStats::new(kind, k, d);
            for i in 0..3 {
                accumulate(&xs[i], w[i], &resp[i], &centres, &mut [0.0; 3], &mut stats);
            }
            for c in 0..k {
                // The naive sums, written straight from the definitions.
                let z = |i: usize, j: usize| xs[i][j] - centres[c * d + j];
                let r = |i: usize| w[i] * resp[i][c];
                let s0: f64 = (0..3).map(r).sum();
                assert!((stats.s0[c] - s0).abs() < 1e-15);
                for a in 0..d {
                    let s1: f64 = (0..3).map(|i| r(i) * z(i, a)).sum();
                    assert!((stats.s1[c * d + a] - s1).abs() < 1e-14, "{kind} s1[{c}][{a}]");
                    for b in a..d {
                        let s2: f64 = (0..3).map(|i| r(i) * z(i, a) * z(i, b)).sum();
                        let got = match kind {
                            CovarianceType::Full | CovarianceType::Tied => stats.s2[c * 6 + packed_index(a, b, d)],
                            CovarianceType::Diag if a == b => stats.s2[c * d + a],
                            _ => continue,
                        };
                        assert!((got - s2).abs() < 1e-13, "{kind} s2[{c}][{a}][{b}]: {got} vs {s2}");
                    }
                }
                if kind == CovarianceType::Spherical {
                    let trace: f64 = (0..3)
                        .map(|i| r(i) * (0..d).map(|j| z(i, j).powi(2)).sum::<f64>())
                        .sum();
                    assert!((stats.s2[c] - trace).abs() < 1e-13, "spherical trace[{c}]");
                }
            }
        }
    }
}
