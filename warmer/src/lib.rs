//! Warm-up fan-out (being written: see issue 5).
