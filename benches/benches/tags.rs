//! Divan bench of one frame tag (`tenure::TagKey::tag`, what sealing and opening a
//! frame cost beyond the codec) at the sizes of short protocol frames: 12, 32 and 64
//! bytes of encoded packet.
//!
//! `cargo bench --manifest-path benches/Cargo.toml --bench tags`

use tenure::{Key, TagKey};

fn main() {
    divan::main();
}

#[divan::bench(args = [12, 32, 64])]
fn tag(bencher: divan::Bencher, len: usize) {
    let key = TagKey::new(&Key(core::array::from_fn(|i| i as u8 ^ 0x5a)));
    let frame: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31)).collect();
    bencher.bench_local(|| key.tag(divan::black_box(&frame)));
}

#[divan::bench(args = [12, 32, 64])]
fn verify(bencher: divan::Bencher, len: usize) {
    let key = TagKey::new(&Key(core::array::from_fn(|i| i as u8 ^ 0x5a)));
    let frame: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31)).collect();
    let t = key.tag(&frame);
    bencher.bench_local(|| key.verify(divan::black_box(&frame), divan::black_box(&t)));
}
