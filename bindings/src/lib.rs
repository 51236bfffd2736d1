//! C ABI over act-core: `libact_core.so`, `libact_core.a` and `include/act_core.h` (cbindgen).
//!
//! Every exported function returns an [`act_status`] (or a static string), catches panics at the
//! boundary, and checks every pointer and length before it builds a Rust slice. The hot-path calls
//! (`act_policy_step`, `act_policy_predict_chunk`, `act_policy_reset`, `act_policy_info`,
//! `act_policy_camera`) allocate nothing, not even on error: a handle's error message is formatted
//! into a fixed buffer inside the handle, and errors without a handle go to a fixed thread-local
//! buffer. The header's preamble (cbindgen.toml) is the user documentation; keep the two in step.
#![allow(non_camel_case_types)]
#![deny(unsafe_op_in_unsafe_fn)]

use act::{Alignment, Policy};
use core::ffi::{c_char, c_int, CStr};
use std::ffi::CString;

#[macro_use]
mod handle;
mod options;
mod runner;
mod types;
pub use handle::act_policy;
use handle::{finish_open, global_fail, guard_global, status_of, with_policy, ErrorBuf, Fail};
use options::{isa_code, parse_options, precision_code};
use runner::Runner;
pub use types::*;
use act_status::*;

/// Default options: threads 0, ensembling from the checkpoint's config, best instruction set, f32,
/// the inherited scheduling policy.
/// The same as a zero-initialised `act_options`.
#[unsafe(no_mangle)]
pub extern "C" fn act_options_default() -> act_options {
    options::default_options()
}

/// Opens a checkpoint: a single-file checkpoint (`.safetensors` with the config in its metadata) or
/// a LeRobot checkpoint directory (`config.json` + `model.safetensors`).
///
/// `path` is a NUL-terminated file-system path. `options` may be NULL (defaults). On success `*out`
/// receives a new handle owned by the caller (free it with `act_policy_free`); on failure `*out` is
/// set to NULL (when `out` is not NULL) and `act_last_error()` explains why.
/// Allocates: all of the policy's memory is allocated here, once, after checking the total the
/// configuration needs against `options->memory_budget` (ACT_ERR_OUT_OF_MEMORY names the part).
/// Files: only regular files (or links to them) are opened, without blocking: a FIFO, a device or a
/// directory in a file's place is ACT_ERR_IO naming it. Each file is read into memory, never
/// mapped, and is not used after the open returns: another process truncating it during the open
/// gives ACT_ERR_CHECKPOINT ("truncated"), never SIGBUS. config.json is limited to 16 MiB and a
/// tensor file to the memory budget.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `options` is NULL or points to an `act_options`;
/// `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn act_policy_open(path: *const c_char, options: *const act_options, out: *mut *mut act_policy) -> act_status {
    guard_global(|| {
        if out.is_null() {
            return Err(global_fail(ACT_ERR_NULL_POINTER, format_args!("out (act_policy **) is NULL")));
        }
        // SAFETY: non-NULL and writable by contract; cleared first so a failed open leaves NULL.
        unsafe { *out = core::ptr::null_mut() };
        if path.is_null() {
            return Err(global_fail(ACT_ERR_NULL_POINTER, format_args!("path is NULL")));
        }
        let (options, alignment) = parse_options(options)?;
        // SAFETY: non-NULL and NUL-terminated by contract.
        let bytes = unsafe { CStr::from_ptr(path) }.to_bytes();
        #[cfg(unix)]
        let path = {
            use std::os::unix::ffi::OsStrExt;
            std::path::Path::new(std::ffi::OsStr::from_bytes(bytes))
        };
        #[cfg(not(unix))]
        let path = match core::str::from_utf8(bytes) {
            Ok(s) => std::path::Path::new(s),
            Err(_) => return Err(global_fail(ACT_ERR_INVALID_ARGUMENT, format_args!("path is not UTF-8"))),
        };
        finish_open(Policy::open(path, &options), alignment, out)
    })
}

