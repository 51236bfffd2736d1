//! Operands, kept apart from the arithmetic: B (weights, or K/V in attention) packed into
//! NR-column panels; A (activations) read in place, either as a strided matrix or as the implicit
//! im2col matrix of a zero-padded NHWC image (convolution with neither im2col buffer nor packing).
use super::kernel::Segment;
use alloc::vec;
use alloc::vec::Vec;

/// How packed weights are stored: f32, IEEE f16 (half the memory) widened inside the kernel, or
/// bf16 for the bf16 compute path (AVX-512 BF16 or Arm BF16), where the GEMM's activations are
/// rounded to bf16 as well and products accumulate in f32 (`vdpbf16ps` / `BFDOT`), or f16 for the
/// fp16 compute path (Arm FP16 arithmetic), where activations are rounded to f16 as well and
/// products accumulate in f16 within each k block of 256 and in f32 across blocks; or int8 for
/// the int8 compute path ([`Int8Weights`]): weights rounded to int8 per output channel, activations
/// to int8 per row and k block at run time, products summed exactly in int32.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WeightStorage {
    #[default]
    F32,
    F16,
    Bf16,
    F16Compute,
    Int8,
}

/// Depth of one k block of the GEMM driver. The int8 path quantises activations per row and k
/// block and keeps one column correction per k block, so packing and driver share it.
pub const K_BLOCK: usize = 256;

/// Weights of the int8 compute path, packed for `vpdpbusd`-style kernels (unsigned 8-bit A times
/// signed 8-bit B, four products summed per int32 lane).
///
/// Column j (an output channel) is rounded symmetrically: `q = round(w * 127 / max|w_j|)`, scale
/// `max|w_j| / 127`. At run time each row of A and k block is rounded asymmetrically to unsigned
/// bytes over its range (0 included): `u = round(a / s) + z`, `s = (max - min) / 255`, so ReLU
/// outputs use all 256 levels; `colsum` removes the zero point: `sum_p (u_p - z) q_p = sum_p u_p q_p
/// - z * colsum`. Element (p, j) of q lives at [`int8_index`].
#[derive(Clone, Debug)]
pub struct Int8Weights {
    pub q: Vec<i8>,
    /// Per column, `panels * nr` long (padding columns 0).
    pub scale: Vec<f32>,
    /// Per k block (`k.div_ceil(K_BLOCK)`, at least 1) and column: the sum of q over the block.
    pub colsum: Vec<i32>,
}

/// How a policy packs its weights at load: for which kernel, stored how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packing {
    pub isa: super::Isa,
    pub storage: WeightStorage,
}

impl Packing {
    pub fn nr(&self) -> usize {
        self.isa.nr()
    }

    /// The packing of a layer the int8 path keeps in f32: ResNet's first convolution (raw pixels,
    /// 3 input channels: few multiply-adds, and its rounding reaches every later layer), the state
    /// projection and the action head (one row, or the actions themselves; negligible work).
    /// Measured on the small agreement case: all layers int8 1.6e-2 relative error against
    /// libtorch, these three in f32 1.2e-2. Other storages are unchanged.
    pub fn int8_sensitive(self) -> Packing {
        match self.storage {
            WeightStorage::Int8 => Packing { storage: WeightStorage::F32, ..self },
            _ => self,
        }
    }
}

/// Packed values in their storage type.
#[derive(Clone, Debug)]
pub enum PackedData {
    F32(Vec<f32>),
    /// f16 bit patterns.
    F16(Vec<u16>),
    /// bf16 bit patterns in k pairs, see [`bf16_index`].
    Bf16(Vec<u16>),
    /// f16 bit patterns laid out as `F16`, for the fp16 compute path.
    F16Compute(Vec<u16>),
    Int8(Int8Weights),
}

/// B operand packed in panels of `nr` columns: element (p, j) of the k x n matrix lives at
/// `data[((j / nr) * k + p) * nr + j % nr]`; columns past `n` in the last panel are zero.
#[derive(Clone, Debug)]
pub struct PackedB {
    pub k: usize,
    pub n: usize,
    pub nr: usize,
    pub data: PackedData,
}

