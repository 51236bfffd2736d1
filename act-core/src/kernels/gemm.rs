//! The GEMM driver: C = A B (+ bias, + residual, ReLU), blocked over k (KC) and rows (MC). B is
//! prepacked in panels; A is read in place through row pointers and segments. Allocation-free
//! once the scratch exists.
use super::kernel::{Kernel, Segment};
use super::pack::{ASource, PackedBRef, RowMap};
use super::Isa;
use alloc::vec;
use alloc::vec::Vec;

/// Depth of one k block: a KC x NR panel slice stays in L1.
const KC: usize = 256;
/// Rows of one block (a multiple of every kernel's MR): its A rows stay in L2 across panels.
const MC: usize = 96;
/// Largest MR x NR tile of any kernel.
const MAX_TILE: usize = 6 * 32;

/// What is applied to C after the last k block, in this order: `+ bias[j]`, `+ residual`, ReLU.
#[derive(Clone, Copy, Default)]
pub struct Epilogue<'a> {
    pub bias: Option<&'a [f32]>,
    /// Laid out like C (the same row map).
    pub residual: Option<&'a [f32]>,
    pub relu: bool,
}

/// Scratch for the driver; allocate once, reuse for every GEMM.
pub struct GemmScratch {
    segments: Vec<Segment>,
}

impl Default for GemmScratch {
    fn default() -> Self {
        Self::new()
    }
}

impl GemmScratch {
    pub fn new() -> GemmScratch {
        GemmScratch { segments: vec![Segment::default(); KC] }
    }
}

/// C[m x n] (rows placed by `c_map`) = A[m x k] B[k x n], then the epilogue.
///
/// Panics if the shapes disagree, a row of A or C falls outside its buffer, or `isa` is not
/// supported by this CPU.
pub fn gemm(isa: Isa, a: &impl ASource, b: PackedBRef<'_>, c: &mut [f32], c_map: RowMap, epi: Epilogue<'_>, scratch: &mut GemmScratch) {
    assert_eq!(a.cols(), b.k, "gemm: A has {} columns but B has {} rows", a.cols(), b.k);
    assert_eq!(b.nr, isa.nr(), "gemm: B packed for another instruction set");
    let (m, n) = (a.rows(), b.n);
    if m == 0 || n == 0 {
        return;
    }
    // Row offsets grow with r for both maps, so the last row bounds them all.
    let c_end = c_map.offset(m - 1) + n;
    assert!(c.len() >= c_end, "gemm: C too small");
    if let Some(bias) = epi.bias {
        assert!(bias.len() >= n, "gemm: bias too short");
    }
    if let Some(r) = epi.residual {
        assert!(r.len() >= c_end, "gemm: residual too small");
    }
    assert!(a.row_offset(m - 1) + a.row_span() <= a.data().len(), "gemm: A rows exceed A's buffer");
    match isa {
        Isa::Scalar => gemm_with::<super::scalar::Scalar>(a, b, c, c_map, epi, scratch),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => {
            assert!(isa.is_supported(), "gemm: AVX2+FMA not available on this CPU");
            gemm_with::<super::avx2::Avx2>(a, b, c, c_map, epi, scratch)
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            assert!(isa.is_supported(), "gemm: AVX-512F not available on this CPU");
            gemm_with::<super::avx512::Avx512>(a, b, c, c_map, epi, scratch)
        }
        #[cfg(not(target_arch = "x86_64"))]
        _ => gemm_with::<super::scalar::Scalar>(a, b, c, c_map, epi, scratch),
    }
}

fn gemm_with<K: Kernel>(a: &impl ASource, b: PackedBRef<'_>, c: &mut [f32], c_map: RowMap, epi: Epilogue<'_>, scratch: &mut GemmScratch) {
    let (m, n, k) = (a.rows(), b.n, b.k);
    let (mr, nr) = (K::MR, K::NR);
    debug_assert!(MC % mr == 0 && mr * nr <= MAX_TILE && mr <= 8);
    let panels = n.div_ceil(nr);
    let data = a.data();
    let mut tile = [0.0f32; MAX_TILE];
    let mut rows = [core::ptr::null::<f32>(); MC];
    let mut pc = 0;
    // k == 0 still needs one pass to write C = epilogue(0).
    loop {
        let kc = KC.min(k - pc);
        let first = pc == 0;
        let last = pc + kc >= k;
        let nseg = a.segments(pc, kc, &mut scratch.segments);
        let segs = &scratch.segments[..nseg];
        debug_assert!(segs.iter().all(|s| s.a_off + s.len <= a.row_span()));
        let mut ic = 0;
        while ic < m {
            let mc = MC.min(m - ic);
            // Rows past m repeat the last row (always valid); their results are not stored.
            for (i, p) in rows.iter_mut().enumerate().take(mc.div_ceil(mr) * mr) {
                let r = (ic + i).min(m - 1);
                // `gemm` checked row_offset(m - 1) + row_span <= data.len(); offsets grow with r.
                *p = data[a.row_offset(r)..].as_ptr();
            }
            for jp in 0..panels {
                let cols = nr.min(n - jp * nr);
                let bp = &b.data[(jp * k + pc) * nr..(jp * k + pc + kc) * nr];
                for blk in 0..mc.div_ceil(mr) {
                    // SAFETY: each row pointer is readable for row_span floats (checked above) and
                    // every segment stays within row_span; bp holds kc*nr floats; tile holds
                    // MAX_TILE >= mr*nr floats; `gemm` checked the CPU supports K.
                    unsafe { K::run(segs, rows[blk * mr..].as_ptr(), bp.as_ptr(), tile.as_mut_ptr()) };
                    let row0 = ic + blk * mr;
                    for i in 0..mr.min(m - row0) {
                        let off = c_map.offset(row0 + i) + jp * nr;
                        let crow = &mut c[off..off + cols];
                        let trow = &tile[i * nr..i * nr + cols];
                        if first {
                            crow.copy_from_slice(trow);
                        } else {
                            for (cv, &tv) in crow.iter_mut().zip(trow) {
                                *cv += tv;
                            }
                        }
                        if last {
                            apply_epilogue(crow, off, jp * nr, &epi);
                        }
                    }
                }
            }
            ic += mc;
        }
        pc += kc;
        if last {
            break;
        }
    }
}

#[inline]
fn apply_epilogue(crow: &mut [f32], off: usize, col0: usize, epi: &Epilogue<'_>) {
    if let Some(bias) = epi.bias {
        for (cv, &bv) in crow.iter_mut().zip(&bias[col0..]) {
            *cv += bv;
        }
    }
    if let Some(r) = epi.residual {
        for (cv, &rv) in crow.iter_mut().zip(&r[off..]) {
            *cv += rv;
        }
    }
    if epi.relu {
        for cv in crow.iter_mut() {
            *cv = cv.max(0.0);
        }
    }
}
