//! `act-sim`: record scripted ACT episodes, render/replay them into videos, measure scripted success.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use act_sim::dataset::{EpisodeFile, write_episode};
use act_sim::env::{EeEnv, JointEnv};
use act_sim::scripted::record_episode;
use act_sim::video::{VideoWriter, ffmpeg_available, hconcat, write_png};
use act_sim::eval::{ActCoreBackend, Backend, EvalConfig, Querying, TchBackend, VideoSpec, evaluate, stage_names};
use act_sim::snapshots::{SUCCESS_CSV, list_snapshots, merge, point, read_success_csv, write_success_csv};
use act_core::Alignment;
use act_sim::latency::{Blending, LatencyBackend, measured_latency_steps};
use act_sim::{Task, scene};

#[derive(Parser)]
#[command(name = "act-sim", about = "Simulated bimanual ALOHA (MuJoCo) for ACT", version)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Record scripted demonstrations as episode_{i}.hdf5 in the original ACT layout.
    Record {
        #[arg(long)]
        task: String,
        #[arg(long)]
        dataset_dir: PathBuf,
        #[arg(long, default_value_t = 50)]
        num_episodes: usize,
        /// Camera to record (repeatable); default: top.
        #[arg(long = "camera")]
        cameras: Vec<String>,
        #[arg(long, default_value_t = 480)]
        height: usize,
        #[arg(long, default_value_t = 640)]
        width: usize,
        /// Episode i uses seed S + i for the object placement (with --successful-only, the
        /// seeds run on past failures).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Keep only demonstrations the scripted policy completed: a failed episode is not
        /// written and the next seed is tried, until --num-episodes succeeded (at most 4x as many
        /// attempts, else an error). Without it every episode is written, as ACT records them.
        #[arg(long)]
        successful_only: bool,
    },
    /// Turn an episode file into a video and/or a PNG of one frame.
    Replay {
        /// Episode file (ACT HDF5 layout).
        episode: PathBuf,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Roll a scripted episode out live (EE rollout + joint-space replay) and render it.
    Render {
        #[arg(long)]
        task: String,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long, default_value_t = 480)]
        height: usize,
        #[arg(long, default_value_t = 640)]
        width: usize,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Success of the scripted policies per reward stage over many seeds (EE rollout and replay).
    ScriptedSuccess {
        #[arg(long)]
        task: String,
        #[arg(long, default_value_t = 50)]
        num_episodes: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Evaluate a policy checkpoint in the joint-space environment: success per reward stage,
    /// average return, latency per query, and rollout videos.
    Eval {
        /// act-core checkpoint: a single .safetensors file or a LeRobot checkpoint directory.
        #[arg(long)]
        ckpt: PathBuf,
        #[arg(long, default_value = "sim_transfer_cube_scripted")]
        task: String,
        #[arg(long, default_value_t = 50)]
        num_rollouts: usize,
        /// Temporal ensembling: query every step and average all predictions for a step.
        #[arg(long)]
        temporal_agg: bool,
        /// Ensembling coefficient m (weights exp(-m i), i = 0 oldest); default: the checkpoint's
        /// temporal_ensemble_coeff, else ACT's 0.01.
        #[arg(long)]
        ensemble_coeff: Option<f32>,
        /// Without --temporal-agg: query every K steps (default: the checkpoint's n_action_steps).
        #[arg(long)]
        query_every: Option<usize>,
        /// Rollout i places the objects with seed S + i (ACT evaluates with 1000).
        #[arg(long, default_value_t = 1000)]
        seed: u64,
        /// Write videos of the first --num-videos rollouts here, rendered from --video-camera at
        /// --video-size (independent of the policy's inputs), with seed, step and reward stage
        /// under each frame.
        #[arg(long)]
        video_dir: Option<PathBuf>,
        #[arg(long, default_value_t = 2)]
        num_videos: usize,
        #[command(flatten)]
        video: VideoArgs,
        /// Run the policy through act-core (what robots link) or libtorch (cross-check).
        #[arg(long, value_parser = ["act-core", "tch"], default_value = "act-core")]
        backend: String,
        /// Steps per rollout (default: the task's episode length, 400).
        #[arg(long)]
        max_steps: Option<usize>,
        /// Simulate a query that takes K control steps (20 ms each): the chunk computed from step
        /// t's observation becomes usable at step t + K while the simulation runs on, as with
        /// act-core's asynchronous stepper. 0: synchronous (the latency-free ideal). `auto`: act-core's
        /// measured query time on this machine, in 20 ms steps, rounded up. act-core backend only.
        #[arg(long, default_value = "0")]
        latency_steps: String,
        /// With --latency-steps: place a late chunk at its observation's step (aligned: skip its
        /// stale head) or at its arrival (naive: play it from its first action).
        #[arg(long, value_parser = ["aligned", "naive"], default_value = "aligned")]
        alignment: String,
        /// Query whenever the previous query is done and execute the newest chunk alone (instead of
        /// chunk execution every --query-every steps, or --temporal-agg).
        #[arg(long, conflicts_with_all = ["temporal_agg", "query_every"])]
        latest_chunk: bool,
        /// act-core's compute path: f32; bf16 or int8 (forced: an error where this CPU lacks the
        /// kernel); fastest-bf16 / fastest-int8 (the fastest path measured on this CPU among those
        /// at least that precise); amx-bf16 / amx-int8 (bf16 / int8 on AMX tiles, an error naming
        /// why where they cannot run). act-core backend only.
        #[arg(long, value_parser = ["f32", "bf16", "int8", "fastest-bf16", "fastest-int8", "amx-bf16", "amx-int8"], default_value = "f32")]
        precision: String,
    },
    /// Success over training time: evaluate every snapshot `act-train train --snapshot-every N`
    /// wrote (CKPT_DIR/snapshots/step_<N>.safetensors) over the same rollouts through act-core, write
    /// CKPT_DIR/success_vs_step.csv (with Wilson 95 % intervals; a second run with the other
    /// querying mode adds its series) and redraw CKPT_DIR/loss_curve.png with success under the loss.
    EvalSnapshots {
        #[arg(long)]
        ckpt_dir: PathBuf,
        #[arg(long, default_value = "sim_transfer_cube_scripted")]
        task: String,
        #[arg(long, default_value_t = 20)]
        num_rollouts: usize,
        /// Temporal ensembling (query every step) instead of chunk execution.
        #[arg(long)]
        temporal_agg: bool,
        /// Rollout i places the objects with seed S + i.
        #[arg(long, default_value_t = 1000)]
        seed: u64,
        /// Evaluate only snapshots at or after this step.
        #[arg(long, default_value_t = 0)]
        from_step: u64,
        /// Steps per rollout (default: the task's episode length, 400).
        #[arg(long)]
        max_steps: Option<usize>,
    },
    /// Print the generated MJCF of a task's scene.
    SceneXml {
        #[arg(long)]
        task: String,
        /// The end-effector (mocap) variant.
        #[arg(long)]
        ee: bool,
    },
}

