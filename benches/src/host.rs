//! What the host is, printed beside every figure: the machines this project runs on change between
//! sessions (AMD Zen 3, Zen 4, Intel Xeon with AMX), and a kernel that wins on one loses on another.

/// The CPU flags that decide act-core's compute paths (and libtorch's bf16 speed).
const RELEVANT: [&str; 12] = ["avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8"];

/// `/proc/cpuinfo`'s model name and the relevant flags it lists, e.g.
/// `AMD EPYC (flags: avx2 fma f16c)`; "unknown CPU" where there is no such file.
pub fn describe() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| info.lines().find(|l| l.starts_with(name)).and_then(|l| l.split(':').nth(1)).map(|v| v.trim().to_string());
    let model = field("model name").unwrap_or_else(|| "unknown CPU".into());
    let flags = field("flags").unwrap_or_default();
    let have: Vec<&str> = RELEVANT.iter().copied().filter(|f| flags.split_whitespace().any(|x| x == *f)).collect();
    format!("{model} (flags: {})", if have.is_empty() { "none of the relevant ones".to_string() } else { have.join(" ") })
}

/// Whether the CPU computes bf16 natively (AVX-512 BF16 or AMX-BF16). Without it oneDNN emulates
/// bf16 and libtorch's bf16 model runs tens of times slower than its f32 one (measured on an AMD
/// EPYC Zen 3: 2.97 s against 0.11 s at the small size), which says nothing about bf16 hardware.
pub fn native_bf16() -> bool {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.lines().find(|l| l.starts_with("flags")).is_some_and(|l| l.split_whitespace().any(|f| f == "avx512_bf16" || f == "amx_bf16"))
}
