//! The `edgecap` binary as a user runs it: captions against Hugging Face's reference token ids
//! (from a Hugging Face folder and from converted GGUF files), `convert`, and how it fails on
//! bad input: exit 2 for usage errors, exit 1 with one `edgecap: ...` line for bad files, never
//! a panic.

mod common;
#[macro_use]
#[path = "common/binary.rs"]
mod binary;

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use binary::{edgecap, edgecap_with_env, Run};
use common::*;
use edgecap::weights::gguf::{self, GgufFile, TensorSpec};
use serde_json::Value;

const TINY: &str = "models/blip-tiny-random";
const TOKENIZER: &str = "models/tokenizer.json";
const IMAGE: &str = "images/synthetic_64x64.png";
const BOS: u32 = 30522;
const LM_HEAD: &str = "text_decoder.cls.predictions.decoder.weight";
const WORD_EMBEDDINGS: &str = "text_decoder.bert.embeddings.word_embeddings.weight";
/// For errors whose wording the tests do not pin.
const ANY_MESSAGE: &str = "";

fn fixture(rel: &str) -> PathBuf {
    fixtures().join(rel)
}

// ---------------------------------------------------------------------------------------------
// Running the binary

/// `edgecap caption --backend cpu --json --model MODEL ARGS...`
/// `caption --json` of the tiny model's image on `backend`.
fn tiny_caption_on(backend: &str) -> Vec<OsString> {
    argv![
        "caption",
        "--backend",
        backend,
        "--json",
        "--model",
        fixture(TINY),
        "--tokenizer",
        fixture(TOKENIZER),
        fixture(IMAGE)
    ]
}

fn caption(model: &Path, args: Vec<OsString>) -> Run {
    let mut all = argv!["caption", "--backend", "cpu", "--json", "--model", model];
    all.extend(args);
    edgecap(all)
}

/// `caption` with a HF folder (config.json + model.safetensors) and the fixture tokenizer.
fn caption_hf(folder: &Path, images: &[impl AsRef<OsStr>]) -> Run {
    let mut args = argv!["--tokenizer", fixture(TOKENIZER)];
    args.extend(images.iter().map(|i| i.as_ref().to_owned()));
    caption(folder, args)
}

/// `edgecap convert --from FROM --to TO --tokenizer <fixture> ARGS...`, which must succeed.
fn convert(from: &Path, to: &Path, args: &[&str]) {
    let mut all = argv!["convert", "--from", from, "--to", to, "--tokenizer", fixture(TOKENIZER)];
    all.extend(args.iter().map(OsString::from));
    edgecap(all).assert_success();
    assert!(to.is_file(), "convert wrote no {}", to.display());
}

impl Run {
    fn assert_success(&self) {
        assert_eq!(self.code, Some(0), "{}\nstderr: {}", self.what, self.stderr);
    }

    fn assert_no_panic(&self) {
        assert!(!self.stderr.contains("panicked"), "{} panicked:\n{}", self.what, self.stderr);
    }

    /// Clap's refusal: exit 2, nothing on stdout.
    fn assert_usage_error(&self) {
        self.assert_no_panic();
        assert_eq!(self.code, Some(2), "{}\nstderr: {}", self.what, self.stderr);
        assert_eq!(self.stdout, "", "{}", self.what);
    }

    /// Exit 1 with nothing on stdout and exactly one `edgecap: ...` line on stderr, which
    /// contains `mentions` (case-insensitive; [`ANY_MESSAGE`] for no check of the wording).
    fn assert_fails_cleanly(&self, mentions: &str) {
        self.assert_no_panic();
        assert_eq!(self.code, Some(1), "{}\nstdout: {}\nstderr: {}", self.what, self.stdout, self.stderr);
        assert_eq!(self.stdout, "", "{}", self.what);
        self.assert_error_lines(&[mentions]);
    }

    /// One `edgecap: ...` stderr line per entry of `mentions`, each containing it.
    fn assert_error_lines(&self, mentions: &[&str]) {
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), mentions.len(), "{}\nstderr: {}", self.what, self.stderr);
        for (line, mention) in lines.iter().zip(mentions) {
            assert!(line.starts_with("edgecap: "), "{}: {line}", self.what);
            assert!(
                line.to_lowercase().contains(&mention.to_lowercase()),
                "{}: {line:?} does not mention {mention:?}",
                self.what
            );
        }
    }

    /// The `--json` output: one object per line.
    fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: line {l:?}: {e}", self.what)))
            .collect()
    }
}

