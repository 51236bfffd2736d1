//! Writing (and reading back) the checkpoint forms of docs/CHECKPOINT.md.
//!
//! Weights are the VarStore's variables named `model.*`, converted to the requested dtype with
//! the `half` crate; statistics are always f32. Files are written through `safetensors::serialize`
//! with explicit metadata, atomically (a temporary file in the same directory, then rename).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, Result, anyhow, bail, ensure};
use safetensors::tensor::{Dtype, SafeTensors, View};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use crate::config::ActConfig;
use crate::names::{lerobot_to_original, original_to_lerobot, uses_original_names};
use crate::quantize::{quantize_int8, stored_int8};

pub const MODEL_FILE: &str = "model.safetensors";
pub const CONFIG_FILE: &str = "config.json";
pub const PREPROCESSOR_FILE: &str = "policy_preprocessor_step_3_normalizer_processor.safetensors";
pub const POSTPROCESSOR_FILE: &str = "policy_postprocessor_step_0_unnormalizer_processor.safetensors";

pub const STATE_MEAN_KEY: &str = "normalize_inputs.buffer_observation_state.mean";
pub const STATE_STD_KEY: &str = "normalize_inputs.buffer_observation_state.std";
pub const UNNORM_ACTION_MEAN_KEY: &str = "unnormalize_outputs.buffer_action.mean";
pub const UNNORM_ACTION_STD_KEY: &str = "unnormalize_outputs.buffer_action.std";
pub const NORM_ACTION_MEAN_KEY: &str = "normalize_targets.buffer_action.mean";
pub const NORM_ACTION_STD_KEY: &str = "normalize_targets.buffer_action.std";

/// Storage dtype of the weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WeightDtype {
    #[default]
    F32,
    F16,
    BF16,
}

impl WeightDtype {
    pub fn safetensors_dtype(self) -> Dtype {
        match self {
            WeightDtype::F32 => Dtype::F32,
            WeightDtype::F16 => Dtype::F16,
            WeightDtype::BF16 => Dtype::BF16,
        }
    }
}

impl FromStr for WeightDtype {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "f32" | "float32" => WeightDtype::F32,
            "f16" | "float16" | "half" => WeightDtype::F16,
            "bf16" | "bfloat16" => WeightDtype::BF16,
            _ => bail!("unknown dtype {s:?} (expected f32, f16 or bf16)"),
        })
    }
}

impl fmt::Display for WeightDtype {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            WeightDtype::F32 => "f32",
            WeightDtype::F16 => "f16",
            WeightDtype::BF16 => "bf16",
        })
    }
}

/// Which of the two checkpoint forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckpointForm {
    /// One safetensors file, config JSON in `__metadata__["config"]`.
    Single,
    /// A directory with config.json + model.safetensors.
    Dir,
}

impl FromStr for CheckpointForm {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "single" => CheckpointForm::Single,
            "dir" => CheckpointForm::Dir,
            _ => bail!("unknown checkpoint form {s:?} (expected single or dir)"),
        })
    }
}

/// Normalisation statistics of state and action; `(x - mean) / (std + std_eps)`.
/// Image statistics are not stored (act-core defaults them to ImageNet's).
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    pub state_mean: Vec<f32>,
    pub state_std: Vec<f32>,
    pub action_mean: Vec<f32>,
    pub action_std: Vec<f32>,
    /// 0 for the original ACT's clipped statistics, 1e-8 for LeRobot's.
    pub std_eps: f32,
}

impl Stats {
    pub fn validate(&self, cfg: &ActConfig) -> Result<()> {
        let (s, a) = (cfg.state_dim() as usize, cfg.action_dim() as usize);
        ensure!(
            self.state_mean.len() == s && self.state_std.len() == s,
            "state statistics must have {s} entries"
        );
        ensure!(
            self.action_mean.len() == a && self.action_std.len() == a,
            "action statistics must have {a} entries"
        );
        for v in [&self.state_mean, &self.state_std, &self.action_mean, &self.action_std] {
            ensure!(v.iter().all(|x| x.is_finite()), "statistics must be finite");
        }
        ensure!(
            self.state_std
                .iter()
                .chain(&self.action_std)
                .all(|&x| x + self.std_eps > 0.0),
            "std + std_eps must be positive"
        );
        ensure!(
            self.std_eps.is_finite() && self.std_eps >= 0.0,
            "std_eps must be finite and >= 0"
        );
        Ok(())
    }
}

