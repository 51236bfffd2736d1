use act_sim::{env::*, scripted::*, Task};
fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let task = Task::from_name(&args[1])?;
    let n: u64 = args[2].parse()?;
    let verbose = args.len() > 3;
    let mut ee = EeEnv::new(task, &[], 480, 640)?;
    let mut joint = JointEnv::new(task, &[], 480, 640)?;
    let mut stages_ee = [0; 5];
    let mut stages = [0; 5];
    for seed in 0..n {
        let ep = record_episode(&mut ee, &mut joint, seed)?;
        stages_ee[ep.ee_max_reward as usize] += 1;
        stages[ep.max_reward as usize] += 1;
        if verbose {
            println!("seed {seed}: ee max {} replay max {} pose {:?}", ep.ee_max_reward, ep.max_reward, &ep.object_pose[..3]);
            let r: String = ep.rewards.iter().step_by(10).map(|r| char::from(b'0' + *r as u8)).collect();
            println!("  {r}");
        }
    }
    println!("ee max-reward histogram {:?}; replay {:?}", stages_ee, stages);
    Ok(())
}
