//! Trainer pieces against hand computations: statistics, loss, sampling/padding, split, resize,
//! AdamW, the loader thread (resize on load, random shifts of training images only), backbone
//! weight loading.

use std::path::PathBuf;

use act_train::augment::{shift_replicate, shifts_for_step};
use act_train::data::*;
use act_train::loader::*;
use act_train::export::Stats;
use act_train::model::Act;
use act_train::optim::AdamW;
use act_train::synthetic::SyntheticEpisode;
use act_train::backbone_weights::load_backbone_weights;
use act_train::loss::{LossKind, act_loss};
use act_train::ActConfig;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("act-train-units-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + b.abs())
}

#[test]
fn stats_match_hand_computation() {
    // Two "episodes" of a 2-column signal: column 0 takes 1, 2 then 3, 4; column 1 is constant 5.
    let e1 = [1.0f32, 5.0, 2.0, 5.0];
    let e2 = [3.0f32, 5.0, 4.0, 5.0];
    let (m, s) = column_stats(&[&e1, &e2], 2, Normalization::Act);
    // mean 2.5; unbiased variance (2.25 + 0.25 + 0.25 + 2.25) / 3 = 5/3.
    assert!(close(m[0] as f64, 2.5, 1e-7) && close(m[1] as f64, 5.0, 1e-7));
    assert!(close(s[0] as f64, (5.0f64 / 3.0).sqrt(), 1e-6), "{}", s[0]);
    assert_eq!(s[1], 0.01, "a constant column's std is clipped to 0.01");
    let (m2, s2) = column_stats(&[&e1, &e2], 2, Normalization::Lerobot);
    assert_eq!(m2, m);
    assert!(close(s2[0] as f64, 1.25f64.sqrt(), 1e-6), "population std {}", s2[0]);
    assert_eq!(s2[1], 0.0, "LeRobot does not clip (it adds 1e-8 when normalising)");

    // compute_stats over EpisodeInfo: every frame of every episode, eps per variant.
    let ep = |q: &[f32]| EpisodeInfo {
        path: "x".into(),
        len: q.len() / 2,
        sim: true,
        state_dim: 2,
        action_dim: 2,
        qpos: q.to_vec(),
        action: q.iter().map(|v| v * 2.0).collect(),
        cameras: vec![],
    };
    let st = compute_stats(&[ep(&e1), ep(&e2)], Normalization::Act);
    assert_eq!(st.std_eps, 0.0);
    assert!(close(st.action_mean[0] as f64, 5.0, 1e-7));
    assert!(close(st.action_std[0] as f64, 2.0 * (5.0f64 / 3.0).sqrt(), 1e-6));
    assert_eq!(compute_stats(&[ep(&e1)], Normalization::Lerobot).std_eps, 1e-8);
}

#[test]
fn loss_matches_hand_computation() {
    let (b, c, a, l) = (2usize, 3usize, 2usize, 2usize);
    let actions: Vec<f32> = (0..b * c * a).map(|i| (i as f32 * 0.37).sin()).collect();
    let a_hat: Vec<f32> = (0..b * c * a).map(|i| (i as f32 * 0.11).cos() * 0.5).collect();
    let is_pad = [false, false, true, false, true, true];
    let mu = [0.3f32, -0.2, 0.1, 0.5];
    let logvar = [-0.4f32, 0.2, 0.0, -1.0];
    // By hand.
    let mut sum = 0.0f64;
    let mut n_valid = 0;
    for bi in 0..b {
        for ci in 0..c {
            if is_pad[bi * c + ci] {
                continue;
            }
            n_valid += 1;
            for ai in 0..a {
                let i = (bi * c + ci) * a + ai;
                sum += (actions[i] - a_hat[i]).abs() as f64;
            }
        }
    }
    let l1_act = sum / (b * c * a) as f64;
    let l1_lerobot = sum / (n_valid * a) as f64;
    let mut kl = 0.0f64;
    for bi in 0..b {
        for li in 0..l {
            let (m, v) = (mu[bi * l + li] as f64, logvar[bi * l + li] as f64);
            kl += -0.5 * (1.0 + v - m * m - v.exp());
        }
    }
    kl /= b as f64;
    let t = |v: &[f32], s: &[i64]| Tensor::from_slice(v).view(s);
    let pad = Tensor::from_slice(&is_pad).view([2, 3]);
    for (kind, l1_want) in [(LossKind::Act, l1_act), (LossKind::Lerobot, l1_lerobot)] {
        let (loss, l1, klt) = act_loss(
            &t(&a_hat, &[2, 3, 2]),
            &t(&actions, &[2, 3, 2]),
            &pad,
            &t(&mu, &[2, 2]),
            &t(&logvar, &[2, 2]),
            10.0,
            kind,
        );
        assert!(close(l1.double_value(&[]), l1_want, 1e-6), "{kind:?} l1 {} vs {l1_want}", l1.double_value(&[]));
        assert!(close(klt.double_value(&[]), kl, 1e-6), "kl {} vs {kl}", klt.double_value(&[]));
        assert!(close(loss.double_value(&[]), l1_want + 10.0 * kl, 1e-6));
    }
}

