//! Numeric kernels: packed GEMM (with per-instruction-set microkernels), convolution as implicit
//! GEMM over NHWC, attention, layer norm. Everything here works on caller-provided buffers and
//! never allocates; the model code in `crate::model` only calls these functions.

pub mod attention;
pub mod exec;
pub mod gemm;
pub mod kernel;
pub mod norm;
pub mod pack;
mod tile_source;

mod scalar;
#[cfg(target_arch = "x86_64")]
pub mod amx;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx2_int8;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "x86_64")]
mod avx512_vnni;
#[cfg(target_arch = "x86_64")]
mod avx_vnni;
#[cfg(target_arch = "aarch64")]
mod neon;

pub use exec::{Executor, Serial};
pub use gemm::Epilogue;
pub use kernel::Segment;
pub use pack::{ConvGeometry, PackedB, RowMap, WeightStorage};

/// The instruction set a policy's kernels run on. Chosen once at load; weights are packed for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// Portable Rust, the reference the SIMD paths are tested against.
    Scalar,
    /// x86_64 AVX2 + FMA.
    Avx2,
    /// x86_64 AVX-512F.
    Avx512,
    /// aarch64 Advanced SIMD (NEON), f32 arithmetic.
    Neon,
}

impl Isa {
    /// Every instruction set act-core has kernels for, on any architecture (the ones this CPU
    /// can run: filter with [`Isa::is_supported`]).
    pub const ALL: [Isa; 4] = [Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon];

