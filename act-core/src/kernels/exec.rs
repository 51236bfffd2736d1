//! Running a job on several threads. `Executor` is the seam: without `std` only the serial
//! executor exists; with `std`, `ThreadPool` keeps its worker threads from load to drop, so a
//! parallel region allocates nothing.

/// Runs `job(part)` for every part in `0..parts()`, returning when all have finished.
pub trait Executor: Sync {
    fn parts(&self) -> usize;
    fn run(&self, job: &(dyn Fn(usize) + Sync));
}

/// Runs `job(part, i)` for every `i` in `0..n` on `exec`'s parts, each part claiming the next
/// unclaimed `i` until none is left: a part whose core is busy with something else takes fewer
/// items instead of holding up the step (a static split waits for its slowest part). `part`
/// identifies the running part, for per-part scratch. Allocation-free.
pub fn run_dynamic(exec: &dyn Executor, n: usize, job: &(dyn Fn(usize, usize) + Sync)) {
    use core::sync::atomic::{AtomicUsize, Ordering};
    if exec.parts() == 1 || n <= 1 {
        (0..n).for_each(|i| job(0, i));
        return;
    }
    let next = AtomicUsize::new(0);
    exec.run(&|part| loop {
        // Relaxed is enough: the counter only hands out indices; `run`'s completion wait orders
        // the results.
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= n {
            break;
        }
        job(part, i);
    });
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
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::sync::{Arc, Condvar, Mutex};
    use std::thread::JoinHandle;
    use std::time::{Duration, Instant};

    /// How long a worker (and the caller waiting for workers) spins before sleeping on a condvar.
    /// A step runs dozens of parallel regions back to back; spinning across the short serial gaps
    /// between them avoids a futex wake-up (and the scheduler's latency) per region, which is what
    /// made 2-thread steps unsteady. Between steps (a control period) the workers sleep.
    const SPIN: Duration = Duration::from_micros(300);

    /// A job pointer with its lifetime erased. Sound because `ThreadPool::run` does not return
    /// (so the job it points to stays alive) until every worker has finished calling it.
    #[derive(Clone, Copy)]
    struct JobPtr(*const (dyn Fn(usize) + Sync));
    // SAFETY: the pointee is Sync, and the pointer is only dereferenced while `run` keeps it alive.
    unsafe impl Send for JobPtr {}

    struct State {
        job: Option<JobPtr>,
        shutdown: bool,
    }

    struct Shared {
        state: Mutex<State>,
        /// Bumped (under the lock, after `job` is set) once per `run`.
        generation: AtomicU64,
        /// Workers still running the current job.
        pending: AtomicUsize,
        start: Condvar,
        done: Condvar,
    }

    /// Spins until `ready()` or `SPIN` has passed; returns whether it became ready.
    fn spin_until(ready: impl Fn() -> bool) -> bool {
        let t0 = Instant::now();
        let mut i = 0u32;
        loop {
            if ready() {
                return true;
            }
            std::hint::spin_loop();
            i = i.wrapping_add(1);
            // Reading the clock costs more than a pause; check it every 64 rounds.
            if i.is_multiple_of(64) && t0.elapsed() >= SPIN {
                return false;
            }
        }
    }

    /// `threads` parts: the caller runs part 0, `threads - 1` persistent workers run the rest.
    pub struct ThreadPool {
        shared: Arc<Shared>,
        workers: Vec<JoinHandle<()>>,
    }

    impl ThreadPool {
        /// `threads` parts; the workers keep the scheduling policy they inherit from the calling
        /// thread (Linux threads inherit their creator's).
        ///
        /// # Panics
        /// If the system cannot start a thread; `with_priority(threads, None)` returns that as an
        /// error instead (what `Policy` loads with).
        pub fn new(threads: usize) -> ThreadPool {
            ThreadPool::with_priority(threads, None).unwrap_or_else(|e| panic!("{e}"))
        }

        /// As `new`, with the workers under `SCHED_FIFO` at `priority` when it is `Some` (see
        /// `crate::realtime`). The calling thread, which runs part 0, is left as it is: give it
        /// the same priority, or a step waits on a thread the kernel may preempt.
        pub fn with_priority(threads: usize, priority: Option<u8>) -> crate::Result<ThreadPool> {
            let pool = ThreadPool::spawn(threads)?;
            if let Some(p) = priority {
                #[cfg(unix)]
                for w in &pool.workers {
                    use std::os::unix::thread::JoinHandleExt;
                    // On error `pool` drops here, which stops and joins the workers.
                    crate::realtime::set_thread_priority(w.as_pthread_t(), Some(p))?;
                }
                #[cfg(not(unix))]
                crate::realtime::check(p)?;
            }
            pool.warm_up();
            Ok(pool)
        }

        /// Starts the workers. If the system cannot start one, the pool built so far drops (which
        /// stops and joins the workers already started) and the error names the thread.
        fn spawn(threads: usize) -> crate::Result<ThreadPool> {
            let shared = Arc::new(Shared {
                state: Mutex::new(State { job: None, shutdown: false }),
                generation: AtomicU64::new(0),
                pending: AtomicUsize::new(0),
                start: Condvar::new(),
                done: Condvar::new(),
            });
            let mut pool = ThreadPool { shared, workers: Vec::with_capacity(threads.saturating_sub(1)) };
            for part in 1..threads.max(1) {
                let shared = Arc::clone(&pool.shared);
                let spawned = std::thread::Builder::new().name(format!("act-core-{part}")).spawn(move || worker(&shared, part));
                match spawned {
                    Ok(w) => pool.workers.push(w),
                    Err(e) => {
                        return Err(crate::error::config_err(
                            "threads",
                            format!("the system could not start worker thread {part} of {threads}: {e}"),
                        ))
                    }
                }
            }
            Ok(pool)
        }

        /// One empty job: every worker finishes its start-up (thread-locals, first lock) here, at
        /// load, so no step ever pays for it or allocates for it.
        fn warm_up(&self) {
            self.run(&|_| {});
        }
    }

    fn worker(shared: &Shared, part: usize) {
        let mut seen = 0u64;
        loop {
            spin_until(|| shared.generation.load(Ordering::Acquire) != seen);
            let job = {
                let mut s = shared.state.lock().unwrap_or_else(|e| e.into_inner());
                while shared.generation.load(Ordering::Acquire) == seen && !s.shutdown {
                    s = shared.start.wait(s).unwrap_or_else(|e| e.into_inner());
                }
                if s.shutdown {
                    return;
                }
                seen = shared.generation.load(Ordering::Acquire);
                s.job.expect("a new generation carries a job")
            };
            // SAFETY: `run` keeps the job alive until `pending` reaches zero below.
            let f = unsafe { &*job.0 };
            // A panicking job must still be counted, or `run` would wait forever.
            let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(part))).is_ok();
            if !ok {
                shared.state.lock().unwrap_or_else(|e| e.into_inner()).shutdown = true;
            }
            if shared.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
                // Taking the lock orders this notify after a caller's check-then-wait.
                let _s = shared.state.lock().unwrap_or_else(|e| e.into_inner());
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
                self.shared.pending.store(self.workers.len(), Ordering::Release);
                self.shared.generation.fetch_add(1, Ordering::AcqRel);
                self.shared.start.notify_all();
            }
            struct WaitAll<'a>(&'a Shared);
            impl Drop for WaitAll<'_> {
                fn drop(&mut self) {
                    let sh = self.0;
                    if !spin_until(|| sh.pending.load(Ordering::Acquire) == 0) {
                        let mut s = sh.state.lock().unwrap_or_else(|e| e.into_inner());
                        while sh.pending.load(Ordering::Acquire) > 0 {
                            s = sh.done.wait(s).unwrap_or_else(|e| e.into_inner());
                        }
                    }
                    sh.state.lock().unwrap_or_else(|e| e.into_inner()).job = None;
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
