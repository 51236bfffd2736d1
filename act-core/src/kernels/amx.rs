//! AMX microkernels (Intel Xeon Sapphire Rapids and later): a 32 x 32 tile of C held in four
//! 16 x 16 accumulator tiles (tmm0-3), fed per step by two A tiles (tmm4-5: 16 rows x 64 bytes)
//! and two B tiles (tmm6-7: 16 rows x 64 bytes, the panel's two halves of 16 columns).
//! `tdpbf16ps` does 16 x 16 x 32 bf16 multiply-adds per instruction (16 AVX-512 `vdpbf16ps`),
//! `tdpbusd` 16 x 16 x 64 u8 x i8 ones. The weights need no packing of their own: the bf16 pair
//! packing ([`super::pack::bf16_index`]) and the int8 quad packing ([`super::pack::int8_index`]) at
//! 32 columns per panel already are the B tile layout (row q of a tile holds pair / quad q of 16
//! columns, 64 bytes; the other 16 columns follow 64 bytes on), so one set of packed weights runs
//! on AMX or on AVX-512, whichever this host has.
//!
//! Tile instructions run through stable `asm!` (Rust's AMX intrinsics are unstable). Linux hands
//! out tile state only on request (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`; without
//! it the first tile instruction faults), so [`usable`] asks once per process and the kernels run
//! only where CPUID, XCR0 and the OS all agree. The arithmetic is written once, generic over
//! `TileUnit`: the hardware (`Hw`) in the policy, an emulator in the tests, so the addressing,
//! tails and epilogue are checked on hosts without AMX too.
use super::kernel::{Bf16Kernel, Int8Kernel};
use core::arch::x86_64::*;
use core::sync::atomic::{AtomicU8, Ordering};

pub struct Amx;

/// Rows and columns of the C tile (2 x 2 hardware tiles of 16 x 16).
const MR: usize = 32;
const NR: usize = 32;
/// Bytes per row of every tile (the palette's maximum).
const ROW_BYTES: usize = 64;
/// k units per step, pairs (bf16) or quads (int8): one tile row of A is 64 bytes of them.
const UNITS: usize = ROW_BYTES / 4;

impl Bf16Kernel for Amx {
    const MR: usize = MR;
    const NR: usize = NR;

    unsafe fn setup() {
        // SAFETY: the caller checked `usable` (the OS granted tile data).
        unsafe { Hw.configure() }
    }

    unsafe fn teardown() {
        // SAFETY: as `setup`.
        unsafe { Hw.release() }
    }

    unsafe fn run_bf16(kp: usize, a: *const u16, lda: usize, b: *const u16, tile: *mut f32) {
        // SAFETY: forwarded contract; `setup` configured the tiles on this thread.
        unsafe { bf16_tile(&mut Hw, kp, a, lda, b, tile) }
    }

    unsafe fn to_bf16(src: &[f32], dst: &mut [u16]) {
        // SAFETY: `usable` requires AVX-512 BF16 beside AMX.
        unsafe { <super::avx512::Avx512 as Bf16Kernel>::to_bf16(src, dst) }
    }
}

impl Int8Kernel for Amx {
    const MR: usize = MR;
    const NR: usize = NR;
    type A = u8;

    unsafe fn setup() {
        // SAFETY: the caller checked `usable` (the OS granted tile data).
        unsafe { Hw.configure() }
    }

    unsafe fn teardown() {
        // SAFETY: as `setup`.
        unsafe { Hw.release() }
    }

    unsafe fn run_int8(kq: usize, a: *const u8, lda: usize, b: *const i8, a_scale: *const f32, a_zero: *const i32, b_scale: *const f32, colsum: *const i32, tile: *mut f32) {
        // SAFETY: forwarded contract; `setup` configured the tiles on this thread.
        unsafe { int8_tile(&mut Hw, kq, a, lda, b, a_scale, a_zero, b_scale, colsum, tile) }
    }

    unsafe fn min_max(src: &[f32]) -> (f32, f32) {
        // SAFETY: `usable` requires AVX-512 VNNI (with BW) beside AMX.
        unsafe { <super::avx512_vnni::Avx512Vnni as Int8Kernel>::min_max(src) }
    }

