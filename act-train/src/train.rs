//! The training loop (ACT_SPEC.md section 4): presets, the loss, validation, training
//! checkpoints (`last.ckpt`, `best.ckpt`) with exact resume, progress output, the loss CSV and
//! curve, and the final export to act-core's checkpoint forms.
//!
//! Determinism: every random choice is drawn from a generator seeded by the run seed and a
//! position: the split from the seed, each epoch's episode order and start times from the epoch
//! number, each validation pass from its step, and libtorch's generator (dropout, the CVAE's
//! noise) is reseeded at every step from the step number. A checkpoint therefore holds the whole
//! random state as (seed, step, epoch, batch in epoch), and a resumed run draws exactly what an
//! uninterrupted one would.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail, ensure};
use clap::{Args, ValueEnum};
use safetensors::tensor::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use crate::config::ActConfig;
use crate::data::{
    Batch, Dataset, JobKind, Loader, Normalization, Schedule, Split, TAG_INIT, TAG_TORCH_STEP, TAG_TORCH_VAL,
    ValEvery, compute_stats, derive_seed, split_episodes, steps_per_epoch,
};
use crate::export::{
    CheckpointForm, ExportOptions, NORM_ACTION_MEAN_KEY, NORM_ACTION_STD_KEY, RawTensor, STATE_MEAN_KEY,
    STATE_STD_KEY, Stats, UNNORM_ACTION_MEAN_KEY, UNNORM_ACTION_STD_KEY, WeightDtype, export_checkpoint,
    model_variables, write_atomic,
};
use crate::model::backbone::BatchNormMode;
use crate::model::{Act, normalize_image_u8};
use crate::optim::AdamW;
use crate::plot::write_loss_curve;

pub const LAST_CKPT: &str = "last.ckpt";
pub const BEST_CKPT: &str = "best.ckpt";
pub const LOSSES_CSV: &str = "losses.csv";
pub const LOSS_PNG: &str = "loss_curve.png";
pub const POLICY_FILE: &str = "policy.safetensors";
pub const POLICY_DIR: &str = "policy";
pub const CKPT_FORMAT: &str = "act-train-checkpoint-v1";

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

/// The loss variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LossKind {
    /// Original ACT: L1 = mean over ALL elements of |a - a_hat| * !is_pad.
    Act,
    /// LeRobot: L1 averaged over the valid (not padded) elements only.
    Lerobot,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    Cpu,
    Cuda,
}

/// `act-train train`. Hyperparameters left out take the preset's value; on `--resume` they come
/// from the checkpoint, and giving one that differs is an error.
#[derive(Args, Clone, Debug)]
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
    /// Cameras the model sees, comma-separated, in model order [default: top].
    #[arg(long, value_delimiter = ',')]
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
    /// Validate every N epochs, or with --steps every N steps [default: every epoch; with
    /// --steps every 500 steps]. A validation pass also follows the last step.
    #[arg(long)]
    pub val_every: Option<u64>,
    /// Write last.ckpt every N steps [default: after every validation pass]. best.ckpt is
    /// written whenever the validation loss improves; last.ckpt also at the end.
    #[arg(long)]
    pub ckpt_every: Option<u64>,
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
        match (self.steps, self.num_epochs) {
            (Some(s), _) => ensure!(s >= 1, "--steps must be >= 1"),
            (None, Some(e)) => ensure!(e >= 1, "--num-epochs must be >= 1"),
            (None, None) => bail!("give --steps or --num-epochs"),
        }
        if let Some(c) = self.clip_grad_norm {
            ensure!(c > 0.0, "--clip-grad-norm must be positive");
        }
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

// ---------------------------------------------------------------------------------------------
// Loss

/// ACT's loss. `a_hat`, `actions`: `[B, chunk, A]` (normalised); `is_pad`: `[B, chunk]` bool;
/// `mu`, `logvar`: `[B, latent]`. Returns (loss, l1, kl) as scalar tensors:
/// L1 = mean over all B*chunk*A elements of |a - a_hat| * !is_pad (act) or over the valid
/// elements only (lerobot); KL = sum over latent of -0.5 (1 + logvar - mu^2 - exp(logvar)),
/// mean over the batch; loss = L1 + kl_weight * KL.
pub fn act_loss(
    a_hat: &Tensor,
    actions: &Tensor,
    is_pad: &Tensor,
    mu: &Tensor,
    logvar: &Tensor,
    kl_weight: f64,
    kind: LossKind,
) -> (Tensor, Tensor, Tensor) {
    let valid = is_pad.logical_not().unsqueeze(-1).to_kind(Kind::Float);
    let masked = (actions - a_hat).abs() * &valid;
    let l1 = match kind {
        LossKind::Act => masked.mean(Kind::Float),
        LossKind::Lerobot => {
            let a = actions.size()[2] as f64;
            masked.sum(Kind::Float) / (valid.sum(Kind::Float) * a).clamp_min(1.0)
        }
    };
    let klds = (logvar.exp() + mu.square() - logvar - 1.0) * 0.5;
    let kl = klds.sum_dim_intlist(1, false, Kind::Float).mean(Kind::Float);
    let loss = &l1 + &kl * kl_weight;
    (loss, l1, kl)
}

