//! A child process that is killed and reaped when dropped, so a test that panics (or returns
//! early) never leaves a server running behind it.
#![allow(dead_code)]

use std::ops::{Deref, DerefMut};
use std::process::Child;

/// Owns a spawned process; dropping it sends SIGKILL and waits for the process to end.
pub struct ChildGuard(Child);

impl ChildGuard {
    /// Takes ownership of `child`.
    pub fn new(child: Child) -> ChildGuard {
        ChildGuard(child)
    }

    /// SIGKILL now and wait for the end (as a crash would end the process).
    pub fn kill_and_wait(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Deref for ChildGuard {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl DerefMut for ChildGuard {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        // Already exited: kill fails harmlessly and wait only reaps it.
        self.kill_and_wait();
    }
}
