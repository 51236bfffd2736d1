//! The C ABI called from Rust through the built `libact_core.so` (dlopen), exactly as a C program
//! would: every entry point, every error path, and agreement with act-core's Rust API.
#![allow(non_camel_case_types, clippy::missing_transmute_annotations, clippy::type_complexity)]
mod c_lib;
mod common;

use c_lib::types::act_status::{self, *};
use c_lib::types::*;
use c_lib::*;
use common::{serialize, Tiny};

#[test]
fn version_status_strings_and_default_options() {
    assert_eq!(text(unsafe { (lib().version)() }), env!("CARGO_PKG_VERSION"));
    assert_eq!(text(unsafe { (lib().status_string)(0) }), "ok");
    for s in 1..=11 {
        let t = text(unsafe { (lib().status_string)(s) });
        assert!(!t.is_empty() && t != "unknown status", "{s}: {t}");
    }
    assert_eq!(text(unsafe { (lib().status_string)(-1) }), "unknown status");
    assert_eq!(text(unsafe { (lib().status_string)(1000) }), "unknown status");
    let d = defaults();
    assert_eq!((d.threads, d.ensembling, d.ensemble_coeff, d.isa, d.precision, d.realtime_priority, d.asynchronous), (0, 0, 0.0, 0, 0, 0, 0));
    assert_eq!(d.memory_budget, 0);
}

#[test]
fn info_and_cameras_describe_the_checkpoint() {
    let t = two_cameras();
    let p = open_bytes(&t.checkpoint(1), None).unwrap();
    let i = info(p);
    assert_eq!((i.state_dim, i.action_dim, i.chunk_size, i.n_action_steps, i.n_cameras), (14, 14, 5, 5, 2));
    // The tiny config has no temporal_ensemble_coeff: chunk execution.
    assert_eq!((i.ensembling, i.ensemble_coeff), (act_ensembling::ACT_ENSEMBLING_DISABLED as u32, 0.0));
    assert_ne!(i.isa, act_isa::ACT_ISA_AUTO as u32);
    for (k, &(name, h, w)) in t.cameras.iter().enumerate() {
        let mut c = unsafe { core::mem::zeroed::<act_camera>() };
        assert_eq!(unsafe { (lib().camera)(p, k, &mut c) }, ACT_OK);
        assert_eq!((text(c.name).as_str(), c.height, c.width), (name, h, w));
    }
    let mut c = unsafe { core::mem::zeroed::<act_camera>() };
    assert_eq!(unsafe { (lib().camera)(p, 2, &mut c) }, ACT_ERR_INVALID_ARGUMENT);
    assert!(handle_error(p).contains("camera index 2 is out of range"), "{}", handle_error(p));
    assert_eq!(unsafe { (lib().camera)(p, usize::MAX, &mut c) }, ACT_ERR_INVALID_ARGUMENT);
    assert_eq!(unsafe { (lib().camera)(p, 0, core::ptr::null_mut()) }, ACT_ERR_NULL_POINTER);
    assert_eq!(unsafe { (lib().info)(p, core::ptr::null_mut()) }, ACT_ERR_NULL_POINTER);
    assert!(handle_error(p).contains("NULL"));
    // A successful call clears the handle's message.
    info(p);
    assert_eq!(handle_error(p), "");
    free(p);
}

