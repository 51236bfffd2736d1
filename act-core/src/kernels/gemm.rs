//! The GEMM driver: C = A B (+ bias, + residual, ReLU), blocked over k (KC) and rows (MC). B is
//! prepacked in panels; A is read in place through row pointers and segments (f32 weights; f16
//! weights too, their panel slice widened to f32 once per block) or converted to bf16 / int8 once
//! per block (those compute paths): a `TileSource` each, under one loop nest.
//! Work is split over the executor's parts by row blocks, or by column panels when rows are few
//! or B is wide (see `split`). Allocation-free.
use super::exec::{run_dynamic, Executor};
use super::kernel::{Bf16Kernel, F16Kernel, Int8Kernel, Kernel, Segment};
use super::pack::{int8_blocks, packed_b_len_bf16, packed_b_len_int8, ASource, BData, PackedBRef, RowMap, K_BLOCK};
use super::Isa;
use core::ops::Range;
use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};

/// Depth of one k block: a KC x NR panel slice stays in L1 (shared with the int8 packing, whose
/// corrections are per k block).
const KC: usize = K_BLOCK;
/// Rows of one block (a multiple of every kernel's MR): its A rows stay in L2 across panels.
const MC: usize = 96;
/// Largest MR x NR tile of any kernel (AMX's 32 x 32; AVX-512's is 6 x 32).
const MAX_TILE: usize = 32 * 32;
/// Widest panel of any kernel (AVX-512's 32 columns).
const MAX_NR: usize = 32;
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
pub(super) fn bf16_gemm_on<K: Bf16Kernel>(a: &impl ASource, b: PackedBRef<'_>, c: &mut [f32], c_map: RowMap, exec: &dyn Executor) {
    let BData::Bf16(d) = b.data else { panic!("bf16_gemm_on needs bf16 weights") };
    assert!(b.nr == K::NR && a.cols() == b.k && c.len() >= c_map.offset(a.rows() - 1) + b.n);
    split(a, b, OutPtr(c.as_mut_ptr()), c_map, Epilogue::default(), exec, || Bf16Rows::<K>::new(d, b.k));
}

/// int8 weights on a kernel the caller names, as `bf16_gemm_on`.
#[cfg(all(test, target_arch = "x86_64"))]
pub(super) fn int8_gemm_on<K: Int8Kernel>(a: &impl ASource, b: PackedBRef<'_>, c: &mut [f32], c_map: RowMap, exec: &dyn Executor) {
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

/// How the tiles of one block are computed: which A rows a block needs prepared and how one
/// MR x NR tile is made from them and a B panel. The driver (`block`) owns the loops over k
/// blocks, row blocks, panels and tiles; a source owns its scratch (made per work item, on the
/// stack of the part running it).
trait TileSource {
    const MR: usize;
    const NR: usize;
    /// Makes ready the `n_rows` rows of A from `ic` on (rows past `a.rows()` repeat the last one;
    /// their results are not stored) for a k block of depth `kc` whose segments are `segs`.
    fn prepare(&mut self, a: &impl ASource, segs: &[Segment], kc: usize, ic: usize, n_rows: usize);
    /// Makes ready panel `jp`'s slice of the k block (`pc`, `kc`) before the tiles of one row
    /// block use it (most sources read the packed panel in place).
    fn panel(&mut self, _jp: usize, _pc: usize, _kc: usize) {}
    /// `tile` = prepared rows `blk * MR ..` times panel `jp` over the k block (`pc`, `kc`).
    fn tile(&self, segs: &[Segment], blk: usize, jp: usize, pc: usize, kc: usize, tile: &mut [f32; MAX_TILE]);
}

/// f32 weights: the microkernel reads A in place through row pointers.
struct InPlaceRows<'b, K> {
    b: PackedBRef<'b>,
    rows: [*const f32; MC],
    kernel: core::marker::PhantomData<K>,
}

