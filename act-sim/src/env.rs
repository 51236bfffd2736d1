//! Joint-space and end-effector environments on the generated scene.

use anyhow::{Context, Result, anyhow, bail};
use mujoco_rs::prelude::*;
use mujoco_rs::renderer::MjRenderer;

use crate::scene::{self, CAMERAS};
use crate::{Rng, Task};

pub const DT: f64 = 0.02;
pub const SUBSTEPS: usize = 10;
pub const START_ARM_POSE: [f64; 16] = [
    0.0, -0.96, 1.16, 0.0, -0.3, 0.0, 0.02239, -0.02239, 0.0, -0.96, 1.16, 0.0, -0.3, 0.0, 0.02239,
    -0.02239,
];
pub const PUPPET_GRIPPER_POSITION_OPEN: f64 = 0.05800;
pub const PUPPET_GRIPPER_POSITION_CLOSE: f64 = 0.01844;
pub const PUPPET_GRIPPER_JOINT_OPEN: f64 = 1.4910;
pub const PUPPET_GRIPPER_JOINT_CLOSE: f64 = -0.6213;
pub const MASTER_GRIPPER_POSITION_OPEN: f64 = 0.02417;
pub const MASTER_GRIPPER_POSITION_CLOSE: f64 = 0.01244;
pub const MASTER_GRIPPER_JOINT_OPEN: f64 = 0.3083;
pub const MASTER_GRIPPER_JOINT_CLOSE: f64 = -0.6842;
/// Mocap start positions: the spec's gripper-link start positions moved `EE_OFFSET` along the
/// gripper to the end-effector point (as the original's "+0.1").
pub const MOCAP_START_LEFT: [f64; 3] = [-0.31718881 + scene::EE_OFFSET, 0.5, 0.29525084];
pub const MOCAP_START_RIGHT: [f64; 3] = [0.31718881 - scene::EE_OFFSET, 0.49999888, 0.29525084];

pub fn gripper_pos_normalize(x: f64) -> f64 {
    (x - PUPPET_GRIPPER_POSITION_CLOSE) / (PUPPET_GRIPPER_POSITION_OPEN - PUPPET_GRIPPER_POSITION_CLOSE)
}
pub fn gripper_pos_unnormalize(x: f64) -> f64 {
    x * (PUPPET_GRIPPER_POSITION_OPEN - PUPPET_GRIPPER_POSITION_CLOSE) + PUPPET_GRIPPER_POSITION_CLOSE
}
pub fn gripper_vel_normalize(v: f64) -> f64 {
    v / (PUPPET_GRIPPER_POSITION_OPEN - PUPPET_GRIPPER_POSITION_CLOSE)
}

/// One observation (after reset or after a step).
#[derive(Clone, Debug)]
pub struct Observation {
    pub qpos: [f32; 14],
    pub qvel: [f32; 14],
    /// (camera name, H*W*3 RGB bytes) per requested camera, in the requested order.
    pub images: Vec<(String, Vec<u8>)>,
    /// Object pose(s): cube [x y z qw qx qy qz]; insertion peg then socket (14 values).
    pub env_state: Vec<f64>,
}

#[derive(Clone, Debug)]
pub struct StepResult {
    pub obs: Observation,
    pub reward: u32,
}

struct Ids {
    table: i32,
    fingers_left: [i32; 2],
    fingers_right: [i32; 2],
    // transfer cube
    cube: i32,
    // insertion
    peg: i32,
    socket: [i32; 4],
    pin: i32,
}

fn geom_id(model: &MjModel, name: &str) -> i32 {
    model.geom(name).map(|g| g.id as i32).unwrap_or(-1)
}

/// Offscreen renderer for a set of the scene's cameras.
pub struct CameraRenderer {
    renderer: MjRenderer,
    cams: Vec<(String, usize)>,
    pub height: usize,
    pub width: usize,
}

