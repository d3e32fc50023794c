//! The HTML listing source's pure halves: [`parse`] (a listing page's text
//! to raw strings) and [`clean`] (raw strings to typed `Question`s).

pub mod clean;
pub mod parse;
