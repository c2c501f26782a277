//! The model buffer's contents: a mixture (or k-means centroids) in the device's f32 units (the
//! log-density constants as two floats), and what the host needs to undo the change of units and
//! the rounding exactly (where the centres really are).

use crate::error::GmmError;
use crate::gpu::frame::Frame;
use crate::gpu::layout::KIND_DIAG;
use crate::gpu::layout::factor_kind;
use crate::kinds::CovarianceType;
use crate::linalg::packed_len;
use crate::mixture::{HALF_LN_2PI, Mixture};

/// The model buffer on the host: means, centres, factors and constants, each region sized for its
/// largest use.
#[derive(Clone, Debug)]
pub(crate) struct ModelPack {
    k: usize,
    d: usize,
    /// Where the means, centres, factors, constants, the means' low parts, the factors' low parts
    /// and the component routes start.
    pub offsets: [usize; 7],
    pub host: Vec<f32>,
    /// Where the centres the GPU uses sit, in the caller's units (f32-rounded, then mapped back).
    pub centres_used: Vec<f64>,
    /// Σ_j log scale_j + (d/2)·log 2π: what turns the GPU's log-density (in the device's units,
    /// without the 2π term) into the caller's.
    pub to_callers: f64,
    /// Scratch for each component's log det, reused every pass (no allocation in the EM loop).
    log_det: Vec<f64>,
}

/// A value for the model buffer, or an error naming the component if f32 cannot hold it.
/// `v`, or 0 where its magnitude is below f32's smallest normal: for a value that enters the
/// arithmetic only next to values of order one or more (a mean or centre in the device's units,
/// where the data spans about 1; a factor entry off the diagonal, next to the diagonal's), so that
/// the flush changes nothing f32 could resolve. (A component with almost no weight on a nearly
/// constant column gets off-diagonal factor entries of 1e-61: digits, full covariances.)
fn flush_tiny(v: f64) -> f64 {
    if v.abs() < f64::from(f32::MIN_POSITIVE) { 0.0 } else { v }
}

fn checked(v: f64, component: usize, what: &'static str) -> Result<f32, GmmError> {
    if !v.is_finite() {
        return Err(GmmError::GpuNonFiniteParameter { component, what });
    }
    let f = v as f32;
    if f.is_finite() && (f.is_normal() || v == 0.0) {
        Ok(f)
    } else {
        Err(GmmError::GpuModelOutsideF32Range {
            component,
            what,
            value: v,
        })
    }
}

/// f32 values of one region of factors (high or low parts), sized for the largest use: this fit's
/// factors or k-means' diagonal ones.
fn factors_len(kind: CovarianceType, k: usize, d: usize) -> usize {
    match kind {
        CovarianceType::Full => k * packed_len(d),
        CovarianceType::Tied => packed_len(d),
        CovarianceType::Diag | CovarianceType::Spherical => k * d,
    }
    .max(k * d)
}

/// f32 values in the model buffer of `k` components of `d` features with factors of `kind`: means,
/// centres, factors, constants (hi and lo), the means' and the factors' low parts, and the routes.
pub(crate) fn model_len(kind: CovarianceType, k: usize, d: usize) -> usize {
    2 * k * d + factors_len(kind, k, d) + 2 * k + k * d + factors_len(kind, k, d) + k
}

impl ModelPack {
    /// A model buffer for `k` components of `d` features with factors of `kind` (and room for the
    /// diagonal factors k-means uses).
    pub fn new(kind: CovarianceType, k: usize, d: usize) -> Self {
        let factors_len = factors_len(kind, k, d);
        let consts_at = 2 * k * d + factors_len;
        let means_lo_at = consts_at + 2 * k;
        let factors_lo_at = means_lo_at + k * d;
        let routes_at = factors_lo_at + factors_len;
        let offsets = [0, k * d, 2 * k * d, consts_at, means_lo_at, factors_lo_at, routes_at];
        let mut host = vec![0.0; routes_at + k];
        // Every component in order until `set_routes` says otherwise (exact in f32 up to 2²⁴).
        for (c, r) in host[routes_at..].iter_mut().enumerate() {
            *r = c as f32;
        }
        Self {
            k,
            d,
            offsets,
            host,
            centres_used: vec![0.0; k * d],
            to_callers: 0.0,
            log_det: vec![0.0; k],
        }
    }

