//! `act-train` command line.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

use act_train::config::ActConfig;
use act_train::export::{CheckpointForm, ExportOptions, KeyNames, WeightDtype};
use act_train::random_export::export_random;

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
    /// Write a randomly initialised model (deterministic under --seed) with random plausible
    /// statistics as a checkpoint.
    Export {
        /// Output file (single form) or directory (dir form).
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum, default_value = "single")]
        form: Form,
        #[arg(long, value_enum, default_value = "f32")]
        dtype: Dtype,
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

fn parse_hw(s: &str) -> Result<(i64, i64)> {
    let (h, w) = s
        .split_once('x')
        .with_context(|| format!("image size {s:?} is not HxW"))?;
    Ok((
        h.trim().parse().context("image height")?,
        w.trim().parse().context("image width")?,
    ))
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Export {
            out,
            form,
            dtype,
            preset,
            cameras,
            image_size,
            seed,
            names,
            original_extras,
            processor_files,
        } => {
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
            let form = match form {
                Form::Single => CheckpointForm::Single,
                Form::Dir => CheckpointForm::Dir,
            };
            let dtype = match dtype {
                Dtype::F32 => WeightDtype::F32,
                Dtype::F16 => WeightDtype::F16,
                Dtype::Bf16 => WeightDtype::BF16,
            };
            let names = match names {
                Names::Lerobot => KeyNames::LeRobot,
                Names::Original => KeyNames::Original {
                    model_prefix: original_extras,
                    include_unused: original_extras,
                },
            };
            let opts = ExportOptions {
                dtype,
                names,
                processor_files,
            };
            export_random(&out, form, &cfg, &opts, seed)?;
            eprintln!("wrote {}", out.display());
            Ok(())
        }
    }
}
