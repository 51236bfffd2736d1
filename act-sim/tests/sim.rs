//! Fast checks of the simulator, rewards, scripted policies, episode files and rendering.

use act_sim::dataset::{EpisodeFile, write_episode};
use act_sim::env::{EeEnv, JointEnv, sample_object_pose};
use act_sim::scripted::record_episode;
use act_sim::{Rng, Task};

fn geom_pos(env: &JointEnv, name: &str) -> [f64; 3] {
    let id = env.sim.model().geom(name).unwrap().id;
    env.sim.data.geom_xpos()[id]
}

/// Move a free body (qpos offset `adr`) to `pos` and recompute contacts.
fn place(env: &mut JointEnv, adr: usize, pos: [f64; 3]) {
    env.sim.data.qpos_mut()[adr..adr + 3].copy_from_slice(&pos);
}

fn reward_now(env: &mut JointEnv) -> u32 {
    env.sim.data.forward();
    env.sim.reward()
}

#[test]
fn transfer_cube_reward_stages_on_hand_placed_states() {
    let mut env = JointEnv::new(Task::TransferCube, &[], 48, 64).unwrap();
    env.reset(0).unwrap();
    // Cube resting on the table, untouched.
    place(&mut env, 16, [0.1, 0.5, 0.02]);
    assert_eq!(reward_now(&mut env), 0);
    // Cube in the air, pressed against the right gripper's finger: touched by right, off the table.
    let rf = geom_pos(&env, "right/left_finger");
    place(&mut env, 16, [rf[0], rf[1] + 0.01, rf[2]]);
    assert_eq!(reward_now(&mut env), 2);
    // Cube against the left gripper's finger, in the air.
    let lf = geom_pos(&env, "left/right_finger");
    place(&mut env, 16, [lf[0], lf[1] - 0.01, lf[2]]);
    assert_eq!(reward_now(&mut env), 4);
    // Cube on the table far from both grippers again.
    place(&mut env, 16, [0.0, 0.6, 0.02]);
    assert_eq!(reward_now(&mut env), 0);
}

#[test]
fn insertion_reward_stages_on_hand_placed_states() {
    let mut env = JointEnv::new(Task::Insertion, &[], 48, 64).unwrap();
    env.reset(0).unwrap();
    // Peg qpos at 16, socket at 23. Both on the table, apart: 0.
    place(&mut env, 16, [0.15, 0.5, 0.01]);
    place(&mut env, 23, [-0.15, 0.5, 0.018]);
    assert_eq!(reward_now(&mut env), 0);
    // Peg against the right gripper finger, socket side plate against the left finger, in the air: 2.
    let rf = geom_pos(&env, "right/left_finger");
    place(&mut env, 16, [rf[0], rf[1] + 0.005, rf[2]]);
    let lf = geom_pos(&env, "left/left_finger");
    // socket-4 is at local (0.03, -0.0165, 0): put it onto the left finger pad.
    place(&mut env, 23, [lf[0] - 0.03, lf[1] + 0.0165, lf[2]]);
    assert_eq!(reward_now(&mut env), 2);
    // Socket in the air away from the robots; peg inside the tube against the side plate
    // socket-3 but clear of the pin (tube local x -0.02..0.08, pin 0.055..0.065): 3.
    place(&mut env, 23, [0.0, 0.2, 0.4]);
    place(&mut env, 16, [0.135, 0.2 + 0.006, 0.4]);
    assert_eq!(reward_now(&mut env), 3);
    // Peg pushed onto the pin: 4.
    place(&mut env, 16, [0.12, 0.2, 0.4]);
    assert_eq!(reward_now(&mut env), 4);
}

#[test]
fn reset_is_deterministic_under_a_seed() {
    let mut a = JointEnv::new(Task::Insertion, &[], 48, 64).unwrap();
    let mut b = JointEnv::new(Task::Insertion, &[], 48, 64).unwrap();
    let oa = a.reset(7).unwrap();
    let ob = b.reset(7).unwrap();
    assert_eq!(oa.env_state, ob.env_state);
    assert_eq!(oa.qpos, ob.qpos);
    let oc = b.reset(8).unwrap();
    assert_ne!(oa.env_state, oc.env_state);
    // Object distribution of the spec.
    for s in 0..200 {
        let p = sample_object_pose(Task::Insertion, &mut Rng::new(s));
        assert!((0.1..0.2).contains(&p[0]) && (0.4..0.6).contains(&p[1]) && p[2] == 0.05);
        assert!((-0.2..-0.1).contains(&p[7]) && (0.4..0.6).contains(&p[8]));
        let c = sample_object_pose(Task::TransferCube, &mut Rng::new(s));
        assert!((0.0..0.2).contains(&c[0]) && (0.4..0.6).contains(&c[1]));
    }
    // The same actions give the same trajectory.
    let act = [0.1f32, -0.9, 1.1, 0.0, -0.2, 0.0, 1.0, -0.1, -0.9, 1.1, 0.0, -0.2, 0.0, 0.0];
    a.reset(3).unwrap();
    b.reset(3).unwrap();
    for _ in 0..20 {
        let ra = a.step(&act).unwrap();
        let rb = b.step(&act).unwrap();
        assert_eq!(ra.obs.qpos, rb.obs.qpos);
        assert_eq!(ra.obs.qvel, rb.obs.qvel);
        assert_eq!(ra.reward, rb.reward);
    }
}

