//! Kernels against naive f64 references written out here, for every instruction set this CPU has.
mod common;
use act_core::kernels::attention::{multi_head_attention, AttentionScratch, Tokens};
use act_core::kernels::exec::Serial;
use act_core::kernels::gemm::{gemm, Epilogue};
use act_core::kernels::norm::{layer_norm, softmax_rows};
use act_core::kernels::pack::{pad_into, ConvA, ConvGeometry, MatrixA, PackedB, RowMap};
use common::{rel_err, Rng};

/// Every ISA this CPU can run.
fn isas() -> Vec<act_core::Isa> {
    act_core::Isa::ALL.into_iter().filter(|i| i.is_supported()).collect()
}

fn naive_gemm(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut c = vec![0.0f64; m * n];
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = (0..k).map(|p| a[i * k + p] as f64 * b[p * n + j] as f64).sum();
        }
    }
    c
}

#[test]
fn gemm_matches_naive_on_odd_shapes_with_epilogue() {
    let mut rng = Rng(7);
    // Shapes straddle MR, NR, MC (96) and KC (256) boundaries.
    for &(m, k, n) in &[(1, 1, 1), (5, 3, 17), (13, 300, 33), (97, 257, 65), (200, 513, 40), (7, 0, 5), (193, 40, 70)] {
        let a = rng.vec(m * k);
        let b = rng.vec(k * n);
        let bias = rng.vec(n);
        let res = rng.vec(m * n);
        let mut want = naive_gemm(&a, &b, m, k, n);
        for i in 0..m {
            for j in 0..n {
                let v = want[i * n + j] + bias[j] as f64 + res[i * n + j] as f64;
                want[i * n + j] = v.max(0.0);
            }
        }
        let want: Vec<f32> = want.iter().map(|&v| v as f32).collect();
        for isa in isas() {
            let packed = PackedB::from_fn(k, n, isa.nr(), |p, j| b[p * n + j]);
            let mut c = vec![f32::NAN; m * n];
            let epi = Epilogue { bias: Some(&bias), residual: Some(&res), relu: true };
            gemm(isa, &MatrixA { data: &a, ld: k, m, k }, packed.as_ref(), &mut c, RowMap::Strided { ld: n }, epi, &Serial);
            let err = rel_err(&c, &want);
            assert!(err < 1e-6, "{isa:?} m={m} k={k} n={n}: rel err {err}");
        }
    }
}

#[test]
fn gemm_respects_leading_dimensions() {
    let mut rng = Rng(3);
    let (m, k, n, lda, ldc) = (10, 20, 18, 27, 31);
    let a = rng.vec(m * lda);
    let b = rng.vec(k * n);
    let compact: Vec<f32> = (0..m).flat_map(|i| a[i * lda..i * lda + k].to_vec()).collect();
    let want = naive_gemm(&compact, &b, m, k, n);
    for isa in isas() {
        let packed = PackedB::from_fn(k, n, isa.nr(), |p, j| b[p * n + j]);
        let mut c = vec![-7.0f32; m * ldc];
        gemm(isa, &MatrixA { data: &a, ld: lda, m, k }, packed.as_ref(), &mut c, RowMap::Strided { ld: ldc }, Epilogue::default(), &Serial);
        for i in 0..m {
            for j in 0..ldc {
                if j < n {
                    assert!((c[i * ldc + j] as f64 - want[i * n + j]).abs() < 1e-4, "{isa:?} ({i},{j})");
                } else {
                    assert_eq!(c[i * ldc + j], -7.0, "{isa:?} wrote outside the C block at ({i},{j})");
                }
            }
        }
    }
}

/// Direct convolution, NCHW weight [cout, cin, k, k], NHWC input and output.
fn naive_conv(x: &[f32], g: &ConvGeometry, w: &[f32], cout: usize) -> Vec<f32> {
    let (oh, ow) = (g.out_h(), g.out_w());
    let mut out = vec![0.0f32; oh * ow * cout];
    for oy in 0..oh {
        for ox in 0..ow {
            for co in 0..cout {
                let mut acc = 0.0f64;
                for ky in 0..g.kh {
                    for kx in 0..g.kw {
                        let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                        let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                        if iy < 0 || ix < 0 || iy as usize >= g.in_h || ix as usize >= g.in_w {
                            continue;
                        }
                        for ci in 0..g.cin {
                            let xv = x[((iy as usize) * g.in_w + ix as usize) * g.cin + ci] as f64;
                            acc += xv * w[((co * g.cin + ci) * g.kh + ky) * g.kw + kx] as f64;
                        }
                    }
                }
                out[(oy * ow + ox) * cout + co] = acc as f32;
            }
        }
    }
    out
}

