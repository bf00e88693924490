//! A bare workers-rs Worker: the same pass-through as `bench/edge-js/floor.js` (one subrequest to
//! `env.UPSTREAM` + the request's path and query, the client's request as its init, the answer
//! streamed back), written with the `worker` crate and built like the edge. What it costs above
//! the JS floor is what workers-rs itself (the shim, wasm-bindgen's glue, the async entry point)
//! costs per request, before the edge does anything of its own; its wasm size is the floor no
//! workers-rs Worker goes below.

use worker::wasm_bindgen::JsCast as _;
use worker::wasm_bindgen_futures::JsFuture;
use worker::{event, js_sys, web_sys, Context, Env};

#[event(fetch)]
async fn fetch(
    request: web_sys::Request,
    env: Env,
    _ctx: Context,
) -> worker::Result<web_sys::Response> {
    let upstream = env.var("UPSTREAM")?.to_string();
    let url = request.url();
    // Path and query: everything from the first `/` after the authority.
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let tail = url[after_scheme..]
        .find('/')
        .map_or("/", |i| &url[after_scheme + i..]);
    let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    let promise = global.fetch_with_str_and_init(
        &format!("{upstream}{tail}"),
        request.unchecked_ref::<web_sys::RequestInit>(),
    );
    Ok(JsFuture::from(promise).await?.unchecked_into())
}
