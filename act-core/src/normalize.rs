//! LeRobot's normalisation of ACT's inputs and outputs (`processor/normalize_processor.py`):
//! per feature type a mode (MEAN_STD, MIN_MAX, IDENTITY: `normalization_mapping`, or the
//! processor JSON's `norm_map`), statistics from the processor files or the legacy buffers, and
//! the processor's `eps`. docs/CHECKPOINT.md lists where each statistic is looked up.
use crate::checkpoint::TensorStore;
pub use crate::config::MAX_STD_EPS;
use crate::config::{Config, NormMode};
use crate::error::{config_err, Error, Result};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

/// One feature's normalisation: its mode with the statistics that mode needs.
#[derive(Clone, Debug, PartialEq)]
pub enum FeatureNorm {
    Identity,
    MeanStd { mean: Vec<f32>, std: Vec<f32> },
    MinMax { min: Vec<f32>, max: Vec<f32> },
}

/// All the statistics a policy normalises with.
#[derive(Clone, Debug)]
pub struct Normalization {
    pub state: FeatureNorm,
    /// `Identity` when the model has no environment state.
    pub env: FeatureNorm,
    pub action: FeatureNorm,
    /// One per camera, [3] each, in 0-1 pixel units.
    pub images: Vec<FeatureNorm>,
    /// The normaliser's eps (inputs): `std + eps` divides; a zero min-max range becomes eps.
    pub eps: f32,
    /// The unnormaliser's eps (actions; only a zero min-max range uses it).
    pub action_eps: f32,
}

/// The smallest divisor `std + eps` accepted for state, environment and image statistics: a
/// smaller one turns any input off the mean into 1e10 or more (or infinity). LeRobot's constant
/// dimensions (std 0, eps 1e-8) stay accepted.
pub const MIN_DIVISOR: f32 = 1e-10;
/// LeRobot's default eps.
pub const DEFAULT_EPS: f32 = 1e-8;

const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

impl FeatureNorm {
    /// Element `i` of an input: raw -> normalised.
    #[inline]
    pub fn normalize(&self, i: usize, x: f32, eps: f32) -> f32 {
        match self {
            FeatureNorm::Identity => x,
            FeatureNorm::MeanStd { mean, std } => (x - mean[i]) / (std[i] + eps),
            FeatureNorm::MinMax { min, max } => 2.0 * (x - min[i]) / range(min[i], max[i], eps) - 1.0,
        }
    }

    /// Element `i` of an output: normalised -> raw.
    #[inline]
    pub fn unnormalize(&self, i: usize, y: f32, eps: f32) -> f32 {
        match self {
            FeatureNorm::Identity => y,
            FeatureNorm::MeanStd { mean, std } => y * std[i] + mean[i],
            FeatureNorm::MinMax { min, max } => (y + 1.0) / 2.0 * range(min[i], max[i], eps) + min[i],
        }
    }

    /// Channel `ch` of an image normalisation folded for u8 pixels: normalised = px * scale - shift
    /// (pixels are divided by 255 first, as LeRobot's are).
    pub fn pixel_affine(&self, ch: usize, eps: f32) -> (f32, f32) {
        match self {
            FeatureNorm::Identity => (1.0 / 255.0, 0.0),
            FeatureNorm::MeanStd { mean, std } => (1.0 / (255.0 * (std[ch] + eps)), mean[ch] / (std[ch] + eps)),
            FeatureNorm::MinMax { min, max } => {
                let r = range(min[ch], max[ch], eps);
                (2.0 / (255.0 * r), 2.0 * min[ch] / r + 1.0)
            }
        }
    }

    fn mode(&self) -> NormMode {
        match self {
            FeatureNorm::Identity => NormMode::Identity,
            FeatureNorm::MeanStd { .. } => NormMode::MeanStd,
            FeatureNorm::MinMax { .. } => NormMode::MinMax,
        }
    }
}

/// LeRobot replaces an exactly zero min-max range by eps.
#[inline]
fn range(min: f32, max: f32, eps: f32) -> f32 {
    let r = max - min;
    if r == 0.0 { eps } else { r }
}