#[test]
fn predict_and_step_agree_with_the_rust_api() {
    let t = two_cameras();
    let bytes = t.checkpoint(7);
    for (mode, coeff, rust, threads) in [
        (0u32, 0.0f32, act::Ensembling::FromConfig, 0u32),
        (1, 0.0, act::Ensembling::Disabled, 0),
        (2, 0.05, act::Ensembling::Coefficient(0.05), 0),
        (2, 0.05, act::Ensembling::Coefficient(0.05), 2),
    ] {
        let opts = act_options { ensembling: mode, ensemble_coeff: coeff, threads, ..defaults() };
        let p = open_bytes(&bytes, Some(&opts)).unwrap();
        let rust_opts = act::Options { ensembling: rust, isa: None, threads: threads as usize, ..Default::default() };
        let mut r = act::Policy::from_bytes(&bytes, &rust_opts).unwrap();
        let i = info(p);
        if mode == 2 {
            assert_eq!((i.ensembling, i.ensemble_coeff), (act_ensembling::ACT_ENSEMBLING_COEFFICIENT as u32, 0.05));
        }
        let mut chunk = vec![0.0f32; 5 * 14];
        let mut want = vec![0.0f32; 5 * 14];
        for episode in 0..2 {
            for s in 0..8u64 {
                let inp = inputs(&t, s);
                let views: Vec<&[u8]> = inp.imgs.iter().map(|v| v.as_slice()).collect();
                assert_eq!(call(lib().predict, p, &inp, &mut chunk), ACT_OK, "{}", handle_error(p));
                r.predict(&inp.qpos, &views, &mut want).unwrap();
                assert_eq!(chunk, want, "mode {mode}: predict_chunk differs from Policy::predict");
                let mut a = [0.0f32; 14];
                let mut b = [0.0f32; 14];
                assert_eq!(call(lib().step, p, &inp, &mut a), ACT_OK, "{}", handle_error(p));
                r.step(&inp.qpos, &views, &mut b).unwrap();
                assert_eq!(a, b, "mode {mode} episode {episode} step {s}");
                assert!(a.iter().all(|v| v.is_finite()));
            }
            assert_eq!(unsafe { (lib().reset)(p) }, ACT_OK);
            r.reset();
        }
        free(p);
    }
}

