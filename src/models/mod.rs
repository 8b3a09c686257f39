//! Models (temporary stub on the analysis branch; the models engineer owns this file).
pub mod cnn;
pub mod conv;
