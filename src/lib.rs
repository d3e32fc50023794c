pub mod clean;
pub mod model;
pub mod parse;
