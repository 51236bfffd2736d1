//! The int8 compute path against a reference written out here from its specification
//! (`pack::Int8Weights`, `gemm`'s int8 rows): weights rounded to int8 per output column
//! (scale max|w| / 127), activations to unsigned bytes over their range (0 included) per row and k
//! block of 256, integer products summed exactly.
//! Checked on every ISA with an int8 kernel (the portable scalar one everywhere, AVX-512 VNNI where
//! the CPU has it, AVX2's: AVX-VNNI where the CPU has it, `vpmaddwd` otherwise).
mod common;
use act_core::kernels::exec::Serial;
use act_core::kernels::gemm::{gemm, Epilogue};
use act_core::kernels::pack::{pad_into, ConvA, ConvGeometry, MatrixA, PackedB, RowMap, WeightStorage};
use common::{rel_err, Rng};

const BLOCK: usize = 256;

fn int8_isas() -> Vec<act_core::Isa> {
    let isas: Vec<_> = act_core::Isa::ALL.into_iter().filter(|i| i.is_supported() && i.supports_int8()).collect();
    assert!(isas.contains(&act_core::Isa::Scalar), "the scalar int8 kernel runs everywhere");
    let simd = isas.iter().any(|&i| i != act_core::Isa::Scalar);
    if !simd {
        assert!(!common::expects("vnni"), "ACT_EXPECT_FEATURES has vnni but no SIMD int8 kernel runs here");
        eprintln!("note: no SIMD int8 kernel on this CPU (AVX-512 VNNI or AVX2); only the scalar one is tested");
    }
    isas
}

/// `round(v * 127 / max|v|)` per the spec, and the scale `max / 127`.
fn quantize(v: &[f32]) -> (Vec<f64>, f64) {
    let max = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let inv = if max > 0.0 { 127.0 / max } else { 0.0 };
    (v.iter().map(|&x| (x * inv).round_ties_even() as f64).collect(), (max / 127.0) as f64)
}

/// `round(v / s) + z` over v's range with 0 included, `s = (max - min) / 255`, as the spec says;
/// returns the dequantised values `s * (u - z)`.
fn quantize_range(v: &[f32]) -> Vec<f64> {
    let lo = v.iter().fold(0.0f32, |m, &x| m.min(x));
    let hi = v.iter().fold(0.0f32, |m, &x| m.max(x));
    if hi == lo {
        return vec![0.0; v.len()];
    }
    let inv = 255.0 / (hi - lo);
    let z = (-lo * inv).round_ties_even();
    let s = ((hi - lo) / 255.0) as f64;
    v.iter().map(|&x| ((x * inv).round_ties_even() + z).clamp(0.0, 255.0) as f64 - z as f64).map(|u| u * s).collect()
}

/// C = A B over an explicit m x k A, quantised as the int8 path specifies, in f64.
fn int8_reference(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    let cols: Vec<(Vec<f64>, f64)> = (0..n).map(|j| quantize(&(0..k).map(|p| b[p * n + j]).collect::<Vec<_>>())).collect();
    let mut c = vec![0.0f64; m * n];
    for i in 0..m {
        for p0 in (0..k).step_by(BLOCK) {
            let p1 = (p0 + BLOCK).min(k);
            let da = quantize_range(&a[i * k + p0..i * k + p1]);
            for (j, (qb, sb)) in cols.iter().enumerate() {
                let dot: f64 = (p0..p1).map(|p| da[p - p0] * qb[p]).sum();
                c[i * n + j] += dot * sb;
            }
        }
    }
    c.iter().map(|&v| v as f32).collect()
}

fn exact(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    let mut c = vec![0.0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = (0..k).map(|p| a[i * k + p] as f64 * b[p * n + j] as f64).sum::<f64>() as f32;
        }
    }
    c
}

