//! The one EM driver, for every backend: initialisations, E-step statistics from the backend, the
//! shared M-step, the convergence check, and the choice of the best initialisation.

use std::ops::ControlFlow;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::backend::{Backend, FitInfo};
use crate::error::GmmError;
use crate::init::initialise;
use crate::mixture::Mixture;
use crate::mstep::m_step;
use crate::params::GmmParams;
use crate::stats::SuffStats;

/// What a fit produces, before it becomes a [`crate::GmmModel`].
#[derive(Clone, Debug)]
pub(crate) struct FitOutcome {
    pub mixture: Mixture,
    pub converged: bool,
    pub n_iter: usize,
    pub lower_bound: f64,
    pub lower_bounds: Vec<f64>,
    pub info: FitInfo,
}

/// One EM iteration's news, for progress displays.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    /// The initialisation (0-based) of `n_init`.
    pub init: usize,
    /// The iteration (1-based) within it.
    pub iteration: usize,
    /// Its lower bound: the mean log-likelihood of its E-step.
    pub lower_bound: f64,
    /// The change from the previous iteration's lower bound (∞ on the first).
    pub change: f64,
}

/// Where a fit stands, sent to a monitor in order as the fit runs (scikit-learn's `verbose` output
/// follows them; a monitor that returns `ControlFlow::Break` stops the fit).
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum FitEvent {
    /// Initialisation `init` (0-based, of n_init) begins, before its starting parameters are drawn.
    InitStart { init: usize },
    /// An EM iteration ended.
    Iteration(Progress),
    /// Initialisation `init` ended after `n_iter` iterations with `lower_bound`. Not sent when
    /// max_iter is 0 (scikit-learn reports nothing then either).
    InitEnd {
        init: usize,
        n_iter: usize,
        lower_bound: f64,
        converged: bool,
    },
}

/// Why an iteration could not go on in the backend's current arithmetic.
enum Trouble {
    /// The log-likelihood is not finite.
    NonFinite,
    /// The lower bound fell by more than the arithmetic's noise.
    Fell,
    /// The M-step failed (an ill-defined covariance).
    MStep(GmmError),
}

impl Trouble {
    fn describe(&self, iter: usize, lower_bound: f64, previous: f64) -> String {
        match self {
            Trouble::NonFinite => format!("the log-likelihood is not finite at iteration {iter}"),
            Trouble::Fell => format!(
                "the lower bound fell from {previous:.10} to {lower_bound:.10} at iteration {iter}, by more than the fast arithmetic's noise"
            ),
            Trouble::MStep(e) => format!("the M-step failed at iteration {iter}: {e}"),
        }
    }

    /// The error of a backend that cannot escalate (a fall is never one: it goes on).
    fn into_error(self, iter: usize) -> GmmError {
        match self {
            Trouble::NonFinite | Trouble::Fell => GmmError::NonFiniteLikelihood { iteration: iter },
            Trouble::MStep(e) => e,
        }
    }
}

/// A previous model to continue from (warm start): its parameters and its lower bound.
#[derive(Clone, Copy)]
pub(crate) struct WarmStart<'m> {
    pub mixture: &'m Mixture,
    pub lower_bound: f64,
}

