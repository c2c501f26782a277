//! The GPU side of an online fit, kept between batches: the device buffers and bind groups of each
//! batch length seen (made once, then reused by every batch of that length), through which each
//! batch's samples stream; the next batch of a fit over a slice is staged while the device runs
//! this one.

use crate::backend::Backend;
use crate::data::DataView;
use crate::error::GmmError;
use crate::gpu::GpuContext;
use crate::gpu::backend::{GpuBackend, Held};
use crate::kinds::CovarianceType;
use crate::params::GmmParams;

/// Held device objects, one set per batch length (and weighting): a fit over a slice has at most
/// two lengths, its batch size and the last, shorter batch.
#[derive(Default)]
pub(crate) struct OnlineGpu {
    held: Vec<Held>,
    /// How many sets of device objects were made: one per batch length, not one per batch.
    pub(crate) builds: usize,
    /// How many batches were staged while the device ran the batch before.
    pub(crate) staged_ahead: usize,
    /// The model's shape they were made for (a new one starts over).
    shape: Option<(usize, usize, CovarianceType)>,
}

/// At most this many sets are kept (the least recently used goes first).
const KEEP: usize = 2;

impl OnlineGpu {
    /// Runs `step` on a GPU backend over `batch`, on the held objects for its length (made on its
    /// first use); with `next`, that batch is staged while the device runs this one. The objects
    /// go back only if the step succeeds: after a failure they are made again.
    pub(crate) fn run<T>(
        &mut self,
        ctx: &GpuContext,
        params: &GmmParams,
        batch: &DataView,
        sample_weight: Option<&[f64]>,
        next: Option<(&DataView, Option<&[f64]>)>,
        step: impl FnOnce(&mut GpuBackend<'_>) -> Result<T, GmmError>,
    ) -> Result<T, GmmError> {
        let (k, kind) = (params.n_components, params.covariance_type);
        let (n, d) = (batch.n_samples(), batch.n_features());
        if self.shape != Some((k, d, kind)) {
            self.held.clear();
            self.shape = Some((k, d, kind));
        }
        let weighted = sample_weight.is_some();
        let held = match self.held.iter().position(|h| h.n == n && h.weighted == weighted) {
            Some(i) => self.held.remove(i),
            None => {
                self.builds += 1;
                GpuBackend::make_held(ctx, (n, d), k, kind, weighted, params.budget())?
            }
        };
        self.staged_ahead += usize::from(held.is_ahead(batch, sample_weight));
        let mut backend = GpuBackend::on_held(ctx, *batch, k, kind, sample_weight, params.budget(), held)?;
        if let Some((next, w)) = next {
            backend.stage_next(*next, w);
        }
        let out = step(&mut backend)?;
        debug_assert_eq!(backend.n_samples(), n);
        self.held.insert(0, backend.into_held());
        self.held.truncate(KEEP);
        Ok(out)
    }

    /// Forgets any batch staged ahead (the fit that staged it ended): the next step converts its
    /// own batch.
    pub(crate) fn forget_ahead(&mut self, ctx: &GpuContext) -> Result<(), GmmError> {
        for held in &mut self.held {
            held.forget_ahead(ctx)?;
        }
        Ok(())
    }
}

impl Clone for OnlineGpu {
    /// A clone holds no device objects: it makes its own on its first batch.
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl std::fmt::Debug for OnlineGpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnlineGpu")
            .field("batch_lengths", &self.held.iter().map(|h| h.n).collect::<Vec<_>>())
            .field("builds", &self.builds)
            .field("staged_ahead", &self.staged_ahead)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use crate::data::DataView;
    use crate::gpu::backend::{GpuBackend, Source};
    use crate::online::{Online, step_on};
    use crate::{CovarianceType, GaussianMixture, GmmModel, GmmParams};

    /// The fitted parameters and every step's bound, bitwise (the traffic records differ: the held
    /// path streams its samples).
    fn assert_same(a: &GmmModel, b: &GmmModel, what: &str) {
        assert_eq!(a.mixture, b.mixture, "{what}");
        assert_eq!(a.lower_bounds, b.lower_bounds, "{what}");
        assert_eq!(a.n_iter, b.n_iter, "{what}");
    }

    /// 1,100 rows of 2 features around 3 centres, in batches of 300: three full batches and a
    /// short one of 200 per pass.
    fn data() -> (Vec<f64>, Vec<f64>) {
        let x: Vec<f64> = (0..1100 * 2)
            .map(|i| ((i * 7919) % 1000) as f64 / 250.0 + [0.0, 5.0, -3.0][(i / 2) % 3])
            .collect();
        let w: Vec<f64> = (0..1100).map(|i| 0.5 + (i % 4) as f64).collect();
        (x, w)
    }

