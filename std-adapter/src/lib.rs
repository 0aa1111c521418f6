//! Tokio adapter for Tenure.
