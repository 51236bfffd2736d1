//! Portable microkernel: the reference for the SIMD kernels.
use super::kernel::Kernel;

pub struct Scalar;

impl Kernel for Scalar {
    const MR: usize = 4;
    const NR: usize = 16;

    unsafe fn run(kc: usize, a: *const f32, b: *const f32, tile: *mut f32) {
        const MR: usize = Scalar::MR;
        const NR: usize = Scalar::NR;
        // SAFETY: the caller guarantees the extents documented on `Kernel::run`.
        let (a, b, tile) = unsafe {
            (
                core::slice::from_raw_parts(a, kc * MR),
                core::slice::from_raw_parts(b, kc * NR),
                core::slice::from_raw_parts_mut(tile, MR * NR),
            )
        };
        let mut acc = [[0.0f32; NR]; MR];
        for p in 0..kc {
            let bp = &b[p * NR..p * NR + NR];
            for i in 0..MR {
                let av = a[p * MR + i];
                for j in 0..NR {
                    acc[i][j] += av * bp[j];
                }
            }
        }
        for i in 0..MR {
            tile[i * NR..i * NR + NR].copy_from_slice(&acc[i]);
        }
    }
}
