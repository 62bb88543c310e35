//! Health tests.
