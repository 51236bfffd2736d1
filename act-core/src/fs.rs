//! Loading from the file system (std): single-file checkpoints and LeRobot checkpoint
//! directories, memory-mapped so the file is never copied whole into memory.
use crate::config::Config;
use crate::error::{Error, Result};
use crate::policy::{Options, Policy};
use memmap2::Mmap;
use std::fs::File;
use std::path::Path;

const PROCESSOR_FILES: [&str; 2] = [
    "policy_preprocessor_step_3_normalizer_processor.safetensors",
    "policy_postprocessor_step_0_unnormalizer_processor.safetensors",
];

fn io_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io { path: path.display().to_string(), message: e.to_string() }
}

fn map(path: &Path) -> Result<Mmap> {
    let file = File::open(path).map_err(|e| io_err(path, e))?;
    let len = file.metadata().map_err(|e| io_err(path, e))?.len();
    if len < 8 {
        return Err(Error::Truncated { what: format!("{}: {len} bytes, shorter than the 8-byte header length", path.display()) });
    }
    // SAFETY: the map is read-only and lives only while the policy is built; act-core copies
    // every tensor it keeps. A file truncated by another process meanwhile would fault, as with
    // any memory-mapped reader; checkpoints are not expected to change while loading.
    unsafe { Mmap::map(&file) }.map_err(|e| io_err(path, e))
}

impl Policy {
    /// Open a single-file checkpoint or a LeRobot checkpoint directory (docs/CHECKPOINT.md).
    pub fn open(path: impl AsRef<Path>, options: &Options) -> Result<Policy> {
        let path = path.as_ref();
        let meta = std::fs::metadata(path).map_err(|e| io_err(path, e))?;
        if !meta.is_dir() {
            let bytes = map(path)?;
            return Policy::from_bytes(&bytes, options);
        }
        let config_path = path.join("config.json");
        let text = std::fs::read_to_string(&config_path).map_err(|e| io_err(&config_path, e))?;
        let config = Config::from_json(&text)?;
        let model_path = path.join("model.safetensors");
        let model = map(&model_path)?;
        let mut maps = Vec::new();
        for name in PROCESSOR_FILES {
            let p = path.join(name);
            if p.exists() {
                maps.push((map(&p)?, name));
            }
        }
        let mut buffers: Vec<(&[u8], &str)> = vec![(&model[..], "model.safetensors")];
        buffers.extend(maps.iter().map(|(m, n)| (&m[..], *n)));
        Policy::new(config, &buffers, options)
    }
}
