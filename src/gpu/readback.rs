//! Bringing results home: mapping a readback buffer, and turning the chunks' two-float partial rows
//! into f64 sufficient statistics in the caller's units, around the driver's centres. The shift of
//! centre and the change of units are exact algebra, done here in f64.

use std::sync::mpsc;

use crate::error::GmmError;
use crate::gpu::GpuContext;
use crate::gpu::frame::Frame;
use crate::gpu::layout::STATS_PACKED;
use crate::gpu::pack::ModelPack;
use crate::kinds::CovarianceType;
use crate::stats::SuffStats;

/// Maps the front of `buffer`, copies it into `out` and unmaps it.
pub(crate) fn read_back<T: bytemuck::Pod>(
    ctx: &GpuContext,
    buffer: &wgpu::Buffer,
    out: &mut [T],
) -> Result<(), GmmError> {
    let bytes = size_of_val(out) as u64;
    let (tx, rx) = mpsc::channel();
    ctx.scoped("gmm readback mapping", bytes, || {
        buffer.map_async(wgpu::MapMode::Read, 0..bytes, move |r| {
            let _ = tx.send(r);
        })
    })?;
    ctx.wait()?;
    match rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return Err(GmmError::DeviceLost {
                reason: format!("mapping the readback buffer failed: {e}"),
            });
        }
        Err(_) => {
            return Err(GmmError::DeviceLost {
                reason: "the readback mapping never completed".into(),
            });
        }
    }
    {
        let view = buffer
            .get_mapped_range(0..bytes)
            .map_err(|e| GmmError::GpuInternal { message: e.to_string() })?;
        out.copy_from_slice(bytemuck::cast_slice(&view));
    }
    buffer.unmap();
    Ok(())
}

/// What the last value of a row holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Score {
    /// Σ w·log p of the E-step in the device's units: the host turns it into the caller's.
    LogLikelihood,
    /// Σ w·‖x − c‖² to the nearest centroid (k-means).
    Inertia,
    /// Nothing (the 'random' init).
    None,
}

