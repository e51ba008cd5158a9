use edgecap::backend::{cpu::CpuBackend, Backend};
use std::time::Instant;
fn main() {
    let bytes = std::fs::read("target/bench-models/blip-base-random-q8_0.gguf").unwrap();
    let cap = edgecap::Captioner::load(CpuBackend, &bytes, None, None).unwrap();
    let b = &cap.backend;
    let px = vec![0.1f32; 3 * 384 * 384];
    for _ in 0..3 {
        let t = Instant::now();
        let x = cap.model.vision.forward(b, &b.from_f32(&px, &[3, 384, 384]).unwrap(), 384).unwrap();
        let t1 = t.elapsed();
        let _c = cap.model.text.cross_kv(b, &x).unwrap();
        println!("vision {:?} cross-kv {:?}", t1, t.elapsed() - t1);
    }
}