/// Checks one `--json` line against what it must say about `image`; returns its token ids.
fn check_json_line(line: &Value, image: &Path) -> Vec<u32> {
    check_json_line_on("cpu", line, image)
}

fn check_json_line_on(backend: &str, line: &Value, image: &Path) -> Vec<u32> {
    assert_eq!(line["image"], image.display().to_string(), "{line}");
    assert_eq!(line["backend"], backend, "{line}");
    for key in ["preprocess", "vision", "decode", "total"] {
        let ms = line["timings_ms"][key].as_f64();
        assert!(ms.is_some_and(|ms| ms.is_finite() && ms >= 0.0), "timings_ms.{key} in {line}");
    }
    assert!(line["caption"].is_string(), "{line}");
    serde_json::from_value(line["token_ids"].clone()).unwrap_or_else(|e| panic!("token_ids in {line}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Captions against the references

/// The CLI flags each mode of cases.json was made with (as `common::mode_options`).
fn mode_flags(mode: &str) -> Vec<OsString> {
    match mode {
        "greedy" => argv!["--max-tokens", "20"],
        "prompt" => argv!["--max-tokens", "20", "--prompt", "a picture of"],
        "beam3" => argv!["--max-tokens", "20", "--beams", "3", "--min-tokens", "5"],
        other => panic!("unknown mode {other}"),
    }
}

/// Cases of cases.json through the CLI, one invocation per model and mode with all of its
/// images; `model_args(hf_folder)` gives the arguments that select the model.
fn check_cases(cases: &[Case], model_args: impl Fn(&str) -> Vec<OsString>) {
    check_cases_on("cpu", cases, model_args)
}

fn check_cases_on(backend: &str, cases: &[Case], model_args: impl Fn(&str) -> Vec<OsString>) {
    check_cases_with(backend, &[], cases, model_args)
}

/// `check_cases_on` with extra flags for every run (GPU settings).
fn check_cases_with(backend: &str, extra: &[&str], cases: &[Case], model_args: impl Fn(&str) -> Vec<OsString>) {
    let mut groups: Vec<(&str, &str, Vec<&Case>)> = Vec::new();
    for case in cases {
        match groups.iter_mut().find(|(m, mode, _)| *m == case.model && *mode == case.mode) {
            Some((_, _, group)) => group.push(case),
            None => groups.push((&case.model, &case.mode, vec![case])),
        }
    }
    for (model, mode, group) in groups {
        let images: Vec<PathBuf> = group.iter().map(|c| fixture(&c.image)).collect();
        let mut args = argv!["caption", "--backend", backend, "--json"];
        args.extend(extra.iter().map(OsString::from));
        args.extend(model_args(model));
        args.extend(mode_flags(mode));
        args.extend(images.iter().map(OsString::from));
        let run = edgecap(args);
        run.assert_success();
        let lines = run.json_lines();
        assert_eq!(lines.len(), group.len(), "{}: one line per image", run.what);
        for ((line, case), image) in lines.iter().zip(&group).zip(&images) {
            let ids = check_json_line_on(backend, line, image);
            assert_eq!(ids, case.token_ids, "{model} {} {mode}", case.image);
            assert_eq!(line["caption"], case.caption, "{model} {} {mode}", case.image);
        }
    }
}

#[test]
fn hf_folders_caption_like_transformers() {
    check_cases(&cases(), |model| argv!["--model", fixture(model), "--tokenizer", fixture(TOKENIZER)]);
}

#[test]
fn f32_gguf_alone_captions_like_transformers() {
    let tmp = temp_dir("f32-cases");
    let gguf_of = |model: &str| tmp.path().join(format!("{}.gguf", model.replace('/', "_")));
    let mut models: Vec<String> = cases().into_iter().map(|c| c.model).collect();
    models.sort_unstable();
    models.dedup();
    for model in &models {
        convert(&fixture(model), &gguf_of(model), &["--dtype", "f32"]);
    }
    // Config and tokenizer come from inside the file.
    check_cases(&cases(), |model| argv!["--model", gguf_of(model)]);
}

/// The wgpu backend through the CLI (lavapipe in CI). Cases whose greedy top-2 margin is under
/// 1e-3 at some step are left out: any change of summation order may flip them.
#[test]
fn gpu_backend_captions_like_transformers() {
    let probe = edgecap(tiny_caption_on("gpu"));
    probe.assert_no_panic();
    if probe.lacks_a_gpu_and_may_skip() {
        return;
    }
    probe.assert_success();
    let line = &probe.json_lines()[0];
    assert!(line["adapter"].as_str().is_some_and(|a| !a.is_empty()), "GPU output names its adapter: {line}");
    let compared: Vec<Case> =
        cases().into_iter().filter(|c| c.mode == "beam3" || c.min_margin.is_none_or(|m| m >= 1e-3)).collect();
    assert!(compared.len() >= 12, "only {} cases compared", compared.len());
    check_cases_on("gpu", &compared, |model| argv!["--model", fixture(model), "--tokenizer", fixture(TOKENIZER)]);
    // As the smallest WebGPU device (the spec's default limits) with iPhone-sized submits.
    check_cases_with("gpu", &["--gpu-limits", "default", "--gpu-submit-every", "64"], &compared, |model| {
        argv!["--model", fixture(model), "--tokenizer", fixture(TOKENIZER)]
    });
    // The self-contained q8_0 GGUF runs on the GPU too (its kernels are checked against the
    // dequantized weights in tests/gpu.rs; the CPU backend quantizes activations as well, so the
    // two need not pick the same words on a random model with tiny margins).
    let tmp = temp_dir("gpu-q8");
    let q8 = tmp.path().join("q8.gguf");
    convert(&fixture(TINY), &q8, &["--dtype", "q8_0"]);
    let run = edgecap(argv!["caption", "--backend", "gpu", "--json", "--model", &q8, fixture(IMAGE)]);
    run.assert_success();
    let ids = check_json_line_on("gpu", &run.json_lines()[0], &fixture(IMAGE));
    assert_eq!(ids.len(), 21, "bos + 20 tokens: {ids:?}");
}

/// `--json --stats`: the work of a caption stays within the dispatch budget (≤ 12 per decoder
/// layer + 8 per token, ≤ 9 per vision layer + 8), a decoder step copies no buffer and, after
/// the first caption, creates no bind group; `--gpu-submit-every N` bounds every submit.
#[test]
fn gpu_stats_meet_the_dispatch_budget() {
    let config: Value = serde_json::from_slice(&read(&format!("{TINY}/config.json"))).unwrap();
    let text_layers = config["text_config"]["num_hidden_layers"].as_u64().unwrap();
    let vision_layers = config["vision_config"]["num_hidden_layers"].as_u64().unwrap();
    let tmp = temp_dir("gpu-stats");
    let q8 = tmp.path().join("q8.gguf");
    convert(&fixture(TINY), &q8, &["--dtype", "q8_0"]);
    for model in [fixture(TINY), q8] {
        for submit_every in [None, Some(16u64)] {
            let mut args = argv![
                "caption",
                "--backend",
                "gpu",
                "--json",
                "--stats",
                "--model",
                &model,
                "--tokenizer",
                fixture(TOKENIZER)
            ];
            if let Some(n) = submit_every {
                args.extend(argv!["--gpu-submit-every", n.to_string()]);
            }
            args.extend(argv![fixture(IMAGE), fixture(IMAGE), fixture("images/synthetic_160x120.png")]);
            let run = edgecap(args);
            run.assert_no_panic();
            if run.lacks_a_gpu_and_may_skip() {
                return;
            }
            run.assert_success();
            for (i, line) in run.json_lines().iter().enumerate() {
                let s = &line["gpu_stats"];
                let n = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("gpu_stats.{k} in {line}"));
                println!("{} caption {i}: {s}", model.display());
                assert!(n("token_dispatches") <= 12 * text_layers + 8, "{s}");
                assert!(n("token_dispatches") > 0, "{s}");
                assert!(n("vision_dispatches") <= 9 * vision_layers + 8, "{s}");
                assert_eq!(n("token_buffer_copies"), 0, "{s}");
                if i > 0 {
                    assert_eq!(n("token_bind_groups_created"), 0, "caption {i}: {s}");
                }
                if let Some(limit) = submit_every {
                    assert!(n("max_dispatches_per_submit") <= limit, "{s}");
                }
            }
        }
    }
    // Without --json there is nothing to add the stats to.
    assert_eq!(edgecap(argv!["caption", "--stats", "--model", fixture(TINY), fixture(IMAGE)]).code, Some(2));
}

/// blip-tiny-random-hubkeys holds blip-tiny-random's weights in the layout of the Hub's BLIP
/// checkpoints: an explicit LM head and decoder bias, and an I64 `position_ids` buffer.
#[test]
fn hub_layout_captions_like_the_tied_layout_as_folder_and_as_gguf() {
    const HUB: &str = "models/blip-tiny-random-hubkeys";
    let tiny_cases: Vec<Case> = cases().into_iter().filter(|c| c.model == TINY).collect();
    check_cases(&tiny_cases, |_| argv!["--model", fixture(HUB), "--tokenizer", fixture(TOKENIZER)]);
    let tmp = temp_dir("hub");
    let gguf = tmp.path().join("hub.gguf");
    convert(&fixture(HUB), &gguf, &["--dtype", "f32"]);
    check_cases(&tiny_cases, |_| argv!["--model", &gguf]);
}

#[test]
fn q8_0_gguf_alone_captions_and_is_smaller_than_f32() {
    let tmp = temp_dir("q8");
    let (q8, f32) = (tmp.path().join("q8.gguf"), tmp.path().join("f32.gguf"));
    convert(&fixture(TINY), &q8, &["--dtype", "q8_0"]);
    convert(&fixture(TINY), &f32, &["--dtype", "f32"]);
    let image = fixture(IMAGE);
    let run = caption(&q8, argv![&image]);
    run.assert_success();
    let lines = run.json_lines();
    assert_eq!(lines.len(), 1, "{}", run.stdout);
    let ids = check_json_line(&lines[0], &image);
    assert_eq!(ids.len(), 21, "greedy, 20 new tokens after bos: {ids:?}");
    assert_eq!(ids[0], BOS);
    let size = |p: &Path| std::fs::metadata(p).unwrap().len();
    assert!(size(&q8) < size(&f32), "q8_0 {} bytes, f32 {} bytes", size(&q8), size(&f32));
}

#[test]
fn compat_candle_writes_the_tied_lm_head() {
    let tmp = temp_dir("compat");
    let (plain, candle) = (tmp.path().join("plain.gguf"), tmp.path().join("candle.gguf"));
    convert(&fixture(TINY), &plain, &[]);
    convert(&fixture(TINY), &candle, &["--compat", "candle"]);

    let bytes = std::fs::read(&plain).unwrap();
    let file = GgufFile::parse(&bytes).unwrap();
    assert!(file.tensor(LM_HEAD).unwrap().is_none(), "the default stores the tied head once");

    let bytes = std::fs::read(&candle).unwrap();
    let file = GgufFile::parse(&bytes).unwrap();
    let head = file.tensor(LM_HEAD).unwrap().expect("--compat candle writes the LM head");
    let embeddings = file.tensor(WORD_EMBEDDINGS).unwrap().expect("word embeddings");
    assert_eq!((&head.shape, head.dtype), (&embeddings.shape, embeddings.dtype));
    assert!(file.tensor_data(head) == file.tensor_data(embeddings), "the head is the tied embeddings");
}

// ---------------------------------------------------------------------------------------------
// Usage errors and bad input

#[test]
fn usage_errors_exit_2() {
    let (model, image) = (fixture(TINY), fixture(IMAGE));
    edgecap(argv!["caption", "--model", &model, "--no-such-flag", &image]).assert_usage_error();
    edgecap(argv!["caption", "--backend", "cpu", &image]).assert_usage_error();
    edgecap(argv!["caption", "--model", &model, "--beams", "0", &image]).assert_usage_error();
    edgecap(argv!["caption", "--model", &model]).assert_usage_error();
    edgecap(argv!["no-such-command"]).assert_usage_error();
}

#[test]
fn bad_images_fail_with_one_line() {
    let tmp = temp_dir("images");
    let missing = tmp.path().join("missing.png");
    let text = tmp.path().join("text.png");
    std::fs::write(&text, "this is not an image\n").unwrap();
    let truncated = tmp.path().join("truncated.png");
    let png = read("images/synthetic_640x480.png");
    std::fs::write(&truncated, &png[..png.len() / 2]).unwrap();
    for image in [&missing, &text, &truncated] {
        caption_hf(&fixture(TINY), &[image]).assert_fails_cleanly(&image.display().to_string());
    }
}

#[test]
fn one_bad_image_among_good_ones_still_captions_the_good_ones() {
    let tmp = temp_dir("mixed");
    let (text, missing) = (tmp.path().join("text.png"), tmp.path().join("missing.png"));
    std::fs::write(&text, "not a png").unwrap();
    let good = ["images/synthetic_160x120.png", "images/synthetic_64x64.png"];
    let (good0, good1) = (fixture(good[0]), fixture(good[1]));
    let run = caption_hf(&fixture(TINY), &[&missing, &good0, &text, &good1]);
    run.assert_no_panic();
    assert_eq!(run.code, Some(1), "{}\nstderr: {}", run.what, run.stderr);
    run.assert_error_lines(&[&missing.display().to_string(), &text.display().to_string()]);
    let lines = run.json_lines();
    assert_eq!(lines.len(), 2, "{}", run.stdout);
    let cases = cases();
    for ((line, image), rel) in lines.iter().zip([&good0, &good1]).zip(good) {
        let case = cases.iter().find(|c| c.model == TINY && c.image == rel && c.mode == "greedy").unwrap();
        assert_eq!(check_json_line(line, image), case.token_ids, "{rel}");
    }
}

/// A copy of the tiny HF folder (config.json, model.safetensors) to spoil.
fn tiny_copy(tmp: &tempfile::TempDir, name: &str) -> PathBuf {
    let dir = tmp.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture(TINY).join(file), dir.join(file)).unwrap();
    }
    dir
}

