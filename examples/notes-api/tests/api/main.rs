//! The notes API over a real socket and a real SQLite file, called with assertions signed in
//! the test by `tollgate-shared` exactly as the edge signs them.

mod helpers;
mod notes;
