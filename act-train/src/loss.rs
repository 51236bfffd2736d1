//! ACT's training loss (ACT_SPEC.md section 4) and the loss history a run keeps: one row per
//! step or validation pass, written as `losses.csv`.

use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use clap::ValueEnum;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::export::write_atomic;

/// The loss variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LossKind {
    /// Original ACT: L1 = mean over ALL elements of |a - a_hat| * !is_pad.
    Act,
    /// LeRobot: L1 averaged over the valid (not padded) elements only.
    Lerobot,
}

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

/// Reads a `losses.csv` written by `write_losses_csv` (for redrawing the curve later).
pub fn read_losses_csv(path: &Path) -> Result<Vec<LossRow>> {
    let bytes = act_core::fs::read_regular_file(path, act_core::DEFAULT_MEMORY_BUDGET, "the memory budget")
        .with_context(|| format!("reading {}", path.display()))?;
    let text = String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8", path.display()))?;
    let mut lines = text.lines();
    ensure!(
        lines.next() == Some("step,epoch,split,l1,kl,loss"),
        "{}: not a losses.csv (expected the header step,epoch,split,l1,kl,loss)",
        path.display()
    );
    let mut out = Vec::new();
    for (i, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        let at = || format!("{} line {}: {line:?}", path.display(), i + 2);
        ensure!(f.len() == 6, "{}: expected 6 fields", at());
        let val = match f[2] {
            "val" => true,
            "train" => false,
            _ => bail!("{}: split must be train or val", at()),
        };
        let num = |s: &str| s.parse::<f64>().with_context(at);
        out.push(LossRow {
            step: f[0].parse().with_context(at)?,
            epoch: f[1].parse().with_context(at)?,
            val,
            l1: num(f[3])?,
            kl: num(f[4])?,
            loss: num(f[5])?,
        });
    }
    Ok(out)
}