/// Where a feature's statistics may be stored, in lookup order: the processor files' key, the same
/// key as LeRobot's migration script spells it (every `_` of the feature name turned into `.`:
/// `observation.images.cam_high` -> `observation.images.cam.high`), then the legacy buffers.
fn prefixes(key: &str, legacy: &[String]) -> Vec<String> {
    let mut v = vec![key.to_string()];
    let migrated = key.replace('_', ".");
    if migrated != key {
        v.push(migrated);
    }
    v.extend(legacy.iter().cloned());
    v
}

fn legacy_input(key: &str) -> Vec<String> {
    vec![format!("normalize_inputs.buffer_{}", key.replace('.', "_"))]
}

/// The two statistics `a` and `b` (e.g. "mean", "std") of the first prefix holding either; both
/// must be there. `None` when no prefix has them.
fn find_pair(store: &TensorStore<'_>, prefixes: &[String], a: &str, b: &str, n: usize) -> Result<Option<(Vec<f32>, Vec<f32>)>> {
    for p in prefixes {
        let (na, nb) = (format!("{p}.{a}"), format!("{p}.{b}"));
        match (store.find_any(&[na.as_str()], &[n])?, store.find_any(&[nb.as_str()], &[n])?) {
            (Some(x), Some(y)) => return Ok(Some((x, y))),
            (None, None) => continue,
            (Some(_), None) => return Err(Error::MissingTensor { name: format!("{nb} (beside {na})") }),
            (None, Some(_)) => return Err(Error::MissingTensor { name: format!("{na} (beside {nb})") }),
        }
    }
    Ok(None)
}

/// A feature's normalisation for `mode`; `None` when its statistics are absent.
fn load_feature(store: &TensorStore<'_>, mode: NormMode, prefixes: &[String], n: usize) -> Result<Option<FeatureNorm>> {
    Ok(match mode {
        NormMode::Identity => Some(FeatureNorm::Identity),
        NormMode::MeanStd => find_pair(store, prefixes, "mean", "std", n)?.map(|(mean, std)| FeatureNorm::MeanStd { mean, std }),
        NormMode::MinMax => find_pair(store, prefixes, "min", "max", n)?.map(|(min, max)| FeatureNorm::MinMax { min, max }),
    })
}

fn required(f: Option<FeatureNorm>, mode: NormMode, key: &str) -> Result<FeatureNorm> {
    let stats = if mode == NormMode::MinMax { "min and max" } else { "mean and std" };
    f.ok_or_else(|| Error::MissingTensor { name: format!("{key}: {stats} statistics ({mode:?} normalisation)") })
}

impl Normalization {
    /// Statistics for every feature per `config.normalization` (docs/CHECKPOINT.md): the
    /// processor files first, then the legacy buffers; eps from `config`'s processor settings,
    /// else the `std_eps` metadata, else LeRobot's 1e-8. Missing image statistics: IDENTITY, as
    /// LeRobot does, except in act-rs's own checkpoints (metadata `format = act-rs` or `std_eps`),
    /// which were trained on ImageNet's.
    pub fn load(store: &TensorStore<'_>, config: &Config) -> Result<Normalization> {
        let map = config.normalization;
        let state_key = "observation.state";
        let state =
            required(load_feature(store, map.state, &prefixes(state_key, &legacy_input(state_key)), config.state_dim)?, map.state, state_key)?;
        let env = match config.env_state_dim {
            0 => FeatureNorm::Identity,
            d => {
                let key = "observation.environment_state";
                required(load_feature(store, map.env, &prefixes(key, &legacy_input(key)), d)?, map.env, key)?
            }
        };
        let action_legacy = ["unnormalize_outputs.buffer_action".to_string(), "normalize_targets.buffer_action".to_string()];
        let action = required(load_feature(store, map.action, &prefixes("action", &action_legacy), config.action_dim)?, map.action, "action")?;
        let act_rs = store.metadata("format") == Some("act-rs") || store.metadata("std_eps").is_some();
        let mut images = Vec::with_capacity(config.cameras.len());
        for cam in &config.cameras {
            let f = load_feature(store, map.visual, &prefixes(&cam.key, &legacy_input(&cam.key)), 3)?;
            images.push(match f {
                Some(f) => f,
                None if act_rs && map.visual == NormMode::MeanStd => {
                    FeatureNorm::MeanStd { mean: IMAGENET_MEAN.to_vec(), std: IMAGENET_STD.to_vec() }
                }
                None => FeatureNorm::Identity,
            });
        }
        let metadata_eps = match store.metadata("std_eps") {
            Some(s) => Some(
                s.trim()
                    .parse::<f32>()
                    .ok()
                    .filter(|e| (0.0..=MAX_STD_EPS).contains(e))
                    .ok_or_else(|| config_err("std_eps", format!("`{s}` is not a number in 0..={MAX_STD_EPS}")))?,
            ),
            None => None,
        };
        let eps = config.processor.eps.or(metadata_eps).unwrap_or(DEFAULT_EPS);
        let action_eps = config.postprocessor.eps.or(metadata_eps).unwrap_or(DEFAULT_EPS);
        let norm = Normalization { state, env, action, images, eps, action_eps };
        norm.validate(config)?;
        Ok(norm)
    }

