//! Export round trips: both checkpoint forms (docs/CHECKPOINT.md) read back with the
//! safetensors crate (names, dtypes, shapes, values, metadata), the original-name file, and
//! load_weights.

mod common;
use common::vals;

use std::collections::BTreeSet;
use std::path::PathBuf;

use act_train::export::*;
use act_train::model::{Act, randomize_for_tests};
use act_train::{ActConfig, Stats};
use safetensors::tensor::{Dtype, SafeTensors};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("act-train-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn model(cfg: &ActConfig, seed: i64) -> VarStore {
    let vs = VarStore::new(Device::Cpu);
    Act::new(&vs.root(), cfg).unwrap();
    randomize_for_tests(&vs, seed);
    vs
}

fn stats() -> Stats {
    let s: Vec<f32> = (0..14).map(|i| 0.02 + i as f32 * 0.05).collect();
    let m: Vec<f32> = (0..14).map(|i| i as f32 * 0.1 - 0.7).collect();
    Stats {
        state_mean: m.clone(),
        state_std: s.clone(),
        action_mean: m.iter().map(|x| -x).collect(),
        action_std: s,
        std_eps: 0.0,
    }
}

fn f32s(data: &[u8], dtype: Dtype) -> Vec<f32> {
    match dtype {
        Dtype::F32 => data
            .chunks(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect(),
        Dtype::F16 => data
            .chunks(2)
            .map(|c| half::f16::from_le_bytes(c.try_into().unwrap()).to_f32())
            .collect(),
        Dtype::BF16 => data
            .chunks(2)
            .map(|c| half::bf16::from_le_bytes(c.try_into().unwrap()).to_f32())
            .collect(),
        d => panic!("unexpected dtype {d:?}"),
    }
}

const STAT_KEYS: [&str; 6] = [
    "normalize_inputs.buffer_observation_state.mean",
    "normalize_inputs.buffer_observation_state.std",
    "unnormalize_outputs.buffer_action.mean",
    "unnormalize_outputs.buffer_action.std",
    "normalize_targets.buffer_action.mean",
    "normalize_targets.buffer_action.std",
];

/// Checks a model.safetensors-like file: every model.* variable with its shape, the dtype and
/// values (within the dtype's rounding), the statistics in f32.
fn check_tensors(st: &SafeTensors, vs: &VarStore, dtype: Dtype, st_stats: &Stats, with_stats: bool) {
    let vars = vs.variables();
    let mut want: BTreeSet<String> = vars.keys().cloned().collect();
    if with_stats {
        want.extend(STAT_KEYS.iter().map(|s| s.to_string()));
    }
    let got: BTreeSet<String> = st.names().into_iter().map(String::from).collect();
    assert_eq!(got, want);
    let (rel, kind) = match dtype {
        Dtype::F32 => (0.0, Kind::Float),
        Dtype::F16 => (1.0 / 1024.0, Kind::Half),
        _ => (1.0 / 128.0, Kind::BFloat16),
    };
    for (name, var) in &vars {
        let v = st.tensor(name).unwrap();
        assert_eq!(v.dtype(), dtype, "{name}");
        let shape: Vec<i64> = v.shape().iter().map(|&d| d as i64).collect();
        assert_eq!(shape, var.size(), "{name}");
        // Decoded by libtorch (independent of the half crate used by the export).
        let got = Tensor::from_data_size(v.data(), &shape, kind).to_kind(Kind::Float);
        let var = var.detach();
        // within the dtype's relative rounding; f16 also flushes tiny values (1e-7 absolute)
        let ok = (&got - &var)
            .abs()
            .le_tensor(&(var.abs() * rel + 1e-7))
            .all()
            .int64_value(&[])
            == 1;
        assert!(ok, "{name}: values differ beyond {dtype:?} rounding");
        if dtype == Dtype::F32 {
            assert!(got.equal(&var), "{name}: f32 must be exact");
        }
    }
    if with_stats {
        let expect = [
            &st_stats.state_mean,
            &st_stats.state_std,
            &st_stats.action_mean,
            &st_stats.action_std,
            &st_stats.action_mean,
            &st_stats.action_std,
        ];
        for (k, e) in STAT_KEYS.iter().zip(expect) {
            let v = st.tensor(k).unwrap();
            assert_eq!(v.dtype(), Dtype::F32, "{k}");
            assert_eq!(v.shape(), &[14]);
            assert_eq!(&f32s(v.data(), Dtype::F32), e, "{k}");
        }
    }
}

#[test]
fn single_file_form_round_trip() {
    let cfg = ActConfig::tiny().with_cameras(&[("top", 64, 64), ("left_wrist", 32, 32)]);
    let vs = model(&cfg, 1);
    let dir = tmpdir("single");
    for (dtype, st_dtype) in [
        (WeightDtype::F32, Dtype::F32),
        (WeightDtype::F16, Dtype::F16),
        (WeightDtype::BF16, Dtype::BF16),
    ] {
        let path = dir.join(format!("m-{dtype}.safetensors"));
        write_single(&path, &vs, &cfg, &stats(), dtype).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        check_tensors(&st, &vs, st_dtype, &stats(), true);
        let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
        let meta = meta.metadata().clone().unwrap();
        assert_eq!(meta["format"], "act-rs");
        assert_eq!(meta["std_eps"], "0");
        let back = ActConfig::from_json(&meta["config"]).unwrap();
        assert_eq!(back, cfg);
        assert_eq!(
            back.cameras(),
            vec![("top".to_string(), 64, 64), ("left_wrist".to_string(), 32, 32)]
        );
        let raw: serde_json::Value = serde_json::from_str(&meta["config"]).unwrap();
        assert_eq!(raw["type"], "act");
        assert_eq!(raw["dim_model"], 32);
        assert_eq!(
            raw["input_features"]["observation.images.left_wrist"]["shape"],
            serde_json::json!([3, 32, 32])
        );
    }
    // Nothing but the three files (temporary files renamed away).
    let names: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn directory_form_round_trip() {
    let cfg = ActConfig::tiny();
    let vs = model(&cfg, 2);
    let dir = tmpdir("dir");
    let ck = dir.join("ckpt");
    let mut st8 = stats();
    st8.std_eps = 1e-8;
    write_dir(&ck, &vs, &cfg, &st8, WeightDtype::F32).unwrap();
    let cfg_text = std::fs::read_to_string(ck.join("config.json")).unwrap();
    assert_eq!(ActConfig::from_json(&cfg_text).unwrap(), cfg);
    let bytes = std::fs::read(ck.join("model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    check_tensors(&st, &vs, Dtype::F32, &st8, true);
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    let meta = meta.metadata().clone().unwrap();
    assert!(!meta.contains_key("config"));
    assert_eq!(meta["std_eps"].parse::<f32>().unwrap(), 1e-8);
    let files: BTreeSet<String> = std::fs::read_dir(&ck)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        files,
        BTreeSet::from(["config.json".to_string(), "model.safetensors".to_string()])
    );

    // Current-LeRobot variant: statistics in the processor files.
    let ck2 = dir.join("ckpt2");
    let opts = ExportOptions {
        dtype: WeightDtype::BF16,
        processor_files: true,
        ..Default::default()
    };
    export_checkpoint(CheckpointForm::Dir, &ck2, &vs, &cfg, &stats(), &opts).unwrap();
    let bytes = std::fs::read(ck2.join("model.safetensors")).unwrap();
    check_tensors(
        &SafeTensors::deserialize(&bytes).unwrap(),
        &vs,
        Dtype::BF16,
        &stats(),
        false,
    );
    let pre = std::fs::read(ck2.join(PREPROCESSOR_FILE)).unwrap();
    let pre = SafeTensors::deserialize(&pre).unwrap();
    let mut keys = pre.names();
    keys.sort();
    assert_eq!(
        keys,
        vec![
            "action.mean",
            "action.std",
            "observation.state.mean",
            "observation.state.std"
        ]
    );
    assert_eq!(
        f32s(pre.tensor("observation.state.std").unwrap().data(), Dtype::F32),
        stats().state_std
    );
    let post = std::fs::read(ck2.join(POSTPROCESSOR_FILE)).unwrap();
    let post = SafeTensors::deserialize(&post).unwrap();
    assert_eq!(
        f32s(post.tensor("action.mean").unwrap().data(), Dtype::F32),
        stats().action_mean
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn original_names_file() {
    let cfg = ActConfig::tiny();
    let vs = model(&cfg, 3);
    let dir = tmpdir("orig");
    let p = dir.join("orig.safetensors");
    write_original_names(&p, &vs, &cfg, &stats(), WeightDtype::F32, false, false).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let names: BTreeSet<&str> = st.names().into_iter().collect();
    for k in [
        "backbones.0.0.body.conv1.weight",
        "backbones.0.0.body.layer2.0.downsample.1.running_var",
        "transformer.encoder.layers.0.self_attn.in_proj_weight",
        "transformer.decoder.layers.0.multihead_attn.out_proj.bias",
        "transformer.decoder.norm.weight",
        "encoder.layers.0.linear1.weight",
        "query_embed.weight",
        "additional_pos_embed.weight",
        "input_proj.weight",
        "input_proj_robot_state.bias",
        "latent_out_proj.weight",
        "cls_embed.weight",
        "encoder_joint_proj.weight",
        "encoder_action_proj.bias",
        "latent_proj.weight",
        "pos_table",
        "action_head.weight",
    ] {
        assert!(names.contains(k), "missing {k}");
    }
    assert!(names.iter().all(|n| !n.starts_with("model.")));
    assert_eq!(names.len(), vs.variables().len() + 6);
    let q = st.tensor("query_embed.weight").unwrap();
    assert_eq!(
        f32s(q.data(), Dtype::F32),
        vals(&vs.variables()["model.decoder_pos_embed.weight"])
    );

    // With the model. prefix and the unused tensors of the original checkpoints.
    let p2 = dir.join("orig2.safetensors");
    write_original_names(&p2, &vs, &cfg, &stats(), WeightDtype::F32, true, true).unwrap();
    let bytes2 = std::fs::read(&p2).unwrap();
    let st2 = SafeTensors::deserialize(&bytes2).unwrap();
    let names2: BTreeSet<&str> = st2.names().into_iter().collect();
    assert!(names2.contains("model.is_pad_head.weight"));
    assert!(names2.contains("model.transformer.decoder.layers.6.norm3.bias"));
    assert!(!names2.contains("model.transformer.decoder.layers.7.norm3.bias"));
    assert!(names2.contains("model.backbones.0.0.body.layer4.1.bn2.weight"));

    // Both load back into a fresh model.
    for path in [&p, &p2] {
        let vs2 = model(&cfg, 99);
        let n = load_weights(&vs2, path).unwrap();
        assert_eq!(n, vs.variables().len());
        for (name, t) in vs.variables() {
            assert!(t.equal(&vs2.variables()[&name]), "{name}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn load_weights_round_trip_and_errors() {
    let cfg = ActConfig::tiny();
    let vs = model(&cfg, 4);
    let dir = tmpdir("load");
    write_dir(&dir.join("ck"), &vs, &cfg, &stats(), WeightDtype::F32).unwrap();
    write_single(&dir.join("s16.safetensors"), &vs, &cfg, &stats(), WeightDtype::F16).unwrap();

    let vs2 = model(&cfg, 5);
    assert_ne!(
        vals(&vs.variables()["model.action_head.weight"]),
        vals(&vs2.variables()["model.action_head.weight"])
    );
    load_weights(&vs2, &dir.join("ck")).unwrap();
    for (name, t) in vs.variables() {
        assert!(t.equal(&vs2.variables()[&name]), "{name}");
        assert_eq!(t.requires_grad(), vs2.variables()[&name].requires_grad());
    }
    let vs3 = model(&cfg, 6);
    load_weights(&vs3, &dir.join("s16.safetensors")).unwrap();
    for (name, t) in vs.variables() {
        let b = vs3.variables()[&name].detach();
        let a = t.detach();
        let ok = (&a - &b)
            .abs()
            .le_tensor(&(a.abs() / 1024.0 + 1e-7))
            .all()
            .int64_value(&[])
            == 1;
        assert!(ok, "{name}");
    }

    // A bigger model does not fit: shape mismatch, named.
    let big = ActConfig {
        dim_model: 64,
        ..ActConfig::tiny()
    };
    let vs4 = VarStore::new(Device::Cpu);
    Act::new(&vs4.root(), &big).unwrap();
    let err = format!("{:#}", load_weights(&vs4, &dir.join("ck")).unwrap_err());
    assert!(err.contains("shape") && err.contains("model.safetensors"), "{err}");
    // A model with more layers: missing tensors, named.
    let more = ActConfig {
        n_encoder_layers: 2,
        ..ActConfig::tiny()
    };
    let vs5 = VarStore::new(Device::Cpu);
    Act::new(&vs5.root(), &more).unwrap();
    let err = format!("{:#}", load_weights(&vs5, &dir.join("ck")).unwrap_err());
    assert!(
        err.contains("missing") && err.contains("model.encoder.layers.1."),
        "{err}"
    );
    // A missing file names the file.
    let err = format!("{:#}", load_weights(&vs5, &dir.join("nope.safetensors")).unwrap_err());
    assert!(err.contains("nope.safetensors"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();

    // Statistics are validated.
    let mut bad = stats();
    bad.state_std.pop();
    assert!(
        write_single(
            &std::env::temp_dir().join("never.safetensors"),
            &vs,
            &cfg,
            &bad,
            WeightDtype::F32
        )
        .is_err()
    );
}

/// `--quantize int8`: the layers act-core runs in int8 (an independent count from the model's
/// structure) are I8 with F32 per-channel scales equal to libtorch's `amax / 127` and levels
/// `round(w / scale)`; everything else is the exact f32; load_weights reads the int8 values back.
#[test]
fn int8_export_is_symmetric_per_channel() {
    let cfg = ActConfig::tiny();
    let vs = model(&cfg, 7);
    let dir = tmpdir("int8");
    let (f32_path, int8_path) = (dir.join("f32.safetensors"), dir.join("int8.safetensors"));
    write_single(&f32_path, &vs, &cfg, &stats(), WeightDtype::F32).unwrap();
    let opts = ExportOptions { quantize: Quantize::Int8, ..Default::default() };
    export_checkpoint(CheckpointForm::Single, &int8_path, &vs, &cfg, &stats(), &opts).unwrap();
    let bytes = std::fs::read(&int8_path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();

    let mut n_int8 = 0;
    for (name, var) in vs.variables() {
        let v = st.tensor(&name).unwrap();
        let shape: Vec<i64> = v.shape().iter().map(|&d| d as i64).collect();
        assert_eq!(shape, var.size(), "{name}");
        let w = var.detach().to_kind(Kind::Float);
        if v.dtype() != Dtype::I8 {
            assert_eq!(v.dtype(), Dtype::F32, "{name}");
            assert!(st.tensor(&format!("{name}_scale")).is_err(), "{name}: a scale without int8");
            assert!(Tensor::from_data_size(v.data(), &shape, Kind::Float).equal(&w), "{name}: f32 must be exact");
            continue;
        }
        n_int8 += 1;
        let rows = shape[0];
        let flat = w.reshape([rows, -1]);
        let want_scale = flat.abs().amax([1].as_slice(), false) / 127.0;
        let scale = st.tensor(&format!("{name}_scale")).unwrap();
        assert_eq!((scale.dtype(), scale.shape()), (Dtype::F32, &[rows as usize][..]), "{name}");
        let got_scale = Tensor::from_data_size(scale.data(), &[rows], Kind::Float);
        assert!(got_scale.equal(&want_scale), "{name}: scales differ from amax / 127");
        let q = Tensor::from_data_size(v.data(), &shape, Kind::Int8).to_kind(Kind::Float).reshape([rows, -1]);
        let want_q = (&flat / want_scale.unsqueeze(1)).round();
        assert!(q.equal(&want_q), "{name}: levels differ from round(w / scale)");
        assert!(q.abs().max().double_value(&[]) <= 127.0, "{name}: level beyond 127");
        // Each value within half a step of the weight.
        let err = (&q * got_scale.unsqueeze(1) - &flat).abs() - got_scale.unsqueeze(1) * 0.5;
        assert!(err.max().double_value(&[]) <= 1e-6, "{name}: dequantised value off by more than half a step");
    }
    // Backbone: 8 basic blocks x 2 convolutions + 3 downsample convolutions; the image
    // projection; per encoder layer 4 linear maps (in_proj, out_proj, linear1, linear2), per
    // decoder layer 6 (two attentions); per VAE encoder layer 4.
    let want = 8 * 2 + 3 + 1 + 4 * cfg.n_encoder_layers + 6 * cfg.n_decoder_layers + 4 * cfg.n_vae_encoder_layers;
    assert_eq!(n_int8, want as usize, "int8 tensors");
    let (f32_len, int8_len) = (std::fs::metadata(&f32_path).unwrap().len(), bytes.len() as u64);
    assert!(int8_len * 3 < f32_len, "int8 file {int8_len} bytes against f32 {f32_len}");

    // Read back by libtorch: q * scale.
    let back = model(&cfg, 8);
    load_weights(&back, &int8_path).unwrap();
    let w = vs.variables()["model.encoder.layers.0.linear1.weight"].detach();
    let got = back.variables()["model.encoder.layers.0.linear1.weight"].detach();
    let step = w.abs().amax([1].as_slice(), true) / 127.0;
    assert!(((&got - &w).abs() - &step * 0.5).max().double_value(&[]) <= 1e-6);
    assert!(!got.equal(&w), "read back unquantised");
    assert!(back.variables()["model.action_head.weight"].equal(&vs.variables()["model.action_head.weight"]));

    // An int8 tensor without its scales: named.
    let tensors: Vec<(String, safetensors::tensor::TensorView<'_>)> =
        st.tensors().into_iter().filter(|(n, _)| n != "model.encoder.layers.0.linear1.weight_scale").collect();
    std::fs::write(&int8_path, safetensors::serialize(tensors, None).unwrap()).unwrap();
    let err = format!("{:#}", load_weights(&back, &int8_path).unwrap_err());
    assert!(err.contains("model.encoder.layers.0.linear1.weight_scale"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
