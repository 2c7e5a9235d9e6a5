//! Evaluation of a trained VAE: disentanglement metrics on μ codes, diversity of generations,
//! reconstruction error, and the pictures of the run folder.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use infobound_data::{
    FactorMatrix, GroundTruthDataset, ImageBatch, ObservationShape, images_to_tensor, save_png_grid,
};
use std::collections::BTreeMap;

use infobound_metrics::{
    CodeMatrix, FactorVaeConfig, FactorVaeResult, MetricName, MetricsError, SuiteInputs,
    VendiConfig, VendiScore, factor_vae_score, pixel_vendi_score, run_suite, sample_train_test,
};
use infobound_models::Vae;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::diagnostics::{
    LatentDiagnostics, authors_traversal_offsets, latent_diagnostics, posterior_traversal_codes,
};
use crate::rng::standard_normal;
use crate::{EvalConfig, RunDir, TrainConfig, TrainError};

/// Headline numbers of one encoder, by the metrics suite's labels (`mig`, `sap_discrete`,
/// `dci.disentanglement`, `snc.test`, ...), for tables.
pub type HeadlineScores = BTreeMap<String, f64>;

/// Everything `metrics.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalReport {
    /// Steps the evaluated model was trained for.
    pub step: usize,
    /// Dataset name.
    pub dataset: String,
    /// Headline numbers of the trained encoder (every metric of `eval.metrics`).
    pub headline: HeadlineScores,
    /// The same numbers for the untrained encoder with the run's initial weights (a floor that
    /// training must clear).
    pub untrained: Option<HeadlineScores>,
    /// Every metric of `eval.metrics` in full, as `infobound_metrics::run_suite` reports it.
    pub metrics: Vec<serde_json::Value>,
    /// FactorVAE score, if enabled.
    pub factor_vae: Option<FactorVaeResult>,
    /// Pixel Vendi score of decoded prior samples z ~ N(0, I).
    pub vendi_prior_samples: VendiScore,
    /// Pixel Vendi score of decoded aggregate-posterior samples z ~ q(z|x), x from the data.
    pub vendi_aggregate_posterior: VendiScore,
    /// Pixel Vendi score of the traversals of the active latents at the authors' ranges.
    pub vendi_active_traversals: TraversalVendi,
    /// The posterior of the aggregate-posterior sample's images (per-latent KL, activity,
    /// aggregate-posterior moments, |corr μ|); absent for fewer than two images.
    pub diagnostics: Option<LatentDiagnostics>,
    /// Mean per-image negative log-likelihood of test reconstructions (the training likelihood).
    pub reconstruction_error: f64,
    /// Wall time of the evaluation in seconds.
    pub eval_seconds: f64,
    /// Wall time of each part of the evaluation in seconds.
    pub timings: Vec<(String, f64)>,
}

/// Diversity of latent traversals: for each base code z = μ(x) + σ(x)·ε of
/// [`TraversalVendi::bases`] data images, the images decoded from z with one active latent k
/// moved to z_k + δ·σ_k(x), δ ∈ `offsets` (the authors' linspace(−25, 25, 11), see
/// [`authors_traversal_offsets`]), scored by the pixel Vendi score; `score` is the mean over the
/// bases. Only active latents are traversed (an inactive one decodes to a constant row, which
/// would score a sparse code low by construction); with none active every traversal is one
/// image and the score is 1. Which latents, the base count and the averaging are our choices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraversalVendi {
    /// Mean of `per_base`.
    pub score: f64,
    /// Pixel Vendi score of each base image's traversals.
    pub per_base: Vec<f64>,
    /// The latents traversed (the active ones).
    pub latents: Vec<usize>,
    /// The offsets δ, in posterior standard deviations.
    pub offsets: Vec<f64>,
    /// Number of base images.
    pub bases: usize,
}

