//! Portable microkernel: the reference for the SIMD kernels.
use super::kernel::{Kernel, Segment};

pub struct Scalar;

impl Kernel for Scalar {
    const MR: usize = 4;
    const NR: usize = 16;

    unsafe fn run(segments: &[Segment], rows: *const *const f32, b: *const f32, tile: *mut f32) {
        const MR: usize = Scalar::MR;
        const NR: usize = Scalar::NR;
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

    unsafe fn run_f16(segments: &[Segment], rows: *const *const f32, b: *const u16, tile: *mut f32) {
        const MR: usize = Scalar::MR;
        const NR: usize = Scalar::NR;
        let mut acc = [[0.0f32; NR]; MR];
        let mut bp = b;
        for s in segments {
            for q in 0..s.len {
                // SAFETY: the caller guarantees `b` covers sum(len) rows of NR floats and each
                // row pointer is readable at a_off + q.
                let halves = unsafe { core::slice::from_raw_parts(bp, NR) };
                let mut brow = [0.0f32; NR];
                for (w, &h) in brow.iter_mut().zip(halves) {
                    *w = half::f16::from_bits(h).to_f32();
                }
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
}