#[test]
fn implicit_gemm_convolution_matches_direct_convolution() {
    let mut rng = Rng(11);
    // (h, w, cin, cout, k, stride, conv padding, buffer padding): buffers may carry more
    // padding than the convolution uses (a 1x1 stride-2 downsample reads a 1-padded buffer).
    for &(h, w, cin, cout, k, stride, pad, in_pad) in
        &[(17, 23, 3, 8, 7, 2, 3, 3), (9, 8, 16, 20, 3, 1, 1, 1), (10, 11, 24, 12, 3, 2, 1, 1), (6, 6, 40, 33, 1, 2, 0, 1), (7, 9, 5, 6, 3, 1, 1, 2)]
    {
        let g = ConvGeometry { in_h: h, in_w: w, cin, kh: k, kw: k, stride, pad, in_pad };
        let x = rng.vec(h * w * cin);
        let mut padded = vec![f32::NAN; g.input_len()];
        pad_into(&x, h, w, cin, in_pad, &mut padded);
        let wt = rng.vec(cout * cin * k * k);
        let want = naive_conv(&x, &g, &wt, cout);
        for isa in isas() {
            let packed = PackedB::from_fn(g.k(), cout, isa.nr(), |p, co| {
                let (tap, ci) = (p / cin, p % cin);
                wt[((co * cin + ci) * k + tap / k) * k + tap % k]
            });
            // Output into the interior of a 1-padded buffer, as the backbone stores activations.
            let (oh, ow) = (g.out_h(), g.out_w());
            let mut out = vec![-9.0f32; (oh + 2) * (ow + 2) * cout];
            let map = RowMap::Padded { w: ow, pad: 1, c: cout };
            gemm(isa, &ConvA { input: &padded, geom: g }, packed.as_ref(), &mut out, map, Epilogue::default(), &Serial);
            let mut interior = vec![0.0f32; oh * ow * cout];
            for r in 0..oh * ow {
                interior[r * cout..(r + 1) * cout].copy_from_slice(&out[map.offset(r)..map.offset(r) + cout]);
            }
            assert!(out[..cout].iter().all(|&v| v == -9.0), "{isa:?}: wrote into the border");
            let err = rel_err(&interior, &want);
            assert!(err < 1e-6, "{isa:?} conv {h}x{w}x{cin}->{cout} k{k} s{stride}: rel err {err}");
        }
    }
}

#[test]
fn layer_norm_and_softmax_match_hand_computation() {
    // LayerNorm of [1, 2, 3, 4]: mean 2.5, population variance 1.25.
    let mut x = vec![1.0f32, 2.0, 3.0, 4.0];
    layer_norm(&mut x, 4, &[1.0, 2.0, 1.0, 1.0], &[0.0, 0.0, 0.5, 0.0], 1e-5);
    let s = 1.0 / (1.25f64 + 1e-5).sqrt();
    let want = [-1.5 * s, 2.0 * -0.5 * s, 0.5 * s + 0.5, 1.5 * s];
    for (a, b) in x.iter().zip(want) {
        assert!((*a as f64 - b).abs() < 1e-6, "{x:?} vs {want:?}");
    }
    // softmax(0.5 * [0, ln 4]) = [1/3, 2/3].
    let mut r = vec![0.0f32, 4.0f32.ln()];
    softmax_rows(&mut r, 2, 0.5);
    assert!((r[0] - 1.0 / 3.0).abs() < 1e-6 && (r[1] - 2.0 / 3.0).abs() < 1e-6, "{r:?}");
}

