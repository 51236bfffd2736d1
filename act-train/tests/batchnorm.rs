//! The backbone's BatchNorm against hand computations: frozen (non-trainable, stored statistics)
//! and batch mode (batch statistics while training, running statistics updated with momentum
//! 0.1 and the unbiased variance, as torch.nn.BatchNorm2d).

mod common;
use common::{set, vals};

use act_train::model::backbone::{BatchNorm2d, BatchNormMode};
use tch::nn::VarStore;
use tch::{Device, Tensor};

#[test]
fn frozen_bn_hand_values() {
    let vs = VarStore::new(Device::Cpu);
    let bn = BatchNorm2d::new(&(vs.root() / "bn"), 2);
    set(&bn.weight, &[2.0, 0.5]);
    set(&bn.bias, &[0.1, -0.3]);
    set(&bn.running_mean, &[1.0, -2.0]);
    set(&bn.running_var, &[3.0, 0.25]);
    // x: [1, 2, 1, 2]: channel 0 = [4, -1], channel 1 = [0, 2]
    let x = Tensor::from_slice(&[4.0f32, -1.0, 0.0, 2.0]).view([1, 2, 1, 2]);
    let y = vals(&bn.forward(&x, true));
    // channel 0: (x - 1) / sqrt(3.00001) * 2 + 0.1: x=4 -> 3.5640958, x=-1 -> -2.2093972
    // channel 1: (x + 2) / sqrt(0.25001) * 0.5 - 0.3: x=0 -> 1.699960, x=2 -> 3.699920
    let want = [3.564_096, -2.209_397_2, 1.69996, 3.69992];
    for (g, w) in y.iter().zip(want) {
        assert!((g - w).abs() < 2e-6, "got {y:?}, want {want:?}");
    }
    for (name, t) in vs.variables() {
        assert!(!t.requires_grad(), "{name} must be non-trainable");
    }
    assert_eq!(vs.trainable_variables().len(), 0);
    assert_eq!(vs.variables().len(), 4);
}

#[test]
fn batch_mode_hand_values() {
    let vs = VarStore::new(Device::Cpu);
    let mut bn = BatchNorm2d::new(&(vs.root() / "bn"), 2);
    bn.set_mode(BatchNormMode::Batch);
    set(&bn.weight, &[2.0, 0.5]);
    set(&bn.bias, &[0.1, -0.3]);
    set(&bn.running_mean, &[1.0, -2.0]);
    set(&bn.running_var, &[3.0, 0.25]);
    assert_eq!(vs.trainable_variables().len(), 0, "tch's own flag is untouched");
    let trainable: Vec<String> =
        vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).map(|(n, _)| n).collect();
    let mut trainable = trainable;
    trainable.sort();
    assert_eq!(trainable, ["bn.bias", "bn.weight"]);

    // Batch of two samples [2, 2, 1, 1]: channel 0 = {4, -1}, channel 1 = {0, 2}.
    let x = Tensor::from_slice(&[4.0f32, 0.0, -1.0, 2.0]).view([2, 2, 1, 1]);
    let y = bn.forward(&x, true);
    // channel 0: mean 1.5, biased var 6.25: (4 - 1.5) / sqrt(6.25001) * 2 + 0.1 = 2.0999984,
    //            (-1 - 1.5) / ... = -1.8999984
    // channel 1: mean 1, biased var 1: (0 - 1) / sqrt(1.00001) * 0.5 - 0.3 = -0.7999975, 0.1999975
    let want = [2.099_998_4, -0.799_997_5, -1.899_998_4, 0.199_997_5];
    let got = vals(&y);
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 2e-6, "got {got:?}, want {want:?}");
    }
    // Running statistics: 0.9 * old + 0.1 * batch, the variance unbiased (n = 2):
    // channel 0: mean 0.9 + 0.15 = 1.05, var 2.7 + 0.1 * 12.5 = 3.95
    // channel 1: mean -1.8 + 0.1 = -1.7, var 0.225 + 0.1 * 2 = 0.425
    for (g, w) in vals(&bn.running_mean).iter().zip([1.05f32, -1.7]) {
        assert!((g - w).abs() < 1e-6, "running_mean {g} vs {w}");
    }
    for (g, w) in vals(&bn.running_var).iter().zip([3.95f32, 0.425]) {
        assert!((g - w).abs() < 1e-6, "running_var {g} vs {w}");
    }
    // Weight and bias receive gradients: d(sum y)/d bias = number of elements per channel = 2.
    y.sum(tch::Kind::Float).backward();
    for (g, w) in vals(&bn.bias.grad()).iter().zip([2.0f32, 2.0]) {
        assert!((g - w).abs() < 1e-6, "bias grad {g}");
    }
    // Not training: the (updated) running statistics, the frozen formula.
    let y_eval = vals(&tch::no_grad(|| bn.forward(&x, false)));
    let s0 = 2.0 / (3.95f32 + 1e-5).sqrt();
    let s1 = 0.5 / (0.425f32 + 1e-5).sqrt();
    let want = [(4.0 - 1.05) * s0 + 0.1, (0.0 + 1.7) * s1 - 0.3, (-1.0 - 1.05) * s0 + 0.1, (2.0 + 1.7) * s1 - 0.3];
    for (g, w) in y_eval.iter().zip(want) {
        assert!((g - w).abs() < 2e-6, "eval: got {y_eval:?}, want {want:?}");
    }
}
