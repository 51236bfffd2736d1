//! Success over training time: the policies `act-train train --snapshot-every N` exported to
//! `CKPT_DIR/snapshots/step_<N>.safetensors`, each evaluated over the same rollouts, written to
//! `CKPT_DIR/success_vs_step.csv` and drawn under the loss curve (`loss_curve.png`).

use std::path::{Path, PathBuf};

use act_train::plot::SuccessPoint;
use anyhow::{Context, Result, bail};

use crate::stats::{Z95, wilson_interval};

pub const SUCCESS_CSV: &str = "success_vs_step.csv";
const HEADER: &str = "step,series,rollouts,successes,rate_percent,wilson95_lo_percent,wilson95_hi_percent";

/// An exported snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub step: u64,
    pub path: PathBuf,
}

/// The snapshots in `ckpt_dir/snapshots`, by step.
pub fn list_snapshots(ckpt_dir: &Path) -> Result<Vec<Snapshot>> {
    let dir = ckpt_dir.join(act_train::train::SNAPSHOT_DIR);
    let entries = std::fs::read_dir(&dir).with_context(|| {
        format!("reading {} (train with --snapshot-every N to write snapshots)", dir.display())
    })?;
    let mut out = Vec::new();
    for e in entries {
        let e = e.with_context(|| format!("reading {}", dir.display()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(step) = act_train::train::snapshot_step(&name) {
            out.push(Snapshot { step, path: e.path() });
        }
    }
    if out.is_empty() {
        bail!("{} holds no step_<N>.safetensors snapshots", dir.display());
    }
    out.sort_by_key(|s| s.step);
    Ok(out)
}

/// A point from `successes` of `rollouts`, with its Wilson 95 % interval.
pub fn point(step: u64, series: &str, successes: usize, rollouts: usize) -> SuccessPoint {
    let (lo, hi) = wilson_interval(successes, rollouts, Z95);
    SuccessPoint { step, series: series.to_string(), successes, rollouts, lo_percent: 100.0 * lo, hi_percent: 100.0 * hi }
}

/// Reads a CSV `write_success_csv` wrote; a missing file is no points.
pub fn read_success_csv(path: &Path) -> Result<Vec<SuccessPoint>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text = act_core::fs::read_regular_file(path, 16 << 20, "16 MiB").with_context(|| format!("reading {}", path.display()))?;
    let text = String::from_utf8(text).with_context(|| format!("{} is not UTF-8", path.display()))?;
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        bail!("{}: not a success CSV (expected the header {HEADER:?})", path.display());
    }
    let mut out = Vec::new();
    for (i, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        let bad = || format!("{} line {}: {line:?}", path.display(), i + 2);
        if f.len() != 7 {
            bail!("{}: expected 7 fields", bad());
        }
        let step: u64 = f[0].parse().with_context(bad)?;
        let rollouts: usize = f[2].parse().with_context(bad)?;
        let successes: usize = f[3].parse().with_context(bad)?;
        if successes > rollouts {
            bail!("{}: more successes than rollouts", bad());
        }
        out.push(point(step, f[1], successes, rollouts));
    }
    Ok(out)
}

/// Writes the points (sorted by series, then step) atomically.
pub fn write_success_csv(path: &Path, points: &[SuccessPoint]) -> Result<()> {
    let mut pts: Vec<&SuccessPoint> = points.iter().collect();
    pts.sort_by(|a, b| a.series.cmp(&b.series).then(a.step.cmp(&b.step)));
    let mut s = format!("{HEADER}\n");
    for p in pts {
        if p.series.contains([',', '\n']) {
            bail!("series name {:?} cannot be written to a CSV field", p.series);
        }
        s.push_str(&format!(
            "{},{},{},{},{:.1},{:.1},{:.1}\n",
            p.step,
            p.series,
            p.rollouts,
            p.successes,
            100.0 * p.successes as f64 / p.rollouts.max(1) as f64,
            p.lo_percent,
            p.hi_percent
        ));
    }
    act_train::export::write_atomic(path, s.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

/// Replaces the points of `new`'s series and steps in `old`, keeping the rest.
pub fn merge(old: Vec<SuccessPoint>, new: &[SuccessPoint]) -> Vec<SuccessPoint> {
    let mut out: Vec<SuccessPoint> =
        old.into_iter().filter(|o| !new.iter().any(|n| n.series == o.series && n.step == o.step)).collect();
    out.extend_from_slice(new);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_round_trips_and_merges_by_series_and_step() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(SUCCESS_CSV);
        assert!(read_success_csv(&p).unwrap().is_empty());
        let a = vec![point(1000, "chunk execution", 3, 20), point(2000, "chunk execution", 9, 20)];
        write_success_csv(&p, &a).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        // 9/20: Wilson 95 % (25.8 %, 65.8 %) by hand: centre (0.45 + 0.096) / 1.192 = 0.4580, half 0.1999.
        assert!(text.contains("2000,chunk execution,20,9,45.0,25.8,65.8\n"), "{text}");
        let merged = merge(read_success_csv(&p).unwrap(), &[point(2000, "chunk execution", 10, 20), point(1000, "temporal ensembling", 4, 20)]);
        assert_eq!(merged.len(), 3);
        assert!(merged.contains(&point(2000, "chunk execution", 10, 20)));
        assert!(!merged.contains(&point(2000, "chunk execution", 9, 20)));
        std::fs::write(&p, "step,rate\n1,2\n").unwrap();
        assert!(read_success_csv(&p).unwrap_err().to_string().contains("not a success CSV"));
        std::fs::write(&p, format!("{HEADER}\n5,x,10,11,0,0,0\n")).unwrap();
        assert!(format!("{:#}", read_success_csv(&p).unwrap_err()).contains("more successes than rollouts"));
    }

    #[test]
    fn snapshots_are_listed_by_step_and_their_absence_is_explained() {
        let dir = tempfile::tempdir().unwrap();
        let err = list_snapshots(dir.path()).unwrap_err().to_string();
        assert!(err.contains("--snapshot-every"), "{err}");
        let s = dir.path().join("snapshots");
        std::fs::create_dir(&s).unwrap();
        for n in ["step_002000.safetensors", "step_000500.safetensors", "notes.txt", "step_x.safetensors"] {
            std::fs::write(s.join(n), b"").unwrap();
        }
        let l = list_snapshots(dir.path()).unwrap();
        assert_eq!(l.iter().map(|s| s.step).collect::<Vec<_>>(), vec![500, 2000]);
    }
}