fn episode(len: usize, sim: bool) -> EpisodeInfo {
    EpisodeInfo {
        path: "e".into(),
        len,
        sim,
        state_dim: 1,
        action_dim: 2,
        qpos: (0..len).map(|t| t as f32).collect(),
        action: (0..len).flat_map(|t| [t as f32 + 1.0, -(t as f32)]).collect(),
        cameras: vec![],
    }
}

#[test]
fn sampler_pads_and_masks() {
    let stats = Stats {
        state_mean: vec![1.0],
        state_std: vec![2.0],
        action_mean: vec![0.5, 0.0],
        action_std: vec![0.5, 1.0],
        std_eps: 0.0,
    };
    let norm = |t: usize| [(t as f32 + 1.0 - 0.5) / 0.5, -(t as f32)];
    let pad_row = [(0.0 - 0.5) / 0.5, 0.0]; // raw zeros, normalised (as ACT pads)
    // Sim: actions[t:], t = 3 of 5 with chunk 4: rows 3, 4, then 2 padded.
    let (a, p) = action_chunk(&episode(5, true), 3, 4, &stats);
    assert_eq!(p, vec![false, false, true, true]);
    assert_eq!(&a[0..2], &norm(3));
    assert_eq!(&a[2..4], &norm(4));
    assert_eq!(&a[4..6], &pad_row);
    assert_eq!(&a[6..8], &pad_row);
    // Real data: actions[max(0, t - 1):].
    let (a, p) = action_chunk(&episode(5, false), 3, 4, &stats);
    assert_eq!(p, vec![false, false, false, true]);
    assert_eq!(&a[0..2], &norm(2));
    let (a, p) = action_chunk(&episode(5, false), 0, 4, &stats);
    assert_eq!(p, vec![false; 4]);
    assert_eq!(&a[0..2], &norm(0));
    assert_eq!(&a[6..8], &norm(3));
    // A chunk longer than the episode.
    let (_, p) = action_chunk(&episode(3, true), 0, 8, &stats);
    assert_eq!(p.iter().filter(|x| !**x).count(), 3);
    assert_eq!(qpos_at(&episode(5, true), 4, &stats), vec![(4.0 - 1.0) / 2.0]);
}

#[test]
fn split_and_epochs() {
    assert_eq!(split_episodes(1, 0, 0.2), Split { train: vec![0], val: vec![0] });
    for n in [2usize, 3, 5, 10, 50] {
        let s = split_episodes(n, 7, 0.2);
        assert_eq!(s, split_episodes(n, 7, 0.2), "deterministic");
        assert!(!s.train.is_empty() && !s.val.is_empty());
        assert_eq!(s.train.len(), ((n as f64 * 0.8) as usize).clamp(1, n - 1));
        let mut all: Vec<usize> = s.train.iter().chain(&s.val).copied().collect();
        all.sort();
        assert_eq!(all, (0..n).collect::<Vec<_>>());
    }
    assert_ne!(split_episodes(50, 1, 0.2), split_episodes(50, 2, 0.2));
    // ACT's train_ratio 0.8 by hand: 50 -> 40 + 10, 7 -> 5 + 2; other shares floor the same way.
    assert_eq!(split_episodes(50, 3, 0.2).train.len(), 40);
    assert_eq!(split_episodes(7, 3, 0.2).train.len(), 5);
    assert_eq!(split_episodes(50, 3, 0.1).train.len(), 45);
    assert_eq!(split_episodes(10, 3, 0.5).train.len(), 5);
    // Each side keeps at least one episode (the clamps), 1 - f rounding below 0.1 included; 0
    // validates on none.
    assert_eq!(split_episodes(10, 3, 1e-12).val.len(), 1);
    assert_eq!(split_episodes(2, 3, 0.9).train.len(), 1);
    assert_eq!(split_episodes(10, 3, 0.9).train.len(), 1);
    assert_eq!(split_episodes(20, 3, 0.9).train.len(), 2);
    for n in [1usize, 2, 50] {
        let s = split_episodes(n, 7, 0.0);
        assert!(s.val.is_empty(), "val_fraction 0 holds none out");
        let mut all = s.train.clone();
        all.sort();
        assert_eq!(all, (0..n).collect::<Vec<_>>());
    }
    let lens = vec![10usize; 10];
    let train: Vec<usize> = (0..8).collect();
    let b = epoch_batches(&train, &lens, 3, 0, 3);
    assert_eq!(b.iter().map(|x| x.len()).collect::<Vec<_>>(), vec![3, 3, 2], "drop_last = False");
    let mut eps: Vec<usize> = b.iter().flatten().map(|s| s.0).collect();
    eps.sort();
    assert_eq!(eps, train, "an epoch visits every training episode once");
    assert!(b.iter().flatten().all(|s| s.1 < 10));
    assert_ne!(epoch_batches(&train, &lens, 3, 1, 3), b, "epochs differ");
    assert_eq!(steps_per_epoch(8, 3), 3);
}

