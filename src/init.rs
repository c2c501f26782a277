//! Initialisation, shared by every backend: starting responsibilities by the chosen method, the
//! parameters they imply, then the user's weights, means and precisions on top (as scikit-learn).

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::index;

use crate::backend::Backend;
use crate::error::GmmError;
use crate::kinds::InitMethod;
use crate::kmeans::{SeedSet, kmeans_plusplus, lloyd};
use crate::mixture::Mixture;
use crate::mstep::estimate_moments;
use crate::params::GmmParams;
use crate::stats::SuffStats;

/// The starting mixture for one initialisation, drawn from `seed`.
pub(crate) fn initialise<B: Backend>(
    params: &GmmParams,
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
                // K distinct samples, uniformly among those with positive weight.
                let eligible: Vec<usize> = (0..backend.n_samples())
                    .filter(|&i| sample_weight.is_none_or(|w| w[i] > 0.0))
                    .collect();
                if eligible.len() < k {
                    return Err(GmmError::FewerSamplesThanComponents {
                        n_samples: eligible.len(),
                        n_components: k,
                    });
                }
                let mut picked: Vec<usize> = index::sample(&mut rng, eligible.len(), k)
                    .into_iter()
                    .map(|i| eligible[i])
                    .collect();
                picked.sort_unstable();
                one_point_per_component(&mut stats, picked.iter().map(|&i| sample_weight.map_or(1.0, |w| w[i])));
                let mut rows = vec![0.0; k * d];
                backend.gather_rows(&picked, &mut rows)?;
                rows
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
        estimate_moments(&stats, &centres, params.reg_covar, &mut mix);
        if params.precisions_init.is_none() {
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
