//! Real-time scheduling (`Options::realtime_priority`, `act_core::realtime`): the kernel itself,
//! asked from inside each thread, must report `SCHED_FIFO` at the requested priority for the
//! workers and nothing changed for the caller; bad priorities are load errors naming the option;
//! a refusal is reported only when the operating system really refuses.
#![cfg(unix)]
mod common;
use act_core::kernels::exec::{Executor, ThreadPool};
use act_core::{realtime, Error, Options, Policy};
use common::{image, rel_err, Tiny};

/// The calling thread's (policy, priority), from the OS.
fn os_policy_of_this_thread() -> (i32, i32) {
    let mut policy = 0;
    // SAFETY: plain data; both out-pointers are valid for the call.
    let mut param: libc::sched_param = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::pthread_getschedparam(libc::pthread_self(), &mut policy, &mut param) }, 0);
    (policy, param.sched_priority)
}

/// act-core reported that the OS refused `priority`: check that it names the option and that the
/// OS does refuse it to a fresh thread of this process.
fn assert_really_refused(e: Error, priority: i32) {
    match &e {
        Error::Config { field, reason } => {
            assert_eq!(field, "realtime_priority");
            assert!(reason.contains("refused"), "{reason}");
        }
        other => panic!("expected a Config error naming realtime_priority, got {other:?}"),
    }
    let rc = std::thread::spawn(move || {
        // SAFETY: plain data, valid for the call; the thread ends right after.
        let mut param: libc::sched_param = unsafe { std::mem::zeroed() };
        param.sched_priority = priority;
        unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) }
    })
    .join()
    .unwrap();
    assert_ne!(rc, 0, "act-core reported `{e}`, but the OS grants SCHED_FIFO at {priority}");
}

#[test]
fn pool_workers_run_under_sched_fifo_at_the_requested_priority() {
    let caller = os_policy_of_this_thread();
    match ThreadPool::with_priority(3, Some(7)) {
        Ok(pool) => {
            let seen = std::sync::Mutex::new(vec![(-1, -1); 3]);
            pool.run(&|part| seen.lock().unwrap()[part] = os_policy_of_this_thread());
            let seen = seen.into_inner().unwrap();
            assert_eq!(seen[0], caller, "the calling thread (part 0) must keep its own policy");
            for (part, &got) in seen.iter().enumerate().skip(1) {
                assert_eq!(got, (libc::SCHED_FIFO, 7), "worker {part}: (policy, priority)");
            }
        }
        Err(e) => assert_really_refused(e, 7),
    }
}

#[test]
fn the_calling_thread_can_be_raised_and_restored() {
    std::thread::spawn(|| match realtime::set_current_thread_priority(Some(5)) {
        Ok(()) => {
            assert_eq!(os_policy_of_this_thread(), (libc::SCHED_FIFO, 5));
            assert_eq!(realtime::current_thread_priority(), Some(5));
            realtime::set_current_thread_priority(None).unwrap();
            assert_eq!(os_policy_of_this_thread(), (libc::SCHED_OTHER, 0));
            assert_eq!(realtime::current_thread_priority(), None);
        }
        Err(e) => assert_really_refused(e, 5),
    })
    .join()
    .unwrap();
}

#[test]
fn priorities_outside_sched_fifo_are_load_errors() {
    let t = Tiny::new();
    let bytes = t.checkpoint(3);
    // SAFETY: no preconditions.
    let max = unsafe { libc::sched_get_priority_max(libc::SCHED_FIFO) };
    let mut bad = vec![0u8];
    if max < 255 {
        bad.push(max as u8 + 1);
    }
    for p in bad {
        match Policy::from_bytes(&bytes, &Options { threads: 2, realtime_priority: Some(p), ..Default::default() }) {
            Err(Error::Config { field, reason }) => {
                assert_eq!(field, "realtime_priority");
                assert!(reason.contains("outside"), "{reason}");
            }
            other => panic!("priority {p}: expected a Config error, got {:?}", other.map(|_| "a policy")),
        }
    }
}

/// A policy with real-time workers computes what the single-threaded one does.
#[test]
fn realtime_workers_give_the_single_threaded_result() {
    let t = Tiny::new();
    let bytes = t.checkpoint(4);
    let imgs: Vec<Vec<u8>> = t.cameras.iter().enumerate().map(|(i, c)| image(c.1, c.2, i as u64)).collect();
    let views: Vec<&[u8]> = imgs.iter().map(|v| v.as_slice()).collect();
    let qpos: Vec<f32> = (0..t.state).map(|i| i as f32 * 0.05 - 0.3).collect();
    let mut want = vec![0.0f32; t.chunk * t.action];
    Policy::from_bytes(&bytes, &Options::default()).unwrap().predict(&qpos, &views, &mut want).unwrap();
    match Policy::from_bytes(&bytes, &Options { threads: 2, realtime_priority: Some(3), ..Default::default() }) {
        Ok(mut p) => {
            let mut got = vec![0.0f32; want.len()];
            for _ in 0..2 {
                p.predict(&qpos, &views, &mut got).unwrap();
                let err = rel_err(&got, &want);
                assert!(err < 1e-6, "rel err {err}");
            }
        }
        Err(e) => assert_really_refused(e, 3),
    }
}
