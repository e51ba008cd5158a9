//! The study behind edgecap's choice of model: caption a referenced image set with variants of
//! one checkpoint (storage type, input size and resize mode, magnitude pruning) and record each
//! variant's BLEU, file size and caption latency.
//!
//! Storage types: f32, f16, q8_0, q4_k and q4_0 (q4_k falls back to q4_0 for rows that are not
//! whole 256-value blocks, as `convert` does).
//! Pruned zeros are stored densely (the file does not shrink); the deflated size shows what they
//! save in a compressed download.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use super::bleu::{Bleu, BleuStats};
use super::percentile::percentile;
use super::plot::{line_chart, Chart, Series};
use crate::backend::Backend;
use crate::config::BlipConfig;
use crate::generate::GenerateOptions;
use crate::preprocess::{ResizeMode, Rgb8};
use crate::weights::convert::{convert_to_gguf_pruned, ConvertOptions, TargetDType};
use crate::weights::prune::{PruneScope, Pruning};
use crate::{CaptionOptions, Captioner, Error, Result};
use plotters::prelude::SeriesLabelPosition::{LowerLeft, LowerRight, UpperLeft, UpperRight};

/// What the study is run on: one Hugging Face checkpoint and a referenced image set.
pub struct StudyInput<'a> {
    pub safetensors: &'a [u8],
    pub config_json: &'a str,
    pub tokenizer_json: &'a str,
    /// (image name, decoded image), with `references[i]` the captions of `images[i]`.
    pub images: &'a [(String, Rgb8)],
    pub references: &'a [Vec<String>],
}

#[derive(Debug, Clone)]
pub struct StudyPlan {
    pub dtypes: Vec<TargetDType>,
    /// The storage type of the input-size and pruning sweeps.
    pub base_dtype: TargetDType,
    pub sizes: Vec<usize>,
    pub sparsities: Vec<f64>,
    pub scopes: Vec<PruneScope>,
    pub generate: GenerateOptions,
    /// Timed passes over the set per point (≥ 1); BLEU comes from the first (captions are
    /// deterministic), latency percentiles from all.
    pub repeats: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    DType,
    InputSize,
    Pruning,
}

impl Group {
    pub fn name(self) -> &'static str {
        match self {
            Group::DType => "dtype",
            Group::InputSize => "input size",
            Group::Pruning => "pruning",
        }
    }
}

pub fn dtype_name(d: TargetDType) -> &'static str {
    match d {
        TargetDType::F32 => "f32",
        TargetDType::F16 => "f16",
        TargetDType::Q8_0 => "q8_0",
        TargetDType::Q4_K => "q4_k",
        TargetDType::Q4_0 => "q4_0",
    }
}

fn resize_name(r: ResizeMode) -> &'static str {
    match r {
        ResizeMode::Stretch => "stretch",
        ResizeMode::Crop => "crop",
    }
}

/// One measured variant.
#[derive(Debug, Clone)]
pub struct Point {
    pub group: Group,
    pub dtype: TargetDType,
    pub size: usize,
    pub resize: ResizeMode,
    pub scope: Option<PruneScope>,
    pub sparsity: f64,
    pub n: usize,
    pub bleu: Bleu,
    pub file_bytes: u64,
    pub deflated_bytes: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
}

#[derive(Clone, Copy, PartialEq)]
struct ModelKey {
    dtype: TargetDType,
    pruning: Option<Pruning>,
}

struct Measured {
    bleu: Bleu,
    n: usize,
    p50: f64,
    p90: f64,
}

