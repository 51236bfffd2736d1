//! The benchmark binaries check their command line before measuring anything: `--help` prints the
//! flags, a mistyped flag or a bad value is an error naming it (it used to be ignored, or to
//! panic after minutes of measuring).
use std::process::Command;

fn run(bin: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin).args(args).output().expect("run the benchmark binary");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn help_lists_the_flags_and_measures_nothing() {
    for (bin, flag) in [(env!("CARGO_BIN_EXE_report"), "--precision-sizes"), (env!("CARGO_BIN_EXE_async-steadiness"), "--realtime")] {
        let (ok, stdout, _) = run(bin, &["--help"]);
        assert!(ok, "{bin} --help failed");
        assert!(stdout.contains(flag), "{bin} --help does not name {flag}: {stdout}");
        assert!(!stdout.contains("Machine:") && !stdout.contains("CPU:"), "{bin} --help measured: {stdout}");
    }
}

#[test]
fn unknown_flags_and_bad_values_are_errors_naming_them() {
    let report = env!("CARGO_BIN_EXE_report");
    for (args, expected) in [
        (&["--sizez", "tiny"][..], "unknown argument \"--sizez\""),
        (&["--threads", "1,x"][..], "--threads 1,x"),
        (&["--threads", "0"][..], "--threads 0"),
        (&["--reps"][..], "--reps needs a value"),
        (&["--reps", "0"][..], "--reps 0"),
        (&["--gap-ms", "soon"][..], "--gap-ms \"soon\""),
        (&["--steady-steps", "-1"][..], "--steady-steps \"-1\""),
        (&["--steady-precisions", "bf16,fp8"][..], "--steady-precisions fp8"),
    ] {
        let (ok, stdout, stderr) = run(report, args);
        assert!(!ok, "report {args:?} succeeded");
        assert!(stderr.contains(expected), "report {args:?}: stderr does not say {expected:?}: {stderr}");
        assert!(!stdout.contains("Machine:"), "report {args:?} measured before failing");
    }
    for (args, expected) in [(&["--hz", "fast"][..], "--hz \"fast\""), (&["--hz", "0"][..], "--hz 0: a control rate above 0"), (&["--steps", "many"][..], "--steps \"many\"")] {
        let (ok, stdout, stderr) = run(env!("CARGO_BIN_EXE_async-steadiness"), args);
        assert!(!ok && stderr.contains(expected), "async-steadiness {args:?}: stderr does not say {expected:?}: {stderr}");
        assert!(!stdout.contains("CPU:"), "async-steadiness {args:?} measured before failing");
    }
}
