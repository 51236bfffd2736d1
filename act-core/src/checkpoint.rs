//! Reading checkpoints: safetensors files parsed from byte slices, tensor names normalised to
//! LeRobot's layout (original-ACT names mapped per ACT_SPEC.md section 3), dtypes widened to f32
//! (int8 tensors dequantised with their per-row scales; the statistics are read by `normalize`).
use crate::error::{Error, Result};
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use half::{bf16, f16};
use safetensors::{Dtype, SafeTensorError, SafeTensors};

/// The safetensors files of one checkpoint, in lookup order, with a name index.
pub struct TensorStore<'a> {
    files: Vec<SafeTensors<'a>>,
    /// Canonical model key (no `model.` prefix, LeRobot names) -> (file, name in file).
    model_keys: BTreeMap<String, (usize, String)>,
    /// Metadata of the first file.
    metadata: BTreeMap<String, String>,
}

fn parse_error(e: SafeTensorError, which: &str) -> Error {
    match e {
        SafeTensorError::HeaderTooSmall | SafeTensorError::InvalidHeaderLength | SafeTensorError::MetadataIncompleteBuffer => {
            Error::Truncated { what: format!("{which}: {e}") }
        }
        other => Error::BadHeader { what: format!("{which}: {other}") },
    }
}

/// Original-ACT prefixes (after any `model.`) and their LeRobot names. Order matters: the
/// longer `input_proj_robot_state.` before `input_proj.`, CVAE `encoder.` after `transformer.encoder.`.
const ORIGINAL_NAMES: &[(&str, &str)] = &[
    ("backbones.0.0.body.", "backbone."),
    ("transformer.encoder.", "encoder."),
    ("transformer.decoder.", "decoder."),
    ("query_embed.", "decoder_pos_embed."),
    ("additional_pos_embed.", "encoder_1d_feature_pos_embed."),
    ("latent_out_proj.", "encoder_latent_input_proj."),
    ("input_proj_robot_state.", "encoder_robot_state_input_proj."),
    ("input_proj.", "encoder_img_feat_input_proj."),
    ("encoder.", "vae_encoder."),
    ("cls_embed.", "vae_encoder_cls_embed."),
    ("encoder_joint_proj.", "vae_encoder_robot_state_input_proj."),
    ("encoder_action_proj.", "vae_encoder_action_input_proj."),
    ("latent_proj.", "vae_encoder_latent_output_proj."),
    ("pos_table", "vae_encoder_pos_enc"),
];

fn is_stats_key(name: &str) -> bool {
    name.starts_with("normalize_inputs.") || name.starts_with("normalize_targets.") || name.starts_with("unnormalize_outputs.")
}

