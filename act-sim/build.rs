include!("../build-support/rpath.rs");

fn main() {
    add_rpath_from_env("MUJOCO_DYNAMIC_LINK_DIR", ".");
}
