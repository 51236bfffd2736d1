//! DETR-style post-norm transformer layers (ACT_SPEC.md section 1.6; LeRobot `ACTEncoderLayer`,
//! `ACTDecoderLayer` with pre_norm = False), on token-major [tokens, dim] buffers.
use super::layers::{LayerNorm, Linear};
use crate::checkpoint::TensorStore;
use crate::config::Activation;
use crate::error::Result;
use crate::kernels::attention::{multi_head_attention, AttentionScratch, Tokens};
use crate::kernels::exec::Executor;
use crate::kernels::pack::Packing;
use crate::kernels::Isa;
use crate::memory::zeroed;
use alloc::format;
use alloc::vec::Vec;

/// nn.MultiheadAttention with its packed in_proj split into the q, k, v projections.
pub struct Attention {
    wq: Linear,
    wk: Linear,
    wv: Linear,
    out: Linear,
    heads: usize,
}

impl Attention {
    pub fn load(store: &TensorStore<'_>, prefix: &str, dim: usize, heads: usize, isa: Packing) -> Result<Attention> {
        let w = store.model(&format!("{prefix}.in_proj_weight"), &[3 * dim, dim])?;
        let b = store.model(&format!("{prefix}.in_proj_bias"), &[3 * dim])?;
        let part = |i: usize| Linear::from_parts(&w[i * dim * dim..(i + 1) * dim * dim], b[i * dim..(i + 1) * dim].to_vec(), dim, dim, isa);
        Ok(Attention {
            wq: part(0),
            wk: part(1),
            wv: part(2),
            out: Linear::load(store, &format!("{prefix}.out_proj"), dim, dim, isa)?,
            heads,
        })
    }
}

impl Attention {
    pub fn packed_bytes(&self) -> usize {
        self.wq.w.bytes() + self.wk.w.bytes() + self.wv.w.bytes() + self.out.w.bytes()
    }

    fn bias_len(&self) -> usize {
        self.wq.b.len() + self.wk.b.len() + self.wv.b.len() + self.out.b.len()
    }
}

fn norm_len(n: &LayerNorm) -> usize {
    n.gamma.len() + n.beta.len()
}

impl EncoderLayer {
    pub fn packed_bytes(&self) -> usize {
        self.self_attn.packed_bytes() + self.linear1.w.bytes() + self.linear2.w.bytes()
    }

    /// Floats in biases and norm parameters.
    pub fn vector_len(&self) -> usize {
        self.self_attn.bias_len() + self.linear1.b.len() + self.linear2.b.len() + norm_len(&self.norm1) + norm_len(&self.norm2)
    }
}

impl DecoderLayer {
    pub fn packed_bytes(&self) -> usize {
        self.self_attn.packed_bytes() + self.cross_attn.packed_bytes() + self.linear1.w.bytes() + self.linear2.w.bytes()
    }

    /// Floats in biases and norm parameters.
    pub fn vector_len(&self) -> usize {
        self.self_attn.bias_len()
            + self.cross_attn.bias_len()
            + self.linear1.b.len()
            + self.linear2.b.len()
            + norm_len(&self.norm1)
            + norm_len(&self.norm2)
            + norm_len(&self.norm3)
    }
}

/// Working buffers shared by all layers, sized for `rows` tokens at most.
pub struct Buffers {
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    attn: Vec<f32>,
    /// Input plus position embedding.
    xp: Vec<f32>,
    /// The next value of the residual stream (swapped with it after each sub-layer).
    tmp: Vec<f32>,
    ff: Vec<f32>,
    attention: AttentionScratch,
}

impl Buffers {
    pub fn new(isa: Isa, rows: usize, dim: usize, ff: usize, heads: usize, parts: usize) -> Result<Buffers> {
        let stream = || zeroed(rows * dim, "transformer buffers");
        Ok(Buffers {
            q: stream()?,
            k: stream()?,
            v: stream()?,
            attn: stream()?,
            xp: stream()?,
            tmp: stream()?,
            ff: zeroed(rows * ff, "transformer buffers")?,
            attention: AttentionScratch::new(isa, rows, rows, dim / heads, parts)?,
        })
    }

    pub fn bytes(&self) -> usize {
        4 * (self.q.len() + self.k.len() + self.v.len() + self.attn.len() + self.xp.len() + self.tmp.len() + self.ff.len())
            + self.attention.bytes()
    }
}

fn add_into(out: &mut [f32], a: &[f32], b: &[f32]) {
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = x + y;
    }
}

/// Exact (erf) GELU, PyTorch's default.
fn gelu(x: &mut [f32]) {
    for v in x {
        *v = 0.5 * *v * (1.0 + libm::erff(*v * core::f32::consts::FRAC_1_SQRT_2));
    }
}

/// `x = norm(x + out_proj(MHA(q_in Wq, k_in Wk, v Wv)))`, with `x` rows `rq`, keys rows `rk`;
/// `v_in = None` takes the values from `x` itself (self-attention).
#[allow(clippy::too_many_arguments)]
fn attention_block(
    isa: Isa,
    attn: &Attention,
    norm: &LayerNorm,
    x: &mut Vec<f32>,
    q_in: &[f32],
    rq: usize,
    k_in: &[f32],
    v_in: Option<&[f32]>,
    rk: usize,
    b: &mut Buffers,
    s: &dyn Executor,
) {
    let dim = attn.wq.n_in;
    attn.wq.forward(isa, q_in, rq, &mut b.q, None, false, s);
    attn.wk.forward(isa, k_in, rk, &mut b.k, None, false, s);
    attn.wv.forward(isa, v_in.unwrap_or(&x[..rk * dim]), rk, &mut b.v, None, false, s);
    let q = Tokens { data: &b.q, ld: dim, len: rq };
    let k = Tokens { data: &b.k, ld: dim, len: rk };
    let v = Tokens { data: &b.v, ld: dim, len: rk };
    multi_head_attention(isa, q, k, v, attn.heads, dim / attn.heads, &mut b.attn, dim, &mut b.attention, s);
    attn.out.forward(isa, &b.attn, rq, &mut b.tmp, Some(&x[..rq * dim]), false, s);
    norm.forward(&mut b.tmp[..rq * dim]);
    core::mem::swap(x, &mut b.tmp);
}

