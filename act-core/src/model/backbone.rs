//! ResNet-18 (torchvision layout) up to layer4, with every frozen BatchNorm folded into the
//! preceding convolution at load (ACT_SPEC.md section 1.2). Activations are NHWC in zero-padded
//! buffers (one pixel of zeros around every activation, three around the input image), so every
//! convolution window lies inside its buffer and the kernels need no bounds checks.
use crate::checkpoint::TensorStore;
use crate::error::{Error, Result};
use crate::kernels::exec::Executor;
use crate::kernels::gemm::{gemm, Epilogue};
use crate::kernels::pack::{zero_border, ConvA, ConvGeometry, PackedB, RowMap};
use crate::kernels::pack::Packing;
use crate::kernels::Isa;
use crate::memory::zeroed;
use alloc::format;
use alloc::vec::Vec;

const BN_EPS: f64 = 1e-5;

/// A bias-free convolution followed by a frozen BatchNorm, folded: `conv(x, W*s) + (b - rm*s)`.
pub struct ConvBn {
    w: PackedB,
    bias: Vec<f32>,
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    pad: usize,
}

impl ConvBn {
    #[allow(clippy::too_many_arguments)]
    pub fn load(store: &TensorStore<'_>, conv: &str, bn: &str, cin: usize, cout: usize, k: usize, stride: usize, pad: usize, isa: Packing) -> Result<ConvBn> {
        let w = store.model(&format!("{conv}.weight"), &[cout, cin, k, k])?;
        let gamma = store.model(&format!("{bn}.weight"), &[cout])?;
        let beta = store.model(&format!("{bn}.bias"), &[cout])?;
        let mean = store.model(&format!("{bn}.running_mean"), &[cout])?;
        let var = store.model(&format!("{bn}.running_var"), &[cout])?;
        if let Some(c) = var.iter().position(|&v| v < 0.0) {
            return Err(Error::BadStatistic { name: format!("model.{bn}.running_var"), reason: format!("running_var[{c}] = {} is negative", var[c]) });
        }
        let scale: Vec<f64> = (0..cout).map(|c| gamma[c] as f64 / libm::sqrt(var[c] as f64 + BN_EPS)).collect();
        let bias: Vec<f32> = (0..cout).map(|c| (beta[c] as f64 - mean[c] as f64 * scale[c]) as f32).collect();
        // Folding multiplies every weight by its channel's scale: all of it must stay finite in f32.
        let per_out = cin * k * k;
        for co in 0..cout {
            let w_max = w[co * per_out..(co + 1) * per_out].iter().fold(0.0f64, |m, &v| m.max((v as f64).abs()));
            if !bias[co].is_finite() || w_max * scale[co].abs() > f32::MAX as f64 {
                return Err(Error::BadStatistic {
                    name: format!("model.{bn}"),
                    reason: format!("channel {co}: folding the BatchNorm into `{conv}.weight` overflows f32 (scale {:e})", scale[co]),
                });
            }
        }
        // Implicit-im2col row p = (ky, kx, ci) with ci fastest; weight is [cout, cin, ky, kx].
        let packed = PackedB::from_fn_stored(k * k * cin, cout, isa.nr(), isa.storage, |p, co| {
            let (tap, ci) = (p / cin, p % cin);
            let (ky, kx) = (tap / k, tap % k);
            (w[((co * cin + ci) * k + ky) * k + kx] as f64 * scale[co]) as f32
        });
        Ok(ConvBn { w: packed, bias, cin, cout, k, stride, pad })
    }

    pub fn out_size(&self, h: usize, w: usize) -> (usize, usize) {
        let g = self.geometry(h, w);
        (g.out_h(), g.out_w())
    }

    fn geometry(&self, in_h: usize, in_w: usize) -> ConvGeometry {
        ConvGeometry { in_h, in_w, cin: self.cin, kh: self.k, kw: self.k, stride: self.stride, pad: self.pad, in_pad: ACT_PAD }
    }

