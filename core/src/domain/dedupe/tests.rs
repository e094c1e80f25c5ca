//! Tests of the id window: fingerprints are stable, ids are kept for the
//! whole window, and the cap forgets the oldest epoch first.

use super::*;

fn fp(n: u32) -> Fingerprint {
    Fingerprint::of(&OrderId::new(&format!("o-{n}")).unwrap())
}

#[test]
fn fingerprints_are_stable_and_spread_over_owners() {
    // Stored in snapshots and logs' replays: must never change.
    assert_eq!(
        Fingerprint::of(&OrderId::new("o-1").unwrap()),
        Fingerprint::of(&OrderId::new("o-1").unwrap())
    );
    let mut owners = [0u32; 4];
    for n in 0..4000 {
        owners[fp(n).owner(4) as usize] += 1;
    }
    assert!(
        owners.iter().all(|&k| (800..1200).contains(&k)),
        "{owners:?}"
    );
}

#[test]
fn ids_are_remembered_for_the_window_and_forgotten_after() {
    let window = Window::new(Duration::from_secs(24 * 3600), 1000);
    let mut t = IdTable::new(window);
    let start = window.epoch(Timestamp(1_000_000_000_000));
    t.insert(fp(1), 7, start);
    t.advance(start + 24);
    assert_eq!(
        t.holder(fp(1)),
        Some(7),
        "kept for 24 whole epochs after its own"
    );
    t.advance(start + 25);
    assert_eq!(t.holder(fp(1)), None, "forgotten after that");
}

#[test]
fn over_the_cap_the_oldest_epoch_goes_first() {
    let mut t = IdTable::new(Window::new(Duration::from_secs(3600), 3));
    t.insert(fp(1), 0, 10);
    t.insert(fp(2), 0, 11);
    t.insert(fp(3), 0, 12);
    t.insert(fp(4), 0, 12);
    assert_eq!(t.len(), 3);
    assert_eq!(t.holder(fp(1)), None);
    assert!(t.holder(fp(2)).is_some() && t.holder(fp(4)).is_some());
    t.insert(fp(2), 9, 13);
    assert_eq!(t.holder(fp(2)), Some(0), "the first holder stays");
}
