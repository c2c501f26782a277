//! The map from the caller's units to the device's: each feature centred on its mean and scaled by
//! a power of two (exact, so the f32 rounding is the only change), the weights scaled by a power of
//! two; and its inverse, which the packing of models and the collection of statistics undo exactly.

use rayon::prelude::*;

use crate::data::DataView;
use crate::stats::pairwise_sum;

/// The map from the caller's units to the device's: x' = (x − shift)/scale per feature, w' = w/weight_scale.
/// Every scale is a power of two, so the map and its inverse are exact in floating point.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Frame {
    pub shift: Vec<f64>,
    pub scale: Vec<f64>,
    pub weight_scale: f64,
}

/// The smallest power of two at or above `m` (1 for 0 or non-finite; at most 2¹⁰²³, at least
/// 2⁻¹⁰²²), so that m/scale lies in (1/2, 1] (or below 2 at the top of f64's range).
pub(crate) fn pow2_at_least(m: f64) -> f64 {
    if !(m > 0.0 && m.is_finite()) {
        return 1.0;
    }
    if m < f64::MIN_POSITIVE {
        return f64::MIN_POSITIVE;
    }
    let bits = m.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i32 - 1023;
    let exact = bits & ((1u64 << 52) - 1) == 0;
    2f64.powi(if exact { exponent } else { (exponent + 1).min(1023) })
}

impl Frame {
    /// The identity: the caller's buffer is used as it is.
    pub fn identity(d: usize) -> Self {
        Self {
            shift: vec![0.0; d],
            scale: vec![1.0; d],
            weight_scale: 1.0,
        }
    }

    /// Centres each feature on its mean and scales it by the power of two at or above its largest
    /// magnitude; scales the weights by the power of two at or above the largest.
    pub fn of_data(view: &DataView, sample_weight: Option<&[f64]>) -> Self {
        let (n, d) = (view.n_samples(), view.n_features());
        let block = 4096;
        let blocks = n.div_ceil(block);
        // One partial per block of rows, in parallel: `f(acc, row)` folds each row into it.
        type Fold<'f> = &'f (dyn Fn(&mut [f64], &[f64]) + Sync);
        let per_block = |f: Fold| -> Vec<Vec<f64>> {
            (0..blocks)
                .into_par_iter()
                .map(|b| {
                    let mut acc = vec![0.0; d];
                    let mut row = vec![0.0; d];
                    for i in b * block..((b + 1) * block).min(n) {
                        view.row_into(i, &mut row);
                        f(&mut acc, &row);
                    }
                    acc
                })
                .collect()
        };
        // First the magnitudes, so that the sums below cannot overflow even for values near f64::MAX.
        let max_abs = per_block(&|acc, row| {
            acc.iter_mut().zip(row.iter()).for_each(|(a, v)| *a = a.max(v.abs()));
        });
        let scale: Vec<f64> = (0..d)
            .map(|j| pow2_at_least(max_abs.iter().fold(0.0, |m, b| m.max(b[j]))))
            .collect();
        let sums = per_block(&|acc, row| {
            acc.iter_mut()
                .zip(row.iter())
                .zip(&scale)
                .for_each(|((a, v), s)| *a += v / s);
        });
        let shift = (0..d)
            .map(|j| pairwise_sum(&sums.iter().map(|p| p[j]).collect::<Vec<_>>()) / n as f64 * scale[j])
            .collect();
        let weight_scale = Self::weight_scale_of(sample_weight);
        Self {
            shift,
            scale,
            weight_scale,
        }
    }

    /// The power of two at or above the largest sample weight (1 without weights).
    pub fn weight_scale_of(sample_weight: Option<&[f64]>) -> f64 {
        sample_weight.map_or(1.0, |w| pow2_at_least(w.iter().fold(0.0, |m, &v| m.max(v))))
    }

    /// Feature `j` of a point in the caller's units, in the device's.
    #[inline]
    pub fn to_device(&self, j: usize, v: f64) -> f64 {
        (v - self.shift[j]) / self.scale[j]
    }

    /// Σ_j log scale_j: the log-density's change of units, exact.
    pub fn log_scale_sum(&self) -> f64 {
        self.scale.iter().map(|s| s.ln()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_are_the_powers_of_two_at_or_above() {
        for (m, s) in [
            (1.0, 1.0),
            (0.75, 1.0),
            (1.5, 2.0),
            (1024.0, 1024.0),
            (1e-3, 1.0 / 512.0),
            (0.0, 1.0),
        ] {
            assert_eq!(pow2_at_least(m), s, "{m}");
        }
        assert_eq!(pow2_at_least(f64::MAX), 2f64.powi(1023));
        assert_eq!(pow2_at_least(f64::INFINITY), 1.0);
    }

    #[test]
    fn the_frame_centres_and_scales_exactly() {
        // Column 0 around 1e4 with spread 1; column 1 tiny; column 2 constant zero.
        let x: Vec<f64> = (0..300)
            .flat_map(|i| [1e4 + (i % 7) as f64, 1e-30 * (i % 5) as f64, 0.0])
            .collect();
        let view = DataView::from_f64(&x, 3).unwrap();
        let w: Vec<f64> = (0..100).map(|i| 3.0 + i as f64).collect();
        let f = Frame::of_data(&view, Some(&w));
        assert_eq!(f.scale, [16384.0, pow2_at_least(4e-30), 1.0]);
        assert_eq!(f.weight_scale, 128.0);
        // The mean of 0..7 repeating over 300 rows, computed independently.
        let mean0 = 1e4 + (0..300).map(|i| (i % 7) as f64).sum::<f64>() / 300.0;
        assert!((f.shift[0] - mean0).abs() <= 1e-12 * mean0, "{} vs {mean0}", f.shift[0]);
        assert_eq!(f.shift[2], 0.0);
        // Scaling by a power of two loses nothing: back and forth is the identity.
        for (j, &v) in x[..3].iter().enumerate() {
            assert_eq!(f.to_device(j, v) * f.scale[j] + f.shift[j], v);
        }
    }
}
