//! How the GEMM driver (`gemm.rs`) gets its tiles: one `TileSource` per weight storage and compute
//! path, each preparing the A rows of a block its way (in place for f32; converted once per block
//! to bf16, f16 or int8) and running its microkernel on them. The blocking constants they share
//! with the driver live here too.
use super::kernel::{Bf16Kernel, F16Kernel, Int8Kernel, Kernel, Segment};
use super::pack::{ASource, BData, PackedBRef, K_BLOCK};
use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
/// Depth of one k block: a KC x NR panel slice stays in L1 (shared with the int8 packing, whose
/// corrections are per k block).
pub(super) const KC: usize = K_BLOCK;
/// Rows of one block (a multiple of every kernel's MR): its A rows stay in L2 across panels.
pub(super) const MC: usize = 96;
/// Largest MR x NR tile of any kernel (AMX's 32 x 32; AVX-512's is 6 x 32).
pub(super) const MAX_TILE: usize = 32 * 32;
/// Widest panel of any kernel (AVX-512's 32 columns).
pub(super) const MAX_NR: usize = 32;

/// How the tiles of one block are computed: which A rows a block needs prepared and how one
/// MR x NR tile is made from them and a B panel. The driver (`block`) owns the loops over k
/// blocks, row blocks, panels and tiles; a source owns its scratch (made per work item, on the
/// stack of the part running it).
pub(super) trait TileSource {
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
pub(super) struct InPlaceRows<'b, K> {
    b: PackedBRef<'b>,
    rows: [*const f32; MC],
    kernel: core::marker::PhantomData<K>,
}

impl<'b, K: Kernel> InPlaceRows<'b, K> {
    pub(super) fn new(b: PackedBRef<'b>) -> Self {
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
pub(super) struct WidenedF16Rows<'b, K> {
    rows: InPlaceRows<'b, K>,
    /// B as halves, `Kernel` panel layout.
    d: &'b [u16],
    /// The current panel slice, widened: kc rows of NR floats.
    b32: [f32; KC * MAX_NR],
}

impl<'b, K: Kernel> WidenedF16Rows<'b, K> {
    pub(super) fn new(b: PackedBRef<'b>, d: &'b [u16]) -> Self {
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
pub(super) struct Bf16Rows<'b, K: Bf16Kernel> {
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
    pub(super) fn new(d: &'b [u16], k: usize) -> Self {
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
pub(super) struct F16Rows<'b, K> {
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
    pub(super) fn new(d: &'b [u16], k: usize) -> Self {
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
pub(super) struct Int8B<'b> {
    pub(super) q: &'b [i8],
    pub(super) scale: &'b [f32],
    pub(super) colsum: &'b [i32],
    pub(super) k: usize,
    pub(super) n_pad: usize,
}

/// The int8 compute path on an `Int8Kernel`: each A row of one MC x KC block is rounded to
/// unsigned bytes once, over its own range (min and max of the row's joined segments in this k
/// block, 0 included so zero padding stays exact: a finer grain than per row, so one large value
/// costs precision in one block only) and reused across all panels. The quad padding of a short
/// last block meets B's zero rows.
pub(super) struct Int8Rows<'b, K: Int8Kernel> {
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
    pub(super) fn new(w: Int8B<'b>) -> Self {
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
