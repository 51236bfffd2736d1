//! Several threads give the single-thread result (which the agreement tests compare to libtorch),
//! for every camera layout, and keep their workers across steps.
mod common;
use act_core::{Options, Policy};
use common::{image, rel_err, Tiny};

#[test]
fn multi_threaded_predict_matches_single_threaded() {
    let mut t = Tiny::new();
    t.dim = 64;
    t.heads = 4;
    t.ff = 96;
    t.chunk = 20;
    t.cameras = vec![("top", 96, 128), ("left_wrist", 64, 64)];
    let bytes = t.checkpoint(21);
    let imgs = [image(96, 128, 1), image(64, 64, 2)];
    let views: Vec<&[u8]> = imgs.iter().map(|v| v.as_slice()).collect();
    let qpos: Vec<f32> = (0..14).map(|i| i as f32 * 0.1 - 0.5).collect();
    let mut single = Policy::from_bytes(&bytes, &Options::default()).unwrap();
    assert_eq!(single.threads(), 1);
    let mut want = vec![0.0f32; t.chunk * t.action];
    single.predict(&qpos, &views, &mut want).unwrap();
    for threads in [2, 3] {
        let mut p = Policy::from_bytes(&bytes, &Options { threads, ..Default::default() }).unwrap();
        assert_eq!(p.threads(), threads);
        for _ in 0..3 {
            let mut got = vec![0.0f32; t.chunk * t.action];
            p.predict(&qpos, &views, &mut got).unwrap();
            let err = rel_err(&got, &want);
            assert!(err < 1e-6, "{threads} threads: rel err {err}");
        }
    }
}

/// Dynamic distribution hands every item to exactly one part, for item counts below, at and
/// above the number of parts, and also when one part is slow (it should then take fewer items).
#[test]
fn run_dynamic_runs_every_item_exactly_once() {
    use act_core::kernels::exec::{run_dynamic, ThreadPool};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let pool = ThreadPool::new(3);
    for n in [0usize, 1, 2, 3, 7, 100, 1000] {
        let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
        let by_part: Vec<AtomicUsize> = (0..3).map(|_| AtomicUsize::new(0)).collect();
        run_dynamic(&pool, n, &|part, i| {
            hits[i].fetch_add(1, Ordering::Relaxed);
            by_part[part].fetch_add(1, Ordering::Relaxed);
            if part == 2 && n == 100 {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        });
        for (i, h) in hits.iter().enumerate() {
            assert_eq!(h.load(Ordering::Relaxed), 1, "n={n}: item {i}");
        }
        if n == 100 {
            let slow = by_part[2].load(Ordering::Relaxed);
            assert!(slow < 100 / 3, "the slowed part took {slow} of 100 items");
        }
    }
}