#[test]
fn scripted_episodes_succeed_and_are_deterministic() {
    for task in [Task::TransferCube, Task::Insertion] {
        let mut ee = EeEnv::new(task, &[], 48, 64).unwrap();
        let mut joint = JointEnv::new(task, &[], 48, 64).unwrap();
        for seed in 0..3 {
            let ep = record_episode(&mut ee, &mut joint, seed).unwrap();
            assert_eq!(ep.qpos.len(), 400);
            assert_eq!(ep.actions.len(), 400);
            assert!(ep.success(), "{task:?} seed {seed}: max reward {} (EE {})", ep.max_reward, ep.ee_max_reward);
            // Stages are passed in order: the first step with reward >= 1 precedes the first with 2.
            let first = |r: u32| ep.rewards.iter().position(|&x| x >= r).unwrap();
            assert!(first(1) <= first(2) && first(2) <= first(3) && first(3) <= first(4));
            if seed == 0 {
                let again = record_episode(&mut ee, &mut joint, 0).unwrap();
                assert_eq!(again.qpos, ep.qpos);
                assert_eq!(again.actions, ep.actions);
            }
        }
    }
}

#[test]
fn hdf5_layout_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (h, w) = (24, 32);
    let cams = vec!["top".to_string(), "left_wrist".to_string()];
    let mut ee = EeEnv::new(Task::TransferCube, &[], h, w).unwrap();
    let mut joint = JointEnv::new(Task::TransferCube, &cams, h, w).unwrap();
    let ep = record_episode(&mut ee, &mut joint, 1).unwrap();
    let path = dir.path().join("episode_0.hdf5");
    write_episode(&path, &ep).unwrap();
    // Only the final name remains (the temporary file was renamed).
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("episode_0.hdf5")]);

    let f = hdf5::File::open(&path).unwrap();
    assert!(f.attr("sim").unwrap().read_scalar::<bool>().unwrap());
    for (name, rows) in [("observations/qpos", &ep.qpos), ("observations/qvel", &ep.qvel), ("action", &ep.actions)] {
        let ds = f.dataset(name).unwrap();
        assert!(ds.dtype().unwrap().is::<f32>(), "{name} is not f32");
        assert_eq!(ds.shape(), vec![400, 14], "{name}");
        let a = ds.read_2d::<f32>().unwrap();
        for t in 0..400 {
            for j in 0..14 {
                assert_eq!(a[[t, j]], rows[t][j], "{name}[{t},{j}]");
            }
        }
    }
    for (k, cam) in cams.iter().enumerate() {
        let ds = f.dataset(&format!("observations/images/{cam}")).unwrap();
        assert!(ds.dtype().unwrap().is::<u8>());
        assert_eq!(ds.shape(), vec![400, h, w, 3]);
        assert_eq!(ds.chunk(), Some(vec![1, h, w, 3]));
        let frame: ndarray::Array3<u8> = ds.read_slice((123, .., .., ..)).unwrap();
        assert_eq!(frame.as_slice().unwrap(), ep.images[k].1[123].as_slice());
    }
    // Our reader agrees.
    let e = EpisodeFile::open(&path).unwrap();
    assert_eq!(e.sim, Some(true));
    assert_eq!(e.len(), 400);
    assert_eq!(e.camera_names(), vec!["left_wrist".to_string(), "top".to_string()]);
    assert_eq!(e.frame("top", 5).unwrap().2, ep.images[0].1[5]);
}

#[test]
fn corrupt_and_foreign_files_are_rejected_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.hdf5");
    std::fs::write(&junk, b"this is not hdf5").unwrap();
    let e = EpisodeFile::open(&junk).err().unwrap().to_string();
    assert!(e.contains("not a readable HDF5"), "{e}");
    let foreign = dir.path().join("foreign.hdf5");
    {
        let f = hdf5::File::create(&foreign).unwrap();
        f.new_dataset::<f64>().shape((3, 3)).create("something").unwrap();
    }
    let e = EpisodeFile::open(&foreign).err().unwrap().to_string();
    assert!(e.contains("not an ACT episode file"), "{e}");
    let e = EpisodeFile::open(&dir.path().join("missing.hdf5")).err().unwrap().to_string();
    assert!(e.contains("no such file"), "{e}");
}

