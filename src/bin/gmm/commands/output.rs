//! What the subcommands write: a line on stdout (`say!`), and the words they share for a model's
//! backend, a GPU fit's arithmetic and a duration. It uses no other subcommand file, so that every
//! one of them (and the MPI variants in `cluster`) can.

use std::io::Write;
use std::time::Duration;

use gmm_gpu::{GmmModel, PrecisionRecord};

use crate::error::CliError;

/// Writes one line to stdout and flushes it; a closed stdout comes back as `CliError::Stdout`
/// (which `main` ends quietly on, for `gmm predict ... | head`).
pub(super) fn stdout_line(line: std::fmt::Arguments) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(line)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .map_err(|source| CliError::Stdout { source })
}

/// `println!` that reports a failed write instead of panicking.
macro_rules! say {
    ($($t:tt)*) => { $crate::commands::output::stdout_line(format_args!($($t)*)) };
}
pub(super) use say;

/// Where a model was fitted: "gpu on <adapter>", "cpu (f64)", or the backend's name.
pub(super) fn backend_line(model: &GmmModel) -> String {
    match model.adapter() {
        Some(a) => format!("{} on {a}", model.backend()),
        None if model.backend() == "cpu" => "cpu (f64)".to_string(),
        None => model.backend().to_string(),
    }
}

/// A GPU fit's arithmetic in words: what it asked for and what its last pass ran.
pub(super) fn precision_line(p: &PrecisionRecord) -> String {
    let mut line = format!("requested {}, used {}", p.requested, p.used);
    if !p.exact_components.is_empty() {
        let list: Vec<String> = p.exact_components.iter().map(|c| c.to_string()).collect();
        line += &format!(" (exact: component {})", list.join(", "));
    }
    line
}

/// A variational fit's components with at least this weight count as used (the Dirichlet process
/// empties those the data do not need, to weights near its prior's share, not to 0).
pub(super) const EFFECTIVE_WEIGHT: f64 = 1e-3;

/// The fit summary's lines for what EM maximised: the lower bound (the mean log-likelihood); for a
/// MAP fit the prior's scalar hyperparameters, the mean log-likelihood and the lower bound (the
/// mean log-posterior); for a variational fit the weight prior, the components it uses and the
/// ELBO.
pub(super) fn objective_lines(model: &GmmModel) -> Vec<String> {
    if let Some(w) = model.weight_prior() {
        let used = model.weights().iter().filter(|&&v| v >= EFFECTIVE_WEIGHT).count();
        return vec![
            format!(
                "  weight prior {} (the priors and the posterior are in the model file)",
                w.as_str()
            ),
            format!(
                "  effective    {used} of {} components (weight >= {EFFECTIVE_WEIGHT:e})",
                model.n_components()
            ),
            format!(
                "  ELBO         {} (scikit-learn's lower bound: a total over the samples, less constants)",
                model.lower_bound()
            ),
        ];
    }
    let Some(p) = model.prior() else {
        return vec![format!("  lower bound  {}", model.lower_bound())];
    };
    let number = |v: Option<f64>| v.map_or_else(|| "none".to_string(), |v| v.to_string());
    vec![
        format!(
            "  prior        shrinkage {}, dof {}, weights {} (the mean and scale are in the model file)",
            number(p.get_shrinkage()),
            number(p.get_dof()),
            number(p.get_weights())
        ),
        format!(
            "  likelihood   {} (mean log-likelihood per sample)",
            model.log_likelihood()
        ),
        format!("  lower bound  {} (mean log-posterior per sample)", model.lower_bound()),
    ]
}

/// A duration in ms below a second, else in s.
pub(super) fn seconds(t: Duration) -> String {
    let s = t.as_secs_f64();
    if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}
