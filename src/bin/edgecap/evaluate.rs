//! `edgecap eval` and `edgecap study`: caption quality against reference captions, and the
//! dtype / input size / pruning sweep.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::ValueEnum;
use edgecap::backend::cpu::CpuBackend;
use edgecap::backend::Backend;
use edgecap::eval::data::{
    image_key, parse_predictions, read_predictions, read_references, read_text_file, score, Prediction, References,
};
use edgecap::eval::percentile::percentile;
use edgecap::eval::study::{run_study, write_report, StudyInput, StudyPlan, PLOTS};
use edgecap::generate::GenerateOptions;
use edgecap::preprocess::{decode_image, Rgb8};
use edgecap::weights::prune::PruneScope;
use edgecap::Error;

use super::{
    choose, dtype, load, map, model_files, read, read_text, BackendChoice, Chosen, DTypeChoice, DecodeArgs, ModelArgs,
};

#[derive(Clone, Copy, ValueEnum)]
pub enum ScopeChoice {
    /// Weight matrices of every linear layer (attention, MLP, LM-head transform); not norms, biases or embeddings.
    Linear,
    /// Linear weights of self- and cross-attention only.
    Attention,
    /// Linear weights of the MLP blocks only.
    Mlp,
    /// Word/position tables, class token, patch embedding (and the tied LM head with the word table).
    Embeddings,
}

impl From<ScopeChoice> for PruneScope {
    fn from(s: ScopeChoice) -> Self {
        match s {
            ScopeChoice::Linear => PruneScope::Linear,
            ScopeChoice::Attention => PruneScope::Attention,
            ScopeChoice::Mlp => PruneScope::Mlp,
            ScopeChoice::Embeddings => PruneScope::Embeddings,
        }
    }
}

/// The reference-file options both commands share.
#[derive(clap::Args)]
pub struct RefArgs {
    /// Reference captions: JSON lines `{"image": ..., "references": [...]}`, Flickr30k's
    /// `results.csv` (`image_name| comment_number| comment`) or a Karpathy split JSON.
    #[arg(long)]
    references: PathBuf,
    /// Only the images of this split of a Karpathy file (test, val, train, restval).
    #[arg(long)]
    split: Option<String>,
    /// Only the first N referenced images, by file name (when captioning).
    #[arg(long)]
    limit: Option<usize>,
}

#[derive(clap::Args)]
pub struct EvalArgs {
    #[command(flatten)]
    refs: RefArgs,
    /// Captions to score: JSON lines `{"image": ..., "caption": ...}`, any order.
    #[arg(long, required_unless_present = "model", conflicts_with_all = ["model", "images", "out", "limit"])]
    predictions: Option<PathBuf>,
    /// Caption the referenced images with this model first (GGUF file or Hugging Face folder).
    #[arg(long, requires_all = ["images", "out"])]
    model: Option<PathBuf>,
    /// Folder holding the referenced images (by file name).
    #[arg(long, requires = "model")]
    images: Option<PathBuf>,
    /// Predictions file the captions are appended to as they are made; a rerun skips the images
    /// already in it.
    #[arg(long, requires = "model")]
    out: Option<PathBuf>,
    #[command(flatten)]
    source: ModelArgs,
    #[command(flatten)]
    decode: DecodeArgs,
    /// One JSON object: {"n", "bleu1".."bleu4"} and, when captioning, latency percentiles (ms).
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct StudyArgs {
    /// Hugging Face folder (config.json, model.safetensors [, tokenizer.json]); every variant
    /// is converted from it.
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    #[command(flatten)]
    refs: RefArgs,
    /// Folder holding the referenced images (by file name).
    #[arg(long)]
    images: PathBuf,
    /// Folder for study.md, study.csv and the SVG plots.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, value_enum, default_value = "cpu")]
    backend: BackendChoice,
    /// Storage types compared at the model's input size (q4_k falls back to q4_0 for rows that
    /// are not whole 256-value blocks, as in `convert`).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "f32,f16,q8_0,q4_k,q4_0")]
    dtypes: Vec<DTypeChoice>,
    /// Storage type of the input-size and pruning sweeps.
    #[arg(long, value_enum, default_value = "q8_0")]
    base_dtype: DTypeChoice,
    /// Input sizes, each with stretch and crop; multiples of the model's patch size (16 for BLIP-base).
    #[arg(long, value_delimiter = ',', default_value = "224,288,352,384,448,512")]
    sizes: Vec<usize>,
    /// Pruning levels, fractions of the scope's weights (cumulative: each level contains the last).
    #[arg(long, value_delimiter = ',', default_value = "0.2,0.4,0.6,0.8")]
    sparsities: Vec<f64>,
    /// Tensors pruned, one sweep each (global magnitude ranking within the scope).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "linear,attention,mlp,embeddings")]
    prune_scopes: Vec<ScopeChoice>,
    #[arg(long, default_value_t = 20)]
    max_tokens: usize,
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16))]
    beams: u16,
    /// Timed passes over the images per variant (latency percentiles over all of them).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=100))]
    repeats: u16,
}

