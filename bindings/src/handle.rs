//! The opaque handle and the panic boundary every C entry point goes through: its fixed error
//! buffer, the thread-local message for calls without a usable handle, status codes for act-core's
//! errors, and building a handle from an opened policy.

use act::{Alignment, AsyncOptions, AsyncPolicy, Blend, Error, Policy};
use core::ffi::c_char;
use core::fmt::{self, Write as _};
use std::cell::RefCell;
use std::ffi::CString;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::runner::Runner;
use crate::types::act_status::*;
use crate::types::{act_status, ACT_MAX_CAMERAS};

/// A NUL-terminated message buffer that never reallocates: writes past its capacity are cut at a
/// character boundary.
pub(crate) struct ErrorBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> ErrorBuf<N> {
    pub(crate) const fn new() -> Self {
        ErrorBuf { buf: [0; N], len: 0 }
    }
    pub(crate) fn clear(&mut self) {
        self.len = 0;
        self.buf[0] = 0;
    }
    pub(crate) fn set(&mut self, args: fmt::Arguments<'_>) {
        self.clear();
        let _ = self.write_fmt(args);
    }
    pub(crate) fn as_ptr(&self) -> *const c_char {
        self.buf.as_ptr().cast()
    }
    #[cfg(test)]
    pub(crate) fn as_str(&self) -> &str {
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

pub(crate) fn set_global_error(args: fmt::Arguments<'_>) {
    LAST_ERROR.with(|e| e.borrow_mut().set(args));
}

/// An open policy. Opaque to C; created by `act_policy_open*`, destroyed by `act_policy_free`.
pub struct act_policy {
    pub(crate) policy: Runner,
    /// NUL-terminated camera names, in config order.
    pub(crate) camera_names: Vec<CString>,
    pub(crate) error: ErrorBuf<512>,
    /// Set when a panic was caught inside a call on this handle.
    pub(crate) poisoned: bool,
}

pub(crate) fn status_of(e: &Error) -> act_status {
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

pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "unknown panic payload"
    }
}

/// An error: its status and (written before returning) its message.
pub(crate) struct Fail(pub(crate) act_status);

/// Runs `f` for a call on `policy`: NULL and poisoned handles, panics and the handle's message.
///
/// # Safety
/// `policy` is NULL or a live handle from `act_policy_open*` not used by another thread meanwhile.
pub(crate) unsafe fn with_policy(
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
pub(crate) fn guard_global(f: impl FnOnce() -> Result<(), Fail>) -> act_status {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => ACT_OK,
        Ok(Err(Fail(status))) => status,
        Err(payload) => {
            set_global_error(format_args!("internal error (panic): {}", panic_text(&*payload)));
            ACT_ERR_INTERNAL
        }
    }
}

/// Writes the message into `$buf` and returns `Err(Fail($status))` from the enclosing function.
macro_rules! fail {
    ($buf:expr, $status:expr, $($arg:tt)*) => {{
        $buf.set(format_args!($($arg)*));
        return Err(Fail($status));
    }};
}

pub(crate) fn global_fail(status: act_status, args: fmt::Arguments<'_>) -> Fail {
    set_global_error(args);
    Fail(status)
}

/// Finishes an open: builds the handle (moving the policy onto an inference thread when
/// `alignment` is set) or records the error; `out` was checked non-NULL.
pub(crate) fn finish_open(result: act::Result<Policy>, alignment: Option<Alignment>, out: *mut *mut act_policy) -> Result<(), Fail> {
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
            let (kernels, ensemble_coeff, memory_bytes) = (policy.kernels().clone(), policy.ensemble_coefficient(), policy.memory_bytes());
            let blend = ensemble_coeff.map_or(Blend::Latest, Blend::Ensemble);
            let policy = AsyncPolicy::new(policy, AsyncOptions { blend, alignment }).map_err(|e| global_fail(status_of(&e), format_args!("{e}")))?;
            Runner::Async { policy, kernels, ensemble_coeff, memory_bytes }
        }
    };
    let handle = Box::new(act_policy { policy, camera_names, error: ErrorBuf::new(), poisoned: false });
    // SAFETY: `out` is non-NULL (checked by the caller) and writable by the API contract.
    unsafe { *out = Box::into_raw(handle) };
    Ok(())
}


/// The thread-local message of the last failed call without a usable handle.
pub(crate) fn last_error_ptr() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_buffer_truncates_at_a_character_boundary_and_stays_terminated() {
        let mut b = ErrorBuf::<8>::new();
        b.set(format_args!("abcdé€xyz"));
        assert_eq!(b.as_str(), "abcdé"); // 6 bytes; '€' (3 bytes) would pass the 7 available
        assert_eq!(b.buf[b.len], 0);
        b.set(format_args!("{}", "0123456789"));
        assert_eq!(b.as_str(), "0123456");
        b.clear();
        assert_eq!(b.as_str(), "");
        assert_eq!(b.buf[0], 0);
    }
}
