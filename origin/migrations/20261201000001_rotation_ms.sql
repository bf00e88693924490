-- The refresh grace window is judged in milliseconds, from the same clock that sets the sealed
-- answer's lifetime (whole seconds let a repeat half a second past the window fork the chain).
-- Rows rotated before this migration fall back to `rotated_at` × 1000.
ALTER TABLE device_sessions ADD COLUMN rotated_at_ms BIGINT;