/// Key naming of the weights in a written file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum KeyNames {
    /// LeRobot's `model.*` names (ACT_SPEC.md section 3).
    #[default]
    LeRobot,
    /// The original ACT names (`backbones.0.0.body.*`, `transformer.encoder.*`, ...), optionally
    /// prefixed with `model.` as in the original `policy_*.ckpt`. `include_unused` adds what the
    /// original checkpoints carry that a reader must ignore: `is_pad_head.{weight,bias}` and
    /// decoder layers up to 7 (copies of layer 0).
    Original { model_prefix: bool, include_unused: bool },
}

/// Options for [`export_checkpoint`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExportOptions {
    pub dtype: WeightDtype,
    pub names: KeyNames,
    /// Dir form only: write the statistics into the current LeRobot processor files instead of
    /// the legacy buffers in model.safetensors.
    pub processor_files: bool,
    /// Store the weights act-core's int8 path runs in int8 (and the VAE encoder's) as I8 with
    /// per-channel scales (`quantize::stored_int8`); the others keep `dtype`.
    pub quantize: Quantize,
}

/// Weight quantisation of an export.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Quantize {
    #[default]
    None,
    /// Symmetric per-output-channel int8 (`quantize::quantize_int8`), about a quarter of f32's size.
    Int8,
}

/// An owned tensor ready for `safetensors::serialize`.
#[derive(Clone, Debug)]
pub struct RawTensor {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

impl View for &RawTensor {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

impl RawTensor {
    /// Converts f32 values to `dtype` (f16/bf16 with the `half` crate, round to nearest even)
    /// as little-endian bytes.
    pub fn from_f32(values: &[f32], shape: &[usize], dtype: WeightDtype) -> Self {
        use half::slice::HalfFloatSliceExt;
        assert_eq!(
            values.len(),
            shape.iter().product::<usize>(),
            "RawTensor: shape does not match data"
        );
        let data = match dtype {
            WeightDtype::F32 => le_bytes_f32(values),
            WeightDtype::F16 => {
                let mut h = vec![half::f16::ZERO; values.len()];
                h.convert_from_f32_slice(values);
                le_bytes_u16(h.reinterpret_cast())
            }
            WeightDtype::BF16 => {
                let mut h = vec![half::bf16::ZERO; values.len()];
                h.convert_from_f32_slice(values);
                le_bytes_u16(h.reinterpret_cast())
            }
        };
        RawTensor {
            dtype: dtype.safetensors_dtype(),
            shape: shape.to_vec(),
            data,
        }
    }

    pub fn from_tensor(t: &Tensor, dtype: WeightDtype) -> Self {
        let (v, shape) = f32_values(t);
        Self::from_f32(&v, &shape, dtype)
    }