/// Encodes images to μ codes with `vae` on `device` (no autodiff), in batches.
pub fn encode_means(
    vae: &Vae,
    images: &ImageBatch,
    batch_size: usize,
    device: &Device,
) -> Result<CodeMatrix, MetricsError> {
    let shape = images.shape();
    let numel = shape.numel();
    let mut codes = Vec::with_capacity(images.len() * vae.latent_dim());
    for chunk in images.pixels().chunks(batch_size.max(1) * numel) {
        let n = chunk.len() / numel;
        let x = Tensor::<4>::from_data(
            TensorData::new(
                chunk.to_vec(),
                [n, shape.channels, shape.height, shape.width],
            ),
            device,
        );
        let (mu, _) = vae
            .encode(x)
            .map_err(|e| MetricsError::Representation(e.to_string()))?;
        let values: Vec<f32> = mu
            .into_data()
            .try_to_vec()
            .map_err(|e| MetricsError::Representation(format!("{e:?}")))?;
        codes.extend(values.into_iter().map(f64::from));
    }
    CodeMatrix::new(vae.latent_dim(), codes)
}

fn decode_batch(
    vae: &Vae,
    z: Vec<f32>,
    k: usize,
    device: &Device,
) -> Result<ImageBatch, TrainError> {
    let n = z.len() / k;
    let images = vae.decode(Tensor::<2>::from_data(TensorData::new(z, [n, k]), device))?;
    let [_, c, h, w] = images.dims();
    let pixels: Vec<f32> = images
        .into_data()
        .try_to_vec()
        .map_err(|e| TrainError::Config(format!("cannot read decoded images: {e:?}")))?;
    Ok(ImageBatch::new(
        ObservationShape {
            channels: c,
            height: h,
            width: w,
        },
        pixels,
    )?)
}

/// Latent traversal codes: for each latent k one row of `steps` codes equal to `base` except
/// z_k, which goes from −3 to +3 (±3 prior standard deviations).
pub fn traversal_codes(base: &[f32], steps: usize) -> Vec<f32> {
    let k = base.len();
    let mut z = Vec::with_capacity(k * steps * k);
    for dim in 0..k {
        for s in 0..steps {
            let mut code = base.to_vec();
            code[dim] = -3.0 + 6.0 * s as f32 / (steps.max(2) - 1) as f32;
            z.extend(code);
        }
    }
    z
}

/// The codes every metric of [`evaluate`] scores: μ of `num_train` then `num_test` uniformly
/// sampled states (seeded by `config.seed`), with their factor indices. Deterministic, so
/// `infobound eval --export` writes exactly what was scored. Factors that take a single value
/// (dSprites' `color`) carry no information and are left out of the factor matrices, as
/// disentanglement_lib's `dsprites.py` does with its `latent_factor_indices`.
#[allow(clippy::type_complexity)]
pub fn scored_codes(
    vae: &Vae,
    dataset: &dyn GroundTruthDataset,
    config: &EvalConfig,
    device: &Device,
) -> Result<((CodeMatrix, FactorMatrix), (CodeMatrix, FactorMatrix)), TrainError> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut represent = |images: &ImageBatch| encode_means(vae, images, config.batch_size, device);
    let ((train_codes, train_factors), (test_codes, test_factors)) = sample_train_test(
        dataset,
        &mut represent,
        config.num_train,
        config.num_test,
        config.batch_size,
        &mut rng,
    )?;
    let sizes = dataset.factor_space().sizes();
    Ok((
        (train_codes, informative_factors(sizes, &train_factors)?),
        (test_codes, informative_factors(sizes, &test_factors)?),
    ))
}

/// The columns of `factors` whose factor takes more than one value.
fn informative_factors(
    sizes: &[usize],
    factors: &FactorMatrix,
) -> Result<FactorMatrix, TrainError> {
    let keep: Vec<usize> = (0..sizes.len()).filter(|&k| sizes[k] > 1).collect();
    if keep.len() == sizes.len() {
        return Ok(factors.clone());
    }
    let values = factors
        .rows()
        .flat_map(|row| keep.iter().map(|&k| row[k]))
        .collect();
    Ok(FactorMatrix::new(keep.len(), values)?)
}

