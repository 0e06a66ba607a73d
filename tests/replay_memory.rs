//! A replay case takes about 8 bytes a number in memory while it is parsed, not
//! a JSON tree's 32 and more: the bytes allocated are counted by this test
//! binary's own allocator (the only test in it, so nothing else allocates).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use sfnap::replay::ReplayCase;

/// The system allocator, counting the bytes live now and the most since reset.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Relaxed) + layout.size();
            PEAK.fetch_max(live, Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        unsafe { System.dealloc(p, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Two tensors of `n` values each and one step: `4 n` numbers, written `1` or
/// `-1` (the shortest numbers, so the text is smallest against what it holds).
fn case(n: usize) -> String {
    let ones = |sign: &str| format!("[{}]", vec![format!("{sign}1"); n].join(","));
    format!(
        r#"{{"optimizer": {{"kind": "adamw_sf", "lr": 0.01}},
            "shapes": {{"a": [{n}], "b": [{n}]}},
            "params": {{"a": {}, "b": {}}},
            "steps": [{{"grads": {{"a": {}, "b": {}}}}}]}}"#,
        ones(""),
        ones("-"),
        ones("-"),
        ones("")
    )
}

/// Bound: the case holds its numbers as f64 (8 bytes each). While an array is
/// read its vector doubles: a finished array has at most twice its length in
/// capacity (16 bytes a number), and the one being read holds its old and new
/// buffers at once while growing (8 c + 16 c with c < its length). So the peak
/// is at most 24 bytes a number, plus a little for the tree around the arrays
/// and the test harness. A tree of `serde_json::Value`s takes 32 bytes a number
/// before any growth.
#[test]
fn a_case_takes_about_eight_bytes_a_number() {
    let n = 250_000;
    let text = case(n);
    let numbers = 4 * n;
    let before = LIVE.load(Relaxed);
    PEAK.store(before, Relaxed);
    let parsed = ReplayCase::parse(&text).unwrap();
    let peak = PEAK.load(Relaxed) - before;
    let kept = LIVE.load(Relaxed) - before;
    assert_eq!(parsed.tensors[1].values[n - 1], -1.0);
    assert_eq!(parsed.steps[0].grads[1][0], 1.0);
    let slack = 256 << 10;
    println!(
        "{numbers} numbers in {} bytes of text: peak {peak} bytes ({:.1} a number), kept {kept}",
        text.len(),
        peak as f64 / numbers as f64
    );
    assert!(
        peak <= 24 * numbers + slack,
        "parsing took {peak} bytes at its peak for {numbers} numbers (bound {})",
        24 * numbers + slack
    );
    assert!(kept <= 16 * numbers + slack, "the case keeps {kept} bytes");
}
