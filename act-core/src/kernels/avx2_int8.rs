//! AVX2 int8 microkernel for x86 hosts without any VNNI (AMD Zen 2/3, Intel Haswell to Comet
//! Lake): the int8 path's exact arithmetic through `vpmaddwd`, which multiplies signed 16-bit
//! pairs and sums each pair into an int32 lane without saturation. `vpmaddubsw` (u8 x i8) would
//! be twice as dense but saturates at 16 bits (255 * 127 * 2 > 32767), so the results would
//! differ from the VNNI kernels'; widened to 16 bits they are the same integers.
//!
//! B keeps the VNNI quad layout (one packing for every x86 int8 kernel): a quad of one column
//! widens to two int32 lanes holding partial sums (k0 k1, k2 k3), added pairwise in the store.
//! A is quantised straight to u16 (once per block, not once per tile). Each `vpmaddwd` does 16
//! multiply-adds against the FMA's 8, at the same issue rate on the cores measured.
//!
//! Also the AVX2 quantisation helpers (`min_max`, `quantize`) that `avx_vnni.rs` shares.
use super::kernel::Int8Kernel;
use core::arch::x86_64::*;

pub struct Avx2Int8;

impl Int8Kernel for Avx2Int8 {
    const MR: usize = 4;
    const NR: usize = 16;
    type A = u16;

    unsafe fn run_int8(kq: usize, a: *const u16, lda: usize, b: *const i8, a_scale: *const f32, a_zero: *const i32, b_scale: *const f32, colsum: *const i32, tile: *mut f32) {
        // SAFETY: forwarded contract; the caller checked AVX2.
        unsafe { run_int8(kq, a, lda, b, a_scale, a_zero, b_scale, colsum, tile) }
    }

    unsafe fn min_max(src: &[f32]) -> (f32, f32) {
        // SAFETY: forwarded contract.
        unsafe { min_max(src) }
    }

    unsafe fn quantize(src: &[f32], inv: f32, zero: i32, dst: &mut [u16]) {
        // SAFETY: forwarded contract.
        unsafe { quantize_u16(src, inv, zero, dst) }
    }
}

#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2")]
unsafe fn run_int8(kq: usize, a: *const u16, lda: usize, b: *const i8, a_scale: *const f32, a_zero: *const i32, b_scale: *const f32, colsum: *const i32, tile: *mut f32) {
    const MR: usize = <Avx2Int8 as Int8Kernel>::MR;
    const NR: usize = <Avx2Int8 as Int8Kernel>::NR;
    // SAFETY (whole body): the contract of `Int8Kernel::run_int8` — MR rows of 4 kq values lda
    // apart, kq * 4 * NR bytes of B, MR row scales and zero points, NR column scales and sums,
    // MR * NR floats of tile.
    unsafe {
        let rows: [*const u16; MR] = [a, a.add(lda), a.add(2 * lda), a.add(3 * lda)];
        for h in 0..2 {
            let parts = half_pass(kq, rows, b.add(32 * h));
            for (i, p) in parts.iter().enumerate() {
                // hadd gives columns (0 1 4 5 | 2 3 6 7) of the half; the permute restores order.
                let sums = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_hadd_epi32(p[0], p[1]));
                let cs = _mm256_loadu_si256(colsum.add(8 * h) as *const __m256i);
                let za = _mm256_set1_epi32(*a_zero.add(i));
                let v = _mm256_cvtepi32_ps(_mm256_sub_epi32(sums, _mm256_mullo_epi32(za, cs)));
                let s = _mm256_mul_ps(_mm256_set1_ps(*a_scale.add(i)), _mm256_loadu_ps(b_scale.add(8 * h)));
                _mm256_storeu_ps(tile.add(i * NR + 8 * h), _mm256_mul_ps(v, s));
            }
        }
    }
}

/// The (column, partial) sums of one 8-column half of the tile over `kq` quads: B's quads of
/// that half start at `bp`, 4 NR bytes apart. Eight accumulators, two widened B vectors and the
/// broadcast A quad fit the 16 ymm registers.
///
/// # Safety
/// `bp` readable for `(kq - 1) * 4 * NR + 32` bytes; each row readable for `4 kq` values; AVX2.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn half_pass(kq: usize, rows: [*const u16; 4], mut bp: *const i8) -> [[__m256i; 2]; 4] {
    const NR: usize = <Avx2Int8 as Int8Kernel>::NR;
    let mut acc = [[_mm256_setzero_si256(); 2]; 4];
    // SAFETY: the function's contract; `4 q + 4 <= 4 kq` keeps each 8-byte A read inside its row.
    unsafe {
        for q in 0..kq {
            // Columns 0..3 and 4..7 of the half, four k values each, as i16.
            let b0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(bp as *const __m128i));
            let b1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(bp.add(16) as *const __m128i));
            for (row, r) in acc.iter_mut().zip(rows) {
                // The quad (a0 a1 a2 a3) in every 64-bit lane: lanes pair (a0 a1) and (a2 a3).
                let av = _mm256_set1_epi64x((r.add(4 * q) as *const i64).read_unaligned());
                row[0] = _mm256_add_epi32(row[0], _mm256_madd_epi16(b0, av));
                row[1] = _mm256_add_epi32(row[1], _mm256_madd_epi16(b1, av));
            }
            bp = bp.add(4 * NR);
        }
    }
    acc
}