/// How rollout videos are rendered and written.
#[derive(clap::Args)]
struct VideoArgs {
    /// Scene camera the videos show: top, angle, front_close, left_wrist, right_wrist.
    #[arg(long, default_value = "angle")]
    video_camera: String,
    /// Video frame size HxW (the caption strip adds 36 rows).
    #[arg(long, default_value = "480x640")]
    video_size: String,
    /// mp4 (through ffmpeg) or gif [default: mp4 where ffmpeg runs, else gif].
    #[arg(long, value_parser = ["mp4", "gif"])]
    video_format: Option<String>,
}

impl VideoArgs {
    fn spec(&self) -> Result<VideoSpec> {
        check_cameras(std::slice::from_ref(&self.video_camera))?;
        let (h, w) = act_train::cli::parse_hw(&self.video_size)?;
        if h > 2160 || w > 3840 || h < 16 || w < 64 {
            bail!("--video-size {}: between 16x64 and 2160x3840", self.video_size);
        }
        let ext = match self.video_format.as_deref() {
            Some("gif") => "gif",
            Some(_) if !ffmpeg_available() => bail!("--video-format mp4 needs ffmpeg on PATH (scripts/setup.sh installs it)"),
            Some(_) => "mp4",
            None => VideoSpec::default().ext,
        };
        Ok(VideoSpec { camera: self.video_camera.clone(), height: h as usize, width: w as usize, ext })
    }
}

