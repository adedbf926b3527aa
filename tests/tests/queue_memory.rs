//! A bounded queue's memory up front: at most about a mebibyte of slots,
//! whatever its bound and the size of its items; beyond that it grows
//! with what is queued.
#![cfg(not(target_arch = "wasm32"))]

use staunch::queue::bounded;
use staunch_tests::heap::{CountingAlloc, live_bytes};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// A 4 KiB item.
#[derive(Clone, Copy)]
struct Page([u8; 4096]);

impl Default for Page {
    fn default() -> Page {
        Page([0; 4096])
    }
}

/// Heap bytes a new queue of `capacity` items of `T` holds before anything
/// is sent, and after `sent` items are.
fn held<T: Default>(capacity: usize, sent: usize) -> (usize, usize) {
    let before = live_bytes();
    let (tx, rx) = bounded::<T>(capacity).expect("valid");
    let empty = live_bytes().saturating_sub(before);
    for _ in 0..sent {
        tx.try_send(T::default()).expect("room");
    }
    let used = live_bytes().saturating_sub(before);
    drop((tx, rx));
    (empty, used)
}

#[test]
fn a_large_bound_of_large_items_allocates_little_until_used() {
    const MIB: usize = 1 << 20;
    // 60 000 slots of 4 KiB would be 240 MiB allocated at once.
    let (empty, used) = held::<Page>(60_000, 100);
    assert!(empty < 2 * MIB, "{empty} bytes held by an empty queue");
    assert!(used < 2 * MIB, "{used} bytes held with 100 items queued");
    // Small items keep their array up front, up to 65 536 of them.
    let (empty, _) = held::<u64>(1 << 16, 0);
    assert!(
        (MIB..2 * MIB).contains(&empty),
        "{empty} bytes for 65 536 u64 slots"
    );
    let (empty, _) = held::<u64>(usize::MAX, 0);
    assert!(
        empty < 64 * 1024,
        "{empty} bytes for an unbounded-size queue"
    );
    // The large queue still carries its items whole.
    let (tx, rx) = bounded::<Page>(60_000).expect("valid");
    tx.try_send(Page([7; 4096])).expect("room");
    assert!(rx.try_recv().expect("queued").0.iter().all(|&b| b == 7));
}