#[test]
fn resize_area_and_bilinear() {
    // 2x4 -> 1x2 area average, per channel.
    let src: Vec<u8> = (0..2 * 4 * 3).map(|i| (i * 10) as u8).collect();
    let out = resize_rgb(&src, 2, 4, 1, 2);
    let px = |y: usize, x: usize, c: usize| src[(y * 4 + x) * 3 + c] as u32;
    for x in 0..2 {
        for c in 0..3 {
            let s = px(0, 2 * x, c) + px(0, 2 * x + 1, c) + px(1, 2 * x, c) + px(1, 2 * x + 1, c);
            assert_eq!(out[x * 3 + c] as u32, (s + 2) / 4);
        }
    }
    // Same size: a copy. Bilinear (non-integer factor) of a constant image stays constant, and of
    // a horizontal ramp stays monotone.
    assert_eq!(resize_rgb(&src, 2, 4, 2, 4), src);
    let flat = vec![77u8; 5 * 7 * 3];
    assert!(resize_rgb(&flat, 5, 7, 3, 4).iter().all(|&v| v == 77));
    let ramp: Vec<u8> = (0..5 * 7).flat_map(|i| [((i % 7) * 30) as u8; 3]).collect();
    let r = resize_rgb(&ramp, 5, 7, 3, 4);
    for y in 0..3 {
        for x in 1..4 {
            assert!(r[(y * 4 + x) * 3] > r[(y * 4 + x - 1) * 3]);
        }
    }
    // Upscaling 1x2 -> 1x4 with half-pixel centres: [a, 0.75a+0.25b, 0.25a+0.75b, b].
    let up = resize_rgb(&[0, 0, 0, 100, 100, 100], 1, 2, 1, 4);
    assert_eq!(up.iter().step_by(3).copied().collect::<Vec<_>>(), vec![0, 25, 75, 100]);
}

/// Three synthetic episodes at `h x w` in a fresh directory, opened with camera `top`.
fn synthetic_dataset(name: &str, h: usize, w: usize) -> (PathBuf, Dataset) {
    let dir = tmpdir(name);
    for i in 0..3 {
        SyntheticEpisode::new(12, h, w, i).write(&dir.join(format!("episode_{i}.hdf5"))).unwrap();
    }
    let ds = Dataset::open(&dir, &["top".to_string()]).unwrap();
    (dir, ds)
}

/// A loader for `ds` at 32x48, chunk 5.
fn loader_32x48(ds: &Dataset, stats: Stats, augment_shift: usize, seed: u64) -> Loader {
    Loader {
        episodes: std::sync::Arc::new(ds.episodes.clone()),
        cameras: ds.cameras.clone(),
        file_hw: ds.file_hw.clone(),
        model_hw: vec![(32, 48)],
        chunk: 5,
        stats,
        cache_bytes: 1 << 20,
        augment_shift,
        seed,
    }
}

