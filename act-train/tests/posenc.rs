//! The 2-D sine position embedding (ACT_SPEC.md 1.4) and the CVAE sinusoid table (section 2)
//! against hand computations.

mod common;
use common::vals;

use act_train::model::posenc::{sine_pos_embed_2d, sinusoid_table_tensor};
use std::f64::consts::PI;
use tch::Device;

#[test]
fn sine_embedding_2x3_hand_values() {
    // dim_model 8 -> 4 features per axis; dim_t = [1, 1, 10000^(2/4) = 100, 100].
    let (h, w, dim) = (2i64, 3i64, 8i64);
    let pe = sine_pos_embed_2d(h, w, dim, Device::Cpu);
    assert_eq!(pe.size(), vec![1, 8, 2, 3]);
    let v = vals(&pe);
    let at = |c: usize, y: usize, x: usize| v[(c * 2 + y) * 3 + x] as f64;

    // Values worked out by hand (eps 1e-6 is below f32 resolution for these checks):
    // row 1 (y=1): y_n = 1/2 * 2pi = pi; row 2: 2pi. col 1: x_n = 2pi/3, col 2: 4pi/3, col 3: 2pi.
    let tol = 1e-5;
    let checks = [
        (0, 0, 0, 0.0),                      // sin(pi)
        (1, 0, 2, -1.0),                     // cos(pi), independent of x
        (1, 1, 0, 1.0),                      // cos(2pi)
        (2, 0, 1, (PI / 100.0).sin()),       // sin(pi/100) = 0.0314108
        (3, 1, 1, (2.0 * PI / 100.0).cos()), // cos(2pi/100) = 0.9980267
        (4, 0, 0, (2.0 * PI / 3.0).sin()),   // sin(2pi/3) = 0.8660254
        (5, 1, 1, -0.5),                     // cos(4pi/3)
        (4, 1, 2, 0.0),                      // sin(2pi), independent of y
        (6, 0, 2, (2.0 * PI / 100.0).sin()), // sin(2pi/100) = 0.0627905
        (7, 0, 0, (2.0 * PI / 300.0).cos()), // cos(2pi/300)
    ];
    for (c, y, x, want) in checks {
        let got = at(c, y, x);
        assert!(
            (got - want).abs() < tol,
            "channel {c} row {y} col {x}: got {got}, want {want}"
        );
    }
    // Literal numbers for a few of them, so the check does not rely on the formula above alone.
    assert!((at(4, 0, 0) - 0.8660254).abs() < tol);
    assert!((at(2, 0, 1) - 0.0314108).abs() < tol);
    assert!((at(3, 1, 1) - 0.9980267).abs() < tol);

    // Every entry against the formula (with the eps).
    let npf = (dim / 2) as usize;
    for c in 0..dim as usize {
        for y in 0..2 {
            for x in 0..3 {
                let (p, i) = if c < npf {
                    ((y + 1) as f64 / (2.0 + 1e-6) * 2.0 * PI, c)
                } else {
                    ((x + 1) as f64 / (3.0 + 1e-6) * 2.0 * PI, c - npf)
                };
                let dim_t = 10000f64.powf(2.0 * (i / 2) as f64 / npf as f64);
                let want = if i % 2 == 0 {
                    (p / dim_t).sin()
                } else {
                    (p / dim_t).cos()
                };
                assert!((at(c, y, x) - want).abs() < 1e-5, "c {c} y {y} x {x}");
            }
        }
    }
}

#[test]
fn sinusoid_table_hand_values() {
    let t = sinusoid_table_tensor(5, 6);
    assert_eq!(t.size(), vec![1, 5, 6]);
    let v = vals(&t);
    let at = |p: usize, j: usize| v[p * 6 + j] as f64;
    // position 0: sin(0) = 0 on even, cos(0) = 1 on odd columns
    for j in 0..6 {
        assert!((at(0, j) - if j % 2 == 0 { 0.0 } else { 1.0 }).abs() < 1e-7);
    }
    // position 1: angle = 1 / 10000^(2 floor(j/2)/6): j=0,1 -> 1; j=2,3 -> 10000^(-1/3) = 0.0464159; j=4,5 -> 0.0021544
    assert!((at(1, 0) - 1f64.sin()).abs() < 1e-6); // 0.8414710
    assert!((at(1, 1) - 0.5403023).abs() < 1e-6);
    assert!((at(1, 2) - 0.0463992).abs() < 1e-6); // sin(0.0464159)
    assert!((at(1, 5) - (0.0021544347f64).cos()).abs() < 1e-6);
    assert!((at(3, 2) - (3.0 * 0.0464159f64).sin()).abs() < 1e-5);
}