#[derive(clap::Args)]
struct OutputArgs {
    /// Cameras to show side by side (repeatable); default: top (or the file's first camera).
    #[arg(long = "camera")]
    cameras: Vec<String>,
    /// Video output (.mp4 through ffmpeg, or .gif). Default: <name>.mp4 if ffmpeg is on PATH,
    /// else <name>.gif, next to the episode (replay) or in the current directory (render).
    #[arg(long)]
    video: Option<PathBuf>,
    /// Do not write a video.
    #[arg(long)]
    no_video: bool,
    /// Write frame --frame as PNG to this path.
    #[arg(long)]
    png: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    frame: usize,
    /// Use every k-th frame in the video (default 1 for mp4, 2 for gif).
    #[arg(long)]
    every: Option<usize>,
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Record { task, dataset_dir, num_episodes, cameras, height, width, seed, successful_only } => {
            record(&task, &dataset_dir, num_episodes, cameras, height, width, seed, successful_only)
        }
        Cmd::Replay { episode, out } => replay(&episode, &out),
        Cmd::Render { task, seed, height, width, out } => render(&task, seed, height, width, &out),
        Cmd::ScriptedSuccess { task, num_episodes, seed } => scripted_success(&task, num_episodes, seed),
        Cmd::Eval {
            ckpt,
            task,
            num_rollouts,
            temporal_agg,
            ensemble_coeff,
            query_every,
            seed,
            video_dir,
            num_videos,
            video,
            backend,
            max_steps,
            latency_steps,
            alignment,
            latest_chunk,
            precision,
        } => {
            let task = Task::from_name(&task)?;
            let querying = querying(&ckpt, temporal_agg, ensemble_coeff, query_every)?;
            let latency = match latency_steps.as_str() {
                "auto" => {
                    let (k, secs) = measured_latency_steps(&ckpt, 0.02)?;
                    println!("act-core query on this machine: {:.1} ms median = {k} steps of 20 ms", secs * 1e3);
                    k
                }
                s => s.parse::<usize>().map_err(|_| anyhow::anyhow!("--latency-steps {s:?}: a number of steps or `auto`"))?,
            };
            let simulated = latency > 0 || latest_chunk;
            if simulated && backend != "act-core" {
                bail!("--latency-steps and --latest-chunk run through act-core; drop --backend {backend}");
            }
            let mut be: Box<dyn Backend> = match backend.as_str() {
                "tch" => Box::new(TchBackend::open(&ckpt, querying)?),
                _ if simulated => {
                    let blending = match querying {
                        _ if latest_chunk => Blending::Latest,
                        Querying::Ensemble(m) => Blending::Ensemble(m),
                        Querying::Every(k) => Blending::Chunk(k),
                    };
                    let alignment = if alignment == "naive" { Alignment::Arrival } else { Alignment::Observation };
                    println!("simulated latency: {latency} steps, {blending:?}, {alignment:?}");
                    Box::new(LatencyBackend::open(&ckpt, blending, alignment, latency)?)
                }
                _ => {
                    let be = ActCoreBackend::open_with(&ckpt, querying, compute_options(&precision))?;
                    println!("act-core kernels: {:?}, {:?} compute ({})", be.kernels().isa, be.kernels().storage, be.kernels().note);
                    Box::new(be)
                }
            };
            if precision != "f32" && (backend != "act-core" || simulated) {
                bail!("--precision {precision} applies to act-core's synchronous evaluation; drop it or --backend / --latency-steps");
            }
            let ec = EvalConfig { task, num_rollouts, seed, video_dir: video_dir.clone(), num_videos, video: video.spec()?, max_steps };
            let pb = ProgressBar::new(num_rollouts as u64);
            pb.set_style(ProgressStyle::with_template("{bar:30} {pos}/{len} rollouts [{elapsed_precise}<{eta_precise}] {msg}").unwrap());
            let stages = stage_names(task);
            let mut successes = 0;
            let report = evaluate(be.as_mut(), &ec, |i, r| {
                successes += (r.max_reward >= 4) as usize;
                let stage = if r.max_reward == 0 { "nothing" } else { stages[r.max_reward as usize - 1] };
                progress_line(&pb, format!("rollout {i:>3} seed {}: max reward {} ({stage}), return {}", r.seed, r.max_reward, r.episode_return));
                pb.set_message(format!("success {successes}/{}", i + 1));
                pb.inc(1);
            })?;
            pb.finish_and_clear();
            println!("\n{} with {backend} ({querying:?}), checkpoint {}:\n", task.name(), ckpt.display());
            print!("{}", report.table(task));
            if let Some(s) = be.summary() {
                println!("{s}");
            }
            if let Some(d) = video_dir {
                println!("videos: {}", d.display());
            }
            Ok(())
        }
        Cmd::EvalSnapshots { ckpt_dir, task, num_rollouts, temporal_agg, seed, from_step, max_steps } => {
            eval_snapshots(&ckpt_dir, &task, num_rollouts, temporal_agg, seed, from_step, max_steps)
        }
        Cmd::SceneXml { task, ee } => {
            print!("{}", scene::scene_xml(Task::from_name(&task)?, ee, (640, 480)));
            Ok(())
        }
    }
}