    /// The routes of a pass that runs the components marked in `exact` in the exact kernels and the
    /// rest in the fast ones: the fast ones first, each part in order. Returns how many are fast.
    pub fn set_routes(&mut self, exact: &[bool]) -> usize {
        let at = self.offsets[6];
        let fast = (0..self.k).filter(|&c| !exact[c]);
        let slow = (0..self.k).filter(|&c| exact[c]);
        for (r, c) in self.host[at..at + self.k].iter_mut().zip(fast.chain(slow)) {
            *r = c as f32;
        }
        exact.iter().filter(|&&e| !e).count()
    }

    /// Writes the centres (in the device's units) and records where they really are.
    pub fn set_centres(&mut self, centres: &[f64], frame: &Frame) -> Result<(), GmmError> {
        let (at, d) = (self.offsets[1], self.d);
        for (i, &c) in centres.iter().enumerate() {
            let v = checked(flush_tiny(frame.to_device(i % d, c)), i / d, "centre")?;
            self.host[at + i] = v;
            self.centres_used[i] = f64::from(v) * frame.scale[i % d] + frame.shift[i % d];
        }
        Ok(())
    }

    /// The means as two floats each: with clusters far apart relative to their spread, one f32 would
    /// move a mean by a sizeable part of a small spread.
    fn set_means(&mut self, means: &[f64], frame: &Frame) -> Result<(), GmmError> {
        let (at, lo_at, d) = (self.offsets[0], self.offsets[4], self.d);
        for (i, &m) in means.iter().enumerate() {
            let v = flush_tiny(frame.to_device(i % d, m));
            let hi = checked(v, i / d, "mean")?;
            self.host[at + i] = hi;
            self.host[lo_at + i] = (v - f64::from(hi)) as f32;
        }
        Ok(())
    }

    /// Factor entry `p` as a high and a low f32.
    fn set_factor(&mut self, p: usize, v: f64, component: usize) -> Result<(), GmmError> {
        let hi = checked(v, component, "precision factor")?;
        self.host[self.offsets[2] + p] = hi;
        self.host[self.offsets[5] + p] = (v - f64::from(hi)) as f32;
        Ok(())
    }

    /// Writes the means, factors and constants of `mix`; returns how the factors are stored.
    ///
    /// With x' = (x − shift)/s, the Mahalanobis form is unchanged if U' = diag(s)·U, so the factors
    /// are scaled by row; the density of x keeps log det U = log det U' − Σ log s.
    pub fn set_mixture(&mut self, mix: &Mixture, frame: &Frame) -> Result<u32, GmmError> {
        let (k, d) = (self.k, self.d);
        self.set_means(&mix.means, frame)?;
        // log det of each f32 factor in the device's units (taken out of self while the factors are
        // written, put back at the end; after an error the next pass allocates it again).
        let mut log_det = std::mem::take(&mut self.log_det);
        log_det.resize(k, 0.0);
        match mix.cov_type {
            CovarianceType::Full | CovarianceType::Tied => {
                // Packed column by column: U'[0][j], …, U'[j][j], as estep.wgsl reads them.
                let mut p = 0;
                for (c, u) in mix.precisions_cholesky.chunks_exact(d * d).enumerate() {
                    let mut det = 0.0;
                    for j in 0..d {
                        for i in 0..=j {
                            let v = frame.scale[i] * u[i * d + j];
                            // Off the diagonal, what f32 cannot hold is negligible next to it.
                            let v = if i == j { v } else { flush_tiny(v) };
                            self.set_factor(p, v, c)?;
                            p += 1;
                            if i == j {
                                det += v.ln();
                            }
                        }
                    }
                    log_det[c] = det;
                }
                if mix.cov_type == CovarianceType::Tied {
                    let det = log_det[0];
                    log_det.fill(det);
                }
            }
            CovarianceType::Diag | CovarianceType::Spherical => {
                let spherical = mix.cov_type == CovarianceType::Spherical;
                for (c, det_c) in log_det.iter_mut().enumerate() {
                    let mut det = 0.0;
                    for j in 0..d {
                        let u = if spherical {
                            mix.precisions_cholesky[c]
                        } else {
                            mix.precisions_cholesky[c * d + j]
                        };
                        let v = frame.scale[j] * u;
                        self.set_factor(c * d + j, v, c)?;
                        det += v.ln();
                    }
                    *det_c = det;
                }
            }
        }
        self.to_callers = d as f64 * HALF_LN_2PI + frame.log_scale_sum();
        for (c, det) in log_det.iter().enumerate() {
            // g_k = log π_k + log det U'_k, as a high and a low f32: the shader's log p carries both,
            // so the rounding of g never reaches the log-likelihood.
            let g = mix.log_weight(c) + det;
            let hi = checked(g, c, "log-density constant")?;
            self.host[self.offsets[3] + c] = hi;
            self.host[self.offsets[3] + k + c] = (g - f64::from(hi)) as f32;
        }
        self.log_det = log_det;
        Ok(factor_kind(mix.cov_type))
    }