fn eval_err(msg: impl std::fmt::Display) -> Error {
    Error::Eval(msg.to_string())
}

/// References, and the image names evaluated (sorted, `--limit` applied).
fn load_refs(args: &RefArgs) -> Result<(References, Vec<String>), Error> {
    let refs = read_references(&args.references, args.split.as_deref())?;
    let mut keys: Vec<String> = refs.keys().cloned().collect();
    if let Some(n) = args.limit {
        keys.truncate(n);
    }
    if keys.is_empty() {
        return Err(eval_err("--limit 0 leaves no image to evaluate"));
    }
    Ok((refs, keys))
}

/// The referenced images must all be there before any minutes are spent captioning.
fn image_paths(dir: &Path, keys: &[String]) -> Result<Vec<PathBuf>, Error> {
    if !dir.is_dir() {
        return Err(eval_err(format!("{}: not a folder of images", dir.display())));
    }
    keys.iter()
        .map(|k| {
            let p = dir.join(k);
            if p.is_file() {
                Ok(p)
            } else {
                Err(eval_err(format!("{}: referenced image {k} is not in the folder", dir.display())))
            }
        })
        .collect()
}

fn decode(path: &Path) -> Result<Rgb8, Error> {
    let bytes = read(path)?;
    decode_image(&bytes).map_err(|e| eval_err(format!("{}: {e}", path.display())))
}

fn progress_bar(len: usize) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg} [{elapsed} < {eta}]")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

pub fn eval(args: EvalArgs) -> Result<ExitCode, Error> {
    let (refs, keys) = load_refs(&args.refs)?;
    let (preds, name, captioned) = match (&args.predictions, &args.model, &args.images, &args.out) {
        (Some(p), ..) => {
            let preds = read_predictions(p)?;
            (preds, p.display().to_string(), None)
        }
        (None, Some(_), Some(images), Some(out)) => {
            let (all, made) = caption_set(&args, images, out, &keys)?;
            let wanted: BTreeSet<&String> = keys.iter().collect();
            let preds: Vec<Prediction> = all.into_iter().filter(|p| wanted.contains(&image_key(&p.image))).collect();
            (preds, out.display().to_string(), Some(made))
        }
        _ => return Err(eval_err("give --predictions FILE, or --model, --images and --out")),
    };
    let scored = score(&preds, &refs, &name)?;
    let b = scored.bleu;
    let ms: Vec<f64> = preds.iter().filter_map(|p| p.ms).collect();
    let pct = |q: f64| percentile(&ms, q);
    if args.json {
        let mut line =
            serde_json::json!({"n": scored.n, "bleu1": b.bleu1, "bleu2": b.bleu2, "bleu3": b.bleu3, "bleu4": b.bleu4});
        if let Some(made) = captioned {
            line["captioned"] = made.into();
            if !ms.is_empty() {
                line["latency_ms"] =
                    serde_json::json!({"p50": pct(50.0), "p90": pct(90.0), "p99": pct(99.0), "n": ms.len()});
            }
        }
        println!("{line}");
    } else {
        println!(
            "n {}  BLEU-1 {:.4}  BLEU-2 {:.4}  BLEU-3 {:.4}  BLEU-4 {:.4}",
            scored.n, b.bleu1, b.bleu2, b.bleu3, b.bleu4
        );
        if captioned.is_some() && !ms.is_empty() {
            let f = |q| pct(q).unwrap_or(0.0);
            println!(
                "caption latency ms  p50 {:.1}  p90 {:.1}  p99 {:.1}  ({} captions)",
                f(50.0),
                f(90.0),
                f(99.0),
                ms.len()
            );
        }
    }
    if args.predictions.is_some() && scored.unpredicted > 0 {
        eprintln!("edgecap: note: {} referenced images have no prediction; scored {}", scored.unpredicted, scored.n);
    }
    Ok(ExitCode::SUCCESS)
}

