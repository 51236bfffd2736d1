//! Reading checkpoints: safetensors files parsed from byte slices, tensor names normalised to
//! LeRobot's layout (original-ACT names mapped per ACT_SPEC.md section 3), dtypes widened to f32,
//! and the normalisation statistics found wherever the checkpoint form keeps them.
use crate::error::{Error, Result};
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use half::{bf16, f16};
use safetensors::{Dtype, SafeTensorError, SafeTensors};

/// The safetensors files of one checkpoint, in lookup order, with a name index.
pub struct TensorStore<'a> {
    files: Vec<SafeTensors<'a>>,
    /// Canonical model key (no `model.` prefix, LeRobot names) -> (file, name in file).
    model_keys: BTreeMap<String, (usize, String)>,
    /// Metadata of the first file.
    metadata: BTreeMap<String, String>,
}

fn parse_error(e: SafeTensorError, which: &str) -> Error {
    match e {
        SafeTensorError::HeaderTooSmall | SafeTensorError::InvalidHeaderLength | SafeTensorError::MetadataIncompleteBuffer => {
            Error::Truncated { what: format!("{which}: {e}") }
        }
        other => Error::BadHeader { what: format!("{which}: {other}") },
    }
}

/// Original-ACT prefixes (after any `model.`) and their LeRobot names. Order matters: the
/// longer `input_proj_robot_state.` before `input_proj.`, CVAE `encoder.` after `transformer.encoder.`.
const ORIGINAL_NAMES: &[(&str, &str)] = &[
    ("backbones.0.0.body.", "backbone."),
    ("transformer.encoder.", "encoder."),
    ("transformer.decoder.", "decoder."),
    ("query_embed.", "decoder_pos_embed."),
    ("additional_pos_embed.", "encoder_1d_feature_pos_embed."),
    ("latent_out_proj.", "encoder_latent_input_proj."),
    ("input_proj_robot_state.", "encoder_robot_state_input_proj."),
    ("input_proj.", "encoder_img_feat_input_proj."),
    ("encoder.", "vae_encoder."),
    ("cls_embed.", "vae_encoder_cls_embed."),
    ("encoder_joint_proj.", "vae_encoder_robot_state_input_proj."),
    ("encoder_action_proj.", "vae_encoder_action_input_proj."),
    ("latent_proj.", "vae_encoder_latent_output_proj."),
    ("pos_table", "vae_encoder_pos_enc"),
];

fn is_stats_key(name: &str) -> bool {
    name.starts_with("normalize_inputs.") || name.starts_with("normalize_targets.") || name.starts_with("unnormalize_outputs.")
}