    unsafe fn quantize(src: &[f32], inv: f32, zero: i32, dst: &mut [u8]) {
        // SAFETY: as `min_max`.
        unsafe { <super::avx512_vnni::Avx512Vnni as Int8Kernel>::quantize(src, inv, zero, dst) }
    }
}

/// The tile instructions the kernels use, one method per fixed sequence. Every method's safety
/// contract: `configure` ran on this thread (and the unit is usable), and the pointers are valid
/// for what the method reads or writes.
pub(super) trait TileUnit {
    /// `ldtilecfg`: all eight tiles 16 rows x 64 bytes.
    unsafe fn configure(&mut self);
    /// `tilerelease`: tiles back to their initial state (the OS stops saving them).
    unsafe fn release(&mut self);
    /// C tiles (tmm0-3) to zero.
    unsafe fn zero_c(&mut self);
    /// One step: A tiles from `a` and `a + 16 * lda` (rows `lda` bytes apart), B tiles from `b`
    /// and `b + 64` (rows 128 bytes apart), then `C(i, j) += A(i) B(j)` in bf16 pairs
    /// (`int8 == false`, `tdpbf16ps`) or u8 x i8 quads (`tdpbusd`).
    unsafe fn step(&mut self, int8: bool, a: *const u8, lda: usize, b: *const u8);
    /// C as 32 rows of 32 four-byte values (f32 or i32), 128 bytes apart, at `c`.
    unsafe fn store_c(&mut self, c: *mut u8);
}

/// The tile configuration `ldtilecfg` reads (palette 1).
#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    colsb: [u16; 16],
    rows: [u8; 16],
}

static CONFIG: TileConfig = TileConfig {
    palette: 1,
    start_row: 0,
    reserved: [0; 14],
    colsb: [ROW_BYTES as u16, ROW_BYTES as u16, ROW_BYTES as u16, ROW_BYTES as u16, ROW_BYTES as u16, ROW_BYTES as u16, ROW_BYTES as u16, ROW_BYTES as u16, 0, 0, 0, 0, 0, 0, 0, 0],
    rows: [16, 16, 16, 16, 16, 16, 16, 16, 0, 0, 0, 0, 0, 0, 0, 0],
};

/// The CPU's tiles.
struct Hw;

impl TileUnit for Hw {
    #[inline(always)]
    unsafe fn configure(&mut self) {
        // SAFETY: CONFIG is a valid 64-byte palette-1 configuration; the caller checked `usable`.
        unsafe { core::arch::asm!("ldtilecfg [{c}]", c = in(reg) &CONFIG as *const TileConfig, options(nostack, readonly, preserves_flags)) }
    }

    #[inline(always)]
    unsafe fn release(&mut self) {
        // SAFETY: as `configure`.
        unsafe { core::arch::asm!("tilerelease", options(nostack, nomem, preserves_flags)) }
    }

    #[inline(always)]
    unsafe fn zero_c(&mut self) {
        // SAFETY: the tiles are configured (the trait's contract).
        unsafe { core::arch::asm!("tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3", options(nostack, nomem, preserves_flags)) }
    }

    #[inline(always)]
    unsafe fn step(&mut self, int8: bool, a: *const u8, lda: usize, b: *const u8) {
        // Two A tiles 16 rows apart, the two 16-column halves of the B rows, four products.
        macro_rules! step_with {
            ($dp:literal) => {
                core::arch::asm!(
                    "tileloadd tmm4, [{a0} + {lda}*1]",
                    "tileloadd tmm5, [{a1} + {lda}*1]",
                    "tileloadd tmm6, [{b} + {bs}*1]",
                    "tileloadd tmm7, [{b} + {bs}*1 + 64]",
                    concat!($dp, " tmm0, tmm4, tmm6"),
                    concat!($dp, " tmm1, tmm4, tmm7"),
                    concat!($dp, " tmm2, tmm5, tmm6"),
                    concat!($dp, " tmm3, tmm5, tmm7"),
                    a0 = in(reg) a, a1 = in(reg) a.add(16 * lda), lda = in(reg) lda, b = in(reg) b, bs = in(reg) 2 * ROW_BYTES,
                    options(nostack, readonly, preserves_flags)
                )
            };
        }
        // SAFETY: the trait's contract: 32 rows of 64 bytes of A, 16 rows of 128 bytes of B.
        unsafe {
            if int8 {
                step_with!("tdpbusd")
            } else {
                step_with!("tdpbf16ps")
            }
        }
    }

