//! act-core on aarch64 against libtorch: libtorch does not run on the emulated target, so
//! act-train's `libtorch_fixtures` example (run on x86 by scripts/test-aarch64.sh) writes random
//! checkpoints, observations, and libtorch's actions and intermediates into
//! `$ACT_LIBTORCH_FIXTURES`; this test loads each checkpoint with the NEON kernels and compares.
//! The same bounds as act-train/tests/agreement.rs on x86: f32 actions 1e-5 and intermediates
//! 5e-5 relative; f16-stored weights 1e-2 (the BN-folded weights are rounded again); the bf16
//! compute path (`BFDOT`, where the CPU has the BF16 extension) and the fp16 compute path
//! (`FMLA .8H`, where it has FP16 arithmetic) 3e-2.
#![cfg(target_arch = "aarch64")]
mod common;
use act_core::{Isa, Options, Policy, WeightStorage};
use common::rel_err;
use safetensors::{Dtype, SafeTensors};
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    let dir = std::env::var_os("ACT_LIBTORCH_FIXTURES").expect(
        "ACT_LIBTORCH_FIXTURES is not set: write the fixtures with `cargo run -p act-train --example libtorch_fixtures -- DIR` \
         on x86 and point it at DIR (scripts/test-aarch64.sh does both)",
    );
    PathBuf::from(dir)
}

fn f32s(st: &SafeTensors, name: &str) -> Vec<f32> {
    let t = st.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(t.dtype(), Dtype::F32, "{name}");
    t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

#[test]
fn neon_policies_agree_with_libtorch() {
    assert_eq!(Isa::detect(), Isa::Neon, "an aarch64 CPU must get the NEON kernels");
    let mut report = String::from("\n| case | weights | actions rel err | worst intermediate rel err |\n|---|---|---|---|\n");
    let mut failures = Vec::new();
    let cases = [
        ("tiny", WeightStorage::F32),
        ("tiny-2cam", WeightStorage::F32),
        ("tiny-f16", WeightStorage::F16),
        ("small", WeightStorage::F32),
        // One bf16 case: BFDOT's round-to-odd sums make it the slowest under qemu, and the kernel
        // tests cover the bf16 GEMM and convolution shapes.
        ("tiny", WeightStorage::Bf16),
        ("tiny", WeightStorage::F16Compute),
        ("small", WeightStorage::F16Compute),
    ];
    for (name, storage) in cases {
        if storage == WeightStorage::Bf16 && !Isa::Neon.supports_bf16() {
            assert!(!common::expects("bf16"), "ACT_EXPECT_FEATURES has bf16 but this CPU has no BF16 extension");
            report.push_str(&format!("| {name} | Bf16 | not run: this CPU has no BF16 extension | |\n"));
            continue;
        }
        if storage == WeightStorage::F16Compute && !Isa::Neon.supports_f16_compute() {
            assert!(!common::expects("fp16"), "ACT_EXPECT_FEATURES has fp16 but this CPU has no FP16 arithmetic");
            report.push_str(&format!("| {name} | F16Compute | not run: this CPU has no FP16 arithmetic | |\n"));
            continue;
        }
        let dir = fixtures().join(name);
        let mut policy = Policy::open(dir.join("checkpoint.safetensors"), &Options { weights: storage, ..Default::default() })
            .unwrap_or_else(|e| panic!("{name}: {e} (write the fixtures first, see this file's header)"));
        assert_eq!(policy.isa(), Isa::Neon);
        let bytes = std::fs::read(dir.join("expected.safetensors")).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let cfg = policy.config().clone();
        let mut chunk = vec![0.0f32; cfg.chunk_size * cfg.action_dim];
        let (mut worst_action, mut worst_inter) = (0.0f64, 0.0f64);
        let mut first: Option<Vec<f32>> = None;
        for i in 0..2 {
            let qpos = f32s(&st, &format!("obs{i}.qpos"));
            let images: Vec<Vec<u8>> = (0..cfg.cameras.len()).map(|c| st.tensor(&format!("obs{i}.image{c}")).unwrap().data().to_vec()).collect();
            let views: Vec<&[u8]> = images.iter().map(|v| v.as_slice()).collect();
            policy.predict(&qpos, &views, &mut chunk).unwrap();
            worst_action = worst_action.max(rel_err(&chunk, &f32s(&st, &format!("obs{i}.actions"))));
            let inter = policy.intermediates();
            for (c, (feat, _)) in inter.backbone_features.iter().enumerate() {
                worst_inter = worst_inter.max(rel_err(feat, &f32s(&st, &format!("obs{i}.backbone{c}"))));
            }
            worst_inter = worst_inter.max(rel_err(inter.encoder_memory, &f32s(&st, &format!("obs{i}.encoder_memory"))));
            worst_inter = worst_inter.max(rel_err(inter.decoder_output, &f32s(&st, &format!("obs{i}.decoder_output"))));
            worst_inter = worst_inter.max(rel_err(inter.actions_normalized, &f32s(&st, &format!("obs{i}.actions_normalized"))));
            // Two observations must give clearly different actions, or agreement could hide a
            // backbone that does not matter.
            match &first {
                None => first = Some(chunk.clone()),
                Some(prev) => assert!(rel_err(&chunk, prev) > 1e-3, "{name}: two observations gave nearly equal actions"),
            }
        }
        report.push_str(&format!("| {name} | {storage:?} | {worst_action:.2e} | {worst_inter:.2e} |\n"));
        // bf16 compute rounds every GEMM input to 8 bits: x86's bound (agreement.rs) applies.
        let (action_bound, inter_bound) = match storage {
            WeightStorage::F32 => (1e-5, 5e-5),
            WeightStorage::F16 => (1e-2, 1e-2),
            WeightStorage::Bf16 | WeightStorage::F16Compute => (3e-2, 3e-2),
            // Not among the cases: NEON has no int8 kernel yet (SDOT is future work).
            WeightStorage::Int8 => unreachable!("no NEON int8 kernel"),
        };
        if worst_action > action_bound || worst_inter > inter_bound {
            failures.push(format!("{name}: actions {worst_action:.2e} (bound {action_bound:.0e}), intermediates {worst_inter:.2e} (bound {inter_bound:.0e})"));
        }
    }
    println!("{report}");
    assert!(failures.is_empty(), "{report}\n{}", failures.join("\n"));
}
