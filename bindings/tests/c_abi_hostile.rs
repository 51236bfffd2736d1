//! Hostile checkpoints through the C ABI (issue #15): every one is a status with a message, never
//! an abort, a hang or NaN handed to the caller with ACT_OK.
#![cfg(unix)]
mod c_lib;
mod common;

use c_lib::types::act_status::*;
use c_lib::types::*;
use c_lib::*;
use common::{serialize, Tiny};

#[test]
fn a_config_past_the_memory_budget_is_out_of_memory_not_an_abort() {
    // chunk 10000 x chunk 10000 x action 16384 floats of ensembling history: 6.55 TB.
    let t = Tiny { chunk: 10000, action: 16384, ..Tiny::new() };
    let opts = act_options { ensembling: 2, ensemble_coeff: 0.01, ..defaults() };
    let (status, message) = open_bytes(&t.checkpoint(1), Some(&opts)).unwrap_err();
    assert_eq!(status, ACT_ERR_OUT_OF_MEMORY, "{message}");
    assert!(message.contains("temporal-ensembling history") && message.contains("chunk_size 10000"), "{message}");

    // The budget is an option; info reports what a policy holds, within it.
    let bytes = Tiny::new().checkpoint(1);
    let p = open_bytes(&bytes, None).unwrap();
    let held = info(p).memory_bytes;
    free(p);
    assert!(held > 11_166_912 * 4, "{held}: less than ResNet-18's convolution weights in f32");
    let tight = act_options { memory_budget: held / 2, ..defaults() };
    assert_eq!(open_bytes(&bytes, Some(&tight)).unwrap_err().0, ACT_ERR_OUT_OF_MEMORY);
}

#[test]
fn a_fifo_is_refused_by_name_not_waited_on() {
    let dir = common::scratch_dir("hostile-fifo");
    let fifo = dir.join("policy.safetensors");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(open_path(&fifo, None).map(|_| ()));
    });
    let (status, message) = rx.recv_timeout(std::time::Duration::from_secs(60)).expect("act_policy_open hangs on a FIFO").unwrap_err();
    assert_eq!(status, ACT_ERR_IO);
    assert!(message.contains("FIFO"), "{message}");
}

#[test]
fn non_finite_actions_are_a_status_and_never_written_as_ok() {
    let t = Tiny::new();
    let mut values = t.values(1);
    // A finite action std so large that un-normalising overflows f32.
    for (n, _, v) in values.iter_mut() {
        if n == "unnormalize_outputs.buffer_action.std" {
            v.iter_mut().for_each(|x| *x = 3e38);
        }
    }
    let p = open_bytes(&serialize(&values, Some(&t.config_json()), safetensors::Dtype::F32), None).unwrap();
    let i = inputs(&t, 3);
    let mut action = vec![0.0f32; t.action];
    assert_eq!(call(lib().step, p, &i, &mut action), ACT_ERR_NON_FINITE_OUTPUT);
    assert!(handle_error(p).contains("NaN or infinity"), "{}", handle_error(p));
    let mut chunk = vec![0.0f32; t.chunk * t.action];
    assert_eq!(call(lib().predict, p, &i, &mut chunk), ACT_ERR_NON_FINITE_OUTPUT);
    free(p);
}

#[test]
fn hostile_statistics_and_duplicate_weights_are_checkpoint_errors() {
    let t = Tiny::new();
    let mut values = t.values(1);
    let head = values.iter().find(|(n, _, _)| n == "model.action_head.weight").unwrap().clone();
    values.push(("action_head.weight".into(), head.1, head.2));
    let (status, message) = open_bytes(&serialize(&values, Some(&t.config_json()), safetensors::Dtype::F32), None).unwrap_err();
    assert_eq!(status, ACT_ERR_CHECKPOINT);
    assert!(message.contains("`action_head.weight` and `model.action_head.weight`"), "{message}");

    let mut values = t.values(1);
    for (n, _, v) in values.iter_mut() {
        if n == "model.backbone.bn1.running_var" {
            v[0] = -1.0;
        }
    }
    let (status, message) = open_bytes(&serialize(&values, Some(&t.config_json()), safetensors::Dtype::F32), None).unwrap_err();
    assert_eq!(status, ACT_ERR_CHECKPOINT);
    assert!(message.contains("running_var[0] = -1 is negative"), "{message}");
}
