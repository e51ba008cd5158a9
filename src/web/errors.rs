//! Library errors as JS `Error`s with a `code` the app turns into a state and a way out.

use wasm_bindgen::JsValue;

use crate::Error;

pub(crate) fn code_of(e: &Error) -> &'static str {
    match e {
        Error::Config(_) | Error::Model(_) | Error::Gguf(_) | Error::Tokenizer(_) => "model",
        Error::Image(_) | Error::ImageSize(_) => "image",
        Error::Backend { message, .. } if message.contains("device lost") => "device-lost",
        Error::Backend { backend: "gpu", .. } => "gpu",
        Error::Io { .. } => "storage",
        Error::Backend { .. } | Error::Generate(_) | Error::Eval(_) => "internal",
    }
}

pub(crate) fn js_error(code: &str, message: impl std::fmt::Display) -> JsValue {
    let err = js_sys::Error::new(&message.to_string());
    let _ = js_sys::Reflect::set(&err, &"code".into(), &code.into());
    err.into()
}

impl From<Error> for JsValue {
    fn from(e: Error) -> JsValue {
        js_error(code_of(&e), &e)
    }
}
