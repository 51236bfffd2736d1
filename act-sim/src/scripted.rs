//! Scripted demonstrations: waypoint policies in the end-effector environment, replayed in the
//! joint-space environment (as ACT's record_sim_episodes.py).

use anyhow::Result;

use crate::env::{EeEnv, JointEnv, MOCAP_START_LEFT, MOCAP_START_RIGHT, Observation};
use crate::{Rng, Task};

pub type Quat = [f64; 4];

pub fn quat_mul(a: Quat, b: Quat) -> Quat {
    [
        a[0] * b[0] - a[1] * b[1] - a[2] * b[2] - a[3] * b[3],
        a[0] * b[1] + a[1] * b[0] + a[2] * b[3] - a[3] * b[2],
        a[0] * b[2] - a[1] * b[3] + a[2] * b[0] + a[3] * b[1],
        a[0] * b[3] + a[1] * b[2] - a[2] * b[1] + a[3] * b[0],
    ]
}

pub fn quat_axis_deg(axis: [f64; 3], deg: f64) -> Quat {
    let h = deg.to_radians() / 2.0;
    let (s, c) = h.sin_cos();
    [c, axis[0] * s, axis[1] * s, axis[2] * s]
}

#[derive(Clone, Copy, Debug)]
pub struct Waypoint {
    pub t: usize,
    pub xyz: [f64; 3],
    pub quat: Quat,
    pub gripper: f64,
}

fn wp(t: usize, xyz: [f64; 3], quat: Quat, gripper: f64) -> Waypoint {
    Waypoint { t, xyz, quat, gripper }
}

