//! AVX-512 VNNI int8 microkernel: a 6 x 32 tile in 12 zmm int32 accumulators, `vpdpbusd`
//! multiplying four unsigned A bytes by four signed B bytes per lane (64 multiply-adds per
//! instruction, four times the f32 kernel's 16). A's zero points are removed and both scales
//! applied in the store, so the driver receives f32 as from every other kernel.
use super::kernel::Int8Kernel;
use core::arch::x86_64::*;

pub struct Avx512Vnni;

impl Int8Kernel for Avx512Vnni {
    const MR: usize = 6;
    const NR: usize = 32;
    type A = u8;

    unsafe fn run_int8(kq: usize, a: *const u8, lda: usize, b: *const i8, a_scale: *const f32, a_zero: *const i32, b_scale: *const f32, colsum: *const i32, tile: *mut f32) {
        // SAFETY: forwarded contract; the caller checked AVX-512F, BW and VNNI.
        unsafe { run_int8(kq, a, lda, b, a_scale, a_zero, b_scale, colsum, tile) }
    }

    unsafe fn min_max(src: &[f32]) -> (f32, f32) {
        // SAFETY: forwarded contract.
        unsafe { min_max(src) }
    }

    unsafe fn quantize(src: &[f32], inv: f32, zero: i32, dst: &mut [u8]) {
        // SAFETY: forwarded contract.
        unsafe { quantize(src, inv, zero, dst) }
    }
}

#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn run_int8(kq: usize, a: *const u8, lda: usize, b: *const i8, a_scale: *const f32, a_zero: *const i32, b_scale: *const f32, colsum: *const i32, tile: *mut f32) {
    const NR: usize = <Avx512Vnni as Int8Kernel>::NR;
    let mut acc = [[_mm512_setzero_si512(); 2]; 6];
    // SAFETY (whole body): the contract of `Int8Kernel::run_int8` — six rows of 4 kq bytes lda
    // apart, kq * 128 bytes of B, 6 row scales and zero points, 32 column scales and sums, 192 floats of
    // tile. A quad of a row is read as one unaligned i32 and broadcast.
    unsafe {
        let r: [*const u8; 6] = [a, a.add(lda), a.add(2 * lda), a.add(3 * lda), a.add(4 * lda), a.add(5 * lda)];
        let mut bp = b;
        for q in 0..kq {
            let b0 = _mm512_loadu_si512(bp as *const _);
            let b1 = _mm512_loadu_si512(bp.add(64) as *const _);
            for (i, row) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_epi32((r[i].add(4 * q) as *const i32).read_unaligned());
                row[0] = _mm512_dpbusd_epi32(row[0], av, b0);
                row[1] = _mm512_dpbusd_epi32(row[1], av, b1);
            }
            bp = bp.add(4 * NR);
        }
        let c0 = _mm512_loadu_si512(colsum as *const _);
        let c1 = _mm512_loadu_si512(colsum.add(16) as *const _);
        let s0 = _mm512_loadu_ps(b_scale);
        let s1 = _mm512_loadu_ps(b_scale.add(16));
        for (i, row) in acc.iter().enumerate() {
            let sa = _mm512_set1_ps(*a_scale.add(i));
            let za = _mm512_set1_epi32(*a_zero.add(i));
            let v0 = _mm512_cvtepi32_ps(_mm512_sub_epi32(row[0], _mm512_mullo_epi32(za, c0)));
            let v1 = _mm512_cvtepi32_ps(_mm512_sub_epi32(row[1], _mm512_mullo_epi32(za, c1)));
            _mm512_storeu_ps(tile.add(i * NR), _mm512_mul_ps(v0, _mm512_mul_ps(sa, s0)));
            _mm512_storeu_ps(tile.add(i * NR + 16), _mm512_mul_ps(v1, _mm512_mul_ps(sa, s1)));
        }
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn min_max(src: &[f32]) -> (f32, f32) {
    let n = src.len();
    if n == 0 {
        return (0.0, 0.0);
    }
    let mut i = 0;
    let first = _mm512_set1_ps(src[0]);
    let (mut lo, mut hi) = (first, first);
    let mut nan: __mmask16 = 0;
    // SAFETY: i + 16 <= n keeps each load in bounds.
    unsafe {
        while i + 16 <= n {
            let v = _mm512_loadu_ps(src.as_ptr().add(i));
            nan |= _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v);
            lo = _mm512_min_ps(lo, v);
            hi = _mm512_max_ps(hi, v);
            i += 16;
        }
    }
    let (mut l, mut h) = (_mm512_reduce_min_ps(lo), _mm512_reduce_max_ps(hi));
    for &v in &src[i..] {
        if v.is_nan() {
            nan = 1;
        }
        (l, h) = (l.min(v), h.max(v));
    }
    if nan != 0 { (f32::NAN, f32::NAN) } else { (l, h) }
}

#[target_feature(enable = "avx512f")]
unsafe fn quantize(src: &[f32], inv: f32, zero: i32, dst: &mut [u8]) {
    let n = src.len().min(dst.len());
    let mut i = 0;
    let scale = _mm512_set1_ps(inv);
    let z = _mm512_set1_epi32(zero);
    let (lo, hi) = (_mm512_setzero_si512(), _mm512_set1_epi32(255));
    // SAFETY: i + 16 <= n keeps the 16-float load and 16-byte store in bounds. `cvtps_epi32`
    // rounds to nearest even (the default MXCSR mode, which Rust code never changes), as the
    // scalar reference does.
    unsafe {
        while i + 16 <= n {
            let v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(src.as_ptr().add(i)), scale));
            let u = _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(v, z), lo), hi);
            _mm_storeu_si128(dst.as_mut_ptr().add(i) as *mut __m128i, _mm512_cvtepi32_epi8(u));
            i += 16;
        }
    }
    for (d, &s) in dst[i..n].iter_mut().zip(&src[i..n]) {
        *d = (super::pack::round_ties_even_small(s * inv) as i32 + zero).clamp(0, 255) as u8;
    }
}
