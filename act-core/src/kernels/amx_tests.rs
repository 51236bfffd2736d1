//! The AMX kernels' arithmetic on an emulator of the tile instructions (Intel's pseudo-code for
//! `ldtilecfg`, `tileloadd`, `tdpbf16ps`, `tdpbusd`, `tilestored`), against sums computed here
//! from the same bf16 / int8 values. On an AMX host the GEMM tests run the hardware too.
use super::*;
use alloc::vec::Vec;

struct Emu {
    configured: bool,
    /// Eight tiles of 16 rows x 64 bytes.
    t: [[u8; 16 * ROW_BYTES]; 8],
}

impl Emu {
    fn new() -> Self {
        Emu { configured: false, t: [[0; 16 * ROW_BYTES]; 8] }
    }
    fn load(&mut self, t: usize, p: *const u8, stride: usize) {
        assert!(self.configured, "tileloadd before ldtilecfg faults");
        for r in 0..16 {
            // SAFETY: the step's contract, as for the hardware.
            unsafe { core::ptr::copy_nonoverlapping(p.add(r * stride), self.t[t][r * ROW_BYTES..].as_mut_ptr(), ROW_BYTES) };
        }
    }
    fn dword(&self, t: usize, r: usize, c: usize) -> [u8; 4] {
        self.t[t][r * ROW_BYTES + 4 * c..][..4].try_into().unwrap()
    }
    fn set_dword(&mut self, t: usize, r: usize, c: usize, v: [u8; 4]) {
        self.t[t][r * ROW_BYTES + 4 * c..][..4].copy_from_slice(&v);
    }
    /// tdpbf16ps / tdpbusd: C[m][n] += sum over k of A[m][pair or quad k] . B[k][pair or quad n].
    fn dp(&mut self, int8: bool, c: usize, a: usize, b: usize) {
        for m in 0..16 {
            for n in 0..16 {
                let mut acc = self.dword(c, m, n);
                for k in 0..16 {
                    let (av, bv) = (self.dword(a, m, k), self.dword(b, k, n));
                    if int8 {
                        let mut s = i32::from_le_bytes(acc);
                        for i in 0..4 {
                            s = s.wrapping_add(av[i] as i32 * (bv[i] as i8) as i32);
                        }
                        acc = s.to_le_bytes();
                    } else {
                        let h = |v: [u8; 4], i: usize| f32::from_bits((u16::from_le_bytes([v[2 * i], v[2 * i + 1]]) as u32) << 16);
                        let mut s = f32::from_le_bytes(acc);
                        s += h(av, 0) * h(bv, 0);
                        s += h(av, 1) * h(bv, 1);
                        acc = s.to_le_bytes();
                    }
                }
                self.set_dword(c, m, n, acc);
            }
        }
    }
}

impl TileUnit for Emu {
    unsafe fn configure(&mut self) {
        assert_eq!((CONFIG.palette, CONFIG.start_row), (1, 0));
        assert!(CONFIG.rows[..8].iter().all(|&r| r == 16) && CONFIG.colsb[..8].iter().all(|&c| c as usize == ROW_BYTES));
        self.configured = true;
    }
    unsafe fn release(&mut self) {
        self.configured = false;
    }
    unsafe fn zero_c(&mut self) {
        assert!(self.configured);
        for t in 0..4 {
            self.t[t] = [0; 16 * ROW_BYTES];
        }
    }
    unsafe fn step(&mut self, int8: bool, a: *const u8, lda: usize, b: *const u8) {
        self.load(4, a, lda);
        // SAFETY: the step's contract.
        self.load(5, unsafe { a.add(16 * lda) }, lda);
        self.load(6, b, 2 * ROW_BYTES);
        self.load(7, unsafe { b.add(64) }, 2 * ROW_BYTES);
        self.dp(int8, 0, 4, 6);
        self.dp(int8, 1, 4, 7);
        self.dp(int8, 2, 5, 6);
        self.dp(int8, 3, 5, 7);
    }
    unsafe fn store_c(&mut self, c: *mut u8) {
        assert!(self.configured);
        for (t, (r0, c0)) in [(0, 0), (0, 64), (16, 0), (16, 64)].into_iter().enumerate() {
            for r in 0..16 {
                // SAFETY: the contract: 32 rows of 128 bytes.
                unsafe { core::ptr::copy_nonoverlapping(self.t[t][r * ROW_BYTES..].as_ptr(), c.add((r0 + r) * 2 * ROW_BYTES + c0), ROW_BYTES) };
            }
        }
    }
}

/// A small deterministic generator (no rand in act-core).
fn values(n: usize, seed: u32) -> Vec<f32> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

