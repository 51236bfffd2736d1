//! Checkpoints built to hurt (issue #15): sizes that would abort the process, statistics that turn
//! every action into NaN, weights whose choice would follow hash order, camera names nobody can
//! use. Each one must become a named error at load, or at `predict`/`step` instead of NaN.
mod common;
use act_core::{Ensembling, Error, Options, Policy};
use common::{image, serialize, serialize_with_metadata, Tiny};
use safetensors::Dtype;

type Values = Vec<(String, Vec<usize>, Vec<f32>)>;

fn load(bytes: &[u8], options: &Options) -> Result<Policy, Error> {
    Policy::from_bytes(bytes, options)
}

fn set(values: &mut Values, name: &str, f: impl Fn(usize, f32) -> f32) {
    let (_, _, v) = values.iter_mut().find(|(n, _, _)| n == name).unwrap_or_else(|| panic!("no tensor {name}"));
    for (i, x) in v.iter_mut().enumerate() {
        *x = f(i, *x);
    }
}

fn budget_error(result: Result<Policy, Error>) -> (u64, u64, String) {
    match result {
        Err(Error::MemoryBudget { needed, budget, largest }) => (needed, budget, largest),
        other => panic!("expected MemoryBudget, got {other:?}"),
    }
}

#[test]
fn ensembling_history_of_a_huge_chunk_is_refused_before_allocating() {
    // chunk 10000 x chunk 10000 x action 16384 x 4 bytes = 6.55 TB: today's code aborts the process.
    let t = Tiny { chunk: 10000, action: 16384, ..Tiny::new() };
    let bytes = t.checkpoint(1);
    let options = Options { ensembling: Ensembling::Coefficient(0.01), ..Options::default() };
    let (needed, budget, largest) = budget_error(load(&bytes, &options));
    assert_eq!(budget, act_core::DEFAULT_MEMORY_BUDGET);
    assert!(needed >= 10000 * 10000 * 16384 * 4, "{needed}");
    for word in ["temporal-ensembling history", "chunk_size 10000", "action_dim 16384", "6.55 TB"] {
        assert!(largest.contains(word), "`{word}` missing from: {largest}");
    }
    let msg = load(&bytes, &options).unwrap_err().to_string();
    assert!(msg.contains("Options::memory_budget"), "{msg}");
}

#[test]
fn a_huge_camera_is_refused_naming_the_camera() {
    let t = Tiny { cameras: vec![("wrist", 8192, 8192)], ..Tiny::new() };
    let (_, _, largest) = budget_error(load(&t.checkpoint(1), &Options::default()));
    // conv1's output, 4096 x 4096 x 64 channels, four buffers of it: 17 GB.
    for word in ["backbone activations", "camera `wrist` 8192 x 8192", "4096 x 4096"] {
        assert!(largest.contains(word), "`{word}` missing from: {largest}");
    }
}

#[test]
fn attention_scratch_grows_with_threads_and_is_counted() {
    // 10000 decoder rows: 400 MB of scores per thread; 16 threads ask for 6.4 GB.
    let t = Tiny { chunk: 10000, ..Tiny::new() };
    let bytes = t.checkpoint(1);
    let (_, _, largest) = budget_error(load(&bytes, &Options { threads: 16, ..Options::default() }));
    assert!(largest.contains("attention scratch") && largest.contains("threads 16"), "{largest}");
}

#[test]
fn memory_bytes_matches_a_hand_count_and_the_budget_is_an_option() {
    let bytes = Tiny::new().checkpoint(1);
    let policy = load(&bytes, &Options::default()).unwrap();
    let held = policy.memory_bytes();
    // torchvision's ResNet-18: 11,689,512 parameters, minus fc (513,000) and BatchNorm (9,600),
    // leaves 11,166,912 convolution weights, held in f32 (the channel counts need no padding).
    let conv = 11_166_912u64 * 4;
    assert!(held >= conv && held < conv + 2_000_000, "memory_bytes {held} vs convolution weights {conv}");
    // A budget below what it holds is refused; the error says how much it needs.
    let (needed, budget, _) = budget_error(load(&bytes, &Options { memory_budget: Some(held - 1), ..Options::default() }));
    assert!(needed >= held && budget == held - 1);
    assert!(load(&bytes, &Options { memory_budget: Some(needed), ..Options::default() }).is_ok());
}