    #[inline(always)]
    unsafe fn store_c(&mut self, c: *mut u8) {
        // SAFETY: the trait's contract: 32 rows of 128 bytes at c.
        unsafe {
            let c2 = c.add(16 * 2 * ROW_BYTES);
            core::arch::asm!(
                "tilestored [{c0} + {s}*1], tmm0",
                "tilestored [{c0} + {s}*1 + 64], tmm1",
                "tilestored [{c2} + {s}*1], tmm2",
                "tilestored [{c2} + {s}*1 + 64], tmm3",
                c0 = in(reg) c, c2 = in(reg) c2, s = in(reg) 2 * ROW_BYTES,
                options(nostack, preserves_flags)
            )
        }
    }
}

/// Runs the steps of `k_units` k units (pairs or quads, `UNITS` per step) into the C tiles and
/// stores them at `c` (32 rows of 128 bytes): whole steps read A and B in place, a short last step
/// reads them from zero-padded copies (a zero A column meets a zero B row, so the padding adds
/// exact zeros, never a stray value). The copies are made before the first tile instruction: the
/// ABI treats tile registers as caller-saved, so no call (`memcpy` included) may sit between
/// zeroing the accumulators and storing them.
///
/// # Safety
/// A: 32 rows of `unit * k_units` bytes, `lda` bytes apart; B: `k_units` rows of 128 bytes; `c`
/// writable for 4096 bytes; the tiles configured on this thread.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn steps<U: TileUnit>(u: &mut U, int8: bool, k_units: usize, unit: usize, a: *const u8, lda: usize, b: *const u8, c: *mut u8) {
    let full = k_units / UNITS;
    let rest = k_units - full * UNITS;
    // SAFETY (whole body): the function's contract bounds every read; the copies stay inside
    // their buffers (rest < UNITS units of `unit` <= 4 bytes per row, 32 rows).
    unsafe {
        if rest == 0 {
            return tile_run(u, int8, full, a, lda, b, None, c);
        }
        // Only a short last step pays for the zeroed copies.
        let mut at = [0u8; MR * ROW_BYTES];
        let mut bt = [0u8; UNITS * 2 * ROW_BYTES];
        let (a0, b0) = (a.add(full * ROW_BYTES), b.add(full * UNITS * 2 * ROW_BYTES));
        for i in 0..MR {
            core::ptr::copy_nonoverlapping(a0.add(i * lda), at.as_mut_ptr().add(i * ROW_BYTES), rest * unit);
        }
        core::ptr::copy_nonoverlapping(b0, bt.as_mut_ptr(), rest * 2 * ROW_BYTES);
        tile_run(u, int8, full, a, lda, b, Some((at.as_ptr(), bt.as_ptr())), c)
    }
}

/// Zero, `full` steps in place, the padded `tail` step if any, store: tile instructions only.
///
/// # Safety
/// As `steps`; `tail` holds 32 rows of 64 bytes of A and 16 rows of 128 bytes of B.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn tile_run<U: TileUnit>(u: &mut U, int8: bool, full: usize, a: *const u8, lda: usize, b: *const u8, tail: Option<(*const u8, *const u8)>, c: *mut u8) {
    // SAFETY: the function's contract.
    unsafe {
        u.zero_c();
        for s in 0..full {
            u.step(int8, a.add(s * ROW_BYTES), lda, b.add(s * UNITS * 2 * ROW_BYTES));
        }
        if let Some((at, bt)) = tail {
            u.step(int8, at, ROW_BYTES, bt);
        }
        u.store_c(c);
    }
}

/// `Bf16Kernel::run_bf16` on a tile unit.
///
/// # Safety
/// As `Bf16Kernel::run_bf16` with MR = NR = 32, and the tiles configured on this thread.
unsafe fn bf16_tile<U: TileUnit>(u: &mut U, kp: usize, a: *const u16, lda: usize, b: *const u16, tile: *mut f32) {
    // SAFETY: a pair is 4 bytes of A (2 halves) and a B row of 32 columns' pairs is 128 bytes.
    unsafe {
        steps(u, false, kp, 4, a as *const u8, 2 * lda, b as *const u8, tile as *mut u8);
    }
}

