//! AVX-VNNI int8 microkernel for AVX2 hosts without AVX-512 (Intel Alder Lake and later client
//! cores, AMD Zen 5 client parts; the 256-bit VEX form of `vpdpbusd`): a 6 x 16 tile in 12 ymm
//! int32 accumulators, the same layout and arithmetic as `avx512_vnni.rs` at half the width, so it
//! packs B like the AVX2 f32 kernel (NR 16). Each `vpdpbusd` does 32 multiply-adds, four times
//! the AVX2 FMA's 8. Quantisation shares the AVX2 helpers of `avx2_int8.rs`.
use super::kernel::Int8Kernel;
use core::arch::x86_64::*;

pub struct AvxVnni;

impl Int8Kernel for AvxVnni {
    const MR: usize = 6;
    const NR: usize = 16;
    type A = u8;

    unsafe fn run_int8(kq: usize, a: *const u8, lda: usize, b: *const i8, a_scale: *const f32, a_zero: *const i32, b_scale: *const f32, colsum: *const i32, tile: *mut f32) {
        // SAFETY: forwarded contract; the caller checked AVX2 and AVX-VNNI.
        unsafe { run_int8(kq, a, lda, b, a_scale, a_zero, b_scale, colsum, tile) }
    }

    unsafe fn min_max(src: &[f32]) -> (f32, f32) {
        // SAFETY: forwarded contract.
        unsafe { super::avx2_int8::min_max(src) }
    }

    unsafe fn quantize(src: &[f32], inv: f32, zero: i32, dst: &mut [u8]) {
        // SAFETY: forwarded contract.
        unsafe { super::avx2_int8::quantize(src, inv, zero, dst) }
    }
}

#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,avxvnni")]
unsafe fn run_int8(kq: usize, a: *const u8, lda: usize, b: *const i8, a_scale: *const f32, a_zero: *const i32, b_scale: *const f32, colsum: *const i32, tile: *mut f32) {
    const NR: usize = <AvxVnni as Int8Kernel>::NR;
    let mut acc = [[_mm256_setzero_si256(); 2]; 6];
    // SAFETY (whole body): the contract of `Int8Kernel::run_int8` — six rows of 4 kq bytes lda
    // apart, kq * 64 bytes of B, 6 row scales and zero points, 16 column scales and sums, 96
    // floats of tile. A quad of a row is read as one unaligned i32 and broadcast.
    unsafe {
        let r: [*const u8; 6] = [a, a.add(lda), a.add(2 * lda), a.add(3 * lda), a.add(4 * lda), a.add(5 * lda)];
        let mut bp = b;
        for q in 0..kq {
            let b0 = _mm256_loadu_si256(bp as *const __m256i);
            let b1 = _mm256_loadu_si256(bp.add(32) as *const __m256i);
            for (i, row) in acc.iter_mut().enumerate() {
                let av = _mm256_set1_epi32((r[i].add(4 * q) as *const i32).read_unaligned());
                row[0] = _mm256_dpbusd_avx_epi32(row[0], av, b0);
                row[1] = _mm256_dpbusd_avx_epi32(row[1], av, b1);
            }
            bp = bp.add(4 * NR);
        }
        let c0 = _mm256_loadu_si256(colsum as *const __m256i);
        let c1 = _mm256_loadu_si256(colsum.add(8) as *const __m256i);
        let s0 = _mm256_loadu_ps(b_scale);
        let s1 = _mm256_loadu_ps(b_scale.add(8));
        for (i, row) in acc.iter().enumerate() {
            let sa = _mm256_set1_ps(*a_scale.add(i));
            let za = _mm256_set1_epi32(*a_zero.add(i));
            let v0 = _mm256_cvtepi32_ps(_mm256_sub_epi32(row[0], _mm256_mullo_epi32(za, c0)));
            let v1 = _mm256_cvtepi32_ps(_mm256_sub_epi32(row[1], _mm256_mullo_epi32(za, c1)));
            _mm256_storeu_ps(tile.add(i * NR), _mm256_mul_ps(v0, _mm256_mul_ps(sa, s0)));
            _mm256_storeu_ps(tile.add(i * NR + 8), _mm256_mul_ps(v1, _mm256_mul_ps(sa, s1)));
        }
    }
}
