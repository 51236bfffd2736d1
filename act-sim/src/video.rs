//! Writing frames for people to look at: PNG stills, animated GIF (gif crate), MP4 through an
//! `ffmpeg` found on PATH.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, anyhow, bail};

/// Write one RGB frame (H*W*3) as PNG.
pub fn write_png(path: &Path, width: usize, height: usize, rgb: &[u8]) -> Result<()> {
    if rgb.len() != width * height * 3 {
        bail!("frame has {} bytes, expected {width}x{height}x3", rgb.len());
    }
    let f = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(f), width as u32, height as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()?.write_image_data(rgb)?;
    Ok(())
}

/// Whether an `ffmpeg` executable runs.
pub fn ffmpeg_available() -> bool {
    Command::new("ffmpeg").arg("-version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

enum Sink {
    Gif(gif::Encoder<std::io::BufWriter<std::fs::File>>),
    Ffmpeg(Child),
}

/// A video being written frame by frame; the format follows the file extension
/// (`.gif`, or `.mp4`/`.mkv`/`.webm` through ffmpeg).
pub struct VideoWriter {
    sink: Sink,
    width: usize,
    height: usize,
    fps: f64,
}

impl VideoWriter {
    pub fn create(path: &Path, width: usize, height: usize, fps: f64) -> Result<Self> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        let sink = match ext.as_str() {
            "gif" => {
                let f = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
                let mut enc = gif::Encoder::new(std::io::BufWriter::new(f), width as u16, height as u16, &[])?;
                enc.set_repeat(gif::Repeat::Infinite)?;
                Sink::Gif(enc)
            }
            "mp4" | "mkv" | "webm" => {
                if !ffmpeg_available() {
                    bail!("writing .{ext} needs ffmpeg on PATH; use a .gif output instead");
                }
                let child = Command::new("ffmpeg")
                    .args(["-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s"])
                    .arg(format!("{width}x{height}"))
                    .args(["-r", &format!("{fps}"), "-i", "-", "-pix_fmt", "yuv420p", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"])
                    .arg(path)
                    .stdin(Stdio::piped())
                    .spawn()
                    .context("starting ffmpeg")?;
                Sink::Ffmpeg(child)
            }
            _ => bail!("unsupported video extension {:?} (use .gif or .mp4)", path.display()),
        };
        Ok(Self { sink, width, height, fps })
    }

    pub fn push(&mut self, rgb: &[u8]) -> Result<()> {
        if rgb.len() != self.width * self.height * 3 {
            bail!("frame has {} bytes, expected {}x{}x3", rgb.len(), self.width, self.height);
        }
        match &mut self.sink {
            Sink::Gif(enc) => {
                let mut frame = gif::Frame::from_rgb_speed(self.width as u16, self.height as u16, rgb, 20);
                frame.delay = (100.0 / self.fps).round().max(2.0) as u16;
                enc.write_frame(&frame)?;
            }
            Sink::Ffmpeg(child) => {
                child.stdin.as_mut().ok_or_else(|| anyhow!("ffmpeg stdin closed"))?.write_all(rgb)?;
            }
        }
        Ok(())
    }

    pub fn finish(self) -> Result<()> {
        match self.sink {
            Sink::Gif(enc) => {
                enc.into_inner()?.flush()?;
            }
            Sink::Ffmpeg(mut child) => {
                drop(child.stdin.take());
                let st = child.wait()?;
                if !st.success() {
                    bail!("ffmpeg failed: {st}");
                }
            }
        }
        Ok(())
    }
}

/// Place several equally sized frames side by side (H x (W*n) x 3).
pub fn hconcat(frames: &[&[u8]], width: usize, height: usize) -> Vec<u8> {
    let n = frames.len();
    let mut out = vec![0u8; height * width * n * 3];
    for y in 0..height {
        for (k, f) in frames.iter().enumerate() {
            let src = &f[y * width * 3..(y + 1) * width * 3];
            let dst = (y * width * n + k * width) * 3;
            out[dst..dst + width * 3].copy_from_slice(src);
        }
    }
    out
}
