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

use act::{Alignment, AsyncOptions, AsyncPolicy, Blend, Ensembling, Error, Isa, Options, Policy};
use core::ffi::{c_char, c_int, CStr};
use core::fmt::{self, Write as _};
use std::cell::RefCell;
use std::ffi::CString;
use std::panic::{catch_unwind, AssertUnwindSafe};

mod runner;
mod types;
use runner::Runner;
pub use types::*;
use act_status::*;

/// A NUL-terminated message buffer that never reallocates: writes past its capacity are cut at a
/// character boundary.
struct ErrorBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> ErrorBuf<N> {
    const fn new() -> Self {
        ErrorBuf { buf: [0; N], len: 0 }
    }
    fn clear(&mut self) {
        self.len = 0;
        self.buf[0] = 0;
    }
    fn set(&mut self, args: fmt::Arguments<'_>) {
        self.clear();
        let _ = self.write_fmt(args);
    }
    fn as_ptr(&self) -> *const c_char {
        self.buf.as_ptr().cast()
    }
    #[cfg(test)]
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap()
    }
}

impl<const N: usize> fmt::Write for ErrorBuf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = N - 1 - self.len;
        let mut n = s.len().min(room);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        self.buf[self.len] = 0;
        Ok(())
    }
}

thread_local! {
    /// The last error of a call that had no usable handle (failed open, NULL handle) on this thread.
    static LAST_ERROR: RefCell<ErrorBuf<2048>> = const { RefCell::new(ErrorBuf::new()) };
}

fn set_global_error(args: fmt::Arguments<'_>) {
    LAST_ERROR.with(|e| e.borrow_mut().set(args));
}

/// An open policy. Opaque to C; created by `act_policy_open*`, destroyed by `act_policy_free`.
pub struct act_policy {
    policy: Runner,
    /// NUL-terminated camera names, in config order.
    camera_names: Vec<CString>,
    error: ErrorBuf<512>,
    /// Set when a panic was caught inside a call on this handle.
    poisoned: bool,
}

fn status_of(e: &Error) -> act_status {
    match e {
        Error::Truncated { .. }
        | Error::BadHeader { .. }
        | Error::MissingTensor { .. }
        | Error::ShapeMismatch { .. }
        | Error::UnsupportedDtype { .. }
        | Error::NonFiniteWeight { .. }
        | Error::DuplicateTensor { .. }
        | Error::BadStatistic { .. } => ACT_ERR_CHECKPOINT,
        Error::MemoryBudget { .. } | Error::AllocationFailed { .. } => ACT_ERR_OUT_OF_MEMORY,
        Error::NonFiniteOutput { .. } => ACT_ERR_NON_FINITE_OUTPUT,
        Error::Config { .. } => ACT_ERR_CONFIG,
        Error::InputLength { .. } => ACT_ERR_INPUT_SIZE,
        Error::NonFiniteInput { .. } => ACT_ERR_NON_FINITE_INPUT,
        Error::Io { .. } => ACT_ERR_IO,
        Error::InferenceFailed => ACT_ERR_INTERNAL,
    }
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "unknown panic payload"
    }
}

/// An error: its status and (written before returning) its message.
struct Fail(act_status);

/// Runs `f` for a call on `policy`: NULL and poisoned handles, panics and the handle's message.
///
/// # Safety
/// `policy` is NULL or a live handle from `act_policy_open*` not used by another thread meanwhile.
unsafe fn with_policy(
    policy: *mut act_policy,
    f: impl FnOnce(&mut Runner, &[CString], &mut ErrorBuf<512>) -> Result<(), Fail>,
) -> act_status {
    if policy.is_null() {
        set_global_error(format_args!("policy handle is NULL (did act_policy_open fail?)"));
        return ACT_ERR_NULL_POINTER;
    }
    // SAFETY: non-NULL, and by this function's contract a live, exclusively used handle.
    let h = unsafe { &mut *policy };
    if h.poisoned {
        h.error.set(format_args!("policy handle is unusable after an earlier internal error; free it"));
        return ACT_ERR_INTERNAL;
    }
    let act_policy { policy, camera_names, error, .. } = h;
    let result = catch_unwind(AssertUnwindSafe(|| f(policy, camera_names, error)));
    match result {
        Ok(Ok(())) => {
            h.error.clear();
            ACT_OK
        }
        Ok(Err(Fail(status))) => status,
        Err(payload) => {
            h.poisoned = true;
            h.error.set(format_args!("internal error (panic): {}", panic_text(&*payload)));
            ACT_ERR_INTERNAL
        }
    }
}

