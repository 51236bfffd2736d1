//! The model blueprint, parsed from LeRobot's ACT `config.json` (ACT_SPEC.md section 3).
use crate::error::{config_err, Result};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// One camera: its input feature key (`observation.images.<cam>`, or another VISUAL feature such
/// as PushT's `observation.image`), its name (`<cam>`; `image` for `observation.image`) and image size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Camera {
    pub key: String,
    pub name: String,
    pub height: usize,
    pub width: usize,
}

/// How LeRobot normalises one kind of feature (`normalization_mapping` in config.json, `norm_map`
/// in the normaliser processor's JSON).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormMode {
    /// `(x - mean) / (std + eps)`; inverse `y * std + mean`.
    MeanStd,
    /// `2 (x - min) / (max - min) - 1` (a zero range replaced by eps); inverse
    /// `(y + 1) / 2 (max - min) + min`.
    MinMax,
    /// Unchanged.
    Identity,
}

/// The mode per feature type. LeRobot's default: MEAN_STD for VISUAL, STATE and ACTION; a type the
/// mapping does not name (ENV by default) is IDENTITY.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NormMapping {
    pub visual: NormMode,
    pub state: NormMode,
    pub env: NormMode,
    pub action: NormMode,
}

impl Default for NormMapping {
    fn default() -> NormMapping {
        NormMapping { visual: NormMode::MeanStd, state: NormMode::MeanStd, env: NormMode::Identity, action: NormMode::MeanStd }
    }
}

/// The largest normalisation eps accepted (config `std_eps` metadata, processor JSON `eps`):
/// LeRobot uses 1e-8, act-train 0; a large eps flattens every normalised input towards zero.
pub const MAX_STD_EPS: f32 = 1e-2;

/// The parts of LeRobot's processor JSON (`policy_preprocessor.json`, `policy_postprocessor.json`)
/// act-core uses: the (un)normaliser step's `eps` and `norm_map`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcessorSettings {
    pub eps: Option<f32>,
    pub norm_map: Option<NormMapping>,
}

impl ProcessorSettings {
    /// Reads the normaliser or unnormaliser step of a processor JSON (`which` names the file in
    /// errors); a pipeline without one gives empty settings.
    pub fn from_json(text: &str, which: &str) -> Result<ProcessorSettings> {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| config_err(which, e.to_string()))?;
        let steps = v.get("steps").and_then(|s| s.as_array()).ok_or_else(|| config_err(which, "no `steps` array"))?;
        let step = steps.iter().find(|s| {
            let name = s.get("registry_name").or_else(|| s.get("class")).and_then(|n| n.as_str()).unwrap_or("");
            name.contains("normalizer_processor") || name.contains("NormalizerProcessor")
        });
        let Some(cfg) = step.and_then(|s| s.get("config")) else { return Ok(ProcessorSettings::default()) };
        let eps = match cfg.get("eps") {
            None => None,
            Some(e) => Some(
                e.as_f64()
                    .map(|e| e as f32)
                    .filter(|e| (0.0..=MAX_STD_EPS).contains(e))
                    .ok_or_else(|| config_err(&format!("{which}: eps"), format!("{e} is not a number in 0..={MAX_STD_EPS}")))?,
            ),
        };
        let norm_map = match cfg.get("norm_map").and_then(|m| m.as_object()) {
            None => None,
            Some(m) => {
                let mut entries = Vec::new();
                for (k, v) in m {
                    let v = v.as_str().ok_or_else(|| config_err(&format!("{which}: norm_map.{k}"), "is not a string"))?;
                    entries.push((k.as_str(), v));
                }
                Some(NormMapping::from_map(entries, &format!("{which}: norm_map"))?)
            }
        };
        Ok(ProcessorSettings { eps, norm_map })
    }
}

impl NormMapping {
    /// From a `{"VISUAL": "MEAN_STD", ...}` map; `field` names it in errors.
    pub fn from_map<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>, field: &str) -> Result<NormMapping> {
        let mut m = NormMapping { visual: NormMode::Identity, state: NormMode::Identity, env: NormMode::Identity, action: NormMode::Identity };
        for (kind, mode) in entries {
            let mode = match mode {
                "MEAN_STD" => NormMode::MeanStd,
                "MIN_MAX" => NormMode::MinMax,
                "IDENTITY" => NormMode::Identity,
                "QUANTILES" | "QUANTILE10" => {
                    return Err(config_err(field, alloc::format!("{kind}: normalization mode {mode} is not supported by act-core")));
                }
                other => return Err(config_err(field, alloc::format!("{kind}: unknown normalization mode `{other}`"))),
            };
            match kind {
                "VISUAL" => m.visual = mode,
                "STATE" => m.state = mode,
                "ENV" => m.env = mode,
                "ACTION" => m.action = mode,
                // REWARD, LANGUAGE: no such input in ACT.
                _ => {}
            }
        }
        Ok(m)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Relu,
    Gelu,
}