/// Opens a single-file checkpoint held in memory (`len` bytes at `data`). act-core copies what it
/// keeps: the buffer may be freed as soon as this returns. Otherwise as `act_policy_open`.
///
/// # Safety
/// `data` is NULL or points to `len` readable bytes; `options` and `out` as for `act_policy_open`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn act_policy_open_bytes(
    data: *const u8,
    len: usize,
    options: *const act_options,
    out: *mut *mut act_policy,
) -> act_status {
    guard_global(|| {
        if out.is_null() {
            return Err(global_fail(ACT_ERR_NULL_POINTER, format_args!("out (act_policy **) is NULL")));
        }
        // SAFETY: non-NULL and writable by contract.
        unsafe { *out = core::ptr::null_mut() };
        if data.is_null() {
            return Err(global_fail(ACT_ERR_NULL_POINTER, format_args!("data is NULL")));
        }
        if len > isize::MAX as usize {
            return Err(global_fail(ACT_ERR_INVALID_ARGUMENT, format_args!("len {len} is too large")));
        }
        let (options, alignment) = parse_options(options)?;
        // SAFETY: non-NULL, `len` readable bytes by contract, len <= isize::MAX.
        let bytes = unsafe { core::slice::from_raw_parts(data, len) };
        finish_open(Policy::from_bytes(bytes, &options), alignment, out)
    })
}

/// Frees a handle and everything it owns (camera names included). NULL is accepted (returns
/// `ACT_OK`). The handle must not be used afterwards. Deallocates.
///
/// # Safety
/// `policy` is NULL or a handle from `act_policy_open*` not freed yet and not in use by another thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn act_policy_free(policy: *mut act_policy) -> act_status {
    if policy.is_null() {
        return ACT_OK;
    }
    guard_global(|| {
        // SAFETY: a live handle created by Box::into_raw in finish_open, freed once by contract.
        drop(unsafe { Box::from_raw(policy) });
        Ok(())
    })
}

/// Writes the policy's dimensions into `*out`. Never allocates.
///
/// # Safety
/// `policy` is NULL or a live handle; `out` is NULL or points to a writable `act_info`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn act_policy_info(policy: *const act_policy, out: *mut act_info) -> act_status {
    // SAFETY: info never mutates the policy; with_policy only needs exclusive use, which the
    // contract (no concurrent use of a handle) gives.
    unsafe {
        with_policy(policy.cast_mut(), |p, _, err| {
            if out.is_null() {
                fail!(err, ACT_ERR_NULL_POINTER, "out (act_info *) is NULL");
            }
            if !out.is_aligned() {
                fail!(err, ACT_ERR_INVALID_ARGUMENT, "out (act_info *) is misaligned");
            }
            let c = p.config();
            let coeff = p.ensemble_coefficient();
            let info = act_info {
                state_dim: c.state_dim,
                action_dim: c.action_dim,
                chunk_size: c.chunk_size,
                n_action_steps: c.n_action_steps,
                n_cameras: c.cameras.len(),
                ensembling: if coeff.is_some() { act_ensembling::ACT_ENSEMBLING_COEFFICIENT } else { act_ensembling::ACT_ENSEMBLING_DISABLED } as u32,
                ensemble_coeff: coeff.unwrap_or(0.0),
                isa: isa_code(p.isa()),
                asynchronous: match &*p {
                    Runner::Sync(_) => act_asynchronous::ACT_ASYNC_OFF,
                    Runner::Async { policy, .. } => match policy.options().alignment {
                        Alignment::Observation => act_asynchronous::ACT_ASYNC_ALIGNED,
                        Alignment::Arrival => act_asynchronous::ACT_ASYNC_NAIVE,
                    },
                } as u32,
                memory_bytes: p.memory_bytes(),
                env_state_dim: c.env_state_dim,
                n_ignored_inputs: c.ignored_inputs.len(),
            };
            // SAFETY: non-NULL, aligned, writable by contract.
            out.write(info);
            Ok(())
        })
    }
}

