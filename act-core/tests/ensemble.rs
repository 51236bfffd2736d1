//! Temporal ensembling against a hand-computed example, and `step` wired to it.
mod common;
use act_core::{Ensembling, Options, Policy, TemporalEnsembler};
use common::{image, Tiny};

#[test]
fn ensembling_weights_the_oldest_prediction_most() {
    // m = ln 2: weights 1, 1/2, 1/4 for the oldest, next, newest prediction of a time step.
    let mut e = TemporalEnsembler::new(std::f32::consts::LN_2, 3, 1);
    let preds = [[1.0, 2.0, 3.0], [10.0, 20.0, 30.0], [100.0, 200.0, 300.0], [1000.0, 2000.0, 3000.0]];
    let want = [
        1.0,                                      // t=0: only pred0[0]
        (2.0 + 0.5 * 10.0) / 1.5,                 // t=1: pred0[1], pred1[0]
        (3.0 + 0.5 * 20.0 + 0.25 * 100.0) / 1.75, // t=2
        (30.0 + 0.5 * 200.0 + 0.25 * 1000.0) / 1.75, // t=3: pred0 has expired
    ];
    for (p, w) in preds.iter().zip(want) {
        let mut out = [0.0f32];
        e.push(p, &mut out);
        assert!((out[0] - w).abs() < 1e-4 * w.abs(), "got {} want {w}", out[0]);
    }
    e.reset();
    let mut out = [0.0f32];
    e.push(&[7.0, 8.0, 9.0], &mut out);
    assert_eq!(out[0], 7.0, "reset must forget the history");
}

#[test]
fn step_ensembles_predicted_chunks_and_chunk_mode_replays_them() {
    // 32x32, the smallest camera: the test is about the stepping logic, and it runs under qemu too.
    let mut t = Tiny::new();
    t.cameras = vec![("top", 32, 32)];
    let bytes = t.checkpoint(9);
    let m = 0.3f32;
    let mut ens = Policy::from_bytes(&bytes, &Options { ensembling: Ensembling::Coefficient(m), ..Default::default() }).unwrap();
    let mut plain = Policy::from_bytes(&bytes, &Options { ensembling: Ensembling::Disabled, ..Default::default() }).unwrap();
    let mut every2 = Policy::from_bytes(&bytes, &Options { ensembling: Ensembling::Disabled, n_action_steps: Some(2), ..Default::default() }).unwrap();
    assert!(Policy::from_bytes(&bytes, &Options { n_action_steps: Some(t.chunk + 1), ..Default::default() }).is_err());
    assert_eq!(ens.ensemble_coefficient(), Some(m));
    assert_eq!(plain.ensemble_coefficient(), None);
    let (c, a) = (t.chunk, t.action);
    let mut chunks: Vec<Vec<f32>> = Vec::new();
    for step in 0..8usize {
        let img = image(32, 32, 100 + step as u64);
        let qpos: Vec<f32> = (0..14).map(|i| (i as f32 * 0.1 + step as f32 * 0.05).sin()).collect();
        let mut chunk = vec![0.0; c * a];
        ens.predict(&qpos, &[&img], &mut chunk).unwrap();
        chunks.push(chunk);
        let mut got = vec![0.0; a];
        ens.step(&qpos, &[&img], &mut got).unwrap();
        // Un-normalisation is affine and the weights sum to one, so averaging un-normalised
        // predictions by hand gives the same action.
        let oldest = (step + 1).saturating_sub(c);
        let mut want = vec![0.0f64; a];
        let mut total = 0.0f64;
        for (i, s) in (oldest..=step).enumerate() {
            let w = (-(m as f64) * i as f64).exp();
            total += w;
            for j in 0..a {
                want[j] += w * chunks[s][(step - s) * a + j] as f64;
            }
        }
        for j in 0..a {
            let w = want[j] / total;
            assert!((got[j] as f64 - w).abs() < 1e-4 * (1.0 + w.abs()), "step {step} joint {j}: {} vs {w}", got[j]);
        }
        // Chunk execution: a query every chunk_size steps, then its rows in order; with
        // n_action_steps = 2, a query every 2 steps.
        let mut act = vec![0.0; a];
        plain.step(&qpos, &[&img], &mut act).unwrap();
        let query = step - step % c;
        let row = &chunks[query][(step - query) * a..(step - query + 1) * a];
        for j in 0..a {
            assert!((act[j] - row[j]).abs() < 1e-5 * (1.0 + row[j].abs()), "chunk mode step {step} joint {j}");
        }
        every2.step(&qpos, &[&img], &mut act).unwrap();
        let query = step - step % 2;
        let row = &chunks[query][(step - query) * a..(step - query + 1) * a];
        for j in 0..a {
            assert!((act[j] - row[j]).abs() < 1e-5 * (1.0 + row[j].abs()), "every-2 mode step {step} joint {j}");
        }
    }
}
