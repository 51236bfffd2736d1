//! The microkernel contract, after matrixmultiply's `kernel.rs`: each instruction set provides an
//! MR x NR register tile that accumulates rank-1 updates. A is not packed: the kernel reads MR
//! rows through pointers, along a list of contiguous segments of the k dimension (one segment for
//! a matrix row; one per kernel row (ky) for a convolution window over a zero-padded NHWC image).

/// A contiguous run of the k dimension: B rows advance by `len`, and A row i is read at
/// `rows[i] + a_off .. rows[i] + a_off + len`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Segment {
    pub a_off: usize,
    pub len: usize,
}

/// A GEMM microkernel.
pub trait Kernel {
    /// Rows of the register tile.
    const MR: usize;
    /// Columns of the register tile (columns per packed B panel).
    const NR: usize;

    /// `tile[i * NR + j] = sum over segments s, q < s.len of rows[i][s.a_off + q] * b[(P + q) * NR + j]`
    /// where P counts the segment lengths before s.
    ///
    /// # Safety
    /// `rows` must hold MR pointers, each valid for reads at every `a_off + q` of every segment;
    /// `b` must hold `sum(len) * NR` floats; `tile` must hold `MR * NR` floats; the CPU must
    /// support the kernel's instruction set.
    unsafe fn run(segments: &[Segment], rows: *const *const f32, b: *const f32, tile: *mut f32);

    /// `dst[i] = f32(src[i])` for `i < min(len)`, with `src` as f16 bit patterns (exact: every f16
    /// is an f32). f16 weights are widened one B panel block at a time and then run by `run`.
    ///
    /// # Safety
    /// The CPU must support the kernel's instruction set (and F16C on x86).
    unsafe fn widen_f16(src: &[u16], dst: &mut [f32]);
}

/// A bf16 microkernel (the bf16 compute path): A and B rounded to bf16 and stored in k pairs,
/// products of a pair accumulated in f32 (`vdpbf16ps` on x86, `BFDOT` on Arm). A is prepared per
/// block by the caller with `to_bf16`, so the kernel reads `MR` contiguous rows.
pub trait Bf16Kernel {
    /// Rows of the register tile.
    const MR: usize;
    /// Columns of the register tile (columns per packed B panel).
    const NR: usize;

    /// `tile (MR x NR) = A B` over `kp` k pairs, with A as MR rows of bf16 (row i at
    /// `a + i * lda`, pairs contiguous) and B in bf16 pair packing ([`super::pack::bf16_index`]).
    ///
    /// # Safety
    /// `a` must be readable for `(MR - 1) * lda + 2 * kp` halves, `b` for `kp * 2 * NR` halves,
    /// `tile` writable for `MR * NR` floats; the CPU must have the kernel's bf16 instructions; `setup` ran on this thread.
    unsafe fn run_bf16(kp: usize, a: *const u16, lda: usize, b: *const u16, tile: *mut f32);

    /// Sets up per-thread state the kernel needs before `run_*` (AMX: the tile configuration,
    /// `ldtilecfg`). The GEMM driver calls it on the thread that runs the tiles, before each
    /// block's tiles. Default: nothing.
    ///
    /// # Safety
    /// The CPU must have the kernel's instructions (and the OS have granted their state).
    unsafe fn setup() {}

    /// Ends what `setup` began (AMX: `tilerelease`, so the OS stops saving tile data for the
    /// thread). The driver calls it when a work item's tiles are done. Default: nothing.
    ///
    /// # Safety
    /// As `setup`.
    unsafe fn teardown() {}

    /// `dst[i] = bf16(src[i])`, rounded to nearest even, for `i < min(len)`.
    ///
    /// # Safety
    /// The CPU must have the kernel's bf16 instructions.
    unsafe fn to_bf16(src: &[f32], dst: &mut [u16]);
}

/// An fp16 microkernel (the fp16 compute path): A rounded to f16 per block by the caller, B stored
/// as f16 in the `Kernel` panel layout, products accumulated in f16 over one k block and returned
/// widened to f32 (the GEMM driver adds blocks in f32).
pub trait F16Kernel {
    /// Rows of the register tile.
    const MR: usize;
    /// Columns of the register tile (columns per packed B panel).
    const NR: usize;

    /// `tile (MR x NR) = A B` over `kc` k values, with A as MR rows of f16 (row i at `a + i * lda`)
    /// and B as `kc` rows of NR halves.
    ///
    /// # Safety
    /// `a` must be readable for `(MR - 1) * lda + kc` halves, `b` for `kc * NR` halves, `tile`
    /// writable for `MR * NR` floats; the CPU must have the kernel's fp16 arithmetic.
    unsafe fn run_fp16(kc: usize, a: *const u16, lda: usize, b: *const u16, tile: *mut f32);
}

/// An int8 microkernel (the int8 compute path): A as unsigned bytes with a zero point per row
/// (made per row and k block by the caller with `min_max` and `quantize`), B as signed bytes in k
/// quads ([`super::pack::int8_index`]), four products per int32 lane summed exactly (`vpdpbusd` on
/// x86). The kernel removes the zero points and scales back to f32 in its store.
pub trait Int8Kernel {
    /// Rows of the register tile.
    const MR: usize;
    /// Columns of the register tile (columns per packed B panel).
    const NR: usize;
    /// How a quantised A value is stored: `u8`, or `u16` for a kernel that multiplies 16-bit
    /// values (widened once per block by `quantize`, not once per tile).
    type A: Copy + Default;

    /// Sets up per-thread state the kernel needs before `run_*` (AMX: the tile configuration,
    /// `ldtilecfg`). The GEMM driver calls it on the thread that runs the tiles, before each
    /// block's tiles. Default: nothing.
    ///
    /// # Safety
    /// The CPU must have the kernel's instructions (and the OS have granted their state).
    unsafe fn setup() {}

    /// Ends what `setup` began (AMX: `tilerelease`, so the OS stops saving tile data for the
    /// thread). The driver calls it when a work item's tiles are done. Default: nothing.
    ///
    /// # Safety
    /// As `setup`.
    unsafe fn teardown() {}

    /// `tile[i * NR + j] = (sum over q < 4 kq of a[i][q] * b[q][j] - a_zero[i] * colsum[j]) * a_scale[i] * b_scale[j]`,
    /// with row i of A at `a + i * lda` and B's quad rows as `pack::int8_index` lays them out.
    ///
    /// # Safety
    /// `a` must be readable for `(MR - 1) * lda + 4 * kq` values, `b` for `kq * 4 * NR` bytes,
    /// `a_scale` and `a_zero` for MR values, `b_scale` and `colsum` for NR values, `tile` writable
    /// for `MR * NR` floats; the CPU must have the kernel's int8 instructions; `setup` ran on this thread.
    #[allow(clippy::too_many_arguments)]
    unsafe fn run_int8(kq: usize, a: *const Self::A, lda: usize, b: *const i8, a_scale: *const f32, a_zero: *const i32, b_scale: *const f32, colsum: *const i32, tile: *mut f32);

    /// The smallest and largest of `src` (0 for both when empty), or NaN for both if any value is
    /// NaN (so a NaN input gives NaN outputs, never a silently finite answer).
    ///
    /// # Safety
    /// The CPU must have the kernel's instructions.
    unsafe fn min_max(src: &[f32]) -> (f32, f32);

    /// `dst[i] = clamp(round_ties_even(src[i] * inv) + zero, 0, 255)` for `i < min(len)`.
    ///
    /// # Safety
    /// The CPU must have the kernel's instructions.
    unsafe fn quantize(src: &[f32], inv: f32, zero: i32, dst: &mut [Self::A]);
}