/// Writes the kernels the policy runs (instruction set, compute path) into `*out` and, when `note`
/// is not NULL, why they were chosen (with `ACT_PRECISION_FASTEST_*`, the speeds measured on this
/// CPU) as a NUL-terminated string of at most `note_len` bytes, cut short if longer. Never
/// allocates.
///
/// # Safety
/// `policy` is NULL or a live handle; `out` is NULL or points to a writable `act_kernels`; `note`
/// is NULL or writable for `note_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn act_policy_kernels(policy: *const act_policy, out: *mut act_kernels, note: *mut c_char, note_len: usize) -> act_status {
    // SAFETY: reading the choice never mutates the policy; with_policy only needs exclusive use,
    // which the contract (no concurrent use of a handle) gives.
    unsafe {
        with_policy(policy.cast_mut(), |p, _, err| {
            if out.is_null() {
                fail!(err, ACT_ERR_NULL_POINTER, "out (act_kernels *) is NULL");
            }
            if !out.is_aligned() {
                fail!(err, ACT_ERR_INVALID_ARGUMENT, "out (act_kernels *) is misaligned");
            }
            if !note.is_null() && note_len == 0 {
                fail!(err, ACT_ERR_INVALID_ARGUMENT, "note_len is 0: no room for the terminating NUL");
            }
            let k = p.kernels();
            // SAFETY: non-NULL, aligned, writable by contract.
            out.write(act_kernels { isa: isa_code(k.isa), precision: precision_code(k.storage) });
            if !note.is_null() {
                let n = k.note.len().min(note_len - 1);
                // SAFETY: `note` is writable for note_len > n bytes by contract; the source is the
                // note's own n bytes.
                core::ptr::copy_nonoverlapping(k.note.as_ptr(), note.cast::<u8>(), n);
                *note.add(n) = 0;
            }
            Ok(())
        })
    }
}

/// Writes camera `index` (0-based, config order = the order of images in step/predict) into
/// `*out`. The name points into the policy and lives until `act_policy_free`. Never allocates.
///
/// # Safety
/// `policy` is NULL or a live handle; `out` is NULL or points to a writable `act_camera`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn act_policy_camera(policy: *const act_policy, index: usize, out: *mut act_camera) -> act_status {
    // SAFETY: as in act_policy_info.
    unsafe {
        with_policy(policy.cast_mut(), |p, names, err| {
            if out.is_null() {
                fail!(err, ACT_ERR_NULL_POINTER, "out (act_camera *) is NULL");
            }
            if !out.is_aligned() {
                fail!(err, ACT_ERR_INVALID_ARGUMENT, "out (act_camera *) is misaligned");
            }
            let cams = &p.config().cameras;
            if index >= cams.len() {
                fail!(err, ACT_ERR_INVALID_ARGUMENT, "camera index {index} is out of range (the policy has {} cameras)", cams.len());
            }
            let cam = act_camera { name: names[index].as_ptr(), height: cams[index].height, width: cams[index].width };
            // SAFETY: non-NULL, aligned, writable by contract.
            out.write(cam);
            Ok(())
        })
    }
}

fn ranges_overlap(a: *const u8, a_len: usize, b: *const u8, b_len: usize) -> bool {
    let (a0, b0) = (a as usize, b as usize);
    a_len != 0 && b_len != 0 && a0 < b0.saturating_add(b_len) && b0 < a0.saturating_add(a_len)
}