impl<'a> TensorStore<'a> {
    /// Parse the given safetensors buffers (the first one holds the model weights).
    pub fn parse(buffers: &[(&'a [u8], &str)]) -> Result<TensorStore<'a>> {
        let mut files = Vec::with_capacity(buffers.len());
        let mut metadata = BTreeMap::new();
        for (i, (bytes, which)) in buffers.iter().enumerate() {
            let st = SafeTensors::deserialize(bytes).map_err(|e| parse_error(e, which))?;
            if i == 0 {
                let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| parse_error(e, which))?;
                if let Some(m) = meta.metadata() {
                    for (k, v) in m.iter() {
                        metadata.insert(k.clone(), v.clone());
                    }
                }
            }
            files.push(st);
        }
        let mut model_keys = BTreeMap::new();
        if let Some(first) = files.first() {
            let names = first.names();
            let stripped = |n: &str| -> String { n.strip_prefix("model.").unwrap_or(n).to_string() };
            let original = names.iter().any(|n| {
                let s = stripped(n);
                s.starts_with("transformer.") || s.starts_with("backbones.")
            });
            // Sorted: the header's JSON object comes back in hash order, and a duplicate must be
            // reported the same way on every run.
            let mut names = names;
            names.sort_unstable();
            for name in names {
                if is_stats_key(name) {
                    continue;
                }
                let mut key = stripped(name);
                if let Some((from, to)) = ORIGINAL_NAMES.iter().find(|(from, _)| original && key.starts_with(from)) {
                    key = format!("{to}{}", &key[from.len()..]);
                }
                if let Some((_, first)) = model_keys.insert(key, (0, name.to_string())) {
                    return Err(Error::DuplicateTensor { first, second: name.to_string() });
                }
            }
        }
        Ok(TensorStore { files, model_keys, metadata })
    }

    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(String::as_str)
    }

    /// A model tensor by its canonical (LeRobot, un-prefixed) key, checked against `shape`.
    pub fn model(&self, key: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let (file, name) = self.model_keys.get(key).ok_or_else(|| Error::MissingTensor { name: format!("model.{key}") })?;
        self.read(*file, name, shape)
    }

    /// Whether a model tensor exists.
    pub fn has_model(&self, key: &str) -> bool {
        self.model_keys.contains_key(key)
    }

    /// The first of `names` found in any file, checked against `shape`; `None` if none exists.
    pub fn find_any(&self, names: &[&str], shape: &[usize]) -> Result<Option<Vec<f32>>> {
        for name in names {
            for (i, f) in self.files.iter().enumerate() {
                if f.tensor(name).is_ok() {
                    return self.read(i, name, shape).map(Some);
                }
            }
        }
        Ok(None)
    }

    fn read(&self, file: usize, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let view = self.files[file].tensor(name).map_err(|_| Error::MissingTensor { name: name.to_string() })?;
        // A [n] tensor is accepted where [n, 1, 1] (or vice versa) is expected: only the
        // element order matters, and LeRobot's image statistics are stored as [3, 1, 1].
        let squeeze = |s: &[usize]| s.iter().copied().filter(|&d| d != 1).collect::<Vec<_>>();
        if view.shape() != shape && squeeze(view.shape()) != squeeze(shape) {
            return Err(Error::ShapeMismatch { name: name.to_string(), expected: shape.to_vec(), found: view.shape().to_vec() });
        }
        let bytes = view.data();
        let out: Vec<f32> = match view.dtype() {
            Dtype::F32 => bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            Dtype::F16 => bytes.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            Dtype::BF16 => bytes.chunks_exact(2).map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            other => return Err(Error::UnsupportedDtype { name: name.to_string(), dtype: format!("{other:?}") }),
        };
        if out.iter().any(|v| !v.is_finite()) {
            return Err(Error::NonFiniteWeight { name: name.to_string() });
        }
        Ok(out)
    }
}

/// Mean and std of one normalised quantity, with the divisor `std + eps` precomputed as `1/(std+eps)`.
#[derive(Clone, Debug)]
pub struct Stats {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

/// All the statistics a policy normalises with.
#[derive(Clone, Debug)]
pub struct Normalization {
    pub state: Stats,
    pub action: Stats,
    /// One per camera, [3] each.
    pub images: Vec<Stats>,
    pub std_eps: f32,
}

/// The smallest divisor `std + eps` accepted for state and image statistics: a smaller one turns
/// any input off the mean into 1e10 or more (or infinity), which no trained network expects.
/// LeRobot's constant dimensions (std 0, eps 1e-8) stay accepted.
pub const MIN_DIVISOR: f32 = 1e-10;
/// The largest `std_eps` accepted: LeRobot uses 1e-8, act-train 0; a large eps flattens every
/// normalised input towards zero.
pub const MAX_STD_EPS: f32 = 1e-2;

const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

fn stats_pair(store: &TensorStore<'_>, legacy: &[&str], processor: &str, n: usize) -> Result<Option<Stats>> {
    let names = |suffix: &str| -> Vec<String> {
        let mut v: Vec<String> = legacy.iter().map(|l| format!("{l}.{suffix}")).collect();
        v.push(format!("{processor}.{suffix}"));
        v
    };
    let mean_names = names("mean");
    let std_names = names("std");
    let mean = store.find_any(&as_refs(&mean_names), &[n])?;
    let std = store.find_any(&as_refs(&std_names), &[n])?;
    fn as_refs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    match (mean, std) {
        (Some(mean), Some(std)) => Ok(Some(Stats { mean, std })),
        (None, None) => Ok(None),
        _ => Err(Error::MissingTensor { name: format!("{processor}: mean and std must both be present") }),
    }
}

impl Normalization {
    /// Statistics from the legacy LeRobot buffers or the processor files (docs/CHECKPOINT.md).
    pub fn load(store: &TensorStore<'_>, config: &crate::Config) -> Result<Normalization> {
        let state = stats_pair(store, &["normalize_inputs.buffer_observation_state"], "observation.state", config.state_dim)?
            .ok_or_else(|| Error::MissingTensor { name: "normalize_inputs.buffer_observation_state.mean (state statistics)".into() })?;
        let action = stats_pair(
            store,
            &["unnormalize_outputs.buffer_action", "normalize_targets.buffer_action"],
            "action",
            config.action_dim,
        )?
        .ok_or_else(|| Error::MissingTensor { name: "unnormalize_outputs.buffer_action.mean (action statistics)".into() })?;
        let mut images = Vec::with_capacity(config.cameras.len());
        for cam in &config.cameras {
            let legacy = format!("normalize_inputs.buffer_observation_images_{}", cam.name);
            let processor = format!("observation.images.{}", cam.name);
            let s = stats_pair(store, &[legacy.as_str()], &processor, 3)?
                .unwrap_or_else(|| Stats { mean: IMAGENET_MEAN.to_vec(), std: IMAGENET_STD.to_vec() });
            images.push(s);
        }
        let std_eps = match store.metadata("std_eps") {
            Some(s) => s
                .trim()
                .parse::<f32>()
                .ok()
                .filter(|e| (0.0..=MAX_STD_EPS).contains(e))
                .ok_or_else(|| crate::error::config_err("std_eps", format!("`{s}` is not a number in 0..={MAX_STD_EPS}")))?,
            None => 1e-8,
        };
        let norm = Normalization { state, action, images, std_eps };
        norm.validate(config)?;
        Ok(norm)
    }

