//! `act-sim eval`'s policy backends: act-core and libtorch on the same random checkpoint must drive
//! the simulation identically (closed loop), and the report must count stages correctly.
use act_sim::eval::{evaluate, ActCoreBackend, Backend, EvalConfig, EvalReport, Querying, Rollout, TchBackend, VideoSpec};
use act_sim::Task;

fn tiny_checkpoint(name: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("act-sim-eval-{name}-{}.safetensors", std::process::id()));
    let cfg = act_train::ActConfig::tiny().with_image_size(96, 128);
    let opts = act_train::ExportOptions::default();
    act_train::random_export::export_random(&path, act_train::CheckpointForm::Single, &cfg, &opts, 5).unwrap();
    path
}

#[test]
fn act_core_and_libtorch_backends_drive_the_same_rollout() {
    let ckpt = tiny_checkpoint("backends");
    for querying in [Querying::Every(4), Querying::Ensemble(0.01)] {
        let mut core = ActCoreBackend::open(&ckpt, querying).unwrap();
        let mut torch = TchBackend::open(&ckpt, querying).unwrap();
        assert_eq!(core.cameras(), vec![("top".to_string(), 96, 128)]);
        let mut env = act_sim::JointEnv::new(Task::TransferCube, &["top".to_string()], 96, 128).unwrap();
        let mut obs = env.reset(3).unwrap();
        let (mut a, mut b) = ([0.0f32; 14], [0.0f32; 14]);
        let mut queries = 0;
        for t in 0..12 {
            let imgs: Vec<&[u8]> = obs.images.iter().map(|(_, i)| i.as_slice()).collect();
            let qa = core.step(&obs.qpos, &imgs, &mut a).unwrap();
            let qb = torch.step(&obs.qpos, &imgs, &mut b).unwrap();
            assert_eq!(qa, qb, "{querying:?} step {t}: backends disagree on when to query");
            queries += qa as usize;
            let num: f32 = a.iter().zip(&b).map(|(x, y)| (x - y).powi(2)).sum();
            let den: f32 = b.iter().map(|y| y * y).sum();
            assert!((num / den).sqrt() < 1e-4, "{querying:?} step {t}: actions differ: {a:?} vs {b:?}");
            obs = env.step(&a).unwrap().obs;
        }
        let expected = match querying {
            Querying::Every(k) => 12usize.div_ceil(k),
            Querying::Ensemble(_) => 12,
        };
        assert_eq!(queries, expected, "{querying:?}");
    }
    std::fs::remove_file(ckpt).ok();
}

/// (frames, width, height) of a video as ffprobe decodes it.
fn ffprobe(path: &std::path::Path) -> (usize, usize, usize) {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries", "stream=nb_read_frames,width,height", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe runs (scripts/setup.sh installs ffmpeg)");
    assert!(out.status.success(), "ffprobe {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let f: Vec<usize> = text.trim().split(',').map(|v| v.parse().unwrap()).collect();
    (f[2], f[0], f[1])
}

#[test]
fn evaluate_runs_rollouts_and_writes_viewing_size_videos_that_decode() {
    // The policy sees 96x128 from `top`; the video shows `angle` at 120x160 plus the caption strip.
    let ckpt = tiny_checkpoint("videos");
    let mut core = ActCoreBackend::open(&ckpt, Querying::Every(8)).unwrap();
    let dir = std::env::temp_dir().join(format!("act-sim-eval-videos-{}", std::process::id()));
    for ext in ["mp4", "gif"] {
        let video = VideoSpec { camera: "angle".into(), height: 120, width: 160, ext };
        let ec = EvalConfig { task: Task::TransferCube, num_rollouts: 2, seed: 1000, video_dir: Some(dir.clone()), num_videos: 1, video, max_steps: Some(16) };
        let mut seen = Vec::new();
        let report = evaluate(&mut core, &ec, |i, r| seen.push((i, r.seed))).unwrap();
        assert_eq!(seen, vec![(0, 1000), (1, 1001)]);
        assert_eq!(report.query_seconds.len(), 2 * 2);
        let path = dir.join(format!("rollout_0_seed1000_angle.{ext}"));
        assert_eq!(ffprobe(&path), (16, 160, 120 + act_sim::overlay::STRIP_HEIGHT), "{}", path.display());
    }
    let mut videos: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    videos.sort();
    assert_eq!(videos, vec!["rollout_0_seed1000_angle.gif".to_string(), "rollout_0_seed1000_angle.mp4".to_string()]);
    std::fs::remove_dir_all(dir).ok();
    std::fs::remove_file(ckpt).ok();
}

