//! How long the asynchronous step call takes while queries run in the background: a control loop
//! at 50 Hz (absolute deadlines) of `AsyncPolicy::step` on a random-weight model of the given
//! size, with the policy's own thread pool, for each blending mode; median / p99 / max of the step
//! call, chunks received, steps served per chunk, staleness of the executed actions, held steps.
//! The synchronous step (same policy, same pacing) is the comparison row.
//!
//! Flags: `USAGE` below (`async-steadiness --help`).
//!
//! `--realtime P` also runs each asynchronous row with the control loop (the thread calling
//! `step`) under `SCHED_FIFO` at P and the inference thread and workers under normal scheduling,
//! as a robot would: the kernel then never makes the step wait for a query's threads.
use act_benches::control::{arg, check_args, control_loop, parsed_arg, percentile};
use act_benches::Pair;
use act_core::{Alignment, AsyncOptions, AsyncPolicy, Blend, Ensembling, Options};
use anyhow::Context;
use std::time::{Duration, Instant};

fn row(name: &str, ms: Vec<f64>, extra: &str) {
    let max = ms.iter().copied().fold(0.0, f64::max);
    let (med, p99) = (percentile(ms.clone(), 0.5), percentile(ms, 0.99));
    println!("| {name} | {med:.3} ms | {p99:.3} ms | {max:.3} ms | {extra} |");
}

const USAGE: &str = "\
async-steadiness: the asynchronous step call's time while queries run in the background

cargo run --release -p act-benches --bin async-steadiness -- [--size default] [--threads 2]
    [--steps 1000] [--hz 50] [--realtime PRIORITY]";

fn main() -> anyhow::Result<()> {
    check_args(USAGE, &["--size", "--threads", "--steps", "--hz", "--realtime"], &[])?;
    let size = arg("--size").unwrap_or_else(|| "default".into());
    let threads: usize = parsed_arg("--threads", 2)?;
    let steps: usize = parsed_arg("--steps", 1000)?;
    let hz: f64 = parsed_arg("--hz", 50.0)?;
    anyhow::ensure!(hz.is_finite() && hz > 0.0, "--hz {hz}: a control rate above 0");
    let period = Duration::from_secs_f64(1.0 / hz);
    let realtime: Option<u8> = arg("--realtime").map(|p| p.parse()).transpose().context("--realtime: a SCHED_FIFO priority")?;
    println!("CPU: {}, {} cores, act-core ISA {:?}", act_benches::host::describe(), std::thread::available_parallelism()?.get(), act_core::Isa::detect());
    let options = Options { threads, ensembling: Ensembling::Coefficient(0.01), ..Default::default() };
    let pair = Pair::new(&size, &options)?;
    let views: Vec<&[u8]> = pair.images.iter().map(|v| v.as_slice()).collect();
    let qpos = pair.qpos.clone();
    let a = pair.cfg.action_dim() as usize;

    // How long one query takes here, for the reader.
    let mut probe = pair.open_policy(&options)?;
    let mut chunk = vec![0.0f32; pair.cfg.chunk_size as usize * a];
    probe.predict(&qpos, &views, &mut chunk)?;
    let mut q: Vec<f64> = (0..5)
        .map(|_| {
            let s = Instant::now();
            probe.predict(&qpos, &views, &mut chunk).unwrap();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    q.sort_by(f64::total_cmp);
    drop(probe);
    println!("size {size}, {threads} threads: one query takes {:.1} ms (median of 5) = {:.1} control periods at {hz} Hz\n", q[2], q[2] / (1e3 / hz));

    println!("| step call, {steps} steps at {hz} Hz ({size}, {threads} threads) | median | p99 | max | chunks, steps per chunk, staleness mean / max, held |");
    println!("|---|---|---|---|---|");
    let modes = [("asynchronous, temporal ensembling (m = 0.01), aligned", Blend::Ensemble(0.01)), ("asynchronous, latest chunk, aligned", Blend::Latest)];
    let priorities: Vec<Option<u8>> = std::iter::once(None).chain(realtime.map(Some)).collect();
    for (prio, (name, blend)) in priorities.iter().flat_map(|p| modes.iter().map(move |m| (*p, *m))) {
        // The policy (its inference thread and workers) is created under normal scheduling; only
        // the control loop is raised.
        let policy = pair.open_policy(&options)?;
        let mut p = AsyncPolicy::new(policy, AsyncOptions { blend, alignment: Alignment::Observation })?;
        let mut action = vec![0.0f32; a];
        // The first step waits for the first chunk: not part of the steady state.
        p.step(&qpos, &views, &mut action)?;
        p.reset_stats();
        act_core::realtime::set_current_thread_priority(prio)?;
        let ms = control_loop(steps, Some(period), || p.step(&qpos, &views, &mut action).unwrap()).into_iter().map(|s| s.0).collect();
        act_core::realtime::set_current_thread_priority(None)?;
        let name = match prio {
            Some(p) => format!("{name}, control loop SCHED_FIFO {p}"),
            None => name.to_string(),
        };
        let s = p.stats();
        let fresh = (s.steps - s.held).max(1);
        let extra = format!(
            "{} chunks, {:.1} steps per chunk, staleness {:.1} / {} steps, {} held",
            s.chunks,
            s.steps as f64 / s.chunks.max(1) as f64,
            s.staleness_sum as f64 / fresh as f64,
            s.staleness_max,
            s.held
        );
        row(&name, ms, &extra);
    }
    let mut sync = pair.open_policy(&options)?;
    let mut action = vec![0.0f32; a];
    let n = steps.min(200);
    let ms = control_loop(n, Some(period), || sync.step(&qpos, &views, &mut action).unwrap()).into_iter().map(|s| s.0).collect();
    row(&format!("synchronous, temporal ensembling (a query every step; {n} steps)"), ms, "1 chunk per step, staleness 0");
    Ok(())
}
