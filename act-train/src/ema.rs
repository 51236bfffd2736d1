//! An exponential moving average of the model's weights (`--ema-decay`), the averaged copy that
//! Diffusion Policy and LeRobot's diffusion policy evaluate instead of the last weights: with a
//! constant learning rate the last weights wander around a minimum, and their average sits
//! closer to it. ACT itself has none; here it is an option for the harder insertion task.
//!
//! After optimizer update `t` (1, 2, ...): `ema = d_t * ema + (1 - d_t) * w` for every `model.*`
//! tensor, parameters and BatchNorm running statistics alike, with `d_t = min(decay, (1 + t) /
//! (10 + t))`: the warm-up of TensorFlow's `ExponentialMovingAverage(num_updates=t)`, so that
//! the average forgets the random initialisation within the first few hundred steps. The copy
//! starts equal to the initial weights. Validation, snapshots and the exported policy use the
//! averaged weights; training continues on the live ones.

use anyhow::{Result, ensure};
use tch::nn::VarStore;
use tch::{Kind, Tensor};

use crate::config::ActConfig;
use crate::export::model_variables;
use crate::model::Act;
use crate::model::backbone::BatchNormMode;

/// Key prefix of the averaged weights in a training checkpoint (`ema.model.backbone...`).
pub const EMA_PREFIX: &str = "ema.";

/// The decay applied after optimizer update `t` (1-based), for a configured `decay`.
pub fn decay_at(decay: f64, t: i64) -> f64 {
    let t = t.max(0) as f64;
    decay.min((1.0 + t) / (10.0 + t))
}

/// The averaged copy of a model: its own VarStore and an [`Act`] over it (for validation).
pub struct Ema {
    pub vs: VarStore,
    pub model: Act,
    pub decay: f64,
    /// (averaged, live) tensor pairs, by name.
    pairs: Vec<(Tensor, Tensor)>,
}

impl Ema {
    /// A copy of `live`'s current weights, built for `cfg` (the model `live` holds).
    pub fn new(live: &VarStore, cfg: &ActConfig, decay: f64, bn: BatchNormMode) -> Result<Self> {
        ensure!(decay > 0.0 && decay < 1.0, "--ema-decay must be in (0, 1), got {decay}");
        let vs = VarStore::new(live.device());
        let mut model = Act::new(&vs.root(), cfg)?;
        model.backbone.set_batchnorm_mode(bn);
        let avg = model_variables(&vs);
        let cur = model_variables(live);
        ensure!(avg.len() == cur.len(), "EMA copy has {} tensors, the model {}", avg.len(), cur.len());
        let mut pairs = Vec::with_capacity(avg.len());
        for ((na, a), (nc, c)) in avg.into_iter().zip(cur) {
            ensure!(na == nc && a.size() == c.size(), "EMA copy's {na} does not match the model's {nc}");
            let _ = a.set_requires_grad(false);
            tch::no_grad(|| {
                let mut a = a.shallow_clone();
                a.copy_(&c);
            });
            pairs.push((a, c));
        }
        Ok(Ema { vs, model, decay, pairs })
    }

    /// Folds the live weights in after optimizer update `t` (1-based).
    pub fn update(&mut self, t: i64) {
        let w = 1.0 - decay_at(self.decay, t);
        tch::no_grad(|| {
            for (a, c) in &mut self.pairs {
                if a.kind() == Kind::Float || a.kind() == Kind::Double {
                    // a += w * (c - a)
                    let _ = a.lerp_(c, w);
                } else {
                    a.copy_(c);
                }
            }
        });
    }
}