impl<'b, K: Kernel> InPlaceRows<'b, K> {
    fn new(b: PackedBRef<'b>) -> Self {
        InPlaceRows { b, rows: [core::ptr::null(); MC], kernel: core::marker::PhantomData }
    }
}

impl<K: Kernel> TileSource for InPlaceRows<'_, K> {
    const MR: usize = K::MR;
    const NR: usize = K::NR;

    fn prepare(&mut self, a: &impl ASource, _: &[Segment], _: usize, ic: usize, n_rows: usize) {
        let data = a.data();
        for (i, p) in self.rows.iter_mut().enumerate().take(n_rows) {
            // `gemm_raw` checked row_offset(m - 1) + row_span <= data.len(); offsets grow with r.
            *p = data[a.row_offset((ic + i).min(a.rows() - 1))..].as_ptr();
        }
    }

    #[inline]
    fn tile(&self, segs: &[Segment], blk: usize, jp: usize, pc: usize, kc: usize, tile: &mut [f32; MAX_TILE]) {
        let (k, nr) = (self.b.k, K::NR);
        let (b0, b1) = ((jp * k + pc) * nr, (jp * k + pc + kc) * nr);
        let rows = self.rows[blk * K::MR..].as_ptr();
        // SAFETY: each row pointer is readable for row_span floats (`gemm_raw` checked) and every
        // segment stays within row_span; B's slice holds kc*nr values; tile holds MAX_TILE >=
        // mr*nr floats; `gemm_raw` checked the CPU supports K (and F16C for f16 weights).
        unsafe {
            match self.b.data {
                BData::F32(d) => K::run(segs, rows, d[b0..b1].as_ptr(), tile.as_mut_ptr()),
                BData::F16(_) => unreachable!("f16 weights go to WidenedF16Rows"),
                BData::Bf16(_) => unreachable!("bf16 weights go to Bf16Rows"),
                BData::F16Compute(_) => unreachable!("fp16 compute goes to F16Rows"),
                BData::Int8 { .. } => unreachable!("int8 goes to Int8Rows"),
            }
        }
    }
}

/// f16 weights (storage only): each panel's KC x NR slice is widened to f32 once per row block and
/// the f32 kernel runs on it, so the conversion is shared by the MC / MR tiles of the block instead
/// of repeated in each (widening in every tile made f16 weights 1.15x slower than f32 on Zen 4).
/// Widening is exact, so the results equal the f32 path's on the same (rounded) weights.
struct WidenedF16Rows<'b, K> {
    rows: InPlaceRows<'b, K>,
    /// B as halves, `Kernel` panel layout.
    d: &'b [u16],
    /// The current panel slice, widened: kc rows of NR floats.
    b32: [f32; KC * MAX_NR],
}

impl<'b, K: Kernel> WidenedF16Rows<'b, K> {
    fn new(b: PackedBRef<'b>, d: &'b [u16]) -> Self {
        const { assert!(K::NR <= MAX_NR, "the widened panel buffer holds MAX_NR columns") };
        WidenedF16Rows { rows: InPlaceRows::new(b), d, b32: [0.0; KC * MAX_NR] }
    }
}

impl<K: Kernel> TileSource for WidenedF16Rows<'_, K> {
    const MR: usize = K::MR;
    const NR: usize = K::NR;

    fn prepare(&mut self, a: &impl ASource, segs: &[Segment], kc: usize, ic: usize, n_rows: usize) {
        self.rows.prepare(a, segs, kc, ic, n_rows);
    }

    fn panel(&mut self, jp: usize, pc: usize, kc: usize) {
        let nr = K::NR;
        let b0 = (jp * self.rows.b.k + pc) * nr;
        // SAFETY: `gemm_raw` admitted f16 weights only where the CPU supports K (and F16C).
        unsafe { K::widen_f16(&self.d[b0..b0 + kc * nr], &mut self.b32[..kc * nr]) };
    }

    #[inline]
    fn tile(&self, segs: &[Segment], blk: usize, _: usize, _: usize, kc: usize, tile: &mut [f32; MAX_TILE]) {
        let rows = self.rows.rows[blk * K::MR..].as_ptr();
        debug_assert!(kc * K::NR <= self.b32.len());
        // SAFETY: as `InPlaceRows::tile`, with B the widened panel slice (kc * NR floats, made by
        // `panel` for this panel and k block).
        unsafe { K::run(segs, rows, self.b32.as_ptr(), tile.as_mut_ptr()) };
    }
}

