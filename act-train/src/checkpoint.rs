//! Training checkpoints (`last.ckpt`, `best.ckpt`): the weights, AdamW's moments, the run's
//! settings, position and random state, the statistics and the loss history in one safetensors
//! file, so that a resumed run draws exactly what an uninterrupted one would; and their export to
//! act-core's checkpoint forms.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, anyhow, ensure};
use safetensors::tensor::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use crate::cli::TrainArgs;
use crate::config::ActConfig;
use crate::data::Split;
use crate::ema::{EMA_PREFIX, Ema};
use crate::export::{
    CheckpointForm, ExportOptions, NORM_ACTION_MEAN_KEY, NORM_ACTION_STD_KEY, RawTensor, STATE_MEAN_KEY,
    STATE_STD_KEY, Stats, UNNORM_ACTION_MEAN_KEY, UNNORM_ACTION_STD_KEY, WeightDtype, export_checkpoint,
    model_variables, write_atomic,
};
use crate::loss::LossRow;
use crate::model::Act;
use crate::optim::AdamW;

pub const LAST_CKPT: &str = "last.ckpt";
pub const BEST_CKPT: &str = "best.ckpt";
pub const CKPT_FORMAT: &str = "act-train-checkpoint-v1";

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
        self.load_prefixed(vs, "")
    }

    /// True when the run kept an average of its weights (`--ema-decay`).
    pub fn has_ema(&self) -> bool {
        self.args.ema_decay.is_some()
    }

    /// Copies the averaged weights (`ema.model.*`) into `vs`.
    pub fn load_ema_weights(&self, vs: &VarStore) -> Result<()> {
        ensure!(self.has_ema(), "the checkpoint's run kept no average of its weights (no --ema-decay)");
        self.load_prefixed(vs, EMA_PREFIX)
    }

    /// The weights a policy is exported from: the averaged ones when the run kept an average.
    pub fn load_policy_weights(&self, vs: &VarStore) -> Result<()> {
        if self.has_ema() { self.load_ema_weights(vs) } else { self.load_weights(vs) }
    }

    fn load_prefixed(&self, vs: &VarStore, prefix: &str) -> Result<()> {
        let st = SafeTensors::deserialize(&self.bytes).map_err(|e| anyhow!("{e}"))?;
        for (name, var) in model_variables(vs) {
            let t = tensor_of(&st, &format!("{prefix}{name}"))?;
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
pub(crate) fn save_checkpoint(
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
    ema: Option<&Ema>,
) -> Result<()> {
    ensure!(
        ema.is_some() == args.ema_decay.is_some(),
        "internal: the run's --ema-decay and its averaged weights disagree"
    );
    let mut tensors: Vec<(String, RawTensor)> = Vec::new();
    for (name, t) in model_variables(vs) {
        tensors.push((name, RawTensor::from_tensor(&t, WeightDtype::F32)));
    }
    if let Some(e) = ema {
        for (name, t) in model_variables(&e.vs) {
            tensors.push((format!("{EMA_PREFIX}{name}"), RawTensor::from_tensor(&t, WeightDtype::F32)));
        }
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

/// Exports a training checkpoint (weights, config, statistics) to an act-core checkpoint form:
/// the averaged weights when the run kept an average (`--ema-decay`), else the live ones.
pub fn export_training_checkpoint(ckpt: &Path, out: &Path, form: CheckpointForm, opts: &ExportOptions) -> Result<()> {
    let c = TrainingCheckpoint::read(ckpt)?;
    let vs = VarStore::new(Device::Cpu);
    Act::new(&vs.root(), &c.config)?;
    c.load_policy_weights(&vs)?;
    export_checkpoint(form, out, &vs, &c.config, &c.stats, opts)
}
