//! Frozen BatchNorm against a hand computation; its tensors are non-trainable.

mod common;
use common::{set, vals};

use act_train::model::backbone::FrozenBatchNorm2d;
use tch::nn::VarStore;
use tch::{Device, Tensor};

#[test]
fn frozen_bn_hand_values() {
    let vs = VarStore::new(Device::Cpu);
    let bn = FrozenBatchNorm2d::new(&(vs.root() / "bn"), 2);
    set(&bn.weight, &[2.0, 0.5]);
    set(&bn.bias, &[0.1, -0.3]);
    set(&bn.running_mean, &[1.0, -2.0]);
    set(&bn.running_var, &[3.0, 0.25]);
    // x: [1, 2, 1, 2]: channel 0 = [4, -1], channel 1 = [0, 2]
    let x = Tensor::from_slice(&[4.0f32, -1.0, 0.0, 2.0]).view([1, 2, 1, 2]);
    let y = vals(&bn.forward(&x));
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
