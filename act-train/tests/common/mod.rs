//! Naive reference computations for the tests: plain loops over Vec<f32>/f64, written from the
//! textbook/PyTorch definitions, independent of the tch code under test.
#![allow(dead_code)]

use tch::{Device, Kind, Tensor};

/// Flattened f32 values of any tensor.
pub fn vals(t: &Tensor) -> Vec<f32> {
    let t = t
        .detach()
        .to_device(Device::Cpu)
        .to_kind(Kind::Float)
        .contiguous()
        .view([-1]);
    Vec::<f32>::try_from(&t).unwrap()
}

/// Deterministic pseudo-random numbers in [lo, hi) (a small LCG, independent of torch).
pub struct Lcg(pub u64);
impl Lcg {
    pub fn next_f32(&mut self, lo: f32, hi: f32) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let u = ((self.0 >> 40) as f64) / ((1u64 << 24) as f64);
        lo + (hi - lo) * u as f32
    }
    pub fn vec(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.next_f32(lo, hi)).collect()
    }
}

/// Copies `values` into the variable `t` (no grad).
pub fn set(t: &Tensor, values: &[f32]) {
    let src = Tensor::from_slice(values).view(t.size().as_slice());
    tch::no_grad(|| {
        let mut d = t.shallow_clone();
        d.copy_(&src);
    });
}

pub fn max_abs_diff(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter().zip(b).map(|(x, y)| (*x as f64 - y).abs()).fold(0.0, f64::max)
}

/// y[n][o] = sum_i w[o][i] x[n][i] + b[o]; x is [n, fin] row-major, w [fout, fin].
pub fn linear(x: &[f64], n: usize, fin: usize, w: &[f32], b: &[f32], fout: usize) -> Vec<f64> {
    let mut y = vec![0.0; n * fout];
    for r in 0..n {
        for o in 0..fout {
            let mut s = b[o] as f64;
            for i in 0..fin {
                s += w[o * fin + i] as f64 * x[r * fin + i];
            }
            y[r * fout + o] = s;
        }
    }
    y
}

/// LayerNorm over rows of length d (biased variance, eps 1e-5).
pub fn layer_norm(x: &[f64], d: usize, g: &[f32], b: &[f32]) -> Vec<f64> {
    let mut y = vec![0.0; x.len()];
    for (r, row) in x.chunks(d).enumerate() {
        let mean = row.iter().sum::<f64>() / d as f64;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / d as f64;
        for i in 0..d {
            y[r * d + i] = (row[i] - mean) / (var + 1e-5).sqrt() * g[i] as f64 + b[i] as f64;
        }
    }
    y
}

/// Multi-head attention for ONE batch element, exactly as torch.nn.MultiheadAttention defines it:
/// q/k/v projections from the packed in_proj (rows 0..d = q, d..2d = k, 2d..3d = v), per head
/// softmax(q k^T / sqrt(hd)) with masked keys excluded, heads concatenated, out_proj.
/// query [lq, d], key/value [lk, d], mask[j] = true means key j is ignored.
#[allow(clippy::too_many_arguments)]
pub fn mha(
    query: &[f64],
    key: &[f64],
    value: &[f64],
    lq: usize,
    lk: usize,
    d: usize,
    heads: usize,
    in_w: &[f32],
    in_b: &[f32],
    out_w: &[f32],
    out_b: &[f32],
    mask: Option<&[bool]>,
) -> Vec<f64> {
    let hd = d / heads;
    let proj = |x: &[f64], l: usize, part: usize| -> Vec<f64> {
        let mut y = vec![0.0; l * d];
        for t in 0..l {
            for o in 0..d {
                let row = part * d + o;
                let mut s = in_b[row] as f64;
                for i in 0..d {
                    s += in_w[row * d + i] as f64 * x[t * d + i];
                }
                y[t * d + o] = s;
            }
        }
        y
    };
    let q = proj(query, lq, 0);
    let k = proj(key, lk, 1);
    let v = proj(value, lk, 2);
    let mut concat = vec![0.0; lq * d];
    for h in 0..heads {
        for i in 0..lq {
            let mut scores = vec![f64::NEG_INFINITY; lk];
            for j in 0..lk {
                if mask.is_some_and(|m| m[j]) {
                    continue;
                }
                let mut s = 0.0;
                for c in 0..hd {
                    s += q[i * d + h * hd + c] * k[j * d + h * hd + c];
                }
                scores[j] = s / (hd as f64).sqrt();
            }
            let mx = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = scores.iter().map(|s| (s - mx).exp()).collect();
            let z: f64 = e.iter().sum();
            for c in 0..hd {
                let mut o = 0.0;
                for j in 0..lk {
                    o += e[j] / z * v[j * d + h * hd + c];
                }
                concat[i * d + h * hd + c] = o;
            }
        }
    }
    linear(&concat, lq, d, out_w, out_b, d)
}

