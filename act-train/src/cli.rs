//! `act-train train`'s command line and the run's resolved hyperparameters: presets, flags, and
//! how flags apply on top of a preset (or a resumed checkpoint's settings).

use anyhow::{Context, Result, bail, ensure};
use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use tch::Device;

use crate::config::ActConfig;
use crate::data::{Normalization, steps_per_epoch};
use crate::loader::ValEvery;
use crate::loss::LossKind;
use crate::model::backbone::BatchNormMode;
use crate::optim::LrSchedule;

/// Named sizes and hyperparameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrainPreset {
    /// The original ACT: dim 512, FFN 3200, 8 heads, 4 encoder layers, 1 decoder layer (the
    /// original builds 7 but uses layer 0), chunk 100, kl 10, lr 1e-5 (backbone 1e-5), weight
    /// decay 1e-4, batch 8, 2000 epochs, camera top at 480x640, dropout 0.1.
    Paper,
    /// For CPU training of the sim tasks: dim 256, FFN 1024, 8 heads, 4 encoder / 1 decoder
    /// layers, chunk 100, kl 10, lr 1e-4 (backbone 1e-4), batch 8, 3000 steps (validation every
    /// 500), camera top at 120x160 (area-averaged from 480x640), dropout 0.1, backbone BatchNorm
    /// trained with batch statistics (the backbone starts from scratch). About 17 samples/s on
    /// this 2-core CPU, so 3000 steps take about 24 minutes (84 % transfer-cube success measured).
    SimSmall,
    /// For tests: dim 32, FFN 64, 2 heads, 1 layer each, chunk 8, latent 4, 64x64, lr 1e-3
    /// (backbone 1e-4: a from-scratch ResNet-18 does not train stably at 1e-3), batch 8, 200 steps.
    Tiny,
}

/// Which training checkpoint the final policy is exported from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportWeights {
    /// best.ckpt: the lowest validation loss (the last weights when no validation improved).
    Best,
    /// last.ckpt: the weights after the final step.
    Last,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    Cpu,
    Cuda,
}

impl DeviceArg {
    /// The libtorch device; CUDA only where this libtorch has it and a GPU is visible.
    pub fn device(self) -> Result<Device> {
        Ok(match self {
            DeviceArg::Cpu => Device::Cpu,
            DeviceArg::Cuda => {
                ensure!(
                    tch::Cuda::is_available(),
                    "--device cuda: CUDA is not available (this libtorch has no CUDA support, or no GPU is visible); \
                     use --device cpu or a libtorch built with CUDA"
                );
                Device::Cuda(0)
            }
        })
    }
}

