//! The command line: `serve | migrate | cleanup | keys generate|activate|retire|prune|list|jwks |
//! user promote | user demote | user delete | edge-key | introspection-client | openapi`.

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::config::Settings;
use crate::db::Db;

#[derive(Debug, Parser)]
#[command(name = "tollgate-origin", version, about = "Tollgate origin service")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service (migrates first; runs cleanup periodically).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Delete expired and revoked device sessions past the retention, once.
    Cleanup,
    /// Manage signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// The edge's assertion keys (its `EDGE_SIGNING_KEYS` secret).
    EdgeKey {
        #[command(subcommand)]
        command: EdgeKeyCommand,
    },
    /// Print a new secret for a resource server calling `POST /oauth/introspect` (give it to that
    /// server) and the `INTROSPECTION_CLIENTS` entry holding only its hash (configure it here).
    IntrospectionClient {
        /// The client id the resource server sends in HTTP Basic.
        id: String,
    },
    /// Print the OpenAPI document (what `GET /openapi.json` serves).
    Openapi,
}

#[derive(Debug, Subcommand)]
pub enum EdgeKeyCommand {
    /// Print a new Ed25519 private key as a one-key JWKS, for `EDGE_SIGNING_KEYS` (a secret:
    /// `wrangler secret put EDGE_SIGNING_KEYS`). To rotate, put the new key second (published,
    /// not signing), wait for upstreams' JWKS caches, then move it first and drop the old one.
    Generate {
        /// The key id (default: `edge-` and the current Unix time).
        #[arg(long)]
        kid: Option<String>,
    },
    /// Read `EDGE_SIGNING_KEYS` on standard input and print its public JWKS (for `EDGE_JWKS`).
    Public,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Add a new Ed25519 key: published in the JWKS at once, signing after KEY_PUBLISH_SECS.
    Generate,
    /// Make a key sign now instead of at the end of its publish delay.
    Activate { kid: String },
    /// Stop a key from signing; it keeps verifying until every token it signed has expired.
    Retire { kid: String },
    /// Delete retired keys that no longer verify from the key file.
    Prune,
    /// Show every key's kid, state and dates (never private material).
    List,
    /// Print the public JWKS (for the edge's verification keys).
    Jwks,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Grant the admin role (the only way to get it); holds from the user's next request.
    Promote { email: String },
    /// Delete the account: every token refused at once, rows and Redis keys gone.
    Delete { email: String },
    /// Take the admin role away; holds from the user's next request.
    Demote { email: String },
}

/// Runs the parsed command with settings from the environment.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::EdgeKey { command } => return edge_key(command),
        Command::IntrospectionClient { id } => return introspection_client(&id),
        Command::Openapi => {
            print!("{}", crate::openapi::document_json());
            return Ok(());
        }
        _ => {}
    }
    let settings = Settings::from_env()?;
    crate::telemetry::init(settings.log_format);
    match cli.command {
        Command::Serve => {
            let app = crate::app::Application::build(settings).await?;
            tracing::info!(
                port = app.port(),
                metrics_port = app.metrics_port(),
                "tollgate-origin listening"
            );
            app.run_until_stopped(crate::app::shutdown_signal()).await
        }
        Command::Migrate => {
            Db::connect(&settings.database_url).await?.migrate().await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Cleanup => {
            let db = Db::connect(&settings.database_url).await?;
            db.migrate().await?;
            let n = crate::cleanup::run_once(
                &db,
                settings.cleanup_retention,
                settings.refresh_ttl,
                crate::domain::now(),
            )
            .await?;
            println!("deleted {n} device sessions");
            Ok(())
        }
        Command::Keys { command } => keys(&settings, command),
        Command::EdgeKey { command } => edge_key(command),
        Command::IntrospectionClient { id } => introspection_client(&id),
        Command::Openapi => Ok(()),
        Command::User {
            command: UserCommand::Promote { email },
        } => set_role(&settings, &email, "admin", "is now an admin").await,
        Command::User {
            command: UserCommand::Demote { email },
        } => set_role(&settings, &email, "user", "is no longer an admin").await,
        Command::User {
            command: UserCommand::Delete { email },
        } => {
            let db = Db::connect(&settings.database_url).await?;
            db.migrate().await?;
            let Some(user) = db
                .user_by_email(&crate::domain::normalize_email(&email))
                .await?
            else {
                anyhow::bail!("no user with email {email}")
            };
            let redis = crate::redis::RedisStore::connect(
                &settings.redis_url.0,
                tollgate_shared::KeySchema::new(settings.redis_prefix.clone()),
                settings.redis_timeout,
                settings.refresh_ttl,
            )
            .await?
            .with_replication(settings.redis_wait);
            if !crate::tokens::delete_account(&db, &redis, &user.id).await? {
                anyhow::bail!("no user with email {email}")
            }
            println!("{email} deleted");
            Ok(())
        }
    }
}

