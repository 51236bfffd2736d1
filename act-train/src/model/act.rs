//! The ACT model (ACT_SPEC.md sections 1 and 2) with LeRobot's parameter names under `model.`.

use anyhow::Result;
use tch::nn::{self, Init};
use tch::{Device, Kind, Tensor};

use super::backbone::{RESNET18_OUT_CHANNELS, ResNet18};
use super::posenc::{sine_pos_embed_2d, sinusoid_table_tensor};
use super::transformer::{Decoder, Encoder, LayerCfg, Linear, MatrixInit, torch_default_uniform};
use crate::config::ActConfig;

/// Results of [`Act::forward_inference`]. All f32, on the model's device.
#[derive(Debug)]
pub struct ActOutputs {
    /// `[B, chunk_size, action_dim]`, normalised action space (before un-normalisation).
    pub actions: Tensor,
    /// One per camera, in config order: ResNet-18 layer4 output `[B, 512, h, w]`.
    pub backbone_features: Vec<Tensor>,
    /// Encoder output, BATCH-FIRST `[B, tokens, dim_model]`, tokens ordered
    /// `[latent, state, cam0 (row-major h*w), cam1, ...]`.
    pub encoder_memory: Tensor,
    /// Position embeddings added to the encoder tokens, `[1, tokens, dim_model]`, same order.
    pub encoder_pos: Tensor,
    /// Decoder output after the final decoder norm, `[B, chunk_size, dim_model]`.
    pub decoder_output: Tensor,
}

/// The ACT policy network. Build with [`Act::new`] (training init); parameters live in the
/// VarStore the path belongs to, under `model.`.
#[derive(Debug)]
pub struct Act {
    pub cfg: ActConfig,
    pub backbone: ResNet18,
    pub encoder: Encoder,
    pub decoder: Decoder,
    pub encoder_img_feat_input_proj_weight: Tensor,
    pub encoder_img_feat_input_proj_bias: Tensor,
    pub encoder_robot_state_input_proj: Linear,
    /// LeRobot's `encoder_env_state_input_proj`, when the config has `observation.environment_state`.
    pub encoder_env_state_input_proj: Option<Linear>,
    pub encoder_latent_input_proj: Linear,
    pub encoder_1d_feature_pos_embed: Tensor,
    pub decoder_pos_embed: Tensor,
    pub action_head: Linear,
    // CVAE encoder (training only)
    pub vae_encoder: Option<Encoder>,
    pub vae_encoder_cls_embed: Option<Tensor>,
    pub vae_encoder_robot_state_input_proj: Option<Linear>,
    pub vae_encoder_action_input_proj: Option<Linear>,
    pub vae_encoder_latent_output_proj: Option<Linear>,
    pub vae_encoder_pos_enc: Option<Tensor>,
    pub device: Device,
}