#[test]
fn multi_head_attention_matches_per_head_loops() {
    let mut rng = Rng(5);
    let (tq, tk, heads, hd) = (7, 19, 3, 8);
    let dim = heads * hd;
    let q = rng.vec(tq * dim);
    let k = rng.vec(tk * dim);
    let v = rng.vec(tk * dim);
    let mut want = vec![0.0f32; tq * dim];
    for h in 0..heads {
        for i in 0..tq {
            let scores: Vec<f64> = (0..tk)
                .map(|j| (0..hd).map(|d| q[i * dim + h * hd + d] as f64 * k[j * dim + h * hd + d] as f64).sum::<f64>() / (hd as f64).sqrt())
                .collect();
            let mx = scores.iter().cloned().fold(f64::MIN, f64::max);
            let e: Vec<f64> = scores.iter().map(|s| (s - mx).exp()).collect();
            let z: f64 = e.iter().sum();
            for d in 0..hd {
                want[i * dim + h * hd + d] = ((0..tk).map(|j| e[j] / z * v[j * dim + h * hd + d] as f64).sum::<f64>()) as f32;
            }
        }
    }
    for isa in isas() {
        let mut out = vec![0.0f32; tq * dim];
        let mut scratch = AttentionScratch::new(isa, tq, tk, hd, 1).unwrap();
        fn t(d: &[f32], len: usize, dim: usize) -> Tokens<'_> {
            Tokens { data: d, ld: dim, len }
        }
        multi_head_attention(isa, t(&q, tq, dim), t(&k, tk, dim), t(&v, tk, dim), heads, hd, &mut out, dim, &mut scratch, &Serial);
        let err = rel_err(&out, &want);
        assert!(err < 1e-6, "{isa:?}: rel err {err}");
    }
}

#[test]
fn f16_stored_weights_equal_f32_weights_of_the_rounded_values() {
    use act_core::kernels::pack::WeightStorage;
    let mut rng = Rng(17);
    let (m, k, n) = (37, 300, 70);
    let a = rng.vec(m * k);
    let b = rng.vec(k * n);
    let rounded: Vec<f32> = b.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect();
    for isa in isas().into_iter().filter(|i| i.supports_f16()) {
        let half = PackedB::from_fn_stored(k, n, isa.nr(), WeightStorage::F16, |p, j| b[p * n + j]);
        let full = PackedB::from_fn(k, n, isa.nr(), |p, j| rounded[p * n + j]);
        assert_eq!(half.bytes() * 2, full.bytes(), "f16 storage must halve the bytes");
        let (mut c1, mut c2) = (vec![0.0f32; m * n], vec![0.0f32; m * n]);
        let a_src = MatrixA { data: &a, ld: k, m, k };
        gemm(isa, &a_src, half.as_ref(), &mut c1, RowMap::Strided { ld: n }, Epilogue::default(), &Serial);
        gemm(isa, &a_src, full.as_ref(), &mut c2, RowMap::Strided { ld: n }, Epilogue::default(), &Serial);
        assert_eq!(c1, c2, "{isa:?}: f16 weights, widened per panel block, must give exactly the f32 result");
    }
}

#[test]
fn exp_approx_is_within_two_ulp_of_the_correctly_rounded_exp() {
    let mut worst = 0.0f64;
    let mut x = -87.0f32;
    while x < 88.0 {
        let got = act_core::kernels::norm::exp_approx(x) as f64;
        let want = (x as f64).exp();
        worst = worst.max(((got - want) / want).abs());
        x += 0.0137;
    }
    assert!(worst < 2.5e-7, "worst relative error {worst:e}");
    assert!(act_core::kernels::norm::exp_approx(-1000.0) >= 0.0 && act_core::kernels::norm::exp_approx(-1000.0) < 1e-37);
}

/// The ISA of the bf16 path, or `None` (said on stderr) where this CPU cannot run it. Stated,
/// not hidden: the load-time error is tested in errors.rs, and on the project's CI machine the
/// path runs.
fn bf16_isa() -> Option<act_core::Isa> {
    let isa = act_core::Isa::ALL.into_iter().find(|i| i.supports_bf16());
    if isa.is_none() {
        assert!(!common::expects("bf16"), "ACT_EXPECT_FEATURES has bf16 but this CPU has no bf16 kernel");
        eprintln!("SKIPPED: no bf16 kernel on this CPU (AVX-512 BF16 or Arm BF16)");
    }
    isa
}

fn bf16_round(v: &[f32]) -> Vec<f32> {
    v.iter().map(|&x| half::bf16::from_f32(x).to_f32()).collect()
}

/// A low-precision compute path under test: the weight storage that selects it, how it rounds
/// its inputs, its error bound against an f64 reference over the rounded values, and the open
/// interval its error against the unrounded f32 result must fall in (its precision shows, and no
/// more).
struct Rounded {
    name: &'static str,
    storage: act_core::kernels::pack::WeightStorage,
    round: fn(&[f32]) -> Vec<f32>,
    bound: f64,
    vs_f32: (f64, f64),
    /// Bytes of a packed k x n B for panel width nr.
    packed_bytes: fn(usize, usize, usize) -> usize,
}