    /// Every statistic within its documented range (docs/CHECKPOINT.md).
    fn validate(&self, config: &Config) -> Result<()> {
        let bad = |name: String, reason: String| Err(Error::BadStatistic { name, reason });
        let eps = self.eps;
        let mut inputs: Vec<(String, &FeatureNorm)> = vec![("observation.state".into(), &self.state)];
        if config.env_state_dim > 0 {
            inputs.push(("observation.environment_state".into(), &self.env));
        }
        for (cam, f) in config.cameras.iter().zip(&self.images) {
            inputs.push((cam.key.clone(), f));
        }
        for (key, f) in inputs.iter().map(|(k, f)| (k.as_str(), *f)).chain([("action", &self.action)]) {
            match f {
                FeatureNorm::Identity => {}
                FeatureNorm::MeanStd { std, .. } => {
                    for (i, &v) in std.iter().enumerate() {
                        if v < 0.0 {
                            return bad(format!("{key}.std"), format!("std[{i}] = {v} is negative"));
                        }
                        // Actions are multiplied by std, inputs divided by std + eps.
                        if key != "action" && v + eps < MIN_DIVISOR {
                            return bad(
                                format!("{key}.std"),
                                format!("std[{i}] + eps = {v} + {eps} is below {MIN_DIVISOR}: normalising would divide by (almost) zero"),
                            );
                        }
                    }
                }
                FeatureNorm::MinMax { min, max } => {
                    if let Some(i) = (0..min.len()).find(|&i| max[i] < min[i]) {
                        return bad(format!("{key}.max"), format!("max[{i}] = {} is below min[{i}] = {}", max[i], min[i]));
                    }
                    let e = if key == "action" { self.action_eps } else { eps };
                    if let Some(i) = (0..min.len()).find(|&i| !(max[i] - min[i]).is_finite() || (key != "action" && range(min[i], max[i], e) < MIN_DIVISOR)) {
                        return bad(format!("{key}.max"), format!("the range max[{i}] - min[{i}] is not finite or below {MIN_DIVISOR}"));
                    }
                }
            }
        }
        for (cam, f) in config.cameras.iter().zip(&self.images) {
            if let FeatureNorm::MeanStd { std, .. } = f
                && let Some(i) = std.iter().position(|&v| v <= 0.0)
            {
                return bad(format!("{}.std", cam.key), format!("std[{i}] = {} is not positive", std[i]));
            }
            // The folded per-channel factors the image normalisation applies.
            if let Some(i) = (0..3).find(|&i| {
                let (scale, shift) = f.pixel_affine(i, eps);
                !scale.is_finite() || !shift.is_finite()
            }) {
                return bad(format!("{}.{}", cam.key, if f.mode() == NormMode::MinMax { "min" } else { "mean" }), format!("channel {i}: the folded normalisation overflows f32"));
            }
        }
        Ok(())
    }
}