// ---------------------------------------------------------------------------------------------
// History

/// One row of the loss history: a training step (the batch's losses) or a validation pass
/// (mean of its batches' losses, as ACT averages them).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossRow {
    pub step: u64,
    pub epoch: u64,
    pub val: bool,
    pub l1: f64,
    pub kl: f64,
    pub loss: f64,
}

fn history_to_raw(h: &[LossRow]) -> RawTensor {
    let mut data = Vec::with_capacity(h.len() * 6 * 8);
    for r in h {
        for v in [r.step as f64, r.epoch as f64, r.val as u8 as f64, r.l1, r.kl, r.loss] {
            data.extend_from_slice(&v.to_le_bytes());
        }
    }
    RawTensor {
        dtype: Dtype::F64,
        shape: vec![h.len(), 6],
        data,
    }
}

fn history_from_bytes(b: &[u8]) -> Vec<LossRow> {
    let v: Vec<f64> = b.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect();
    v.chunks_exact(6)
        .map(|r| LossRow {
            step: r[0] as u64,
            epoch: r[1] as u64,
            val: r[2] != 0.0,
            l1: r[3],
            kl: r[4],
            loss: r[5],
        })
        .collect()
}

/// Writes `losses.csv` (step,epoch,split,l1,kl,loss) atomically.
pub fn write_losses_csv(path: &Path, h: &[LossRow]) -> Result<()> {
    let mut s = String::from("step,epoch,split,l1,kl,loss\n");
    for r in h {
        s.push_str(&format!(
            "{},{},{},{},{},{}\n",
            r.step,
            r.epoch,
            if r.val { "val" } else { "train" },
            r.l1,
            r.kl,
            r.loss
        ));
    }
    write_atomic(path, s.as_bytes())
}

// ---------------------------------------------------------------------------------------------
// Training checkpoints

/// Position and bookkeeping of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// Steps done (the next step's index).
    pub step: u64,
    /// Current epoch and the next batch within it.
    pub epoch: u64,
    pub batch_in_epoch: u64,
    /// AdamW steps taken.
    pub adam_t: i64,
    pub best_val: Option<f64>,
    pub best_step: Option<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct StatsJson {
    state_mean: Vec<f32>,
    state_std: Vec<f32>,
    action_mean: Vec<f32>,
    action_std: Vec<f32>,
    std_eps: f32,
}

impl From<&Stats> for StatsJson {
    fn from(s: &Stats) -> Self {
        StatsJson {
            state_mean: s.state_mean.clone(),
            state_std: s.state_std.clone(),
            action_mean: s.action_mean.clone(),
            action_std: s.action_std.clone(),
            std_eps: s.std_eps,
        }
    }
}

impl From<StatsJson> for Stats {
    fn from(s: StatsJson) -> Self {
        Stats {
            state_mean: s.state_mean,
            state_std: s.state_std,
            action_mean: s.action_mean,
            action_std: s.action_std,
            std_eps: s.std_eps,
        }
    }
}

/// The JSON in a checkpoint's `__metadata__["act_train"]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct CkptMeta {
    format: String,
    args: TrainArgs,
    state: RunState,
    /// The random state: a counter-based generator (SplitMix64) keyed by this seed and the
    /// position in `state`.
    rng: RngState,
    stats: StatsJson,
    n_episodes: usize,
    split_train: Vec<usize>,
    split_val: Vec<usize>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct RngState {
    kind: String,
    seed: u64,
    step: u64,
    epoch: u64,
    batch_in_epoch: u64,
}

/// A training checkpoint read back.
pub struct TrainingCheckpoint {
    pub args: TrainArgs,
    pub config: ActConfig,
    pub stats: Stats,
    pub state: RunState,
    pub history: Vec<LossRow>,
    pub n_episodes: usize,
    pub split: Split,
    bytes: Vec<u8>,
}

