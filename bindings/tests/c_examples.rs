//! The C and C++ example controllers (c/examples/), built with the system gcc/g++ against the shared
//! and the static library through the pkg-config file of an installed-like prefix, run on a tiny
//! checkpoint for 100 steps, checked against act-core's Rust API, and the C one run under valgrind
//! memcheck. Needs gcc, g++, pkg-config and valgrind (scripts/setup.sh installs them).
mod common;

use common::Tiny;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const STEPS: usize = 100;

struct Setup {
    dir: PathBuf,
    prefix: PathBuf,
    /// Two cameras, chunk 5: the examples' main checkpoint.
    checkpoint: PathBuf,
    tiny: Tiny,
    /// One 32x32 camera, chunk 25 (4 forward passes in 100 steps): for valgrind, which runs the
    /// model some 50 times slower.
    small: PathBuf,
    small_tiny: Tiny,
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success())
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The .pc file as bindings/install.sh writes it.
fn pc_file(prefix: &Path) -> String {
    let template = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("pkgconfig/act_core.pc.in")).unwrap();
    template.replace("@PREFIX@", prefix.to_str().unwrap()).replace("@VERSION@", env!("CARGO_PKG_VERSION"))
}

/// A prefix laid out like `bindings/install.sh PREFIX` does: include/, lib/, lib/pkgconfig/.
fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        for tool in ["gcc", "g++", "pkg-config"] {
            assert!(have(tool), "`{tool}` not found: run scripts/setup.sh");
        }
        let so = common::built_library("libact_core.so");
        let a = common::built_library("libact_core.a");
        let dir = common::scratch_dir("examples");
        let prefix = dir.join("prefix");
        std::fs::create_dir_all(prefix.join("include")).unwrap();
        std::fs::create_dir_all(prefix.join("lib/pkgconfig")).unwrap();
        std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("include/act_core.h"), prefix.join("include/act_core.h")).unwrap();
        std::fs::copy(&so, prefix.join("lib/libact_core.so")).unwrap();
        std::fs::copy(&a, prefix.join("lib/libact_core.a")).unwrap();
        std::fs::write(prefix.join("lib/pkgconfig/act_core.pc"), pc_file(&prefix)).unwrap();
        let mut tiny = Tiny::new();
        tiny.cameras = vec![("top", 64, 64), ("wrist", 48, 64)];
        let checkpoint = dir.join("tiny.safetensors");
        std::fs::write(&checkpoint, tiny.checkpoint(11)).unwrap();
        let mut small_tiny = Tiny::new();
        small_tiny.cameras = vec![("top", 32, 32)];
        small_tiny.chunk = 25;
        let small = dir.join("small.safetensors");
        std::fs::write(&small, small_tiny.checkpoint(12)).unwrap();
        Setup { dir, prefix, checkpoint, tiny, small, small_tiny }
    })
}

