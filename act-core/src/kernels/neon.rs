//! aarch64 Advanced SIMD (NEON) microkernel: 8 x 8 tile in 16 q-register accumulators.
//!
//! A is read in place (the `Kernel` contract), so the tile is shaped for FMLA by element: four k
//! values of each of the 8 rows are loaded as one q register, and every B row (two q registers)
//! is multiplied by one lane of it. Per 4 k steps: 8 A loads + 8 B loads for 64 FMLAs, and
//! 16 accumulators + 8 A + 2 B registers of the 32. A taller or wider tile does not fit: 8 x 12
//! needs 24 + 8 + 3 and 12 x 8 needs 24 + 12 + 2; broadcasting A one value at a time
//! (`LD1R`) instead costs an extra vector-pipe micro-op per row on Cortex-A76/A78.
//! See docs/AARCH64.md for the instruction counts of the compiled loop.
//!
//! On cores with the BF16 extension (Neoverse V1/V2/N2, Cortex-A710 and later) the bf16 compute
//! path uses the same tile with `BFDOT` by element: each lane adds the products of one k pair. On
//! cores with FP16 arithmetic (Cortex-A76/A78, Neoverse N1 and later) the fp16 compute path uses an
//! 8 x 8 tile of f16 lanes, one q register per row: twice the multiply-adds per FMLA.
use super::kernel::{Bf16Kernel, F16Kernel, Kernel, Segment};
use core::arch::aarch64::*;

pub struct Neon;

impl Kernel for Neon {
    const MR: usize = 8;
    const NR: usize = 8;

    unsafe fn run(segments: &[Segment], rows: *const *const f32, b: *const f32, tile: *mut f32) {
        // SAFETY: forwarded contract; NEON is part of every aarch64 target act-core builds for.
        unsafe { run_neon(segments, rows, b, tile) }
    }

    unsafe fn widen_f16(src: &[u16], dst: &mut [f32]) {
        let n = src.len().min(dst.len());
        let mut i = 0;
        // SAFETY: i + 8 <= n keeps the 8-half load and the two 4-float stores in bounds; FCVTL is
        // base Advanced SIMD.
        unsafe {
            while i + 8 <= n {
                let (lo, hi) = widen(vld1q_u16(src.as_ptr().add(i)));
                vst1q_f32(dst.as_mut_ptr().add(i), lo);
                vst1q_f32(dst.as_mut_ptr().add(i + 4), hi);
                i += 8;
            }
        }
        // SAFETY: the scalar kernel needs no instruction set.
        unsafe { <super::scalar::Scalar as Kernel>::widen_f16(&src[i..n], &mut dst[i..n]) };
    }
}

/// One 8-column row of B as two f32 vectors.
///
/// # Safety
/// `p` must be readable for 8 floats.
#[inline(always)]
unsafe fn load_b(p: *const f32) -> (float32x4_t, float32x4_t) {
    // SAFETY: the caller's contract, 8 floats.
    unsafe { (vld1q_f32(p), vld1q_f32(p.add(4))) }
}

/// Eight f16 values (as bits) widened to two f32 vectors, exactly.
#[inline(always)]
fn widen(h: uint16x8_t) -> (float32x4_t, float32x4_t) {
    let (lo, hi): (float32x4_t, float32x4_t);
    // SAFETY: FCVTL/FCVTL2 (base Advanced SIMD) only read `h` and write the two outputs (and
    // FPSR's cumulative exception bits, so no `preserves_flags`); no memory. `lo` is a plain `out`, so it cannot share `h`'s register before FCVTL2.
    unsafe {
        core::arch::asm!(
            "fcvtl {lo:v}.4s, {h:v}.4h",
            "fcvtl2 {hi:v}.4s, {h:v}.8h",
            h = in(vreg) h,
            lo = out(vreg) lo,
            hi = out(vreg) hi,
            options(pure, nomem, nostack),
        );
    }
    (lo, hi)
}

/// One k step for all 8 rows: `acc[i] += B row * lane L of av[i]`.
macro_rules! fma_lane {
    ($acc:ident, $av:ident, $b0:ident, $b1:ident, $lane:literal) => {
        for i in 0..8 {
            $acc[i][0] = vfmaq_laneq_f32::<$lane>($acc[i][0], $b0, $av[i]);
            $acc[i][1] = vfmaq_laneq_f32::<$lane>($acc[i][1], $b1, $av[i]);
        }
    };
}

