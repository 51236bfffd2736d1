include!("../build-support/rpath.rs");

fn main() {
    add_rpath_from_env("MUJOCO_DYNAMIC_LINK_DIR", ".");
    // act-sim eval --backend tch links libtorch through act-train.
    add_rpath_from_env("LIBTORCH", "lib");
}
