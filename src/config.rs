//! The connector configuration document (stored in Secrets Manager, or a local file).
