//! int8 weights for `export --quantize int8` (docs/CHECKPOINT.md, "int8 weights"): symmetric,
//! one scale per output channel (the first dimension), `w ~ q * scale` with q in -127..=127 and
//! `scale = max |w| / 127` over the channel, as act-core's int8 path quantises at load
//! (`act-core/src/kernels/pack.rs`, `Int8Weights`). A file stores `q` as I8 under the weight's
//! name and the scales as F32 `[channels]` under `<name>_scale`.

/// Whether `name` (a LeRobot `model.*` name) is stored in int8: the weights act-core's int8
/// compute path runs in int8 (the backbone's convolutions after `conv1`, the image and
/// environment-state projections, every linear layer of the encoder and decoder: attention
/// projections and feed-forward), and the same layers of the VAE encoder, which only training
/// uses (act-core skips it; in f32 it would be almost half of a `sim-small` int8 file).
/// What act-core keeps in f32 (`Packing::int8_sensitive`: `conv1`, the state projection, the
/// action head) stays in the export's dtype, as do biases, norms and embeddings.
pub fn stored_int8(name: &str) -> bool {
    let Some(n) = name.strip_prefix("model.") else { return false };
    if let Some(rest) = n.strip_prefix("backbone.layer") {
        // layer{1..4}.{0,1}.conv{1,2}.weight and layer{2,3,4}.0.downsample.0.weight; not the bns.
        return (rest.contains(".conv") && rest.ends_with(".weight")) || rest.ends_with(".downsample.0.weight");
    }
    if n == "encoder_img_feat_input_proj.weight" || n == "encoder_env_state_input_proj.weight" {
        return true;
    }
    let layer = ["encoder.layers.", "decoder.layers.", "vae_encoder.layers."].iter().find_map(|p| n.strip_prefix(p));
    let Some(rest) = layer.and_then(|l| l.split_once('.')).map(|(_, rest)| rest) else { return false };
    matches!(
        rest,
        "self_attn.in_proj_weight"
            | "self_attn.out_proj.weight"
            | "multihead_attn.in_proj_weight"
            | "multihead_attn.out_proj.weight"
            | "linear1.weight"
            | "linear2.weight"
    )
}

/// Quantises `w` (row-major, `rows` output channels) per row: `(q, scale)`, with `max |q| = 127`
/// in every non-zero row (what lets act-core's int8 path read the levels back exactly). A zero
/// row has scale 0 and q 0. A non-finite weight is an error (it would otherwise become 0).
pub fn quantize_int8(w: &[f32], rows: usize) -> anyhow::Result<(Vec<i8>, Vec<f32>)> {
    anyhow::ensure!(rows > 0 && w.len().is_multiple_of(rows), "{} values are not {rows} rows", w.len());
    if let Some(i) = w.iter().position(|v| !v.is_finite()) {
        anyhow::bail!("value {i} is {}: a model with non-finite weights cannot be quantised", w[i]);
    }
    let per_row = w.len() / rows;
    let mut q = Vec::with_capacity(w.len());
    let mut scale = Vec::with_capacity(rows);
    for row in w.chunks_exact(per_row) {
        let max = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let s = max / 127.0;
        scale.push(s);
        for &v in row {
            let level = if s > 0.0 { (v / s).round_ties_even().clamp(-127.0, 127.0) } else { 0.0 };
            q.push(level as i8);
        }
    }
    Ok((q, scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int8_weights_are_what_act_core_runs_in_int8_and_the_vae_encoder() {
        for yes in [
            "model.backbone.layer1.0.conv1.weight",
            "model.backbone.layer4.1.conv2.weight",
            "model.backbone.layer2.0.downsample.0.weight",
            "model.encoder_img_feat_input_proj.weight",
            "model.encoder_env_state_input_proj.weight",
            "model.encoder.layers.3.self_attn.in_proj_weight",
            "model.encoder.layers.0.linear2.weight",
            "model.decoder.layers.0.multihead_attn.out_proj.weight",
            "model.vae_encoder.layers.0.linear1.weight",
        ] {
            assert!(stored_int8(yes), "{yes}");
        }
        for no in [
            "model.backbone.conv1.weight",
            "model.backbone.bn1.weight",
            "model.backbone.layer1.0.bn1.weight",
            "model.backbone.layer2.0.downsample.1.weight",
            "model.encoder_robot_state_input_proj.weight",
            "model.action_head.weight",
            "model.encoder.layers.0.linear1.bias",
            "model.encoder.layers.0.self_attn.in_proj_bias",
            "model.encoder.layers.0.norm1.weight",
            "model.vae_encoder.layers.0.norm1.weight",
            "model.vae_encoder_robot_state_input_proj.weight",
            "model.decoder_pos_embed.weight",
            "model.encoder_latent_input_proj.weight",
            "encoder.layers.0.linear1.weight",
        ] {
            assert!(!stored_int8(no), "{no}");
        }
    }

    #[test]
    fn quantisation_by_hand() {
        // Row 0: max 31.75 -> scale 0.25 (exact); 12.5 / 0.25 = 50, -0.375 / 0.25 = -1.5 -> -2 and
        // 0.125 / 0.25 = 0.5 -> 0 (ties to even). Row 1: zeros. Row 2: one value, its own max.
        let (q, s) = quantize_int8(&[31.75, 12.5, -0.375, 0.125, 0.0, 0.0, 0.0, 0.0, 0.0, -0.5, 0.0, 0.0], 3).unwrap();
        assert_eq!(q, [127, 50, -2, 0, 0, 0, 0, 0, 0, -127, 0, 0]);
        assert!(s[0] == 0.25 && s[1] == 0.0 && (s[2] - 0.5 / 127.0).abs() < 1e-9, "{s:?}");
        let err = quantize_int8(&[1.0, f32::NAN], 1).unwrap_err().to_string();
        assert!(err.contains("value 1 is NaN"), "{err}");
    }
}
