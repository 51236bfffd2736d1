//! libtorch's forward pass as the reference act-core is checked against: deterministic
//! observations, the un-normalised actions and the intermediates, and a writer that stores all of
//! it beside a checkpoint for a machine without libtorch (act-core's aarch64 tests under qemu).
use std::path::Path;

use anyhow::{Context, Result};
use tch::{Kind, Tensor};

use crate::config::ActConfig;
use crate::export::Stats;
use crate::model::{normalize_image_u8, Act, ActOutputs};

/// One observation: raw joint positions and u8 HWC RGB images, one per camera in config order.
pub struct Observation {
    pub qpos: Vec<f32>,
    pub images: Vec<Vec<u8>>,
}

/// A deterministic observation from `seed`: qpos uniform in [-1, 1), images uniform u8.
pub fn observation(cfg: &ActConfig, seed: u64) -> Observation {
    let mut s = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let qpos = (0..cfg.state_dim()).map(|_| (next() % 2000) as f32 / 1000.0 - 1.0).collect();
    let images = cfg.cameras().iter().map(|(_, h, w)| (0..h * w * 3).map(|_| (next() % 256) as u8).collect()).collect();
    Observation { qpos, images }
}

/// A tensor's values as f32, flattened.
pub fn to_vec(t: &Tensor) -> Vec<f32> {
    let t = t.to_kind(Kind::Float).contiguous().view([-1]);
    Vec::<f32>::try_from(&t).expect("a float tensor converts to Vec<f32>")
}

/// libtorch's forward on one observation: (un-normalised actions `[chunk * action_dim]`, the
/// outputs of `forward_inference`).
pub fn torch_forward(model: &Act, cfg: &ActConfig, stats: &Stats, obs: &Observation) -> (Vec<f32>, ActOutputs) {
    let q: Vec<f32> = obs.qpos.iter().enumerate().map(|(i, &v)| (v - stats.state_mean[i]) / (stats.state_std[i] + stats.std_eps)).collect();
    let qpos = Tensor::from_slice(&q).view([1, -1]);
    let images: Vec<Tensor> = cfg
        .cameras()
        .iter()
        .zip(&obs.images)
        .map(|((_, h, w), img)| normalize_image_u8(&Tensor::from_slice(img).view([*h, *w, 3])))
        .collect();
    let out = tch::no_grad(|| model.forward_inference(&qpos, &images));
    let a = cfg.action_dim() as usize;
    let actions = to_vec(&out.actions).chunks(a).flat_map(|row| (0..a).map(|i| row[i] * stats.action_std[i] + stats.action_mean[i]).collect::<Vec<_>>()).collect();
    (actions, out)
}

/// Writes `obs` and libtorch's results on it to a safetensors file, as tensors named
/// `obs{index}.{name}`: `qpos` [state], `image{c}` u8 [h, w, 3], `actions` [chunk, action],
/// `actions_normalized` [chunk, action], `backbone{c}` NHWC [fh, fw, 512], `encoder_memory`
/// [tokens, dim], `decoder_output` [chunk, dim] — the layouts of act-core's `Intermediates`.
pub fn write_expected(path: &Path, cases: &[(&Observation, &[f32], &ActOutputs)], cfg: &ActConfig) -> Result<()> {
    let a = cfg.action_dim();
    let mut named: Vec<(String, Tensor)> = Vec::new();
    for (i, (obs, actions, out)) in cases.iter().enumerate() {
        named.push((format!("obs{i}.qpos"), Tensor::from_slice(&obs.qpos)));
        for (c, (img, (_, h, w))) in obs.images.iter().zip(cfg.cameras()).enumerate() {
            named.push((format!("obs{i}.image{c}"), Tensor::from_slice(img).view([h, w, 3])));
        }
        named.push((format!("obs{i}.actions"), Tensor::from_slice(actions).view([-1, a])));
        named.push((format!("obs{i}.actions_normalized"), out.actions.squeeze_dim(0).contiguous()));
        for (c, f) in out.backbone_features.iter().enumerate() {
            named.push((format!("obs{i}.backbone{c}"), f.squeeze_dim(0).permute([1, 2, 0]).contiguous()));
        }
        named.push((format!("obs{i}.encoder_memory"), out.encoder_memory.squeeze_dim(0).contiguous()));
        named.push((format!("obs{i}.decoder_output"), out.decoder_output.squeeze_dim(0).contiguous()));
    }
    Tensor::write_safetensors(&named, path).with_context(|| format!("writing {}", path.display()))
}
