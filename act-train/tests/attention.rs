//! Multi-head attention and the post-norm encoder/decoder layers against naive loop
//! computations (tests/common), including the key padding mask.

mod common;
use common::*;

use act_train::model::randomize_for_tests;
use act_train::model::transformer::{DecoderLayer, EncoderLayer, LayerCfg, MatrixInit, MultiheadAttention};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

fn t3(v: &[f32], a: i64, b: i64, c: i64) -> Tensor {
    Tensor::from_slice(v).view([a, b, c])
}

#[test]
fn mha_matches_naive_per_head_computation() {
    let (b, lq, lk, d, heads) = (2usize, 3usize, 5usize, 8usize, 2usize);
    let vs = VarStore::new(Device::Cpu);
    let attn = MultiheadAttention::new(&(vs.root() / "attn"), d as i64, heads as i64, 0.0, MatrixInit::Xavier);
    let mut rng = Lcg(42);
    let in_w = rng.vec(3 * d * d, -0.6, 0.6);
    let in_b = rng.vec(3 * d, -0.3, 0.3);
    let out_w = rng.vec(d * d, -0.5, 0.5);
    let out_b = rng.vec(d, -0.3, 0.3);
    set(&attn.in_proj_weight, &in_w);
    set(&attn.in_proj_bias, &in_b);
    set(&attn.out_proj.weight, &out_w);
    set(&attn.out_proj.bias, &out_b);
    let q = rng.vec(b * lq * d, -1.5, 1.5);
    let k = rng.vec(b * lk * d, -1.5, 1.5);
    let v = rng.vec(b * lk * d, -1.5, 1.5);
    // batch 0: keys 1 and 4 ignored; batch 1: key 0 ignored
    let mask = [false, true, false, false, true, true, false, false, false, false];
    let mask_t = Tensor::from_slice(&mask).view([b as i64, lk as i64]);

    for use_mask in [false, true] {
        let got = vals(&attn.forward(
            &t3(&q, 2, 3, 8),
            &t3(&k, 2, 5, 8),
            &t3(&v, 2, 5, 8),
            use_mask.then_some(&mask_t),
            false,
        ));
        assert_eq!(got.len(), b * lq * d);
        for bi in 0..b {
            let want = mha(
                &to_f64(&q[bi * lq * d..(bi + 1) * lq * d]),
                &to_f64(&k[bi * lk * d..(bi + 1) * lk * d]),
                &to_f64(&v[bi * lk * d..(bi + 1) * lk * d]),
                lq,
                lk,
                d,
                heads,
                &in_w,
                &in_b,
                &out_w,
                &out_b,
                use_mask.then_some(&mask[bi * lk..(bi + 1) * lk]),
            );
            let err = max_abs_diff(&got[bi * lq * d..(bi + 1) * lq * d], &want);
            assert!(err < 1e-5, "mask={use_mask} batch {bi}: max abs diff {err}");
        }
    }
    // The mask must matter.
    let a = vals(&attn.forward(&t3(&q, 2, 3, 8), &t3(&k, 2, 5, 8), &t3(&v, 2, 5, 8), None, false));
    let m = vals(&attn.forward(
        &t3(&q, 2, 3, 8),
        &t3(&k, 2, 5, 8),
        &t3(&v, 2, 5, 8),
        Some(&mask_t),
        false,
    ));
    let diff = a.iter().zip(&m).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(diff > 1e-2, "key padding mask had no effect ({diff})");
}

fn layer_cfg(d: i64) -> LayerCfg {
    LayerCfg {
        dim: d,
        n_heads: 4,
        dim_feedforward: 24,
        dropout: 0.1,
        pre_norm: false,
        activation: "relu".into(),
    }
}

