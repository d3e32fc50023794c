//! The HTML listing source's pure halves: [`parse`] (a listing page's text
//! to raw strings) and [`clean`] (raw strings to typed `Question`s);
//! [`archived`] undoes what a web archive's replay does to a page's links.

pub mod archived;
pub mod clean;
pub mod parse;
