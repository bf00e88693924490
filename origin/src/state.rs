//! Shared application state: one cheap-to-clone handle to everything a handler needs.

use std::sync::Arc;

use tollgate_shared::jwt::Validation;

use crate::cache::Cache;
use crate::config::Settings;
use crate::db::Db;
use crate::keyring::Keyring;
use crate::password::PasswordHasher;

/// `AppState(Arc<App>)`: cloned into every request for the cost of a reference count.
#[derive(Debug, Clone)]
pub struct AppState(pub Arc<App>);

/// The application's long-lived parts.
#[derive(Debug)]
pub struct App {
    pub settings: Settings,
    pub db: Db,
    pub cache: Cache,
    pub keys: Keyring,
    pub validation: Validation,
    pub hasher: PasswordHasher,
}

impl std::ops::Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}