#[test]
fn post_norm_encoder_layer_matches_naive() {
    let (l, d, ff) = (6usize, 16usize, 24usize);
    let vs = VarStore::new(Device::Cpu);
    let layer = EncoderLayer::new(&(vs.root() / "model" / "enc"), &layer_cfg(d as i64), MatrixInit::Xavier);
    randomize_for_tests(&vs, 5);
    let mut rng = Lcg(7);
    let x = rng.vec(l * d, -1.0, 1.0);
    let pos = rng.vec(l * d, -1.0, 1.0);
    let got = vals(&tch::no_grad(|| {
        layer.forward(
            &t3(&x, 1, l as i64, d as i64),
            Some(&t3(&pos, 1, l as i64, d as i64)),
            None,
            false,
        )
    }));

    let sa = &layer.self_attn;
    let xf = to_f64(&x);
    let qk = add(&xf, &to_f64(&pos));
    let a = mha(
        &qk,
        &qk,
        &xf,
        l,
        l,
        d,
        4,
        &vals(&sa.in_proj_weight),
        &vals(&sa.in_proj_bias),
        &vals(&sa.out_proj.weight),
        &vals(&sa.out_proj.bias),
        None,
    );
    let x1 = layer_norm(&add(&xf, &a), d, &vals(&layer.norm1.weight), &vals(&layer.norm1.bias));
    let h = relu(&linear(
        &x1,
        l,
        d,
        &vals(&layer.linear1.weight),
        &vals(&layer.linear1.bias),
        ff,
    ));
    let f = linear(&h, l, ff, &vals(&layer.linear2.weight), &vals(&layer.linear2.bias), d);
    let want = layer_norm(&add(&x1, &f), d, &vals(&layer.norm2.weight), &vals(&layer.norm2.bias));
    let err = max_abs_diff(&got, &want);
    assert!(err < 2e-5, "encoder layer max abs diff {err}");

    // dropout is active only in training mode
    let tr = vals(&tch::no_grad(|| {
        layer.forward(
            &t3(&x, 1, l as i64, d as i64),
            Some(&t3(&pos, 1, l as i64, d as i64)),
            None,
            true,
        )
    }));
    assert!(max_abs_diff(&tr, &want) > 1e-3, "train mode should apply dropout");
}

#[test]
fn post_norm_decoder_layer_matches_naive() {
    let (lq, lm, d, ff) = (4usize, 7usize, 16usize, 24usize);
    let vs = VarStore::new(Device::Cpu);
    let layer = DecoderLayer::new(&(vs.root() / "model" / "dec"), &layer_cfg(d as i64), MatrixInit::Xavier);
    randomize_for_tests(&vs, 9);
    let mut rng = Lcg(11);
    let tgt = rng.vec(lq * d, -1.0, 1.0);
    let qpos = rng.vec(lq * d, -1.0, 1.0);
    let mem = rng.vec(lm * d, -1.0, 1.0);
    let mpos = rng.vec(lm * d, -1.0, 1.0);
    let (lqi, lmi, di) = (lq as i64, lm as i64, d as i64);
    let got = vals(&tch::no_grad(|| {
        layer.forward(
            &t3(&tgt, 1, lqi, di),
            &t3(&mem, 1, lmi, di),
            Some(&t3(&qpos, 1, lqi, di)),
            Some(&t3(&mpos, 1, lmi, di)),
            false,
        )
    }));

    let p = |m: &MultiheadAttention| {
        (
            vals(&m.in_proj_weight),
            vals(&m.in_proj_bias),
            vals(&m.out_proj.weight),
            vals(&m.out_proj.bias),
        )
    };
    let (sw, sb, sow, sob) = p(&layer.self_attn);
    let (cw, cb, cow, cob) = p(&layer.multihead_attn);
    let t = to_f64(&tgt);
    let qp = to_f64(&qpos);
    let m = to_f64(&mem);
    let tq = add(&t, &qp);
    let a = mha(&tq, &tq, &t, lq, lq, d, 4, &sw, &sb, &sow, &sob, None);
    let x1 = layer_norm(&add(&t, &a), d, &vals(&layer.norm1.weight), &vals(&layer.norm1.bias));
    let c = mha(
        &add(&x1, &qp),
        &add(&m, &to_f64(&mpos)),
        &m,
        lq,
        lm,
        d,
        4,
        &cw,
        &cb,
        &cow,
        &cob,
        None,
    );
    let x2 = layer_norm(&add(&x1, &c), d, &vals(&layer.norm2.weight), &vals(&layer.norm2.bias));
    let h = relu(&linear(
        &x2,
        lq,
        d,
        &vals(&layer.linear1.weight),
        &vals(&layer.linear1.bias),
        ff,
    ));
    let f = linear(&h, lq, ff, &vals(&layer.linear2.weight), &vals(&layer.linear2.bias), d);
    let want = layer_norm(&add(&x2, &f), d, &vals(&layer.norm3.weight), &vals(&layer.norm3.bias));
    let err = max_abs_diff(&got, &want);
    assert!(err < 2e-5, "decoder layer max abs diff {err}");
    let _ = Kind::Float;
}
