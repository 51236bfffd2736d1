//! Fixed (non-learned) position encodings: the 2-D sine embedding of the camera feature maps
//! (ACT_SPEC.md section 1.4) and the 1-D sinusoid table of the CVAE encoder (section 2).

use tch::{Device, Kind, Tensor};

/// DETR's 2-D sine position embedding for an `h` x `w` feature map, shape `[1, dim_model, h, w]`,
/// f32. Channels `0..dim/2` are the y (row) embedding, `dim/2..dim` the x (column) embedding;
/// within each half, even channel `i` is `sin(p / dim_t[i])`, odd `i` is `cos(p / dim_t[i])`,
/// `dim_t[i] = 10000^(2 floor(i/2) / (dim/2))`, `p = idx / (n + 1e-6) * 2 pi` with `idx` starting at 1.
/// Computed in f32 with the same operations as the references.
pub fn sine_pos_embed_2d(h: i64, w: i64, dim_model: i64, device: Device) -> Tensor {
    let npf = dim_model / 2;
    let opts = (Kind::Float, device);
    let eps = 1e-6;
    let two_pi = 2.0 * std::f64::consts::PI;
    // cumulative sums of ones: 1..=h and 1..=w
    let y = Tensor::ones([1, h, w], opts).cumsum(1, Kind::Float);
    let x = Tensor::ones([1, h, w], opts).cumsum(2, Kind::Float);
    let y = &y / (y.narrow(1, h - 1, 1) + eps) * two_pi;
    let x = &x / (x.narrow(2, w - 1, 1) + eps) * two_pi;
    let i = Tensor::arange(npf, opts);
    // 2 * (i // 2) / npf
    let expo = i.divide_scalar_mode(2, "floor") * 2.0 / npf as f64;
    let dim_t = Tensor::pow_scalar(10000.0, &expo);
    let pos = |p: &Tensor| -> Tensor {
        let p = p.unsqueeze(-1) / &dim_t; // [1, h, w, npf]
        let s = p.slice(3, 0, npf, 2).sin();
        let c = p.slice(3, 1, npf, 2).cos();
        Tensor::stack(&[s, c], 4).flatten(3, 4) // interleaved: sin, cos, sin, cos, ...
    };
    let pos_y = pos(&y);
    let pos_x = pos(&x);
    Tensor::cat(&[pos_y, pos_x], 3).permute([0, 3, 1, 2]).contiguous()
}

/// The "attention is all you need" sinusoid table, `[n_position, d]` values computed in f64:
/// `angle = pos / 10000^(2 floor(j/2) / d)`, even `j` -> sin, odd `j` -> cos.
pub fn sinusoid_table(n_position: i64, d: i64) -> Vec<f64> {
    let mut out = Vec::with_capacity((n_position * d) as usize);
    for pos in 0..n_position {
        for j in 0..d {
            let angle = pos as f64 / 10000f64.powf(2.0 * (j / 2) as f64 / d as f64);
            out.push(if j % 2 == 0 { angle.sin() } else { angle.cos() });
        }
    }
    out
}

/// `sinusoid_table` as an f32 tensor `[1, n_position, d]` (the `vae_encoder_pos_enc` buffer).
pub fn sinusoid_table_tensor(n_position: i64, d: i64) -> Tensor {
    let v: Vec<f32> = sinusoid_table(n_position, d).into_iter().map(|x| x as f32).collect();
    Tensor::from_slice(&v).view([1, n_position, d])
}
