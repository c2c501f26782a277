//! A model's per-sample outputs for rows with missing values (responsibilities, log p(x_o), labels)
//! and the imputation E[x_m | x_o] = Σ_k P(k | x_o)·E[x_m | x_o, k], pattern by pattern in f64.

use rayon::prelude::*;

use crate::backend::Output;
use crate::data::DataView;
use crate::error::GmmError;
use crate::mixture::Mixture;

use super::Patterns;
use super::backend::{Work, task_len};

/// What [`each_row`] writes per row.
#[derive(Clone, Copy, PartialEq)]
enum Want {
    Output(Output),
    Impute,
}

/// Runs the observed-data E-step on every row, writing `per` values per row into `out` (in the
/// rows' own order).
fn each_row(data: &DataView, patterns: &Patterns, mix: &Mixture, want: Want, out: &mut [f64]) -> Result<(), GmmError> {
    let (n, k_n, d) = (data.n_samples(), mix.n_components, mix.n_features);
    let per = match want {
        Want::Output(Output::Proba) => k_n,
        Want::Output(_) => 1,
        Want::Impute => d,
    };
    let len = task_len(n);
    let tasks = n.div_ceil(len);
    // Each task fills its own rows (in pattern order), then they are scattered: inference runs
    // once, not in the EM loop, so these buffers are allocated per call.
    let parts: Vec<Result<Vec<f64>, GmmError>> = (0..tasks)
        .into_par_iter()
        .map(|t| {
            let range = t * len..((t + 1) * len).min(n);
            let mut work = Work::new(mix.cov_type, k_n, d);
            let mut part = vec![0.0; range.len() * per];
            for (run, at) in patterns.runs_in(range.clone()) {
                let missing = &run.missing;
                work.cond.compute(mix, run)?;
                for (p, &i) in at.clone().zip(&patterns.order[at]) {
                    data.row_into(i, &mut work.x);
                    let o = &mut part[(p - range.start) * per..(p - range.start + 1) * per];
                    if want == Want::Output(Output::Labels) {
                        // The largest responsibility, first on ties (as the CPU kernels' argmax).
                        work.posterior(mix, run);
                        let lp = &work.lp;
                        o[0] = (0..k_n).fold(0, |best, k| if lp[k] > lp[best] { k } else { best }) as f64;
                        continue;
                    }
                    let lse = work.posterior(mix, run);
                    match want {
                        Want::Output(Output::LogProb) => o[0] = lse,
                        Want::Output(_) => o.copy_from_slice(&work.lp),
                        Want::Impute => {
                            o.copy_from_slice(&work.x);
                            for (a, &j) in missing.iter().enumerate() {
                                o[j] = (0..k_n).map(|k| work.lp[k] * work.x_miss[k * d + a]).sum();
                            }
                        }
                    }
                }
            }
            Ok(part)
        })
        .collect();
    for (t, part) in parts.into_iter().enumerate() {
        let part = part?;
        for (p, values) in (t * len..).zip(part.chunks_exact(per)) {
            let i = patterns.order[p];
            out[i * per..(i + 1) * per].copy_from_slice(values);
        }
    }
    Ok(())
}

/// Per-sample outputs of `mix` for `data` (whose rows may have missing values).
pub(crate) fn outputs(
    data: &DataView,
    patterns: &Patterns,
    mix: &Mixture,
    output: Output,
    out: &mut [f64],
) -> Result<(), GmmError> {
    each_row(data, patterns, mix, Want::Output(output), out)
}

/// `data` with each missing value replaced by its conditional expectation under `mix` (N x d).
pub(crate) fn impute(data: &DataView, mix: &Mixture) -> Result<Vec<f64>, GmmError> {
    let patterns = Patterns::new(data);
    let mut out = vec![0.0; data.n_samples() * data.n_features()];
    each_row(data, &patterns, mix, Want::Impute, &mut out)?;
    Ok(out)
}