/// bf16 weights on a `Bf16Kernel` (AVX-512 BF16, Arm BF16). The A rows of one MC x KC block are
/// converted to bf16 once (their segments joined into one contiguous run, so conv1's odd 21-value
/// kernel rows pair up; an odd run is padded with a zero that meets B's zero row) and reused across
/// all panels.
struct Bf16Rows<'b, K: Bf16Kernel> {
    /// B in k pairs (`pack::bf16_index`).
    d: &'b [u16],
    k: usize,
    /// Prepared rows, `lda` halves apart.
    a16: [u16; MC * KC],
    lda: usize,
    kernel: core::marker::PhantomData<K>,
}

const _: () = assert!(KC.is_multiple_of(2), "bf16 k blocks must start on a pair");
#[cfg(target_arch = "x86_64")]
const _: () = assert!(
    MC.is_multiple_of(<super::avx512::Avx512 as Bf16Kernel>::MR)
        && <super::avx512::Avx512 as Bf16Kernel>::NR == <super::avx512::Avx512 as Kernel>::NR
        && MC.is_multiple_of(<super::amx::Amx as Bf16Kernel>::MR)
        && <super::amx::Amx as Bf16Kernel>::NR == <super::avx512::Avx512 as Kernel>::NR
        && <super::amx::Amx as Bf16Kernel>::MR * <super::amx::Amx as Bf16Kernel>::NR <= MAX_TILE,
    "the bf16 tile must use the panel width weights are packed with (Isa::nr)"
);
#[cfg(target_arch = "aarch64")]
const _: () = assert!(MC.is_multiple_of(<super::neon::Neon as Bf16Kernel>::MR));

impl<'b, K: Bf16Kernel> Bf16Rows<'b, K> {
    // Unused on architectures without a bf16 kernel.
    #[allow(dead_code)]
    fn new(d: &'b [u16], k: usize) -> Self {
        Bf16Rows { d, k, a16: [0; MC * KC], lda: 0, kernel: core::marker::PhantomData }
    }
}

impl<K: Bf16Kernel> TileSource for Bf16Rows<'_, K> {
    const MR: usize = K::MR;
    const NR: usize = K::NR;

    fn prepare(&mut self, a: &impl ASource, segs: &[Segment], kc: usize, ic: usize, n_rows: usize) {
        // SAFETY: `gemm_raw` admitted bf16 weights only where the CPU has K's instructions; this
        // runs on the thread that runs the block's tiles.
        unsafe { K::setup() };
        self.lda = 2 * kc.div_ceil(2);
        let (data, lda) = (a.data(), self.lda);
        for i in 0..n_rows {
            let row = &data[a.row_offset((ic + i).min(a.rows() - 1))..];
            let dst = &mut self.a16[i * lda..(i + 1) * lda];
            let mut q = 0;
            for s in segs {
                // SAFETY: `gemm_raw` admitted bf16 weights only where the CPU has K's instructions.
                unsafe { K::to_bf16(&row[s.a_off..s.a_off + s.len], &mut dst[q..q + s.len]) };
                q += s.len;
            }
            if q < lda {
                dst[q] = 0;
            }
        }
    }

    #[inline]
    fn tile(&self, _: &[Segment], blk: usize, jp: usize, pc: usize, kc: usize, tile: &mut [f32; MAX_TILE]) {
        let (mr, nr, lda) = (Self::MR, Self::NR, self.lda);
        let kp = kc.div_ceil(2);
        let b0 = (jp * self.k.div_ceil(2) + pc / 2) * nr * 2;
        let bs = &self.d[b0..b0 + kp * nr * 2];
        let ab = &self.a16[blk * mr * lda..(blk + 1) * mr * lda];
        // SAFETY: `ab` holds MR rows of lda = 2 kp halves, `bs` kp * 2 NR halves, `tile` MAX_TILE >=
        // MR * NR floats; the CPU has K's bf16 instructions (checked by `gemm_raw`).
        unsafe { K::run_bf16(kp, ab.as_ptr(), lda, bs.as_ptr(), tile.as_mut_ptr()) };
    }
}

