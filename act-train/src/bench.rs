//! `act-train bench`: training throughput of a preset on random data, timed per phase.

use std::time::Instant;

use anyhow::Result;
use tch::nn::VarStore;
use tch::{Kind, Tensor};

use crate::cli::{DeviceArg, TrainArgs, TrainPreset};
use crate::loss::act_loss;
use crate::model::{Act, normalize_image_u8};
use crate::optim::AdamW;

/// Training samples per second of one preset on random data (forward, backward, AdamW step;
/// no disk): `warmup` untimed steps, then `steps` timed ones. Returns samples/s.
pub fn bench(
    preset: TrainPreset,
    batch: Option<usize>,
    image_size: Option<(i64, i64)>,
    steps: usize,
    warmup: usize,
    device: DeviceArg,
) -> Result<f64> {
    let device = device.device()?;
    let mut args = TrainArgs::preset(preset);
    if let Some(hw) = image_size {
        args.image_size = hw;
    }
    let b = batch.unwrap_or(args.batch_size) as i64;
    let cfg = args.act_config(14, 14)?;
    tch::manual_seed(0);
    let vs = VarStore::new(device);
    let mut model = Act::new(&vs.root(), &cfg)?;
    model.backbone.set_batchnorm_mode(args.backbone_bn);
    let mut opt = AdamW::new(&vs, args.lr, args.lr_backbone, args.weight_decay);
    let chunk = cfg.chunk_size;
    let qpos = Tensor::randn([b, 14], (Kind::Float, device));
    let images: Vec<Tensor> = cfg
        .cameras()
        .iter()
        .map(|(_, h, w)| {
            normalize_image_u8(&Tensor::randint(256, [b, *h, *w, 3], (Kind::Uint8, device)))
        })
        .collect();
    let actions = Tensor::randn([b, chunk, 14], (Kind::Float, device));
    let is_pad = Tensor::zeros([b, chunk], (Kind::Bool, device));
    let mut times = [0f64; 3];
    let mut step = |times: &mut [f64; 3]| {
        let t0 = Instant::now();
        let (a_hat, mu, logvar) = model.forward_train(&qpos, &images, &actions, &is_pad, true);
        let (loss, _, _) = act_loss(&a_hat, &actions, &is_pad, &mu, &logvar, args.kl_weight, args.loss);
        let v = loss.double_value(&[]);
        let t1 = Instant::now();
        opt.zero_grad();
        loss.backward();
        let _ = opt.params[0].var.grad().double_value(&[0]);
        let t2 = Instant::now();
        opt.step();
        let _ = opt.params[0].var.double_value(&[0]);
        let t3 = Instant::now();
        times[0] += (t1 - t0).as_secs_f64();
        times[1] += (t2 - t1).as_secs_f64();
        times[2] += (t3 - t2).as_secs_f64();
        v
    };
    let mut scratch = [0f64; 3];
    for _ in 0..warmup {
        step(&mut scratch);
    }
    let t = Instant::now();
    for _ in 0..steps {
        step(&mut times);
    }
    let n = steps.max(1) as f64 * 1e-3;
    eprintln!(
        "{preset:?} batch {b}, images {}x{}: per step forward {:.0} ms, backward {:.0} ms, AdamW {:.0} ms",
        args.image_size.0,
        args.image_size.1,
        times[0] / n,
        times[1] / n,
        times[2] / n
    );
    Ok((steps as i64 * b) as f64 / t.elapsed().as_secs_f64())
}
