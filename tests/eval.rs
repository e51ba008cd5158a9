//! Evaluation: BLEU against nltk's figures (committed by tests/fixtures/tools/bleu_reference.py),
//! `edgecap eval` in both modes (scoring a predictions file; captioning a set, resumably),
//! `edgecap study` end to end, `convert --prune`, and how they fail on bad input.
//!
//! The tiny fixture model has random weights: its captions are noise, so its BLEU against the
//! synthetic references is whatever nltk says of noise (0 here). Those runs test the plumbing;
//! the BLEU arithmetic is tested against nltk on the committed corpora and on hand-written
//! predictions.

mod common;
#[macro_use]
#[path = "common/binary.rs"]
mod binary;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use binary::{edgecap, Run};
use common::fixtures;
use edgecap::eval::bleu::corpus_bleu;
use edgecap::weights::gguf::GgufFile;
use edgecap::weights::prune::{in_scope, PruneScope};
use serde_json::Value;

const TINY: &str = "models/blip-tiny-random";
const TOKENIZER: &str = "models/tokenizer.json";
const TOLERANCE: f64 = 1e-6;

fn fixture(rel: &str) -> PathBuf {
    fixtures().join(rel)
}

impl Run {
    fn ok(self) -> Self {
        assert_eq!(self.code, Some(0), "{}\nstderr: {}", self.what, self.stderr);
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| panic!("{}: {:?}: {e}", self.what, self.stdout))
    }

    /// Exit 1, nothing on stdout, one `edgecap: ...` line mentioning `mentions`.
    fn fails_cleanly(&self, mentions: &str) {
        assert!(!self.stderr.contains("panicked"), "{} panicked: {}", self.what, self.stderr);
        assert_eq!(self.code, Some(1), "{}\nstdout: {}\nstderr: {}", self.what, self.stdout, self.stderr);
        assert_eq!(self.stdout, "", "{}", self.what);
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{}: {}", self.what, self.stderr);
        assert!(lines[0].starts_with("edgecap: "), "{}", lines[0]);
        assert!(
            lines[0].to_lowercase().contains(&mentions.to_lowercase()),
            "{}: {:?} does not mention {mentions:?}",
            self.what,
            lines[0]
        );
    }

    fn usage_error(&self) {
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        assert_eq!(self.code, Some(2), "{}\nstderr: {}", self.what, self.stderr);
    }
}