fn add(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

/// Linear interpolation between the waypoints around time `t` (quaternion lerped, normalised).
pub fn interpolate(traj: &[Waypoint], t: usize) -> Waypoint {
    let last = traj.len() - 1;
    let mut i = 0;
    while i < last && traj[i + 1].t <= t {
        i += 1;
    }
    if i == last {
        return traj[last];
    }
    let (a, b) = (traj[i], traj[i + 1]);
    let f = (t - a.t) as f64 / (b.t - a.t) as f64;
    let lerp = |x: f64, y: f64| x + (y - x) * f;
    let mut q: Quat = std::array::from_fn(|k| lerp(a.quat[k], b.quat[k]));
    let n = q.iter().map(|v| v * v).sum::<f64>().sqrt();
    for v in &mut q {
        *v /= n;
    }
    Waypoint {
        t,
        xyz: [lerp(a.xyz[0], b.xyz[0]), lerp(a.xyz[1], b.xyz[1]), lerp(a.xyz[2], b.xyz[2])],
        quat: q,
        gripper: lerp(a.gripper, b.gripper),
    }
}

/// Left and right waypoint lists of the task's scripted policy for the given object pose.
pub fn trajectories(task: Task, object_pose: &[f64]) -> (Vec<Waypoint>, Vec<Waypoint>) {
    let id = [1.0, 0.0, 0.0, 0.0];
    let (init_l, init_r) = (MOCAP_START_LEFT, MOCAP_START_RIGHT);
    match task {
        Task::TransferCube => {
            let cube = [object_pose[0], object_pose[1], object_pose[2]];
            let pick = quat_mul(id, quat_axis_deg([0.0, 1.0, 0.0], -60.0));
            let meet_l = quat_axis_deg([1.0, 0.0, 0.0], 90.0);
            let meet = [0.0, 0.5, 0.25];
            let left = vec![
                wp(0, init_l, id, 0.0),
                wp(100, add(meet, [-0.1, 0.0, -0.02]), meet_l, 1.0),
                wp(260, add(meet, [0.02, 0.0, -0.02]), meet_l, 1.0),
                wp(310, add(meet, [0.02, 0.0, -0.02]), meet_l, 0.0),
                wp(360, add(meet, [-0.1, 0.0, -0.02]), meet_l, 0.0),
                wp(400, add(meet, [-0.1, 0.0, -0.02]), meet_l, 0.0),
            ];
            let right = vec![
                wp(0, init_r, id, 0.0),
                wp(90, add(cube, [0.0, 0.0, 0.08]), pick, 1.0),
                wp(130, add(cube, [0.0, 0.0, -0.015]), pick, 1.0),
                wp(170, add(cube, [0.0, 0.0, -0.015]), pick, 0.0),
                wp(200, add(meet, [0.05, 0.0, 0.0]), pick, 0.0),
                wp(220, meet, pick, 0.0),
                wp(310, meet, pick, 1.0),
                wp(360, add(meet, [0.1, 0.0, 0.0]), pick, 1.0),
                wp(400, add(meet, [0.1, 0.0, 0.0]), pick, 1.0),
            ];
            (left, right)
        }
        Task::Insertion => {
            let peg = [object_pose[0], object_pose[1], object_pose[2]];
            let socket = [object_pose[7], object_pose[8], object_pose[9]];
            let pick_r = quat_mul(id, quat_axis_deg([0.0, 1.0, 0.0], -60.0));
            let pick_l = quat_mul(id, quat_axis_deg([0.0, 1.0, 0.0], 60.0));
            let meet = [0.0, 0.5, 0.15];
            let lift = 0.00715;
            let left = vec![
                wp(0, init_l, id, 0.0),
                wp(120, add(socket, [0.0, 0.0, 0.08]), pick_l, 1.0),
                wp(170, add(socket, [0.0, 0.0, -0.03]), pick_l, 1.0),
                wp(220, add(socket, [0.0, 0.0, -0.03]), pick_l, 0.0),
                wp(285, add(meet, [-0.1, 0.0, 0.0]), pick_l, 0.0),
                wp(340, add(meet, [-0.05, 0.0, 0.0]), pick_l, 0.0),
                wp(400, add(meet, [-0.05, 0.0, 0.0]), pick_l, 0.0),
            ];
            let right = vec![
                wp(0, init_r, id, 0.0),
                wp(120, add(peg, [0.0, 0.0, 0.08]), pick_r, 1.0),
                wp(170, add(peg, [0.0, 0.0, -0.03]), pick_r, 1.0),
                wp(220, add(peg, [0.0, 0.0, -0.03]), pick_r, 0.0),
                wp(285, add(meet, [0.1, 0.0, lift]), pick_r, 0.0),
                wp(340, add(meet, [0.05, 0.0, lift]), pick_r, 0.0),
                wp(400, add(meet, [0.05, 0.0, lift]), pick_r, 0.0),
            ];
            (left, right)
        }
    }
}

/// EE action (16 values) of the scripted policy at step `t`.
pub fn scripted_action(left: &[Waypoint], right: &[Waypoint], t: usize) -> [f64; 16] {
    let l = interpolate(left, t);
    let r = interpolate(right, t);
    let mut a = [0.0; 16];
    a[0..3].copy_from_slice(&l.xyz);
    a[3..7].copy_from_slice(&l.quat);
    a[7] = l.gripper;
    a[8..11].copy_from_slice(&r.xyz);
    a[11..15].copy_from_slice(&r.quat);
    a[15] = r.gripper;
    a
}

/// A recorded scripted episode (T = episode length).
pub struct Episode {
    pub task: Task,
    pub object_pose: Vec<f64>,
    /// Observations of the joint-space replay, T of them (obs before each action).
    pub qpos: Vec<[f32; 14]>,
    pub qvel: Vec<[f32; 14]>,
    /// (camera, T frames of H*W*3) in the requested order.
    pub images: Vec<(String, Vec<Vec<u8>>)>,
    pub actions: Vec<[f32; 14]>,
    /// Rewards of the replay after each of its steps.
    pub rewards: Vec<u32>,
    /// (height, width) of the images, when there are any.
    pub image_hw: Option<(usize, usize)>,
    pub ee_max_reward: u32,
    pub max_reward: u32,
}

impl Episode {
    pub fn success(&self) -> bool {
        self.max_reward >= self.task.max_reward()
    }
}

/// Roll the scripted policy out in the EE environment; returns the joint trajectory (qpos with the
/// commanded, normalised gripper), one entry per observation (episode_len + 1), and the max reward.
pub fn ee_rollout(ee: &mut EeEnv, task: Task, object_pose: &[f64]) -> Result<(Vec<[f32; 14]>, u32)> {
    let (left, right) = trajectories(task, object_pose);
    let obs = ee.reset_with_object_pose(object_pose)?;
    let mut traj = vec![joint_from(&obs, ee.commanded_grippers())];
    let mut max_r = 0;
    for t in 0..task.episode_len() {
        let a = scripted_action(&left, &right, t);
        let s = ee.step(&a)?;
        max_r = max_r.max(s.reward);
        traj.push(joint_from(&s.obs, ee.commanded_grippers()));
    }
    Ok((traj, max_r))
}

fn joint_from(obs: &Observation, grip: [f64; 2]) -> [f32; 14] {
    let mut j = obs.qpos;
    j[6] = grip[0] as f32;
    j[13] = grip[1] as f32;
    j
}

/// Record one scripted episode: EE rollout, then replay in the joint environment with the same
/// object pose. `on_frame` is not needed: images are kept in the returned episode.
pub fn record_episode(ee: &mut EeEnv, joint: &mut JointEnv, seed: u64) -> Result<Episode> {
    let task = joint.sim.task;
    let object_pose = crate::env::sample_object_pose(task, &mut Rng::new(seed));
    let (traj, ee_max_reward) = ee_rollout(ee, task, &object_pose)?;
    let t_len = task.episode_len();
    let obs0 = joint.reset_with_object_pose(&object_pose)?;
    let mut qpos = Vec::with_capacity(t_len);
    let mut qvel = Vec::with_capacity(t_len);
    let mut images: Vec<(String, Vec<Vec<u8>>)> =
        obs0.images.iter().map(|(n, _)| (n.clone(), Vec::with_capacity(t_len))).collect();
    let mut push = |o: Observation, qpos: &mut Vec<[f32; 14]>, qvel: &mut Vec<[f32; 14]>| {
        qpos.push(o.qpos);
        qvel.push(o.qvel);
        for (k, (_, img)) in o.images.into_iter().enumerate() {
            images[k].1.push(img);
        }
    };
    push(obs0, &mut qpos, &mut qvel);
    let mut rewards = Vec::with_capacity(traj.len());
    // As the original: replay every entry of the joint trajectory, keep T observation/action pairs.
    for (t, a) in traj.iter().enumerate() {
        let s = joint.step(a)?;
        rewards.push(s.reward);
        if t + 1 < t_len {
            push(s.obs, &mut qpos, &mut qvel);
        }
    }
    let max_reward = rewards.iter().copied().max().unwrap_or(0);
    let actions = traj[..t_len].to_vec();
    let image_hw = if images.is_empty() { None } else { joint.sim.image_hw() };
    Ok(Episode { task, object_pose, qpos, qvel, images, actions, rewards, image_hw, ee_max_reward, max_reward })
}
