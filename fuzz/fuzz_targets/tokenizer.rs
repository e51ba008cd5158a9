#![no_main]

use std::sync::OnceLock;

use edgecap::tokenizer::BlipTokenizer;

static TOKENIZER: OnceLock<BlipTokenizer> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let tokenizer = TOKENIZER.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/models/tokenizer.json");
        // BLIP's bos ([DEC]) as the checkpoint's config gives it.
        BlipTokenizer::from_json(&std::fs::read(path).expect("fixture tokenizer"), 30522).expect("fixture tokenizer loads")
    });
    edgecap::fuzz_targets::tokenizer(tokenizer, data)
});