/// How the policy is queried: ensembling coefficient from the flag, the checkpoint, or ACT's 0.01.
/// `--precision` as act-core options.
fn compute_options(precision: &str) -> act_core::Options {
    use act_core::{Accuracy, WeightStorage};
    let (weights, accept) = match precision {
        "bf16" => (WeightStorage::Bf16, Accuracy::F32),
        "int8" => (WeightStorage::Int8, Accuracy::F32),
        "fastest-bf16" => (WeightStorage::F32, Accuracy::Bf16),
        "fastest-int8" => (WeightStorage::F32, Accuracy::Int8),
        "amx-bf16" => (WeightStorage::Bf16, Accuracy::F32),
        "amx-int8" => (WeightStorage::Int8, Accuracy::F32),
        _ => (WeightStorage::F32, Accuracy::F32),
    };
    act_core::Options { weights, accept, require_amx: precision.starts_with("amx-"), ..Default::default() }
}

fn querying(ckpt: &Path, temporal_agg: bool, coeff: Option<f32>, every: Option<usize>) -> Result<Querying> {
    let probe = act_core::Policy::open(ckpt, &act_core::Options::default()).with_context(|| format!("loading {}", ckpt.display()))?;
    let cfg = probe.config();
    if temporal_agg {
        if every.is_some() {
            bail!("--query-every and --temporal-agg exclude each other (ensembling queries every step)");
        }
        return Ok(Querying::Ensemble(coeff.or(cfg.temporal_ensemble_coeff).unwrap_or(0.01)));
    }
    let k = every.unwrap_or(cfg.n_action_steps);
    if k == 0 || k > cfg.chunk_size {
        bail!("--query-every {k} must be within 1..={} (the chunk size)", cfg.chunk_size);
    }
    Ok(Querying::Every(k))
}

/// A line above the progress bar; on plain stdout when the bar is hidden (output not a terminal),
/// where `ProgressBar::println` would drop it and a logged run that stops early would lose it.
fn progress_line(pb: &ProgressBar, line: String) {
    if pb.is_hidden() {
        println!("{line}");
    } else {
        pb.println(line);
    }
}

