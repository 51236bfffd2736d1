//! Portable microkernel: the reference for the SIMD kernels.
use super::kernel::{Int8Kernel, Kernel, Segment};

pub struct Scalar;

impl Kernel for Scalar {
    const MR: usize = 4;
    const NR: usize = 16;

    unsafe fn run(segments: &[Segment], rows: *const *const f32, b: *const f32, tile: *mut f32) {
        const MR: usize = <Scalar as Kernel>::MR;
        const NR: usize = <Scalar as Kernel>::NR;
        let mut acc = [[0.0f32; NR]; MR];
        let mut bp = b;
        for s in segments {
            for q in 0..s.len {
                // SAFETY: the caller guarantees `b` covers sum(len) rows of NR floats and each
                // row pointer is readable at a_off + q.
                let brow = unsafe { core::slice::from_raw_parts(bp, NR) };
                for (i, acc_row) in acc.iter_mut().enumerate() {
                    let av = unsafe { *(*rows.add(i)).add(s.a_off + q) };
                    for j in 0..NR {
                        acc_row[j] += av * brow[j];
                    }
                }
                bp = unsafe { bp.add(NR) };
            }
        }
        for (i, acc_row) in acc.iter().enumerate() {
            // SAFETY: tile holds MR*NR floats.
            unsafe { core::ptr::copy_nonoverlapping(acc_row.as_ptr(), tile.add(i * NR), NR) };
        }
    }

    unsafe fn widen_f16(src: &[u16], dst: &mut [f32]) {
        for (d, &h) in dst.iter_mut().zip(src) {
            *d = half::f16::from_bits(h).to_f32();
        }
    }
}

impl Int8Kernel for Scalar {
    const MR: usize = 4;
    const NR: usize = 16;
    type A = u8;

    unsafe fn run_int8(kq: usize, a: *const u8, lda: usize, b: *const i8, a_scale: *const f32, a_zero: *const i32, b_scale: *const f32, colsum: *const i32, tile: *mut f32) {
        const MR: usize = <Scalar as Int8Kernel>::MR;
        const NR: usize = <Scalar as Int8Kernel>::NR;
        // SAFETY: the contract of `Int8Kernel::run_int8` (sizes of a, b, the scales and tile).
        let (bs, a_scale, a_zero, b_scale, colsum) = unsafe {
            (
                core::slice::from_raw_parts(b, kq * 4 * NR),
                core::slice::from_raw_parts(a_scale, MR),
                core::slice::from_raw_parts(a_zero, MR),
                core::slice::from_raw_parts(b_scale, NR),
                core::slice::from_raw_parts(colsum, NR),
            )
        };
        for (i, (&sa, &za)) in a_scale.iter().zip(a_zero).enumerate() {
            // SAFETY: as above, row i holds 4 kq bytes.
            let row = unsafe { core::slice::from_raw_parts(a.add(i * lda), 4 * kq) };
            let mut acc = [0i32; NR];
            for q in 0..kq {
                for (j, s) in acc.iter_mut().enumerate() {
                    for l in 0..4 {
                        *s += row[4 * q + l] as i32 * bs[(q * NR + j) * 4 + l] as i32;
                    }
                }
            }
            for j in 0..NR {
                // SAFETY: tile holds MR * NR floats.
                unsafe { *tile.add(i * NR + j) = (acc[j] - za * colsum[j]) as f32 * (sa * b_scale[j]) };
            }
        }
    }

    unsafe fn min_max(src: &[f32]) -> (f32, f32) {
        let (mut lo, mut hi) = (0.0f32, 0.0f32);
        for (i, &v) in src.iter().enumerate() {
            if v.is_nan() {
                return (f32::NAN, f32::NAN);
            }
            if i == 0 {
                (lo, hi) = (v, v);
            }
            (lo, hi) = (lo.min(v), hi.max(v));
        }
        (lo, hi)
    }

    unsafe fn quantize(src: &[f32], inv: f32, zero: i32, dst: &mut [u8]) {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = (super::pack::round_ties_even_small(s * inv) as i32 + zero).clamp(0, 255) as u8;
        }
    }
}