/// Checks qpos, images and the output buffer of step/predict and calls `run` with slices. Writes
/// only into `err` on failure; allocates nothing (image views live on the stack).
///
/// # Safety
/// The pointers come from the C caller under the step/predict contract.
#[allow(clippy::too_many_arguments)]
unsafe fn with_inputs(
    p: &mut Runner,
    names: &[CString],
    err: &mut ErrorBuf<512>,
    qpos: *const f32,
    qpos_len: usize,
    images: *const act_image,
    n_images: usize,
    out: *mut f32,
    out_len: usize,
    out_name: &str,
    expected_out: usize,
    run: impl FnOnce(&mut Runner, &[f32], &[&[u8]], &mut [f32]) -> act::Result<()>,
) -> Result<(), Fail> {
    let c = p.config();
    if qpos.is_null() {
        fail!(err, ACT_ERR_NULL_POINTER, "qpos is NULL");
    }
    if images.is_null() {
        fail!(err, ACT_ERR_NULL_POINTER, "images is NULL");
    }
    if out.is_null() {
        fail!(err, ACT_ERR_NULL_POINTER, "{out_name} is NULL");
    }
    if !qpos.is_aligned() || !out.is_aligned() || !images.is_aligned() {
        fail!(err, ACT_ERR_INVALID_ARGUMENT, "qpos, images or {out_name} is misaligned");
    }
    if qpos_len != c.state_dim {
        fail!(err, ACT_ERR_INPUT_SIZE, "qpos has {qpos_len} elements, expected state_dim = {}", c.state_dim);
    }
    if n_images != c.cameras.len() {
        fail!(err, ACT_ERR_INPUT_SIZE, "{n_images} images, expected one per camera ({})", c.cameras.len());
    }
    if out_len != expected_out {
        fail!(err, ACT_ERR_INPUT_SIZE, "{out_name} has room for {out_len} floats, expected {expected_out}");
    }
    let out_bytes = out_len * size_of::<f32>();
    if ranges_overlap(out.cast(), out_bytes, qpos.cast(), qpos_len * size_of::<f32>()) {
        fail!(err, ACT_ERR_INVALID_ARGUMENT, "{out_name} overlaps qpos");
    }
    // SAFETY: non-NULL, aligned, n_images (= number of cameras) elements by contract.
    let imgs = unsafe { core::slice::from_raw_parts(images, n_images) };
    let mut views: [&[u8]; ACT_MAX_CAMERAS] = [&[]; ACT_MAX_CAMERAS];
    for (i, (img, cam)) in imgs.iter().zip(&c.cameras).enumerate() {
        if img.data.is_null() {
            fail!(err, ACT_ERR_NULL_POINTER, "images[{i}].data is NULL");
        }
        if img.height != cam.height || img.width != cam.width {
            fail!(
                err,
                ACT_ERR_INPUT_SIZE,
                "images[{i}] is {}x{} (height x width), camera `{}` expects {}x{}",
                img.height,
                img.width,
                names[i].to_str().unwrap_or("?"),
                cam.height,
                cam.width
            );
        }
        let len = cam.height * cam.width * 3;
        if ranges_overlap(out.cast(), out_bytes, img.data, len) {
            fail!(err, ACT_ERR_INVALID_ARGUMENT, "{out_name} overlaps images[{i}]");
        }
        // SAFETY: non-NULL; height * width * 3 readable bytes by contract (sizes checked above).
        views[i] = unsafe { core::slice::from_raw_parts(img.data, len) };
    }
    // SAFETY: non-NULL, aligned, lengths checked, out does not overlap the inputs.
    let (q, o) = unsafe { (core::slice::from_raw_parts(qpos, qpos_len), core::slice::from_raw_parts_mut(out, out_len)) };
    match run(p, q, &views[..n_images], o) {
        Ok(()) => Ok(()),
        Err(e) => fail!(err, status_of(&e), "{e}"),
    }
}