/// The same for calls without a handle; messages go to the thread-local last error.
fn guard_global(f: impl FnOnce() -> Result<(), Fail>) -> act_status {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => ACT_OK,
        Ok(Err(Fail(status))) => status,
        Err(payload) => {
            set_global_error(format_args!("internal error (panic): {}", panic_text(&*payload)));
            ACT_ERR_INTERNAL
        }
    }
}

macro_rules! fail {
    ($buf:expr, $status:expr, $($arg:tt)*) => {{
        $buf.set(format_args!($($arg)*));
        return Err(Fail($status));
    }};
}

fn global_fail(status: act_status, args: fmt::Arguments<'_>) -> Fail {
    set_global_error(args);
    Fail(status)
}

/// The load options, and the asynchronous stepper's alignment when `asynchronous` asks for it.
fn parse_options(options: *const act_options) -> Result<(Options, Option<Alignment>), Fail> {
    let o = if options.is_null() {
        act_options_default()
    } else {
        if !options.is_aligned() {
            return Err(global_fail(ACT_ERR_INVALID_ARGUMENT, format_args!("options pointer is misaligned")));
        }
        // SAFETY: non-NULL, aligned; the caller passes a readable act_options.
        unsafe { *options }
    };
    if o.threads > 256 {
        return Err(global_fail(ACT_ERR_INVALID_ARGUMENT, format_args!("options.threads = {} is more than 256", o.threads)));
    }
    let ensembling = match o.ensembling {
        0 => Ensembling::FromConfig,
        1 => Ensembling::Disabled,
        // Any finite coefficient (negative: newer predictions weigh more, as LeRobot allows); its
        // range against chunk_size is checked at load.
        2 if o.ensemble_coeff.is_finite() => Ensembling::Coefficient(o.ensemble_coeff),
        2 => {
            return Err(global_fail(ACT_ERR_INVALID_ARGUMENT, format_args!("options.ensemble_coeff = {} must be finite", o.ensemble_coeff)));
        }
        v => return Err(global_fail(ACT_ERR_INVALID_ARGUMENT, format_args!("options.ensembling = {v} is not an act_ensembling value"))),
    };
    let isa = match o.isa {
        0 => None,
        1 => Some(Isa::Scalar),
        2 => Some(Isa::Avx2),
        3 => Some(Isa::Avx512),
        4 => Some(Isa::Neon),
        v => return Err(global_fail(ACT_ERR_INVALID_ARGUMENT, format_args!("options.isa = {v} is not an act_isa value"))),
    };
    if let Some(isa) = isa
        && !isa.is_supported()
    {
        return Err(global_fail(ACT_ERR_UNSUPPORTED, format_args!("options.isa: {isa:?} is not supported by this CPU")));
    }
    let weights = match o.precision {
        0 | 1 => act::WeightStorage::F32,
        2 => act::WeightStorage::F16,
        3 => act::WeightStorage::Bf16,
        4 => act::WeightStorage::F16Compute,
        v => {
            return Err(global_fail(
                ACT_ERR_UNSUPPORTED,
                format_args!(
                    "options.precision = {v}: ACT_PRECISION_F32, ACT_PRECISION_F16_WEIGHTS, ACT_PRECISION_BF16 and ACT_PRECISION_F16 are implemented"
                ),
            ));
        }
    };
    let realtime_priority = match o.realtime_priority {
        0 => None,
        p => Some(u8::try_from(p).map_err(|_| {
            global_fail(ACT_ERR_INVALID_ARGUMENT, format_args!("options.realtime_priority = {p} is not a SCHED_FIFO priority (1..=99 on Linux)"))
        })?),
    };
    let alignment = match o.asynchronous {
        0 => None,
        1 => Some(Alignment::Observation),
        2 => Some(Alignment::Arrival),
        v => return Err(global_fail(ACT_ERR_INVALID_ARGUMENT, format_args!("options.asynchronous = {v} is not an act_asynchronous value"))),
    };
    let memory_budget = (o.memory_budget != 0).then_some(o.memory_budget);
    let mut camera_sizes = [None; act::config::MAX_CAMERAS];
    for (slot, &[h, w]) in camera_sizes.iter_mut().zip(&o.camera_sizes) {
        match (h, w) {
            (0, 0) => {}
            (0, _) | (_, 0) => {
                return Err(global_fail(ACT_ERR_INVALID_ARGUMENT, format_args!("options.camera_sizes: {h} x {w}: set both sides or neither")));
            }
            _ => *slot = Some((h as usize, w as usize)),
        }
    }
    Ok((Options { ensembling, isa, threads: o.threads as usize, weights, realtime_priority, memory_budget, camera_sizes, ..Default::default() }, alignment))
}

