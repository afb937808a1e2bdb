//! Backend-generic conformance suite (placeholder; filled in next).
