//! The microkernel contract, after matrixmultiply's `kernel.rs`: each instruction set provides an
//! MR x NR register tile that accumulates `kc` rank-1 updates from packed operands.

/// A GEMM microkernel.
pub trait Kernel {
    /// Rows of the register tile (rows of A per packed A block).
    const MR: usize;
    /// Columns of the register tile (columns per packed B panel).
    const NR: usize;

    /// `tile[i * NR + j] = sum_p a[p * MR + i] * b[p * NR + j]` for `p < kc`.
    ///
    /// # Safety
    /// `a` must hold `kc * MR` floats, `b` must hold `kc * NR` floats, `tile` must hold `MR * NR`
    /// floats, and the CPU must support the kernel's instruction set.
    unsafe fn run(kc: usize, a: *const f32, b: *const f32, tile: *mut f32);
}
