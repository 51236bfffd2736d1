//! The training-curve PNG people look at: labelled (the font setup.sh installs is found and
//! used), and with the success panel once snapshots have been evaluated.
use act_train::loss::LossRow;
use act_train::plot::{SuccessPoint, text_font, write_loss_curve, write_training_curves};

fn history() -> Vec<LossRow> {
    let mut h = Vec::new();
    for step in 0..3000u64 {
        let loss = 2.0 * (-(step as f64) / 800.0).exp() + 0.05 + 0.01 * ((step % 7) as f64);
        h.push(LossRow { step, epoch: step / 40, val: false, l1: loss * 0.8, kl: loss * 0.02, loss });
        if step % 500 == 499 {
            h.push(LossRow { step, epoch: step / 40, val: true, l1: loss, kl: 0.0, loss: loss * 1.1 });
        }
    }
    h
}

fn read_png(path: &std::path::Path) -> (usize, usize, Vec<u8>) {
    let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut r = dec.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    (info.width as usize, info.height as usize, buf)
}

/// Dark pixels (text, axis ticks; anti-aliased text is partly grey) in [x0, x1) x [y0, y1).
fn dark_pixels(img: &(usize, usize, Vec<u8>), x0: usize, x1: usize, y0: usize, y1: usize) -> usize {
    let (w, _, buf) = img;
    let mut n = 0;
    for y in y0..y1 {
        for x in x0..x1 {
            let p = &buf[(y * w + x) * 3..(y * w + x) * 3 + 3];
            n += (p.iter().map(|&v| v as u32).sum::<u32>() < 384) as usize;
        }
    }
    n
}

fn color_pixels(img: &(usize, usize, Vec<u8>), rgb: [u8; 3], y0: usize, y1: usize) -> usize {
    let (w, _, buf) = img;
    (y0 * w..y1 * w).filter(|i| buf[i * 3..i * 3 + 3] == rgb).count()
}

#[test]
fn the_loss_curve_has_text_and_the_success_panel_shows_each_series() {
    text_font().expect("the plots' font (fonts-dejavu-core, installed by scripts/setup.sh)");
    let dir = tempfile::tempdir().unwrap();
    let loss_only = dir.path().join("loss.png");
    write_loss_curve(&loss_only, &history()).unwrap();
    let img = read_png(&loss_only);
    assert_eq!((img.0, img.1), (960, 540));
    // Title above the chart, tick labels and the axis name left of it: text needs the font.
    assert!(dark_pixels(&img, 300, 660, 0, 35) > 100, "no title drawn");
    assert!(dark_pixels(&img, 0, 80, 60, 480) > 300, "no y-axis labels drawn");
    assert!(dark_pixels(&img, 100, 940, 495, 540) > 300, "no x-axis labels drawn");

    let p = |step, series: &str, k| SuccessPoint { step, series: series.into(), successes: k, rollouts: 20, lo_percent: 10.0, hi_percent: 60.0 };
    let pts = vec![p(1000, "chunk execution", 4), p(2000, "chunk execution", 9), p(1000, "temporal ensembling", 3), p(3000, "temporal ensembling", 12)];
    let both = dir.path().join("both.png");
    write_training_curves(&both, &history(), &pts).unwrap();
    let img = read_png(&both);
    assert_eq!((img.0, img.1), (960, 540 + 380));
    // Each series in its own colour, in the lower panel only.
    for rgb in [[0, 120, 60], [200, 110, 0]] {
        assert!(color_pixels(&img, rgb, 540, 920) > 50, "series {rgb:?} not drawn in the success panel");
        assert_eq!(color_pixels(&img, rgb, 0, 540), 0, "series {rgb:?} leaked into the loss panel");
    }
    assert!(dark_pixels(&img, 0, 80, 600, 860) > 200, "no success-axis labels drawn");
}

#[test]
fn losses_csv_reads_back_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("losses.csv");
    let h = history();
    act_train::loss::write_losses_csv(&path, &h).unwrap();
    assert_eq!(act_train::loss::read_losses_csv(&path).unwrap(), h);
    std::fs::write(&path, "step,loss\n1,2\n").unwrap();
    assert!(act_train::loss::read_losses_csv(&path).unwrap_err().to_string().contains("not a losses.csv"));
    std::fs::write(&path, "step,epoch,split,l1,kl,loss\n1,0,test,1,1,1\n").unwrap();
    assert!(format!("{:#}", act_train::loss::read_losses_csv(&path).unwrap_err()).contains("train or val"));
}