/// pkg-config's answer for act_core installed in `prefix`.
fn pkg_config_at(prefix: &Path, args: &[&str]) -> Vec<String> {
    let out = ok(Command::new("pkg-config").args(args).arg("act_core").env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig")));
    out.split_whitespace().map(str::to_owned).collect()
}

fn pkg_config(args: &[&str]) -> Vec<String> {
    pkg_config_at(&setup().prefix, args)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Lang {
    C,
    Cpp,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Link {
    Shared,
    Static,
}

/// Compiles an example with warnings as errors; returns the executable.
fn build(lang: Lang, link: Link) -> PathBuf {
    let s = setup();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("c/examples");
    let (compiler, std, src) = match lang {
        Lang::C => ("gcc", "-std=c11", examples.join("control_loop.c")),
        Lang::Cpp => ("g++", "-std=c++17", examples.join("control_loop.cpp")),
    };
    let exe = s.dir.join(format!("control_loop_{lang:?}_{link:?}").to_lowercase());
    compile(compiler, std, &src, &s.prefix, link, &exe);
    if link == Link::Static {
        let deps = ok(Command::new("ldd").arg(&exe));
        assert!(!deps.contains("libact_core"), "the static build links libact_core.so:\n{deps}");
    }
    exe
}

/// Compiles `src` with `compiler` against act_core installed in `prefix`, through its pkg-config
/// file, with warnings as errors, into `exe`.
fn compile(compiler: &str, std: &str, src: &Path, prefix: &Path, link: Link, exe: &Path) {
    let mut cmd = Command::new(compiler);
    cmd.args([std, "-O2", "-g", "-Wall", "-Wextra", "-Werror", "-pedantic"]).args(pkg_config_at(prefix, &["--cflags"])).arg(src).arg("-o").arg(exe);
    match link {
        Link::Shared => {
            cmd.args(pkg_config_at(prefix, &["--libs"])).arg(format!("-Wl,-rpath,{}", prefix.join("lib").display()));
        }
        Link::Static => {
            // The archive itself, then what it needs (Libs.private), with the dynamic -lact_core dropped.
            cmd.arg(prefix.join("lib/libact_core.a"));
            cmd.args(pkg_config_at(prefix, &["--static", "--libs-only-l"]).into_iter().filter(|f| f != "-lact_core"));
        }
    }
    ok(&mut cmd);
}

/// The actions act-core's Rust API gives for the examples' synthetic inputs: (first, last).
fn reference(checkpoint: &Path, tiny: &Tiny, ensembling: act::Ensembling) -> (Vec<f32>, Vec<f32>) {
    let mut p = act::Policy::open(checkpoint, &act::Options { ensembling, isa: None, ..Default::default() }).unwrap();
    let mut action = vec![0.0f32; tiny.action];
    let mut first = Vec::new();
    for t in 0..STEPS {
        let qpos = common::example_qpos(t, tiny.state);
        let imgs: Vec<Vec<u8>> = tiny.cameras.iter().enumerate().map(|(c, &(_, h, w))| common::example_image(t, c, h, w)).collect();
        let views: Vec<&[u8]> = imgs.iter().map(|v| v.as_slice()).collect();
        p.step(&qpos, &views, &mut action).unwrap();
        if t == 0 {
            first = action.clone();
        }
    }
    (first, action)
}

fn parse_action(stdout: &str, label: &str) -> Vec<f32> {
    let line = stdout.lines().find_map(|l| l.strip_prefix(&format!("{label}:"))).unwrap_or_else(|| panic!("no `{label}:` in\n{stdout}"));
    line.split_whitespace().map(|v| v.parse().unwrap()).collect()
}

fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-5 * w.abs().max(1.0), "{what}[{i}]: {g} vs {w}\n{got:?}\n{want:?}");
    }
}

/// Runs an example unpaced and checks its report against the Rust API.
fn check_run(exe: &Path, extra: &[&str], ensembling: act::Ensembling) -> String {
    let s = setup();
    let stdout = ok(Command::new(exe).arg(&s.checkpoint).args(["--no-pacing", "--steps", &STEPS.to_string()]).args(extra));
    check_report(&stdout, ensembling, "unpaced");
    stdout
}

fn check_report(stdout: &str, ensembling: act::Ensembling, pacing: &str) {
    let mode = if matches!(ensembling, act::Ensembling::Coefficient(_)) { "temporal" } else { "chunk" };
    assert!(stdout.contains(&format!("state_dim=14 action_dim=14 chunk_size=5 cameras=2 ensembling={mode}")), "{stdout}");
    assert!(stdout.contains("camera 0: top 64x64") && stdout.contains("camera 1: wrist 48x64"), "{stdout}");
    assert!(stdout.contains(&format!("steps: {STEPS} at {pacing}")), "{stdout}");
    assert!(stdout.contains("step latency ms: mean "), "{stdout}");
    let s = setup();
    let (first, last) = reference(&s.checkpoint, &s.tiny, ensembling);
    assert_close(&parse_action(stdout, "first action"), &first, "first action");
    assert_close(&parse_action(stdout, "last action"), &last, "last action");
}

#[test]
fn c_example_shared_and_static() {
    for link in [Link::Shared, Link::Static] {
        let exe = build(Lang::C, link);
        let out = check_run(&exe, &[], act::Ensembling::FromConfig);
        eprintln!("C, {link:?}:\n{out}");
        check_run(&exe, &["--ensemble", "0.01"], act::Ensembling::Coefficient(0.01));
    }
}