impl TrainingCheckpoint {
    /// Reads and checks the metadata of a training checkpoint (`last.ckpt`/`best.ckpt`).
    pub fn read(path: &Path) -> Result<Self> {
        // Regular files only (a FIFO would block forever), at most the memory budget.
        let bytes = act_core::fs::read_regular_file(path, act_core::DEFAULT_MEMORY_BUDGET, "the memory budget")
            .with_context(|| format!("reading {}", path.display()))?;
        let (_, meta) = SafeTensors::read_metadata(&bytes)
            .map_err(|e| anyhow!("{}: not a safetensors checkpoint: {e}", path.display()))?;
        let md = meta
            .metadata()
            .as_ref()
            .ok_or_else(|| anyhow!("{}: no metadata (not an act-train checkpoint)", path.display()))?;
        let text = md
            .get("act_train")
            .ok_or_else(|| anyhow!("{}: not an act-train training checkpoint (no act_train metadata)", path.display()))?;
        let m: CkptMeta = serde_json::from_str(text).with_context(|| format!("{}: act_train metadata", path.display()))?;
        ensure!(
            m.format == CKPT_FORMAT,
            "{}: checkpoint format {:?}, expected {CKPT_FORMAT}",
            path.display(),
            m.format
        );
        let config = ActConfig::from_json(
            md.get("config")
                .ok_or_else(|| anyhow!("{}: no config metadata", path.display()))?,
        )?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        let history = match st.tensor("train.history") {
            Ok(v) => history_from_bytes(v.data()),
            Err(_) => Vec::new(),
        };
        Ok(TrainingCheckpoint {
            args: m.args,
            config,
            stats: m.stats.into(),
            state: m.state,
            history,
            n_episodes: m.n_episodes,
            split: Split {
                train: m.split_train,
                val: m.split_val,
            },
            bytes,
        })
    }

    /// Copies the weights (every `model.*` variable) into `vs`.
    pub fn load_weights(&self, vs: &VarStore) -> Result<()> {
        let st = SafeTensors::deserialize(&self.bytes).map_err(|e| anyhow!("{e}"))?;
        for (name, var) in model_variables(vs) {
            let t = tensor_of(&st, &name)?;
            ensure!(
                t.size() == var.size(),
                "checkpoint tensor {name} has shape {:?}, the model {:?}",
                t.size(),
                var.size()
            );
            tch::no_grad(|| {
                let mut v = var.shallow_clone();
                v.copy_(&t.to_device(var.device()));
            });
        }
        Ok(())
    }

    pub fn load_optimizer(&self, opt: &mut AdamW) -> Result<()> {
        let st = SafeTensors::deserialize(&self.bytes).map_err(|e| anyhow!("{e}"))?;
        let get = |name: &str| -> Option<(Tensor, Tensor)> {
            let m = tensor_of(&st, &format!("optim.exp_avg.{name}")).ok()?;
            let v = tensor_of(&st, &format!("optim.exp_avg_sq.{name}")).ok()?;
            Some((m, v))
        };
        opt.load_moments(self.state.adam_t, &get)
    }
}

fn tensor_of(st: &SafeTensors, name: &str) -> Result<Tensor> {
    let v = st.tensor(name).map_err(|e| anyhow!("tensor {name}: {e}"))?;
    ensure!(v.dtype() == Dtype::F32, "tensor {name} is {:?}, expected F32", v.dtype());
    let shape: Vec<i64> = v.shape().iter().map(|&d| d as i64).collect();
    Ok(Tensor::from_data_size(v.data(), &shape, Kind::Float))
}

