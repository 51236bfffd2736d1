//! The training-curve PNG: loss against step and, once snapshots have been evaluated
//! (`act-sim eval-snapshots`), task success against step in a panel below it.
//!
//! Text (title, axis labels, legend) needs a TrueType font, which plotters does not carry: DejaVu
//! Sans from Debian's fonts-dejavu-core (installed by `scripts/setup.sh`), or the file the
//! `ACT_FONT` environment variable names. Without one the loss panel is drawn without text (the
//! numbers are in losses.csv and success_vs_step.csv) and a warning says so once.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::loss::LossRow;

const W: u32 = 960;
const H: u32 = 540;
/// Height of the success panel under the loss panel.
const H_SUCCESS: u32 = 380;
/// Where Debian's fonts-dejavu-core puts its sans-serif face.
pub const DEJAVU_SANS: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
const FAMILY: &str = "sans-serif";

/// One evaluated snapshot: `successes` of `rollouts` at `step`, with its 95 % interval in percent.
#[derive(Clone, Debug, PartialEq)]
pub struct SuccessPoint {
    pub step: u64,
    /// How the policy was run, e.g. "chunk execution" or "temporal ensembling".
    pub series: String,
    pub successes: usize,
    pub rollouts: usize,
    pub lo_percent: f64,
    pub hi_percent: f64,
}

/// Registers the font once; `Err` says why there is none (missing file, unreadable, not a font).
pub fn text_font() -> std::result::Result<(), &'static str> {
    static FONT: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    FONT.get_or_init(|| {
        let path = std::env::var_os("ACT_FONT").map(std::path::PathBuf::from).unwrap_or_else(|| DEJAVU_SANS.into());
        let bytes = act_core::fs::read_regular_file(&path, 64 << 20, "64 MiB")
            .map_err(|e| format!("no font for the plots' text ({}): {e}; install fonts-dejavu-core (scripts/setup.sh) or set ACT_FONT to a .ttf file", path.display()))?;
        // plotters keeps fonts for the life of the process: leak the bytes once.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font(FAMILY, FontStyle::Normal, bytes)
            .map_err(|_| format!("{} is not a TrueType/OpenType font", path.display()))
    })
    .as_ref()
    .map(|_| ())
    .map_err(|e| e.as_str())
}

/// Draws `history` into `path` (written to a temporary file, then renamed).
pub fn write_loss_curve(path: &Path, history: &[LossRow]) -> Result<()> {
    write_training_curves(path, history, &[])
}

