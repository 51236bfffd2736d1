//! One markdown report of medians and ratios for the README: act-core against libtorch on the
//! same weights (interleaved in one process, so both see the same machine noise), at 1 and 2
//! threads; kernel efficiency against the measured FMA peak; steadiness of 1000 steps.
//!
//! Flags: `USAGE` below (`report --help`).
//!
//! The first line names the CPU and its relevant flags. libtorch bf16 is timed only where the CPU
//! has bf16 hardware (`auto`); elsewhere oneDNN emulates it, tens of times slower than f32.
//!
//! `--steady-realtime P` adds steadiness rows for a paced control loop (one step per period, 85 %
//! of it busy) under normal scheduling and with the caller and act-core's workers under
//! `SCHED_FIFO` at priority P (needs root or CAP_SYS_NICE).
use act_benches::control::{arg, check_args, control_loop, median, parsed_arg, percentile};
use act_benches::peak::{bf16_peak_gflops_on, fma_peak_gflops, int8_peak_gops_on};
use act_benches::Pair;
use anyhow::Context;
use act_core::kernels::exec::Serial;
use act_core::kernels::gemm::{gemm, Epilogue};
use act_core::kernels::pack::{ConvA, ConvGeometry, MatrixA, PackedB, RowMap};
use act_core::{Ensembling, Isa, Options, WeightStorage};
use std::time::{Duration, Instant};

fn default_reps(size: &str) -> usize {
    match size {
        "tiny" => 60,
        "small" => 21,
        "default" => 11,
        _ => 5,
    }
}

/// Steps of pure in-register FMA work, shaped like a control step (`REGIONS` parallel regions
/// run back to back on act-core's thread pool, items claimed dynamically) and sized to last
/// `median_ms` at `threads` threads: code that never waits for memory and is perfectly balanced,
/// so its p99 / median is what this machine's scheduler and neighbours allow at that thread count.
fn floor_steps(threads: usize, median_ms: f64, steps: usize, priority: Option<u8>, period: Option<Duration>) -> anyhow::Result<Vec<(f64, Option<f64>)>> {
    use act_benches::peak::fma_work;
    use act_core::kernels::exec::{run_dynamic, ThreadPool};
    const REGIONS: usize = 80;
    let probe = 2_000_000u64;
    let ns_per_iter = (0..5)
        .map(|_| {
            let s = Instant::now();
            std::hint::black_box(fma_work(probe));
            s.elapsed().as_secs_f64() * 1e9 / probe as f64
        })
        .fold(f64::INFINITY, f64::min);
    let items = 4 * threads;
    let iters = (median_ms * 1e6 * threads as f64 / (REGIONS * items) as f64 / ns_per_iter) as u64;
    let pool = ThreadPool::with_priority(threads, priority)?;
    Ok(control_loop(steps, period, || {
        for _ in 0..REGIONS {
            run_dynamic(&pool, items, &|_, _| {
                std::hint::black_box(fma_work(iters));
            });
        }
    }))
}

const USAGE: &str = "\
report: act-core against libtorch on the same weights (medians and ratios, one process)

cargo run --release -p act-benches --bin report -- [--sizes tiny,small,default,aloha4]
    [--threads 1,2] [--reps N] [--storage-size default|none] [--steady-size small]
    [--steady-steps 1000] [--steady-libtorch] [--steady-realtime PRIORITY] [--no-kernels]
    [--gap-ms 50] [--precision-sizes tiny,small,default|none] [--steady-precisions bf16,int8]
    [--libtorch-bf16 auto|on|off]

An empty --sizes '' skips the first table; --steady-steps 0 skips the steadiness table.";