/// The points of `plan`, in report order.
fn points(plan: &StudyPlan, default_size: usize) -> Vec<(Group, ModelKey, usize, ResizeMode)> {
    let base = ModelKey { dtype: plan.base_dtype, pruning: None };
    let mut out = Vec::new();
    for &dtype in &plan.dtypes {
        out.push((Group::DType, ModelKey { dtype, pruning: None }, default_size, ResizeMode::Stretch));
    }
    for &size in &plan.sizes {
        for resize in [ResizeMode::Stretch, ResizeMode::Crop] {
            out.push((Group::InputSize, base, size, resize));
        }
    }
    for &scope in &plan.scopes {
        for &sparsity in std::iter::once(&0.0).chain(&plan.sparsities) {
            let pruning = Some(Pruning { sparsity, scope });
            out.push((Group::Pruning, ModelKey { dtype: plan.base_dtype, pruning }, default_size, ResizeMode::Stretch));
        }
    }
    out
}

/// Runs every point of `plan`; `progress(done, total, what)` is called before each point.
/// `backend` makes a backend for each model variant loaded.
pub fn run_study<B: Backend>(
    mut backend: impl FnMut() -> Result<B>,
    input: &StudyInput,
    plan: &StudyPlan,
    mut progress: impl FnMut(usize, usize, &str),
) -> Result<Vec<Point>> {
    if input.images.is_empty() || input.images.len() != input.references.len() {
        return Err(Error::Eval("the study needs at least one image with references".into()));
    }
    let config = BlipConfig::from_json(input.config_json)?;
    let (default_size, patch) = (config.vision_config.image_size, config.vision_config.patch_size);
    for &s in &plan.sizes {
        if s == 0 || !s.is_multiple_of(patch) || s > crate::MAX_INPUT_SIZE {
            return Err(Error::Eval(format!(
                "input size {s} is not a multiple of the model's patch size {patch} up to {}",
                crate::MAX_INPUT_SIZE
            )));
        }
    }
    for &s in &plan.sparsities {
        Pruning { sparsity: s, scope: PruneScope::Linear }.validate()?;
    }
    let todo = points(plan, default_size);
    let mut loaded: Option<(ModelKey, Captioner<B>, u64, u64)> = None;
    let mut cache: Vec<(ModelKey, usize, ResizeMode, Measured)> = Vec::new();
    let mut out = Vec::new();
    for (i, &(group, key, size, resize)) in todo.iter().enumerate() {
        // Pruning nothing is the unpruned model: measure it once.
        let key = ModelKey { pruning: key.pruning.filter(|p| p.sparsity > 0.0), ..key };
        let what = format!(
            "{} {} {size}px {}{}",
            group.name(),
            dtype_name(key.dtype),
            resize_name(resize),
            key.pruning.map(|p| format!(" {} pruned {:.0}%", p.scope.name(), p.sparsity * 100.0)).unwrap_or_default()
        );
        progress(i, todo.len(), &what);
        if loaded.as_ref().is_none_or(|(k, ..)| *k != key) {
            drop(loaded.take()); // one model in memory at a time
            let (bytes, file_bytes) = convert(input, key)?;
            let deflated = deflated_len(&bytes)?;
            let captioner = Captioner::load(backend()?, &bytes, None, None)?;
            loaded = Some((key, captioner, file_bytes, deflated));
        }
        let (_, captioner, file_bytes, deflated_bytes) = loaded.as_ref().expect("loaded above");
        let hit = cache.iter().position(|(k, s, r, _)| *k == key && *s == size && *r == resize);
        let m = match hit {
            Some(j) => &cache[j].3,
            None => {
                let m = measure(captioner, input, plan, size, resize)?;
                cache.push((key, size, resize, m));
                &cache.last().expect("pushed").3
            }
        };
        out.push(Point {
            group,
            dtype: key.dtype,
            size,
            resize,
            scope: todo[i].1.pruning.map(|p| p.scope),
            sparsity: todo[i].1.pruning.map_or(0.0, |p| p.sparsity),
            n: m.n,
            bleu: m.bleu,
            file_bytes: *file_bytes,
            deflated_bytes: *deflated_bytes,
            p50_ms: m.p50,
            p90_ms: m.p90,
        });
    }
    progress(todo.len(), todo.len(), "done");
    Ok(out)
}

