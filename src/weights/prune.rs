//! Unstructured magnitude pruning: the smallest-magnitude weights of the chosen tensors are set
//! to zero, with one threshold over all of them together (global ranking, not per tensor).
//!
//! Scopes, by BLIP's Hugging Face tensor names:
//! - `linear` (the default): weight matrices of linear layers: attention (vision `qkv`,
//!   `projection`; text self- and cross-attention `query`/`key`/`value`/`output.dense`), MLP
//!   (`fc1`, `fc2`, `intermediate.dense`, `output.dense`) and the LM head's `transform.dense`.
//!   Norms and biases stay: they are a sliver of the weights and pruning them shifts whole
//!   activations rather than single connections. Embeddings stay: a zeroed row of the tied word
//!   table is a zeroed output logit row too.
//! - `attention`, `mlp`: the linear weights of that kind only.
//! - `embeddings`: word and position tables, the class token, the patch embedding (a conv); the
//!   tied LM head shares the word table, so it is pruned with it.
//!
//! The fraction counts weights of the unpruned model, and ties at the threshold are cut in file
//! order, so the set zeroed at 0.4 contains the set zeroed at 0.2: without fine-tuning between
//! steps, the seed's iterative schedule (0.2, 0.4, 0.6, 0.8 applied cumulatively) is the same as
//! pruning to each level in one shot.

use std::collections::HashMap;

use super::TensorView;
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PruneScope {
    Linear,
    Attention,
    Mlp,
    Embeddings,
}

impl PruneScope {
    pub const ALL: [PruneScope; 4] =
        [PruneScope::Linear, PruneScope::Attention, PruneScope::Mlp, PruneScope::Embeddings];

    pub fn name(self) -> &'static str {
        match self {
            PruneScope::Linear => "linear",
            PruneScope::Attention => "attention",
            PruneScope::Mlp => "mlp",
            PruneScope::Embeddings => "embeddings",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Attention,
    Mlp,
    OtherLinear,
    Embedding,
    Other,
}

fn kind(name: &str, rank: usize) -> Kind {
    if name.contains("embedding") {
        return Kind::Embedding;
    }
    if rank != 2 || !name.ends_with(".weight") {
        return Kind::Other;
    }
    if name.contains("attn.") || name.contains("attention.") {
        Kind::Attention
    } else if name.contains(".mlp.") || name.contains(".intermediate.dense") || name.contains(".output.dense") {
        Kind::Mlp
    } else if name.contains("LayerNorm") || name.contains("layer_norm") || name.contains("layernorm") {
        Kind::Other
    } else {
        Kind::OtherLinear
    }
}

/// Whether `scope` prunes the tensor `name` of shape `shape`.
pub fn in_scope(name: &str, shape: &[usize], scope: PruneScope) -> bool {
    matches!(
        (kind(name, shape.len()), scope),
        (Kind::Attention | Kind::Mlp | Kind::OtherLinear, PruneScope::Linear)
            | (Kind::Attention, PruneScope::Attention)
            | (Kind::Mlp, PruneScope::Mlp)
            | (Kind::Embedding, PruneScope::Embeddings)
    )
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pruning {
    /// Fraction of the scope's weights set to zero, 0 ≤ s < 1.
    pub sparsity: f64,
    pub scope: PruneScope,
}

impl Pruning {
    pub fn validate(&self) -> Result<()> {
        if !(0.0..1.0).contains(&self.sparsity) {
            return Err(Error::config(format!("pruning fraction {} is not in [0, 1)", self.sparsity)));
        }
        Ok(())
    }
}

/// What pruning did, for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PruneReport {
    /// Weights in scope, and how many of them are zero after pruning.
    pub weights: u64,
    pub zeroed: u64,
}

/// A threshold over magnitudes, found before any tensor is written.
#[derive(Debug, Clone)]
pub struct PrunePlan {
    /// Magnitudes as f32 bits (the sign cleared they order like the values).
    threshold: u32,
    /// Per tensor: how many values exactly at the threshold to zero, first ones first.
    ties: HashMap<String, u64>,
    /// The tensors ranked; no other tensor is touched.
    names: std::collections::HashSet<String>,
    pub report: PruneReport,
}

fn magnitude_bits(v: f32) -> u32 {
    v.to_bits() & 0x7fff_ffff
}

impl PrunePlan {
    /// Ranks the magnitudes of `tensors` (those in scope, in file order) and picks the threshold
    /// below which `round(sparsity × count)` of them fall. Exact, in two histogram passes of
    /// 2¹⁶ buckets (high, then low half of the bits), so a 200M-weight model needs no sorted copy.
    pub fn new(tensors: &[TensorView], pruning: &Pruning) -> Result<Self> {
        pruning.validate()?;
        let load = |v: &TensorView| v.to_f32();
        let total: u64 = tensors.iter().map(|t| t.elements() as u64).sum();
        let k = (pruning.sparsity * total as f64).round() as u64;
        let names = tensors.iter().map(|t| t.name.to_string()).collect();
        let mut high = vec![0u64; 1 << 16];
        for t in tensors {
            for v in load(t)? {
                high[(magnitude_bits(v) >> 16) as usize] += 1;
            }
        }
        if k == 0 {
            return Ok(Self {
                threshold: 0,
                ties: HashMap::new(),
                names,
                report: PruneReport { weights: total, zeroed: 0 },
            });
        }
        // The k-th smallest magnitude (1-based) lies in bucket `hb`; `below` values lie under it.
        let (hb, below_high) = kth_bucket(&high, k);
        let mut low = vec![0u64; 1 << 16];
        for t in tensors {
            for v in load(t)? {
                let b = magnitude_bits(v);
                if (b >> 16) as usize == hb {
                    low[(b & 0xffff) as usize] += 1;
                }
            }
        }
        let (lb, below_low) = kth_bucket(&low, k - below_high);
        let threshold = ((hb as u32) << 16) | lb as u32;
        let mut ties_left = k - below_high - below_low;
        let mut ties = HashMap::new();
        for t in tensors {
            if ties_left == 0 {
                break;
            }
            let at = load(t)?.into_iter().filter(|&v| magnitude_bits(v) == threshold).count() as u64;
            let take = at.min(ties_left);
            if take > 0 {
                ties.insert(t.name.to_string(), take);
                ties_left -= take;
            }
        }
        Ok(Self { threshold, ties, names, report: PruneReport { weights: total, zeroed: k } })
    }

