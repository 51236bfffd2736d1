//! Checkpoint key names: LeRobot's (`model.` + ACT_SPEC.md section 3) and the original ACT's.

/// (LeRobot name after `model.`, original name), prefix pairs ending in `.` or exact names.
const MAPPING: &[(&str, &str)] = &[
    ("backbone.", "backbones.0.0.body."),
    ("encoder.", "transformer.encoder."),
    ("decoder.", "transformer.decoder."),
    ("vae_encoder.", "encoder."),
    ("decoder_pos_embed.", "query_embed."),
    ("encoder_1d_feature_pos_embed.", "additional_pos_embed."),
    ("encoder_latent_input_proj.", "latent_out_proj."),
    ("encoder_img_feat_input_proj.", "input_proj."),
    ("encoder_robot_state_input_proj.", "input_proj_robot_state."),
    ("vae_encoder_cls_embed.", "cls_embed."),
    ("vae_encoder_robot_state_input_proj.", "encoder_joint_proj."),
    ("vae_encoder_action_input_proj.", "encoder_action_proj."),
    ("vae_encoder_latent_output_proj.", "latent_proj."),
    ("vae_encoder_pos_enc", "pos_table"),
    ("action_head.", "action_head."),
];

fn map_name(name: &str, from_original: bool) -> Option<String> {
    for (lerobot, original) in MAPPING {
        let (from, to) = if from_original {
            (original, lerobot)
        } else {
            (lerobot, original)
        };
        if from.ends_with('.') {
            if let Some(rest) = name.strip_prefix(from) {
                return Some(format!("{to}{rest}"));
            }
        } else if name == *from {
            return Some(to.to_string());
        }
    }
    None
}

/// `model.backbone.conv1.weight` -> `backbones.0.0.body.conv1.weight` (no `model.` prefix);
/// `None` for a name outside the mapping (e.g. statistics buffers).
pub fn lerobot_to_original(name: &str) -> Option<String> {
    map_name(name.strip_prefix("model.")?, false)
}

/// An original ACT key, with or without a `model.` prefix, to LeRobot's `model.` name;
/// `None` for keys without a LeRobot counterpart (`is_pad_head.*`). Decoder layers beyond those
/// a config asks for map to `model.decoder.layers.{i}.*` and are simply not looked up.
pub fn original_to_lerobot(name: &str) -> Option<String> {
    let name = name.strip_prefix("model.").unwrap_or(name);
    map_name(name, true).map(|n| format!("model.{n}"))
}

/// Whether a set of keys uses the original ACT names (`transformer.*` or `backbones.*`, with or
/// without `model.`).
pub fn uses_original_names<'a>(keys: impl IntoIterator<Item = &'a str>) -> bool {
    keys.into_iter().any(|k| {
        let k = k.strip_prefix("model.").unwrap_or(k);
        k.starts_with("transformer.") || k.starts_with("backbones.")
    })
}