/// Sums the chunks' rows (`rows` holds `n_chunks` rows of `row_len` (hi, lo) pairs) in f64, in chunk
/// order, and writes the statistics to `out` in the caller's units around `centres`: the GPU summed in
/// the device's units around `pack.centres_used`, with weights divided by `frame.weight_scale`.
/// `weight_sum` is Σ w in the caller's units; `sums` is scratch of at least `row_len` values.
#[allow(clippy::too_many_arguments)]
pub(crate) fn collect(
    rows: &[f32],
    n_chunks: usize,
    stats_kind: u32,
    frame: &Frame,
    pack: &ModelPack,
    centres: &[f64],
    score: Score,
    weight_sum: f64,
    sums: &mut [f64],
    out: &mut SuffStats,
) {
    let (k, d) = (out.n_components, out.n_features);
    let e = crate::gpu::plan::n_outputs(stats_kind, d);
    let row_len = k * e + 1;
    let sums = &mut sums[..row_len];
    sums.fill(0.0);
    for row in rows.chunks_exact(2 * row_len).take(n_chunks) {
        sums.iter_mut()
            .zip(row.chunks_exact(2))
            .for_each(|(s, v)| *s += f64::from(v[0]) + f64::from(v[1]));
    }
    let (w, s) = (frame.weight_scale, &frame.scale);
    out.clear();
    let s2_len = SuffStats::s2_len(out.kind, d);
    for c in 0..k {
        let r = &sums[c * e..(c + 1) * e];
        let s0 = r[0] * w;
        // S1 and S2 in the caller's units, still around the centres the GPU used.
        let s1 = |i: usize| r[1 + i] * w * s[i];
        let s2_device = |i: usize, j: usize, p: usize| r[1 + d + p] * w * s[i] * s[j];
        // The GPU's centre minus the driver's: f32 rounding and the frame, undone exactly here.
        let used = &pack.centres_used[c * d..(c + 1) * d];
        let delta = |i: usize| used[i] - centres[c * d + i];
        out.s0[c] = s0;
        for (i, o) in out.s1[c * d..(c + 1) * d].iter_mut().enumerate() {
            *o = s1(i) + s0 * delta(i);
        }
        let moved =
            |i: usize, j: usize, s2ij: f64| s2ij + delta(i) * s1(j) + s1(i) * delta(j) + s0 * delta(i) * delta(j);
        let s2 = &mut out.s2[c * s2_len..(c + 1) * s2_len];
        match out.kind {
            CovarianceType::Full | CovarianceType::Tied => {
                debug_assert_eq!(stats_kind, STATS_PACKED);
                let mut p = 0;
                for i in 0..d {
                    for j in i..d {
                        s2[p] = moved(i, j, s2_device(i, j, p));
                        p += 1;
                    }
                }
            }
            CovarianceType::Diag => (0..d).for_each(|i| s2[i] = moved(i, i, s2_device(i, i, i))),
            CovarianceType::Spherical => s2[0] = (0..d).map(|i| moved(i, i, s2_device(i, i, i))).sum(),
        }
    }
    let last = sums[row_len - 1] * w;
    out.weight_sum = weight_sum;
    out.score_sum = match score {
        Score::LogLikelihood => last - weight_sum * pack.to_callers,
        Score::Inertia => last,
        Score::None => 0.0,
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::layout::STATS_DIAG;
    use crate::gpu::plan::n_outputs;

    /// A value as the GPU would leave it: a (hi, lo) pair of f32 whose sum is the f64 value to ~2⁻⁴⁸.
    fn two_float(v: f64) -> [f32; 2] {
        let hi = v as f32;
        [hi, (v - f64::from(hi)) as f32]
    }

    #[test]
    fn collect_undoes_centres_units_and_weight_scale_exactly() {
        let (k, d, n) = (2, 3, 40);
        let x: Vec<f64> = (0..n * d)
            .map(|i| ((i * 29) % 17) as f64 * [1e3, 1.0, 1e-3][i % d])
            .collect();
        let r: Vec<f64> = (0..n * k).map(|i| ((i * 13) % 7 + 1) as f64 / 8.0).collect();
        let view = crate::data::DataView::from_f64(&x, d).unwrap();
        let frame = Frame {
            weight_scale: 4.0,
            ..Frame::of_data(&view, None)
        };
        // The driver's centres, and the f32 ones the GPU uses.
        let centres: Vec<f64> = (0..k * d)
            .map(|i| 3.3 * (i + 1) as f64 * [1e3, 1.0, 1e-3][i % d])
            .collect();
        for kind in CovarianceType::ALL {
            let mut pack = ModelPack::new(kind, k, d);
            pack.set_centres(&centres, &frame).unwrap();
            pack.to_callers = 0.25;
            let stats_kind = crate::gpu::plan::stats_kind_for(kind);
            let e = n_outputs(stats_kind, d);
            // The GPU's sums in f64: device units, weights / weight_scale, around the used centres.
            let mut row = vec![0.0; k * e + 1];
            for i in 0..n {
                for c in 0..k {
                    let rr = r[i * k + c] / frame.weight_scale;
                    let z: Vec<f64> = (0..d)
                        .map(|j| frame.to_device(j, x[i * d + j]) - f64::from(pack.host[pack.offsets[1] + c * d + j]))
                        .collect();
                    row[c * e] += rr;
                    for j in 0..d {
                        row[c * e + 1 + j] += rr * z[j];
                    }
                    let mut p = 0;
                    for a in 0..d {
                        for b in a..d {
                            if stats_kind == STATS_DIAG && a != b {
                                continue;
                            }
                            row[c * e + 1 + d + p] += rr * z[a] * z[b];
                            p += 1;
                        }
                    }
                }
            }
            row[k * e] = 7.0 / frame.weight_scale;
            let rows: Vec<f32> = row.iter().flat_map(|&v| two_float(v)).collect();
            let mut out = SuffStats::new(kind, k, d);
            let mut sums = vec![0.0; row.len()];
            collect(
                &rows,
                1,
                stats_kind,
                &frame,
                &pack,
                &centres,
                Score::LogLikelihood,
                40.0,
                &mut sums,
                &mut out,
            );
            // The same statistics straight from the definition, in the caller's units.
            let mut want = SuffStats::new(kind, k, d);
            let mut z = vec![0.0; d];
            for i in 0..n {
                let xi = &x[i * d..(i + 1) * d];
                crate::cpu::reduce::accumulate(xi, 1.0, &r[i * k..(i + 1) * k], &centres, &mut z, &mut want);
            }
            let close = |a: f64, b: f64, scale: f64| (a - b).abs() <= 1e-12 * scale;
            for c in 0..k {
                assert!(close(out.s0[c], want.s0[c], want.s0[c]), "{kind} s0");
            }
            let scale = |v: &[f64]| v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            for (i, (a, b)) in out.s1.iter().zip(&want.s1).enumerate() {
                assert!(close(*a, *b, scale(&want.s1)), "{kind} s1[{i}]: {a} vs {b}");
            }
            for (i, (a, b)) in out.s2.iter().zip(&want.s2).enumerate() {
                assert!(close(*a, *b, scale(&want.s2)), "{kind} s2[{i}]: {a} vs {b}");
            }
            let lb = 7.0 - 40.0 * 0.25;
            assert!(close(out.score_sum, lb, lb.abs()), "{kind} score");
        }
    }
}