/// Captions the images of `keys` not yet in `out`, appending one line per caption as it is made.
/// Returns every prediction in `out` and how many this run made.
fn caption_set(args: &EvalArgs, images: &Path, out: &Path, keys: &[String]) -> Result<(Vec<Prediction>, usize), Error> {
    let name = out.display().to_string();
    let mut preds = if out.exists() {
        let text = read_text_file(out)?;
        let (preds, valid) = parse_predictions(&text, &name, true)?;
        if valid < text.len() {
            // A run killed mid-line: drop the torn line so the file stays one object per line.
            let f = std::fs::OpenOptions::new().write(true).open(out).map_err(|e| Error::io(&name, e))?;
            f.set_len(valid as u64).map_err(|e| Error::io(&name, e))?;
            eprintln!("edgecap: note: {name}: dropped an unfinished last line");
        }
        preds
    } else {
        Vec::new()
    };
    let done: BTreeSet<String> = preds.iter().map(|p| image_key(&p.image)).collect();
    let todo: Vec<String> = keys.iter().filter(|k| !done.contains(*k)).cloned().collect();
    if todo.is_empty() {
        return Ok((preds, 0));
    }
    let paths = image_paths(images, &todo)?;
    let made = match choose(args.source.backend)? {
        Chosen::Cpu => edgecap::backend::cpu::on_pool(|| caption_with(CpuBackend, args, out, &todo, &paths))?,
        #[cfg(feature = "gpu")]
        Chosen::Gpu(gpu) => caption_with(gpu, args, out, &todo, &paths)?,
    };
    preds.extend(made);
    Ok((preds, todo.len()))
}