impl CameraRenderer {
    pub fn new(model: &MjModel, cameras: &[String], height: usize, width: usize) -> Result<Self> {
        let mut cams = Vec::new();
        for (i, c) in cameras.iter().enumerate() {
            // Twice the same camera would write one HDF5 dataset twice (an error mid-recording).
            if cameras[..i].contains(c) {
                bail!("camera {c:?} is listed twice; each camera once");
            }
            let cam = model.camera(c).ok_or_else(|| {
                anyhow!("unknown camera {c:?}; the scene has {}", CAMERAS.join(", "))
            })?;
            cams.push((c.clone(), cam.id));
        }
        if height == 0 || width == 0 || height > 4096 || width > 4096 {
            bail!("image size {height}x{width} out of range (1..=4096)");
        }
        let renderer = MjRenderer::builder()
            .width(width as u32)
            .height(height as u32)
            .num_visual_user_geom(0)
            .build(model)
            .map_err(|e| {
                anyhow!(
                    "could not create the offscreen renderer (EGL): {e}; on machines without a GPU \
                     install Mesa's EGL (libegl-mesa0, libgl1-mesa-dri)"
                )
            })?;
        Ok(Self { renderer, cams, height, width })
    }

    pub fn render_all(&mut self, data: &mut MjData<Box<MjModel>>) -> Result<Vec<(String, Vec<u8>)>> {
        let mut out = Vec::with_capacity(self.cams.len());
        for i in 0..self.cams.len() {
            let (name, id) = self.cams[i].clone();
            out.push((name, self.render_id(data, id)?));
        }
        Ok(out)
    }

    fn render_id(&mut self, data: &mut MjData<Box<MjModel>>, id: usize) -> Result<Vec<u8>> {
        self.renderer.set_camera(MjvCamera::new_fixed(id));
        self.renderer.sync_data(data).map_err(|e| anyhow!("render sync: {e}"))?;
        self.renderer.render().map_err(|e| anyhow!("render: {e}"))?;
        Ok(self.renderer.rgb_flat().context("no rgb buffer")?.to_vec())
    }
}

/// The physics shared by both environments.
pub struct Sim {
    pub task: Task,
    pub ee: bool,
    pub data: MjData<Box<MjModel>>,
    ids: Ids,
    renderer: Option<CameraRenderer>,
}

impl Sim {
    pub fn new(task: Task, ee: bool, cameras: &[String], height: usize, width: usize) -> Result<Self> {
        let xml = scene::scene_xml(task, ee, (width, height));
        let model = MjModel::from_xml_string(&xml).map_err(|e| anyhow!("scene XML: {e}"))?;
        let ids = Ids {
            table: geom_id(&model, "table"),
            fingers_left: [geom_id(&model, "left/left_finger"), geom_id(&model, "left/right_finger")],
            fingers_right: [geom_id(&model, "right/left_finger"), geom_id(&model, "right/right_finger")],
            cube: geom_id(&model, "red_box"),
            peg: geom_id(&model, "red_peg"),
            socket: [
                geom_id(&model, "socket-1"),
                geom_id(&model, "socket-2"),
                geom_id(&model, "socket-3"),
                geom_id(&model, "socket-4"),
            ],
            pin: geom_id(&model, "pin"),
        };
        let renderer = if cameras.is_empty() {
            // Validate nothing; no GL context needed.
            None
        } else {
            Some(CameraRenderer::new(&model, cameras, height, width)?)
        };
        let data = MjData::new(Box::new(model));
        Ok(Self { task, ee, data, ids, renderer })
    }

    /// (height, width) of the rendered images, when cameras were requested.
    pub fn image_hw(&self) -> Option<(usize, usize)> {
        self.renderer.as_ref().map(|r| (r.height, r.width))
    }

    pub fn model(&self) -> &MjModel {
        self.data.model()
    }

    /// Reset robots to the start pose and objects to `object_pose` (env_state layout).
    pub fn reset_to(&mut self, object_pose: &[f64]) -> Result<()> {
        let n_obj = self.task.env_state_len();
        if object_pose.len() != n_obj {
            bail!("object pose has {} values, task needs {n_obj}", object_pose.len());
        }
        self.data.reset();
        {
            let qpos = self.data.qpos_mut();
            qpos[..16].copy_from_slice(&START_ARM_POSE);
            qpos[16..16 + n_obj].copy_from_slice(object_pose);
        }
        if self.ee {
            {
                let mp = self.data.mocap_pos_mut();
                mp[0] = MOCAP_START_LEFT;
                mp[1] = MOCAP_START_RIGHT;
            }
            let mq = self.data.mocap_quat_mut();
            mq[0] = [1.0, 0.0, 0.0, 0.0];
            mq[1] = [1.0, 0.0, 0.0, 0.0];
            let c = gripper_pos_unnormalize(0.0);
            self.data.ctrl_mut().copy_from_slice(&[c, -c, c, -c]);
        } else {
            self.data.ctrl_mut().copy_from_slice(&START_ARM_POSE);
        }
        self.data.forward();
        Ok(())
    }

