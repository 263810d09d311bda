//! Integration tests of mtasts-resolver: the socketmap server against the hermetic world.

mod socketmap;
mod support;
