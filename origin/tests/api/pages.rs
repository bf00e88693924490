//! The pages over plain HTTP on both databases (the browser tests in tests/browser drive them in
//! Chromium): the page session's cookies, the CSRF checks, the admin page's SQL history.

use reqwest::header::{COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::{redirect, Client, StatusCode};

use crate::both_backends;
use crate::helpers::{spawn_app, Backend, TestApp, PASSWORD};

both_backends!(
    a_page_session_is_a_device_session_whose_forms_need_its_csrf_token,
    the_admin_page_counts_logins_and_refreshes_from_sql,
);

/// A browser-like client: keeps no cookies of its own, follows no redirects.
fn client() -> Client {
    Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .expect("client")
}

/// The hidden `csrf` field of a page.
fn csrf_field(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
    html[at..].split('"').next().expect("value").to_owned()
}

/// `name=value` pairs of the response's `Set-Cookie` headers, and the raw headers.
fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .collect()
}

fn cookie_header(set: &[String]) -> String {
    set.iter()
        .map(|c| c.split(';').next().expect("pair").to_owned())
        .filter(|pair| !pair.ends_with('='))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Signs in through the login form; returns the session's `Cookie` header.
async fn page_login(app: &TestApp, email: &str) -> String {
    let c = client();
    let form = c.get(app.url("/account/login")).send().await.expect("form");
    let login_cookie = cookie_header(&set_cookies(&form));
    let token = csrf_field(&form.text().await.expect("html"));
    let r = c
        .post(app.url("/account/login"))
        .header(COOKIE, login_cookie)
        .header(ORIGIN, &app.base)
        .form(&[
            ("csrf", token.as_str()),
            ("email", email),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/account/devices");
    let set = set_cookies(&r);
    for name in ["__Secure-tg_at", "__Secure-tg_rt", "__Secure-tg_csrf"] {
        let c = set
            .iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} not set: {set:?}"));
        for flag in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/account"] {
            assert!(c.contains(flag), "{name} lacks {flag}: {c}");
        }
    }
    cookie_header(&set)
}

async fn a_page_session_is_a_device_session_whose_forms_need_its_csrf_token(b: Backend) {
    let app = spawn_app(b).await;
    let email = app.new_user().await;
    let phone = app.login(&email, "phone").await;
    let cookies = page_login(&app, &email).await;
    let c = client();

    let page = c
        .get(app.url("/account/devices"))
        .header(COOKIE, &cookies)
        .send()
        .await
        .expect("devices");
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .expect("csp");
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(page.headers()["cache-control"], "no-store");
    let html = page.text().await.expect("html");
    assert!(html.contains("This device") && html.contains("phone"));
    assert_eq!(app.count_rows("page_sessions").await, 1);
    assert_eq!(
        app.count_where("device_sessions", "revoked_at IS NULL")
            .await,
        2
    );

    // Without a session: to the login form.
    let r = c
        .get(app.url("/account/devices"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/account/login");

    let revoke_all = app.url("/account/devices/revoke-all");
    let post = |origin: Option<&str>, csrf: &str| {
        let mut req = c
            .post(&revoke_all)
            .header(COOKIE, &cookies)
            .form(&[("csrf", csrf)]);
        if let Some(origin) = origin {
            req = req.header(ORIGIN, origin);
        }
        req.send()
    };
    let token = csrf_field(&html);
    for (origin, csrf) in [
        (Some(app.base.as_str()), ""),
        (Some(app.base.as_str()), "wrong"),
        (Some("http://evil.example"), token.as_str()),
        (None, token.as_str()),
    ] {
        let r = post(origin, csrf).await.expect("post");
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{origin:?} {csrf:?}");
    }
    assert_eq!(
        app.me_status(&phone.access).await.0,
        StatusCode::OK,
        "nothing revoked"
    );

    let r = post(Some(&app.base), &token).await.expect("post");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/account/login");
    assert!(set_cookies(&r).iter().all(|c| c.contains("Max-Age=0")));
    assert_eq!(
        app.me_status(&phone.access).await.0,
        StatusCode::UNAUTHORIZED
    );
    let r = c
        .get(app.url("/account/devices"))
        .header(COOKIE, &cookies)
        .send()
        .await
        .expect("get");
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "the page session died too"
    );
}

async fn the_admin_page_counts_logins_and_refreshes_from_sql(b: Backend) {
    let app = spawn_app(b).await;
    let email = app.new_user().await;
    let phone = app.login(&email, "phone").await;
    assert_eq!(app.refresh(&phone.refresh).await.status(), StatusCode::OK);
    let cookies = page_login(&app, &email).await;
    let c = client();
    let admin = || {
        c.get(app.url("/account/admin"))
            .header(COOKIE, &cookies)
            .send()
    };
    assert_eq!(
        admin().await.expect("admin").status(),
        StatusCode::FORBIDDEN
    );

    app.exec_sql(&format!(
        "UPDATE users SET role = 'admin' WHERE email = '{email}'"
    ))
    .await;
    let r = admin().await.expect("admin");
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.expect("html");
    let card = |label: &str| -> i64 {
        let at = html.find(label).expect("card");
        let before = &html[..at];
        let value = before
            .rsplit("<div class=\"value\">")
            .next()
            .expect("value");
        value
            .split('<')
            .next()
            .expect("number")
            .parse()
            .expect("int")
    };
    assert_eq!(card("Logins, last hour"), 2);
    assert_eq!(card("Refreshes, last hour"), 1);
    assert_eq!(card("Active sessions"), 2);
    assert!(html.contains("id=\"logins-chart\"") && html.contains("<polyline"));
    // Viewing sampled this minute, once however often it is viewed (two rows only if the
    // views straddle a minute).
    assert_eq!(app.count_rows("stats_samples").await, 1);
    for _ in 0..3 {
        admin().await.expect("admin");
    }
    assert!(app.count_rows("stats_samples").await <= 2);
}
