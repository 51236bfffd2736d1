//! AVX-512F microkernel: 6 x 32 tile in 12 zmm accumulators.
use super::kernel::{Bf16Kernel, Kernel, Segment};
use core::arch::x86_64::*;

pub struct Avx512;

impl Kernel for Avx512 {
    const MR: usize = 6;
    const NR: usize = 32;

    unsafe fn run(segments: &[Segment], rows: *const *const f32, b: *const f32, tile: *mut f32) {
        // SAFETY: forwarded contract; the caller checked the CPU has AVX-512F.
        unsafe { run_avx512(segments, rows, b, tile) }
    }

    unsafe fn widen_f16(src: &[u16], dst: &mut [f32]) {
        // SAFETY: forwarded contract; the caller checked the CPU has AVX-512F.
        unsafe { widen_f16(src, dst) }
    }
}

impl Bf16Kernel for Avx512 {
    const MR: usize = 6;
    const NR: usize = 32;

    unsafe fn run_bf16(kp: usize, a: *const u16, lda: usize, b: *const u16, tile: *mut f32) {
        // SAFETY: forwarded contract (the same tile shape); the caller checked AVX-512 BF16.
        unsafe { run_bf16(kp, a, lda, b, tile) }
    }

    unsafe fn to_bf16(src: &[f32], dst: &mut [u16]) {
        // SAFETY: forwarded contract.
        unsafe { to_bf16(src, dst) }
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn run_avx512(segments: &[Segment], rows: *const *const f32, b: *const f32, tile: *mut f32) {
    const NR: usize = <Avx512 as Kernel>::NR;
    let mut acc = [[_mm512_setzero_ps(); 2]; 6];
    let mut bp = b;
    // SAFETY (whole body): the contract of `Kernel::run` — six readable row pointers at every
    // segment offset, sum(len) * NR floats of B, MR * NR floats of tile.
    unsafe {
        let r: [*const f32; 6] = [*rows, *rows.add(1), *rows.add(2), *rows.add(3), *rows.add(4), *rows.add(5)];
        for s in segments {
            let a: [*const f32; 6] = [r[0].add(s.a_off), r[1].add(s.a_off), r[2].add(s.a_off), r[3].add(s.a_off), r[4].add(s.a_off), r[5].add(s.a_off)];
            for q in 0..s.len {
                let b0 = _mm512_loadu_ps(bp);
                let b1 = _mm512_loadu_ps(bp.add(16));
                for (i, row) in acc.iter_mut().enumerate() {
                    let av = _mm512_set1_ps(*a[i].add(q));
                    row[0] = _mm512_fmadd_ps(av, b0, row[0]);
                    row[1] = _mm512_fmadd_ps(av, b1, row[1]);
                }
                bp = bp.add(NR);
            }
        }
        for (i, row) in acc.iter().enumerate() {
            _mm512_storeu_ps(tile.add(i * NR), row[0]);
            _mm512_storeu_ps(tile.add(i * NR + 16), row[1]);
        }
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn widen_f16(src: &[u16], dst: &mut [f32]) {
    let n = src.len().min(dst.len());
    let mut i = 0;
    // SAFETY: i + 16 <= n keeps the 16-half load and the 16-float store in bounds.
    unsafe {
        while i + 16 <= n {
            _mm512_storeu_ps(dst.as_mut_ptr().add(i), _mm512_cvtph_ps(_mm256_loadu_si256(src.as_ptr().add(i) as *const __m256i)));
            i += 16;
        }
    }
    // SAFETY: the scalar kernel needs no instruction set.
    unsafe { <super::scalar::Scalar as Kernel>::widen_f16(&src[i..n], &mut dst[i..n]) };
}

/// The bf16 microkernel: `tile (6 x 32) = A B` over `kp` k pairs, with A as 6 rows of bf16
/// (row i at `a + i * lda`, pairs contiguous) and B in bf16 pair packing
/// ([`super::pack::bf16_index`]). `vdpbf16ps` multiplies pairs exactly and accumulates in f32, so
/// each instruction does two of the f32 kernel's multiply-adds.
///
/// # Safety
/// `a` must be readable for `5 * lda + 2 * kp` halves, `b` for `kp * 64` halves, `tile` writable
/// for 192 floats; the CPU must have AVX-512F and AVX-512 BF16.
#[target_feature(enable = "avx512f,avx512bf16")]
pub(super) unsafe fn run_bf16(kp: usize, a: *const u16, lda: usize, b: *const u16, tile: *mut f32) {
    const NR: usize = <Avx512 as Kernel>::NR;
    let mut acc = [[_mm512_setzero_ps(); 2]; 6];
    // SAFETY (whole body): the function's contract. A pair is read as one unaligned u32 and
    // broadcast; __m512i and __m512bh are both 64-byte vectors, so the transmutes only relabel.
    unsafe {
        let r: [*const u16; 6] = [a, a.add(lda), a.add(2 * lda), a.add(3 * lda), a.add(4 * lda), a.add(5 * lda)];
        let mut bp = b;
        for q in 0..kp {
            let b0: __m512bh = core::mem::transmute(_mm512_loadu_si512(bp as *const _));
            let b1: __m512bh = core::mem::transmute(_mm512_loadu_si512(bp.add(32) as *const _));
            for (i, row) in acc.iter_mut().enumerate() {
                let pair = (r[i].add(2 * q) as *const i32).read_unaligned();
                let av: __m512bh = core::mem::transmute(_mm512_set1_epi32(pair));
                row[0] = _mm512_dpbf16_ps(row[0], av, b0);
                row[1] = _mm512_dpbf16_ps(row[1], av, b1);
            }
            bp = bp.add(2 * NR);
        }
        for (i, row) in acc.iter().enumerate() {
            _mm512_storeu_ps(tile.add(i * NR), row[0]);
            _mm512_storeu_ps(tile.add(i * NR + 16), row[1]);
        }
    }
}

/// `dst[i] = bf16(src[i])`, rounded to nearest even (as `half::bf16::from_f32` for finite values).
///
/// # Safety
/// The CPU must have AVX-512F and AVX-512 BF16.
#[target_feature(enable = "avx512f,avx512bf16")]
pub(super) unsafe fn to_bf16(src: &[f32], dst: &mut [u16]) {
    let n = src.len().min(dst.len());
    let mut i = 0;
    // SAFETY: i + 16 <= n keeps both 16-element accesses in bounds; __m256bh and __m256i are both
    // 32-byte vectors.
    unsafe {
        while i + 16 <= n {
            let v = _mm512_cvtneps_pbh(_mm512_loadu_ps(src.as_ptr().add(i)));
            _mm256_storeu_si256(dst.as_mut_ptr().add(i) as *mut __m256i, core::mem::transmute::<__m256bh, __m256i>(v));
            i += 16;
        }
    }
    for (d, &s) in dst[i..n].iter_mut().zip(&src[i..n]) {
        *d = half::bf16::from_f32(s).to_bits();
    }
}
