//! The devices page: sign in, see every device session, revoke one, all others, or all.

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use tollgate_shared::ErrorCode;

use super::session::{self, PageError, PageSession, SetCookies, Verified};
use super::{layout, Viewer};
use crate::auth::ClientInfo;
use crate::domain::{self, rfc3339};
use crate::error::ApiError;
use crate::routes::sessions::{logout_everywhere, revoke_own_session};
use crate::routes::users::{login_device, LoginBody};
use crate::state::AppState;

/// How long a login form stays usable.
const LOGIN_FORM_SECS: u64 = 3600;
/// The device name a page session gets when the form leaves it empty.
const DEFAULT_DEVICE_NAME: &str = "Web browser";

pub async fn login_form() -> Response {
    login_page(StatusCode::OK, None)
}

/// The form with a fresh double-submit token (cookie and hidden field).
fn login_page(status: StatusCode, error: Option<&str>) -> Response {
    let token = session::new_token();
    let body = layout(
        "Sign in",
        None,
        html! {
            h1 { "Sign in" }
            p { "Sign in to see and sign out the devices on your account." }
            @if let Some(error) = error { p.error role="alert" { (error) } }
            form.card method="post" action="/account/login" {
                input type="hidden" name="csrf" value=(token);
                label { "Email" input type="email" name="email" autocomplete="username" required; }
                label { "Password" input type="password" name="password" autocomplete="current-password" required; }
                label { "Device name " small { "(optional)" }
                    input type="text" name="device_name" maxlength="100" placeholder=(DEFAULT_DEVICE_NAME); }
                button type="submit" { "Sign in" }
            }
        },
    );
    (
        status,
        SetCookies::login_token(&token, LOGIN_FORM_SECS),
        body,
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    email: String,
    password: String,
    #[serde(default)]
    device_name: Option<String>,
}

/// Signs in through the API's own login, then makes the new device session a page session.
pub async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Ok(Form(form)) = form else {
        return Ok(login_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("Enter your email and password."),
        ));
    };
    let expected = session::cookie(&headers, session::LOGIN_COOKIE).unwrap_or_default();
    if !session::same_secret(&form.csrf, &expected) {
        return Err(PageError::Refused(
            "The sign-in form expired or did not come from this site. Reload it and try again.",
        ));
    }
    let device_name = form
        .device_name
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_DEVICE_NAME.to_owned());
    let body = LoginBody {
        email: form.email,
        password: form.password,
        device_name: Some(device_name),
    };
    let issued = match login_device(&state, client, body).await {
        Ok(issued) => issued,
        Err(ApiError::Client(ErrorCode::InvalidCredentials, _)) => {
            return Ok(login_page(
                StatusCode::UNAUTHORIZED,
                Some("Email or password is incorrect."),
            ))
        }
        Err(ApiError::RateLimited { .. }) => {
            return Ok(login_page(
                StatusCode::TOO_MANY_REQUESTS,
                Some("Too many failed attempts; try again later."),
            ))
        }
        Err(ApiError::Client(ErrorCode::InvalidInput, message)) => {
            return Ok(login_page(StatusCode::UNPROCESSABLE_ENTITY, Some(&message)))
        }
        Err(e) => return Err(e.into()),
    };
    let csrf = session::new_token();
    let now = domain::now();
    if let Err(e) = state
        .db
        .insert_page_session(&issued.token_id, &domain::hash_refresh_secret(&csrf), now)
        .await
    {
        // No session without its CSRF token: it could never post a form.
        let _ = revoke_own_session(&state, &issued.user_id, &issued.token_id).await;
        return Err(e.into());
    }
    let cookies =
        SetCookies::session(&state, &issued, Some(&csrf)).and(SetCookies::login_token("", 0));
    Ok((cookies, Redirect::to("/account/devices")).into_response())
}