/// Runs the suite of `config.metrics` on the scored codes of `vae`: the headline numbers and
/// every metric's full result.
fn scores(
    vae: &Vae,
    dataset: &dyn GroundTruthDataset,
    config: &EvalConfig,
    device: &Device,
) -> Result<(HeadlineScores, Vec<serde_json::Value>), TrainError> {
    let ((train_codes, train_factors), (test_codes, test_factors)) =
        scored_codes(vae, dataset, config, device)?;
    let names = config
        .metrics
        .iter()
        .map(|name| name.parse::<MetricName>())
        .collect::<Result<Vec<_>, _>>()?;
    let inputs = SuiteInputs {
        codes: Some(&train_codes),
        factors: Some(&train_factors),
        test_codes: Some(&test_codes),
        test_factors: Some(&test_factors),
        features: None,
        features_a: None,
        features_b: None,
    };
    let report = run_suite(&names, &inputs, config.seed)?;
    let headline = report
        .metrics
        .iter()
        .flat_map(|m| m.headline.iter().cloned())
        .collect();
    let full = report
        .metrics
        .iter()
        .map(|m| serde_json::to_value(m).map_err(|e| TrainError::Config(e.to_string())))
        .collect::<Result<_, _>>()?;
    Ok((headline, full))
}

/// Evaluates `vae` on `dataset` with `train_config.eval` (and its likelihood for the
/// reconstruction error), writes `metrics.json`, `reconstructions.png`,
/// `traversals.png` and `samples.png` into `run`. `untrained` (the run's initial weights), if
/// given, is scored too as the floor to beat. `device` is the device the models live on.
pub fn evaluate(
    vae: &Vae,
    untrained: Option<&Vae>,
    dataset: &dyn GroundTruthDataset,
    train_config: &TrainConfig,
    step: usize,
    device: &Device,
    run: &RunDir,
) -> Result<EvalReport, TrainError> {
    let started = std::time::Instant::now();
    let config = &train_config.eval;
    let likelihood = train_config.model.likelihood;
    let vae = vae.valid();
    let device = device.clone().without_autodiff();
    let mut timings = Vec::new();
    let mut lap = std::time::Instant::now();
    let mut mark = |name: &str, timings: &mut Vec<(String, f64)>| {
        timings.push((name.to_string(), lap.elapsed().as_secs_f64()));
        lap = std::time::Instant::now();
    };
    let (headline_scores, metrics) = scores(&vae, dataset, config, &device)?;
    mark("metrics suite", &mut timings);
    let untrained = match untrained {
        Some(u) => Some(scores(&u.valid(), dataset, config, &device)?.0),
        None => None,
    };
    mark("untrained encoder", &mut timings);
    let factor_vae = if config.factor_vae_score {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x5eed);
        let mut represent =
            |images: &ImageBatch| encode_means(&vae, images, config.batch_size, &device);
        Some(factor_vae_score(
            dataset,
            &mut represent,
            &FactorVaeConfig {
                num_train: config.factor_vae_train_votes,
                num_eval: config.factor_vae_eval_votes,
                num_variance_estimate: config.num_train,
                ..FactorVaeConfig::default()
            },
            &mut rng,
        )?)
    } else {
        None
    };
    mark("factor_vae score", &mut timings);

    let k = vae.latent_dim();
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0xdec0de);
    // Reconstructions: 8 test images over their reconstructions from μ.
    let (_, originals) = dataset.sample(config.batch_size.max(8), &mut rng)?;
    let x = images_to_tensor(&originals, &device);
    let (mu, _) = vae.encode(x.clone())?;
    let logits = vae.decode_logits(mu.clone())?;
    let nll: f32 = likelihood
        .negative_log_likelihood(logits, x, vae.layers())?
        .mean()
        .into_scalar();
    let mu_host = host_values(mu)?;
    let shown = 8;
    let recon = decode_batch(&vae, mu_host[..shown * k].to_vec(), k, &device)?;
    let numel = originals.shape().numel();
    let mut grid = originals.pixels()[..shown * numel].to_vec();
    grid.extend_from_slice(recon.pixels());
    save_png_grid(
        &ImageBatch::new(originals.shape(), grid)?,
        shown,
        &run.file("reconstructions.png"),
    )?;

    // Traversals of the first test image's code, one row per latent.
    let steps = 10;
    let traversals = decode_batch(&vae, traversal_codes(&mu_host[..k], steps), k, &device)?;
    save_png_grid(&traversals, steps, &run.file("traversals.png"))?;

    // Prior samples.
    let z = standard_normal(&mut rng, config.vendi_samples.max(64) * k);
    let samples = decode_batch(&vae, z, k, &device)?;
    let numel = samples.shape().numel();
    save_png_grid(
        &ImageBatch::new(samples.shape(), samples.pixels()[..64 * numel].to_vec())?,
        8,
        &run.file("samples.png"),
    )?;
    let vendi_prior_samples = pixel_vendi_score(&samples, &VendiConfig::default())?;
    // Aggregate-posterior samples: z = μ(x) + σ(x)·ε for data images x, decoded.
    let count = config.vendi_samples.max(2);
    let (_, data) = dataset.sample(count, &mut rng)?;
    let mut posterior = Vec::with_capacity(count * k);
    let mut means = Vec::with_capacity(count * k);
    let mut log_variances = Vec::with_capacity(count * k);
    for start in (0..count).step_by(config.batch_size) {
        let end = (start + config.batch_size).min(count);
        let numel = data.shape().numel();
        let chunk = ImageBatch::new(
            data.shape(),
            data.pixels()[start * numel..end * numel].to_vec(),
        )?;
        let (mu, logvar) = vae.encode(images_to_tensor(&chunk, &device))?;
        let eps = Tensor::<2>::from_data(
            TensorData::new(
                standard_normal(&mut rng, (end - start) * k),
                [end - start, k],
            ),
            &device,
        );
        let z = mu.clone() + (logvar.clone() * 0.5).exp() * eps;
        posterior.extend(host_values(z)?);
        means.extend(host_values(mu)?);
        log_variances.extend(host_values(logvar)?);
    }
    let diagnostics = latent_diagnostics(&means, &log_variances, k);
    let active = diagnostics
        .as_ref()
        .map_or(Vec::new(), |d| d.active.clone());
    let vendi_active_traversals =
        active_traversal_vendi(&vae, &posterior, &log_variances, &active, k, &device)?;
    let posterior_samples = decode_batch(&vae, posterior, k, &device)?;
    let vendi_aggregate_posterior = pixel_vendi_score(&posterior_samples, &VendiConfig::default())?;
    mark("pictures and vendi", &mut timings);

    let report = EvalReport {
        step,
        dataset: dataset.name().to_string(),
        headline: headline_scores,
        untrained,
        metrics,
        factor_vae,
        vendi_prior_samples,
        vendi_aggregate_posterior,
        vendi_active_traversals,
        diagnostics,
        reconstruction_error: nll as f64,
        eval_seconds: started.elapsed().as_secs_f64(),
        timings,
    };
    crate::write_json_atomic(&run.metrics(), &report)?;
    Ok(report)
}

