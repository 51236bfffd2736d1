//! The model blueprint, parsed from LeRobot's ACT `config.json` (ACT_SPEC.md section 3).
use crate::error::{config_err, Result};
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// One camera: its name (the `<cam>` of `observation.images.<cam>`) and image size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Camera {
    pub name: String,
    pub height: usize,
    pub width: usize,
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
}

/// Limits that keep a malformed config from asking for absurd allocations.
const MAX_DIM: usize = 16384;
const MAX_LAYERS: usize = 64;
const MAX_CHUNK: usize = 10000;
const MAX_IMAGE_SIDE: usize = 8192;
pub(crate) const MAX_CAMERAS: usize = 16;

#[derive(Deserialize)]
struct Feature {
    #[serde(rename = "type")]
    kind: Option<String>,
    shape: Vec<usize>,
}

/// `input_features` in document order (serde_json's own map would sort the cameras by name).
struct OrderedFeatures(Vec<(String, Feature)>);

impl<'de> Deserialize<'de> for OrderedFeatures {
    fn deserialize<D: Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OrderedFeatures;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of features")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> core::result::Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Feature>()? {
                    out.push((k, v));
                }
                Ok(OrderedFeatures(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(rename = "type")]
    kind: Option<String>,
    input_features: Option<OrderedFeatures>,
    output_features: Option<OrderedFeatures>,
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
        let mut cameras = Vec::new();
        let mut seen = alloc::collections::BTreeSet::new();
        for (key, feat) in &inputs.0 {
            if !seen.insert(key.as_str()) {
                return Err(config_err(key, "appears more than once in input_features"));
            }
            if key == "observation.state" {
                let [d] = feat.shape[..] else {
                    return Err(config_err("input_features.observation.state", "shape must be [state_dim]"));
                };
                state_dim = Some(in_range(d, "observation.state", 1, MAX_DIM)?);
            } else if let Some(cam) = key.strip_prefix("observation.images.") {
                if feat.kind.as_deref().is_some_and(|k| k != "VISUAL") {
                    return Err(config_err(key, "image feature must be VISUAL"));
                }
                let [3, h, w] = feat.shape[..] else {
                    return Err(config_err(key, alloc::format!("shape {:?} is not [3, H, W]", feat.shape)));
                };
                check_camera_name(key, cam)?;
                let height = in_range(h, key, 32, MAX_IMAGE_SIDE)?;
                let width = in_range(w, key, 32, MAX_IMAGE_SIDE)?;
                cameras.push(Camera { name: cam.to_string(), height, width });
            } else {
                return Err(config_err(key, "unsupported input feature (ACT takes observation.state and observation.images.*)"));
            }
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
            Some(c) if c.is_finite() && c >= 0.0 && (c as f32).is_finite() => Some(c as f32),
            Some(c) => return Err(config_err("temporal_ensemble_coeff", alloc::format!("{c} must be finite (in f32) and >= 0"))),
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
        })
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

    /// Encoder tokens: latent, state, then every camera's feature map.
    pub fn n_tokens(&self) -> usize {
        2 + self
            .cameras
            .iter()
            .map(|c| {
                let (h, w) = Config::feature_size(c.height, c.width);
                h * w
            })
            .sum::<usize>()
    }
}
