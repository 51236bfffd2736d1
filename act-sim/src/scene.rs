//! The project's own MJCF for the bimanual ALOHA scene, generated from primitive geoms.
//!
//! Kinematic chain per arm (ViperX 300s, as in ACT's vx300s_{left,right}.xml): base at the spec's
//! position, waist at z 0.079, shoulder 0.04805 above, elbow at (0.05955, 0, 0.3), forearm roll 0.2
//! further, wrist angle 0.1 further, gripper link (wrist rotate) 0.069744 further, fingers sliding
//! along the gripper's y axis from 0.0687. With the spec's start pose this puts the gripper link at
//! (-0.31718881, 0.5, 0.29525084) for the left arm, the spec's mocap start.
//!
//! The end-effector point that the mocap bodies drive (`EE_OFFSET` ahead of the gripper link, as
//! the original's "+0.1" mocap start) and the finger pads are chosen so that the scripted
//! waypoints of ACT_SPEC.md section 6 grasp and hand over the objects (see `tuning` notes in the
//! crate README / report).

use crate::Task;

/// Distance of the end-effector point (mocap target) ahead of the gripper link, along the gripper.
pub const EE_OFFSET: f64 = 0.1;
/// Finger pads start here along the gripper x axis (finger link position of the original).
pub const FINGER_BASE: f64 = 0.0687;
/// Finger pads end here (fingertips), beyond the end-effector point.
pub const FINGER_TIP: f64 = 0.125;

/// Names of the cameras the scene defines.
pub const CAMERAS: [&str; 5] = ["top", "angle", "front_close", "left_wrist", "right_wrist"];

/// Position actuator parameters per arm joint: (name, kp, force limit, ctrlrange low, high).
const ARM_ACTUATORS: [(&str, f64, Option<f64>, f64, f64); 6] = [
    ("waist", 800.0, Some(150.0), -3.14158, 3.14158),
    ("shoulder", 1600.0, Some(300.0), -1.85005, 1.25664),
    ("elbow", 800.0, Some(100.0), -1.76278, 1.6057),
    ("forearm_roll", 10.0, Some(100.0), -3.14158, 3.14158),
    ("wrist_angle", 50.0, None, -1.8675, 2.23402),
    ("wrist_rotate", 20.0, None, -3.14158, 3.14158),
];