#[allow(clippy::too_many_arguments)]
fn save_checkpoint(
    path: &Path,
    vs: &VarStore,
    opt: &AdamW,
    cfg: &ActConfig,
    args: &TrainArgs,
    stats: &Stats,
    state: &RunState,
    history: &[LossRow],
    n_episodes: usize,
    split: &Split,
) -> Result<()> {
    let mut tensors: Vec<(String, RawTensor)> = Vec::new();
    for (name, t) in model_variables(vs) {
        tensors.push((name, RawTensor::from_tensor(&t, WeightDtype::F32)));
    }
    for p in &opt.params {
        tensors.push((
            format!("optim.exp_avg.{}", p.name),
            RawTensor::from_tensor(&p.exp_avg, WeightDtype::F32),
        ));
        tensors.push((
            format!("optim.exp_avg_sq.{}", p.name),
            RawTensor::from_tensor(&p.exp_avg_sq, WeightDtype::F32),
        ));
    }
    let st = |v: &[f32]| RawTensor::from_f32(v, &[v.len()], WeightDtype::F32);
    tensors.push((STATE_MEAN_KEY.into(), st(&stats.state_mean)));
    tensors.push((STATE_STD_KEY.into(), st(&stats.state_std)));
    tensors.push((UNNORM_ACTION_MEAN_KEY.into(), st(&stats.action_mean)));
    tensors.push((UNNORM_ACTION_STD_KEY.into(), st(&stats.action_std)));
    tensors.push((NORM_ACTION_MEAN_KEY.into(), st(&stats.action_mean)));
    tensors.push((NORM_ACTION_STD_KEY.into(), st(&stats.action_std)));
    if !history.is_empty() {
        tensors.push(("train.history".into(), history_to_raw(history)));
    }
    let meta = CkptMeta {
        format: CKPT_FORMAT.into(),
        args: args.clone(),
        state: state.clone(),
        rng: RngState {
            kind: "splitmix64-counter".into(),
            seed: args.seed,
            step: state.step,
            epoch: state.epoch,
            batch_in_epoch: state.batch_in_epoch,
        },
        stats: stats.into(),
        n_episodes,
        split_train: split.train.clone(),
        split_val: split.val.clone(),
    };
    let metadata = HashMap::from([
        ("act_train".to_string(), serde_json::to_string(&meta)?),
        ("config".to_string(), cfg.to_json()?),
        ("format".to_string(), "act-rs".to_string()),
        ("std_eps".to_string(), format!("{}", stats.std_eps)),
    ]);
    let bytes = safetensors::serialize(tensors.iter().map(|(k, t)| (k.as_str(), t)), Some(metadata))
        .map_err(|e| anyhow!("serialising {}: {e}", path.display()))?;
    write_atomic(path, &bytes).with_context(|| format!("writing checkpoint {}", path.display()))
}

/// Exports a training checkpoint (weights, config, statistics) to an act-core checkpoint form.
pub fn export_training_checkpoint(ckpt: &Path, out: &Path, form: CheckpointForm, opts: &ExportOptions) -> Result<()> {
    let c = TrainingCheckpoint::read(ckpt)?;
    let vs = VarStore::new(Device::Cpu);
    Act::new(&vs.root(), &c.config)?;
    c.load_weights(&vs)?;
    export_checkpoint(form, out, &vs, &c.config, &c.stats, opts)
}

// ---------------------------------------------------------------------------------------------
// Backbone weights

/// Loads ImageNet ResNet-18 weights with torchvision names (`conv1.weight`, `bn1.weight`,
/// `bn1.running_mean`, `layer1.0.conv1.weight`, ...; also accepted with a `backbone.` or
/// `model.backbone.` prefix) into the `model.backbone.*` variables, including the frozen
/// BatchNorm statistics. `fc.*` and `num_batches_tracked` are ignored. Returns the count loaded.
pub fn load_backbone_weights(vs: &VarStore, path: &Path) -> Result<usize> {
    let bytes = act_core::fs::read_regular_file(path, act_core::DEFAULT_MEMORY_BUDGET, "the memory budget")
        .with_context(|| format!("reading backbone weights {}", path.display()))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| anyhow!("{}: not a safetensors file: {e}", path.display()))?;
    let mut n = 0;
    let mut missing = Vec::new();
    for (name, var) in model_variables(vs) {
        let Some(key) = name.strip_prefix("model.backbone.") else {
            continue;
        };
        let candidates = [key.to_string(), format!("backbone.{key}"), format!("model.backbone.{key}")];
        let Some(view) = candidates.iter().find_map(|k| st.tensor(k).ok()) else {
            missing.push(key.to_string());
            continue;
        };
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        ensure!(
            shape == var.size(),
            "{}: {key} has shape {shape:?}, ResNet-18 needs {:?}",
            path.display(),
            var.size()
        );
        let kind = match view.dtype() {
            Dtype::F32 => Kind::Float,
            Dtype::F16 => Kind::Half,
            Dtype::BF16 => Kind::BFloat16,
            Dtype::F64 => Kind::Double,
            d => bail!("{}: {key} has unsupported dtype {d:?}", path.display()),
        };
        let t = Tensor::from_data_size(view.data(), &shape, kind);
        tch::no_grad(|| {
            let mut v = var.shallow_clone();
            v.copy_(&t.to_kind(Kind::Float).to_device(var.device()));
        });
        n += 1;
    }
    ensure!(
        missing.is_empty(),
        "{}: {} ResNet-18 tensors missing (torchvision names expected), e.g. {}",
        path.display(),
        missing.len(),
        missing.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
    );
    Ok(n)
}

