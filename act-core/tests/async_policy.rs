//! The asynchronous stepper: alignment of late chunks, errors, panics, reset and drop.
//!
//! Most tests run it over a stand-in chunk source whose chunk encodes time: from an observation
//! whose qpos[0] is x, action i of the chunk is x + i in every dimension. Feeding qpos[0] = t at
//! step t, an aligned chunk's action for step t is exactly t, however late the chunk arrived, and a
//! naive queue's is t minus the chunk's delay: a check that holds for any thread timing.
mod common;
use act_core::{Alignment, AsyncOptions, AsyncPolicy, Blend, ChunkSource, Config, Error, Options, Policy};
use common::{image, Tiny};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Clock {
    config: Config,
    delay: Duration,
    /// Panic on this query (0-based), if set.
    panic_at: Option<usize>,
    queries: Arc<AtomicUsize>,
    dropped: Arc<AtomicBool>,
}

impl Clock {
    fn new(chunk: usize, delay_ms: u64) -> Clock {
        let mut t = Tiny::new();
        t.chunk = chunk;
        t.cameras = vec![("top", 32, 32)];
        Clock {
            config: Config::from_json(&t.config_json()).unwrap(),
            delay: Duration::from_millis(delay_ms),
            panic_at: None,
            queries: Arc::default(),
            dropped: Arc::default(),
        }
    }
}

impl ChunkSource for Clock {
    fn config(&self) -> &Config {
        &self.config
    }
    fn predict(&mut self, qpos: &[f32], _images: &[&[u8]], out: &mut [f32]) -> act_core::Result<()> {
        let n = self.queries.fetch_add(1, Ordering::SeqCst);
        if self.panic_at == Some(n) {
            panic!("stand-in query {n} panics");
        }
        std::thread::sleep(self.delay);
        let a = self.config.action_dim;
        for (i, row) in out.chunks_exact_mut(a).enumerate() {
            row.fill(qpos[0] + i as f32);
        }
        Ok(())
    }
}

