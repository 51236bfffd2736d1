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
