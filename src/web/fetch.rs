//! `Engine.fromUrl`'s download: the body streamed into one JS-side buffer, with progress, so
//! the file never sits in wasm memory whole.

use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use super::errors::js_error;

fn get(target: &JsValue, key: &str) -> JsValue {
    js_sys::Reflect::get(target, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

pub(crate) async fn download(url: &str, on_progress: Option<&js_sys::Function>) -> Result<js_sys::Uint8Array, JsValue> {
    let network = |e: JsValue| js_error("network", format!("{url}: {}", js_sys::Error::from(e).message()));
    let fetch: js_sys::Function =
        get(&js_sys::global(), "fetch").dyn_into().map_err(|_| js_error("network", "no fetch here"))?;
    let promise: js_sys::Promise = fetch.call1(&JsValue::NULL, &url.into()).map_err(network)?.dyn_into()?;
    let response = JsFuture::from(promise).await.map_err(network)?;
    if get(&response, "ok").as_bool() != Some(true) {
        let status = get(&response, "status").as_f64().unwrap_or(0.0);
        return Err(js_error("network", format!("{url}: HTTP status {status}")));
    }
    let headers = get(&response, "headers");
    let length_of: js_sys::Function = get(&headers, "get").dyn_into()?;
    let total = length_of
        .call1(&headers, &"content-length".into())
        .ok()
        .and_then(|v| v.as_string())
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(0.0);
    let body = get(&response, "body");
    let get_reader: js_sys::Function =
        get(&body, "getReader").dyn_into().map_err(|_| js_error("network", "the response has no body"))?;
    let reader = get_reader.call0(&body)?;
    let read: js_sys::Function = get(&reader, "read").dyn_into()?;
    let chunks = js_sys::Array::new();
    let mut loaded = 0f64;
    loop {
        let next: js_sys::Promise = read.call0(&reader)?.dyn_into()?;
        let step = JsFuture::from(next).await.map_err(network)?;
        if get(&step, "done").as_bool() == Some(true) {
            break;
        }
        let chunk: js_sys::Uint8Array = get(&step, "value").dyn_into()?;
        loaded += chunk.length() as f64;
        chunks.push(&chunk);
        if let Some(f) = on_progress {
            let _ = f.call2(&JsValue::NULL, &loaded.into(), &total.max(loaded).into());
        }
    }
    let all = js_sys::Uint8Array::new_with_length(loaded as u32);
    let mut at = 0u32;
    for chunk in chunks.iter() {
        let chunk: js_sys::Uint8Array = chunk.unchecked_into();
        all.set(&chunk, at);
        at += chunk.length();
    }
    Ok(all)
}
