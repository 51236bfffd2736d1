//! The GEMM driver: C = A B (+ bias, + residual, ReLU), blocked over k (KC) and rows (MC). B is
//! prepacked in panels; A is read in place through row pointers and segments. Work is split over
//! the executor's parts by column panels (or by row blocks when there are few panels).
//! Allocation-free.
use super::exec::Executor;
use super::kernel::{Kernel, Segment};
use super::pack::{ASource, BData, PackedBRef, RowMap};
use super::Isa;
use core::ops::Range;

/// Depth of one k block: a KC x NR panel slice stays in L1.
const KC: usize = 256;
/// Rows of one block (a multiple of every kernel's MR): its A rows stay in L2 across panels.
const MC: usize = 96;
/// Largest MR x NR tile of any kernel.
const MAX_TILE: usize = 6 * 32;
/// Below this many multiply-adds a GEMM runs on one thread (waking workers costs more).
const PARALLEL_MIN_MACS: usize = 1 << 20;

/// What is applied to C after the last k block, in this order: `+ bias[j]`, `+ residual`, ReLU.
#[derive(Clone, Copy, Default)]
pub struct Epilogue<'a> {
    pub bias: Option<&'a [f32]>,
    /// Laid out like C (the same row map).
    pub residual: Option<&'a [f32]>,
    pub relu: bool,
}

/// C[m x n] (rows placed by `c_map`) = A[m x k] B[k x n], then the epilogue, on `exec`'s parts.
///
/// Panics if the shapes disagree, a row of A or C falls outside its buffer, or `isa` is not
/// supported by this CPU.
pub fn gemm(isa: Isa, a: &impl ASource, b: PackedBRef<'_>, c: &mut [f32], c_map: RowMap, epi: Epilogue<'_>, exec: &dyn Executor) {
    // SAFETY: `c` is exclusively borrowed for the whole call.
    unsafe { gemm_raw(isa, a, b, c.as_mut_ptr(), c.len(), c_map, epi, exec) }
}

/// [`gemm`] writing through a raw pointer, so that several threads can fill disjoint parts of
/// one output (attention heads write disjoint column ranges of the same rows).
///
/// # Safety
/// `c` must be valid for writes of `c_len` floats, and no other thread may access the elements
/// this call writes (the rows of `c_map` for rows < m, columns 0..n) while it runs.
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm_raw(isa: Isa, a: &impl ASource, b: PackedBRef<'_>, c: *mut f32, c_len: usize, c_map: RowMap, epi: Epilogue<'_>, exec: &dyn Executor) {
    assert_eq!(a.cols(), b.k, "gemm: A has {} columns but B has {} rows", a.cols(), b.k);
    assert_eq!(b.nr, isa.nr(), "gemm: B packed for another instruction set");
    assert_eq!(b.data.len(), b.n.div_ceil(b.nr) * b.nr * b.k, "gemm: packed B has the wrong length");
    if matches!(b.data, BData::F16(_)) {
        assert!(isa.supports_f16(), "gemm: f16 weights need F16C on this instruction set");
    }
    let (m, n) = (a.rows(), b.n);
    if m == 0 || n == 0 {
        return;
    }
    // Row offsets grow with r for both maps, so the last row bounds them all.
    let c_end = c_map.offset(m - 1) + n;
    assert!(c_len >= c_end, "gemm: C too small");
    if let Some(bias) = epi.bias {
        assert!(bias.len() >= n, "gemm: bias too short");
    }
    if let Some(r) = epi.residual {
        assert!(r.len() >= c_end, "gemm: residual too small");
    }
    assert!(a.row_offset(m - 1) + a.row_span() <= a.data().len(), "gemm: A rows exceed A's buffer");
    let out = OutPtr(c);
    match isa {
        Isa::Scalar => split::<super::scalar::Scalar>(a, b, out, c_map, epi, exec),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => {
            assert!(isa.is_supported(), "gemm: AVX2+FMA not available on this CPU");
            split::<super::avx2::Avx2>(a, b, out, c_map, epi, exec)
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            assert!(isa.is_supported(), "gemm: AVX-512F not available on this CPU");
            split::<super::avx512::Avx512>(a, b, out, c_map, epi, exec)
        }
        #[cfg(not(target_arch = "x86_64"))]
        _ => split::<super::scalar::Scalar>(a, b, out, c_map, epi, exec),
    }
}