/// The C library cross-built for aarch64 by the documented command
/// (`ACT_CORE_TARGET=aarch64-unknown-linux-gnu bindings/install.sh PREFIX`), the C example
/// cross-compiled against that prefix with Debian's aarch64-linux-gnu-gcc (shared and static, flags
/// from its pkg-config file), and both run under qemu-aarch64: they must run the NEON kernels and
/// give the actions of act-core on this machine to 1e-5 (`check_report`).
#[test]
fn c_example_cross_built_for_aarch64_runs_under_qemu() {
    const TARGET: &str = "aarch64-unknown-linux-gnu";
    for tool in ["aarch64-linux-gnu-gcc", "qemu-aarch64"] {
        assert!(have(tool), "`{tool}` not found: run scripts/setup.sh (it installs gcc-aarch64-linux-gnu and qemu-user)");
    }
    let s = setup();
    let target_dir = common::profile_dir().parent().unwrap().to_path_buf();
    let prefix = s.dir.join("prefix-aarch64");
    let install = Path::new(env!("CARGO_MANIFEST_DIR")).join("install.sh");
    let said = ok(Command::new("bash").arg(&install).arg(&prefix).env("ACT_CORE_TARGET", TARGET).env("CARGO_TARGET_DIR", &target_dir));
    assert!(said.contains(&format!("for {TARGET}")), "{said}");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("c/examples/control_loop.c");
    for link in [Link::Shared, Link::Static] {
        let exe = s.dir.join(format!("control_loop_aarch64_{link:?}").to_lowercase());
        compile("aarch64-linux-gnu-gcc", "-std=c11", &src, &prefix, link, &exe);
        let header = ok(Command::new("aarch64-linux-gnu-readelf").arg("-h").arg(&exe));
        assert!(header.contains("AArch64"), "{header}");
        let stdout = ok(Command::new("qemu-aarch64")
            .args(["-cpu", "max", "-L", "/usr/aarch64-linux-gnu"])
            .arg(&exe)
            .arg(&s.checkpoint)
            .args(["--no-pacing", "--steps", &STEPS.to_string()]));
        eprintln!("aarch64 under qemu, {link:?}:\n{stdout}");
        assert!(stdout.contains("kernels: neon"), "{stdout}");
        check_report(&stdout, act::Ensembling::FromConfig, "unpaced");
    }
}

/// `--threads 2 --realtime 5`: the control thread and the workers under SCHED_FIFO give the same
/// actions; where the OS refuses real-time priority the example says so and fails.
#[test]
fn c_example_runs_at_a_realtime_priority() {
    let exe = build(Lang::C, Link::Shared);
    let args = ["--threads", "2", "--realtime", "5"];
    let out = run(Command::new(&exe).arg(&setup().checkpoint).args(["--no-pacing", "--steps", &STEPS.to_string()]).args(args));
    if out.status.success() {
        check_report(&String::from_utf8_lossy(&out.stdout), act::Ensembling::FromConfig, "unpaced");
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("refused"), "exit {:?}: {err}", out.status);
    }
}

/// `--async`: steps served by the library's inference thread. The first step waits for the chunk of
/// its own observation, so the first action is the synchronous one; later actions depend on when
/// chunks arrive, so only their finiteness (the example checks it) and the age report are checked.
#[test]
fn c_example_runs_asynchronously() {
    let exe = build(Lang::C, Link::Shared);
    let stdout = ok(Command::new(&exe).arg(&setup().checkpoint).args(["--steps", "40", "--async", "--threads", "2", "--ensemble", "0.01"]));
    assert!(stdout.contains("stepping: asynchronous (aligned)"), "{stdout}");
    assert!(stdout.contains("steps: 40 at paced"), "{stdout}");
    let s = setup();
    let (first, _) = reference(&s.checkpoint, &s.tiny, act::Ensembling::Coefficient(0.01));
    assert_close(&parse_action(&stdout, "first action"), &first, "first action");
    let age: i64 = stdout.lines().find_map(|l| l.strip_prefix("newest chunk age: at most ")).and_then(|l| l.split_whitespace().next()?.parse().ok()).unwrap_or_else(|| panic!("{stdout}"));
    assert!((0..40).contains(&age), "{stdout}");
}

#[test]
fn cpp_example_shared_and_static() {
    for link in [Link::Shared, Link::Static] {
        let exe = build(Lang::Cpp, link);
        let out = check_run(&exe, &[], act::Ensembling::FromConfig);
        eprintln!("C++, {link:?}:\n{out}");
        check_run(&exe, &["--ensemble", "0.01"], act::Ensembling::Coefficient(0.01));
    }
}

#[test]
fn examples_pace_at_50_hz_by_default_and_honour_act_no_pacing() {
    let s = setup();
    let exe = build(Lang::C, Link::Shared);
    let start = std::time::Instant::now();
    let stdout = ok(Command::new(&exe).arg(&s.checkpoint).env_remove("ACT_NO_PACING"));
    let wall = start.elapsed().as_secs_f64();
    check_report(&stdout, act::Ensembling::FromConfig, "paced");
    // 100 periods of 20 ms.
    assert!(wall >= 1.95, "100 paced steps took {wall:.3} s, expected about 2 s\n{stdout}");
    let stdout = ok(Command::new(&exe).arg(&s.checkpoint).env("ACT_NO_PACING", "1"));
    assert!(stdout.contains("at unpaced"), "{stdout}");
}

