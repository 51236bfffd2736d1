//! config.json reading and writing: LeRobot fields, camera order, unknown fields kept.

use act_train::ActConfig;

const LEROBOT_LIKE: &str = r#"{
  "type": "act",
  "n_obs_steps": 1,
  "normalization_mapping": {"VISUAL": "MEAN_STD", "STATE": "MEAN_STD", "ACTION": "MEAN_STD"},
  "input_features": {
    "observation.images.cam_high": {"type": "VISUAL", "shape": [3, 480, 640]},
    "observation.state": {"type": "STATE", "shape": [14]},
    "observation.images.cam_left_wrist": {"type": "VISUAL", "shape": [3, 240, 320]},
    "observation.images.cam_low": {"type": "VISUAL", "shape": [3, 480, 640]}
  },
  "output_features": {"action": {"type": "ACTION", "shape": [14]}},
  "device": "cuda",
  "use_amp": false,
  "chunk_size": 100,
  "n_action_steps": 100,
  "vision_backbone": "resnet18",
  "pretrained_backbone_weights": "ResNet18_Weights.IMAGENET1K_V1",
  "replace_final_stride_with_dilation": false,
  "pre_norm": false,
  "dim_model": 512,
  "n_heads": 8,
  "dim_feedforward": 3200,
  "feedforward_activation": "relu",
  "n_encoder_layers": 4,
  "n_decoder_layers": 1,
  "use_vae": true,
  "latent_dim": 32,
  "n_vae_encoder_layers": 4,
  "temporal_ensemble_coeff": null,
  "dropout": 0.1,
  "kl_weight": 10.0,
  "optimizer_lr": 1e-05,
  "optimizer_weight_decay": 0.0001,
  "optimizer_lr_backbone": 1e-05
}"#;

#[test]
fn reads_lerobot_config_keeping_camera_order_and_unknown_fields() {
    let cfg = ActConfig::from_json(LEROBOT_LIKE).unwrap();
    cfg.validate().unwrap();
    assert_eq!(
        cfg.cameras(),
        vec![
            ("cam_high".to_string(), 480, 640),
            ("cam_left_wrist".to_string(), 240, 320),
            ("cam_low".to_string(), 480, 640)
        ]
    );
    assert_eq!((cfg.state_dim(), cfg.action_dim()), (14, 14));
    assert_eq!(cfg.temporal_ensemble_coeff, None);
    assert_eq!(
        cfg.pretrained_backbone_weights.as_deref(),
        Some("ResNet18_Weights.IMAGENET1K_V1")
    );
    assert_eq!(cfg.extra["device"], "cuda");
    assert_eq!(cfg.extra["optimizer_lr"], 1e-5);

    let text = cfg.to_json().unwrap();
    // Order of input_features is the file's, in the written text too.
    let a = text.find("cam_high").unwrap();
    let b = text.find("observation.state").unwrap();
    let c = text.find("cam_left_wrist").unwrap();
    let d = text.find("cam_low").unwrap();
    assert!(a < b && b < c && c < d, "{text}");
    assert!(text.contains("\"optimizer_weight_decay\": 0.0001"));
    assert!(text.contains("\"temporal_ensemble_coeff\": null"));
    assert_eq!(ActConfig::from_json(&text).unwrap(), cfg);
}

#[test]
fn presets_and_cameras() {
    let d = ActConfig::default_aloha();
    d.validate().unwrap();
    assert_eq!((d.dim_model, d.n_heads, d.dim_feedforward), (512, 8, 3200));
    assert_eq!(
        (d.n_encoder_layers, d.n_decoder_layers, d.n_vae_encoder_layers),
        (4, 1, 4)
    );
    assert_eq!(
        (d.chunk_size, d.latent_dim, d.kl_weight, d.dropout),
        (100, 32, 10.0, 0.1)
    );
    assert_eq!(d.cameras(), vec![("top".to_string(), 480, 640)]);
    let s = ActConfig::small();
    s.validate().unwrap();
    assert_eq!((s.dim_model, s.n_heads, s.dim_feedforward), (256, 8, 2048));
    assert_eq!(s.cameras(), vec![("top".to_string(), 240, 320)]);
    let t = ActConfig::tiny();
    t.validate().unwrap();
    assert_eq!(
        (t.dim_model, t.n_heads, t.dim_feedforward, t.chunk_size, t.latent_dim),
        (32, 2, 64, 8, 4)
    );
    assert_eq!(t.cameras(), vec![("top".to_string(), 64, 64)]);

    let two = t.clone().with_cameras(&[("zeta", 32, 32), ("alpha", 64, 32)]);
    assert_eq!(
        two.cameras(),
        vec![("zeta".to_string(), 32, 32), ("alpha".to_string(), 64, 32)]
    );
    assert_eq!(two.state_dim(), 14);
    let back = ActConfig::from_json(&two.to_json().unwrap()).unwrap();
    assert_eq!(back.cameras(), two.cameras());
    // The same camera twice is refused by validation, not only when the JSON is read back.
    let twice = t.clone().with_cameras(&[("top", 64, 64), ("top", 64, 64)]);
    let err = twice.validate().unwrap_err().to_string();
    assert!(err.contains("observation.images.top appears twice"), "{err}");

    let bad = ActConfig {
        n_heads: 3,
        ..ActConfig::tiny()
    };
    assert!(bad.validate().is_err());
    let bad = ActConfig {
        vision_backbone: "resnet34".into(),
        ..ActConfig::tiny()
    };
    assert!(bad.validate().is_err());
    assert!(ActConfig::preset("huge").is_err());
}