/// `act-train train`. Hyperparameters left out take the preset's value; on `--resume` they come
/// from the checkpoint, and giving one that differs is an error.
#[derive(Args, Clone, Debug)]
// A flag given twice takes its last value, so scripts can append to a recipe's flags
// (`ACT_TRAIN_ARGS="--steps 10000" scripts/demo.sh insertion`, whose recipe has --steps 6000).
#[command(args_override_self = true)]
pub struct TrainCli {
    /// Directory holding the episodes: episode_<i>.hdf5 in the original ACT layout.
    #[arg(long)]
    pub dataset_dir: PathBuf,
    /// Directory for checkpoints (last.ckpt, best.ckpt), losses.csv, loss_curve.png and the
    /// exported policy (policy.safetensors, policy/). Created if missing.
    #[arg(long)]
    pub ckpt_dir: PathBuf,
    /// Preset of sizes and hyperparameters [default: sim-small].
    #[arg(long, value_enum)]
    pub preset: Option<TrainPreset>,
    /// Policy class; only ACT is implemented (the original's CNNMLP is not).
    #[arg(long, default_value = "ACT")]
    pub policy_class: String,
    /// Weight of the KL term of the CVAE loss (original: 10).
    #[arg(long)]
    pub kl_weight: Option<f64>,
    /// Actions predicted per query (original: 100).
    #[arg(long)]
    pub chunk_size: Option<i64>,
    /// Transformer width dim_model (original: 512).
    #[arg(long)]
    pub hidden_dim: Option<i64>,
    /// Width of the transformer feed-forward layers (original: 3200).
    #[arg(long)]
    pub dim_feedforward: Option<i64>,
    /// Transformer encoder layers; the CVAE encoder gets as many, as in the original (original: 4).
    #[arg(long)]
    pub enc_layers: Option<i64>,
    /// Transformer decoder layers (the original builds 7 but only layer 0 reaches the output; 1
    /// is equivalent).
    #[arg(long)]
    pub dec_layers: Option<i64>,
    /// Attention heads (original: 8).
    #[arg(long)]
    pub nheads: Option<i64>,
    /// Size of the CVAE latent z (original: 32).
    #[arg(long)]
    pub latent_dim: Option<i64>,
    /// Dropout in the transformers (original: 0.1).
    #[arg(long)]
    pub dropout: Option<f64>,
    /// Samples per training step (original: 8).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Train for this many epochs; an epoch visits every training episode once, at a random
    /// start time (original: 2000). Exclusive with --steps.
    #[arg(long, conflicts_with = "steps")]
    pub num_epochs: Option<u64>,
    /// Train for this many optimizer steps instead of epochs.
    #[arg(long)]
    pub steps: Option<u64>,
    /// Learning rate of everything but the backbone (AdamW; original: 1e-5).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Learning rate of the ResNet-18 backbone; 0 freezes it, BatchNorm statistics included
    /// (original: 1e-5).
    #[arg(long)]
    pub lr_backbone: Option<f64>,
    /// AdamW weight decay, applied to every parameter (original: 1e-4).
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Seed of the initialisation, the train/val split, sampling, dropout and CVAE noise.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Cameras the model sees, comma-separated, in model order [default: top]. Given twice, the
    /// last list wins like every other flag (clap's default for a list is to append, which made
    /// `--camera-names top --camera-names top,angle` train on top, top and angle).
    #[arg(long, value_delimiter = ',', action = clap::ArgAction::Set)]
    pub camera_names: Option<Vec<String>>,
    /// Model input size HxW for every camera; frames of another size are resized on load (area
    /// averaging for integer factors, else bilinear) [default: the preset's].
    #[arg(long)]
    pub image_size: Option<String>,
    /// Normalisation statistics: act (unbiased std clipped at 0.01, (x-m)/s) or lerobot
    /// (population std, (x-m)/(s+1e-8)) [default: act].
    #[arg(long, value_enum)]
    pub normalization: Option<Normalization>,
    /// L1 variant: act (mean over all elements, padded ones count as 0) or lerobot (mean over
    /// valid elements) [default: act].
    #[arg(long, value_enum)]
    pub loss: Option<LossKind>,
    /// ImageNet ResNet-18 weights (torchvision key names conv1.weight, bn1.*, layer1.0..., as a
    /// safetensors file) to start the backbone from; without it the backbone trains from scratch.
    #[arg(long)]
    pub backbone_weights: Option<PathBuf>,
    /// Backbone BatchNorm while training: frozen (ACT's FrozenBatchNorm2d, right with ImageNet
    /// weights) or batch (batch statistics, trainable affine; trains a from-scratch backbone
    /// much faster) [default: the preset's: paper frozen, sim-small batch, tiny frozen].
    #[arg(long, value_enum)]
    pub backbone_bn: Option<BatchNormMode>,
    /// Clip the global gradient norm to this value (off by default, as in the original; LeRobot
    /// uses 10).
    #[arg(long)]
    pub clip_grad_norm: Option<f64>,
    /// Keep an exponential moving average of the weights with this decay (e.g. 0.999; warm-up
    /// min(decay, (1+t)/(10+t)) after update t) and validate, snapshot and export the averaged
    /// weights instead of the last ones. Off by default, as in ACT.
    #[arg(long)]
    pub ema_decay: Option<f64>,
    /// Learning-rate schedule: constant (ACT's) or cosine (half a cosine to 0 at the last step)
    /// [default: constant]. Applies to --lr and --lr-backbone alike.
    #[arg(long, value_enum)]
    pub lr_schedule: Option<LrSchedule>,
    /// Raise the learning rates linearly over the first N updates [default: 0].
    #[arg(long, value_name = "N")]
    pub warmup_steps: Option<u64>,
    /// Move each training image by a random offset of up to N pixels (at the model's image size)
    /// in each direction, border replicated (DrQ's random shift; validation images are not
    /// moved). Off by default, as in ACT, whose backbone starts from ImageNet weights.
    #[arg(long, value_name = "N")]
    pub augment_shift: Option<usize>,
    /// Share of the episodes held out for validation, the rest train [default: 0.2, ACT's
    /// train_ratio 0.8]. 0 trains on every episode and validates on none (then give
    /// --export-weights last: there is no validation loss to pick the best weights by). It cannot
    /// change on --resume (the checkpoint's split is kept).
    #[arg(long, value_name = "F")]
    pub val_fraction: Option<f64>,
    /// Which weights become policy.safetensors at the end: best (lowest validation loss) or last
    /// (the final step's). On insertion the validation loss picks poorly (README), so its
    /// recipe exports the last weights.
    #[arg(long, value_enum, default_value = "best")]
    pub export_weights: ExportWeights,
    /// Validate every N epochs, or with --steps every N steps [default: every epoch; with
    /// --steps every 500 steps]. A validation pass also follows the last step.
    #[arg(long)]
    pub val_every: Option<u64>,
    /// Write last.ckpt every N steps [default: where a validation pass is due (--val-every),
    /// also with --val-fraction 0]. best.ckpt is
    /// written whenever the validation loss improves; last.ckpt also at the end.
    #[arg(long)]
    pub ckpt_every: Option<u64>,
    /// Also export the policy every N steps as CKPT_DIR/snapshots/step_<N>.safetensors (act-core's
    /// single file, about the size of policy.safetensors each), for success over training time
    /// (`act-sim eval-snapshots`). Off by default; does not change what the run computes.
    #[arg(long)]
    pub snapshot_every: Option<u64>,
    /// Print a log line (step, loss, l1, kl, samples/s) every N steps.
    #[arg(long, default_value_t = 100)]
    pub log_every: u64,
    /// cpu, or cuda (GPU 0; needs a libtorch with CUDA).
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceArg,
    /// Continue from CKPT_DIR/last.ckpt (weights, optimizer moments, step, RNG position, loss
    /// history); --steps/--num-epochs may extend the run. Starts fresh when there is none.
    #[arg(long)]
    pub resume: bool,
    /// Memory for decoded, resized frames in MiB; frames are cached as first read, so a dataset
    /// that fits is read from disk once.
    #[arg(long, default_value_t = 2048)]
    pub cache_mb: u64,
    /// Batches the loader thread prepares ahead.
    #[arg(long, default_value_t = 4)]
    pub prefetch: usize,
    /// libtorch intra-op threads [default: libtorch's choice].
    #[arg(long)]
    pub threads: Option<i32>,
    /// No progress bar (log lines only).
    #[arg(long)]
    pub quiet: bool,
}