#[test]
fn an_ensembling_coefficient_infinite_in_f32_is_a_config_error() {
    for coeff in ["1e39", "1e300"] {
        let t = Tiny::new();
        let config = t.config_json().replace(r#""temporal_ensemble_coeff": null"#, &format!(r#""temporal_ensemble_coeff": {coeff}"#));
        let bytes = serialize(&t.values(1), Some(&config), Dtype::F32);
        match load(&bytes, &Options::default()) {
            Err(Error::Config { field, .. }) => assert_eq!(field, "temporal_ensemble_coeff"),
            other => panic!("coefficient {coeff}: expected a config error, got {other:?}"),
        }
    }
}

fn bad_statistic(result: Result<Policy, Error>, name: &str, reason_word: &str) {
    match result {
        Err(Error::BadStatistic { name: n, reason }) => {
            assert_eq!(n, name);
            assert!(reason.contains(reason_word), "`{reason_word}` missing from: {reason}");
        }
        other => panic!("expected BadStatistic on {name}, got {other:?}"),
    }
}

#[test]
fn a_state_std_that_divides_by_almost_zero_is_refused() {
    let t = Tiny::new();
    let mut values = t.values(1);
    set(&mut values, "normalize_inputs.buffer_observation_state.std", |i, v| if i == 3 { 1e-45 } else { v });
    let bytes = serialize_with_metadata(&values, &[("config", &t.config_json()), ("std_eps", "0")]);
    bad_statistic(load(&bytes, &Options::default()), "observation.state.std", "std[3]");
    // LeRobot's constant dimension (std 0, its eps 1e-8) still loads.
    set(&mut values, "normalize_inputs.buffer_observation_state.std", |i, v| if i == 3 { 0.0 } else { v });
    assert!(load(&serialize_with_metadata(&values, &[("config", &t.config_json()), ("std_eps", "1e-8")]), &Options::default()).is_ok());
}

#[test]
fn negative_stds_and_zero_image_stds_are_refused() {
    let t = Tiny::new();
    let mut values = t.values(1);
    set(&mut values, "unnormalize_outputs.buffer_action.std", |i, v| if i == 2 { -0.5 } else { v });
    bad_statistic(load(&serialize(&values, Some(&t.config_json()), Dtype::F32), &Options::default()), "action.std", "negative");

    for (std, word) in [([0.2, 0.0, 0.2], "not positive"), ([0.2, -0.1, 0.2], "negative")] {
        let mut values = t.values(1);
        values.push(("normalize_inputs.buffer_observation_images_top.mean".into(), vec![3, 1, 1], vec![0.5, 0.5, 0.5]));
        values.push(("normalize_inputs.buffer_observation_images_top.std".into(), vec![3, 1, 1], std.to_vec()));
        bad_statistic(load(&serialize(&values, Some(&t.config_json()), Dtype::F32), &Options::default()), "observation.images.top.std", word);
    }
    // A finite mean so large that the folded shift mean / (std + eps) overflows.
    let mut values = t.values(1);
    values.push(("normalize_inputs.buffer_observation_images_top.mean".into(), vec![3, 1, 1], vec![0.5, 3e38, 0.5]));
    values.push(("normalize_inputs.buffer_observation_images_top.std".into(), vec![3, 1, 1], vec![0.2, 0.01, 0.2]));
    bad_statistic(load(&serialize(&values, Some(&t.config_json()), Dtype::F32), &Options::default()), "observation.images.top.mean", "channel 1");
}

#[test]
fn negative_batchnorm_variance_is_refused() {
    let t = Tiny::new();
    let mut values = t.values(1);
    set(&mut values, "model.backbone.layer2.0.bn1.running_var", |i, v| if i == 7 { -1.0 } else { v });
    bad_statistic(load(&serialize(&values, Some(&t.config_json()), Dtype::F32), &Options::default()), "model.backbone.layer2.0.bn1.running_var", "running_var[7]");
}

#[test]
fn an_epsilon_that_flattens_every_input_is_a_config_error() {
    let t = Tiny::new();
    for eps in ["1e30", "0.5", "-1e-8", "inf"] {
        match load(&serialize_with_metadata(&t.values(1), &[("config", &t.config_json()), ("std_eps", eps)]), &Options::default()) {
            Err(Error::Config { field, .. }) => assert_eq!(field, "std_eps"),
            other => panic!("std_eps {eps}: expected a config error, got {other:?}"),
        }
    }
}

#[test]
fn non_finite_actions_are_an_error_not_a_value() {
    // A finite action std so large that un-normalising overflows f32.
    let t = Tiny::new();
    let mut values = t.values(1);
    set(&mut values, "unnormalize_outputs.buffer_action.std", |_, _| 3e38);
    let bytes = serialize(&values, Some(&t.config_json()), Dtype::F32);
    let img = image(64, 64, 5);
    let qpos = vec![0.1f32; t.state];
    let mut policy = load(&bytes, &Options::default()).unwrap();
    let mut chunk = vec![0.0; t.chunk * t.action];
    assert!(matches!(policy.predict(&qpos, &[&img], &mut chunk), Err(Error::NonFiniteOutput { output: "actions", .. })));
    let mut action = vec![0.0; t.action];
    assert!(matches!(policy.step(&qpos, &[&img], &mut action), Err(Error::NonFiniteOutput { output: "action", .. })));
}

#[test]
fn a_finite_but_extreme_qpos_is_an_input_error_not_nan() {
    let t = Tiny::new();
    let mut values = t.values(1);
    // std 0.5: (FLT_MAX - mean) / 0.5 overflows f32 for every joint.
    set(&mut values, "normalize_inputs.buffer_observation_state.std", |_, _| 0.5);
    let bytes = serialize(&values, Some(&t.config_json()), Dtype::F32);
    let img = image(64, 64, 5);
    let qpos = vec![f32::MAX; t.state];
    for ensembling in [Ensembling::Disabled, Ensembling::Coefficient(0.01)] {
        let mut policy = load(&bytes, &Options { ensembling, ..Options::default() }).unwrap();
        let mut chunk = vec![0.0; t.chunk * t.action];
        match policy.predict(&qpos, &[&img], &mut chunk) {
            Err(Error::NonFiniteInput { input, index: 0 }) => assert!(input.starts_with("qpos (after normalisation"), "{input}"),
            other => panic!("expected NonFiniteInput, got {other:?}"),
        }
        let mut action = vec![0.0; t.action];
        assert!(matches!(policy.step(&qpos, &[&img], &mut action), Err(Error::NonFiniteInput { .. })));
        // The refused step left no trace: a normal step afterwards is finite.
        policy.step(&vec![0.1; t.state], &[&img], &mut action).unwrap();
        assert!(action.iter().all(|v| v.is_finite()));
    }
}

#[test]
fn two_names_for_one_weight_are_refused_naming_both() {
    let t = Tiny::new();
    let mut values = t.values(1);
    let head = values.iter().find(|(n, _, _)| n == "model.action_head.weight").unwrap().clone();
    values.push(("action_head.weight".into(), head.1, head.2.iter().map(|v| v * 2.0).collect()));
    let bytes = serialize(&values, Some(&t.config_json()), Dtype::F32);
    // The same error on every load (the header's order is a hash order).
    for _ in 0..5 {
        assert_eq!(
            load(&bytes, &Options::default()).unwrap_err(),
            Error::DuplicateTensor { first: "action_head.weight".into(), second: "model.action_head.weight".into() }
        );
    }
}

#[test]
fn duplicate_empty_and_control_character_camera_names_are_config_errors() {
    let t = Tiny::new();
    let cam = r#""observation.images.top": {"type": "VISUAL", "shape": [3, 64, 64]}"#;
    let cases = [
        (t.config_json().replace(cam, &format!("{cam}, {cam}")), "appears more than once"),
        (t.config_json().replace("observation.images.top", "observation.images."), "empty camera name"),
        (t.config_json().replace("observation.images.top", r"observation.images.to\u0000p"), "U+0000"),
        (t.config_json().replace("observation.images.top", r"observation.images.top\n"), "U+000A"),
    ];
    for (config, word) in cases {
        match load(&serialize(&t.values(1), Some(&config), Dtype::F32), &Options::default()) {
            Err(Error::Config { reason, .. }) => assert!(reason.contains(word), "`{word}` missing from: {reason}"),
            other => panic!("expected a config error with `{word}`, got {other:?}"),
        }
    }
}