/// Draws the loss panel and, when `success` holds points, the success panel under it.
pub fn write_training_curves(path: &Path, history: &[LossRow], success: &[SuccessPoint]) -> Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp-{}.png",
        path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
        std::process::id()
    ));
    let text = match text_font() {
        Ok(()) => true,
        Err(why) => {
            static WARNED: OnceLock<()> = OnceLock::new();
            WARNED.get_or_init(|| eprintln!("warning: {why}; drawing {} without text", path.display()));
            false
        }
    };
    let height = if success.is_empty() || !text { H } else { H + H_SUCCESS };
    {
        let root = BitMapBackend::new(&tmp, (W, height)).into_drawing_area();
        let drawn = root.fill(&WHITE).map_err(|e| anyhow!("{e}")).and_then(|_| {
            if text {
                let (top, bottom) = root.split_vertically(H);
                draw_loss(&top, history, success, true).map_err(|e| anyhow!("{e}"))?;
                if !success.is_empty() {
                    draw_success(&bottom, history, success).map_err(|e| anyhow!("{e}"))?;
                }
            } else {
                draw_loss(&root, history, success, false).map_err(|e| anyhow!("{e}"))?;
            }
            root.present().map_err(|e| anyhow!("{e}"))
        });
        drawn.with_context(|| format!("drawing {}", path.display()))?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// A loss tick label without trailing zeros: 100, 2, 0.5, 0.025.
fn trimmed(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The step range both panels share.
fn step_range(history: &[LossRow], success: &[SuccessPoint]) -> (f64, f64) {
    let steps = history.iter().map(|r| r.step as f64).chain(success.iter().map(|p| p.step as f64));
    let (mut x0, mut x1) = (f64::MAX, f64::MIN);
    for x in steps {
        x0 = x0.min(x);
        x1 = x1.max(x);
    }
    if x0 > x1 {
        return (0.0, 1.0);
    }
    let x0 = x0.min(0.0);
    // 2 % room on the right, so that the last point's interval is not drawn on the frame.
    (x0, if x1 <= x0 { x0 + 1.0 } else { x1 + 0.02 * (x1 - x0) })
}

/// x = step, y = loss on a log scale. Light blue: training loss per step; dark blue: its moving
/// average over 1 % of the run; red dots joined by a line: validation loss.
fn draw_loss(area: &DrawingArea<BitMapBackend, Shift>, history: &[LossRow], success: &[SuccessPoint], text: bool) -> DrawResult {
    let positive = |r: &&LossRow| r.loss.is_finite() && r.loss > 0.0;
    let train: Vec<(f64, f64)> = history.iter().filter(|r| !r.val).filter(positive).map(|r| (r.step as f64, r.loss)).collect();
    let val: Vec<(f64, f64)> = history.iter().filter(|r| r.val).filter(positive).map(|r| (r.step as f64, r.loss)).collect();
    if train.is_empty() && val.is_empty() {
        return Ok(());
    }
    let (x0, x1) = step_range(history, success);
    let (mut y0, mut y1) = (f64::MAX, f64::MIN);
    for &(_, y) in train.iter().chain(&val) {
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    // 5 % of the log range as margin, at least a factor 1.1.
    let pad = ((y1 / y0).powf(0.05)).max(1.1);
    let (y0, y1) = (y0 / pad, y1 * pad);
    let mut builder = ChartBuilder::on(area);
    builder.margin(15);
    if text {
        builder.caption("ACT training loss", (FAMILY, 22)).x_label_area_size(45).y_label_area_size(75);
    }
    let mut chart = builder.build_cartesian_2d(x0..x1, (y0..y1).log_scale())?;
    if text {
        chart
            .configure_mesh()
            .x_desc("training step")
            .y_desc("loss = L1 + kl_weight x KL (log scale)")
            .y_label_formatter(&|v| trimmed(*v))
            .x_label_formatter(&|v| format!("{v:.0}"))
            .label_style((FAMILY, 14))
            .light_line_style(TRANSPARENT)
            .draw()?;
    } else {
        chart.draw_series(LineSeries::new([(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)], RGBColor(80, 80, 80)))?;
    }
    let light = RGBColor(170, 200, 240);
    let dark = RGBColor(20, 60, 160);
    chart
        .draw_series(LineSeries::new(train.iter().copied(), light))?
        .label("training loss, per step")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], light.stroke_width(3)));
    let win = (train.len() / 100).max(1);
    if win > 1 {
        // Moving average of log(loss), so that spikes do not dominate it.
        let mut avg = Vec::with_capacity(train.len());
        let mut sum = 0.0;
        for (i, &(x, y)) in train.iter().enumerate() {
            sum += y.ln();
            if i >= win {
                sum -= train[i - win].1.ln();
            }
            avg.push((x, (sum / (i + 1).min(win) as f64).exp()));
        }
        chart
            .draw_series(LineSeries::new(avg, dark.stroke_width(2)))?
            .label("training loss, moving average over 1 % of the run")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], dark.stroke_width(2)));
    }
    if !val.is_empty() {
        chart
            .draw_series(LineSeries::new(val.iter().copied(), RED.stroke_width(2)))?
            .label("validation loss")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED.stroke_width(2)));
        chart.draw_series(val.iter().map(|&p| Circle::new(p, 3, RED.filled())))?;
    }
    if text {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font((FAMILY, 14))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(120, 120, 120))
            .draw()?;
    }
    Ok(())
}

/// x = step, y = success in percent; one line per series, each point with its interval.
fn draw_success(area: &DrawingArea<BitMapBackend, Shift>, history: &[LossRow], success: &[SuccessPoint]) -> DrawResult {
    let (x0, x1) = step_range(history, success);
    let mut chart = ChartBuilder::on(area)
        .margin(15)
        .caption("task success of the snapshots (bars: Wilson 95 % interval)", (FAMILY, 20))
        .x_label_area_size(45)
        .y_label_area_size(75)
        .build_cartesian_2d(x0..x1, 0f64..100f64)?;
    chart
        .configure_mesh()
        .x_desc("training step")
        .y_desc("success (%)")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style((FAMILY, 14))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    let mut names: Vec<&str> = Vec::new();
    for p in success {
        if !names.contains(&p.series.as_str()) {
            names.push(&p.series);
        }
    }
    let colors = [RGBColor(0, 120, 60), RGBColor(200, 110, 0), RGBColor(110, 40, 160), RGBColor(0, 110, 170)];
    // A small sideways shift per series keeps overlapping intervals apart.
    let shift = (x1 - x0) * 0.004;
    for (k, name) in names.iter().enumerate() {
        let color = colors[k % colors.len()];
        let dx = shift * (k as f64 - (names.len() as f64 - 1.0) / 2.0);
        let mut pts: Vec<&SuccessPoint> = success.iter().filter(|p| p.series == *name).collect();
        pts.sort_by_key(|p| p.step);
        let line: Vec<(f64, f64)> =
            pts.iter().map(|p| (p.step as f64 + dx, 100.0 * p.successes as f64 / p.rollouts.max(1) as f64)).collect();
        let n = pts.first().map_or(0, |p| p.rollouts);
        chart
            .draw_series(LineSeries::new(line.iter().copied(), color.stroke_width(2)))?
            .label(format!("{name} ({n} rollouts per point)"))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(line.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
        chart.draw_series(
            pts.iter().map(|p| PathElement::new([(p.step as f64 + dx, p.lo_percent), (p.step as f64 + dx, p.hi_percent)], color.stroke_width(1))),
        )?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FAMILY, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(120, 120, 120))
        .draw()?;
    Ok(())
}
