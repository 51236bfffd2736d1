//! AVX-512F microkernel: 6 x 32 tile in 12 zmm accumulators.
use super::kernel::Kernel;
use core::arch::x86_64::*;

pub struct Avx512;

impl Kernel for Avx512 {
    const MR: usize = 6;
    const NR: usize = 32;

    unsafe fn run(kc: usize, a: *const f32, b: *const f32, tile: *mut f32) {
        // SAFETY: forwarded contract; the caller checked the CPU has AVX-512F.
        unsafe { run_avx512(kc, a, b, tile) }
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn run_avx512(kc: usize, a: *const f32, b: *const f32, tile: *mut f32) {
    const MR: usize = Avx512::MR;
    const NR: usize = Avx512::NR;
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    for p in 0..kc {
        // SAFETY: p < kc, so every offset stays inside the kc*NR / kc*MR extents of b and a.
        unsafe {
            let b0 = _mm512_loadu_ps(b.add(p * NR));
            let b1 = _mm512_loadu_ps(b.add(p * NR + 16));
            for (i, row) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*a.add(p * MR + i));
                row[0] = _mm512_fmadd_ps(av, b0, row[0]);
                row[1] = _mm512_fmadd_ps(av, b1, row[1]);
            }
        }
    }
    for (i, row) in acc.iter().enumerate() {
        // SAFETY: tile holds MR*NR floats.
        unsafe {
            _mm512_storeu_ps(tile.add(i * NR), row[0]);
            _mm512_storeu_ps(tile.add(i * NR + 16), row[1]);
        }
    }
}
