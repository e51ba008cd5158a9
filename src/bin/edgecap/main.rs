//! The `edgecap` command line: caption images, convert Hugging Face checkpoints to GGUF, score
//! captions against references and run the size/speed/quality study.

mod evaluate;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use edgecap::backend::cpu::CpuBackend;
#[cfg(feature = "gpu")]
use edgecap::backend::gpu::{GpuBackend, GpuLimits, GpuOptions};
use edgecap::backend::Backend;
use edgecap::generate::GenerateOptions;
use edgecap::preprocess::{decode_image, ResizeMode};
use edgecap::weights::convert::{convert_to_gguf_pruned, ConvertOptions, TargetDType};
use edgecap::weights::prune::Pruning;
use edgecap::{CaptionOptions, Captioner, Error};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "edgecap", version, about = "Offline BLIP image captioning (int8 GGUF models, CPU or GPU)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Caption images; one line per image (one JSON object per line with --json).
    Caption(CaptionArgs),
    /// Convert a Hugging Face BLIP folder (config.json + model.safetensors) to one GGUF file.
    Convert(ConvertArgs),
    /// Corpus BLEU-1..4 of captions against reference captions; captions a set first with --model.
    Eval(evaluate::EvalArgs),
    /// Sweep storage type, input size (stretch vs crop) and magnitude pruning: BLEU, file size
    /// and latency of each variant as a Markdown table, a CSV and SVG plots.
    Study(evaluate::StudyArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum BackendChoice {
    Cpu,
    Gpu,
    Auto,
}

#[derive(Clone, Copy, ValueEnum)]
enum ResizeChoice {
    Stretch,
    Crop,
}

#[derive(Clone, Copy, ValueEnum)]
enum DTypeChoice {
    #[value(name = "q8_0")]
    Q8_0,
    /// ggml's Q4_K (rows that are not whole 256-value blocks: Q4_0).
    #[value(name = "q4_k")]
    #[allow(non_camel_case_types)] // ggml's name
    Q4_K,
    #[value(name = "q4_0")]
    Q4_0,
    F16,
    F32,
}

#[derive(Clone, Copy, ValueEnum)]
enum Compat {
    /// Also write the tied LM head explicitly, as candle-transformers' quantized_blip expects.
    Candle,
}

/// Where a model's config and tokenizer come from, and what runs it (`caption` and `eval`).
#[derive(clap::Args)]
struct ModelArgs {
    /// tokenizer.json (default: the one inside the GGUF file, or in the model folder).
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// config.json (default: the one inside the GGUF file, or in the model folder).
    #[arg(long)]
    config: Option<PathBuf>,
    /// `auto`: a hardware GPU when wgpu finds one, else the CPU (software GPUs such as lavapipe
    /// are slower than the CPU backend; ask for them with `gpu`).
    #[arg(long, value_enum, default_value = "auto")]
    backend: BackendChoice,
}

/// How captions are generated (`caption` and `eval`).
#[derive(clap::Args)]
struct DecodeArgs {
    #[arg(long, default_value_t = 20)]
    max_tokens: usize,
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16))]
    beams: u16,
    /// Input side in pixels (default: the model's, 384 for BLIP-base); position embeddings are
    /// interpolated for other sizes.
    #[arg(long, value_parser = clap::value_parser!(u32).range(16..=edgecap::MAX_INPUT_SIZE as i64))]
    image_size: Option<u32>,
    #[arg(long, value_enum, default_value = "stretch")]
    resize: ResizeChoice,
}

impl DecodeArgs {
    fn options(&self, min_tokens: usize, prompt: Option<String>) -> CaptionOptions {
        CaptionOptions {
            generate: GenerateOptions {
                max_new_tokens: self.max_tokens,
                min_new_tokens: min_tokens,
                num_beams: self.beams as usize,
            },
            prompt,
            image_size: self.image_size.map(|s| s as usize),
            resize: match self.resize {
                ResizeChoice::Stretch => ResizeMode::Stretch,
                ResizeChoice::Crop => ResizeMode::Crop,
            },
        }
    }
}