/// The resolved hyperparameters of a run (stored in checkpoints).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainArgs {
    pub preset: TrainPreset,
    pub policy_class: String,
    pub kl_weight: f64,
    pub chunk_size: i64,
    pub hidden_dim: i64,
    pub dim_feedforward: i64,
    pub enc_layers: i64,
    pub dec_layers: i64,
    pub nheads: i64,
    pub latent_dim: i64,
    pub dropout: f64,
    pub batch_size: usize,
    pub num_epochs: Option<u64>,
    pub steps: Option<u64>,
    pub lr: f64,
    pub lr_backbone: f64,
    pub weight_decay: f64,
    pub seed: u64,
    pub camera_names: Vec<String>,
    pub image_size: (i64, i64),
    pub normalization: Normalization,
    pub loss: LossKind,
    pub backbone_weights: Option<String>,
    /// Absent in checkpoints written before the option existed: those trained frozen.
    #[serde(default)]
    pub backbone_bn: BatchNormMode,
    pub clip_grad_norm: Option<f64>,
    pub val_every: ValEvery,
    /// Absent in checkpoints written before the option existed: those kept no average.
    #[serde(default)]
    pub ema_decay: Option<f64>,
    /// Absent in checkpoints written before the option existed: those did not augment.
    #[serde(default)]
    pub augment_shift: usize,
    /// Absent in checkpoints written before the option existed: those kept the rate constant.
    #[serde(default)]
    pub lr_schedule: LrSchedule,
    #[serde(default)]
    pub warmup_steps: u64,
    /// Absent in checkpoints written before the option existed: those held out ACT's 20 %.
    #[serde(default = "act_val_fraction")]
    pub val_fraction: f64,
}

/// ACT's share of validation episodes (`train_ratio = 0.8` in the original's `load_data`).
fn act_val_fraction() -> f64 {
    0.2
}