fn main() -> anyhow::Result<()> {
    // Checked and parsed before any measuring, so a bad flag or value fails at once.
    check_args(
        USAGE,
        &["--sizes", "--threads", "--reps", "--storage-size", "--steady-size", "--steady-steps", "--steady-realtime", "--gap-ms", "--precision-sizes", "--steady-precisions", "--libtorch-bf16"],
        &["--steady-libtorch", "--no-kernels"],
    )?;
    let realtime: Option<u8> = arg("--steady-realtime").map(|p| p.parse().with_context(|| format!("--steady-realtime {p}: a SCHED_FIFO priority, 1..=99"))).transpose()?;
    let sizes = arg("--sizes").unwrap_or_else(|| "tiny,small,default,aloha4".into());
    let threads = arg("--threads").unwrap_or_else(|| "1,2".into());
    let threads: Vec<usize> = threads.split(',').map(|s| s.trim().parse().ok().filter(|&t| t > 0)).collect::<Option<_>>().with_context(|| format!("--threads {threads}: thread counts such as 1,2"))?;
    let gap = std::time::Duration::from_millis(parsed_arg("--gap-ms", 50)?);
    let reps_flag: Option<usize> = arg("--reps").map(|_| parsed_arg("--reps", 0)).transpose()?;
    anyhow::ensure!(reps_flag != Some(0), "--reps 0: at least one timed call per runtime");
    let steps: usize = parsed_arg("--steady-steps", 1000)?;
    let steady_precisions: Vec<(&str, WeightStorage)> = arg("--steady-precisions")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|name| match name {
            "bf16" => Ok(("bf16", WeightStorage::Bf16)),
            "int8" => Ok(("int8", WeightStorage::Int8)),
            other => Err(anyhow::anyhow!("--steady-precisions {other}: bf16 or int8")),
        })
        .collect::<anyhow::Result<_>>()?;
    let peak = fma_peak_gflops();
    println!("Machine: {}, {} cores, FMA peak {peak:.0} GFLOP/s per core (measured), act-core ISA {:?}\n", act_benches::host::describe(), std::thread::available_parallelism()?.get(), Isa::detect());

    // The runtimes alternate in blocks of BLOCK back-to-back calls, the first of each block not
    // counted, with a pause before each block: libtorch's OpenMP workers keep spinning for
    // milliseconds after a call returns (libgomp's GOMP_SPINCOUNT), act-core's for 300 us, and a
    // call made right after the other runtime's would share its cores with those spinners. So
    // each runtime is timed warm, in steady back-to-back use, and both still see the same noise.
    const BLOCK: usize = 4;
    println!("| size | threads | act-core median | libtorch median | act-core / libtorch |");
    println!("|---|---|---|---|---|");
    for size in sizes.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let reps = reps_flag.unwrap_or_else(|| default_reps(size));
        for &t in &threads {
            tch::set_num_threads(t as i32);
            let mut pair = Pair::new(size, &Options { threads: t, ..Default::default() })?;
            let mut out = vec![0.0f32; (pair.cfg.chunk_size * pair.cfg.action_dim()) as usize];
            for _ in 0..2 {
                pair.act_core_predict(&mut out);
                let _ = pair.libtorch_predict();
            }
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            while ours.len() < reps {
                std::thread::sleep(gap);
                for i in 0..BLOCK {
                    let s = Instant::now();
                    pair.act_core_predict(&mut out);
                    if i > 0 {
                        ours.push(s.elapsed().as_secs_f64());
                    }
                }
                std::thread::sleep(gap);
                for i in 0..BLOCK {
                    let s = Instant::now();
                    let _ = pair.libtorch_predict();
                    if i > 0 {
                        theirs.push(s.elapsed().as_secs_f64());
                    }
                }
            }
            let (a, b) = (median(ours), median(theirs));
            println!("| {size} | {t} | {:.2} ms | {:.2} ms | {:.2} |", a * 1e3, b * 1e3, a / b);
        }
    }

    if std::env::args().all(|a| a != "--no-kernels") {
        kernel_table(Isa::detect(), peak);
        // On AMX hosts, AVX-512's own bf16 / int8 kernels too (the same packed weights), so the
        // table shows what the tiles gain.
        #[cfg(target_arch = "x86_64")]
        if act_core::kernels::amx::usable() {
            act_core::kernels::amx::set_amx_allowed(false);
            println!("\nThe same without AMX (act_core::kernels::amx::set_amx_allowed(false)):");
            kernel_table(Isa::Avx512, peak);
            act_core::kernels::amx::set_amx_allowed(true);
        }
        // On AVX-512 hosts, AVX2's table too: what a CPU without AVX-512 (laptop-class x86, AMD
        // Zen 2/3) would get from the same kernels, against that width's peaks.
        if Isa::detect() != Isa::Avx2 && Isa::Avx2.is_supported() && Isa::Avx2.supports_int8() {
            kernel_table(Isa::Avx2, act_benches::peak::fma_peak_gflops_on(Isa::Avx2));
        }
    }

    let precision_sizes = arg("--precision-sizes").unwrap_or_else(|| "tiny,small,default".into());
    let mut dispatch_ok = true;
    if precision_sizes != "none" {
        dispatch_ok = precision_table(&precision_sizes, &threads, gap)?;
    }

    let storage_size = arg("--storage-size").unwrap_or_else(|| "default".into());
    if storage_size != "none" {
        println!("\n| weights ({storage_size}, 1 thread; Bf16 = the bf16 compute path) | packed weight memory | act-core median |\n|---|---|---|");
        let reps = reps_flag.unwrap_or_else(|| default_reps(&storage_size));
        let mut storages = vec![WeightStorage::F32, WeightStorage::F16];
        if Isa::detect().supports_bf16() {
            storages.push(WeightStorage::Bf16);
        }
        if Isa::detect().supports_int8() {
            storages.push(WeightStorage::Int8);
        }
        let pair = Pair::new(&storage_size, &Options::default())?;
        let mut policies = Vec::new();
        for storage in storages {
            policies.push((storage, pair.open_policy(&Options { weights: storage, ..Default::default() })?));
        }
        let views: Vec<&[u8]> = pair.images.iter().map(|v| v.as_slice()).collect();
        let mut times = vec![Vec::new(); policies.len()];
        let mut out = vec![0.0f32; (pair.cfg.chunk_size * pair.cfg.action_dim()) as usize];
        for _ in 0..reps {
            for (i, (_, p)) in policies.iter_mut().enumerate() {
                let s = Instant::now();
                p.predict(&pair.qpos, &views, &mut out)?;
                times[i].push(s.elapsed().as_secs_f64());
            }
        }
        for ((storage, p), t) in policies.iter().zip(times) {
            println!("| {storage:?} | {:.1} MB | {:.2} ms |", p.weight_bytes() as f64 / 1e6, median(t) * 1e3);
        }
    }

    let steady_size = arg("--steady-size").unwrap_or_else(|| "small".into());
    if steps > 0 {
        // libtorch runs the same number of consecutive forward passes right after, as a measure of
        // how steady this machine itself is at that thread count. Each step also records how long
        // the process's threads waited for a CPU (Linux scheduler statistics, read outside the
        // timed interval), so that steps slowed by the operating system can be told apart.
        println!("\n| steadiness: {steps} consecutive steps ({steady_size}, ensembling: a forward pass every step) | threads | median | p99 | max | p99 / median |\n|---|---|---|---|---|---|");
        let stats = |times: &[f64]| {
            let (m, p99, max) = (median(times.to_vec()), percentile(times.to_vec(), 0.99), times.iter().cloned().fold(0.0, f64::max));
            format!("{m:.2} ms | {p99:.2} ms | {max:.2} ms | {:.3}", p99 / m)
        };
        // Steps in which no thread of the process waited longer than this for a CPU.
        const UNPREEMPTED_MS: f64 = 0.5;
        let mut notes = Vec::new();
        let mut rows = |name: &str, t: usize, timed: &[(f64, Option<f64>)]| {
            let times: Vec<f64> = timed.iter().map(|s| s.0).collect();
            println!("| {name} | {t} | {} |", stats(&times));
            if timed.iter().all(|s| s.1.is_some()) {
                let calm: Vec<f64> = timed.iter().filter(|s| s.1.unwrap() <= UNPREEMPTED_MS).map(|s| s.0).collect();
                let waited: Vec<f64> = timed.iter().filter_map(|s| s.1).filter(|&w| w > UNPREEMPTED_MS).collect();
                // A calm-steps row says something only when waits were common enough to move the p99.
                if calm.len() >= 100 && calm.len() * 100 <= timed.len() * 99 {
                    println!("| {name}, the {} steps in which no thread waited > {UNPREEMPTED_MS} ms for a CPU | {t} | {} |", calm.len(), stats(&calm));
                }
                if !waited.is_empty() {
                    notes.push(format!(
                        "{name}, {t} thread(s): {} of {} steps had a thread waiting for a CPU (median wait {:.1} ms, max {:.1} ms)",
                        waited.len(),
                        timed.len(),
                        median(waited.clone()),
                        waited.iter().cloned().fold(0.0, f64::max)
                    ));
                }
            }
        };
        for &t in &threads {
            tch::set_num_threads(t as i32);
            let options = Options { threads: t, ensembling: Ensembling::Coefficient(0.01), ..Default::default() };
            let mut pair = Pair::new(&steady_size, &options)?;
            let views: Vec<Vec<u8>> = pair.images.clone();
            let views: Vec<&[u8]> = views.iter().map(|v| v.as_slice()).collect();
            let qpos = pair.qpos.clone();
            let mut action = vec![0.0f32; pair.cfg.action_dim() as usize];
            let ours = control_loop(steps, None, || pair.policy.step(&qpos, &views, &mut action).unwrap());
            rows("act-core", t, &ours);
            // The lower-precision compute paths asked for with --steady-precisions bf16,int8.
            for &(name, weights) in &steady_precisions {
                let mut p = pair.open_policy(&Options { weights, ..options })?;
                let low = control_loop(steps, None, || p.step(&qpos, &views, &mut action).unwrap());
                rows(&format!("act-core, {name} compute"), t, &low);
            }
            let m = median(ours.iter().map(|s| s.0).collect());
            rows("pure FMA work, same median and thread pool (this machine's floor)", t, &floor_steps(t, m, steps, None, None)?);
            if std::env::args().any(|a| a == "--steady-libtorch") {
                let theirs = control_loop(steps, None, || drop(pair.libtorch_predict()));
                rows("libtorch (same machine)", t, &theirs);
            }
            if let Some(prio) = realtime {
                // Linux lets real-time threads use 95 % of each second (sched_rt_runtime_us), so a
                // real-time loop must not run back to back: pace it, 85 % busy, and pace the
                // normally scheduled comparison row the same way.
                let period = Duration::from_secs_f64((m / 0.85).ceil() / 1e3);
                let label = format!("paced at {} ms", period.as_millis());
                rows(&format!("act-core, {label}, normal scheduling"), t, &control_loop(steps, Some(period), || pair.policy.step(&qpos, &views, &mut action).unwrap()));
                let mut rt = pair.open_policy(&Options { realtime_priority: Some(prio), ..options })?;
                act_core::realtime::set_current_thread_priority(Some(prio))?;
                let fifo = control_loop(steps, Some(period), || rt.step(&qpos, &views, &mut action).unwrap());
                let floor = floor_steps(t, m, steps, Some(prio), Some(period));
                act_core::realtime::set_current_thread_priority(None)?;
                rows(&format!("act-core, {label}, SCHED_FIFO {prio} (caller and workers)"), t, &fifo);
                rows(&format!("pure FMA work, {label}, SCHED_FIFO {prio}"), t, &floor?);
            }
        }
        for n in notes {
            println!("\n{n}");
        }
    }
    if !dispatch_ok {
        anyhow::bail!("Options::accept chose a path measured slower than f32 (see the precision table)");
    }
    Ok(())
}

