//! Initialisation, shared by every backend: starting responsibilities by the chosen method, the
//! parameters they imply, then the user's weights, means and precisions on top (as scikit-learn).

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::index;

use crate::backend::Backend;
use crate::error::GmmError;
use crate::estimator::Estimator;
use crate::kinds::InitMethod;
use crate::kmeans::{SeedSet, kmeans_plusplus, lloyd};
use crate::mixture::Mixture;
use crate::mstep::{NK_EPS, estimate_moments};
use crate::params::GmmParams;
use crate::prior::map::map_moments;
use crate::stats::SuffStats;

/// The starting mixture for one initialisation, drawn from `seed`.
pub(crate) fn initialise<B: Backend>(
    params: &GmmParams,
    estimator: &mut Estimator,
    backend: &mut B,
    sample_weight: Option<&[f64]>,
    seed: u64,
) -> Result<Mixture, GmmError> {
    let (k, d, cov) = (params.n_components, backend.n_features(), params.covariance_type);
    let mut mix = Mixture::zeros(cov, k, d);
    let mut scratch = vec![0.0; d * d];
    // With all three given, no responsibilities are needed (scikit-learn skips them too).
    let all_given = params.weights_init.is_some() && params.means_init.is_some() && params.precisions_init.is_some();
    if !all_given {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut stats = SuffStats::new(cov, k, d);
        let centres = match params.init_method {
            InitMethod::KMeans => {
                let seeds = SeedSet::gather(backend, sample_weight, &mut rng)?;
                let mut centroids = seed_rows(&seeds, &kmeans_plusplus(&seeds, k, &mut rng));
                let iters = lloyd(backend, &mut centroids, k, d, seeds.mean_variance())?;
                log::debug!("k-means initialisation: {iters} Lloyd iterations");
                backend.label_statistics(&centroids, &mut stats)?;
                centroids
            }
            InitMethod::KMeansPlusPlus => {
                let seeds = SeedSet::gather(backend, sample_weight, &mut rng)?;
                let picked = kmeans_plusplus(&seeds, k, &mut rng);
                one_point_per_component(&mut stats, picked.iter().map(|&i| seeds.weights[i]));
                seed_rows(&seeds, &picked)
            }
            InitMethod::RandomFromData => {
                // K distinct samples, uniformly among those with positive weight (over every
                // rank: the backend maps the draw's positions in their list to rows, in order).
                let eligible = backend.positive_count(sample_weight);
                if eligible < k {
                    return Err(GmmError::FewerSamplesThanComponents {
                        n_samples: eligible,
                        n_components: k,
                    });
                }
                let mut positions = index::sample(&mut rng, eligible, k).into_vec();
                positions.sort_unstable();
                let (picked, weights) = backend.positive_rows(sample_weight, &positions);
                one_point_per_component(&mut stats, weights.into_iter());
                let mut rows = vec![0.0; k * d];
                backend.gather_rows(&picked, &mut rows)?;
                rows
            }
            InitMethod::Responsibilities => {
                // As the random start: the first pass finds the means, the second centres on them.
                let given = params
                    .init_given
                    .as_ref()
                    .ok_or(GmmError::InitResponsibilitiesMissing)?;
                let zeros = vec![0.0; k * d];
                backend.given_statistics(given, sample_weight, &zeros, &mut stats)?;
                // An empty column has mean 0, as scikit-learn (its n_k is 10·eps).
                let means: Vec<f64> = (0..k * d).map(|i| stats.s1[i] / (stats.s0[i / d] + NK_EPS)).collect();
                backend.given_statistics(given, sample_weight, &means, &mut stats)?;
                means
            }
            InitMethod::Random => {
                // Two passes: the first finds each component's mean, the second centres the moments on it.
                let random_seed = rand::RngExt::random::<u64>(&mut rng);
                let zeros = vec![0.0; k * d];
                backend.random_statistics(random_seed, &zeros, &mut stats)?;
                let mut means = vec![0.0; k * d];
                for c in 0..k {
                    for j in 0..d {
                        means[c * d + j] = stats.s1[c * d + j] / stats.s0[c];
                    }
                }
                backend.random_statistics(random_seed, &means, &mut stats)?;
                means
            }
        };
        // A MAP fit starts from the MAP step of these responsibilities, as mclust's me* does; a
        // variational one from the variational step, as scikit-learn's _initialize.
        match estimator {
            Estimator::Variational { .. } => {
                estimator.m_step(&stats, &centres, params.reg_covar, &mut mix, &mut scratch)?;
            }
            Estimator::Map(p) => map_moments(&stats, &centres, p, params.reg_covar, &mut mix),
            Estimator::MaximumLikelihood(_) => estimate_moments(&stats, &centres, params.reg_covar, &mut mix),
        }
        if params.precisions_init.is_none() && !estimator.is_variational() {
            mix.set_precisions_from_covariances(&mut scratch)?;
        }
    }
    if let Some(w) = &params.weights_init {
        mix.weights.copy_from_slice(w);
    }
    if let Some(m) = &params.means_init {
        mix.means.copy_from_slice(m);
    }
    if let Some((factors, _)) = &params.precisions_init {
        mix.precisions_cholesky.copy_from_slice(factors);
        mix.set_covariances_from_precisions(&mut scratch);
    }
    mix.refresh();
    Ok(mix)
}

