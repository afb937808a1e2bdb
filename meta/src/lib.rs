//! Metadata: the ordered transactional key/value trait, the namespace model on it, and the embedded backend.
