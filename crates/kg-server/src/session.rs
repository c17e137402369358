//! Browser sessions (being written).