/// Borrowed packed values.
#[derive(Clone, Copy, Debug)]
pub enum BData<'a> {
    F32(&'a [f32]),
    F16(&'a [u16]),
    Bf16(&'a [u16]),
    F16Compute(&'a [u16]),
    Int8 { q: &'a [i8], scale: &'a [f32], colsum: &'a [i32] },
}

impl BData<'_> {
    /// Values of the weight matrix held (padding included; not the int8 scales).
    pub fn len(&self) -> usize {
        match self {
            BData::F32(d) => d.len(),
            BData::F16(d) | BData::Bf16(d) | BData::F16Compute(d) => d.len(),
            BData::Int8 { q, .. } => q.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A borrowed packed B operand (weights owned by a layer, or K/V packed into scratch).
#[derive(Clone, Copy, Debug)]
pub struct PackedBRef<'a> {
    pub k: usize,
    pub n: usize,
    pub nr: usize,
    pub data: BData<'a>,
}

/// Floats needed to pack a k x n B operand in panels of nr columns.
pub fn packed_b_len(k: usize, n: usize, nr: usize) -> usize {
    n.div_ceil(nr) * nr * k
}

/// Values of a k x n B operand packed for the bf16 kernel: k rounded up to even (the odd last
/// row pairs with a zero).
pub fn packed_b_len_bf16(k: usize, n: usize, nr: usize) -> usize {
    n.div_ceil(nr) * nr * k.div_ceil(2) * 2
}

/// Where element (p, j) of a k x n matrix lives in bf16 pair packing: panel `j / nr` holds
/// `k.div_ceil(2)` pair rows of `nr` columns, each column a (p even, p odd) pair, which is the
/// operand layout of `vdpbf16ps` (lane c accumulates `a[2c] * b[2c] + a[2c+1] * b[2c+1]`).
#[inline]
pub fn bf16_index(p: usize, j: usize, k: usize, nr: usize) -> usize {
    (((j / nr) * k.div_ceil(2) + p / 2) * nr + j % nr) * 2 + p % 2
}

/// Values of a k x n B operand packed for the int8 kernel: k rounded up to a multiple of 4.
pub fn packed_b_len_int8(k: usize, n: usize, nr: usize) -> usize {
    n.div_ceil(nr) * nr * k.div_ceil(4) * 4
}

/// k blocks of an int8 operand (one correction row each; at least one, so k = 0 has a row).
pub fn int8_blocks(k: usize) -> usize {
    k.div_ceil(K_BLOCK).max(1)
}

/// Where element (p, j) of a k x n matrix lives in int8 quad packing: panel `j / nr` holds
/// `k.div_ceil(4)` quad rows of `nr` columns, each column four consecutive k values, which is the
/// operand layout of `vpdpbusd` (lane c accumulates `a[4c..4c+4] . b[4c..4c+4]`).
#[inline]
pub fn int8_index(p: usize, j: usize, k: usize, nr: usize) -> usize {
    (((j / nr) * k.div_ceil(4) + p / 4) * nr + j % nr) * 4 + p % 4
}

/// Round to nearest, ties to even, for |x| < 2^22 (the int8 path's |x| <= 127.5), without `std`:
/// adding 1.5 * 2^23 leaves no fraction bits, so the FPU's default rounding does the work.
#[inline]
pub fn round_ties_even_small(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    (x + MAGIC) - MAGIC
}

impl Int8Weights {
    /// Quantise the k x n matrix `f(p, j)` per column and pack it for `nr`-wide panels.
    pub fn from_fn(k: usize, n: usize, nr: usize, f: impl Fn(usize, usize) -> f32) -> Int8Weights {
        let n_pad = n.div_ceil(nr) * nr;
        let mut q = vec![0i8; packed_b_len_int8(k, n, nr)];
        let mut scale = vec![0.0f32; n_pad];
        let mut colsum = vec![0i32; int8_blocks(k) * n_pad];
        for j in 0..n {
            let max = (0..k).map(|p| libm_abs(f(p, j))).fold(0.0f32, f32::max);
            // A zero column stays zero (scale 0); 127 / max is finite for any positive max.
            let inv = if max > 0.0 { 127.0 / max } else { 0.0 };
            scale[j] = max / 127.0;
            for p in 0..k {
                let v = round_ties_even_small(f(p, j) * inv).clamp(-127.0, 127.0) as i8;
                q[int8_index(p, j, k, nr)] = v;
                colsum[(p / K_BLOCK) * n_pad + j] += v as i32;
            }
        }
        Int8Weights { q, scale, colsum }
    }

    pub fn bytes(&self) -> usize {
        self.q.len() + self.scale.len() * 4 + self.colsum.len() * 4
    }
}

#[inline]
fn libm_abs(x: f32) -> f32 {
    f32::from_bits(x.to_bits() & 0x7fff_ffff)
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
    PackedBRef { k, n, nr, data: BData::F32(dst) }
}

impl PackedB {
    /// Pack (allocating) the k x n matrix whose (p, j) element is `f(p, j)`.
    pub fn from_fn(k: usize, n: usize, nr: usize, f: impl Fn(usize, usize) -> f32) -> PackedB {
        let mut data = vec![0.0; packed_b_len(k, n, nr)];
        pack_b_into(&mut data, k, n, nr, f);
        PackedB { k, n, nr, data: PackedData::F32(data) }
    }

    /// Pack, then store as `storage` (f16 and bf16 round each value to nearest even).
    pub fn from_fn_stored(k: usize, n: usize, nr: usize, storage: WeightStorage, f: impl Fn(usize, usize) -> f32) -> PackedB {
        if storage == WeightStorage::Int8 {
            return PackedB { k, n, nr, data: PackedData::Int8(Int8Weights::from_fn(k, n, nr, f)) };
        }
        if storage == WeightStorage::Bf16 {
            // Padding (columns past n, the odd last row) stays zero.
            let mut data = vec![0u16; packed_b_len_bf16(k, n, nr)];
            for p in 0..k {
                for j in 0..n {
                    data[bf16_index(p, j, k, nr)] = half::bf16::from_f32(f(p, j)).to_bits();
                }
            }
            return PackedB { k, n, nr, data: PackedData::Bf16(data) };
        }
        let packed = PackedB::from_fn(k, n, nr, f);
        match (storage, packed.data) {
            (WeightStorage::F16, PackedData::F32(d)) => {
                let halves = d.iter().map(|&v| half::f16::from_f32(v).to_bits()).collect();
                PackedB { data: PackedData::F16(halves), ..packed }
            }
            (WeightStorage::F16Compute, PackedData::F32(d)) => {
                let halves = d.iter().map(|&v| half::f16::from_f32(v).to_bits()).collect();
                PackedB { data: PackedData::F16Compute(halves), ..packed }
            }
            (_, data) => PackedB { data, ..packed },
        }
    }

    /// B = W^T for a PyTorch weight W of shape [n, k] (row-major), as in `y = x W^T`.
    pub fn from_weight_t(w: &[f32], n: usize, k: usize, nr: usize, storage: WeightStorage) -> PackedB {
        assert_eq!(w.len(), n * k);
        PackedB::from_fn_stored(k, n, nr, storage, |p, j| w[j * k + p])
    }

    /// Bytes of packed weights.
    pub fn bytes(&self) -> usize {
        match &self.data {
            PackedData::F32(d) => d.len() * 4,
            PackedData::F16(d) | PackedData::Bf16(d) | PackedData::F16Compute(d) => d.len() * 2,
            PackedData::Int8(w) => w.bytes(),
        }
    }

    pub fn as_ref(&self) -> PackedBRef<'_> {
        let data = match &self.data {
            PackedData::F32(d) => BData::F32(d),
            PackedData::F16(d) => BData::F16(d),
            PackedData::Bf16(d) => BData::Bf16(d),
            PackedData::F16Compute(d) => BData::F16Compute(d),
            PackedData::Int8(w) => BData::Int8 { q: &w.q, scale: &w.scale, colsum: &w.colsum },
        };
        PackedBRef { k: self.k, n: self.n, nr: self.nr, data }
    }
}

/// The A operand of a GEMM, read in place (never packed): row r starts at `row_offset(r)` in
/// `data()`, and its k elements are found along `segments`.
pub trait ASource: Sync {
    fn rows(&self) -> usize;
    fn cols(&self) -> usize;
    fn data(&self) -> &[f32];
    fn row_offset(&self, r: usize) -> usize;
    /// Floats past a row's offset that its segments may read (`a_off + len <= row_span()`).
    fn row_span(&self) -> usize;
    /// Write the segments covering k in `p0 .. p0 + kc` to `out`; returns how many.
    fn segments(&self, p0: usize, kc: usize, out: &mut [Segment]) -> usize;
}

/// Where row r of a GEMM's output (and of its residual) lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowMap {
    /// Row-major with a leading dimension.
    Strided { ld: usize },
    /// The interior of a zero-padded NHWC image of width `w` and `c` channels: row r is pixel
    /// (r / w, r % w), stored at ((y + pad) * (w + 2 pad) + x + pad) * c.
    Padded { w: usize, pad: usize, c: usize },
}

impl RowMap {
    #[inline]
    pub fn offset(&self, r: usize) -> usize {
        match *self {
            RowMap::Strided { ld } => r * ld,
            RowMap::Padded { w, pad, c } => ((r / w + pad) * (w + 2 * pad) + r % w + pad) * c,
        }
    }
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
    fn data(&self) -> &[f32] {
        self.data
    }
    fn row_offset(&self, r: usize) -> usize {
        r * self.ld
    }
    fn row_span(&self) -> usize {
        self.k
    }
    fn segments(&self, p0: usize, kc: usize, out: &mut [Segment]) -> usize {
        out[0] = Segment { a_off: p0, len: kc };
        1
    }
}

/// Shape of a 2-D convolution over an NHWC image (batch 1) stored with `in_pad` zero pixels on
/// every side (`in_pad >= pad`), so that every window lies inside the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    pub in_h: usize,
    pub in_w: usize,
    pub cin: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad: usize,
    pub in_pad: usize,
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
    /// Floats in the padded input buffer.
    pub fn input_len(&self) -> usize {
        (self.in_h + 2 * self.in_pad) * (self.in_w + 2 * self.in_pad) * self.cin
    }
}

/// The implicit im2col matrix of a padded NHWC image: row r is output pixel (r / out_w, r % out_w),
/// column p is (ky, kx, ci) with ci fastest. One kernel row (kx, ci) is contiguous in the padded
/// image, so each ky is one segment.
#[derive(Clone, Copy)]
pub struct ConvA<'a> {
    pub input: &'a [f32],
    pub geom: ConvGeometry,
}

impl ConvA<'_> {
    fn padded_row_len(&self) -> usize {
        (self.geom.in_w + 2 * self.geom.in_pad) * self.geom.cin
    }
}

