//! LeRobot checkpoint forms through the C ABI (issue #16): camera sizes chosen at open, the
//! environment state setter, ignored inputs counted, negative ensembling coefficients.
mod c_lib;
mod common;

use c_lib::types::act_status::*;
use c_lib::types::*;
use c_lib::*;
use common::{serialize, Tiny};

#[test]
fn a_camera_size_set_at_open_is_what_the_policy_runs() {
    let t = Tiny::new();
    let mut opts = defaults();
    opts.camera_sizes[0] = [96, 80];
    let p = open_bytes(&t.checkpoint(1), Some(&opts)).unwrap();
    let mut c = unsafe { core::mem::zeroed::<act_camera>() };
    assert_eq!(unsafe { (lib().camera)(p, 0, &mut c) }, ACT_OK);
    assert_eq!((c.height, c.width), (96, 80));
    let mut sized = Tiny::new();
    sized.cameras = vec![("top", 96, 80)];
    let i = inputs(&sized, 2);
    let mut chunk = vec![0.0f32; t.chunk * t.action];
    assert_eq!(call(lib().predict, p, &i, &mut chunk), ACT_OK, "{}", handle_error(p));
    // The same weights with 96 x 80 in the config: the same actions.
    let q = open_bytes(&common::serialize(&t.values(1), Some(&sized.config_json()), safetensors::Dtype::F32), None).unwrap();
    let mut want = vec![0.0f32; t.chunk * t.action];
    assert_eq!(call(lib().predict, q, &i, &mut want), ACT_OK);
    assert_eq!(chunk, want);
    // A frame of the config's size is now the wrong size.
    assert_eq!(call(lib().predict, p, &inputs(&t, 2), &mut chunk), ACT_ERR_INPUT_SIZE);
    free(p);
    free(q);
    opts.camera_sizes[0] = [96, 0];
    assert_eq!(open_bytes(&t.checkpoint(1), Some(&opts)).unwrap_err().0, ACT_ERR_INVALID_ARGUMENT);
    opts.camera_sizes[0] = [16, 16];
    assert_eq!(open_bytes(&t.checkpoint(1), Some(&opts)).unwrap_err().0, ACT_ERR_CONFIG);
}

#[test]
fn the_environment_state_is_set_before_stepping() {
    let t = Tiny::new();
    let config = t.config_json().replace(
        r#""observation.state": {"type": "STATE", "shape": [14]}"#,
        r#""observation.state": {"type": "STATE", "shape": [14]}, "observation.environment_state": {"type": "ENV", "shape": [4]}, "observation.effort": {"type": "STATE", "shape": [14]}"#,
    );
    let mut values = t.values(2);
    values.retain(|(n, _, _)| n != "model.encoder_1d_feature_pos_embed.weight");
    values.push(("model.encoder_1d_feature_pos_embed.weight".into(), vec![3, 16], (0..48).map(|i| 0.01 * i as f32 - 0.2).collect()));
    values.push(("model.encoder_env_state_input_proj.weight".into(), vec![16, 4], (0..64).map(|i| 0.02 * i as f32 - 0.6).collect()));
    values.push(("model.encoder_env_state_input_proj.bias".into(), vec![16], vec![0.05; 16]));
    let p = open_bytes(&serialize(&values, Some(&config), safetensors::Dtype::F32), None).unwrap();
    let info = info(p);
    assert_eq!((info.env_state_dim, info.n_ignored_inputs), (4, 1));
    let i = inputs(&t, 1);
    let mut action = vec![0.0f32; t.action];
    assert_eq!(call(lib().step, p, &i, &mut action), ACT_ERR_INPUT_SIZE);
    assert!(handle_error(p).contains("set_environment_state"), "{}", handle_error(p));
    let env = [0.1f32, -0.2, 0.3, 0.4];
    assert_eq!(unsafe { (lib().set_env)(p, env.as_ptr(), 3) }, ACT_ERR_INPUT_SIZE);
    assert_eq!(unsafe { (lib().set_env)(p, core::ptr::null(), 4) }, ACT_ERR_NULL_POINTER);
    assert_eq!(unsafe { (lib().set_env)(p, [0.0, f32::NAN, 0.0, 0.0].as_ptr(), 4) }, ACT_ERR_NON_FINITE_INPUT);
    assert_eq!(unsafe { (lib().set_env)(p, env.as_ptr(), 4) }, ACT_OK);
    assert_eq!(call(lib().step, p, &i, &mut action), ACT_OK, "{}", handle_error(p));
    assert!(action.iter().all(|v| v.is_finite()));
    free(p);
    // A model without an environment state refuses one.
    let q = open_bytes(&t.checkpoint(1), None).unwrap();
    assert_eq!(unsafe { (lib().set_env)(q, env.as_ptr(), 4) }, ACT_ERR_INPUT_SIZE);
    free(q);
}

#[test]
fn a_negative_ensembling_coefficient_is_accepted() {
    let t = Tiny::new();
    let opts = act_options { ensembling: 2, ensemble_coeff: -0.5, ..defaults() };
    let p = open_bytes(&t.checkpoint(1), Some(&opts)).unwrap();
    assert_eq!(info(p).ensemble_coeff, -0.5);
    let mut action = vec![0.0f32; t.action];
    assert_eq!(call(lib().step, p, &inputs(&t, 1), &mut action), ACT_OK);
    free(p);
    // exp(100 * (chunk - 1)) overflows: a config error at open.
    let opts = act_options { ensembling: 2, ensemble_coeff: -100.0, ..defaults() };
    assert_eq!(open_bytes(&t.checkpoint(1), Some(&opts)).unwrap_err().0, ACT_ERR_CONFIG);

}