pub fn add(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

pub fn relu(a: &[f64]) -> Vec<f64> {
    a.iter().map(|x| x.max(0.0)).collect()
}

pub fn to_f64(a: &[f32]) -> Vec<f64> {
    a.iter().map(|&x| x as f64).collect()
}

use act_train::model::transformer::{DecoderLayer, EncoderLayer, LayerNorm, MultiheadAttention};

fn attn_params(m: &MultiheadAttention) -> [Vec<f32>; 4] {
    [
        vals(&m.in_proj_weight),
        vals(&m.in_proj_bias),
        vals(&m.out_proj.weight),
        vals(&m.out_proj.bias),
    ]
}

pub fn ln_naive(n: &LayerNorm, x: &[f64], d: usize) -> Vec<f64> {
    layer_norm(x, d, &vals(&n.weight), &vals(&n.bias))
}

/// Post-norm encoder layer, one batch element: x [l, d], pos [l, d].
pub fn encoder_layer_naive(layer: &EncoderLayer, x: &[f64], pos: &[f64], l: usize, d: usize, heads: usize) -> Vec<f64> {
    let [w, b, ow, ob] = attn_params(&layer.self_attn);
    let ff = layer.linear1.weight.size()[0] as usize;
    let qk = add(x, pos);
    let a = mha(&qk, &qk, x, l, l, d, heads, &w, &b, &ow, &ob, None);
    let x1 = ln_naive(&layer.norm1, &add(x, &a), d);
    let h = relu(&linear(
        &x1,
        l,
        d,
        &vals(&layer.linear1.weight),
        &vals(&layer.linear1.bias),
        ff,
    ));
    let f = linear(&h, l, ff, &vals(&layer.linear2.weight), &vals(&layer.linear2.bias), d);
    ln_naive(&layer.norm2, &add(&x1, &f), d)
}

/// Post-norm decoder layer, one batch element: t/qp [lq, d], mem/mpos [lm, d].
#[allow(clippy::too_many_arguments)]
pub fn decoder_layer_naive(
    layer: &DecoderLayer,
    t: &[f64],
    qp: &[f64],
    mem: &[f64],
    mpos: &[f64],
    lq: usize,
    lm: usize,
    d: usize,
    heads: usize,
) -> Vec<f64> {
    let [sw, sb, sow, sob] = attn_params(&layer.self_attn);
    let [cw, cb, cow, cob] = attn_params(&layer.multihead_attn);
    let ff = layer.linear1.weight.size()[0] as usize;
    let tq = add(t, qp);
    let a = mha(&tq, &tq, t, lq, lq, d, heads, &sw, &sb, &sow, &sob, None);
    let x1 = ln_naive(&layer.norm1, &add(t, &a), d);
    let c = mha(
        &add(&x1, qp),
        &add(mem, mpos),
        mem,
        lq,
        lm,
        d,
        heads,
        &cw,
        &cb,
        &cow,
        &cob,
        None,
    );
    let x2 = ln_naive(&layer.norm2, &add(&x1, &c), d);
    let h = relu(&linear(
        &x2,
        lq,
        d,
        &vals(&layer.linear1.weight),
        &vals(&layer.linear1.bias),
        ff,
    ));
    let f = linear(&h, lq, ff, &vals(&layer.linear2.weight), &vals(&layer.linear2.bias), d);
    ln_naive(&layer.norm3, &add(&x2, &f), d)
}

/// The 2-D sine embedding value for channel c at (row y, col x) of an h x w map (0-based y, x).
pub fn sine2d(c: usize, y: usize, x: usize, h: usize, w: usize, dim: usize) -> f64 {
    let npf = dim / 2;
    let (p, i) = if c < npf {
        ((y + 1) as f64 / (h as f64 + 1e-6) * 2.0 * std::f64::consts::PI, c)
    } else {
        ((x + 1) as f64 / (w as f64 + 1e-6) * 2.0 * std::f64::consts::PI, c - npf)
    };
    let dim_t = 10000f64.powf(2.0 * (i / 2) as f64 / npf as f64);
    if i % 2 == 0 {
        (p / dim_t).sin()
    } else {
        (p / dim_t).cos()
    }
}
