//! What the benchmark binaries share: command-line flags, medians and percentiles, and a control
//! loop that times each step.
use std::time::{Duration, Instant};

/// The value after flag `name` on the command line.
pub fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Runs `steps` steps: back to back (`period` None), or one per period on absolute deadlines as a
/// robot's control loop does (a step that overruns starts the next period at once). Each step
/// is `timed`.
pub fn control_loop(steps: usize, period: Option<Duration>, mut step: impl FnMut()) -> Vec<(f64, Option<f64>)> {
    let mut next = Instant::now();
    (0..steps)
        .map(|_| {
            let r = timed(&mut step);
            if let Some(p) = period {
                next += p;
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                } else {
                    next = now;
                }
            }
            r
        })
        .collect()
}

/// Runs `f` once: its time in ms, and how long the process's threads waited for a CPU meanwhile
/// (read outside the timed interval; `None` where the kernel does not say).
pub fn timed(f: impl FnOnce()) -> (f64, Option<f64>) {
    let w0 = crate::sched::runqueue_wait_ms();
    let s = Instant::now();
    f();
    let ms = s.elapsed().as_secs_f64() * 1e3;
    let w1 = crate::sched::runqueue_wait_ms();
    (ms, w0.zip(w1).map(|(a, b)| b - a))
}
