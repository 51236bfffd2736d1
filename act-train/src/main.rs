//! `act-train` command line.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};

use act_train::config::ActConfig;
use act_train::export::{CheckpointForm, ExportOptions, KeyNames, Quantize, WeightDtype};
use act_train::random_export::export_random;
use act_train::cli::{DeviceArg, TrainCli, TrainPreset};
use act_train::{bench, checkpoint, train};

#[derive(Parser)]
#[command(
    name = "act-train",
    about = "Train ACT policies with libtorch and export them for act-core"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Form {
    Single,
    Dir,
}

#[derive(Clone, Copy, ValueEnum)]
enum Dtype {
    F32,
    F16,
    Bf16,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum QuantizeArg {
    /// Every weight in --dtype.
    None,
    /// The weights act-core's int8 path runs in int8 (and the training-only VAE encoder's)
    /// stored as int8 with per-output-channel scales (about a quarter of the f32 file); conv1,
    /// the state projection, the action head, biases, norms and embeddings keep --dtype.
    Int8,
}

#[derive(Clone, Copy, ValueEnum)]
enum Preset {
    Tiny,
    Small,
    Default,
}

#[derive(Clone, Copy, ValueEnum)]
enum Names {
    /// LeRobot's `model.*` names.
    Lerobot,
    /// Original ACT names (backbones.0.0.body.*, transformer.*, ...).
    Original,
}

#[derive(Subcommand)]
enum Command {
    /// Train ACT on a directory of ACT-format episodes (episode_<i>.hdf5); writes last.ckpt,
    /// best.ckpt, losses.csv, loss_curve.png and, at the end, policy.safetensors and policy/
    /// (act-core's checkpoint forms) into --ckpt-dir.
    Train(Box<TrainCli>),
    /// Write small synthetic episodes (moving square, sinusoidal joints) in the ACT layout, for
    /// smoke runs of `train`.
    Synth {
        /// Output directory (episode_<i>.hdf5 files).
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 10)]
        episodes: usize,
        /// Time steps per episode.
        #[arg(long, default_value_t = 50)]
        len: usize,
        /// Image size HxW.
        #[arg(long, default_value = "64x64")]
        image_size: String,
    },
    /// Training throughput (forward + backward + AdamW on random data, no disk) in samples/s.
    Bench {
        /// Presets to measure, comma-separated.
        #[arg(long, value_enum, value_delimiter = ',', default_value = "sim-small,paper")]
        preset: Vec<TrainPreset>,
        /// Batch size [default: the preset's].
        #[arg(long)]
        batch_size: Option<usize>,
        /// Image size HxW instead of the presets' [default: each preset's].
        #[arg(long)]
        image_size: Option<String>,
        /// Timed steps per preset.
        #[arg(long, default_value_t = 5)]
        steps: usize,
        /// Untimed warm-up steps per preset.
        #[arg(long, default_value_t = 1)]
        warmup: usize,
        #[arg(long, value_enum, default_value = "cpu")]
        device: DeviceArg,
        /// libtorch intra-op threads [default: libtorch's choice].
        #[arg(long)]
        threads: Option<i32>,
    },
    /// Export a training checkpoint (--ckpt C/best.ckpt) to act-core's checkpoint forms, or
    /// write a randomly initialised model (deterministic under --seed) with random plausible
    /// statistics as a checkpoint.
    Export {
        /// A training checkpoint (last.ckpt / best.ckpt) to export; its config and statistics are
        /// used, and --preset/--cameras/--image-size/--seed are ignored; a run trained with
        /// --ema-decay exports its averaged weights. Without it: a random model.
        #[arg(long)]
        ckpt: Option<PathBuf>,
        /// Output file (single form) or directory (dir form).
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum, default_value = "single")]
        form: Form,
        #[arg(long, value_enum, default_value = "f32")]
        dtype: Dtype,
        /// Store weights in int8 (docs/CHECKPOINT.md, "int8 weights"). act-core runs such a file
        /// in every precision; its int8 path reads the stored levels back exactly.
        #[arg(long, value_enum, default_value = "none")]
        quantize: QuantizeArg,
        #[arg(long, value_enum, default_value = "tiny")]
        preset: Preset,
        /// Comma-separated camera names (each keeps the preset's image size).
        #[arg(long, value_delimiter = ',')]
        cameras: Option<Vec<String>>,
        /// Image size as HxW for every camera (e.g. 240x320); default: the preset's.
        #[arg(long)]
        image_size: Option<String>,
        #[arg(long, default_value_t = 0)]
        seed: i64,
        #[arg(long, value_enum, default_value = "lerobot")]
        names: Names,
        /// With --names original: prefix keys with `model.` and add is_pad_head and decoder layers up to 7.
        #[arg(long)]
        original_extras: bool,
        /// Dir form: statistics in the current LeRobot processor files instead of legacy buffers.
        #[arg(long)]
        processor_files: bool,
    },
}

