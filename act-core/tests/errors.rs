//! Every malformed input gets its own error, never a panic or a silent wrong answer.
mod common;
use act_core::{Error, Options, Policy};
use common::{image, serialize, Tiny};
use safetensors::Dtype;

fn load(bytes: &[u8]) -> Result<Policy, Error> {
    Policy::from_bytes(bytes, &Options::default())
}

#[test]
fn truncated_file_is_reported_as_truncated() {
    let bytes = Tiny::new().checkpoint(1);
    for cut in [0, 4, 7, 100, bytes.len() / 2, bytes.len() - 1] {
        match load(&bytes[..cut]) {
            Err(Error::Truncated { .. }) => {}
            other => panic!("cut at {cut}: expected Truncated, got {other:?}"),
        }
    }
}

#[test]
fn corrupt_header_is_reported_as_bad_header() {
    let mut bytes = Tiny::new().checkpoint(1);
    bytes[8] = b'X'; // the JSON header's opening brace
    assert!(matches!(load(&bytes), Err(Error::BadHeader { .. })), "{:?}", load(&bytes));
}

#[test]
fn missing_tensor_is_named() {
    let t = Tiny::new();
    let values: Vec<_> = t.values(1).into_iter().filter(|(n, _, _)| n != "model.decoder.norm.weight").collect();
    let bytes = serialize(&values, Some(&t.config_json()), Dtype::F32);
    assert_eq!(load(&bytes).unwrap_err(), Error::MissingTensor { name: "model.decoder.norm.weight".into() });
}

#[test]
fn wrong_shape_names_both_shapes() {
    let t = Tiny::new();
    let mut values = t.values(1);
    let head = values.iter_mut().find(|(n, _, _)| n == "model.action_head.weight").unwrap();
    head.1 = vec![14, 17];
    head.2 = vec![0.5; 14 * 17];
    let bytes = serialize(&values, Some(&t.config_json()), Dtype::F32);
    assert_eq!(
        load(&bytes).unwrap_err(),
        Error::ShapeMismatch { name: "model.action_head.weight".into(), expected: vec![14, 16], found: vec![14, 17] }
    );
}