#[test]
fn unknown_task_and_camera_are_errors() {
    assert!(Task::from_name("sim_folding").is_err());
    let e = JointEnv::new(Task::TransferCube, &["nope".to_string()], 48, 64).err().unwrap().to_string();
    assert!(e.contains("unknown camera"), "{e}");
    let twice = ["top".to_string(), "angle".to_string(), "top".to_string()];
    let e = JointEnv::new(Task::TransferCube, &twice, 48, 64).err().unwrap().to_string();
    assert!(e.contains("\"top\" is listed twice"), "{e}");
}

#[test]
fn top_camera_shows_the_red_cube_where_expected() {
    let (h, w) = (480, 640);
    let mut env = JointEnv::new(Task::TransferCube, &["top".to_string()], h, w).unwrap();
    let obs = env.reset(4).unwrap();
    let img = &obs.images[0].1;
    assert_eq!(img.len(), h * w * 3);
    // Project the cube centre (spawned at z 0.05) into the top camera (at (0, 0.6, 0.8),
    // looking down, image right = +x, image up = +y, fovy 78 degrees).
    let (x, y, z) = (obs.env_state[0], obs.env_state[1], obs.env_state[2]);
    let f = (h as f64 / 2.0) / (39f64.to_radians()).tan();
    let depth = 0.8 - z;
    let u = (w as f64 / 2.0 + f * x / depth).round() as usize;
    let v = (h as f64 / 2.0 - f * (y - 0.6) / depth).round() as usize;
    let px = &img[(v * w + u) * 3..(v * w + u) * 3 + 3];
    assert!(px[0] > 150 && px[1] < 80 && px[2] < 80, "pixel at ({u},{v}) is {px:?}, expected red");
    // A pixel on the bare table is not red, and the picture is not uniform.
    let t = &img[((h / 2 + 150) * w + w / 2) * 3..((h / 2 + 150) * w + w / 2) * 3 + 3];
    assert!(!(t[0] > 150 && t[1] < 80), "table pixel {t:?}");
    let red = img.chunks(3).filter(|p| p[0] > 150 && p[1] < 80 && p[2] < 80).count();
    assert!(red > 50 && red < 5000, "{red} red pixels");
}

/// `record --successful-only`: a failed scripted demonstration (decided here from the library's
/// own rollouts of the same seeds) is not written; the episodes are the successful seeds in order,
/// numbered without gaps, and the skipped seed is named.
#[test]
fn record_successful_only_skips_failed_demonstrations() {
    let task = Task::Insertion;
    let mut ee = EeEnv::new(task, &[], 24, 32).unwrap();
    let mut joint = JointEnv::new(task, &[], 24, 32).unwrap();
    // Seeds 5.. until two successes; the range must hold a failure for the check to mean anything.
    let mut outcomes = Vec::new();
    for seed in 5u64.. {
        let ep = record_episode(&mut ee, &mut joint, seed).unwrap();
        outcomes.push((seed, ep.success(), ep.qpos));
        if outcomes.iter().filter(|o| o.1).count() == 2 {
            break;
        }
        assert!(seed < 40, "no two successes in seeds 5..40");
    }
    let failed: Vec<u64> = outcomes.iter().filter(|o| !o.1).map(|o| o.0).collect();
    assert!(!failed.is_empty(), "seeds {:?} all succeed: pick a range with a failed demonstration", outcomes.iter().map(|o| o.0).collect::<Vec<_>>());

    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_act-sim"))
        .args(["record", "--task", "sim_insertion_scripted", "--num-episodes", "2", "--height", "24", "--width", "32", "--seed", "5", "--successful-only", "--dataset-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    for seed in &failed {
        let line = stdout.lines().find(|l| l.starts_with(&format!("seed {seed}: FAILURE")));
        assert!(line.is_some_and(|l| l.ends_with("not written (--successful-only)")), "seed {seed} not named as skipped:\n{stdout}");
    }
    let mut names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["episode_0.hdf5", "episode_1.hdf5"]);
    for (i, (seed, _, qpos)) in outcomes.iter().filter(|o| o.1).enumerate() {
        let f = hdf5::File::open(dir.path().join(format!("episode_{i}.hdf5"))).unwrap();
        let a = f.dataset("observations/qpos").unwrap().read_2d::<f32>().unwrap();
        assert!((0..task.episode_len()).all(|t| (0..14).all(|j| a[[t, j]] == qpos[t][j])), "episode_{i} is not seed {seed}");
    }
    // A directory already holding an episode beyond the count is refused, not mixed in.
    std::fs::write(dir.path().join("episode_7.hdf5"), b"old").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_act-sim"))
        .args(["record", "--task", "sim_insertion_scripted", "--num-episodes", "2", "--height", "24", "--width", "32", "--dataset-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("episode_7.hdf5") && stderr.contains("numbered 2 or above"), "{stderr}");
}
