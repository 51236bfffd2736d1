//! Test helpers shared by act-core's integration tests, and included by bindings/tests (so this
//! file names none of our crates: it only writes checkpoints and inputs).
#![allow(dead_code)]

/// A global allocator that forwards to the system's and counts every allocation and
/// reallocation (except the test harness's, see [`on_main_thread`]) in [`ALLOCATIONS`]; a test binary that proves a call allocates nothing installs it
/// with `#[global_allocator] static GLOBAL: CountingAllocator = CountingAllocator;`.
pub struct CountingAllocator;
pub static ALLOCATIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Whether the calling thread is the process's main thread. libtest runs each test on a thread of
/// its own and keeps the main thread for itself; there it allocates when a test runs past 60 s
/// (the "has been running for over 60 seconds" notice), as the allocation tests do under qemu.
/// Those allocations are not the code under test's, so they are not counted; a test that relies
/// on the count asserts first that it is not on the main thread itself.
#[cfg(target_os = "linux")]
pub fn on_main_thread() -> bool {
    // SAFETY: gettid and getpid have no preconditions and cannot fail.
    unsafe { libc::gettid() == libc::getpid() }
}

/// Elsewhere every thread counts (a test slower than 60 s may then see the harness's allocation).
#[cfg(not(target_os = "linux"))]
pub fn on_main_thread() -> bool {
    false
}

/// Whether this run promises a CPU feature (`bf16`, `fp16`): scripts/test-aarch64.sh sets
/// `ACT_EXPECT_FEATURES=bf16,fp16` for `qemu-aarch64 -cpu max`, whose CPU has both, so that a test
/// of those paths cannot pass there by finding no kernel and skipping.
pub fn expects(feature: &str) -> bool {
    std::env::var("ACT_EXPECT_FEATURES").is_ok_and(|v| v.split(',').any(|f| f.trim() == feature))
}

fn count() {
    if !on_main_thread() {
        ALLOCATIONS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl std::alloc::GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 {
        count();
        unsafe { std::alloc::System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: std::alloc::Layout) {
        unsafe { std::alloc::System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: std::alloc::Layout, n: usize) -> *mut u8 {
        count();
        unsafe { std::alloc::System.realloc(p, l, n) }
    }
}

/// Deterministic xorshift generator, uniform in [-1, 1).
pub struct Rng(pub u64);

impl Rng {
    pub fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.next_f32()).collect()
    }
}

pub fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let num: f64 = a.iter().zip(b).map(|(&x, &y)| ((x - y) as f64).powi(2)).sum();
    let den: f64 = b.iter().map(|&y| (y as f64).powi(2)).sum();
    (num / den.max(1e-300)).sqrt()
}


/// Sizes of a synthetic checkpoint written by `checkpoint`.
pub struct Tiny {
    pub dim: usize,
    pub heads: usize,
    pub ff: usize,
    pub enc: usize,
    pub dec: usize,
    pub chunk: usize,
    pub latent: usize,
    pub state: usize,
    pub action: usize,
    pub cameras: Vec<(&'static str, usize, usize)>,
}

impl Default for Tiny {
    fn default() -> Tiny {
        Tiny::new()
    }
}

impl Tiny {
    pub fn new() -> Tiny {
        Tiny { dim: 16, heads: 2, ff: 24, enc: 1, dec: 1, chunk: 5, latent: 4, state: 14, action: 14, cameras: vec![("top", 64, 64)] }
    }