    /// k-means: centroids as means with the features' scales as diagonal factors, so that the GPU's
    /// h = −½‖x − μ‖² is in the caller's units.
    pub fn set_centroids(&mut self, centroids: &[f64], frame: &Frame) -> Result<u32, GmmError> {
        let (k, d) = (self.k, self.d);
        self.set_means(centroids, frame)?;
        let f = self.offsets[2];
        for c in 0..k {
            for j in 0..d {
                self.host[f + c * d + j] = checked(frame.scale[j], c, "feature scale")?;
                self.host[self.offsets[5] + c * d + j] = 0.0;
            }
        }
        self.host[self.offsets[3]..self.offsets[3] + 2 * k].fill(0.0);
        Ok(KIND_DIAG)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::layout::KIND_FULL;

    /// The GPU's log-density, evaluated naively in f64 from the packed f32 values.
    fn packed_log_density(p: &ModelPack, kind: u32, frame: &Frame, x: &[f64], c: usize) -> f64 {
        let (k, d) = (p.k, p.d);
        let z: Vec<f64> = (0..d)
            .map(|j| {
                let at = c * d + j;
                frame.to_device(j, x[j]) - f64::from(p.host[p.offsets[0] + at]) - f64::from(p.host[p.offsets[4] + at])
            })
            .collect();
        let hi = &p.host[p.offsets[2]..p.offsets[3]];
        let lo = &p.host[p.offsets[5]..p.offsets[6]];
        let f: Vec<f64> = hi.iter().zip(lo).map(|(h, l)| f64::from(*h) + f64::from(*l)).collect();
        let maha: f64 = match kind {
            KIND_DIAG => (0..d).map(|j| (z[j] * f[c * d + j]).powi(2)).sum(),
            _ => {
                let base = if kind == KIND_FULL { c * packed_len(d) } else { 0 };
                let mut p0 = base;
                let mut m = 0.0;
                for j in 0..d {
                    let mut y = 0.0;
                    for zi in z.iter().take(j + 1) {
                        y += zi * f[p0];
                        p0 += 1;
                    }
                    m += y * y;
                }
                m
            }
        };
        assert!(c < k);
        // The GPU's h + g (high and low parts), then to the caller's units.
        let g = f64::from(p.host[p.offsets[3] + c]) + f64::from(p.host[p.offsets[3] + k + c]);
        -0.5 * maha + g - p.to_callers
    }

    #[test]
    fn the_packed_model_gives_the_mixtures_log_density() {
        // A 3-feature mixture with features of very different scales, every covariance type.
        let scales = [1e3, 1.0, 1e-3];
        for cov in CovarianceType::ALL {
            let (k, d) = (2, 3);
            let mut mix = Mixture::zeros(cov, k, d);
            mix.weights = vec![0.3, 0.7];
            mix.means = vec![1.0e3, 0.5, 2e-3, -1.0e3, -0.5, 1e-3];
            let shape_cov = |c: usize| -> Vec<f64> {
                let mut m = vec![0.0; d * d];
                for i in 0..d {
                    for j in 0..d {
                        let rho = if i == j { 1.0 } else { 0.3 + 0.1 * c as f64 };
                        m[i * d + j] = rho * scales[i] * scales[j];
                    }
                }
                m
            };
            mix.covariances = match cov {
                CovarianceType::Full => [shape_cov(0), shape_cov(1)].concat(),
                CovarianceType::Tied => shape_cov(0),
                CovarianceType::Diag => vec![1e6, 1.0, 1e-6, 4e6, 2.0, 3e-6],
                CovarianceType::Spherical => vec![0.5, 2.0],
            };
            mix.set_precisions_from_covariances(&mut vec![0.0; d * d]).unwrap();
            let x: Vec<f64> = (0..60).map(|i| ((i * 37) % 23) as f64 / 7.0 * scales[i % 3]).collect();
            let view = crate::data::DataView::from_f64(&x, 3).unwrap();
            let frame = Frame::of_data(&view, None);
            let mut pack = ModelPack::new(cov, k, d);
            let kind = pack.set_mixture(&mix, &frame).unwrap();
            for row in x.chunks_exact(3) {
                for c in 0..k {
                    let mut diff = vec![0.0; d];
                    let mut lp = vec![0.0; k];
                    crate::cpu::estep::logprob(row, &mix, &mut diff, &mut lp);
                    let got = packed_log_density(&pack, kind, &frame, row, c);
                    // Means, factors and constants are two-float: exact to ~1e-13 here.
                    let tol = 1e-11 * (1.0 + lp[c].abs());
                    assert!((got - lp[c]).abs() <= tol, "{cov} k={c} x={row:?}: {got} vs {}", lp[c]);
                }
            }
        }
    }

    #[test]
    fn centres_are_recorded_where_the_gpu_uses_them() {
        let frame = Frame {
            shift: vec![1e4, 0.0],
            scale: vec![16384.0, 1.0],
            weight_scale: 1.0,
        };
        let mut pack = ModelPack::new(CovarianceType::Diag, 1, 2);
        pack.set_centres(&[1e4 + 0.1, 1.0 / 3.0], &frame).unwrap();
        for j in 0..2 {
            let device = f64::from(pack.host[pack.offsets[1] + j]);
            assert_eq!(pack.centres_used[j], device * frame.scale[j] + frame.shift[j]);
        }
        // Within f32 rounding of the device's value.
        assert!((pack.centres_used[0] - (1e4 + 0.1)).abs() < 16384.0 * 1e-7);
    }

    #[test]
    fn entries_below_f32s_range_off_the_diagonal_are_zero_on_the_device() {
        let frame = Frame::identity(2);
        let mut mix = Mixture::zeros(CovarianceType::Full, 1, 2);
        mix.weights = vec![1.0];
        mix.means = vec![1e-50, 2.0];
        mix.precisions_cholesky = vec![2.0, 1e-61, 0.0, 3.0];
        let mut pack = ModelPack::new(CovarianceType::Full, 1, 2);
        pack.set_mixture(&mix, &frame).unwrap();
        // Packed by column: U[0][0], U[0][1], U[1][1].
        let f = pack.offsets[2];
        assert_eq!(&pack.host[f..f + 3], &[2.0, 0.0, 3.0]);
        assert_eq!(pack.host[pack.offsets[0]], 0.0);
        // On the diagonal the same value stays an error: it would scale a whole coordinate.
        mix.precisions_cholesky = vec![1e-61, 0.0, 0.0, 3.0];
        assert!(matches!(
            pack.set_mixture(&mix, &frame),
            Err(GmmError::GpuModelOutsideF32Range {
                what: "precision factor",
                ..
            })
        ));
    }

    #[test]
    fn a_model_beyond_f32_is_a_typed_error() {
        let frame = Frame::identity(1);
        let mut mix = Mixture::zeros(CovarianceType::Diag, 2, 1);
        mix.weights = vec![0.5, 0.5];
        mix.means = vec![0.0, 1e39];
        mix.covariances = vec![1.0, 1.0];
        mix.set_precisions_from_covariances(&mut [0.0]).unwrap();
        let mut pack = ModelPack::new(CovarianceType::Diag, 2, 1);
        assert!(matches!(
            pack.set_mixture(&mix, &frame),
            Err(GmmError::GpuModelOutsideF32Range {
                component: 1,
                what: "mean",
                ..
            })
        ));
    }
}