/// GEMM with bias, residual and ReLU on `path` against naive f64 over the rounded values.
fn check_rounded_gemm(isa: act_core::Isa, path: &Rounded, seed: u64, shapes: &[(usize, usize, usize)]) {
    let mut rng = Rng(seed);
    let name = path.name;
    for &(m, k, n) in shapes {
        let a = rng.vec(m * k);
        let b = rng.vec(k * n);
        let bias = rng.vec(n);
        let res = rng.vec(m * n);
        let mut want = naive_gemm(&(path.round)(&a), &(path.round)(&b), m, k, n);
        for i in 0..m {
            for j in 0..n {
                want[i * n + j] = (want[i * n + j] + bias[j] as f64 + res[i * n + j] as f64).max(0.0);
            }
        }
        let want: Vec<f32> = want.iter().map(|&v| v as f32).collect();
        let packed = PackedB::from_fn_stored(k, n, isa.nr(), path.storage, |p, j| b[p * n + j]);
        assert_eq!(packed.bytes(), (path.packed_bytes)(k, n, isa.nr()), "{name} packing size");
        let mut c = vec![f32::NAN; m * n];
        let epi = Epilogue { bias: Some(&bias), residual: Some(&res), relu: true };
        gemm(isa, &MatrixA { data: &a, ld: k, m, k }, packed.as_ref(), &mut c, RowMap::Strided { ld: n }, epi, &Serial);
        let err = rel_err(&c, &want);
        assert!(err < path.bound, "{name} m={m} k={k} n={n}: rel err {err} against the rounded reference");
        if k >= 64 {
            let exact: Vec<f32> = naive_gemm(&a, &b, m, k, n).iter().map(|&v| v as f32).collect();
            let mut c0 = vec![0.0f32; m * n];
            gemm(isa, &MatrixA { data: &a, ld: k, m, k }, packed.as_ref(), &mut c0, RowMap::Strided { ld: n }, Epilogue::default(), &Serial);
            let e = rel_err(&c0, &exact);
            assert!(e > path.vs_f32.0 && e < path.vs_f32.1, "{name} m={m} k={k} n={n}: error {e} against f32 is not {name}-sized");
        }
    }
}

/// Convolution on `path` over the padded NHWC image, including conv1's odd 21-value kernel rows
/// and a k that crosses the KC block boundary mid-row, against direct convolution over the
/// rounded values.
fn check_rounded_convolution(isa: act_core::Isa, path: &Rounded, seed: u64) {
    let mut rng = Rng(seed);
    for &(h, w, cin, cout, k, stride, pad, in_pad) in &[(17, 23, 3, 8, 7, 2, 3, 3), (9, 8, 40, 20, 3, 1, 1, 1), (10, 11, 24, 70, 3, 2, 1, 1), (6, 6, 40, 33, 1, 2, 0, 1)] {
        let g = ConvGeometry { in_h: h, in_w: w, cin, kh: k, kw: k, stride, pad, in_pad };
        let x = rng.vec(h * w * cin);
        let mut padded = vec![f32::NAN; g.input_len()];
        pad_into(&x, h, w, cin, in_pad, &mut padded);
        let wt = rng.vec(cout * cin * k * k);
        let want = naive_conv(&(path.round)(&x), &g, &(path.round)(&wt), cout);
        let packed = PackedB::from_fn_stored(g.k(), cout, isa.nr(), path.storage, |p, co| {
            let (tap, ci) = (p / cin, p % cin);
            wt[((co * cin + ci) * k + tap / k) * k + tap % k]
        });
        let (oh, ow) = (g.out_h(), g.out_w());
        let mut out = vec![0.0f32; oh * ow * cout];
        gemm(isa, &ConvA { input: &padded, geom: g }, packed.as_ref(), &mut out, RowMap::Strided { ld: cout }, Epilogue::default(), &Serial);
        let err = rel_err(&out, &want);
        assert!(err < path.bound, "{} conv {h}x{w}x{cin}->{cout} k{k} s{stride}: rel err {err}", path.name);
    }
}

/// bf16 rounds A and B to bf16, multiplies exactly and accumulates in f32: f32 accumulation error
/// against the rounded reference, about bf16's precision against f32.
const BF16: Rounded = Rounded {
    name: "bf16",
    storage: act_core::kernels::pack::WeightStorage::Bf16,
    round: bf16_round,
    bound: 1e-6,
    vs_f32: (1e-4, 2e-2),
    packed_bytes: |k, n, nr| n.div_ceil(nr) * nr * k.div_ceil(2) * 2 * 2,
};

