//! The public HTTP API (Manta v1 object, directory and auth API).