#[test]
fn bf16_tile_equals_the_sum_of_pair_products_for_every_depth() {
    // Depths around the 16-pair step: whole steps, a short last step, a lone short step.
    for kp in [1, 7, 15, 16, 17, 32, 40, 128] {
        let lda = 2 * kp + 6; // rows further apart than they are long, as in a real block
        let a32 = values(MR * lda, kp as u32);
        let b32 = values(kp * 2 * NR, 1000 + kp as u32);
        let a: Vec<u16> = a32.iter().map(|&v| half::bf16::from_f32(v).to_bits()).collect();
        let b: Vec<u16> = b32.iter().map(|&v| half::bf16::from_f32(v).to_bits()).collect();
        let w = |v: u16| half::bf16::from_bits(v).to_f32() as f64;
        let mut tile = alloc::vec![f32::NAN; MR * NR];
        let mut emu = Emu::new();
        // SAFETY: the buffers have the sizes the contract asks; the emulator needs no CPU feature.
        unsafe {
            emu.configure();
            bf16_tile(&mut emu, kp, a.as_ptr(), lda, b.as_ptr(), tile.as_mut_ptr());
        }
        for i in 0..MR {
            for j in 0..NR {
                // B pair packing: pair q of column j at (q * NR + j) * 2.
                let want: f64 = (0..2 * kp).map(|p| w(a[i * lda + p]) * w(b[((p / 2) * NR + j) * 2 + p % 2])).sum();
                let got = tile[i * NR + j] as f64;
                assert!((got - want).abs() <= 1e-5 * (1.0 + want.abs()), "kp {kp}, C[{i}][{j}] = {got}, want {want}");
            }
        }
    }
}

#[test]
fn int8_sums_equal_the_sum_of_quad_products_for_every_depth() {
    for kq in [1, 5, 15, 16, 17, 48, 64] {
        let lda = 4 * kq + 12;
        let a: Vec<u8> = values(MR * lda, kq as u32).iter().map(|&v| ((v + 1.0) * 127.5) as u8).collect();
        let b: Vec<i8> = values(kq * 4 * NR, 7 + kq as u32).iter().map(|&v| (v * 127.0) as i8).collect();
        // Quad packing: quad q of column j at (q * NR + j) * 4.
        let bq = |p: usize, j: usize| b[((p / 4) * NR + j) * 4 + p % 4] as i64;
        let mut sums = [i32::MIN; MR * NR];
        let mut emu = Emu::new();
        // SAFETY: the buffers have the sizes the contract asks; the emulator needs no CPU feature.
        unsafe {
            emu.configure();
            int8_sums(&mut emu, kq, a.as_ptr(), lda, b.as_ptr(), &mut sums as *mut _);
        }
        for i in 0..MR {
            for j in 0..NR {
                let want: i64 = (0..4 * kq).map(|p| a[i * lda + p] as i64 * bq(p, j)).sum();
                assert_eq!(sums[i * NR + j] as i64, want, "kq {kq}, C[{i}][{j}]");
            }
        }
    }
}

/// The AMX kernels as `Bf16Kernel` / `Int8Kernel`, on one emulator per thread, so the GEMM
/// driver runs them as it runs the hardware (tiles set up on the thread that uses them).
struct EmuAmx;
std::thread_local! {
    static EMU: core::cell::RefCell<Emu> = core::cell::RefCell::new(Emu::new());
}

impl Bf16Kernel for EmuAmx {
    const MR: usize = MR;
    const NR: usize = NR;
    unsafe fn setup() {
        EMU.with(|e| unsafe { e.borrow_mut().configure() });
    }
    unsafe fn teardown() {
        EMU.with(|e| unsafe { e.borrow_mut().release() });
    }
    unsafe fn run_bf16(kp: usize, a: *const u16, lda: usize, b: *const u16, tile: *mut f32) {
        EMU.with(|e| unsafe { bf16_tile(&mut *e.borrow_mut(), kp, a, lda, b, tile) });
    }
    unsafe fn to_bf16(src: &[f32], dst: &mut [u16]) {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = half::bf16::from_f32(s).to_bits();
        }
    }
}

