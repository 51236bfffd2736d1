//! LeRobot's ACT `config.json` (ACT_SPEC.md section 3), read and written with serde.
//!
//! `input_features` keeps the order of the file (the camera order is the order of the
//! `observation.images.<cam>` keys), through [`Features`], an ordered map stored as a `Vec` of
//! pairs. Fields this crate does not know (LeRobot writes many: optimizer settings, device, ...)
//! are kept in [`ActConfig::extra`] and written back unchanged.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::{Context, Result, bail, ensure};
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub const STATE_KEY: &str = "observation.state";
pub const ENV_STATE_KEY: &str = "observation.environment_state";
pub const ACTION_KEY: &str = "action";
pub const IMAGE_PREFIX: &str = "observation.images.";

/// One entry of `input_features` / `output_features`: `{"type": "VISUAL", "shape": [3, 480, 640]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feature {
    /// LeRobot's FeatureType: "STATE", "VISUAL", "ACTION", "ENV", ...
    #[serde(rename = "type")]
    pub kind: String,
    pub shape: Vec<i64>,
}

impl Feature {
    pub fn new(kind: &str, shape: &[i64]) -> Self {
        Feature {
            kind: kind.to_string(),
            shape: shape.to_vec(),
        }
    }
}

/// A JSON object of features that keeps the order of its keys.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Features(pub Vec<(String, Feature)>);

impl Features {
    pub fn get(&self, key: &str) -> Option<&Feature> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, f)| f)
    }

    /// Inserts or replaces `key`; a new key goes to the end.
    pub fn insert(&mut self, key: &str, feature: Feature) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some((_, f)) => *f = feature,
            None => self.0.push((key.to_string(), feature)),
        }
    }
}

impl Serialize for Features {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Features {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Features;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of feature name to {type, shape}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Features, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Feature>()? {
                    if out.iter().any(|(e, _): &(String, Feature)| *e == k) {
                        return Err(serde::de::Error::custom(format!("duplicate feature {k}")));
                    }
                    out.push((k, v));
                }
                Ok(Features(out))
            }
        }
        d.deserialize_map(V)
    }
}

fn default_type() -> String {
    "act".to_string()
}
fn default_one() -> i64 {
    1
}
fn default_normalization_mapping() -> BTreeMap<String, String> {
    [("VISUAL", "MEAN_STD"), ("STATE", "MEAN_STD"), ("ACTION", "MEAN_STD")]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}
fn default_backbone() -> String {
    "resnet18".to_string()
}
fn default_activation() -> String {
    "relu".to_string()
}
fn default_true() -> bool {
    true
}

