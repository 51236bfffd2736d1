//! Loading and running act-core on fuzzed checkpoints. The input is one of two forms (first byte):
//!
//! - **raw** (even): the rest is a single-file checkpoint for `Policy::from_bytes`: the
//!   safetensors parser, the config in its metadata, every error path of loading;
//! - **structured** (odd): a valid tiny model whose every piece the fuzzer controls:
//!   `[dtype][flags][u16 config length][config.json][u32 stats length][stats safetensors][patches]`,
//!   where the model weights (f32 / f16 / bf16 by `dtype`) are generated once, the stats file
//!   holds the normalisation statistics (legacy buffers or processor keys), and each 10-byte
//!   patch `[u16 tensor][u32 element][f32 value]` overwrites one weight (NaN, huge, negative
//!   variance ...). The last bytes become qpos.
//!
//! The property: whatever loads gives finite actions from `predict` and from two `step`s, or a
//! named error. A panic (including the assertion here) is a finding.
#![no_main]

#[path = "../../tests/common.rs"]
#[allow(dead_code, unused_imports)]
mod common;

use act_core::{Config, Ensembling, Error, Options, Policy};
use libfuzzer_sys::fuzz_target;
use std::sync::{Mutex, OnceLock};

/// Loads stay small: a config asking for more is refused by the memory plan, as in production.
const BUDGET: u64 = 256 << 20;
/// Cameras larger than this load but are not run (a 4096 x 4096 frame takes seconds per query).
const MAX_RUN_PIXELS: usize = 160 * 160;

/// The base model of the structured form, serialised once per dtype, with where each tensor's
/// bytes are in the file.
struct Base {
    bytes: Vec<u8>,
    /// (offset of the data in `bytes`, element count, element size).
    tensors: Vec<(usize, usize, usize)>,
}

fn base(dtype: u8) -> &'static Mutex<Base> {
    static BASES: [OnceLock<Mutex<Base>>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    BASES[dtype as usize % 3].get_or_init(|| {
        let t = common::Tiny { cameras: vec![("top", 32, 32)], ..common::Tiny::new() };
        let values: Vec<_> = t.values(7).into_iter().filter(|(n, _, _)| n.starts_with("model.")).collect();
        let dt = [safetensors::Dtype::F32, safetensors::Dtype::F16, safetensors::Dtype::BF16][dtype as usize % 3];
        let bytes = common::serialize(&values, None, dt);
        let st = safetensors::SafeTensors::deserialize(&bytes).expect("base model parses");
        let start = bytes.as_ptr() as usize;
        let mut tensors: Vec<(String, usize, usize, usize)> = st
            .tensors()
            .into_iter()
            .map(|(n, v)| (n, v.data().as_ptr() as usize - start, v.shape().iter().product(), v.dtype().bitsize() / 8))
            .collect();
        tensors.sort();
        let tensors = tensors.into_iter().map(|(_, o, n, s)| (o, n, s)).collect();
        Mutex::new(Base { bytes, tensors })
    })
}

struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<usize> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
    }
    fn u32(&mut self) -> Option<usize> {
        self.take(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }
}

/// Runs a loaded policy: predict, then two steps. Finite actions or a named error.
fn exercise(policy: &mut Policy, qpos_bytes: &[u8]) {
    let cfg: Config = policy.config().clone();
    if cfg.cameras.iter().map(|c| c.height * c.width).sum::<usize>() > MAX_RUN_PIXELS {
        return;
    }
    let mut qpos: Vec<f32> = qpos_bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    qpos.resize(cfg.state_dim, 0.25);
    let images: Vec<Vec<u8>> = cfg.cameras.iter().enumerate().map(|(i, c)| common::image(c.height, c.width, i as u64)).collect();
    let views: Vec<&[u8]> = images.iter().map(Vec::as_slice).collect();
    let mut chunk = vec![0.0f32; cfg.chunk_size * cfg.action_dim];
    check(policy.predict(&qpos, &views, &mut chunk), &chunk);
    let mut action = vec![0.0f32; cfg.action_dim];
    for _ in 0..2 {
        check(policy.step(&qpos, &views, &mut action), &action);
    }
}

fn check(result: Result<(), Error>, out: &[f32]) {
    match result {
        Ok(()) => assert!(out.iter().all(|v| v.is_finite()), "Ok with non-finite actions: {out:?}"),
        // Every error must describe itself (this also exercises each Display arm).
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

fn options(flags: u8) -> Options {
    Options {
        ensembling: match flags & 3 {
            0 => Ensembling::FromConfig,
            1 => Ensembling::Disabled,
            2 => Ensembling::Coefficient(0.01),
            _ => Ensembling::Coefficient(f32::from(flags >> 4)),
        },
        threads: if flags & 4 != 0 { 2 } else { 1 },
        memory_budget: Some(BUDGET),
        ..Options::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let Some(mode) = input.u8() else { return };
    if mode % 2 == 0 {
        if let Ok(mut policy) = Policy::from_bytes(input.0, &Options { memory_budget: Some(BUDGET), ..Options::default() }) {
            exercise(&mut policy, &[]);
        }
        return;
    }
    let (Some(dtype), Some(flags)) = (input.u8(), input.u8()) else { return };
    let Some(config_len) = input.u16() else { return };
    let Some(config) = input.take(config_len) else { return };
    let Some(stats_len) = input.u32() else { return };
    let Some(stats) = input.take(stats_len) else { return };
    let Ok(text) = std::str::from_utf8(config) else { return };
    let config = match Config::from_json(text) {
        Ok(c) => c,
        Err(e) => return assert!(!e.to_string().is_empty()),
    };
    let mut base = base(dtype).lock().unwrap_or_else(|e| e.into_inner());
    // Patches are applied in place and undone afterwards (the base is 22-45 MB).
    let mut undo: Vec<(usize, Vec<u8>)> = Vec::new();
    while input.0.len() >= 10 + 4 * config.state_dim {
        let (t, e, v) = (input.u16().unwrap(), input.u32().unwrap(), input.take(4).unwrap());
        let (offset, n, size) = base.tensors[t % base.tensors.len()];
        let at = offset + (e % n) * size;
        let value = f32::from_le_bytes([v[0], v[1], v[2], v[3]]);
        let encoded: Vec<u8> = match size {
            4 => value.to_le_bytes().to_vec(),
            _ if dtype % 3 == 1 => half::f16::from_f32(value).to_le_bytes().to_vec(),
            _ => half::bf16::from_f32(value).to_le_bytes().to_vec(),
        };
        undo.push((at, base.bytes[at..at + size].to_vec()));
        base.bytes[at..at + size].copy_from_slice(&encoded);
    }
    let result = Policy::new(config, &[(&base.bytes, "model.safetensors"), (stats, "stats.safetensors")], &options(flags));
    for (at, old) in undo.into_iter().rev() {
        base.bytes[at..at + old.len()].copy_from_slice(&old);
    }
    drop(base);
    match result {
        Ok(mut policy) => exercise(&mut policy, input.0),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