// Never inlined: one call per tile, and scripts/neon-loop-count.py finds the loop by this name.
#[inline(never)]
#[target_feature(enable = "neon")]
unsafe fn run_neon(segments: &[Segment], rows: *const *const f32, b: *const f32, tile: *mut f32) {
    const NR: usize = <Neon as Kernel>::NR;
    let mut acc = [[vdupq_n_f32(0.0); 2]; 8];
    let mut bp = b;
    // SAFETY (whole body): the contract of `Kernel::run` — eight readable row pointers at every
    // segment offset (four-value A loads stay below `s.len`), sum(len) * NR values of B,
    // MR * NR floats of tile.
    unsafe {
        let r: [*const f32; 8] = core::array::from_fn(|i| *rows.add(i));
        for s in segments {
            let a: [*const f32; 8] = core::array::from_fn(|i| r[i].add(s.a_off));
            let mut q = 0;
            while q + 4 <= s.len {
                let av: [float32x4_t; 8] = core::array::from_fn(|i| vld1q_f32(a[i].add(q)));
                let (b0, b1) = load_b(bp);
                fma_lane!(acc, av, b0, b1, 0);
                let (b0, b1) = load_b(bp.add(NR));
                fma_lane!(acc, av, b0, b1, 1);
                let (b0, b1) = load_b(bp.add(2 * NR));
                fma_lane!(acc, av, b0, b1, 2);
                let (b0, b1) = load_b(bp.add(3 * NR));
                fma_lane!(acc, av, b0, b1, 3);
                bp = bp.add(4 * NR);
                q += 4;
            }
            // The segment's last len % 4 values (conv1's 21-value kernel rows end this way).
            while q < s.len {
                let (b0, b1) = load_b(bp);
                for i in 0..8 {
                    let av = *a[i].add(q);
                    acc[i][0] = vfmaq_n_f32(acc[i][0], b0, av);
                    acc[i][1] = vfmaq_n_f32(acc[i][1], b1, av);
                }
                bp = bp.add(NR);
                q += 1;
            }
        }
        for (i, row) in acc.iter().enumerate() {
            vst1q_f32(tile.add(i * NR), row[0]);
            vst1q_f32(tile.add(i * NR + 4), row[1]);
        }
    }
}

impl Bf16Kernel for Neon {
    const MR: usize = 8;
    const NR: usize = 8;

    unsafe fn run_bf16(kp: usize, a: *const u16, lda: usize, b: *const u16, tile: *mut f32) {
        // SAFETY: forwarded contract; the caller checked the CPU has the BF16 extension.
        unsafe { run_bfdot(kp, a, lda, b, tile) }
    }

    unsafe fn to_bf16(src: &[f32], dst: &mut [u16]) {
        // Per block, amortised over every panel: portable rounding (to nearest even, as the x86
        // path and `half` round) rather than BFCVTN, whose intrinsics are unstable.
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = half::bf16::from_f32(s).to_bits();
        }
    }
}

/// `acc += B (4 columns x one k pair per lane) . lane L of a` (`BFDOT Vd.4S, Vn.8H, Vm.2H[L]`:
/// lane c adds `b[2c] * a[2L] + b[2c + 1] * a[2L + 1]`). The bf16 intrinsics are unstable in Rust.
macro_rules! bfdot {
    ($acc:expr, $b:expr, $a:expr, $lane:literal) => {
        core::arch::asm!(
            concat!("bfdot {acc:v}.4s, {b:v}.8h, {a:v}.2h[", stringify!($lane), "]"),
            acc = inout(vreg) $acc,
            b = in(vreg) $b,
            a = in(vreg) $a,
            options(pure, nomem, nostack),
        )
    };
}

/// One k pair for all 8 rows: B's pair row (two q registers, columns 0-3 and 4-7) against lane L
/// of each row's A register.
macro_rules! bfdot_lane {
    ($acc:ident, $av:ident, $b0:ident, $b1:ident, $lane:literal) => {
        for i in 0..8 {
            bfdot!($acc[i][0], $b0, $av[i], $lane);
            bfdot!($acc[i][1], $b1, $av[i], $lane);
        }
    };
}