#[derive(clap::Args)]
struct CaptionArgs {
    /// A GGUF file, or a Hugging Face folder with config.json and model.safetensors.
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    source: ModelArgs,
    #[command(flatten)]
    decode: DecodeArgs,
    #[arg(long, default_value_t = 0)]
    min_tokens: usize,
    /// Text the caption must start with, e.g. "a picture of".
    #[arg(long)]
    prompt: Option<String>,
    #[arg(long)]
    json: bool,
    /// With --json on the GPU backend: add "gpu_stats" (dispatches of the vision pass and of the
    /// last decoder step, its buffer copies and new bind groups, submits, the largest submit).
    #[arg(long, requires = "json")]
    stats: bool,
    /// GPU: at most N dispatches per command buffer (default: 256 on Apple GPUs, where iOS fails
    /// on very large ones; unbounded elsewhere).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    gpu_submit_every: Option<u32>,
    /// GPU: open the device with the adapter's limits, or with the WebGPU spec's defaults (what
    /// the smallest device guarantees).
    #[arg(long, value_enum, default_value = "adapter")]
    gpu_limits: LimitsChoice,
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LimitsChoice {
    Adapter,
    Default,
}

#[derive(clap::Args)]
struct ConvertArgs {
    /// Hugging Face folder (config.json, model.safetensors, and tokenizer.json if present), or a
    /// GGUF file we read (any tensor type: it is decoded and re-encoded as --dtype).
    #[arg(long)]
    from: PathBuf,
    /// config.json to embed (default: the folder's, or the one a GGUF source carries).
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long)]
    to: PathBuf,
    #[arg(long, value_enum, default_value = "q8_0")]
    dtype: DTypeChoice,
    /// tokenizer.json to embed (default: the one in the folder, or the one a GGUF source carries).
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    #[arg(long, value_enum)]
    compat: Option<Compat>,
    /// Unstructured magnitude pruning: set this fraction (0 to <1) of the --prune-scope weights with
    /// the smallest magnitude to zero, ranked together across tensors. The default scope is the
    /// weight matrices of linear layers (attention, MLP, LM-head transform); norms, biases and
    /// embeddings are kept. Zeros are stored densely: the file does not shrink, it compresses better.
    #[arg(long, value_name = "FRACTION", value_parser = prune_fraction)]
    prune: Option<f64>,
    #[arg(long, value_enum, default_value = "linear", requires = "prune")]
    prune_scope: evaluate::ScopeChoice,
}

fn prune_fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..1.0).contains(&v) => Ok(v),
        _ => Err(format!("{s} is not a fraction in [0, 1)")),
    }
}

fn dtype(d: DTypeChoice) -> TargetDType {
    match d {
        DTypeChoice::Q8_0 => TargetDType::Q8_0,
        DTypeChoice::Q4_K => TargetDType::Q4_K,
        DTypeChoice::Q4_0 => TargetDType::Q4_0,
        DTypeChoice::F16 => TargetDType::F16,
        DTypeChoice::F32 => TargetDType::F32,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Caption(args) => caption(args),
        Command::Convert(args) => convert(args),
        Command::Eval(args) => evaluate::eval(args),
        Command::Study(args) => evaluate::study(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("edgecap: {e}");
            ExitCode::from(1)
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::io(path.display(), e))
}

fn read_text(path: &Path) -> Result<String, Error> {
    String::from_utf8(read(path)?).map_err(|_| Error::config(format!("{} is not UTF-8 text", path.display())))
}

/// Maps the model file read-only; the OS pages weights in as the backend copies them.
fn map(path: &Path) -> Result<memmap2::Mmap, Error> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path.display(), e))?;
    // SAFETY: the map is read-only and lives while the loader reads it; a file truncated by
    // another process meanwhile is outside what we can defend against.
    unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path.display(), e))
}

/// The three inputs of a model; config and tokenizer may instead be inside the weights file.
struct ModelFiles {
    weights: PathBuf,
    config: Option<String>,
    tokenizer: Option<Vec<u8>>,
}