/// The chosen seed rows, row-major.
fn seed_rows(seeds: &SeedSet, picked: &[usize]) -> Vec<f64> {
    let d = seeds.n_features;
    picked
        .iter()
        .flat_map(|&i| seeds.points[i * d..(i + 1) * d].iter().copied())
        .collect()
}

/// Statistics of hard responsibilities that give each component exactly one point, taken as its
/// centre: S0 = that point's weight, and no spread (the covariance is then reg_covar·I).
fn one_point_per_component(stats: &mut SuffStats, weights: impl Iterator<Item = f64>) {
    stats.clear();
    for (s0, w) in stats.s0.iter_mut().zip(weights) {
        *s0 = w;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::CpuBackend;
    use crate::data::DataView;
    use crate::kinds::CovarianceType;
    use rand::RngExt;

    const K: usize = 3;
    const D: usize = 2;

    /// Seeded rows: three blobs, on integer multiples of 1/1024 (so that shifting them by a large
    /// offset is exact), and weights in [0.5, 2).
    fn data(n: usize) -> (Vec<f64>, Vec<f64>) {
        let mut rng = StdRng::seed_from_u64(17);
        let x = (0..n * D)
            .map(|i| (((i % (K * D)) as f64 * 3.0 + rng.random::<f64>() * 4.0 - 2.0) * 1024.0).round() / 1024.0)
            .collect();
        let w = (0..n).map(|_| 0.5 + 1.5 * rng.random::<f64>()).collect();
        (x, w)
    }

    fn init(params: GmmParams, x: &[f64], w: Option<&[f64]>) -> Result<Mixture, GmmError> {
        let view = DataView::from_f64(x, D).unwrap();
        initialise(
            &params,
            &mut Estimator::MaximumLikelihood(Default::default()),
            &mut CpuBackend::new(view, w),
            w,
            9,
        )
    }

    fn builder() -> crate::params::GmmParamsBuilder {
        GmmParams::builder(K)
            .covariance_type(CovarianceType::Full)
            .reg_covar(1e-6)
    }

    #[test]
    fn one_given_parameter_replaces_only_itself() {
        // scikit-learn skips the data only when weights, means and precisions are all given: with
        // one of them given, the other two are the data's, exactly as without it.
        let (x, w) = data(120);
        let plain = init(builder().build().unwrap(), &x, Some(&w)).unwrap();
        let weights = vec![0.5, 0.25, 0.25];
        let means = vec![1.0, -1.0, 2.0, 0.0, 4.0, 4.0];
        let eye = [1.0, 0.0, 0.0, 1.0].repeat(K);
        let given_w = init(builder().weights_init(weights.clone()).build().unwrap(), &x, Some(&w)).unwrap();
        assert_eq!(
            (&given_w.weights, &given_w.means, &given_w.covariances),
            (&weights, &plain.means, &plain.covariances)
        );
        let given_m = init(builder().means_init(means.clone()).build().unwrap(), &x, Some(&w)).unwrap();
        assert_eq!(
            (&given_m.weights, &given_m.means, &given_m.covariances),
            (&plain.weights, &means, &plain.covariances)
        );
        let given_p = init(builder().precisions_init(eye.clone()).build().unwrap(), &x, Some(&w)).unwrap();
        assert_eq!(
            (&given_p.weights, &given_p.means, &given_p.covariances),
            (&plain.weights, &plain.means, &eye)
        );
    }

    #[test]
    fn single_rows_weigh_what_their_sample_weights_say() {
        // k-means++ and random-from-data start each component on one row: its weight is that row's
        // sample weight (+ 10·eps) over the picked rows' total, and its covariance reg_covar·I.
        let (x, w) = data(90);
        for method in [InitMethod::KMeansPlusPlus, InitMethod::RandomFromData] {
            let mix = init(builder().init_method(method).build().unwrap(), &x, Some(&w)).unwrap();
            let picked: Vec<f64> = mix
                .means
                .chunks(D)
                .map(|m| {
                    let row = x.chunks(D).position(|r| r == m).expect("a mean that is not a row");
                    w[row] + NK_EPS
                })
                .collect();
            let total: f64 = picked.iter().sum();
            let want: Vec<f64> = picked.iter().map(|p| p / total).collect();
            assert_eq!(mix.weights, want, "{method:?}");
            assert_eq!(mix.covariances, [1e-6, 0.0, 0.0, 1e-6].repeat(K), "{method:?}");
        }
    }

    #[test]
    fn random_from_data_picks_only_rows_with_weight() {
        // Nine rows in ten weigh nothing: every starting mean must still be a row that weighs.
        let (x, mut w) = data(200);
        w.iter_mut()
            .enumerate()
            .filter(|(i, _)| i % 10 != 3)
            .for_each(|(_, v)| *v = 0.0);
        for seed in 0..8 {
            let params = builder().init_method(InitMethod::RandomFromData).build().unwrap();
            let view = DataView::from_f64(&x, D).unwrap();
            let mix = initialise(
                &params,
                &mut Estimator::MaximumLikelihood(Default::default()),
                &mut CpuBackend::new(view, Some(&w)),
                Some(&w),
                seed,
            )
            .unwrap();
            for m in mix.means.chunks(D) {
                let row = x.chunks(D).position(|r| r == m).unwrap();
                assert!(w[row] > 0.0, "seed {seed}: row {row} weighs nothing");
            }
        }
    }

    #[test]
    fn random_from_data_needs_k_rows_with_weight() {
        let (x, mut w) = data(40);
        w.iter_mut().skip(K).for_each(|v| *v = 0.0);
        // Exactly K rows weigh: each is a starting mean.
        let params = builder().init_method(InitMethod::RandomFromData).build().unwrap();
        let mix = init(params.clone(), &x, Some(&w)).unwrap();
        assert_eq!(mix.means, x[..K * D]);
        // One fewer is an error that counts them.
        w[K - 1] = 0.0;
        match init(params, &x, Some(&w)) {
            Err(GmmError::FewerSamplesThanComponents {
                n_samples,
                n_components,
            }) => {
                assert_eq!((n_samples, n_components), (K - 1, K));
            }
            other => panic!("expected FewerSamplesThanComponents, got {other:?}"),
        }
    }

    #[test]
    fn random_init_centres_its_moments_far_from_the_origin() {
        // Random responsibilities depend on the row, not its value, so data moved by (1e8, −3e7)
        // must start with the same covariances. That holds only if the second pass is centred on
        // each component's own means: moments about the origin would cancel 1e16 against 1.
        let (x, _) = data(500);
        let offset = [1e8, -3e7];
        let far: Vec<f64> = x.iter().enumerate().map(|(i, v)| v + offset[i % D]).collect();
        let params = builder().init_method(InitMethod::Random).build().unwrap();
        let near_mix = init(params.clone(), &x, None).unwrap();
        let far_mix = init(params, &far, None).unwrap();
        assert_eq!(near_mix.weights, far_mix.weights);
        for (i, (n, f)) in near_mix.means.iter().zip(&far_mix.means).enumerate() {
            // The means of values ~1e8 carry their sums' rounding: 7.4e-9 seen, half an ulp of 1e8;
            // 5 ulps allowed.
            assert!((f - offset[i % D] - n).abs() < 7.5e-8, "mean {i}: {n} vs {f}");
        }
        for (i, (n, f)) in near_mix.covariances.iter().zip(&far_mix.covariances).enumerate() {
            // 2.9e-16 seen: the centred sums round as near the origin. Moments about the origin would
            // be off by ~1e16·eps, about 1.
            assert!(
                (n - f).abs() < 3e-15 * n.abs().max(1.0),
                "covariance value {i}: {n} vs {f}"
            );
        }
    }
}
