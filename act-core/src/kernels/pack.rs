//! Operand packing, kept apart from the arithmetic: B (weights, or K/V in attention) into
//! NR-column panels, A (activations) into MR-row blocks, either from a strided matrix or straight
//! from an NHWC image as the rows of an implicit im2col matrix (convolution without im2col buffer).
use alloc::vec;
use alloc::vec::Vec;

/// B operand packed in panels of `nr` columns: element (p, j) of the k x n matrix lives at
/// `data[((j / nr) * k + p) * nr + j % nr]`; columns past `n` in the last panel are zero.
#[derive(Clone, Debug)]
pub struct PackedB {
    pub k: usize,
    pub n: usize,
    pub nr: usize,
    pub data: Vec<f32>,
}

/// A borrowed packed B operand (weights owned by a layer, or K/V packed into scratch).
#[derive(Clone, Copy, Debug)]
pub struct PackedBRef<'a> {
    pub k: usize,
    pub n: usize,
    pub nr: usize,
    pub data: &'a [f32],
}

/// Floats needed to pack a k x n B operand in panels of nr columns.
pub fn packed_b_len(k: usize, n: usize, nr: usize) -> usize {
    n.div_ceil(nr) * nr * k
}

/// Pack the k x n matrix whose (p, j) element is `f(p, j)` into `dst`; returns the view.
pub fn pack_b_into<'a>(dst: &'a mut [f32], k: usize, n: usize, nr: usize, f: impl Fn(usize, usize) -> f32) -> PackedBRef<'a> {
    let len = packed_b_len(k, n, nr);
    let dst = &mut dst[..len];
    for jp in 0..n.div_ceil(nr) {
        let panel = &mut dst[jp * k * nr..(jp + 1) * k * nr];
        for p in 0..k {
            let row = &mut panel[p * nr..(p + 1) * nr];
            for (c, out) in row.iter_mut().enumerate() {
                let j = jp * nr + c;
                *out = if j < n { f(p, j) } else { 0.0 };
            }
        }
    }
    PackedBRef { k, n, nr, data: dst }
}

impl PackedB {
    /// Pack (allocating) the k x n matrix whose (p, j) element is `f(p, j)`.
    pub fn from_fn(k: usize, n: usize, nr: usize, f: impl Fn(usize, usize) -> f32) -> PackedB {
        let mut data = vec![0.0; packed_b_len(k, n, nr)];
        pack_b_into(&mut data, k, n, nr, f);
        PackedB { k, n, nr, data }
    }

    /// B = W^T for a PyTorch weight W of shape [n, k] (row-major), as in `y = x W^T`.
    pub fn from_weight_t(w: &[f32], n: usize, k: usize, nr: usize) -> PackedB {
        assert_eq!(w.len(), n * k);
        PackedB::from_fn(k, n, nr, |p, j| w[j * k + p])
    }

    pub fn as_ref(&self) -> PackedBRef<'_> {
        PackedBRef { k: self.k, n: self.n, nr: self.nr, data: &self.data }
    }
}

/// The A operand of a GEMM: something that can write MR-row blocks of itself in packed order.
pub trait ASource {
    fn rows(&self) -> usize;
    fn cols(&self) -> usize;
    /// Write rows `row0 .. row0 + mr_rows` and columns `p0 .. p0 + kc` to `dst[p * mr + i]`
    /// (p relative to p0); rows `mr_rows .. mr` are written as zeros.
    fn pack(&self, row0: usize, mr_rows: usize, mr: usize, p0: usize, kc: usize, dst: &mut [f32]);
}

/// A row-major m x k matrix with leading dimension `ld`.
#[derive(Clone, Copy)]
pub struct MatrixA<'a> {
    pub data: &'a [f32],
    pub ld: usize,
    pub m: usize,
    pub k: usize,
}

impl ASource for MatrixA<'_> {
    fn rows(&self) -> usize {
        self.m
    }
    fn cols(&self) -> usize {
        self.k
    }
    fn pack(&self, row0: usize, mr_rows: usize, mr: usize, p0: usize, kc: usize, dst: &mut [f32]) {
        for i in 0..mr {
            if i < mr_rows {
                let start = (row0 + i) * self.ld + p0;
                let src = &self.data[start..start + kc];
                for (p, &v) in src.iter().enumerate() {
                    dst[p * mr + i] = v;
                }
            } else {
                for p in 0..kc {
                    dst[p * mr + i] = 0.0;
                }
            }
        }
    }
}

/// Shape of a 2-D convolution over an NHWC image (batch 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    pub in_h: usize,
    pub in_w: usize,
    pub cin: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad: usize,
}

impl ConvGeometry {
    pub fn out_h(&self) -> usize {
        (self.in_h + 2 * self.pad - self.kh) / self.stride + 1
    }
    pub fn out_w(&self) -> usize {
        (self.in_w + 2 * self.pad - self.kw) / self.stride + 1
    }
    /// Rows of the implicit im2col matrix: (kh, kw, cin) flattened, cin fastest.
    pub fn k(&self) -> usize {
        self.kh * self.kw * self.cin
    }
}

/// The implicit im2col matrix of an NHWC image: row r is output pixel (r / out_w, r % out_w),
/// column p is (ky, kx, ci) with ci fastest; zero where the window falls in the padding.
#[derive(Clone, Copy)]
pub struct ConvA<'a> {
    pub input: &'a [f32],
    pub geom: ConvGeometry,
}

impl ASource for ConvA<'_> {
    fn rows(&self) -> usize {
        self.geom.out_h() * self.geom.out_w()
    }
    fn cols(&self) -> usize {
        self.geom.k()
    }
    fn pack(&self, row0: usize, mr_rows: usize, mr: usize, p0: usize, kc: usize, dst: &mut [f32]) {
        let g = &self.geom;
        let out_w = g.out_w();
        for i in 0..mr {
            if i >= mr_rows {
                for p in 0..kc {
                    dst[p * mr + i] = 0.0;
                }
                continue;
            }
            let r = row0 + i;
            let (oy, ox) = (r / out_w, r % out_w);
            let mut p = p0;
            let end = p0 + kc;
            while p < end {
                // One contiguous run of input channels at a single (ky, kx) tap.
                let tap = p / g.cin;
                let ci = p % g.cin;
                let run = (g.cin - ci).min(end - p);
                let (ky, kx) = (tap / g.kw, tap % g.kw);
                let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                let inside = iy >= 0 && ix >= 0 && (iy as usize) < g.in_h && (ix as usize) < g.in_w;
                if inside {
                    let base = ((iy as usize) * g.in_w + ix as usize) * g.cin + ci;
                    for (q, &v) in self.input[base..base + run].iter().enumerate() {
                        dst[(p - p0 + q) * mr + i] = v;
                    }
                } else {
                    for q in 0..run {
                        dst[(p - p0 + q) * mr + i] = 0.0;
                    }
                }
                p += run;
            }
        }
    }
}