/// `model` (a GGUF file or a Hugging Face folder) and the `--config`/`--tokenizer` that override
/// what it carries.
fn model_files(model: &Path, args: &ModelArgs) -> Result<ModelFiles, Error> {
    let (weights, dir) =
        if model.is_dir() { (model.join("model.safetensors"), Some(model)) } else { (model.to_path_buf(), None) };
    let from_dir = |name: &str| dir.map(|d| d.join(name)).filter(|p| p.exists());
    let config = args.config.clone().or_else(|| from_dir("config.json")).map(|p| read_text(&p)).transpose()?;
    let tokenizer = args.tokenizer.clone().or_else(|| from_dir("tokenizer.json")).map(|p| read(&p)).transpose()?;
    Ok(ModelFiles { weights, config, tokenizer })
}

/// Loads `files` onto `backend`. The backend holds its own copy of every tensor once loaded, so
/// the mapped file is dropped at once: one copy stays resident.
fn load<B: Backend>(backend: B, files: ModelFiles) -> Result<Captioner<B>, Error> {
    let ModelFiles { weights, config, tokenizer } = files;
    let bytes = map(&weights)?;
    Captioner::load(backend, &bytes, config.as_deref(), tokenizer.as_deref())
}

/// The backend `--backend` asked for, opened.
#[allow(clippy::large_enum_variant)] // made once per run
enum Chosen {
    Cpu,
    #[cfg(feature = "gpu")]
    Gpu(GpuBackend),
}

fn choose(choice: BackendChoice) -> Result<Chosen, Error> {
    choose_with(choice, None, LimitsChoice::Adapter)
}

/// `choose`, with the GPU options of `edgecap caption`.
fn choose_with(choice: BackendChoice, submit_every: Option<u32>, limits: LimitsChoice) -> Result<Chosen, Error> {
    #[cfg(feature = "gpu")]
    let open = || {
        let options = GpuOptions {
            limits: match limits {
                LimitsChoice::Adapter => GpuLimits::Adapter,
                LimitsChoice::Default => GpuLimits::Default,
            },
            submit_every: submit_every.map(|n| n as usize),
            ..Default::default()
        };
        pollster::block_on(GpuBackend::with_options(options))
    };
    #[cfg(feature = "gpu")]
    match choice {
        BackendChoice::Cpu => Ok(Chosen::Cpu),
        BackendChoice::Gpu => Ok(Chosen::Gpu(open()?)),
        BackendChoice::Auto => Ok(match open() {
            // A software rasteriser (lavapipe, SwiftShader) is slower than our CPU backend.
            Ok(gpu) if gpu.adapter().device_type != "Cpu" => Chosen::Gpu(gpu),
            _ => Chosen::Cpu,
        }),
    }
    #[cfg(not(feature = "gpu"))]
    let _ = (submit_every, limits);
    #[cfg(not(feature = "gpu"))]
    match choice {
        BackendChoice::Gpu => {
            Err(Error::Backend { backend: "gpu", message: "this build has no GPU backend (feature `gpu`)".into() })
        }
        BackendChoice::Cpu | BackendChoice::Auto => Ok(Chosen::Cpu),
    }
}

fn caption(args: CaptionArgs) -> Result<ExitCode, Error> {
    let files = model_files(&args.model, &args.source)?;
    match choose_with(args.source.backend, args.gpu_submit_every, args.gpu_limits)? {
        Chosen::Cpu => edgecap::backend::cpu::on_pool(|| caption_with(CpuBackend, None, &args, files, |_| None)),
        #[cfg(feature = "gpu")]
        Chosen::Gpu(gpu) => {
            let adapter = gpu.adapter().name.clone();
            caption_with(gpu, Some(adapter), &args, files, |g| Some(serde_json::json!(g.caption_stats())))
        }
    }
}