/// `Int8Kernel::run_int8` on the hardware's tiles.
///
/// # Safety
/// As `Int8Kernel::run_int8` with MR = NR = 32, the tiles configured on this thread, and AVX-512F.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
unsafe fn int8_tile<U: TileUnit>(u: &mut U, kq: usize, a: *const u8, lda: usize, b: *const i8, a_scale: *const f32, a_zero: *const i32, b_scale: *const f32, colsum: *const i32, tile: *mut f32) {
    // Not zeroed first: the tile store writes all of it (a 4 KiB memset per tile would cost a
    // good part of the tile's own time).
    let mut sums = core::mem::MaybeUninit::<[i32; MR * NR]>::uninit();
    // SAFETY: the function's contract; `int8_sums` initialises every element of `sums`.
    unsafe {
        int8_sums(u, kq, a, lda, b, sums.as_mut_ptr());
        dequantise(sums.assume_init_ref(), a_scale, a_zero, b_scale, colsum, tile);
    }
}

/// The exact int32 sums of u8 x i8 quad products of a 32 x 32 tile.
///
/// # Safety
/// `a`: 32 rows of 4 kq bytes, `lda` apart; `b`: kq rows of 128 bytes; `sums` writable; the tiles
/// configured.
unsafe fn int8_sums<U: TileUnit>(u: &mut U, kq: usize, a: *const u8, lda: usize, b: *const i8, sums: *mut [i32; MR * NR]) {
    // SAFETY: the function's contract; `sums` holds 32 rows of 128 bytes, all written.
    unsafe {
        steps(u, true, kq, 4, a, lda, b as *const u8, sums as *mut u8);
    }
}

/// `tile = (sums - a_zero[i] colsum[j]) a_scale[i] b_scale[j]`, as the AVX-512 VNNI kernel's store.
///
/// # Safety
/// 32 row scales and zero points, 32 column scales and sums, 1024 floats of tile; AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn dequantise(sums: &[i32; MR * NR], a_scale: *const f32, a_zero: *const i32, b_scale: *const f32, colsum: *const i32, tile: *mut f32) {
    // SAFETY: the function's contract.
    unsafe {
        let (c0, c1) = (_mm512_loadu_si512(colsum as *const _), _mm512_loadu_si512(colsum.add(16) as *const _));
        let (s0, s1) = (_mm512_loadu_ps(b_scale), _mm512_loadu_ps(b_scale.add(16)));
        for i in 0..MR {
            let sa = _mm512_set1_ps(*a_scale.add(i));
            let za = _mm512_set1_epi32(*a_zero.add(i));
            let r0 = _mm512_loadu_si512(sums.as_ptr().add(i * NR) as *const _);
            let r1 = _mm512_loadu_si512(sums.as_ptr().add(i * NR + 16) as *const _);
            let v0 = _mm512_cvtepi32_ps(_mm512_sub_epi32(r0, _mm512_mullo_epi32(za, c0)));
            let v1 = _mm512_cvtepi32_ps(_mm512_sub_epi32(r1, _mm512_mullo_epi32(za, c1)));
            _mm512_storeu_ps(tile.add(i * NR), _mm512_mul_ps(v0, _mm512_mul_ps(sa, s0)));
            _mm512_storeu_ps(tile.add(i * NR + 16), _mm512_mul_ps(v1, _mm512_mul_ps(sa, s1)));
        }
    }
}

/// What stands between this process and the AMX kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AmxStatus {
    /// The kernels run (bf16 and int8).
    Usable,
    /// The CPU lacks AMX-TILE, AMX-BF16 or AMX-INT8, or the AVX-512 BF16 / VNNI the kernels
    /// convert and quantise with.
    NotInCpu,
    /// The OS does not save tile state (XCR0 bits 17 and 18 clear).
    NotEnabledByOs,
    /// Linux refused `arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)` (errno), or this build
    /// cannot ask (no `std`, not Linux).
    PermissionRefused(i32),
    /// Turned off with [`set_amx_allowed`].
    Disabled,
}

/// 0: not asked yet; else 1 + the index of the `AmxStatus` found (see `status`).
static STATE: AtomicU8 = AtomicU8::new(0);
static ERRNO: core::sync::atomic::AtomicI32 = core::sync::atomic::AtomicI32::new(0);
static ALLOWED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(true);

