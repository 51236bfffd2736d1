//! A `#![no_std]` program using act-core: parse a config, ensemble a few actions, and reject a
//! malformed checkpoint. Exit code 0 and "no_std ok" on stdout when everything behaves.
#![no_std]
#![no_main]

extern crate alloc;

use act_core::{Config, Error, Options, Policy, TemporalEnsembler};
use core::alloc::{GlobalAlloc, Layout};

unsafe extern "C" {
    fn aligned_alloc(align: usize, size: usize) -> *mut u8;
    fn free(ptr: *mut u8);
    fn abort() -> !;
    fn write(fd: i32, buf: *const u8, n: usize) -> isize;
}

struct LibcAlloc;

// SAFETY: aligned_alloc returns memory aligned to `align` (a power of two) or null; free
// releases it. Sizes are rounded up to a multiple of the alignment as C11 requires.
unsafe impl GlobalAlloc for LibcAlloc {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let align = l.align().max(core::mem::size_of::<usize>());
        unsafe { aligned_alloc(align, l.size().div_ceil(align) * align) }
    }
    unsafe fn dealloc(&self, p: *mut u8, _: Layout) {
        unsafe { free(p) }
    }
}

#[global_allocator]
static ALLOC: LibcAlloc = LibcAlloc;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // SAFETY: abort never returns and needs no state.
    unsafe { abort() }
}

/// The precompiled liballoc refers to the unwinding personality routine; with panic = "abort"
/// nothing ever unwinds, so it is never called.
#[unsafe(no_mangle)]
pub extern "C" fn rust_eh_personality() {}

fn say(s: &str) {
    // SAFETY: writes `s.len()` bytes from a valid slice to stdout.
    unsafe { write(1, s.as_ptr(), s.len()) };
}

const CONFIG: &str = r#"{"type": "act",
  "input_features": {"observation.state": {"type": "STATE", "shape": [14]},
                     "observation.images.top": {"type": "VISUAL", "shape": [3, 480, 640]}},
  "output_features": {"action": {"type": "ACTION", "shape": [14]}},
  "dim_model": 512, "n_heads": 8, "dim_feedforward": 3200, "n_encoder_layers": 4,
  "n_decoder_layers": 1, "chunk_size": 100, "latent_dim": 32}"#;

#[unsafe(no_mangle)]
pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
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
    say("no_std ok\n");
    0
}