    pub fn config_json(&self) -> String {
        let mut inputs = vec![format!(r#""observation.state": {{"type": "STATE", "shape": [{}]}}"#, self.state)];
        for (name, h, w) in &self.cameras {
            inputs.push(format!(r#""observation.images.{name}": {{"type": "VISUAL", "shape": [3, {h}, {w}]}}"#));
        }
        format!(
            r#"{{"type": "act", "input_features": {{{}}}, "output_features": {{"action": {{"type": "ACTION", "shape": [{}]}}}},
            "dim_model": {}, "n_heads": {}, "dim_feedforward": {}, "n_encoder_layers": {}, "n_decoder_layers": {},
            "chunk_size": {}, "n_action_steps": {}, "latent_dim": {}, "vision_backbone": "resnet18", "pre_norm": false,
            "feedforward_activation": "relu", "temporal_ensemble_coeff": null, "use_vae": true}}"#,
            inputs.join(", "),
            self.action,
            self.dim,
            self.heads,
            self.ff,
            self.enc,
            self.dec,
            self.chunk,
            self.chunk,
            self.latent
        )
    }

    /// Every tensor of the checkpoint with its shape (LeRobot names), statistics included.
    pub fn tensors(&self) -> Vec<(String, Vec<usize>)> {
        let (d, f) = (self.dim, self.ff);
        let mut t: Vec<(String, Vec<usize>)> = Vec::new();
        let bn = |t: &mut Vec<(String, Vec<usize>)>, p: &str, c: usize| {
            for s in ["weight", "bias", "running_mean", "running_var"] {
                t.push((format!("model.{p}.{s}"), vec![c]));
            }
        };
        t.push(("model.backbone.conv1.weight".into(), vec![64, 3, 7, 7]));
        bn(&mut t, "backbone.bn1", 64);
        let mut cin = 64;
        for (l, cout) in [(1, 64), (2, 128), (3, 256), (4, 512)] {
            for b in 0..2 {
                let p = format!("backbone.layer{l}.{b}");
                let bin = if b == 0 { cin } else { cout };
                t.push((format!("model.{p}.conv1.weight"), vec![cout, bin, 3, 3]));
                bn(&mut t, &format!("{p}.bn1"), cout);
                t.push((format!("model.{p}.conv2.weight"), vec![cout, cout, 3, 3]));
                bn(&mut t, &format!("{p}.bn2"), cout);
                if b == 0 && l > 1 {
                    t.push((format!("model.{p}.downsample.0.weight"), vec![cout, bin, 1, 1]));
                    bn(&mut t, &format!("{p}.downsample.1"), cout);
                }
            }
            cin = cout;
        }
        let attn = |t: &mut Vec<(String, Vec<usize>)>, p: &str| {
            t.push((format!("model.{p}.in_proj_weight"), vec![3 * d, d]));
            t.push((format!("model.{p}.in_proj_bias"), vec![3 * d]));
            t.push((format!("model.{p}.out_proj.weight"), vec![d, d]));
            t.push((format!("model.{p}.out_proj.bias"), vec![d]));
        };
        let lin = |t: &mut Vec<(String, Vec<usize>)>, p: &str, i: usize, o: usize| {
            t.push((format!("model.{p}.weight"), vec![o, i]));
            t.push((format!("model.{p}.bias"), vec![o]));
        };
        let ln = |t: &mut Vec<(String, Vec<usize>)>, p: &str| {
            t.push((format!("model.{p}.weight"), vec![d]));
            t.push((format!("model.{p}.bias"), vec![d]));
        };
        for i in 0..self.enc {
            let p = format!("encoder.layers.{i}");
            attn(&mut t, &format!("{p}.self_attn"));
            lin(&mut t, &format!("{p}.linear1"), d, f);
            lin(&mut t, &format!("{p}.linear2"), f, d);
            ln(&mut t, &format!("{p}.norm1"));
            ln(&mut t, &format!("{p}.norm2"));
        }
        for i in 0..self.dec {
            let p = format!("decoder.layers.{i}");
            attn(&mut t, &format!("{p}.self_attn"));
            attn(&mut t, &format!("{p}.multihead_attn"));
            lin(&mut t, &format!("{p}.linear1"), d, f);
            lin(&mut t, &format!("{p}.linear2"), f, d);
            for n in 1..=3 {
                ln(&mut t, &format!("{p}.norm{n}"));
            }
        }
        ln(&mut t, "decoder.norm");
        lin(&mut t, "encoder_robot_state_input_proj", self.state, d);
        lin(&mut t, "encoder_latent_input_proj", self.latent, d);
        t.push(("model.encoder_img_feat_input_proj.weight".into(), vec![d, 512, 1, 1]));
        t.push(("model.encoder_img_feat_input_proj.bias".into(), vec![d]));
        t.push(("model.encoder_1d_feature_pos_embed.weight".into(), vec![2, d]));
        t.push(("model.decoder_pos_embed.weight".into(), vec![self.chunk, d]));
        lin(&mut t, "action_head", d, self.action);
        for s in ["mean", "std"] {
            t.push((format!("normalize_inputs.buffer_observation_state.{s}"), vec![self.state]));
            t.push((format!("unnormalize_outputs.buffer_action.{s}"), vec![self.action]));
        }
        t
    }

    /// Random values with sane scales: weights ~ U(-1,1)/sqrt(fan_in), variances and stds positive.
    pub fn values(&self, seed: u64) -> Vec<(String, Vec<usize>, Vec<f32>)> {
        let mut rng = Rng(seed);
        self.tensors()
            .into_iter()
            .map(|(name, shape)| {
                let n: usize = shape.iter().product();
                let fan_in: usize = shape[1..].iter().product::<usize>().max(1);
                let v: Vec<f32> = (0..n)
                    .map(|_| {
                        let r = rng.next_f32();
                        if name.ends_with("running_var") || name.ends_with(".std") {
                            1.0 + 0.5 * r
                        } else if shape.len() == 1 && (name.contains("norm") || name.contains("bn") || name.contains("downsample.1")) && name.ends_with("weight") {
                            1.0 + 0.3 * r
                        } else if shape.len() == 1 {
                            0.1 * r
                        } else {
                            r * (3.0 / fan_in as f32).sqrt()
                        }
                    })
                    .collect();
                (name, shape, v)
            })
            .collect()
    }

    /// A single-file checkpoint: f32 tensors, the config in the metadata.
    pub fn checkpoint(&self, seed: u64) -> Vec<u8> {
        let values = self.values(seed);
        serialize(&values, Some(&self.config_json()), safetensors::Dtype::F32)
    }
}

pub fn serialize(values: &[(String, Vec<usize>, Vec<f32>)], config: Option<&str>, dtype: safetensors::Dtype) -> Vec<u8> {
    let meta = config.map(|c| std::collections::HashMap::from([("config".to_string(), c.to_string()), ("format".to_string(), "act-rs".to_string())]));
    serialize_as(values, meta, dtype)
}

/// f32 tensors with exactly the metadata entries given (e.g. `config`, `std_eps`).
pub fn serialize_with_metadata(values: &[(String, Vec<usize>, Vec<f32>)], meta: &[(&str, &str)]) -> Vec<u8> {
    let meta = meta.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    serialize_as(values, Some(meta), safetensors::Dtype::F32)
}

fn serialize_as(
    values: &[(String, Vec<usize>, Vec<f32>)],
    meta: Option<std::collections::HashMap<String, String>>,
    dtype: safetensors::Dtype,
) -> Vec<u8> {
    use safetensors::tensor::TensorView;
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = values
        .iter()
        .map(|(n, s, v)| {
            let b = match dtype {
                safetensors::Dtype::F16 => v.iter().flat_map(|x| half::f16::from_f32(*x).to_le_bytes()).collect(),
                safetensors::Dtype::BF16 => v.iter().flat_map(|x| half::bf16::from_f32(*x).to_le_bytes()).collect(),
                _ => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            };
            (n.clone(), s.clone(), b)
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> =
        bytes.iter().map(|(n, s, b)| (n.clone(), TensorView::new(dtype, s.clone(), b).unwrap())).collect();
    safetensors::serialize(views, meta).unwrap()
}

/// A deterministic pseudo-random RGB image.
pub fn image(h: usize, w: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed);
    (0..h * w * 3).map(|_| ((rng.next_f32() + 1.0) * 127.9) as u8).collect()
}