/// The 8 x 8 bf16 tile: four k pairs of each A row per q register, as the f32 kernel's lanes.
#[inline(never)]
#[target_feature(enable = "neon,bf16")]
unsafe fn run_bfdot(kp: usize, a: *const u16, lda: usize, b: *const u16, tile: *mut f32) {
    const NR: usize = <Neon as Kernel>::NR;
    let mut acc = [[vdupq_n_f32(0.0); 2]; 8];
    // SAFETY (whole body): the contract of `Bf16Kernel::run_bf16` — eight rows of 2 kp halves
    // (q-register loads stay below 2 kp), kp * 2 NR halves of B, MR * NR floats of tile; BFDOT
    // only reads its register operands.
    unsafe {
        let r: [*const u16; 8] = core::array::from_fn(|i| a.add(i * lda));
        let mut bp = b;
        let mut q = 0;
        while q + 4 <= kp {
            let av: [uint16x8_t; 8] = core::array::from_fn(|i| vld1q_u16(r[i].add(2 * q)));
            let (b0, b1) = (vld1q_u16(bp), vld1q_u16(bp.add(8)));
            bfdot_lane!(acc, av, b0, b1, 0);
            let (b0, b1) = (vld1q_u16(bp.add(16)), vld1q_u16(bp.add(24)));
            bfdot_lane!(acc, av, b0, b1, 1);
            let (b0, b1) = (vld1q_u16(bp.add(32)), vld1q_u16(bp.add(40)));
            bfdot_lane!(acc, av, b0, b1, 2);
            let (b0, b1) = (vld1q_u16(bp.add(48)), vld1q_u16(bp.add(56)));
            bfdot_lane!(acc, av, b0, b1, 3);
            bp = bp.add(8 * NR);
            q += 4;
        }
        // The last kp % 4 pairs: each row's pair broadcast to every lane.
        while q < kp {
            let (b0, b1) = (vld1q_u16(bp), vld1q_u16(bp.add(8)));
            let av: [uint16x8_t; 8] = core::array::from_fn(|i| vreinterpretq_u16_u32(vdupq_n_u32((r[i].add(2 * q) as *const u32).read_unaligned())));
            bfdot_lane!(acc, av, b0, b1, 0);
            bp = bp.add(2 * NR);
            q += 1;
        }
        for (i, row) in acc.iter().enumerate() {
            vst1q_f32(tile.add(i * NR), row[0]);
            vst1q_f32(tile.add(i * NR + 4), row[1]);
        }
    }
}

impl F16Kernel for Neon {
    const MR: usize = 8;
    const NR: usize = 8;

    unsafe fn run_fp16(kc: usize, a: *const u16, lda: usize, b: *const u16, tile: *mut f32) {
        // SAFETY: forwarded contract; the caller checked the CPU has FP16 arithmetic.
        unsafe { run_fmla_h(kc, a, lda, b, tile) }
    }
}

/// `acc += B row (8 columns, f16) * lane L of a (f16)` (`FMLA Vd.8H, Vn.8H, Vm.H[L]`, whose
/// element register must be one of v0-v15). The f16 intrinsics are unstable in Rust.
macro_rules! fmla_h {
    ($acc:expr, $b:expr, $a:expr, $lane:literal) => {
        core::arch::asm!(
            concat!("fmla {acc:v}.8h, {b:v}.8h, {a:v}.h[", stringify!($lane), "]"),
            acc = inout(vreg) $acc,
            b = in(vreg) $b,
            a = in(vreg_low16) $a,
            options(pure, nomem, nostack),
        )
    };
}

/// One k step for all 8 rows: B row `$k` of the step against lane `$k` of each row's A register.
macro_rules! fmla_h_lane {
    ($acc:ident, $av:ident, $bp:ident, $k:literal) => {
        let bk = vld1q_u16($bp.add($k * 8));
        for i in 0..8 {
            fmla_h!($acc[i], bk, $av[i], $k);
        }
    };
}

/// The 8 x 8 fp16 tile: eight k values of each A row per q register, 8 accumulators of 8 f16
/// lanes, widened to f32 at the end of the k block.
#[inline(never)]
#[target_feature(enable = "neon,fp16")]
unsafe fn run_fmla_h(kc: usize, a: *const u16, lda: usize, b: *const u16, tile: *mut f32) {
    const NR: usize = <Neon as F16Kernel>::NR;
    let mut acc = [vdupq_n_u16(0); 8];
    // SAFETY (whole body): the contract of `F16Kernel::run_fp16` — eight rows of kc halves
    // (q-register loads stay below kc), kc * NR halves of B, MR * NR floats of tile; FMLA only
    // reads and writes its register operands.
    unsafe {
        let r: [*const u16; 8] = core::array::from_fn(|i| a.add(i * lda));
        let mut bp = b;
        let mut q = 0;
        while q + 8 <= kc {
            let av: [uint16x8_t; 8] = core::array::from_fn(|i| vld1q_u16(r[i].add(q)));
            fmla_h_lane!(acc, av, bp, 0);
            fmla_h_lane!(acc, av, bp, 1);
            fmla_h_lane!(acc, av, bp, 2);
            fmla_h_lane!(acc, av, bp, 3);
            fmla_h_lane!(acc, av, bp, 4);
            fmla_h_lane!(acc, av, bp, 5);
            fmla_h_lane!(acc, av, bp, 6);
            fmla_h_lane!(acc, av, bp, 7);
            bp = bp.add(8 * NR);
            q += 8;
        }
        // The last kc % 8 values: each row's value broadcast to every lane.
        while q < kc {
            let av: [uint16x8_t; 8] = core::array::from_fn(|i| vld1q_dup_u16(r[i].add(q)));
            fmla_h_lane!(acc, av, bp, 0);
            bp = bp.add(NR);
            q += 1;
        }
        for (i, row) in acc.iter().enumerate() {
            let (lo, hi) = widen(*row);
            vst1q_f32(tile.add(i * NR), lo);
            vst1q_f32(tile.add(i * NR + 4), hi);
        }
    }
}
