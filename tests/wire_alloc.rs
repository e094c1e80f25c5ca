//! Lengths read off the wire never size an allocation: payloads whose
//! headers claim 4 GiB are refused without any allocation larger than a few
//! KiB. Its own test binary, because it swaps the global allocator for one
//! that records the largest request.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use allot::wire::{decode_order, decode_order_json, DecisionMessage, Limits};

/// The system allocator, recording the largest size asked of it.
struct Largest;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the only addition is an atomic store. The crate
// itself stays `forbid(unsafe_code)`: this is a test binary's allocator.
unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Largest = Largest;

/// The largest allocation made while running `f`.
fn largest_allocation_in(f: impl FnOnce()) -> usize {
    LARGEST.store(0, Ordering::SeqCst);
    f();
    LARGEST.load(Ordering::SeqCst)
}

// One test only: the harness runs tests on parallel threads, and another
// test's allocations would count here.
#[test]
fn lengths_claiming_4_gib_allocate_nothing_large() {
    let limits = Limits::default();
    let huge: [(&str, &[u8]); 7] = [
        ("array 32 at the top", b"\xdd\xff\xff\xff\xff\x01"),
        ("map 32 at the top", b"\xdf\xff\xff\xff\xff\xa1v\x01"),
        ("str 32 at the top", b"\xdb\xff\xff\xff\xffabc"),
        ("str 32 as the id", b"\x81\xa2id\xdb\xff\xff\xff\xffabc"),
        ("str 32 as a key", b"\x81\xdb\xff\xff\xff\xffabc"),
        (
            "bin 32 in an unknown field",
            b"\x81\xa1x\xc6\xff\xff\xff\xffabc",
        ),
        (
            "map 32 in an unknown field",
            b"\x81\xa1x\xdf\xff\xff\xff\xff\xa1k\x01",
        ),
    ];
    for (what, bytes) in huge {
        let mut result = None;
        let largest = largest_allocation_in(|| result = Some(decode_order(bytes, &limits)));
        let e = result.unwrap().expect_err(what);
        assert_eq!(e.label(), "malformed", "{what}: {e}");
        assert!(largest < 4096, "{what}: allocated {largest} bytes at once");

        let mut decision = None;
        let largest = largest_allocation_in(|| decision = Some(DecisionMessage::decode(bytes)));
        assert!(decision.unwrap().is_err(), "{what}");
        assert!(
            largest < 4096,
            "{what} (decision): allocated {largest} bytes at once"
        );
    }
    // JSON has no length headers; a long run of openers is the nearest thing.
    let deep = format!(r#"{{"x":{}"#, "[".repeat(60_000));
    let largest = largest_allocation_in(|| {
        assert!(decode_order_json(deep.as_bytes(), &limits).is_err());
    });
    assert!(largest < 4096, "json: allocated {largest} bytes at once");
}
