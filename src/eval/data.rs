//! Reference captions and predicted captions, keyed by image file name.
//!
//! References come in three layouts: JSON lines `{"image": ..., "references": [...]}`,
//! Flickr30k's `results.csv` (`image_name| comment_number| comment`), and Karpathy's split file
//! (`{"images": [{"filename": ..., "split": ..., "sentences": [{"raw": ...}]}]}`). Predictions are
//! JSON lines `{"image": ..., "caption": ...}` in any order. Images are matched by file name
//! (the last path component), so `flickr30k-images/1.jpg` and `1.jpg` are the same image.

use std::collections::BTreeMap;
use std::path::Path;

use crate::{Error, Result};

/// Image file name → its reference captions (at least one each).
pub type References = BTreeMap<String, Vec<String>>;

/// One predicted caption; `ms` is the caption's latency when edgecap made it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Prediction {
    pub image: String,
    pub caption: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ms: Option<f64>,
}

/// The key images are matched by: the file name without its folders.
pub fn image_key(image: &str) -> String {
    image.rsplit(['/', '\\']).next().unwrap_or(image).to_string()
}

fn err(file: &str, msg: impl std::fmt::Display) -> Error {
    Error::Eval(format!("{file}: {msg}"))
}

pub fn read_text_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path.display(), e))?;
    String::from_utf8(bytes).map_err(|_| err(&path.display().to_string(), "not UTF-8 text"))
}

/// Reads a reference file in any of the three layouts. `split` keeps only the Karpathy entries
/// of that split (`test`, `val`, `train`, `restval`); other layouts have no splits.
pub fn read_references(path: &Path, split: Option<&str>) -> Result<References> {
    let name = path.display().to_string();
    let text = read_text_file(path)?;
    parse_references(&text, &name, split)
}

pub fn parse_references(text: &str, name: &str, split: Option<&str>) -> Result<References> {
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    let refs = if trimmed.starts_with("image_name|") || (name.ends_with(".csv") && trimmed.contains('|')) {
        reject_split(split, name, "Flickr30k results.csv")?;
        parse_flickr_csv(trimmed, name)?
    } else if !name.ends_with(".jsonl") && trimmed.starts_with('{') && looks_like_karpathy(trimmed) {
        parse_karpathy(trimmed, name, split)?
    } else {
        reject_split(split, name, "JSON lines")?;
        parse_jsonl_references(text, name)?
    };
    if refs.is_empty() {
        return Err(err(name, "no reference captions in the file"));
    }
    Ok(refs)
}

fn reject_split(split: Option<&str>, name: &str, layout: &str) -> Result<()> {
    match split {
        Some(s) => Err(err(name, format!("--split {s} needs a Karpathy split file; this is {layout}"))),
        None => Ok(()),
    }
}

/// A Karpathy file is one JSON object with an `images` array; a JSON-lines file's first line
/// is a whole object of its own.
fn looks_like_karpathy(text: &str) -> bool {
    let first = text.lines().next().unwrap_or("");
    serde_json::from_str::<serde_json::Value>(first).map(|v| v.get("images").is_some()).unwrap_or(true)
}

fn add(refs: &mut References, image: &str, caption: String) {
    refs.entry(image_key(image)).or_default().push(caption);
}

fn parse_jsonl_references(text: &str, name: &str) -> Result<References> {
    #[derive(serde::Deserialize)]
    struct Line {
        image: String,
        references: Vec<String>,
    }
    let mut refs = References::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let l: Line = serde_json::from_str(line).map_err(|e| {
            err(name, format!("line {}: expected {{\"image\": ..., \"references\": [...]}}: {e}", i + 1))
        })?;
        if l.references.is_empty() {
            return Err(err(name, format!("line {}: image {} has an empty reference list", i + 1, l.image)));
        }
        for r in l.references {
            add(&mut refs, &l.image, r);
        }
    }
    Ok(refs)
}

/// `image_name| comment_number| comment`. The file on Kaggle has one row whose number and
/// comment lost their separator (`2199200615.jpg| 4 A dog ...`); such a row is read as if it had it.
fn parse_flickr_csv(text: &str, name: &str) -> Result<References> {
    let mut refs = References::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || (i == 0 && line.starts_with("image_name|")) {
            continue;
        }
        let mut parts = line.splitn(3, '|').map(str::trim);
        let (image, number, comment) = (parts.next(), parts.next(), parts.next());
        let comment = match (image, number, comment) {
            (Some(img), Some(_), Some(c)) if !img.is_empty() => c.to_string(),
            (Some(img), Some(rest), None) if !img.is_empty() => match rest.split_once(char::is_whitespace) {
                Some((n, c)) if n.parse::<u32>().is_ok() => c.trim().to_string(),
                _ => return Err(err(name, format!("line {}: expected `image_name| comment_number| comment`", i + 1))),
            },
            _ => return Err(err(name, format!("line {}: expected `image_name| comment_number| comment`", i + 1))),
        };
        add(&mut refs, image.unwrap_or_default(), comment);
    }
    Ok(refs)
}

