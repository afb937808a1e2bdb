//! A storage node: durable object files over HTTP, and the client that talks to nodes.
