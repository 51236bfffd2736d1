use act_sim::{env::*, scripted::*, Task, Rng};
fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let task = Task::from_name(&args[1])?;
    let seed: u64 = args[2].parse()?;
    let every: usize = args.get(3).map(|s| s.parse().unwrap()).unwrap_or(10);
    let mut ee = EeEnv::new(task, &[], 480, 640)?;
    let pose = sample_object_pose(task, &mut Rng::new(seed));
    let (l, r) = trajectories(task, &pose);
    ee.reset_with_object_pose(&pose)?;
    for t in 0..400 {
        let a = scripted_action(&l, &r, t);
        let s = ee.step(&a)?;
        if t % every == 0 {
            let q = ee.sim.data.qpos();
            let el = ee.sim.ee_pos(0); let er = ee.sim.ee_pos(1);
            println!("t {t:3} r {} obj [{:.3} {:.3} {:.3}] eeL [{:.3} {:.3} {:.3}] mL [{:.3} {:.3} {:.3}] eeR [{:.3} {:.3} {:.3}] mR [{:.3} {:.3} {:.3}] fL {:.4} fR {:.4} ncon {} sock [{:.3} {:.3} {:.3}]",
              s.reward, q[16], q[17], q[18], el[0], el[1], el[2], a[0], a[1], a[2], er[0], er[1], er[2], a[8], a[9], a[10], q[6], q[14], ee.sim.data.contact().len(), q.get(23).copied().unwrap_or(0.0), q.get(24).copied().unwrap_or(0.0), q.get(25).copied().unwrap_or(0.0));
        }
    }
    Ok(())
}
