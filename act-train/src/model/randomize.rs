//! Deterministic, non-trivial random values for every variable, for numerical cross-checks
//! (DESIGN.md "Testing numerics": no initialiser constants anywhere).

use tch::Tensor;
use tch::nn::VarStore;

use crate::rng::Rng;

/// How one variable is filled by [`randomize_for_tests`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RandomFill {
    /// Left unchanged (the fixed sinusoid table `vae_encoder_pos_enc`).
    Keep,
    Uniform(f64, f64),
    Normal(f64),
}

/// The fill rule for a variable of the model, by name and shape:
/// - `vae_encoder_pos_enc`: kept (fixed sinusoid table);
/// - backbone BatchNorm: weight U[0.5, 1.5], bias U[-0.1, 0.1], running_mean U[-0.1, 0.1],
///   running_var U[0.5, 1.5];
/// - backbone convolutions: U(+-sqrt(3 / fan_in)) (std 1/sqrt(fan_in): with the residual
///   connections, activations grow only slowly through the 8 blocks);
/// - LayerNorm (`norm*`): weight U[0.5, 1.5], bias U[-0.2, 0.2];
/// - learned embeddings (`*_embed.weight`): N(0, 1);
/// - other biases (linear, attention in_proj/out_proj, the 1x1 input projection): U[-0.2, 0.2];
/// - other matrices: U(+-sqrt(3 / fan_in)) (std 1/sqrt(fan_in)).
///
/// Panics on a name it does not know, so a new parameter cannot silently keep its init.
pub fn random_fill_for(name: &str, shape: &[i64]) -> RandomFill {
    let parts: Vec<&str> = name.split('.').collect();
    let last = *parts.last().unwrap();
    let parent = if parts.len() >= 2 { parts[parts.len() - 2] } else { "" };
    let fan_in: i64 = shape.iter().skip(1).product();
    if last == "vae_encoder_pos_enc" {
        return RandomFill::Keep;
    }
    if parts.get(1) == Some(&"backbone") {
        let is_bn =
            parent.starts_with("bn") || (parent == "1" && parts.len() >= 3 && parts[parts.len() - 3] == "downsample");
        if is_bn {
            return match last {
                "weight" | "running_var" => RandomFill::Uniform(0.5, 1.5),
                "bias" | "running_mean" => RandomFill::Uniform(-0.1, 0.1),
                _ => panic!("randomize_for_tests: unknown BatchNorm tensor {name}"),
            };
        }
        if last == "weight" && shape.len() == 4 {
            let b = (3.0 / fan_in as f64).sqrt();
            return RandomFill::Uniform(-b, b);
        }
        panic!("randomize_for_tests: unknown backbone tensor {name} {shape:?}");
    }
    if parent.starts_with("norm") && shape.len() == 1 {
        return match last {
            "weight" => RandomFill::Uniform(0.5, 1.5),
            "bias" => RandomFill::Uniform(-0.2, 0.2),
            _ => panic!("randomize_for_tests: unknown norm tensor {name}"),
        };
    }
    if parent.ends_with("_embed") && last == "weight" {
        return RandomFill::Normal(1.0);
    }
    if shape.len() == 1 && (last == "bias" || last == "in_proj_bias") {
        return RandomFill::Uniform(-0.2, 0.2);
    }
    if shape.len() >= 2 && (last == "weight" || last == "in_proj_weight") {
        let b = (3.0 / fan_in as f64).sqrt();
        return RandomFill::Uniform(-b, b);
    }
    panic!("randomize_for_tests: no rule for {name} {shape:?}");
}

/// Gives every variable of `vs` deterministic random values (see [`random_fill_for`]), drawn in
/// sorted name order from [`Rng`] (SplitMix64) seeded with `seed`, so the values depend only on the
/// seed (thread-safe: libtorch's global generator is not used). Variables whose names do not
/// start with `model.` are left alone.
pub fn randomize_for_tests(vs: &VarStore, seed: i64) {
    let mut rng = Rng(seed as u64 ^ 0x05EE_DAC7_0000_0000);
    let vars = vs.variables();
    let mut names: Vec<&String> = vars.keys().filter(|n| n.starts_with("model.")).collect();
    names.sort();
    tch::no_grad(|| {
        for name in names {
            let var = &vars[name];
            let shape = var.size();
            let n = var.numel();
            let values: Vec<f32> = match random_fill_for(name, &shape) {
                RandomFill::Keep => continue,
                RandomFill::Uniform(lo, hi) => rng.uniform_vec(n, lo, hi),
                RandomFill::Normal(std) => (0..n).map(|_| (rng.normal() * std) as f32).collect(),
            };
            let t = Tensor::from_slice(&values)
                .view(shape.as_slice())
                .to_kind(var.kind())
                .to_device(var.device());
            let mut v = var.shallow_clone();
            v.copy_(&t);
        }
    });
}