fn convert(input: &StudyInput, key: ModelKey) -> Result<(Vec<u8>, u64)> {
    let mut bytes = Vec::new();
    let opts = ConvertOptions { dtype: key.dtype, compat_candle: false };
    let (report, _) = convert_to_gguf_pruned(
        input.safetensors,
        input.config_json,
        Some(input.tokenizer_json),
        &opts,
        key.pruning.as_ref(),
        &mut bytes,
        |_, _| {},
    )?;
    Ok((bytes, report.bytes))
}

/// Bytes after DEFLATE at its fastest level: roughly what a compressed download costs.
fn deflated_len(bytes: &[u8]) -> Result<u64> {
    struct Count(u64);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len() as u64;
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut enc = flate2::write::DeflateEncoder::new(Count(0), flate2::Compression::fast());
    enc.write_all(bytes).and_then(|_| enc.finish()).map(|c| c.0).map_err(|e| Error::io("deflate", e))
}

fn measure<B: Backend>(
    c: &Captioner<B>,
    input: &StudyInput,
    plan: &StudyPlan,
    size: usize,
    resize: ResizeMode,
) -> Result<Measured> {
    let opts = CaptionOptions { generate: plan.generate.clone(), prompt: None, image_size: Some(size), resize };
    // One caption first, untimed: first-use costs (allocations, kernel setup) are not per-caption.
    pollster::block_on(c.caption(&input.images[0].1, &opts))?;
    let mut stats = BleuStats::default();
    let mut ms = Vec::new();
    for pass in 0..plan.repeats.max(1) {
        for ((name, image), refs) in input.images.iter().zip(input.references) {
            let cap = pollster::block_on(c.caption(image, &opts)).map_err(|e| Error::Eval(format!("{name}: {e}")))?;
            if pass == 0 {
                stats.add_text(&cap.caption, refs);
            }
            ms.push(cap.timings_ms.total);
        }
    }
    Ok(Measured {
        bleu: stats.scores(),
        n: stats.segments(),
        p50: percentile(&ms, 50.0).unwrap_or(0.0),
        p90: percentile(&ms, 90.0).unwrap_or(0.0),
    })
}

fn scope_name(p: &Point) -> &'static str {
    p.scope.map_or("-", PruneScope::name)
}

pub const CSV_HEADER: &str = "group,dtype,image_size,resize,prune_scope,sparsity,n,bleu1,bleu2,bleu3,bleu4,file_bytes,deflated_bytes,latency_p50_ms,latency_p90_ms";

pub fn csv(points: &[Point]) -> String {
    let mut s = String::from(CSV_HEADER);
    s.push('\n');
    for p in points {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{:.6},{:.6},{:.6},{:.6},{},{},{:.3},{:.3}",
            p.group.name(),
            dtype_name(p.dtype),
            p.size,
            resize_name(p.resize),
            scope_name(p),
            p.sparsity,
            p.n,
            p.bleu.bleu1,
            p.bleu.bleu2,
            p.bleu.bleu3,
            p.bleu.bleu4,
            p.file_bytes,
            p.deflated_bytes,
            p.p50_ms,
            p.p90_ms
        );
    }
    s
}

/// The Markdown report: `about` (what was run, on what) above one table of every point.
pub fn markdown(points: &[Point], about: &str) -> String {
    let mut s = String::from("# edgecap study\n\n");
    s.push_str(about);
    s.push_str(
        "\n\nBLEU is corpus BLEU-n (nltk's `corpus_bleu`, 0–1). Storage types: f32, f16, q8_0, \
         q4_k, q4_0 (q4_k stores rows that are not whole 256-value blocks as q4_0). Pruned weights are stored as dense zeros, so the file \
         size does not change; \"deflated\" is the file after DEFLATE (fastest level). Latency is \
         one caption (preprocess + vision + decode) per image and pass, after one untimed warm-up \
         caption; on a machine busy with other work it measures the contention as much as the model.\n\n",
    );
    s.push_str("| group | dtype | input | resize | pruned | sparsity | n | BLEU-1 | BLEU-2 | BLEU-3 | BLEU-4 | file MB | deflated MB | p50 ms | p90 ms |\n");
    s.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for p in points {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {:.0}% | {} | {:.4} | {:.4} | {:.4} | {:.4} | {:.3} | {:.3} | {:.1} | {:.1} |",
            p.group.name(),
            dtype_name(p.dtype),
            p.size,
            resize_name(p.resize),
            scope_name(p),
            p.sparsity * 100.0,
            p.n,
            p.bleu.bleu1,
            p.bleu.bleu2,
            p.bleu.bleu3,
            p.bleu.bleu4,
            p.file_bytes as f64 / 1e6,
            p.deflated_bytes as f64 / 1e6,
            p.p50_ms,
            p.p90_ms
        );
    }
    s
}

