//! The bare-metal platform (`aarch64-unknown-none`, no operating system): an entry point that
//! enables the FP/SIMD registers, sets up the stack and zeroes .bss, a bump allocator over a static
//! heap, a panic handler, and output and exit through Arm semihosting (as `qemu-system-aarch64
//! -semihosting` or a debugger provides). Linked at the RAM of QEMU's `virt` board (`bare.ld`);
//! act-core/tests/no_std.rs runs it there.
use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;

core::arch::global_asm!(
    ".section .text._start, \"ax\"",
    ".global _start",
    "_start:",
    // Advanced SIMD and FP instructions trap at EL1 until CPACR_EL1.FPEN (bits 20-21) allows them;
    // act-core's kernels are NEON code.
    "mov x0, #(3 << 20)",
    "msr cpacr_el1, x0",
    "isb",
    "ldr x0, =__stack_top",
    "mov sp, x0",
    // Zero .bss (the heap and its cursor): a raw image loader does not.
    "ldr x0, =__bss_start",
    "ldr x1, =__bss_end",
    "2: cmp x0, x1",
    "b.hs 3f",
    "str xzr, [x0], #8",
    "b 2b",
    "3: bl bare_main",
    "1: wfe",
    "b 1b",
);

const HEAP_SIZE: usize = 4 << 20;

#[repr(C, align(16))]
struct Heap([u8; HEAP_SIZE]);

/// Bump allocation over `heap`: act-core allocates once at load and frees at drop, so a program
/// that loads one policy needs nothing more. Exhaustion returns null, which act-core's callers see
/// as an allocation failure. Plain loads and stores, no atomics: one core, and with the MMU off
/// all memory is Device memory, where exclusive accesses are not guaranteed to work.
struct BumpAlloc {
    heap: UnsafeCell<Heap>,
    next: UnsafeCell<usize>,
}

// SAFETY: this program runs on one core with no interrupts; nothing allocates concurrently.
unsafe impl Sync for BumpAlloc {}

// SAFETY: returned blocks are aligned to `l.align()`, lie inside `heap`, and never overlap (the
// cursor only moves forward, and only this single-threaded program moves it).
unsafe impl GlobalAlloc for BumpAlloc {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let base = self.heap.get() as usize;
        // SAFETY: single-threaded (see the Sync impl), so this is the only access to the cursor.
        let next = unsafe { &mut *self.next.get() };
        let start = (base + *next).next_multiple_of(l.align()) - base;
        match start.checked_add(l.size()) {
            Some(end) if end <= HEAP_SIZE => {
                *next = end;
                (base + start) as *mut u8
            }
            _ => core::ptr::null_mut(),
        }
    }
    unsafe fn dealloc(&self, _: *mut u8, _: Layout) {}
}

#[global_allocator]
static ALLOC: BumpAlloc = BumpAlloc { heap: UnsafeCell::new(Heap([0; HEAP_SIZE])), next: UnsafeCell::new(0) };

/// An Arm semihosting call (`HLT #0xF000` on AArch64): operation in x0, argument in x1.
fn semihost(op: u64, arg: u64) -> u64 {
    let ret;
    // SAFETY: the debugger or emulator services the call; it reads only the memory `arg` names.
    unsafe { core::arch::asm!("hlt #0xf000", inout("x0") op => ret, in("x1") arg, options(nostack)) };
    ret
}

/// SYS_WRITEC for each byte (SYS_WRITE0 would need a terminating NUL).
pub fn say(s: &str) {
    for b in s.bytes() {
        semihost(0x03, &b as *const u8 as u64);
    }
}

fn exit(code: i32) -> ! {
    // SYS_EXIT with ADP_Stopped_ApplicationExit and the exit code.
    let block = [0x20026u64, code as u64];
    semihost(0x18, block.as_ptr() as u64);
    loop {
        core::hint::spin_loop();
    }
}

#[unsafe(no_mangle)]
extern "C" fn bare_main() -> ! {
    exit(super::check())
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    exit(101)
}
