//! Accumulation of the sufficient statistics for one sample, in f64: the CPU twin of `shaders/reduce.wgsl`.

use crate::data::Element;
use crate::kinds::CovarianceType;
use crate::stats::SuffStats;

/// Adds one sample x, with sample weight `w` and responsibilities `resp`, to `stats`, around `centres`:
/// for each component, z = x − c_k and r = w·resp_k, then S0 += r, S1 += r·z, and S2 += r·z·zᵀ
/// (packed upper triangle, diagonal or trace, as `stats.kind` needs). `z` holds d values of scratch.
#[inline]
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
    use crate::linalg::packed_index;

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