#[test]
fn unsupported_dtype_is_named() {
    let t = Tiny::new();
    let values = t.values(1);
    // Same tensors, but the action head stored as F64.
    use safetensors::tensor::TensorView;
    let data: Vec<(String, Vec<usize>, Vec<u8>, Dtype)> = values
        .iter()
        .map(|(n, s, v)| {
            if n == "model.action_head.weight" {
                (n.clone(), s.clone(), v.iter().flat_map(|x| (*x as f64).to_le_bytes()).collect(), Dtype::F64)
            } else {
                (n.clone(), s.clone(), v.iter().flat_map(|x| x.to_le_bytes()).collect(), Dtype::F32)
            }
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = data.iter().map(|(n, s, b, d)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap())).collect();
    let meta = std::collections::HashMap::from([("config".to_string(), t.config_json())]);
    let bytes = safetensors::serialize(views, Some(meta)).unwrap();
    assert_eq!(load(&bytes).unwrap_err(), Error::UnsupportedDtype { name: "model.action_head.weight".into(), dtype: "F64".into() });
}

/// int8 weights (`act-train export --quantize int8`): the action head as I8 needs its per-row
/// scales `<name>_scale`, shaped [rows], finite; each fault is named.
#[test]
fn int8_weights_need_valid_scales() {
    use safetensors::tensor::TensorView;
    let t = Tiny::new();
    let head = "model.action_head.weight";
    let rows = t.values(1).iter().find(|(n, _, _)| n == head).unwrap().1[0];
    let level = |x: f32| (x * 100.0).clamp(-127.0, 127.0) as i8;
    let with_scale = |scale: Option<(Vec<usize>, Vec<f32>, Dtype)>| -> Vec<u8> {
        let mut data: Vec<(String, Vec<usize>, Vec<u8>, Dtype)> = t
            .values(1)
            .into_iter()
            .map(|(n, s, v)| {
                if n == head {
                    let q = v.iter().map(|&x| level(x) as u8).collect();
                    (n, s, q, Dtype::I8)
                } else {
                    (n, s, v.iter().flat_map(|x| x.to_le_bytes()).collect(), Dtype::F32)
                }
            })
            .collect();
        if let Some((shape, v, dtype)) = scale {
            let bytes = match dtype {
                Dtype::I8 => v.iter().map(|&x| x as i8 as u8).collect(),
                _ => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            };
            data.push((format!("{head}_scale"), shape, bytes, dtype));
        }
        let views: Vec<(String, TensorView<'_>)> = data.iter().map(|(n, s, b, d)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap())).collect();
        let meta = std::collections::HashMap::from([("config".to_string(), t.config_json()), ("format".to_string(), "act-rs".to_string())]);
        safetensors::serialize(views, Some(meta)).unwrap()
    };
    let err = load(&with_scale(None)).unwrap_err();
    assert!(matches!(&err, Error::UnsupportedDtype { name, .. } if name == head), "{err:?}");
    assert!(err.to_string().contains("model.action_head.weight_scale"), "{err}");
    assert_eq!(
        load(&with_scale(Some((vec![rows + 1], vec![0.01; rows + 1], Dtype::F32)))).unwrap_err(),
        Error::ShapeMismatch { name: format!("{head}_scale"), expected: vec![rows], found: vec![rows + 1] }
    );
    let mut nan = vec![0.01; rows];
    nan[3] = f32::NAN;
    assert_eq!(load(&with_scale(Some((vec![rows], nan, Dtype::F32)))).unwrap_err(), Error::NonFiniteWeight { name: format!("{head}_scale") });
    // int8 scales would need scales of their own.
    let err = load(&with_scale(Some((vec![rows], vec![1.0; rows], Dtype::I8)))).unwrap_err();
    assert!(matches!(&err, Error::UnsupportedDtype { name, .. } if name == &format!("{head}_scale")), "{err:?}");

    // Valid scales: the policy runs exactly as the f32 file holding q * scale (row r scaled by
    // 0.01 + r / 1000, multiplied in f32 as the format specifies).
    let scales: Vec<f32> = (0..rows).map(|r| 0.01 + r as f32 / 1000.0).collect();
    let mut int8_policy = load(&with_scale(Some((vec![rows], scales.clone(), Dtype::F32)))).unwrap();
    let mut values = t.values(1);
    let (_, shape, v) = values.iter_mut().find(|(n, _, _)| n == head).unwrap();
    let per_row = v.len() / shape[0];
    for (i, x) in v.iter_mut().enumerate() {
        *x = f32::from(level(*x)) * scales[i / per_row];
    }
    let mut f32_policy = load(&serialize(&values, Some(&t.config_json()), Dtype::F32)).unwrap();
    let (qpos, img) = (vec![0.1f32; 14], image(64, 64, 3));
    let (mut a, mut b) = (vec![0.0f32; t.chunk * 14], vec![1.0f32; t.chunk * 14]);
    int8_policy.predict(&qpos, &[img.as_slice()], &mut a).unwrap();
    f32_policy.predict(&qpos, &[img.as_slice()], &mut b).unwrap();
    assert_eq!(a, b, "an int8 file differs from its f32 values");
    let mut c = vec![0.0f32; t.chunk * 14];
    load(&t.checkpoint(1)).unwrap().predict(&qpos, &[img.as_slice()], &mut c).unwrap();
    assert_ne!(a, c, "the int8 head was not rounded (the check is blind)");
}

#[test]
fn non_finite_weight_is_named() {
    let t = Tiny::new();
    let mut values = t.values(1);
    values.iter_mut().find(|(n, _, _)| n == "model.decoder_pos_embed.weight").unwrap().2[3] = f32::NAN;
    let bytes = serialize(&values, Some(&t.config_json()), Dtype::F32);
    assert_eq!(load(&bytes).unwrap_err(), Error::NonFiniteWeight { name: "model.decoder_pos_embed.weight".into() });
}

#[test]
fn config_problems_name_the_field() {
    let t = Tiny::new();
    let values = t.values(1);
    let no_config = serialize(&values, None, Dtype::F32);
    assert!(matches!(load(&no_config), Err(Error::Config { field, .. }) if field == "__metadata__.config"));
    for (from, to, field) in [
        ("\"n_heads\": 2", "\"n_heads\": 3", "n_heads"),
        ("\"pre_norm\": false", "\"pre_norm\": true", "pre_norm"),
        ("\"chunk_size\": 5", "\"chunk_size\": 0", "chunk_size"),
        ("\"vision_backbone\": \"resnet18\"", "\"vision_backbone\": \"resnet50\"", "vision_backbone"),
    ] {
        let cfg = t.config_json().replace(from, to);
        assert_ne!(cfg, t.config_json(), "replacement {from} did not apply");
        let bytes = serialize(&values, Some(&cfg), Dtype::F32);
        match load(&bytes) {
            Err(Error::Config { field: f, .. }) if f == field => {}
            other => panic!("{field}: expected a Config error, got {other:?}"),
        }
    }
}

#[test]
fn bad_inputs_are_rejected_before_computing() {
    let t = Tiny::new();
    let mut p = load(&t.checkpoint(1)).unwrap();
    let img = image(64, 64, 2);
    let qpos = [0.1f32; 14];
    let mut out = vec![0.0f32; 5 * 14];
    assert_eq!(p.predict(&qpos[..13], &[&img], &mut out).unwrap_err(), Error::InputLength { input: "qpos", expected: 14, found: 13 });
    assert!(matches!(p.predict(&qpos, &[&img[..100]], &mut out), Err(Error::InputLength { expected: 12288, found: 100, .. })));
    assert!(matches!(p.predict(&qpos, &[], &mut out), Err(Error::InputLength { expected: 1, found: 0, .. })));
    assert!(matches!(p.predict(&qpos, &[&img], &mut out[..10]), Err(Error::InputLength { input: "actions_out", .. })));
    let mut nan = qpos;
    nan[3] = f32::NAN;
    assert_eq!(p.predict(&nan, &[&img], &mut out).unwrap_err(), Error::NonFiniteInput { input: "qpos", index: 3 });
    nan[3] = f32::INFINITY;
    let mut action = [0.0f32; 14];
    assert_eq!(p.step(&nan, &[&img], &mut action).unwrap_err(), Error::NonFiniteInput { input: "qpos", index: 3 });
    // After the rejected calls the policy still works and its outputs are finite.
    p.predict(&qpos, &[&img], &mut out).unwrap();
    assert!(out.iter().all(|v| v.is_finite()));
}

#[cfg(feature = "std")]
#[test]
fn open_reports_missing_files_and_directories_without_model() {
    let dir = std::env::temp_dir().join(format!("act-core-errors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    assert!(matches!(Policy::open(dir.join("nope.safetensors"), &Options::default()), Err(Error::Io { .. })));
    // A directory with config.json but no model.safetensors.
    std::fs::write(dir.join("config.json"), Tiny::new().config_json()).unwrap();
    match Policy::open(&dir, &Options::default()) {
        Err(Error::Io { path, .. }) => assert!(path.ends_with("model.safetensors"), "{path}"),
        other => panic!("expected Io error, got {other:?}"),
    }
    std::fs::write(dir.join("model.safetensors"), b"abc").unwrap();
    assert!(matches!(Policy::open(&dir, &Options::default()), Err(Error::Truncated { .. })));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// For every instruction set this CPU runs, `storage` loads where `supported(isa)` and is
/// otherwise a config error on `weights` whose reason names the ISA and every word of `names`.
fn check_compute_path_refusal(storage: act_core::WeightStorage, supported: fn(act_core::Isa) -> bool, names: &[&str]) {
    let t = Tiny::new();
    let bytes = serialize(&t.values(1), Some(&t.config_json()), Dtype::F32);
    for isa in act_core::Isa::ALL.into_iter().filter(|i| i.is_supported()) {
        let opts = Options { weights: storage, isa: Some(isa), ..Options::default() };
        match Policy::from_bytes(&bytes, &opts) {
            Ok(_) => assert!(supported(isa), "{isa:?} loaded {storage:?} without the instructions for it"),
            Err(Error::Config { field, reason }) => {
                assert!(!supported(isa), "{isa:?} has the instructions for {storage:?} but refused: {reason}");
                assert_eq!(field, "weights");
                assert!(names.iter().all(|w| reason.contains(w)) && reason.contains(&format!("{isa:?}")), "{reason}");
            }
            Err(e) => panic!("{isa:?}: expected a Config error, got {e}"),
        }
    }
}

/// Without a bf16 kernel (Scalar, AVX2, AVX-512 without BF16, NEON without the BF16 extension) the
/// bf16 compute path is a config error naming what is missing; with one it loads.
#[test]
fn bf16_compute_without_a_bf16_kernel_is_a_config_error() {
    check_compute_path_refusal(act_core::WeightStorage::Bf16, act_core::Isa::supports_bf16, &["AVX-512 BF16", "Arm BF16"]);
}

/// Without FP16 arithmetic the fp16 compute path is a config error naming it; with it (NEON on
/// A76 and later) it loads.
#[test]
fn f16_compute_without_fp16_arithmetic_is_a_config_error() {
    check_compute_path_refusal(act_core::WeightStorage::F16Compute, act_core::Isa::supports_f16_compute, &["FP16 arithmetic"]);
}

/// Every instruction set this CPU cannot run (on x86: NEON; on aarch64: AVX2 and AVX-512) is a
/// load error naming it, never a kernel run on the wrong machine; every one it can run loads.
#[test]
fn an_instruction_set_this_cpu_lacks_is_a_config_error() {
    let t = Tiny::new();
    let bytes = serialize(&t.values(1), Some(&t.config_json()), Dtype::F32);
    let lacking: Vec<_> = act_core::Isa::ALL.into_iter().filter(|i| !i.is_supported()).collect();
    assert!(!lacking.is_empty(), "no CPU runs both x86 and ARM kernels");
    for isa in act_core::Isa::ALL {
        let result = Policy::from_bytes(&bytes, &Options { isa: Some(isa), ..Options::default() });
        match result {
            Ok(p) => {
                assert!(isa.is_supported(), "{isa:?} loaded on a CPU without it");
                assert_eq!(p.isa(), isa);
            }
            Err(Error::Config { field, reason }) => {
                assert!(!isa.is_supported(), "{isa:?} is supported but refused: {reason}");
                assert_eq!(field, "isa");
                assert!(reason.contains(&format!("{isa:?} is not supported")), "{reason}");
            }
            Err(e) => panic!("{isa:?}: unexpected error {e}"),
        }
    }
}

/// Without an int8 kernel (AVX-512 without VNNI, NEON) the int8 compute path is a config error
/// naming it; the portable scalar int8 kernel (the reference) loads everywhere.
#[test]
fn int8_compute_without_an_int8_kernel_is_a_config_error() {
    check_compute_path_refusal(act_core::WeightStorage::Int8, act_core::Isa::supports_int8, &["VNNI"]);
}

/// `accept` picks among the paths at least that precise, never a forced storage besides; the
/// choice is reported with the speeds it was made on.
#[test]
fn accepted_accuracy_bounds_the_chosen_path() {
    use act_core::{Accuracy, WeightStorage};
    let t = Tiny::new();
    let bytes = serialize(&t.values(1), Some(&t.config_json()), Dtype::F32);
    let both = Options { weights: WeightStorage::F16, accept: Accuracy::Bf16, ..Options::default() };
    match Policy::from_bytes(&bytes, &both) {
        Err(Error::Config { field, reason }) => assert!(field == "accept" && reason.contains("either"), "{field}: {reason}"),
        other => panic!("accept with a forced storage: expected a Config error, got {other:?}"),
    }
    for isa in act_core::Isa::ALL.into_iter().filter(|i| i.is_supported()) {
        for (accept, allowed) in [
            (Accuracy::F32, &[WeightStorage::F32][..]),
            (Accuracy::Bf16, &[WeightStorage::F32, WeightStorage::Bf16][..]),
            (Accuracy::Int8, &[WeightStorage::F32, WeightStorage::Bf16, WeightStorage::Int8][..]),
        ] {
            let p = Policy::from_bytes(&bytes, &Options { accept, isa: Some(isa), ..Options::default() }).unwrap();
            let k = p.kernels();
            assert!(allowed.contains(&k.storage), "{isa:?} {accept:?} chose {:?}", k.storage);
            assert_eq!(k.isa, isa);
            // Only paths this ISA has are candidates (the scalar int8 kernel is a reference only).
            assert!(k.storage != WeightStorage::Bf16 || isa.supports_bf16());
            assert!(k.storage != WeightStorage::Int8 || (isa.supports_int8() && isa != act_core::Isa::Scalar), "{isa:?}: {}", k.note);
            if accept != Accuracy::F32 {
                assert!(k.note.contains("f32 1.00x"), "the note names the measured speeds: {}", k.note);
            }
        }
    }
}

/// `require_amx`: on an AMX CPU (as `/proc/cpuinfo` lists it) the bf16 / int8 paths load on the
/// tiles; elsewhere every way of asking fails naming why, never falling back or trapping.
#[test]
fn required_amx_runs_on_tiles_or_fails_naming_why() {
    use act_core::{Accuracy, WeightStorage};
    let t = Tiny::new();
    let bytes = serialize(&t.values(1), Some(&t.config_json()), Dtype::F32);
    let refused = |o: &Options| match Policy::from_bytes(&bytes, o) {
        Err(Error::Config { field, reason }) if field == "require_amx" => Some(reason),
        Err(e) => panic!("{o:?}: expected a require_amx error or a policy, got {e}"),
        Ok(_) => None,
    };
    let f32_path = refused(&Options { require_amx: true, ..Options::default() });
    assert!(f32_path.as_deref().is_some_and(|r| r.contains("bf16 and int8")), "f32 never runs on AMX: {f32_path:?}");
    let asks = [
        Options { require_amx: true, weights: WeightStorage::Bf16, ..Options::default() },
        Options { require_amx: true, weights: WeightStorage::Int8, ..Options::default() },
        Options { require_amx: true, accept: Accuracy::Bf16, ..Options::default() },
        Options { require_amx: true, accept: Accuracy::Int8, ..Options::default() },
    ];
    #[cfg(target_arch = "x86_64")]
    {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_has_amx = ["amx_tile", "amx_bf16", "amx_int8", "avx512_bf16", "avx512_vnni"].iter().all(|f| cpuinfo.split_whitespace().any(|w| w == *f));
        for o in &asks {
            match Policy::from_bytes(&bytes, o) {
                Ok(p) => {
                    let k = p.kernels();
                    assert!(cpu_has_amx, "{o:?} loaded on a CPU without AMX: {}", k.note);
                    // The note names the kernel that runs (`AMX tdpbf16ps` / `AMX tdpbusd`).
                    assert!(matches!(k.storage, WeightStorage::Bf16 | WeightStorage::Int8) && k.note.contains("AMX tdp"), "{o:?}: {:?} {}", k.storage, k.note);
                }
                Err(Error::Config { field, reason }) => {
                    assert_eq!(field, "require_amx", "{reason}");
                    // The CPU has it: only the OS can stand in the way. Without the flags in
                    // /proc/cpuinfo the CPU may still have it (Linux before 5.16 lists none).
                    assert!(reason.contains("the OS") || (!cpu_has_amx && reason.contains("this CPU lacks AMX")), "{reason}");
                }
                Err(e) => panic!("{o:?}: {e}"),
            }
        }
        // The AMX kernels run beside AVX-512's: a forced AVX2 is refused on every CPU that has AVX2.
        if act_core::Isa::Avx2.is_supported() {
            let r = refused(&Options { isa: Some(act_core::Isa::Avx2), ..asks[0] }).expect("AMX with isa Avx2 must be refused");
            assert!(r.contains("lacks AMX") || r.contains("not Avx2"), "{r}");
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    for o in &asks {
        let r = refused(o).expect("no AMX off x86_64");
        assert!(r.contains("only on x86_64"), "{r}");
    }
}