fn eval_snapshots(dir: &Path, task: &str, n: usize, temporal_agg: bool, seed: u64, from_step: u64, max_steps: Option<usize>) -> Result<()> {
    let task = Task::from_name(task)?;
    if n == 0 {
        bail!("--num-rollouts must be at least 1");
    }
    let snaps: Vec<_> = list_snapshots(dir)?.into_iter().filter(|s| s.step >= from_step).collect();
    if snaps.is_empty() {
        bail!("no snapshot at or after step {from_step} in {}", dir.join("snapshots").display());
    }
    let series = if temporal_agg { "temporal ensembling" } else { "chunk execution" };
    println!("{}: {} snapshots, {n} rollouts each (seeds {seed}..{}), {series}", task.name(), snaps.len(), seed + n as u64 - 1);
    let pb = ProgressBar::new((snaps.len() * n) as u64);
    pb.set_style(ProgressStyle::with_template("{bar:30} {pos}/{len} rollouts [{elapsed_precise}<{eta_precise}] {msg}").unwrap());
    let ec = EvalConfig { task, num_rollouts: n, seed, video_dir: None, num_videos: 0, video: VideoSpec::default(), max_steps };
    let mut points = Vec::new();
    let mut stage_rows = Vec::new();
    for s in &snaps {
        let querying = querying(&s.path, temporal_agg, None, None)?;
        let mut be = ActCoreBackend::open(&s.path, querying)?;
        pb.set_message(format!("step {}", s.step));
        let report = evaluate(&mut be, &ec, |_, _| pb.inc(1))?;
        let k = report.reached(4);
        progress_line(&pb, format!("step {:>6}: success {}", s.step, act_sim::stats::rate_with_interval(k, n)));
        points.push(point(s.step, series, k, n));
        // Rollouts reaching each earlier stage: where a policy that does not succeed yet stops.
        let reached: Vec<usize> = (1..4).map(|stage| report.reached(stage)).collect();
        stage_rows.push(reached);
    }
    pb.finish_and_clear();
    let csv = dir.join(SUCCESS_CSV);
    let all = merge(read_success_csv(&csv)?, &points);
    write_success_csv(&csv, &all)?;
    let losses = dir.join(act_train::train::LOSSES_CSV);
    let history = if losses.exists() { act_train::loss::read_losses_csv(&losses)? } else { Vec::new() };
    let png = dir.join(act_train::train::LOSS_PNG);
    act_train::plot::write_training_curves(&png, &history, &all)?;
    let stages = stage_names(task);
    println!("\n| step | 1 {} | 2 {} | 3 {} | {series}: 4 {} (Wilson 95 % interval) |\n|---|---|---|---|---|", stages[0], stages[1], stages[2], stages[3]);
    for (p, reached) in points.iter().zip(&stage_rows) {
        let r: Vec<String> = reached.iter().map(|k| format!("{k}/{n}")).collect();
        println!("| {} | {} | {} |", p.step, r.join(" | "), act_sim::stats::rate_with_interval(p.successes, p.rollouts));
    }
    println!("\nwrote {} and {}", csv.display(), png.display());
    Ok(())
}

