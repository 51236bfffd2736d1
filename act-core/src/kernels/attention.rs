//! Scaled dot-product multi-head attention on token-major buffers, one head at a time through the
//! packed GEMM: scores = Q_h K_h^T, row softmax, out_h = P V_h.
use super::gemm::{gemm, Epilogue, GemmScratch};
use super::norm::softmax_rows;
use super::pack::{pack_b_into, packed_b_len, MatrixA, RowMap};
use super::Isa;
use alloc::vec;
use alloc::vec::Vec;

/// Scratch for attention over at most `max_q` queries and `max_k` keys; allocate once.
pub struct AttentionScratch {
    scores: Vec<f32>,
    packed: Vec<f32>,
    max_q: usize,
    max_k: usize,
}

impl AttentionScratch {
    pub fn new(isa: Isa, max_q: usize, max_k: usize, head_dim: usize) -> AttentionScratch {
        let nr = isa.nr();
        let packed = packed_b_len(head_dim, max_k, nr).max(packed_b_len(max_k, head_dim, nr));
        AttentionScratch { scores: vec![0.0; max_q * max_k], packed: vec![0.0; packed], max_q, max_k }
    }
}

/// A token-major matrix view: row t of head h starts at `data[t * ld + h * head_dim]`.
#[derive(Clone, Copy)]
pub struct Tokens<'a> {
    pub data: &'a [f32],
    pub ld: usize,
    pub len: usize,
}

/// `out[t, h*hd..(h+1)*hd] = softmax(q_h k_h^T / sqrt(hd)) v_h` for every head h.
/// `out` is token-major with leading dimension `ld_out`.
#[allow(clippy::too_many_arguments)]
pub fn multi_head_attention(
    isa: Isa,
    q: Tokens<'_>,
    k: Tokens<'_>,
    v: Tokens<'_>,
    heads: usize,
    head_dim: usize,
    out: &mut [f32],
    ld_out: usize,
    scratch: &mut AttentionScratch,
    gemm_scratch: &mut GemmScratch,
) {
    let (tq, tk) = (q.len, k.len);
    assert!(tq <= scratch.max_q && tk <= scratch.max_k && v.len == tk, "attention: sizes exceed scratch");
    let nr = isa.nr();
    let scale = 1.0 / libm::sqrtf(head_dim as f32);
    for h in 0..heads {
        let off = h * head_dim;
        let scores = &mut scratch.scores[..tq * tk];
        {
            let kt = pack_b_into(&mut scratch.packed, head_dim, tk, nr, |p, j| k.data[j * k.ld + off + p]);
            let qa = MatrixA { data: &q.data[off..], ld: q.ld, m: tq, k: head_dim };
            gemm(isa, &qa, kt, scores, RowMap::Strided { ld: tk }, Epilogue::default(), gemm_scratch);
        }
        softmax_rows(scores, tk, scale);
        let vp = pack_b_into(&mut scratch.packed, tk, head_dim, nr, |p, j| v.data[p * v.ld + off + j]);
        let pa = MatrixA { data: scores, ld: tk, m: tq, k: tk };
        gemm(isa, &pa, vp, &mut out[off..], RowMap::Strided { ld: ld_out }, Epilogue::default(), gemm_scratch);
    }
}
