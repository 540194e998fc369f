//! Zeroed memory straight from the operating system, for the receive slots.
//!
//! A store's slots are up to 2 MiB, of which a receive usually touches a
//! page or two. Memory the allocator hands out may be recycled, and zeroing
//! it makes every page resident; a fresh anonymous mapping is zero already
//! and a page becomes resident only when a datagram is written to it. (How
//! the allocator serves a large zeroed request depends on what was freed
//! before: the same store cost a page or all of its slots.)
#![allow(unsafe_code)]

use std::ptr::NonNull;

/// A zeroed, writable byte region, released when dropped.
pub(crate) struct ZeroedRegion {
    memory: Memory,
}

enum Memory {
    #[cfg(unix)]
    Mapped {
        start: NonNull<u8>,
        len: usize,
    },
    Heap(Box<[u8]>),
}

// SAFETY: the mapping is owned by this value alone, like a `Box<[u8]>`, and
// only reachable through `&self`/`&mut self`.
unsafe impl Send for ZeroedRegion {}
// SAFETY: as above; shared access only reads.
unsafe impl Sync for ZeroedRegion {}

impl ZeroedRegion {
    /// `len` zeroed bytes: a private anonymous mapping, or the heap where
    /// mapping is unavailable or fails.
    pub(crate) fn new(len: usize) -> Self {
        #[cfg(unix)]
        if len > 0 {
            use rustix::mm::{MapFlags, ProtFlags, mmap_anonymous};
            // SAFETY: a new private anonymous mapping aliases nothing; its
            // address and length are kept for `Drop`.
            let mapped = unsafe {
                mmap_anonymous(
                    std::ptr::null_mut(),
                    len,
                    ProtFlags::READ | ProtFlags::WRITE,
                    MapFlags::PRIVATE,
                )
            };
            if let Ok(start) = mapped
                && let Some(start) = NonNull::new(start.cast::<u8>())
            {
                return Self {
                    memory: Memory::Mapped { start, len },
                };
            }
        }
        Self {
            memory: Memory::Heap(vec![0; len].into_boxed_slice()),
        }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        match &self.memory {
            #[cfg(unix)]
            // SAFETY: the mapping is `len` readable bytes, alive as long as
            // `self`, and no `&mut` to it exists while `&self` is borrowed.
            Memory::Mapped { start, len } => unsafe {
                std::slice::from_raw_parts(start.as_ptr(), *len)
            },
            Memory::Heap(bytes) => bytes,
        }
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        match &mut self.memory {
            #[cfg(unix)]
            // SAFETY: as for `as_slice`, and `&mut self` makes this the only
            // reference.
            Memory::Mapped { start, len } => unsafe {
                std::slice::from_raw_parts_mut(start.as_ptr(), *len)
            },
            Memory::Heap(bytes) => bytes,
        }
    }
}

impl Drop for ZeroedRegion {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Memory::Mapped { start, len } = self.memory {
            // SAFETY: the mapping made in `new`, unmapped once; no slice of
            // it outlives `self`.
            let _ = unsafe { rustix::mm::munmap(start.as_ptr().cast(), len) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_is_zeroed_and_writable() {
        let mut region = ZeroedRegion::new(3 * 65_536);
        assert!(region.as_slice().iter().all(|byte| *byte == 0));
        region.as_mut_slice()[65_536] = 7;
        assert_eq!(region.as_slice()[65_536], 7);
        assert_eq!(region.as_slice().len(), 3 * 65_536);
        assert!(ZeroedRegion::new(0).as_slice().is_empty());
    }
}
