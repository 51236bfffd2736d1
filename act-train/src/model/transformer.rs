//! DETR-style transformer pieces as ACT uses them (ACT_SPEC.md section 1.6), batch-first:
//! every sequence tensor is `[B, L, dim]`.
//!
//! Parameter names follow PyTorch: `self_attn.{in_proj_weight, in_proj_bias, out_proj.weight,
//! out_proj.bias}`, `linear1.*`, `linear2.*`, `norm1.*`, ...

use tch::nn::{self, Init};
use tch::Tensor;

pub const LN_EPS: f64 = 1e-5;

/// How a layer's matrices are initialised by `new` (training init).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatrixInit {
    /// xavier-uniform for every matrix (LeRobot/DETR `_reset_parameters` of encoder and decoder).
    Xavier,
    /// PyTorch module defaults (the CVAE encoder): MHA in_proj xavier, every Linear
    /// kaiming-uniform(a = sqrt 5), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    TorchDefault,
}

pub fn xavier_uniform(fan_in: i64, fan_out: i64) -> Init {
    let b = (6.0 / (fan_in + fan_out) as f64).sqrt();
    Init::Uniform { lo: -b, up: b }
}

pub fn torch_default_uniform(fan_in: i64) -> Init {
    let b = 1.0 / (fan_in as f64).sqrt();
    Init::Uniform { lo: -b, up: b }
}

/// `y = x W^T + b`, `weight: [out, in]`, `bias: [out]`.
#[derive(Debug)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Tensor,
}

impl Linear {
    pub fn new(p: &nn::Path, fan_in: i64, fan_out: i64, w: Init, b: Init) -> Self {
        Linear {
            weight: p.var("weight", &[fan_out, fan_in], w),
            bias: p.var("bias", &[fan_out], b),
        }
    }

    /// PyTorch nn.Linear default init.
    pub fn torch_default(p: &nn::Path, fan_in: i64, fan_out: i64) -> Self {
        Self::new(
            p,
            fan_in,
            fan_out,
            torch_default_uniform(fan_in),
            torch_default_uniform(fan_in),
        )
    }

    pub fn with_init(p: &nn::Path, fan_in: i64, fan_out: i64, init: MatrixInit) -> Self {
        match init {
            MatrixInit::Xavier => Self::new(
                p,
                fan_in,
                fan_out,
                xavier_uniform(fan_in, fan_out),
                torch_default_uniform(fan_in),
            ),
            MatrixInit::TorchDefault => Self::torch_default(p, fan_in, fan_out),
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.linear(&self.weight, Some(&self.bias))
    }
}

/// LayerNorm over the last dimension, eps 1e-5, gain `weight` and `bias`.
#[derive(Debug)]
pub struct LayerNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub dim: i64,
}

impl LayerNorm {
    pub fn new(p: &nn::Path, dim: i64) -> Self {
        LayerNorm {
            weight: p.ones("weight", &[dim]),
            bias: p.zeros("bias", &[dim]),
            dim,
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.layer_norm([self.dim], Some(&self.weight), Some(&self.bias), LN_EPS, true)
    }
}

/// torch.nn.MultiheadAttention with packed `in_proj_weight [3*dim, dim]` (q, k, v rows),
/// `in_proj_bias [3*dim]`, `out_proj`; `dropout` on the attention probabilities in training.
#[derive(Debug)]
pub struct MultiheadAttention {
    pub in_proj_weight: Tensor,
    pub in_proj_bias: Tensor,
    pub out_proj: Linear,
    pub dim: i64,
    pub n_heads: i64,
    pub dropout: f64,
}

impl MultiheadAttention {
    /// PyTorch init: in_proj xavier-uniform, in_proj_bias 0, out_proj weight as `init` says, bias 0.
    pub fn new(p: &nn::Path, dim: i64, n_heads: i64, dropout: f64, init: MatrixInit) -> Self {
        assert!(dim % n_heads == 0, "dim {dim} not divisible by n_heads {n_heads}");
        let in_proj_weight = p.var("in_proj_weight", &[3 * dim, dim], xavier_uniform(dim, 3 * dim));
        let in_proj_bias = p.zeros("in_proj_bias", &[3 * dim]);
        let ow = match init {
            MatrixInit::Xavier => xavier_uniform(dim, dim),
            MatrixInit::TorchDefault => torch_default_uniform(dim),
        };
        let out_proj = Linear::new(&(p / "out_proj"), dim, dim, ow, Init::Const(0.0));
        MultiheadAttention {
            in_proj_weight,
            in_proj_bias,
            out_proj,
            dim,
            n_heads,
            dropout,
        }
    }

