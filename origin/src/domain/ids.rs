//! Identifiers the origin mints (user ids, device sessions, jtis).

/// A fresh random (v4) UUID in its hyphenated form.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