impl<K: Bf16Kernel> Drop for Bf16Rows<'_, K> {
    fn drop(&mut self) {
        // SAFETY: a source lives on the thread of its work item (`split` makes it inside the
        // job); K's instructions were admitted by `gemm_raw`.
        unsafe { K::teardown() };
    }
}

/// The fp16 compute path on an `F16Kernel` (Arm FP16 arithmetic): the A rows of one MC x KC block
/// are converted to f16 once (segments joined) and reused across all panels; B is f16 in the
/// `Kernel` panel layout. Each tile is one k block accumulated in f16; the driver adds blocks in
/// f32 (`store_tile`), so f16 rounding accumulates over at most KC products.
struct F16Rows<'b, K> {
    /// B as halves, `Kernel` panel layout.
    d: &'b [u16],
    k: usize,
    /// Prepared rows, `lda` halves apart.
    a16: [u16; MC * KC],
    lda: usize,
    kernel: core::marker::PhantomData<K>,
}

#[cfg(target_arch = "aarch64")]
const _: () = assert!(
    MC.is_multiple_of(<super::neon::Neon as F16Kernel>::MR)
        && <super::neon::Neon as F16Kernel>::NR == <super::neon::Neon as Kernel>::NR
        && <super::neon::Neon as Bf16Kernel>::NR == <super::neon::Neon as Kernel>::NR,
    "the fp16 and bf16 tiles must use the panel width weights are packed with (Isa::nr)"
);

impl<'b, K: F16Kernel> F16Rows<'b, K> {
    // Unused on architectures without an fp16 kernel.
    #[allow(dead_code)]
    fn new(d: &'b [u16], k: usize) -> Self {
        F16Rows { d, k, a16: [0; MC * KC], lda: 0, kernel: core::marker::PhantomData }
    }
}

impl<K: F16Kernel> TileSource for F16Rows<'_, K> {
    const MR: usize = K::MR;
    const NR: usize = K::NR;

    fn prepare(&mut self, a: &impl ASource, segs: &[Segment], kc: usize, ic: usize, n_rows: usize) {
        self.lda = kc;
        let data = a.data();
        for i in 0..n_rows {
            let row = &data[a.row_offset((ic + i).min(a.rows() - 1))..];
            let dst = &mut self.a16[i * kc..(i + 1) * kc];
            let mut q = 0;
            for s in segs {
                // Rounded to nearest even (vectorised by `half` where the CPU converts f16); beyond
                // f16's range (65504) a value becomes infinite.
                let halves: &mut [half::f16] = dst[q..q + s.len].reinterpret_cast_mut();
                halves.convert_from_f32_slice(&row[s.a_off..s.a_off + s.len]);
                q += s.len;
            }
        }
    }

    #[inline]
    fn tile(&self, _: &[Segment], blk: usize, jp: usize, pc: usize, kc: usize, tile: &mut [f32; MAX_TILE]) {
        let (mr, nr, lda) = (Self::MR, Self::NR, self.lda);
        let b0 = (jp * self.k + pc) * nr;
        let bs = &self.d[b0..b0 + kc * nr];
        let ab = &self.a16[blk * mr * lda..(blk + 1) * mr * lda];
        // SAFETY: `ab` holds MR rows of lda = kc halves, `bs` kc * NR halves, `tile` MAX_TILE >=
        // MR * NR floats; the CPU has K's fp16 arithmetic (checked by `gemm_raw`).
        unsafe { K::run_fp16(kc, ab.as_ptr(), lda, bs.as_ptr(), tile.as_mut_ptr()) };
    }
}