#[target_feature(enable = "avx2")]
pub(super) unsafe fn min_max(src: &[f32]) -> (f32, f32) {
    let n = src.len();
    if n == 0 {
        return (0.0, 0.0);
    }
    let mut i = 0;
    let first = _mm256_set1_ps(src[0]);
    let (mut lo, mut hi, mut nan) = (first, first, _mm256_setzero_ps());
    // SAFETY: i + 8 <= n keeps each load in bounds.
    unsafe {
        while i + 8 <= n {
            let v = _mm256_loadu_ps(src.as_ptr().add(i));
            nan = _mm256_or_ps(nan, _mm256_cmp_ps::<_CMP_UNORD_Q>(v, v));
            lo = _mm256_min_ps(lo, v);
            hi = _mm256_max_ps(hi, v);
            i += 8;
        }
    }
    let (mut lanes_lo, mut lanes_hi) = ([0.0f32; 8], [0.0f32; 8]);
    // SAFETY: two 8-float stores into 8-float arrays.
    unsafe {
        _mm256_storeu_ps(lanes_lo.as_mut_ptr(), lo);
        _mm256_storeu_ps(lanes_hi.as_mut_ptr(), hi);
    }
    let mut any_nan = _mm256_movemask_ps(nan) != 0;
    let (mut l, mut h) = (lanes_lo.iter().fold(src[0], |m, &v| m.min(v)), lanes_hi.iter().fold(src[0], |m, &v| m.max(v)));
    for &v in &src[i..] {
        any_nan |= v.is_nan();
        (l, h) = (l.min(v), h.max(v));
    }
    if any_nan { (f32::NAN, f32::NAN) } else { (l, h) }
}

#[target_feature(enable = "avx2")]
pub(super) unsafe fn quantize(src: &[f32], inv: f32, zero: i32, dst: &mut [u8]) {
    let n = src.len().min(dst.len());
    let mut i = 0;
    let scale = _mm256_set1_ps(inv);
    let z = _mm256_set1_epi32(zero);
    let (lo, hi) = (_mm256_setzero_si256(), _mm256_set1_epi32(255));
    // SAFETY: i + 16 <= n keeps the two 8-float loads and the 16-byte store in bounds.
    // `cvtps_epi32` rounds to nearest even (the default MXCSR mode, which Rust code never changes),
    // as the scalar reference does.
    unsafe {
        while i + 16 <= n {
            let q0 = round_clamp(_mm256_loadu_ps(src.as_ptr().add(i)), scale, z, hi);
            let q1 = round_clamp(_mm256_loadu_ps(src.as_ptr().add(i + 8)), scale, z, hi);
            // Values are already in 0..=255, so the saturating packs only narrow. Both packs work
            // within 128-bit lanes; the 64-bit permutes put the bytes back in order.
            let w = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packus_epi32(q0, q1));
            let b = _mm256_permute4x64_epi64::<0b00_00_10_00>(_mm256_packus_epi16(w, lo));
            _mm_storeu_si128(dst.as_mut_ptr().add(i) as *mut __m128i, _mm256_castsi256_si128(b));
            i += 16;
        }
    }
    for (d, &s) in dst[i..n].iter_mut().zip(&src[i..n]) {
        *d = (super::pack::round_ties_even_small(s * inv) as i32 + zero).clamp(0, 255) as u8;
    }
}

/// As [`quantize`], stored as u16 (the values are 0..=255) for `vpmaddwd`.
#[target_feature(enable = "avx2")]
unsafe fn quantize_u16(src: &[f32], inv: f32, zero: i32, dst: &mut [u16]) {
    let n = src.len().min(dst.len());
    let mut i = 0;
    let scale = _mm256_set1_ps(inv);
    let z = _mm256_set1_epi32(zero);
    let hi = _mm256_set1_epi32(255);
    // SAFETY: i + 16 <= n keeps the two 8-float loads and the 16-value store in bounds; rounding
    // as in `quantize`.
    unsafe {
        while i + 16 <= n {
            let q0 = round_clamp(_mm256_loadu_ps(src.as_ptr().add(i)), scale, z, hi);
            let q1 = round_clamp(_mm256_loadu_ps(src.as_ptr().add(i + 8)), scale, z, hi);
            // The pack works within 128-bit lanes; the 64-bit permute puts the values in order.
            let w = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packus_epi32(q0, q1));
            _mm256_storeu_si256(dst.as_mut_ptr().add(i) as *mut __m256i, w);
            i += 16;
        }
    }
    for (d, &s) in dst[i..n].iter_mut().zip(&src[i..n]) {
        *d = (super::pack::round_ties_even_small(s * inv) as i32 + zero).clamp(0, 255) as u16;
    }
}

