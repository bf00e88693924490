//! The HTTP surface: Upstash's command routes plus the Tollgate `/_bridge/stats` extension.

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{Request, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tollgate_shared::upstash::Reply;
use tower_http::trace::TraceLayer;

use crate::auth::Authorized;
use crate::cluster;
use crate::command::{self, Command};
use crate::error::BridgeError;
use crate::monitoring::{self, Outcome};
use crate::reply::{to_reply, Encoding};
use crate::upstream::Transaction;
use crate::{Bridge, Stats};

/// The bridge's routes over the given state. Kept apart from [`crate::serve`] so tests can
/// drive it without a socket.
pub fn app(bridge: Bridge) -> Router {
    let body_limit = bridge.body_limit();
    Router::new()
        .route("/", post(json_command).put(json_command))
        .route("/pipeline", post(pipeline).put(pipeline))
        .route("/multi-exec", post(multi_exec).put(multi_exec))
        .route("/_bridge/stats", get(stats))
        .route(
            "/{*command}",
            get(path_command).post(path_command).put(path_command),
        )
        .method_not_allowed_fallback(|| async { BridgeError::MethodNotAllowed })
        .fallback(|| async { BridgeError::NotFound })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        // Outermost, so it counts the final status.
        .layer(axum::middleware::from_fn(monitoring::track_http))
        .with_state(bridge)
}

/// Method and command name only: the query may carry `_token`, and later path segments are the
/// caller's data.
fn request_span(request: &Request<Body>) -> tracing::Span {
    let command = request
        .uri()
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    tracing::info_span!("request", method = %request.method(), command)
}

/// `POST /` with `["SET","k","v"]`.
async fn json_command(
    State(bridge): State<Bridge>,
    Authorized(scope): Authorized,
    encoding: Encoding,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, BridgeError> {
    bridge.count_request();
    let command = command::parse_one(&body?)?;
    single(&bridge, &scope, encoding, command).await
}

/// `GET|POST /set/k/v`.
async fn path_command(
    State(bridge): State<Bridge>,
    Authorized(scope): Authorized,
    encoding: Encoding,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, BridgeError> {
    bridge.count_request();
    let command = command::from_path(uri.path(), uri.query(), &body?)?;
    single(&bridge, &scope, encoding, command).await
}

/// A single command answers `{"result": …}`, or its error reply as a 400.
async fn single(
    bridge: &Bridge,
    scope: &command::Scope,
    encoding: Encoding,
    command: Command,
) -> Result<Response, BridgeError> {
    let name = command.name();
    if let Err(refused) = bridge.check(&command, scope) {
        monitoring::command(&name, Outcome::Refused);
        return Err(BridgeError::BadRequest(refused));
    }
    let value = match bridge
        .upstream_for(std::iter::once(&command))
        .query(&command)
        .await
    {
        Ok(value) => value,
        Err(e) => {
            monitoring::command(&name, Outcome::Unavailable);
            return Err(e.into());
        }
    };
    bridge.count_commands(1);
    match to_reply(value, encoding) {
        Reply::Error { error } => {
            monitoring::command(&name, Outcome::ErrorReply);
            Err(BridgeError::BadRequest(error))
        }
        reply => {
            monitoring::command(&name, Outcome::Ok);
            Ok(Json(reply).into_response())
        }
    }
}

/// `POST /pipeline`: in order, not atomic; a refused or failing command answers its own
/// `{"error": …}` and the others still run.
async fn pipeline(
    State(bridge): State<Bridge>,
    Authorized(scope): Authorized,
    encoding: Encoding,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Vec<Reply>>, BridgeError> {
    bridge.count_request();
    let commands = command::parse_many(&body?)?;
    let checks: Vec<Result<(), String>> =
        commands.iter().map(|c| bridge.check(c, &scope)).collect();
    let allowed: Vec<&Command> = commands
        .iter()
        .zip(&checks)
        .filter(|(_, check)| check.is_ok())
        .map(|(command, _)| command)
        .collect();
    let values = if allowed.is_empty() {
        Vec::new()
    } else {
        match bridge
            .upstream_for(allowed.iter().copied())
            .pipeline(&allowed)
            .await
        {
            Ok(values) => values,
            Err(e) => {
                for (command, check) in commands.iter().zip(&checks) {
                    let outcome = match check {
                        Ok(()) => Outcome::Unavailable,
                        Err(_) => Outcome::Refused,
                    };
                    monitoring::command(&command.name(), outcome);
                }
                return Err(e.into());
            }
        }
    };
    if values.len() != allowed.len() {
        tracing::error!(
            sent = allowed.len(),
            got = values.len(),
            "pipeline reply count mismatch"
        );
        return Err(BridgeError::Unavailable);
    }
    bridge.count_commands(allowed.len());
    let mut values = values.into_iter();
    let replies = checks
        .into_iter()
        .zip(&commands)
        .map(|(check, command)| match check {
            Err(error) => {
                monitoring::command(&command.name(), Outcome::Refused);
                Reply::Error { error }
            }
            // The count was checked above, so every allowed command has its reply.
            Ok(()) => {
                let reply = values.next().map_or_else(
                    || Reply::Error {
                        error: "ERR no reply".into(),
                    },
                    |value| to_reply(value, encoding),
                );
                let outcome = match reply {
                    Reply::Error { .. } => Outcome::ErrorReply,
                    Reply::Result { .. } => Outcome::Ok,
                };
                monitoring::command(&command.name(), outcome);
                reply
            }
        })
        .collect();
    Ok(Json(replies))
}

/// `POST /multi-exec`: all or nothing. A refused command, or one Redis will not queue, discards
/// the whole transaction with a single top-level error, as Upstash does.
async fn multi_exec(
    State(bridge): State<Bridge>,
    Authorized(scope): Authorized,
    encoding: Encoding,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Vec<Reply>>, BridgeError> {
    bridge.count_request();
    let commands = command::parse_many(&body?)?;
    let refuse = |refused: String| {
        for command in &commands {
            monitoring::command(&command.name(), Outcome::Refused);
        }
        Err(BridgeError::BadRequest(refused))
    };
    for command in &commands {
        if let Err(refused) = bridge.check(command, &scope) {
            return refuse(refused);
        }
    }
    // A cluster runs a transaction on one node, so its keys must share a slot: checked here,
    // before anything is sent, and answered in Redis Cluster's words.
    let mut slot = None;
    if bridge.upstream().is_cluster() {
        if let Some(refused) = commands.iter().find_map(cluster::transaction_refusal) {
            return refuse(refused);
        }
        match cluster::transaction_slot(&commands) {
            Ok(found) => slot = found,
            Err(cluster::CrossSlot) => return refuse(cluster::CROSSSLOT.to_owned()),
        }
    }
    let outcome = match bridge.upstream().transaction(&commands, slot).await {
        Ok(outcome) => outcome,
        Err(e) => {
            for command in &commands {
                monitoring::command(&command.name(), Outcome::Unavailable);
            }
            return Err(e.into());
        }
    };
    bridge.count_commands(commands.len());
    match outcome {
        Transaction::Committed(values) => Ok(Json(
            values
                .into_iter()
                .zip(&commands)
                .map(|(v, command)| {
                    let reply = to_reply(v, encoding);
                    let outcome = match reply {
                        Reply::Error { .. } => Outcome::ErrorReply,
                        Reply::Result { .. } => Outcome::Ok,
                    };
                    monitoring::command(&command.name(), outcome);
                    reply
                })
                .collect(),
        )),
        Transaction::Discarded(error) => {
            for command in &commands {
                monitoring::command(&command.name(), Outcome::ErrorReply);
            }
            Err(BridgeError::BadRequest(error))
        }
    }
}

/// Tollgate extension: how many authorized command requests arrived and how many commands Redis
/// answered since start, so end-to-end tests can count the round trips a client made.
async fn stats(State(bridge): State<Bridge>, _: Authorized) -> Json<Stats> {
    Json(bridge.stats())
}

impl<S: Send + Sync> FromRequestParts<S> for Encoding {
    type Rejection = BridgeError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        // Only JSON answers exist here; refusing `resp2` beats answering in a format the client
        // will misread.
        let format = parts.headers.get("upstash-response-format");
        if format.is_some_and(|value| !value.as_bytes().eq_ignore_ascii_case(b"json")) {
            return Err(BridgeError::BadRequest(
                "ERR only the json Upstash-Response-Format is supported by the REST bridge".into(),
            ));
        }
        let base64 = parts
            .headers
            .get("upstash-encoding")
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"base64"));
        Ok(if base64 {
            Encoding::Base64
        } else {
            Encoding::Text
        })
    }
}
