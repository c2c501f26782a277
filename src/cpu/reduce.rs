//! Accumulation of the sufficient statistics for one sample, in f64: the CPU twin of `shaders/reduce.wgsl`.

use crate::data::Element;
use crate::params::CovarianceType;
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
