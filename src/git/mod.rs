//! Git repository cache and fetch (gix).