#[test]
fn int8_gemm_matches_the_specified_quantisation() {
    let mut rng = Rng(41);
    // k not a multiple of 4 (quad padding), k > 256 with a short last block, m > MC (96), n not a
    // multiple of NR, k = 0, one row (the state projection).
    for &(m, k, n) in &[(1, 1, 1), (5, 3, 17), (13, 300, 33), (97, 257, 65), (200, 513, 40), (7, 0, 5), (1, 14, 64)] {
        let a = rng.vec(m * k);
        let b = rng.vec(k * n);
        let bias = rng.vec(n);
        let res = rng.vec(m * n);
        let q = int8_reference(&a, &b, m, k, n);
        let want: Vec<f32> = (0..m * n).map(|x| (q[x] + bias[x % n] + res[x]).max(0.0)).collect();
        for isa in int8_isas() {
            let packed = PackedB::from_fn_stored(k, n, isa.nr(), WeightStorage::Int8, |p, j| b[p * n + j]);
            let mut c = vec![f32::NAN; m * n];
            let epi = Epilogue { bias: Some(&bias), residual: Some(&res), relu: true };
            gemm(isa, &MatrixA { data: &a, ld: k, m, k }, packed.as_ref(), &mut c, RowMap::Strided { ld: n }, epi, &Serial);
            let err = rel_err(&c, &want);
            assert!(err < 1e-5, "{isa:?} m={m} k={k} n={n}: rel err {err} against the quantised reference");
            if k >= 64 {
                let mut c0 = vec![0.0f32; m * n];
                gemm(isa, &MatrixA { data: &a, ld: k, m, k }, packed.as_ref(), &mut c0, RowMap::Strided { ld: n }, Epilogue::default(), &Serial);
                let e = rel_err(&c0, &exact(&a, &b, m, k, n));
                assert!(e > 1e-4 && e < 2e-2, "{isa:?} m={m} k={k} n={n}: error {e} against f32 is not int8-sized");
            }
        }
    }
}

/// Weights stored in int8 (`act-train export --quantize int8`) reach the int8 path as `q * s`,
/// times a BatchNorm scale `g` for a convolution (folded in f64 at load): the path must round
/// them back to exactly their levels (per output column, `max |q| = 127`), adding no weight
/// error. So the product equals the activation-quantised one on the file's weights as they are;
/// the control, weights off the grid, shows the weight rounding this check would see.
#[test]
fn int8_file_weights_keep_their_levels() {
    let mut rng = Rng(43);
    let (m, k, n) = (9, 300, 37);
    let a = rng.vec(m * k);
    // Levels in -127..=127 with one +-127 per column, a positive scale and a BatchNorm factor of
    // either sign over six decades.
    let mut b = vec![0.0f32; k * n];
    let mut off_grid = vec![0.0f32; k * n];
    for j in 0..n {
        let s = 1e-3 + rng.next_f32().abs();
        let g = (if j % 2 == 0 { 1.0f64 } else { -1.0 }) * 10f64.powf(3.0 * rng.next_f32() as f64);
        for p in 0..k {
            let level = if p == j % k { if j % 3 == 0 { -127.0 } else { 127.0 } } else { (rng.next_f32() * 127.0).round_ties_even() };
            b[p * n + j] = ((level * s) as f64 * g) as f32;
            off_grid[p * n + j] = (((level + 0.3 * rng.next_f32()) * s) as f64 * g) as f32;
        }
    }
    // Reference: activations quantised per row and k block as specified, weights exactly as given.
    let reference = |w: &[f32]| -> Vec<f32> {
        let mut c = vec![0.0f64; m * n];
        for i in 0..m {
            for p0 in (0..k).step_by(BLOCK) {
                let p1 = (p0 + BLOCK).min(k);
                let da = quantize_range(&a[i * k + p0..i * k + p1]);
                for j in 0..n {
                    c[i * n + j] += (p0..p1).map(|p| da[p - p0] * w[p * n + j] as f64).sum::<f64>();
                }
            }
        }
        c.iter().map(|&v| v as f32).collect()
    };
    for isa in int8_isas() {
        for (w, on_grid) in [(&b, true), (&off_grid, false)] {
            let packed = PackedB::from_fn_stored(k, n, isa.nr(), WeightStorage::Int8, |p, j| w[p * n + j]);
            let mut c = vec![f32::NAN; m * n];
            gemm(isa, &MatrixA { data: &a, ld: k, m, k }, packed.as_ref(), &mut c, RowMap::Strided { ld: n }, Epilogue::default(), &Serial);
            let err = rel_err(&c, &reference(w));
            if on_grid {
                assert!(err < 1e-5, "{isa:?}: rel err {err:.2e}: int8 levels were not read back exactly");
            } else {
                assert!(err > 1e-4, "{isa:?}: off-grid weights show no rounding ({err:.2e}): the check is blind");
            }
        }
    }
}