use act_train::cli::parse_hw;

/// libgomp (libtorch's OpenMP) spin-waits between parallel regions by default; on a machine
/// whose cores are shared with other processes that makes CPU training several times slower
/// (measured here: a 816x256x1024 linear layer 6x slower with 2 spinning threads than with 1).
/// libgomp reads OMP_WAIT_POLICY when it is loaded, before `main`, so the program re-executes
/// itself once with OMP_WAIT_POLICY=PASSIVE unless the variable is already set (set it to
/// ACTIVE to keep spinning, or GOMP_SPINCOUNT=300000 for libgomp's own default). The price on a
/// quiet machine (AMD EPYC Zen 3, 2 cores, `act-train bench --preset sim-small --threads 2`):
/// 7.4 samples/s passive against 11.4 with GOMP_SPINCOUNT=300000; with one other busy process
/// beside it, 5.4 passive against 2.0-3.6 spinning.
fn ensure_passive_omp() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os("OMP_WAIT_POLICY").is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("OMP_WAIT_POLICY", "PASSIVE")
        .exec();
    eprintln!("warning: could not re-execute with OMP_WAIT_POLICY=PASSIVE: {err}");
}

fn main() -> Result<()> {
    ensure_passive_omp();
    let cli = Cli::parse();
    match cli.command {
        Command::Train(t) => {
            train::run(&t)?;
            Ok(())
        }
        Command::Synth {
            out,
            episodes,
            len,
            image_size,
        } => {
            let (h, w) = parse_hw(&image_size)?;
            act_train::synthetic::write_dataset(&out, episodes, len, h as usize, w as usize)?;
            eprintln!("wrote {episodes} episodes to {}", out.display());
            Ok(())
        }
        Command::Bench {
            preset,
            batch_size,
            image_size,
            steps,
            warmup,
            device,
            threads,
        } => {
            let hw = image_size.as_deref().map(parse_hw).transpose()?;
            if let Some(n) = threads {
                tch::set_num_threads(n);
            }
            eprintln!("libtorch threads: {}", tch::get_num_threads());
            for p in preset {
                let sps = bench::bench(p, batch_size, hw, steps, warmup, device)?;
                let name = p.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default();
                println!("{name}: {sps:.2} training samples/s");
            }
            Ok(())
        }
        Command::Export {
            ckpt,
            out,
            form,
            dtype,
            quantize,
            preset,
            cameras,
            image_size,
            seed,
            names,
            original_extras,
            processor_files,
        } => {
            let form = match form {
                Form::Single => CheckpointForm::Single,
                Form::Dir => CheckpointForm::Dir,
            };
            let opts = ExportOptions {
                dtype: match dtype {
                    Dtype::F32 => WeightDtype::F32,
                    Dtype::F16 => WeightDtype::F16,
                    Dtype::Bf16 => WeightDtype::BF16,
                },
                names: match names {
                    Names::Lerobot => KeyNames::LeRobot,
                    Names::Original => KeyNames::Original {
                        model_prefix: original_extras,
                        include_unused: original_extras,
                    },
                },
                processor_files,
                quantize: match quantize {
                    QuantizeArg::None => Quantize::None,
                    QuantizeArg::Int8 => Quantize::Int8,
                },
            };
            if let Some(ckpt) = ckpt {
                checkpoint::export_training_checkpoint(&ckpt, &out, form, &opts)?;
                eprintln!("wrote {} from {}", out.display(), ckpt.display());
                return Ok(());
            }
            let mut cfg = match preset {
                Preset::Tiny => ActConfig::tiny(),
                Preset::Small => ActConfig::small(),
                Preset::Default => ActConfig::default_aloha(),
            };
            let (mut h, mut w) = {
                let c = cfg.cameras();
                (c[0].1, c[0].2)
            };
            if let Some(s) = image_size {
                (h, w) = parse_hw(&s)?;
                cfg = cfg.with_image_size(h, w);
            }
            if let Some(cams) = cameras {
                let cams: Vec<(&str, i64, i64)> = cams.iter().map(|c| (c.trim(), h, w)).collect();
                cfg.set_cameras(&cams);
            }
            export_random(&out, form, &cfg, &opts, seed)?;
            eprintln!("wrote {}", out.display());
            Ok(())
        }
    }
}