    /// Every statistic within its documented range (docs/CHECKPOINT.md): stds non-negative,
    /// state and image divisors `std + eps` at least `MIN_DIVISOR`, image stds positive.
    fn validate(&self, config: &crate::Config) -> Result<()> {
        let bad = |name: String, reason: String| Err(Error::BadStatistic { name, reason });
        let eps = self.std_eps;
        let mut checks: Vec<(String, &Stats, bool)> =
            vec![("observation.state.std".into(), &self.state, true), ("action.std".into(), &self.action, false)];
        for (cam, s) in config.cameras.iter().zip(&self.images) {
            checks.push((format!("observation.images.{}.std", cam.name), s, true));
        }
        for (name, s, divides) in checks {
            for (i, &v) in s.std.iter().enumerate() {
                if v < 0.0 {
                    return bad(name, format!("std[{i}] = {v} is negative"));
                }
                if divides && v + eps < MIN_DIVISOR {
                    return bad(name, format!("std[{i}] + eps = {v} + {eps} is below {MIN_DIVISOR}: normalising would divide by (almost) zero"));
                }
            }
        }
        for (cam, s) in config.cameras.iter().zip(&self.images) {
            if let Some(i) = s.std.iter().position(|&v| v <= 0.0) {
                return bad(format!("observation.images.{}.std", cam.name), format!("std[{i}] = {} is not positive", s.std[i]));
            }
            // The folded per-channel shift mean / (std + eps) the image normalisation subtracts.
            if let Some(i) = (0..3).find(|&i| !(s.mean[i] / (s.std[i] + eps)).is_finite()) {
                return bad(format!("observation.images.{}.mean", cam.name), format!("mean[{i}] / (std + eps) overflows f32"));
            }
        }
        Ok(())
    }
}