impl ASource for ConvA<'_> {
    fn rows(&self) -> usize {
        self.geom.out_h() * self.geom.out_w()
    }
    fn cols(&self) -> usize {
        self.geom.k()
    }
    fn data(&self) -> &[f32] {
        self.input
    }
    fn row_offset(&self, r: usize) -> usize {
        let g = &self.geom;
        let (oy, ox) = (r / g.out_w(), r % g.out_w());
        let shift = g.in_pad - g.pad;
        ((oy * g.stride + shift) * (g.in_w + 2 * g.in_pad) + ox * g.stride + shift) * g.cin
    }
    fn row_span(&self) -> usize {
        (self.geom.kh - 1) * self.padded_row_len() + self.geom.kw * self.geom.cin
    }
    fn segments(&self, p0: usize, kc: usize, out: &mut [Segment]) -> usize {
        let run = self.geom.kw * self.geom.cin;
        let stride = self.padded_row_len();
        let (mut p, end, mut n) = (p0, p0 + kc, 0);
        while p < end {
            let (ky, q) = (p / run, p % run);
            let len = (run - q).min(end - p);
            out[n] = Segment { a_off: ky * stride + q, len };
            n += 1;
            p += len;
        }
        n
    }
}

/// Copy an unpadded NHWC image into the interior of a zero-padded buffer (border zeroed).
pub fn pad_into(src: &[f32], h: usize, w: usize, c: usize, pad: usize, dst: &mut [f32]) {
    let wp = w + 2 * pad;
    dst[..(h + 2 * pad) * wp * c].fill(0.0);
    for y in 0..h {
        let d = ((y + pad) * wp + pad) * c;
        dst[d..d + w * c].copy_from_slice(&src[y * w * c..(y + 1) * w * c]);
    }
}

/// Zero the `pad`-wide border of a padded NHWC image whose interior is h x w x c.
pub fn zero_border(buf: &mut [f32], h: usize, w: usize, c: usize, pad: usize) {
    let wp = w + 2 * pad;
    let row = wp * c;
    buf[..pad * row].fill(0.0);
    buf[(h + pad) * row..(h + 2 * pad) * row].fill(0.0);
    for y in pad..h + pad {
        buf[y * row..y * row + pad * c].fill(0.0);
        buf[y * row + (w + pad) * c..(y + 1) * row].fill(0.0);
    }
}
