//! The loss-curve PNG, drawn with plotters' bitmap backend and no text (plotters' text needs
//! system fonts, which a headless training machine may lack; the numbers are in losses.csv).
//!
//! Picture: x = step, y = log10(loss). Light blue: training loss per step; dark blue: its
//! moving average over 1 % of the run; red dots joined by a line: validation loss. Light grey
//! horizontal lines at every power of ten, darker at 1.

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use plotters::prelude::*;

use crate::train::LossRow;

const W: u32 = 960;
const H: u32 = 540;

/// Draws `history` into `path` (written to a temporary file, then renamed).
pub fn write_loss_curve(path: &Path, history: &[LossRow]) -> Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp-{}.png",
        path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
        std::process::id()
    ));
    draw(&tmp, history).map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

fn draw(path: &Path, history: &[LossRow]) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::new(path, (W, H)).into_drawing_area();
    root.fill(&WHITE)?;
    let lg = |v: f64| v.max(1e-12).log10();
    let train: Vec<(f64, f64)> = history
        .iter()
        .filter(|r| !r.val && r.loss.is_finite())
        .map(|r| (r.step as f64, lg(r.loss)))
        .collect();
    let val: Vec<(f64, f64)> = history
        .iter()
        .filter(|r| r.val && r.loss.is_finite())
        .map(|r| (r.step as f64, lg(r.loss)))
        .collect();
    if train.is_empty() && val.is_empty() {
        root.present()?;
        return Ok(());
    }
    let all = train.iter().chain(&val);
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in all {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let pad = ((y1 - y0) * 0.05).max(0.05);
    let (y0, y1) = (y0 - pad, y1 + pad);
    let mut chart = ChartBuilder::on(&root)
        .margin(20)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    // Decade grid lines.
    let mut d = y0.floor();
    while d <= y1.ceil() {
        if d >= y0 && d <= y1 {
            let color = if d == 0.0 { RGBColor(150, 150, 150) } else { RGBColor(220, 220, 220) };
            chart.draw_series(LineSeries::new([(x0, d), (x1, d)], color))?;
        }
        d += 1.0;
    }
    // Frame.
    chart.draw_series(LineSeries::new(
        [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)],
        RGBColor(80, 80, 80),
    ))?;
    chart.draw_series(LineSeries::new(train.iter().copied(), RGBColor(170, 200, 240)))?;
    let win = (train.len() / 100).max(1);
    if win > 1 {
        let mut avg = Vec::with_capacity(train.len());
        let mut sum = 0.0;
        for (i, &(x, y)) in train.iter().enumerate() {
            sum += y;
            if i >= win {
                sum -= train[i - win].1;
            }
            avg.push((x, sum / (i + 1).min(win) as f64));
        }
        chart.draw_series(LineSeries::new(avg, RGBColor(20, 60, 160).stroke_width(2)))?;
    }
    if !val.is_empty() {
        chart.draw_series(LineSeries::new(val.iter().copied(), RED.stroke_width(2)))?;
        chart.draw_series(val.iter().map(|&p| Circle::new(p, 3, RED.filled())))?;
    }
    root.present()?;
    Ok(())
}