/// Every live device session of the signed-in user, this one marked.
pub async fn list(
    State(state): State<AppState>,
    session: PageSession,
) -> Result<Response, PageError> {
    let id = &session.identity;
    let user = session.user(&state).await?;
    let rows = state.db.live_sessions(&id.user_id, domain::now()).await?;
    let others = rows.iter().filter(|r| r.token_id != id.token_id).count();
    let viewer = Viewer::new(&user, &session);
    let csrf = &session.csrf;
    let body = layout(
        "Devices",
        Some(&viewer),
        html! {
            h1 { "Your devices" }
            p { (rows.len()) " signed-in device" @if rows.len() != 1 { "s" } "." }
            table.devices {
                thead { tr { th { "Device" } th { "IP address" } th { "Browser / app" }
                             th { "Signed in" } th { "Last seen" } th {} } }
                tbody {
                    @for row in &rows {
                        @let current = row.token_id == id.token_id;
                        tr.current[current] data-token-id=(row.token_id) {
                            td {
                                (row.device_name.as_deref().unwrap_or("Unnamed device"))
                                @if current { " " span.badge { "This device" } }
                            }
                            td { (row.ip.as_deref().unwrap_or("—")) }
                            td.ua { (row.user_agent.as_deref().unwrap_or("—")) }
                            td { time datetime=(rfc3339(row.created_at)) { (short_time(row.created_at)) } }
                            td { time datetime=(rfc3339(row.last_seen_at)) { (short_time(row.last_seen_at)) } }
                            td {
                                @if current {
                                    form method="post" action="/account/logout" {
                                        input type="hidden" name="csrf" value=(csrf);
                                        button.secondary type="submit" { "Sign out" }
                                    }
                                } @else {
                                    form method="post" action={ "/account/devices/" (row.token_id) "/revoke" } {
                                        input type="hidden" name="csrf" value=(csrf);
                                        button.danger type="submit" { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            div.actions {
                form method="post" action="/account/devices/revoke-others" {
                    input type="hidden" name="csrf" value=(csrf);
                    button.danger type="submit" disabled[others == 0] { "Sign out all other devices" }
                }
                form method="post" action="/account/devices/revoke-all" {
                    input type="hidden" name="csrf" value=(csrf);
                    button.danger type="submit" { "Sign out everywhere" }
                }
            }
        },
    );
    Ok((session.cookies(), body).into_response())
}

/// `2026-12-02 03:04 UTC`: the page shows minutes; the `datetime` attribute keeps the instant.
fn short_time(ts: i64) -> String {
    let full = rfc3339(ts);
    match (full.get(..10), full.get(11..16)) {
        (Some(date), Some(hm)) => format!("{date} {hm} UTC"),
        _ => full,
    }
}

/// Revokes one other device (revoking this one is signing out).
pub async fn revoke_one(
    State(state): State<AppState>,
    Path(token_id): Path<String>,
    Verified(session): Verified,
) -> Result<Response, PageError> {
    let id = &session.identity;
    if token_id == id.token_id {
        return sign_out(&state, session).await;
    }
    revoke_own_session(&state, &id.user_id, &token_id).await?;
    Ok((session.cookies(), Redirect::to("/account/devices")).into_response())
}

/// Revokes every device session but this one.
pub async fn revoke_others(
    State(state): State<AppState>,
    Verified(session): Verified,
) -> Result<Response, PageError> {
    let id = &session.identity;
    let rows = state.db.live_sessions(&id.user_id, domain::now()).await?;
    for row in rows.iter().filter(|r| r.token_id != id.token_id) {
        match revoke_own_session(&state, &id.user_id, &row.token_id).await {
            // Gone meanwhile (revoked elsewhere, the account deleted): nothing left to do.
            Ok(_) | Err(ApiError::Client(ErrorCode::NotFound, _)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok((session.cookies(), Redirect::to("/account/devices")).into_response())
}

/// The API's logout-all: every device, this one included, is signed out.
pub async fn revoke_all(
    State(state): State<AppState>,
    Verified(session): Verified,
) -> Result<Response, PageError> {
    logout_everywhere(&state, &session.identity.user_id).await?;
    Ok(signed_out())
}

/// Signs this page session out: its device session is revoked, its cookies cleared.
pub async fn logout(
    State(state): State<AppState>,
    Verified(session): Verified,
) -> Result<Response, PageError> {
    sign_out(&state, session).await
}

async fn sign_out(state: &AppState, session: PageSession) -> Result<Response, PageError> {
    let id = &session.identity;
    match revoke_own_session(state, &id.user_id, &id.token_id).await {
        Ok(_) | Err(ApiError::Client(ErrorCode::NotFound, _)) => Ok(signed_out()),
        Err(e) => Err(e.into()),
    }
}

fn signed_out() -> Response {
    (SetCookies::cleared(), Redirect::to("/account/login")).into_response()
}
