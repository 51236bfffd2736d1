//! torchvision ResNet-18 up to layer4, with frozen BatchNorm (ACT_SPEC.md section 1.2), or
//! optionally with trained BatchNorm for a backbone learnt from scratch.
//!
//! Parameter names under the given path: `conv1.weight`, `bn1.{weight,bias,running_mean,running_var}`,
//! `layer{1..4}.{0,1}.{conv1,bn1,conv2,bn2}.*`, `layer{2,3,4}.0.downsample.{0,1}.*`.
//! In [`BatchNormMode::Frozen`] (ACT's choice) every BatchNorm tensor is a non-trainable
//! variable; in [`BatchNormMode::Batch`] weight and bias train and the running statistics follow
//! the batches, as torchvision's own `BatchNorm2d` does in `train()` mode.

use clap::ValueEnum;
use serde::{Deserialize, Serialize};
use tch::Tensor;
use tch::nn::{self, Init};

/// How the backbone's BatchNorm layers behave during training. Inference always uses the
/// stored statistics, so act-core folds either kind the same way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BatchNormMode {
    /// Fixed statistics and affine parameters (ACT's BatchNorm2d). Right for a backbone
    /// that starts from ImageNet weights; from scratch it leaves ResNet-18 without any
    /// normalisation, which trains slowly.
    #[default]
    Frozen,
    /// Batch statistics while training (running mean/var updated with momentum 0.1), trainable
    /// weight and bias.
    Batch,
}

/// BatchNorm of the backbone. With stored statistics:
/// `y = x * s + (b - rm * s)`, `s = w / sqrt(rv + 1e-5)`, per channel of `[B, C, H, W]`.
#[derive(Debug)]
pub struct BatchNorm2d {
    pub weight: Tensor,
    pub bias: Tensor,
    pub running_mean: Tensor,
    pub running_var: Tensor,
    pub mode: BatchNormMode,
}

pub const BN_EPS: f64 = 1e-5;
/// torch.nn.BatchNorm2d's default momentum for the running statistics.
pub const BN_MOMENTUM: f64 = 0.1;

impl BatchNorm2d {
    /// Identity initialisation: w = 1, b = 0, rm = 0, rv = 1, all non-trainable (frozen).
    pub fn new(p: &nn::Path, channels: i64) -> Self {
        BatchNorm2d {
            weight: p.ones_no_train("weight", &[channels]),
            bias: p.zeros_no_train("bias", &[channels]),
            running_mean: p.zeros_no_train("running_mean", &[channels]),
            running_var: p.ones_no_train("running_var", &[channels]),
            mode: BatchNormMode::Frozen,
        }
    }

    /// Switches the layer to `mode`; weight and bias require grad exactly in `Batch` mode.
    pub fn set_mode(&mut self, mode: BatchNormMode) {
        let trainable = mode == BatchNormMode::Batch;
        let _ = self.weight.set_requires_grad(trainable);
        let _ = self.bias.set_requires_grad(trainable);
        self.mode = mode;
    }

    /// `train` selects batch statistics (and updates the running ones) in `Batch` mode; it has
    /// no effect on a frozen layer.
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        if train && self.mode == BatchNormMode::Batch {
            return x.batch_norm(
                Some(&self.weight),
                Some(&self.bias),
                Some(&self.running_mean),
                Some(&self.running_var),
                true,
                BN_MOMENTUM,
                BN_EPS,
                false,
            );
        }
        let s = &self.weight * (&self.running_var + BN_EPS).rsqrt();
        let b = &self.bias - &self.running_mean * &s;
        x * s.view([1, -1, 1, 1]) + b.view([1, -1, 1, 1])
    }
}

/// Convolution without bias (all backbone convolutions), torchvision init:
/// kaiming normal, mode fan_out, ReLU gain.
#[derive(Debug)]
pub struct Conv2dNoBias {
    pub weight: Tensor,
    pub stride: i64,
    pub padding: i64,
}