impl Int8Kernel for EmuAmx {
    const MR: usize = MR;
    const NR: usize = NR;
    type A = u8;
    unsafe fn setup() {
        EMU.with(|e| unsafe { e.borrow_mut().configure() });
    }
    unsafe fn teardown() {
        EMU.with(|e| unsafe { e.borrow_mut().release() });
    }
    unsafe fn run_int8(kq: usize, a: *const u8, lda: usize, b: *const i8, a_scale: *const f32, a_zero: *const i32, b_scale: *const f32, colsum: *const i32, tile: *mut f32) {
        let mut sums = [0i32; MR * NR];
        EMU.with(|e| unsafe { int8_sums(&mut *e.borrow_mut(), kq, a, lda, b, &mut sums as *mut _) });
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the contract's sizes; AVX-512F checked.
            unsafe { dequantise(&sums, a_scale, a_zero, b_scale, colsum, tile) };
        } else {
            for i in 0..MR {
                for j in 0..NR {
                    // SAFETY: the contract's sizes.
                    unsafe {
                        let v = sums[i * NR + j] - *a_zero.add(i) * *colsum.add(j);
                        *tile.add(i * NR + j) = v as f32 * (*a_scale.add(i) * *b_scale.add(j));
                    }
                }
            }
        }
    }
    unsafe fn min_max(src: &[f32]) -> (f32, f32) {
        // SAFETY: the scalar kernel needs no instruction set.
        unsafe { <super::super::scalar::Scalar as Int8Kernel>::min_max(src) }
    }
    unsafe fn quantize(src: &[f32], inv: f32, zero: i32, dst: &mut [u8]) {
        // SAFETY: as above.
        unsafe { <super::super::scalar::Scalar as Int8Kernel>::quantize(src, inv, zero, dst) }
    }
}

/// m crosses a row block (96) and ends mid-tile, k crosses two k blocks (256) and ends in a
/// short step, n ends mid-panel; two threads, so each sets up its own tiles.
const M: usize = 131;
const K: usize = 600;
const N: usize = 75;

fn inputs() -> (Vec<f32>, Vec<f32>) {
    (values(M * K, 3), values(K * N, 4))
}

#[test]
fn gemm_driver_on_emulated_amx_bf16_equals_the_sum_of_bf16_products() {
    use crate::kernels::pack::{MatrixA, PackedB, RowMap, WeightStorage};
    let (a, bm) = inputs();
    let b = PackedB::from_fn_stored(K, N, NR, WeightStorage::Bf16, |p, j| bm[p * N + j]);
    let pool = crate::kernels::exec::ThreadPool::new(2);
    for exec in [&crate::kernels::Serial as &dyn crate::kernels::Executor, &pool] {
        let mut c = alloc::vec![f32::NAN; M * N];
        crate::kernels::gemm::bf16_gemm_on::<EmuAmx>(&MatrixA { data: &a, ld: K, m: M, k: K }, b.as_ref(), &mut c, RowMap::Strided { ld: N }, exec);
        let r = |v: f32| half::bf16::from_f32(v).to_f32() as f64;
        for i in 0..M {
            for j in 0..N {
                let want: f64 = (0..K).map(|p| r(a[i * K + p]) * r(bm[p * N + j])).sum();
                let got = c[i * N + j] as f64;
                assert!((got - want).abs() <= 1e-5 * (1.0 + want.abs()), "C[{i}][{j}] = {got}, want {want}");
            }
        }
    }
}

#[test]
fn gemm_driver_on_emulated_amx_int8_equals_the_scalar_int8_kernel() {
    use crate::kernels::pack::{MatrixA, PackedB, RowMap, WeightStorage};
    let (a, bm) = inputs();
    let amx_b = PackedB::from_fn_stored(K, N, NR, WeightStorage::Int8, |p, j| bm[p * N + j]);
    let nr_scalar = crate::kernels::Isa::Scalar.nr();
    let scalar_b = PackedB::from_fn_stored(K, N, nr_scalar, WeightStorage::Int8, |p, j| bm[p * N + j]);
    let am = MatrixA { data: &a, ld: K, m: M, k: K };
    let mut want = alloc::vec![f32::NAN; M * N];
    crate::kernels::gemm::gemm(crate::kernels::Isa::Scalar, &am, scalar_b.as_ref(), &mut want, RowMap::Strided { ld: N }, Default::default(), &crate::kernels::Serial);
    let pool = crate::kernels::exec::ThreadPool::new(2);
    for exec in [&crate::kernels::Serial as &dyn crate::kernels::Executor, &pool] {
        let mut c = alloc::vec![f32::NAN; M * N];
        crate::kernels::gemm::int8_gemm_on::<EmuAmx>(&am, amx_b.as_ref(), &mut c, RowMap::Strided { ld: N }, exec);
        for (i, (&g, &w)) in c.iter().zip(&want).enumerate() {
            assert!((g - w).abs() <= 1e-5 * (1.0 + w.abs()), "C[{}][{}] = {g}, scalar int8 kernel {w}", i / N, i % N);
        }
    }
}

#[test]
fn status_agrees_with_the_cpu_flags_linux_reports() {
    let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_has = ["amx_tile", "amx_bf16", "amx_int8"].iter().all(|f| flags.split_whitespace().any(|w| w == *f));
    match status() {
        AmxStatus::Usable => assert!(cpu_has, "AMX reported usable on a CPU whose flags lack it"),
        AmxStatus::NotInCpu => assert!(!cpu_has || !flags.contains("avx512_bf16"), "AMX in /proc/cpuinfo, but CPUID says no"),
        other => assert!(cpu_has, "{other:?} on a CPU without AMX should read NotInCpu"),
    }
}
