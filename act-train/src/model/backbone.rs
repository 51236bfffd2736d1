//! torchvision ResNet-18 up to layer4, with frozen BatchNorm (ACT_SPEC.md section 1.2).
//!
//! Parameter names under the given path: `conv1.weight`, `bn1.{weight,bias,running_mean,running_var}`,
//! `layer{1..4}.{0,1}.{conv1,bn1,conv2,bn2}.*`, `layer{2,3,4}.0.downsample.{0,1}.*`.
//! Every BatchNorm tensor is a non-trainable variable.

use tch::Tensor;
use tch::nn::{self, Init};

/// BatchNorm with fixed statistics and affine parameters:
/// `y = x * s + (b - rm * s)`, `s = w / sqrt(rv + 1e-5)`, per channel of `[B, C, H, W]`.
#[derive(Debug)]
pub struct FrozenBatchNorm2d {
    pub weight: Tensor,
    pub bias: Tensor,
    pub running_mean: Tensor,
    pub running_var: Tensor,
}

pub const BN_EPS: f64 = 1e-5;

impl FrozenBatchNorm2d {
    /// Identity initialisation: w = 1, b = 0, rm = 0, rv = 1, all non-trainable.
    pub fn new(p: &nn::Path, channels: i64) -> Self {
        FrozenBatchNorm2d {
            weight: p.ones_no_train("weight", &[channels]),
            bias: p.zeros_no_train("bias", &[channels]),
            running_mean: p.zeros_no_train("running_mean", &[channels]),
            running_var: p.ones_no_train("running_var", &[channels]),
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
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
    pub bn1: FrozenBatchNorm2d,
    pub conv2: Conv2dNoBias,
    pub bn2: FrozenBatchNorm2d,
    pub downsample: Option<(Conv2dNoBias, FrozenBatchNorm2d)>,
}

impl BasicBlock {
    pub fn new(p: &nn::Path, cin: i64, cout: i64, stride: i64) -> Self {
        let downsample = if stride != 1 || cin != cout {
            let d = p / "downsample";
            Some((
                Conv2dNoBias::new(&(&d / "0"), cin, cout, 1, stride, 0),
                FrozenBatchNorm2d::new(&(&d / "1"), cout),
            ))
        } else {
            None
        };
        BasicBlock {
            conv1: Conv2dNoBias::new(&(p / "conv1"), cin, cout, 3, stride, 1),
            bn1: FrozenBatchNorm2d::new(&(p / "bn1"), cout),
            conv2: Conv2dNoBias::new(&(p / "conv2"), cout, cout, 3, 1, 1),
            bn2: FrozenBatchNorm2d::new(&(p / "bn2"), cout),
            downsample,
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let y = self.bn1.forward(&self.conv1.forward(x)).relu();
        let y = self.bn2.forward(&self.conv2.forward(&y));
        let identity = match &self.downsample {
            Some((conv, bn)) => bn.forward(&conv.forward(x)),
            None => x.shallow_clone(),
        };
        (y + identity).relu()
    }
}

/// ResNet-18 feature extractor: `[B, 3, H, W]` -> layer4 output `[B, 512, h, w]` (h ~ H/32).
#[derive(Debug)]
pub struct ResNet18 {
    pub conv1: Conv2dNoBias,
    pub bn1: FrozenBatchNorm2d,
    pub layers: Vec<Vec<BasicBlock>>,
}

pub const RESNET18_OUT_CHANNELS: i64 = 512;

impl ResNet18 {
    pub fn new(p: &nn::Path) -> Self {
        let conv1 = Conv2dNoBias::new(&(p / "conv1"), 3, 64, 7, 2, 3);
        let bn1 = FrozenBatchNorm2d::new(&(p / "bn1"), 64);
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

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let mut y = self.bn1.forward(&self.conv1.forward(x)).relu();
        y = y.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        for layer in &self.layers {
            for block in layer {
                y = block.forward(&y);
            }
        }
        y
    }
}