    /// `query [B, Lq, dim]`, `key`/`value [B, Lk, dim]`, `key_padding_mask [B, Lk]` bool
    /// (true = ignore that key). Returns `[B, Lq, dim]`.
    pub fn forward(
        &self,
        query: &Tensor,
        key: &Tensor,
        value: &Tensor,
        key_padding_mask: Option<&Tensor>,
        train: bool,
    ) -> Tensor {
        let d = self.dim;
        let h = self.n_heads;
        let hd = d / h;
        let (b, lq, _) = query.size3().expect("query must be [B, L, dim]");
        let lk = key.size()[1];
        let w = &self.in_proj_weight;
        let bias = &self.in_proj_bias;
        let proj = |x: &Tensor, i: i64, l: i64| -> Tensor {
            x.linear(&w.narrow(0, i * d, d), Some(&bias.narrow(0, i * d, d)))
                .view([b, l, h, hd])
                .transpose(1, 2) // [B, H, L, hd]
        };
        let q = proj(query, 0, lq) * (1.0 / (hd as f64).sqrt());
        let k = proj(key, 1, lk);
        let v = proj(value, 2, lk);
        let mut scores = q.matmul(&k.transpose(-2, -1)); // [B, H, Lq, Lk]
        if let Some(mask) = key_padding_mask {
            scores = scores.masked_fill(&mask.view([b, 1, 1, lk]), f64::NEG_INFINITY);
        }
        let attn = scores.softmax(-1, scores.kind()).dropout(self.dropout, train);
        let out = attn.matmul(&v).transpose(1, 2).contiguous().view([b, lq, d]);
        self.out_proj.forward(&out)
    }
}

fn activation(x: &Tensor, name: &str) -> Tensor {
    match name {
        "gelu" => x.gelu("none"),
        _ => x.relu(),
    }
}

fn add_pos(x: &Tensor, pos: Option<&Tensor>) -> Tensor {
    match pos {
        Some(p) => x + p,
        None => x.shallow_clone(),
    }
}

/// Shared layer settings.
#[derive(Clone, Debug)]
pub struct LayerCfg {
    pub dim: i64,
    pub n_heads: i64,
    pub dim_feedforward: i64,
    pub dropout: f64,
    pub pre_norm: bool,
    pub activation: String,
}

/// Encoder layer (LeRobot ACTEncoderLayer / DETR TransformerEncoderLayer).
/// Post-norm: `q = k = x + pos, v = x; x = LN1(x + drop(MHA)); x = LN2(x + drop(W2 drop(act(W1 x))))`.
#[derive(Debug)]
pub struct EncoderLayer {
    pub self_attn: MultiheadAttention,
    pub linear1: Linear,
    pub linear2: Linear,
    pub norm1: LayerNorm,
    pub norm2: LayerNorm,
    pub cfg: LayerCfg,
}

impl EncoderLayer {
    pub fn new(p: &nn::Path, cfg: &LayerCfg, init: MatrixInit) -> Self {
        EncoderLayer {
            self_attn: MultiheadAttention::new(&(p / "self_attn"), cfg.dim, cfg.n_heads, cfg.dropout, init),
            linear1: Linear::with_init(&(p / "linear1"), cfg.dim, cfg.dim_feedforward, init),
            linear2: Linear::with_init(&(p / "linear2"), cfg.dim_feedforward, cfg.dim, init),
            norm1: LayerNorm::new(&(p / "norm1"), cfg.dim),
            norm2: LayerNorm::new(&(p / "norm2"), cfg.dim),
            cfg: cfg.clone(),
        }
    }

    pub fn forward(&self, x: &Tensor, pos: Option<&Tensor>, kpm: Option<&Tensor>, train: bool) -> Tensor {
        let p = self.cfg.dropout;
        let pre = self.cfg.pre_norm;
        let skip = x.shallow_clone();
        let xin = if pre { self.norm1.forward(x) } else { x.shallow_clone() };
        let qk = add_pos(&xin, pos);
        let a = self.self_attn.forward(&qk, &qk, &xin, kpm, train);
        let mut x = skip + a.dropout(p, train);
        let skip;
        if pre {
            skip = x.shallow_clone();
            x = self.norm2.forward(&x);
        } else {
            x = self.norm1.forward(&x);
            skip = x.shallow_clone();
        }
        let f = self
            .linear2
            .forward(&activation(&self.linear1.forward(&x), &self.cfg.activation).dropout(p, train));
        let x = skip + f.dropout(p, train);
        if pre { x } else { self.norm2.forward(&x) }
    }
}

/// A stack of encoder layers; a final LayerNorm `norm` only when pre_norm (LeRobot).
#[derive(Debug)]
pub struct Encoder {
    pub layers: Vec<EncoderLayer>,
    pub norm: Option<LayerNorm>,
}

impl Encoder {
    pub fn new(p: &nn::Path, cfg: &LayerCfg, n_layers: i64, init: MatrixInit) -> Self {
        let lp = p / "layers";
        let layers = (0..n_layers)
            .map(|i| EncoderLayer::new(&(&lp / i), cfg, init))
            .collect();
        let norm = cfg.pre_norm.then(|| LayerNorm::new(&(p / "norm"), cfg.dim));
        Encoder { layers, norm }
    }

