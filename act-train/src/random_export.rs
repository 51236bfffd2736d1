//! A randomly initialised model with plausible statistics, exported (the `export` subcommand).

use std::path::Path;

use anyhow::{Context, Result};
use tch::Device;
use tch::nn::VarStore;

use crate::config::ActConfig;
use crate::export::{CheckpointForm, ExportOptions, Stats, export_checkpoint};
use crate::model::{Act, randomize_for_tests};
use crate::rng::Rng;

/// Random statistics from `seed`: means U[-1, 1], stds U[0.05, 1] (so > 0.01), `std_eps` 0
/// (the original's clipped statistics).
pub fn random_stats(cfg: &ActConfig, seed: i64) -> Stats {
    let mut rng = Rng(seed as u64);
    let (s, a) = (cfg.state_dim() as usize, cfg.action_dim() as usize);
    Stats {
        state_mean: rng.uniform_vec(s, -1.0, 1.0),
        state_std: rng.uniform_vec(s, 0.05, 1.0),
        action_mean: rng.uniform_vec(a, -1.0, 1.0),
        action_std: rng.uniform_vec(a, 0.05, 1.0),
        std_eps: 0.0,
    }
}

/// Builds `cfg`'s model on the CPU, randomizes it with `seed`, and writes it to `out`.
/// Returns the VarStore and statistics used.
pub fn export_random(
    out: &Path,
    form: CheckpointForm,
    cfg: &ActConfig,
    opts: &ExportOptions,
    seed: i64,
) -> Result<(VarStore, Stats)> {
    let vs = VarStore::new(Device::Cpu);
    Act::new(&vs.root(), cfg).context("building the model")?;
    randomize_for_tests(&vs, seed);
    let stats = random_stats(cfg, seed.wrapping_add(1));
    export_checkpoint(form, out, &vs, cfg, &stats, opts)
        .with_context(|| format!("exporting checkpoint to {}", out.display()))?;
    Ok((vs, stats))
}
