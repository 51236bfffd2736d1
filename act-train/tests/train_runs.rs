//! Whole training runs on small synthetic episodes (tiny preset): overfitting one episode,
//! resume == uninterrupted, export agreement with act-core, and bad input.

use std::path::{Path, PathBuf};

use act_core::{Options, Policy};
use act_train::model::{Act, normalize_image_u8};
use act_train::synthetic::{SyntheticEpisode, write_dataset};
use act_train::checkpoint::{LAST_CKPT, TrainingCheckpoint, export_training_checkpoint};
use act_train::cli::TrainCli;
use act_train::loss::LossRow;
use act_train::train;
use clap::Parser;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

#[derive(Parser)]
struct Wrap {
    #[command(flatten)]
    t: TrainCli,
}

/// libtorch's random generator is global to the process, and tests run on parallel threads: runs
/// are serialised so that each draws exactly what it would alone.
static RUN_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    RUN_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("act-train-runs-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn cli(data: &Path, ckpt: &Path, extra: &[&str]) -> TrainCli {
    let mut args = vec![
        "t".to_string(),
        "--dataset-dir".into(),
        data.display().to_string(),
        "--ckpt-dir".into(),
        ckpt.display().to_string(),
        "--preset".into(),
        "tiny".into(),
        "--quiet".into(),
        "--threads".into(),
        "1".into(),
        "--log-every".into(),
        "0".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    Wrap::try_parse_from(args).unwrap().t
}

fn train_rows(h: &[LossRow]) -> Vec<LossRow> {
    h.iter().filter(|r| !r.val).copied().collect()
}

#[test]
fn tiny_model_overfits_one_episode() {
    let _guard = lock();
    let dir = tmpdir("overfit");
    let data = dir.join("data");
    // One episode, stored 10 times: ACT's epochs draw each training episode once, so copies give
    // batches of 8 samples of that one episode (a single file would give batches of 1).
    std::fs::create_dir_all(&data).unwrap();
    let ep = SyntheticEpisode::new(20, 64, 64, 0);
    for i in 0..10 {
        ep.write(&data.join(format!("episode_{i}.hdf5"))).unwrap();
    }
    let s = train::run(&cli(
        &data,
        &dir.join("ckpt"),
        &["--steps", "250", "--val-every", "1000", "--dropout", "0", "--seed", "1"],
    ))
    .unwrap();
    let rows = train_rows(&s.history);
    assert_eq!(rows.len(), 250);
    let first: f64 = rows[..5].iter().map(|r| r.l1).sum::<f64>() / 5.0;
    let last: f64 = rows[rows.len() - 20..].iter().map(|r| r.l1).sum::<f64>() / 20.0;
    eprintln!("L1 first 5 steps {first:.4}, last 20 steps {last:.4} ({:.1}x)", first / last);
    assert!(last * 5.0 < first, "L1 fell only from {first} to {last}");
    assert!(s.policy_file.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn resume_equals_uninterrupted() {
    let _guard = lock();
    let dir = tmpdir("resume");
    let data = dir.join("data");
    write_dataset(&data, 4, 20, 64, 64).unwrap();
    // Batch-mode BatchNorm: its running statistics must resume exactly too; so must the random
    // shifts of the training images.
    let common = [
        "--val-every", "4", "--batch-size", "2", "--seed", "3", "--backbone-bn", "batch", "--augment-shift", "3",
    ];
    let mut full_args = common.to_vec();
    // Snapshots in the uninterrupted run only: exporting them must not change what it computes.
    full_args.extend(["--steps", "8", "--snapshot-every", "4"]);
    let full = train::run(&cli(&data, &dir.join("full"), &full_args)).unwrap();
    let snaps: Vec<String> = std::fs::read_dir(dir.join("full").join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(snaps, ["step_000004.safetensors", "step_000008.safetensors"]);

    let part_dir = dir.join("part");
    let mut a1 = common.to_vec();
    a1.extend(["--steps", "5"]);
    let first = train::run(&cli(&data, &part_dir, &a1)).unwrap();
    assert_eq!(first.steps, 5);
    // Without --resume an existing run is not overwritten.
    let err = train::run(&cli(&data, &part_dir, &a1)).unwrap_err().to_string();
    assert!(err.contains("--resume"), "{err}");
    // A changed hyperparameter on resume is refused.
    let err = train::run(&cli(&data, &part_dir, &["--resume", "--steps", "8", "--lr", "0.5"]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("differ"), "{err}");
    let resumed = train::run(&cli(&data, &part_dir, &["--resume", "--steps", "8"])).unwrap();
    assert_eq!(resumed.steps, 8);

    let (a, b) = (train_rows(&full.history), train_rows(&resumed.history));
    assert_eq!(a.len(), 8);
    assert_eq!(b.len(), 8);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((x.step, x.epoch), (y.step, y.epoch));
        for (u, v) in [(x.l1, y.l1), (x.kl, y.kl), (x.loss, y.loss)] {
            assert!((u - v).abs() <= 1e-6 * (1.0 + u.abs()), "step {}: {u} vs {v}", x.step);
        }
    }
    // Validation passes both runs made (after steps 4 and 8) agree too.
    for step in [3u64, 7] {
        let f = full.history.iter().find(|r| r.val && r.step == step).unwrap();
        let r = resumed.history.iter().find(|r| r.val && r.step == step).unwrap();
        assert!((f.loss - r.loss).abs() <= 1e-6 * (1.0 + f.loss.abs()), "val at {step}");
    }
    // Final weights agree.
    let ca = TrainingCheckpoint::read(&dir.join("full").join(LAST_CKPT)).unwrap();
    let cb = TrainingCheckpoint::read(&part_dir.join(LAST_CKPT)).unwrap();
    assert_eq!(ca.state.step, 8);
    assert_eq!(
        (cb.state.step, cb.state.epoch, cb.state.batch_in_epoch, cb.state.adam_t),
        (ca.state.step, ca.state.epoch, ca.state.batch_in_epoch, ca.state.adam_t)
    );
    let (va, vb) = (VarStore::new(Device::Cpu), VarStore::new(Device::Cpu));
    Act::new(&va.root(), &ca.config).unwrap();
    Act::new(&vb.root(), &cb.config).unwrap();
    ca.load_weights(&va).unwrap();
    cb.load_weights(&vb).unwrap();
    let vars_b = vb.variables();
    let mut worst = 0.0f64;
    for (k, t) in va.variables() {
        let d = (&t - &vars_b[&k]).abs().max().double_value(&[]);
        worst = worst.max(d);
    }
    assert!(worst < 1e-6, "weights differ by {worst}");
    // The CSV continues the history.
    let csv = std::fs::read_to_string(part_dir.join("losses.csv")).unwrap();
    assert_eq!(csv.lines().filter(|l| l.contains(",train,")).count(), 8);
    assert!(part_dir.join("loss_curve.png").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(&x, &y)| ((x - y) as f64).powi(2)).sum();
    let den: f64 = b.iter().map(|&y| (y as f64).powi(2)).sum();
    (num / den).sqrt()
}

#[test]
fn exported_checkpoint_agrees_with_tch_in_act_core() {
    let _guard = lock();
    let dir = tmpdir("export");
    let data = dir.join("data");
    // Frames of 96x128 resized to the model's 64x64 on load.
    std::fs::create_dir_all(&data).unwrap();
    for i in 0..3 {
        SyntheticEpisode::new(16, 96, 128, i).write(&data.join(format!("episode_{i}.hdf5"))).unwrap();
    }
    let ck = dir.join("ckpt");
    // Batch-mode BatchNorm leaves non-trivial running statistics that act-core must fold.
    let steps = ["--steps", "6", "--val-every", "3", "--batch-size", "2", "--backbone-bn", "batch", "--snapshot-every", "3"];
    train::run(&cli(&data, &ck, &steps)).unwrap();
    let best = TrainingCheckpoint::read(&ck.join("best.ckpt")).unwrap();
    let cfg = best.config.clone();
    let stats = best.stats.clone();
    assert_eq!(stats.std_eps, 0.0);
    let vs = VarStore::new(Device::Cpu);
    let model = Act::new(&vs.root(), &cfg).unwrap();
    best.load_weights(&vs).unwrap();
    let vars = vs.variables();
    for name in ["model.backbone.bn1.running_mean", "model.backbone.layer4.1.bn2.running_var"] {
        let t = &vars[name];
        let init = if name.ends_with("mean") { 0.0 } else { 1.0 };
        let moved = (t - init).abs().max().double_value(&[]);
        assert!(moved > 1e-3, "{name} still at its initial value: batch statistics were not tracked");
    }

    // `act-train export --ckpt` path, both forms, the files the run wrote, and the training
    // checkpoint itself (it carries the config/format/std_eps metadata act-core needs).
    let out_single = dir.join("exported.safetensors");
    let out_dir = dir.join("exported_dir");
    let opts = act_train::ExportOptions::default();
    export_training_checkpoint(&ck.join("best.ckpt"), &out_single, act_train::CheckpointForm::Single, &opts)
        .unwrap();
    export_training_checkpoint(&ck.join("best.ckpt"), &out_dir, act_train::CheckpointForm::Dir, &opts).unwrap();
    // The snapshot taken at the best checkpoint's step holds the same weights.
    let snapshot = act_train::train::snapshot_path(&ck, best.state.step);
    let paths = [ck.join("policy.safetensors"), ck.join("policy"), out_single, out_dir, ck.join("best.ckpt"), snapshot];

    let ep = SyntheticEpisode::new(16, 64, 64, 9);
    let q = ep.qpos();
    let imgs = ep.images();
    let mut prev: Option<Vec<f32>> = None;
    for t in [2usize, 11] {
        let qpos: Vec<f32> = q.row(t).to_vec();
        let img: Vec<u8> = imgs.slice(ndarray::s![t, .., .., ..]).iter().copied().collect();
        let qn: Vec<f32> = qpos
            .iter()
            .enumerate()
            .map(|(i, v)| (v - stats.state_mean[i]) / (stats.state_std[i] + stats.std_eps))
            .collect();
        let out = tch::no_grad(|| {
            model.forward_inference(
                &Tensor::from_slice(&qn).view([1, 14]),
                &[normalize_image_u8(&Tensor::from_slice(&img).view([64, 64, 3]))],
            )
        });
        let an: Vec<f32> = Vec::try_from(&out.actions.to_kind(Kind::Float).contiguous().view([-1])).unwrap();
        let want: Vec<f32> = an
            .chunks(14)
            .flat_map(|r| (0..14).map(|i| r[i] * stats.action_std[i] + stats.action_mean[i]).collect::<Vec<_>>())
            .collect();
        for p in &paths {
            let mut policy = Policy::open(p, &Options::default()).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let mut got = vec![0f32; want.len()];
            policy.predict(&qpos, &[&img], &mut got).unwrap();
            let e = rel_err(&got, &want);
            assert!(e < 1e-5, "{}: rel err {e:e}", p.display());
        }
        if let Some(p) = &prev {
            assert!(rel_err(p, &want) > 1e-4, "different observations gave the same actions");
        }
        prev = Some(want);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn expect_err(data: &Path, ckpt: &Path, extra: &[&str], needles: &[&str]) {
    let err = match train::run(&cli(data, ckpt, extra)) {
        Ok(_) => panic!("training on {} succeeded", data.display()),
        Err(e) => format!("{e:#}"),
    };
    for n in needles {
        assert!(err.contains(n), "error {err:?} lacks {n:?}");
    }
}

#[test]
fn bad_input_gives_clear_errors() {
    let _guard = lock();
    let dir = tmpdir("bad");
    let ck = dir.join("ckpt");
    let quick = ["--steps", "2"];
    expect_err(&dir.join("nope"), &ck, &quick, &["does not exist", "nope"]);
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    expect_err(&empty, &ck, &quick, &["no episode_<i>.hdf5"]);
    expect_err(&empty, &ck, &["--steps", "2", "--augment-shift", "17"], &["--augment-shift 17", "64x64"]);

    let corrupt = dir.join("corrupt");
    write_dataset(&corrupt, 2, 10, 64, 64).unwrap();
    let junk: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    std::fs::write(corrupt.join("episode_0.hdf5"), junk).unwrap();
    expect_err(&corrupt, &ck, &quick, &["episode_0.hdf5", "not a readable HDF5 file"]);

    // qpos and action of different lengths in one file.
    let lens = dir.join("lens");
    std::fs::create_dir_all(&lens).unwrap();
    SyntheticEpisode::new(10, 64, 64, 0).write(&lens.join("episode_0.hdf5")).unwrap();
    {
        let f = hdf5::File::create(lens.join("episode_1.hdf5")).unwrap();
        let obs = f.create_group("observations").unwrap();
        obs.new_dataset_builder()
            .with_data(&ndarray::Array2::<f32>::zeros((10, 14)))
            .create("qpos")
            .unwrap();
        f.new_dataset_builder()
            .with_data(&ndarray::Array2::<f32>::zeros((9, 14)))
            .create("action")
            .unwrap();
    }
    expect_err(&lens, &ck, &quick, &["episode_1.hdf5", "mismatched lengths"]);

    // Images with fewer frames than steps.
    let frames = dir.join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    {
        let f = hdf5::File::create(frames.join("episode_0.hdf5")).unwrap();
        let obs = f.create_group("observations").unwrap();
        obs.new_dataset_builder()
            .with_data(&ndarray::Array2::<f32>::zeros((10, 14)))
            .create("qpos")
            .unwrap();
        f.new_dataset_builder()
            .with_data(&ndarray::Array2::<f32>::zeros((10, 14)))
            .create("action")
            .unwrap();
        obs.create_group("images")
            .unwrap()
            .new_dataset_builder()
            .with_data(&ndarray::Array4::<u8>::zeros((8, 64, 64, 3)))
            .create("top")
            .unwrap();
    }
    expect_err(&frames, &ck, &quick, &["episode_0.hdf5", "camera top has 8 frames"]);

    // An episode with another camera.
    let cams = dir.join("cams");
    std::fs::create_dir_all(&cams).unwrap();
    SyntheticEpisode::new(10, 64, 64, 0).write(&cams.join("episode_0.hdf5")).unwrap();
    let mut other = SyntheticEpisode::new(10, 64, 64, 1);
    other.cameras = vec!["front".into()];
    other.write(&cams.join("episode_1.hdf5")).unwrap();
    expect_err(&cams, &ck, &quick, &["episode_1.hdf5", "mismatched cameras", "front"]);
    // A camera no episode has.
    let good = dir.join("good");
    write_dataset(&good, 2, 10, 64, 64).unwrap();
    expect_err(&good, &ck, &["--steps", "2", "--camera-names", "wrist"], &["episode_0.hdf5", "no camera \"wrist\""]);

    // Image shapes differing between episodes.
    let shapes = dir.join("shapes");
    std::fs::create_dir_all(&shapes).unwrap();
    SyntheticEpisode::new(10, 64, 64, 0).write(&shapes.join("episode_0.hdf5")).unwrap();
    SyntheticEpisode::new(10, 48, 64, 1).write(&shapes.join("episode_1.hdf5")).unwrap();
    expect_err(&shapes, &ck, &quick, &["episode_1.hdf5", "mismatched image shapes"]);

    // CUDA without CUDA.
    if !tch::Cuda::is_available() {
        expect_err(&good, &ck, &["--steps", "2", "--device", "cuda"], &["CUDA is not available"]);
    }
    assert!(!ck.join(LAST_CKPT).exists(), "no checkpoint from failed runs");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn val_fraction_zero_trains_on_every_episode_and_validates_on_none() {
    let _guard = lock();
    let dir = tmpdir("no-val");
    let data = dir.join("data");
    write_dataset(&data, 3, 12, 64, 64).unwrap();
    // Without validation there is no best: the default --export-weights best is refused.
    expect_err(&data, &dir.join("refused"), &["--steps", "2", "--val-fraction", "0"], &["--export-weights last"]);
    expect_err(&data, &dir.join("bad"), &["--steps", "2", "--val-fraction", "1"], &["--val-fraction"]);

    let ckpt = dir.join("ckpt");
    let s = train::run(&cli(
        &data,
        &ckpt,
        &["--steps", "4", "--val-fraction", "0", "--export-weights", "last", "--val-every", "1"],
    ))
    .unwrap();
    assert!(s.history.iter().all(|r| !r.val), "no validation rows");
    assert_eq!(train_rows(&s.history).len(), 4);
    let c = TrainingCheckpoint::read(&ckpt.join(LAST_CKPT)).unwrap();
    let mut train = c.split.train.clone();
    train.sort();
    assert_eq!(train, vec![0, 1, 2], "every episode trains");
    assert!(c.split.val.is_empty());
    assert!(ckpt.join("policy.safetensors").exists());
    assert!(!ckpt.join("best.ckpt").exists());

    // Without validation passes last.ckpt still follows the --val-every cadence: a run that fails
    // part way (an absurd rate makes the loss non-finite) keeps the step before the failure.
    let failing = dir.join("failing");
    expect_err(
        &data,
        &failing,
        &["--steps", "20", "--lr", "1e30", "--val-fraction", "0", "--export-weights", "last", "--val-every", "1"],
        &["non-finite loss at step"],
    );
    let c = TrainingCheckpoint::read(&failing.join(LAST_CKPT)).expect("last.ckpt written before the failure");
    assert!(c.state.step >= 1 && c.state.step < 20, "{}", c.state.step);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn nan_loss_stops_with_the_step_and_keeps_checkpoints() {
    let _guard = lock();
    let dir = tmpdir("nan");
    let data = dir.join("data");
    write_dataset(&data, 2, 10, 64, 64).unwrap();
    let ck = dir.join("ckpt");
    // An absurd learning rate blows the weights up after the first update.
    let err = train::run(&cli(
        &data,
        &ck,
        &["--steps", "20", "--lr", "1e30", "--ckpt-every", "1", "--val-every", "100"],
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("non-finite loss at step"), "{err}");
    let step: u64 = err
        .split("at step ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert!(step >= 1);
    assert!(err.contains("intact"), "{err}");
    // The last checkpoint written before the failure is complete and readable.
    let c = TrainingCheckpoint::read(&ck.join(LAST_CKPT)).unwrap();
    assert_eq!(c.state.step, step);
    assert_eq!(c.history.len() as u64, step);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `act-train train` flags with placeholder directories, for tests of flag handling only.
fn parse(extra: &[&str]) -> act_train::cli::TrainCli {
    let mut args = vec!["t", "--dataset-dir", "d", "--ckpt-dir", "c"];
    args.extend_from_slice(extra);
    Wrap::try_parse_from(args).unwrap().t
}

#[test]
fn zero_backbone_lr_freezes_its_batchnorm_too() {
    use act_train::model::backbone::BatchNormMode;
    use act_train::cli::{TrainArgs, TrainPreset};
    // sim-small trains the backbone's BatchNorm on batch statistics by default ...
    let mut a = TrainArgs::preset(TrainPreset::SimSmall);
    assert_eq!(a.backbone_bn, BatchNormMode::Batch);
    a.apply(&parse(&[])).unwrap();
    assert_eq!(a.backbone_bn, BatchNormMode::Batch);
    // ... but a frozen backbone keeps its running statistics as well,
    let mut a = TrainArgs::preset(TrainPreset::SimSmall);
    a.apply(&parse(&["--lr-backbone", "0"])).unwrap();
    assert_eq!(a.backbone_bn, BatchNormMode::Frozen);
    // and asking for both at once is refused with the reason.
    let mut a = TrainArgs::preset(TrainPreset::SimSmall);
    let err = a.apply(&parse(&["--lr-backbone", "0", "--backbone-bn", "batch"])).unwrap_err().to_string();
    assert!(err.contains("--lr-backbone 0") && err.contains("--backbone-bn batch"), "{err}");
}

#[test]
fn a_flag_given_twice_takes_its_last_value_and_cameras_are_unique() {
    use act_train::cli::{TrainArgs, TrainPreset};
    // Scripts append to a recipe's flags (ACT_TRAIN_ARGS in demo.sh).
    let mut a = TrainArgs::preset(TrainPreset::SimSmall);
    a.apply(&parse(&["--steps", "6000", "--lr", "1e-3", "--steps", "10000"])).unwrap();
    assert_eq!((a.steps, a.lr), (Some(10000), 1e-3));
    // So does a list: demo.sh passes the recipe's --camera-names top before ACT_TRAIN_ARGS.
    let mut a = TrainArgs::preset(TrainPreset::SimSmall);
    a.apply(&parse(&["--camera-names", "top", "--camera-names", "top,angle"])).unwrap();
    assert_eq!(a.camera_names, ["top", "angle"]);
    a.validate().unwrap();
    // A camera listed twice would silently train two backbones on the same frames: refused.
    let mut a = TrainArgs::preset(TrainPreset::SimSmall);
    a.apply(&parse(&["--camera-names", "top,angle,top"])).unwrap();
    let err = a.validate().unwrap_err().to_string();
    assert!(err.contains("\"top\" twice"), "{err}");
    // An empty name (a stray comma) is refused too, before any episode is read.
    let mut a = TrainArgs::preset(TrainPreset::SimSmall);
    a.apply(&parse(&["--camera-names", "top,,angle"])).unwrap();
    let err = a.validate().unwrap_err().to_string();
    assert!(err.contains("top,,angle has an empty name"), "{err}");
}

/// Every `model.*` tensor of a training checkpoint, live or averaged, as f32 values by name.
fn checkpoint_weights(c: &TrainingCheckpoint, averaged: bool) -> std::collections::HashMap<String, Vec<f32>> {
    let vs = VarStore::new(Device::Cpu);
    Act::new(&vs.root(), &c.config).unwrap();
    if averaged {
        c.load_ema_weights(&vs).unwrap();
    } else {
        c.load_weights(&vs).unwrap();
    }
    vs.variables()
        .into_iter()
        .map(|(k, t)| {
            let v = t.to_kind(Kind::Float).contiguous().view([-1]);
            (k, Vec::<f32>::try_from(&v).unwrap())
        })
        .collect()
}

/// `--ema-decay`: the averaged weights follow `ema_t = d_t ema_(t-1) + (1 - d_t) w_t` with
/// `d_t = min(decay, (1 + t) / (10 + t))` (checked by hand between two checkpoints), resume
/// exactly, and are what the policy is exported from (`--export-weights last` here).
#[test]
fn weight_average_follows_its_formula_resumes_and_is_exported() {
    let _guard = lock();
    let dir = tmpdir("ema");
    let data = dir.join("data");
    write_dataset(&data, 4, 20, 64, 64).unwrap();
    let common = [
        "--val-every", "100", "--batch-size", "2", "--seed", "5", "--backbone-bn", "batch", "--ema-decay", "0.25",
    ];
    let mut full_args = common.to_vec();
    full_args.extend(["--steps", "3"]);
    train::run(&cli(&data, &dir.join("full"), &full_args)).unwrap();

    let part = dir.join("part");
    let mut a1 = common.to_vec();
    a1.extend(["--steps", "2"]);
    train::run(&cli(&data, &part, &a1)).unwrap();
    let c2 = TrainingCheckpoint::read(&part.join(LAST_CKPT)).unwrap();
    assert_eq!(c2.state.step, 2);
    let e2 = checkpoint_weights(&c2, true);
    // An average cannot be added to a run that kept none, nor a decay outside (0, 1) given.
    let plain = dir.join("plain");
    train::run(&cli(&data, &plain, &["--steps", "1", "--val-every", "100"])).unwrap();
    let err = train::run(&cli(&data, &plain, &["--resume", "--steps", "2", "--ema-decay", "0.5"]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("differ"), "{err}");
    let err = train::run(&cli(&data, &dir.join("bad"), &["--steps", "1", "--ema-decay", "1.5"]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("--ema-decay"), "{err}");

    train::run(&cli(&data, &part, &["--resume", "--steps", "3", "--export-weights", "last"])).unwrap();
    let c3 = TrainingCheckpoint::read(&part.join(LAST_CKPT)).unwrap();
    assert_eq!((c3.state.step, c3.state.adam_t), (3, 3));
    let (w3, e3) = (checkpoint_weights(&c3, false), checkpoint_weights(&c3, true));
    let d3 = f64::min(0.25, 4.0 / 13.0);
    let mut moved = 0.0f64;
    for (k, e) in &e3 {
        let (prev, live) = (&e2[k], &w3[k]);
        for i in 0..e.len() {
            let want = d3 * prev[i] as f64 + (1.0 - d3) * live[i] as f64;
            assert!((e[i] as f64 - want).abs() <= 1e-6 * (1.0 + want.abs()), "{k}[{i}]: {} vs {want}", e[i]);
            moved = moved.max((e[i] - live[i]).abs() as f64);
        }
    }
    assert!(moved > 1e-6, "the average equals the live weights");
    // The uninterrupted run reached the same average.
    let full = checkpoint_weights(&TrainingCheckpoint::read(&dir.join("full").join(LAST_CKPT)).unwrap(), true);
    for (k, e) in &e3 {
        let worst = e.iter().zip(&full[k]).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-6, "{k}: resumed average differs by {worst}");
    }
    // The exported policy holds the averaged weights (LeRobot names are the VarStore's).
    let bytes = std::fs::read(part.join(train::POLICY_FILE)).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let key = "model.action_head.weight";
    let v = st.tensor(key).unwrap();
    let exported: Vec<f32> = v.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    assert_eq!(exported, e3[key]);
    assert_ne!(exported, w3[key]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--warmup-steps`: the first update of a 4-step warm-up is the update of a constant run at a
/// quarter of both learning rates (so the factor reaches the optimizer, backbone group included),
/// and differs from the full-rate one.
#[test]
fn warmup_scales_both_learning_rates() {
    let _guard = lock();
    let dir = tmpdir("warmup");
    let data = dir.join("data");
    write_dataset(&data, 4, 20, 64, 64).unwrap();
    let common = ["--val-every", "100", "--batch-size", "2", "--seed", "3", "--backbone-bn", "batch", "--steps", "1"];
    let run = |name: &str, extra: &[&str]| {
        let mut a = common.to_vec();
        a.extend_from_slice(extra);
        train::run(&cli(&data, &dir.join(name), &a)).unwrap();
        checkpoint_weights(&TrainingCheckpoint::read(&dir.join(name).join(LAST_CKPT)).unwrap(), false)
    };
    let warm = run("warm", &["--lr", "1e-3", "--lr-backbone", "1e-4", "--warmup-steps", "4", "--lr-schedule", "cosine"]);
    let quarter = run("quarter", &["--lr", "2.5e-4", "--lr-backbone", "2.5e-5"]);
    let full = run("full", &["--lr", "1e-3", "--lr-backbone", "1e-4"]);
    let (mut backbone_checked, mut differs) = (false, 0.0f32);
    for (k, w) in &warm {
        for i in 0..w.len() {
            let q = quarter[k][i];
            assert!((w[i] - q).abs() <= 1e-6 * (1.0 + q.abs()), "{k}[{i}]: warm-up {} vs quarter rate {q}", w[i]);
            differs = differs.max((w[i] - full[k][i]).abs());
        }
        backbone_checked |= k.starts_with("model.backbone.");
    }
    assert!(backbone_checked, "no backbone tensor compared");
    assert!(differs > 1e-6, "the warm-up made no difference to the first update");
}