    /// Padded NHWC `input` (in_h x in_w x cin inside `in_pad` zeros) -> padded NHWC `out`
    /// (out_h x out_w x cout inside ACT_PAD zeros), plus optional residual (laid out like out) and
    /// ReLU. Returns the output size.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(&self, isa: Isa, input: &[f32], in_h: usize, in_w: usize, in_pad: usize, out: &mut [f32], residual: Option<&[f32]>, relu: bool, exec: &dyn Executor) -> (usize, usize) {
        let geom = ConvGeometry { in_pad, ..self.geometry(in_h, in_w) };
        let (oh, ow) = (geom.out_h(), geom.out_w());
        let a = ConvA { input: &input[..geom.input_len()], geom };
        let epi = Epilogue { bias: Some(&self.bias), residual, relu };
        let map = RowMap::Padded { w: ow, pad: ACT_PAD, c: self.cout };
        gemm(isa, &a, self.w.as_ref(), out, map, epi, exec);
        zero_border(out, oh, ow, self.cout, ACT_PAD);
        (oh, ow)
    }
}

/// torchvision BasicBlock: relu(bn2(conv2(relu(bn1(conv1(x))))) + downsample(x)).
pub struct BasicBlock {
    conv1: ConvBn,
    conv2: ConvBn,
    downsample: Option<ConvBn>,
}

/// Activation buffers of the backbone, each large enough for its largest activation.
pub struct BackboneBuffers {
    x: Vec<f32>,
    t: Vec<f32>,
    d: Vec<f32>,
    y: Vec<f32>,
}

impl BackboneBuffers {
    pub fn bytes(&self) -> usize {
        4 * (self.x.len() + self.t.len() + self.d.len() + self.y.len())
    }
}

pub struct ResNet18 {
    conv1: ConvBn,
    blocks: Vec<BasicBlock>,
}

pub const FEATURE_CHANNELS: usize = 512;
/// Zero border around every activation buffer (the 3x3 convolutions' padding).
pub const ACT_PAD: usize = 1;
/// Zero border around the input image (conv1's padding).
pub const IMAGE_PAD: usize = 3;

/// Floats in a padded NHWC buffer.
pub fn padded_len(h: usize, w: usize, c: usize, pad: usize) -> usize {
    (h + 2 * pad) * (w + 2 * pad) * c
}

impl ResNet18 {
    pub fn load(store: &TensorStore<'_>, isa: Packing) -> Result<ResNet18> {
        let conv1 = ConvBn::load(store, "backbone.conv1", "backbone.bn1", 3, 64, 7, 2, 3, isa.int8_sensitive())?;
        let mut blocks = Vec::with_capacity(8);
        let mut cin = 64;
        for (layer, cout) in [(1, 64), (2, 128), (3, 256), (4, 512)] {
            for b in 0..2 {
                let stride = if layer > 1 && b == 0 { 2 } else { 1 };
                let p = format!("backbone.layer{layer}.{b}");
                let block_in = if b == 0 { cin } else { cout };
                let downsample = if stride != 1 || block_in != cout {
                    Some(ConvBn::load(store, &format!("{p}.downsample.0"), &format!("{p}.downsample.1"), block_in, cout, 1, stride, 0, isa)?)
                } else {
                    None
                };
                blocks.push(BasicBlock {
                    conv1: ConvBn::load(store, &format!("{p}.conv1"), &format!("{p}.bn1"), block_in, cout, 3, stride, 1, isa)?,
                    conv2: ConvBn::load(store, &format!("{p}.conv2"), &format!("{p}.bn2"), cout, cout, 3, 1, 1, isa)?,
                    downsample,
                });
            }
            cin = cout;
        }
        Ok(ResNet18 { conv1, blocks })
    }

    pub fn packed_bytes(&self) -> usize {
        let conv = |c: &ConvBn| c.w.bytes();
        conv(&self.conv1) + self.blocks.iter().map(|b| conv(&b.conv1) + conv(&b.conv2) + b.downsample.as_ref().map_or(0, conv)).sum::<usize>()
    }

