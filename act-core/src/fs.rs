//! Loading from the file system (std): single-file checkpoints and LeRobot checkpoint
//! directories.
//!
//! Files are read into memory, never mapped: a mapped file that another process truncates turns
//! the next read of the lost pages into SIGBUS, which no error handling can catch. Only regular
//! files are opened, without blocking (a FIFO would wait forever for a writer, `/dev/zero` would
//! be read until memory runs out), and each read is capped: JSON at [`MAX_JSON_BYTES`], tensor
//! files at the memory budget. A file that changes size while it is read is an error.
use crate::config::{Config, ProcessorSettings};
use crate::error::{Bytes, Error, Result};
use crate::memory::DEFAULT_MEMORY_BUDGET;
use crate::policy::{Options, Policy};
use std::fs::File;
use std::io::Read;
use std::path::Path;

/// The largest `config.json` or processor JSON act-rs reads: 16 MiB, 1000x LeRobot's.
pub const MAX_JSON_BYTES: u64 = 16 << 20;

const PROCESSOR_JSON: [&str; 2] = ["policy_preprocessor.json", "policy_postprocessor.json"];

const PROCESSOR_FILES: [&str; 2] = [
    "policy_preprocessor_step_3_normalizer_processor.safetensors",
    "policy_postprocessor_step_0_unnormalizer_processor.safetensors",
];

fn io_err(path: &Path, message: impl std::fmt::Display) -> Error {
    Error::Io { path: path.display().to_string(), message: message.to_string() }
}

/// What a non-regular file is, for the error message.
fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
    }
    if meta.is_dir() { "a directory" } else { "not a regular file" }
}

/// Opens `path` if (after following links) it is a regular file. The open itself does not block
/// (`O_NONBLOCK`), and the type is checked again on the open file, so a file swapped for a FIFO
/// between the two checks is refused too.
fn open_regular(path: &Path) -> Result<File> {
    let meta = std::fs::metadata(path).map_err(|e| io_err(path, e))?;
    if !meta.is_file() {
        return Err(io_err(path, format_args!("is {}, expected a regular file", kind_of(&meta))));
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NONBLOCK);
    }
    let file = opts.open(path).map_err(|e| io_err(path, e))?;
    let meta = file.metadata().map_err(|e| io_err(path, e))?;
    if !meta.is_file() {
        return Err(io_err(path, format_args!("is {}, expected a regular file", kind_of(&meta))));
    }
    Ok(file)
}

/// Reads a whole regular file of at most `limit` bytes (`what` names the limit in the error).
/// A size that changes while reading (another process truncating or appending) is an error.
pub fn read_regular_file(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>> {
    let mut file = open_regular(path)?;
    let len = file.metadata().map_err(|e| io_err(path, e))?.len();
    if len > limit {
        return Err(io_err(path, format_args!("is {}, more than {what} ({})", Bytes(len), Bytes(limit))));
    }
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(len as usize)
        .map_err(|_| Error::AllocationFailed { what: "the checkpoint file's bytes", bytes: len })?;
    // One byte more than expected is read to notice growth.
    (&mut file).take(len + 1).read_to_end(&mut bytes).map_err(|e| io_err(path, e))?;
    if bytes.len() as u64 != len {
        let what = format!("{}: changed size while being read ({len} bytes, then {} read)", path.display(), bytes.len());
        return Err(if (bytes.len() as u64) < len { Error::Truncated { what } } else { io_err(path, what) });
    }
    Ok(bytes)
}

/// Reads a UTF-8 JSON file of at most [`MAX_JSON_BYTES`].
pub fn read_json_file(path: &Path) -> Result<String> {
    let bytes = read_regular_file(path, MAX_JSON_BYTES, "the JSON size limit")?;
    String::from_utf8(bytes).map_err(|e| io_err(path, format_args!("is not UTF-8: {e}")))
}

impl Policy {
    /// Open a single-file checkpoint or a LeRobot checkpoint directory (docs/CHECKPOINT.md).
    /// Every file must be a regular file (links to one are followed); tensor files are limited
    /// to the memory budget, config.json to [`MAX_JSON_BYTES`].
    pub fn open(path: impl AsRef<Path>, options: &Options) -> Result<Policy> {
        let path = path.as_ref();
        let budget = options.memory_budget.unwrap_or(DEFAULT_MEMORY_BUDGET);
        let tensors = |p: &Path| read_regular_file(p, budget, "the memory budget (Options::memory_budget)");
        let meta = std::fs::metadata(path).map_err(|e| io_err(path, e))?;
        if !meta.is_dir() {
            let bytes = tensors(path)?;
            if bytes.len() < 8 {
                return Err(Error::Truncated { what: format!("{}: {} bytes, shorter than the 8-byte header length", path.display(), bytes.len()) });
            }
            return Policy::from_bytes(&bytes, options);
        }
        let mut config = Config::from_json(&read_json_file(&path.join("config.json"))?)?;
        // LeRobot's pipelines: their (un)normaliser steps' eps and norm_map, when the files exist.
        let mut settings = [ProcessorSettings::default(), ProcessorSettings::default()];
        for (slot, name) in settings.iter_mut().zip(PROCESSOR_JSON) {
            let p = path.join(name);
            if std::fs::symlink_metadata(&p).is_ok() {
                *slot = ProcessorSettings::from_json(&read_json_file(&p)?, name)?;
            }
        }
        let [pre, post] = settings;
        config.apply_processors(pre, post);
        let model = tensors(&path.join("model.safetensors"))?;
        let mut files = vec![(model, "model.safetensors")];
        for name in PROCESSOR_FILES {
            let p = path.join(name);
            // symlink_metadata: a dangling link is "present" and then refused by name.
            if std::fs::symlink_metadata(&p).is_ok() {
                files.push((tensors(&p)?, name));
            }
        }
        let buffers: Vec<(&[u8], &str)> = files.iter().map(|(b, n)| (&b[..], *n)).collect();
        Policy::new(config, &buffers, options)
    }
}