/// `x = norm(x + W2 act(W1 x))`.
#[allow(clippy::too_many_arguments)]
fn feed_forward_block(isa: Isa, l1: &Linear, l2: &Linear, act: Activation, norm: &LayerNorm, x: &mut Vec<f32>, rows: usize, b: &mut Buffers, s: &dyn Executor) {
    let dim = l1.n_in;
    l1.forward(isa, x, rows, &mut b.ff, None, act == Activation::Relu, s);
    if act == Activation::Gelu {
        gelu(&mut b.ff[..rows * l1.n_out]);
    }
    l2.forward(isa, &b.ff, rows, &mut b.tmp, Some(&x[..rows * dim]), false, s);
    norm.forward(&mut b.tmp[..rows * dim]);
    core::mem::swap(x, &mut b.tmp);
}

pub struct EncoderLayer {
    self_attn: Attention,
    linear1: Linear,
    linear2: Linear,
    norm1: LayerNorm,
    norm2: LayerNorm,
}

impl EncoderLayer {
    pub fn load(store: &TensorStore<'_>, prefix: &str, dim: usize, ff: usize, heads: usize, isa: Packing) -> Result<EncoderLayer> {
        Ok(EncoderLayer {
            self_attn: Attention::load(store, &format!("{prefix}.self_attn"), dim, heads, isa)?,
            linear1: Linear::load(store, &format!("{prefix}.linear1"), dim, ff, isa)?,
            linear2: Linear::load(store, &format!("{prefix}.linear2"), ff, dim, isa)?,
            norm1: LayerNorm::load(store, &format!("{prefix}.norm1"), dim)?,
            norm2: LayerNorm::load(store, &format!("{prefix}.norm2"), dim)?,
        })
    }

    /// q = k = x + pos, v = x; x = LN1(x + MHA); x = LN2(x + FFN(x)).
    #[allow(clippy::too_many_arguments)]
    pub fn forward(&self, isa: Isa, act: Activation, x: &mut Vec<f32>, pos: &[f32], rows: usize, b: &mut Buffers, s: &dyn Executor) {
        let n = rows * self.linear1.n_in;
        let mut xp = core::mem::take(&mut b.xp);
        add_into(&mut xp[..n], &x[..n], &pos[..n]);
        attention_block(isa, &self.self_attn, &self.norm1, x, &xp[..n], rows, &xp[..n], None, rows, b, s);
        b.xp = xp;
        feed_forward_block(isa, &self.linear1, &self.linear2, act, &self.norm2, x, rows, b, s);
    }
}

pub struct DecoderLayer {
    self_attn: Attention,
    cross_attn: Attention,
    linear1: Linear,
    linear2: Linear,
    norm1: LayerNorm,
    norm2: LayerNorm,
    norm3: LayerNorm,
}

impl DecoderLayer {
    pub fn load(store: &TensorStore<'_>, prefix: &str, dim: usize, ff: usize, heads: usize, isa: Packing) -> Result<DecoderLayer> {
        Ok(DecoderLayer {
            self_attn: Attention::load(store, &format!("{prefix}.self_attn"), dim, heads, isa)?,
            cross_attn: Attention::load(store, &format!("{prefix}.multihead_attn"), dim, heads, isa)?,
            linear1: Linear::load(store, &format!("{prefix}.linear1"), dim, ff, isa)?,
            linear2: Linear::load(store, &format!("{prefix}.linear2"), ff, dim, isa)?,
            norm1: LayerNorm::load(store, &format!("{prefix}.norm1"), dim)?,
            norm2: LayerNorm::load(store, &format!("{prefix}.norm2"), dim)?,
            norm3: LayerNorm::load(store, &format!("{prefix}.norm3"), dim)?,
        })
    }

    /// Self-attention (q = k = tgt + query_pos, v = tgt) -> LN1; cross-attention
    /// (q = tgt + query_pos, k = memory + pos, v = memory) -> LN2; FFN -> LN3.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        isa: Isa,
        act: Activation,
        tgt: &mut Vec<f32>,
        query_pos: &[f32],
        rows: usize,
        memory: &[f32],
        memory_pos: &[f32],
        mem_rows: usize,
        b: &mut Buffers,
        s: &dyn Executor,
    ) {
        let dim = self.linear1.n_in;
        let n = rows * dim;
        let mut xp = core::mem::take(&mut b.xp);
        add_into(&mut xp[..n], &tgt[..n], &query_pos[..n]);
        attention_block(isa, &self.self_attn, &self.norm1, tgt, &xp[..n], rows, &xp[..n], None, rows, b, s);
        add_into(&mut xp[..n], &tgt[..n], &query_pos[..n]);
        let m = mem_rows * dim;
        attention_block(isa, &self.cross_attn, &self.norm2, tgt, &xp[..n], rows, &memory_pos[..m], Some(&memory[..m]), mem_rows, b, s);
        b.xp = xp;
        feed_forward_block(isa, &self.linear1, &self.linear2, act, &self.norm3, tgt, rows, b, s);
    }
}
