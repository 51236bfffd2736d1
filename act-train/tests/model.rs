//! The full model: shapes and layouts of the outputs, the composition of encoder input tokens,
//! position embeddings, encoder, decoder and action head against a naive computation, input
//! sensitivity, determinism, the CVAE path, image normalisation.

mod common;
use common::*;

use act_train::ActConfig;
use act_train::model::posenc::sinusoid_table;
use act_train::model::{Act, normalize_image_u8, randomize_for_tests};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

fn two_cam_cfg() -> ActConfig {
    ActConfig::tiny().with_cameras(&[("top", 64, 64), ("wrist", 32, 64)])
}

fn build(cfg: &ActConfig, seed: i64) -> (VarStore, Act) {
    let vs = VarStore::new(Device::Cpu);
    let m = Act::new(&vs.root(), cfg).unwrap();
    randomize_for_tests(&vs, seed);
    (vs, m)
}

/// Inputs from the test's own generator (libtorch's global one is shared by parallel tests).
fn inputs(b: i64, seed: u64) -> (Tensor, Vec<Tensor>) {
    let mut rng = Lcg(seed);
    let mut t = |shape: &[i64]| {
        let n: i64 = shape.iter().product();
        Tensor::from_slice(&rng.vec(n as usize, -1.7, 1.7)).view(shape)
    };
    let q = t(&[b, 14]);
    let i0 = t(&[b, 3, 64, 64]);
    let i1 = t(&[b, 3, 32, 64]);
    (q, vec![i0, i1])
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

#[test]
fn output_shapes_and_layouts() {
    let cfg = two_cam_cfg();
    let (_vs, m) = build(&cfg, 1);
    let (q, imgs) = inputs(2, 3);
    let o = tch::no_grad(|| m.forward_inference(&q, &imgs));
    assert_eq!(o.actions.size(), vec![2, 8, 14]);
    assert_eq!(o.backbone_features.len(), 2);
    assert_eq!(o.backbone_features[0].size(), vec![2, 512, 2, 2]);
    assert_eq!(o.backbone_features[1].size(), vec![2, 512, 1, 2]);
    assert_eq!(o.encoder_memory.size(), vec![2, 2 + 4 + 2, 32]);
    assert_eq!(o.encoder_pos.size(), vec![1, 8, 32]);
    assert_eq!(o.decoder_output.size(), vec![2, 8, 32]);
    // The two batch elements differ everywhere it matters.
    for t in [
        &o.backbone_features[0],
        &o.encoder_memory,
        &o.decoder_output,
        &o.actions,
    ] {
        assert!(max_diff(&t.get(0), &t.get(1)) > 1e-2);
    }
}

#[test]
fn composition_matches_naive_transformer() {
    let cfg = two_cam_cfg();
    let (_vs, m) = build(&cfg, 2);
    let (q, imgs) = inputs(1, 4);
    let o = tch::no_grad(|| m.forward_inference(&q, &imgs));
    let d = 32usize;

    // Encoder input tokens and position embeddings by hand.
    let wimg = vals(&m.encoder_img_feat_input_proj_weight); // [d, 512]
    let bimg = vals(&m.encoder_img_feat_input_proj_bias);
    let latent = linear(
        &[0.0; 4],
        1,
        4,
        &vals(&m.encoder_latent_input_proj.weight),
        &vals(&m.encoder_latent_input_proj.bias),
        d,
    );
    let state = linear(
        &to_f64(&vals(&q)),
        1,
        14,
        &vals(&m.encoder_robot_state_input_proj.weight),
        &vals(&m.encoder_robot_state_input_proj.bias),
        d,
    );
    let mut tokens = [latent, state].concat();
    let mut pos = to_f64(&vals(&m.encoder_1d_feature_pos_embed));
    for f in &o.backbone_features {
        let (_, c, h, w) = f.size4().unwrap();
        let (c, h, w) = (c as usize, h as usize, w as usize);
        let fv = vals(f);
        for y in 0..h {
            for x in 0..w {
                let pix: Vec<f64> = (0..c).map(|ch| fv[(ch * h + y) * w + x] as f64).collect();
                tokens.extend(linear(&pix, 1, c, &wimg, &bimg, d));
                pos.extend((0..d).map(|ch| sine2d(ch, y, x, h, w, d)));
            }
        }
    }
    let t = tokens.len() / d;
    assert_eq!(t, 8);
    assert!(
        max_abs_diff(&vals(&o.encoder_pos), &pos) < 1e-5,
        "encoder position embeddings"
    );
    let mem = encoder_layer_naive(&m.encoder.layers[0], &tokens, &pos, t, d, 2);
    let err = max_abs_diff(&vals(&o.encoder_memory), &mem);
    assert!(err < 5e-5, "encoder memory differs by {err}");

    let chunk = 8usize;
    let qp = to_f64(&vals(&m.decoder_pos_embed));
    let x = decoder_layer_naive(
        &m.decoder.layers[0],
        &vec![0.0; chunk * d],
        &qp,
        &mem,
        &pos,
        chunk,
        t,
        d,
        2,
    );
    let dec = ln_naive(&m.decoder.norm, &x, d);
    let err = max_abs_diff(&vals(&o.decoder_output), &dec);
    assert!(err < 5e-5, "decoder output differs by {err}");
    let act = linear(
        &dec,
        chunk,
        d,
        &vals(&m.action_head.weight),
        &vals(&m.action_head.bias),
        14,
    );
    let err = max_abs_diff(&vals(&o.actions), &act);
    assert!(err < 5e-5, "actions differ by {err}");
}

#[test]
fn inputs_matter_and_results_are_deterministic() {
    let cfg = two_cam_cfg();
    let (_vs, m) = build(&cfg, 3);
    let (_vs2, m2) = build(&cfg, 3);
    let (q, imgs) = inputs(1, 5);
    let a = tch::no_grad(|| m.forward_inference(&q, &imgs));
    let b = tch::no_grad(|| m2.forward_inference(&q, &imgs));
    assert_eq!(
        max_diff(&a.actions, &b.actions),
        0.0,
        "same seed must give the same model"
    );

    // Another qpos: the state token and everything after changes, the backbone does not.
    let q2 = &q + 0.5;
    let c = tch::no_grad(|| m.forward_inference(&q2, &imgs));
    assert_eq!(max_diff(&a.backbone_features[1], &c.backbone_features[1]), 0.0);
    assert!(max_diff(&a.encoder_memory, &c.encoder_memory) > 1e-2);
    assert!(max_diff(&a.actions, &c.actions) > 1e-3);

    // Another image of camera 1 only.
    let imgs2 = vec![imgs[0].shallow_clone(), imgs[1].flip([3])];
    let e = tch::no_grad(|| m.forward_inference(&q, &imgs2));
    assert_eq!(max_diff(&a.backbone_features[0], &e.backbone_features[0]), 0.0);
    assert!(max_diff(&a.backbone_features[1], &e.backbone_features[1]) > 1e-2);
    assert!(max_diff(&a.decoder_output, &e.decoder_output) > 1e-3);

    // Another seed gives another model.
    let (_vs3, m3) = build(&cfg, 4);
    let f = tch::no_grad(|| m3.forward_inference(&q, &imgs));
    assert!(max_diff(&a.actions, &f.actions) > 1e-2);
}

#[test]
fn randomize_touches_every_variable_but_the_sinusoid_table() {
    let cfg = ActConfig::tiny();
    let vs0 = VarStore::new(Device::Cpu);
    Act::new(&vs0.root(), &cfg).unwrap();
    let (vs, _m) = build(&cfg, 6);
    let init = vs0.variables();
    for (name, t) in vs.variables() {
        let v = vals(&t);
        if name == "model.vae_encoder_pos_enc" {
            let want = sinusoid_table(10, 32);
            assert!(max_abs_diff(&v, &want) < 1e-6, "pos table must stay the sinusoid table");
            continue;
        }
        assert!(max_diff(&t, &init[&name]) > 1e-3, "{name} kept its initial values");
        if v.len() > 1 {
            let mean = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
            let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / v.len() as f64;
            assert!(var > 1e-6, "{name} is (nearly) constant");
        }
        if name.ends_with("running_var") {
            assert!(v.iter().all(|&x| (0.5..=1.5).contains(&x)), "{name}");
        }
    }
}

#[test]
fn second_decoder_layer_is_used() {
    let cfg = ActConfig {
        n_decoder_layers: 2,
        ..two_cam_cfg()
    };
    let (_vs, m) = build(&cfg, 7);
    let (q, imgs) = inputs(1, 8);
    let a = tch::no_grad(|| m.forward_inference(&q, &imgs));
    tch::no_grad(|| {
        // not a constant shift: LayerNorm would remove that
        let mut w = m.decoder.layers[1].linear2.bias.shallow_clone();
        let _ = w.g_add_(&Tensor::from_slice(&Lcg(3).vec(32, -0.5, 0.5)));
    });
    let b = tch::no_grad(|| m.forward_inference(&q, &imgs));
    assert!(max_diff(&a.decoder_output, &b.decoder_output) > 1e-3);
}

#[test]
fn cvae_training_forward() {
    let cfg = two_cam_cfg();
    let (_vs, m) = build(&cfg, 9);
    let (q, imgs) = inputs(2, 10);
    let actions = Tensor::from_slice(&Lcg(11).vec(2 * 8 * 14, -1.7, 1.7)).view([2, 8, 14]);
    let mut pad = vec![false; 16];
    pad[6] = true;
    pad[7] = true; // batch 0: last two steps padded
    let is_pad = Tensor::from_slice(&pad).view([2, 8]);
    let (ahat, mu, logvar) = tch::no_grad(|| m.forward_train(&q, &imgs, &actions, &is_pad, true));
    assert_eq!(ahat.size(), vec![2, 8, 14]);
    assert_eq!(mu.size(), vec![2, 4]);
    assert_eq!(logvar.size(), vec![2, 4]);

    // mu/logvar do not depend on padded actions, but do on real ones.
    let (mu0, lv0) = tch::no_grad(|| m.encode_latent(&q, &actions, &is_pad, false));
    let changed = actions.copy();
    tch::no_grad(|| {
        let _ = changed.get(0).get(7).fill_(5.0);
    });
    let (mu1, lv1) = tch::no_grad(|| m.encode_latent(&q, &changed, &is_pad, false));
    assert!(max_diff(&mu0.get(0), &mu1.get(0)) < 1e-6 && max_diff(&lv0.get(0), &lv1.get(0)) < 1e-6);
    assert!(max_diff(&mu0.get(1), &mu1.get(1)) < 1e-6, "batch 1 untouched");
    tch::no_grad(|| {
        let _ = changed.get(1).get(7).fill_(5.0);
    });
    let (mu2, _) = tch::no_grad(|| m.encode_latent(&q, &changed, &is_pad, false));
    assert!(
        max_diff(&mu0.get(1), &mu2.get(1)) > 1e-4,
        "unpadded action must change mu"
    );

    // Gradients flow to the trainable parameters (and the BN buffers stay out).
    let (ahat, mu, logvar) = m.forward_train(&q, &imgs, &actions, &is_pad, true);
    let loss = (&ahat - &actions).abs().mean(Kind::Float)
        + ((&logvar + 1.0 - mu.square() - logvar.exp()) * -0.5)
            .sum_dim_intlist(1, false, Kind::Float)
            .mean(Kind::Float);
    loss.backward();
    assert!(
        m.vae_encoder_cls_embed
            .as_ref()
            .unwrap()
            .grad()
            .abs()
            .sum(Kind::Float)
            .double_value(&[])
            > 0.0
    );
    assert!(m.backbone.conv1.weight.grad().abs().sum(Kind::Float).double_value(&[]) > 0.0);
    assert!(!m.backbone.bn1.weight.requires_grad());

    // Without the VAE: z = 0, mu = logvar = 0, and the result is the inference result.
    let cfg = ActConfig {
        use_vae: false,
        ..two_cam_cfg()
    };
    let (_vs, m) = build(&cfg, 9);
    let (ahat, mu, logvar) = tch::no_grad(|| m.forward_train(&q, &imgs, &actions, &is_pad, false));
    assert_eq!(mu.abs().sum(Kind::Float).double_value(&[]), 0.0);
    assert_eq!(logvar.abs().sum(Kind::Float).double_value(&[]), 0.0);
    let inf = tch::no_grad(|| m.forward_inference(&q, &imgs));
    assert_eq!(max_diff(&ahat, &inf.actions), 0.0);
}

#[test]
fn image_normalisation_hand_values() {
    let px: [u8; 6] = [0, 128, 255, 10, 20, 30]; // 1 x 1 x 2 x 3 (HWC)
    let t = Tensor::from_slice(&px).view([1, 1, 2, 3]);
    let n = normalize_image_u8(&t);
    assert_eq!(n.size(), vec![1, 3, 1, 2]);
    let v = vals(&n); // CHW: [r0, r1, g0, g1, b0, b1]
    let want = [-2.117_904, -1.946_656_4, 0.205_182_1, -1.685_574_2, 2.64, -1.281_568_6];
    for (g, w) in v.iter().zip(want) {
        assert!((g - w).abs() < 1e-5, "got {v:?}");
    }
    // [H, W, 3] input gets a batch dimension.
    let n2 = normalize_image_u8(&Tensor::from_slice(&px).view([1, 2, 3]));
    assert_eq!(max_diff(&n, &n2), 0.0);
}