fn isa_code(isa: Isa) -> u32 {
    match isa {
        Isa::Scalar => act_isa::ACT_ISA_SCALAR as u32,
        Isa::Avx2 => act_isa::ACT_ISA_AVX2 as u32,
        Isa::Avx512 => act_isa::ACT_ISA_AVX512 as u32,
        Isa::Neon => act_isa::ACT_ISA_NEON as u32,
    }
}

/// Finishes an open: builds the handle (moving the policy onto an inference thread when
/// `alignment` is set) or records the error; `out` was checked non-NULL.
fn finish_open(result: act::Result<Policy>, alignment: Option<Alignment>, out: *mut *mut act_policy) -> Result<(), Fail> {
    let policy = result.map_err(|e| global_fail(status_of(&e), format_args!("{e}")))?;
    let cameras = &policy.config().cameras;
    if cameras.len() > ACT_MAX_CAMERAS {
        return Err(global_fail(ACT_ERR_CONFIG, format_args!("{} cameras, at most {ACT_MAX_CAMERAS}", cameras.len())));
    }
    let mut camera_names = Vec::with_capacity(cameras.len());
    for c in cameras {
        match CString::new(c.name.as_str()) {
            Ok(s) => camera_names.push(s),
            Err(_) => return Err(global_fail(ACT_ERR_CONFIG, format_args!("camera name {:?} contains a NUL byte", c.name))),
        }
    }
    let policy = match alignment {
        None => Runner::Sync(policy),
        Some(alignment) => {
            let (isa, ensemble_coeff, memory_bytes) = (policy.isa(), policy.ensemble_coefficient(), policy.memory_bytes());
            let blend = ensemble_coeff.map_or(Blend::Latest, Blend::Ensemble);
            let policy = AsyncPolicy::new(policy, AsyncOptions { blend, alignment }).map_err(|e| global_fail(status_of(&e), format_args!("{e}")))?;
            Runner::Async { policy, isa, ensemble_coeff, memory_bytes }
        }
    };
    let handle = Box::new(act_policy { policy, camera_names, error: ErrorBuf::new(), poisoned: false });
    // SAFETY: `out` is non-NULL (checked by the caller) and writable by the API contract.
    unsafe { *out = Box::into_raw(handle) };
    Ok(())
}

/// Default options: threads 0, ensembling from the checkpoint's config, best instruction set, f32,
/// the inherited scheduling policy.
/// The same as a zero-initialised `act_options`.
#[unsafe(no_mangle)]
pub extern "C" fn act_options_default() -> act_options {
    act_options { threads: 0, ensembling: 0, ensemble_coeff: 0.0, isa: 0, precision: 0, realtime_priority: 0, asynchronous: 0, memory_budget: 0, camera_sizes: [[0; 2]; 16] }
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
    LAST_ERROR.with(|e| e.borrow().as_ptr())
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
