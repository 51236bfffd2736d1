//! The GEMM driver: C = A B (+ bias, + residual, ReLU), blocked over k (KC) and rows (MC). B is
//! prepacked in panels; A is read in place through row pointers and segments (f32 weights; f16
//! weights too, their panel slice widened to f32 once per block) or converted to bf16 / int8 once
//! per block (those compute paths): a `TileSource` each, under one loop nest.
//! Work is split over the executor's parts by row blocks, or by column panels when rows are few
//! or B is wide (see `split`). Allocation-free.
use super::exec::{run_dynamic, Executor};
use super::kernel::Segment;
use super::pack::{int8_blocks, packed_b_len_bf16, packed_b_len_int8, ASource, BData, PackedBRef, RowMap};
#[cfg(target_arch = "aarch64")]
use super::tile_source::F16Rows;
use super::tile_source::{Bf16Rows, InPlaceRows, Int8B, Int8Rows, TileSource, WidenedF16Rows, KC, MAX_TILE, MC};
use super::Isa;
use core::ops::Range;

/// Fewest rows of A for the AMX kernels (32-row tiles): a GEMM with fewer (the state projection's
/// one row) wastes most of each tile and runs on AVX-512's 6-row tiles instead. Half a tile, not
/// measured yet on AMX hardware.
#[cfg(target_arch = "x86_64")]
const AMX_MIN_ROWS: usize = 16;
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
    // Once for every weight storage: each path below runs `isa`'s instructions.
    assert!(isa.is_supported(), "gemm: {isa:?} is not available on this CPU");
    assert_eq!(b.nr, isa.nr(), "gemm: B packed for another instruction set");
    match b.data {
        BData::Bf16(d) => {
            assert!(isa.supports_bf16(), "gemm: bf16 weights need a bf16 kernel (AVX-512 BF16 or Arm BF16); {isa:?} on this CPU has none");
            assert_eq!(d.len(), packed_b_len_bf16(b.k, b.n, b.nr), "gemm: packed B has the wrong length");
        }
        BData::Int8 { q, scale, colsum } => {
            assert!(isa.supports_int8(), "gemm: int8 weights need an int8 kernel (AVX-512 VNNI or AVX2); {isa:?} on this CPU has none");
            let n_pad = b.n.div_ceil(b.nr) * b.nr;
            assert_eq!(q.len(), packed_b_len_int8(b.k, b.n, b.nr), "gemm: packed B has the wrong length");
            assert!(scale.len() == n_pad && colsum.len() == int8_blocks(b.k) * n_pad, "gemm: int8 scales have the wrong length");
        }
        _ => assert_eq!(b.data.len(), b.n.div_ceil(b.nr) * b.nr * b.k, "gemm: packed B has the wrong length"),
    }
    if matches!(b.data, BData::F16(_)) {
        assert!(isa.supports_f16(), "gemm: f16 weights need F16C on this instruction set");
    }
    if matches!(b.data, BData::F16Compute(_)) {
        assert!(isa.supports_f16_compute(), "gemm: the fp16 compute path needs FP16 arithmetic; {isa:?} on this CPU has none");
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
    if let BData::Bf16(d) = b.data {
        // Admitted above only where `isa` has a bf16 kernel.
        return match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 if m >= AMX_MIN_ROWS && super::amx::usable() => split(a, b, out, c_map, epi, exec, || Bf16Rows::<super::amx::Amx>::new(d, b.k)),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => split(a, b, out, c_map, epi, exec, || Bf16Rows::<super::avx512::Avx512>::new(d, b.k)),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => split(a, b, out, c_map, epi, exec, || Bf16Rows::<super::neon::Neon>::new(d, b.k)),
            _ => unreachable!("bf16 weights admitted for {isa:?}, which has no bf16 kernel"),
        };
    }
    if let BData::Int8 { q, scale, colsum } = b.data {
        let w = Int8B { q, scale, colsum, k: b.k, n_pad: b.n.div_ceil(b.nr) * b.nr };
        // Admitted above only where `isa` has an int8 kernel.
        return match isa {
            Isa::Scalar => split(a, b, out, c_map, epi, exec, || Int8Rows::<super::scalar::Scalar>::new(w)),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 if m >= AMX_MIN_ROWS && super::amx::usable() => split(a, b, out, c_map, epi, exec, || Int8Rows::<super::amx::Amx>::new(w)),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => split(a, b, out, c_map, epi, exec, || Int8Rows::<super::avx512_vnni::Avx512Vnni>::new(w)),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 if isa.has_avx_vnni() => split(a, b, out, c_map, epi, exec, || Int8Rows::<super::avx_vnni::AvxVnni>::new(w)),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => split(a, b, out, c_map, epi, exec, || Int8Rows::<super::avx2_int8::Avx2Int8>::new(w)),
            _ => unreachable!("int8 weights admitted for {isa:?}, which has no int8 kernel"),
        };
    }
    if let BData::F16(d) = b.data {
        // Admitted above only where `isa` has F16C (or its equivalent).
        return match isa {
            Isa::Scalar => split(a, b, out, c_map, epi, exec, || WidenedF16Rows::<super::scalar::Scalar>::new(b, d)),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => split(a, b, out, c_map, epi, exec, || WidenedF16Rows::<super::avx2::Avx2>::new(b, d)),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => split(a, b, out, c_map, epi, exec, || WidenedF16Rows::<super::avx512::Avx512>::new(b, d)),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => split(a, b, out, c_map, epi, exec, || WidenedF16Rows::<super::neon::Neon>::new(b, d)),
            #[allow(unreachable_patterns)]
            _ => panic!("gemm: {isa:?} kernels do not exist on this architecture"),
        };
    }
    if let BData::F16Compute(d) = b.data {
        // Admitted above only where `isa` has an fp16 kernel.
        #[cfg(target_arch = "aarch64")]
        if isa == Isa::Neon {
            return split(a, b, out, c_map, epi, exec, || F16Rows::<super::neon::Neon>::new(d, b.k));
        }
        unreachable!("fp16 compute admitted for {isa:?}, which has no fp16 kernel ({} values)", d.len());
    }
    match isa {
        Isa::Scalar => split(a, b, out, c_map, epi, exec, || InPlaceRows::<super::scalar::Scalar>::new(b)),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => split(a, b, out, c_map, epi, exec, || InPlaceRows::<super::avx2::Avx2>::new(b)),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => split(a, b, out, c_map, epi, exec, || InPlaceRows::<super::avx512::Avx512>::new(b)),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => split(a, b, out, c_map, epi, exec, || InPlaceRows::<super::neon::Neon>::new(b)),
        #[allow(unreachable_patterns)]
        _ => panic!("gemm: {isa:?} kernels do not exist on this architecture"),
    }
}

