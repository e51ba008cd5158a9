//! SHA-256 fed chunk by chunk: the worker verifies a downloaded model without holding it
//! (WebCrypto only hashes a whole buffer at once).

use sha2::Digest;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
#[derive(Default)]
pub struct Sha256(sha2::Sha256);

#[wasm_bindgen]
impl Sha256 {
    #[wasm_bindgen(constructor)]
    pub fn new() -> Sha256 {
        Sha256::default()
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The digest as 64 lowercase hex digits; the hasher starts over afterwards.
    pub fn hex(&mut self) -> String {
        self.0.finalize_reset().iter().map(|b| format!("{b:02x}")).collect()
    }
}