#[test]
fn report_counts_every_stage_reached() {
    let r = |m| Rollout { seed: 0, max_reward: m, episode_return: m * 10 };
    let report = EvalReport { rollouts: vec![r(4), r(2), r(0), r(4)], query_seconds: vec![0.001, 0.003, 0.002] };
    assert_eq!(report.success_rate(), 0.5);
    let table = report.table(Task::TransferCube);
    assert!(table.contains("| 1 touched (right gripper) | 3/4 | 75.0 % |"), "{table}");
    assert!(table.contains("| 2 lifted | 3/4 | 75.0 % |"), "{table}");
    assert!(table.contains("| 3 handed over (left gripper) | 2/4 | 50.0 % |"), "{table}");
    assert!(table.contains("| 4 transferred | 2/4 | 50.0 % |"), "{table}");
    assert!(table.contains("average return 25.0"), "{table}");
    // 2/4: Wilson 95 % interval 15-85 % (hand computation: centre 0.5, half-width 0.3500 for z = 1.96).
    assert!(table.contains("success 2/4 = 50 % (Wilson 95 % CI 15-85 %)"), "{table}");
    assert_eq!(report.latency_ms().0, 2.0);
}

#[test]
fn eval_snapshots_writes_the_success_csv_and_the_two_panel_curve() {
    let dir = std::env::temp_dir().join(format!("act-sim-eval-snapshots-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let snaps = dir.join("snapshots");
    std::fs::create_dir_all(&snaps).unwrap();
    let cfg = act_train::ActConfig::tiny().with_image_size(96, 128);
    for (step, seed) in [(1000u64, 5i64), (2000, 6)] {
        let p = snaps.join(format!("step_{step:06}.safetensors"));
        act_train::random_export::export_random(&p, act_train::CheckpointForm::Single, &cfg, &act_train::ExportOptions::default(), seed).unwrap();
    }
    let rows: Vec<act_train::loss::LossRow> = (0..2000u64)
        .map(|step| act_train::loss::LossRow { step, epoch: 0, val: false, l1: 1.0, kl: 0.1, loss: 1.0 / (1.0 + step as f64) })
        .collect();
    act_train::loss::write_losses_csv(&dir.join("losses.csv"), &rows).unwrap();
    let run = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_act-sim"))
            .args(["eval-snapshots", "--num-rollouts", "1", "--max-steps", "8", "--ckpt-dir"])
            .arg(&dir)
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let text = run(&[]);
    // The random policy reaches no stage: every column is 0 of 1.
    assert!(!text.contains("peg touches socket"), "transfer cube's stages, not insertion's: {text}");
    assert!(text.contains("| 1 touched (right gripper) | 2 lifted | 3 handed over (left gripper) | chunk execution: 4 transferred (Wilson 95 % interval) |"), "{text}");
    assert!(text.contains("| 2000 | 0/1 | 0/1 | 0/1 | 0/1 = 0 % (Wilson 95 % CI 0-79 %) |"), "{text}");
    // Each snapshot's line as it finishes, also when stdout is not a terminal (here a pipe), so a
    // logged run that stops early keeps what it measured.
    assert!(text.contains("step   1000: success 0/1 = 0 %"), "{text}");
    run(&["--temporal-agg", "--from-step", "2000"]);
    let csv = std::fs::read_to_string(dir.join("success_vs_step.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    // 0/1: Wilson 95 % upper bound z^2 / (1 + z^2) = 3.8415 / 4.8415 = 79.3 %.
    assert_eq!(
        lines,
        [
            "step,series,rollouts,successes,rate_percent,wilson95_lo_percent,wilson95_hi_percent",
            "1000,chunk execution,1,0,0.0,0.0,79.3",
            "2000,chunk execution,1,0,0.0,0.0,79.3",
            "2000,temporal ensembling,1,0,0.0,0.0,79.3",
        ]
    );
    let png = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(dir.join("loss_curve.png")).unwrap())).read_info().unwrap();
    assert_eq!((png.info().width, png.info().height), (960, 540 + 380), "loss panel and success panel");
    std::fs::remove_dir_all(&dir).ok();
}
