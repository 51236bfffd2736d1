//! act-core against libtorch on the same random weights and inputs: final actions AND the
//! intermediates (backbone features, encoder memory, decoder output), at every supported size,
//! with f32, f16 and bf16 weights, single-file and directory checkpoints, LeRobot and original
//! key names, one and two cameras.
//!
//! The default size (dim 512, ff 3200, 4 encoder layers, one 480x640 camera) takes about 10 s
//! and runs in the normal suite; set ACT_AGREEMENT_SKIP_DEFAULT=1 to leave it out.
use act_core::{Options, Policy, WeightStorage};
use act_train::export::{export_checkpoint, load_weights};
use act_train::model::{randomize_for_tests, Act};
use act_train::random_export::random_stats;
use act_train::reference::{observation, to_vec, torch_forward};
use act_train::export::Quantize;
use act_train::{ActConfig, CheckpointForm, ExportOptions, KeyNames, WeightDtype};
use std::path::PathBuf;
use tch::{nn::VarStore, Device};

fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    let num: f64 = a.iter().zip(b).map(|(&x, &y)| ((x - y) as f64).powi(2)).sum();
    let den: f64 = b.iter().map(|&y| (y as f64).powi(2)).sum();
    (num / den).sqrt()
}

struct Case {
    name: String,
    cfg: ActConfig,
    dtype: WeightDtype,
    /// How act-core keeps the weights: F16 storage is widened to f32 per panel block; Bf16 and
    /// Int8 are the compute paths (activations rounded too).
    storage: act_core::WeightStorage,
    form: CheckpointForm,
    names: KeyNames,
    processor_files: bool,
    /// Weights stored in int8 by the export (`--quantize int8`).
    quantize: Quantize,
}

