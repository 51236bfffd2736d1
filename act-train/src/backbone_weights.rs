//! Starting the backbone from ImageNet ResNet-18 weights in torchvision's key names.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail, ensure};
use safetensors::tensor::{Dtype, SafeTensors};
use tch::nn::VarStore;
use tch::{Kind, Tensor};

use crate::export::model_variables;

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