fn edit_config(dir: &Path, edit: impl FnOnce(&mut Value)) {
    let path = dir.join("config.json");
    let mut config: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut config);
    std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
}

#[test]
fn bad_configs_fail_with_one_line() {
    let tmp = temp_dir("configs");
    let image = fixture(IMAGE);

    let not_json = tiny_copy(&tmp, "not-json");
    std::fs::write(not_json.join("config.json"), "{ this is not json").unwrap();
    caption_hf(&not_json, &[&image]).assert_fails_cleanly("json");

    let no_heads = tiny_copy(&tmp, "no-heads");
    edit_config(&no_heads, |c| c["text_config"]["num_attention_heads"] = 0.into());
    caption_hf(&no_heads, &[&image]).assert_fails_cleanly("num_attention_heads");

    let vision_no_heads = tiny_copy(&tmp, "vision-no-heads");
    edit_config(&vision_no_heads, |c| c["vision_config"]["num_attention_heads"] = 0.into());
    caption_hf(&vision_no_heads, &[&image]).assert_fails_cleanly("num_attention_heads");

    let indivisible = tiny_copy(&tmp, "indivisible");
    edit_config(&indivisible, |c| c["vision_config"]["num_attention_heads"] = 5.into()); // hidden 48
    caption_hf(&indivisible, &[&image]).assert_fails_cleanly("num_attention_heads");

    let text_indivisible = tiny_copy(&tmp, "text-indivisible");
    edit_config(&text_indivisible, |c| c["text_config"]["num_attention_heads"] = 3.into()); // hidden 32
    caption_hf(&text_indivisible, &[&image]).assert_fails_cleanly("num_attention_heads");
}

