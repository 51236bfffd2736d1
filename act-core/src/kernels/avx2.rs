//! AVX2 + FMA microkernel: 6 x 16 tile in 12 ymm accumulators.
use super::kernel::{Kernel, Segment};
use core::arch::x86_64::*;

pub struct Avx2;

impl Kernel for Avx2 {
    const MR: usize = 6;
    const NR: usize = 16;

    unsafe fn run(segments: &[Segment], rows: *const *const f32, b: *const f32, tile: *mut f32) {
        // SAFETY: forwarded contract; the caller checked the CPU has AVX2 and FMA.
        unsafe { run_avx2(segments, rows, b, tile) }
    }

    unsafe fn widen_f16(src: &[u16], dst: &mut [f32]) {
        // SAFETY: forwarded contract; the caller checked the CPU has AVX2 and F16C.
        unsafe { widen_f16(src, dst) }
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2(segments: &[Segment], rows: *const *const f32, b: *const f32, tile: *mut f32) {
    const NR: usize = Avx2::NR;
    let mut acc = [[_mm256_setzero_ps(); 2]; 6];
    let mut bp = b;
    // SAFETY (whole body): the contract of `Kernel::run` — six readable row pointers at every
    // segment offset, sum(len) * NR floats of B, MR * NR floats of tile.
    unsafe {
        let r: [*const f32; 6] = [*rows, *rows.add(1), *rows.add(2), *rows.add(3), *rows.add(4), *rows.add(5)];
        for s in segments {
            let a: [*const f32; 6] = [r[0].add(s.a_off), r[1].add(s.a_off), r[2].add(s.a_off), r[3].add(s.a_off), r[4].add(s.a_off), r[5].add(s.a_off)];
            for q in 0..s.len {
                let b0 = _mm256_loadu_ps(bp);
                let b1 = _mm256_loadu_ps(bp.add(8));
                for (i, row) in acc.iter_mut().enumerate() {
                    let av = _mm256_broadcast_ss(&*a[i].add(q));
                    row[0] = _mm256_fmadd_ps(av, b0, row[0]);
                    row[1] = _mm256_fmadd_ps(av, b1, row[1]);
                }
                bp = bp.add(NR);
            }
        }
        for (i, row) in acc.iter().enumerate() {
            _mm256_storeu_ps(tile.add(i * NR), row[0]);
            _mm256_storeu_ps(tile.add(i * NR + 8), row[1]);
        }
    }
}

#[target_feature(enable = "avx2,f16c")]
unsafe fn widen_f16(src: &[u16], dst: &mut [f32]) {
    let n = src.len().min(dst.len());
    let mut i = 0;
    // SAFETY: i + 8 <= n keeps the 8-half load and the 8-float store in bounds.
    unsafe {
        while i + 8 <= n {
            _mm256_storeu_ps(dst.as_mut_ptr().add(i), _mm256_cvtph_ps(_mm_loadu_si128(src.as_ptr().add(i) as *const __m128i)));
            i += 8;
        }
    }
    // SAFETY: the scalar kernel needs no instruction set.
    unsafe { <super::scalar::Scalar as Kernel>::widen_f16(&src[i..n], &mut dst[i..n]) };
}
