//! AVX2 + FMA microkernel: 6 x 16 tile in 12 ymm accumulators.
use super::kernel::Kernel;
use core::arch::x86_64::*;

pub struct Avx2;

impl Kernel for Avx2 {
    const MR: usize = 6;
    const NR: usize = 16;

    unsafe fn run(kc: usize, a: *const f32, b: *const f32, tile: *mut f32) {
        // SAFETY: forwarded contract; the caller checked the CPU has AVX2 and FMA.
        unsafe { run_avx2(kc, a, b, tile) }
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2(kc: usize, a: *const f32, b: *const f32, tile: *mut f32) {
    const MR: usize = Avx2::MR;
    const NR: usize = Avx2::NR;
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    for p in 0..kc {
        // SAFETY: p < kc, so every offset stays inside the kc*NR / kc*MR extents of b and a.
        unsafe {
            let b0 = _mm256_loadu_ps(b.add(p * NR));
            let b1 = _mm256_loadu_ps(b.add(p * NR + 8));
            for (i, row) in acc.iter_mut().enumerate() {
                let av = _mm256_broadcast_ss(&*a.add(p * MR + i));
                row[0] = _mm256_fmadd_ps(av, b0, row[0]);
                row[1] = _mm256_fmadd_ps(av, b1, row[1]);
            }
        }
    }
    for (i, row) in acc.iter().enumerate() {
        // SAFETY: tile holds MR*NR floats.
        unsafe {
            _mm256_storeu_ps(tile.add(i * NR), row[0]);
            _mm256_storeu_ps(tile.add(i * NR + 8), row[1]);
        }
    }
}