impl TrainArgs {
    pub fn preset(p: TrainPreset) -> Self {
        let base = TrainArgs {
            preset: p,
            policy_class: "ACT".into(),
            kl_weight: 10.0,
            chunk_size: 100,
            hidden_dim: 512,
            dim_feedforward: 3200,
            enc_layers: 4,
            dec_layers: 1,
            nheads: 8,
            latent_dim: 32,
            dropout: 0.1,
            batch_size: 8,
            num_epochs: Some(2000),
            steps: None,
            lr: 1e-5,
            lr_backbone: 1e-5,
            weight_decay: 1e-4,
            seed: 0,
            camera_names: vec!["top".into()],
            image_size: (480, 640),
            normalization: Normalization::Act,
            loss: LossKind::Act,
            backbone_weights: None,
            backbone_bn: BatchNormMode::Frozen,
            clip_grad_norm: None,
            val_every: ValEvery::Epochs(1),
            ema_decay: None,
            augment_shift: 0,
            lr_schedule: LrSchedule::Constant,
            warmup_steps: 0,
            val_fraction: act_val_fraction(),
        };
        match p {
            TrainPreset::Paper => base,
            TrainPreset::SimSmall => TrainArgs {
                hidden_dim: 256,
                dim_feedforward: 1024,
                lr: 1e-4,
                lr_backbone: 1e-4,
                num_epochs: None,
                steps: Some(3000),
                image_size: (120, 160),
                backbone_bn: BatchNormMode::Batch,
                val_every: ValEvery::Steps(500),
                ..base
            },
            TrainPreset::Tiny => TrainArgs {
                chunk_size: 8,
                hidden_dim: 32,
                dim_feedforward: 64,
                enc_layers: 1,
                dec_layers: 1,
                nheads: 2,
                latent_dim: 4,
                lr: 1e-3,
                lr_backbone: 1e-4,
                num_epochs: None,
                steps: Some(200),
                image_size: (64, 64),
                val_every: ValEvery::Steps(50),
                ..base
            },
        }
    }