impl<'a> TensorStore<'a> {
    /// Parse the given safetensors buffers (the first one holds the model weights).
    pub fn parse(buffers: &[(&'a [u8], &str)]) -> Result<TensorStore<'a>> {
        let mut files = Vec::with_capacity(buffers.len());
        let mut metadata = BTreeMap::new();
        for (i, (bytes, which)) in buffers.iter().enumerate() {
            let st = SafeTensors::deserialize(bytes).map_err(|e| parse_error(e, which))?;
            if i == 0 {
                let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| parse_error(e, which))?;
                if let Some(m) = meta.metadata() {
                    for (k, v) in m.iter() {
                        metadata.insert(k.clone(), v.clone());
                    }
                }
            }
            files.push(st);
        }
        let mut model_keys = BTreeMap::new();
        if let Some(first) = files.first() {
            let names = first.names();
            let stripped = |n: &str| -> String { n.strip_prefix("model.").unwrap_or(n).to_string() };
            let original = names.iter().any(|n| {
                let s = stripped(n);
                s.starts_with("transformer.") || s.starts_with("backbones.")
            });
            // Sorted: the header's JSON object comes back in hash order, and a duplicate must be
            // reported the same way on every run.
            let mut names = names;
            names.sort_unstable();
            for name in names {
                if is_stats_key(name) {
                    continue;
                }
                let mut key = stripped(name);
                if let Some((from, to)) = ORIGINAL_NAMES.iter().find(|(from, _)| original && key.starts_with(from)) {
                    key = format!("{to}{}", &key[from.len()..]);
                }
                if let Some((_, first)) = model_keys.insert(key, (0, name.to_string())) {
                    return Err(Error::DuplicateTensor { first, second: name.to_string() });
                }
            }
        }
        Ok(TensorStore { files, model_keys, metadata })
    }

    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(String::as_str)
    }

    /// A model tensor by its canonical (LeRobot, un-prefixed) key, checked against `shape`.
    pub fn model(&self, key: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let (file, name) = self.model_keys.get(key).ok_or_else(|| Error::MissingTensor { name: format!("model.{key}") })?;
        self.read(*file, name, shape)
    }

    /// Whether a model tensor exists.
    pub fn has_model(&self, key: &str) -> bool {
        self.model_keys.contains_key(key)
    }

    /// The first of `names` found in any file, checked against `shape`; `None` if none exists.
    pub fn find_any(&self, names: &[&str], shape: &[usize]) -> Result<Option<Vec<f32>>> {
        for name in names {
            for (i, f) in self.files.iter().enumerate() {
                if f.tensor(name).is_ok() {
                    return self.read(i, name, shape).map(Some);
                }
            }
        }
        Ok(None)
    }

    fn read(&self, file: usize, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let view = self.files[file].tensor(name).map_err(|_| Error::MissingTensor { name: name.to_string() })?;
        // A [n] tensor is accepted where [n, 1, 1] (or vice versa) is expected: only the
        // element order matters, and LeRobot's image statistics are stored as [3, 1, 1].
        let squeeze = |s: &[usize]| s.iter().copied().filter(|&d| d != 1).collect::<Vec<_>>();
        if view.shape() != shape && squeeze(view.shape()) != squeeze(shape) {
            return Err(Error::ShapeMismatch { name: name.to_string(), expected: shape.to_vec(), found: view.shape().to_vec() });
        }
        let bytes = view.data();
        let out: Vec<f32> = match view.dtype() {
            Dtype::F32 => bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            Dtype::F16 => bytes.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            Dtype::BF16 => bytes.chunks_exact(2).map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            Dtype::I8 => self.dequantize(file, name, view.shape(), bytes)?,
            other => return Err(Error::UnsupportedDtype { name: name.to_string(), dtype: format!("{other:?}") }),
        };
        if out.iter().any(|v| !v.is_finite()) {
            return Err(Error::NonFiniteWeight { name: name.to_string() });
        }
        Ok(out)
    }

    /// An int8 tensor (`act-train export --quantize int8`, docs/CHECKPOINT.md): `q` with one scale
    /// per index of its first dimension (an output channel) in `<name>_scale`, in the same file;
    /// the value is `q * scale`. Widened to f32 like every dtype: the int8 compute path rounds
    /// these values back to exactly `q` (per output channel, max |q| * scale maps to 127), other
    /// paths run the dequantised weights.
    fn dequantize(&self, file: usize, name: &str, shape: &[usize], bytes: &[u8]) -> Result<Vec<f32>> {
        let scale_name = format!("{name}_scale");
        let Some(&rows) = shape.first() else {
            return Err(Error::UnsupportedDtype { name: name.to_string(), dtype: "I8 with no dimensions (int8 needs one scale per row)".into() });
        };
        match self.files[file].tensor(&scale_name).map(|v| v.dtype()) {
            Err(_) => return Err(Error::UnsupportedDtype { name: name.to_string(), dtype: format!("I8 without its per-row scales `{scale_name}`") }),
            // Float scales only: an I8 scale would ask for scales of its own, a chain as long as
            // the file makes it.
            Ok(Dtype::F32 | Dtype::F16 | Dtype::BF16) => {}
            Ok(other) => return Err(Error::UnsupportedDtype { name: scale_name, dtype: format!("{other:?} (the scales of an I8 tensor are F32, F16 or BF16)") }),
        }
        // Checked like any tensor: shape [rows], finite.
        let scale = self.read(file, &scale_name, &[rows])?;
        let per_row = bytes.len().checked_div(rows).unwrap_or(0);
        Ok(bytes.iter().enumerate().map(|(i, &q)| f32::from(q as i8) * scale[i / per_row]).collect())
    }
}