fn check_cameras(cameras: &[String]) -> Result<()> {
    for c in cameras {
        if !scene::CAMERAS.contains(&c.as_str()) {
            bail!("unknown camera {c:?}; cameras: {}", scene::CAMERAS.join(", "));
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn record(
    task: &str,
    dir: &Path,
    n: usize,
    mut cameras: Vec<String>,
    height: usize,
    width: usize,
    seed: u64,
    successful_only: bool,
) -> Result<()> {
    let task = Task::from_name(task)?;
    if cameras.is_empty() {
        cameras.push("top".into());
    }
    check_cameras(&cameras)?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create dataset directory {}", dir.display()))?;
    // Probe writability before simulating anything.
    let probe = dir.join(format!(".act-sim-probe-{}", std::process::id()));
    std::fs::write(&probe, b"").with_context(|| format!("dataset directory {} is not writable", dir.display()))?;
    let _ = std::fs::remove_file(&probe);
    // Episodes numbered n and above would be trained on beside the n written here, from other seeds.
    let beyond: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list dataset directory {}", dir.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.strip_prefix("episode_").and_then(|r| r.strip_suffix(".hdf5")).and_then(|i| i.parse::<usize>().ok()).is_some_and(|i| i >= n))
        .collect();
    if !beyond.is_empty() {
        bail!(
            "{} already holds {} episode file(s) numbered {n} or above (e.g. {}), which training would mix with the {n} recorded now; remove them or record into another directory",
            dir.display(),
            beyond.len(),
            beyond[0]
        );
    }

    let mut ee = EeEnv::new(task, &[], height, width)?;
    let mut joint = JointEnv::new(task, &cameras, height, width)?;
    let pb = ProgressBar::new(n as u64);
    pb.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} episodes [{elapsed_precise} < {eta_precise}] {msg}")
            .unwrap(),
    );
    let start = Instant::now();
    let mut successes = 0;
    let mut stages = [0usize; 5];
    let (mut written, mut attempts, mut skipped) = (0usize, 0usize, Vec::new());
    let max_attempts = if successful_only { 4 * n } else { n };
    while written < n {
        if attempts == max_attempts {
            pb.finish_and_clear();
            bail!(
                "only {written} of {n} scripted {} episodes succeeded in {attempts} attempts (seeds {seed}..{}; failed: {skipped:?}); episode_0..{written} are written in {}",
                task.name(),
                seed + attempts as u64,
                dir.display()
            );
        }
        let s = seed + attempts as u64;
        attempts += 1;
        let ep = record_episode(&mut ee, &mut joint, s)?;
        if ep.success() {
            successes += 1;
        }
        for (stage, c) in stages.iter_mut().enumerate() {
            if ep.max_reward as usize >= stage {
                *c += 1;
            }
        }
        let outcome = format!(
            "{} (max reward {}/{} in replay, {} in EE rollout)",
            if ep.success() { "success" } else { "FAILURE" },
            ep.max_reward,
            task.max_reward(),
            ep.ee_max_reward
        );
        let line = if successful_only && !ep.success() {
            skipped.push(s);
            format!("seed {s}: {outcome} -> not written (--successful-only)")
        } else {
            let path = dir.join(format!("episode_{written}.hdf5"));
            write_episode(&path, &ep)?;
            written += 1;
            pb.inc(1);
            format!("episode {} (seed {s}): {outcome} -> {}", written - 1, path.display())
        };
        pb.suspend(|| println!("{line}"));
        pb.set_message(format!("{successes}/{attempts} succeeded"));
    }
    pb.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "success rate: {successes}/{attempts} = {:.1} %  (reward >= 1: {}, >= 2: {}, >= 3: {}, = 4: {})",
        100.0 * successes as f64 / attempts.max(1) as f64,
        stages[1],
        stages[2],
        stages[3],
        stages[4]
    );
    if !skipped.is_empty() {
        println!("failed demonstrations not written (--successful-only): seeds {skipped:?}");
    }
    println!(
        "recorded {n} episodes of {} steps with {} camera(s) at {height}x{width} in {secs:.1} s ({attempts} simulated, {:.2} s each)",
        task.episode_len(),
        cameras.len(),
        secs / attempts.max(1) as f64
    );
    Ok(())
}

fn default_video(stem: &Path) -> PathBuf {
    stem.with_extension(if ffmpeg_available() { "mp4" } else { "gif" })
}

/// Write frames (provided by `get(t) -> Vec of per-camera frames`) as video and/or PNG.
fn write_outputs(
    out: &OutputArgs,
    default_stem: &Path,
    n_frames: usize,
    h: usize,
    w: usize,
    mut get: impl FnMut(usize) -> Result<Vec<Vec<u8>>>,
) -> Result<()> {
    if n_frames == 0 {
        bail!("no frames to write");
    }
    if let Some(png) = &out.png {
        if out.frame >= n_frames {
            bail!("--frame {} out of range (0..{n_frames})", out.frame);
        }
        let frames = get(out.frame)?;
        let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
        write_png(png, w * refs.len(), h, &hconcat(&refs, w, h))?;
        println!("wrote frame {} to {}", out.frame, png.display());
    }
    if out.no_video {
        return Ok(());
    }
    let path = out.video.clone().unwrap_or_else(|| default_video(default_stem));
    let is_gif = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gif"));
    let every = out.every.unwrap_or(if is_gif { 2 } else { 1 }).max(1);
    let mut ncam = 0;
    let mut writer: Option<VideoWriter> = None;
    let pb = ProgressBar::new(n_frames.div_ceil(every) as u64);
    for t in (0..n_frames).step_by(every) {
        let frames = get(t)?;
        ncam = frames.len();
        let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
        let img = hconcat(&refs, w, h);
        if writer.is_none() {
            writer = Some(VideoWriter::create(&path, w * ncam, h, 50.0 / every as f64)?);
        }
        writer.as_mut().unwrap().push(&img)?;
        pb.inc(1);
    }
    pb.finish_and_clear();
    writer.unwrap().finish()?;
    println!("wrote {} ({} frames, {ncam} camera(s))", path.display(), n_frames.div_ceil(every));
    Ok(())
}