impl Act {
    /// Builds the model under `root / "model"` with the training initialisation: xavier-uniform
    /// for encoder/decoder matrices, PyTorch defaults elsewhere (Linear/Conv U(+-1/sqrt(fan_in)),
    /// Embedding N(0,1)), torchvision's kaiming-normal(fan_out) for backbone convolutions,
    /// identity frozen BatchNorm. The CVAE encoder exists only when `cfg.use_vae`.
    pub fn new<'a>(root: &nn::Path<'a>, cfg: &ActConfig) -> Result<Self> {
        cfg.validate()?;
        let p = root / "model";
        let dim = cfg.dim_model;
        let lcfg = LayerCfg {
            dim,
            n_heads: cfg.n_heads,
            dim_feedforward: cfg.dim_feedforward,
            dropout: cfg.dropout,
            pre_norm: cfg.pre_norm,
            activation: cfg.feedforward_activation.clone(),
        };
        let state_dim = cfg.state_dim();
        let action_dim = cfg.action_dim();
        let backbone = ResNet18::new(&(&p / "backbone"));
        let encoder = Encoder::new(&(&p / "encoder"), &lcfg, cfg.n_encoder_layers, MatrixInit::Xavier);
        let decoder = Decoder::new(&(&p / "decoder"), &lcfg, cfg.n_decoder_layers, MatrixInit::Xavier);
        let ip = &p / "encoder_img_feat_input_proj";
        let c = RESNET18_OUT_CHANNELS;
        let encoder_img_feat_input_proj_weight = ip.var("weight", &[dim, c, 1, 1], torch_default_uniform(c));
        let encoder_img_feat_input_proj_bias = ip.var("bias", &[dim], torch_default_uniform(c));
        let encoder_robot_state_input_proj =
            Linear::torch_default(&(&p / "encoder_robot_state_input_proj"), state_dim, dim);
        let encoder_latent_input_proj = Linear::torch_default(&(&p / "encoder_latent_input_proj"), cfg.latent_dim, dim);
        let randn = Init::Randn { mean: 0.0, stdev: 1.0 };
        let env_dim = cfg.env_state_dim();
        let encoder_env_state_input_proj =
            (env_dim > 0).then(|| Linear::torch_default(&(&p / "encoder_env_state_input_proj"), env_dim, dim));
        // One learned 1-D position per token before the images: latent, state, (environment state).
        let n_1d = 2 + (env_dim > 0) as i64;
        let encoder_1d_feature_pos_embed = (&p / "encoder_1d_feature_pos_embed").var("weight", &[n_1d, dim], randn);
        let decoder_pos_embed = (&p / "decoder_pos_embed").var("weight", &[cfg.chunk_size, dim], randn);
        let action_head = Linear::torch_default(&(&p / "action_head"), dim, action_dim);

        let (mut vae_encoder, mut cls, mut vs_proj, mut va_proj, mut lo_proj, mut pos_enc) =
            (None, None, None, None, None, None);
        if cfg.use_vae {
            vae_encoder = Some(Encoder::new(
                &(&p / "vae_encoder"),
                &lcfg,
                cfg.n_vae_encoder_layers,
                MatrixInit::TorchDefault,
            ));
            cls = Some((&p / "vae_encoder_cls_embed").var("weight", &[1, dim], randn));
            vs_proj = Some(Linear::torch_default(
                &(&p / "vae_encoder_robot_state_input_proj"),
                state_dim,
                dim,
            ));
            va_proj = Some(Linear::torch_default(
                &(&p / "vae_encoder_action_input_proj"),
                action_dim,
                dim,
            ));
            lo_proj = Some(Linear::torch_default(
                &(&p / "vae_encoder_latent_output_proj"),
                dim,
                2 * cfg.latent_dim,
            ));
            let n = cfg.chunk_size + 2;
            let t = p.zeros_no_train("vae_encoder_pos_enc", &[1, n, dim]);
            tch::no_grad(|| {
                let mut t = t.shallow_clone();
                t.copy_(&sinusoid_table_tensor(n, dim));
            });
            pos_enc = Some(t);
        }
        Ok(Act {
            cfg: cfg.clone(),
            backbone,
            encoder,
            decoder,
            encoder_img_feat_input_proj_weight,
            encoder_img_feat_input_proj_bias,
            encoder_robot_state_input_proj,
            encoder_env_state_input_proj,
            encoder_latent_input_proj,
            encoder_1d_feature_pos_embed,
            decoder_pos_embed,
            action_head,
            vae_encoder,
            vae_encoder_cls_embed: cls,
            vae_encoder_robot_state_input_proj: vs_proj,
            vae_encoder_action_input_proj: va_proj,
            vae_encoder_latent_output_proj: lo_proj,
            vae_encoder_pos_enc: pos_enc,
            device: p.device(),
        })
    }

    fn check_inputs(&self, qpos: &Tensor, images: &[Tensor]) -> i64 {
        let cams = self.cfg.cameras();
        let sz = qpos.size();
        assert!(
            sz.len() == 2 && sz[1] == self.cfg.state_dim(),
            "qpos must be [B, {}], got {:?}",
            self.cfg.state_dim(),
            sz
        );
        assert_eq!(
            images.len(),
            cams.len(),
            "expected {} camera images, got {}",
            cams.len(),
            images.len()
        );
        for (img, (name, _, _)) in images.iter().zip(&cams) {
            let s = img.size();
            assert!(
                s.len() == 4 && s[0] == sz[0] && s[1] == 3,
                "image of camera {name} must be [B, 3, H, W], got {s:?}"
            );
        }
        sz[0]
    }

    /// The CVAE-free part: encoder tokens from `latent [B, latent_dim]`, qpos, images; decoder;
    /// action head.
    fn forward_core(&self, qpos: &Tensor, env: Option<&Tensor>, images: &[Tensor], latent: &Tensor, train: bool) -> ActOutputs {
        let b = self.check_inputs(qpos, images);
        let dim = self.cfg.dim_model;
        let mut tokens = vec![
            self.encoder_latent_input_proj.forward(latent).unsqueeze(1),
            self.encoder_robot_state_input_proj.forward(qpos).unsqueeze(1),
        ];
        // LeRobot's order: [latent, robot_state, env_state, image pixels].
        match (&self.encoder_env_state_input_proj, env) {
            (Some(proj), Some(env)) => tokens.push(proj.forward(env).unsqueeze(1)),
            (None, None) => {}
            (Some(_), None) => panic!("the model reads observation.environment_state: pass it"),
            (None, Some(_)) => panic!("the model has no observation.environment_state"),
        }
        let mut pos = vec![self.encoder_1d_feature_pos_embed.unsqueeze(0)];
        let mut backbone_features = Vec::with_capacity(images.len());
        for img in images {
            let f = self.backbone.forward(img, train); // [B, 512, h, w]
            let (_, _, h, w) = f.size4().unwrap();
            // In the model's dtype (f32 in training; bf16 when the benchmark runs libtorch in bf16).
            let pe = sine_pos_embed_2d(h, w, dim, self.device).to_kind(f.kind()); // [1, dim, h, w]
            let proj = f.conv2d(
                &self.encoder_img_feat_input_proj_weight,
                Some(&self.encoder_img_feat_input_proj_bias),
                [1, 1],
                [0, 0],
                [1, 1],
                1,
            );
            tokens.push(proj.flatten(2, 3).permute([0, 2, 1])); // [B, h*w, dim]
            pos.push(pe.flatten(2, 3).permute([0, 2, 1])); // [1, h*w, dim]
            backbone_features.push(f);
        }
        let x = Tensor::cat(&tokens, 1);
        let encoder_pos = Tensor::cat(&pos, 1);
        let memory = self.encoder.forward(&x, Some(&encoder_pos), None, train);
        let query_pos = self.decoder_pos_embed.unsqueeze(0); // [1, chunk, dim]
        let tgt = Tensor::zeros([b, self.cfg.chunk_size, dim], (qpos.kind(), self.device));
        let decoder_output = self
            .decoder
            .forward(&tgt, &memory, Some(&query_pos), Some(&encoder_pos), train);
        let actions = self.action_head.forward(&decoder_output);
        ActOutputs {
            actions,
            backbone_features,
            encoder_memory: memory,
            encoder_pos,
            decoder_output,
        }
    }

    /// Inference (ACT_SPEC.md section 1): z = 0, no dropout.
    /// `qpos [B, state_dim]` normalised; `images` one `[B, 3, H, W]` normalised f32 tensor per
    /// camera in config order.
    pub fn forward_inference(&self, qpos: &Tensor, images: &[Tensor]) -> ActOutputs {
        let b = qpos.size()[0];
        let z = Tensor::zeros([b, self.cfg.latent_dim], (qpos.kind(), self.device));
        self.forward_core(qpos, None, images, &z, false)
    }

    /// [`Act::forward_inference`] with `observation.environment_state [B, env_dim]` (normalised).
    pub fn forward_inference_env(&self, qpos: &Tensor, env: &Tensor, images: &[Tensor]) -> ActOutputs {
        let b = qpos.size()[0];
        let z = Tensor::zeros([b, self.cfg.latent_dim], (Kind::Float, self.device));
        self.forward_core(qpos, Some(env), images, &z, false)
    }

    /// The CVAE encoder (ACT_SPEC.md section 2): returns `(mu, logvar)`, each `[B, latent_dim]`.
    /// `actions [B, chunk, action_dim]` normalised, `is_pad [B, chunk]` bool (true = padding).
    pub fn encode_latent(&self, qpos: &Tensor, actions: &Tensor, is_pad: &Tensor, train: bool) -> (Tensor, Tensor) {
        let enc = self
            .vae_encoder
            .as_ref()
            .expect("use_vae is false: the model has no CVAE encoder");
        let b = qpos.size()[0];
        let chunk = self.cfg.chunk_size;
        let cls = self
            .vae_encoder_cls_embed
            .as_ref()
            .unwrap()
            .unsqueeze(0)
            .expand([b, 1, self.cfg.dim_model], true);
        let st = self
            .vae_encoder_robot_state_input_proj
            .as_ref()
            .unwrap()
            .forward(qpos)
            .unsqueeze(1);
        let ac = self
            .vae_encoder_action_input_proj
            .as_ref()
            .unwrap()
            .forward(&actions.narrow(1, 0, chunk));
        let x = Tensor::cat(&[cls, st, ac], 1); // [B, chunk + 2, dim]
        let pos = self.vae_encoder_pos_enc.as_ref().unwrap().detach();
        let kpm = Tensor::cat(
            &[
                Tensor::zeros([b, 2], (Kind::Bool, self.device)),
                is_pad.narrow(1, 0, chunk).to_kind(Kind::Bool),
            ],
            1,
        );
        let out = enc.forward(&x, Some(&pos), Some(&kpm), train);
        let cls_out = out.select(1, 0); // [B, dim]
        let params = self.vae_encoder_latent_output_proj.as_ref().unwrap().forward(&cls_out);
        let l = self.cfg.latent_dim;
        (params.narrow(1, 0, l), params.narrow(1, l, l))
    }

    /// Training forward (ACT_SPEC.md section 2): with `use_vae`, the CVAE encoder gives mu and
    /// logvar and z = mu + exp(logvar / 2) * eps (eps ~ N(0, 1), also when `train` is false, as
    /// the original does for validation); without `use_vae`, z = 0 and mu = logvar = 0 (so the KL
    /// term is 0). `train` switches dropout on. Returns `(actions_hat [B, chunk, action_dim],
    /// mu [B, latent], logvar [B, latent])`.
    pub fn forward_train(
        &self,
        qpos: &Tensor,
        images: &[Tensor],
        actions: &Tensor,
        is_pad: &Tensor,
        train: bool,
    ) -> (Tensor, Tensor, Tensor) {
        let b = qpos.size()[0];
        let (mu, logvar, z) = if self.cfg.use_vae {
            let (mu, logvar) = self.encode_latent(qpos, actions, is_pad, train);
            let eps = mu.randn_like();
            let z = &mu + (&logvar / 2.0).exp() * eps;
            (mu, logvar, z)
        } else {
            let z = Tensor::zeros([b, self.cfg.latent_dim], (Kind::Float, self.device));
            (z.zeros_like(), z.zeros_like(), z)
        };
        let out = self.forward_core(qpos, None, images, &z, train);
        (out.actions, mu, logvar)
    }
}