// ---------------------------------------------------------------------------------------------
// The loop

/// What a finished run reports.
#[derive(Debug)]
pub struct TrainSummary {
    pub steps: u64,
    pub history: Vec<LossRow>,
    pub best_val: Option<f64>,
    pub best_step: Option<u64>,
    pub policy_file: PathBuf,
    pub samples_per_s: f64,
}

fn batch_tensors(b: &Batch, cfg: &ActConfig, device: Device) -> (Tensor, Vec<Tensor>, Tensor, Tensor) {
    let n = b.size as i64;
    let qpos = Tensor::from_slice(&b.qpos)
        .view([n, cfg.state_dim()])
        .to_device(device);
    let images = cfg
        .cameras()
        .iter()
        .zip(&b.images)
        .map(|((_, h, w), img)| normalize_image_u8(&Tensor::from_slice(img).view([n, *h, *w, 3]).to_device(device)))
        .collect();
    let actions = Tensor::from_slice(&b.actions)
        .view([n, cfg.chunk_size, cfg.action_dim()])
        .to_device(device);
    let is_pad = Tensor::from_slice(&b.is_pad)
        .view([n, cfg.chunk_size])
        .to_device(device);
    (qpos, images, actions, is_pad)
}

fn device_of(d: DeviceArg) -> Result<Device> {
    Ok(match d {
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

/// Removes temporary files a killed run left behind (`.last.ckpt.tmp-<pid>`, ...); the files
/// they were meant to replace are intact, since writes end with a rename.
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefixes: Vec<String> = [LAST_CKPT, BEST_CKPT, LOSSES_CSV]
        .iter()
        .map(|n| format!(".{n}.tmp-"))
        .chain([".loss_curve.tmp-".to_string(), format!(".{POLICY_FILE}.tmp-")])
        .collect();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if prefixes.iter().any(|p| name.starts_with(p.as_str())) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Runs `act-train train`.
pub fn run(cli: &TrainCli) -> Result<TrainSummary> {
    let device = device_of(cli.device)?;
    if let Some(n) = cli.threads {
        tch::set_num_threads(n);
    }
    let dir = &cli.ckpt_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("creating checkpoint directory {}", dir.display()))?;
    let last_path = dir.join(LAST_CKPT);
    let best_path = dir.join(BEST_CKPT);
    remove_stale_temporaries(dir);

    let resumed = if cli.resume && last_path.exists() {
        Some(TrainingCheckpoint::read(&last_path)?)
    } else {
        ensure!(
            !last_path.exists(),
            "{} already holds a checkpoint; pass --resume to continue it, or use another --ckpt-dir",
            dir.display()
        );
        if cli.resume {
            eprintln!("no {} yet: starting a new run", last_path.display());
        }
        None
    };

    let args = match &resumed {
        None => {
            let mut a = TrainArgs::preset(cli.preset.unwrap_or(TrainPreset::SimSmall));
            a.apply(cli)?;
            a
        }
        Some(c) => {
            let mut a = c.args.clone();
            a.apply(cli)?;
            let mut cmp = a.clone();
            cmp.steps = c.args.steps;
            cmp.num_epochs = c.args.num_epochs;
            if cli.val_every.is_none() {
                cmp.val_every = c.args.val_every;
            }
            if cmp != c.args {
                bail!(
                    "--resume: the flags given differ from the checkpoint's run ({}); only --steps/--num-epochs, \
                     --ckpt-every, --log-every, --device and loader settings may change.\ncheckpoint: {:?}\nflags: {:?}",
                    last_path.display(),
                    c.args,
                    cmp
                );
            }
            // A resumed run keeps its validation schedule unless --val-every is given.
            if cli.val_every.is_none() {
                a.val_every = c.args.val_every;
            }
            a
        }
    };
    args.validate()?;

    let dataset = Dataset::open(&cli.dataset_dir, &args.camera_names)?;
    let n_eps = dataset.episodes.len();
    let cfg = args.act_config(dataset.state_dim as i64, dataset.action_dim as i64)?;
    let (stats, split) = match &resumed {
        Some(c) => {
            ensure!(
                c.n_episodes == n_eps,
                "--resume: the checkpoint was trained on {} episodes, {} holds {n_eps}",
                c.n_episodes,
                cli.dataset_dir.display()
            );
            ensure!(
                c.config == cfg,
                "--resume: the dataset's dimensions do not match the checkpoint's model"
            );
            (c.stats.clone(), c.split.clone())
        }
        None => (
            compute_stats(&dataset.episodes, args.normalization),
            split_episodes(n_eps, args.seed),
        ),
    };
    stats.validate(&cfg).context("dataset statistics")?;
    let total_steps = args.total_steps(split.train.len());

    // Model and optimizer.
    tch::manual_seed(derive_seed(args.seed, TAG_INIT, 0) as i64);
    let vs = VarStore::new(device);
    let mut model = Act::new(&vs.root(), &cfg)?;
    model.backbone.set_batchnorm_mode(args.backbone_bn);
    if args.lr_backbone <= 0.0 {
        for (name, t) in vs.variables() {
            if name.starts_with("model.backbone.") {
                let _ = t.set_requires_grad(false);
            }
        }
    }
    let mut opt = AdamW::new(&vs, args.lr, args.lr_backbone, args.weight_decay);
    let mut history: Vec<LossRow> = Vec::new();
    let mut state = RunState {
        step: 0,
        epoch: 0,
        batch_in_epoch: 0,
        adam_t: 0,
        best_val: None,
        best_step: None,
    };
    match &resumed {
        Some(c) => {
            c.load_weights(&vs)?;
            c.load_optimizer(&mut opt)?;
            state = c.state.clone();
            history = c.history.clone();
            history.retain(|r| r.step < state.step);
            eprintln!(
                "resuming {} at step {} (epoch {}) of {total_steps}",
                last_path.display(),
                state.step,
                state.epoch
            );
        }
        None => {
            if let Some(p) = &args.backbone_weights {
                let n = load_backbone_weights(&vs, Path::new(p))?;
                eprintln!("loaded {n} backbone tensors from {p}");
            }
        }
    }
    eprintln!(
        "{} episodes ({} train, {} val), {} steps per epoch, {} steps, model dim {} ff {} enc {} dec {} chunk {}, \
         images {}x{}, backbone BatchNorm {:?}, {} trainable tensors on {:?}",
        n_eps,
        split.train.len(),
        split.val.len(),
        steps_per_epoch(split.train.len(), args.batch_size),
        total_steps,
        cfg.dim_model,
        cfg.dim_feedforward,
        cfg.n_encoder_layers,
        cfg.n_decoder_layers,
        cfg.chunk_size,
        args.image_size.0,
        args.image_size.1,
        args.backbone_bn,
        opt.params.len(),
        device
    );

    let loader = Loader {
        episodes: std::sync::Arc::new(dataset.episodes.clone()),
        cameras: dataset.cameras.clone(),
        file_hw: dataset.file_hw.clone(),
        model_hw: cfg
            .cameras()
            .iter()
            .map(|(_, h, w)| (*h as usize, *w as usize))
            .collect(),
        chunk: cfg.chunk_size as usize,
        stats: stats.clone(),
        cache_bytes: (cli.cache_mb as usize) << 20,
    };
    let schedule = Schedule::new(
        split.clone(),
        dataset.lens(),
        args.seed,
        args.batch_size,
        total_steps,
        args.val_every,
        state.step,
        state.epoch,
        state.batch_in_epoch,
    );
    let (rx, handle) = loader.spawn(schedule, cli.prefetch);

    let pb = if cli.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(total_steps)
    };
    pb.set_style(
        indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg} (eta {eta})")
            .unwrap()
            .progress_chars("=> "),
    );
    pb.set_position(state.step);
    let log = |s: String| {
        if pb.is_hidden() {
            eprintln!("{s}");
        } else {
            pb.println(s);
        }
    };

    let save = |path: &Path, opt: &AdamW, state: &RunState, history: &[LossRow]| -> Result<()> {
        save_checkpoint(path, &vs, opt, &cfg, &args, &stats, state, history, n_eps, &split)
    };
    let write_curves = |history: &[LossRow]| -> Result<()> {
        write_losses_csv(&dir.join(LOSSES_CSV), history)?;
        write_loss_curve(&dir.join(LOSS_PNG), history)
    };

    let start_step = state.step;
    let t0 = Instant::now();
    let mut window = (Instant::now(), 0usize);
    let mut samples_total = 0usize;
    let mut val_sum = (0.0f64, 0.0f64, 0.0f64, 0usize);
    let mut ckpt_after_val = false;
    let mut last_saved_step = if resumed.is_some() { Some(state.step) } else { None };

    for item in rx.iter() {
        let batch = item?;
        match batch.kind {
            JobKind::Train {
                step,
                epoch,
                epoch_after,
                batch_after,
                val_follows,
            } => {
                debug_assert_eq!(step, state.step);
                tch::manual_seed(derive_seed(args.seed, TAG_TORCH_STEP, step) as i64);
                let (qpos, images, actions, is_pad) = batch_tensors(&batch, &cfg, device);
                let (a_hat, mu, logvar) = model.forward_train(&qpos, &images, &actions, &is_pad, true);
                let (loss, l1, kl) = act_loss(&a_hat, &actions, &is_pad, &mu, &logvar, args.kl_weight, args.loss);
                let (lv, l1v, klv) = (loss.double_value(&[]), l1.double_value(&[]), kl.double_value(&[]));
                if !lv.is_finite() {
                    pb.abandon();
                    let kept = match last_saved_step {
                        Some(s) => format!("{} (step {s}) is intact", last_path.display()),
                        None => "no checkpoint had been written yet".to_string(),
                    };
                    bail!(
                        "non-finite loss at step {step} (epoch {epoch}): loss {lv}, l1 {l1v}, kl {klv}; training stopped; {kept}"
                    );
                }
                opt.zero_grad();
                loss.backward();
                if let Some(c) = args.clip_grad_norm {
                    opt.clip_grad_norm(c);
                }
                opt.step();
                history.push(LossRow {
                    step,
                    epoch,
                    val: false,
                    l1: l1v,
                    kl: klv,
                    loss: lv,
                });
                state.step = step + 1;
                state.epoch = epoch_after;
                state.batch_in_epoch = batch_after;
                state.adam_t = opt.t;
                samples_total += batch.size;
                window.1 += batch.size;
                let sps = window.1 as f64 / window.0.elapsed().as_secs_f64().max(1e-9);
                pb.set_position(state.step);
                pb.set_message(format!("loss {lv:.4} l1 {l1v:.4} kl {klv:.4} {sps:.1} samples/s"));
                if cli.log_every > 0 && (state.step.is_multiple_of(cli.log_every) || state.step == total_steps) {
                    log(format!(
                        "step {}/{total_steps} epoch {epoch} loss {lv:.5} l1 {l1v:.5} kl {klv:.5} {sps:.1} samples/s",
                        state.step
                    ));
                    window = (Instant::now(), 0);
                }
                let ckpt_due = state.step == total_steps
                    || match cli.ckpt_every {
                        Some(k) => k > 0 && state.step.is_multiple_of(k),
                        None => val_follows,
                    };
                if val_follows {
                    ckpt_after_val = ckpt_due;
                    val_sum = (0.0, 0.0, 0.0, 0);
                } else if ckpt_due {
                    save(&last_path, &opt, &state, &history)?;
                    write_curves(&history)?;
                    last_saved_step = Some(state.step);
                }
            }
            JobKind::Val { step, last, .. } => {
                tch::manual_seed(derive_seed(args.seed, TAG_TORCH_VAL, step) as i64);
                let (l1v, klv, lv) = tch::no_grad(|| {
                    let (qpos, images, actions, is_pad) = batch_tensors(&batch, &cfg, device);
                    let (a_hat, mu, logvar) = model.forward_train(&qpos, &images, &actions, &is_pad, false);
                    let (loss, l1, kl) = act_loss(&a_hat, &actions, &is_pad, &mu, &logvar, args.kl_weight, args.loss);
                    (l1.double_value(&[]), kl.double_value(&[]), loss.double_value(&[]))
                });
                val_sum.0 += l1v;
                val_sum.1 += klv;
                val_sum.2 += lv;
                val_sum.3 += 1;
                if last {
                    let n = val_sum.3.max(1) as f64;
                    let row = LossRow {
                        step,
                        epoch: state.epoch,
                        val: true,
                        l1: val_sum.0 / n,
                        kl: val_sum.1 / n,
                        loss: val_sum.2 / n,
                    };
                    history.push(row);
                    let improved = row.loss.is_finite() && state.best_val.is_none_or(|b| row.loss < b);
                    log(format!(
                        "val after step {} loss {:.5} l1 {:.5} kl {:.5}{}",
                        step + 1,
                        row.loss,
                        row.l1,
                        row.kl,
                        if improved { " (best)" } else { "" }
                    ));
                    if improved {
                        state.best_val = Some(row.loss);
                        state.best_step = Some(state.step);
                        save(&best_path, &opt, &state, &history)?;
                    }
                    if ckpt_after_val {
                        save(&last_path, &opt, &state, &history)?;
                        write_curves(&history)?;
                        last_saved_step = Some(state.step);
                        ckpt_after_val = false;
                    }
                }
            }
        }
    }
    drop(rx);
    handle
        .join()
        .map_err(|_| anyhow!("the loader thread panicked"))?;
    ensure!(
        state.step >= total_steps,
        "training ended at step {} of {total_steps} (loader stopped early)",
        state.step
    );
    pb.finish_and_clear();
    if last_saved_step != Some(state.step) {
        save(&last_path, &opt, &state, &history)?;
    }
    write_curves(&history)?;

    // Export the best weights (by validation loss), else the last ones.
    let src = if best_path.exists() { &best_path } else { &last_path };
    let policy_file = dir.join(POLICY_FILE);
    export_training_checkpoint(src, &policy_file, CheckpointForm::Single, &ExportOptions::default())?;
    export_training_checkpoint(src, &dir.join(POLICY_DIR), CheckpointForm::Dir, &ExportOptions::default())?;
    let elapsed = t0.elapsed().as_secs_f64();
    let sps = samples_total as f64 / elapsed.max(1e-9);
    eprintln!(
        "done: {} steps ({} this run, {sps:.1} samples/s incl. validation and checkpoints), best val loss {} at step {}; \
         exported {} from {}",
        state.step,
        state.step - start_step,
        state.best_val.map_or("-".into(), |v| format!("{v:.5}")),
        state.best_step.map_or("-".into(), |v| v.to_string()),
        policy_file.display(),
        src.display()
    );
    Ok(TrainSummary {
        steps: state.step,
        history,
        best_val: state.best_val,
        best_step: state.best_step,
        policy_file,
        samples_per_s: sps,
    })
}

