//! Files that are not what they claim (issue #15): FIFOs, devices and directories where a
//! checkpoint's files should be, and a file truncated while it is loaded. `Policy::open` must
//! refuse them by name, promptly, without hanging or crashing the process.
#![cfg(unix)]
mod common;
use act_core::{Error, Options, Policy};
use common::Tiny;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("act-core-hostile-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo {}", path.display());
}

/// `Policy::open(path)` on another thread: its result, or a failure if it blocks for 60 s
/// (today's code waits forever for a FIFO's writer).
fn open_within_a_minute(path: &Path) -> Result<Policy, Error> {
    let (tx, rx) = mpsc::channel();
    let p = path.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(Policy::open(&p, &Options::default()));
    });
    rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| panic!("Policy::open({}) hangs", path.display()))
}

fn io_error_naming(result: Result<Policy, Error>, file: &str, words: &str) {
    match result {
        Err(Error::Io { path, message }) => {
            assert!(path.ends_with(file), "error names `{path}`, expected `{file}`");
            assert!(message.contains(words), "`{words}` missing from: {message}");
        }
        other => panic!("{file}: expected an Io error with `{words}`, got {other:?}"),
    }
}

/// A LeRobot directory with a valid config.json and model.safetensors.
fn lerobot_dir(name: &str) -> PathBuf {
    let dir = temp_dir(name);
    let t = Tiny::new();
    std::fs::write(dir.join("config.json"), t.config_json()).unwrap();
    std::fs::write(dir.join("model.safetensors"), common::serialize(&t.values(1), None, safetensors::Dtype::F32)).unwrap();
    assert!(Policy::open(&dir, &Options::default()).is_ok());
    dir
}

#[test]
fn a_fifo_as_the_checkpoint_is_refused_not_waited_on() {
    let dir = temp_dir("fifo-file");
    let fifo = dir.join("policy.safetensors");
    mkfifo(&fifo);
    io_error_naming(open_within_a_minute(&fifo), "policy.safetensors", "FIFO");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_fifo_inside_a_lerobot_directory_is_refused_by_name() {
    for file in ["config.json", "model.safetensors", "policy_preprocessor_step_3_normalizer_processor.safetensors"] {
        let dir = lerobot_dir("fifo-dir");
        let _ = std::fs::remove_file(dir.join(file));
        mkfifo(&dir.join(file));
        io_error_naming(open_within_a_minute(&dir), file, "FIFO");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn config_linked_to_dev_zero_is_refused_not_read_until_memory_runs_out() {
    let dir = lerobot_dir("dev-zero");
    std::fs::remove_file(dir.join("config.json")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.join("config.json")).unwrap();
    io_error_naming(open_within_a_minute(&dir), "config.json", "character device");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_directory_named_model_safetensors_is_called_a_directory() {
    let dir = lerobot_dir("dir-model");
    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
    std::fs::create_dir(dir.join("model.safetensors")).unwrap();
    io_error_naming(open_within_a_minute(&dir), "model.safetensors", "is a directory");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_oversized_config_json_is_refused_by_its_size() {
    let dir = lerobot_dir("big-config");
    let t = Tiny::new();
    // Valid JSON padded with 17 MB of spaces: over the 16 MiB cap for JSON files.
    let padded = format!("{}{}", t.config_json(), " ".repeat(17 << 20));
    std::fs::write(dir.join("config.json"), padded).unwrap();
    io_error_naming(open_within_a_minute(&dir), "config.json", "JSON size limit");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_checkpoint_larger_than_the_memory_budget_is_not_read() {
    let dir = temp_dir("budget-file");
    let path = dir.join("policy.safetensors");
    std::fs::write(&path, Tiny::new().checkpoint(1)).unwrap();
    let options = Options { memory_budget: Some(1 << 20), ..Options::default() };
    io_error_naming(Policy::open(&path, &options), "policy.safetensors", "memory budget");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn truncating_the_file_while_it_loads_is_an_error_or_a_complete_load_never_a_crash() {
    // With a memory map, pages cut off by the truncation raised SIGBUS in the middle of the load
    // and killed this process (8 of 8 rounds). Every round must end with a result here.
    let dir = temp_dir("shrink");
    let path = dir.join("policy.safetensors");
    let bytes = Tiny::new().checkpoint(1);
    let mut outcomes = Vec::new();
    for round in 0..8u64 {
        std::fs::write(&path, &bytes).unwrap();
        let p = path.clone();
        let cutter = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_micros(200 * round));
            let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
            f.set_len(4096).unwrap();
        });
        let result = Policy::open(&path, &Options::default());
        cutter.join().unwrap();
        match &result {
            Ok(_) | Err(Error::Truncated { .. }) | Err(Error::MissingTensor { .. }) | Err(Error::BadHeader { .. }) => {}
            Err(other) => panic!("round {round}: unexpected error {other:?}"),
        }
        outcomes.push(result.map(|_| ()).map_err(|e| e.to_string()));
    }
    // The file ends at 4096 bytes: a load that starts after the cut must say it is truncated.
    let after = Policy::open(&path, &Options::default());
    assert!(matches!(after, Err(Error::Truncated { .. })), "{after:?}");
    eprintln!("outcomes: {outcomes:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
