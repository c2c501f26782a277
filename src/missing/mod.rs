//! Missing values marginalised (Ghahramani & Jordan 1994): the E-step scores each sample by the
//! density of its observed features, and the M-step takes the missing ones' conditional
//! expectations and covariances, so EM climbs the observed-data log-likelihood.
//!
//! Rows are grouped by their pattern of missing features; the Cholesky factor of Σ_oo and the
//! conditional covariance Σ_mm − Σ_mo Σ_oo⁻¹ Σ_om are computed once per pattern and component in
//! each pass ([`Conditional`]), and every row of the pattern reuses them.

pub(crate) mod backend;
pub(crate) mod fit;
pub(crate) mod infer;

use std::collections::BTreeMap;

use crate::data::DataView;
use crate::error::GmmError;
use crate::kinds::CovarianceType;
use crate::mixture::{HALF_LN_2PI, Mixture};

/// What a fit does with missing values (NaN in a view made by [`DataView::with_missing`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Missing {
    /// A NaN is [`GmmError::NonFiniteData`], naming its row and column (the default).
    #[default]
    Reject,
    /// Each sample's likelihood is that of its observed features, and the M-step fills the
    /// missing ones with their conditional expectations (plus their conditional covariance).
    Marginalise,
}

impl Missing {
    /// The name the CLI and the model file use.
    pub fn as_str(self) -> &'static str {
        match self {
            Missing::Reject => "reject",
            Missing::Marginalise => "marginalise",
        }
    }
}

