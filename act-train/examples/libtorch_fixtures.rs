//! Writes libtorch reference results for a machine without libtorch: for each case a random
//! single-file checkpoint and, beside it, two observations with libtorch's actions and
//! intermediates on exactly the weights act-core reads (`reference::write_expected`).
//! act-core's tests/libtorch_fixtures.rs compares against them under qemu on aarch64
//! (scripts/test-aarch64.sh runs this first).
//!
//! Usage: `cargo run -p act-train --example libtorch_fixtures -- OUT_DIR`
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use act_train::export::load_weights;
use act_train::random_export::export_random;
use act_train::reference::{observation, torch_forward, write_expected};
use act_train::{Act, ActConfig, CheckpointForm, ExportOptions, WeightDtype};
use tch::{nn::VarStore, Device};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out] = args.as_slice() else { bail!("usage: libtorch_fixtures OUT_DIR") };
    let out = PathBuf::from(out);
    let cases = [
        ("tiny", ActConfig::tiny(), WeightDtype::F32),
        ("tiny-2cam", ActConfig::tiny().with_cameras(&[("top", 64, 64), ("left_wrist", 48, 96)]), WeightDtype::F32),
        ("tiny-f16", ActConfig::tiny(), WeightDtype::F16),
        ("small", ActConfig::small(), WeightDtype::F32),
    ];
    for (seed, (name, cfg, dtype)) in cases.into_iter().enumerate() {
        let dir = out.join(name);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let checkpoint = dir.join("checkpoint.safetensors");
        let opts = ExportOptions { dtype, ..ExportOptions::default() };
        let (_, stats) = export_random(&checkpoint, CheckpointForm::Single, &cfg, &opts, 300 + seed as i64)?;
        // The reference runs the weights as stored (rounded to f16 where the checkpoint is f16).
        let vs = VarStore::new(Device::Cpu);
        let model = Act::new(&vs.root(), &cfg)?;
        load_weights(&vs, &checkpoint)?;
        let observations: Vec<_> = (0..2).map(|i| observation(&cfg, 1000 + 10 * seed as u64 + i)).collect();
        let results: Vec<_> = observations.iter().map(|obs| torch_forward(&model, &cfg, &stats, obs)).collect();
        let rows: Vec<_> = observations.iter().zip(&results).map(|(obs, (actions, outs))| (obs, actions.as_slice(), outs)).collect();
        write_expected(&dir.join("expected.safetensors"), &rows, &cfg)?;
        println!("{name}: {}", dir.display());
    }
    Ok(())
}
