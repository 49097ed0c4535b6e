//! Fetching into a bare mirror with gix.
