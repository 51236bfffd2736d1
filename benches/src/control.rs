//! What the benchmark binaries share: command-line flags, medians and percentiles, and a control
//! loop that times each step.
use std::time::{Duration, Instant};

/// Checks the command line before anything is measured: `--help` or `-h` prints `usage` and
/// exits; a flag that is neither one of `value_flags` (followed by a value) nor one of
/// `switches`, or a value flag at the end of the line, is an error naming it. Without this a
/// mistyped flag was ignored and a long run measured the defaults.
///
/// Panics if the flags `usage` documents (the first word of each `[--flag ...]`) are not exactly
/// `value_flags` and `switches`: the two lists are written apart, and every run (the CLI tests
/// run each binary) checks that they still agree.
pub fn check_args(usage: &str, value_flags: &[&str], switches: &[&str]) -> anyhow::Result<()> {
    let mut documented: Vec<&str> = usage.split('[').skip(1).filter_map(|s| s.split([' ', ']']).next()).filter(|w| w.starts_with("--")).collect();
    let mut accepted: Vec<&str> = value_flags.iter().chain(switches).copied().collect();
    documented.sort_unstable();
    accepted.sort_unstable();
    assert_eq!(documented, accepted, "the usage text documents other flags than the binary accepts");
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        // Not println!: a closed pipe (`report --help | head`) must not panic.
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), "{usage}");
        std::process::exit(0);
    }
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if value_flags.contains(&a) {
            anyhow::ensure!(i + 1 < args.len(), "{a} needs a value\n\n{usage}");
            i += 2;
        } else if switches.contains(&a) {
            i += 1;
        } else {
            anyhow::bail!("unknown argument {a:?}\n\n{usage}");
        }
    }
    Ok(())
}

/// `flag`'s value parsed as a `T`, `default` when the flag is absent; an error naming the flag and
/// the value when it does not parse.
pub fn parsed_arg<T: std::str::FromStr>(flag: &str, default: T) -> anyhow::Result<T> {
    match arg(flag) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| anyhow::anyhow!("{flag} {v:?}: not a valid {}", std::any::type_name::<T>())),
    }
}

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

#[cfg(test)]
mod tests {
    #[test]
    #[should_panic(expected = "the usage text documents other flags than the binary accepts")]
    fn a_flag_accepted_but_not_documented_is_caught() {
        let _ = super::check_args("tool [--steps N] [--hz 50]", &["--steps", "--hz", "--threads"], &[]);
    }

    #[test]
    #[should_panic(expected = "the usage text documents other flags than the binary accepts")]
    fn a_flag_documented_but_not_accepted_is_caught() {
        let _ = super::check_args("tool [--steps N] [--quiet]", &["--steps"], &[]);
    }
}