/// Everything act-core needs to know about a checkpoint's model.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub state_dim: usize,
    pub action_dim: usize,
    /// In config.json order; `predict` takes one image per camera in this order.
    pub cameras: Vec<Camera>,
    pub dim_model: usize,
    pub n_heads: usize,
    pub dim_feedforward: usize,
    pub n_encoder_layers: usize,
    pub n_decoder_layers: usize,
    pub chunk_size: usize,
    pub n_action_steps: usize,
    pub latent_dim: usize,
    pub feedforward_activation: Activation,
    pub temporal_ensemble_coeff: Option<f32>,
    /// `observation.environment_state`'s length, one more encoder token after the state; 0 when the
    /// model has none.
    pub env_state_dim: usize,
    /// `normalization_mapping` (LeRobot's default when absent).
    pub normalization: NormMapping,
    /// Input features the model does not read (e.g. `observation.effort`), in config order.
    pub ignored_inputs: Vec<String>,
    /// The normaliser step of `policy_preprocessor.json` (LeRobot directories), when present.
    pub processor: ProcessorSettings,
    /// The unnormaliser step of `policy_postprocessor.json`, when present.
    pub postprocessor: ProcessorSettings,
}

/// Limits that keep a malformed config from asking for absurd allocations.
const MAX_DIM: usize = 16384;
const MAX_LAYERS: usize = 64;
const MAX_CHUNK: usize = 10000;
const MAX_IMAGE_SIDE: usize = 8192;
pub const MAX_CAMERAS: usize = 16;

#[derive(Deserialize)]
struct Feature {
    #[serde(rename = "type")]
    kind: Option<String>,
    shape: Vec<usize>,
}