    /// Held buffers (with each batch staged while the device ran the one before) give bitwise the
    /// model that new buffers per batch give (the path before them: a resident `GpuBackend::new`
    /// per batch), over two passes with a short last batch, weighted or not, for every covariance
    /// type; and the buffers are made once per batch length, not per batch.
    #[test]
    fn held_buffers_give_the_per_batch_model_bitwise() {
        let Some(ctx) = crate::gpu::test_context() else { return };
        let (x, w) = data();
        let view = DataView::from_f64(&x, 2).unwrap();
        for cov in CovarianceType::ALL {
            for weighted in [false, true] {
                let schedule = Online::default().batch_size(300).passes(2);
                let params = GmmParams::builder(3)
                    .covariance_type(cov)
                    .seed(5)
                    .online(schedule)
                    .build()
                    .unwrap();
                // Today's path, spelled out: new buffers (and a resident upload) per batch.
                let mut state = None;
                for _ in 0..2 {
                    for first in (0..1100).step_by(300) {
                        let m = 300.min(1100 - first);
                        let batch = DataView::from_f64(&x[first * 2..(first + m) * 2], 2).unwrap();
                        let bw = weighted.then(|| &w[first..first + m]);
                        let mut backend =
                            GpuBackend::new(&ctx, Source::Host(batch), 3, cov, bw, params.budget()).unwrap();
                        step_on(&params, &schedule, &mut state, &mut backend, bw).unwrap();
                        assert!(!backend.plan.streamed);
                    }
                }
                let fresh = state.unwrap().model();
                let mut gm = GaussianMixture::on_gpu(params.clone(), ctx.clone());
                let held = match weighted {
                    true => gm.fit_weighted(&view, &w).unwrap().clone(),
                    false => gm.fit(&view).unwrap().clone(),
                };
                assert_same(&held, &fresh, &format!("{cov} weighted {weighted}"));
                // Two lengths (300 and the last 200): two sets of buffers for 8 batches; each pass
                // stages its second and third batches ahead (the next batch of the same length).
                assert_eq!(gm.online_gpu.builds, 2, "{cov}");
                assert_eq!(gm.online_gpu.staged_ahead, 4, "{cov}");
                // partial_fit (no batch known ahead) on the same held buffers: the same model.
                let mut stepwise = GaussianMixture::on_gpu(params, ctx.clone());
                for _ in 0..2 {
                    for first in (0..1100).step_by(300) {
                        let m = 300.min(1100 - first);
                        let batch = DataView::from_f64(&x[first * 2..(first + m) * 2], 2).unwrap();
                        match weighted {
                            true => stepwise.partial_fit_weighted(&batch, &w[first..first + m]).unwrap(),
                            false => stepwise.partial_fit(&batch).unwrap(),
                        };
                    }
                }
                assert_same(
                    stepwise.model().unwrap(),
                    &held,
                    &format!("{cov} weighted {weighted}, partial_fit"),
                );
                assert_eq!((stepwise.online_gpu.builds, stepwise.online_gpu.staged_ahead), (2, 0));
                assert_eq!(held.backend(), "gpu");
            }
        }
    }

    /// Ten `partial_fit` calls on batches of one length make the device objects once; a fit of
    /// three passes with a short last batch makes two (one per length), not one per batch.
    #[test]
    fn buffers_are_made_once_per_batch_length() {
        let Some(ctx) = crate::gpu::test_context() else { return };
        let (x, _) = data();
        let params = || {
            GmmParams::builder(3)
                .seed(2)
                .online(Online::default().batch_size(250).passes(3))
                .build()
                .unwrap()
        };
        let mut gm = GaussianMixture::on_gpu(params(), ctx.clone());
        for i in 0..10 {
            let first = (i % 4) * 250;
            gm.partial_fit(&DataView::from_f64(&x[first * 2..(first + 250) * 2], 2).unwrap())
                .unwrap();
            assert_eq!(gm.online_gpu.builds, 1, "batch {i}");
        }
        // 1,100 rows: four batches of 250 and one of 100 per pass, 15 batches.
        let mut gm = GaussianMixture::on_gpu(params(), ctx.clone());
        let view = DataView::from_f64(&x, 2).unwrap();
        assert_eq!(gm.fit(&view).unwrap().n_iter(), 15);
        assert_eq!(gm.online_gpu.builds, 2);
        // Three same-length successors per pass.
        assert_eq!(gm.online_gpu.staged_ahead, 9);
    }
}
