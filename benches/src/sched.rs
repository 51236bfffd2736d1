//! How long this process's threads waited for a CPU, from Linux's per-thread scheduler statistics
//! (`/proc/self/task/*/schedstat`, second field: time spent runnable but not running). The
//! steadiness report uses it to tell slow steps caused by the code from slow steps in which the
//! operating system gave one of the step's cores to another task.

/// Total time, in milliseconds, that all threads of this process have spent waiting on a run
/// queue; `None` where the kernel does not provide it (not Linux, or schedstats unavailable).
pub fn runqueue_wait_ms() -> Option<f64> {
    let mut total_ns = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path().join("schedstat");
        // A thread may exit between listing and reading; it no longer waits.
        let Ok(text) = std::fs::read_to_string(path) else { continue };
        total_ns += text.split_whitespace().nth(1)?.parse::<u64>().ok()?;
    }
    Some(total_ns as f64 / 1e6)
}