#[test]
fn examples_report_a_failed_open() {
    let s = setup();
    for lang in [Lang::C, Lang::Cpp] {
        let exe = build(lang, Link::Shared);
        let out = run(Command::new(&exe).arg(s.dir.join("missing.safetensors")).arg("--no-pacing"));
        assert_eq!(out.status.code(), Some(1), "{lang:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("cannot read") && err.contains("missing.safetensors"), "{lang:?}: {err}");
    }
}

#[test]
fn c_example_is_clean_under_valgrind_memcheck() {
    if !have("valgrind") {
        eprintln!("SKIPPED: valgrind is not installed (scripts/setup.sh installs it); memcheck not run");
        return;
    }
    let s = setup();
    // The shared build only: the static one runs the same code, and valgrind is slow.
    {
        let link = Link::Shared;
        let exe = build(Lang::C, link);
        let out = run(
            Command::new("valgrind")
                .args(["--tool=memcheck", "--error-exitcode=1", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect,possible"])
                .arg(&exe)
                .arg(&s.small)
                .args(["--no-pacing", "--steps", &STEPS.to_string()]),
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "valgrind ({link:?}) reports errors ({}):\n{stderr}", out.status);
        assert!(stderr.contains("ERROR SUMMARY: 0 errors"), "{stderr}");
        assert!(stdout.contains(&format!("steps: {STEPS} at unpaced")), "{stdout}");
        let (first, last) = reference(&s.small, &s.small_tiny, act::Ensembling::FromConfig);
        assert_close(&parse_action(&stdout, "first action"), &first, "first action");
        assert_close(&parse_action(&stdout, "last action"), &last, "last action");
        let summary: Vec<&str> = stderr.lines().filter(|l| l.contains("ERROR SUMMARY") || l.contains("in use at exit") || l.contains("total heap usage")).collect();
        eprintln!("valgrind, {link:?}:\n{}", summary.join("\n"));
    }
}

#[test]
fn pkg_config_reports_the_prefix() {
    let s = setup();
    assert_eq!(pkg_config(&["--modversion"]), [env!("CARGO_PKG_VERSION")]);
    assert_eq!(pkg_config(&["--cflags"]), [format!("-I{}", s.prefix.join("include").display())]);
    let libs = pkg_config(&["--libs"]);
    assert!(libs.contains(&"-lact_core".to_string()) && libs.contains(&format!("-L{}", s.prefix.join("lib").display())), "{libs:?}");
}

#[test]
fn cmake_finds_the_library_through_the_imported_target() {
    if !have("cmake") {
        eprintln!("SKIPPED: cmake is not installed; cmake/FindActCore.cmake not exercised");
        return;
    }
    let s = setup();
    let project = s.dir.join("cmake-project");
    let _ = std::fs::remove_dir_all(&project);
    std::fs::create_dir_all(&project).unwrap();
    let module_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("cmake");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("c/examples/control_loop.c");
    std::fs::write(
        project.join("CMakeLists.txt"),
        format!(
            "cmake_minimum_required(VERSION 3.16)\nproject(controller C)\nlist(APPEND CMAKE_MODULE_PATH \"{}\")\nfind_package(ActCore REQUIRED)\nadd_executable(controller \"{}\")\ntarget_link_libraries(controller PRIVATE act_core::act_core)\nadd_executable(controller_static \"{}\")\ntarget_link_libraries(controller_static PRIVATE act_core::act_core_static)\n",
            module_dir.display(),
            example.display(),
            example.display()
        ),
    )
    .unwrap();
    let build = project.join("build");
    ok(Command::new("cmake").arg("-S").arg(&project).arg("-B").arg(&build).arg(format!("-DActCore_ROOT={}", s.prefix.display())));
    ok(Command::new("cmake").arg("--build").arg(&build));
    for exe in ["controller", "controller_static"] {
        let stdout = ok(Command::new(build.join(exe)).arg(&s.checkpoint).args(["--no-pacing", "--steps", &STEPS.to_string()]));
        check_report(&stdout, act::Ensembling::FromConfig, "unpaced");
    }
}
