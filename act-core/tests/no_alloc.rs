//! `predict`, `step` and `reset` allocate nothing: a counting global allocator proves it.
mod common;
use act_core::{Ensembling, Options, Policy};
use common::{image, CountingAllocator, Tiny, ALLOCATIONS};
use std::sync::atomic::Ordering;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// The count is process-wide: one test at a time, or one test's loading counts in the other.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn predict_step_and_reset_allocate_nothing() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // The counter leaves out the main thread (the harness's); this test must not run there.
    assert!(!common::on_main_thread(), "the allocation count would miss this thread");
    let mut t = Tiny::new();
    // Small cameras of two sizes: what matters is every buffer path, and the test runs under qemu.
    t.cameras = vec![("top", 32, 32), ("left_wrist", 32, 48)];
    let bytes = t.checkpoint(3);
    let imgs = [image(32, 32, 1), image(32, 48, 2)];
    let views: Vec<&[u8]> = imgs.iter().map(|v| v.as_slice()).collect();
    let qpos = [0.2f32; 14];
    let mut chunk = vec![0.0f32; t.chunk * t.action];
    let mut action = [0.0f32; 14];
    let f32w = act_core::WeightStorage::F32;
    let mut cases = vec![(Ensembling::Coefficient(0.01), 1, f32w, None), (Ensembling::Disabled, 1, f32w, None), (Ensembling::Coefficient(0.01), 2, f32w, None)];
    assert!(act_core::Isa::detect().supports_bf16() || !common::expects("bf16"), "ACT_EXPECT_FEATURES has bf16 but this CPU has no bf16 kernel");
    assert!(act_core::Isa::detect().supports_f16_compute() || !common::expects("fp16"), "ACT_EXPECT_FEATURES has fp16 but no fp16 kernel");
    if act_core::Isa::detect().supports_f16_compute() {
        // The fp16 path converts activations into a stack block too.
        cases.push((Ensembling::Coefficient(0.01), 2, act_core::WeightStorage::F16Compute, None));
    }
    if act_core::Isa::detect().supports_bf16() {
        // The bf16 path converts activations into a stack block, never the heap.
        cases.push((Ensembling::Coefficient(0.01), 2, act_core::WeightStorage::Bf16, None));
    }
    // The int8 path quantises activations into a stack block: on every ISA with an int8 kernel
    // (AVX-512 VNNI, AVX2's AVX-VNNI or vpmaddwd, and the scalar reference everywhere).
    for isa in act_core::Isa::ALL.into_iter().filter(|i| i.is_supported() && i.supports_int8()) {
        cases.push((Ensembling::Coefficient(0.01), 2, act_core::WeightStorage::Int8, Some(isa)));
    }
    for (ensembling, threads, weights, isa) in cases {
        let mut p = Policy::from_bytes(&bytes, &Options { ensembling, threads, weights, isa, ..Default::default() }).unwrap();
        let before = ALLOCATIONS.load(Ordering::SeqCst);
        for _ in 0..3 {
            p.predict(&qpos, &views, &mut chunk).unwrap();
            for _ in 0..7 {
                p.step(&qpos, &views, &mut action).unwrap();
            }
            p.reset();
        }
        // Errors on bad input allocate nothing either.
        assert!(p.predict(&qpos[..3], &views, &mut chunk).is_err());
        let after = ALLOCATIONS.load(Ordering::SeqCst);
        assert_eq!(after - before, 0, "{ensembling:?}, {threads} threads, {weights:?} on {isa:?}: {} allocations during predict/step/reset", after - before);
        // The counter works: loading does allocate.
        let again = Policy::from_bytes(&bytes, &Options::default()).unwrap();
        assert!(ALLOCATIONS.load(Ordering::SeqCst) > after);
        drop(again);
    }
}

#[test]
fn asynchronous_steps_allocate_nothing_on_either_thread() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    assert!(!common::on_main_thread(), "the allocation count would miss this thread");
    let mut t = Tiny::new();
    t.cameras = vec![("top", 32, 32)];
    t.chunk = 20;
    let bytes = t.checkpoint(3);
    let img = image(32, 32, 1);
    let mut action = [0.0f32; 14];
    for blend in [act_core::Blend::Latest, act_core::Blend::Ensemble(0.01)] {
        let policy = Policy::from_bytes(&bytes, &Options { threads: 2, ..Default::default() }).unwrap();
        let options = act_core::AsyncOptions { blend, alignment: act_core::Alignment::Observation };
        let mut p = act_core::AsyncPolicy::new(policy, options).unwrap();
        // The first step waits for the first query; from then on both threads are in steady state.
        p.step(&[0.1; 14], &[&img], &mut action).unwrap();
        let before = ALLOCATIONS.load(Ordering::SeqCst);
        // Two episodes, each stepping until a few queries have run (under emulation, on a busy
        // machine, a query can take a second; the count is what matters, not the time).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(240);
        for episode in 0..2 {
            let chunks = p.stats().chunks;
            let mut i = 0;
            while p.stats().chunks < chunks + 3 && std::time::Instant::now() < deadline {
                p.step(&[0.01 * i as f32; 14], &[&img], &mut action).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(2));
                i += 1;
            }
            if episode == 0 {
                p.reset();
            }
        }
        assert!(p.step(&[f32::NAN; 14], &[&img], &mut action).is_err());
        let after = ALLOCATIONS.load(Ordering::SeqCst);
        assert!(p.stats().chunks >= 7, "queries ran meanwhile: {:?}", p.stats());
        assert_eq!(after - before, 0, "{blend:?}: {} allocations during asynchronous steps", after - before);
    }
}
