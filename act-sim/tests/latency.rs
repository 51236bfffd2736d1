//! Evaluation under simulated latency: K = 0 is today's synchronous evaluation action for action,
//! and with K > 0 each step's action comes from the chunk the documented schedule says, computed
//! here independently with `Policy::predict` on the recorded observations.
use act_core::{Options, Policy};
use act_sim::eval::{ActCoreBackend, Backend, Querying};
use act_core::Alignment;
use act_sim::latency::{Blending, LatencyBackend};

const H: usize = 96;
const W: usize = 128;

fn tiny_checkpoint(name: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("act-sim-latency-{name}-{}.safetensors", std::process::id()));
    let cfg = act_train::ActConfig::tiny().with_image_size(H as i64, W as i64);
    let opts = act_train::ExportOptions::default();
    act_train::random_export::export_random(&path, act_train::CheckpointForm::Single, &cfg, &opts, 9).unwrap();
    path
}

/// Observation of step t: distinct joint positions and image per step.
fn obs(t: usize) -> ([f32; 14], Vec<u8>) {
    let q = std::array::from_fn(|j| 0.03 * ((t * 7 + j * 3) % 11) as f32 - 0.15);
    let img = (0..H * W * 3).map(|i| ((i * 31 + t * 57) % 251) as u8).collect();
    (q, img)
}

fn run(be: &mut dyn Backend, steps: usize) -> (Vec<[f32; 14]>, Vec<bool>) {
    let (mut actions, mut queried) = (Vec::new(), Vec::new());
    for t in 0..steps {
        let (q, img) = obs(t);
        let mut a = [0.0f32; 14];
        queried.push(be.step(&q, &[&img], &mut a).unwrap());
        actions.push(a);
    }
    (actions, queried)
}

#[test]
fn zero_latency_is_synchronous_evaluation() {
    let ckpt = tiny_checkpoint("k0");
    for (querying, blending) in [(Querying::Every(8), Blending::Chunk(8)), (Querying::Every(3), Blending::Chunk(3)), (Querying::Ensemble(0.1), Blending::Ensemble(0.1))] {
        let mut sync = ActCoreBackend::open(&ckpt, querying).unwrap();
        for alignment in [Alignment::Observation, Alignment::Arrival] {
            let mut lat = LatencyBackend::open(&ckpt, blending, alignment, 0).unwrap();
            for episode in 0..2 {
                let (a, qa) = run(&mut sync, 20);
                let (b, qb) = run(&mut lat, 20);
                assert_eq!(qa, qb, "{querying:?} {alignment:?} episode {episode}: queries at other steps");
                for t in 0..20 {
                    for (x, y) in a[t].iter().zip(&b[t]) {
                        assert!((x - y).abs() <= 1e-6 * y.abs().max(1.0), "{querying:?} {alignment:?} step {t}: {:?} vs {:?}", a[t], b[t]);
                    }
                }
                sync.reset();
                lat.reset();
            }
        }
    }
    std::fs::remove_file(ckpt).ok();
}

#[test]
fn late_chunks_are_placed_at_their_observation_or_their_arrival() {
    // K = 3, latest chunk: the first chunk (step 0) is waited for; the next query starts at step 1
    // on step 1's observation and arrives at 4; then 4 -> 7, 7 -> 10, ...
    let ckpt = tiny_checkpoint("k3");
    let mut reference = Policy::open(&ckpt, &Options::default()).unwrap();
    let (c, a) = (8usize, 14usize);
    let chunk_of = |p: &mut Policy, t0: usize| -> Vec<f32> {
        let (q, img) = obs(t0);
        let mut out = vec![0.0f32; c * a];
        p.predict(&q, &[&img], &mut out).unwrap();
        out
    };
    for alignment in [Alignment::Observation, Alignment::Arrival] {
        let mut lat = LatencyBackend::open(&ckpt, Blending::Latest, alignment, 3).unwrap();
        let (actions, queried) = run(&mut lat, 14);
        let want_queries: Vec<bool> = (0..14).map(|t| t == 0 || (t >= 1 && (t - 1) % 3 == 0)).collect();
        assert_eq!(queried, want_queries, "{alignment:?}");
        for (t, got) in actions.iter().enumerate() {
            // The newest chunk delivered by step t: from observation t0, arrived at `arrival`.
            let (t0, arrival) = if t < 4 { (0, 0) } else { (1 + 3 * ((t - 4) / 3), 4 + 3 * ((t - 4) / 3)) };
            let start = if alignment == Alignment::Observation { t0 } else { arrival };
            let chunk = chunk_of(&mut reference, t0);
            let want = &chunk[(t - start) * a..(t - start + 1) * a];
            assert_eq!(&got[..], want, "{alignment:?} step {t}: action {} of the chunk from step {t0}", t - start);
        }
    }
    // Ensembling over the chunks covering each step, aligned: step 5 is covered by the chunks from
    // steps 0 (action 5) and 1 (action 4); weights exp(-m i), oldest first.
    let m = 0.5f32;
    let mut lat = LatencyBackend::open(&ckpt, Blending::Ensemble(m), Alignment::Observation, 3).unwrap();
    let (actions, _) = run(&mut lat, 6);
    let (c0, c1) = (chunk_of(&mut reference, 0), chunk_of(&mut reference, 1));
    let w1 = (-m).exp();
    for j in 0..a {
        let want = (c0[5 * a + j] + w1 * c1[4 * a + j]) / (1.0 + w1);
        assert!((actions[5][j] - want).abs() <= 1e-5 * want.abs().max(1.0), "dim {j}: {} vs {want}", actions[5][j]);
    }
    std::fs::remove_file(ckpt).ok();
}

#[test]
fn exhausted_chunks_hold_the_last_action() {
    // K = 6 with chunks of 8, aligned: the chunk from step 1 arrives at 7 and covers steps 1..=8;
    // the next, from step 7, arrives at 13. Steps 9..=12 hold step 8's action.
    let ckpt = tiny_checkpoint("held");
    let mut lat = LatencyBackend::open(&ckpt, Blending::Latest, Alignment::Observation, 6).unwrap();
    let (actions, _) = run(&mut lat, 14);
    for t in 9..=12 {
        assert_eq!(actions[t], actions[8], "step {t}");
    }
    assert_ne!(actions[13], actions[8], "the chunk from step 7 arrives at step 13");
    assert_eq!(lat.stats().held, 4);
    std::fs::remove_file(ckpt).ok();
}