// ---------------------------------------------------------------------------------------------
// Throughput benchmark

/// Training samples per second of one preset on random data (forward, backward, AdamW step;
/// no disk): `warmup` untimed steps, then `steps` timed ones. Returns samples/s.
pub fn bench(
    preset: TrainPreset,
    batch: Option<usize>,
    image_size: Option<(i64, i64)>,
    steps: usize,
    warmup: usize,
    device: DeviceArg,
) -> Result<f64> {
    let device = device_of(device)?;
    let mut args = TrainArgs::preset(preset);
    if let Some(hw) = image_size {
        args.image_size = hw;
    }
    let b = batch.unwrap_or(args.batch_size) as i64;
    let cfg = args.act_config(14, 14)?;
    tch::manual_seed(0);
    let vs = VarStore::new(device);
    let mut model = Act::new(&vs.root(), &cfg)?;
    model.backbone.set_batchnorm_mode(args.backbone_bn);
    let mut opt = AdamW::new(&vs, args.lr, args.lr_backbone, args.weight_decay);
    let chunk = cfg.chunk_size;
    let qpos = Tensor::randn([b, 14], (Kind::Float, device));
    let images: Vec<Tensor> = cfg
        .cameras()
        .iter()
        .map(|(_, h, w)| {
            normalize_image_u8(&Tensor::randint(256, [b, *h, *w, 3], (Kind::Uint8, device)))
        })
        .collect();
    let actions = Tensor::randn([b, chunk, 14], (Kind::Float, device));
    let is_pad = Tensor::zeros([b, chunk], (Kind::Bool, device));
    let mut times = [0f64; 3];
    let mut step = |times: &mut [f64; 3]| {
        let t0 = Instant::now();
        let (a_hat, mu, logvar) = model.forward_train(&qpos, &images, &actions, &is_pad, true);
        let (loss, _, _) = act_loss(&a_hat, &actions, &is_pad, &mu, &logvar, args.kl_weight, args.loss);
        let v = loss.double_value(&[]);
        let t1 = Instant::now();
        opt.zero_grad();
        loss.backward();
        let _ = opt.params[0].var.grad().double_value(&[0]);
        let t2 = Instant::now();
        opt.step();
        let _ = opt.params[0].var.double_value(&[0]);
        let t3 = Instant::now();
        times[0] += (t1 - t0).as_secs_f64();
        times[1] += (t2 - t1).as_secs_f64();
        times[2] += (t3 - t2).as_secs_f64();
        v
    };
    let mut scratch = [0f64; 3];
    for _ in 0..warmup {
        step(&mut scratch);
    }
    let t = Instant::now();
    for _ in 0..steps {
        step(&mut times);
    }
    let n = steps.max(1) as f64 * 1e-3;
    eprintln!(
        "{preset:?} batch {b}, images {}x{}: per step forward {:.0} ms, backward {:.0} ms, AdamW {:.0} ms",
        args.image_size.0,
        args.image_size.1,
        times[0] / n,
        times[1] / n,
        times[2] / n
    );
    Ok((steps as i64 * b) as f64 / t.elapsed().as_secs_f64())
}
