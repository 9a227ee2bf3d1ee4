#![allow(dead_code)]
//! Shared harness for the end-to-end tests.

pub mod proxy;
