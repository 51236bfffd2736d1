//! `act-sim eval` on hostile checkpoints (issue #15): a policy whose actions are NaN must stop the
//! evaluation with the error (exit status 1), not run to "success 0.0 %"; a camera name with a NUL
//! byte must be a configuration error, not a panic inside mujoco-rs.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A random tiny checkpoint (single file), rewritten with `edit` applied to its tensors and config.
fn edited_checkpoint(name: &str, edit: impl Fn(&str, &mut Vec<f32>), config_edit: impl Fn(String) -> String) -> PathBuf {
    let path = std::env::temp_dir().join(format!("act-sim-hostile-{name}-{}.safetensors", std::process::id()));
    let cfg = act_train::ActConfig::tiny().with_image_size(96, 128);
    let opts = act_train::ExportOptions::default();
    act_train::random_export::export_random(&path, act_train::CheckpointForm::Single, &cfg, &opts, 5).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut meta: HashMap<String, String> = meta.metadata().clone().unwrap();
    let config = meta.remove("config").unwrap();
    meta.insert("config".into(), config_edit(config));
    let tensors: Vec<(String, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| {
            assert_eq!(v.dtype(), safetensors::Dtype::F32);
            let mut f: Vec<f32> = v.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
            edit(&n, &mut f);
            (n, v.shape().to_vec(), f.iter().flat_map(|x| x.to_le_bytes()).collect())
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(n, s, b)| (n.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b).unwrap()))
        .collect();
    std::fs::write(&path, safetensors::serialize(views, Some(meta)).unwrap()).unwrap();
    path
}

fn eval(ckpt: &Path, backend: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_act-sim"))
        .args(["eval", "--num-rollouts", "1", "--max-steps", "5", "--backend", backend, "--ckpt"])
        .arg(ckpt)
        .output()
        .unwrap()
}

#[test]
fn nan_actions_stop_the_evaluation_with_the_error() {
    // Finite statistics so large that un-normalised actions overflow to infinity.
    let ckpt = edited_checkpoint("nan", |n, v| if n.ends_with("buffer_action.std") { v.fill(3e38) }, |c| c);
    for backend in ["act-core", "tch"] {
        let out = eval(&ckpt, backend);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{backend}: {stderr}");
        assert!(stderr.contains("NaN or infinity"), "{backend}: {stderr}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("success"), "{backend}: printed a success rate");
    }
    std::fs::remove_file(&ckpt).unwrap();
}

#[test]
fn a_nul_byte_in_a_camera_name_is_a_config_error_not_a_panic() {
    let ckpt = edited_checkpoint("nul", |_, _| {}, |c| c.replace("observation.images.top", r"observation.images.to\u0000p"));
    let out = eval(&ckpt, "act-core");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("U+0000") && !stderr.contains("panicked"), "{stderr}");
    std::fs::remove_file(&ckpt).unwrap();
}