    /// Applies the flags given on the command line.
    pub fn apply(&mut self, cli: &TrainCli) -> Result<()> {
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = &cli.$f { self.$f = v.clone(); } )* };
        }
        set!(
            kl_weight,
            chunk_size,
            hidden_dim,
            dim_feedforward,
            enc_layers,
            dec_layers,
            nheads,
            latent_dim,
            dropout,
            batch_size,
            lr,
            lr_backbone,
            weight_decay,
            seed,
            camera_names,
            normalization,
            loss
        );
        self.policy_class = cli.policy_class.clone();
        if let Some(p) = cli.preset {
            self.preset = p;
        }
        if cli.clip_grad_norm.is_some() {
            self.clip_grad_norm = cli.clip_grad_norm;
        }
        if cli.ema_decay.is_some() {
            self.ema_decay = cli.ema_decay;
        }
        if let Some(n) = cli.augment_shift {
            self.augment_shift = n;
        }
        if let Some(l) = cli.lr_schedule {
            self.lr_schedule = l;
        }
        if let Some(n) = cli.warmup_steps {
            self.warmup_steps = n;
        }
        if let Some(f) = cli.val_fraction {
            self.val_fraction = f;
        }
        if let Some(s) = &cli.image_size {
            self.image_size = parse_hw(s)?;
        }
        if let Some(m) = cli.backbone_bn {
            self.backbone_bn = m;
        }
        if let Some(p) = &cli.backbone_weights {
            self.backbone_weights = Some(p.display().to_string());
        }
        if let Some(n) = cli.steps {
            self.steps = Some(n);
            self.num_epochs = None;
        }
        if let Some(n) = cli.num_epochs {
            self.num_epochs = Some(n);
            self.steps = None;
        }
        let by_steps = self.steps.is_some();
        self.val_every = match (cli.val_every, by_steps, self.val_every) {
            (Some(n), true, _) => ValEvery::Steps(n),
            (Some(n), false, _) => ValEvery::Epochs(n),
            (None, true, ValEvery::Steps(n)) => ValEvery::Steps(n),
            (None, true, ValEvery::Epochs(_)) => ValEvery::Steps(500),
            (None, false, ValEvery::Epochs(n)) => ValEvery::Epochs(n),
            (None, false, ValEvery::Steps(_)) => ValEvery::Epochs(1),
        };
        // A frozen backbone (--lr-backbone 0) keeps its BatchNorm as it is too: in batch mode the
        // running statistics would still follow the training batches.
        if self.lr_backbone <= 0.0 && self.backbone_bn == BatchNormMode::Batch {
            ensure!(
                cli.backbone_bn.is_none(),
                "--lr-backbone 0 freezes the backbone, but --backbone-bn batch would keep updating its BatchNorm \
                 statistics; drop one of the two (the backbone's BatchNorm is frozen with --lr-backbone 0)"
            );
            self.backbone_bn = BatchNormMode::Frozen;
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<()> {
        ensure!(
            self.policy_class == "ACT",
            "--policy-class {:?} is not supported (ACT only)",
            self.policy_class
        );
        ensure!(self.batch_size >= 1, "--batch-size must be >= 1");
        ensure!(
            self.lr > 0.0 && self.lr.is_finite(),
            "--lr must be positive"
        );
        ensure!(self.lr_backbone >= 0.0, "--lr-backbone must be >= 0");
        ensure!(self.weight_decay >= 0.0, "--weight-decay must be >= 0");
        ensure!(self.kl_weight >= 0.0, "--kl-weight must be >= 0");
        ensure!(
            self.image_size.0 >= 32 && self.image_size.1 >= 32,
            "--image-size must be at least 32x32 (ResNet-18 downsamples by 32)"
        );
        ensure!(!self.camera_names.is_empty(), "--camera-names is empty");
        for (i, c) in self.camera_names.iter().enumerate() {
            ensure!(!c.is_empty(), "--camera-names {} has an empty name", self.camera_names.join(","));
            ensure!(
                !self.camera_names[..i].contains(c),
                "--camera-names {} lists camera {c:?} twice; each camera once",
                self.camera_names.join(",")
            );
        }
        match (self.steps, self.num_epochs) {
            (Some(s), _) => ensure!(s >= 1, "--steps must be >= 1"),
            (None, Some(e)) => ensure!(e >= 1, "--num-epochs must be >= 1"),
            (None, None) => bail!("give --steps or --num-epochs"),
        }
        if let Some(c) = self.clip_grad_norm {
            ensure!(c > 0.0, "--clip-grad-norm must be positive");
        }
        if let Some(d) = self.ema_decay {
            ensure!(d > 0.0 && d < 1.0, "--ema-decay must be in (0, 1), got {d}");
        }
        ensure!(
            (0.0..1.0).contains(&self.val_fraction),
            "--val-fraction must be in [0, 1) (0: train on every episode), got {}",
            self.val_fraction
        );
        let (h, w) = self.image_size;
        ensure!(
            (self.augment_shift as i64) * 4 <= h.min(w),
            "--augment-shift {} is more than a quarter of the {h}x{w} images; shifts that large mostly show \
             replicated border",
            self.augment_shift
        );
        Ok(())
    }

    /// The model configuration for data with these dimensions.
    pub fn act_config(&self, state_dim: i64, action_dim: i64) -> Result<ActConfig> {
        let mut cfg = ActConfig::default_aloha();
        cfg.dim_model = self.hidden_dim;
        cfg.n_heads = self.nheads;
        cfg.dim_feedforward = self.dim_feedforward;
        cfg.n_encoder_layers = self.enc_layers;
        cfg.n_decoder_layers = self.dec_layers;
        cfg.n_vae_encoder_layers = self.enc_layers;
        cfg.chunk_size = self.chunk_size;
        cfg.n_action_steps = self.chunk_size;
        cfg.latent_dim = self.latent_dim;
        cfg.dropout = self.dropout;
        cfg.kl_weight = self.kl_weight;
        let (h, w) = self.image_size;
        let cams: Vec<(&str, i64, i64)> = self.camera_names.iter().map(|c| (c.as_str(), h, w)).collect();
        cfg.set_cameras(&cams);
        let cfg = cfg.with_dims(state_dim, action_dim);
        cfg.validate().context("invalid model configuration")?;
        Ok(cfg)
    }

    /// Total optimizer steps for `n_train` training episodes.
    pub fn total_steps(&self, n_train: usize) -> u64 {
        match (self.steps, self.num_epochs) {
            (Some(s), _) => s,
            (None, Some(e)) => e * steps_per_epoch(n_train, self.batch_size),
            (None, None) => 0,
        }
    }
}

pub fn parse_hw(s: &str) -> Result<(i64, i64)> {
    let (h, w) = s
        .split_once(['x', 'X'])
        .with_context(|| format!("image size {s:?} is not HxW"))?;
    let h: i64 = h.trim().parse().with_context(|| format!("image height in {s:?}"))?;
    let w: i64 = w.trim().parse().with_context(|| format!("image width in {s:?}"))?;
    ensure!(h > 0 && w > 0, "image size {s:?} must be positive");
    Ok((h, w))
}
