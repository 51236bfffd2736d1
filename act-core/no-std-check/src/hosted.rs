//! The hosted platform: libc's allocator, `write` to stdout, `abort` on panic, C `main`.
use core::alloc::{GlobalAlloc, Layout};

unsafe extern "C" {
    fn aligned_alloc(align: usize, size: usize) -> *mut u8;
    fn free(ptr: *mut u8);
    fn abort() -> !;
    fn write(fd: i32, buf: *const u8, n: usize) -> isize;
}

struct LibcAlloc;

// SAFETY: aligned_alloc returns memory aligned to `align` (a power of two) or null; free
// releases it. Sizes are rounded up to a multiple of the alignment as C11 requires.
unsafe impl GlobalAlloc for LibcAlloc {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let align = l.align().max(core::mem::size_of::<usize>());
        unsafe { aligned_alloc(align, l.size().div_ceil(align) * align) }
    }
    unsafe fn dealloc(&self, p: *mut u8, _: Layout) {
        unsafe { free(p) }
    }
}

#[global_allocator]
static ALLOC: LibcAlloc = LibcAlloc;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // SAFETY: abort never returns and needs no state.
    unsafe { abort() }
}

/// The precompiled liballoc refers to the unwinding personality routine; with panic = "abort"
/// nothing ever unwinds, so it is never called.
#[unsafe(no_mangle)]
pub extern "C" fn rust_eh_personality() {}

pub fn say(s: &str) {
    // SAFETY: writes `s.len()` bytes from a valid slice to stdout.
    unsafe { write(1, s.as_ptr(), s.len()) };
}

#[unsafe(no_mangle)]
pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    super::check()
}
