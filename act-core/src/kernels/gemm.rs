//! The GEMM driver: C = A B (+ bias, + residual, ReLU), blocked over k (KC) and rows (MC), with A
//! packed per block into scratch and B prepacked in panels. Allocation-free once the scratch exists.
use super::kernel::Kernel;
use super::pack::{ASource, PackedBRef};
use super::Isa;
use alloc::vec;
use alloc::vec::Vec;

/// Depth of one k block: a KC x NR panel slice stays in L1.
const KC: usize = 256;
/// Rows of one packed A block (a multiple of every kernel's MR).
const MC: usize = 96;
/// Largest MR x NR tile of any kernel.
const MAX_TILE: usize = 6 * 32;

/// What is applied to C after the last k block, in this order: `+ bias[j]`, `+ residual[i][j]`, ReLU.
#[derive(Clone, Copy, Default)]
pub struct Epilogue<'a> {
    pub bias: Option<&'a [f32]>,
    /// Row-major with its own leading dimension.
    pub residual: Option<(&'a [f32], usize)>,
    pub relu: bool,
}

/// Scratch for packing A; allocate once, reuse for every GEMM.
pub struct GemmScratch {
    a: Vec<f32>,
}

impl Default for GemmScratch {
    fn default() -> Self {
        Self::new()
    }
}

impl GemmScratch {
    pub fn new() -> GemmScratch {
        GemmScratch { a: vec![0.0; MC * KC] }
    }
}

/// C[m x n] (leading dimension `ldc`) = A[m x k] B[k x n], then the epilogue.
///
/// Panics if the shapes disagree or if `isa` is not supported by this CPU.
pub fn gemm(isa: Isa, a: &impl ASource, b: PackedBRef<'_>, c: &mut [f32], ldc: usize, epi: Epilogue<'_>, scratch: &mut GemmScratch) {
    assert_eq!(a.cols(), b.k, "gemm: A has {} columns but B has {} rows", a.cols(), b.k);
    assert_eq!(b.nr, isa.nr(), "gemm: B packed for another instruction set");
    let (m, n) = (a.rows(), b.n);
    if m == 0 || n == 0 {
        return;
    }
    assert!(ldc >= n && c.len() >= (m - 1) * ldc + n, "gemm: C too small");
    if let Some(bias) = epi.bias {
        assert!(bias.len() >= n, "gemm: bias too short");
    }
    if let Some((r, ldr)) = epi.residual {
        assert!(ldr >= n && r.len() >= (m - 1) * ldr + n, "gemm: residual too small");
    }
    match isa {
        Isa::Scalar => gemm_with::<super::scalar::Scalar>(a, b, c, ldc, epi, scratch),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => {
            assert!(isa.is_supported(), "gemm: AVX2+FMA not available on this CPU");
            gemm_with::<super::avx2::Avx2>(a, b, c, ldc, epi, scratch)
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            assert!(isa.is_supported(), "gemm: AVX-512F not available on this CPU");
            gemm_with::<super::avx512::Avx512>(a, b, c, ldc, epi, scratch)
        }
        #[cfg(not(target_arch = "x86_64"))]
        _ => gemm_with::<super::scalar::Scalar>(a, b, c, ldc, epi, scratch),
    }
}

fn gemm_with<K: Kernel>(a: &impl ASource, b: PackedBRef<'_>, c: &mut [f32], ldc: usize, epi: Epilogue<'_>, scratch: &mut GemmScratch) {
    let (m, n, k) = (a.rows(), b.n, b.k);
    let (mr, nr) = (K::MR, K::NR);
    debug_assert!(MC % mr == 0 && mr * nr <= MAX_TILE);
    let panels = n.div_ceil(nr);
    let mut tile = [0.0f32; MAX_TILE];
    let mut pc = 0;
    // k == 0 still needs one pass to write C = epilogue(0).
    loop {
        let kc = KC.min(k - pc);
        let first = pc == 0;
        let last = pc + kc >= k;
        let mut ic = 0;
        while ic < m {
            let mc = MC.min(m - ic);
            let blocks = mc.div_ceil(mr);
            for blk in 0..blocks {
                let rows = mr.min(mc - blk * mr);
                a.pack(ic + blk * mr, rows, mr, pc, kc, &mut scratch.a[blk * kc * mr..(blk + 1) * kc * mr]);
            }
            for jp in 0..panels {
                let cols = nr.min(n - jp * nr);
                let bp = &b.data[(jp * k + pc) * nr..(jp * k + pc + kc) * nr];
                for blk in 0..blocks {
                    let rows = mr.min(mc - blk * mr);
                    let ap = &scratch.a[blk * kc * mr..(blk + 1) * kc * mr];
                    // SAFETY: ap holds kc*mr floats, bp holds kc*nr floats, tile holds
                    // MAX_TILE >= mr*nr floats, and `gemm` checked the CPU supports K.
                    unsafe { K::run(kc, ap.as_ptr(), bp.as_ptr(), tile.as_mut_ptr()) };
                    let row0 = ic + blk * mr;
                    let col0 = jp * nr;
                    for i in 0..rows {
                        let crow = &mut c[(row0 + i) * ldc + col0..(row0 + i) * ldc + col0 + cols];
                        let trow = &tile[i * nr..i * nr + cols];
                        if first {
                            crow.copy_from_slice(trow);
                        } else {
                            for (cv, &tv) in crow.iter_mut().zip(trow) {
                                *cv += tv;
                            }
                        }
                        if last {
                            apply_epilogue(crow, row0 + i, col0, &epi);
                        }
                    }
                }
            }
            ic += mc;
        }
        pc += kc;
        if last {
            break;
        }
    }
}

#[inline]
fn apply_epilogue(crow: &mut [f32], row: usize, col0: usize, epi: &Epilogue<'_>) {
    if let Some(bias) = epi.bias {
        for (cv, &bv) in crow.iter_mut().zip(&bias[col0..]) {
            *cv += bv;
        }
    }
    if let Some((r, ldr)) = epi.residual {
        for (cv, &rv) in crow.iter_mut().zip(&r[row * ldr + col0..]) {
            *cv += rv;
        }
    }
    if epi.relu {
        for cv in crow.iter_mut() {
            *cv = cv.max(0.0);
        }
    }
}
