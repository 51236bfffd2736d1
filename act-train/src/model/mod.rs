//! The ACT network in tch: backbone, transformer, position encodings, the full model, and the
//! deterministic randomisation used by numerical tests.

pub mod act;
pub mod backbone;
pub mod posenc;
pub mod randomize;
pub mod transformer;

pub use act::{Act, ActOutputs};
pub use randomize::{RandomFill, random_fill_for, randomize_for_tests};

use tch::{Kind, Tensor};

pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// u8 RGB images as cameras deliver them, `[B, H, W, 3]` or `[H, W, 3]` (HWC), to the model's
/// input: f32 `[B, 3, H, W]`, `(x / 255 - mean) / std` with ImageNet statistics. Stays on the
/// input's device.
pub fn normalize_image_u8(images_hwc: &Tensor) -> Tensor {
    let x = match images_hwc.dim() {
        3 => images_hwc.unsqueeze(0),
        4 => images_hwc.shallow_clone(),
        d => panic!("normalize_image_u8: expected [B, H, W, 3] or [H, W, 3], got {d} dims"),
    };
    assert_eq!(x.size()[3], 3, "normalize_image_u8: last dimension must be 3 (RGB)");
    let dev = x.device();
    let mean = Tensor::from_slice(&IMAGENET_MEAN).to_device(dev).view([1, 3, 1, 1]);
    let std = Tensor::from_slice(&IMAGENET_STD).to_device(dev).view([1, 3, 1, 1]);
    let x = x.to_kind(Kind::Float).permute([0, 3, 1, 2]) / 255.0;
    ((x - mean) / std).contiguous()
}

/// Counts elements of the variables named `model.*` that an inference-only model needs:
/// everything except `model.vae_encoder*` and the frozen BatchNorm tensors of the backbone
/// (`bn*` / `downsample.1` weight, bias, running_mean, running_var).
pub fn count_inference_parameters(vs: &tch::nn::VarStore) -> i64 {
    vs.variables()
        .iter()
        .filter(|(n, _)| n.starts_with("model.") && !n.starts_with("model.vae_encoder"))
        .filter(|(n, _)| !is_backbone_bn(n))
        .map(|(_, t)| t.numel() as i64)
        .sum()
}

/// True for a frozen BatchNorm tensor of the backbone.
pub fn is_backbone_bn(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("model.backbone.") else {
        return false;
    };
    let parts: Vec<&str> = rest.split('.').collect();
    let n = parts.len();
    n >= 2 && (parts[n - 2].starts_with("bn") || (parts[n - 2] == "1" && n >= 3 && parts[n - 3] == "downsample"))
}