/// Loads the model on `backend` and captions every image; `adapter` names the GPU for `--json`,
/// `stats` gives what `--stats` adds after each caption (GPU counters).
fn caption_with<B: Backend>(
    backend: B,
    adapter: Option<String>,
    args: &CaptionArgs,
    files: ModelFiles,
    stats: impl Fn(&B) -> Option<serde_json::Value>,
) -> Result<ExitCode, Error> {
    let captioner = load(backend, files)?;
    let opts = args.decode.options(args.min_tokens, args.prompt.clone());
    let mut failed = false;
    for path in &args.images {
        let result = read(path)
            .and_then(|b| Ok(decode_image(&b)?))
            .and_then(|img| pollster::block_on(captioner.caption(&img, &opts)));
        match result {
            Ok(c) if args.json => {
                let mut line = serde_json::json!({
                    "image": path.display().to_string(),
                    "caption": c.caption,
                    "token_ids": c.token_ids,
                    "backend": captioner.backend_name(),
                    "adapter": adapter,
                    "timings_ms": c.timings_ms,
                });
                if let Some(gpu_stats) = stats(&captioner.backend).filter(|_| args.stats) {
                    line["gpu_stats"] = gpu_stats;
                }
                println!("{line}");
            }
            Ok(c) if args.images.len() == 1 => println!("{}", c.caption),
            Ok(c) => println!("{}\t{}", path.display(), c.caption),
            Err(e) => {
                // Errors from reading the file name it already.
                let msg = e.to_string();
                let name = path.display().to_string();
                if msg.contains(&name) {
                    eprintln!("edgecap: {msg}")
                } else {
                    eprintln!("edgecap: {name}: {msg}")
                }
                failed = true;
            }
        }
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn convert(args: ConvertArgs) -> Result<ExitCode, Error> {
    let from_gguf = args.from.is_file();
    let weights = map(&if from_gguf { args.from.clone() } else { args.from.join("model.safetensors") })?;
    // What a GGUF source carries, as the caption command reads it.
    let carried = |key: &str| -> Result<Option<String>, Error> {
        if !from_gguf {
            return Ok(None);
        }
        let file = edgecap::weights::gguf::GgufFile::parse(&weights)
            .map_err(|e| Error::model(format!("{}: {e}", args.from.display())))?;
        Ok(file.get_str(key).map(str::to_string))
    };
    let config = match (&args.config, from_gguf) {
        (Some(p), _) => read_text(p)?,
        (None, false) => read_text(&args.from.join("config.json"))?,
        (None, true) => carried(edgecap::weights::gguf::GGUF_CONFIG_KEY)?.ok_or_else(|| {
            Error::model(format!("{} carries no BLIP config; give --config config.json", args.from.display()))
        })?,
    };
    let tokenizer = match (&args.tokenizer, from_gguf) {
        (Some(p), _) => Some(read_text(p)?),
        (None, false) => {
            Some(args.from.join("tokenizer.json")).filter(|p| p.exists()).map(|p| read_text(&p)).transpose()?
        }
        (None, true) => carried(edgecap::weights::gguf::GGUF_TOKENIZER_KEY)?,
    };
    let opts = ConvertOptions { dtype: dtype(args.dtype), compat_candle: matches!(args.compat, Some(Compat::Candle)) };
    let pruning = args.prune.map(|sparsity| Pruning { sparsity, scope: args.prune_scope.into() });
    let tmp = args.to.with_extension("gguf.partial");
    let file = std::fs::File::create(&tmp).map_err(|e| Error::io(tmp.display(), e))?;
    let mut out = std::io::BufWriter::new(file);
    let bar = progress_bar();
    let report = convert_to_gguf_pruned(
        &weights,
        &config,
        tokenizer.as_deref(),
        &opts,
        pruning.as_ref(),
        &mut out,
        |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
    );
    bar.finish_and_clear();
    let report = report.and_then(|r| {
        let file = out.into_inner().map_err(|e| Error::io(tmp.display(), e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(tmp.display(), e))?;
        Ok(r)
    });
    let (report, pruned) = match report {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, &args.to).map_err(|e| Error::io(args.to.display(), e))?;
    if tokenizer.is_none() {
        eprintln!("edgecap: note: no tokenizer.json found; the file needs --tokenizer when captioning");
    }
    eprintln!("wrote {} ({} tensors, {:.1} MB)", args.to.display(), report.tensors, report.bytes as f64 / 1e6);
    if let (Some(p), Some(r)) = (pruning, pruned) {
        eprintln!(
            "pruned {} of {} {} weights to zero ({:.1}%)",
            r.zeroed,
            r.weights,
            p.scope.name(),
            100.0 * r.zeroed as f64 / r.weights.max(1) as f64
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A bar on a terminal; nothing when stderr is redirected (logs, CI).
fn progress_bar() -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}
