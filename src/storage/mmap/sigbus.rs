//! Turns a SIGBUS raised by our own copy into a file mapping (the file was truncated by another
//! program, or the disk failed a page) into an error from [`copy`]; any other SIGBUS still ends the
//! process, as it would without us.
//!
//! How, without longjmp (unsound over Rust frames): a process-wide handler, installed once, keeps the
//! handler it replaced (Rust's std installs one for stack overflows) and passes it every fault that is
//! not ours. A fault is ours when the kernel raised it on a thread that is inside [`copy`], at an
//! address inside that copy's destination: a SIGBUS from a memory access goes to the faulting thread,
//! so the destination lives in a thread-local ([`Window`]) and no table or lock is needed. For ours,
//! the handler marks the file poisoned, maps private anonymous memory over the destination's pages
//! and returns: the interrupted `memcpy` resumes into throwaway memory, finishes, and [`copy`]
//! returns `Err`. Every Rust frame runs to its end; the handler touches only atomics and makes raw
//! syscalls (`mmap`, `sigaction`, `raise`), keeping `errno`.
//!
//! After a fault the anonymous pages stay in the file's mapping, so nothing may trust a write into
//! that file again: the poison flag makes every later [`copy`] into it fail at once, and a copy that
//! another thread's fault overtook (its bytes shared a page with the faulting range) sees the flag
//! when it ends. Reads never use the mapping (they `pread`), and releasing or syncing pages works on
//! the file, not on the anonymous memory, so nothing else can mistake it for file data.

use std::ptr;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{compiler_fence, fence, AtomicBool, AtomicI32, AtomicPtr, AtomicUsize};
use std::sync::OnceLock;

use libc::{c_int, c_void, siginfo_t};

/// A copy whose destination could not be written (or whose file an earlier fault poisoned).
#[derive(Debug, PartialEq, Eq)]
pub struct Faulted;

/// The destination of the [`copy`] running on this thread (`start == end`: none), and where the
/// handler reports a fault in it.
struct Window {
    start: AtomicUsize,
    end: AtomicUsize,
    faulted: AtomicBool,
    poison: AtomicPtr<AtomicBool>,
}

thread_local! {
    // Const-initialised and without `Drop`: a plain `#[thread_local]` static, with no lazy
    // initialisation and no destructor to register, so the signal handler may read it.
    static WINDOW: Window = const {
        Window {
            start: AtomicUsize::new(0),
            end: AtomicUsize::new(0),
            faulted: AtomicBool::new(false),
            poison: AtomicPtr::new(ptr::null_mut()),
        }
    };
}

/// The page size, for the handler (which may not call `sysconf`).
static PAGE: AtomicUsize = AtomicUsize::new(4096);
/// The SIGBUS action we replaced: its handler (`SIG_DFL`, `SIG_IGN` or a function) and flags.
static PREVIOUS_HANDLER: AtomicUsize = AtomicUsize::new(libc::SIG_DFL);
static PREVIOUS_FLAGS: AtomicI32 = AtomicI32::new(0);
/// Whether [`install`] ran, and its errno if it failed.
static INSTALLED: OnceLock<Result<(), i32>> = OnceLock::new();

/// The system's page size.
pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n)
        .ok()
        .filter(|n| n.is_power_of_two())
        .unwrap_or(4096)
}

/// Installs the SIGBUS handler (once per process; later calls return the first result).
pub fn install() -> std::io::Result<()> {
    let result = INSTALLED.get_or_init(|| {
        PAGE.store(page_size(), SeqCst);
        // SAFETY: an all-zero `sigaction` is a valid value (integers, a mask, an optional fn pointer);
        // with a null new action, sigaction only writes the current one into `old`.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        if unsafe { libc::sigaction(libc::SIGBUS, ptr::null(), &mut old) } != 0 {
            return Err(last_errno());
        }
        // Recorded before ours is installed, so the handler always sees them.
        PREVIOUS_HANDLER.store(old.sa_sigaction, SeqCst);
        PREVIOUS_FLAGS.store(old.sa_flags, SeqCst);
        // SAFETY: as above; the action names a handler of the SA_SIGINFO signature. SA_ONSTACK: run on
        // the thread's alternate stack when it has one (std gives each of its threads one), as the
        // std handler we may chain to expects. No SA_NODEFER: a SIGBUS inside the handler kills.
        let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
        new.sa_sigaction = on_sigbus as extern "C" fn(c_int, *mut siginfo_t, *mut c_void) as usize;
        new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        unsafe { libc::sigemptyset(&mut new.sa_mask) };
        if unsafe { libc::sigaction(libc::SIGBUS, &new, ptr::null_mut()) } != 0 {
            return Err(last_errno());
        }
        Ok(())
    });
    result.map_err(std::io::Error::from_raw_os_error)
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EINVAL)
}