/// One control step: `qpos` (`qpos_len == state_dim` floats, raw joint positions) and one image per
/// camera in camera order (`n_images == n_cameras`) in, one un-normalised action
/// (`action_len == action_dim` floats) out. With temporal ensembling this runs the model every
/// call; with chunk execution every `n_action_steps` calls (the inputs are still checked on every
/// call). Never allocates, on success or error. On error `action` is left unchanged.
///
/// # Safety
/// `policy` is NULL or a live handle not used by another thread meanwhile; non-NULL pointers point
/// to the stated number of elements (`images[i].data` to height*width*3 bytes); `action` is writable
/// and overlaps no input.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn act_policy_step(
    policy: *mut act_policy,
    qpos: *const f32,
    qpos_len: usize,
    images: *const act_image,
    n_images: usize,
    action: *mut f32,
    action_len: usize,
) -> act_status {
    // SAFETY: forwarded contract.
    unsafe {
        with_policy(policy, |p, names, err| {
            let a = p.config().action_dim;
            with_inputs(p, names, err, qpos, qpos_len, images, n_images, action, action_len, "action", a, |p, q, i, o| p.step(q, i, o))
        })
    }
}

/// Predicts one whole chunk: inputs as `act_policy_step`, `chunk_size * action_dim` un-normalised
/// floats out (row-major, action 0 first). Does not touch step's ensembling state. Never allocates.
///
/// # Safety
/// As `act_policy_step`, with `actions` writable for `actions_len` floats.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn act_policy_predict_chunk(
    policy: *mut act_policy,
    qpos: *const f32,
    qpos_len: usize,
    images: *const act_image,
    n_images: usize,
    actions: *mut f32,
    actions_len: usize,
) -> act_status {
    // SAFETY: forwarded contract.
    unsafe {
        with_policy(policy, |p, names, err| {
            if matches!(p, Runner::Async { .. }) {
                fail!(
                    err,
                    ACT_ERR_INVALID_ARGUMENT,
                    "act_policy_predict_chunk is not available on an asynchronous policy (its model runs on the inference thread); open a second, synchronous handle"
                );
            }
            let n = p.config().chunk_size * p.config().action_dim;
            with_inputs(p, names, err, qpos, qpos_len, images, n_images, actions, actions_len, "actions", n, |p, q, i, o| match p {
                Runner::Sync(p) => p.predict(q, i, o),
                Runner::Async { .. } => unreachable!("refused above"),
            })
        })
    }
}

/// Where an asynchronous policy's actions come from (`*out`, see `act_async_status`): how old the
/// newest chunk is, whether the last step held the action before it, and counters. On a
/// synchronous policy (`options.asynchronous` 0) returns `ACT_ERR_INVALID_ARGUMENT`. Never
/// allocates, never waits.
///
/// # Safety
/// `policy` is NULL or a live handle not used by another thread meanwhile; `out` is NULL or points
/// to a writable `act_async_status`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn act_policy_async_status(policy: *const act_policy, out: *mut act_async_status) -> act_status {
    // SAFETY: as in act_policy_info.
    unsafe {
        with_policy(policy.cast_mut(), |p, _, err| {
            if out.is_null() {
                fail!(err, ACT_ERR_NULL_POINTER, "out (act_async_status *) is NULL");
            }
            if !out.is_aligned() {
                fail!(err, ACT_ERR_INVALID_ARGUMENT, "out (act_async_status *) is misaligned");
            }
            let Runner::Async { policy, .. } = p else {
                fail!(err, ACT_ERR_INVALID_ARGUMENT, "the policy is synchronous (opened with options.asynchronous = ACT_ASYNC_OFF): its chunks are never late");
            };
            let s = policy.stats();
            let status = act_async_status {
                newest_chunk_age: policy.newest_chunk_age().map_or(-1, |a| a as i64),
                last_step_held: (policy.last_served() == act::Served::Held) as u32,
                steps: s.steps,
                chunks: s.chunks,
                held_steps: s.held,
            };
            // SAFETY: non-NULL, aligned, writable by contract.
            out.write(status);
            Ok(())
        })
    }
}