/// `clamp(round(v * scale) + z, 0, hi)` in eight i32 lanes.
#[inline]
#[target_feature(enable = "avx2")]
fn round_clamp(v: __m256, scale: __m256, z: __m256i, hi: __m256i) -> __m256i {
    let r = _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(v, scale)), z);
    _mm256_min_epi32(_mm256_max_epi32(r, _mm256_setzero_si256()), hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::pack::int8_index;

    /// The AVX2 quantisation helpers (the u8 one serves the AVX-VNNI kernel) against the formula
    /// `clamp(round_ties_even(v * inv) + zero, 0, 255)` and a plain min / max, over lengths that
    /// leave vector tails, values that clamp at both ends and exact ties.
    #[test]
    fn quantisation_helpers_follow_the_formula() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            eprintln!("note: no AVX2; the AVX2 quantisation helpers are not tested here");
            return;
        }
        for n in [0usize, 1, 7, 8, 15, 16, 17, 37, 256] {
            let src: Vec<f32> = (0..n).map(|i| (i as f32 - 11.0) * 0.75 + if i % 5 == 0 { 0.125 } else { 0.0 }).collect();
            let (inv, zero) = (4.0f32, 30);
            let want: Vec<i32> = src.iter().map(|&v| ((v * inv).round_ties_even() as i32 + zero).clamp(0, 255)).collect();
            let (mut d8, mut d16) = (vec![0u8; n], vec![0u16; n]);
            // SAFETY: AVX2 was detected.
            let got_range = unsafe {
                quantize(&src, inv, zero, &mut d8);
                quantize_u16(&src, inv, zero, &mut d16);
                min_max(&src)
            };
            assert_eq!(d8.iter().map(|&v| v as i32).collect::<Vec<_>>(), want, "u8, n = {n}");
            assert_eq!(d16.iter().map(|&v| v as i32).collect::<Vec<_>>(), want, "u16, n = {n}");
            let lo = src.iter().cloned().fold(f32::INFINITY, f32::min);
            let hi = src.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            assert_eq!(got_range, if n == 0 { (0.0, 0.0) } else { (lo, hi) }, "n = {n}");
        }
        let mut with_nan = vec![1.0f32; 20];
        with_nan[17] = f32::NAN;
        // SAFETY: AVX2 was detected.
        let (lo, hi) = unsafe { min_max(&with_nan) };
        assert!(lo.is_nan() && hi.is_nan());
    }

    /// The tile against integer sums written out here over the packed layout, with rows longer
    /// than their k and zero points / scales that differ per row and column.
    #[test]
    fn tile_equals_integer_sums() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            eprintln!("note: no AVX2; the AVX2 int8 kernel is not tested here");
            return;
        }
        const MR: usize = Avx2Int8::MR;
        const NR: usize = Avx2Int8::NR;
        let (kq, lda) = (70usize, 4 * 70 + 12);
        let k = 4 * kq;
        let a: Vec<u16> = (0..MR * lda).map(|i| ((i * 37 + 11) % 256) as u16).collect();
        let bq: Vec<Vec<i8>> = (0..k).map(|p| (0..NR).map(|j| (((p * 29 + j * 53) % 255) as i32 - 127) as i8).collect()).collect();
        let mut b = vec![0i8; kq * 4 * NR];
        for (p, row) in bq.iter().enumerate() {
            for (j, &v) in row.iter().enumerate() {
                b[int8_index(p, j, k, NR)] = v;
            }
        }
        let a_scale: Vec<f32> = (0..MR).map(|i| 0.5 + i as f32 * 0.25).collect();
        let a_zero: Vec<i32> = (0..MR).map(|i| 3 + 40 * i as i32).collect();
        let b_scale: Vec<f32> = (0..NR).map(|j| 0.01 * (j + 1) as f32).collect();
        let colsum: Vec<i32> = (0..NR).map(|j| bq.iter().map(|r| r[j] as i32).sum()).collect();
        let mut tile = vec![0.0f32; MR * NR];
        // SAFETY: every buffer has the length the contract asks for; AVX2 was detected.
        unsafe { run_int8(kq, a.as_ptr(), lda, b.as_ptr(), a_scale.as_ptr(), a_zero.as_ptr(), b_scale.as_ptr(), colsum.as_ptr(), tile.as_mut_ptr()) };
        for i in 0..MR {
            for j in 0..NR {
                let dot: i64 = (0..k).map(|p| (a[i * lda + p] as i64 - a_zero[i] as i64) * bq[p][j] as i64).sum();
                let want = dot as f64 * a_scale[i] as f64 * b_scale[j] as f64;
                let got = tile[i * NR + j] as f64;
                assert!((got - want).abs() <= 1e-6 * want.abs().max(1.0), "row {i} col {j}: {got} != {want}");
            }
        }
    }
}