    /// The best instruction set this CPU offers: detected at run time with `std`, taken from the
    /// compile-time target features without it.
    pub fn detect() -> Isa {
        #[cfg(all(target_arch = "x86_64", feature = "std"))]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Isa::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                return Isa::Avx2;
            }
        }
        #[cfg(all(target_arch = "x86_64", not(feature = "std")))]
        {
            if cfg!(target_feature = "avx512f") {
                return Isa::Avx512;
            }
            if cfg!(all(target_feature = "avx2", target_feature = "fma")) {
                return Isa::Avx2;
            }
        }
        #[cfg(all(target_arch = "aarch64", feature = "std"))]
        {
            if std::arch::is_aarch64_feature_detected!("neon") {
                return Isa::Neon;
            }
        }
        #[cfg(all(target_arch = "aarch64", not(feature = "std")))]
        {
            if cfg!(target_feature = "neon") {
                return Isa::Neon;
            }
        }
        Isa::Scalar
    }

    /// Whether this CPU can run `self` (a requested ISA the CPU lacks must not be used).
    pub fn is_supported(self) -> bool {
        match self {
            Isa::Scalar => true,
            Isa::Avx2 | Isa::Avx512 | Isa::Neon => {
                let best = Isa::detect();
                matches!((self, best), (Isa::Avx2, Isa::Avx2 | Isa::Avx512) | (Isa::Avx512, Isa::Avx512) | (Isa::Neon, Isa::Neon))
            }
        }
    }

    /// Whether f16-stored weights can be widened in this ISA's kernel (AVX2 needs F16C; NEON's
    /// `FCVTL` is part of the base instruction set).
    pub fn supports_f16(self) -> bool {
        match self {
            #[cfg(all(target_arch = "x86_64", feature = "std"))]
            Isa::Avx2 => std::arch::is_x86_feature_detected!("f16c"),
            #[cfg(all(target_arch = "x86_64", not(feature = "std")))]
            Isa::Avx2 => cfg!(target_feature = "f16c"),
            _ => true,
        }
    }

    /// Whether the bf16 compute path ([`WeightStorage::Bf16`]) can run: AVX-512 with the BF16
    /// extension (`vdpbf16ps`), or NEON with the Arm BF16 extension (`BFDOT`).
    pub fn supports_bf16(self) -> bool {
        match self {
            #[cfg(all(target_arch = "aarch64", feature = "std"))]
            Isa::Neon => self.is_supported() && std::arch::is_aarch64_feature_detected!("bf16"),
            #[cfg(all(target_arch = "aarch64", not(feature = "std")))]
            Isa::Neon => cfg!(target_feature = "bf16"),
            #[cfg(all(target_arch = "x86_64", feature = "std"))]
            Isa::Avx512 => self.is_supported() && std::arch::is_x86_feature_detected!("avx512bf16"),
            #[cfg(all(target_arch = "x86_64", not(feature = "std")))]
            Isa::Avx512 => cfg!(target_feature = "avx512bf16"),
            _ => false,
        }
    }

    /// Whether the int8 compute path ([`WeightStorage::Int8`]) can run: AVX-512 with VNNI
    /// (`vpdpbusd`, with AVX-512BW); AVX2 everywhere (AVX-VNNI's 256-bit `vpdpbusd` where the CPU
    /// has it, `vpmaddwd` on 16-bit widened values otherwise: the same integers); the portable
    /// scalar kernel (the reference; slower than f32, only when `Isa::Scalar` is forced).
    pub fn supports_int8(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(all(target_arch = "x86_64", feature = "std"))]
            Isa::Avx512 => {
                self.is_supported() && std::arch::is_x86_feature_detected!("avx512bw") && std::arch::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(all(target_arch = "x86_64", not(feature = "std")))]
            Isa::Avx512 => cfg!(all(target_feature = "avx512bw", target_feature = "avx512vnni")),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => self.is_supported(),
            _ => false,
        }
    }

    /// Whether `Isa::Avx2`'s int8 path runs AVX-VNNI's `vpdpbusd` (else `vpmaddwd`).
    pub fn has_avx_vnni(self) -> bool {
        match self {
            #[cfg(all(target_arch = "x86_64", feature = "std"))]
            Isa::Avx2 => self.is_supported() && std::arch::is_x86_feature_detected!("avxvnni"),
            #[cfg(all(target_arch = "x86_64", not(feature = "std")))]
            Isa::Avx2 => cfg!(all(target_feature = "avx2", target_feature = "avxvnni")),
            _ => false,
        }
    }

    /// The instructions the int8 path needs (any ISA), for error messages and notes.
    pub const INT8_REQUIREMENT: &'static str = "AVX-512 VNNI (vpdpbusd, with AVX-512BW) or AVX2";

    /// The int8 kernel `self` runs, for `Policy::kernels` notes.
    pub fn int8_kernel_name(self) -> &'static str {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 if amx::usable() => "AMX tdpbusd",
            Isa::Avx512 => "AVX-512 VNNI vpdpbusd",
            Isa::Avx2 if self.has_avx_vnni() => "AVX-VNNI vpdpbusd",
            Isa::Avx2 => "AVX2 vpmaddwd",
            _ => "scalar",
        }
    }

    /// The bf16 kernel `self` runs, for `Policy::kernels` notes.
    pub fn bf16_kernel_name(self) -> &'static str {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 if amx::usable() => "AMX tdpbf16ps",
            Isa::Avx512 => "AVX-512 BF16 vdpbf16ps",
            Isa::Neon => "Arm BFDOT",
            _ => "none",
        }
    }

    /// Whether the fp16 compute path ([`WeightStorage::F16Compute`]) can run: NEON with FP16
    /// arithmetic (`FMLA .8H`; Cortex-A76/A78, Neoverse N1 and later).
    pub fn supports_f16_compute(self) -> bool {
        match self {
            #[cfg(all(target_arch = "aarch64", feature = "std"))]
            Isa::Neon => self.is_supported() && std::arch::is_aarch64_feature_detected!("fp16"),
            #[cfg(all(target_arch = "aarch64", not(feature = "std")))]
            Isa::Neon => cfg!(target_feature = "fp16"),
            _ => false,
        }
    }

    /// Columns per packed panel of the B operand for this ISA's microkernel.
    pub fn nr(self) -> usize {
        match self {
            Isa::Scalar => <scalar::Scalar as kernel::Kernel>::NR,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => <avx2::Avx2 as kernel::Kernel>::NR,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => <avx512::Avx512 as kernel::Kernel>::NR,
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => <neon::Neon as kernel::Kernel>::NR,
            // Not on this architecture: never supported, so never packed for; any width works.
            #[allow(unreachable_patterns)]
            _ => <scalar::Scalar as kernel::Kernel>::NR,
        }
    }
}