/// Copies `src` to `dst`. `Err(Faulted)` when the copy faulted (its bytes went to throwaway memory),
/// or `poison` was already set, or another thread's fault on the same file overtook this copy; the
/// copy's fault, if any, sets `poison`. Needs [`install`] first (without it a fault kills).
///
/// # Safety
/// `dst .. dst + src.len()` lies inside one live, writable, shared file mapping made by `mmap` (so
/// its pages are that mapping's alone), stays mapped during the call, and no Rust reference points
/// into it. `poison` is the flag of that mapping's file.
pub unsafe fn copy(src: &[u8], dst: *mut u8, poison: &AtomicBool) -> Result<(), Faulted> {
    if poison.load(SeqCst) {
        return Err(Faulted);
    }
    let start = dst as usize;
    let faulted = WINDOW.with(|w| {
        // `start` before `end` and `end` cleared first: the window is never wider than the copy.
        w.faulted.store(false, SeqCst);
        w.poison.store(ptr::from_ref(poison).cast_mut(), SeqCst);
        w.start.store(start, SeqCst);
        w.end.store(start + src.len(), SeqCst);
        // The handler runs on this thread: compiler fences keep the copy inside the window.
        compiler_fence(SeqCst);
        // SAFETY: the caller's contract. A fault in the destination is absorbed by the handler,
        // which makes the pages writable memory, so the copy always runs to its end.
        unsafe { ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) };
        compiler_fence(SeqCst);
        w.end.store(0, SeqCst);
        w.start.store(0, SeqCst);
        w.poison.store(ptr::null_mut(), SeqCst);
        w.faulted.load(SeqCst)
    });
    // A fault of another thread sets `poison` before its remap; a store of ours that landed in the
    // remapped memory went through the new page table, so after a full fence (our stores done) the
    // flag is visible here.
    fence(SeqCst);
    if faulted || poison.load(SeqCst) {
        poison.store(true, SeqCst);
        return Err(Faulted);
    }
    Ok(())
}

extern "C" fn on_sigbus(sig: c_int, info: *mut siginfo_t, ctx: *mut c_void) {
    // SAFETY: for an SA_SIGINFO handler the kernel passes a valid siginfo_t; si_addr is meaningful
    // for the kernel-raised codes (> 0) we act on.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
    // si_code > 0: raised by the kernel for an access (not sent by kill(2) or sigqueue(3)).
    if code > 0 && WINDOW.try_with(|w| w.absorb(addr)).unwrap_or(false) {
        return;
    }
    // SAFETY: the arguments are the ones the kernel gave us, passed on unchanged.
    unsafe { chain(sig, info, ctx) }
}

impl Window {
    /// In the handler: if `addr` lies in this thread's copy, poisons the file, maps anonymous memory
    /// over the copy's pages and marks the copy failed. False (not ours, or no remap) otherwise.
    fn absorb(&self, addr: usize) -> bool {
        let (start, end) = (self.start.load(SeqCst), self.end.load(SeqCst));
        if !(start..end).contains(&addr) {
            return false;
        }
        let page = PAGE.load(SeqCst);
        let lo = start & !(page - 1);
        let hi = end.next_multiple_of(page);
        let poison = self.poison.load(SeqCst);
        // SAFETY: `poison` was set by `copy` on this thread from a reference that outlives the
        // window (the window is cleared before `copy` returns).
        if let Some(flag) = unsafe { poison.as_ref() } {
            flag.store(true, SeqCst);
        }
        // SAFETY: errno is thread-local; mmap may change it, and the interrupted code must not see that.
        let errno = unsafe { *libc::__errno_location() };
        // SAFETY: `lo..hi` covers only pages of the copy's destination, which lies in one mapping
        // whose start is page-aligned and whose pages it alone owns (the contract of `copy`), so
        // MAP_FIXED replaces pages of that mapping and nothing else. glibc's mmap is a bare syscall.
        let p = unsafe {
            libc::mmap(
                lo as *mut c_void,
                hi - lo,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        // SAFETY: as above.
        unsafe { *libc::__errno_location() = errno };
        if p == libc::MAP_FAILED {
            return false; // cannot recover: the previous action (death) follows
        }
        self.faulted.store(true, SeqCst);
        true
    }
}

/// A SIGBUS that is not ours: what would have happened without us. The previous handler is called
/// (std's resets SIGBUS to the default and returns, so the access faults again and kills); with no
/// previous handler the default action is restored and the fault, or the signal sent, repeats.
///
/// # Safety
/// Only from the signal handler, with the arguments it received.
unsafe fn chain(sig: c_int, info: *mut siginfo_t, ctx: *mut c_void) {
    let previous = PREVIOUS_HANDLER.load(SeqCst);
    if previous == libc::SIG_DFL || previous == libc::SIG_IGN {
        // SAFETY: an all-zero sigaction with SIG_DFL is a valid action; sigaction and raise are
        // async-signal-safe. A kernel-raised fault repeats when we return; a sent signal is raised
        // again (blocked until we return, then default: the process ends).
        unsafe {
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &dfl, ptr::null_mut());
            if (*info).si_code <= 0 {
                libc::raise(sig);
            }
        }
        return;
    }
    if PREVIOUS_FLAGS.load(SeqCst) & libc::SA_SIGINFO != 0 {
        // SAFETY: whoever installed it declared this signature with SA_SIGINFO.
        let f: extern "C" fn(c_int, *mut siginfo_t, *mut c_void) =
            unsafe { std::mem::transmute(previous) };
        f(sig, info, ctx);
    } else {
        // SAFETY: a handler installed without SA_SIGINFO takes the signal number only.
        let f: extern "C" fn(c_int) = unsafe { std::mem::transmute(previous) };
        f(sig);
    }
}

#[cfg(test)]
mod tests;