fn tmp(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("eval").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn bleu_of(v: &Value) -> [f64; 4] {
    [1, 2, 3, 4].map(|n| v[format!("bleu{n}")].as_f64().unwrap_or_else(|| panic!("no bleu{n} in {v}")))
}

fn assert_close(ours: [f64; 4], nltk: [f64; 4], what: &str) {
    for n in 0..4 {
        assert!((ours[n] - nltk[n]).abs() <= TOLERANCE, "{what}: BLEU-{} {} vs nltk {}", n + 1, ours[n], nltk[n]);
    }
}

// ---------------------------------------------------------------------------------------------
// BLEU

#[test]
fn bleu_equals_nltk_on_the_committed_corpora() {
    let data: Value = serde_json::from_slice(&common::read("eval/bleu_nltk.json")).unwrap();
    let corpora = data["corpora"].as_array().unwrap();
    assert!(corpora.len() >= 60, "the generator wrote {} corpora", corpora.len());
    let mut nonzero4 = 0;
    for (i, c) in corpora.iter().enumerate() {
        let hyps: Vec<String> = serde_json::from_value(c["hypotheses"].clone()).unwrap();
        let refs: Vec<Vec<String>> = serde_json::from_value(c["references"].clone()).unwrap();
        let nltk: Vec<f64> = serde_json::from_value(c["bleu"].clone()).unwrap();
        let ours = corpus_bleu(&hyps, &refs);
        assert_close(
            [ours.bleu1, ours.bleu2, ours.bleu3, ours.bleu4],
            [nltk[0], nltk[1], nltk[2], nltk[3]],
            &format!("corpus {i}"),
        );
        nonzero4 += usize::from(nltk[3] > 1e-3);
    }
    // The figures must exercise every order, not just agree on zeros.
    assert!(nonzero4 >= 20, "only {nonzero4} corpora have a BLEU-4 above 0.001");
}

// ---------------------------------------------------------------------------------------------
// eval --predictions

fn eval_predictions(refs: &str, extra: &[&str]) -> Run {
    let mut a = argv!["eval", "--predictions", fixture("eval/preds.jsonl"), "--references", fixture(refs), "--json"];
    a.extend(extra.iter().map(OsString::from));
    edgecap(a)
}

#[test]
fn eval_scores_predictions_as_nltk_does_in_every_reference_layout() {
    let nltk: Value = serde_json::from_slice(&common::read("eval/preds_bleu_nltk.json")).unwrap();
    for refs in ["eval/refs.jsonl", "eval/results.csv", "eval/karpathy.json"] {
        let out = eval_predictions(refs, &[]).ok().json();
        assert_eq!(out["n"], 4, "{refs}");
        assert_close(bleu_of(&out), bleu_of(&nltk), refs);
        assert!(out.get("latency_ms").is_none(), "no latency when nothing was captioned");
    }
    assert!(bleu_of(&nltk)[3] > 0.1, "the hand-written predictions match the references in 4-grams");
}

#[test]
fn eval_human_output_and_karpathy_split() {
    let run = edgecap(argv![
        "eval",
        "--predictions",
        fixture("eval/preds.jsonl"),
        "--references",
        fixture("eval/refs.jsonl")
    ])
    .ok();
    assert!(run.stdout.starts_with("n 4  BLEU-1 0.8125"), "{}", run.stdout);
    // Two of the four images are in Karpathy's "test" split of the fixture; the predictions of
    // the other two then have no references.
    eval_predictions("eval/karpathy.json", &["--split", "test"]).fails_cleanly("has no reference captions");
}

// ---------------------------------------------------------------------------------------------
// eval --model: caption, resume

fn eval_model(out: &Path, extra: &[&str]) -> Run {
    eval_model_on("cpu", out, extra)
}

fn eval_model_on(backend: &str, out: &Path, extra: &[&str]) -> Run {
    let mut a = argv![
        "eval",
        "--references",
        fixture("eval/refs.jsonl"),
        "--model",
        fixture(TINY),
        "--tokenizer",
        fixture(TOKENIZER),
        "--images",
        fixture("images"),
        "--out",
        out,
        "--backend",
        backend,
        "--json"
    ];
    a.extend(extra.iter().map(OsString::from));
    edgecap(a)
}

fn lines(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn eval_captions_the_set_and_resumes() {
    let dir = tmp("resume");
    let out = dir.join("preds.jsonl");
    let first = eval_model(&out, &["--limit", "2"]).ok().json();
    assert_eq!((first["n"].as_u64(), first["captioned"].as_u64()), (Some(2), Some(2)), "{first}");
    assert_eq!(lines(&out).len(), 2);

    let second = eval_model(&out, &[]).ok().json();
    assert_eq!(
        (second["n"].as_u64(), second["captioned"].as_u64()),
        (Some(4), Some(2)),
        "only the missing two: {second}"
    );
    let lat = &second["latency_ms"];
    let (p50, p90, p99) = (lat["p50"].as_f64().unwrap(), lat["p90"].as_f64().unwrap(), lat["p99"].as_f64().unwrap());
    assert!(0.0 < p50 && p50 <= p90 && p90 <= p99, "{lat}");
    assert_eq!(lat["n"], 4);
    let written = std::fs::read(&out).unwrap();
    let preds = lines(&out);
    assert_eq!(preds.len(), 4);
    for p in &preds {
        assert!(p["caption"].as_str().is_some_and(|c| !c.is_empty()) && p["ms"].as_f64().is_some(), "{p}");
    }

    let third = eval_model(&out, &[]).ok().json();
    assert_eq!(third["captioned"], 0, "a finished set is not captioned again");
    assert_eq!(std::fs::read(&out).unwrap(), written, "nor is the file touched");
    assert_eq!(bleu_of(&third), bleu_of(&second));

    // Scoring the written file gives the same figures as the run that wrote it.
    let scored =
        edgecap(argv!["eval", "--predictions", &out, "--references", fixture("eval/refs.jsonl"), "--json"]).ok().json();
    assert_eq!(bleu_of(&scored), bleu_of(&second));

    // The caption eval made is the one `edgecap caption` makes.
    let first_pred = &preds[0];
    let image = fixture("images").join(first_pred["image"].as_str().unwrap());
    let cap = edgecap(argv![
        "caption",
        "--backend",
        "cpu",
        "--model",
        fixture(TINY),
        "--tokenizer",
        fixture(TOKENIZER),
        image
    ])
    .ok();
    assert_eq!(cap.stdout.trim(), first_pred["caption"].as_str().unwrap());
}

#[test]
fn eval_drops_a_torn_last_line_and_captions_that_image_again() {
    let dir = tmp("torn");
    let out = dir.join("preds.jsonl");
    eval_model(&out, &["--limit", "1"]).ok();
    let mut text = std::fs::read_to_string(&out).unwrap();
    text.push_str("{\"image\": \"synthetic_384x384.png\", \"capt");
    std::fs::write(&out, text).unwrap();
    let run = eval_model(&out, &[]).ok();
    assert_eq!(run.json()["captioned"], 3);
    assert!(run.stderr.contains("dropped an unfinished last line"), "{}", run.stderr);
    assert_eq!(lines(&out).len(), 4);
}

/// `eval --backend gpu` captions with the wgpu backend (lavapipe in CI) and writes the same
/// captions as the CPU run: the tiny model's f32 weights leave no room for the two to differ
/// beyond summation order, and these images' margins are far above that.
#[test]
fn eval_captions_on_the_gpu_like_on_the_cpu() {
    let dir = tmp("gpu");
    let (cpu, gpu) = (dir.join("cpu.jsonl"), dir.join("gpu.jsonl"));
    let run = |backend: &str, out: &Path| eval_model_on(backend, out, &["--limit", "2"]);
    let on_gpu = run("gpu", &gpu);
    if on_gpu.lacks_a_gpu_and_may_skip() {
        return;
    }
    on_gpu.ok();
    run("cpu", &cpu).ok();
    let captions = |p: &Path| lines(p).iter().map(|l| (l["image"].clone(), l["caption"].clone())).collect::<Vec<_>>();
    assert_eq!(captions(&gpu), captions(&cpu));
}

// ---------------------------------------------------------------------------------------------
// study

#[test]
fn study_writes_table_csv_and_labelled_plots() {
    let dir = tmp("study");
    let run = edgecap(argv![
        "study",
        "--model",
        fixture(TINY),
        "--tokenizer",
        fixture(TOKENIZER),
        "--references",
        fixture("eval/refs.jsonl"),
        "--images",
        fixture("images"),
        "--out",
        &dir,
        "--backend",
        "cpu",
        "--limit",
        "2",
        "--max-tokens",
        "5",
        "--dtypes",
        "f32,q8_0,q4_0",
        "--base-dtype",
        "f32",
        "--sizes",
        "32,64",
        "--sparsities",
        "0.4,0.8",
        "--prune-scopes",
        "linear,embeddings"
    ])
    .ok();
    // 3 dtypes + 2 sizes × 2 resize modes + 2 scopes × (0, 0.4, 0.8).
    let rows = 3 + 4 + 6;
    let md = std::fs::read_to_string(dir.join("study.md")).unwrap();
    assert_eq!(run.stdout, md, "the table printed is the table written");
    assert!(md.contains("Storage types: f32, f16, q8_0, q4_k, q4_0"), "{md}");
    let table: Vec<&str> = md.lines().filter(|l| l.starts_with("| ")).collect();
    assert_eq!(table.len(), 1 + rows, "{md}");
    assert!(table[0].contains("BLEU-4") && table[0].contains("file MB") && table[0].contains("p50 ms"));

    let csv = std::fs::read_to_string(dir.join("study.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let recs: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(recs.len(), rows);
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no column {name}"));
    let num = |r: &Vec<&str>, name: &str| r[col(name)].parse::<f64>().unwrap();
    for r in &recs {
        assert_eq!(r.len(), header.len());
        assert_eq!(num(r, "n"), 2.0);
        for b in ["bleu1", "bleu2", "bleu3", "bleu4"] {
            assert!((0.0..=1.0).contains(&num(r, b)));
        }
        assert!(num(r, "latency_p50_ms") > 0.0 && num(r, "latency_p50_ms") <= num(r, "latency_p90_ms"));
    }
    let find = |group: &str, dtype: &str, scope: &str, sparsity: &str| {
        recs.iter()
            .find(|r| {
                r[col("group")] == group
                    && r[col("dtype")] == dtype
                    && r[col("prune_scope")] == scope
                    && r[col("sparsity")] == sparsity
            })
            .unwrap_or_else(|| panic!("no row {group} {dtype} {scope} {sparsity}"))
    };
    let (f32_bytes, q8_bytes) =
        (num(find("dtype", "f32", "-", "0"), "file_bytes"), num(find("dtype", "q8_0", "-", "0"), "file_bytes"));
    assert!(q8_bytes < 0.5 * f32_bytes, "q8_0 {q8_bytes} vs f32 {f32_bytes}");
    let q4_bytes = num(find("dtype", "q4_0", "-", "0"), "file_bytes");
    assert!(q4_bytes < q8_bytes, "q4_0 {q4_bytes} vs q8_0 {q8_bytes}");
    // Pruned zeros are stored densely (same file size) but deflate better, more so the more pruned.
    let linear: Vec<&Vec<&str>> = ["0", "0.4", "0.8"].iter().map(|s| find("pruning", "f32", "linear", s)).collect();
    assert!(linear.iter().all(|r| num(r, "file_bytes") == f32_bytes));
    assert!(
        num(linear[0], "deflated_bytes") > num(linear[1], "deflated_bytes")
            && num(linear[1], "deflated_bytes") > num(linear[2], "deflated_bytes")
    );
    assert_eq!(recs.iter().filter(|r| r[col("group")] == "input size" && r[col("resize")] == "crop").count(), 2);

    let texts = |svg: &str| -> Vec<String> {
        let s = std::fs::read_to_string(dir.join(svg)).unwrap_or_else(|e| panic!("{svg}: {e}"));
        s.split("<text")
            .skip(1)
            .map(|t| t.split_once('>').unwrap().1.split("</text>").next().unwrap().trim().to_string())
            .collect()
    };
    let expect = [
        (
            "bleu_vs_input_size.svg",
            &[
                "BLEU vs input size",
                "input size (pixels per side)",
                "corpus BLEU (0-1)",
                "BLEU-4, crop",
                "BLEU-4, stretch",
            ][..],
        ),
        (
            "bleu_vs_sparsity.svg",
            &[
                "BLEU vs sparsity",
                "weights pruned in scope (%)",
                "corpus BLEU (0-1)",
                "BLEU-4, linear pruned",
                "BLEU-4, embeddings pruned",
            ][..],
        ),
        (
            "size_vs_sparsity.svg",
            &["Model size vs sparsity", "size (MB)", "stored file (any scope)", "deflated, linear pruned"][..],
        ),
        (
            "latency_vs_sparsity.svg",
            &["Caption latency vs sparsity", "caption latency, median (ms)", "linear pruned"][..],
        ),
    ];
    for (svg, want) in expect {
        let t = texts(svg);
        for w in want {
            assert!(t.iter().any(|x| x == w), "{svg} has no text {w:?}: {t:?}");
        }
        assert!(t.iter().filter(|x| x.parse::<f64>().is_ok()).count() >= 6, "{svg}: tick labels {t:?}");
    }
    assert!(texts("bleu_vs_input_size.svg").iter().any(|x| x == "1.00"), "BLEU axes run to 1");
}

// ---------------------------------------------------------------------------------------------
// convert --prune

fn f32_tensors(path: &Path) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap();
    let file = GgufFile::parse(&bytes).unwrap();
    file.header()
        .tensors
        .iter()
        .map(|t| {
            let data = t.data(&bytes).unwrap();
            (
                t.name.clone(),
                t.shape.clone(),
                data.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(),
            )
        })
        .collect()
}

#[test]
fn convert_prune_zeroes_the_smallest_linear_weights_only() {
    let dir = tmp("prune");
    let (plain, pruned) = (dir.join("plain.gguf"), dir.join("pruned.gguf"));
    let conv = |to: &Path, extra: &[&str]| {
        let mut a =
            argv!["convert", "--from", fixture(TINY), "--to", to, "--tokenizer", fixture(TOKENIZER), "--dtype", "f32"];
        a.extend(extra.iter().map(OsString::from));
        edgecap(a).ok()
    };
    conv(&plain, &[]);
    let run = conv(&pruned, &["--prune", "0.3"]);
    assert!(run.stderr.contains("linear weights to zero (30.0%)"), "{}", run.stderr);
    let (a, b) = (f32_tensors(&plain), f32_tensors(&pruned));
    let (mut total, mut zeros, mut kept_max, mut cut_max) = (0usize, 0usize, f32::INFINITY, 0f32);
    for ((name, shape, x), (_, _, y)) in a.iter().zip(&b) {
        if !in_scope(name, shape, PruneScope::Linear) {
            assert_eq!(x, y, "{name} is outside the scope and must not change");
            continue;
        }
        total += x.len();
        for (&u, &v) in x.iter().zip(y) {
            if v == 0.0 && u != 0.0 {
                zeros += 1;
                cut_max = cut_max.max(u.abs());
            } else {
                assert_eq!(u, v);
                kept_max = kept_max.min(u.abs());
            }
        }
    }
    assert!(total > 0);
    assert_eq!(zeros, (0.3 * total as f64).round() as usize, "one global ranking over {total} weights");
    assert!(cut_max <= kept_max, "every pruned weight is no larger than every kept one: {cut_max} > {kept_max}");
    // The pruned model still loads and captions.
    edgecap(argv!["caption", "--backend", "cpu", "--model", &pruned, fixture("images/synthetic_64x64.png")]).ok();
}

// ---------------------------------------------------------------------------------------------
// Bad input

#[test]
fn eval_and_study_fail_cleanly_on_bad_input() {
    let dir = tmp("errors");
    let refs = fixture("eval/refs.jsonl");
    let preds = fixture("eval/preds.jsonl");
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let score = |p: &Path, r: &Path| edgecap(argv!["eval", "--predictions", p, "--references", r]);

    score(&preds, &dir.join("missing.jsonl")).fails_cleanly("missing.jsonl");
    score(&dir.join("missing.jsonl"), &refs).fails_cleanly("missing.jsonl");
    score(&preds, &write("garbled.jsonl", "{\"image\": \"a.png\", \"references\": [\"x\"]}\nnot json\n"))
        .fails_cleanly("line 2");
    score(&preds, &write("empty.jsonl", "")).fails_cleanly("no reference captions");
    score(&preds, &write("bad.csv", "image_name| comment_number| comment\nno separators here\n"))
        .fails_cleanly("line 2");
    score(&preds, &write("bad_karpathy.json", "{\"images\": [{\"filename\": \"a.png\"}]}")).fails_cleanly("karpathy");
    score(&preds, &write("binary.jsonl", "\u{0}\u{1}")).fails_cleanly("binary.jsonl");
    let stranger = write("stranger.jsonl", "{\"image\": \"nowhere.png\", \"caption\": \"a cat\"}\n");
    score(&stranger, &refs).fails_cleanly("nowhere.png has no reference captions");
    let twice = write("twice.jsonl", "{\"image\": \"synthetic_64x64.png\", \"caption\": \"a\"}\n{\"image\": \"synthetic_64x64.png\", \"caption\": \"b\"}\n");
    score(&twice, &refs).fails_cleanly("predicted twice");
    score(&write("nopreds.jsonl", "\n"), &refs).fails_cleanly("no predictions");
    score(&write("badpred.jsonl", "{\"image\": \"x.png\"}\n"), &refs).fails_cleanly("line 1");

    // Usage: neither mode, both modes, --model without --out, --out without --model.
    edgecap(argv!["eval", "--references", &refs]).usage_error();
    edgecap(argv!["eval", "--references", &refs, "--predictions", &preds, "--model", fixture(TINY)]).usage_error();
    edgecap(argv!["eval", "--references", &refs, "--model", fixture(TINY), "--images", fixture("images")])
        .usage_error();
    edgecap(argv!["eval", "--references", &refs, "--predictions", &preds, "--out", dir.join("o.jsonl")]).usage_error();
    edgecap(argv!["eval", "--references", &refs, "--predictions", &preds, "--limit", "2"]).usage_error();
    edgecap(argv!["convert", "--from", fixture(TINY), "--to", dir.join("x.gguf"), "--prune", "1.5"]).usage_error();
    edgecap(argv![
        "convert",
        "--from",
        fixture(TINY),
        "--to",
        dir.join("x.gguf"),
        "--prune",
        "0.2",
        "--prune-scope",
        "norms"
    ])
    .usage_error();

    let caption_into_with = |images: &Path, out: &Path, extra: &[&str]| {
        let mut args = argv![
            "eval",
            "--references",
            &refs,
            "--model",
            fixture(TINY),
            "--tokenizer",
            fixture(TOKENIZER),
            "--images",
            images,
            "--out",
            out
        ];
        args.extend(extra.iter().map(OsString::from));
        edgecap(args)
    };
    let caption_into = |images: &Path, out: &Path| caption_into_with(images, out, &[]);
    caption_into(&dir.join("no-such-folder"), &dir.join("o1.jsonl")).fails_cleanly("not a folder");
    caption_into(&dir, &dir.join("o2.jsonl")).fails_cleanly("is not in the folder");
    let images = dir.join("images");
    std::fs::create_dir_all(&images).unwrap();
    for name in ["synthetic_64x64.png", "synthetic_160x120.png", "synthetic_384x384.png"] {
        std::fs::copy(fixture("images").join(name), images.join(name)).unwrap();
    }
    std::fs::write(images.join("synthetic_640x480.png"), b"not a png").unwrap();
    let out = dir.join("o3.jsonl");
    caption_into(&images, &out).fails_cleanly("synthetic_640x480.png");
    // By name, 160x120 and 384x384 come before 640x480.
    assert_eq!(lines(&out).len(), 2, "captions made before the bad image are kept for the next run");
    std::fs::copy(fixture("images/synthetic_640x480.png"), images.join("synthetic_640x480.png")).unwrap();
    let resumed = caption_into_with(&images, &out, &["--json"]).ok();
    assert_eq!(resumed.json()["captioned"], 2);
    caption_into(&images, &write("garbled-out.jsonl", "garbage\n{}\n")).fails_cleanly("line 1");

    let study = |model: &Path, extra: &[&str]| {
        let mut a = argv![
            "study",
            "--model",
            model,
            "--tokenizer",
            fixture(TOKENIZER),
            "--references",
            &refs,
            "--images",
            fixture("images"),
            "--out",
            dir.join("study")
        ];
        a.extend(extra.iter().map(OsString::from));
        edgecap(a)
    };
    study(&dir.join("x.gguf"), &[]).fails_cleanly("hugging face folder");
    study(&fixture(TINY), &["--sizes", "30"]).fails_cleanly("patch size 8");
    study(&fixture(TINY), &["--sparsities", "1.0"]).fails_cleanly("pruning fraction");
}
