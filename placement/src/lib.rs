//! Placement: pure decisions about which storage nodes hold which copies. No I/O.