impl std::str::FromStr for Missing {
    type Err = crate::kinds::ParseNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "reject" | "error" => Ok(Missing::Reject),
            "marginalise" | "marginalize" => Ok(Missing::Marginalise),
            _ => Err(crate::kinds::ParseNameError::new("missing", s, "reject, marginalise")),
        }
    }
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The rows grouped by their pattern of missing features, in a fixed order (patterns in the
/// order of their masks, rows ascending within each), so every pass sums in the same order.
pub(crate) struct Patterns {
    /// Row indices, pattern by pattern.
    pub order: Vec<usize>,
    /// Each pattern's range in `order`, observed features and missing features (ascending).
    pub runs: Vec<Run>,
}

pub(crate) struct Run {
    pub rows: std::ops::Range<usize>,
    pub observed: Vec<usize>,
    pub missing: Vec<usize>,
}

impl Patterns {
    pub fn new(view: &DataView) -> Self {
        let d = view.n_features();
        let mut groups: BTreeMap<Vec<u64>, Vec<usize>> = BTreeMap::new();
        let mut row = vec![0.0; d];
        for i in 0..view.n_samples() {
            view.row_into(i, &mut row);
            let mut mask = vec![0u64; d.div_ceil(64)];
            for (j, v) in row.iter().enumerate() {
                if v.is_nan() {
                    mask[j / 64] |= 1 << (j % 64);
                }
            }
            groups.entry(mask).or_default().push(i);
        }
        let mut order = Vec::with_capacity(view.n_samples());
        let mut runs = Vec::with_capacity(groups.len());
        for (mask, rows) in groups {
            let is_missing = |j: usize| mask[j / 64] >> (j % 64) & 1 == 1;
            let start = order.len();
            order.extend_from_slice(&rows);
            runs.push(Run {
                rows: start..order.len(),
                observed: (0..d).filter(|&j| !is_missing(j)).collect(),
                missing: (0..d).filter(|&j| is_missing(j)).collect(),
            });
        }
        Self { order, runs }
    }

    /// Positions `range` of `order`, split by pattern: each pattern's run and its positions.
    pub fn runs_in(&self, range: std::ops::Range<usize>) -> impl Iterator<Item = (&Run, std::ops::Range<usize>)> {
        let first = self.runs.partition_point(|r| r.rows.end <= range.start);
        self.runs[first..]
            .iter()
            .take_while(move |r| r.rows.start < range.end)
            .map(move |r| (r, r.rows.start.max(range.start)..r.rows.end.min(range.end)))
    }
}

/// Σ_k[i, j] of a mixture of any covariance type.
#[inline]
pub(crate) fn covariance_entry(mix: &Mixture, k: usize, i: usize, j: usize) -> f64 {
    let d = mix.n_features;
    match mix.cov_type {
        CovarianceType::Full => mix.covariances[k * d * d + i * d + j],
        CovarianceType::Tied => mix.covariances[i * d + j],
        CovarianceType::Diag if i == j => mix.covariances[k * d + i],
        CovarianceType::Spherical if i == j => mix.covariances[k],
        CovarianceType::Diag | CovarianceType::Spherical => 0.0,
    }
}

/// Per component, for one pattern of observed features o and missing features m: the Cholesky
/// factor L of Σ_oo, ln π_k − ½(|o|·ln 2π + ln det Σ_oo), Σ_mo, and the conditional covariance
/// Σ_mm − Σ_mo Σ_oo⁻¹ Σ_om. Sized once for d features, so recomputing allocates nothing.
pub(crate) struct Conditional {
    k: usize,
    d: usize,
    n_obs: usize,
    n_miss: usize,
    l: Vec<f64>,
    log_norm: Vec<f64>,
    s_mo: Vec<f64>,
    cond: Vec<f64>,
    /// Σ_oo, and L⁻¹Σ_om (column by column), as scratch.
    s_oo: Vec<f64>,
    w: Vec<f64>,
}

impl Conditional {
    pub fn new(k: usize, d: usize) -> Self {
        Self {
            k,
            d,
            n_obs: 0,
            n_miss: 0,
            l: vec![0.0; k * d * d],
            log_norm: vec![0.0; k],
            s_mo: vec![0.0; k * d * d],
            cond: vec![0.0; k * d * d],
            s_oo: vec![0.0; d * d],
            w: vec![0.0; d],
        }
    }

    /// Computes every component's terms for the pattern (`observed`, `missing`). Fails with
    /// [`GmmError::IllDefinedCovariance`] where Σ_oo is not numerically positive definite.
    pub fn compute(&mut self, mix: &Mixture, run: &Run) -> Result<(), GmmError> {
        let (observed, missing) = (&run.observed, &run.missing);
        let (no, nm) = (observed.len(), missing.len());
        (self.n_obs, self.n_miss) = (no, nm);
        debug_assert_eq!(no + nm, self.d);
        for k in 0..self.k {
            for (a, &i) in observed.iter().enumerate() {
                for (b, &j) in observed.iter().enumerate() {
                    self.s_oo[a * no + b] = covariance_entry(mix, k, i, j);
                }
            }
            let l = &mut self.l[k * no * no..(k + 1) * no * no];
            if !crate::linalg::cholesky_lower(&self.s_oo, no, l) {
                return Err(GmmError::IllDefinedCovariance {
                    component: (mix.cov_type != CovarianceType::Tied).then_some(k),
                });
            }
            let half_log_det: f64 = (0..no).map(|a| l[a * no + a].ln()).sum();
            self.log_norm[k] = mix.log_weight(k) - no as f64 * HALF_LN_2PI - half_log_det;
            let s_mo = &mut self.s_mo[k * nm * no..(k + 1) * nm * no];
            for (a, &i) in missing.iter().enumerate() {
                for (b, &j) in observed.iter().enumerate() {
                    s_mo[a * no + b] = covariance_entry(mix, k, i, j);
                }
            }
            // C = Σ_mm − Wᵀ·W with W = L⁻¹·Σ_om; W's columns are computed one missing feature at a
            // time, and C's row a needs W's column a against every column b ≤ a, so keep them all.
            let cond = &mut self.cond[k * nm * nm..(k + 1) * nm * nm];
            let mut w_all = std::mem::take(&mut self.s_oo);
            // (Σ_oo is no longer needed: its storage holds W, no x nm.)
            for a in 0..nm {
                forward(l, no, &s_mo[a * no..(a + 1) * no], &mut self.w[..no]);
                for b in 0..no {
                    w_all[b * nm + a] = self.w[b];
                }
            }
            for a in 0..nm {
                for b in 0..=a {
                    let dot: f64 = (0..no).map(|r| w_all[r * nm + a] * w_all[r * nm + b]).sum();
                    let c = covariance_entry(mix, k, missing[a], missing[b]) - dot;
                    cond[a * nm + b] = c;
                    cond[b * nm + a] = c;
                }
            }
            self.s_oo = w_all;
        }
        Ok(())
    }

    /// Component k's log-density term and the conditional mean of the missing features, for a
    /// row `x` (NaN where missing) of the pattern `run`: returns ln π_k + ln N(x_o | μ_o, Σ_oo), and writes
    /// μ_m + Σ_mo Σ_oo⁻¹ (x_o − μ_o) into `x_miss` (length |m|). `y` is scratch of d values.
    #[inline]
    pub fn component(&self, mix: &Mixture, k: usize, x: &[f64], run: &Run, y: &mut [f64], x_miss: &mut [f64]) -> f64 {
        let (observed, missing) = (&run.observed, &run.missing);
        let (no, nm, d) = (self.n_obs, self.n_miss, self.d);
        let mu = &mix.means[k * d..(k + 1) * d];
        let l = &self.l[k * no * no..(k + 1) * no * no];
        let y = &mut y[..no];
        // y = L⁻¹ (x_o − μ_o): the Mahalanobis distance is |y|².
        for a in 0..no {
            let mut s = x[observed[a]] - mu[observed[a]];
            for b in 0..a {
                s -= l[a * no + b] * y[b];
            }
            y[a] = s / l[a * no + a];
        }
        let maha: f64 = y.iter().map(|v| v * v).sum();
        if nm > 0 {
            // α = Σ_oo⁻¹ (x_o − μ_o) = L⁻ᵀ y, in place.
            for a in (0..no).rev() {
                let mut s = y[a];
                for b in a + 1..no {
                    s -= l[b * no + a] * y[b];
                }
                y[a] = s / l[a * no + a];
            }
            let s_mo = &self.s_mo[k * nm * no..(k + 1) * nm * no];
            for (a, &j) in missing.iter().enumerate() {
                let row = &s_mo[a * no..(a + 1) * no];
                x_miss[a] = mu[j] + row.iter().zip(y.iter()).map(|(s, v)| s * v).sum::<f64>();
            }
        }
        self.log_norm[k] - 0.5 * maha
    }

    /// Component k's conditional covariance of the missing features (|m| x |m|).
    pub fn conditional_covariance(&self, k: usize) -> &[f64] {
        let nm = self.n_miss;
        &self.cond[k * nm * nm..(k + 1) * nm * nm]
    }
}

/// Solves L·out = b for lower-triangular L (n x n).
fn forward(l: &[f64], n: usize, b: &[f64], out: &mut [f64]) {
    for a in 0..n {
        let mut s = b[a];
        for c in 0..a {
            s -= l[a * n + c] * out[c];
        }
        out[a] = s / l[a * n + a];
    }
}

/// Log-sum-exp of `lp` into responsibilities in place; returns the log-sum. The largest term is
/// finite (every Σ_oo is positive definite and every weight positive), so the sum is from a
/// finite floor.
#[inline]
pub(crate) fn normalise(lp: &mut [f64]) -> f64 {
    let max = lp.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = lp.iter().map(|v| (v - max).exp()).sum();
    let lse = max + sum.ln();
    lp.iter_mut().for_each(|v| *v = (*v - lse).exp());
    lse
}

/// Each column's observed (weighted) sum and weight: `[Σ w·x_j for every j, then Σ w for every
/// j]`, what ranks add up before [`fill_missing`].
pub(crate) fn column_sums(view: &DataView, sample_weight: Option<&[f64]>) -> Vec<f64> {
    let d = view.n_features();
    let mut sums = vec![0.0; 2 * d];
    let mut row = vec![0.0; d];
    for i in 0..view.n_samples() {
        view.row_into(i, &mut row);
        let w = sample_weight.map_or(1.0, |w| w[i]);
        for (j, v) in row.iter().enumerate().filter(|(_, v)| !v.is_nan()) {
            sums[j] += w * v;
            sums[d + j] += w;
        }
    }
    sums
}

/// The data with every missing value replaced by its column's mean from [`column_sums`] (over
/// every rank's rows in a distributed fit): what the initialisations see (k-means++, k-means,
/// random and given starts), as mean imputation would; EM then marginalises the missing values.
pub(crate) fn fill_missing(view: &DataView, sums: &[f64]) -> Vec<f64> {
    let d = view.n_features();
    // A column with no observed (weighted) value has no mean: 0 is as good a guess as any, and EM
    // moves it.
    let mean: Vec<f64> = (0..d)
        .map(|j| if sums[d + j] > 0.0 { sums[j] / sums[d + j] } else { 0.0 })
        .collect();
    let mut x = vec![0.0; view.n_samples() * d];
    for (i, row) in x.chunks_exact_mut(d).enumerate() {
        view.row_into(i, row);
        row.iter_mut()
            .zip(&mean)
            .filter(|(v, _)| v.is_nan())
            .for_each(|(v, m)| *v = *m);
    }
    x
}

/// [`fill_missing`] with this data's own column means (a fit in one process).
pub(crate) fn column_mean_filled(view: &DataView, sample_weight: Option<&[f64]>) -> Vec<f64> {
    fill_missing(view, &column_sums(view, sample_weight))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_an_unknown_one_lists_the_choices() {
        for m in [Missing::Reject, Missing::Marginalise] {
            assert_eq!(m.as_str().parse::<Missing>().unwrap(), m);
            assert_eq!(m.to_string(), m.as_str());
        }
        assert_eq!("marginalize".parse::<Missing>().unwrap(), Missing::Marginalise);
        assert_eq!(Missing::Marginalise.as_str(), "marginalise");
        let e = "sometimes".parse::<Missing>().unwrap_err().to_string();
        assert!(e.contains("sometimes") && e.contains("reject, marginalise"), "{e}");
    }

    #[test]
    fn a_sub_covariance_that_does_not_factor_names_its_component() {
        // Defensive: Σ_oo of a positive-definite Σ factors, so build a Σ that is not (1 and 2 on
        // a 2 x 2 block): a full component is named, a tied covariance is no one component's.
        for (kind, expected) in [(CovarianceType::Full, Some(1)), (CovarianceType::Tied, None)] {
            let mut mix = Mixture::zeros(kind, 2, 3);
            mix.weights = vec![0.5, 0.5];
            let bad = [1.0, 2.0, 0.0, 2.0, 1.0, 0.0, 0.0, 0.0, 1.0];
            let good = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
            mix.covariances = match kind {
                CovarianceType::Full => [good, bad].concat(),
                _ => bad.to_vec(),
            };
            let run = Run {
                rows: 0..1,
                observed: vec![0, 1],
                missing: vec![2],
            };
            let e = Conditional::new(2, 3).compute(&mix, &run).unwrap_err();
            assert!(
                matches!(e, GmmError::IllDefinedCovariance { component } if component == expected),
                "{e}"
            );
        }
    }

    #[test]
    fn patterns_group_rows_in_mask_order_and_split_ranges_by_pattern() {
        let nan = f64::NAN;
        let x = [1.0, 2.0, nan, 3.0, 4.0, 5.0, nan, 6.0, 7.0, nan];
        let view = DataView::with_missing(crate::data::Samples::F64(&x), 2).unwrap();
        let p = Patterns::new(&view);
        // Masks: complete (rows 0, 2), column 0 missing (rows 1, 3), column 1 missing (row 4).
        assert_eq!(p.order, [0, 2, 1, 3, 4]);
        assert_eq!(
            p.runs.iter().map(|r| r.rows.clone()).collect::<Vec<_>>(),
            [0..2, 2..4, 4..5]
        );
        assert_eq!(
            (p.runs[1].observed.as_slice(), p.runs[1].missing.as_slice()),
            (&[1][..], &[0][..])
        );
        let split: Vec<_> = p.runs_in(1..5).map(|(r, at)| (r.missing.clone(), at)).collect();
        assert_eq!(split, [(vec![], 1..2), (vec![0], 2..4), (vec![1], 4..5)]);
        assert_eq!(p.runs_in(2..3).count(), 1);
    }
}
