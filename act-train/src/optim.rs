//! AdamW over the VarStore's tensors, written out so that its state (the moments and the step
//! count) can be saved in a checkpoint and restored exactly.
//!
//! Per parameter, as `torch.optim.AdamW` (single-tensor path) computes it:
//! `p *= 1 - lr * wd; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
//! p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`.

use anyhow::{Result, ensure};
use clap::ValueEnum;
use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::{Kind, Tensor};

/// How the learning rate moves over a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LrSchedule {
    /// The same rate throughout, as in ACT and LeRobot's ACT.
    #[default]
    Constant,
    /// Half a cosine from the full rate down to 0 at the last step (after the warm-up), as
    /// LeRobot's diffusion policy and many vision recipes.
    Cosine,
}

/// The factor on the learning rates for the update at `step` (0-based) of `total` steps: a linear
/// warm-up over the first `warmup` updates ((step + 1) / warmup), then the schedule over the rest.
pub fn lr_factor(schedule: LrSchedule, warmup: u64, step: u64, total: u64) -> f64 {
    if step < warmup {
        return (step + 1) as f64 / warmup as f64;
    }
    match schedule {
        LrSchedule::Constant => 1.0,
        LrSchedule::Cosine => {
            let span = total.saturating_sub(warmup).max(1) as f64;
            let progress = ((step - warmup) as f64 / span).min(1.0);
            0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
        }
    }
}

/// One trainable tensor with its moments.
#[derive(Debug)]
pub struct ParamState {
    pub name: String,
    pub var: Tensor,
    pub exp_avg: Tensor,
    pub exp_avg_sq: Tensor,
    /// Index into [`AdamW::lrs`].
    pub group: usize,
}

#[derive(Debug)]
pub struct AdamW {
    pub params: Vec<ParamState>,
    /// Learning rate per group: 0 = everything but the backbone, 1 = the backbone.
    pub lrs: [f64; 2],
    pub weight_decay: f64,
    pub betas: (f64, f64),
    pub eps: f64,
    /// Steps taken.
    pub t: i64,
}

/// True for parameters of the backbone parameter group.
pub fn is_backbone(name: &str) -> bool {
    name.starts_with("model.backbone.")
}

impl AdamW {
    /// Every variable of `vs` that requires grad, sorted by name; the backbone in group 1.
    pub fn new(vs: &VarStore, lr: f64, lr_backbone: f64, weight_decay: f64) -> Self {
        let mut vars: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let params = vars
            .into_iter()
            .map(|(name, var)| {
                let group = usize::from(is_backbone(&name));
                ParamState {
                    exp_avg: var.zeros_like().detach(),
                    exp_avg_sq: var.zeros_like().detach(),
                    name,
                    var,
                    group,
                }
            })
            .collect();
        AdamW {
            params,
            lrs: [lr, lr_backbone],
            weight_decay,
            betas: (0.9, 0.999),
            eps: 1e-8,
            t: 0,
        }
    }

    pub fn zero_grad(&mut self) {
        for p in &mut self.params {
            p.var.zero_grad();
        }
    }

    /// Global L2 norm of the gradients; scales them to `max_norm` when above it (as
    /// `torch.nn.utils.clip_grad_norm_`, factor `max_norm / (norm + 1e-6)`). Returns the norm.
    pub fn clip_grad_norm(&mut self, max_norm: f64) -> f64 {
        let norms: Vec<Tensor> = self
            .params
            .iter()
            .map(|p| p.var.grad())
            .filter(|g| g.defined())
            .map(|g| g.to_kind(Kind::Float).norm().square())
            .collect();
        if norms.is_empty() {
            return 0.0;
        }
        let total = Tensor::stack(&norms, 0).sum(Kind::Float).sqrt().double_value(&[]);
        let coef = max_norm / (total + 1e-6);
        if coef < 1.0 {
            tch::no_grad(|| {
                for p in &self.params {
                    let mut g = p.var.grad();
                    if g.defined() {
                        let _ = g.g_mul_scalar_(coef);
                    }
                }
            });
        }
        total
    }

    /// One update of every parameter with a gradient.
    pub fn step(&mut self) {
        self.t += 1;
        let (b1, b2) = self.betas;
        let bc1 = 1.0 - b1.powi(self.t as i32);
        let bc2_sqrt = (1.0 - b2.powi(self.t as i32)).sqrt();
        tch::no_grad(|| {
            for p in &mut self.params {
                let g = p.var.grad();
                if !g.defined() {
                    continue;
                }
                let lr = self.lrs[p.group];
                let _ = p.var.g_mul_scalar_(1.0 - lr * self.weight_decay);
                let _ = p.exp_avg.lerp_(&g, 1.0 - b1);
                let _ = p.exp_avg_sq.g_mul_scalar_(b2);
                let _ = p.exp_avg_sq.g_add_(&(&g * &g * (1.0 - b2)));
                let denom = p.exp_avg_sq.sqrt() / bc2_sqrt + self.eps;
                let _ = p.var.g_add_(&(&p.exp_avg / denom * (-lr / bc1)));
            }
        });
    }

    /// Restores moments by parameter name; every parameter must be present with its shape.
    pub fn load_moments(&mut self, t: i64, get: &dyn Fn(&str) -> Option<(Tensor, Tensor)>) -> Result<()> {
        for p in &mut self.params {
            let Some((m, v)) = get(&p.name) else {
                anyhow::bail!("optimizer state for {} missing", p.name);
            };
            ensure!(
                m.size() == p.var.size() && v.size() == p.var.size(),
                "optimizer state for {} has shape {:?}, the parameter {:?}",
                p.name,
                m.size(),
                p.var.size()
            );
            tch::no_grad(|| {
                p.exp_avg.copy_(&m.to_kind(Kind::Float).to_device(p.var.device()));
                p.exp_avg_sq.copy_(&v.to_kind(Kind::Float).to_device(p.var.device()));
            });
        }
        self.t = t;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{LrSchedule, lr_factor};

    #[test]
    fn lr_factor_follows_warmup_and_cosine() {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        // Constant: 1 after the warm-up; warm-up linear from 1/warmup.
        assert!(close(lr_factor(LrSchedule::Constant, 0, 0, 100), 1.0));
        assert!(close(lr_factor(LrSchedule::Constant, 4, 0, 100), 0.25));
        assert!(close(lr_factor(LrSchedule::Constant, 4, 3, 100), 1.0));
        assert!(close(lr_factor(LrSchedule::Constant, 4, 99, 100), 1.0));
        // Cosine over 100 steps after a warm-up of 20: 1 at step 20, cos(pi/4) point at 45,
        // 0.5 at 70 (half way), 0 at the end.
        assert!(close(lr_factor(LrSchedule::Cosine, 20, 19, 120), 1.0));
        assert!(close(lr_factor(LrSchedule::Cosine, 20, 20, 120), 1.0));
        assert!(close(lr_factor(LrSchedule::Cosine, 20, 45, 120), 0.5 * (1.0 + 0.5f64.sqrt())));
        assert!(close(lr_factor(LrSchedule::Cosine, 20, 70, 120), 0.5));
        assert!(close(lr_factor(LrSchedule::Cosine, 20, 120, 120), 0.0));
        // Past the end (a run extended without its schedule) stays at 0, never rises again.
        assert!(close(lr_factor(LrSchedule::Cosine, 0, 150, 120), 0.0));
        // A warm-up as long as the run.
        assert!(close(lr_factor(LrSchedule::Cosine, 10, 9, 10), 1.0));
    }
}
