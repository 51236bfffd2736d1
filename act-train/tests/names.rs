//! Parameter names and shapes equal the checkpoint keys of ACT_SPEC.md section 3; the inference
//! parameter count of the default config matches the spec's 34.2 M.

use std::collections::{BTreeMap, BTreeSet};

use act_train::ActConfig;
use act_train::model::{Act, count_inference_parameters};
use act_train::names::{lerobot_to_original, original_to_lerobot};
use tch::Device;
use tch::nn::VarStore;

const BN: [&str; 4] = ["weight", "bias", "running_mean", "running_var"];
const WB: [&str; 2] = ["weight", "bias"];

/// The key list of ACT_SPEC.md section 3, spelled out for the given layer counts.
fn spec_keys(n_enc: usize, n_dec: usize, n_vae: usize) -> BTreeSet<String> {
    let mut k = BTreeSet::new();
    let mut add = |s: String| assert!(k.insert(s));
    add("model.backbone.conv1.weight".into());
    for t in BN {
        add(format!("model.backbone.bn1.{t}"));
    }
    for layer in 1..=4 {
        for block in 0..2 {
            let p = format!("model.backbone.layer{layer}.{block}");
            add(format!("{p}.conv1.weight"));
            add(format!("{p}.conv2.weight"));
            for t in BN {
                add(format!("{p}.bn1.{t}"));
                add(format!("{p}.bn2.{t}"));
            }
            if layer > 1 && block == 0 {
                add(format!("{p}.downsample.0.weight"));
                for t in BN {
                    add(format!("{p}.downsample.1.{t}"));
                }
            }
        }
    }
    let attn = |p: &str| -> Vec<String> {
        vec![
            format!("{p}.in_proj_weight"),
            format!("{p}.in_proj_bias"),
            format!("{p}.out_proj.weight"),
            format!("{p}.out_proj.bias"),
        ]
    };
    for (stack, n) in [("encoder", n_enc), ("vae_encoder", n_vae)] {
        for i in 0..n {
            let p = format!("model.{stack}.layers.{i}");
            for s in attn(&format!("{p}.self_attn")) {
                add(s);
            }
            for m in ["linear1", "linear2", "norm1", "norm2"] {
                for t in WB {
                    add(format!("{p}.{m}.{t}"));
                }
            }
        }
    }
    for i in 0..n_dec {
        let p = format!("model.decoder.layers.{i}");
        for s in attn(&format!("{p}.self_attn"))
            .into_iter()
            .chain(attn(&format!("{p}.multihead_attn")))
        {
            add(s);
        }
        for m in ["linear1", "linear2", "norm1", "norm2", "norm3"] {
            for t in WB {
                add(format!("{p}.{m}.{t}"));
            }
        }
    }
    for m in [
        "decoder.norm",
        "encoder_robot_state_input_proj",
        "encoder_latent_input_proj",
        "encoder_img_feat_input_proj",
        "action_head",
        "vae_encoder_robot_state_input_proj",
        "vae_encoder_action_input_proj",
        "vae_encoder_latent_output_proj",
    ] {
        for t in WB {
            add(format!("model.{m}.{t}"));
        }
    }
    for e in [
        "encoder_1d_feature_pos_embed",
        "decoder_pos_embed",
        "vae_encoder_cls_embed",
    ] {
        add(format!("model.{e}.weight"));
    }
    add("model.vae_encoder_pos_enc".into());
    k
}

fn shapes(cfg: &ActConfig) -> (VarStore, BTreeMap<String, Vec<i64>>) {
    let vs = VarStore::new(Device::Cpu);
    Act::new(&vs.root(), cfg).unwrap();
    let m = vs.variables().into_iter().map(|(k, t)| (k, t.size())).collect();
    (vs, m)
}

