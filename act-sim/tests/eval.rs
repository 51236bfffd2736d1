//! `act-sim eval`'s policy backends: act-core and libtorch on the same random checkpoint must drive
//! the simulation identically (closed loop), and the report must count stages correctly.
use act_sim::eval::{evaluate, ActCoreBackend, Backend, EvalConfig, EvalReport, Querying, Rollout, TchBackend};
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

#[test]
fn evaluate_runs_rollouts_and_writes_videos() {
    let ckpt = tiny_checkpoint("videos");
    let mut core = ActCoreBackend::open(&ckpt, Querying::Every(8)).unwrap();
    let dir = std::env::temp_dir().join(format!("act-sim-eval-videos-{}", std::process::id()));
    let ec = EvalConfig { task: Task::TransferCube, num_rollouts: 2, seed: 1000, video_dir: Some(dir.clone()), num_videos: 1, max_steps: Some(16) };
    let mut seen = Vec::new();
    let report = evaluate(&mut core, &ec, |i, r| seen.push((i, r.seed))).unwrap();
    assert_eq!(seen, vec![(0, 1000), (1, 1001)]);
    assert_eq!(report.query_seconds.len(), 2 * 2);
    let videos: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(videos, vec!["rollout_0_seed1000.gif".to_string()]);
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
    assert_eq!(report.latency_ms().0, 2.0);
}