fn replay(episode: &Path, out: &OutputArgs) -> Result<()> {
    let ep = EpisodeFile::open(episode)?;
    if ep.cameras.is_empty() {
        bail!("{}: the episode has no images to show", episode.display());
    }
    let cams = if out.cameras.is_empty() { vec![ep.camera_names()[0].clone()] } else { out.cameras.clone() };
    let mut hw = None;
    for c in &cams {
        let Some((_, (_, h, w))) = ep.cameras.iter().find(|(n, _)| n == c) else {
            bail!("episode has no camera {c:?} (has: {})", ep.camera_names().join(", "));
        };
        if hw.is_some_and(|x| x != (*h, *w)) {
            bail!("cameras of different sizes cannot be shown side by side");
        }
        hw = Some((*h, *w));
    }
    let (h, w) = hw.unwrap();
    println!(
        "{}: {} steps, sim = {:?}, cameras: {}",
        episode.display(),
        ep.len(),
        ep.sim,
        ep.camera_names().join(", ")
    );
    write_outputs(out, episode, ep.len(), h, w, |t| {
        cams.iter().map(|c| ep.frame(c, t).map(|f| f.2)).collect()
    })
}

fn render(task: &str, seed: u64, height: usize, width: usize, out: &OutputArgs) -> Result<()> {
    let task = Task::from_name(task)?;
    let cams = if out.cameras.is_empty() { vec!["top".to_string()] } else { out.cameras.clone() };
    check_cameras(&cams)?;
    let mut ee = EeEnv::new(task, &[], height, width)?;
    let mut joint = JointEnv::new(task, &cams, height, width)?;
    let ep = record_episode(&mut ee, &mut joint, seed)?;
    println!(
        "{} seed {seed}: {} (max reward {} in replay, {} in EE rollout)",
        task.name(),
        if ep.success() { "success" } else { "failure" },
        ep.max_reward,
        ep.ee_max_reward
    );
    let stem = PathBuf::from(format!("{}_seed{seed}", task.name()));
    write_outputs(out, &stem, ep.qpos.len(), height, width, |t| {
        Ok(ep.images.iter().map(|(_, f)| f[t].clone()).collect())
    })
}

fn scripted_success(task: &str, n: usize, seed: u64) -> Result<()> {
    let task = Task::from_name(task)?;
    let mut ee = EeEnv::new(task, &[], 480, 640)?;
    let mut joint = JointEnv::new(task, &[], 480, 640)?;
    let mut ee_stage = [0usize; 5];
    let mut rp_stage = [0usize; 5];
    let pb = ProgressBar::new(n as u64);
    let mut failed = Vec::new();
    for i in 0..n {
        let s = seed + i as u64;
        let ep = record_episode(&mut ee, &mut joint, s)?;
        for r in 0..5 {
            if ep.ee_max_reward as usize >= r {
                ee_stage[r] += 1;
            }
            if ep.max_reward as usize >= r {
                rp_stage[r] += 1;
            }
        }
        if !ep.success() {
            failed.push(format!("{s} (max {})", ep.max_reward));
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    println!("{}: {n} episodes, seeds {seed}..{}", task.name(), seed + n as u64 - 1);
    println!("| stage (max reward >=) | EE rollout | joint-space replay |");
    println!("|---|---|---|");
    for r in 1..5 {
        println!(
            "| {r} | {}/{n} ({:.0} %) | {}/{n} ({:.0} %) |",
            ee_stage[r],
            100.0 * ee_stage[r] as f64 / n as f64,
            rp_stage[r],
            100.0 * rp_stage[r] as f64 / n as f64
        );
    }
    if !failed.is_empty() {
        println!("replay failures: {}", failed.join(", "));
    }
    Ok(())
}
