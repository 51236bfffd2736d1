use act_sim::{env::*, Task};
fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let task = Task::from_name(&args[1])?;
    let cams: Vec<String> = act_sim::scene::CAMERAS.iter().map(|s| s.to_string()).collect();
    let mut env = JointEnv::new(task, &cams, 480, 640)?;
    let t0 = std::time::Instant::now();
    let obs = env.reset(0)?;
    println!("reset+render {:?}", t0.elapsed());
    for (name, img) in &obs.images {
        let f = std::fs::File::create(format!("/tmp/snap_{}_{name}.png", args[1]))?;
        let mut e = png::Encoder::new(std::io::BufWriter::new(f), 640, 480);
        e.set_color(png::ColorType::Rgb); e.set_depth(png::BitDepth::Eight);
        e.write_header()?.write_image_data(img)?;
    }
    let t0 = std::time::Instant::now();
    let a = [0.0f32, -0.96, 1.16, 0.0, -0.3, 0.0, 0.0, 0.0, -0.96, 1.16, 0.0, -0.3, 0.0, 0.0];
    for _ in 0..20 { env.step(&a)?; }
    println!("20 steps x 5 cams {:?}", t0.elapsed());
    Ok(())
}