#[test]
fn loader_thread_resizes_and_matches_sampler() {
    let (dir, ds) = synthetic_dataset("loader", 64, 96);
    assert_eq!(ds.file_hw, vec![(64, 96)]);
    let stats = compute_stats(&ds.episodes, Normalization::Act);
    let split = split_episodes(3, 0, 0.2);
    let loader = loader_32x48(&ds, stats.clone(), 0, 0);
    let sched = Schedule::new(split.clone(), ds.lens(), 0, 2, 3, ValEvery::Steps(2), 0, 0, 0);
    let plan: Vec<_> = sched.clone().collect();
    let (rx, h) = loader.spawn(sched, 2);
    let batches: Vec<Batch> = rx.iter().map(|b| b.unwrap()).collect();
    h.join().unwrap();
    assert_eq!(batches.len(), plan.len());
    // 3 steps, validation after step 2 and after the last step.
    let kinds: Vec<bool> = batches.iter().map(|b| matches!(b.kind, JobKind::Val { .. })).collect();
    assert_eq!(kinds, vec![false, false, true, false, true]);
    for (b, (_, samples)) in batches.iter().zip(&plan) {
        assert_eq!(b.size, samples.len());
        for (k, &(e, t)) in samples.iter().enumerate() {
            let images = SyntheticEpisode::new(12, 64, 96, e as u64).images();
            let frame: Vec<u8> = images.slice(ndarray::s![t, .., .., ..]).iter().copied().collect();
            let want = resize_rgb(&frame, 64, 96, 32, 48);
            let n = 32 * 48 * 3;
            assert_eq!(&b.images[0][k * n..(k + 1) * n], &want[..], "frame {t} of episode {e}");
            let (a, p) = action_chunk(&ds.episodes[e], t, 5, &stats);
            assert_eq!(&b.actions[k * 5 * 14..(k + 1) * 5 * 14], &a[..]);
            assert_eq!(&b.is_pad[k * 5..(k + 1) * 5], &p[..]);
            assert_eq!(&b.qpos[k * 14..(k + 1) * 14], &qpos_at(&ds.episodes[e], t, &stats)[..]);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn random_shift_matches_hand_computation() {
    // A 3x4 image whose pixel (y, x) holds 10*y + x in every channel.
    let src: Vec<u8> = (0..3).flat_map(|y| (0..4).flat_map(move |x| [10 * y + x; 3])).collect();
    let mut dst = vec![0u8; src.len()];
    let red = |d: &[u8]| d.iter().step_by(3).copied().collect::<Vec<u8>>();
    // Down one row, left one column: dst(y, x) = src(min(y + 1, 2), max(x - 1, 0)).
    shift_replicate(&src, 3, 4, 1, -1, &mut dst);
    assert_eq!(red(&dst), vec![10, 10, 11, 12, 20, 20, 21, 22, 20, 20, 21, 22]);
    // Up two rows, right two columns: dst(y, x) = src(max(y - 2, 0), min(x + 2, 3)).
    shift_replicate(&src, 3, 4, -2, 2, &mut dst);
    assert_eq!(red(&dst), vec![2, 3, 3, 3, 2, 3, 3, 3, 2, 3, 3, 3]);
    shift_replicate(&src, 3, 4, 0, 0, &mut dst);
    assert_eq!(dst, src);
}

#[test]
fn random_shifts_cover_the_range_and_follow_seed_and_step() {
    let s = shifts_for_step(0, 7, 200, 2, 3);
    assert_eq!(s.len(), 400);
    for v in -3..=3isize {
        assert!(s.iter().any(|&(dy, _)| dy == v), "dy {v} never drawn");
        assert!(s.iter().any(|&(_, dx)| dx == v), "dx {v} never drawn");
    }
    assert!(s.iter().all(|&(dy, dx)| dy.abs() <= 3 && dx.abs() <= 3));
    assert_eq!(s, shifts_for_step(0, 7, 200, 2, 3), "not a function of (seed, step)");
    assert_ne!(s, shifts_for_step(0, 8, 200, 2, 3), "two steps drew the same shifts");
    assert_ne!(s, shifts_for_step(1, 7, 200, 2, 3), "two seeds drew the same shifts");
}

#[test]
fn loader_shifts_training_images_only() {
    let (dir, ds) = synthetic_dataset("loader-shift", 32, 48);
    let loader = loader_32x48(&ds, compute_stats(&ds.episodes, Normalization::Act), 4, 5);
    let sched = Schedule::new(split_episodes(3, 5, 0.2), ds.lens(), 5, 2, 3, ValEvery::Steps(2), 0, 0, 0);
    let plan: Vec<_> = sched.clone().collect();
    let (rx, h) = loader.spawn(sched, 2);
    let batches: Vec<Batch> = rx.iter().map(|b| b.unwrap()).collect();
    h.join().unwrap();
    let n = 32 * 48 * 3;
    let mut moved = 0;
    for (b, (kind, samples)) in batches.iter().zip(&plan) {
        let shifts = match *kind {
            JobKind::Train { step, .. } => Some(shifts_for_step(5, step, samples.len(), 1, 4)),
            JobKind::Val { .. } => None,
        };
        for (k, &(e, t)) in samples.iter().enumerate() {
            let images = SyntheticEpisode::new(12, 32, 48, e as u64).images();
            let frame: Vec<u8> = images.slice(ndarray::s![t, .., .., ..]).iter().copied().collect();
            let got = &b.images[0][k * n..(k + 1) * n];
            match &shifts {
                None => assert_eq!(got, &frame[..], "a validation image was shifted"),
                Some(s) => {
                    let mut want = vec![0u8; n];
                    shift_replicate(&frame, 32, 48, s[k].0, s[k].1, &mut want);
                    assert_eq!(got, &want[..], "training image {k} of step {kind:?}");
                    moved += (got != &frame[..]) as usize;
                }
            }
        }
    }
    assert!(moved > 0, "no training image moved");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn adamw_matches_reference_formula() {
    let vs = VarStore::new(Device::Cpu);
    let root = vs.root();
    let w = root.var_copy("w", &Tensor::from_slice(&[1.0f32, -2.0, 0.5]));
    let bb = (&root / "model" / "backbone").var_copy("x", &Tensor::from_slice(&[3.0f32]));
    let mut opt = AdamW::new(&vs, 0.1, 0.01, 0.05);
    let (mut p, mut m, mut v) = (vec![1.0f64, -2.0, 0.5], [0.0f64; 3], [0.0f64; 3]);
    for t in 1..=3 {
        opt.zero_grad();
        let loss = (&w * &w).sum(Kind::Float) * 0.5 + &bb * 2.0;
        loss.sum(Kind::Float).backward();
        opt.step();
        for i in 0..3 {
            let g = p[i];
            p[i] *= 1.0 - 0.1 * 0.05;
            m[i] = 0.9 * m[i] + 0.1 * g;
            v[i] = 0.999 * v[i] + 0.001 * g * g;
            let mh = m[i] / (1.0 - 0.9f64.powi(t));
            let den = (v[i] / (1.0 - 0.999f64.powi(t))).sqrt() + 1e-8;
            p[i] -= 0.1 * mh / den;
        }
    }
    let got: Vec<f32> = Vec::try_from(&w).unwrap();
    for i in 0..3 {
        assert!(close(got[i] as f64, p[i], 1e-5), "{i}: {} vs {}", got[i], p[i]);
    }
    // The backbone group uses its own lr: constant gradient 2, so each step moves by ~lr_backbone.
    let x = bb.double_value(&[0]);
    let mut want = 3.0f64;
    for _ in 0..3 {
        want = want * (1.0 - 0.01 * 0.05) - 0.01;
    }
    assert!(close(x, want, 1e-5), "backbone {x} vs {want}");
}

#[test]
fn backbone_weights_load_torchvision_names() {
    let cfg = ActConfig::tiny();
    let vs = VarStore::new(Device::Cpu);
    Act::new(&vs.root(), &cfg).unwrap();
    let dir = tmpdir("backbone");
    // A torchvision-style file: every backbone tensor under its bare name, plus fc and
    // num_batches_tracked as torchvision has them.
    let mut tensors: Vec<(String, Tensor)> = Vec::new();
    for (name, t) in vs.variables() {
        if let Some(k) = name.strip_prefix("model.backbone.") {
            let n = t.numel() as i64;
            let vals = Tensor::arange(n, (Kind::Float, Device::Cpu)).view(t.size().as_slice()) * 1e-3 + 0.25;
            tensors.push((k.to_string(), vals));
        }
    }
    tensors.push(("fc.weight".into(), Tensor::ones([1000, 512], (Kind::Float, Device::Cpu))));
    tensors.push(("bn1.num_batches_tracked".into(), Tensor::from_slice(&[5i64])));
    let path = dir.join("resnet18.safetensors");
    Tensor::write_safetensors(&tensors, &path).unwrap();
    let n = load_backbone_weights(&vs, &path).unwrap();
    let vars = vs.variables();
    assert_eq!(n, vars.keys().filter(|k| k.starts_with("model.backbone.")).count());
    for (k, t) in &tensors {
        if let Some(v) = vars.get(&format!("model.backbone.{k}")) {
            assert!(v.allclose(t, 0.0, 0.0, false), "{k}");
        }
    }
    // A file lacking tensors is refused with their names.
    let partial: Vec<(String, Tensor)> = tensors.into_iter().filter(|(k, _)| !k.starts_with("layer4")).collect();
    let p2 = dir.join("partial.safetensors");
    Tensor::write_safetensors(&partial, &p2).unwrap();
    let err = load_backbone_weights(&vs, &p2).unwrap_err().to_string();
    assert!(err.contains("missing") && err.contains("layer4"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