/// A JSON object in document order (serde_json's own map would sort it: the cameras by name),
/// duplicate keys kept so that they can be refused.
struct Ordered<V>(Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        struct Entries<V>(core::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Entries<V> {
            type Value = Ordered<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> core::result::Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, V>()? {
                    out.push((k, v));
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(Entries(core::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(rename = "type")]
    kind: Option<String>,
    input_features: Option<Ordered<Feature>>,
    output_features: Option<Ordered<Feature>>,
    dim_model: Option<usize>,
    n_heads: Option<usize>,
    dim_feedforward: Option<usize>,
    n_encoder_layers: Option<usize>,
    n_decoder_layers: Option<usize>,
    chunk_size: Option<usize>,
    n_action_steps: Option<usize>,
    latent_dim: Option<usize>,
    vision_backbone: Option<String>,
    pre_norm: Option<bool>,
    feedforward_activation: Option<String>,
    temporal_ensemble_coeff: Option<f64>,
    replace_final_stride_with_dilation: Option<bool>,
    normalization_mapping: Option<Ordered<String>>,
}

/// A camera name is also a MuJoCo camera name (act-sim) and a C string (the C ABI): not empty,
/// no control characters (NUL included).
fn check_camera_name(key: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(config_err(key, "empty camera name (expected observation.images.<camera>)"));
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(config_err(key, alloc::format!("camera name holds the control character U+{:04X}", c as u32)));
    }
    Ok(())
}

fn required(v: Option<usize>, field: &str) -> Result<usize> {
    v.ok_or_else(|| config_err(field, "missing"))
}

fn in_range(v: usize, field: &str, lo: usize, hi: usize) -> Result<usize> {
    if v < lo || v > hi {
        return Err(config_err(field, alloc::format!("{v} is outside {lo}..={hi}")));
    }
    Ok(v)
}

impl Config {
    /// Parse and validate LeRobot's ACT config.json.
    pub fn from_json(text: &str) -> Result<Config> {
        let raw: RawConfig = serde_json::from_str(text).map_err(|e| config_err("config.json", e.to_string()))?;
        if let Some(kind) = &raw.kind
            && kind != "act"
        {
            return Err(config_err("type", alloc::format!("`{kind}` is not an ACT policy")));
        }
        if let Some(b) = &raw.vision_backbone
            && b != "resnet18"
        {
            return Err(config_err("vision_backbone", alloc::format!("`{b}` is not supported (resnet18 only)")));
        }
        if raw.pre_norm == Some(true) {
            return Err(config_err("pre_norm", "pre-norm transformers are not supported (ACT uses post-norm)"));
        }
        if raw.replace_final_stride_with_dilation == Some(true) {
            return Err(config_err("replace_final_stride_with_dilation", "dilated layer4 is not supported"));
        }
        let feedforward_activation = match raw.feedforward_activation.as_deref() {
            None | Some("relu") => Activation::Relu,
            Some("gelu") => Activation::Gelu,
            Some(other) => return Err(config_err("feedforward_activation", alloc::format!("`{other}` is not supported"))),
        };

        let inputs = raw.input_features.ok_or_else(|| config_err("input_features", "missing"))?;
        let mut state_dim = None;
        let mut env_state_dim = 0;
        let mut cameras = Vec::new();
        let mut ignored_inputs = Vec::new();
        let mut seen = alloc::collections::BTreeSet::new();
        for (key, feat) in &inputs.0 {
            if !seen.insert(key.as_str()) {
                return Err(config_err(key, "appears more than once in input_features"));
            }
            let kind = feat.kind.as_deref();
            // LeRobot's image_features: every VISUAL input, whatever its name; without a type,
            // the names LeRobot gives cameras.
            let visual = kind == Some("VISUAL") || (kind.is_none() && (key.starts_with("observation.images.") || key == "observation.image"));
            if key == "observation.state" {
                let [d] = feat.shape[..] else {
                    return Err(config_err("input_features.observation.state", "shape must be [state_dim]"));
                };
                state_dim = Some(in_range(d, "observation.state", 1, MAX_DIM)?);
            } else if key == "observation.environment_state" {
                let [d] = feat.shape[..] else {
                    return Err(config_err("input_features.observation.environment_state", "shape must be [env_state_dim]"));
                };
                env_state_dim = in_range(d, "observation.environment_state", 1, MAX_DIM)?;
            } else if visual {
                let [3, h, w] = feat.shape[..] else {
                    return Err(config_err(key, alloc::format!("shape {:?} is not [3, H, W]", feat.shape)));
                };
                let name = match key.strip_prefix("observation.images.") {
                    Some(cam) => cam,
                    None => key.rsplit('.').next().unwrap_or(key),
                };
                check_camera_name(key, name)?;
                let height = in_range(h, key, 32, MAX_IMAGE_SIDE)?;
                let width = in_range(w, key, 32, MAX_IMAGE_SIDE)?;
                cameras.push(Camera { key: key.clone(), name: name.to_string(), height, width });
            } else if kind == Some("ENV") {
                return Err(config_err(key, "an ENV feature must be observation.environment_state (the key LeRobot's ACT reads)"));
            } else if key.starts_with("observation.images.") {
                return Err(config_err(key, "image feature must be VISUAL"));
            } else {
                // LeRobot puts every dataset feature into input_features (a real ALOHA's
                // observation.effort, say); ACT reads none of them.
                ignored_inputs.push(key.clone());
            }
        }
        if let Some(dup) = cameras.iter().enumerate().find_map(|(i, c)| cameras[..i].iter().find(|d| d.name == c.name)) {
            return Err(config_err(&dup.key, alloc::format!("two cameras are named `{}`", dup.name)));
        }
        let state_dim = state_dim.ok_or_else(|| config_err("input_features", "no observation.state"))?;
        if cameras.is_empty() {
            return Err(config_err("input_features", "no observation.images.* camera"));
        }
        if cameras.len() > MAX_CAMERAS {
            return Err(config_err("input_features", alloc::format!("{} cameras, at most {MAX_CAMERAS}", cameras.len())));
        }
        let outputs = raw.output_features.ok_or_else(|| config_err("output_features", "missing"))?;
        let action_dim = match outputs.0.iter().find(|(k, _)| k == "action") {
            Some((_, f)) => match f.shape[..] {
                [d] => in_range(d, "output_features.action", 1, MAX_DIM)?,
                _ => return Err(config_err("output_features.action", "shape must be [action_dim]")),
            },
            None => return Err(config_err("output_features", "no action")),
        };

        let dim_model = in_range(required(raw.dim_model, "dim_model")?, "dim_model", 2, MAX_DIM)?;
        let n_heads = in_range(required(raw.n_heads, "n_heads")?, "n_heads", 1, dim_model)?;
        if dim_model % n_heads != 0 {
            return Err(config_err("n_heads", alloc::format!("dim_model {dim_model} is not divisible by {n_heads} heads")));
        }
        if dim_model % 2 != 0 {
            return Err(config_err("dim_model", "must be even (2-D sine position embedding)"));
        }
        let chunk_size = in_range(required(raw.chunk_size, "chunk_size")?, "chunk_size", 1, MAX_CHUNK)?;
        let n_action_steps = in_range(raw.n_action_steps.unwrap_or(chunk_size), "n_action_steps", 1, chunk_size)?;
        let temporal_ensemble_coeff = match raw.temporal_ensemble_coeff {
            None => None,
            // Finite as f32 too: 1e39 is finite in f64 and infinite in f32 (every step NaN).
            Some(c) if (c as f32).is_finite() => Some(crate::ensemble::check_coefficient(c as f32, chunk_size)?),
            Some(c) => return Err(config_err("temporal_ensemble_coeff", alloc::format!("{c} is not finite in f32"))),
        };
        let normalization = match &raw.normalization_mapping {
            None => NormMapping::default(),
            Some(m) => NormMapping::from_map(m.0.iter().map(|(k, v)| (k.as_str(), v.as_str())), "normalization_mapping")?,
        };
        Ok(Config {
            state_dim,
            action_dim,
            cameras,
            dim_model,
            n_heads,
            dim_feedforward: in_range(required(raw.dim_feedforward, "dim_feedforward")?, "dim_feedforward", 1, 8 * MAX_DIM)?,
            n_encoder_layers: in_range(required(raw.n_encoder_layers, "n_encoder_layers")?, "n_encoder_layers", 1, MAX_LAYERS)?,
            n_decoder_layers: in_range(raw.n_decoder_layers.unwrap_or(1), "n_decoder_layers", 1, MAX_LAYERS)?,
            chunk_size,
            n_action_steps,
            latent_dim: in_range(required(raw.latent_dim, "latent_dim")?, "latent_dim", 1, MAX_DIM)?,
            feedforward_activation,
            temporal_ensemble_coeff,
            env_state_dim,
            normalization,
            ignored_inputs,
            processor: ProcessorSettings::default(),
            postprocessor: ProcessorSettings::default(),
        })
    }

    /// Applies LeRobot's processor JSON settings (what LeRobot's pipeline uses over config.json):
    /// the normaliser's `norm_map` decides the input modes, the unnormaliser's the action's; each
    /// step's `eps` is kept for the statistics.
    pub fn apply_processors(&mut self, pre: ProcessorSettings, post: ProcessorSettings) {
        if let Some(m) = pre.norm_map {
            self.normalization = NormMapping { action: self.normalization.action, ..m };
            if post.norm_map.is_none() {
                self.normalization.action = m.action;
            }
        }
        if let Some(m) = post.norm_map {
            self.normalization.action = m.action;
        }
        self.processor = pre;
        self.postprocessor = post;
    }

    pub fn head_dim(&self) -> usize {
        self.dim_model / self.n_heads
    }

    /// Feature-map size after ResNet-18's layer4 for an input of `h x w`.
    pub fn feature_size(h: usize, w: usize) -> (usize, usize) {
        let conv = |x: usize, k: usize, s: usize, p: usize| (x + 2 * p - k) / s + 1;
        let f = |x: usize| {
            let x = conv(x, 7, 2, 3); // conv1
            let x = conv(x, 3, 2, 1); // maxpool
            let x = conv(x, 3, 2, 1); // layer2
            let x = conv(x, 3, 2, 1); // layer3
            conv(x, 3, 2, 1) // layer4
        };
        (f(h), f(w))
    }

    /// Learned 1-D encoder tokens: latent, state and, when present, the environment state.
    pub fn n_1d_tokens(&self) -> usize {
        2 + (self.env_state_dim > 0) as usize
    }

    /// Encoder tokens: latent, state, environment state (if any), then every camera's feature map.
    pub fn n_tokens(&self) -> usize {
        self.n_1d_tokens() + self
            .cameras
            .iter()
            .map(|c| {
                let (h, w) = Config::feature_size(c.height, c.width);
                h * w
            })
            .sum::<usize>()
    }
}