    /// `t` quantised to int8 per output channel (its first dimension): the I8 tensor and its
    /// F32 scales.
    pub fn int8_from_tensor(t: &Tensor) -> Result<(Self, Self)> {
        let (v, shape) = f32_values(t);
        let rows = *shape.first().ok_or_else(|| anyhow!("a scalar cannot be quantised per channel"))?;
        let (q, scale) = quantize_int8(&v, rows)?;
        let q = RawTensor { dtype: Dtype::I8, data: q.iter().map(|&b| b as u8).collect(), shape };
        let scale = RawTensor::from_f32(&scale, &[scale.len()], WeightDtype::F32);
        Ok((q, scale))
    }
}

/// A tensor's values as f32 and its shape.
fn f32_values(t: &Tensor) -> (Vec<f32>, Vec<usize>) {
    let t = t.detach().to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
    let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
    let n = t.numel();
    let mut v = vec![0f32; n];
    t.copy_data(&mut v, n);
    (v, shape)
}

fn le_bytes_f32(v: &[f32]) -> Vec<u8> {
    if cfg!(target_endian = "little") {
        bytemuck::cast_slice(v).to_vec()
    } else {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }
}

fn le_bytes_u16(v: &[u16]) -> Vec<u8> {
    if cfg!(target_endian = "little") {
        bytemuck::cast_slice(v).to_vec()
    } else {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }
}

/// The VarStore's `model.*` variables, sorted by name.
pub fn model_variables(vs: &VarStore) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(n, _)| n.starts_with("model."))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn stats_tensors(stats: &Stats) -> Vec<(String, RawTensor)> {
    let t = |v: &[f32]| RawTensor::from_f32(v, &[v.len()], WeightDtype::F32);
    vec![
        (STATE_MEAN_KEY.into(), t(&stats.state_mean)),
        (STATE_STD_KEY.into(), t(&stats.state_std)),
        (UNNORM_ACTION_MEAN_KEY.into(), t(&stats.action_mean)),
        (UNNORM_ACTION_STD_KEY.into(), t(&stats.action_std)),
        (NORM_ACTION_MEAN_KEY.into(), t(&stats.action_mean)),
        (NORM_ACTION_STD_KEY.into(), t(&stats.action_std)),
    ]
}

/// The weight tensors under the requested names (with `Quantize::Int8`, the int8 ones followed
/// by their `<name>_scale`).
pub fn weight_tensors(vs: &VarStore, dtype: WeightDtype, names: KeyNames, quantize: Quantize) -> Result<Vec<(String, RawTensor)>> {
    let vars = model_variables(vs);
    ensure!(!vars.is_empty(), "the VarStore holds no model.* variables");
    let mut out = Vec::with_capacity(vars.len());
    for (name, t) in &vars {
        let key = match names {
            KeyNames::LeRobot => name.clone(),
            KeyNames::Original { model_prefix, .. } => {
                let o = lerobot_to_original(name).ok_or_else(|| anyhow!("no original ACT name for {name}"))?;
                if model_prefix { format!("model.{o}") } else { o }
            }
        };
        if quantize == Quantize::Int8 && stored_int8(name) {
            let (q, scale) = RawTensor::int8_from_tensor(t).with_context(|| format!("quantising {name}"))?;
            out.push((format!("{key}_scale"), scale));
            out.push((key, q));
        } else {
            out.push((key, RawTensor::from_tensor(t, dtype)));
        }
    }
    if let KeyNames::Original {
        model_prefix,
        include_unused: true,
    } = names
    {
        let pre = if model_prefix { "model." } else { "" };
        let dim = vars
            .iter()
            .find(|(n, _)| n == "model.action_head.weight")
            .map(|(_, t)| t.size()[1])
            .ok_or_else(|| anyhow!("model.action_head.weight missing"))?;
        let w: Vec<f32> = (0..dim).map(|i| ((i as f32) * 0.37).sin() * 0.1).collect();
        out.push((
            format!("{pre}is_pad_head.weight"),
            RawTensor::from_f32(&w, &[1, dim as usize], dtype),
        ));
        out.push((
            format!("{pre}is_pad_head.bias"),
            RawTensor::from_f32(&[0.05], &[1], dtype),
        ));
        let layer0: Vec<(String, RawTensor)> = out
            .iter()
            .filter_map(|(k, t)| {
                k.strip_prefix(&format!("{pre}transformer.decoder.layers.0."))
                    .map(|r| (r.to_string(), t.clone()))
            })
            .collect();
        let n_layers = vars
            .iter()
            .filter_map(|(n, _)| {
                n.strip_prefix("model.decoder.layers.")?
                    .split('.')
                    .next()?
                    .parse::<usize>()
                    .ok()
            })
            .max()
            .map_or(0, |m| m + 1);
        for i in n_layers..7 {
            for (rest, t) in &layer0 {
                out.push((format!("{pre}transformer.decoder.layers.{i}.{rest}"), t.clone()));
            }
        }
    }
    Ok(out)
}

fn serialize(tensors: &[(String, RawTensor)], metadata: HashMap<String, String>, what: &Path) -> Result<Vec<u8>> {
    let meta = if metadata.is_empty() { None } else { Some(metadata) };
    safetensors::serialize(tensors.iter().map(|(k, t)| (k.as_str(), t)), meta)
        .map_err(|e| anyhow!("serialising safetensors for {}: {e}", what.display()))
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let fname = path
        .file_name()
        .ok_or_else(|| anyhow!("{} has no file name", path.display()))?
        .to_string_lossy();
    let tmp = dir.join(format!(".{fname}.tmp-{}", std::process::id()));
    let res = (|| -> Result<()> {
        let mut f = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(bytes)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.sync_all().with_context(|| format!("syncing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

fn std_eps_string(eps: f32) -> String {
    // Display of f32 is the shortest text that parses back to the same value ("0", "0.00000001").
    format!("{eps}")
}

/// Writes a checkpoint in either form (docs/CHECKPOINT.md).
///
/// Single: one safetensors file at `path` with weights + legacy statistics buffers and
/// metadata `config` (config.json text), `format` = "act-rs", `std_eps`.
/// Dir: `path/` gets config.json and model.safetensors (metadata `std_eps`); statistics as the
/// legacy buffers, or, with `processor_files`, in the two processor files instead.
pub fn export_checkpoint(
    form: CheckpointForm,
    path: &Path,
    vs: &VarStore,
    cfg: &ActConfig,
    stats: &Stats,
    opts: &ExportOptions,
) -> Result<()> {
    cfg.validate().context("invalid config")?;
    stats.validate(cfg).context("invalid statistics")?;
    let config_json = cfg.to_json()?;
    let mut tensors = weight_tensors(vs, opts.dtype, opts.names, opts.quantize)?;
    let eps = std_eps_string(stats.std_eps);
    match form {
        CheckpointForm::Single => {
            ensure!(
                !opts.processor_files,
                "processor files exist only in the directory form"
            );
            tensors.extend(stats_tensors(stats));
            let meta = HashMap::from([
                ("config".to_string(), config_json),
                ("format".to_string(), "act-rs".to_string()),
                ("std_eps".to_string(), eps),
            ]);
            let bytes = serialize(&tensors, meta, path)?;
            write_atomic(path, &bytes).with_context(|| format!("writing checkpoint {}", path.display()))
        }
        CheckpointForm::Dir => {
            std::fs::create_dir_all(path).with_context(|| format!("creating directory {}", path.display()))?;
            let cfg_path = path.join(CONFIG_FILE);
            write_atomic(&cfg_path, config_json.as_bytes())
                .with_context(|| format!("writing {}", cfg_path.display()))?;
            if opts.processor_files {
                let t = |v: &[f32]| RawTensor::from_f32(v, &[v.len()], WeightDtype::F32);
                let pre = vec![
                    ("observation.state.mean".to_string(), t(&stats.state_mean)),
                    ("observation.state.std".to_string(), t(&stats.state_std)),
                    ("action.mean".to_string(), t(&stats.action_mean)),
                    ("action.std".to_string(), t(&stats.action_std)),
                ];
                let post = vec![
                    ("action.mean".to_string(), t(&stats.action_mean)),
                    ("action.std".to_string(), t(&stats.action_std)),
                ];
                for (file, ts) in [(PREPROCESSOR_FILE, pre), (POSTPROCESSOR_FILE, post)] {
                    let p = path.join(file);
                    let bytes = serialize(&ts, HashMap::new(), &p)?;
                    write_atomic(&p, &bytes).with_context(|| format!("writing {}", p.display()))?;
                }
            } else {
                tensors.extend(stats_tensors(stats));
            }
            let model_path = path.join(MODEL_FILE);
            let bytes = serialize(&tensors, HashMap::from([("std_eps".to_string(), eps)]), &model_path)?;
            write_atomic(&model_path, &bytes).with_context(|| format!("writing {}", model_path.display()))
        }
    }
}

/// Single-file form, LeRobot names.
pub fn write_single(path: &Path, vs: &VarStore, cfg: &ActConfig, stats: &Stats, dtype: WeightDtype) -> Result<()> {
    let opts = ExportOptions {
        dtype,
        ..Default::default()
    };
    export_checkpoint(CheckpointForm::Single, path, vs, cfg, stats, &opts)
}

/// Directory form, LeRobot names, statistics as legacy buffers in model.safetensors.
pub fn write_dir(dir: &Path, vs: &VarStore, cfg: &ActConfig, stats: &Stats, dtype: WeightDtype) -> Result<()> {
    let opts = ExportOptions {
        dtype,
        ..Default::default()
    };
    export_checkpoint(CheckpointForm::Dir, dir, vs, cfg, stats, &opts)
}

/// Single-file form with the weights under the ORIGINAL ACT names (statistics and metadata as in
/// [`write_single`]), to test that readers accept them.
pub fn write_original_names(
    path: &Path,
    vs: &VarStore,
    cfg: &ActConfig,
    stats: &Stats,
    dtype: WeightDtype,
    model_prefix: bool,
    include_unused: bool,
) -> Result<()> {
    let opts = ExportOptions {
        dtype,
        names: KeyNames::Original {
            model_prefix,
            include_unused,
        },
        ..Default::default()
    };
    export_checkpoint(CheckpointForm::Single, path, vs, cfg, stats, &opts)
}

fn kind_of(dtype: Dtype) -> Result<Kind> {
    Ok(match dtype {
        Dtype::F32 => Kind::Float,
        Dtype::F16 => Kind::Half,
        Dtype::BF16 => Kind::BFloat16,
        Dtype::F64 => Kind::Double,
        d => bail!("unsupported dtype {d:?}"),
    })
}

/// Loads every `model.*` variable of `vs` from a checkpoint in either form (`path` a directory
/// holding model.safetensors, or a safetensors file), LeRobot or original ACT names, converting
/// dtype to the variable's. Every variable must be present with the same shape; extra tensors in
/// the file are ignored. Returns the number of variables loaded.
pub fn load_weights(vs: &VarStore, path: &Path) -> Result<usize> {
    let file = if path.is_dir() {
        path.join(MODEL_FILE)
    } else {
        path.to_path_buf()
    };
    let bytes = act_core::fs::read_regular_file(&file, act_core::DEFAULT_MEMORY_BUDGET, "the memory budget")
        .with_context(|| format!("reading {}", file.display()))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| anyhow!("parsing safetensors {}: {e}", file.display()))?;
    let original = uses_original_names(st.names().iter().copied());
    let mut by_name: HashMap<String, String> = HashMap::new();
    for k in st.names() {
        let key = if original {
            original_to_lerobot(k)
        } else {
            Some(k.to_string())
        };
        if let Some(key) = key {
            by_name.insert(key, k.to_string());
        }
    }
    let mut missing = Vec::new();
    let mut n = 0;
    for (name, var) in model_variables(vs) {
        let Some(k) = by_name.get(&name) else {
            missing.push(name);
            continue;
        };
        let view = st
            .tensor(k)
            .map_err(|e| anyhow!("{}: tensor {k}: {e}", file.display()))?;
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        ensure!(
            shape == var.size(),
            "{}: tensor {k} has shape {:?}, the model's {name} has {:?}",
            file.display(),
            shape,
            var.size()
        );
        let t = if view.dtype() == Dtype::I8 {
            // int8 weights (`--quantize int8`) stand for q * scale, per output channel.
            let rows = *view.shape().first().ok_or_else(|| anyhow!("{}: int8 tensor {k} has no dimensions", file.display()))?;
            let scale = st
                .tensor(&format!("{k}_scale"))
                .map_err(|e| anyhow!("{}: int8 tensor {k} without its scales {k}_scale: {e}", file.display()))?;
            ensure!(
                scale.shape() == [rows],
                "{}: {k}_scale must have shape [{rows}], found {:?}",
                file.display(),
                scale.shape()
            );
            let kind = kind_of(scale.dtype()).with_context(|| format!("{}: tensor {k}_scale", file.display()))?;
            let s = Tensor::from_data_size(scale.data(), &[rows as i64], kind).to_kind(Kind::Float);
            ensure!(
                s.isfinite().all().int64_value(&[]) == 1,
                "{}: {k}_scale holds NaN or infinity",
                file.display()
            );
            let q = Tensor::from_data_size(view.data(), &shape, Kind::Int8).to_kind(Kind::Float);
            (q.reshape([rows as i64, -1]) * s.unsqueeze(1)).reshape(&shape)
        } else {
            let kind = kind_of(view.dtype()).with_context(|| format!("{}: tensor {k}", file.display()))?;
            Tensor::from_data_size(view.data(), &shape, kind)
        };
        tch::no_grad(|| {
            let mut v = var.shallow_clone();
            v.copy_(&t.to_kind(var.kind()).to_device(var.device()));
        });
        n += 1;
    }
    if !missing.is_empty() {
        let shown: Vec<_> = missing.iter().take(10).cloned().collect();
        bail!(
            "{}: {} model tensors missing, e.g. {}",
            file.display(),
            missing.len(),
            shown.join(", ")
        );
    }
    Ok(n)
}
