//! Caption quality: BLEU, reference and prediction files, and (with the CLI) the
//! size/speed/quality study.

pub mod bleu;
pub mod data;
pub mod percentile;
#[cfg(feature = "cli")]
pub mod plot;
#[cfg(feature = "cli")]
pub mod study;