/// The SVG files written by [`write_plots`].
pub const PLOTS: [&str; 6] = [
    "bleu_vs_input_size.svg",
    "bleu_vs_sparsity.svg",
    "size_vs_sparsity.svg",
    "latency_vs_sparsity.svg",
    "bleu_vs_size_by_dtype.svg",
    "latency_vs_size_by_dtype.svg",
];

pub fn write_plots(dir: &Path, points: &[Point]) -> Result<()> {
    let by_size = |resize: ResizeMode, n: usize| Series {
        label: format!("BLEU-{n}, {}", resize_name(resize)),
        points: points
            .iter()
            .filter(|p| p.group == Group::InputSize && p.resize == resize)
            .map(|p| (p.size as f64, p.bleu.get(n)))
            .collect(),
    };
    line_chart(
        &dir.join(PLOTS[0]),
        &Chart {
            title: "BLEU vs input size",
            x_label: "input size (pixels per side)",
            y_label: "corpus BLEU (0-1)",
            y_min_top: 1.0,
            legend: UpperRight,
        },
        &[
            by_size(ResizeMode::Stretch, 4),
            by_size(ResizeMode::Crop, 4),
            by_size(ResizeMode::Stretch, 1),
            by_size(ResizeMode::Crop, 1),
        ],
    )?;
    let mut scopes: Vec<PruneScope> = Vec::new();
    for p in points.iter().filter(|p| p.group == Group::Pruning) {
        if let Some(s) = p.scope.filter(|s| !scopes.contains(s)) {
            scopes.push(s);
        }
    }
    let by_sparsity = |label: &str, f: &dyn Fn(&Point) -> f64| -> Vec<Series> {
        scopes
            .iter()
            .map(|&s| Series {
                label: format!("{label}{} pruned", s.name()),
                points: points
                    .iter()
                    .filter(|p| p.group == Group::Pruning && p.scope == Some(s))
                    .map(|p| (p.sparsity * 100.0, f(p)))
                    .collect(),
            })
            .collect()
    };
    let x = "weights pruned in scope (%)";
    let mut bleu = by_sparsity("BLEU-4, ", &|p| p.bleu.bleu4);
    bleu.extend(by_sparsity("BLEU-1, ", &|p| p.bleu.bleu1));
    line_chart(
        &dir.join(PLOTS[1]),
        &Chart {
            title: "BLEU vs sparsity",
            x_label: x,
            y_label: "corpus BLEU (0-1)",
            y_min_top: 1.0,
            legend: UpperRight,
        },
        &bleu,
    )?;
    let mut size = by_sparsity("deflated, ", &|p| p.deflated_bytes as f64 / 1e6);
    if let Some(first) = by_sparsity("stored file, ", &|p| p.file_bytes as f64 / 1e6).into_iter().next() {
        size.insert(0, Series { label: "stored file (any scope)".into(), points: first.points });
    }
    line_chart(
        &dir.join(PLOTS[2]),
        &Chart { title: "Model size vs sparsity", x_label: x, y_label: "size (MB)", y_min_top: 0.0, legend: LowerLeft },
        &size,
    )?;
    line_chart(
        &dir.join(PLOTS[3]),
        &Chart {
            title: "Caption latency vs sparsity",
            x_label: x,
            y_label: "caption latency, median (ms)",
            y_min_top: 0.0,
            legend: LowerRight,
        },
        &by_sparsity("", &|p| p.p50_ms),
    )?;
    // One point per storage type, at its file size: what each type costs and keeps.
    let by_dtype = |f: &dyn Fn(&Point) -> f64| -> Vec<Series> {
        points
            .iter()
            .filter(|p| p.group == Group::DType)
            .map(|p| Series { label: dtype_name(p.dtype).to_string(), points: vec![(p.file_bytes as f64 / 1e6, f(p))] })
            .collect()
    };
    let x = "model file (MB)";
    line_chart(
        &dir.join(PLOTS[4]),
        &Chart {
            title: "BLEU-4 vs model size, by storage type",
            x_label: x,
            y_label: "corpus BLEU-4 (0-1)",
            y_min_top: 1.0,
            legend: UpperLeft,
        },
        &by_dtype(&|p| p.bleu.bleu4),
    )?;
    line_chart(
        &dir.join(PLOTS[5]),
        &Chart {
            title: "Caption latency vs model size, by storage type",
            x_label: x,
            y_label: "caption latency, median (ms)",
            y_min_top: 0.0,
            legend: UpperLeft,
        },
        &by_dtype(&|p| p.p50_ms),
    )?;
    Ok(())
}