/// act-core in every compute path this CPU runs, and what `Options::accept = Int8` chose, beside
/// libtorch f32 and bf16 on the same weights, all interleaved in blocks as the first table. The
/// agreement column is the relative error of the actions against libtorch f32. Returns false if
/// the accepted-accuracy choice is slower than f32 by more than the noise (10 %). libtorch bf16 runs
/// only where the CPU has bf16 hardware, unless `--libtorch-bf16 on|off` says otherwise.
fn precision_table(sizes: &str, threads: &[usize], gap: Duration) -> anyhow::Result<bool> {
    use act_core::Accuracy;
    const BLOCK: usize = 4;
    let isa = Isa::detect();
    let with_bf16 = match arg("--libtorch-bf16").as_deref() {
        Some("on") => true,
        Some("off") => false,
        None | Some("auto") => act_benches::host::native_bf16(),
        Some(other) => anyhow::bail!("--libtorch-bf16 {other}: auto, on or off"),
    };
    if !with_bf16 {
        println!("\n(libtorch bf16 not timed: this CPU has no AVX-512 BF16 / AMX-BF16, so oneDNN emulates bf16, tens of times slower than f32; `--libtorch-bf16 on` times it anyway)");
    }
    let mut paths = vec![("f32", WeightStorage::F32)];
    if isa.supports_bf16() {
        paths.push(("bf16", WeightStorage::Bf16));
    }
    if isa.supports_int8() {
        paths.push(("int8", WeightStorage::Int8));
    }
    let names: Vec<&str> = paths.iter().map(|p| p.0).collect();
    println!("\n| size | threads | act-core {} | accept=Int8 runs | libtorch f32 | libtorch bf16 | best act-core / libtorch f32 | best act-core / libtorch bf16 | rel err vs libtorch f32 ({}) |", names.join(" | act-core "), names.join(", "));
    println!("|---|---|{}---|---|---|---|---|---|", "---|".repeat(names.len()));
    let mut ok = true;
    for size in sizes.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let reps = default_reps(size);
        for &t in threads {
            tch::set_num_threads(t as i32);
            let pair = Pair::new(size, &Options { threads: t, ..Default::default() })?;
            let mut policies = Vec::new();
            for &(_, storage) in &paths {
                policies.push(pair.open_policy(&Options { threads: t, weights: storage, ..Default::default() })?);
            }
            policies.push(pair.open_policy(&Options { threads: t, accept: Accuracy::Int8, ..Default::default() })?);
            let chosen = policies.last().unwrap().kernels().clone();
            let bf16_model = if with_bf16 { Some(pair.libtorch_bf16()?) } else { None };
            let views: Vec<&[u8]> = pair.images.iter().map(|v| v.as_slice()).collect();
            let mut out = vec![0.0f32; (pair.cfg.chunk_size * pair.cfg.action_dim()) as usize];
            let reference: Vec<f32> = pair.libtorch_predict().view([-1]).try_into()?;
            let mut errs = Vec::new();
            for p in policies.iter_mut().take(paths.len()) {
                p.predict(&pair.qpos, &views, &mut out)?;
                errs.push(rel_err(&out, &reference));
            }
            let runtimes = policies.len() + 1 + bf16_model.is_some() as usize;
            let mut times = vec![Vec::new(); runtimes];
            while times[0].len() < reps {
                for (r, samples) in times.iter_mut().enumerate() {
                    std::thread::sleep(gap);
                    for i in 0..BLOCK {
                        let s = Instant::now();
                        match r {
                            _ if r < policies.len() => policies[r].predict(&pair.qpos, &views, &mut out)?,
                            _ if r == policies.len() => drop(pair.libtorch_predict()),
                            _ => drop(pair.libtorch_bf16_predict(&bf16_model.as_ref().expect("timed only with a bf16 model").0)),
                        }
                        if i > 0 {
                            samples.push(s.elapsed().as_secs_f64());
                        }
                    }
                }
            }
            let med: Vec<f64> = times.into_iter().map(median).collect();
            let ours = &med[..paths.len()];
            let best = ours.iter().cloned().fold(f64::INFINITY, f64::min);
            let accepted = med[paths.len()];
            let (lt32, lt16) = (med[paths.len() + 1], med.get(paths.len() + 2).copied());
            let cols: Vec<String> = ours.iter().map(|m| format!("{:.2} ms", m * 1e3)).collect();
            let slower = accepted > 1.10 * ours[0];
            ok &= !slower;
            println!(
                "| {size} | {t} | {} | {:?}, {:.2} ms{} | {:.2} ms | {} | {:.2} | {} | {} |",
                cols.join(" | "),
                chosen.storage,
                accepted * 1e3,
                if slower { " SLOWER than f32" } else { "" },
                lt32 * 1e3,
                lt16.map_or("n/a".into(), |v| format!("{:.2} ms", v * 1e3)),
                best / lt32,
                lt16.map_or("n/a".into(), |v| format!("{:.2}", best / v)),
                errs.iter().map(|e| format!("{e:.1e}")).collect::<Vec<_>>().join(", ")
            );
            eprintln!("  {size}, {t} threads: accept=Int8 chose {:?} ({})", chosen.storage, chosen.note);
        }
    }
    Ok(ok)
}

fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(&x, &y)| ((x - y) as f64).powi(2)).sum();
    let den: f64 = b.iter().map(|&y| (y as f64).powi(2)).sum();
    (num / den.max(1e-300)).sqrt()
}

/// One row per large GEMM and convolution of the default size, one thread, on `isa`: f32 against
/// `peak`, and the bf16 and int8 compute paths where `isa` has them (int8 against the measured
/// `vpdpbusd` peak of the same width, or AMX `tdpbusd`'s; bf16 against `vdpbf16ps`'s or AMX
/// `tdpbf16ps`'s).
fn kernel_table(isa: Isa, peak: f64) {
    // The bf16 column: the same shapes with bf16 weights and activations (vdpbf16ps or AMX),
    // against f32 and the measured peak of the bf16 instruction. The int8 column: the int8
    // compute path (vpdpbusd or AMX), against the measured peak of its instruction.
    let bf16 = isa.supports_bf16();
    let int8 = isa.supports_int8() && isa != Isa::Scalar;
    let int8_peak = if int8 { int8_peak_gops_on(isa) } else { None };
    let bf16_peak = if bf16 { bf16_peak_gflops_on(isa) } else { None };
    if let Some(v) = int8_peak {
        println!("\n{isa:?}: int8 peak {v:.0} GOP/s per core (measured, {} chains), FMA peak {peak:.0} GFLOP/s", isa.int8_kernel_name());
    }
    if let Some(v) = bf16_peak {
        println!("{isa:?}: bf16 peak {v:.0} GFLOP/s per core (measured, {} chains)", isa.bf16_kernel_name());
    }
    println!("\n| kernel (1 thread, {isa:?}) | f32 GFLOP/s | % of FMA peak | bf16 compute GFLOP/s | bf16 / f32 | % of bf16 peak | int8 compute GOP/s | % of int8 peak | int8 / f32 |\n|---|---|---|---|---|---|---|---|---|");
    let mut storages = vec![WeightStorage::F32];
    if bf16 {
        storages.push(WeightStorage::Bf16);
    }
    if int8 {
        storages.push(WeightStorage::Int8);
    }
    let row = |name: &str, g: &[f64]| {
        let f = g[0];
        let at = |st: WeightStorage| storages.iter().position(|&s| s == st).map(|i| g[i]);
        let bcol = match (at(WeightStorage::Bf16), bf16_peak) {
            (Some(b), Some(p)) => format!("{b:.0} | {:.2} | {:.0} %", b / f, 100.0 * b / p),
            (Some(b), None) => format!("{b:.0} | {:.2} | n/a", b / f),
            _ => "n/a (no bf16 kernel) | | ".to_string(),
        };
        let icol = match (at(WeightStorage::Int8), int8_peak) {
            (Some(i), Some(p)) => format!("{i:.0} | {:.0} % | {:.2}", 100.0 * i / p, i / f),
            _ => "n/a (no int8 kernel) | | ".to_string(),
        };
        println!("| {name} | {f:.0} | {:.0} % | {bcol} | {icol} |", 100.0 * f / peak);
    };
    let gemms = [("encoder FFN1 302x512x3200", 302, 512, 3200), ("encoder FFN2 302x3200x512", 302, 3200, 512), ("q/k/v/out proj 302x512x512", 302, 512, 512)];
    for (name, m, k, n) in gemms {
        let a = vec![0.5f32; m * k];
        let mut c = vec![0.0f32; m * n];
        let g: Vec<f64> = storages
            .iter()
            .map(|&st| {
                let b = PackedB::from_fn_stored(k, n, isa.nr(), st, |p, j| ((p + j) % 7) as f32 * 0.1);
                let ts: Vec<f64> = (0..15)
                    .map(|_| {
                        let s = Instant::now();
                        gemm(isa, &MatrixA { data: &a, ld: k, m, k }, b.as_ref(), &mut c, RowMap::Strided { ld: n }, Epilogue::default(), &Serial);
                        s.elapsed().as_secs_f64()
                    })
                    .collect();
                2.0 * (m * k * n) as f64 / median(ts) / 1e9
            })
            .collect();
        row(&format!("gemm {name}"), &g);
    }
    let convs = [("conv1 7x7/2 480x640x3->64", 480, 640, 3, 64, 7, 2, 3), ("layer1 3x3 120x160x64->64", 120, 160, 64, 64, 3, 1, 1), ("layer3 3x3 30x40x256->256", 30, 40, 256, 256, 3, 1, 1), ("layer4 3x3 15x20x512->512", 15, 20, 512, 512, 3, 1, 1)];
    for (name, h, w, cin, cout, k, s, pad) in convs {
        let g = ConvGeometry { in_h: h, in_w: w, cin, kh: k, kw: k, stride: s, pad, in_pad: pad };
        let x = vec![0.3f32; g.input_len()];
        let mut out = vec![0.0f32; g.out_h() * g.out_w() * cout];
        let gf: Vec<f64> = storages
            .iter()
            .map(|&st| {
                let b = PackedB::from_fn_stored(g.k(), cout, isa.nr(), st, |p, j| ((p + j) % 5) as f32 * 0.1);
                let ts: Vec<f64> = (0..9)
                    .map(|_| {
                        let t0 = Instant::now();
                        gemm(isa, &ConvA { input: &x, geom: g }, b.as_ref(), &mut out, RowMap::Strided { ld: cout }, Epilogue::default(), &Serial);
                        t0.elapsed().as_secs_f64()
                    })
                    .collect();
                2.0 * (g.out_h() * g.out_w() * cout * g.k()) as f64 / median(ts) / 1e9
            })
            .collect();
        row(name, &gf);
    }
}