/// Fits `params` to the data the backend holds, following scikit-learn's `BaseMixture.fit_predict`:
/// for each initialisation, iterate E-step then M-step; the lower bound of an iteration is the mean
/// log-likelihood of its E-step (before its M-step); stop when it changes by less than `tol`; keep the
/// initialisation with the highest final lower bound.
pub(crate) fn fit<B: Backend>(
    params: &GmmParams,
    backend: &mut B,
    sample_weight: Option<&[f64]>,
    warm: Option<WarmStart<'_>>,
    monitor: &mut dyn FnMut(&FitEvent) -> ControlFlow<()>,
) -> Result<FitOutcome, GmmError> {
    let (k, d) = (params.n_components, backend.n_features());
    let n_init = if warm.is_some() { 1 } else { params.n_init };
    let mut rng = StdRng::seed_from_u64(params.seed);
    // Everything the loop touches is allocated here, once.
    let mut stats = SuffStats::new(params.covariance_type, k, d);
    let mut centres = vec![0.0; k * d];
    let mut scratch = vec![0.0; d * d];
    let mut best: Option<FitOutcome> = None;
    let mut send = |event: FitEvent, iteration: usize| match monitor(&event) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(()) => Err(GmmError::Interrupted {
            init: match event {
                FitEvent::InitStart { init } | FitEvent::InitEnd { init, .. } => init,
                FitEvent::Iteration(p) => p.init,
            },
            iteration,
        }),
    };

    for init in 0..n_init {
        let init_seed = rng.random::<u64>();
        send(FitEvent::InitStart { init }, 0)?;
        backend.begin_init()?;
        let (mut mixture, mut lower_bound) = match &warm {
            Some(w) => (w.mixture.clone(), w.lower_bound),
            None => (
                initialise(params, backend, sample_weight, init_seed)?,
                f64::NEG_INFINITY,
            ),
        };
        let mut lower_bounds = Vec::with_capacity(params.max_iter.min(10_000));
        let mut converged = false;
        let mut n_iter = 0;
        // A backend in fast arithmetic that may escalate (GpuPrecision::Auto) gets the iterates
        // to go back to: the one this E-step uses, and the previous one.
        let mut iterates = backend.escalation_floor().map(|_| (mixture.clone(), mixture.clone()));
        let mut iter = 0;
        while iter < params.max_iter {
            iter += 1;
            n_iter = iter;
            let mut previous = lower_bound;
            if let Some((this, before)) = iterates.as_mut() {
                std::mem::swap(this, before);
                this.copy_from(&mixture);
            }
            loop {
                centres.copy_from_slice(&mixture.means);
                backend.em_statistics(&mixture, &centres, &mut stats)?;
                lower_bound = stats.score_sum / stats.weight_sum;
                let fell = iter > 1 && backend.escalation_floor().is_some_and(|f| lower_bound < previous - f);
                let trouble = if !lower_bound.is_finite() {
                    Trouble::NonFinite
                } else if fell {
                    Trouble::Fell
                } else {
                    match m_step(&stats, &centres, params.reg_covar, &mut mixture, &mut scratch) {
                        Ok(()) => break,
                        Err(e) => Trouble::MStep(e),
                    }
                };
                // Fast arithmetic that may escalate continues from its last good iterate in exact
                // arithmetic; anything else is the fit's error (a fall only escalates).
                let escalated = match iterates.as_mut() {
                    Some(_) => backend.escalate(trouble.describe(iter, lower_bound, previous)),
                    None => false,
                };
                match (trouble, escalated, iterates.as_mut()) {
                    (Trouble::Fell, true, Some((this, before))) => {
                        // The previous M-step made things worse: redo the previous iteration, from
                        // the iterate before it (it keeps its number, so the fit still runs
                        // max_iter iterations), against the bound that iteration started from.
                        mixture.copy_from(before);
                        this.copy_from(before);
                        lower_bounds.pop();
                        previous = lower_bounds.last().copied().unwrap_or(f64::NEG_INFINITY);
                        iter -= 1;
                        n_iter = iter;
                    }
                    (Trouble::Fell, false, _) => {
                        m_step(&stats, &centres, params.reg_covar, &mut mixture, &mut scratch)?;
                        break;
                    }
                    (_, true, Some((this, _))) => mixture.copy_from(this),
                    (t, _, _) => return Err(t.into_error(iter)),
                }
            }
            lower_bounds.push(lower_bound);
            let change = lower_bound - previous;
            log::debug!("init {init} iteration {iter}: lower bound {lower_bound:.10} (change {change:.3e})");
            let progress = Progress {
                init,
                iteration: iter,
                lower_bound,
                change,
            };
            send(FitEvent::Iteration(progress), iter)?;
            if change.abs() < params.tol {
                converged = true;
                break;
            }
            // A tol below the fast arithmetic's noise: the last iterations run exact.
            if let Some(floor) = backend.escalation_floor()
                && params.tol < floor
                && change.abs() < floor
            {
                backend.escalate(format!(
                    "the lower bound changed by {change:.2e} at iteration {iter}, below the fast arithmetic's noise ({floor:.1e}) and above tol ({:.1e})",
                    params.tol
                ));
            }
        }
        if !mixture.is_finite() {
            return Err(GmmError::NonFiniteLikelihood { iteration: n_iter });
        }
        log::debug!("init {init} ended after {n_iter} iterations: lower bound {lower_bound}, converged {converged}");
        if params.max_iter > 0 {
            let end = FitEvent::InitEnd {
                init,
                n_iter,
                lower_bound,
                converged,
            };
            send(end, n_iter)?;
        }
        // scikit-learn keeps the first initialisation, then any with a strictly higher lower bound.
        if best
            .as_ref()
            .is_none_or(|b| lower_bound > b.lower_bound || b.lower_bound == f64::NEG_INFINITY)
        {
            best = Some(FitOutcome {
                info: backend.info(),
                mixture,
                converged,
                n_iter,
                lower_bound,
                lower_bounds,
            });
        }
    }
    let best = best.expect("n_init >= 1 was validated");
    if params.max_iter > 0 && !best.converged {
        log::warn!(
            "EM did not converge after {} iterations (lower bound {}); try a larger max_iter or tol, or check the data",
            best.n_iter,
            best.lower_bound
        );
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    //! The escalation of a fast arithmetic (GpuPrecision::Auto), driven by a backend that computes
    //! exactly (the CPU's) but fakes one failure while it claims to be fast: after the switch the
    //! fit must go on from its last good iterate, so it ends where a plain CPU fit ends.
    use super::*;
    use crate::backend::Output;
    use crate::cpu::CpuBackend;
    use crate::data::DataView;
    use crate::kinds::CovarianceType;
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Fault {
        /// A NaN log-likelihood.
        NonFinite,
        /// The lower bound falls by a nat.
        Fall,
        /// Statistics whose covariance is not positive definite.
        Singular,
    }

    /// The EM pass (1-based) that fails while fast.
    const FAULT_AT: usize = 4;

    struct Flaky<'a> {
        inner: CpuBackend<'a>,
        fault: Fault,
        passes: usize,
        fast: bool,
        /// Whether each initialisation starts fast (`begin_init`), counting its passes afresh.
        starts_fast: bool,
        switches: Vec<String>,
    }

    impl Backend for Flaky<'_> {
        fn n_samples(&self) -> usize {
            self.inner.n_samples()
        }
        fn n_features(&self) -> usize {
            self.inner.n_features()
        }
        fn gather_rows(&mut self, rows: &[usize], out: &mut [f64]) -> Result<(), GmmError> {
            self.inner.gather_rows(rows, out)
        }
        fn info(&self) -> FitInfo {
            self.inner.info()
        }
        fn em_statistics(&mut self, mixture: &Mixture, centres: &[f64], stats: &mut SuffStats) -> Result<(), GmmError> {
            self.inner.em_statistics(mixture, centres, stats)?;
            self.passes += 1;
            if self.fast && self.passes == FAULT_AT {
                match self.fault {
                    Fault::NonFinite => stats.score_sum = f64::NAN,
                    Fault::Fall => stats.score_sum -= stats.weight_sum,
                    Fault::Singular => stats.s2.iter_mut().for_each(|v| *v = -1e9),
                }
            }
            Ok(())
        }
        fn label_statistics(&mut self, centroids: &[f64], stats: &mut SuffStats) -> Result<(), GmmError> {
            self.inner.label_statistics(centroids, stats)
        }
        fn per_sample_outputs(&mut self, mixture: &Mixture, output: Output, out: &mut [f64]) -> Result<(), GmmError> {
            self.inner.per_sample_outputs(mixture, output, out)
        }
        fn random_statistics(&mut self, seed: u64, centres: &[f64], stats: &mut SuffStats) -> Result<(), GmmError> {
            self.inner.random_statistics(seed, centres, stats)
        }
        fn escalation_floor(&self) -> Option<f64> {
            // Far below any change these 8 iterations make, so only the fault escalates.
            self.fast.then_some(1e-14)
        }
        fn begin_init(&mut self) -> Result<(), GmmError> {
            self.fast = self.starts_fast;
            self.passes = 0;
            Ok(())
        }
        fn escalate(&mut self, why: String) -> bool {
            let was = self.fast;
            self.fast = false;
            if was {
                self.switches.push(why);
            }
            was
        }
    }

    /// Three overlapping 2-D blobs, seeded.
    fn data() -> Vec<f64> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let noise = Normal::new(0.0, 1.0).unwrap();
        let centres = [0.0, 0.0, 2.0, 1.0, -1.0, 2.0];
        (0..600 * 2)
            .map(|i| centres[(i / 2 % 3) * 2 + i % 2] + noise.sample(&mut rng))
            .collect()
    }

    fn fit_with(fault: Option<Fault>, max_iter: usize) -> (FitOutcome, Vec<String>) {
        fit_n(fault, max_iter, 1)
    }

    fn fit_n(fault: Option<Fault>, max_iter: usize, n_init: usize) -> (FitOutcome, Vec<String>) {
        let x = data();
        let view = DataView::from_f64(&x, 2).unwrap();
        let params = GmmParams::builder(3)
            .covariance_type(CovarianceType::Full)
            .tol(0.0)
            .max_iter(max_iter)
            .n_init(n_init)
            .seed(3)
            .build()
            .unwrap();
        let mut backend = Flaky {
            inner: CpuBackend::new(view, None),
            fault: fault.unwrap_or(Fault::NonFinite),
            passes: 0,
            fast: fault.is_some(),
            starts_fast: fault.is_some(),
            switches: Vec::new(),
        };
        let outcome = fit(&params, &mut backend, None, None, &mut |_| ControlFlow::Continue(())).unwrap();
        (outcome, backend.switches)
    }

    #[test]
    fn a_failed_pass_is_redone_in_exact_arithmetic_from_the_same_iterate() {
        let (plain, _) = fit_with(None, 8);
        for fault in [Fault::NonFinite, Fault::Singular] {
            let (escalated, switches) = fit_with(Some(fault), 8);
            assert_eq!(switches.len(), 1, "{fault:?}: {switches:?}");
            assert!(switches[0].contains(&format!("iteration {FAULT_AT}")), "{switches:?}");
            // The failed pass left no trace: bitwise the plain fit.
            assert_eq!(escalated.lower_bounds, plain.lower_bounds, "{fault:?}");
            assert_eq!(escalated.mixture, plain.mixture, "{fault:?}");
            assert_eq!(escalated.n_iter, plain.n_iter);
        }
    }

    #[test]
    fn a_falling_lower_bound_goes_back_to_the_iterate_before_it() {
        // The fall at pass 4 condemns the M-step that made iteration 4's parameters, so the fit
        // redoes iteration 3 in exact arithmetic (one pass more, the fallen bound dropped from the
        // history) and then runs on to iteration 8: bitwise the plain fit.
        let (plain, _) = fit_with(None, 8);
        let (escalated, switches) = fit_with(Some(Fault::Fall), 8);
        assert_eq!(switches.len(), 1, "{switches:?}");
        assert!(switches[0].contains("fell"), "{switches:?}");
        assert_eq!(escalated.lower_bounds, plain.lower_bounds);
        assert_eq!(escalated.mixture, plain.mixture);
        assert_eq!(escalated.n_iter, 8);
    }

    #[test]
    fn each_initialisation_starts_in_the_fast_arithmetic() {
        // Two initialisations, each failing at its own 4th pass while fast: each escalates (a
        // backend that stayed exact after the first would record one switch), and each ends
        // bitwise where the plain fit's does.
        let (plain, _) = fit_n(None, 8, 2);
        let (escalated, switches) = fit_n(Some(Fault::NonFinite), 8, 2);
        assert_eq!(switches.len(), 2, "{switches:?}");
        assert!(
            switches.iter().all(|s| s.contains(&format!("iteration {FAULT_AT}"))),
            "{switches:?}"
        );
        assert_eq!(escalated.lower_bounds, plain.lower_bounds);
        assert_eq!(escalated.mixture, plain.mixture);
    }
}