/// LeRobot's ACTConfig as stored in config.json. Field defaults are LeRobot's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActConfig {
    #[serde(rename = "type", default = "default_type")]
    pub policy_type: String,
    #[serde(default = "default_one")]
    pub n_obs_steps: i64,
    #[serde(default = "default_normalization_mapping")]
    pub normalization_mapping: BTreeMap<String, String>,
    pub input_features: Features,
    pub output_features: Features,
    pub chunk_size: i64,
    pub n_action_steps: i64,
    #[serde(default = "default_backbone")]
    pub vision_backbone: String,
    /// LeRobot: "ResNet18_Weights.IMAGENET1K_V1"; `None` for a backbone trained from scratch.
    #[serde(default)]
    pub pretrained_backbone_weights: Option<String>,
    #[serde(default)]
    pub replace_final_stride_with_dilation: bool,
    #[serde(default)]
    pub pre_norm: bool,
    pub dim_model: i64,
    pub n_heads: i64,
    pub dim_feedforward: i64,
    #[serde(default = "default_activation")]
    pub feedforward_activation: String,
    pub n_encoder_layers: i64,
    pub n_decoder_layers: i64,
    #[serde(default = "default_true")]
    pub use_vae: bool,
    pub latent_dim: i64,
    pub n_vae_encoder_layers: i64,
    #[serde(default)]
    pub temporal_ensemble_coeff: Option<f64>,
    #[serde(default)]
    pub dropout: f64,
    #[serde(default)]
    pub kl_weight: f64,
    /// Every other field of the file, written back unchanged.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl ActConfig {
    /// The spec defaults (ACT_SPEC.md section 1): dim 512, 8 heads, FFN 3200, 4 encoder layers,
    /// 1 decoder layer, 4 VAE encoder layers, chunk 100, latent 32, state/action 14, one camera
    /// "top" 480x640, kl_weight 10, dropout 0.1.
    pub fn default_aloha() -> Self {
        ActConfig {
            policy_type: default_type(),
            n_obs_steps: 1,
            normalization_mapping: default_normalization_mapping(),
            input_features: Features(vec![
                (format!("{IMAGE_PREFIX}top"), Feature::new("VISUAL", &[3, 480, 640])),
                (STATE_KEY.to_string(), Feature::new("STATE", &[14])),
            ]),
            output_features: Features(vec![(ACTION_KEY.to_string(), Feature::new("ACTION", &[14]))]),
            chunk_size: 100,
            n_action_steps: 100,
            vision_backbone: default_backbone(),
            pretrained_backbone_weights: None,
            replace_final_stride_with_dilation: false,
            pre_norm: false,
            dim_model: 512,
            n_heads: 8,
            dim_feedforward: 3200,
            feedforward_activation: default_activation(),
            n_encoder_layers: 4,
            n_decoder_layers: 1,
            use_vae: true,
            latent_dim: 32,
            n_vae_encoder_layers: 4,
            temporal_ensemble_coeff: None,
            dropout: 0.1,
            kl_weight: 10.0,
            extra: BTreeMap::new(),
        }
    }

    /// dim 256, 8 heads, FFN 2048, 4 encoder / 1 decoder / 4 VAE layers, chunk 100, latent 32,
    /// one camera "top" 240x320.
    pub fn small() -> Self {
        ActConfig {
            dim_model: 256,
            n_heads: 8,
            dim_feedforward: 2048,
            ..Self::default_aloha()
        }
        .with_cameras(&[("top", 240, 320)])
    }

    /// For fast tests: dim 32, 2 heads, FFN 64, one layer of each kind, chunk 8, latent 4,
    /// state/action 14, one camera "top" 64x64.
    pub fn tiny() -> Self {
        ActConfig {
            dim_model: 32,
            n_heads: 2,
            dim_feedforward: 64,
            n_encoder_layers: 1,
            n_decoder_layers: 1,
            n_vae_encoder_layers: 1,
            chunk_size: 8,
            n_action_steps: 8,
            latent_dim: 4,
            ..Self::default_aloha()
        }
        .with_cameras(&[("top", 64, 64)])
    }

    /// Preset by name: "tiny", "small", "default" (also "default_aloha").
    pub fn preset(name: &str) -> Result<Self> {
        Ok(match name {
            "tiny" => Self::tiny(),
            "small" => Self::small(),
            "default" | "default_aloha" => Self::default_aloha(),
            _ => bail!("unknown preset {name:?} (expected tiny, small or default)"),
        })
    }

    /// Replaces the cameras (every VISUAL input feature) by `cams` = (name, H, W), in that order,
    /// placed before the other input features.
    pub fn set_cameras(&mut self, cams: &[(&str, i64, i64)]) {
        let others: Vec<_> = self
            .input_features
            .0
            .drain(..)
            .filter(|(_, f)| f.kind != "VISUAL")
            .collect();
        let mut feats: Vec<(String, Feature)> = cams
            .iter()
            .map(|(n, h, w)| (format!("{IMAGE_PREFIX}{n}"), Feature::new("VISUAL", &[3, *h, *w])))
            .collect();
        feats.extend(others);
        self.input_features = Features(feats);
    }

    pub fn with_cameras(mut self, cams: &[(&str, i64, i64)]) -> Self {
        self.set_cameras(cams);
        self
    }

    /// Keeps the camera names, sets every camera's size to H x W.
    pub fn with_image_size(mut self, h: i64, w: i64) -> Self {
        for (_, f) in self.input_features.0.iter_mut() {
            if f.kind == "VISUAL" {
                f.shape = vec![3, h, w];
            }
        }
        self
    }

    /// Sets state and action dimensions.
    pub fn with_dims(mut self, state_dim: i64, action_dim: i64) -> Self {
        self.input_features
            .insert(STATE_KEY, Feature::new("STATE", &[state_dim]));
        self.output_features
            .insert(ACTION_KEY, Feature::new("ACTION", &[action_dim]));
        self
    }

    pub fn state_dim(&self) -> i64 {
        self.input_features
            .get(STATE_KEY)
            .and_then(|f| f.shape.first().copied())
            .unwrap_or(0)
    }

    pub fn action_dim(&self) -> i64 {
        self.output_features
            .get(ACTION_KEY)
            .and_then(|f| f.shape.first().copied())
            .unwrap_or(0)
    }

    /// Length of `observation.environment_state`; 0 when the config has none.
    pub fn env_state_dim(&self) -> i64 {
        self.input_features.get(ENV_STATE_KEY).and_then(|f| f.shape.first().copied()).unwrap_or(0)
    }

    /// Cameras in file order: (name without the "observation.images." prefix, H, W).
    pub fn cameras(&self) -> Vec<(String, i64, i64)> {
        self.input_features
            .0
            .iter()
            .filter(|(_, f)| f.kind == "VISUAL")
            .map(|(k, f)| {
                let name = k.strip_prefix(IMAGE_PREFIX).unwrap_or(k).to_string();
                let h = f.shape.get(1).copied().unwrap_or(0);
                let w = f.shape.get(2).copied().unwrap_or(0);
                (name, h, w)
            })
            .collect()
    }

    /// Checks everything the model in this crate relies on.
    pub fn validate(&self) -> Result<()> {
        ensure!(
            self.policy_type == "act",
            "config type is {:?}, expected \"act\"",
            self.policy_type
        );
        ensure!(
            self.state_dim() > 0,
            "input_features lacks {STATE_KEY} with shape [state_dim]"
        );
        ensure!(
            self.action_dim() > 0,
            "output_features lacks {ACTION_KEY} with shape [action_dim]"
        );
        for (i, (k, f)) in self.input_features.0.iter().enumerate() {
            // `Features` is a Vec, so only parsing rejects a repeated key; a builder must not make one.
            ensure!(
                !self.input_features.0[..i].iter().any(|(e, _)| e == k),
                "input feature {k} appears twice"
            );
            if f.kind == "VISUAL" {
                ensure!(
                    k.starts_with(IMAGE_PREFIX),
                    "visual feature {k} is not {IMAGE_PREFIX}<cam>"
                );
                ensure!(
                    f.shape.len() == 3 && f.shape[0] == 3 && f.shape[1] > 0 && f.shape[2] > 0,
                    "visual feature {k} has shape {:?}, expected [3, H, W]",
                    f.shape
                );
            }
        }
        ensure!(
            self.dim_model > 0 && self.dim_model % 4 == 0,
            "dim_model must be a positive multiple of 4"
        );
        ensure!(
            self.n_heads > 0 && self.dim_model % self.n_heads == 0,
            "dim_model {} is not divisible by n_heads {}",
            self.dim_model,
            self.n_heads
        );
        ensure!(self.dim_feedforward > 0, "dim_feedforward must be positive");
        ensure!(self.n_encoder_layers >= 1, "n_encoder_layers must be >= 1");
        ensure!(self.n_decoder_layers >= 1, "n_decoder_layers must be >= 1");
        ensure!(self.n_vae_encoder_layers >= 1, "n_vae_encoder_layers must be >= 1");
        ensure!(self.chunk_size >= 1, "chunk_size must be >= 1");
        ensure!(
            self.n_action_steps >= 1 && self.n_action_steps <= self.chunk_size,
            "n_action_steps must be in 1..=chunk_size"
        );
        ensure!(self.latent_dim >= 1, "latent_dim must be >= 1");
        ensure!(
            self.vision_backbone == "resnet18",
            "vision_backbone {:?} unsupported (resnet18 only)",
            self.vision_backbone
        );
        ensure!(
            !self.replace_final_stride_with_dilation,
            "replace_final_stride_with_dilation is not supported for resnet18 (torchvision rejects dilation in BasicBlock)"
        );
        ensure!(
            matches!(self.feedforward_activation.as_str(), "relu" | "gelu"),
            "feedforward_activation {:?} unsupported (relu or gelu)",
            self.feedforward_activation
        );
        ensure!((0.0..1.0).contains(&self.dropout), "dropout must be in [0, 1)");
        Ok(())
    }

    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).context("serialising ACT config")
    }

    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).context("parsing ACT config.json")
    }

    pub fn load(path: &std::path::Path) -> Result<Self> {
        // Regular files only, size-capped: a FIFO or /dev/zero here must not hang or exhaust memory.
        let text = act_core::fs::read_json_file(path).with_context(|| format!("reading {}", path.display()))?;
        Self::from_json(&text).with_context(|| format!("in {}", path.display()))
    }
}