fn tmp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("act-agreement-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Returns (action rel err vs libtorch f32, worst intermediate rel err, action rel err vs
/// libtorch running the exported, rounded weights).
fn run_case(case: &Case, seed: i64) -> (f64, f64, f64) {
    let cfg = &case.cfg;
    let vs = VarStore::new(Device::Cpu);
    let model = Act::new(&vs.root(), cfg).unwrap();
    randomize_for_tests(&vs, seed);
    let stats = random_stats(cfg, seed + 1);
    let path = tmp_path(&case.name.replace([' ', ','], "_"));
    let opts = ExportOptions { dtype: case.dtype, names: case.names, processor_files: case.processor_files, quantize: case.quantize };
    export_checkpoint(case.form, &path, &vs, cfg, &stats, &opts).unwrap();

    let options = Options { weights: case.storage, ..Default::default() };
    let mut policy = Policy::open(&path, &options).unwrap_or_else(|e| panic!("{}: act-core cannot load: {e}", case.name));
    let (chunk, a, dim) = (cfg.chunk_size as usize, cfg.action_dim() as usize, cfg.dim_model as usize);

    // libtorch with the weights exactly as act-core reads them (rounded for f16/bf16).
    let vs_rounded = VarStore::new(Device::Cpu);
    let model_rounded = Act::new(&vs_rounded.root(), cfg).unwrap();
    load_weights(&vs_rounded, &path).unwrap();

    let mut worst_action = 0.0f64;
    let mut worst_inter = 0.0f64;
    let mut worst_rounded = 0.0f64;
    let mut first_actions: Option<Vec<f32>> = None;
    for obs_seed in 0..2u64 {
        let obs = observation(cfg, seed as u64 * 10 + obs_seed);
        let (want, _) = torch_forward(&model, cfg, &stats, &obs);
        let (want_rounded, outs_rounded) = torch_forward(&model_rounded, cfg, &stats, &obs);
        let mut got = vec![0.0f32; chunk * a];
        let images: Vec<&[u8]> = obs.images.iter().map(|v| v.as_slice()).collect();
        policy.predict(&obs.qpos, &images, &mut got).unwrap();
        assert!(got.iter().all(|v| v.is_finite()), "{}: non-finite actions", case.name);

        worst_action = worst_action.max(rel_err(&got, &want));
        worst_rounded = worst_rounded.max(rel_err(&got, &want_rounded));
        // Intermediates against libtorch on the same (rounded) weights.
        let inter = policy.intermediates();
        for (c, (feat, (fh, fw))) in inter.backbone_features.iter().enumerate() {
            let torch_nhwc = outs_rounded.backbone_features[c].permute([0, 2, 3, 1]);
            assert_eq!(outs_rounded.backbone_features[c].size()[2..], [*fh as i64, *fw as i64]);
            worst_inter = worst_inter.max(rel_err(feat, &to_vec(&torch_nhwc)));
        }
        worst_inter = worst_inter.max(rel_err(inter.encoder_memory, &to_vec(&outs_rounded.encoder_memory)));
        worst_inter = worst_inter.max(rel_err(inter.decoder_output, &to_vec(&outs_rounded.decoder_output)));
        worst_inter = worst_inter.max(rel_err(inter.actions_normalized, &to_vec(&outs_rounded.actions)));
        assert_eq!(inter.encoder_memory.len(), (cfg_tokens(cfg)) * dim);

        // Different observations must give clearly different actions, or the comparison above
        // could pass with a backbone that does not matter.
        match &first_actions {
            None => first_actions = Some(got.clone()),
            Some(prev) => {
                let d = rel_err(&got, prev);
                assert!(d > 1e-3, "{}: two observations gave actions only {d:.2e} apart", case.name);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&path);
    let _ = std::fs::remove_file(&path);
    (worst_action, worst_inter, worst_rounded)
}

fn cfg_tokens(cfg: &ActConfig) -> usize {
    2 + cfg.cameras().iter().map(|(_, h, w)| {
        let (fh, fw) = act_core::Config::feature_size(*h as usize, *w as usize);
        fh * fw
    }).sum::<usize>()
}

/// int8 rounds weights per output channel (255 levels) and activations per row and k block (256
/// levels over their range) to 8 bits, through every layer of the model.
const INT8_BOUND: f64 = 5e-2;

fn check(cases: Vec<Case>) {
    let mut report = String::from("\n| case | dtype | rel err vs libtorch f32 | vs libtorch same weights | worst intermediate |\n|---|---|---|---|---|\n");
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        if case.storage == WeightStorage::Bf16 && !act_core::Isa::detect().supports_bf16() {
            report.push_str(&format!("| {} | bf16 compute | not run: no AVX-512 BF16 on this CPU | | |\n", case.name));
            continue;
        }
        if case.storage == WeightStorage::Int8 && !act_core::Isa::detect().supports_int8() {
            report.push_str(&format!("| {} | int8 compute | not run: no int8 kernel (AVX-512 VNNI or AVX2) on this CPU | | |\n", case.name));
            continue;
        }
        let (act, inter, rounded) = run_case(case, 100 + i as i64);
        let bound = match (case.dtype, case.storage) {
            // The file's int8 weights against libtorch on the trained f32 ones.
            _ if case.quantize == Quantize::Int8 => INT8_BOUND,
            (_, WeightStorage::Bf16 | WeightStorage::F16Compute) => 3e-2,
            (_, WeightStorage::Int8) => INT8_BOUND,
            (WeightDtype::F32, WeightStorage::F32) => 1e-5,
            _ => 1e-2,
        };
        // f16 storage re-rounds the BN-folded convolution weights, so it cannot match libtorch
        // on the checkpoint's weights to f32 precision; bound it like the f16 checkpoint itself.
        // bf16 compute also rounds every GEMM input: bf16 precision (8 bits) throughout.
        let same_weights_bound = match case.storage {
            WeightStorage::F32 => 1e-5,
            WeightStorage::F16 => 1e-2,
            WeightStorage::Bf16 | WeightStorage::F16Compute => 3e-2,
            WeightStorage::Int8 => INT8_BOUND,
        };
        let stored = match (case.quantize, case.dtype) {
            (Quantize::Int8, WeightDtype::F32) => "int8 file".to_string(),
            (Quantize::Int8, rest) => format!("int8 file, rest {rest:?}"),
            (Quantize::None, dtype) => format!("{dtype:?}"),
        };
        let dtype = match case.storage {
            WeightStorage::F32 => stored,
            WeightStorage::F16 => format!("{stored}, f16 storage"),
            WeightStorage::Bf16 => format!("{stored}, bf16 compute"),
            WeightStorage::F16Compute => format!("{stored}, fp16 compute"),
            WeightStorage::Int8 => format!("{stored}, int8 compute"),
        };
        report.push_str(&format!("| {} | {dtype} | {act:.2e} | {rounded:.2e} | {inter:.2e} |\n", case.name));
        if act > bound {
            failures.push(format!("{}: actions rel err {act:.2e} > {bound:.0e}", case.name));
        }
        if rounded > same_weights_bound {
            failures.push(format!("{}: rel err {rounded:.2e} against libtorch on the same rounded weights", case.name));
        }
        if inter > 5e-5 && case.storage == WeightStorage::F32 {
            failures.push(format!("{}: intermediate rel err {inter:.2e} > 5e-5", case.name));
        }
    }
    println!("{report}");
    assert!(failures.is_empty(), "{report}\n{}", failures.join("\n"));
}

fn case(name: &str, cfg: ActConfig, dtype: WeightDtype) -> Case {
    Case { name: name.into(), cfg, dtype, storage: WeightStorage::F32, form: CheckpointForm::Single, names: KeyNames::LeRobot, processor_files: false, quantize: Quantize::None }
}

#[test]
fn tiny_agrees_in_every_dtype_form_and_naming() {
    let two_cams = ActConfig::tiny().with_cameras(&[("top", 64, 64), ("left_wrist", 48, 96)]);
    let mut three_layers = ActConfig::tiny();
    three_layers.n_encoder_layers = 3;
    three_layers.n_decoder_layers = 2;
    let mut cases = vec![
        case("tiny", ActConfig::tiny(), WeightDtype::F32),
        case("tiny", ActConfig::tiny(), WeightDtype::F16),
        case("tiny", ActConfig::tiny(), WeightDtype::BF16),
        case("tiny 2 cameras", two_cams.clone(), WeightDtype::F32),
        case("tiny 2 cameras", two_cams, WeightDtype::BF16),
        case("tiny 3 enc + 2 dec layers", three_layers, WeightDtype::F32),
    ];
    cases.push(Case { storage: WeightStorage::F16, ..case("tiny", ActConfig::tiny(), WeightDtype::F16) });
    cases.push(Case { storage: WeightStorage::Bf16, ..case("tiny", ActConfig::tiny(), WeightDtype::F32) });
    cases.push(Case { storage: WeightStorage::Int8, ..case("tiny", ActConfig::tiny(), WeightDtype::F32) });
    cases.push(Case { quantize: Quantize::Int8, ..case("tiny", ActConfig::tiny(), WeightDtype::F32) });
    cases.push(Case { quantize: Quantize::Int8, storage: WeightStorage::Int8, ..case("tiny", ActConfig::tiny(), WeightDtype::F32) });
    cases.push(Case { quantize: Quantize::Int8, names: KeyNames::Original { model_prefix: true, include_unused: true }, ..case("tiny original ACT names", ActConfig::tiny(), WeightDtype::BF16) });
    cases.push(Case { form: CheckpointForm::Dir, ..case("tiny dir form", ActConfig::tiny(), WeightDtype::F32) });
    cases.push(Case { form: CheckpointForm::Dir, processor_files: true, ..case("tiny dir form, processor stats", ActConfig::tiny(), WeightDtype::F32) });
    cases.push(Case {
        names: KeyNames::Original { model_prefix: true, include_unused: true },
        ..case("tiny original ACT names", ActConfig::tiny(), WeightDtype::F32)
    });
    check(cases);
}

#[test]
fn small_agrees() {
    let s = ActConfig::small();
    check(vec![
        case("small", s.clone(), WeightDtype::F32),
        case("small", s.clone(), WeightDtype::F16),
        case("small", s.clone(), WeightDtype::BF16),
        Case { storage: WeightStorage::Bf16, ..case("small", s.clone(), WeightDtype::F32) },
        Case { storage: WeightStorage::Int8, ..case("small", s.clone(), WeightDtype::F32) },
        Case { quantize: Quantize::Int8, ..case("small", s.clone(), WeightDtype::F32) },
        Case { quantize: Quantize::Int8, storage: WeightStorage::Int8, ..case("small", s, WeightDtype::F32) },
    ]);
}

#[test]
fn default_size_agrees() {
    if std::env::var_os("ACT_AGREEMENT_SKIP_DEFAULT").is_some() {
        eprintln!("default size skipped by ACT_AGREEMENT_SKIP_DEFAULT");
        return;
    }
    let d = ActConfig::default_aloha();
    check(vec![
        case("default", d.clone(), WeightDtype::F32),
        case("default", d.clone(), WeightDtype::F16),
        Case { storage: WeightStorage::F16, ..case("default", d.clone(), WeightDtype::F16) },
        case("default", d.clone(), WeightDtype::BF16),
        Case { storage: WeightStorage::Bf16, ..case("default", d.clone(), WeightDtype::F32) },
        Case { storage: WeightStorage::Int8, ..case("default", d.clone(), WeightDtype::F32) },
        Case { quantize: Quantize::Int8, ..case("default", d.clone(), WeightDtype::F32) },
        Case { quantize: Quantize::Int8, storage: WeightStorage::Int8, ..case("default", d, WeightDtype::F32) },
    ]);
}


/// LeRobot's `observation.environment_state` token (issue #16): act-core against libtorch's ACT
/// with `encoder_env_state_input_proj` and three learned 1-D positions, the environment state
/// normalised with MIN_MAX (`"ENV": "MIN_MAX"` in normalization_mapping, statistics in the
/// processor-file key `observation.environment_state.min/max`, normalised here by hand).
#[test]
fn environment_state_matches_libtorch() {
    use act_train::config::Feature;
    use tch::Tensor;
    let mut cfg = ActConfig::tiny();
    cfg.input_features.insert("observation.environment_state", Feature::new("ENV", &[5]));
    cfg.normalization_mapping.insert("ENV".into(), "MIN_MAX".into());
    let vs = VarStore::new(Device::Cpu);
    let model = Act::new(&vs.root(), &cfg).unwrap();
    randomize_for_tests(&vs, 31);
    let stats = random_stats(&cfg, 32);
    let path = tmp_path("environment_state.safetensors");
    export_checkpoint(CheckpointForm::Single, &path, &vs, &cfg, &stats, &ExportOptions::default()).unwrap();
    // The environment statistics, appended to the exported file under LeRobot's processor key.
    let (env_min, env_max) = ([-1.0f32, 0.0, 2.0, -3.0, 0.5], [1.0f32, 4.0, 2.5, 3.0, 0.75]);
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut tensors: Vec<(String, safetensors::tensor::TensorView<'_>)> = st.tensors();
    let (min_b, max_b): (Vec<u8>, Vec<u8>) =
        (env_min.iter().flat_map(|v| v.to_le_bytes()).collect(), env_max.iter().flat_map(|v| v.to_le_bytes()).collect());
    for (stat, b) in [("min", &min_b), ("max", &max_b)] {
        tensors.push((format!("observation.environment_state.{stat}"), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![5], b).unwrap()));
    }
    let out = safetensors::serialize(tensors, meta.metadata().clone()).unwrap();
    std::fs::write(&path, out).unwrap();

    let mut policy = Policy::open(&path, &Options::default()).unwrap();
    assert_eq!(policy.config().env_state_dim, 5);
    let (chunk, a) = (cfg.chunk_size as usize, cfg.action_dim() as usize);
    let mut previous: Option<Vec<f32>> = None;
    for (k, env) in [[0.3f32, 1.0, 2.2, -1.0, 0.6], [-0.8, 3.5, 2.4, 2.0, 0.7]].iter().enumerate() {
        let obs = observation(&cfg, 7 + k as u64);
        // libtorch: the same normalisation as act_train::reference::torch_forward, plus the
        // environment state by LeRobot's MIN_MAX formula.
        let q: Vec<f32> = obs.qpos.iter().enumerate().map(|(i, &v)| (v - stats.state_mean[i]) / (stats.state_std[i] + stats.std_eps)).collect();
        let e: Vec<f32> = env.iter().enumerate().map(|(i, &v)| 2.0 * (v - env_min[i]) / (env_max[i] - env_min[i]) - 1.0).collect();
        let images: Vec<Tensor> = cfg
            .cameras()
            .iter()
            .zip(&obs.images)
            .map(|((_, h, w), img)| act_train::model::normalize_image_u8(&Tensor::from_slice(img).view([*h, *w, 3])))
            .collect();
        let outs = tch::no_grad(|| model.forward_inference_env(&Tensor::from_slice(&q).view([1, -1]), &Tensor::from_slice(&e).view([1, -1]), &images));
        let want: Vec<f32> = to_vec(&outs.actions)
            .chunks(a)
            .flat_map(|row| (0..a).map(|i| row[i] * stats.action_std[i] + stats.action_mean[i]).collect::<Vec<_>>())
            .collect();
        policy.set_environment_state(env).unwrap();
        let mut got = vec![0.0f32; chunk * a];
        let views: Vec<&[u8]> = obs.images.iter().map(|v| v.as_slice()).collect();
        policy.predict(&obs.qpos, &views, &mut got).unwrap();
        let err = rel_err(&got, &want);
        eprintln!("environment state, observation {k}: actions rel err {err:.2e}");
        assert!(err < 1e-5, "environment state: act-core vs libtorch {err:e}");
        assert_eq!(policy.intermediates().encoder_memory.len(), (cfg_tokens(&cfg) + 1) * cfg.dim_model as usize);
        if let Some(p) = &previous {
            assert!(rel_err(&got, p) > 1e-3, "the environment state does not change the actions");
        }
        previous = Some(got);
    }
    let _ = std::fs::remove_file(&path);
}