/// Writes study.md, study.csv and the plots into `dir` (created if missing).
pub fn write_report(dir: &Path, points: &[Point], about: &str) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir.display(), e))?;
    let write = |name: &str, text: String| {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(|e| Error::io(p.display(), e))
    };
    write("study.md", markdown(points, about))?;
    write("study.csv", csv(points))?;
    write_plots(dir, points)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(group: Group, size: usize, resize: ResizeMode, scope: Option<PruneScope>, sparsity: f64, b: f64) -> Point {
        Point {
            group,
            dtype: TargetDType::Q8_0,
            size,
            resize,
            scope,
            sparsity,
            n: 10,
            bleu: Bleu { bleu1: b, bleu2: b * 0.7, bleu3: b * 0.5, bleu4: b * 0.35 },
            file_bytes: 242_700_000,
            deflated_bytes: (242_700_000.0 * (0.9 - 0.5 * sparsity)) as u64,
            p50_ms: 668.0,
            p90_ms: 700.0,
        }
    }

    /// Made-up figures in the shape a real model gives (not measurements): the charts must draw
    /// curves that differ, not only the flat zeros of the random test model.
    #[test]
    fn plots_draw_varied_curves_with_their_labels() {
        let mut pts = Vec::new();
        for (i, size) in [224, 288, 384, 512].into_iter().enumerate() {
            pts.push(point(Group::InputSize, size, ResizeMode::Stretch, None, 0.0, 0.5 + 0.05 * i as f64));
            pts.push(point(Group::InputSize, size, ResizeMode::Crop, None, 0.0, 0.45 + 0.04 * i as f64));
        }
        for scope in [PruneScope::Linear, PruneScope::Mlp] {
            for s in [0.0, 0.2, 0.4, 0.6, 0.8] {
                pts.push(point(Group::Pruning, 384, ResizeMode::Stretch, Some(scope), s, 0.7 * (1.0 - s * s)));
            }
        }
        let dir = std::env::temp_dir().join("edgecap-plot-test");
        write_report(&dir, &pts, "made-up figures").unwrap();
        let svg = std::fs::read_to_string(dir.join("bleu_vs_input_size.svg")).unwrap();
        for label in ["input size (pixels per side)", "BLEU-4, crop", "500"] {
            assert!(svg.contains(label), "no {label:?}");
        }
        let size = std::fs::read_to_string(dir.join("size_vs_sparsity.svg")).unwrap();
        assert!(size.contains("deflated, mlp pruned") && size.contains("size (MB)"));
        assert_eq!(csv(&pts).lines().count(), 1 + pts.len());
    }
}