impl Conv2dNoBias {
    pub fn new(p: &nn::Path, cin: i64, cout: i64, k: i64, stride: i64, padding: i64) -> Self {
        let fan_out = (cout * k * k) as f64;
        let std = (2.0 / fan_out).sqrt();
        let weight = p.var("weight", &[cout, cin, k, k], Init::Randn { mean: 0.0, stdev: std });
        Conv2dNoBias {
            weight,
            stride,
            padding,
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.conv2d(
            &self.weight,
            None::<&Tensor>,
            [self.stride, self.stride],
            [self.padding, self.padding],
            [1, 1],
            1,
        )
    }
}

/// torchvision BasicBlock: conv3x3(stride) - bn - relu - conv3x3 - bn, plus the identity or the
/// downsample branch (1x1 conv with stride + bn), then relu.
#[derive(Debug)]
pub struct BasicBlock {
    pub conv1: Conv2dNoBias,
    pub bn1: BatchNorm2d,
    pub conv2: Conv2dNoBias,
    pub bn2: BatchNorm2d,
    pub downsample: Option<(Conv2dNoBias, BatchNorm2d)>,
}

impl BasicBlock {
    pub fn new(p: &nn::Path, cin: i64, cout: i64, stride: i64) -> Self {
        let downsample = if stride != 1 || cin != cout {
            let d = p / "downsample";
            Some((
                Conv2dNoBias::new(&(&d / "0"), cin, cout, 1, stride, 0),
                BatchNorm2d::new(&(&d / "1"), cout),
            ))
        } else {
            None
        };
        BasicBlock {
            conv1: Conv2dNoBias::new(&(p / "conv1"), cin, cout, 3, stride, 1),
            bn1: BatchNorm2d::new(&(p / "bn1"), cout),
            conv2: Conv2dNoBias::new(&(p / "conv2"), cout, cout, 3, 1, 1),
            bn2: BatchNorm2d::new(&(p / "bn2"), cout),
            downsample,
        }
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let y = self.bn1.forward(&self.conv1.forward(x), train).relu();
        let y = self.bn2.forward(&self.conv2.forward(&y), train);
        let identity = match &self.downsample {
            Some((conv, bn)) => bn.forward(&conv.forward(x), train),
            None => x.shallow_clone(),
        };
        (y + identity).relu()
    }
}

/// ResNet-18 feature extractor: `[B, 3, H, W]` -> layer4 output `[B, 512, h, w]` (h ~ H/32).
#[derive(Debug)]
pub struct ResNet18 {
    pub conv1: Conv2dNoBias,
    pub bn1: BatchNorm2d,
    pub layers: Vec<Vec<BasicBlock>>,
}

pub const RESNET18_OUT_CHANNELS: i64 = 512;

impl ResNet18 {
    pub fn new(p: &nn::Path) -> Self {
        let conv1 = Conv2dNoBias::new(&(p / "conv1"), 3, 64, 7, 2, 3);
        let bn1 = BatchNorm2d::new(&(p / "bn1"), 64);
        let mut layers = Vec::new();
        let mut cin = 64;
        for (i, (cout, stride)) in [(64, 1), (128, 2), (256, 2), (512, 2)].into_iter().enumerate() {
            let lp = p / format!("layer{}", i + 1);
            let b0 = BasicBlock::new(&(&lp / "0"), cin, cout, stride);
            let b1 = BasicBlock::new(&(&lp / "1"), cout, cout, 1);
            layers.push(vec![b0, b1]);
            cin = cout;
        }
        ResNet18 { conv1, bn1, layers }
    }

    /// Sets every BatchNorm layer to `mode`.
    pub fn set_batchnorm_mode(&mut self, mode: BatchNormMode) {
        self.bn1.set_mode(mode);
        for block in self.layers.iter_mut().flatten() {
            block.bn1.set_mode(mode);
            block.bn2.set_mode(mode);
            if let Some((_, bn)) = &mut block.downsample {
                bn.set_mode(mode);
            }
        }
    }

    /// `train` matters only for BatchNorm in `Batch` mode (batch statistics).
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let mut y = self.bn1.forward(&self.conv1.forward(x), train).relu();
        y = y.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        for layer in &self.layers {
            for block in layer {
                y = block.forward(&y, train);
            }
        }
        y
    }
}
