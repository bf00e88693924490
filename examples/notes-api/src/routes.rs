//! The HTTP routes. Each protected handler takes [`EdgeUser`], so a request without a valid edge
//! assertion never reaches it; the user id it yields scopes every query.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tollgate_upstream::EdgeUser;

use crate::db::{Content, Note};
use crate::error::NotesError;
use crate::AppState;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest note body, in characters.
pub const MAX_BODY_CHARS: usize = 20_000;

/// The router: what `main` serves and what tests call.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/api/notes", get(list).post(create))
        .route("/api/notes/{id}", get(read).put(update).delete(remove))
        .fallback(|| async { NotesError::NotFound })
        .method_not_allowed_fallback(|| async { NotesError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// What a client sends to create or replace a note.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteInput {
    pub title: String,
    #[serde(default)]
    pub body: String,
}

impl NoteInput {
    /// The body of a create/replace request, validated.
    fn parse(payload: Result<Json<Self>, JsonRejection>) -> Result<Self, NotesError> {
        let Json(input) = payload.map_err(|e| match e.status() {
            StatusCode::PAYLOAD_TOO_LARGE => NotesError::PayloadTooLarge,
            _ => NotesError::InvalidInput(e.body_text()),
        })?;
        let title = input.title.trim();
        if title.is_empty() {
            return Err(NotesError::InvalidInput("title must not be empty".into()));
        }
        if title.chars().count() > MAX_TITLE_CHARS {
            return Err(NotesError::InvalidInput(format!(
                "title is longer than {MAX_TITLE_CHARS} characters"
            )));
        }
        if input.body.chars().count() > MAX_BODY_CHARS {
            return Err(NotesError::InvalidInput(format!(
                "body is longer than {MAX_BODY_CHARS} characters"
            )));
        }
        Ok(Self {
            title: title.to_owned(),
            body: input.body,
        })
    }

    fn content(&self) -> Content<'_> {
        Content {
            title: &self.title,
            body: &self.body,
        }
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

async fn list(
    State(state): State<AppState>,
    EdgeUser(who): EdgeUser,
) -> Result<Json<Vec<Note>>, NotesError> {
    Ok(Json(state.notes.list(&who.user_id).await?))
}

async fn create(
    State(state): State<AppState>,
    EdgeUser(who): EdgeUser,
    payload: Result<Json<NoteInput>, JsonRejection>,
) -> Result<(StatusCode, Json<Note>), NotesError> {
    let input = NoteInput::parse(payload)?;
    let note = state
        .notes
        .create(&who.user_id, input.content(), now())
        .await?;
    Ok((StatusCode::CREATED, Json(note)))
}

async fn read(
    State(state): State<AppState>,
    EdgeUser(who): EdgeUser,
    Path(id): Path<String>,
) -> Result<Json<Note>, NotesError> {
    let note = state.notes.get(&who.user_id, &id).await?;
    note.map(Json).ok_or(NotesError::NotFound)
}

async fn update(
    State(state): State<AppState>,
    EdgeUser(who): EdgeUser,
    Path(id): Path<String>,
    payload: Result<Json<NoteInput>, JsonRejection>,
) -> Result<Json<Note>, NotesError> {
    let input = NoteInput::parse(payload)?;
    let note = state
        .notes
        .update(&who.user_id, &id, input.content(), now())
        .await?;
    note.map(Json).ok_or(NotesError::NotFound)
}

async fn remove(
    State(state): State<AppState>,
    EdgeUser(who): EdgeUser,
    Path(id): Path<String>,
) -> Result<StatusCode, NotesError> {
    if state.notes.delete(&who.user_id, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(NotesError::NotFound)
    }
}
