//! Blending late chunks, against hand-computed examples and against the temporal ensembler.
mod common;
use act_core::{Blend, ChunkBlender, Served, TemporalEnsembler};
use common::Rng;

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() <= 1e-5 * b.abs().max(1.0)
}

#[test]
fn ensemble_over_late_aligned_chunks_weights_the_oldest_covering_chunk_most() {
    // m = ln 2: weights 1, 1/2, 1/4 for the oldest, next, newest covering chunk. Chunks of 4
    // actions; a query takes 2 steps: the chunk from step 0 is there at step 0 (the first waits),
    // from step 1 it arrives at step 3, from step 3 at step 5.
    let mut b = ChunkBlender::new(Blend::Ensemble(std::f32::consts::LN_2), 4, 1);
    let c0 = [1.0, 2.0, 3.0, 4.0];
    let c1 = [10.0, 20.0, 30.0, 40.0];
    let c3 = [100.0, 200.0, 300.0, 400.0];
    let mut out = [0.0f32];
    assert_eq!(b.action(0, &mut out), Served::Empty);
    b.push(0, &c0);
    assert_eq!(b.action(0, &mut out), Served::Fresh { staleness: 0 });
    assert_eq!(out[0], 1.0);
    assert_eq!(b.action(1, &mut out), Served::Fresh { staleness: 1 });
    assert_eq!(out[0], 2.0);
    assert_eq!(b.action(2, &mut out), Served::Fresh { staleness: 2 });
    assert_eq!(out[0], 3.0);
    b.push(1, &c1); // arrives at step 3, aligned to its observation step 1
    assert_eq!(b.action(3, &mut out), Served::Fresh { staleness: 2 });
    assert!(close(out[0], (4.0 + 0.5 * 30.0) / 1.5), "t=3: c0[3], c1[2]: {}", out[0]);
    assert_eq!(b.action(4, &mut out), Served::Fresh { staleness: 3 });
    assert_eq!(out[0], 40.0, "t=4: c0 has expired, c1[3] alone");
    b.push(3, &c3);
    assert_eq!(b.action(5, &mut out), Served::Fresh { staleness: 2 });
    assert_eq!(out[0], 300.0, "t=5: c1 has expired, c3[2]");
    assert_eq!(b.action(7, &mut out), Served::Held, "every chunk exhausted at t=7");
    assert_eq!(out[0], 300.0, "the last served action is held");
    b.reset();
    assert_eq!(b.action(0, &mut out), Served::Empty, "reset forgets the chunks and the last action");
}

#[test]
fn latest_takes_the_newest_covering_chunk_and_out_of_order_chunks_are_ignored() {
    let mut b = ChunkBlender::new(Blend::Latest, 3, 2);
    let c0 = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5];
    let c2 = [20.0, 20.5, 21.0, 21.5, 22.0, 22.5];
    let mut out = [0.0f32; 2];
    b.push(0, &c0);
    b.action(1, &mut out);
    assert_eq!(out, [1.0, 1.5]);
    b.push(2, &c2);
    b.action(2, &mut out);
    assert_eq!(out, [20.0, 20.5], "c2 is newer than c0, which still covers step 2");
    assert!(!b.push(1, &c0), "a chunk older than the newest is refused");
    b.action(3, &mut out);
    assert_eq!(out, [21.0, 21.5]);
    // A chunk with the newest start replaces it.
    let c2b = [7.0; 6];
    assert!(b.push(2, &c2b));
    b.action(3, &mut out);
    assert_eq!(out, [7.0, 7.0]);
}

#[test]
fn aligned_chunks_every_step_are_temporal_ensembling() {
    // A chunk every step, starting at that step: the same actions as ACT's temporal ensembler.
    let (c, a) = (7, 3);
    let mut rng = Rng(11);
    let mut b = ChunkBlender::new(Blend::Ensemble(0.3), c, a);
    let mut e = TemporalEnsembler::new(0.3, c, a);
    for t in 0..40 {
        let chunk = rng.vec(c * a);
        let (mut x, mut y) = (vec![0.0f32; a], vec![0.0f32; a]);
        b.push(t, &chunk);
        b.action(t, &mut x);
        e.push(&chunk, &mut y);
        for (u, v) in x.iter().zip(&y) {
            assert!(close(*u, *v), "step {t}: blender {x:?}, ensembler {y:?}");
        }
    }
}

#[test]
fn latest_with_one_chunk_every_n_steps_is_chunk_execution() {
    let (c, a, n) = (10, 2, 10);
    let mut rng = Rng(5);
    let mut b = ChunkBlender::new(Blend::Latest, c, a);
    let mut chunk = vec![];
    for t in 0..35 {
        if t % n == 0 {
            chunk = rng.vec(c * a);
            b.push(t, &chunk);
        }
        let mut out = vec![0.0f32; a];
        assert_eq!(b.action(t, &mut out), Served::Fresh { staleness: t % n });
        assert_eq!(out, chunk[(t % n) * a..(t % n + 1) * a]);
    }
}
