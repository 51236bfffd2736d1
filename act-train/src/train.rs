//! The training loop (ACT_SPEC.md section 4), top to bottom in [`run`]: resolve the settings
//! (flags over a preset, or a resumed checkpoint's), open the dataset, build the model and
//! AdamW, then train, validate, checkpoint, snapshot and log until the last step, and export the
//! best weights to act-core's checkpoint forms. Settings live in [`crate::cli`], the loss in
//! [`crate::loss`], checkpoints in [`crate::checkpoint`].
//!
//! Determinism: every random choice is drawn from a generator seeded by the run seed and a
//! position: the split from the seed, each epoch's episode order and start times from the epoch
//! number, each validation pass from its step, and libtorch's generator (dropout, the CVAE's
//! noise) is reseeded at every step from the step number. A checkpoint therefore holds the whole
//! random state as (seed, step, epoch, batch in epoch), and a resumed run draws exactly what an
//! uninterrupted one would.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail, ensure};
use tch::nn::VarStore;
use tch::{Device, Tensor};

use crate::backbone_weights::load_backbone_weights;
use crate::checkpoint::{
    BEST_CKPT, LAST_CKPT, RunState, TrainingCheckpoint, export_training_checkpoint, save_checkpoint,
};
use crate::cli::{ExportWeights, TrainArgs, TrainCli, TrainPreset};
use crate::config::ActConfig;
use crate::data::{Dataset, compute_stats, split_episodes, steps_per_epoch};
use crate::loader::{Batch, JobKind, Loader, Schedule};
use crate::ema::Ema;
use crate::export::{CheckpointForm, ExportOptions, export_checkpoint};
use crate::loss::{LossRow, act_loss, write_losses_csv};
use crate::model::{Act, normalize_image_u8};
use crate::optim::{AdamW, lr_factor};
use crate::rng::{TAG_INIT, TAG_TORCH_STEP, TAG_TORCH_VAL, derive_seed};
use crate::plot::write_loss_curve;

pub const LOSSES_CSV: &str = "losses.csv";
pub const LOSS_PNG: &str = "loss_curve.png";
pub const POLICY_FILE: &str = "policy.safetensors";
pub const POLICY_DIR: &str = "policy";
pub const SNAPSHOT_DIR: &str = "snapshots";

/// Where `--snapshot-every` puts the policy exported after `step` steps.
pub fn snapshot_path(ckpt_dir: &Path, step: u64) -> PathBuf {
    ckpt_dir.join(SNAPSHOT_DIR).join(format!("step_{step:06}.safetensors"))
}

/// The step of a snapshot file name `snapshot_path` wrote (`step_001000.safetensors` -> 1000).
pub fn snapshot_step(file_name: &str) -> Option<u64> {
    file_name.strip_prefix("step_")?.strip_suffix(".safetensors")?.parse().ok()
}

/// What a finished run reports.
#[derive(Debug)]
pub struct TrainSummary {
    pub steps: u64,
    pub history: Vec<LossRow>,
    pub best_val: Option<f64>,
    pub best_step: Option<u64>,
    pub policy_file: PathBuf,
    pub samples_per_s: f64,
}

fn batch_tensors(b: &Batch, cfg: &ActConfig, device: Device) -> (Tensor, Vec<Tensor>, Tensor, Tensor) {
    let n = b.size as i64;
    let qpos = Tensor::from_slice(&b.qpos)
        .view([n, cfg.state_dim()])
        .to_device(device);
    let images = cfg
        .cameras()
        .iter()
        .zip(&b.images)
        .map(|((_, h, w), img)| normalize_image_u8(&Tensor::from_slice(img).view([n, *h, *w, 3]).to_device(device)))
        .collect();
    let actions = Tensor::from_slice(&b.actions)
        .view([n, cfg.chunk_size, cfg.action_dim()])
        .to_device(device);
    let is_pad = Tensor::from_slice(&b.is_pad)
        .view([n, cfg.chunk_size])
        .to_device(device);
    (qpos, images, actions, is_pad)
}


