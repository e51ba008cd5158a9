//! Model files the engine reads tensor by tensor without copying them whole into wasm memory:
//! any JS object with `size` and a sync `read(offset, length)` (the worker wraps OPFS sync access
//! handles and `File`s with `FileReaderSync`), or a `Uint8Array` held by JS.

use wasm_bindgen::prelude::*;

use crate::weights::reader::ByteReader;
use crate::{Error, Result};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(typescript_type = "ModelReader")]
    pub type ModelReader;

    #[wasm_bindgen(method, getter)]
    fn size(this: &ModelReader) -> f64;

    #[wasm_bindgen(method, catch)]
    fn read(this: &ModelReader, offset: f64, length: f64) -> std::result::Result<js_sys::Uint8Array, JsValue>;
}

fn storage_error(what: String) -> Error {
    Error::io(what, std::io::Error::other("read failed"))
}

pub(crate) struct JsReader(pub ModelReader);

impl ByteReader for JsReader {
    fn len(&self) -> u64 {
        let size = self.0.size();
        if size.is_finite() && size >= 0.0 {
            size as u64
        } else {
            0
        }
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let chunk = self.0.read(offset as f64, buf.len() as f64).map_err(|e| {
            let msg = js_sys::Error::from(e).message();
            Error::io(format!("reading the model file at byte {offset}"), std::io::Error::other(String::from(msg)))
        })?;
        if chunk.length() as usize != buf.len() {
            return Err(storage_error(format!(
                "the model file gave {} bytes at {offset}, {} were asked for",
                chunk.length(),
                buf.len()
            )));
        }
        chunk.copy_to(buf);
        Ok(())
    }
}

/// A model held by JS as one `Uint8Array` (the caller's bytes, or a download).
pub(crate) struct JsBytes(pub js_sys::Uint8Array);

impl ByteReader for JsBytes {
    fn len(&self) -> u64 {
        self.0.length() as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let end = offset + buf.len() as u64;
        if end > self.len() {
            return Err(Error::model(format!(
                "read of {} bytes at {offset} is past the end ({} bytes)",
                buf.len(),
                self.len()
            )));
        }
        self.0.subarray(offset as u32, end as u32).copy_to(buf);
        Ok(())
    }
}