#[test]
fn open_from_a_file_and_from_a_lerobot_directory() {
    let t = Tiny::new();
    let dir = common::scratch_dir("open");
    // Image statistics stated explicitly: without them a LeRobot directory leaves images
    // unnormalised (as LeRobot does) while act-rs's single file assumes ImageNet's.
    let mut values = t.values(3);
    for (stat, v) in [("mean", [0.485f32, 0.456, 0.406]), ("std", [0.229, 0.224, 0.225])] {
        values.push((format!("normalize_inputs.buffer_observation_images_top.{stat}"), vec![3, 1, 1], v.to_vec()));
    }
    let checkpoint = serialize(&values, Some(&t.config_json()), safetensors::Dtype::F32);
    let single = dir.join("tiny.safetensors");
    std::fs::write(&single, &checkpoint).unwrap();
    let lerobot = dir.join("lerobot");
    std::fs::create_dir(&lerobot).unwrap();
    std::fs::write(lerobot.join("config.json"), t.config_json()).unwrap();
    std::fs::write(lerobot.join("model.safetensors"), serialize(&values, None, safetensors::Dtype::F32)).unwrap();

    let a = open_path(&single, None).unwrap();
    let b = open_path(&lerobot, None).unwrap();
    let c = open_bytes(&checkpoint, None).unwrap();
    let inp = inputs(&t, 1);
    let mut outs = vec![vec![0.0f32; 5 * 14]; 3];
    for (p, out) in [a, b, c].into_iter().zip(outs.iter_mut()) {
        assert_eq!(call(lib().predict, p, &inp, out), ACT_OK, "{}", handle_error(p));
        free(p);
    }
    assert_eq!(outs[0], outs[1]);
    assert_eq!(outs[0], outs[2]);

    // Read errors name the path.
    let missing = dir.join("missing.safetensors");
    let (s, m) = open_path(&missing, None).unwrap_err();
    assert_eq!(s, ACT_ERR_IO);
    assert!(m.contains("missing.safetensors"), "{m}");
    let (s, m) = open_path(&dir, None).unwrap_err(); // a directory without config.json
    assert_eq!(s, ACT_ERR_IO, "{m}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn open_errors_are_statuses_with_messages() {
    let t = Tiny::new();
    let bytes = t.checkpoint(1);
    let mut p = core::ptr::null_mut();
    let path = c"x.safetensors";
    unsafe {
        assert_eq!((lib().open)(path.as_ptr(), core::ptr::null(), core::ptr::null_mut()), ACT_ERR_NULL_POINTER);
        assert!(last_error().contains("out"));
        assert_eq!((lib().open)(core::ptr::null(), core::ptr::null(), &mut p), ACT_ERR_NULL_POINTER);
        assert!(last_error().contains("path is NULL"));
        assert_eq!((lib().open_bytes)(core::ptr::null(), 10, core::ptr::null(), &mut p), ACT_ERR_NULL_POINTER);
        assert!(last_error().contains("data is NULL"));
        assert_eq!((lib().open_bytes)(bytes.as_ptr(), bytes.len(), core::ptr::null(), core::ptr::null_mut()), ACT_ERR_NULL_POINTER);
        assert_eq!((lib().open_bytes)(bytes.as_ptr(), usize::MAX, core::ptr::null(), &mut p), ACT_ERR_INVALID_ARGUMENT);
    }
    // Malformed checkpoints.
    for cut in [0, 7, 100, bytes.len() / 2, bytes.len() - 1] {
        let (s, m) = open_bytes(&bytes[..cut], None).unwrap_err();
        assert_eq!(s, ACT_ERR_CHECKPOINT, "cut {cut}: {m}");
        assert!(m.contains("truncated"), "{m}");
    }
    let mut corrupt = bytes.clone();
    corrupt[8] = b'X';
    assert_eq!(open_bytes(&corrupt, None).unwrap_err().0, ACT_ERR_CHECKPOINT);
    let values: Vec<_> = t.values(1).into_iter().filter(|(n, _, _)| n != "model.decoder.norm.weight").collect();
    let (s, m) = open_bytes(&serialize(&values, Some(&t.config_json()), safetensors::Dtype::F32), None).unwrap_err();
    assert_eq!(s, ACT_ERR_CHECKPOINT);
    assert!(m.contains("model.decoder.norm.weight"), "{m}");
    // Bad configuration.
    let bad = t.config_json().replace(r#""chunk_size": 5"#, r#""chunk_size": 0"#);
    let (s, m) = open_bytes(&serialize(&t.values(1), Some(&bad), safetensors::Dtype::F32), None).unwrap_err();
    assert_eq!(s, ACT_ERR_CONFIG);
    assert!(m.contains("chunk_size"), "{m}");
    let (s, m) = open_bytes(&serialize(&t.values(1), None, safetensors::Dtype::F32), None).unwrap_err();
    assert_eq!(s, ACT_ERR_CONFIG, "{m}");

    // Options.
    let d = defaults();
    let cases: Vec<(act_options, act_status, &str)> = vec![
        (act_options { ensembling: 3, ..d }, ACT_ERR_INVALID_ARGUMENT, "ensembling"),
        (act_options { ensembling: u32::MAX, ..d }, ACT_ERR_INVALID_ARGUMENT, "ensembling"),
        (act_options { ensembling: 2, ensemble_coeff: f32::NAN, ..d }, ACT_ERR_INVALID_ARGUMENT, "ensemble_coeff"),
        (act_options { ensembling: 2, ensemble_coeff: f32::INFINITY, ..d }, ACT_ERR_INVALID_ARGUMENT, "ensemble_coeff"),
        (act_options { isa: 5, ..d }, ACT_ERR_INVALID_ARGUMENT, "isa"),
        // An instruction set of the other architecture: known, but not this CPU's.
        #[cfg(target_arch = "x86_64")]
        (act_options { isa: act_isa::ACT_ISA_NEON as u32, ..d }, ACT_ERR_UNSUPPORTED, "Neon is not supported"),
        #[cfg(target_arch = "aarch64")]
        (act_options { isa: act_isa::ACT_ISA_AVX2 as u32, ..d }, ACT_ERR_UNSUPPORTED, "Avx2 is not supported"),
        (act_options { precision: 10, ..d }, ACT_ERR_UNSUPPORTED, "precision"),
        // The scalar kernels have no bf16 path.
        (act_options { precision: act_precision::ACT_PRECISION_BF16 as u32, isa: 1, ..d }, ACT_ERR_CONFIG, "bf16"),
        (act_options { threads: 1000, ..d }, ACT_ERR_INVALID_ARGUMENT, "threads"),
        (act_options { threads: 2, realtime_priority: 1000, ..d }, ACT_ERR_INVALID_ARGUMENT, "realtime_priority"),
        (act_options { threads: 2, realtime_priority: 100, ..d }, ACT_ERR_CONFIG, "realtime_priority"),
        (act_options { asynchronous: 3, ..d }, ACT_ERR_INVALID_ARGUMENT, "asynchronous"),
    ];
    for (o, status, word) in cases {
        let (s, m) = open_bytes(&bytes, Some(&o)).unwrap_err();
        assert_eq!(s, status, "{o:?}: {m}");
        assert!(m.contains(word), "{o:?}: {m}");
    }
    // Accepted options: threads, precision f32 and f16 weights, a coefficient of 0 (uniform
    // weights), every ISA this CPU has.
    for o in [
        act_options { threads: 4, ..d },
        act_options { precision: act_precision::ACT_PRECISION_F32 as u32, ..d },
        act_options { precision: act_precision::ACT_PRECISION_F16_WEIGHTS as u32, ..d },
        act_options { ensembling: 2, ensemble_coeff: 0.0, ..d },
    ] {
        free(open_bytes(&bytes, Some(&o)).unwrap());
    }
    // A real-time priority opens, or fails naming the refusal (act-core's tests check that the
    // OS really refuses it then).
    match open_bytes(&bytes, Some(&act_options { threads: 2, realtime_priority: 5, ..d })) {
        Ok(p) => free(p),
        Err((s, m)) => assert!(s == ACT_ERR_CONFIG && m.contains("realtime_priority") && m.contains("refused"), "{s:?}: {m}"),
    }
    // bf16 compute opens exactly where the CPU has AVX-512 BF16.
    let o = act_options { precision: act_precision::ACT_PRECISION_BF16 as u32, ..d };
    if act::Isa::detect().supports_bf16() {
        free(open_bytes(&bytes, Some(&o)).unwrap());
    } else {
        let (s, m) = open_bytes(&bytes, Some(&o)).unwrap_err();
        assert_eq!(s, ACT_ERR_CONFIG, "{m}");
    }
    // fp16 compute opens exactly where the CPU has Arm FP16 arithmetic.
    let o = act_options { precision: act_precision::ACT_PRECISION_F16 as u32, ..d };
    if act::Isa::detect().supports_f16_compute() {
        free(open_bytes(&bytes, Some(&o)).unwrap());
    } else {
        let (s, m) = open_bytes(&bytes, Some(&o)).unwrap_err();
        assert!(s == ACT_ERR_CONFIG && m.contains("FP16 arithmetic"), "{s:?}: {m}");
    }
    // int8 compute opens exactly where the CPU has an int8 kernel (AVX-512 VNNI, AVX2, the scalar
    // reference when forced), on each such instruction set; act_policy_kernels reports it.
    for isa in [act::Isa::Scalar, act::Isa::Avx2].into_iter().filter(|i| i.is_supported()) {
        let code = if isa == act::Isa::Scalar { 1 } else { 2 };
        let p = open_bytes(&bytes, Some(&act_options { precision: act_precision::ACT_PRECISION_INT8 as u32, isa: code, ..d })).unwrap();
        let (k, note) = kernels(p);
        assert_eq!((k.isa, k.precision), (code, act_precision::ACT_PRECISION_INT8 as u32), "{isa:?}: {note}");
        free(p);
    }
    let o = act_options { precision: act_precision::ACT_PRECISION_INT8 as u32, ..d };
    if act::Isa::detect().supports_int8() {
        let p = open_bytes(&bytes, Some(&o)).unwrap();
        let (k, note) = kernels(p);
        assert_eq!((k.isa, k.precision), (info(p).isa, act_precision::ACT_PRECISION_INT8 as u32), "{note}");
        free(p);
    } else {
        let (s, m) = open_bytes(&bytes, Some(&o)).unwrap_err();
        assert!(s == ACT_ERR_CONFIG && m.contains("VNNI"), "{s:?}: {m}");
    }
    // AMX_*: the tiles or a CONFIG error naming why (an AMX CPU is read from /proc/cpuinfo).
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_has_amx =
        cfg!(target_arch = "x86_64") && ["amx_tile", "amx_bf16", "amx_int8", "avx512_bf16", "avx512_vnni"].iter().all(|f| cpuinfo.split_whitespace().any(|w| w == *f));
    for (code, runs) in [(act_precision::ACT_PRECISION_AMX_BF16, act_precision::ACT_PRECISION_BF16), (act_precision::ACT_PRECISION_AMX_INT8, act_precision::ACT_PRECISION_INT8)] {
        match open_bytes(&bytes, Some(&act_options { precision: code as u32, ..d })) {
            Ok(p) => {
                let (k, note) = kernels(p);
                assert!(cpu_has_amx, "{code:?} opened without AMX in /proc/cpuinfo: {note}");
                assert!(k.precision == runs as u32 && note.contains("AMX tdp"), "{code:?}: {} {note}", k.precision);
                free(p);
            }
            Err((s, m)) => {
                assert_eq!(s, ACT_ERR_CONFIG, "{m}");
                // Only the OS stands in the way of a CPU with AMX (one without the flags in
                // /proc/cpuinfo may still have it: Linux before 5.16 lists none).
                let why = if !cfg!(target_arch = "x86_64") {
                    m.contains("only on x86_64")
                } else {
                    m.contains("the OS") || (!cpu_has_amx && m.contains("lacks AMX"))
                };
                assert!(m.contains("require_amx") && why, "{code:?}: {m}");
            }
        }
    }
    // FASTEST_*: a measured choice within the accepted precision, with its reason; the default
    // reports f32.
    for (code, allowed) in [
        (0u32, &[act_precision::ACT_PRECISION_F32][..]),
        (act_precision::ACT_PRECISION_FASTEST_BF16 as u32, &[act_precision::ACT_PRECISION_F32, act_precision::ACT_PRECISION_BF16][..]),
        (
            act_precision::ACT_PRECISION_FASTEST_INT8 as u32,
            &[act_precision::ACT_PRECISION_F32, act_precision::ACT_PRECISION_BF16, act_precision::ACT_PRECISION_INT8][..],
        ),
    ] {
        let p = open_bytes(&bytes, Some(&act_options { precision: code, ..d })).unwrap();
        let (k, note) = kernels(p);
        assert!(allowed.iter().any(|&a| a as u32 == k.precision), "precision {code}: runs {} ({note})", k.precision);
        if code != 0 {
            assert!(note.contains("measured") || note.contains("no timer"), "{note}");
        }
        // A short buffer gets a cut, terminated note; NULL out or a 0-length buffer is refused.
        let mut short = [0x55 as core::ffi::c_char; 8];
        assert_eq!(unsafe { (lib().kernels)(p, &mut act_kernels::default(), short.as_mut_ptr(), short.len()) }, ACT_OK);
        assert_eq!(short[7], 0);
        assert_eq!(unsafe { (lib().kernels)(p, std::ptr::null_mut(), std::ptr::null_mut(), 0) }, ACT_ERR_NULL_POINTER);
        assert_eq!(unsafe { (lib().kernels)(p, &mut act_kernels::default(), short.as_mut_ptr(), 0) }, ACT_ERR_INVALID_ARGUMENT);
        free(p);
    }
    assert_eq!(unsafe { (lib().kernels)(std::ptr::null(), &mut act_kernels::default(), std::ptr::null_mut(), 0) }, ACT_ERR_NULL_POINTER);
    for (code, isa) in [(1u32, act::Isa::Scalar), (2, act::Isa::Avx2), (3, act::Isa::Avx512), (4, act::Isa::Neon)] {
        let o = act_options { isa: code, ..d };
        if isa.is_supported() {
            let p = open_bytes(&bytes, Some(&o)).unwrap();
            assert_eq!(info(p).isa, code);
            free(p);
        } else {
            let (s, m) = open_bytes(&bytes, Some(&o)).unwrap_err();
            assert_eq!(s, ACT_ERR_UNSUPPORTED, "{m}");
        }
    }
}

#[test]
fn step_predict_and_reset_reject_bad_input_without_touching_the_output() {
    let t = two_cameras();
    let p = open_bytes(&t.checkpoint(2), Some(&act_options { ensembling: 2, ensemble_coeff: 0.01, ..defaults() })).unwrap();
    let good = inputs(&t, 0);
    let (qp, vp) = (good.qpos.as_ptr(), good.views.as_ptr());
    let mut out = [7.0f32; 14];
    let mut chunk = [7.0f32; 70];
    let op = out.as_mut_ptr();
    let l = lib();
    let null_f: *const f32 = core::ptr::null();
    let mut bad_views = good.views.clone();
    bad_views[1].height = 80;
    bad_views[1].width = 48;
    let mut null_data = good.views.clone();
    null_data[0].data = core::ptr::null();
    let mut nan = good.qpos.clone();
    nan[5] = f32::NAN;
    let mut inf = good.qpos.clone();
    inf[13] = f32::NEG_INFINITY;
    let bytes: Vec<u8> = vec![0; 64];
    let misaligned = unsafe { bytes.as_ptr().add(1) }.cast::<f32>();
    let cases: Vec<(act_status, &str, Box<dyn Fn(Input, *mut f32, usize) -> act_status>)> = vec![
        (ACT_ERR_NULL_POINTER, "qpos is NULL", Box::new(|f, o, n| unsafe { f(p, null_f, 14, vp, 2, o, n) })),
        (ACT_ERR_NULL_POINTER, "images is NULL", Box::new(|f, o, n| unsafe { f(p, qp, 14, core::ptr::null(), 2, o, n) })),
        (ACT_ERR_NULL_POINTER, "is NULL", Box::new(|f, _o, n| unsafe { f(p, qp, 14, vp, 2, core::ptr::null_mut(), n) })),
        (ACT_ERR_NULL_POINTER, "images[0].data is NULL", Box::new(|f, o, n| unsafe { f(p, qp, 14, null_data.as_ptr(), 2, o, n) })),
        (ACT_ERR_INPUT_SIZE, "qpos has 13 elements", Box::new(|f, o, n| unsafe { f(p, qp, 13, vp, 2, o, n) })),
        (ACT_ERR_INPUT_SIZE, "qpos has 0 elements", Box::new(|f, o, n| unsafe { f(p, qp, 0, vp, 2, o, n) })),
        (ACT_ERR_INPUT_SIZE, "1 images", Box::new(|f, o, n| unsafe { f(p, qp, 14, vp, 1, o, n) })),
        (ACT_ERR_INPUT_SIZE, "3 images", Box::new(|f, o, n| unsafe { f(p, qp, 14, vp, 3, o, n) })),
        (ACT_ERR_INPUT_SIZE, "camera `left_wrist` expects 48x80", Box::new(|f, o, n| unsafe { f(p, qp, 14, bad_views.as_ptr(), 2, o, n) })),
        (ACT_ERR_NON_FINITE_INPUT, "index 5", Box::new(|f, o, n| unsafe { f(p, nan.as_ptr(), 14, vp, 2, o, n) })),
        (ACT_ERR_NON_FINITE_INPUT, "index 13", Box::new(|f, o, n| unsafe { f(p, inf.as_ptr(), 14, vp, 2, o, n) })),
        (ACT_ERR_INVALID_ARGUMENT, "misaligned", Box::new(|f, o, n| unsafe { f(p, misaligned, 14, vp, 2, o, n) })),
        (ACT_ERR_INVALID_ARGUMENT, "overlaps qpos", Box::new(|f, o, n| unsafe { f(p, o, 14, vp, 2, o, n) })),
    ];
    for (k, (status, word, run)) in cases.iter().enumerate() {
        for (name, f) in [("step", l.step), ("predict_chunk", l.predict)] {
            out = [7.0; 14];
            chunk = [7.0; 70];
            let s = if name == "step" { run(f, out.as_mut_ptr(), 14) } else { run(f, chunk.as_mut_ptr(), 70) };
            assert_eq!(s, *status, "case {k} {name}: {}", handle_error(p));
            assert!(handle_error(p).contains(word), "case {k} {name}: {:?} lacks {word:?}", handle_error(p));
            assert_eq!(out, [7.0; 14], "case {k} {name}: output written on error");
            assert_eq!(chunk, [7.0; 70], "case {k} {name}: output written on error");
        }
    }
    // Output lengths: step wants action_dim, predict_chunk chunk_size * action_dim.
    assert_eq!(unsafe { (l.step)(p, qp, 14, vp, 2, chunk.as_mut_ptr(), 70) }, ACT_ERR_INPUT_SIZE);
    assert!(handle_error(p).contains("action has room for 70 floats, expected 14"), "{}", handle_error(p));
    assert_eq!(unsafe { (l.predict)(p, qp, 14, vp, 2, op, 14) }, ACT_ERR_INPUT_SIZE);
    assert!(handle_error(p).contains("actions has room for 14 floats, expected 70"), "{}", handle_error(p));
    assert_eq!(chunk, [7.0; 70]);
    // The handle still works after every error, and success clears the message.
    assert_eq!(call(l.step, p, &good, &mut out), ACT_OK);
    assert_eq!(handle_error(p), "");
    assert!(out.iter().all(|v| v.is_finite() && *v != 7.0));
    free(p);
}

#[test]
fn a_null_handle_gets_a_status_on_every_call() {
    // E.g. a controller that ignored a failed open.
    let mut p = core::ptr::dangling_mut::<act_policy>();
    let s = unsafe { (lib().open)(c"/nonexistent/ckpt.safetensors".as_ptr(), core::ptr::null(), &mut p) };
    assert_eq!(s, ACT_ERR_IO);
    assert!(p.is_null());
    let t = Tiny::new();
    let inp = inputs(&t, 0);
    let mut out = [0.0f32; 70];
    let n = core::ptr::null_mut();
    assert_eq!(call(lib().step, n, &inp, &mut out[..14]), ACT_ERR_NULL_POINTER);
    assert!(last_error().contains("policy handle is NULL"), "{}", last_error());
    assert_eq!(call(lib().predict, n, &inp, &mut out), ACT_ERR_NULL_POINTER);
    assert_eq!(unsafe { (lib().reset)(n) }, ACT_ERR_NULL_POINTER);
    let mut i = unsafe { core::mem::zeroed::<act_info>() };
    assert_eq!(unsafe { (lib().info)(n, &mut i) }, ACT_ERR_NULL_POINTER);
    let mut c = unsafe { core::mem::zeroed::<act_camera>() };
    assert_eq!(unsafe { (lib().camera)(n, 0, &mut c) }, ACT_ERR_NULL_POINTER);
    let mut st = unsafe { core::mem::zeroed::<act_async_status>() };
    assert_eq!(unsafe { (lib().async_status)(n, &mut st) }, ACT_ERR_NULL_POINTER);
    // act_policy_last_error(NULL) is the thread's last error; free(NULL) is a no-op.
    assert_eq!(handle_error(n), last_error());
    assert_eq!(unsafe { (lib().free)(n) }, ACT_OK);
}

#[test]
fn the_global_error_is_per_thread_and_handles_move_between_threads() {
    let t = Tiny::new();
    let bytes = t.checkpoint(4);
    assert_eq!(open_bytes(&bytes[..10], None).unwrap_err().0, ACT_ERR_CHECKPOINT);
    let here = last_error();
    std::thread::spawn(|| {
        assert_eq!(last_error(), "", "a new thread starts without an error");
        let o = act_options { ensembling: 9, ..defaults() };
        assert_eq!(open_bytes(&Tiny::new().checkpoint(1), Some(&o)).unwrap_err().0, ACT_ERR_INVALID_ARGUMENT);
    })
    .join()
    .unwrap();
    assert_eq!(last_error(), here, "another thread's failure must not change this thread's message");

    // One handle, used from one thread at a time.
    struct Send(*mut act_policy);
    unsafe impl std::marker::Send for Send {}
    let p = Send(open_bytes(&bytes, None).unwrap());
    let inp = inputs(&t, 2);
    let mut a = [0.0f32; 14];
    assert_eq!(call(lib().step, p.0, &inp, &mut a), ACT_OK);
    let p = std::thread::spawn(move || {
        let p = p;
        let inp = inputs(&Tiny::new(), 2);
        let mut b = [0.0f32; 14];
        assert_eq!(call(lib().step, p.0, &inp, &mut b), ACT_OK);
        p
    })
    .join()
    .unwrap();
    free(p.0);
    // Distinct handles run concurrently.
    let bytes = std::sync::Arc::new(bytes);
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let bytes = bytes.clone();
            std::thread::spawn(move || {
                let p = open_bytes(&bytes, None).unwrap();
                let inp = inputs(&Tiny::new(), 3);
                let mut c = vec![0.0f32; 70];
                assert_eq!(call(lib().predict, p, &inp, &mut c), ACT_OK);
                free(p);
                c
            })
        })
        .collect();
    let results: Vec<Vec<f32>> = threads.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(results[0], results[1]);
}