#[test]
fn bad_safetensors_fail_with_one_line() {
    let tmp = temp_dir("safetensors");
    let image = fixture(IMAGE);
    let original = read(&format!("{TINY}/model.safetensors"));
    let header_len = u64::from_le_bytes(original[..8].try_into().unwrap()) as usize;
    let with_header = |header: &[u8]| -> Vec<u8> {
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header);
        bytes.extend_from_slice(&original[8 + header_len..]);
        bytes
    };
    let spoiled: [(&str, Vec<u8>); 3] = [
        ("binary-header", with_header(&vec![0xff; header_len])),
        ("text-header", with_header(&vec![b'#'; header_len])),
        ("header-past-end", [&u64::MAX.to_le_bytes()[..], &original[8..]].concat()),
    ];
    for (name, bytes) in spoiled {
        let dir = tiny_copy(&tmp, name);
        std::fs::write(dir.join("model.safetensors"), bytes).unwrap();
        caption_hf(&dir, &[&image]).assert_fails_cleanly("safetensors");
    }
}

#[test]
fn missing_model_fails_with_one_line() {
    let tmp = temp_dir("missing-model");
    let image = fixture(IMAGE);
    for model in [tmp.path().join("nothing.gguf"), tmp.path().join("no-folder/")] {
        caption(&model, argv![&image]).assert_fails_cleanly(&tmp.path().display().to_string());
    }
}