    /// Buffers for images up to `h x w`.
    pub fn buffers(&self, h: usize, w: usize) -> Result<BackboneBuffers> {
        // The largest activation is conv1's output (64 channels at half resolution); every later
        // one is at most a quarter of that times 2.
        let (oh, ow) = self.conv1.out_size(h, w);
        let n = padded_len(oh, ow, 64, ACT_PAD);
        let buffer = || zeroed(n, "backbone activations");
        Ok(BackboneBuffers { x: buffer()?, t: buffer()?, d: buffer()?, y: buffer()? })
    }

    /// Floats in the folded BatchNorm biases.
    pub fn bias_len(&self) -> usize {
        self.conv1.bias.len()
            + self.blocks.iter().map(|b| b.conv1.bias.len() + b.conv2.bias.len() + b.downsample.as_ref().map_or(0, |d| d.bias.len())).sum::<usize>()
    }

    /// `image`: normalised NHWC h x w x 3 inside IMAGE_PAD zeros. Writes layer4's output
    /// (unpadded NHWC fh x fw x 512) to `features` and returns (fh, fw).
    #[allow(clippy::too_many_arguments)]
    pub fn forward(&self, isa: Isa, image: &[f32], h: usize, w: usize, bufs: &mut BackboneBuffers, features: &mut [f32], exec: &dyn Executor) -> (usize, usize) {
        let (h1, w1) = self.conv1.forward(isa, image, h, w, IMAGE_PAD, &mut bufs.t, None, true, exec);
        let (mut h, mut w) = max_pool_3x3_s2(&bufs.t, h1, w1, 64, &mut bufs.x);
        let mut c = 64;
        for block in &self.blocks {
            let (h2, w2) = block.conv1.forward(isa, &bufs.x, h, w, ACT_PAD, &mut bufs.t, None, true, exec);
            let residual: &[f32] = match &block.downsample {
                Some(ds) => {
                    ds.forward(isa, &bufs.x, h, w, ACT_PAD, &mut bufs.d, None, false, exec);
                    &bufs.d
                }
                None => &bufs.x,
            };
            block.conv2.forward(isa, &bufs.t, h2, w2, ACT_PAD, &mut bufs.y, Some(residual), true, exec);
            core::mem::swap(&mut bufs.x, &mut bufs.y);
            (h, w, c) = (h2, w2, block.conv2.cout);
        }
        let wp = w + 2 * ACT_PAD;
        for y in 0..h {
            let src = ((y + ACT_PAD) * wp + ACT_PAD) * c;
            features[y * w * c..(y + 1) * w * c].copy_from_slice(&bufs.x[src..src + w * c]);
        }
        (h, w)
    }
}

/// 3x3 max pool, stride 2, padding 1 (padding never wins), padded NHWC in and out.
fn max_pool_3x3_s2(input: &[f32], h: usize, w: usize, c: usize, out: &mut [f32]) -> (usize, usize) {
    let (oh, ow) = ((h + 2 - 3) / 2 + 1, (w + 2 - 3) / 2 + 1);
    let (wp_in, wp_out) = (w + 2 * ACT_PAD, ow + 2 * ACT_PAD);
    for oy in 0..oh {
        for ox in 0..ow {
            let o = ((oy + ACT_PAD) * wp_out + ox + ACT_PAD) * c;
            let dst = &mut out[o..o + c];
            dst.fill(f32::NEG_INFINITY);
            for ky in 0..3 {
                let iy = (oy * 2 + ky) as isize - 1;
                if iy < 0 || iy as usize >= h {
                    continue;
                }
                for kx in 0..3 {
                    let ix = (ox * 2 + kx) as isize - 1;
                    if ix < 0 || ix as usize >= w {
                        continue;
                    }
                    let src = &input[((iy as usize + ACT_PAD) * wp_in + ix as usize + ACT_PAD) * c..][..c];
                    for (d, &s) in dst.iter_mut().zip(src) {
                        *d = d.max(s);
                    }
                }
            }
        }
    }
    zero_border(out, oh, ow, c, ACT_PAD);
    (oh, ow)
}