/// bf16 weights on a kernel the caller names (the AMX tests run its arithmetic on an emulator
/// through this driver), no epilogue.
#[cfg(all(test, target_arch = "x86_64"))]
pub(super) fn bf16_gemm_on<K: super::kernel::Bf16Kernel>(a: &impl ASource, b: PackedBRef<'_>, c: &mut [f32], c_map: RowMap, exec: &dyn Executor) {
    let BData::Bf16(d) = b.data else { panic!("bf16_gemm_on needs bf16 weights") };
    assert!(b.nr == K::NR && a.cols() == b.k && c.len() >= c_map.offset(a.rows() - 1) + b.n);
    split(a, b, OutPtr(c.as_mut_ptr()), c_map, Epilogue::default(), exec, || Bf16Rows::<K>::new(d, b.k));
}

/// int8 weights on a kernel the caller names, as `bf16_gemm_on`.
#[cfg(all(test, target_arch = "x86_64"))]
pub(super) fn int8_gemm_on<K: super::kernel::Int8Kernel>(a: &impl ASource, b: PackedBRef<'_>, c: &mut [f32], c_map: RowMap, exec: &dyn Executor) {
    let BData::Int8 { q, scale, colsum } = b.data else { panic!("int8_gemm_on needs int8 weights") };
    assert!(b.nr == K::NR && a.cols() == b.k && c.len() >= c_map.offset(a.rows() - 1) + b.n);
    let w = Int8B { q, scale, colsum, k: b.k, n_pad: b.n.div_ceil(b.nr) * b.nr };
    split(a, b, OutPtr(c.as_mut_ptr()), c_map, Epilogue::default(), exec, || Int8Rows::<K>::new(w));
}

/// The output pointer, shared by the parts of one GEMM.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: parts write disjoint elements (disjoint panels or disjoint rows), see `split`.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

/// Work items per part of a parallel GEMM: enough that a part on a busy core can hand its share
/// to the others (see `run_dynamic`).
const ITEMS_PER_PART: usize = 4;
/// Fewest panels per item of a split by panels: each item reads all of A, block by block, and uses
/// each A block for its panels only; with fewer the A traffic shows (2-thread FFN2 10 % slower).
const MIN_PANELS_PER_ITEM: usize = 4;
/// Columns from which a GEMM with few rows is split by panels: each item of a split by rows reads
/// all of B, which for wide B (the encoder's first FFN layer) costs more than re-reading A.
const WIDE_N: usize = 1024;

