//! The command line: `serve | migrate | cleanup | keys generate | keys jwks | user promote |
//! user delete`.

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
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Add a new Ed25519 signing key and make it active (old keys keep verifying).
    Generate,
    /// Print the public JWKS (for the edge's verification keys).
    Jwks,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Grant the admin role.
    Promote { email: String },
    /// Delete the account: every token refused at once, rows and Redis keys gone.
    Delete { email: String },
}

/// Runs the parsed command with settings from the environment.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    crate::telemetry::init(settings.log_format);
    match cli.command {
        Command::Serve => {
            let app = crate::app::Application::build(settings).await?;
            tracing::info!(port = app.port(), "tollgate-origin listening");
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
        Command::Keys {
            command: KeysCommand::Generate,
        } => {
            let kid = crate::keyring::generate(&settings.keys_file)?;
            println!("{kid}");
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Jwks,
        } => {
            let keys =
                crate::keyring::Keyring::load(&settings.keys_file, settings.jwt_secret, true)?;
            println!("{}", serde_json::to_string(&keys.verifying.to_jwks())?);
            Ok(())
        }
        Command::User {
            command: UserCommand::Promote { email },
        } => {
            let db = Db::connect(&settings.database_url).await?;
            db.migrate().await?;
            if db.promote(&crate::domain::normalize_email(&email)).await? {
                println!("{email} is now an admin");
                Ok(())
            } else {
                anyhow::bail!("no user with email {email}")
            }
        }
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
            let cache = crate::cache::Cache::connect(
                &settings.redis_url.0,
                tollgate_shared::KeySchema::new(settings.redis_prefix.clone()),
                settings.redis_timeout,
                settings.refresh_ttl,
            )
            .await?;
            if !crate::tokens::delete_account(&db, &cache, &user.id).await? {
                anyhow::bail!("no user with email {email}")
            }
            println!("{email} deleted");
            Ok(())
        }
    }
}