/// Activations near f32's limit whose range overflows f32 (max - min > 3.4e38) still quantise to
/// a finite scale, and the product keeps int8-sized accuracy (it used to come out NaN).
#[test]
fn int8_activations_whose_range_overflows_f32_stay_finite() {
    let mut rng = Rng(7);
    let (m, k, n) = (3, 40, 9);
    let a: Vec<f32> = rng.vec(m * k).iter().map(|v| v * 3.0e38).collect();
    let b: Vec<f32> = rng.vec(k * n).iter().map(|v| v * 1e-3).collect();
    let want = exact(&a, &b, m, k, n);
    for isa in int8_isas() {
        let packed = PackedB::from_fn_stored(k, n, isa.nr(), WeightStorage::Int8, |p, j| b[p * n + j]);
        let mut c = vec![f32::NAN; m * n];
        gemm(isa, &MatrixA { data: &a, ld: k, m, k }, packed.as_ref(), &mut c, RowMap::Strided { ld: n }, Epilogue::default(), &Serial);
        assert!(c.iter().all(|v| v.is_finite()), "{isa:?}: non-finite output {c:?}");
        let e = rel_err(&c, &want);
        assert!(e < 3e-2, "{isa:?}: error {e} against f32");
    }
}

/// The implicit im2col of the padded image, written out: row r = output pixel, (ky, kx, ci).
fn im2col(x: &[f32], g: &ConvGeometry) -> Vec<f32> {
    let (oh, ow) = (g.out_h(), g.out_w());
    let mut a = Vec::with_capacity(oh * ow * g.k());
    for oy in 0..oh {
        for ox in 0..ow {
            for ky in 0..g.kh {
                for kx in 0..g.kw {
                    for ci in 0..g.cin {
                        let (y, xx) = ((oy * g.stride + ky) as isize - g.pad as isize, (ox * g.stride + kx) as isize - g.pad as isize);
                        let inside = y >= 0 && xx >= 0 && (y as usize) < g.in_h && (xx as usize) < g.in_w;
                        a.push(if inside { x[(y as usize * g.in_w + xx as usize) * g.cin + ci] } else { 0.0 });
                    }
                }
            }
        }
    }
    a
}

/// Segments joined before quantising (conv1's 21-value kernel rows, a block boundary mid-row).
#[test]
fn int8_convolution_matches_the_specified_quantisation() {
    let mut rng = Rng(43);
    for &(h, w, cin, cout, k, stride, pad, in_pad) in &[(17, 23, 3, 8, 7, 2, 3, 3), (9, 8, 40, 20, 3, 1, 1, 1), (10, 11, 24, 70, 3, 2, 1, 1), (6, 6, 40, 33, 1, 2, 0, 1)] {
        let g = ConvGeometry { in_h: h, in_w: w, cin, kh: k, kw: k, stride, pad, in_pad };
        let x = rng.vec(h * w * cin);
        let mut padded = vec![f32::NAN; g.input_len()];
        pad_into(&x, h, w, cin, in_pad, &mut padded);
        let wt = rng.vec(cout * cin * k * k);
        let weight = |p: usize, co: usize| {
            let (tap, ci) = (p / cin, p % cin);
            wt[((co * cin + ci) * k + tap / k) * k + tap % k]
        };
        let b: Vec<f32> = (0..g.k() * cout).map(|i| weight(i / cout, i % cout)).collect();
        let (oh, ow) = (g.out_h(), g.out_w());
        let want = int8_reference(&im2col(&x, &g), &b, oh * ow, g.k(), cout);
        for isa in int8_isas() {
            let packed = PackedB::from_fn_stored(g.k(), cout, isa.nr(), WeightStorage::Int8, weight);
            let mut out = vec![0.0f32; oh * ow * cout];
            gemm(isa, &ConvA { input: &padded, geom: g }, packed.as_ref(), &mut out, RowMap::Strided { ld: cout }, Epilogue::default(), &Serial);
            let err = rel_err(&out, &want);
            assert!(err < 1e-5, "{isa:?} conv {h}x{w}x{cin}->{cout} k{k} s{stride}: rel err {err}");
        }
    }
}

/// A NaN or infinite activation must not vanish into a finite int8 result.
#[test]
fn int8_non_finite_inputs_give_non_finite_outputs() {
    let (m, k, n) = (7, 40, 20);
    let b = Rng(5).vec(k * n);
    for isa in int8_isas() {
        let packed = PackedB::from_fn_stored(k, n, isa.nr(), WeightStorage::Int8, |p, j| b[p * n + j]);
        for bad in [f32::NAN, f32::INFINITY] {
            let mut a = Rng(6).vec(m * k);
            a[3 * k + 17] = bad;
            let mut c = vec![0.0f32; m * n];
            gemm(isa, &MatrixA { data: &a, ld: k, m, k }, packed.as_ref(), &mut c, RowMap::Strided { ld: n }, Epilogue::default(), &Serial);
            assert!(c[3 * n..4 * n].iter().all(|v| !v.is_finite()), "{isa:?}: {bad} in row 3 gave finite outputs");
            assert!(c[..3 * n].iter().all(|v| v.is_finite()), "{isa:?}: other rows stay finite");
        }
    }
}