/// The edge's key pair, kept apart from the origin's own keys: the origin only ever needs the
/// public half (`EDGE_JWKS`), so its private half lives in the Worker's secrets alone.
fn edge_key(command: EdgeKeyCommand) -> anyhow::Result<()> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    match command {
        EdgeKeyCommand::Generate { kid } => {
            let kid = kid.unwrap_or_else(|| format!("edge-{}", crate::domain::now()));
            let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
            let jwk = serde_json::json!({
                "kty": "OKP", "crv": "Ed25519", "kid": kid,
                "d": URL_SAFE_NO_PAD.encode(key.to_bytes()),
                "x": URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes()),
            });
            println!("{}", serde_json::json!({ "keys": [jwk] }));
        }
        EdgeKeyCommand::Public => {
            let mut input = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut input)?;
            let private: serde_json::Value =
                serde_json::from_str(&input).context("EDGE_SIGNING_KEYS is not JSON")?;
            let mut public = Vec::new();
            for jwk in private["keys"].as_array().into_iter().flatten() {
                let (Some(kid), Some(x)) = (jwk["kid"].as_str(), jwk["x"].as_str()) else {
                    anyhow::bail!("every key needs a kid and its public x");
                };
                public.push(serde_json::json!({
                    "kty": "OKP", "crv": "Ed25519", "kid": kid, "x": x, "alg": "EdDSA", "use": "sig",
                }));
            }
            println!("{}", serde_json::json!({ "keys": public }));
        }
    }
    Ok(())
}

/// A 256-bit random secret and its `INTROSPECTION_CLIENTS` entry (`id:sha256:HEX`).
fn introspection_client(id: &str) -> anyhow::Result<()> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use rand::RngCore as _;
    use sha2::{Digest as _, Sha256};
    if id.is_empty() || id.contains([':', ',']) || id.chars().any(char::is_whitespace) {
        anyhow::bail!("the client id must be non-empty, without ':', ',' or spaces");
    }
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = URL_SAFE_NO_PAD.encode(bytes);
    let hash: String = Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    println!("client id:     {id}");
    println!("client secret: {secret}");
    println!("INTROSPECTION_CLIENTS entry: {id}:sha256:{hash}");
    Ok(())
}

/// Grants or takes away a role; it holds from the user's next request (roles are read from SQL
/// on every request, never kept in a token or a memo).
async fn set_role(settings: &Settings, email: &str, role: &str, done: &str) -> anyhow::Result<()> {
    let db = Db::connect(&settings.database_url).await?;
    db.migrate().await?;
    if db
        .set_role(&crate::domain::normalize_email(email), role)
        .await?
    {
        println!("{email} {done}");
        Ok(())
    } else {
        anyhow::bail!("no user with email {email}")
    }
}

/// The `keys` subcommands, each one change to `KEYS_FILE` that a running origin picks up within
/// `KEYS_RELOAD_SECS`.
fn keys(settings: &Settings, command: KeysCommand) -> anyhow::Result<()> {
    use crate::keyring;

    let path = &settings.keys_file;
    let times = keyring::KeyTimes::from_settings(settings);
    let now = crate::domain::now();
    match command {
        KeysCommand::Generate => {
            let kid = keyring::generate(path, times, now)?;
            let from = keyring::list(path, times, now)?
                .into_iter()
                .find(|k| k.kid == kid)
                .map_or(now, |k| k.signs_from);
            println!("{kid}");
            eprintln!(
                "published now; signs from {} (or run `keys activate {kid}`)",
                crate::domain::rfc3339(from)
            );
        }
        KeysCommand::Activate { kid } => {
            keyring::activate(path, &kid, now)?;
            println!("{kid} signs now");
        }
        KeysCommand::Retire { kid } => {
            let signer = keyring::retire(path, &kid, now)?;
            println!(
                "{kid} retired: verifies until {}; {signer} signs",
                crate::domain::rfc3339(now.saturating_add(times.linger))
            );
        }
        KeysCommand::Prune => {
            for kid in keyring::prune(path, times, now)? {
                println!("deleted {kid}");
            }
        }
        KeysCommand::List => {
            if settings.jwt_secret.is_some() {
                eprintln!("JWT_SECRET is set: HS256 signs; these keys only verify");
            }
            let date = |t: Option<i64>| t.map_or_else(|| "-".to_owned(), crate::domain::rfc3339);
            println!(
                "{:<24} {:<8} {:<20} {:<20} {:<20} {:<20}",
                "KID", "STATE", "CREATED", "SIGNS FROM", "RETIRED", "PUBLISHED UNTIL"
            );
            for k in keyring::list(path, times, now)? {
                println!(
                    "{:<24} {:<8} {:<20} {:<20} {:<20} {:<20}",
                    k.kid,
                    k.state.to_string(),
                    date(Some(k.created)),
                    date(Some(k.signs_from)),
                    date(k.retired_at),
                    date(k.published_until),
                );
            }
        }
        KeysCommand::Jwks => {
            let keys = keyring::Keyring::open(settings, true)?;
            println!("{}", serde_json::to_string(&keys.view().jwks())?);
        }
    }
    Ok(())
}