/// The output pointer, shared by the parts of one GEMM.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: parts write disjoint elements (disjoint panels or disjoint rows), see `split`.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

fn split<K: Kernel>(a: &impl ASource, b: PackedBRef<'_>, c: OutPtr, c_map: RowMap, epi: Epilogue<'_>, exec: &dyn Executor) {
    let (m, n, k) = (a.rows(), b.n, b.k);
    let panels = n.div_ceil(K::NR);
    let parts = exec.parts();
    if parts == 1 || m * n * k < PARALLEL_MIN_MACS {
        return block::<K>(a, b, c, c_map, epi, 0..m, 0..panels);
    }
    // Split the panels when each part gets at least two, else the rows (in MR multiples).
    if panels >= 2 * parts {
        let job = |t: usize| block::<K>(a, b, c, c_map, epi, 0..m, t * panels / parts..(t + 1) * panels / parts);
        exec.run(&job);
    } else {
        let blocks = m.div_ceil(K::MR);
        let job = |t: usize| {
            let rows = (t * blocks / parts * K::MR).min(m)..((t + 1) * blocks / parts * K::MR).min(m);
            block::<K>(a, b, c, c_map, epi, rows, 0..panels)
        };
        exec.run(&job);
    }
}

/// Rows `rows` x panels `panels` of C. Different calls with disjoint row or panel ranges write
/// disjoint elements of C.
fn block<K: Kernel>(a: &impl ASource, b: PackedBRef<'_>, c: OutPtr, c_map: RowMap, epi: Epilogue<'_>, rows: Range<usize>, panels: Range<usize>) {
    let (m, n, k) = (a.rows(), b.n, b.k);
    let (mr, nr) = (K::MR, K::NR);
    debug_assert!(MC % mr == 0 && mr * nr <= MAX_TILE && mr <= 8);
    if rows.is_empty() || panels.is_empty() {
        return;
    }
    let data = a.data();
    let mut tile = [0.0f32; MAX_TILE];
    let mut row_ptrs = [core::ptr::null::<f32>(); MC];
    let mut segments = [Segment::default(); KC];
    let mut pc = 0;
    // k == 0 still needs one pass to write C = epilogue(0).
    loop {
        let kc = KC.min(k - pc);
        let first = pc == 0;
        let last = pc + kc >= k;
        let nseg = a.segments(pc, kc, &mut segments);
        let segs = &segments[..nseg];
        debug_assert!(segs.iter().all(|s| s.a_off + s.len <= a.row_span()));
        let mut ic = rows.start;
        while ic < rows.end {
            let mc = MC.min(rows.end - ic);
            // Rows past the range repeat a valid row; their results are not stored.
            for (i, p) in row_ptrs.iter_mut().enumerate().take(mc.div_ceil(mr) * mr) {
                let r = (ic + i).min(m - 1);
                // `gemm_raw` checked row_offset(m - 1) + row_span <= data.len(); offsets grow with r.
                *p = data[a.row_offset(r)..].as_ptr();
            }
            for jp in panels.clone() {
                let cols = nr.min(n - jp * nr);
                let (b0, b1) = ((jp * k + pc) * nr, (jp * k + pc + kc) * nr);
                for blk in 0..mc.div_ceil(mr) {
                    // SAFETY: each row pointer is readable for row_span floats (checked above) and
                    // every segment stays within row_span; B's slice holds kc*nr values; tile holds
                    // MAX_TILE >= mr*nr floats; `gemm_raw` checked the CPU supports K.
                    unsafe {
                        match b.data {
                            BData::F32(d) => K::run(segs, row_ptrs[blk * mr..].as_ptr(), d[b0..b1].as_ptr(), tile.as_mut_ptr()),
                            BData::F16(d) => K::run_f16(segs, row_ptrs[blk * mr..].as_ptr(), d[b0..b1].as_ptr(), tile.as_mut_ptr()),
                        }
                    };
                    let row0 = ic + blk * mr;
                    for i in 0..mr.min(rows.end - row0) {
                        let off = c_map.offset(row0 + i) + jp * nr;
                        // SAFETY: `gemm_raw` checked C holds every row's n columns; this part alone
                        // writes rows in `rows` x columns of `panels` (the caller's contract).
                        let crow = unsafe { core::slice::from_raw_parts_mut(c.0.add(off), cols) };
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
