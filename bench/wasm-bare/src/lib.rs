//! A bare workers-rs Worker: the size floor for any Worker built with the `worker` crate.

use worker::{event, web_sys, Context, Env};

#[event(fetch)]
async fn fetch(
    _request: web_sys::Request,
    _env: Env,
    _ctx: Context,
) -> worker::Result<web_sys::Response> {
    Ok(web_sys::Response::new_with_opt_str(Some("ok"))?)
}
