//! Real-time scheduling for the threads of a control step (std, Unix).
//!
//! Under the default time-sharing policy the kernel may give a step's core to any other runnable
//! task, its own housekeeping threads included, for milliseconds at a time; a 2-thread step then
//! waits for the preempted thread at its next parallel region. Threads under `SCHED_FIFO` are
//! preempted only by higher real-time priorities (and by kernel code that cannot be interrupted),
//! which is how robot control loops run. The application owns the thread that calls `step`:
//! [`set_current_thread_priority`] sets it; `Options::realtime_priority` sets act-core's workers.
//!
//! A real-time thread that never sleeps starves the rest of the machine; Linux caps real-time
//! threads at `sched_rt_runtime_us` per `sched_rt_period_us` (95 % of each second by default) and
//! stops them for the rest of that second, so a loop that runs steps back to back at a real-time
//! priority must leave more than 5 % of each second idle or be paused for 50 ms once a second.
use crate::error::{config_err, Result};

/// The option's name in errors.
const FIELD: &str = "realtime_priority";

/// Puts the calling thread under `SCHED_FIFO` at `priority` (`Some`, 1..=99 on Linux), or back
/// under the default time-sharing policy (`None`). Needs root, `CAP_SYS_NICE` or an `RLIMIT_RTPRIO`
/// of at least `priority`; a refusal is an error naming what is missing.
pub fn set_current_thread_priority(priority: Option<u8>) -> Result<()> {
    #[cfg(unix)]
    {
        // SAFETY: pthread_self has no preconditions.
        set_thread_priority(unsafe { libc::pthread_self() }, priority)
    }
    #[cfg(not(unix))]
    {
        unsupported(priority)
    }
}

/// The scheduling policy and priority of the calling thread: `Some(priority)` under `SCHED_FIFO`,
/// `None` under any other policy.
pub fn current_thread_priority() -> Option<u8> {
    #[cfg(unix)]
    {
        let mut policy = 0;
        // SAFETY: sched_param is plain data; both out-pointers are valid for the call.
        let mut param: libc::sched_param = unsafe { core::mem::zeroed() };
        let rc = unsafe { libc::pthread_getschedparam(libc::pthread_self(), &mut policy, &mut param) };
        (rc == 0 && policy == libc::SCHED_FIFO).then_some(param.sched_priority as u8)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Checks that `priority` is one `SCHED_FIFO` accepts on this system.
pub(crate) fn check(priority: u8) -> Result<()> {
    #[cfg(unix)]
    {
        // SAFETY: no preconditions; they return -1 only for an unknown policy.
        let (lo, hi) = unsafe { (libc::sched_get_priority_min(libc::SCHED_FIFO), libc::sched_get_priority_max(libc::SCHED_FIFO)) };
        if (priority as i32) < lo || (priority as i32) > hi {
            return Err(config_err(FIELD, format!("{priority} is outside SCHED_FIFO's priorities {lo}..={hi} on this system")));
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        unsupported(Some(priority))
    }
}

/// Sets `thread`'s policy: `SCHED_FIFO` at `priority`, or `SCHED_OTHER` for `None`.
#[cfg(unix)]
pub(crate) fn set_thread_priority(thread: libc::pthread_t, priority: Option<u8>) -> Result<()> {
    if let Some(p) = priority {
        check(p)?;
    }
    let (policy, level) = match priority {
        Some(p) => (libc::SCHED_FIFO, p as i32),
        None => (libc::SCHED_OTHER, 0),
    };
    // SAFETY: sched_param is plain data; every field but the priority is reserved and zero.
    let mut param: libc::sched_param = unsafe { core::mem::zeroed() };
    param.sched_priority = level;
    // SAFETY: `thread` is a live thread of this process (the caller's own, or a pool worker whose
    // JoinHandle the pool still holds), and `param` is valid for the call.
    let rc = unsafe { libc::pthread_setschedparam(thread, policy, &param) };
    if rc == 0 {
        return Ok(());
    }
    let os = std::io::Error::from_raw_os_error(rc);
    Err(config_err(
        FIELD,
        match priority {
            Some(p) if rc == libc::EPERM => format!(
                "the system refused SCHED_FIFO at priority {p} ({os}): it needs root, CAP_SYS_NICE, or an RLIMIT_RTPRIO of at least {p} (`ulimit -r`; `rtprio` in /etc/security/limits.conf)"
            ),
            Some(p) => format!("the system refused SCHED_FIFO at priority {p}: {os}"),
            None => format!("the system refused the default scheduling policy: {os}"),
        },
    ))
}

#[cfg(not(unix))]
fn unsupported(priority: Option<u8>) -> Result<()> {
    match priority {
        None => Ok(()),
        Some(_) => Err(config_err(FIELD, "real-time priority is supported on Unix systems only")),
    }
}
