use candle_core::{quantized::{GgmlDType, QMatMul, QTensor}, Device, Module, Tensor};
use std::time::Instant;
fn main() -> candle_core::Result<()> {
    let dev = Device::Cpu;
    for (m, k, n) in [(577usize, 768usize, 2304usize), (577, 3072, 768), (1, 768, 3072), (1, 768, 30524), (3, 768, 768)] {
        let w = Tensor::randn(0f32, 0.02, (n, k), &dev)?;
        let x = Tensor::randn(0f32, 1.0, (m, k), &dev)?;
        let q = QTensor::quantize(&w, GgmlDType::Q8_0)?;
        let qm = QMatMul::from_qtensor(q)?;
        let wd = qm.dequantize_f16().ok();
        let _ = wd;
        let reps = if m == 1 || m == 3 { 50 } else { 5 };
        let _ = qm.forward(&x)?; let _ = x.matmul(&w.t()?)?;
        let t = Instant::now(); for _ in 0..reps { let _ = qm.forward(&x)?; } let tq = t.elapsed().as_secs_f64() / reps as f64;
        let t = Instant::now(); for _ in 0..reps { let _ = x.matmul(&w.t()?)?; } let tf = t.elapsed().as_secs_f64() / reps as f64;
        let wt = w.t()?.contiguous()?;
        let t = Instant::now(); for _ in 0..reps { let _ = x.matmul(&wt)?; } let tf2 = t.elapsed().as_secs_f64() / reps as f64;
        let fl = 2.0 * (m * k * n) as f64;
        println!("{m}x{k}x{n}: qmatmul {:.2} ms ({:.0} GOP/s) | f32 w.t() {:.2} ms ({:.0}) | f32 contiguous [k,n] {:.2} ms ({:.0})", tq*1e3, fl/tq/1e9, tf*1e3, fl/tf/1e9, tf2*1e3, fl/tf2/1e9);
    }
    Ok(())
}
