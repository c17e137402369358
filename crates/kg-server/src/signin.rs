//! Browser sign-in (being written).
