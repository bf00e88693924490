//! The command line: `serve | migrate | cleanup | keys generate | keys jwks |
//! user promote | user demote`.

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
    /// Grant the admin role (the only way to get it); holds from the user's next request.
    Promote { email: String },
    /// Take the admin role away; holds from the user's next request.
    Demote { email: String },
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
        Command::User { command } => {
            let (email, role, done) = match command {
                UserCommand::Promote { email } => (email, "admin", "is now an admin"),
                UserCommand::Demote { email } => (email, "user", "is no longer an admin"),
            };
            let db = Db::connect(&settings.database_url).await?;
            db.migrate().await?;
            if db
                .set_role(&crate::domain::normalize_email(&email), role)
                .await?
            {
                println!("{email} {done}");
                Ok(())
            } else {
                anyhow::bail!("no user with email {email}")
            }
        }
    }
}