/// Removes temporary files a killed run left behind (`.last.ckpt.tmp-<pid>`, ...); the files
/// they were meant to replace are intact, since writes end with a rename.
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefixes: Vec<String> = [LAST_CKPT, BEST_CKPT, LOSSES_CSV]
        .iter()
        .map(|n| format!(".{n}.tmp-"))
        .chain([".loss_curve.tmp-".to_string(), format!(".{POLICY_FILE}.tmp-")])
        .collect();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if prefixes.iter().any(|p| name.starts_with(p.as_str())) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Runs `act-train train`.
pub fn run(cli: &TrainCli) -> Result<TrainSummary> {
    let device = cli.device.device()?;
    if let Some(n) = cli.threads {
        tch::set_num_threads(n);
    }
    let dir = &cli.ckpt_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("creating checkpoint directory {}", dir.display()))?;
    let last_path = dir.join(LAST_CKPT);
    let best_path = dir.join(BEST_CKPT);
    remove_stale_temporaries(dir);

    let resumed = if cli.resume && last_path.exists() {
        Some(TrainingCheckpoint::read(&last_path)?)
    } else {
        ensure!(
            !last_path.exists(),
            "{} already holds a checkpoint; pass --resume to continue it, or use another --ckpt-dir",
            dir.display()
        );
        if cli.resume {
            eprintln!("no {} yet: starting a new run", last_path.display());
        }
        None
    };

    let args = match &resumed {
        None => {
            let mut a = TrainArgs::preset(cli.preset.unwrap_or(TrainPreset::SimSmall));
            a.apply(cli)?;
            a
        }
        Some(c) => {
            let mut a = c.args.clone();
            a.apply(cli)?;
            let mut cmp = a.clone();
            cmp.steps = c.args.steps;
            cmp.num_epochs = c.args.num_epochs;
            if cli.val_every.is_none() {
                cmp.val_every = c.args.val_every;
            }
            if cmp != c.args {
                bail!(
                    "--resume: the flags given differ from the checkpoint's run ({}); only --steps/--num-epochs, \
                     --ckpt-every, --log-every, --device and loader settings may change.\ncheckpoint: {:?}\nflags: {:?}",
                    last_path.display(),
                    c.args,
                    cmp
                );
            }
            // A resumed run keeps its validation schedule unless --val-every is given.
            if cli.val_every.is_none() {
                a.val_every = c.args.val_every;
            }
            a
        }
    };
    args.validate()?;

    let dataset = Dataset::open(&cli.dataset_dir, &args.camera_names)?;
    let n_eps = dataset.episodes.len();
    let cfg = args.act_config(dataset.state_dim as i64, dataset.action_dim as i64)?;
    let (stats, split) = match &resumed {
        Some(c) => {
            ensure!(
                c.n_episodes == n_eps,
                "--resume: the checkpoint was trained on {} episodes, {} holds {n_eps}",
                c.n_episodes,
                cli.dataset_dir.display()
            );
            ensure!(
                c.config == cfg,
                "--resume: the dataset's dimensions do not match the checkpoint's model"
            );
            (c.stats.clone(), c.split.clone())
        }
        None => (
            compute_stats(&dataset.episodes, args.normalization),
            split_episodes(n_eps, args.seed, args.val_fraction),
        ),
    };
    stats.validate(&cfg).context("dataset statistics")?;
    ensure!(
        !(split.val.is_empty() && cli.export_weights == ExportWeights::Best),
        "no validation episodes (--val-fraction 0), so no validation loss picks the best weights: add \
         --export-weights last"
    );
    let total_steps = args.total_steps(split.train.len());

    // Model and optimizer.
    tch::manual_seed(derive_seed(args.seed, TAG_INIT, 0) as i64);
    let vs = VarStore::new(device);
    let mut model = Act::new(&vs.root(), &cfg)?;
    model.backbone.set_batchnorm_mode(args.backbone_bn);
    if args.lr_backbone <= 0.0 {
        for (name, t) in vs.variables() {
            if name.starts_with("model.backbone.") {
                let _ = t.set_requires_grad(false);
            }
        }
    }
    let mut opt = AdamW::new(&vs, args.lr, args.lr_backbone, args.weight_decay);
    let mut history: Vec<LossRow> = Vec::new();
    let mut state = RunState {
        step: 0,
        epoch: 0,
        batch_in_epoch: 0,
        adam_t: 0,
        best_val: None,
        best_step: None,
    };
    match &resumed {
        Some(c) => {
            c.load_weights(&vs)?;
            c.load_optimizer(&mut opt)?;
            state = c.state.clone();
            history = c.history.clone();
            history.retain(|r| r.step < state.step);
            eprintln!(
                "resuming {} at step {} (epoch {}) of {total_steps}",
                last_path.display(),
                state.step,
                state.epoch
            );
        }
        None => {
            if let Some(p) = &args.backbone_weights {
                let n = load_backbone_weights(&vs, Path::new(p))?;
                eprintln!("loaded {n} backbone tensors from {p}");
            }
        }
    }
    // The average starts from the weights as they are now (initial or resumed), then takes the
    // resumed run's average.
    let mut ema = match args.ema_decay {
        Some(d) => Some(Ema::new(&vs, &cfg, d, args.backbone_bn)?),
        None => None,
    };
    if let (Some(c), Some(e)) = (&resumed, &ema) {
        c.load_ema_weights(&e.vs)?;
    }
    eprintln!(
        "{} episodes ({} train, {} val), {} steps per epoch, {} steps, model dim {} ff {} enc {} dec {} chunk {}, \
         images {}x{}{}, backbone BatchNorm {:?}, lr {:e} / backbone {:e} {:?}{}, {} trainable tensors on {:?}",
        n_eps,
        split.train.len(),
        split.val.len(),
        steps_per_epoch(split.train.len(), args.batch_size),
        total_steps,
        cfg.dim_model,
        cfg.dim_feedforward,
        cfg.n_encoder_layers,
        cfg.n_decoder_layers,
        cfg.chunk_size,
        args.image_size.0,
        args.image_size.1,
        if args.augment_shift > 0 { format!(" (random shift up to {} px)", args.augment_shift) } else { String::new() },
        args.backbone_bn,
        args.lr,
        args.lr_backbone,
        args.lr_schedule,
        if args.warmup_steps > 0 { format!(" after {} warm-up steps", args.warmup_steps) } else { String::new() },
        opt.params.len(),
        device
    );

    let loader = Loader {
        episodes: std::sync::Arc::new(dataset.episodes.clone()),
        cameras: dataset.cameras.clone(),
        file_hw: dataset.file_hw.clone(),
        model_hw: cfg
            .cameras()
            .iter()
            .map(|(_, h, w)| (*h as usize, *w as usize))
            .collect(),
        chunk: cfg.chunk_size as usize,
        stats: stats.clone(),
        cache_bytes: (cli.cache_mb as usize) << 20,
        augment_shift: args.augment_shift,
        seed: args.seed,
    };
    let schedule = Schedule::new(
        split.clone(),
        dataset.lens(),
        args.seed,
        args.batch_size,
        total_steps,
        args.val_every,
        state.step,
        state.epoch,
        state.batch_in_epoch,
    );
    let (rx, handle) = loader.spawn(schedule, cli.prefetch);

    let pb = if cli.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(total_steps)
    };
    pb.set_style(
        indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg} (eta {eta})")
            .unwrap()
            .progress_chars("=> "),
    );
    pb.set_position(state.step);
    let log = |s: String| {
        if pb.is_hidden() {
            eprintln!("{s}");
        } else {
            pb.println(s);
        }
    };

    let save = |path: &Path, opt: &AdamW, state: &RunState, history: &[LossRow], ema: Option<&Ema>| -> Result<()> {
        save_checkpoint(path, &vs, opt, &cfg, &args, &stats, state, history, n_eps, &split, ema)
    };
    let write_curves = |history: &[LossRow]| -> Result<()> {
        write_losses_csv(&dir.join(LOSSES_CSV), history)?;
        write_loss_curve(&dir.join(LOSS_PNG), history)
    };

    let start_step = state.step;
    let t0 = Instant::now();
    let mut window = (Instant::now(), 0usize);
    let mut samples_total = 0usize;
    let mut val_sum = (0.0f64, 0.0f64, 0.0f64, 0usize);
    let mut ckpt_after_val = false;
    let mut last_saved_step = if resumed.is_some() { Some(state.step) } else { None };

    for item in rx.iter() {
        let batch = item?;
        match batch.kind {
            JobKind::Train {
                step,
                epoch,
                epoch_after,
                batch_after,
                val_due,
                val_follows,
            } => {
                debug_assert_eq!(step, state.step);
                tch::manual_seed(derive_seed(args.seed, TAG_TORCH_STEP, step) as i64);
                let (qpos, images, actions, is_pad) = batch_tensors(&batch, &cfg, device);
                let (a_hat, mu, logvar) = model.forward_train(&qpos, &images, &actions, &is_pad, true);
                let (loss, l1, kl) = act_loss(&a_hat, &actions, &is_pad, &mu, &logvar, args.kl_weight, args.loss);
                let (lv, l1v, klv) = (loss.double_value(&[]), l1.double_value(&[]), kl.double_value(&[]));
                if !lv.is_finite() {
                    pb.abandon();
                    let kept = match last_saved_step {
                        Some(s) => format!("{} (step {s}) is intact", last_path.display()),
                        None => "no checkpoint had been written yet".to_string(),
                    };
                    bail!(
                        "non-finite loss at step {step} (epoch {epoch}): loss {lv}, l1 {l1v}, kl {klv}; training stopped; {kept}"
                    );
                }
                opt.zero_grad();
                loss.backward();
                if let Some(c) = args.clip_grad_norm {
                    opt.clip_grad_norm(c);
                }
                let f = lr_factor(args.lr_schedule, args.warmup_steps, step, total_steps);
                opt.lrs = [args.lr * f, args.lr_backbone * f];
                opt.step();
                if let Some(e) = &mut ema {
                    e.update(opt.t);
                }
                history.push(LossRow {
                    step,
                    epoch,
                    val: false,
                    l1: l1v,
                    kl: klv,
                    loss: lv,
                });
                state.step = step + 1;
                state.epoch = epoch_after;
                state.batch_in_epoch = batch_after;
                state.adam_t = opt.t;
                samples_total += batch.size;
                window.1 += batch.size;
                let sps = window.1 as f64 / window.0.elapsed().as_secs_f64().max(1e-9);
                pb.set_position(state.step);
                pb.set_message(format!("loss {lv:.4} l1 {l1v:.4} kl {klv:.4} {sps:.1} samples/s"));
                if cli.log_every > 0 && (state.step.is_multiple_of(cli.log_every) || state.step == total_steps) {
                    log(format!(
                        "step {}/{total_steps} epoch {epoch} loss {lv:.5} l1 {l1v:.5} kl {klv:.5} {sps:.1} samples/s",
                        state.step
                    ));
                    window = (Instant::now(), 0);
                }
                if cli.snapshot_every.is_some_and(|k| k > 0 && state.step.is_multiple_of(k)) {
                    let path = snapshot_path(dir, state.step);
                    std::fs::create_dir_all(path.parent().expect("snapshot dir"))
                        .with_context(|| format!("creating {}", path.display()))?;
                    // The averaged weights when the run keeps an average: what the policy will be.
                    let weights = ema.as_ref().map_or(&vs, |e| &e.vs);
                    export_checkpoint(CheckpointForm::Single, &path, weights, &cfg, &stats, &ExportOptions::default())
                        .with_context(|| format!("writing snapshot {}", path.display()))?;
                }
                let ckpt_due = state.step == total_steps
                    || match cli.ckpt_every {
                        Some(k) => k > 0 && state.step.is_multiple_of(k),
                        // Where validation is due, also without validation episodes.
                        None => val_due,
                    };
                if val_follows {
                    ckpt_after_val = ckpt_due;
                    val_sum = (0.0, 0.0, 0.0, 0);
                } else if ckpt_due {
                    save(&last_path, &opt, &state, &history, ema.as_ref())?;
                    write_curves(&history)?;
                    last_saved_step = Some(state.step);
                }
            }
            JobKind::Val { step, last, .. } => {
                tch::manual_seed(derive_seed(args.seed, TAG_TORCH_VAL, step) as i64);
                // Validation judges the weights that would be exported.
                let judged = ema.as_ref().map_or(&model, |e| &e.model);
                let (l1v, klv, lv) = tch::no_grad(|| {
                    let (qpos, images, actions, is_pad) = batch_tensors(&batch, &cfg, device);
                    let (a_hat, mu, logvar) = judged.forward_train(&qpos, &images, &actions, &is_pad, false);
                    let (loss, l1, kl) = act_loss(&a_hat, &actions, &is_pad, &mu, &logvar, args.kl_weight, args.loss);
                    (l1.double_value(&[]), kl.double_value(&[]), loss.double_value(&[]))
                });
                val_sum.0 += l1v;
                val_sum.1 += klv;
                val_sum.2 += lv;
                val_sum.3 += 1;
                if last {
                    let n = val_sum.3.max(1) as f64;
                    let row = LossRow {
                        step,
                        epoch: state.epoch,
                        val: true,
                        l1: val_sum.0 / n,
                        kl: val_sum.1 / n,
                        loss: val_sum.2 / n,
                    };
                    history.push(row);
                    let improved = row.loss.is_finite() && state.best_val.is_none_or(|b| row.loss < b);
                    log(format!(
                        "val after step {} loss {:.5} l1 {:.5} kl {:.5}{}",
                        step + 1,
                        row.loss,
                        row.l1,
                        row.kl,
                        if improved { " (best)" } else { "" }
                    ));
                    if improved {
                        state.best_val = Some(row.loss);
                        state.best_step = Some(state.step);
                        save(&best_path, &opt, &state, &history, ema.as_ref())?;
                    }
                    if ckpt_after_val {
                        save(&last_path, &opt, &state, &history, ema.as_ref())?;
                        write_curves(&history)?;
                        last_saved_step = Some(state.step);
                        ckpt_after_val = false;
                    }
                }
            }
        }
    }
    drop(rx);
    handle
        .join()
        .map_err(|_| anyhow!("the loader thread panicked"))?;
    ensure!(
        state.step >= total_steps,
        "training ended at step {} of {total_steps} (loader stopped early)",
        state.step
    );
    pb.finish_and_clear();
    if last_saved_step != Some(state.step) {
        save(&last_path, &opt, &state, &history, ema.as_ref())?;
    }
    write_curves(&history)?;

    // Export the best weights (by validation loss; the last ones when none was saved), or the
    // last ones, as asked; the averaged weights where the run keeps an average.
    let src = match cli.export_weights {
        ExportWeights::Best if best_path.exists() => &best_path,
        _ => &last_path,
    };
    let policy_file = dir.join(POLICY_FILE);
    export_training_checkpoint(src, &policy_file, CheckpointForm::Single, &ExportOptions::default())?;
    export_training_checkpoint(src, &dir.join(POLICY_DIR), CheckpointForm::Dir, &ExportOptions::default())?;
    let elapsed = t0.elapsed().as_secs_f64();
    let sps = samples_total as f64 / elapsed.max(1e-9);
    eprintln!(
        "done: {} steps ({} this run, {sps:.1} samples/s incl. validation and checkpoints), best val loss {} at step {}; \
         exported {} from {}",
        state.step,
        state.step - start_step,
        state.best_val.map_or("-".into(), |v| format!("{v:.5}")),
        state.best_step.map_or("-".into(), |v| v.to_string()),
        policy_file.display(),
        src.display()
    );
    Ok(TrainSummary {
        steps: state.step,
        history,
        best_val: state.best_val,
        best_step: state.best_step,
        policy_file,
        samples_per_s: sps,
    })
}
