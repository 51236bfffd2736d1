//! Running a job on several threads. `Executor` is the seam: without `std` only the serial
//! executor exists; with `std`, `ThreadPool` keeps its worker threads from load to drop, so a
//! parallel region allocates nothing.

/// Runs `job(part)` for every part in `0..parts()`, returning when all have finished.
pub trait Executor: Sync {
    fn parts(&self) -> usize;
    fn run(&self, job: &(dyn Fn(usize) + Sync));
}

/// Everything on the calling thread.
pub struct Serial;

impl Executor for Serial {
    fn parts(&self) -> usize {
        1
    }
    fn run(&self, job: &(dyn Fn(usize) + Sync)) {
        job(0)
    }
}

#[cfg(feature = "std")]
pub use pool::ThreadPool;

#[cfg(feature = "std")]
mod pool {
    use super::Executor;
    use std::sync::{Arc, Condvar, Mutex};
    use std::thread::JoinHandle;

    /// A job pointer with its lifetime erased. Sound because `ThreadPool::run` does not return
    /// (so the job it points to stays alive) until every worker has finished calling it.
    #[derive(Clone, Copy)]
    struct JobPtr(*const (dyn Fn(usize) + Sync));
    // SAFETY: the pointee is Sync, and the pointer is only dereferenced while `run` keeps it alive.
    unsafe impl Send for JobPtr {}

    struct State {
        job: Option<JobPtr>,
        generation: u64,
        pending: usize,
        shutdown: bool,
    }

    struct Shared {
        state: Mutex<State>,
        start: Condvar,
        done: Condvar,
    }

    /// `threads` parts: the caller runs part 0, `threads - 1` persistent workers run the rest.
    pub struct ThreadPool {
        shared: Arc<Shared>,
        workers: Vec<JoinHandle<()>>,
    }

    impl ThreadPool {
        pub fn new(threads: usize) -> ThreadPool {
            let shared = Arc::new(Shared {
                state: Mutex::new(State { job: None, generation: 0, pending: 0, shutdown: false }),
                start: Condvar::new(),
                done: Condvar::new(),
            });
            let workers = (1..threads.max(1))
                .map(|part| {
                    let shared = Arc::clone(&shared);
                    std::thread::Builder::new()
                        .name(format!("act-core-{part}"))
                        .spawn(move || worker(&shared, part))
                        .expect("spawn act-core worker thread")
                })
                .collect();
            let pool = ThreadPool { shared, workers };
            // One empty job: every worker finishes its start-up (thread-locals, first lock) here,
            // at load, so no step ever pays for it or allocates for it.
            pool.run(&|_| {});
            pool
        }
    }

    fn worker(shared: &Shared, part: usize) {
        let mut seen = 0u64;
        loop {
            let job = {
                let mut s = shared.state.lock().unwrap_or_else(|e| e.into_inner());
                while s.generation == seen && !s.shutdown {
                    s = shared.start.wait(s).unwrap_or_else(|e| e.into_inner());
                }
                if s.shutdown {
                    return;
                }
                seen = s.generation;
                s.job.expect("a new generation carries a job")
            };
            // SAFETY: `run` keeps the job alive until `pending` reaches zero below.
            let f = unsafe { &*job.0 };
            // A panicking job must still be counted, or `run` would wait forever.
            let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(part))).is_ok();
            let mut s = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            s.pending -= 1;
            if !ok {
                s.shutdown = true;
            }
            if s.pending == 0 {
                shared.done.notify_all();
            }
        }
    }

    impl Executor for ThreadPool {
        fn parts(&self) -> usize {
            self.workers.len() + 1
        }

        fn run(&self, job: &(dyn Fn(usize) + Sync)) {
            if self.workers.is_empty() {
                return job(0);
            }
            // SAFETY (lifetime erasure): see `JobPtr`; we wait for pending == 0 before returning,
            // also when part 0 panics (the guard below waits in its drop).
            let erased: *const (dyn Fn(usize) + Sync + '_) = job;
            let ptr = JobPtr(unsafe { core::mem::transmute::<*const (dyn Fn(usize) + Sync + '_), *const (dyn Fn(usize) + Sync + 'static)>(erased) });
            {
                let mut s = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
                assert!(!s.shutdown, "act-core thread pool: a worker panicked earlier");
                s.job = Some(ptr);
                s.pending = self.workers.len();
                s.generation += 1;
                self.shared.start.notify_all();
            }
            struct WaitAll<'a>(&'a Shared);
            impl Drop for WaitAll<'_> {
                fn drop(&mut self) {
                    let mut s = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
                    while s.pending > 0 {
                        s = self.0.done.wait(s).unwrap_or_else(|e| e.into_inner());
                    }
                    s.job = None;
                }
            }
            let _wait = WaitAll(&self.shared);
            job(0);
        }
    }

    impl Drop for ThreadPool {
        fn drop(&mut self) {
            self.shared.state.lock().unwrap_or_else(|e| e.into_inner()).shutdown = true;
            self.shared.start.notify_all();
            for w in self.workers.drain(..) {
                let _ = w.join();
            }
        }
    }
}