fn parse_karpathy(text: &str, name: &str, split: Option<&str>) -> Result<References> {
    #[derive(serde::Deserialize)]
    struct File {
        images: Vec<Image>,
    }
    #[derive(serde::Deserialize)]
    struct Image {
        filename: String,
        #[serde(default)]
        split: Option<String>,
        sentences: Vec<Sentence>,
    }
    #[derive(serde::Deserialize)]
    struct Sentence {
        raw: String,
    }
    let f: File = serde_json::from_str(text).map_err(|e| {
        err(name, format!("expected Karpathy's {{\"images\": [{{\"filename\", \"sentences\": [{{\"raw\"}}]}}]}}: {e}"))
    })?;
    let mut refs = References::new();
    for img in f.images {
        if split.is_some_and(|s| img.split.as_deref() != Some(s)) {
            continue;
        }
        if img.sentences.is_empty() {
            return Err(err(name, format!("image {} has no sentences", img.filename)));
        }
        for s in img.sentences {
            add(&mut refs, &img.filename, s.raw);
        }
    }
    if refs.is_empty() {
        if let Some(s) = split {
            return Err(err(name, format!("no image is in split {s:?}")));
        }
    }
    Ok(refs)
}

/// Reads predictions; an image predicted twice is an error (which caption would count?).
pub fn read_predictions(path: &Path) -> Result<Vec<Prediction>> {
    let name = path.display().to_string();
    parse_predictions(&read_text_file(path)?, &name, false).map(|(p, _)| p)
}

/// Parses prediction lines. With `tolerate_torn_tail`, a last line without its newline that does
/// not parse (a run killed mid-write) is dropped; the second value is the byte length of the
/// text that was read, so a caller can cut the torn tail off before appending.
pub fn parse_predictions(text: &str, name: &str, tolerate_torn_tail: bool) -> Result<(Vec<Prediction>, usize)> {
    let mut preds = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let complete = line.ends_with('\n');
        let body = line.trim();
        if body.is_empty() {
            offset += line.len();
            continue;
        }
        let p: Prediction = match serde_json::from_str(body) {
            Ok(p) => p,
            Err(_) if tolerate_torn_tail && !complete => break,
            Err(e) => {
                return Err(err(name, format!("line {}: expected {{\"image\": ..., \"caption\": ...}}: {e}", i + 1)))
            }
        };
        if let Some(first) = seen.insert(image_key(&p.image), i + 1) {
            return Err(err(name, format!("image {} is predicted twice (lines {first} and {})", p.image, i + 1)));
        }
        preds.push(p);
        offset += line.len();
    }
    Ok((preds, offset))
}

/// What scoring found besides the scores.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub n: usize,
    pub bleu: super::bleu::Bleu,
    /// Referenced images that have no prediction (scored sets may be subsets).
    pub unpredicted: usize,
}

/// Corpus BLEU of `preds` against `refs`; every prediction must have references.
pub fn score(preds: &[Prediction], refs: &References, preds_name: &str) -> Result<Scored> {
    if preds.is_empty() {
        return Err(err(preds_name, "no predictions to score"));
    }
    let mut stats = super::bleu::BleuStats::default();
    for p in preds {
        let key = image_key(&p.image);
        let r =
            refs.get(&key).ok_or_else(|| err(preds_name, format!("image {} has no reference captions", p.image)))?;
        stats.add_text(&p.caption, r);
    }
    Ok(Scored { n: stats.segments(), bleu: stats.scores(), unpredicted: refs.len().saturating_sub(preds.len()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flickr_csv_with_the_torn_row() {
        let csv = "image_name| comment_number| comment\n1.jpg| 0| A dog .\n1.jpg| 1| Two | pipes\n2.jpg| 4 A cat .\n";
        let r = parse_references(csv, "results.csv", None).unwrap();
        assert_eq!(r["1.jpg"], vec!["A dog .", "Two | pipes"]);
        assert_eq!(r["2.jpg"], vec!["A cat ."]);
        assert!(parse_references("image_name| comment_number| comment\nbroken\n", "r.csv", None).is_err());
    }

    #[test]
    fn karpathy_split_filter() {
        let j = r#"{"images": [{"filename": "a.jpg", "split": "test", "sentences": [{"raw": "A."}]},
                               {"filename": "b.jpg", "split": "train", "sentences": [{"raw": "B."}]}]}"#;
        let r = parse_references(j, "k.json", Some("test")).unwrap();
        assert_eq!(r.keys().collect::<Vec<_>>(), ["a.jpg"]);
        assert_eq!(parse_references(j, "k.json", None).unwrap().len(), 2);
        assert!(parse_references(j, "k.json", Some("nope")).is_err());
    }

    #[test]
    fn jsonl_references_keyed_by_file_name() {
        let r = parse_references("{\"image\": \"x/y/a.png\", \"references\": [\"one\", \"two\"]}\n", "r.jsonl", None)
            .unwrap();
        assert_eq!(r["a.png"].len(), 2);
        assert!(parse_references("{\"image\": \"a.png\", \"references\": []}\n", "r.jsonl", None).is_err());
        assert!(parse_references("not json\n", "r.jsonl", None).is_err());
        // A broken first line of a .jsonl file is reported as a JSON-lines error, with its line.
        let e = parse_references("{\"image\": \"a.png\", \"refe\n", "r.jsonl", None).unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("references"), "{e}");
    }

    #[test]
    fn torn_tail_is_dropped_only_when_tolerated() {
        let t = "{\"image\": \"a\", \"caption\": \"x\"}\n{\"image\": \"b\", \"cap";
        let (p, len) = parse_predictions(t, "p", true).unwrap();
        assert_eq!((p.len(), len), (1, t.find('\n').unwrap() + 1));
        assert!(parse_predictions(t, "p", false).is_err());
        assert!(parse_predictions(
            "{\"image\": \"a\", \"caption\": \"x\"}\n{\"image\": \"a\", \"caption\": \"y\"}\n",
            "p",
            false
        )
        .is_err());
    }
}