#[test]
fn bf16_gemm_matches_naive_over_rounded_values() {
    let Some(isa) = bf16_isa() else { return };
    // Odd k (the last pair padded), k > KC (256) and odd at the block boundary, m > MC (96),
    // n not a multiple of NR (32 on x86, 8 on Arm), k = 0, k pairs not a multiple of 4 (Arm's
    // remainder loop).
    check_rounded_gemm(isa, &BF16, 23, &[(1, 1, 1), (5, 3, 17), (13, 300, 33), (97, 257, 65), (200, 513, 40), (7, 0, 5), (6, 2, 32)]);
}

/// Segments joined before pairing (conv1's 21-value kernel rows).
#[test]
fn bf16_convolution_matches_direct_convolution_over_rounded_values() {
    let Some(isa) = bf16_isa() else { return };
    check_rounded_convolution(isa, &BF16, 29);
}

/// The ISA of the fp16 compute path, or `None` (said on stderr) where this CPU cannot run it.
fn f16_compute_isa() -> Option<act_core::Isa> {
    let isa = act_core::Isa::ALL.into_iter().find(|i| i.supports_f16_compute());
    if isa.is_none() {
        assert!(!common::expects("fp16"), "ACT_EXPECT_FEATURES has fp16 but this CPU has no fp16 kernel");
        eprintln!("SKIPPED: no fp16 compute kernel on this CPU (Arm FP16 arithmetic)");
    }
    isa
}

fn f16_round(v: &[f32]) -> Vec<f32> {
    v.iter().map(|&x| half::f16::from_f32(x).to_f32()).collect()
}

/// fp16 rounds A and B to f16 and accumulates in f16 within each k block of 256 (in f32 across
/// blocks): its error against the rounded reference is that of f16 accumulation, well below 1e-2;
/// a misplaced lane or row gives errors near 1.
const FP16: Rounded = Rounded {
    name: "fp16",
    storage: act_core::kernels::pack::WeightStorage::F16Compute,
    round: f16_round,
    bound: 1e-2,
    vs_f32: (1e-5, 2e-2),
    packed_bytes: |k, n, nr| n.div_ceil(nr) * nr * k * 2,
};

#[test]
fn f16_compute_gemm_matches_naive_over_rounded_values() {
    let Some(isa) = f16_compute_isa() else { return };
    // k not a multiple of 8 (the remainder loop), k > KC (two and three k blocks), m > MC, n not a
    // multiple of NR, k = 0.
    check_rounded_gemm(isa, &FP16, 31, &[(1, 1, 1), (5, 3, 17), (13, 300, 33), (97, 257, 65), (200, 513, 40), (7, 0, 5), (8, 8, 8)]);
}

#[test]
fn f16_compute_convolution_matches_direct_convolution_over_rounded_values() {
    let Some(isa) = f16_compute_isa() else { return };
    check_rounded_convolution(isa, &FP16, 37);
}

/// `gemm` on an instruction set this CPU lacks panics with a message naming it, whatever the
/// weight storage, before any of its instructions run (f16 weights once reached the kernel
/// without the check, which on such a CPU is an illegal instruction, not a message).
#[test]
fn gemm_on_an_instruction_set_this_cpu_lacks_panics_for_every_storage() {
    use act_core::kernels::pack::WeightStorage;
    let (m, k, n) = (6, 8, 16);
    let a = vec![0.5f32; m * k];
    for isa in act_core::Isa::ALL.into_iter().filter(|i| !i.is_supported()) {
        for storage in [WeightStorage::F32, WeightStorage::F16] {
            let b = PackedB::from_fn_stored(k, n, isa.nr(), storage, |p, j| (p + j) as f32);
            let mut c = vec![0.0f32; m * n];
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                gemm(isa, &MatrixA { data: &a, ld: k, m, k }, b.as_ref(), &mut c, RowMap::Strided { ld: n }, Epilogue::default(), &Serial)
            }));
            let message = result.expect_err("gemm ran on an instruction set this CPU lacks");
            let text = message.downcast_ref::<String>().cloned().or_else(|| message.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
            assert!(text.contains(&format!("{isa:?}")), "{isa:?} {storage:?}: the panic does not name the instruction set: {text}");
        }
    }
}