/// Sets `observation.environment_state` (raw: `act_info.env_state_dim` floats, `len` of them) for the
/// following `act_policy_step` and `act_policy_predict_chunk` calls, until set again. LeRobot's ACT
/// turns it into one more encoder token. A policy whose model reads an environment state refuses to
/// step before it is set (ACT_ERR_INPUT_SIZE); a policy without one refuses this call
/// (ACT_ERR_INPUT_SIZE). NaN or infinity: ACT_ERR_NON_FINITE_INPUT. Never allocates.
///
/// # Safety
/// `policy` is NULL or a live handle not used by another thread meanwhile; `env` is NULL or points
/// to `len` readable floats.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn act_policy_set_environment_state(policy: *mut act_policy, env: *const f32, len: usize) -> act_status {
    // SAFETY: forwarded contract.
    unsafe {
        with_policy(policy, |p, _, err| {
            if env.is_null() {
                fail!(err, ACT_ERR_NULL_POINTER, "env is NULL");
            }
            if !env.is_aligned() {
                fail!(err, ACT_ERR_INVALID_ARGUMENT, "env (float *) is misaligned");
            }
            if len > isize::MAX as usize / 4 {
                fail!(err, ACT_ERR_INPUT_SIZE, "env length {len} is impossible");
            }
            let Runner::Sync(policy) = p else {
                // act_policy_open refuses an asynchronous policy with an environment state.
                fail!(err, ACT_ERR_UNSUPPORTED, "the asynchronous stepper takes no environment state");
            };
            // SAFETY: non-NULL, aligned, `len` readable floats by contract.
            let env = core::slice::from_raw_parts(env, len);
            match policy.set_environment_state(env) {
                Ok(()) => Ok(()),
                Err(e) => fail!(err, status_of(&e), "{e}"),
            }
        })
    }
}

/// Starts a new episode: forgets the temporal-ensembling history / restarts chunk execution.
/// Never allocates.
///
/// # Safety
/// `policy` is NULL or a live handle not used by another thread meanwhile.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn act_policy_reset(policy: *mut act_policy) -> act_status {
    // SAFETY: forwarded contract.
    unsafe {
        with_policy(policy, |p, _, _| {
            p.reset();
            Ok(())
        })
    }
}

/// The message of the last failed call on `policy`, NUL-terminated; "" when the last call on it
/// succeeded. Owned by the handle: valid until the next call on it or `act_policy_free`. For a NULL
/// handle, returns `act_last_error()`. Never allocates.
///
/// # Safety
/// `policy` is NULL or a live handle not used by another thread meanwhile.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn act_policy_last_error(policy: *const act_policy) -> *const c_char {
    if policy.is_null() {
        return act_last_error();
    }
    // SAFETY: a live handle by contract; only the message buffer is read.
    unsafe { (*policy).error.as_ptr() }
}

/// The message of the last failed call on this thread that had no usable handle: a failed
/// `act_policy_open*`, or a call given a NULL handle. NUL-terminated, "" when there was none. Owned
/// by the library (thread-local): valid until the next such failure on this thread.
#[unsafe(no_mangle)]
pub extern "C" fn act_last_error() -> *const c_char {
    handle::last_error_ptr()
}

/// A short static description of a status code (e.g. "input or output has the wrong size");
/// "unknown status" for a value that is not an `act_status`.
#[unsafe(no_mangle)]
pub extern "C" fn act_status_string(status: c_int) -> *const c_char {
    // An int rather than act_status: any value a C caller passes is defined behaviour.
    let s: &CStr = match status {
        0 => c"ok",
        1 => c"a required pointer is NULL",
        2 => c"invalid argument",
        3 => c"cannot read the checkpoint",
        4 => c"malformed checkpoint",
        5 => c"unsupported or invalid checkpoint configuration",
        6 => c"option not supported here",
        7 => c"input or output has the wrong size",
        8 => c"input holds NaN or infinity",
        9 => c"internal error",
        10 => c"the model produced NaN or infinity",
        11 => c"the policy needs more memory than its budget, or the system refused it",
        _ => c"unknown status",
    };
    s.as_ptr()
}

/// The library version, e.g. "0.1.0". Static.
#[unsafe(no_mangle)]
pub extern "C" fn act_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

#[cfg(test)]
#[path = "../tests/common/mod.rs"]
mod common;

#[cfg(test)]
mod tests;
