//! The caption strip under each rollout video frame: the rollout's seed and step, four cells for
//! the reward stages (filled once reached), the furthest stage's name and, once reached, SUCCESS.
//! Text needs the plots' font (`act_train::plot::text_font`); without one only the cells are drawn.

use anyhow::{Result, anyhow, bail};
use plotters::prelude::*;

/// Pixel rows the strip adds under the frame.
pub const STRIP_HEIGHT: usize = 36;

/// What the strip says about one step.
pub struct Caption<'a> {
    pub seed: u64,
    pub step: usize,
    pub steps: usize,
    /// The highest reward so far in this rollout (0..=4).
    pub max_reward: u32,
    pub stages: &'a [&'a str; 4],
}

/// The frame (`height` x `width` RGB) with the strip under it: (`height` + STRIP_HEIGHT) x `width`.
pub fn captioned(frame: &[u8], height: usize, width: usize, c: &Caption) -> Result<Vec<u8>> {
    if frame.len() != height * width * 3 {
        bail!("frame has {} bytes, expected {height}x{width}x3", frame.len());
    }
    let mut buf = vec![255u8; (height + STRIP_HEIGHT) * width * 3];
    buf[..frame.len()].copy_from_slice(frame);
    draw_strip(&mut buf, height, width, c).map_err(|e| anyhow!("drawing the caption: {e}"))?;
    Ok(buf)
}

fn draw_strip(buf: &mut [u8], height: usize, width: usize, c: &Caption) -> Result<(), Box<dyn std::error::Error>> {
    let text = act_train::plot::text_font().is_ok();
    let root = BitMapBackend::with_buffer(buf, (width as u32, (height + STRIP_HEIGHT) as u32)).into_drawing_area();
    let (y0, y1) = (height as i32 + 6, (height + STRIP_HEIGHT) as i32 - 6);
    let (w, size) = (width as i32, (STRIP_HEIGHT as i32 - 16).max(8));
    // The cells sit in the middle third; text left and right of them.
    let cell = (w / 3 / 4).max(6);
    let cx0 = w / 2 - 2 * cell;
    let done = RGBColor(30, 150, 70);
    for i in 0..4 {
        let x = cx0 + i * cell;
        let reached = c.max_reward > i as u32;
        let fill = if reached { done } else { RGBColor(225, 225, 225) };
        root.draw(&Rectangle::new([(x + 1, y0), (x + cell - 1, y1)], fill.filled()))?;
        if text {
            let color = if reached { WHITE } else { RGBColor(90, 90, 90) };
            root.draw(&Text::new(format!("{}", i + 1), (x + cell / 2 - size / 4, y0 + 2), ("sans-serif", size).into_font().color(&color)))?;
        }
    }
    if text {
        let style = ("sans-serif", size).into_font().color(&BLACK);
        root.draw(&Text::new(format!("seed {}  step {}/{}", c.seed, c.step + 1, c.steps), (6, y0 + 2), style.clone()))?;
        let (label, color) = match c.max_reward {
            0 => ("no stage yet".to_string(), RGBColor(90, 90, 90)),
            4 => (format!("SUCCESS: {}", c.stages[3]), done),
            r => (c.stages[r as usize - 1].to_string(), BLACK),
        };
        root.draw(&Text::new(label, (cx0 + 4 * cell + 8, y0 + 2), ("sans-serif", size).into_font().color(&color)))?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_strip_marks_reached_stages_and_leaves_the_frame_alone() {
        let (h, w) = (20, 240);
        let frame: Vec<u8> = (0..h * w * 3).map(|i| (i % 251) as u8).collect();
        let stages = ["a", "b", "c", "d"];
        let out = captioned(&frame, h, w, &Caption { seed: 1, step: 0, steps: 10, max_reward: 2, stages: &stages }).unwrap();
        assert_eq!(out.len(), (h + STRIP_HEIGHT) * w * 3);
        assert_eq!(&out[..frame.len()], &frame[..]);
        // Cell k (0-based) spans x in [w/2 - 2 cell + k cell, ...), cell = w/12 = 20, and rows
        // h + 6 ..= h + 30: sample each cell's left edge + 2 on row h + 29, below the digit.
        let px = |x: usize, y: usize| &out[(y * w + x) * 3..(y * w + x) * 3 + 3];
        let y = h + 29;
        assert_eq!(px(w / 2 - 40 + 2, y), &[30, 150, 70], "stage 1 reached");
        assert_eq!(px(w / 2 - 20 + 2, y), &[30, 150, 70], "stage 2 reached");
        assert_eq!(px(w / 2 + 2, y), &[225, 225, 225], "stage 3 not reached");
        assert_eq!(px(w / 2 + 20 + 2, y), &[225, 225, 225], "stage 4 not reached");
        assert!(captioned(&frame[1..], h, w, &Caption { seed: 1, step: 0, steps: 10, max_reward: 0, stages: &stages }).is_err());
    }
}
