//! Every form a LeRobot ACT checkpoint takes (issue #16), each against an independent expectation:
//! a normalisation is converted by hand into the MEAN_STD statistics that compute the same thing
//! (MIN_MAX: mean = (min + max) / 2, std = (max - min) / 2; IDENTITY: mean 0, std 1; eps folded
//! into std), and the actions must equal those of a plain checkpoint with those statistics (the
//! path the libtorch agreement suite checks). Checkpoints are written with the key names and JSON
//! LeRobot 0.6 writes (`processor/normalize_processor.py`, `processor/pipeline.py`).
mod common;
use act_core::{Ensembling, Error, Options, Policy};
use common::{image, rel_err, serialize, serialize_with_metadata, Tiny};
use safetensors::Dtype;
use std::path::PathBuf;

type Values = Vec<(String, Vec<usize>, Vec<f32>)>;

fn t1(name: &str, v: Vec<f32>) -> (String, Vec<usize>, Vec<f32>) {
    let n = v.len();
    (name.to_string(), vec![n], v)
}

fn img3(name: &str, v: [f32; 3]) -> (String, Vec<usize>, Vec<f32>) {
    (name.to_string(), vec![3, 1, 1], v.to_vec())
}

/// The model weights of `t` (no statistics).
fn weights(t: &Tiny) -> Values {
    t.values(3).into_iter().filter(|(n, _, _)| n.starts_with("model.")).collect()
}

fn ramp(n: usize, a: f32, b: f32) -> Vec<f32> {
    (0..n).map(|i| a + b * i as f32).collect()
}

/// The reference: a single-file checkpoint, MEAN_STD everywhere, eps 0, legacy buffers.
fn reference(t: &Tiny, config: &str, state: (&[f32], &[f32]), action: (&[f32], &[f32]), cams: &[(&str, [f32; 3], [f32; 3])]) -> Vec<u8> {
    let mut v = weights(t);
    v.push(t1("normalize_inputs.buffer_observation_state.mean", state.0.to_vec()));
    v.push(t1("normalize_inputs.buffer_observation_state.std", state.1.to_vec()));
    v.push(t1("unnormalize_outputs.buffer_action.mean", action.0.to_vec()));
    v.push(t1("unnormalize_outputs.buffer_action.std", action.1.to_vec()));
    for (cam, mean, std) in cams {
        v.push(img3(&format!("normalize_inputs.buffer_observation_images_{cam}.mean"), *mean));
        v.push(img3(&format!("normalize_inputs.buffer_observation_images_{cam}.std"), *std));
    }
    serialize_with_metadata(&v, &[("config", config), ("std_eps", "0")])
}

/// A LeRobot directory: config.json, model.safetensors (weights + `legacy`), and, when given, the
/// two processor state files and JSONs.
struct Dir {
    path: PathBuf,
}

