//! A triple buffer: one thread publishes values, another takes the newest, and neither ever waits
//! for the other (no lock, so no priority inversion when the reader is a real-time control loop
//! and the writer an inference thread the kernel may preempt at any instruction).
//!
//! Three buffers: the writer owns one (its back buffer), the reader owns one (its front buffer),
//! and the third sits in the middle. Publishing swaps the back buffer with the middle one and marks
//! the middle fresh; taking swaps the front buffer with a fresh middle. The buffer indices are
//! always a permutation of {0, 1, 2}, so each buffer has exactly one owner at a time.
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU8, Ordering};

const FRESH: u8 = 4;
const INDEX: u8 = 3;

pub(crate) struct TripleBuffer<T> {
    buffers: [UnsafeCell<T>; 3],
    /// The middle buffer's index, with `FRESH` set when it holds a value not taken yet.
    middle: AtomicU8,
}

// SAFETY: a buffer is only accessed by the side that owns it (see the module documentation and
// the `Writer` / `Reader` invariants), and ownership moves through `middle` with Release/Acquire
// ordering, so the accesses of two threads to one buffer never overlap and are ordered.
unsafe impl<T: Send> Sync for TripleBuffer<T> {}

/// The writing side: owns `back`. One per buffer (the constructor returns the only one).
pub(crate) struct Writer {
    back: u8,
}

/// The reading side: owns `front`. One per buffer.
pub(crate) struct Reader {
    front: u8,
}

impl<T> TripleBuffer<T> {
    /// Three copies of `make()`; the writer starts with buffer 0, the reader with 1, 2 is in the
    /// middle and not fresh.
    pub(crate) fn new(mut make: impl FnMut() -> T) -> (TripleBuffer<T>, Writer, Reader) {
        let buffers = [UnsafeCell::new(make()), UnsafeCell::new(make()), UnsafeCell::new(make())];
        (TripleBuffer { buffers, middle: AtomicU8::new(2) }, Writer { back: 0 }, Reader { front: 1 })
    }

    /// The writer's back buffer, to fill before `publish`.
    pub(crate) fn back<'a>(&'a self, w: &'a mut Writer) -> &'a mut T {
        // SAFETY: `w.back` is owned by the unique writer, which `&mut Writer` borrows for as long as
        // the reference lives; no other thread holds this index (the indices are a permutation).
        unsafe { &mut *self.buffers[w.back as usize].get() }
    }

    /// Hands the back buffer to the reader (replacing a value it has not taken yet) and takes the
    /// old middle buffer as the new back buffer.
    pub(crate) fn publish(&self, w: &mut Writer) {
        // Release: the writes to the back buffer happen before the reader's Acquire in `take`.
        // Acquire: the reader's reads of the buffer we get back happened before its release.
        let old = self.middle.swap(w.back | FRESH, Ordering::AcqRel);
        w.back = old & INDEX;
    }

    /// Whether a value was published since the reader last took one.
    pub(crate) fn has_fresh(&self) -> bool {
        self.middle.load(Ordering::Acquire) & FRESH != 0
    }

    /// The newest published value, if one arrived since the last `take` (it then stays readable
    /// through `front` until the next successful `take`).
    pub(crate) fn take<'a>(&'a self, r: &'a mut Reader) -> Option<&'a T> {
        if !self.has_fresh() {
            return None;
        }
        let old = self.middle.swap(r.front, Ordering::AcqRel);
        r.front = old & INDEX;
        Some(self.front(r))
    }

    /// The reader's front buffer: the value taken last.
    pub(crate) fn front<'a>(&'a self, r: &'a mut Reader) -> &'a T {
        // SAFETY: `r.front` is owned by the unique reader, borrowed for the reference's lifetime.
        unsafe { &*self.buffers[r.front as usize].get() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reader_gets_the_newest_value_once() {
        let (tb, mut w, mut r) = TripleBuffer::new(|| 0u32);
        assert!(tb.take(&mut r).is_none());
        *tb.back(&mut w) = 1;
        tb.publish(&mut w);
        *tb.back(&mut w) = 2;
        tb.publish(&mut w);
        assert_eq!(tb.take(&mut r), Some(&2), "1 was replaced before it was taken");
        assert!(tb.take(&mut r).is_none());
        assert_eq!(*tb.front(&mut r), 2);
    }

    #[test]
    fn values_cross_threads_intact_and_in_order() {
        // Each value is a vector whose every element equals its sequence number: a torn read
        // (two threads in one buffer) would show mixed elements.
        let (tb, mut w, mut r) = TripleBuffer::new(|| vec![0u64; 64]);
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 1..=20_000u64 {
                    tb.back(&mut w).fill(i);
                    tb.publish(&mut w);
                }
            });
            let mut last = 0;
            while last < 20_000 {
                if let Some(v) = tb.take(&mut r) {
                    assert!(v.iter().all(|&x| x == v[0]), "torn value");
                    assert!(v[0] > last, "values arrive in order");
                    last = v[0];
                }
            }
        });
    }
}