fn arm(side: &str, x: f64, rotated: bool, cam: &str) -> String {
    let quat = if rotated { r#" quat="0 0 0 1""# } else { "" };
    let pad_half = (FINGER_TIP - FINGER_BASE) / 2.0;
    // Finger pads: 8 mm thick, 24 mm tall; inner face 20 mm inward of the joint position, so the
    // joint range [0.021, 0.057] gives a 2..74 mm opening.
    format!(
        r#"
    <body name="{side}/base" pos="{x} 0.5 0"{quat}>
      <geom class="vis" type="cylinder" size="0.06 0.04" pos="0 0 0.04" material="dark"/>
      <body name="{side}/shoulder_link" pos="0 0 0.079">
        <joint name="{side}/waist" axis="0 0 1" range="-3.14158 3.14158" frictionloss="50"/>
        <geom class="vis" type="cylinder" size="0.045 0.03" pos="0 0 0.02" material="dark"/>
        <body name="{side}/upper_arm_link" pos="0 0 0.04805">
          <joint name="{side}/shoulder" axis="0 1 0" range="-1.85005 1.25664" frictionloss="60"/>
          <geom class="vis" type="capsule" fromto="0 0 0 0.05955 0 0.3" size="0.028" material="arm"/>
          <body name="{side}/upper_forearm_link" pos="0.05955 0 0.3">
            <joint name="{side}/elbow" axis="0 1 0" range="-1.76278 1.6057" frictionloss="60"/>
            <geom class="vis" type="capsule" fromto="0 0 0 0.2 0 0" size="0.024" material="arm"/>
            <body name="{side}/lower_forearm_link" pos="0.2 0 0">
              <joint name="{side}/forearm_roll" axis="1 0 0" range="-3.14158 3.14158" frictionloss="30"/>
              <geom class="vis" type="capsule" fromto="0 0 0 0.1 0 0" size="0.02" material="arm"/>
              <body name="{side}/wrist_link" pos="0.1 0 0">
                <joint name="{side}/wrist_angle" axis="0 1 0" range="-1.8675 2.23402" frictionloss="30"/>
                <geom class="vis" type="capsule" fromto="0 0 0 0.06 0 0" size="0.018" material="dark"/>
                <body name="{side}/gripper_link" pos="0.069744 0 0">
                  <joint name="{side}/wrist_rotate" axis="1 0 0" range="-3.14158 3.14158" frictionloss="30"/>
                  <geom name="{side}/palm" type="box" size="0.022 0.05 0.016" pos="0.044 0 0" material="dark"/>
                  <camera name="{cam}" pos="0.03 0 0.06" xyaxes="0 -1 0 0.5 0 0.866" fovy="78"/>
                  <site name="{side}/ee" pos="{EE_OFFSET} 0 0" size="0.004" rgba="1 1 0 0"/>
                  <body name="{side}/left_finger_link" pos="{FINGER_BASE} 0 0">
                    <joint name="{side}/left_finger" type="slide" axis="0 1 0" range="0.021 0.057" frictionloss="30"/>
                    <geom name="{side}/left_finger" class="finger" type="box" size="{pad_half} 0.004 0.012" pos="{pad_half} -0.016 0"/>
                  </body>
                  <body name="{side}/right_finger_link" pos="{FINGER_BASE} 0 0">
                    <joint name="{side}/right_finger" type="slide" axis="0 1 0" range="-0.057 -0.021" frictionloss="30"/>
                    <geom name="{side}/right_finger" class="finger" type="box" size="{pad_half} 0.004 0.012" pos="{pad_half} 0.016 0"/>
                  </body>
                </body>
              </body>
            </body>
          </body>
        </body>
      </body>
    </body>"#
    )
}

fn objects(task: Task) -> &'static str {
    match task {
        Task::TransferCube => {
            r#"
    <body name="box" pos="0.2 0.5 0.05">
      <freejoint name="red_box_joint"/>
      <inertial pos="0 0 0" mass="0.05" diaginertia="0.002 0.002 0.002"/>
      <geom name="red_box" type="box" size="0.02 0.02 0.02" rgba="1 0 0 1" condim="4" friction="1 0.005 0.0001"/>
    </body>"#
        }
        // Socket: a square tube along x (outer half 0.018, inner half 0.015), its body origin (where
        // the left gripper grasps it) 0.02 behind the tube centre, the pin inside near the far end.
        Task::Insertion => {
            r#"
    <body name="peg" pos="0.15 0.5 0.05">
      <freejoint name="red_peg_joint"/>
      <inertial pos="0 0 0" mass="0.05" diaginertia="0.002 0.002 0.002"/>
      <geom name="red_peg" type="box" size="0.06 0.01 0.01" rgba="1 0 0 1" condim="4" friction="1 0.005 0.0001"/>
    </body>
    <body name="socket" pos="-0.15 0.5 0.05">
      <freejoint name="blue_socket_joint"/>
      <inertial pos="0 0 0" mass="0.05" diaginertia="0.002 0.002 0.002"/>
      <geom name="socket-1" type="box" size="0.05 0.015 0.0015" pos="0.03 0 -0.0165" rgba="0 0 1 1" condim="4" friction="1 0.005 0.0001"/>
      <geom name="socket-2" type="box" size="0.05 0.015 0.0015" pos="0.03 0 0.0165" rgba="0 0 1 1" condim="4" friction="1 0.005 0.0001"/>
      <geom name="socket-3" type="box" size="0.05 0.0015 0.018" pos="0.03 0.0165 0" rgba="0 0 1 1" condim="4" friction="1 0.005 0.0001"/>
      <geom name="socket-4" type="box" size="0.05 0.0015 0.018" pos="0.03 -0.0165 0" rgba="0 0 1 1" condim="4" friction="1 0.005 0.0001"/>
      <geom name="pin" type="box" size="0.005 0.006 0.006" pos="0.06 0 0" rgba="1 0 0 1" condim="4" friction="1 0.005 0.0001"/>
    </body>"#
        }
    }
}