#[test]
fn tiny_parameter_names_equal_spec_keys() {
    let cfg = ActConfig::tiny();
    let (vs, got) = shapes(&cfg);
    let got_names: BTreeSet<String> = got.keys().cloned().collect();
    let want = spec_keys(1, 1, 1);
    let extra: Vec<_> = got_names.difference(&want).collect();
    let missing: Vec<_> = want.difference(&got_names).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "extra {extra:?}, missing {missing:?}"
    );
    assert!(
        got_names
            .iter()
            .all(|n| n.starts_with("model.") && !n.contains("num_batches_tracked"))
    );

    let (d, c) = (32i64, 8i64);
    let s = |n: &str| got[n].clone();
    assert_eq!(s("model.encoder_img_feat_input_proj.weight"), vec![d, 512, 1, 1]);
    assert_eq!(s("model.encoder_1d_feature_pos_embed.weight"), vec![2, d]);
    assert_eq!(s("model.decoder_pos_embed.weight"), vec![c, d]);
    assert_eq!(s("model.vae_encoder_pos_enc"), vec![1, c + 2, d]);
    assert_eq!(s("model.vae_encoder_cls_embed.weight"), vec![1, d]);
    assert_eq!(s("model.encoder.layers.0.self_attn.in_proj_weight"), vec![3 * d, d]);
    assert_eq!(s("model.decoder.layers.0.multihead_attn.in_proj_bias"), vec![3 * d]);
    assert_eq!(s("model.decoder.layers.0.linear1.weight"), vec![64, d]);
    assert_eq!(s("model.encoder_robot_state_input_proj.weight"), vec![d, 14]);
    assert_eq!(s("model.encoder_latent_input_proj.weight"), vec![d, 4]);
    assert_eq!(s("model.vae_encoder_latent_output_proj.weight"), vec![8, d]);
    assert_eq!(s("model.vae_encoder_action_input_proj.weight"), vec![d, 14]);
    assert_eq!(s("model.action_head.weight"), vec![14, d]);
    assert_eq!(s("model.backbone.conv1.weight"), vec![64, 3, 7, 7]);
    assert_eq!(s("model.backbone.layer4.0.downsample.0.weight"), vec![512, 256, 1, 1]);
    assert_eq!(s("model.backbone.layer3.1.bn2.running_var"), vec![256]);

    // Frozen BN tensors and the sinusoid table are buffers; everything else trains.
    for (name, t) in vs.variables() {
        let buffer = name == "model.vae_encoder_pos_enc" || act_train::model::is_backbone_bn(&name);
        assert_eq!(t.requires_grad(), !buffer, "{name}");
    }

    // Every name maps to an original ACT name and back.
    for n in &got_names {
        let o = lerobot_to_original(n).unwrap_or_else(|| panic!("no original name for {n}"));
        assert_eq!(original_to_lerobot(&o).as_deref(), Some(n.as_str()));
        assert_eq!(original_to_lerobot(&format!("model.{o}")).as_deref(), Some(n.as_str()));
    }
    assert_eq!(
        lerobot_to_original("model.backbone.layer1.0.conv1.weight").unwrap(),
        "backbones.0.0.body.layer1.0.conv1.weight"
    );
    assert_eq!(
        lerobot_to_original("model.encoder.layers.0.norm1.bias").unwrap(),
        "transformer.encoder.layers.0.norm1.bias"
    );
    assert_eq!(
        lerobot_to_original("model.vae_encoder.layers.0.norm1.bias").unwrap(),
        "encoder.layers.0.norm1.bias"
    );
    assert_eq!(
        lerobot_to_original("model.decoder_pos_embed.weight").unwrap(),
        "query_embed.weight"
    );
    assert_eq!(lerobot_to_original("model.vae_encoder_pos_enc").unwrap(), "pos_table");
    assert_eq!(
        lerobot_to_original("model.encoder_latent_input_proj.bias").unwrap(),
        "latent_out_proj.bias"
    );
    assert_eq!(
        lerobot_to_original("model.vae_encoder_latent_output_proj.bias").unwrap(),
        "latent_proj.bias"
    );
    assert_eq!(original_to_lerobot("is_pad_head.weight"), None);
}

#[test]
fn more_layers_and_no_vae() {
    let cfg = ActConfig {
        n_encoder_layers: 2,
        n_decoder_layers: 3,
        n_vae_encoder_layers: 2,
        ..ActConfig::tiny()
    };
    let (_, got) = shapes(&cfg);
    let names: BTreeSet<String> = got.keys().cloned().collect();
    assert_eq!(names, spec_keys(2, 3, 2));

    let cfg = ActConfig {
        use_vae: false,
        ..ActConfig::tiny()
    };
    let (_, got) = shapes(&cfg);
    let names: BTreeSet<String> = got.keys().cloned().collect();
    let want: BTreeSet<String> = spec_keys(1, 1, 1)
        .into_iter()
        .filter(|n| !n.starts_with("model.vae_encoder"))
        .collect();
    assert_eq!(names, want);
}

#[test]
fn default_config_inference_parameter_count() {
    let cfg = ActConfig::default_aloha();
    let (vs, _) = shapes(&cfg);
    let n = count_inference_parameters(&vs);
    // ACT_SPEC.md: 34.2 M inference-only parameters. Counted here: every model.* tensor except
    // model.vae_encoder* and the frozen BN tensors of the backbone.
    let rel = (n as f64 - 34.2e6).abs() / 34.2e6;
    assert!(
        rel < 0.01,
        "inference parameters {n} differ from 34.2 M by {:.2} %",
        rel * 100.0
    );

    // The same count by hand. ResNet-18 conv weights (torchvision 11,689,512 minus fc 513,000
    // minus BN affine 9,600):
    let backbone = 11_166_912i64;
    let (d, f, chunk, s, a, l) = (512i64, 3200i64, 100i64, 14i64, 14i64, 32i64);
    let mha = 3 * d * d + 3 * d + d * d + d;
    let ffn = d * f + f + f * d + d;
    let enc_layer = mha + ffn + 2 * 2 * d;
    let dec_layer = 2 * mha + ffn + 3 * 2 * d;
    let want = backbone
        + (d * 512 + d) // img input proj
        + 4 * enc_layer
        + dec_layer
        + 2 * d // decoder.norm
        + (s * d + d) + (l * d + d) // state, latent input projections
        + 2 * d + chunk * d // 1d pos embed, decoder_pos_embed
        + (d * a + a); // action head
    assert_eq!(n, want);
    assert_eq!(n, 34_232_142);
}