    /// Advance one control period (10 physics steps) and forward the model so that contacts
    /// describe the state after the step.
    pub fn advance(&mut self) {
        for _ in 0..SUBSTEPS {
            self.data.step();
        }
        self.data.forward();
    }

    pub fn env_state(&self) -> Vec<f64> {
        let n = self.task.env_state_len();
        self.data.qpos()[16..16 + n].to_vec()
    }

    pub fn observe(&mut self) -> Result<Observation> {
        let qp = self.data.qpos();
        let qv = self.data.qvel();
        let mut qpos = [0f32; 14];
        let mut qvel = [0f32; 14];
        for (arm, (qo, vo)) in [(0usize, (0usize, 0usize)), (1, (8, 8))] {
            let _ = arm;
            for j in 0..6 {
                qpos[arm * 7 + j] = qp[qo + j] as f32;
                qvel[arm * 7 + j] = qv[vo + j] as f32;
            }
            qpos[arm * 7 + 6] = gripper_pos_normalize(qp[qo + 6]) as f32;
            qvel[arm * 7 + 6] = gripper_vel_normalize(qv[vo + 6]) as f32;
        }
        let env_state = self.env_state();
        let images = match &mut self.renderer {
            Some(r) => r.render_all(&mut self.data)?,
            None => Vec::new(),
        };
        Ok(Observation { qpos, qvel, images, env_state })
    }

    fn contact_pairs(&self) -> Vec<(i32, i32)> {
        self.data.contact().iter().map(|c| (c.geom1.min(c.geom2), c.geom1.max(c.geom2))).collect()
    }

    /// Reward of the current state (call after `advance`).
    pub fn reward(&self) -> u32 {
        let pairs = self.contact_pairs();
        let touch = |a: i32, b: i32| a >= 0 && b >= 0 && pairs.contains(&(a.min(b), a.max(b)));
        let ids = &self.ids;
        match self.task {
            Task::TransferCube => {
                let right = ids.fingers_right.iter().any(|&f| touch(ids.cube, f));
                let left = ids.fingers_left.iter().any(|&f| touch(ids.cube, f));
                let table = touch(ids.cube, ids.table);
                let mut r = 0;
                if right {
                    r = 1;
                }
                if right && !table {
                    r = 2;
                }
                if left {
                    r = 3;
                }
                if left && !table {
                    r = 4;
                }
                r
            }
            Task::Insertion => {
                let left = ids.fingers_left.iter().any(|&f| ids.socket.iter().any(|&s| touch(s, f)));
                let right = ids.fingers_right.iter().any(|&f| touch(ids.peg, f));
                let peg_table = touch(ids.peg, ids.table);
                let socket_table = ids.socket.iter().any(|&s| touch(s, ids.table));
                let peg_socket = ids.socket.iter().any(|&s| touch(ids.peg, s));
                let pin = touch(ids.peg, ids.pin);
                let mut r = 0;
                if left && right {
                    r = 1;
                }
                if left && right && !peg_table && !socket_table {
                    r = 2;
                }
                if peg_socket && !peg_table && !socket_table {
                    r = 3;
                }
                if pin {
                    r = 4;
                }
                r
            }
        }
    }

    /// World position of an arm's end-effector point (0 left, 1 right).
    pub fn ee_pos(&self, arm: usize) -> [f64; 3] {
        let name = if arm == 0 { "left/ee" } else { "right/ee" };
        let id = self.model().site(name).expect("ee site").id;
        self.data.site_xpos()[id]
    }
}