fn async_status(p: *const act_policy) -> act_async_status {
    let mut s = unsafe { core::mem::zeroed::<act_async_status>() };
    assert_eq!(unsafe { (lib().async_status)(p, &mut s) }, ACT_OK, "{}", handle_error(p));
    s
}

#[test]
fn an_asynchronous_policy_steps_from_its_inference_thread() {
    let t = two_cameras();
    let bytes = t.checkpoint(5);
    let l = lib();
    let mut r = act::Policy::from_bytes(&bytes, &act::Options { threads: 2, ..Default::default() }).unwrap();
    let mut chunk = vec![0.0f32; 5 * 14];
    for (asynchronous, ensembling) in [(1u32, 2u32), (1, 1), (2, 1)] {
        let o = act_options { asynchronous, ensembling, ensemble_coeff: 0.01, threads: 2, ..defaults() };
        let p = open_bytes(&bytes, Some(&o)).unwrap();
        assert_eq!(info(p).asynchronous, asynchronous);
        assert_eq!(async_status(p).newest_chunk_age, -1, "no chunk before the first step");
        let mut steps = 0;
        for episode in 0..2 {
            for s in 0..12u64 {
                let inp = inputs(&t, s);
                let mut a = [f32::NAN; 14];
                assert_eq!(call(l.step, p, &inp, &mut a), ACT_OK, "{}", handle_error(p));
                steps += 1;
                assert!(a.iter().all(|v| v.is_finite()));
                let st = async_status(p);
                assert!((0..=s as i64).contains(&st.newest_chunk_age), "step {s}: {st:?}");
                assert_eq!(st.steps, steps);
                assert!(st.chunks > episode && st.held_steps <= st.steps, "{st:?}");
                assert!(st.last_step_held <= 1);
                if s == 0 {
                    // The first step of an episode waits for the chunk of its own observation.
                    let views: Vec<&[u8]> = inp.imgs.iter().map(|v| v.as_slice()).collect();
                    r.predict(&inp.qpos, &views, &mut chunk).unwrap();
                    assert_eq!((st.newest_chunk_age, st.last_step_held, &a[..]), (0, 0, &chunk[..14]), "async {asynchronous} episode {episode}");
                }
            }
            assert_eq!(unsafe { (l.reset)(p) }, ACT_OK);
            assert_eq!(async_status(p).newest_chunk_age, -1, "reset forgets the chunks");
        }
        // predict_chunk would need the model, which runs on the inference thread.
        let mut out = vec![0.0f32; 5 * 14];
        assert_eq!(call(l.predict, p, &inputs(&t, 0), &mut out), ACT_ERR_INVALID_ARGUMENT);
        assert!(handle_error(p).contains("asynchronous"), "{}", handle_error(p));
        // Bad input: the named error, and the policy keeps stepping.
        let mut nan = inputs(&t, 1);
        nan.qpos[2] = f32::NAN;
        assert_eq!(call(l.step, p, &nan, &mut [0.0; 14]), ACT_ERR_NON_FINITE_INPUT);
        assert_eq!(call(l.step, p, &inputs(&t, 1), &mut [0.0; 14]), ACT_OK, "{}", handle_error(p));
        assert_eq!(unsafe { (l.async_status)(p, core::ptr::null_mut()) }, ACT_ERR_NULL_POINTER);
        free(p); // joins the inference thread
    }
    let p = open_bytes(&bytes, None).unwrap();
    let mut st = unsafe { core::mem::zeroed::<act_async_status>() };
    assert_eq!(unsafe { (l.async_status)(p, &mut st) }, ACT_ERR_INVALID_ARGUMENT);
    assert!(handle_error(p).contains("synchronous"), "{}", handle_error(p));
    free(p);
    assert_eq!(unsafe { (l.async_status)(core::ptr::null(), &mut st) }, ACT_ERR_NULL_POINTER);
}