    /// Zeroes the pruned values of the tensor `name`; tensors the plan was not made from are left alone.
    pub fn apply(&self, name: &str, values: &mut [f32]) {
        if !self.names.contains(name) {
            return;
        }
        let mut ties = self.ties.get(name).copied().unwrap_or(0);
        for v in values {
            let b = magnitude_bits(*v);
            if b < self.threshold {
                *v = 0.0;
            } else if b == self.threshold && ties > 0 {
                *v = 0.0;
                ties -= 1;
            }
        }
    }
}

/// The bucket holding the k-th smallest value (1-based) and the count in the buckets before it.
fn kth_bucket(hist: &[u64], k: u64) -> (usize, u64) {
    let mut below = 0;
    for (i, &c) in hist.iter().enumerate() {
        if below + c >= k {
            return (i, below);
        }
        below += c;
    }
    unreachable!("k never exceeds the number of values ranked")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::DType;

    fn view<'a>(name: &'a str, shape: &'a [usize], bytes: &'a [u8]) -> TensorView<'a> {
        TensorView { name, shape, dtype: DType::F32, data: bytes }
    }

    fn bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn scopes_by_name() {
        let l = |n: &str, r: usize| {
            PruneScope::ALL
                .into_iter()
                .filter(|&s| in_scope(n, &vec![2; r], s))
                .map(PruneScope::name)
                .collect::<Vec<_>>()
        };
        assert_eq!(l("vision_model.encoder.layers.0.self_attn.qkv.weight", 2), ["linear", "attention"]);
        assert_eq!(
            l("text_decoder.bert.encoder.layer.0.crossattention.output.dense.weight", 2),
            ["linear", "attention"]
        );
        assert_eq!(l("text_decoder.bert.encoder.layer.0.output.dense.weight", 2), ["linear", "mlp"]);
        assert_eq!(l("vision_model.encoder.layers.0.mlp.fc1.weight", 2), ["linear", "mlp"]);
        assert_eq!(l("text_decoder.cls.predictions.transform.dense.weight", 2), ["linear"]);
        assert_eq!(l("vision_model.encoder.layers.0.mlp.fc1.bias", 1), Vec::<&str>::new());
        assert_eq!(l("text_decoder.bert.encoder.layer.0.output.LayerNorm.weight", 1), Vec::<&str>::new());
        assert_eq!(l("text_decoder.bert.embeddings.word_embeddings.weight", 2), ["embeddings"]);
        assert_eq!(l("vision_model.embeddings.patch_embedding.weight", 4), ["embeddings"]);
    }

    #[test]
    fn global_threshold_with_ties_in_file_order_and_nested_levels() {
        let a = bytes(&[0.5, -0.1, 0.3, 0.1, -2.0]);
        let b = bytes(&[0.1, 1.0, -0.3, 0.05, 0.0]);
        let views = [view("a", &[5], &a), view("b", &[5], &b)];
        let zeroed_at = |s: f64| {
            let plan = PrunePlan::new(&views, &Pruning { sparsity: s, scope: PruneScope::Linear }).unwrap();
            let mut out = Vec::new();
            for (name, raw) in [("a", &a), ("b", &b)] {
                let mut v: Vec<f32> = raw.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
                plan.apply(name, &mut v);
                out.extend(v.iter().map(|x| *x == 0.0));
            }
            (plan.report.zeroed, out)
        };
        // Magnitudes: 0.0, 0.05, 0.1 ×3 (a[1], a[3], b[0]), 0.3 ×2, 0.5, 1.0, 2.0.
        let (n, z) = zeroed_at(0.4); // 4 values: 0.0, 0.05 and the first two 0.1s (a's).
        assert_eq!(n, 4);
        assert_eq!(z, [false, true, false, true, false, false, false, false, true, true]);
        let (_, z2) = zeroed_at(0.2);
        assert_eq!(z2.iter().filter(|&&x| x).count(), 2);
        assert!(z2.iter().zip(&z).all(|(&lo, &hi)| !lo || hi), "0.2's zeros are inside 0.4's");
        assert_eq!(zeroed_at(0.0).1.iter().filter(|&&x| x).count(), 1); // only the zero already there
        assert!(PrunePlan::new(&views, &Pruning { sparsity: 1.0, scope: PruneScope::Linear }).is_err());
        let plan = PrunePlan::new(&views, &Pruning { sparsity: 0.9, scope: PruneScope::Linear }).unwrap();
        let mut outside = [0.01f32, -0.02];
        plan.apply("c", &mut outside);
        assert_eq!(outside, [0.01, -0.02], "a tensor the plan was not made from is not touched");
    }
}
