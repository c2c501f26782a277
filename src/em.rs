//! The one EM driver, for every backend: initialisations, E-step statistics from the backend, the
//! shared M-step, the convergence check, and the choice of the best initialisation.

use std::ops::ControlFlow;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::backend::{Backend, FitInfo};
use crate::error::GmmError;
use crate::estimator::Estimator;
use crate::init::initialise;
use crate::mixture::Mixture;
use crate::params::GmmParams;
use crate::prior::MapPrior;
use crate::stats::SuffStats;
use crate::variational::{VbPrior, bound};

/// What a fit produces, before it becomes a [`crate::GmmModel`].
#[derive(Clone, Debug)]
pub(crate) struct FitOutcome {
    pub mixture: Mixture,
    pub converged: bool,
    pub n_iter: usize,
    pub lower_bound: f64,
    pub lower_bounds: Vec<f64>,
    pub info: FitInfo,
    /// A MAP fit's prior, resolved against the data.
    pub prior: Option<MapPrior>,
    /// A variational fit's priors, resolved against the data.
    pub variational: Option<VbPrior>,
    /// The mean log-likelihood of the last E-step (the lower bound less the prior's term).
    pub log_likelihood: f64,
}

/// One EM iteration's news, for progress displays.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    /// The initialisation (0-based) of `n_init`.
    pub init: usize,
    /// The iteration (1-based) within it.
    pub iteration: usize,
    /// Its lower bound: the mean log-likelihood of its E-step (a MAP fit's mean log-posterior; a
    /// variational fit's evidence lower bound, a total over the samples).
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
    /// An EM iteration ended. Each is sent once, with the bound the fit keeps: while a GPU fit in
    /// `GpuPrecision::Auto`'s fast arithmetic may still go back an iteration (a falling bound
    /// redoes the previous one exactly), an iteration is sent once the next E-step shows it stands,
    /// one iteration late.
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
    // Maximum likelihood, MAP or variational: the priors' defaults from the data (every rank's).
    let mut estimator = Estimator::resolve(params, backend, sample_weight)?;
    let variational = estimator.is_variational();
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
                initialise(params, &mut estimator, backend, sample_weight, init_seed)?,
                f64::NEG_INFINITY,
            ),
        };
        // What iteration 1 is measured against: the warm model's bound, or -∞.
        let start_bound = lower_bound;
        let mut lower_bounds = Vec::with_capacity(params.max_iter.min(10_000));
        let mut converged = false;
        let mut n_iter = 0;
        let mut log_likelihood = f64::NEG_INFINITY;
        // A backend in fast arithmetic that may escalate (GpuPrecision::Auto) gets the iterates
        // to go back to: the one this E-step uses, and the previous one.
        let mut iterates = backend.escalation_floor().map(|_| (mixture.clone(), mixture.clone()));
        // While the fit may still go back an iteration, that iteration's news waits here until the
        // next E-step shows it stands, so that a monitor sees each iteration once, with the bound
        // the fit keeps.
        let mut pending: Option<Progress> = None;
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
                backend.guard(&mixture)?;
                backend.em_statistics(&mixture, &centres, &mut stats)?;
                log_likelihood = stats.score_sum / stats.weight_sum;
                // The fast arithmetic's noise in the bound: per sample, and for the variational
                // bound (a total) times the weight.
                let noise = backend
                    .escalation_floor()
                    .map(|f| if variational { f * stats.weight_sum } else { f });
                let trouble = if !log_likelihood.is_finite() {
                    Trouble::NonFinite
                } else if variational {
                    // scikit-learn's order: the bound of this E-step's responsibilities and the
                    // parameters of the M-step that follows it, so the M-step runs first.
                    let entropy = bound::entropy_sum(&stats, &mixture);
                    match estimator.m_step(&stats, &centres, params.reg_covar, &mut mixture, &mut scratch) {
                        Err(e) => Trouble::MStep(e),
                        Ok(()) => {
                            lower_bound = bound::lower_bound(entropy, &mixture);
                            if !lower_bound.is_finite() {
                                Trouble::NonFinite
                            } else if iter > 1 && noise.is_some_and(|f| lower_bound < previous - f) {
                                Trouble::Fell
                            } else {
                                break;
                            }
                        }
                    }
                } else {
                    // MAP-EM climbs the log-posterior, not the log-likelihood: the bound adds the
                    // prior's log density at the parameters of this E-step, per unit of weight.
                    lower_bound = match estimator.map_prior() {
                        Some(p) => (stats.score_sum + p.log_density(&mixture, &mut scratch)) / stats.weight_sum,
                        None => log_likelihood,
                    };
                    if !lower_bound.is_finite() {
                        Trouble::NonFinite
                    } else if iter > 1 && noise.is_some_and(|f| lower_bound < previous - f) {
                        Trouble::Fell
                    } else {
                        match estimator.m_step(&stats, &centres, params.reg_covar, &mut mixture, &mut scratch) {
                            Ok(()) => break,
                            Err(e) => Trouble::MStep(e),
                        }
                    }
                };
                // Fast arithmetic that may escalate continues from its last good iterate in exact
                // arithmetic; anything else is the fit's error (a fall only escalates).
                let escalated = match iterates.as_mut() {
                    Some(_) => backend.escalate(trouble.describe(iter, lower_bound, previous)),
                    None => false,
                };
                match (trouble, escalated, iterates.as_mut()) {
                    (Trouble::Fell, true, Some((this, before))) if !variational => {
                        // The previous M-step made things worse: redo the previous iteration, from
                        // the iterate before it (it keeps its number, so the fit still runs
                        // max_iter iterations), against the bound that iteration started from.
                        mixture.copy_from(before);
                        this.copy_from(before);
                        lower_bounds.pop();
                        pending = None;
                        previous = lower_bounds.last().copied().unwrap_or(start_bound);
                        iter -= 1;
                        n_iter = iter;
                    }
                    // A variational bound is measured after its own M-step, which keeps going
                    // where nothing can switch.
                    (Trouble::Fell, false, _) if variational => break,
                    (Trouble::Fell, false, _) => {
                        estimator.m_step(&stats, &centres, params.reg_covar, &mut mixture, &mut scratch)?;
                        break;
                    }
                    // Redo this iteration exactly, from the iterate its E-step used (for a
                    // variational fall too: its own statistics made the bound fall).
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
            if let Some(p) = pending.take() {
                send(FitEvent::Iteration(p), p.iteration)?;
            }
            if iterates.is_some() && backend.escalation_floor().is_some() {
                pending = Some(progress);
            } else {
                send(FitEvent::Iteration(progress), iter)?;
            }
            if change.abs() < params.tol {
                converged = true;
                break;
            }
            // A tol below the fast arithmetic's noise: the last iterations run exact.
            if let Some(floor) = backend
                .escalation_floor()
                .map(|f| if variational { f * stats.weight_sum } else { f })
                && params.tol < floor
                && change.abs() < floor
            {
                backend.escalate(format!(
                    "the lower bound changed by {change:.2e} at iteration {iter}, below the fast arithmetic's noise ({floor:.1e}) and above tol ({:.1e})",
                    params.tol
                ));
            }
        }
        if let Some(p) = pending.take() {
            send(FitEvent::Iteration(p), p.iteration)?;
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
                prior: estimator.map_prior().cloned(),
                variational: estimator.variational_prior().cloned(),
                log_likelihood,
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
pub(crate) mod tests {
    //! The escalation of a fast arithmetic (GpuPrecision::Auto), driven by a backend that computes
    //! on the CPU but fakes a fast arithmetic: while "fast" it perturbs its first moments by a
    //! relative 1e-9 (so that an iterate shows which arithmetic made it) and can fail one pass.
    //! After a switch the fit must go on from its last good iterate, so it ends bitwise where a fit
    //! that ran exact from that iterate on ends.
    use super::*;
    use crate::backend::{Agree, Output};
    use crate::cpu::CpuBackend;
    use crate::data::DataView;
    use crate::kinds::CovarianceType;
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};

    #[derive(Clone, Copy, Debug, PartialEq)]
    pub(crate) enum Fault {
        /// A NaN log-likelihood.
        NonFinite,
        /// The lower bound falls by a nat (of this backend's own weight).
        Fall,
        /// Statistics whose covariance is not positive definite.
        Singular,
    }

    /// The fast arithmetic's faked rounding: first moments scaled by 1 + FAST_NOISE.
    const FAST_NOISE: f64 = 1e-9;

    pub(crate) struct Flaky<'a> {
        pub inner: CpuBackend<'a>,
        /// The failure of pass `fault_at` (1-based, counted afresh by each initialisation), if
        /// that pass runs fast.
        pub fault: Option<(Fault, usize)>,
        /// The pass from which it runs exact of its own accord (a reference fit's switch).
        pub exact_from: Option<usize>,
        pub passes: usize,
        pub fast: bool,
        /// Whether each initialisation starts fast (`begin_init`), counting its passes afresh.
        pub starts_fast: bool,
        /// Whether it can switch to exact (a rank whose exact kernels cannot be built cannot).
        pub can_switch: bool,
        /// A fake guard's measure: past 1 (after the ranks' agreement), it switches to exact.
        pub measure: f64,
        /// The fast arithmetic's noise in the lower bound.
        pub floor: f64,
        pub switches: Vec<String>,
    }

    impl<'a> Flaky<'a> {
        pub fn new(inner: CpuBackend<'a>, fault: Option<(Fault, usize)>) -> Self {
            Self {
                inner,
                fault,
                exact_from: None,
                passes: 0,
                fast: true,
                starts_fast: true,
                can_switch: true,
                measure: 0.0,
                // Far below any change the tests' iterations make, so only a fault escalates.
                floor: 1e-14,
                switches: Vec::new(),
            }
        }
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
            self.passes += 1;
            if self.exact_from == Some(self.passes) {
                self.fast = false;
            }
            self.inner.em_statistics(mixture, centres, stats)?;
            if !self.fast {
                return Ok(());
            }
            stats.s1.iter_mut().for_each(|v| *v *= 1.0 + FAST_NOISE);
            match self.fault {
                Some((Fault::NonFinite, at)) if at == self.passes => stats.score_sum = f64::NAN,
                Some((Fault::Fall, at)) if at == self.passes => stats.score_sum -= stats.weight_sum,
                Some((Fault::Singular, at)) if at == self.passes => stats.s2.iter_mut().for_each(|v| *v = -1e9),
                _ => {}
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
            self.fast.then_some(self.floor)
        }
        fn begin_init(&mut self) -> Result<(), GmmError> {
            self.fast = self.starts_fast;
            self.passes = 0;
            Ok(())
        }
        fn guard_agreed(&mut self, _: &Mixture, agree: Agree<'_>) -> Result<(), GmmError> {
            if !self.fast {
                return Ok(());
            }
            let mut measure = [self.measure];
            agree(&mut measure);
            if measure[0] > 1.0 {
                self.fast = false;
                self.switches.push(format!("the guard: {}", measure[0]));
            }
            Ok(())
        }
        fn escalate_agreed(&mut self, why: String, agree: Agree<'_>) -> bool {
            if !self.fast {
                return false;
            }
            let mut objects = [if self.can_switch { 0.0 } else { 1.0 }];
            agree(&mut objects);
            if objects[0] != 0.0 {
                return false;
            }
            self.fast = false;
            self.switches.push(why);
            true
        }
        fn arithmetic_code(&self) -> u32 {
            u32::from(self.fast)
        }
    }

    /// Three overlapping 2-D blobs, seeded.
    pub(crate) fn data() -> Vec<f64> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let noise = Normal::new(0.0, 1.0).unwrap();
        let centres = [0.0, 0.0, 2.0, 1.0, -1.0, 2.0];
        (0..600 * 2)
            .map(|i| centres[(i / 2 % 3) * 2 + i % 2] + noise.sample(&mut rng))
            .collect()
    }

    pub(crate) fn params(max_iter: usize, n_init: usize) -> GmmParams {
        GmmParams::builder(3)
            .covariance_type(CovarianceType::Full)
            .tol(0.0)
            .max_iter(max_iter)
            .n_init(n_init)
            .seed(3)
            .build()
            .unwrap()
    }

    /// A fit with `backend` set up by `setup`, from a warm start if given: its outcome, its
    /// switches, its passes, and the iterations the monitor saw.
    fn run(
        setup: impl FnOnce(&mut Flaky),
        max_iter: usize,
        n_init: usize,
        warm: Option<WarmStart>,
    ) -> (FitOutcome, Vec<String>, usize, Vec<Progress>) {
        run_params(setup, &params(max_iter, n_init), warm)
    }

    fn run_params(
        setup: impl FnOnce(&mut Flaky),
        params: &GmmParams,
        warm: Option<WarmStart>,
    ) -> (FitOutcome, Vec<String>, usize, Vec<Progress>) {
        let x = data();
        let view = DataView::from_f64(&x, 2).unwrap();
        let mut backend = Flaky::new(CpuBackend::new(view, None), None);
        setup(&mut backend);
        let mut seen = Vec::new();
        let mut monitor = |e: &FitEvent| {
            if let FitEvent::Iteration(p) = e {
                seen.push(*p);
            }
            ControlFlow::Continue(())
        };
        let outcome = fit(params, &mut backend, None, warm, &mut monitor).unwrap();
        (outcome, backend.switches, backend.passes, seen)
    }

    /// The monitor saw iterations 1..=n of `init` once each, in order, with the bounds the fit
    /// kept, each change measured from the one before (from `start` for the first).
    fn assert_seen_once(seen: &[Progress], outcome: &FitOutcome, start: f64) {
        let iterations: Vec<usize> = seen.iter().map(|p| p.iteration).collect();
        assert_eq!(iterations, (1..=outcome.n_iter).collect::<Vec<_>>());
        let bounds: Vec<f64> = seen.iter().map(|p| p.lower_bound).collect();
        assert_eq!(bounds, outcome.lower_bounds);
        for (i, p) in seen.iter().enumerate() {
            let before = if i == 0 { start } else { seen[i - 1].lower_bound };
            assert_eq!(p.change, p.lower_bound - before, "iteration {}", p.iteration);
        }
    }

    #[test]
    fn without_iterations_the_last_initialisation_is_kept() {
        // scikit-learn keeps an initialisation whose bound is higher, or any while the best is −∞.
        // With max_iter = 0 every bound is −∞, so the model is the last initialisation: the third
        // of three, drawn from the third seed of the fit's generator.
        let params = params(0, 3);
        let (outcome, ..) = run_params(|b| b.fast = false, &params, None);
        let x = data();
        let view = DataView::from_f64(&x, 2).unwrap();
        let mut rng = StdRng::seed_from_u64(params.seed);
        let seeds: Vec<u64> = (0..3).map(|_| rng.random()).collect();
        let init = |seed| {
            initialise(
                &params,
                &mut Estimator::MaximumLikelihood(Default::default()),
                &mut CpuBackend::new(view, None),
                None,
                seed,
            )
            .unwrap()
        };
        let (first, last) = (init(seeds[0]), init(seeds[2]));
        assert_ne!(
            first.means, last.means,
            "the starts must differ for the test to tell them apart"
        );
        assert_eq!(outcome.mixture, last);
        assert_eq!((outcome.n_iter, outcome.lower_bound), (0, f64::NEG_INFINITY));
    }

    #[test]
    fn each_lower_bound_is_the_mean_log_likelihood_of_its_e_step() {
        // Iteration i's bound is the mean log p(x) under the parameters its E-step used: from a
        // warm model, iteration 1's is the model's own, computed here sample by sample.
        let (first, ..) = run(|b| b.fast = false, 3, 1, None);
        let x = data();
        let view = DataView::from_f64(&x, 2).unwrap();
        let mut log_p = vec![0.0; view.n_samples()];
        CpuBackend::new(view, None)
            .per_sample_outputs(&first.mixture, Output::LogProb, &mut log_p)
            .unwrap();
        let mean = crate::stats::pairwise_sum(&log_p) / log_p.len() as f64;
        let warm = WarmStart {
            mixture: &first.mixture,
            lower_bound: first.lower_bound,
        };
        let (next, ..) = run(|b| b.fast = false, 1, 1, Some(warm));
        // The E-step sums in blocks and a tree, this in pairs: 1e-15 relative.
        let rel = (next.lower_bounds[0] - mean).abs() / mean.abs();
        assert!(rel < 1e-15, "{} against {mean}: {rel:e}", next.lower_bounds[0]);
    }

    #[test]
    fn a_failed_pass_is_redone_in_exact_arithmetic_from_the_same_iterate() {
        // Pass 4 fails while fast: iteration 4 is redone exact from the same iterate, so the fit
        // equals one that ran fast for passes 1–3 and exact from pass 4 on.
        let (want, ..) = run(|b| b.exact_from = Some(4), 8, 1, None);
        for fault in [Fault::NonFinite, Fault::Singular] {
            let (escalated, switches, passes, seen) = run(|b| b.fault = Some((fault, 4)), 8, 1, None);
            assert_eq!(switches.len(), 1, "{fault:?}: {switches:?}");
            assert!(switches[0].contains("iteration 4"), "{switches:?}");
            // The failed pass left no trace: bitwise the reference.
            assert_eq!(escalated.lower_bounds, want.lower_bounds, "{fault:?}");
            assert_eq!(escalated.mixture, want.mixture, "{fault:?}");
            assert_eq!((escalated.n_iter, passes), (8, 9), "{fault:?}");
            assert_seen_once(&seen, &escalated, f64::NEG_INFINITY);
        }
    }

    #[test]
    fn a_falling_lower_bound_goes_back_to_the_iterate_before_it() {
        // The fall at pass 4 condemns the M-step of iteration 3, which made iteration 4's
        // parameters: the fit redoes iteration 3 exact from the iterate before that M-step (one
        // pass more, the fallen bound dropped from the history), then runs on to iteration 8. So
        // it equals a fit that ran fast for passes 1–2 and exact from pass 3; redoing iteration 4
        // instead would keep iteration 3's fast M-step, which the noise makes visible.
        let (want, ..) = run(|b| b.exact_from = Some(3), 8, 1, None);
        let (not_back, ..) = run(|b| b.exact_from = Some(4), 8, 1, None);
        assert_ne!(want.mixture, not_back.mixture, "the noise must tell the two apart");
        let (escalated, switches, passes, seen) = run(|b| b.fault = Some((Fault::Fall, 4)), 8, 1, None);
        assert_eq!(switches.len(), 1, "{switches:?}");
        assert!(switches[0].contains("fell"), "{switches:?}");
        assert_eq!(escalated.lower_bounds, want.lower_bounds);
        assert_eq!(escalated.mixture, want.mixture);
        // Two passes more than iterations: the fallen one, and iteration 3's again.
        assert_eq!((escalated.n_iter, passes), (8, 10));
        // Iteration 3 was redone: the monitor saw it once, with its exact bound.
        assert_seen_once(&seen, &escalated, f64::NEG_INFINITY);
    }

    #[test]
    fn a_warm_start_that_falls_at_iteration_2_redoes_iteration_1_against_the_warm_bound() {
        let (first, ..) = run(|b| b.fast = false, 3, 1, None);
        fn warm(o: &FitOutcome) -> WarmStart<'_> {
            WarmStart {
                mixture: &o.mixture,
                lower_bound: o.lower_bound,
            }
        }
        // The warm model is iteration 1's iterate; the fall at pass 2 sends the fit back to it,
        // exact from then on: a warm fit exact throughout.
        let (want, ..) = run(|b| b.exact_from = Some(1), 5, 1, Some(warm(&first)));
        let (escalated, switches, passes, seen) = run(|b| b.fault = Some((Fault::Fall, 2)), 5, 1, Some(warm(&first)));
        assert_eq!(switches.len(), 1, "{switches:?}");
        assert!(switches[0].contains("at iteration 2"), "{switches:?}");
        assert_eq!(escalated.lower_bounds, want.lower_bounds);
        assert_eq!(escalated.mixture, want.mixture);
        assert_eq!((escalated.n_iter, passes), (5, 7));
        // Iteration 1's change is measured from the warm bound (finite), not from -∞.
        assert!(seen[0].change.is_finite(), "{:?}", seen[0]);
        assert_seen_once(&seen, &escalated, first.lower_bound);
    }

    #[test]
    fn a_tol_below_the_fast_noise_finishes_in_exact_arithmetic() {
        let floor = 1e-6;
        let with_tol = |tol: f64| {
            GmmParams::builder(3)
                .covariance_type(CovarianceType::Full)
                .tol(tol)
                .max_iter(300)
                .seed(3)
                .build()
                .unwrap()
        };
        // Where the changes first fall below fast's noise, in a fit that stays fast.
        let (_, _, _, seen) = run_params(
            |b| {
                b.floor = floor;
                b.can_switch = false;
            },
            &with_tol(1e-10),
            None,
        );
        let j = seen.iter().position(|p| p.change.abs() < floor).unwrap() + 1;
        assert!(j > 5, "the changes fall below {floor} at iteration {j}");
        // tol 1e-10 < floor: iteration j escalates, so the fit is fast for passes 1..=j and exact
        // after (to max_iter or tol). No fall: the bound rises all along.
        let (want, ..) = run_params(|b| b.exact_from = Some(j + 1), &with_tol(1e-10), None);
        let (got, switches, passes, seen) = run_params(|b| b.floor = floor, &with_tol(1e-10), None);
        assert_eq!(switches.len(), 1, "{switches:?}");
        assert!(
            switches[0].contains(&format!("at iteration {j}, below the fast arithmetic's noise")),
            "{switches:?}"
        );
        assert!(got.n_iter > j, "{} iterations", got.n_iter);
        assert_eq!(passes, got.n_iter);
        assert_eq!(got.mixture, want.mixture);
        assert_eq!(got.lower_bounds, want.lower_bounds);
        assert_seen_once(&seen, &got, f64::NEG_INFINITY);
        // tol at the floor: fast converges there on its own, with no switch.
        let (at_floor, switches, ..) = run_params(|b| b.floor = floor, &with_tol(floor), None);
        assert!(switches.is_empty() && at_floor.converged, "{switches:?}");
        assert_eq!(at_floor.n_iter, j);
    }

    #[test]
    fn a_fall_at_a_warm_starts_first_iteration_is_not_checked() {
        // Iteration 1 of a warm start has no iterate before it to go back to: a bound below the
        // warm one there (as fast's first pass after an exact fit may give) is kept, not escalated.
        let (first, ..) = run(|b| b.fast = false, 3, 1, None);
        let warm = WarmStart {
            mixture: &first.mixture,
            lower_bound: first.lower_bound,
        };
        let (fell, switches, passes, _) = run(|b| b.fault = Some((Fault::Fall, 1)), 3, 1, Some(warm));
        let (plain, ..) = run(|_| {}, 3, 1, Some(warm));
        assert!(switches.is_empty(), "{switches:?}");
        assert_eq!((fell.n_iter, passes), (3, 3));
        // The fault took a nat off iteration 1's bound (to the rounding of the sum it came off)
        // and nothing else.
        assert!((plain.lower_bounds[0] - fell.lower_bounds[0] - 1.0).abs() < 1e-14);
        assert_eq!(fell.lower_bounds[1..], plain.lower_bounds[1..]);
    }

    #[test]
    fn an_iteration_reaches_the_monitor_late_only_while_it_may_be_redone() {
        // A monitor that stops the fit at iteration 2: an exact backend has run 2 passes by then,
        // and so has a fast one that its guard switched before pass 1; a fast one that may still
        // go back has run 3, since iteration 2 is sent once pass 3 shows that it stands.
        for (fast, measure, want) in [(false, 0.0, 2), (true, 2.0, 2), (true, 0.0, 3)] {
            let x = data();
            let view = DataView::from_f64(&x, 2).unwrap();
            let mut backend = Flaky::new(CpuBackend::new(view, None), None);
            backend.starts_fast = fast;
            backend.measure = measure;
            let mut stop = |e: &FitEvent| match e {
                FitEvent::Iteration(p) if p.iteration == 2 => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            };
            let e = fit(&params(8, 1), &mut backend, None, None, &mut stop).unwrap_err();
            assert!(matches!(e, GmmError::Interrupted { init: 0, iteration: 2 }), "{e:?}");
            assert_eq!(backend.passes, want, "fast {fast}, measure {measure}");
        }
    }

    #[test]
    fn each_initialisation_starts_in_the_fast_arithmetic() {
        // Two initialisations, each failing at its own 4th pass while fast: each escalates (a
        // backend that stayed exact after the first would record one switch), and the fit ends
        // where one that ran exact from each initialisation's 4th pass ends.
        let (want, ..) = run(|b| b.exact_from = Some(4), 8, 2, None);
        let (escalated, switches, ..) = run(|b| b.fault = Some((Fault::NonFinite, 4)), 8, 2, None);
        assert_eq!(switches.len(), 2, "{switches:?}");
        assert!(switches.iter().all(|s| s.contains("iteration 4")), "{switches:?}");
        assert_eq!(escalated.lower_bounds, want.lower_bounds);
        assert_eq!(escalated.mixture, want.mixture);
    }

    #[test]
    fn a_backend_that_cannot_switch_fails_with_the_error_or_goes_on_after_a_fall() {
        let cannot = |fault| {
            move |b: &mut Flaky| {
                b.fault = Some((fault, 4));
                b.can_switch = false;
            }
        };
        let x = data();
        let view = DataView::from_f64(&x, 2).unwrap();
        for (fault, want) in [
            (Fault::NonFinite, "NonFiniteLikelihood { iteration: 4 }"),
            (Fault::Singular, "IllDefinedCovariance"),
        ] {
            let mut backend = Flaky::new(CpuBackend::new(view, None), None);
            cannot(fault)(&mut backend);
            let e = fit(&params(8, 1), &mut backend, None, None, &mut |_| {
                ControlFlow::Continue(())
            })
            .unwrap_err();
            assert!(format!("{e:?}").contains(want), "{fault:?}: {e:?}");
        }
        // A fall is not an error: the fit keeps the fast M-step and goes on, fast, to the end.
        let (fell, switches, passes, seen) = run(cannot(Fault::Fall), 8, 1, None);
        assert!(switches.is_empty(), "{switches:?}");
        assert_eq!((fell.n_iter, passes), (8, 8));
        assert_seen_once(&seen, &fell, f64::NEG_INFINITY);
    }
}
