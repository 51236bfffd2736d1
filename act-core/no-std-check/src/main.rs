//! A `#![no_std]` program using act-core: parse a config, ensemble a few actions, and reject a
//! malformed checkpoint. Hosted (Linux, libc's allocator and `write`): exit code 0 and
//! "no_std ok" on stdout when everything behaves. Bare metal (`aarch64-unknown-none`): the same
//! check behind an entry point, allocator and panic handler of its own (`bare.rs`).
#![no_std]
#![no_main]

extern crate alloc;

use act_core::{Config, Error, Options, Policy, TemporalEnsembler};

#[cfg(target_os = "linux")]
mod hosted;
#[cfg(target_os = "linux")]
use hosted::say;
#[cfg(target_os = "none")]
mod bare;
#[cfg(target_os = "none")]
use bare::say;

const CONFIG: &str = r#"{"type": "act",
  "input_features": {"observation.state": {"type": "STATE", "shape": [14]},
                     "observation.images.top": {"type": "VISUAL", "shape": [3, 480, 640]}},
  "output_features": {"action": {"type": "ACTION", "shape": [14]}},
  "dim_model": 512, "n_heads": 8, "dim_feedforward": 3200, "n_encoder_layers": 4,
  "n_decoder_layers": 1, "chunk_size": 100, "latent_dim": 32}"#;

/// The check itself: 0 when act-core behaved, the number of the failed step otherwise.
fn check() -> i32 {
    let Ok(cfg) = Config::from_json(CONFIG) else { return 1 };
    if cfg.n_tokens() != 302 || cfg.cameras[0].name != "top" {
        return 2;
    }
    let mut e = TemporalEnsembler::new(0.01, 2, 1);
    let mut out = [0.0f32];
    e.push(&[1.0, 3.0], &mut out);
    e.push(&[5.0, 7.0], &mut out);
    // (3 * 1 + 5 * e^-0.01) / (1 + e^-0.01) is just below 4.
    if !(3.99..4.0).contains(&out[0]) {
        return 3;
    }
    match Policy::from_bytes(&[1, 2, 3], &Options::default()) {
        Err(Error::Truncated { .. }) => {}
        _ => return 4,
    }
    // Keep the whole forward pass (every kernel of the target) in the binary, so that this build
    // proves the inference code, not only the parser, compiles and links without an OS.
    core::hint::black_box(Policy::predict as fn(&mut Policy, &[f32], &[&[u8]], &mut [f32]) -> act_core::Result<()>);
    core::hint::black_box(Policy::step as fn(&mut Policy, &[f32], &[&[u8]], &mut [f32]) -> act_core::Result<()>);
    say("no_std ok\n");
    0
}