/// Int8 weights, borrowed (see `pack::Int8Weights`).
#[derive(Clone, Copy)]
struct Int8B<'b> {
    q: &'b [i8],
    scale: &'b [f32],
    colsum: &'b [i32],
    k: usize,
    n_pad: usize,
}

/// The int8 compute path on an `Int8Kernel`: each A row of one MC x KC block is rounded to
/// unsigned bytes once, over its own range (min and max of the row's joined segments in this k
/// block, 0 included so zero padding stays exact: a finer grain than per row, so one large value
/// costs precision in one block only) and reused across all panels. The quad padding of a short
/// last block meets B's zero rows.
struct Int8Rows<'b, K: Int8Kernel> {
    w: Int8B<'b>,
    /// Prepared rows, `lda` values apart.
    aq: [K::A; MC * KC],
    a_scale: [f32; MC],
    a_zero: [i32; MC],
    lda: usize,
    kernel: core::marker::PhantomData<K>,
}

const _: () = assert!(KC.is_multiple_of(4), "int8 k blocks must start on a quad");
#[cfg(target_arch = "x86_64")]
const _: () = assert!(
    MC.is_multiple_of(<super::avx512_vnni::Avx512Vnni as Int8Kernel>::MR)
        && <super::avx512_vnni::Avx512Vnni as Int8Kernel>::NR == <super::avx512::Avx512 as Kernel>::NR
        && MC.is_multiple_of(<super::amx::Amx as Int8Kernel>::MR)
        && <super::amx::Amx as Int8Kernel>::NR == <super::avx512::Avx512 as Kernel>::NR
        && MC.is_multiple_of(<super::avx_vnni::AvxVnni as Int8Kernel>::MR)
        && <super::avx_vnni::AvxVnni as Int8Kernel>::NR == <super::avx2::Avx2 as Kernel>::NR
        && MC.is_multiple_of(<super::avx2_int8::Avx2Int8 as Int8Kernel>::MR)
        && <super::avx2_int8::Avx2Int8 as Int8Kernel>::NR == <super::avx2::Avx2 as Kernel>::NR
        && <super::scalar::Scalar as Int8Kernel>::NR == <super::scalar::Scalar as Kernel>::NR,
    "the int8 tile must use the panel width weights are packed with (Isa::nr)"
);

impl<'b, K: Int8Kernel> Int8Rows<'b, K> {
    fn new(w: Int8B<'b>) -> Self {
        Int8Rows { w, aq: [K::A::default(); MC * KC], a_scale: [0.0; MC], a_zero: [0; MC], lda: 0, kernel: core::marker::PhantomData }
    }
}

impl<K: Int8Kernel> Drop for Int8Rows<'_, K> {
    fn drop(&mut self) {
        // SAFETY: as for `Bf16Rows`.
        unsafe { K::teardown() };
    }
}

