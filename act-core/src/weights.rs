//! ACT's weights as a policy holds them (llama2.c's `Weights`): loaded from the checkpoint by
//! their LeRobot names (`modeling_act.py`'s `ACT` module), prepacked for the GEMM kernels once.
use crate::checkpoint::TensorStore;
use crate::config::Config;
use crate::error::{config_err, Result};
use crate::kernels::pack::Packing;
use crate::model::backbone::{ResNet18, FEATURE_CHANNELS};
use crate::model::layers::{LayerNorm, Linear};
use crate::model::pos_embed::sine_2d;
use crate::model::transformer::{DecoderLayer, EncoderLayer};
use alloc::format;
use alloc::vec::Vec;

pub(crate) struct Weights {
    pub(crate) backbone: ResNet18,
    pub(crate) img_proj: Linear,
    pub(crate) state_proj: Linear,
    /// `encoder_env_state_input_proj`, when the model reads `observation.environment_state`.
    pub(crate) env_proj: Option<Linear>,
    /// `encoder_latent_input_proj(z = 0)`: its bias.
    pub(crate) latent_token: Vec<f32>,
    pub(crate) encoder: Vec<EncoderLayer>,
    pub(crate) decoder: Vec<DecoderLayer>,
    pub(crate) decoder_norm: LayerNorm,
    pub(crate) action_head: Linear,
    /// [tokens, dim]: the learned 1-D embeddings (latent, state, environment state), then each
    /// camera's 2-D sine embedding.
    pub(crate) encoder_pos: Vec<f32>,
    /// [chunk, dim].
    pub(crate) query_pos: Vec<f32>,
}

pub(crate) fn load_weights(store: &TensorStore<'_>, cfg: &Config, isa: Packing) -> Result<Weights> {
    let dim = cfg.dim_model;
    let (ff, heads) = (cfg.dim_feedforward, cfg.n_heads);
    let backbone = ResNet18::load(store, isa)?;
    let proj = store.model("encoder_img_feat_input_proj.weight", &[dim, FEATURE_CHANNELS, 1, 1])?;
    let proj_b = store.model("encoder_img_feat_input_proj.bias", &[dim])?;
    let img_proj = Linear::from_parts(&proj, proj_b, FEATURE_CHANNELS, dim, isa);
    let state_proj = Linear::load(store, "encoder_robot_state_input_proj", cfg.state_dim, dim, isa.int8_sensitive())?;
    let env_proj = match cfg.env_state_dim {
        0 => None,
        d => Some(Linear::load(store, "encoder_env_state_input_proj", d, dim, isa)?),
    };
    // Only the bias survives z = 0, but the weight's shape is still checked.
    store.model("encoder_latent_input_proj.weight", &[dim, cfg.latent_dim])?;
    let latent_token = store.model("encoder_latent_input_proj.bias", &[dim])?;
    let encoder = (0..cfg.n_encoder_layers)
        .map(|i| EncoderLayer::load(store, &format!("encoder.layers.{i}"), dim, ff, heads, isa))
        .collect::<Result<Vec<_>>>()?;
    let decoder = (0..cfg.n_decoder_layers)
        .map(|i| DecoderLayer::load(store, &format!("decoder.layers.{i}"), dim, ff, heads, isa))
        .collect::<Result<Vec<_>>>()?;
    let decoder_norm = LayerNorm::load(store, "decoder.norm", dim)?;
    let action_head = Linear::load(store, "action_head", dim, cfg.action_dim, isa.int8_sensitive())?;

    let mut encoder_pos = store.model("encoder_1d_feature_pos_embed.weight", &[cfg.n_1d_tokens(), dim])?;
    for cam in &cfg.cameras {
        let (fh, fw) = Config::feature_size(cam.height, cam.width);
        if fh == 0 || fw == 0 {
            return Err(config_err(&format!("observation.images.{}", cam.name), "image too small for ResNet-18"));
        }
        encoder_pos.extend_from_slice(&sine_2d(fh, fw, dim));
    }
    let query_pos = store.model("decoder_pos_embed.weight", &[cfg.chunk_size, dim])?;
    Ok(Weights { backbone, img_proj, state_proj, env_proj, latent_token, encoder, decoder, decoder_norm, action_head, encoder_pos, query_pos })
}

impl Weights {
    /// Packed weights plus every other weight-derived vector (biases, norms, embeddings).
    pub(crate) fn bytes(&self) -> usize {
        let vectors = self.latent_token.len() + self.encoder_pos.len() + self.query_pos.len() + 2 * self.decoder_norm.gamma.len();
        self.packed_bytes() + vectors * 4 + self.bias_bytes()
    }

    fn bias_bytes(&self) -> usize {
        4 * (self.img_proj.b.len()
            + self.state_proj.b.len()
            + self.env_proj.as_ref().map_or(0, |l| l.b.len())
            + self.action_head.b.len()
            + self.backbone.bias_len()
            + self.encoder.iter().map(|l| l.vector_len()).sum::<usize>()
            + self.decoder.iter().map(|l| l.vector_len()).sum::<usize>())
    }

    pub(crate) fn packed_bytes(&self) -> usize {
        self.backbone.packed_bytes()
            + self.img_proj.w.bytes()
            + self.state_proj.w.bytes()
            + self.env_proj.as_ref().map_or(0, |l| l.w.bytes())
            + self.action_head.w.bytes()
            + self.encoder.iter().map(|l| l.packed_bytes()).sum::<usize>()
            + self.decoder.iter().map(|l| l.packed_bytes()).sum::<usize>()
    }
}
