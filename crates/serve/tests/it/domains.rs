//! The domain lifecycle.