/// Sample the spec's object distribution for a task.
pub fn sample_object_pose(task: Task, rng: &mut Rng) -> Vec<f64> {
    match task {
        Task::TransferCube => {
            let x = rng.uniform(0.0, 0.2);
            let y = rng.uniform(0.4, 0.6);
            vec![x, y, 0.05, 1.0, 0.0, 0.0, 0.0]
        }
        Task::Insertion => {
            let px = rng.uniform(0.1, 0.2);
            let py = rng.uniform(0.4, 0.6);
            let sx = rng.uniform(-0.2, -0.1);
            let sy = rng.uniform(0.4, 0.6);
            vec![px, py, 0.05, 1.0, 0.0, 0.0, 0.0, sx, sy, 0.05, 1.0, 0.0, 0.0, 0.0]
        }
    }
}

/// Joint-space environment: actions are 14 joint targets (gripper normalised 0..1).
pub struct JointEnv {
    pub sim: Sim,
}

impl JointEnv {
    /// `cameras`: names of the scene's cameras to render each step (may be empty).
    pub fn new(task: Task, cameras: &[String], height: usize, width: usize) -> Result<Self> {
        Ok(Self { sim: Sim::new(task, false, cameras, height, width)? })
    }

    pub fn max_reward(&self) -> u32 {
        self.sim.task.max_reward()
    }

    /// Reset with objects drawn from the spec's distribution under `seed`.
    pub fn reset(&mut self, seed: u64) -> Result<Observation> {
        let pose = sample_object_pose(self.sim.task, &mut Rng::new(seed));
        self.reset_with_object_pose(&pose)
    }

    pub fn reset_with_object_pose(&mut self, pose: &[f64]) -> Result<Observation> {
        self.sim.reset_to(pose)?;
        self.sim.observe()
    }

    pub fn step(&mut self, action: &[f32; 14]) -> Result<StepResult> {
        let mut ctrl = [0f64; 16];
        for arm in 0..2 {
            for j in 0..6 {
                ctrl[arm * 8 + j] = action[arm * 7 + j] as f64;
            }
            let p = gripper_pos_unnormalize(action[arm * 7 + 6] as f64);
            ctrl[arm * 8 + 6] = p;
            ctrl[arm * 8 + 7] = -p;
        }
        self.sim.data.ctrl_mut().copy_from_slice(&ctrl);
        self.sim.advance();
        let reward = self.sim.reward();
        Ok(StepResult { obs: self.sim.observe()?, reward })
    }
}

/// End-effector environment: action = [left xyz, left quat (wxyz), left gripper 0..1,
/// right xyz, right quat, right gripper] (16 values); mocap bodies are welded to the grippers.
pub struct EeEnv {
    pub sim: Sim,
}

impl EeEnv {
    pub fn new(task: Task, cameras: &[String], height: usize, width: usize) -> Result<Self> {
        Ok(Self { sim: Sim::new(task, true, cameras, height, width)? })
    }

    pub fn reset_with_object_pose(&mut self, pose: &[f64]) -> Result<Observation> {
        self.sim.reset_to(pose)?;
        self.sim.observe()
    }

    pub fn step(&mut self, action: &[f64; 16]) -> Result<StepResult> {
        {
            let mp = self.sim.data.mocap_pos_mut();
            mp[0] = [action[0], action[1], action[2]];
            mp[1] = [action[8], action[9], action[10]];
        }
        {
            let mq = self.sim.data.mocap_quat_mut();
            mq[0] = [action[3], action[4], action[5], action[6]];
            mq[1] = [action[11], action[12], action[13], action[14]];
        }
        let gl = gripper_pos_unnormalize(action[7]);
        let gr = gripper_pos_unnormalize(action[15]);
        self.sim.data.ctrl_mut().copy_from_slice(&[gl, -gl, gr, -gr]);
        self.sim.advance();
        let reward = self.sim.reward();
        Ok(StepResult { obs: self.sim.observe()?, reward })
    }

    /// Commanded gripper controls, normalised (what the original records as the gripper action).
    pub fn commanded_grippers(&self) -> [f64; 2] {
        let c = self.sim.data.ctrl();
        [gripper_pos_normalize(c[0]), gripper_pos_normalize(c[2])]
    }
}
