//! The guard on its own: a fault inside a copy is an error and poisons the file, copies on other
//! threads into healthy mappings are unaffected, and a fault outside any copy still kills (in a
//! forked child).

use super::*;
use memmap2::MmapRaw;
use std::time::{Duration, Instant};

/// A temporary file of `len` bytes, mapped.
fn mapped(len: usize) -> (tempfile::NamedTempFile, MmapRaw) {
    let file = tempfile::NamedTempFile::new().unwrap();
    file.as_file().set_len(len as u64).unwrap();
    let map = MmapRaw::map_raw(file.as_file()).unwrap();
    (file, map)
}

#[test]
fn a_copy_into_a_healthy_mapping_succeeds() {
    install().unwrap();
    let (file, map) = mapped(3 * page_size());
    let src: Vec<u8> = (0..2 * page_size() + 5).map(|i| (i % 251) as u8).collect();
    let poison = AtomicBool::new(false);
    // SAFETY: inside a live shared file mapping that nothing else references.
    let r = unsafe { copy(&src, map.as_mut_ptr().add(100), &poison) };
    assert_eq!(r, Ok(()));
    map.flush().unwrap();
    let back = std::fs::read(file.path()).unwrap();
    assert_eq!(&back[100..100 + src.len()], &src[..]);
    assert!(!poison.load(SeqCst));
}

#[test]
fn a_copy_into_a_truncated_file_is_an_error_and_poisons_the_file() {
    install().unwrap();
    let (file, map) = mapped(4 * page_size());
    file.as_file().set_len(0).unwrap();
    let src = vec![7u8; 2 * page_size()];
    let poison = AtomicBool::new(false);
    // SAFETY: inside a live shared file mapping that nothing else references.
    let r = unsafe { copy(&src, map.as_mut_ptr().add(10), &poison) };
    assert_eq!(r, Err(Faulted));
    assert!(poison.load(SeqCst), "the fault poisons the file");
    // The file is not touched by the throwaway copy; a later copy fails without faulting.
    assert_eq!(std::fs::metadata(file.path()).unwrap().len(), 0);
    let r = unsafe { copy(&src[..1], map.as_mut_ptr().add(3 * page_size()), &poison) };
    assert_eq!(r, Err(Faulted));
    // The thread's window is closed: a fresh mapping on the same thread works again.
    let (_other, map2) = mapped(page_size());
    let fresh = AtomicBool::new(false);
    let r = unsafe { copy(&src[..page_size()], map2.as_mut_ptr(), &fresh) };
    assert_eq!(r, Ok(()));
}

#[test]
fn faults_on_one_thread_leave_copies_on_others_alone() {
    install().unwrap();
    const ROUNDS: usize = 40;
    let page = page_size();
    let barrier = std::sync::Barrier::new(2);
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..ROUNDS {
                let (file, map) = mapped(8 * page);
                file.as_file().set_len(0).unwrap();
                let poison = AtomicBool::new(false);
                barrier.wait();
                let src = vec![1u8; 8 * page];
                // SAFETY: inside a live shared file mapping that nothing else references.
                let r = unsafe { copy(&src, map.as_mut_ptr(), &poison) };
                assert_eq!(r, Err(Faulted));
            }
        });
        s.spawn(|| {
            for round in 0..ROUNDS {
                let (file, map) = mapped(8 * page);
                let poison = AtomicBool::new(false);
                let src = vec![round as u8 + 1; 8 * page];
                barrier.wait();
                // SAFETY: inside a live shared file mapping that nothing else references.
                let r = unsafe { copy(&src, map.as_mut_ptr(), &poison) };
                assert_eq!(r, Ok(()));
                assert_eq!(std::fs::read(file.path()).unwrap(), src);
            }
        });
    });
}

/// Runs `fault` in a forked child (with core dumps off) and returns how the child ended, waited for
/// at most 10 s, then killed by pid. `fault` must be async-signal-safe, as anything a child of a
/// multi-threaded process runs.
fn in_a_child(fault: impl FnOnce()) -> c_int {
    // SAFETY: after fork the child runs only async-signal-safe code (setrlimit, `fault`, _exit).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: plain syscalls in the child.
        unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) };
        fault();
        unsafe { libc::_exit(0) };
    }
    let start = Instant::now();
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            return status;
        }
        if start.elapsed() > Duration::from_secs(10) {
            // SAFETY: our own child, by pid.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!("the child neither died nor exited in 10 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn assert_killed_by_sigbus(status: c_int) {
    assert!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGBUS,
        "the child ended with status {status:#x}, not killed by SIGBUS"
    );
}

#[test]
fn a_fault_outside_any_copy_still_kills_with_sigbus() {
    install().unwrap();
    let (file, map) = mapped(page_size());
    file.as_file().set_len(0).unwrap();
    let p = map.as_mut_ptr();
    // SAFETY: a store into our own mapping (it faults: the file is empty).
    assert_killed_by_sigbus(in_a_child(|| unsafe { p.write_volatile(1) }));
}

#[test]
fn a_fault_in_a_copy_but_outside_its_destination_still_kills_with_sigbus() {
    install().unwrap();
    // The copy's source is a mapping of an empty file: reading it faults, and that is not ours.
    let (file, src_map) = mapped(page_size());
    file.as_file().set_len(0).unwrap();
    let (_dst_file, dst_map) = mapped(page_size());
    let (src, dst) = (src_map.as_ptr(), dst_map.as_mut_ptr());
    let poison = AtomicBool::new(false);
    assert_killed_by_sigbus(in_a_child(|| {
        // SAFETY: the destination is a healthy shared file mapping; the source slice covers our
        // own mapping (its bytes fault when read, which is the point; the child dies there).
        unsafe {
            let src = std::slice::from_raw_parts(src, page_size());
            let _ = copy(src, dst, &poison);
        }
    }));
}
