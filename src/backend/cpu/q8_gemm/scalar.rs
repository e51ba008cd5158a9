//! The portable inner loop: the definition written out over a [`Pairs`] panel, and the fallback
//! where no SIMD loop exists. Plain arrays of accumulators, which compilers vectorise where they
//! can.

use std::ops::Range;

use super::activations::Activations;
use super::panel::Pairs;
use super::QK;

pub(super) const NR: usize = 16;
pub(super) const MR: usize = 4;

pub(super) fn tile(
    acts: &Activations,
    row0: usize,
    rows: usize,
    panel: &Pairs<NR>,
    blocks: Range<usize>,
    acc: &mut [[f32; NR]; MR],
) {
    let (k, nb) = (acts.k, acts.k / QK);
    for b in blocks {
        // Exact: |a · w| ≤ 127 · 128 per product, 32 of them per block, far inside i32.
        let mut dot = [[0i32; NR]; MR];
        for p in 0..QK / 2 {
            let w = &panel.weights[(b * QK / 2 + p) * NR * 2..][..NR * 2];
            for (r, dot) in dot.iter_mut().enumerate().take(rows) {
                let a = &acts.wide[(row0 + r) * k + b * QK + 2 * p..][..2];
                let (a0, a1) = (a[0] as i32, a[1] as i32);
                for (d, w) in dot.iter_mut().zip(w.chunks_exact(2)) {
                    *d += w[0] as i32 * a0 + w[1] as i32 * a1;
                }
            }
        }
        let scales = &panel.scales[b * NR..][..NR];
        for (r, (acc, dot)) in acc.iter_mut().zip(&dot).enumerate().take(rows) {
            let d = acts.d[(row0 + r) * nb + b];
            for ((acc, &dot), &s) in acc.iter_mut().zip(dot).zip(scales) {
                *acc += dot as f32 * (s * d);
            }
        }
    }
}