/// MJCF of the scene for a task. `ee`: end-effector variant (mocap bodies welded to the grippers'
/// end-effector points, only the finger actuators); otherwise the joint-space variant with the 16
/// position actuators of the spec. `offscreen`: (width, height) of the offscreen buffer.
pub fn scene_xml(task: Task, ee: bool, offscreen: (usize, usize)) -> String {
    let (ow, oh) = (offscreen.0.max(640), offscreen.1.max(480));
    let mut s = String::new();
    s.push_str(&format!(
        r#"<mujoco model="aloha_{task}">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="0.002" integrator="implicitfast" cone="elliptic" impratio="10"/>
  <visual>
    <global offwidth="{ow}" offheight="{oh}"/>
    <quality shadowsize="0" offsamples="0"/>
    <headlight ambient="0.4 0.4 0.4" diffuse="0.5 0.5 0.5" specular="0.1 0.1 0.1"/>
  </visual>
  <asset>
    <material name="arm" rgba="0.25 0.25 0.28 1"/>
    <material name="dark" rgba="0.1 0.1 0.1 1"/>
    <material name="tablemat" rgba="0.55 0.45 0.35 1"/>
    <material name="floor" rgba="0.8 0.8 0.8 1"/>
  </asset>
  <default>
    <geom solref="0.01 1"/>
    <default class="vis">
      <geom contype="0" conaffinity="0"/>
    </default>
    <default class="finger">
      <geom rgba="0.15 0.15 0.15 1" condim="4" friction="1 0.005 0.0001"/>
    </default>
  </default>
  <worldbody>
    <light pos="0 0.6 2.5" dir="0 0 -1" directional="true" diffuse="0.4 0.4 0.4"/>
    <geom name="floor" type="plane" size="2 2 0.1" pos="0 0.6 -0.75" material="floor" contype="0" conaffinity="0"/>
    <body name="table" pos="0 0.6 0">
      <geom name="table" type="box" size="0.8 0.4 0.02" pos="0 0 -0.02" material="tablemat"/>
      <geom class="vis" type="box" size="0.02 0.02 0.365" pos="0.75 0.35 -0.385" material="dark"/>
      <geom class="vis" type="box" size="0.02 0.02 0.365" pos="-0.75 0.35 -0.385" material="dark"/>
      <geom class="vis" type="box" size="0.02 0.02 0.365" pos="0.75 -0.35 -0.385" material="dark"/>
      <geom class="vis" type="box" size="0.02 0.02 0.365" pos="-0.75 -0.35 -0.385" material="dark"/>
    </body>
    <camera name="top" pos="0 0.6 0.8" xyaxes="1 0 0 0 1 0" fovy="78"/>
    <camera name="angle" pos="0 0 0.6" mode="targetbody" target="table" fovy="78"/>
    <camera name="front_close" pos="0 0.2 0.4" mode="targetbody" target="table" fovy="78"/>
"#,
        task = task.name()
    ));
    s.push_str(&arm("left", -0.469, false, "left_wrist"));
    s.push_str(&arm("right", 0.469, true, "right_wrist"));
    s.push_str(objects(task));
    if ee {
        s.push_str(
            r#"
    <body mocap="true" name="mocap_left" pos="-0.21718881 0.5 0.29525084">
      <geom class="vis" type="box" size="0.003 0.003 0.03" rgba="1 0 0 0"/>
    </body>
    <body mocap="true" name="mocap_right" pos="0.21718881 0.49999888 0.29525084">
      <geom class="vis" type="box" size="0.003 0.003 0.03" rgba="1 0 0 0"/>
    </body>"#,
        );
    }
    s.push_str("\n  </worldbody>\n");
    if ee {
        // relpose = pose of the gripper link in the mocap frame: the mocap frame is the
        // end-effector point, world-aligned at the start (the right arm's gripper is rotated 180
        // degrees about z relative to it).
        s.push_str(&format!(
            r#"  <equality>
    <weld body1="mocap_left" body2="left/gripper_link" relpose="{m} 0 0 1 0 0 0" solref="0.01 1" solimp="0.95 0.99 0.001"/>
    <weld body1="mocap_right" body2="right/gripper_link" relpose="{p} 0 0 0 0 0 1" solref="0.01 1" solimp="0.95 0.99 0.001"/>
  </equality>
"#,
            m = -EE_OFFSET,
            p = EE_OFFSET
        ));
    }
    s.push_str("  <actuator>\n");
    for side in ["left", "right"] {
        if !ee {
            for (j, kp, force, lo, hi) in ARM_ACTUATORS {
                let fr = match force {
                    Some(f) => format!(r#" forcerange="{} {}""#, -f, f),
                    None => String::new(),
                };
                s.push_str(&format!(
                    r#"    <position name="{side}/{j}" joint="{side}/{j}" kp="{kp}" ctrlrange="{lo} {hi}"{fr}/>
"#
                ));
            }
        }
        s.push_str(&format!(
            r#"    <position name="{side}/left_finger" joint="{side}/left_finger" kp="200" ctrlrange="0.021 0.057"/>
    <position name="{side}/right_finger" joint="{side}/right_finger" kp="200" ctrlrange="-0.057 -0.021"/>
"#
        ));
    }
    s.push_str("  </actuator>\n</mujoco>\n");
    s
}
