//! Unit tests of the FFI layer compiled into this crate's test binary, so that a counting
//! `#[global_allocator]` sees every allocation of the C entry points (called here as Rust
//! functions; tests/c_abi.rs calls the same functions through the built shared library).
use super::*;
use crate::common::{image, CountingAllocator, Tiny, ALLOCATIONS};
use std::sync::atomic::Ordering;
use std::sync::Mutex;

/// Tests that count allocations run one at a time (the harness runs tests on several threads).
static SERIAL: Mutex<()> = Mutex::new(());

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn open(bytes: &[u8], options: &act_options) -> *mut act_policy {
    let mut p = core::ptr::null_mut();
    let s = unsafe { act_policy_open_bytes(bytes.as_ptr(), bytes.len(), options, &mut p) };
    assert_eq!(s, ACT_OK, "{:?}", unsafe { CStr::from_ptr(act_last_error()) });
    p
}

fn msg(p: *const act_policy) -> String {
    unsafe { CStr::from_ptr(act_policy_last_error(p)) }.to_str().unwrap().to_owned()
}

#[test]
fn hot_path_calls_allocate_nothing_even_on_error() {
    // The counter leaves out the main thread (the harness's); this test must not run there.
    assert!(!crate::common::on_main_thread(), "the allocation count would miss this thread");
    let _serial = SERIAL.lock().unwrap();
    let mut t = Tiny::new();
    t.cameras = vec![("top", 64, 64), ("left_wrist", 48, 80)];
    let bytes = t.checkpoint(3);
    let imgs = [image(64, 64, 1), image(48, 80, 2)];
    let views = [
        act_image { data: imgs[0].as_ptr(), height: 64, width: 64 },
        act_image { data: imgs[1].as_ptr(), height: 48, width: 80 },
    ];
    let bad_views = [views[0], act_image { data: imgs[1].as_ptr(), height: 80, width: 48 }];
    let mut qpos = [0.2f32; 14];
    let mut chunk = vec![0.0f32; t.chunk * t.action];
    let mut action = [0.0f32; 14];
    for ensembling in [2u32, 1] {
        let options = act_options { ensembling, ensemble_coeff: 0.01, ..act_options_default() };
        let p = open(&bytes, &options);
        // Touch the thread-local error buffer once so its first use is not counted.
        unsafe { act_policy_step(core::ptr::null_mut(), qpos.as_ptr(), 14, views.as_ptr(), 2, action.as_mut_ptr(), 14) };
        let before = ALLOCATIONS.load(Ordering::SeqCst);
        unsafe {
            let mut info = core::mem::zeroed::<act_info>();
            let mut cam = core::mem::zeroed::<act_camera>();
            for _ in 0..3 {
                assert_eq!(act_policy_info(p, &mut info), ACT_OK);
                assert_eq!(act_policy_camera(p, 1, &mut cam), ACT_OK);
                assert_eq!(act_policy_predict_chunk(p, qpos.as_ptr(), 14, views.as_ptr(), 2, chunk.as_mut_ptr(), chunk.len()), ACT_OK);
                for _ in 0..7 {
                    assert_eq!(act_policy_step(p, qpos.as_ptr(), 14, views.as_ptr(), 2, action.as_mut_ptr(), 14), ACT_OK);
                }
                assert_eq!(act_policy_reset(p), ACT_OK);
            }
            // Every error path of the hot calls formats its message without allocating.
            assert_eq!(act_policy_step(p, qpos.as_ptr(), 13, views.as_ptr(), 2, action.as_mut_ptr(), 14), ACT_ERR_INPUT_SIZE);
            assert_eq!(act_policy_step(p, qpos.as_ptr(), 14, bad_views.as_ptr(), 2, action.as_mut_ptr(), 14), ACT_ERR_INPUT_SIZE);
            assert_eq!(act_policy_step(p, core::ptr::null(), 14, views.as_ptr(), 2, action.as_mut_ptr(), 14), ACT_ERR_NULL_POINTER);
            qpos[3] = f32::NAN;
            assert_eq!(act_policy_step(p, qpos.as_ptr(), 14, views.as_ptr(), 2, action.as_mut_ptr(), 14), ACT_ERR_NON_FINITE_INPUT);
            qpos[3] = 0.2;
            assert_eq!(act_policy_predict_chunk(p, qpos.as_ptr(), 14, views.as_ptr(), 2, chunk.as_mut_ptr(), 3), ACT_ERR_INPUT_SIZE);
            assert_eq!(act_policy_camera(p, 2, &mut cam), ACT_ERR_INVALID_ARGUMENT);
            assert_eq!(act_policy_step(core::ptr::null_mut(), qpos.as_ptr(), 14, views.as_ptr(), 2, action.as_mut_ptr(), 14), ACT_ERR_NULL_POINTER);
            let _ = act_policy_last_error(p);
            let _ = act_last_error();
        }
        let after = ALLOCATIONS.load(Ordering::SeqCst);
        assert_eq!(after - before, 0, "ensembling {ensembling}: {} allocations in the hot-path calls", after - before);
        assert!(msg(p).contains("NaN") || msg(p).contains("camera index 2"), "{}", msg(p));
        assert_eq!(unsafe { act_policy_free(p) }, ACT_OK);
        // The counter works: opening allocates.
        let p = open(&bytes, &act_options_default());
        assert!(ALLOCATIONS.load(Ordering::SeqCst) > after);
        assert_eq!(unsafe { act_policy_free(p) }, ACT_OK);
    }
}

#[test]
fn a_panic_is_caught_and_poisons_the_handle() {
    let _serial = SERIAL.lock().unwrap();
    let bytes = Tiny::new().checkpoint(1);
    let p = open(&bytes, &act_options_default());
    let s = unsafe {
        with_policy(p, |_, _, _| {
            panic!("boom from a test");
        })
    };
    assert_eq!(s, ACT_ERR_INTERNAL);
    assert!(msg(p).contains("boom from a test"), "{}", msg(p));
    // Every later call on the handle reports the poisoning instead of touching the policy.
    assert_eq!(unsafe { act_policy_reset(p) }, ACT_ERR_INTERNAL);
    assert!(msg(p).contains("unusable"), "{}", msg(p));
    assert_eq!(unsafe { act_policy_free(p) }, ACT_OK);
    // The same without a handle.
    assert_eq!(guard_global(|| panic!("global boom")), ACT_ERR_INTERNAL);
    let text = unsafe { CStr::from_ptr(act_last_error()) }.to_str().unwrap();
    assert!(text.contains("global boom"), "{text}");
}