#[allow(clippy::too_many_arguments)]
fn split<T: TileSource>(a: &impl ASource, b: PackedBRef<'_>, c: OutPtr, c_map: RowMap, epi: Epilogue<'_>, exec: &dyn Executor, source: impl Fn() -> T + Sync) {
    let (m, n, k) = (a.rows(), b.n, b.k);
    let panels = n.div_ceil(T::NR);
    let parts = exec.parts();
    if parts == 1 || m * n * k < PARALLEL_MIN_MACS {
        return block(a, b, &mut source(), c, c_map, epi, 0..m, 0..panels);
    }
    // Split the rows (in MR multiples) unless there are too few of them, or B is wide and A short
    // (measured, 2 threads: convolutions and GEMMs with n <= 512 or m >= 4 MC gain 5-25 % from
    // rows; the 302 x 512 x 3200 FFN layer 7 % from panels). Items are claimed dynamically.
    let blocks = m.div_ceil(T::MR);
    let by_panels = panels >= 2 * parts && (blocks < 2 * parts || (n >= WIDE_N && m < 4 * MC));
    if by_panels {
        let items = (panels / MIN_PANELS_PER_ITEM).clamp(parts, parts * ITEMS_PER_PART);
        let job = |_: usize, t: usize| block(a, b, &mut source(), c, c_map, epi, 0..m, t * panels / items..(t + 1) * panels / items);
        run_dynamic(exec, items, &job);
    } else {
        let items = blocks.min(parts * ITEMS_PER_PART);
        let job = |_: usize, t: usize| {
            let rows = (t * blocks / items * T::MR).min(m)..((t + 1) * blocks / items * T::MR).min(m);
            block(a, b, &mut source(), c, c_map, epi, rows, 0..panels)
        };
        run_dynamic(exec, items, &job);
    }
}

/// Rows `rows` x panels `panels` of C, blocked over k (KC) and rows (MC). Different calls with
/// disjoint row or panel ranges write disjoint elements of C.
#[allow(clippy::too_many_arguments)]
fn block<T: TileSource>(a: &impl ASource, b: PackedBRef<'_>, src: &mut T, c: OutPtr, c_map: RowMap, epi: Epilogue<'_>, rows: Range<usize>, panels: Range<usize>) {
    let (n, k) = (b.n, b.k);
    let (mr, nr) = (T::MR, T::NR);
    debug_assert!(MC.is_multiple_of(mr) && mr * nr <= MAX_TILE);
    if rows.is_empty() || panels.is_empty() {
        return;
    }
    let mut tile = [0.0f32; MAX_TILE];
    let mut segments = [Segment::default(); KC];
    let mut pc = 0;
    // k == 0 still needs one pass to write C = epilogue(0).
    loop {
        let kc = KC.min(k - pc);
        let (first, last) = (pc == 0, pc + kc >= k);
        let nseg = a.segments(pc, kc, &mut segments);
        let segs = &segments[..nseg];
        debug_assert!(segs.iter().all(|s| s.a_off + s.len <= a.row_span()));
        let mut ic = rows.start;
        while ic < rows.end {
            let mc = MC.min(rows.end - ic);
            let blocks = mc.div_ceil(mr);
            src.prepare(a, segs, kc, ic, blocks * mr);
            for jp in panels.clone() {
                let cols = nr.min(n - jp * nr);
                src.panel(jp, pc, kc);
                for blk in 0..blocks {
                    src.tile(segs, blk, jp, pc, kc, &mut tile);
                    let row0 = ic + blk * mr;
                    let tile_rows = TileRows { rows: row0..rows.end.min(row0 + mr), jp, cols, first, last };
                    store_tile(&tile[..mr * nr], nr, tile_rows, c, c_map, &epi);
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

/// Which part of C one register tile covers, and where in the k loop it stands.
struct TileRows {
    rows: Range<usize>,
    jp: usize,
    cols: usize,
    /// The first k block writes C, later ones add to it.
    first: bool,
    /// The last k block applies the epilogue.
    last: bool,
}

/// Store (or add) the valid rows and columns of a tile into C.
#[inline]
fn store_tile(tile: &[f32], nr: usize, t: TileRows, c: OutPtr, c_map: RowMap, epi: &Epilogue<'_>) {
    for (i, r) in t.rows.enumerate() {
        let off = c_map.offset(r) + t.jp * nr;
        // SAFETY: `gemm_raw` checked C holds every row's n columns; the calling part alone writes
        // these rows x this panel's columns (the caller's contract).
        let crow = unsafe { core::slice::from_raw_parts_mut(c.0.add(off), t.cols) };
        let trow = &tile[i * nr..i * nr + t.cols];
        if t.first {
            crow.copy_from_slice(trow);
        } else {
            for (cv, &tv) in crow.iter_mut().zip(trow) {
                *cv += tv;
            }
        }
        if t.last {
            apply_epilogue(crow, off, t.jp * nr, epi);
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