    pub fn forward(&self, x: &Tensor, pos: Option<&Tensor>, kpm: Option<&Tensor>, train: bool) -> Tensor {
        let mut x = x.shallow_clone();
        for l in &self.layers {
            x = l.forward(&x, pos, kpm, train);
        }
        match &self.norm {
            Some(n) => n.forward(&x),
            None => x,
        }
    }
}

/// Decoder layer (LeRobot ACTDecoderLayer / DETR TransformerDecoderLayer), post-norm:
/// self-attn (q = k = x + query_pos, v = x) -> LN1; cross-attn (q = x + query_pos,
/// k = memory + pos, v = memory) -> LN2; FFN -> LN3.
#[derive(Debug)]
pub struct DecoderLayer {
    pub self_attn: MultiheadAttention,
    pub multihead_attn: MultiheadAttention,
    pub linear1: Linear,
    pub linear2: Linear,
    pub norm1: LayerNorm,
    pub norm2: LayerNorm,
    pub norm3: LayerNorm,
    pub cfg: LayerCfg,
}

impl DecoderLayer {
    pub fn new(p: &nn::Path, cfg: &LayerCfg, init: MatrixInit) -> Self {
        DecoderLayer {
            self_attn: MultiheadAttention::new(&(p / "self_attn"), cfg.dim, cfg.n_heads, cfg.dropout, init),
            multihead_attn: MultiheadAttention::new(&(p / "multihead_attn"), cfg.dim, cfg.n_heads, cfg.dropout, init),
            linear1: Linear::with_init(&(p / "linear1"), cfg.dim, cfg.dim_feedforward, init),
            linear2: Linear::with_init(&(p / "linear2"), cfg.dim_feedforward, cfg.dim, init),
            norm1: LayerNorm::new(&(p / "norm1"), cfg.dim),
            norm2: LayerNorm::new(&(p / "norm2"), cfg.dim),
            norm3: LayerNorm::new(&(p / "norm3"), cfg.dim),
            cfg: cfg.clone(),
        }
    }

    pub fn forward(
        &self,
        x: &Tensor,
        memory: &Tensor,
        query_pos: Option<&Tensor>,
        memory_pos: Option<&Tensor>,
        train: bool,
    ) -> Tensor {
        let p = self.cfg.dropout;
        let pre = self.cfg.pre_norm;
        let mut skip = x.shallow_clone();
        let mut x = if pre { self.norm1.forward(x) } else { x.shallow_clone() };
        let qk = add_pos(&x, query_pos);
        let a = self.self_attn.forward(&qk, &qk, &x, None, train);
        x = &skip + a.dropout(p, train);
        if pre {
            skip = x.shallow_clone();
            x = self.norm2.forward(&x);
        } else {
            x = self.norm1.forward(&x);
            skip = x.shallow_clone();
        }
        let a = self.multihead_attn.forward(
            &add_pos(&x, query_pos),
            &add_pos(memory, memory_pos),
            memory,
            None,
            train,
        );
        x = &skip + a.dropout(p, train);
        if pre {
            skip = x.shallow_clone();
            x = self.norm3.forward(&x);
        } else {
            x = self.norm2.forward(&x);
            skip = x.shallow_clone();
        }
        let f = self
            .linear2
            .forward(&activation(&self.linear1.forward(&x), &self.cfg.activation).dropout(p, train));
        x = &skip + f.dropout(p, train);
        if pre { x } else { self.norm3.forward(&x) }
    }
}

/// `n_decoder_layers` layers run in sequence, then the final LayerNorm `norm`.
#[derive(Debug)]
pub struct Decoder {
    pub layers: Vec<DecoderLayer>,
    pub norm: LayerNorm,
}

impl Decoder {
    pub fn new(p: &nn::Path, cfg: &LayerCfg, n_layers: i64, init: MatrixInit) -> Self {
        let lp = p / "layers";
        let layers = (0..n_layers)
            .map(|i| DecoderLayer::new(&(&lp / i), cfg, init))
            .collect();
        Decoder {
            layers,
            norm: LayerNorm::new(&(p / "norm"), cfg.dim),
        }
    }

    pub fn forward(
        &self,
        x: &Tensor,
        memory: &Tensor,
        query_pos: Option<&Tensor>,
        memory_pos: Option<&Tensor>,
        train: bool,
    ) -> Tensor {
        let mut x = x.shallow_clone();
        for l in &self.layers {
            x = l.forward(&x, memory, query_pos, memory_pos, train);
        }
        self.norm.forward(&x)
    }
}