/// Loads the model on `backend` and captions `paths` (named `keys`), appending each caption to
/// `out` as soon as it is made.
fn caption_with<B: Backend>(
    backend: B,
    args: &EvalArgs,
    out: &Path,
    keys: &[String],
    paths: &[PathBuf],
) -> Result<Vec<Prediction>, Error> {
    let name = out.display().to_string();
    let model = args.model.as_deref().expect("clap requires --model here");
    let captioner = load(backend, model_files(model, &args.source)?)?;
    let opts = args.decode.options(0, None);
    let file = std::fs::OpenOptions::new().create(true).append(true).open(out).map_err(|e| Error::io(&name, e))?;
    let mut file = std::io::BufWriter::new(file);
    let bar = progress_bar(keys.len());
    let mut preds = Vec::new();
    for (key, path) in keys.iter().zip(paths) {
        bar.set_message(key.clone());
        let image = decode(path)?;
        let c = pollster::block_on(captioner.caption(&image, &opts))
            .map_err(|e| eval_err(format!("{}: {e}", path.display())))?;
        let p = Prediction { image: key.clone(), caption: c.caption, ms: Some(c.timings_ms.total) };
        let line = serde_json::to_string(&p).map_err(eval_err)?;
        // Written and flushed per caption: an interrupted run loses at most the caption in flight.
        writeln!(file, "{line}").and_then(|_| file.flush()).map_err(|e| Error::io(&name, e))?;
        preds.push(p);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(preds)
}

pub fn study(args: StudyArgs) -> Result<ExitCode, Error> {
    if !args.model.is_dir() {
        return Err(eval_err(format!(
            "{}: the study converts every variant from a Hugging Face folder (config.json, model.safetensors); give the folder",
            args.model.display()
        )));
    }
    let chosen = choose(args.backend)?;
    let config = read_text(&args.model.join("config.json"))?;
    let tokenizer_path = args.tokenizer.clone().unwrap_or_else(|| args.model.join("tokenizer.json"));
    if !tokenizer_path.exists() {
        return Err(eval_err(format!("{}: no tokenizer.json in the folder; give --tokenizer", args.model.display())));
    }
    let tokenizer = read_text(&tokenizer_path)?;
    let (refs, keys) = load_refs(&args.refs)?;
    let paths = image_paths(&args.images, &keys)?;
    let images: Vec<(String, Rgb8)> =
        keys.iter().zip(&paths).map(|(k, p)| Ok((k.clone(), decode(p)?))).collect::<Result<_, Error>>()?;
    let references: Vec<Vec<String>> = keys.iter().map(|k| refs[k].clone()).collect();
    let weights = map(&args.model.join("model.safetensors"))?;
    let plan = StudyPlan {
        dtypes: args.dtypes.iter().map(|&d| dtype(d)).collect(),
        base_dtype: dtype(args.base_dtype),
        sizes: args.sizes.clone(),
        sparsities: args.sparsities.clone(),
        scopes: args.prune_scopes.iter().map(|&s| s.into()).collect(),
        generate: GenerateOptions {
            max_new_tokens: args.max_tokens,
            min_new_tokens: 0,
            num_beams: args.beams as usize,
        },
        repeats: args.repeats as usize,
    };
    let input = StudyInput {
        safetensors: &weights,
        config_json: &config,
        tokenizer_json: &tokenizer,
        images: &images,
        references: &references,
    };
    let bar = progress_bar(0);
    let mut progress = |done: usize, total: usize, what: &str| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        bar.set_message(what.to_string());
    };
    let (points, backend_name) = match chosen {
        Chosen::Cpu => {
            (edgecap::backend::cpu::on_pool(|| run_study(|| Ok(CpuBackend), &input, &plan, &mut progress))?, "cpu")
        }
        #[cfg(feature = "gpu")]
        Chosen::Gpu(gpu) => {
            // One device per model variant (each Captioner owns its backend); the first is the
            // one `choose` opened.
            let mut first = Some(gpu);
            let open = || match first.take() {
                Some(g) => Ok(g),
                None => pollster::block_on(edgecap::backend::gpu::GpuBackend::new()),
            };
            (run_study(open, &input, &plan, &mut progress)?, "gpu")
        }
    };
    bar.finish_and_clear();
    let about = format!(
        "Model: `{}` (variants converted in memory). Images: {} from `{}`, references `{}`{}. Backend: {}. \
         Decoding: {}, at most {} new tokens. Timed passes per variant: {}.",
        args.model.display(),
        images.len(),
        args.images.display(),
        args.refs.references.display(),
        args.refs.split.as_deref().map(|s| format!(" (split {s})")).unwrap_or_default(),
        backend_name,
        if args.beams > 1 { format!("beam search ({} beams)", args.beams) } else { "greedy".to_string() },
        args.max_tokens,
        args.repeats,
    );
    write_report(&args.out, &points, &about)?;
    print!("{}", edgecap::eval::study::markdown(&points, &about));
    eprintln!("wrote {}: study.md, study.csv, {}", args.out.display(), PLOTS.join(", "));
    Ok(ExitCode::SUCCESS)
}