#[test]
fn damaged_ggufs_fail_with_one_line() {
    let tmp = temp_dir("damaged");
    let good = tmp.path().join("good.gguf");
    convert(&fixture(TINY), &good, &["--dtype", "f32"]);
    let bytes = std::fs::read(&good).unwrap();
    let header = GgufFile::parse(&bytes).unwrap().header().clone();
    let (data_offset, data_end) = (header.data_offset as usize, header.data_end as usize);
    let image = fixture(IMAGE);
    let cuts = [0, 10, data_offset / 2, data_offset + (data_end - data_offset) / 2, data_end - 1];
    for cut in cuts {
        let path = tmp.path().join(format!("cut-{cut}.gguf"));
        std::fs::write(&path, &bytes[..cut]).unwrap();
        caption(&path, argv![&image]).assert_fails_cleanly(ANY_MESSAGE);
    }
    let mut flipped = bytes.clone();
    flipped[..4].reverse(); // "FUGG"
    let path = tmp.path().join("flipped-magic.gguf");
    std::fs::write(&path, flipped).unwrap();
    caption(&path, argv![&image]).assert_fails_cleanly(ANY_MESSAGE);
}

/// Copies the GGUF at `src` to `dst` with only the tensors `keep` accepts, and its metadata or
/// none; returns how many tensors it wrote and how many `src` had.
fn rewrite_gguf(src: &Path, dst: &Path, with_metadata: bool, keep: impl Fn(&str) -> bool) -> (usize, usize) {
    let bytes = std::fs::read(src).unwrap();
    let file = GgufFile::parse(&bytes).unwrap();
    let kept: Vec<_> = file.tensors().iter().filter(|t| keep(&t.name)).collect();
    let specs: Vec<TensorSpec> =
        kept.iter().map(|t| TensorSpec { name: t.name.clone(), shape: t.shape.clone(), dtype: t.dtype }).collect();
    let metadata = if with_metadata { file.metadata() } else { &[] };
    let mut out = Vec::new();
    gguf::write(&mut out, metadata, &specs, |i, w| w.write_all(file.tensor_data(kept[i]))).unwrap();
    std::fs::write(dst, out).unwrap();
    (specs.len(), file.tensors().len())
}

