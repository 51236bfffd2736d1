use act_core::kernels::exec::Serial;
use act_core::kernels::gemm::{gemm, Epilogue};
use act_core::kernels::pack::{ConvA, ConvGeometry, MatrixA, PackedB, RowMap};
use act_core::Isa;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 { v.sort_by(f64::total_cmp); v[v.len() / 2] }

fn main() {
    attention_probe();
    let t: usize = std::env::var("T").ok().map(|v| v.parse().unwrap()).unwrap_or(1);
    let pool = act_core::kernels::exec::ThreadPool::new(t);
    let ex: &dyn act_core::kernels::Executor = &pool;
    let peak = act_benches::peak::fma_peak_gflops();
    println!("FMA peak 1 core: {peak:.1} GFLOP/s");
    let isa = Isa::detect();
        for &(m, k, n) in &[(302usize, 512usize, 3200usize), (302, 3200, 512), (302, 512, 512), (300, 4608, 512), (1202, 512, 3200), (1202, 3200, 512), (1202, 512, 512)] {
        let a = vec![0.5f32; m * k];
        let b = PackedB::from_fn(k, n, isa.nr(), |p, j| ((p + j) % 7) as f32 * 0.1);
        let mut c = vec![0.0f32; m * n];
        let times: Vec<f64> = (0..15).map(|_| { let t = Instant::now(); gemm(isa, &MatrixA { data: &a, ld: k, m, k }, b.as_ref(), &mut c, RowMap::Strided { ld: n }, Epilogue::default(), ex); t.elapsed().as_secs_f64() }).collect();
        let g = 2.0 * (m * k * n) as f64 / median(times) / 1e9;
        println!("gemm {m}x{k}x{n}: {g:.1} GFLOP/s = {:.0} % of peak", 100.0 * g / peak);
    }
    for &(h, w, cin, cout, kk, st, pad) in &[(120usize, 160usize, 64usize, 64usize, 3usize, 1usize, 1usize), (480, 640, 3, 64, 7, 2, 3), (30, 40, 256, 256, 3, 1, 1)] {
        let g = ConvGeometry { in_h: h, in_w: w, cin, kh: kk, kw: kk, stride: st, pad, in_pad: pad };
        let x = vec![0.3f32; g.input_len()];
        let b = PackedB::from_fn(g.k(), cout, isa.nr(), |p, j| ((p + j) % 5) as f32 * 0.1);
        let mut out = vec![0.0f32; g.out_h() * g.out_w() * cout];
        let times: Vec<f64> = (0..9).map(|_| { let t = Instant::now(); gemm(isa, &ConvA { input: &x, geom: g }, b.as_ref(), &mut out, RowMap::Strided { ld: cout }, Epilogue::default(), ex); t.elapsed().as_secs_f64() }).collect();
        let flops = 2.0 * (g.out_h() * g.out_w() * cout * g.k()) as f64;
        let gf = flops / median(times) / 1e9;
        println!("conv {h}x{w}x{cin}->{cout} k{kk} s{st}: {gf:.1} GFLOP/s = {:.0} % of peak", 100.0 * gf / peak);
    }
}

#[allow(dead_code)]
fn attention_probe() {
    use act_core::kernels::attention::{multi_head_attention, AttentionScratch, Tokens};
    let isa = Isa::detect();
    let (t, dim, heads) = (302usize, 512usize, 8usize);
    let q = vec![0.01f32; t * dim];
    let mut out = vec![0.0f32; t * dim];
    let mut sc = AttentionScratch::new(isa, t, t, dim / heads, 1).unwrap();
    let times: Vec<f64> = (0..15).map(|_| { let st = Instant::now(); let tk = Tokens { data: &q, ld: dim, len: t }; multi_head_attention(isa, tk, tk, tk, heads, dim / heads, &mut out, dim, &mut sc, &Serial); st.elapsed().as_secs_f64() }).collect();
    println!("attention 302 tokens x 8 heads x 64: {:.2} ms (x4 encoder layers)", median(times) * 1e3);
    let mut row = vec![0.5f32; t * t * heads];
    let times: Vec<f64> = (0..15).map(|_| { let st = Instant::now(); act_core::kernels::norm::softmax_rows(&mut row, t, 0.125); st.elapsed().as_secs_f64() }).collect();
    println!("softmax of 8 x 302 x 302: {:.2} ms", median(times) * 1e3);
}