impl Drop for Clock {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

/// Runs `steps` steps `period` apart with qpos[0] = offset + t; returns each step's action[0].
fn run(p: &mut AsyncPolicy, steps: usize, period: Duration, offset: f32) -> Vec<f32> {
    let img = image(32, 32, 1);
    let mut out = Vec::new();
    for t in 0..steps {
        let mut q = [0.0f32; 14];
        q[0] = offset + t as f32;
        let mut action = [0.0f32; 14];
        p.step(&q, &[&img], &mut action).unwrap();
        assert!(action.iter().all(|&v| v == action[0]));
        out.push(action[0]);
        std::thread::sleep(period);
    }
    out
}

#[test]
fn aligned_chunks_give_the_action_for_the_current_step_however_late_they_arrive() {
    for blend in [Blend::Latest, Blend::Ensemble(0.1)] {
        // A query takes ~4 steps; a chunk of 40 lasts long enough that nothing is held.
        let mut p = AsyncPolicy::new(Clock::new(40, 20), AsyncOptions { blend, alignment: Alignment::Observation }).unwrap();
        let actions = run(&mut p, 60, Duration::from_millis(5), 0.0);
        for (t, &a) in actions.iter().enumerate() {
            assert!((a - t as f32).abs() < 1e-4, "{blend:?}: step {t} got {a}");
        }
        let s = p.stats();
        assert_eq!(s.steps, 60);
        assert_eq!(s.held, 0);
        assert!(s.chunks >= 3 && s.chunks < 60, "{blend:?}: {s:?}: queries run back to back, not once per step");
        assert!(s.staleness_max >= 2, "{blend:?}: {s:?}: chunks arrived late, so the actions came from older observations");
    }
}

#[test]
fn a_naive_queue_plays_late_chunks_from_their_first_action() {
    let mut p = AsyncPolicy::new(Clock::new(40, 20), AsyncOptions { blend: Blend::Latest, alignment: Alignment::Arrival }).unwrap();
    let actions = run(&mut p, 60, Duration::from_millis(5), 0.0);
    assert_eq!(actions[0], 0.0, "the first chunk is waited for, so it is on time");
    assert!(actions.iter().enumerate().all(|(t, &a)| a <= t as f32 + 1e-4), "{actions:?}");
    let late = actions.iter().enumerate().filter(|&(t, &a)| a < t as f32 - 0.5).count();
    assert!(late > 30, "a naive queue lags by the query time: only {late} of 60 steps behind: {actions:?}");
}

#[test]
fn steps_do_not_wait_for_queries_and_exhausted_chunks_hold_the_last_action() {
    // Queries of 150 ms, chunks of 5 steps, a step every 2 ms: the chunk runs out long before the
    // next query ends. Only the first step may wait for a query.
    let mut p = AsyncPolicy::new(Clock::new(5, 150), AsyncOptions { blend: Blend::Latest, alignment: Alignment::Observation }).unwrap();
    let img = image(32, 32, 1);
    let mut actions = Vec::new();
    for t in 0..40 {
        let mut q = [0.0f32; 14];
        q[0] = t as f32;
        let mut action = [0.0f32; 14];
        let start = Instant::now();
        p.step(&q, &[&img], &mut action).unwrap();
        let took = start.elapsed();
        if t == 0 {
            assert!(took >= Duration::from_millis(140), "the first step waits for the first chunk: {took:?}");
        } else {
            assert!(took < Duration::from_millis(75), "step {t} waited for a query: {took:?}");
        }
        actions.push(action[0]);
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(&actions[..5], &[0.0, 1.0, 2.0, 3.0, 4.0]);
    let held = actions[5..].iter().take_while(|&&a| a == 4.0).count();
    assert!(held >= 25, "held after the chunk ran out until the next arrived: {actions:?}");
    assert!(p.stats().held >= 25, "{:?}", p.stats());
}

#[test]
fn bad_observations_are_refused_and_the_chunks_already_received_stay() {
    let mut p = AsyncPolicy::new(Clock::new(20, 1), AsyncOptions { blend: Blend::Latest, alignment: Alignment::Observation }).unwrap();
    let img = image(32, 32, 1);
    let mut action = [0.0f32; 14];
    p.step(&[0.0; 14], &[&img], &mut action).unwrap();
    let mut q = [1.0f32; 14];
    q[3] = f32::NAN;
    assert_eq!(p.step(&q, &[&img], &mut action), Err(Error::NonFiniteInput { input: "qpos", index: 3 }));
    assert!(matches!(p.step(&[1.0; 13], &[&img], &mut action), Err(Error::InputLength { input: "qpos", .. })));
    assert!(matches!(p.step(&[1.0; 14], &[&img[..10]], &mut action), Err(Error::InputLength { .. })));
    assert!(matches!(p.step(&[1.0; 14], &[&img], &mut action[..3]), Err(Error::InputLength { input: "action_out", .. })));
    // Refused steps do not advance time; the next good one is step 1 and chunk 0 still serves it.
    p.step(&[1.0; 14], &[&img], &mut action).unwrap();
    assert!(action[0] >= 1.0 - 1e-6, "{action:?}");
    assert_eq!(p.stats().steps, 2);
}

#[test]
fn a_panic_in_the_inference_thread_is_an_error_on_the_next_steps_never_a_hang() {
    let mut clock = Clock::new(20, 1);
    clock.panic_at = Some(1);
    let mut p = AsyncPolicy::new(clock, AsyncOptions { blend: Blend::Latest, alignment: Alignment::Observation }).unwrap();
    let img = image(32, 32, 1);
    let mut action = [0.0f32; 14];
    p.step(&[0.0; 14], &[&img], &mut action).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let err = loop {
        match p.step(&[0.0; 14], &[&img], &mut action) {
            Ok(()) => assert!(Instant::now() < deadline, "the failure was never reported"),
            Err(e) => break e,
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    assert_eq!(err, Error::InferenceFailed);
    assert!(p.failure().unwrap().contains("stand-in query 1 panics"), "{:?}", p.failure());
    assert_eq!(p.step(&[0.0; 14], &[&img], &mut action), Err(Error::InferenceFailed), "it stays failed");
    // A reset does not make the first step wait forever on a thread that stopped.
    p.reset();
    assert_eq!(p.step(&[0.0; 14], &[&img], &mut action), Err(Error::InferenceFailed));
}

#[test]
fn dropping_the_policy_during_a_query_joins_the_inference_thread() {
    let clock = Clock::new(20, 300);
    let (queries, dropped) = (clock.queries.clone(), clock.dropped.clone());
    let mut p = AsyncPolicy::new(clock, AsyncOptions { blend: Blend::Latest, alignment: Alignment::Observation }).unwrap();
    let img = image(32, 32, 1);
    let mut action = [0.0f32; 14];
    p.step(&[0.0; 14], &[&img], &mut action).unwrap();
    p.step(&[1.0; 14], &[&img], &mut action).unwrap(); // starts a second 300 ms query
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(queries.load(Ordering::SeqCst), 2);
    let start = Instant::now();
    drop(p);
    assert!(dropped.load(Ordering::SeqCst), "drop returned before the inference thread let go of the source");
    assert!(start.elapsed() >= Duration::from_millis(200), "drop waits for the running query, then joins");
}

#[test]
fn reset_waits_for_the_new_episodes_first_chunk() {
    let mut p = AsyncPolicy::new(Clock::new(40, 15), AsyncOptions { blend: Blend::Ensemble(0.0), alignment: Alignment::Observation }).unwrap();
    run(&mut p, 10, Duration::from_millis(3), 0.0);
    p.reset();
    assert_eq!(p.newest_chunk_age(), None);
    // Episode 2's observations are 1000 + t: no chunk of episode 1 may leak into it.
    let actions = run(&mut p, 20, Duration::from_millis(3), 1000.0);
    for (t, &a) in actions.iter().enumerate() {
        assert!((a - (1000.0 + t as f32)).abs() < 1e-3, "step {t} of episode 2 got {a}");
    }
    assert!(p.newest_chunk_age().is_some());
}

#[test]
fn a_real_policy_serves_the_chunk_of_the_observation_it_was_computed_from() {
    // Checked against a second policy's predict on the same observation (the async one only moves
    // the computation to another thread; the chunk must be the same to the last bit).
    let mut t = Tiny::new();
    t.cameras = vec![("top", 32, 32)];
    t.chunk = 30;
    let bytes = t.checkpoint(4);
    let mut sync = Policy::from_bytes(&bytes, &Options { threads: 2, ..Default::default() }).unwrap();
    let async_policy = Policy::from_bytes(&bytes, &Options { threads: 2, ..Default::default() }).unwrap();
    let mut p = AsyncPolicy::new(async_policy, AsyncOptions { blend: Blend::Latest, alignment: Alignment::Observation }).unwrap();
    let imgs: Vec<Vec<u8>> = (0..12).map(|s| image(32, 32, s)).collect();
    let qpos = |t: usize| -> [f32; 14] { std::array::from_fn(|i| 0.1 * i as f32 - 0.02 * t as f32) };
    let mut chunk = vec![0.0f32; t.chunk * t.action];
    for (step, img) in imgs.iter().enumerate() {
        let mut action = [0.0f32; 14];
        p.step(&qpos(step), &[img], &mut action).unwrap();
        let t0 = step - p.newest_chunk_age().unwrap();
        sync.predict(&qpos(t0), &[&imgs[t0]], &mut chunk).unwrap();
        let k = step - t0;
        assert_eq!(&action[..], &chunk[k * 14..(k + 1) * 14], "step {step}: action {k} of the chunk from step {t0}");
        std::thread::sleep(Duration::from_millis(2));
    }
}