impl Dir {
    fn new(name: &str, config: &str, model: &Values) -> Dir {
        let path = std::env::temp_dir().join(format!("act-core-lerobot-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        std::fs::write(path.join("config.json"), config).unwrap();
        std::fs::write(path.join("model.safetensors"), serialize(model, None, Dtype::F32)).unwrap();
        Dir { path }
    }

    fn file(self, name: &str, bytes: &[u8]) -> Dir {
        std::fs::write(self.path.join(name), bytes).unwrap();
        self
    }

    /// LeRobot 0.6's processor state files: the preprocessor holds every statistic, the
    /// postprocessor the action's.
    fn processors(self, pre: &Values, post: &Values) -> Dir {
        self.file("policy_preprocessor_step_3_normalizer_processor.safetensors", &serialize(pre, None, Dtype::F32))
            .file("policy_postprocessor_step_0_unnormalizer_processor.safetensors", &serialize(post, None, Dtype::F32))
    }

    fn open(&self, options: &Options) -> Result<Policy, Error> {
        Policy::open(&self.path, options)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// `policy_preprocessor.json` as LeRobot's pipeline writes it (normaliser at step 3).
fn preprocessor_json(eps: f64, norm_map: &str) -> String {
    format!(
        r#"{{"name": "policy_preprocessor", "steps": [
  {{"registry_name": "rename_observations_processor", "config": {{"rename_map": {{}}}}}},
  {{"registry_name": "to_batch_processor", "config": {{}}}},
  {{"registry_name": "device_processor", "config": {{"device": "cpu", "float_dtype": null}}}},
  {{"registry_name": "normalizer_processor", "config": {{"eps": {eps:e}, "features": {{}}, "norm_map": {norm_map}}},
   "state_file": "policy_preprocessor_step_3_normalizer_processor.safetensors"}}]}}"#
    )
}

fn with_mapping(t: &Tiny, mapping: &str) -> String {
    t.config_json().replace(r#""use_vae": true"#, &format!(r#""use_vae": true, "normalization_mapping": {mapping}"#))
}

/// Actions of `predict` on fixed inputs (qpos spread around the statistics, one image per camera).
fn actions(p: &mut Policy) -> Vec<f32> {
    let c = p.config().clone();
    let qpos: Vec<f32> = (0..c.state_dim).map(|i| 0.3 * (i as f32 * 0.7).sin() - 0.2).collect();
    let imgs: Vec<Vec<u8>> = c.cameras.iter().enumerate().map(|(k, cam)| image(cam.height, cam.width, 11 + k as u64)).collect();
    let views: Vec<&[u8]> = imgs.iter().map(Vec::as_slice).collect();
    let mut out = vec![0.0; c.chunk_size * c.action_dim];
    p.predict(&qpos, &views, &mut out).unwrap();
    out
}

fn assert_same(got: &[f32], want: &[f32], what: &str) {
    let e = rel_err(got, want);
    assert!(e < 1e-5, "{what}: relative error {e:e}");
}

fn load_ref(bytes: &[u8]) -> Policy {
    Policy::from_bytes(bytes, &Options::default()).unwrap()
}

const IMG_MEAN: [f32; 3] = [0.45, 0.5, 0.4];
const IMG_STD: [f32; 3] = [0.2, 0.25, 0.3];

#[test]
fn min_max_state_and_action_match_the_equivalent_mean_std() {
    let t = Tiny::new();
    let (s_min, s_max) = (ramp(14, -1.0, 0.1), ramp(14, 0.5, 0.15));
    let (a_min, a_max) = (ramp(14, -2.0, 0.2), ramp(14, 1.0, 0.05));
    let mid = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x + y) / 2.0).collect::<Vec<f32>>();
    let half = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (y - x) / 2.0).collect::<Vec<f32>>();
    let want = actions(&mut load_ref(&reference(
        &t,
        &t.config_json(),
        (&mid(&s_min, &s_max), &half(&s_min, &s_max)),
        (&mid(&a_min, &a_max), &half(&a_min, &a_max)),
        &[("top", IMG_MEAN, IMG_STD)],
    )));
    let config = with_mapping(&t, r#"{"VISUAL": "MEAN_STD", "STATE": "MIN_MAX", "ACTION": "MIN_MAX"}"#);
    // The processor files hold every statistic LeRobot computes (mean, std, min, max); the mapping
    // must pick min and max.
    let decoy = ramp(14, 5.0, 1.0);
    let pre: Values = vec![
        t1("observation.state.min", s_min.clone()),
        t1("observation.state.max", s_max.clone()),
        t1("observation.state.mean", decoy.clone()),
        t1("observation.state.std", decoy.clone()),
        t1("action.min", a_min.clone()),
        t1("action.max", a_max.clone()),
        t1("action.mean", decoy.clone()),
        t1("action.std", decoy.clone()),
        img3("observation.images.top.mean", IMG_MEAN),
        img3("observation.images.top.std", IMG_STD),
    ];
    let post: Values = pre.iter().filter(|(n, _, _)| n.starts_with("action.")).cloned().collect();
    let dir = Dir::new("minmax", &config, &weights(&t)).processors(&pre, &post).file("policy_preprocessor.json", preprocessor_json(0.0, r#"{"VISUAL": "MEAN_STD", "STATE": "MIN_MAX", "ACTION": "MIN_MAX"}"#).as_bytes());
    assert_same(&actions(&mut dir.open(&Options::default()).unwrap()), &want, "MIN_MAX from the processor files");

    // The same from legacy buffers (`normalize_inputs.buffer_observation_state.min`, ...).
    let mut legacy = weights(&t);
    legacy.push(t1("normalize_inputs.buffer_observation_state.min", s_min.clone()));
    legacy.push(t1("normalize_inputs.buffer_observation_state.max", s_max.clone()));
    legacy.push(t1("unnormalize_outputs.buffer_action.min", a_min.clone()));
    legacy.push(t1("unnormalize_outputs.buffer_action.max", a_max.clone()));
    legacy.push(img3("normalize_inputs.buffer_observation_images_top.mean", IMG_MEAN));
    legacy.push(img3("normalize_inputs.buffer_observation_images_top.std", IMG_STD));
    let bytes = serialize_with_metadata(&legacy, &[("config", &config), ("std_eps", "0")]);
    assert_same(&actions(&mut load_ref(&bytes)), &want, "MIN_MAX from legacy buffers");

    // An unknown or unsupported mode is a config error naming it.
    for (mode, word) in [("ROBUST", "unknown normalization mode `ROBUST`"), ("QUANTILES", "QUANTILES is not supported")] {
        let config = with_mapping(&t, &format!(r#"{{"STATE": "{mode}"}}"#));
        match Policy::from_bytes(&serialize_with_metadata(&legacy, &[("config", &config)]), &Options::default()) {
            Err(Error::Config { reason, .. }) => assert!(reason.contains(word), "{reason}"),
            other => panic!("mode {mode}: expected a config error, got {other:?}"),
        }
    }
}

#[test]
fn identity_images_and_a_lerobot_directory_without_image_statistics_leave_pixels_in_0_1() {
    let t = Tiny::new();
    let (mean, std) = (ramp(14, -0.3, 0.05), ramp(14, 0.5, 0.05));
    let want = actions(&mut load_ref(&reference(&t, &t.config_json(), (&mean, &std), (&mean, &std), &[("top", [0.0; 3], [1.0; 3])])));
    let stats = |images: bool| {
        let mut v: Values = vec![
            t1("observation.state.mean", mean.clone()),
            t1("observation.state.std", std.clone()),
            t1("action.mean", mean.clone()),
            t1("action.std", std.clone()),
        ];
        if images {
            v.push(img3("observation.images.top.mean", IMG_MEAN));
            v.push(img3("observation.images.top.std", IMG_STD));
        }
        v
    };
    let eps0 = preprocessor_json(0.0, r#"{"VISUAL": "IDENTITY", "STATE": "MEAN_STD", "ACTION": "MEAN_STD"}"#);
    let identity = with_mapping(&t, r#"{"VISUAL": "IDENTITY", "STATE": "MEAN_STD", "ACTION": "MEAN_STD"}"#);
    let dir = Dir::new("identity", &identity, &weights(&t)).processors(&stats(true), &stats(false)).file("policy_preprocessor.json", eps0.as_bytes());
    assert_same(&actions(&mut dir.open(&Options::default()).unwrap()), &want, "VISUAL: IDENTITY");
    drop(dir);

    // MEAN_STD, but the processor file has no image statistics: LeRobot skips the images.
    let eps0 = preprocessor_json(0.0, r#"{"VISUAL": "MEAN_STD", "STATE": "MEAN_STD", "ACTION": "MEAN_STD"}"#);
    let dir = Dir::new("no-image-stats", &t.config_json(), &weights(&t)).processors(&stats(false), &stats(false)).file("policy_preprocessor.json", eps0.as_bytes());
    assert_same(&actions(&mut dir.open(&Options::default()).unwrap()), &want, "no image statistics");

    // act-rs's own single-file form without image statistics keeps ImageNet's (what act-train trains with).
    let imagenet = reference(&t, &t.config_json(), (&mean, &std), (&mean, &std), &[("top", [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])]);
    let mut own = weights(&t);
    own.extend(reference_stats(&mean, &std));
    let bytes = serialize_with_metadata(&own, &[("config", &t.config_json()), ("format", "act-rs"), ("std_eps", "0")]);
    assert_same(&actions(&mut load_ref(&bytes)), &actions(&mut load_ref(&imagenet)), "act-rs form keeps ImageNet");
}

fn reference_stats(mean: &[f32], std: &[f32]) -> Values {
    vec![
        t1("normalize_inputs.buffer_observation_state.mean", mean.to_vec()),
        t1("normalize_inputs.buffer_observation_state.std", std.to_vec()),
        t1("unnormalize_outputs.buffer_action.mean", mean.to_vec()),
        t1("unnormalize_outputs.buffer_action.std", std.to_vec()),
    ]
}

#[test]
fn processor_files_win_over_legacy_buffers_and_their_eps_is_honoured() {
    let t = Tiny::new();
    let (mean, std) = (ramp(14, -0.3, 0.05), ramp(14, 0.5, 0.05));
    let eps = 1e-3f32;
    let plus = |v: &[f32]| v.iter().map(|s| s + eps).collect::<Vec<f32>>();
    let img_std_eps = [IMG_STD[0] + eps, IMG_STD[1] + eps, IMG_STD[2] + eps];
    // Inputs divide by std + eps; actions multiply by std alone.
    let want = actions(&mut load_ref(&reference(&t, &t.config_json(), (&mean, &plus(&std)), (&mean, &std), &[("top", IMG_MEAN, img_std_eps)])));
    // model.safetensors still carries legacy buffers with other values: LeRobot 0.6 ignores them.
    let mut model = weights(&t);
    model.extend(reference_stats(&ramp(14, 3.0, 0.5), &ramp(14, 2.0, 0.1)));
    let pre: Values = vec![
        t1("observation.state.mean", mean.clone()),
        t1("observation.state.std", std.clone()),
        t1("action.mean", mean.clone()),
        t1("action.std", std.clone()),
        img3("observation.images.top.mean", IMG_MEAN),
        img3("observation.images.top.std", IMG_STD),
    ];
    let post: Values = pre[2..4].to_vec();
    let json = preprocessor_json(eps as f64, r#"{"VISUAL": "MEAN_STD", "STATE": "MEAN_STD", "ACTION": "MEAN_STD"}"#);
    let dir = Dir::new("precedence", &t.config_json(), &model).processors(&pre, &post).file("policy_preprocessor.json", json.as_bytes());
    let mut p = dir.open(&Options::default()).unwrap();
    assert_eq!(p.normalization().eps, eps);
    assert_same(&actions(&mut p), &want, "processor statistics and eps");
}

#[test]
fn migrated_camera_keys_resolve_to_the_same_camera() {
    let mut t = Tiny::new();
    t.cameras = vec![("cam_high", 64, 64)];
    let (mean, std) = (ramp(14, -0.3, 0.05), ramp(14, 0.5, 0.05));
    let want = actions(&mut load_ref(&reference(&t, &t.config_json(), (&mean, &std), (&mean, &std), &[("cam_high", IMG_MEAN, IMG_STD)])));
    let base: Values = vec![
        t1("observation.state.mean", mean.clone()),
        t1("observation.state.std", std.clone()),
        t1("action.mean", mean.clone()),
        t1("action.std", std.clone()),
    ];
    let eps0 = preprocessor_json(0.0, r#"{"VISUAL": "MEAN_STD", "STATE": "MEAN_STD", "ACTION": "MEAN_STD"}"#);
    // LeRobot's migration script writes `observation.images.cam.high` for camera cam_high.
    let mut pre = base.clone();
    pre.push(img3("observation.images.cam.high.mean", IMG_MEAN));
    pre.push(img3("observation.images.cam.high.std", IMG_STD));
    let dir = Dir::new("migrated", &t.config_json(), &weights(&t)).processors(&pre, &base[2..].to_vec()).file("policy_preprocessor.json", eps0.as_bytes());
    assert_same(&actions(&mut dir.open(&Options::default()).unwrap()), &want, "migrated spelling");
    drop(dir);
    // Both spellings: the config's own (`cam_high`) is used.
    pre.push(img3("observation.images.cam_high.mean", IMG_MEAN));
    pre.push(img3("observation.images.cam_high.std", IMG_STD));
    for v in pre.iter_mut().filter(|(n, _, _)| n.contains("cam.high")) {
        v.2 = vec![0.9, 0.1, 0.7];
    }
    let dir = Dir::new("both-spellings", &t.config_json(), &weights(&t)).processors(&pre, &base[2..].to_vec()).file("policy_preprocessor.json", eps0.as_bytes());
    assert_same(&actions(&mut dir.open(&Options::default()).unwrap()), &want, "exact spelling first");
}

#[test]
fn extra_input_features_are_ignored_and_listed() {
    let t = Tiny::new();
    let (mean, std) = (ramp(14, -0.3, 0.05), ramp(14, 0.5, 0.05));
    let want = actions(&mut load_ref(&reference(&t, &t.config_json(), (&mean, &std), (&mean, &std), &[("top", IMG_MEAN, IMG_STD)])));
    let config = t.config_json().replace(
        r#""observation.state": {"type": "STATE", "shape": [14]}"#,
        r#""observation.state": {"type": "STATE", "shape": [14]}, "observation.effort": {"type": "STATE", "shape": [14]}"#,
    );
    let mut p = load_ref(&reference(&t, &config, (&mean, &std), (&mean, &std), &[("top", IMG_MEAN, IMG_STD)]));
    assert_eq!(p.config().ignored_inputs, vec!["observation.effort".to_string()]);
    assert_same(&actions(&mut p), &want, "observation.effort ignored");
}

#[test]
fn the_single_image_key_is_a_camera_named_image() {
    let t = Tiny::new();
    let (mean, std) = (ramp(14, -0.3, 0.05), ramp(14, 0.5, 0.05));
    let want = actions(&mut load_ref(&reference(&t, &t.config_json(), (&mean, &std), (&mean, &std), &[("top", IMG_MEAN, IMG_STD)])));
    let config = t.config_json().replace("observation.images.top", "observation.image");
    let pre: Values = vec![
        t1("observation.state.mean", mean.clone()),
        t1("observation.state.std", std.clone()),
        t1("action.mean", mean.clone()),
        t1("action.std", std.clone()),
        img3("observation.image.mean", IMG_MEAN),
        img3("observation.image.std", IMG_STD),
    ];
    let eps0 = preprocessor_json(0.0, r#"{"VISUAL": "MEAN_STD", "STATE": "MEAN_STD", "ACTION": "MEAN_STD"}"#);
    let dir = Dir::new("single-image", &config, &weights(&t)).processors(&pre, &pre[2..4].to_vec()).file("policy_preprocessor.json", eps0.as_bytes());
    let mut p = dir.open(&Options::default()).unwrap();
    let cam = &p.config().cameras[0];
    assert_eq!((cam.key.as_str(), cam.name.as_str()), ("observation.image", "image"));
    assert_same(&actions(&mut p), &want, "observation.image");
}

#[test]
fn a_negative_ensembling_coefficient_weighs_newer_predictions_more() {
    let t = Tiny::new();
    let m = -0.3f32;
    let config = t.config_json().replace(r#""temporal_ensemble_coeff": null"#, &format!(r#""temporal_ensemble_coeff": {m}"#));
    let bytes = serialize(&t.values(4), Some(&config), Dtype::F32);
    let mut stepper = Policy::from_bytes(&bytes, &Options::default()).unwrap();
    assert_eq!(stepper.ensemble_coefficient(), Some(m));
    let mut chunker = Policy::from_bytes(&bytes, &Options { ensembling: Ensembling::Disabled, ..Options::default() }).unwrap();
    let (c, a) = (t.chunk, t.action);
    let mut chunks: Vec<Vec<f32>> = Vec::new();
    for step in 0..8usize {
        let qpos: Vec<f32> = (0..14).map(|i| 0.1 * ((i + step) as f32).cos()).collect();
        let img = image(64, 64, 20 + step as u64);
        let mut chunk = vec![0.0; c * a];
        chunker.predict(&qpos, &[&img], &mut chunk).unwrap();
        chunks.push(chunk);
        let mut action = vec![0.0; a];
        stepper.step(&qpos, &[&img], &mut action).unwrap();
        // By hand: predictions s covering this step, oldest first, weights exp(-m i).
        let oldest = (step + 1).saturating_sub(c);
        let (mut sum, mut total) = (vec![0.0f64; a], 0.0f64);
        for (i, s) in (oldest..=step).enumerate() {
            let w = (-(m as f64) * i as f64).exp();
            for j in 0..a {
                sum[j] += w * chunks[s][(step - s) * a + j] as f64;
            }
            total += w;
        }
        let want: Vec<f32> = sum.iter().map(|v| (v / total) as f32).collect();
        assert_same(&action, &want, &format!("step {step}"));
    }
    // So negative that exp(-m (chunk - 1)) overflows: a config error.
    let config = t.config_json().replace(r#""temporal_ensemble_coeff": null"#, r#""temporal_ensemble_coeff": -100.0"#);
    let e = Policy::from_bytes(&serialize(&t.values(4), Some(&config), Dtype::F32), &Options::default()).unwrap_err();
    assert!(matches!(&e, Error::Config { field, .. } if field == "temporal_ensemble_coeff"), "{e:?}");
}

#[test]
fn a_camera_size_set_at_load_runs_frames_of_that_size() {
    let t = Tiny::new();
    let mut sized = Tiny::new();
    sized.cameras = vec![("top", 96, 80)];
    let values = t.values(5);
    // Same weights, config saying 96 x 80.
    let want = actions(&mut load_ref(&serialize(&values, Some(&sized.config_json()), Dtype::F32)));
    let mut camera_sizes = [None; 16];
    camera_sizes[0] = Some((96, 80));
    let bytes = serialize(&values, Some(&t.config_json()), Dtype::F32);
    let mut p = Policy::from_bytes(&bytes, &Options { camera_sizes, ..Options::default() }).unwrap();
    assert_eq!((p.config().cameras[0].height, p.config().cameras[0].width), (96, 80));
    assert_same(&actions(&mut p), &want, "camera size from Options");
    // A frame of the config's size is now the wrong size.
    let mut out = vec![0.0; t.chunk * t.action];
    let e = p.predict(&[0.0; 14], &[&image(64, 64, 1)], &mut out).unwrap_err();
    assert!(matches!(e, Error::InputLength { expected: 23040, found: 12288, .. }), "{e:?}");
    camera_sizes[1] = Some((64, 64));
    assert!(matches!(Policy::from_bytes(&bytes, &Options { camera_sizes, ..Options::default() }), Err(Error::Config { .. })));
}

#[test]
fn the_environment_state_is_one_more_token_set_before_stepping() {
    let t = Tiny::new();
    let config = t.config_json().replace(
        r#""observation.state": {"type": "STATE", "shape": [14]}"#,
        r#""observation.state": {"type": "STATE", "shape": [14]}, "observation.environment_state": {"type": "ENV", "shape": [6]}"#,
    );
    let mut values = t.values(6);
    // LeRobot: encoder_env_state_input_proj [dim, env], and a third 1-D position row.
    values.retain(|(n, _, _)| n != "model.encoder_1d_feature_pos_embed.weight");
    values.push(("model.encoder_1d_feature_pos_embed.weight".into(), vec![3, 16], ramp(48, -0.5, 0.02)));
    values.push(("model.encoder_env_state_input_proj.weight".into(), vec![16, 6], ramp(96, -0.4, 0.01)));
    values.push(("model.encoder_env_state_input_proj.bias".into(), vec![16], ramp(16, 0.1, -0.01)));
    let mut p = Policy::from_bytes(&serialize(&values, Some(&config), Dtype::F32), &Options::default()).unwrap();
    assert_eq!((p.config().env_state_dim, p.config().n_tokens()), (6, 3 + 4));
    let mut out = vec![0.0; t.chunk * t.action];
    let img = image(64, 64, 1);
    let e = p.predict(&[0.0; 14], &[&img], &mut out).unwrap_err();
    assert!(matches!(e, Error::InputLength { input, .. } if input.contains("set_environment_state")), "{e:?}");
    assert!(matches!(p.set_environment_state(&[0.0; 5]), Err(Error::InputLength { expected: 6, found: 5, .. })));
    assert!(matches!(p.set_environment_state(&[0.0, f32::NAN, 0.0, 0.0, 0.0, 0.0]), Err(Error::NonFiniteInput { index: 1, .. })));
    p.set_environment_state(&[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]).unwrap();
    p.predict(&[0.0; 14], &[&img], &mut out).unwrap();
    let first = out.clone();
    p.set_environment_state(&[0.6, -0.2, 0.3, 0.9, -0.5, 0.0]).unwrap();
    p.predict(&[0.0; 14], &[&img], &mut out).unwrap();
    assert!(rel_err(&out, &first) > 1e-4, "the environment state does not reach the actions");
    // A model without one refuses it.
    let mut plain = Policy::from_bytes(&t.checkpoint(1), &Options::default()).unwrap();
    assert!(plain.set_environment_state(&[0.0; 6]).is_err());
}