#[test]
fn gguf_missing_a_tensor_fails_with_one_line() {
    let tmp = temp_dir("missing-tensor");
    let good = tmp.path().join("good.gguf");
    convert(&fixture(TINY), &good, &["--dtype", "f32"]);
    let dropped = "vision_model.post_layernorm.weight";
    let path = tmp.path().join("missing.gguf");
    let (kept, all) = rewrite_gguf(&good, &path, true, |name| name != dropped);
    assert_eq!(kept + 1, all, "{dropped} is in the converted file");
    caption(&path, argv![fixture(IMAGE)]).assert_fails_cleanly(dropped);
}

#[test]
fn without_a_gpu_adapter_gpu_fails_cleanly_and_auto_uses_the_cpu() {
    // No Metal on Linux: wgpu finds no adapter at all.
    let run = |backend: &str| edgecap_with_env(tiny_caption_on(backend), &[("WGPU_BACKEND", "metal")]);
    run("gpu").assert_fails_cleanly("no GPU adapter");
    let auto = run("auto");
    auto.assert_success();
    check_json_line_on("cpu", &auto.json_lines()[0], &fixture(IMAGE));
}

/// A GGUF made by another tool (like candle's BLIP files): HF names, the LM head written out, no
/// config or tokenizer inside. It needs `--config` and `--tokenizer`, and then captions as HF.
#[test]
fn foreign_gguf_without_metadata_loads_with_config_and_tokenizer() {
    let tmp = temp_dir("foreign");
    let ours = tmp.path().join("compat.gguf");
    convert(&fixture(TINY), &ours, &["--dtype", "f32", "--compat", "candle"]);
    let foreign = tmp.path().join("foreign.gguf");
    rewrite_gguf(&ours, &foreign, false, |_| true);

    caption(&foreign, argv![fixture(IMAGE)]).assert_fails_cleanly("--config");
    let config = fixture(TINY).join("config.json");
    caption(&foreign, argv!["--config", &config, fixture(IMAGE)]).assert_fails_cleanly("--tokenizer");
    let tiny_cases: Vec<Case> = cases().into_iter().filter(|c| c.model == TINY).collect();
    check_cases(&tiny_cases, |_| argv!["--model", &foreign, "--config", &config, "--tokenizer", fixture(TOKENIZER)]);
}