/// Lets benchmarks and tests compare the AVX-512 kernels with AMX on an AMX host: with `false`,
/// GEMMs that start afterwards use `vdpbf16ps` / `vpdpbusd` (weights are the same).
pub fn set_amx_allowed(allowed: bool) {
    ALLOWED.store(allowed, Ordering::Relaxed);
}

/// Whether the AMX kernels run in this process; the first call asks the OS for tile data.
pub fn status() -> AmxStatus {
    if !ALLOWED.load(Ordering::Relaxed) {
        return AmxStatus::Disabled;
    }
    let s = match STATE.load(Ordering::Acquire) {
        0 => {
            // Two threads may both get here: asking twice is harmless.
            let found = probe();
            let code = match found {
                AmxStatus::Usable => 1,
                AmxStatus::NotInCpu => 2,
                AmxStatus::NotEnabledByOs => 3,
                AmxStatus::PermissionRefused(e) => {
                    ERRNO.store(e, Ordering::Relaxed);
                    4
                }
                AmxStatus::Disabled => unreachable!("probe never says Disabled"),
            };
            STATE.store(code, Ordering::Release);
            code
        }
        c => c,
    };
    match s {
        1 => AmxStatus::Usable,
        2 => AmxStatus::NotInCpu,
        3 => AmxStatus::NotEnabledByOs,
        _ => AmxStatus::PermissionRefused(ERRNO.load(Ordering::Relaxed)),
    }
}

/// Whether the AMX kernels run in this process (see [`status`]).
pub fn usable() -> bool {
    status() == AmxStatus::Usable
}

fn probe() -> AmxStatus {
    let (max_leaf, l1, l7) = (__cpuid(0).eax, __cpuid(1), __cpuid_count(7, 0));
    if max_leaf < 7 {
        return AmxStatus::NotInCpu;
    }
    // Leaf 7 EDX: AMX-BF16 bit 22, AMX-TILE 24, AMX-INT8 25; EBX: AVX-512F 16, AVX-512BW 30;
    // ECX: AVX-512 VNNI 11. Leaf 7 subleaf 1 EAX bit 5: AVX-512 BF16.
    let amx = (l7.edx >> 22) & 1 == 1 && (l7.edx >> 24) & 1 == 1 && (l7.edx >> 25) & 1 == 1;
    let avx512 = (l7.ebx >> 16) & 1 == 1 && (l7.ebx >> 30) & 1 == 1 && (l7.ecx >> 11) & 1 == 1;
    let bf16 = l7.eax >= 1 && (__cpuid_count(7, 1).eax >> 5) & 1 == 1;
    if !(amx && avx512 && bf16) {
        return AmxStatus::NotInCpu;
    }
    // CPUID.1:ECX.OSXSAVE (bit 27) says XGETBV may run; XCR0 bits 17 (XTILECFG) and 18 (XTILEDATA).
    if (l1.ecx >> 27) & 1 == 0 {
        return AmxStatus::NotEnabledByOs;
    }
    // SAFETY: OSXSAVE is set, so XGETBV is available.
    let xcr0 = unsafe { xcr0() };
    if (xcr0 >> 17) & 3 != 3 {
        return AmxStatus::NotEnabledByOs;
    }
    request_tile_data()
}

#[target_feature(enable = "xsave")]
unsafe fn xcr0() -> u64 {
    // SAFETY: the caller checked OSXSAVE.
    unsafe { _xgetbv(0) }
}

#[cfg(all(feature = "std", target_os = "linux"))]
fn request_tile_data() -> AmxStatus {
    const ARCH_GET_XCOMP_PERM: libc::c_long = 0x1022;
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // SAFETY: arch_prctl with these codes reads and writes only `perm`, a live u64.
    unsafe {
        if libc::syscall(libc::SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0 {
            return AmxStatus::PermissionRefused(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
        }
        let mut perm: u64 = 0;
        if libc::syscall(libc::SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &mut perm as *mut u64) != 0 {
            return AmxStatus::PermissionRefused(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
        }
        if (perm >> XFEATURE_XTILEDATA) & 1 == 0 {
            return AmxStatus::PermissionRefused(0);
        }
    }
    AmxStatus::Usable
}

#[cfg(not(all(feature = "std", target_os = "linux")))]
fn request_tile_data() -> AmxStatus {
    AmxStatus::PermissionRefused(0)
}

#[cfg(test)]
#[path = "amx_tests.rs"]
mod tests;