/// Scale, zero point and `1 / scale` of an activation range: `a = scale * (u - zero)` with u in
/// 0..=255 and 0 exactly representable. A NaN or infinite bound makes the scale NaN, so the
/// outputs are non-finite too (the policy reports them) rather than silently finite.
pub(crate) fn int8_range(lo: f32, hi: f32) -> (f32, i32, f32) {
    // Checked before widening to 0: f32::min / max would drop a NaN.
    if lo.is_nan() || hi.is_nan() || lo.is_infinite() || hi.is_infinite() {
        return (f32::NAN, 0, 0.0);
    }
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let range = hi - lo;
    if range == 0.0 {
        return (0.0, 0, 0.0);
    }
    // Finite bounds whose difference overflows (beyond ~1.7e38 each way) still have a finite
    // scale: computed from the halves' sum, (hi/2 - lo/2) / 127.5.
    let (scale, inv) = if range.is_finite() { (range / 255.0, 255.0 / range) } else { ((hi * 0.5 - lo * 0.5) / 127.5, 127.5 / (hi * 0.5 - lo * 0.5)) };
    if !inv.is_finite() {
        // A subnormal range: the values are zero for every purpose.
        return (0.0, 0, 0.0);
    }
    let zero = super::pack::round_ties_even_small(-lo * inv) as i32;
    (scale, zero, inv)
}

impl<K: Int8Kernel> TileSource for Int8Rows<'_, K> {
    const MR: usize = K::MR;
    const NR: usize = K::NR;

    fn prepare(&mut self, a: &impl ASource, segs: &[Segment], kc: usize, ic: usize, n_rows: usize) {
        // SAFETY: `gemm_raw` admitted int8 weights only where the CPU has K's instructions; this
        // runs on the thread that runs the block's tiles.
        unsafe { K::setup() };
        self.lda = 4 * kc.div_ceil(4);
        let (data, lda) = (a.data(), self.lda);
        for i in 0..n_rows {
            let row = &data[a.row_offset((ic + i).min(a.rows() - 1))..];
            let (mut lo, mut hi) = (0.0f32, 0.0f32);
            for s in segs {
                // SAFETY: `gemm_raw` admitted int8 weights only where the CPU has K's instructions.
                let (l, h) = unsafe { K::min_max(&row[s.a_off..s.a_off + s.len]) };
                // NaN sticks (f32::min / max would drop it).
                (lo, hi) = if l.is_nan() || lo.is_nan() { (f32::NAN, f32::NAN) } else { (lo.min(l), hi.max(h)) };
            }
            let (scale, zero, inv) = int8_range(lo, hi);
            (self.a_scale[i], self.a_zero[i]) = (scale, zero);
            let dst = &mut self.aq[i * lda..(i + 1) * lda];
            let mut q = 0;
            for s in segs {
                // SAFETY: as above.
                unsafe { K::quantize(&row[s.a_off..s.a_off + s.len], inv, zero, &mut dst[q..q + s.len]) };
                q += s.len;
            }
            dst[q..].fill(K::A::default());
        }
    }

    #[inline]
    fn tile(&self, _: &[Segment], blk: usize, jp: usize, pc: usize, kc: usize, tile: &mut [f32; MAX_TILE]) {
        let (mr, nr, lda, w) = (Self::MR, Self::NR, self.lda, &self.w);
        let kq = kc.div_ceil(4);
        let b0 = (jp * w.k.div_ceil(4) + pc / 4) * nr * 4;
        let bs = &w.q[b0..b0 + kq * nr * 4];
        let ab = &self.aq[blk * mr * lda..(blk + 1) * mr * lda];
        let (sa, za) = (&self.a_scale[blk * mr..(blk + 1) * mr], &self.a_zero[blk * mr..(blk + 1) * mr]);
        let sb = &w.scale[jp * nr..(jp + 1) * nr];
        let colsum = &w.colsum[(pc / KC) * w.n_pad + jp * nr..][..nr];
        // SAFETY: `ab` holds MR rows of lda = 4 kq values, `bs` kq * 4 NR bytes, the scales, zero
        // points and sums MR / NR values, `tile` MAX_TILE >= MR * NR floats; the CPU has K's int8
        // instructions (checked by `gemm_raw`).
        unsafe { K::run_int8(kq, ab.as_ptr(), lda, bs.as_ptr(), sa.as_ptr(), za.as_ptr(), sb.as_ptr(), colsum.as_ptr(), tile.as_mut_ptr()) };
    }
}

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