/// The values of a tensor on the host.
fn host_values(t: Tensor<2>) -> Result<Vec<f32>, TrainError> {
    t.into_data()
        .try_to_vec()
        .map_err(|e| TrainError::Config(format!("cannot read codes: {e:?}")))
}

/// Base images of [`TraversalVendi`] (the authors' `metrics.py` traverses 10).
const TRAVERSAL_BASES: usize = 10;

/// [`TraversalVendi`] of the first [`TRAVERSAL_BASES`] posterior samples `z` (row-major
/// `[n, k]`, with their `log_variances`), traversing `active`.
fn active_traversal_vendi(
    vae: &Vae,
    z: &[f32],
    log_variances: &[f32],
    active: &[usize],
    k: usize,
    device: &Device,
) -> Result<TraversalVendi, TrainError> {
    let offsets = authors_traversal_offsets();
    let bases = TRAVERSAL_BASES.min(z.len() / k);
    let mut per_base = Vec::with_capacity(bases);
    for base in 0..bases {
        let code = &z[base * k..(base + 1) * k];
        let sigma: Vec<f32> = log_variances[base * k..(base + 1) * k]
            .iter()
            .map(|lv| (0.5 * lv).exp())
            .collect();
        per_base.push(if active.is_empty() {
            1.0
        } else {
            let codes = posterior_traversal_codes(code, &sigma, active, &offsets);
            let images = decode_batch(vae, codes, k, device)?;
            pixel_vendi_score(&images, &VendiConfig::default())?.score
        });
    }
    let score = if per_base.is_empty() {
        1.0
    } else {
        per_base.iter().sum::<f64>() / per_base.len() as f64
    };
    Ok(TraversalVendi {
        score,
        per_base,
        latents: active.to_vec(),
        offsets,
        bases,
    })
}
