include!("../build-support/rpath.rs");

fn main() {
    add_rpath_from_env("LIBTORCH", "lib");
}
