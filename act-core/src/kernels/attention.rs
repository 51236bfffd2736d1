//! Scaled dot-product multi-head attention on token-major buffers through the packed GEMM:
//! scores = Q_h K_h^T, row softmax, out_h = P V_h. Heads are spread over the executor's parts.
use super::exec::{run_dynamic, Executor, Serial};
use super::gemm::{gemm, gemm_raw, Epilogue};
use super::norm::softmax_rows_isa;
use super::pack::{pack_b_into, packed_b_len, MatrixA, RowMap};
use super::Isa;
use crate::memory::zeroed;
use alloc::vec::Vec;

/// Per-part scratch for attention over at most `max_q` queries and `max_k` keys; allocate once.
pub struct AttentionScratch {
    parts: Vec<PartScratch>,
    max_q: usize,
    max_k: usize,
}

struct PartScratch {
    scores: Vec<f32>,
    packed: Vec<f32>,
}

impl AttentionScratch {
    pub fn new(isa: Isa, max_q: usize, max_k: usize, head_dim: usize, parts: usize) -> crate::error::Result<AttentionScratch> {
        let nr = isa.nr();
        let packed = packed_b_len(head_dim, max_k, nr).max(packed_b_len(max_k, head_dim, nr));
        let parts = (0..parts.max(1))
            .map(|_| {
                Ok(PartScratch { scores: zeroed(max_q * max_k, "attention scratch")?, packed: zeroed(packed, "attention scratch")? })
            })
            .collect::<crate::error::Result<Vec<_>>>()?;
        Ok(AttentionScratch { parts, max_q, max_k })
    }

    pub fn bytes(&self) -> usize {
        4 * self.parts.iter().map(|p| p.scores.len() + p.packed.len()).sum::<usize>()
    }
}

/// A token-major matrix view: row t of head h starts at `data[t * ld + h * head_dim]`.
#[derive(Clone, Copy)]
pub struct Tokens<'a> {
    pub data: &'a [f32],
    pub ld: usize,
    pub len: usize,
}

struct Out(*mut f32);

impl Out {
    /// # Safety
    /// `off` must be within the output.
    unsafe fn at(&self, off: usize) -> *mut f32 {
        unsafe { self.0.add(off) }
    }
}
// SAFETY: parts write disjoint column ranges (their heads) of the output.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

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
    exec: &dyn Executor,
) {
    let (tq, tk) = (q.len, k.len);
    assert!(tq <= scratch.max_q && tk <= scratch.max_k && v.len == tk, "attention: sizes exceed scratch");
    assert!(tq == 0 || out.len() >= (tq - 1) * ld_out + heads * head_dim, "attention: output too small");
    let slots = scratch.parts.len();
    let nr = isa.nr();
    let scale = 1.0 / libm::sqrtf(head_dim as f32);
    let (out_ptr, out_len) = (Out(out.as_mut_ptr()), out.len());
    let part_scratch = ScratchPtr(scratch.parts.as_mut_ptr());
    // One head per call; part t works in scratch slot t.
    let job = |t: usize, h: usize| {
        assert!(t < slots, "attention: part {t} has no scratch slot");
        // SAFETY: part t alone uses slot t (in bounds, asserted).
        let ps = unsafe { part_scratch.slot(t) };
        let off = h * head_dim;
        let scores = &mut ps.scores[..tq * tk];
        {
            let kt = pack_b_into(&mut ps.packed, head_dim, tk, nr, |p, j| k.data[j * k.ld + off + p]);
            let qa = MatrixA { data: &q.data[off..], ld: q.ld, m: tq, k: head_dim };
            gemm(isa, &qa, kt, scores, RowMap::Strided { ld: tk }, Epilogue::default(), &Serial);
        }
        softmax_rows_isa(isa, scores, tk, scale);
        let vp = pack_b_into(&mut ps.packed, tk, head_dim, nr, |p, j| v.data[p * v.ld + off + j]);
        let pa = MatrixA { data: scores, ld: tk, m: tq, k: tk };
        // SAFETY: the output holds tq rows of ld_out (asserted above); head h writes only
        // columns off..off + head_dim, and each head is handed to exactly one part.
        unsafe {
            gemm_raw(isa, &pa, vp, out_ptr.at(off), out_len - off, RowMap::Strided { ld: ld_out }, Epilogue::default(), &Serial);
        }
    };
    // Heads are claimed dynamically when every part of `exec` has its own scratch slot
    // (`run_dynamic` itself stays on the caller for one part or one head).
    if slots >= exec.parts() {
        run_dynamic(exec, heads, &job);
    } else {
        (0..heads).for_each(|h| job(0, h));
    }
}

struct ScratchPtr(*mut PartScratch);

impl ScratchPtr {
    /// # Safety
    /// `t` must be in bounds, and no one else may use slot `t` while the reference lives.
    #[allow(clippy::mut_from_ref)]
    unsafe fn slot(&self, t: usize) -> &mut PartScratch {
        unsafe { &mut *self.0.add(t) }
    }
}
// SAFETY: each part dereferences only its own slot.
unsafe impl Send for ScratchPtr {}
unsafe impl Sync for ScratchPtr {}
